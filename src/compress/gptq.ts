/**
 * Sequential quantization with error feedback over input columns (OBQ/GPTQ, Frantar et al. 2022), on a fixed
 * codebook: the columns of W [out, d] are quantized one after the other to their nearest centre, and each column's
 * error is spread over the columns not yet quantized through the inverse Hessian of the layer's output error,
 * H = E[x x^T] (x the layer's input vector: a sample for FC, an im2col patch for Conv). With U the upper Cholesky
 * factor of H^-1, column j's error e = (w_j - q_j) / U_jj updates w_k -= e U_jk for k > j: the least-squares optimal
 * compensation given the columns still free.
 *
 * A mask keeps pruned weights (exact zeros of a sparse tensor) at zero: they are "quantized" to 0, and their error
 * is compensated like any other (as SparseGPT does).
 *
 * @module
 */
import {
  BLOCKED_MIN,
  blockedAvailable,
  cholesky,
  choleskyBlocked,
  invertLowerBlocked,
  subtract4,
} from "../linalg/cholesky.ts";
import { holding, type SimdArena } from "../linalg/simd.ts";

/**
 * The upper Cholesky factor U of (H + damp I)^-1 (row-major d x d), with damp = `dampFraction` of the mean of
 * H's diagonal (dead inputs, whose diagonal is 0, get the damping alone).
 *
 * With P the reversal permutation and P (H + damp I) P = L L^T, (H + damp I)^-1 = (P L^-T P)(P L^-1 P) and
 * P L^-1 P is upper triangular with a positive diagonal: it is U. So one Cholesky factorization and one triangular
 * inverse (d^3 / 3 multiply-adds in all, every inner loop over a contiguous row) give U, without forming H^-1.
 */
export function inverseHessianFactor(
  h: Float64Array,
  d: number,
  dampFraction = 0.01,
  into?: Float64Array,
): Float64Array {
  const a = reversedDamped(h, d, dampFraction, into);
  const last = d * d - 1;
  cholesky(a, d); // lower L, P H P = L L^T
  // X = L^-1 (lower), row by row: X_i = (e_i - sum_{k<i} L_ik X_k) / L_ii.
  const x = new Float64Array(d * d);
  // Four rows k at a time (rows of X are zero right of their diagonal, so j runs to the last of the four).
  for (let i = 0; i < d; i++) {
    const ri = i * d;
    let k = 0;
    for (; k + 3 < i; k += 4) {
      const r = ri + k, rk = k * d;
      subtract4(x, ri, k + 4, a[r], rk, a[r + 1], rk + d, a[r + 2], rk + 2 * d, a[r + 3], rk + 3 * d);
    }
    for (; k < i; k++) {
      const l = a[ri + k];
      if (l === 0) continue;
      const rk = k * d;
      for (let j = 0; j <= k; j++) x[ri + j] -= l * x[rk + j];
    }
    x[ri + i] = 1;
    const inv = 1 / a[ri + i];
    for (let j = 0; j <= i; j++) x[ri + j] *= inv;
  }
  // U = P X P.
  for (let i = 0; i < a.length; i++) a[i] = x[last - i];
  return a;
}

/** P (H + damp I) P, P the reversal permutation. */
function reversedDamped(h: Float64Array, d: number, dampFraction: number, into?: Float64Array): Float64Array {
  const a = into ?? new Float64Array(d * d);
  let mean = 0;
  for (let i = 0; i < d; i++) mean += h[i * d + i];
  mean = mean / d || 1;
  const last = d * d - 1;
  for (let i = 0; i < a.length; i++) a[i] = h[last - i];
  for (let i = 0; i < d; i++) a[i * d + i] += dampFraction * mean;
  return a;
}

/**
 * {@link inverseHessianFactor} with the blocked factor and inverse of ../linalg/cholesky.ts (float64 products on
 * ONNX Runtime) from {@link BLOCKED_MIN} inputs on; below that, or without ONNX Runtime, exactly it.
 */
export async function inverseHessianFactorFast(
  h: Float64Array,
  d: number,
  dampFraction = 0.01,
  into?: Float64Array,
): Promise<Float64Array> {
  // `into` is the working array and the result (no d x d copy more).
  if (d < BLOCKED_MIN || !(await blockedAvailable())) return inverseHessianFactor(h, d, dampFraction, into);
  const a = reversedDamped(h, d, dampFraction, into);
  await choleskyBlocked(a, d);
  const x = await invertLowerBlocked(a, d);
  const last = d * d - 1;
  for (let i = 0; i < a.length; i++) a[i] = x[last - i];
  return a;
}

/** Index of the nearest of the sorted `centers` to `v`. */
export function nearest(centers: Float32Array, v: number): number {
  let a = 0, b = centers.length - 1;
  while (a < b) {
    const m = (a + b) >> 1;
    if ((centers[m] + centers[m + 1]) / 2 < v) a = m + 1;
    else b = m;
  }
  return a;
}

/**
 * Quantizes W [out, d] (row-major, float32; not changed) to `centers` column by column with error feedback
 * through `u` (from {@link inverseHessianFactor}). Where `zero` is given, elements with `mask[i]` set go to the
 * centre `zero`. Returns one centre index per element.
 */
