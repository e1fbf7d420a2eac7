/**
 * Truncated SVD of a dense row-major matrix by the randomized range finder (Halko, Martinsson and Tropp 2011):
 * sketch the range with a Gaussian test matrix, refine it with power iterations, and solve the small problem in the
 * sketched subspace. The big products (W times thin matrices) run in tfjs-wasm by blocks of rows, or in typed-array
 * loops when wasm is unavailable (./gemm.ts); the small core (an l x l symmetric eigenproblem, l = rank +
 * oversampling) goes to ml-matrix.
 *
 * @module
 */
import { EigenvalueDecomposition, Matrix } from "ml-matrix";
import { gemm, gemmJs, tfHandle, transpose } from "./gemm.ts";
import { gemmOrt, ortGemm } from "./ort_gemm.ts";
import { releaseMemory, trimMemory } from "../memory.ts";

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
 * Orthonormal columns spanning those of a (rows x cols, float32) by CholeskyQR2: R = chol(AᵀA), Q = A R⁻¹, done
 * twice for stability. The products go through {@link gemm}; only the cols x cols factor is small work. Falls back
 * to Gram-Schmidt when A is numerically rank-deficient.
 */
async function orth(a: Float32Array, rows: number, cols: number): Promise<Float32Array> {
  let q = a;
  for (let pass = 0; pass < 2; pass++) {
    const g = await gemm(q, q, cols, rows, cols, { transA: true });
    const rinv = choleskyInverse(g, cols);
    if (!rinv) {
      const d = Float64Array.from(a);
      orthonormalize(d, rows, cols);
      return Float32Array.from(d);
    }
    q = await gemm(q, rinv, rows, cols, cols);
  }
  return q;
}

/** R⁻¹ (upper triangular, row-major float32) for the Cholesky factor R of g = RᵀR, or undefined if g is not SPD. */
function choleskyInverse(g: Float32Array, n: number): Float32Array | undefined {
  const l = new Float64Array(n * n); // lower: g = L Lᵀ, R = Lᵀ
  for (let j = 0; j < n; j++) {
    let d = g[j * n + j];
    for (let p = 0; p < j; p++) d -= l[j * n + p] * l[j * n + p];
    if (!(d > 1e-10 * (Math.abs(g[j * n + j]) + 1e-30))) return undefined;
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let v = g[i * n + j];
      for (let p = 0; p < j; p++) v -= l[i * n + p] * l[j * n + p];
      l[i * n + j] = v / ljj;
    }
  }
  // Invert L (lower) by forward substitution, one column of L⁻¹ at a time (contiguous reads of L's rows): column c
  // of L⁻¹ is row c of R⁻¹ = (L⁻¹)ᵀ.
  const out = new Float32Array(n * n);
  const x = new Float64Array(n);
  for (let c = 0; c < n; c++) {
    for (let i = c; i < n; i++) {
      let v = i === c ? 1 : 0;
      const li = i * n;
      for (let p = c; p < i; p++) v -= l[li + p] * x[p];
      x[i] = v / l[li + i];
      out[c * n + i] = x[i];
    }
  }
  return out;
}

/** Products with a fixed matrix W (m x n): W X, and Yᵀ W. */
interface MatrixOperator {
  /** W X for X (n x l), giving m x l. */
  mul(x: Float32Array, l: number): Promise<Float32Array>;
  /** Yᵀ W for Yᵀ given as (l x m), giving l x n. */
  tmul(yt: Float32Array, l: number): Promise<Float32Array>;
  dispose(): void;
}

/** Rows of W per block sent to tfjs: about 8 MiB, so its heap (which never shrinks) stays small. */
const BLOCK_BYTES = 8 << 20;

/**
 * W's products with thin matrices, by blocks of rows: each block goes to tfjs-wasm when it is available (fast,
 * and the wasm heap holds one block), else to a typed-array loop.
 */
