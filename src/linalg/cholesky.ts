/**
 * Cholesky factors and triangular solves on flat row-major float64 arrays, for the calibration's least-squares fits
 * and GPTQ's inverse Hessians (d up to a few thousand).
 *
 * Two ways: plain loops ({@link cholesky}, in this thread), and blocked forms whose work is almost all in float64
 * products on ONNX Runtime ({@link choleskyBlocked}, {@link solveLowerBlocked}, {@link solveUpperBlocked},
 * {@link invertLowerBlocked}; MLAS's double kernels on all cores, about 13x the loops on this machine for d = 2188).
 * The blocked forms sum in another order, so their results differ from the loops' in the last bits: callers use them
 * only above {@link BLOCKED_MIN}, so that small models' outputs stay as they were.
 *
 * @module
 */
import { ortGemm64 } from "./ort_gemm.ts";
import { releaseMemory } from "../memory.ts";

/** Dimensions from which the blocked forms are used (when ONNX Runtime is there). */
export const BLOCKED_MIN = 1025;

/** Rows and columns per block of the blocked forms. */
const NB = 256;

/**
 * b[bi..bi+m) -= l0 b[k0..] + l1 b[k1..] + l2 b[k2..] + l3 b[k3..], subtracting the four terms one after the other
 * (the order of the one-row loop, so the blocking changes no rounding).
 */
export function subtract4(
  b: Float64Array,
  bi: number,
  m: number,
  l0: number,
  k0: number,
  l1: number,
  k1: number,
  l2: number,
  k2: number,
  l3: number,
  k3: number,
): void {
  for (let j = 0; j < m; j++) {
    let v = b[bi + j];
    v -= l0 * b[k0 + j];
    v -= l1 * b[k1 + j];
    v -= l2 * b[k2 + j];
    v -= l3 * b[k3 + j];
    b[bi + j] = v;
  }
}

/**
 * In-place lower Cholesky factor of a symmetric positive definite d x d matrix (the upper part is left as is). The
 * dot products of column j run four rows at a time, so row j is read once for four of them (each product still sums
 * in the order of k). A pivot that is not positive (numerically singular despite a ridge) becomes 1e-300.
 */
export function cholesky(a: Float64Array, d: number): void {
  for (let j = 0; j < d; j++) {
    const rj = j * d;
    let s = a[rj + j];
    for (let k = 0; k < j; k++) s -= a[rj + k] * a[rj + k];
    if (!(s > 0)) s = 1e-300; // numerically singular despite the ridge: keep going, the prior dominates
    const l = Math.sqrt(s);
    a[rj + j] = l;
    const inv = 1 / l;
    let i = j + 1;
    for (; i + 3 < d; i += 4) {
      const r0 = i * d, r1 = r0 + d, r2 = r1 + d, r3 = r2 + d;
      let t0 = a[r0 + j], t1 = a[r1 + j], t2 = a[r2 + j], t3 = a[r3 + j];
      for (let k = 0; k < j; k++) {
        const v = a[rj + k];
        t0 -= a[r0 + k] * v;
        t1 -= a[r1 + k] * v;
        t2 -= a[r2 + k] * v;
        t3 -= a[r3 + k] * v;
      }
      a[r0 + j] = t0 * inv;
      a[r1 + j] = t1 * inv;
      a[r2 + j] = t2 * inv;
      a[r3 + j] = t3 * inv;
    }
    for (; i < d; i++) {
      const ri = i * d;
      let t = a[ri + j];
      for (let k = 0; k < j; k++) t -= a[ri + k] * a[rj + k];
      a[ri + j] = t * inv;
    }
  }
}

