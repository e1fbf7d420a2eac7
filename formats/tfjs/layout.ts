/**
 * Layout conversions between TF.js and the canonical stream (../../src/model/ops.ts), as lazy tensors: the work is
 * done when a consumer reads the data, and again on each read. They move elements without changing them, so each
 * keeps its source's {@link Tensor.codebook}.
 *
 * - Conv kernels HWIO [kh, kw, I, O] <-> OIHW [O, I, kh, kw]; depthwise [kh, kw, C, m] <-> [C*m, 1, kh, kw]. Conv
 *   kernels are small: these materialize one tensor.
 * - Dense kernels [in, out] <-> FC [out, in]: a whole-matrix transpose, done in blocks of output rows so the
 *   output side holds at most {@link BLOCK_BYTES}; each block is one pass over the source's chunks.
 * - The first FC after a Flatten of an NHWC tensor: its input index runs over (h, w, c) in TF.js and over (c, h, w)
 *   in the canonical stream. This is a permutation inside each row of [out, in], so it streams row by row.
 *
 * @module
 */
import { Tensor, toFloat32 } from "../../src/model/tensor.ts";
import { DTYPE_SIZE } from "../../src/model/tensor.ts";

/** Largest output block a blocked transpose holds. */
export const BLOCK_BYTES = 32 << 20;

/**
 * Yields a tensor's data as float32 arrays of whole elements. Arrays are borrowed (valid until the next pull) when
 * the data is float32 and aligned, copies otherwise.
 */
export async function* floatChunks(t: Tensor): AsyncGenerator<Float32Array> {
  const size = DTYPE_SIZE[t.dtype];
  const f32 = t.dtype === "float32";
  const carry = new Uint8Array(size);
  let carryLen = 0;
  let buf = new Uint8Array(0); // reused for misaligned chunks, so passes over a big tensor make no garbage
  for await (const c of t.chunks()) {
    if (carryLen === 0 && f32 && c.byteOffset % 4 === 0 && c.length % 4 === 0) {
      yield new Float32Array(c.buffer, c.byteOffset, c.length / 4);
      continue;
    }
    const total = carryLen + c.length;
    if (total < size) {
      carry.set(c, carryLen);
      carryLen = total;
      continue;
    }
    const whole = total - (total % size);
    if (buf.length < whole) buf = new Uint8Array(Math.max(whole, buf.length * 2));
    buf.set(carry.subarray(0, carryLen));
    buf.set(c.subarray(0, whole - carryLen), carryLen);
    const rest = c.subarray(whole - carryLen);
    carry.set(rest);
    carryLen = rest.length;
    const part = buf.subarray(0, whole);
    yield f32 ? new Float32Array(part.buffer, 0, whole / 4) : toFloat32(t.dtype, part, t.name);
  }
}

