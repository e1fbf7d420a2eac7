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
 * in the order of k).
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
