/**
 * MNIST IDX files (optionally gzip-compressed, as distributed).
 *
 * Layout: 2 zero bytes, a type byte (0x08 = uint8; the only one MNIST uses), the number of dimensions, then each
 * dimension as uint32 big-endian, then the data. Images are idx3 (N, rows, cols); labels are idx1 (N).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Dataset, Sample } from "./types.ts";

/** A decoded IDX array of uint8. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** True when `b` looks like an uncompressed uint8 IDX file. */
export function isIdx(b: Uint8Array): boolean {
  return b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 0x08 && b[3] >= 1 && b[3] <= 4;
}

/** True when `b` starts with the gzip magic. */
export function isGzip(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
}

/** Gunzips `b`. */
export async function gunzip(b: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([b as BlobPart]).stream().pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** Parses an IDX file of uint8. */
export function parseIdx(b: Uint8Array, file = "idx"): IdxArray {
  const bad = (code: "bad_format" | "unexpected_eof", msg: string, offset?: number) =>
    new ConvpressError(code, `Cannot read IDX file '${file}': ${msg}`, { file, offset });
  if (!isIdx(b)) throw bad("bad_format", "not a uint8 IDX file (magic 00 00 08 0N)", 0);
  const nd = b[3];
  if (b.length < 4 + 4 * nd) throw bad("unexpected_eof", "header cut short", b.length);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const dims = Array.from({ length: nd }, (_, i) => dv.getUint32(4 + 4 * i, false));
  const n = dims.reduce((p, d) => p * d, 1);
  const start = 4 + 4 * nd;
  if (start + n > b.length) {
    throw bad(
      "unexpected_eof",
      `dimensions ${dims.join("x")} need ${n} bytes, the file has ${b.length - start}`,
      b.length,
    );
  }
  return { dims, data: b.subarray(start, start + n) };
}

/** MNIST images (idx3) with optional labels (idx1) as a data set of [1, rows, cols] pixels. */
export function idxDataset(images: IdxArray, labels: IdxArray | undefined, file: string): Dataset {
  if (images.dims.length !== 3) {
    throw new ConvpressError("bad_format", `IDX file '${file}' has ${images.dims.length} dimensions, images need 3`, {
      file,
    });
  }
  const [n, h, w] = images.dims;
  if (labels && labels.dims[0] !== n) {
    throw new ConvpressError("bad_format", `IDX labels hold ${labels.dims[0]} entries for ${n} images`, { file });
  }
  return {
    kind: "MNIST IDX",
    pixels: true,
    size: n,
    async *samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < n; i++) {
        const data = Float32Array.from(images.data.subarray(i * h * w, (i + 1) * h * w));
        yield { data, shape: [1, h, w], label: labels?.data[i], id: `${file}[${i}]` };
      }
    },
  };
}
