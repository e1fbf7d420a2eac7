/**
 * Row-local tensor transforms that stream: the source's chunks are cut into rows (whatever the chunk boundaries),
 * each row is mapped to an output row or dropped, and output rows leave in batches. Memory: one input row, one
 * output batch. This is how the GAP fold and pruning touch VGG16's fc6 without materializing it.
 *
 * @module
 */
import { Tensor } from "../model/tensor.ts";

/** Maps input row `r` (length `rowLen`) into `out` (length `outRowLen`); returns false to drop the row. */
export type RowFn = (row: Float32Array, out: Float32Array, r: number) => boolean;

const BATCH_BYTES = 1 << 20;

/**
 * A float32 tensor whose rows are `fn` of the rows of `src`. `outRows` must be the number of rows `fn` keeps.
 * The work is done each time the result's chunks are pulled.
 */
export function mapRows(
  src: Tensor,
  rowLen: number,
  outShape: readonly number[],
  fn: RowFn,
  name = src.name,
): Tensor {
  const outRowLen = outShape.slice(1).reduce((a, b) => a * b, 1);
  const outRows = outShape[0];
  const rows = src.size / rowLen;
  if (!Number.isInteger(rows)) throw new Error(`Tensor '${src.name}' does not split into rows of ${rowLen}`);
  return Tensor.fromChunks(name, "float32", outShape, outRows * outRowLen * 4, async function* () {
    const f32 = src.dtype === "float32" ? undefined : await src.float32();
    const row = new Float32Array(rowLen);
    const rowBytes = new Uint8Array(row.buffer);
    const perBatch = Math.max(1, Math.floor(BATCH_BYTES / 4 / Math.max(1, outRowLen)));
    const batch = new Float32Array(perBatch * outRowLen);
    let inBatch = 0, r = 0, kept = 0;
    const flush = function* () {
      if (inBatch > 0) yield new Uint8Array(batch.buffer, 0, inBatch * outRowLen * 4);
      inBatch = 0;
    };
    const take = function* () {
      if (fn(row, batch.subarray(inBatch * outRowLen, (inBatch + 1) * outRowLen), r++)) {
        kept++;
        if (++inBatch === perBatch) yield* flush();
      }
    };
    if (f32) {
      for (let i = 0; i < rows; i++) {
        row.set(f32.subarray(i * rowLen, (i + 1) * rowLen));
        yield* take();
      }
    } else {
      let fill = 0; // bytes of the current row filled
      for await (const c of src.chunks()) {
        let off = 0;
        while (off < c.length) {
          const n = Math.min(c.length - off, rowBytes.length - fill);
          rowBytes.set(c.subarray(off, off + n), fill);
          fill += n;
          off += n;
          if (fill === rowBytes.length) {
            fill = 0;
            yield* take();
          }
        }
      }
    }
    yield* flush();
    if (kept !== outRows) throw new Error(`Row map of '${src.name}' kept ${kept} rows, expected ${outRows}`);
  });
}

/** Selects elements of a vector tensor (a bias, a BatchNorm parameter) by index. */
export async function selectVector(t: Tensor, keep: readonly number[]): Promise<Tensor> {
  const v = await t.float32();
  const out = new Float32Array(keep.length);
  keep.forEach((k, i) => (out[i] = v[k]));
  return Tensor.fromFloat32(t.name, [keep.length, ...t.shape.slice(1)], out);
}
