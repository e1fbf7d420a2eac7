/**
 * What data-aware clustering (./aware_cluster.ts) knows of a layer's inputs on the calibration data: the input
 * vectors as rows (samples for FC, sampled im2col patches for Conv), and the second moments they are reduced to, H =
 * sum a a^T (on ONNX Runtime when it is there), its diagonal and sum a; per channel for a depthwise conv. Batches add
 * up in float64.
 *
 * @module
 */
import type { LayerExecutor } from "../eval/executor.ts";
import type { Layer } from "../model/types.ts";
import { ortGemm } from "../linalg/ort_gemm.ts";

/** The layer's input vectors as rows: A [rows, d]. */
export interface Inputs {
  a: Float32Array;
  rows: number;
  d: number;
}

/**
 * Second moments of a layer's inputs, summed over calibration rows: H = sum a a^T (only up to `maxDim` inputs;
 * the diagonal always), and sum a.
 */
export interface LayerStats {
  d: number;
  rows: number;
  /**
   * A depthwise conv's statistics: `d` is its channel count and `diag`/`sum` are per input channel (each filter
   * reads one channel), summed over every position of the batch.
   */
  perChannel?: boolean;
  /** sum a a^T, d x d, or undefined when d is above the limit (float32: one batch's ONNX Runtime product). */
  h?: Float64Array | Float32Array;
  diag: Float64Array;
  sum: Float64Array;
}

/**
 * Adds the rows A [rows, d] to `into` (made when undefined). A^T A runs on ONNX Runtime when it is there (tfjs-wasm's
 * transposed product is its slow path) unless the executor runs on the JavaScript backend. `alone`: these rows are
 * all there will be (no batch will be added), so H may stay the float32 product itself (0 + x is x: the same H,
 * without a d x d float64 copy, 42 MB at d = 2304); batches are summed in float64.
 */
export async function addRows(
  ex: LayerExecutor,
  inp: Inputs,
  maxDim: number,
  into: LayerStats | undefined,
  alone = false,
): Promise<LayerStats> {
  const { a, rows, d } = inp;
  const st: LayerStats = into ?? {
    d,
    rows: 0,
    diag: new Float64Array(d),
    sum: new Float64Array(d),
  };
  const withH = into ? !!into.h : d <= maxDim;
  st.rows += rows;
  for (let r = 0; r < rows; r++) {
    const base = r * d;
    for (let j = 0; j < d; j++) {
      const v = a[base + j];
      st.sum[j] += v;
      st.diag[j] += v * v;
    }
  }
  if (!withH) return st;
  const g = (ex.backend !== "cpu" ? await ortGemm(a, a, d, rows, d, true, false) : undefined) ??
    gramTf(ex.tf, a, rows, d);
  if (alone && !into) st.h = g;
  else {
    const h = (st.h ??= new Float64Array(d * d)) as Float64Array;
    for (let i = 0; i < g.length; i++) h[i] += g[i];
  }
  return st;
}

/** A^T A for A [rows, d] in tfjs. */
function gramTf(tf: LayerExecutor["tf"], a: Float32Array, rows: number, d: number): Float32Array {
  const ta = tf.tensor2d(a, [rows, d]);
  const tg = tf.matMul(ta, ta, true, false);
  const g = tg.dataSync() as Float32Array;
  tg.dispose();
  ta.dispose();
  return g;
}

/** Whether `layer` is a depthwise conv (each output channel reads its own input channel) over a [N, C, H, W] input. */
export function isDepthwise(layer: Layer, inputShape: readonly number[]): boolean {
  const w = layer.params.weight;
  const group = (layer.attrs.group as number | undefined) ?? 1;
  return layer.op === "Conv" && !!w && w.shape.length === 4 && w.shape[1] === 1 && group > 1 &&
    group === w.shape[0] && inputShape.length === 4 && inputShape[1] === group;
}

/** Adds each channel's sum and sum of squares over the chunks of a [N, C, H, W] activation to `into`. */
export async function addChannelStats(
  chunks: AsyncIterable<{ data: Float32Array; shape: number[] }>,
  into: LayerStats | undefined,
  channels: number,
): Promise<LayerStats> {
  const st = into ?? {
    d: channels,
    rows: 0,
    perChannel: true,
    diag: new Float64Array(channels),
    sum: new Float64Array(channels),
  };
  for await (const x of chunks) {
    const [n, c] = x.shape;
    const hw = x.data.length / (n * c);
    st.rows += n * hw;
    for (let i = 0; i < n; i++) {
      for (let ch = 0; ch < c; ch++) {
        const base = (i * c + ch) * hw;
        let s = 0, q = 0;
        for (let j = 0; j < hw; j++) {
          const v = x.data[base + j];
          s += v;
          q += v * v;
        }
        st.sum[ch] += s;
        st.diag[ch] += q;
      }
    }
  }
  return st;
}
