/**
 * Ridge least squares for calibration: solves (G + lambda I) X = R + lambda X0 for X [d, m], given the Gram matrix
 * G = A^T A [d, d] and R = A^T Y [d, m] of a least-squares problem min ||A X - Y||^2 + lambda ||X - X0||^2. The
 * prior X0 (the weights before the change) keeps the solution near the original where the calibration data says
 * nothing (fewer samples than unknowns, dead channels).
 *
 * Plain float64 Cholesky on flat row-major arrays: d is at most a few thousand (a consumer's kept inputs times its
 * kernel area), so an O(d^3 / 3) factorization is seconds at worst.
 *
 * @module
 */
import {
  BLOCKED_MIN,
  blockedAvailable,
  cholesky,
  choleskyBlocked,
  solveLowerBlocked,
  solveUpperBlocked,
  subtract4,
  transposeSquare,
} from "../linalg/cholesky.ts";

export { cholesky, subtract4 };

/** Result of {@link ridgeSolve}. */
export interface RidgeSolution {
  /** The solution X [d, m], row-major. */
  x: Float64Array;
  /** The ridge used (absolute). */
  lambda: number;
}

/** Adds the ridge to G's diagonal; returns it and R + lambda X0. */
function regularize(
  gram: Float64Array,
  rhs: Float64Array,
  d: number,
  options: { ridge?: number; prior?: Float64Array },
): { b: Float64Array; lambda: number } {
  let trace = 0;
  for (let i = 0; i < d; i++) trace += gram[i * d + i];
  const lambda = Math.max((options.ridge ?? 1e-3) * (trace / Math.max(1, d)), 1e-12);
  for (let i = 0; i < d; i++) gram[i * d + i] += lambda;
  const b = new Float64Array(rhs);
  if (options.prior) { for (let i = 0; i < b.length; i++) b[i] += lambda * options.prior[i]; }
  return { b, lambda };
}

/**
 * {@link ridgeSolve} with the blocked factor and solves of ../linalg/cholesky.ts (float64 products on ONNX Runtime)
 * from {@link BLOCKED_MIN} unknowns on, where the loops take seconds (VGG16's conv4_1 refit: 2188 unknowns, 512
 * outputs); below that, or without ONNX Runtime, exactly {@link ridgeSolve}.
 */
export async function ridgeSolveFast(
  gram: Float64Array,
  rhs: Float64Array,
  d: number,
  m: number,
  options: { ridge?: number; prior?: Float64Array } = {},
): Promise<RidgeSolution> {
  if (d < BLOCKED_MIN || !(await blockedAvailable())) return ridgeSolve(gram, rhs, d, m, options);
  const { b, lambda } = regularize(gram, rhs, d, options);
  await choleskyBlocked(gram, d);
  const z = await solveLowerBlocked(gram, d, b, m);
  transposeSquare(gram, d);
  return { x: await solveUpperBlocked(gram, d, z, m), lambda };
}

/**
 * Solves the ridge problem. `ridge` is relative to the mean diagonal of G (default 1e-3); `prior` is X0 (default 0).
 * G is overwritten by its Cholesky factor.
 */
export function ridgeSolve(
  gram: Float64Array,
  rhs: Float64Array,
  d: number,
  m: number,
  options: { ridge?: number; prior?: Float64Array } = {},
): RidgeSolution {
  const { b, lambda } = regularize(gram, rhs, d, options);
  cholesky(gram, d);
  // Forward: L z = b; backward: L^T x = z. Row-oriented so the inner loops run over m contiguous values, four rows
  // of L at a time (each element is still reduced in the same order, so the result does not depend on the blocking).
  for (let i = 0; i < d; i++) {
    const bi = i * m;
    let k = 0;
    for (; k + 3 < i; k += 4) {
      const r = i * d + k;
      subtract4(b, bi, m, gram[r], k * m, gram[r + 1], (k + 1) * m, gram[r + 2], (k + 2) * m, gram[r + 3], (k + 3) * m);
    }
    for (; k < i; k++) {
      const l = gram[i * d + k];
      if (l === 0) continue;
      const bk = k * m;
      for (let j = 0; j < m; j++) b[bi + j] -= l * b[bk + j];
    }
    const inv = 1 / gram[i * d + i];
    for (let j = 0; j < m; j++) b[bi + j] *= inv;
  }
  for (let i = d - 1; i >= 0; i--) {
    const bi = i * m;
    let k = i + 1;
    for (; k + 3 < d; k += 4) {
      const c = k * d + i;
      subtract4(
        b,
        bi,
        m,
        gram[c],
        k * m,
        gram[c + d],
        (k + 1) * m,
        gram[c + 2 * d],
        (k + 2) * m,
        gram[c + 3 * d],
        (k + 3) * m,
      );
    }
    for (; k < d; k++) {
      const l = gram[k * d + i];
      if (l === 0) continue;
      const bk = k * m;
      for (let j = 0; j < m; j++) b[bi + j] -= l * b[bk + j];
    }
    const inv = 1 / gram[i * d + i];
    for (let j = 0; j < m; j++) b[bi + j] *= inv;
  }
  return { x: b, lambda };
}
