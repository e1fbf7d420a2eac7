/**
 * Comparing two activations without copying them (see {@link diffStats}).
 *
 * @module
 */
import type { Act } from "./kernels.ts";
import { floatView, type Tf } from "../linalg/tf.ts";

/** Sums over two activations: squared differences, squared reference values, and the largest absolute difference. */
export interface DiffStats {
  num: number;
  den: number;
  max: number;
}

/**
 * Sum of squared differences, sum of squared reference values and largest absolute difference of two activations of
 * the same (NCHW) shape, read in place (see {@link floatView}): no temporary tensor, since the wasm heap never
 * shrinks and one activation-sized temporary would raise the memory of the whole run.
 */
export function diffStats(tf: Tf, ref: Act, cand: Act): DiffStats {
  let num = 0, den = 0, max = 0;
  // Both views are taken with no tfjs call in between (a call could move the wasm heap).
  const x = floatView(tf, ref.t), y = floatView(tf, cand.t);
  if (ref.t.rank !== 4 || ref.nhwc === cand.nhwc) {
    for (let i = 0; i < x.length; i++) {
      const r = x[i], d = y[i] - r;
      num += d * d;
      den += r * r;
      const a = Math.abs(d);
      if (a > max) max = a;
    }
    return { num, den, max };
  }
  // Layouts differ: walk in NCHW order, reading the NHWC side at ((n*H + h)*W + w)*C + c.
  const s = ref.t.shape as number[];
  const [n, c, h, w] = ref.nhwc ? [s[0], s[3], s[1], s[2]] : s;
  const [nchw, nhwc] = ref.nhwc ? [y, x] : [x, y];
  const sign = ref.nhwc ? -1 : 1;
  let i = 0;
  for (let b = 0; b < n; b++) {
    for (let ch = 0; ch < c; ch++) {
      for (let row = 0; row < h; row++) {
        let j = ((b * h + row) * w) * c + ch;
        for (let col = 0; col < w; col++, i++, j += c) {
          const r = ref.nhwc ? nhwc[j] : nchw[i];
          const d = sign * (nhwc[j] - nchw[i]);
          num += d * d;
          den += r * r;
          const a = Math.abs(d);
          if (a > max) max = a;
        }
      }
    }
  }
  return { num, den, max };
}
