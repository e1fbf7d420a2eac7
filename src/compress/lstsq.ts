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

/** Result of {@link ridgeSolve}. */
export interface RidgeSolution {
  /** The solution X [d, m], row-major. */
  x: Float64Array;
  /** The ridge used (absolute). */
  lambda: number;
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
  let trace = 0;
  for (let i = 0; i < d; i++) trace += gram[i * d + i];
  const lambda = Math.max((options.ridge ?? 1e-3) * (trace / Math.max(1, d)), 1e-12);
  for (let i = 0; i < d; i++) gram[i * d + i] += lambda;
  const b = new Float64Array(rhs);
  if (options.prior) { for (let i = 0; i < b.length; i++) b[i] += lambda * options.prior[i]; }
  cholesky(gram, d);
  // Forward: L z = b; backward: L^T x = z. Row-oriented so the inner loops run over m contiguous values.
  for (let i = 0; i < d; i++) {
    const bi = i * m;
    for (let k = 0; k < i; k++) {
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
    for (let k = i + 1; k < d; k++) {
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

/** In-place lower Cholesky factor of a symmetric positive definite d x d matrix (the upper part is left as is). */
export function cholesky(a: Float64Array, d: number): void {
  for (let j = 0; j < d; j++) {
    const rj = j * d;
    let s = a[rj + j];
    for (let k = 0; k < j; k++) s -= a[rj + k] * a[rj + k];
    if (!(s > 0)) s = 1e-300; // numerically singular despite the ridge: keep going, the prior dominates
    const l = Math.sqrt(s);
    a[rj + j] = l;
    const inv = 1 / l;
    for (let i = j + 1; i < d; i++) {
      const ri = i * d;
      let t = a[ri + j];
      for (let k = 0; k < j; k++) t -= a[ri + k] * a[rj + k];
      a[ri + j] = t * inv;
    }
  }
}
