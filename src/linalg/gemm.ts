/**
 * Dense float32 matrix products for the big steps of the randomized SVD. Large products go to TensorFlow.js with
 * the wasm backend (XNNPACK, about 17 GFLOP/s here, loaded lazily on first use); small ones, or every one when
 * wasm cannot start, run in a typed-array loop.
 *
 * @module
 */
import { loadTf, type TfHandle } from "./tf.ts";

/** Products with fewer multiply-adds than this stay in JavaScript (tfjs set-up costs more). */
const TF_THRESHOLD = 2e7;

let handle: Promise<TfHandle | undefined> | undefined;

/** tfjs with the wasm backend, or undefined when it cannot start (loaded on first call). */
export function tfHandle(): Promise<TfHandle | undefined> {
  handle ??= loadTf().then((h) => (h.backend === "wasm" ? h : undefined)).catch(() => undefined);
  return handle;
}

/** C = op(A) op(B), where op transposes when asked. A is (transA ? k x m : m x k), B is (transB ? n x k : k x n). */
export async function gemm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  options: { transA?: boolean; transB?: boolean } = {},
): Promise<Float32Array> {
  const { transA = false, transB = false } = options;
  if (m * k * n >= TF_THRESHOLD) {
    const h = await tfHandle();
    if (h) {
      // tfjs-wasm's transposed products take a slow path (40x here): transpose in JavaScript instead.
      const t = h.tf;
      const ta = t.tensor2d(transA ? transpose(a, k, m) : a, [m, k]);
      const tb = t.tensor2d(transB ? transpose(b, n, k) : b, [k, n]);
      const tc = t.matMul(ta, tb);
      const out = (await tc.data()) as Float32Array;
      ta.dispose();
      tb.dispose();
      tc.dispose();
      return out;
    }
  }
  return gemmJs(a, b, m, k, n, transA, transB);
}

/** The same product in a typed-array loop (float64 accumulation). */
export function gemmJs(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Float32Array {
  const c = new Float64Array(m * n);
  const bt = transB ? transpose(b, n, k) : b; // k x n
  for (let i = 0; i < m; i++) {
    const ci = i * n;
    for (let p = 0; p < k; p++) {
      const av = transA ? a[p * m + i] : a[i * k + p];
      if (av === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c[ci + j] += av * bt[bp + j];
    }
  }
  return Float32Array.from(c);
}

/** The transpose of a rows x cols row-major matrix. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}