/** Yields the rows (of `cols` elements) of a tensor as borrowed float32 arrays. */
export async function* floatRows(t: Tensor, cols: number): AsyncGenerator<Float32Array> {
  const row = new Float32Array(cols);
  let fill = 0;
  for await (const a of floatChunks(t)) {
    let i = 0;
    if (fill > 0) {
      const take = Math.min(cols - fill, a.length);
      row.set(a.subarray(0, take), fill);
      fill += take;
      i = take;
      if (fill < cols) continue;
      yield row;
      fill = 0;
    }
    for (; i + cols <= a.length; i += cols) yield a.subarray(i, i + cols);
    if (i < a.length) {
      row.set(a.subarray(i));
      fill = a.length - i;
    }
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Permutes a 4-D tensor's axes lazily: output axis i is input axis `perm[i]`. */
export function permute4(t: Tensor, perm: number[], name = t.name): Tensor {
  const s = t.shape;
  const outShape = perm.map((p) => s[p]);
  return Tensor.fromChunks(name, "float32", outShape, t.size * 4, async function* () {
    const a = await t.float32();
    const out = new Float32Array(a.length);
    const inStride = [s[1] * s[2] * s[3], s[2] * s[3], s[3], 1];
    const st = perm.map((p) => inStride[p]);
    const [d0, d1, d2, d3] = outShape;
    let o = 0;
    for (let i = 0; i < d0; i++) {
      for (let j = 0; j < d1; j++) {
        for (let k = 0; k < d2; k++) {
          const base = i * st[0] + j * st[1] + k * st[2];
          for (let l = 0; l < d3; l++) out[o++] = a[base + l * st[3]];
        }
      }
    }
    yield bytesOf(out);
  }).sameValuesAs(t);
}

/** HWIO [kh, kw, I, O] -> OIHW [O, I, kh, kw]. */
export function hwioToOihw(t: Tensor, name = t.name): Tensor {
  return permute4(t, [3, 2, 0, 1], name);
}

/** OIHW [O, I, kh, kw] -> HWIO [kh, kw, I, O]. */
export function oihwToHwio(t: Tensor, name = t.name): Tensor {
  return permute4(t, [2, 3, 1, 0], name);
}

/** Depthwise [kh, kw, C, m] -> grouped conv [C*m, 1, kh, kw] (output channel c*m + j). */
export function depthwiseToOihw(t: Tensor, name = t.name): Tensor {
  const [kh, kw, c, m] = t.shape;
  // [kh, kw, C, m] viewed as HWIO with I = C*m, O = 1 gives [1, C*m, kh, kw]; reshape to [C*m, 1, kh, kw].
  return hwioToOihw(t.with({ shape: [kh, kw, c * m, 1] }), name).with({ shape: [c * m, 1, kh, kw] });
}

/** Grouped conv [C*m, 1, kh, kw] -> depthwise [kh, kw, C, m]. */
export function oihwToDepthwise(t: Tensor, m: number, name = t.name): Tensor {
  const [cm, , kh, kw] = t.shape;
  return oihwToHwio(t.with({ shape: [1, cm, kh, kw] }), name).with({ shape: [kh, kw, cm / m, m] });
}

/**
 * A 2-D transpose in blocks: `src` is [rows, cols]; the output is [cols, rows] with
 * `out[rowMap(c)][colMap(r)] = src[r][c]`. Each block of output rows costs one pass over `src`.
 */
export function transposeBlocked(
  src: Tensor,
  rows: number,
  cols: number,
  options: { rowMap?: (c: number) => number; colMap?: (r: number) => number; name?: string; blockBytes?: number } = {},
): Tensor {
  const rowMap = options.rowMap ?? ((c: number) => c);
  const colMap = options.colMap ?? ((r: number) => r);
  const blockRows = Math.max(1, Math.min(cols, Math.floor((options.blockBytes ?? BLOCK_BYTES) / (rows * 4))));
  const rowOf = new Int32Array(cols);
  for (let c = 0; c < cols; c++) rowOf[c] = rowMap(c);
  const colOf = new Int32Array(rows);
  for (let r = 0; r < rows; r++) colOf[r] = colMap(r);
  return Tensor.fromChunks(options.name ?? src.name, "float32", [cols, rows], rows * cols * 4, async function* () {
    for (let b0 = 0; b0 < cols; b0 += blockRows) {
      const b1 = Math.min(cols, b0 + blockRows);
      const out = new Float32Array((b1 - b0) * rows);
      // Source columns landing in this block, and where.
      const picked: number[] = [];
      for (let c = 0; c < cols; c++) if (rowOf[c] >= b0 && rowOf[c] < b1) picked.push(c);
      const pc = Int32Array.from(picked);
      const dst = Int32Array.from(picked, (c) => (rowOf[c] - b0) * rows);
      let r = 0;
      for await (const row of floatRows(src, cols)) {
        const cr = colOf[r++];
        for (let k = 0; k < pc.length; k++) out[dst[k] + cr] = row[pc[k]];
      }
      for (let off = 0; off < out.length; off += 1 << 20) yield bytesOf(out.subarray(off, off + (1 << 20)));
    }
  }).sameValuesAs(src);
}

/** Permutes the columns of each row of [rows, cols]: `out[r][colMap(c)] = src[r][c]`. Streams row by row. */
export function permuteColumns(
  src: Tensor,
  rows: number,
  cols: number,
  colMap: (c: number) => number,
  name = src.name,
): Tensor {
  const map = new Int32Array(cols);
  for (let c = 0; c < cols; c++) map[c] = colMap(c);
  return Tensor.fromChunks(name, "float32", [rows, cols], rows * cols * 4, async function* () {
    const out = new Float32Array(cols);
    for await (const row of floatRows(src, cols)) {
      for (let c = 0; c < cols; c++) out[map[c]] = row[c];
      yield bytesOf(out);
    }
  }).sameValuesAs(src);
}

/** Index maps between the (h, w, c) flatten order of NHWC and the (c, h, w) order of NCHW. */
export function flattenMaps(
  c: number,
  h: number,
  w: number,
): { tfToCanon: (i: number) => number; canonToTf: (j: number) => number } {
  return {
    tfToCanon: (i) => {
      const ch = i % c, hw = (i - ch) / c;
      return ch * h * w + hw;
    },
    canonToTf: (j) => {
      const hw = j % (h * w), ch = (j - hw) / (h * w);
      return hw * c + ch;
    },
  };
}