export function quantizeSequential(
  w: Float32Array,
  out: number,
  d: number,
  u: Float64Array,
  centers: Float32Array,
  mask?: Uint8Array,
  zero = -1,
  arena?: SimdArena,
): Uint8Array | Uint16Array {
  const idx = centers.length <= 256 ? new Uint8Array(w.length) : new Uint16Array(w.length);
  // Rows are independent: a block of them goes through the columns together, so each row of U is read from memory
  // once per block rather than once per row (U is d x d float64, 42 MB at d = 2304). Each row's arithmetic is the
  // same, in the same order, as one row at a time.
  // U and the rows live in an arena (`arena` when it holds `u`) and each row update is one vector kernel call: with
  // WebAssembly SIMD the same products and differences, element by element (../linalg/simd.ts).
  const { arena: vec, a: uu } = holding(arena, u, Math.min(ROW_BLOCK, out) * d);
  const mark = vec.mark();
  const rows = Array.from({ length: Math.min(ROW_BLOCK, out) }, () => vec.array(d));
  const es = new Float64Array(rows.length);
  for (let o0 = 0; o0 < out; o0 += rows.length) {
    const m = Math.min(rows.length, out - o0);
    for (let r = 0; r < m; r++) {
      const base = (o0 + r) * d, row = rows[r];
      for (let j = 0; j < d; j++) row[j] = w[base + j];
    }
    for (let j = 0; j < d; j++) {
      const uj = j * d, ujj = uu[uj + j];
      let any = false;
      for (let r = 0; r < m; r++) {
        const base = (o0 + r) * d, row = rows[r];
        const q = mask && zero >= 0 && mask[base + j] ? zero : nearest(centers, row[j]);
        idx[base + j] = q;
        const e = (row[j] - centers[q]) / ujj;
        es[r] = e;
        if (e !== 0) any = true;
      }
      if (!any) continue;
      for (let r = 0; r < m; r++) {
        const e = es[r];
        if (e === 0) continue;
        const row = rows[r];
        vec.axpy(row, j + 1, uu, uj + j + 1, d - j - 1, e);
      }
    }
  }
  vec.release(mark);
  return idx;
}

/** Rows of W that {@link quantizeSequential} and {@link refineCenters} process together (cache blocking). */
export const ROW_BLOCK = 8;

/**
 * The centres that minimise the output error tr((W - Q) H (W - Q)^T) for fixed assignments `idx` (Q = centres at
 * `idx`): a k x k least-squares system G c = r with G_kl = sum_o 1_ok^T H 1_ol and r_k = sum_o 1_ok^T H w_o
 * (1_ok: the indicator of row o's elements in cluster k). The centre `fixed` (the zero of a sparse tensor) keeps
 * its value. A small ridge keeps centres of tiny clusters near their old value. Returns the new centres (unsorted,
 * unrounded), index for index.
 */
export function refineCenters(
  w: Float32Array,
  out: number,
  d: number,
  h: Float64Array,
  centers: Float32Array,
  idx: ArrayLike<number>,
  fixed = -1,
  arena?: SimdArena,
): Float64Array {
  const k = centers.length;
  const g = new Float64Array(k * k), r = new Float64Array(k);
  // p = E_o^T H per row o (E_o: the one-hot [d, k] of row o's assignments). H and a block of rows' p live in an
  // arena (`arena` when it holds `h`); with WebAssembly SIMD each row of H is added into the block's p while it is in
  // cache (2x the plain loop on VGG16's conv3 layers). The sums are the same, in the same order.
  const { arena: vec, a: hh } = holding(arena, h, Math.min(ROW_BLOCK, out) * k * d);
  const mark = vec.mark();
  const block = vec.simd ? Math.max(1, Math.min(ROW_BLOCK, out)) : 1;
  const ps = Array.from({ length: block }, () => vec.array(k * d));
  for (let o0 = 0; o0 < out; o0 += block) {
    const m = Math.min(block, out - o0);
    for (let b = 0; b < m; b++) ps[b].fill(0);
    for (let i = 0; i < d; i++) {
      const hi = i * d;
      for (let b = 0; b < m; b++) {
        const p = ps[b], pc = idx[(o0 + b) * d + i] * d;
        vec.add(p, pc, hh, hi, d);
      }
    }
    for (let b = 0; b < m; b++) {
      const p = ps[b], base = (o0 + b) * d;
      for (let c = 0; c < k; c++) {
        const pc = c * d;
        let any = false;
        for (let j = 0; j < d && !any; j++) any = p[pc + j] !== 0;
        if (!any) continue;
        let rc = 0;
        for (let j = 0; j < d; j++) {
          const v = p[pc + j];
          rc += v * w[base + j];
          g[c * k + idx[base + j]] += v;
        }
        r[c] += rc;
      }
    }
  }
  vec.release(mark);
  // Fixed centre: move its column to the right-hand side; ridge towards the old centres.
  let trace = 0;
  for (let c = 0; c < k; c++) trace += g[c * k + c];
  const lambda = 1e-6 * (trace / k || 1);
  const free = [...Array(k).keys()].filter((c) => c !== fixed);
  const n = free.length;
  const a = new Float64Array(n * n), b = new Float64Array(n);
  free.forEach((c, i) => {
    b[i] = r[c] + lambda * centers[c] - (fixed >= 0 ? g[c * k + fixed] * centers[fixed] : 0);
    free.forEach((l, j) => (a[i * n + j] = g[c * k + l] + (i === j ? lambda : 0)));
  });
  const x = solveSpd(a, b, n);
  const outC = Float64Array.from(centers);
  free.forEach((c, i) => (outC[c] = x[i]));
  return outC;
}

/** Solves the symmetric positive definite system A x = b (n x n) by Cholesky. */
function solveSpd(a: Float64Array, b: Float64Array, n: number): Float64Array {
  cholesky(a, n);
  const y = Float64Array.from(b);
  for (let i = 0; i < n; i++) {
    let s = y[i];
    for (let k = 0; k < i; k++) s -= a[i * n + k] * y[k];
    y[i] = s / a[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = y[i];
    for (let k = i + 1; k < n; k++) s -= a[k * n + i] * y[k];
    y[i] = s / a[i * n + i];
  }
  return y;
}
