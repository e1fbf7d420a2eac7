/**
 * Caffe `BlobProto` files (`mean.binaryproto`): the mean image a Caffe model was trained with.
 *
 * BlobProto fields: num (1), channels (2), height (3), width (4) as varints (legacy shape); data (5, packed or
 * repeated float); diff (6, skipped); shape (7, BlobShape { dim (1), packed or repeated int64 }); double_data (8).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { WireReader } from "../wire/wire_reader.ts";

/** Decodes a BlobProto to float32 values and a shape (legacy 4-D shape unless `shape` is given). */
export function decodeBlobProto(b: Uint8Array, file = "binaryproto"): { data: Float32Array; shape: number[] } {
  try {
    const r = new WireReader(b, 0, 0, b.length, file);
    const legacy = [1, 1, 1, 1];
    let shape: number[] | undefined;
    const values: number[] = [];
    while (!r.done) {
      const [field, wt] = r.tag();
      if (field >= 1 && field <= 4 && wt === 0) legacy[field - 1] = r.uint();
      else if (field === 5) r.repeatedFloat(wt, values);
      else if (field === 8) r.repeatedDouble(wt, values);
      else if (field === 7 && wt === 2) {
        const s = r.sub();
        const dims: number[] = [];
        while (!s.done) {
          const [f2, w2] = s.tag();
          if (f2 === 1) s.repeatedInt(w2, dims);
          else s.skip(w2);
        }
        shape = dims;
      } else r.skip(wt);
    }
    const dims = shape ?? legacy;
    const n = dims.reduce((p, d) => p * d, 1);
    if (n !== values.length) {
      throw new ConvpressError(
        "bad_format",
        `shape [${dims.join(",")}] needs ${n} values, the blob holds ${values.length}`,
      );
    }
    return { data: Float32Array.from(values), shape: dims };
  } catch (e) {
    if (e instanceof ConvpressError) {
      throw new ConvpressError(e.code, `Cannot read mean file '${file}': ${e.message}`, {
        file,
        offset: e.offset,
        cause: e,
      });
    }
    throw e;
  }
}
