/**
 * The pruning calibrator's products (./calibrate.ts), each on tfjs and on ONNX Runtime: the sensitivity curve of a
 * producer's channels measured at its consumer (||A_R W_R^T||^2 / ||A W^T||^2 as the lowest-scored channels go), and
 * the least-squares fit of a consumer on its kept input channels (Gram matrices, a ridge solve, the residuals before
 * and after).
 *
 * @module
 */
import type { LayerExecutor } from "../eval/executor.ts";
import { gemm } from "../linalg/gemm.ts";
import { ortGemm } from "../linalg/ort_gemm.ts";
import type { TfTensor } from "../linalg/tf.ts";
import { releaseMemory } from "../memory.ts";
import { ridgeSolve, ridgeSolveFast } from "./lstsq.ts";

type Tf = LayerExecutor["tf"];

/**
 * The sensitivity curve's measured points: r -> ||A_R W_R^T||^2 / ||A W^T||^2 for R = the first r channels of
 * `order`, r by `slice`s (A [rows, d], W [out, d], `block` columns per channel). tfjs products (no ONNX Runtime).
 */
export function curveTf(
  tf: Tf,
  a: Float32Array,
  wData: Float32Array,
  rows: number,
  d: number,
  out: number,
  order: number[],
  block: number,
  slice: number,
): Map<number, number> {
  const channels = order.length;
  const at = new Map<number, number>([[0, 0]]);
  const ta = tf.tensor2d(a, [rows, d]), tw = tf.tensor2d(wData, [out, d]);
  try {
    const norm = tf.tidy(() => tf.sum(tf.square(tf.matMul(ta, tw, false, true))).dataSync()[0]) || 1;
    let delta: TfTensor = tf.zeros([rows, out]);
    for (let r = 0; r < channels;) {
      const next = Math.min(channels, r + slice);
      const cols: number[] = [];
      for (let i = r; i < next; i++) for (let j = 0; j < block; j++) cols.push(order[i] * block + j);
      const updated = tf.tidy(() => {
        const idx = tf.tensor1d(cols, "int32");
        return tf.add(delta, tf.matMul(tf.gather(ta, idx, 1), tf.gather(tw, idx, 1), false, true));
      });
      delta.dispose();
      delta = updated;
      at.set(next, tf.tidy(() => tf.sum(tf.square(delta)).dataSync()[0]) / norm);
      r = next;
    }
    delta.dispose();
  } finally {
    ta.dispose();
    tw.dispose();
  }
  return at;
}

/** C = op(A) op(B) on ONNX Runtime (all cores), else ../linalg/gemm.ts. */
async function mm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Promise<Float32Array> {
  return (await ortGemm(a, b, m, k, n, transA, transB)) ?? (await gemm(a, b, m, k, n, { transA, transB }));
}