/** C = op(A) op(B) in float64 on ONNX Runtime; throws when it is not there (callers check {@link blockedAvailable}). */
async function mm(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Promise<Float64Array> {
  const c = await ortGemm64(a, b, m, k, n, transA, transB);
  if (!c) throw new Error("float64 products need ONNX Runtime");
  // Products live in ONNX Runtime's buffers, which V8 frees only when it collects their arrays, and it does not
  // count them towards a collection: without this a d = 2188 factor left about 70 MB of them resident.
  garbage += c.byteLength;
  if (garbage >= GARBAGE_BYTES) {
    garbage = 0;
    releaseMemory();
  }
  return c;
}

/** Bytes of products made since the last collection. */
let garbage = 0;
const GARBAGE_BYTES = 24 << 20;

let available: Promise<boolean> | undefined;

/** True when the blocked forms can run (ONNX Runtime loads and runs a float64 product). */
export function blockedAvailable(): Promise<boolean> {
  available ??= (async () => {
    try {
      const c = await ortGemm64(new Float64Array([1, 2]), new Float64Array([3, 4]), 1, 2, 1);
      return c?.[0] === 11;
    } catch {
      return false;
    }
  })();
  return available;
}

/** The inverse of the w x w lower-triangular block of `l` (row stride d) at (i0, i0), row-major. */
function invertSmallLower(l: Float64Array, d: number, i0: number, w: number): Float64Array {
  const x = new Float64Array(w * w);
  for (let i = 0; i < w; i++) {
    const li = (i0 + i) * d + i0;
    const inv = 1 / l[li + i];
    x[i * w + i] = inv;
    for (let j = 0; j < i; j++) {
      let s = 0;
      for (let k = j; k < i; k++) s += l[li + k] * x[k * w + j];
      x[i * w + j] = -s * inv;
    }
  }
  return x;
}

/**
 * The lower Cholesky factor of `a` (d x d, symmetric positive definite; only its lower part is read), written over
 * `a` with its upper part set to zero. Left-looking by blocks of columns: a block's update from the columns before
 * it is one product of whole rows of `a`, the rows of the block zeroed right of the factor so far first (the later
 * rows' unfactored values then meet only zeros). The diagonal block is factored by {@link cholesky} and the block
 * below it multiplied by the inverse of that factor.
 */
export async function choleskyBlocked(a: Float64Array, d: number): Promise<void> {
  for (let k0 = 0; k0 < d; k0 += NB) {
    const k1 = Math.min(d, k0 + NB), w = k1 - k0, rows = d - k0;
    // S = A[k0:, k0:k1] - L[k0:, :k0] L[k0:k1, :k0]^T
    const s = new Float64Array(rows * w);
    for (let i = 0; i < rows; i++) {
      const src = (k0 + i) * d + k0;
      for (let j = 0; j < w; j++) s[i * w + j] = a[src + j];
    }
    for (let i = k0; i < k1; i++) a.fill(0, i * d + k0, (i + 1) * d);
    if (k0 > 0) {
      const p = await mm(a.subarray(k0 * d), a.subarray(k0 * d, k1 * d), rows, d, w, false, true);
      for (let i = 0; i < s.length; i++) s[i] -= p[i];
    }
    const diag = s.slice(0, w * w);
    cholesky(diag, w);
    for (let i = 0; i < w; i++) {
      for (let j = 0; j <= i; j++) a[(k0 + i) * d + k0 + j] = diag[i * w + j];
    }
    if (rows > w) {
      // L21 = S21 L11^-T
      const inv = invertSmallLower(a, d, k0, w);
      const l21 = await mm(s.subarray(w * w), inv, rows - w, w, w, false, true);
      for (let i = 0; i < rows - w; i++) {
        const dst = (k1 + i) * d + k0;
        for (let j = 0; j < w; j++) a[dst + j] = l21[i * w + j];
      }
    }
  }
}

/**
 * Solves L X = B for X (d x m) with L lower triangular with zeros above its diagonal (d x d). Forward by blocks of
 * rows: each block's right-hand side loses L's whole rows times the solution so far (still zero from the block on).
 * `"identity"` stands for B = I (d x d) without making it.
 */
export async function solveLowerBlocked(
  l: Float64Array,
  d: number,
  b: Float64Array | "identity",
  m: number,
): Promise<Float64Array> {
  const x = new Float64Array(d * m);
  for (let i0 = 0; i0 < d; i0 += NB) {
    const i1 = Math.min(d, i0 + NB), w = i1 - i0;
    let r: Float64Array;
    if (b === "identity") {
      r = new Float64Array(w * m);
      for (let i = 0; i < w; i++) r[i * m + i0 + i] = 1;
    } else r = b.slice(i0 * m, i1 * m);
    if (i0 > 0) {
      const p = await mm(l.subarray(i0 * d, i1 * d), x, w, d, m);
      for (let i = 0; i < r.length; i++) r[i] -= p[i];
    }
    x.set(await mm(invertSmallLower(l, d, i0, w), r, w, w, m), i0 * m);
  }
  return x;
}

/**
 * Solves U X = B for X (d x m) with U = `ut` upper triangular with zeros below its diagonal (d x d). Backward by
 * blocks of rows, as {@link solveLowerBlocked}.
 */
export async function solveUpperBlocked(u: Float64Array, d: number, b: Float64Array, m: number): Promise<Float64Array> {
  const x = new Float64Array(d * m);
  const starts: number[] = [];
  for (let i0 = 0; i0 < d; i0 += NB) starts.push(i0);
  for (const i0 of starts.reverse()) {
    const i1 = Math.min(d, i0 + NB), w = i1 - i0;
    const r = b.slice(i0 * m, i1 * m);
    if (i1 < d) {
      const p = await mm(u.subarray(i0 * d, i1 * d), x, w, d, m);
      for (let i = 0; i < r.length; i++) r[i] -= p[i];
    }
    // The block's inverse: (U_ii)^-1 = ((U_ii)^T)^-1 transposed, and (U_ii)^T is lower.
    const lt = new Float64Array(w * w);
    for (let i = 0; i < w; i++) for (let j = 0; j <= i; j++) lt[i * w + j] = u[(i0 + j) * d + i0 + i];
    const inv = invertSmallLower(lt, w, 0, w);
    x.set(await mm(inv, r, w, w, m, true, false), i0 * m);
  }
  return x;
}

/** L^-1 for L lower triangular with zeros above its diagonal (d x d): {@link solveLowerBlocked} with B = I. */
export function invertLowerBlocked(l: Float64Array, d: number): Promise<Float64Array> {
  return solveLowerBlocked(l, d, "identity", d);
}

/** Transposes a square d x d matrix in place. */
export function transposeSquare(a: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const t = a[i * d + j];
      a[i * d + j] = a[j * d + i];
      a[j * d + i] = t;
    }
  }
}
