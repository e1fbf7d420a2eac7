/**
 * Truncated SVD of a dense row-major matrix by the randomized range finder (Halko, Martinsson and Tropp 2011):
 * sketch the range with a Gaussian test matrix, refine it with power iterations, and solve the small problem in the
 * sketched subspace. The big products are tight typed-array loops in float64; the small core (an l x l symmetric
 * eigenproblem, l = rank + oversampling) goes to ml-matrix.
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";

/** The factors of W ~ U diag(S) Vt, row-major. */
export interface TruncatedSvd {
  /** m x k */
  u: Float64Array;
  /** k singular values, descending */
  s: Float64Array;
  /** k x n */
  vt: Float64Array;
  m: number;
  n: number;
  k: number;
}

/** Options of {@link randomizedSvd}. */
export interface SvdOptions {
  /** Extra sketch columns beyond the rank (default 10). */
  oversample?: number;
  /** Power iterations (default 2). */
  powerIterations?: number;
  /** Seed of the Gaussian test matrix. */
  seed?: number;
}

/** Y (m x l) = W (m x n) X (n x l). */
export function matmul(w: ArrayLike<number>, m: number, n: number, x: Float64Array, l: number): Float64Array {
  const y = new Float64Array(m * l);
  for (let i = 0; i < m; i++) {
    const yi = i * l, wi = i * n;
    for (let j = 0; j < n; j++) {
      const a = w[wi + j];
      if (a === 0) continue;
      const xj = j * l;
      for (let c = 0; c < l; c++) y[yi + c] += a * x[xj + c];
    }
  }
  return y;
}

/** Z (n x l) = W^T (n x m) Y (m x l), for W m x n. */
export function matmulT(w: ArrayLike<number>, m: number, n: number, y: Float64Array, l: number): Float64Array {
  const z = new Float64Array(n * l);
  for (let i = 0; i < m; i++) {
    const yi = i * l, wi = i * n;
    for (let j = 0; j < n; j++) {
      const a = w[wi + j];
      if (a === 0) continue;
      const zj = j * l;
      for (let c = 0; c < l; c++) z[zj + c] += a * y[yi + c];
    }
  }
  return z;
}

/** Orthonormalizes the columns of a (rows x cols, row-major) in place: modified Gram-Schmidt, twice. */
export function orthonormalize(a: Float64Array, rows: number, cols: number): void {
  const col = new Float64Array(rows);
  for (let pass = 0; pass < 2; pass++) {
    for (let c = 0; c < cols; c++) {
      for (let r = 0; r < rows; r++) col[r] = a[r * cols + c];
      for (let p = 0; p < c; p++) {
        let dot = 0;
        for (let r = 0; r < rows; r++) dot += col[r] * a[r * cols + p];
        for (let r = 0; r < rows; r++) col[r] -= dot * a[r * cols + p];
      }
      let norm = 0;
      for (let r = 0; r < rows; r++) norm += col[r] * col[r];
      norm = Math.sqrt(norm);
      const inv = norm > 1e-300 ? 1 / norm : 0;
      for (let r = 0; r < rows; r++) a[r * cols + c] = col[r] * inv;
    }
  }
}

function gaussian(seed: number): () => number {
  let s = seed >>> 0 || 1;
  const uni = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(uni())) * Math.cos(2 * Math.PI * uni());
}

/**
 * The top-`k` singular triplets of W (m x n, row-major). Exact (to rounding) when k + oversampling reaches
 * min(m, n).
 */
export function randomizedSvd(
  w: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
  options: SvdOptions = {},
): TruncatedSvd {
  const l = Math.min(m, n, k + (options.oversample ?? 10));
  k = Math.min(k, l);
  const rand = gaussian(options.seed ?? 12345);
  const omega = new Float64Array(n * l);
  for (let i = 0; i < omega.length; i++) omega[i] = rand();
  let q = matmul(w, m, n, omega, l);
  orthonormalize(q, m, l);
  for (let it = 0; it < (options.powerIterations ?? 2); it++) {
    const z = matmulT(w, m, n, q, l);
    orthonormalize(z, n, l);
    q = matmul(w, m, n, z, l);
    orthonormalize(q, m, l);
  }
  // B = Q^T W (l x n), computed as (W^T Q)^T.
  const bt = matmulT(w, m, n, q, l); // n x l
  // C = B B^T (l x l) = bt^T bt.
  const c = new Float64Array(l * l);
  for (let j = 0; j < n; j++) {
    const row = j * l;
    for (let a = 0; a < l; a++) {
      const v = bt[row + a];
      if (v === 0) continue;
      for (let b = a; b < l; b++) c[a * l + b] += v * bt[row + b];
    }
  }
  for (let a = 0; a < l; a++) for (let b = 0; b < a; b++) c[a * l + b] = c[b * l + a];
  const rows: number[][] = [];
  for (let a = 0; a < l; a++) rows.push(Array.from(c.subarray(a * l, (a + 1) * l)));
  const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
  const vals = evd.realEigenvalues;
  const vecs = evd.eigenvectorMatrix;
  const order = vals.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
  const s = new Float64Array(k);
  const ub = new Float64Array(l * k); // l x k eigenvectors of C
  for (let t = 0; t < k; t++) {
    s[t] = Math.sqrt(Math.max(0, vals[order[t]]));
    for (let a = 0; a < l; a++) ub[a * k + t] = vecs.get(a, order[t]);
  }
  // U = Q ub (m x k)
  const u = new Float64Array(m * k);
  for (let i = 0; i < m; i++) {
    for (let a = 0; a < l; a++) {
      const v = q[i * l + a];
      if (v === 0) continue;
      for (let t = 0; t < k; t++) u[i * k + t] += v * ub[a * k + t];
    }
  }
  // Vt = diag(1/s) ub^T B, i.e. Vt[t][j] = (1/s_t) sum_a ub[a][t] * bt[j][a]
  const vt = new Float64Array(k * n);
  for (let j = 0; j < n; j++) {
    for (let t = 0; t < k; t++) {
      let acc = 0;
      for (let a = 0; a < l; a++) acc += ub[a * k + t] * bt[j * l + a];
      vt[t * n + j] = s[t] > 1e-300 ? acc / s[t] : 0;
    }
  }
  return { u, s, vt, m, n, k };
}