/** Sum of squares (float64 accumulation). */
function sumSq(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * {@link curveTf} with ONNX Runtime's products: A and W are transposed once with their columns in `order`, so each
 * slice of channels is a contiguous block of rows of both, and its product A_s W_s^T is added to the running sum.
 */
export async function curveOrt(
  a: Float32Array,
  wData: Float32Array,
  rows: number,
  d: number,
  out: number,
  order: number[],
  block: number,
  slice: number,
): Promise<Map<number, number>> {
  const channels = order.length;
  const at = new Map<number, number>([[0, 0]]);
  const norm = sumSq(await mm(a, wData, rows, d, out, false, true)) || 1;
  const apT = new Float32Array(d * rows), wpT = new Float32Array(d * out);
  let c = 0;
  for (const ch of order) {
    for (let j = 0; j < block; j++, c++) {
      const col = ch * block + j;
      for (let r = 0, base = c * rows; r < rows; r++) apT[base + r] = a[r * d + col];
      for (let o = 0, base = c * out; o < out; o++) wpT[base + o] = wData[o * d + col];
    }
  }
  const delta = new Float32Array(rows * out);
  for (let r = 0; r < channels;) {
    const next = Math.min(channels, r + slice);
    const k = (next - r) * block;
    const p = await mm(
      apT.subarray(r * block * rows, next * block * rows),
      wpT.subarray(r * block * out, next * block * out),
      rows,
      k,
      out,
      true,
      false,
    );
    for (let i = 0; i < delta.length; i++) delta[i] += p[i];
    at.set(next, sumSq(delta) / norm);
    r = next;
  }
  return at;
}

/** The least-squares system of a rewrite: A [rows, d] over all columns, the kept columns, and the prior. */
export interface FitSystem {
  /** The rows over all columns; {@link solveOrt} drops them (sets an empty array) once the kept columns are out. */
  a: Float32Array;
  rows: number;
  d: number;
  out: number;
  wData: Float32Array;
  bias?: Float32Array;
  keptCols: number[];
  /** Unknowns per output: the kept columns (+ 1 for the bias). */
  dk: number;
  /** theta0 [dk, out]. */
  prior: Float64Array;
  /** The reference output instead of A W^T + b (GAP refit). */
  gapRef?: { y: Float32Array; out: number };
  ridge: number;
}

export interface Fitted {
  theta: Float64Array;
  /** Squared relative errors. */
  errBefore: number;
  errAfter: number;
}

/** Solves a {@link FitSystem} with tfjs products; undefined when the reference output does not match. */
export async function solveTf(tf: Tf, s: FitSystem): Promise<Fitted | undefined> {
  const { a, rows, d, out, wData, bias, keptCols, dk, prior, gapRef } = s;
  const ta = tf.tensor2d(a, [rows, d]);
  let gram: Float64Array, rhs: Float64Array, errBefore: number, yNorm: number;
  let ak: TfTensor | undefined, ty: TfTensor | undefined;
  try {
    ty = gapRef ? tf.tensor2d(gapRef.y, [gapRef.y.length / gapRef.out, gapRef.out]) : tf.tidy(() => {
      const y = tf.matMul(ta, tf.tensor2d(wData, [out, d]), false, true);
      return bias ? tf.add(y, tf.tensor1d(bias)) : y;
    });
    if (ty.shape[0] !== rows || ty.shape[1] !== out) {
      ty.dispose();
      return undefined;
    }
    ak = tf.tidy(() => {
      const g = tf.gather(ta, tf.tensor1d(keptCols, "int32"), 1);
      return bias ? tf.concat([g, tf.ones([rows, 1])], 1) : g;
    });
    const [g, r] = tf.tidy(() => [tf.matMul(ak!, ak!, true, false), tf.matMul(ak!, ty!, true, false)]);
    gram = Float64Array.from(await g.data());
    rhs = Float64Array.from(await r.data());
    g.dispose();
    r.dispose();
    yNorm = tf.tidy(() => tf.sum(tf.square(ty!)).dataSync()[0]) || 1;
    errBefore = residual(tf, ak, ty, prior, dk, out) / yNorm;
  } finally {
    ta.dispose();
  }
  const { x: theta } = ridgeSolve(gram, rhs, dk, out, { ridge: s.ridge, prior });
  const errAfter = residual(tf, ak, ty, theta, dk, out) / yNorm;
  ak.dispose();
  ty.dispose();
  return { theta, errBefore, errAfter };
}

/**
 * The target Y = A W^T + b (or the GAP refit's reference) and A_k, the kept columns of A (+ a ones column); then
 * A itself is dropped from `s` (VGG16's conv4_2: 151 MB), so nothing holds it once this returns.
 */
async function keptSystem(s: FitSystem): Promise<{ ty: Float32Array; ak: Float32Array } | undefined> {
  const { a, rows, d, out, wData, bias, keptCols, dk, gapRef } = s;
  let ty: Float32Array;
  if (gapRef) {
    if (gapRef.out !== out || gapRef.y.length !== rows * out) return undefined;
    ty = gapRef.y;
  } else {
    ty = await mm(a, wData, rows, d, out, false, true);
    if (bias) { for (let r = 0; r < rows; r++) for (let o = 0; o < out; o++) ty[r * out + o] += bias[o]; }
  }
  const ak = new Float32Array(rows * dk);
  for (let r = 0; r < rows; r++) {
    const src = r * d, dst = r * dk;
    for (let i = 0; i < keptCols.length; i++) ak[dst + i] = a[src + keptCols[i]];
    if (bias) ak[dst + dk - 1] = 1;
  }
  s.a = new Float32Array(0);
  return { ty, ak };
}

/** Solves a {@link FitSystem} with ONNX Runtime's products (float64 sums). */
export async function solveOrt(s: FitSystem): Promise<Fitted | undefined> {
  const { rows, out, dk, prior } = s;
  const kept = await keptSystem(s);
  if (!kept) return undefined;
  const { ty, ak } = kept;
  releaseMemory(); // A, before the Gram matrices
  const gram = Float64Array.from(await mm(ak, ak, dk, rows, dk, true, false));
  const rhs = Float64Array.from(await mm(ak, ty, dk, rows, out, true, false));
  const yNorm = sumSq(ty) || 1;
  const resid = async (theta: Float64Array) => {
    const p = await mm(ak, Float32Array.from(theta), rows, dk, out);
    let e = 0;
    for (let i = 0; i < p.length; i++) e += (p[i] - ty[i]) * (p[i] - ty[i]);
    return e;
  };
  const errBefore = (await resid(prior)) / yNorm;
  const { x: theta } = await ridgeSolveFast(gram, rhs, dk, out, { ridge: s.ridge, prior });
  return { theta, errBefore, errAfter: (await resid(theta)) / yNorm };
}

function residual(
  tf: Tf,
  a: TfTensor,
  y: TfTensor,
  theta: Float64Array,
  dk: number,
  out: number,
): number {
  return tf.tidy(() => {
    const p = tf.matMul(a, tf.tensor2d(Float32Array.from(theta), [dk, out]));
    return tf.sum(tf.square(tf.sub(p, y))).dataSync()[0];
  });
}

/** The two product paths, for tests (tfjs and ONNX Runtime must agree). @internal */
export const _products = { curveTf, curveOrt, solveTf, solveOrt };