async function operatorOf(w: Float32Array, m: number, n: number): Promise<MatrixOperator> {
  if (m * n >= 1 << 20 && await gemmOrt()) {
    // ONNX Runtime reads W in place (no upload, no heap to keep small): one product per call, all cores.
    return {
      mul: async (x, l) => {
        const y = (await ortGemm(w, x, m, n, l))!;
        trimMemory();
        return y;
      },
      tmul: async (yt, l) => {
        const y = (await ortGemm(yt, w, l, m, n))!;
        releaseMemory();
        return y;
      },
      dispose() {},
    };
  }
  const h = m * n >= 1 << 20 ? await tfHandle() : undefined;
  const rowsPer = Math.max(1, Math.floor(BLOCK_BYTES / (4 * n)));
  const product = async (a: Float32Array, b: Float32Array, r: number, k: number, c: number) => {
    if (!h) return gemmJs(a, b, r, k, c);
    const t = h.tf;
    const out = t.tidy(() => t.matMul(t.tensor2d(a, [r, k]), t.tensor2d(b, [k, c])));
    const data = (await out.data()) as Float32Array;
    out.dispose();
    releaseMemory();
    return data;
  };
  return {
    async mul(x, l) {
      const y = new Float32Array(m * l);
      for (let r0 = 0; r0 < m; r0 += rowsPer) {
        const r1 = Math.min(m, r0 + rowsPer);
        y.set(await product(w.subarray(r0 * n, r1 * n), x, r1 - r0, n, l), r0 * l);
      }
      return y;
    },
    async tmul(yt, l) {
      // Yᵀ W = sum over row blocks of Yᵀ[:, block] W[block, :]
      const out = new Float32Array(l * n);
      for (let r0 = 0; r0 < m; r0 += rowsPer) {
        const r1 = Math.min(m, r0 + rowsPer), rows = r1 - r0;
        const ytBlock = new Float32Array(l * rows);
        for (let i = 0; i < l; i++) ytBlock.set(yt.subarray(i * m + r0, i * m + r1), i * rows);
        const part = await product(ytBlock, w.subarray(r0 * n, r1 * n), l, rows, n);
        for (let i = 0; i < out.length; i++) out[i] += part[i];
      }
      return out;
    },
    dispose() {},
  };
}

/**
 * The top-`k` singular triplets of W (m x n, row-major float32). Exact (to rounding) when k + oversampling reaches
 * min(m, n). W is touched only through products with thin matrices, run by tfjs-wasm when available; W is never
 * transposed or copied beyond one upload.
 */
export async function randomizedSvd(
  w: Float32Array,
  m: number,
  n: number,
  k: number,
  options: SvdOptions = {},
): Promise<TruncatedSvd> {
  const l = Math.min(m, n, k + (options.oversample ?? 10));
  k = Math.min(k, l);
  const rand = gaussian(options.seed ?? 12345);
  const omega = new Float32Array(n * l);
  for (let i = 0; i < omega.length; i++) omega[i] = rand();
  const op = await operatorOf(w, m, n);
  try {
    let q = await orth(await op.mul(omega, l), m, l);
    for (let it = 0; it < (options.powerIterations ?? 2); it++) {
      const z = await orth(transpose(await op.tmul(transpose(q, m, l), l), l, n), n, l);
      q = await orth(await op.mul(z, l), m, l);
    }
    const b = await op.tmul(transpose(q, m, l), l); // l x n = Qᵀ W
    const c = await gemm(b, b, l, n, l, { transB: true }); // l x l = B Bᵀ
    const rows: number[][] = [];
    for (let a = 0; a < l; a++) {
      const r: number[] = [];
      for (let j = 0; j < l; j++) r.push((c[a * l + j] + c[j * l + a]) / 2);
      rows.push(r);
    }
    const evd = new EigenvalueDecomposition(new Matrix(rows), { assumeSymmetric: true });
    const vals = evd.realEigenvalues;
    const vecs = evd.eigenvectorMatrix;
    const order = vals.map((v, i) => [v, i] as const).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
    const s = new Float64Array(k);
    const ubt = new Float32Array(k * l); // k x l: eigenvectors of B Bᵀ as rows
    for (let t = 0; t < k; t++) {
      s[t] = Math.sqrt(Math.max(0, vals[order[t]]));
      for (let a = 0; a < l; a++) ubt[t * l + a] = vecs.get(a, order[t]);
    }
    const u = await gemm(q, ubt, m, l, k, { transB: true }); // m x k
    const vtRaw = await gemm(ubt, b, k, l, n); // k x n = ubᵀ B
    const vt = new Float64Array(k * n);
    for (let t = 0; t < k; t++) {
      const inv = s[t] > 1e-30 ? 1 / s[t] : 0;
      for (let j = 0; j < n; j++) vt[t * n + j] = vtRaw[t * n + j] * inv;
    }
    return { u: Float64Array.from(u), s, vt, m, n, k };
  } finally {
    op.dispose();
  }
}
