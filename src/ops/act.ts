/**
 * Layout helpers for kernels. The canonical layout is NCHW, but tfjs convolves and pools in NHWC. An {@link Act}
 * carries a flag saying which layout its rank-4 tensor is in. Spatial ops produce NHWC, element-wise and
 * per-channel ops keep what they get, and ops whose meaning depends on the element order first convert to NCHW.
 * So a conv -> relu -> pool chain transposes once, not per layer.
 *
 * @module
 */
import type { Tf, TfTensor } from "./op_def.ts";
import type { Act } from "./op_def.ts";

const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
/** NCHW axis -> NHWC axis. */
export const AXIS_IN_NHWC: readonly number[] = [0, 3, 1, 2];

/** The tensor in NCHW order (a new handle; dispose it). */
export function toNchw(tf: Tf, a: Act): TfTensor {
  return a.t.rank === 4 && a.nhwc ? tf.transpose(a.t, NHWC_TO_NCHW) : tf.clone(a.t);
}

/** The rank-4 tensor in NHWC order (a new handle; dispose it), or undefined when it is not rank 4. */
export function toNhwc(tf: Tf, a: Act): TfTensor | undefined {
  if (a.t.rank !== 4) return undefined;
  return a.nhwc ? tf.clone(a.t) : tf.transpose(a.t, NCHW_TO_NHWC);
}

/** An NHWC activation. */
export function nhwc(t: TfTensor): Act {
  return { t, nhwc: true };
}

/** An NCHW (canonical) activation. */
export function nchw(t: TfTensor): Act {
  return { t, nhwc: false };
}

/** Normalizes a maybe-negative axis for rank `r`; undefined when out of range. */
export function normAxis(axis: number, r: number): number | undefined {
  const ax = axis < 0 ? axis + r : axis;
  return ax < 0 || ax >= r ? undefined : ax;
}

/** An NCHW axis as an axis of `a`'s actual layout. */
export function axisIn(a: Act, ax: number): number {
  return a.t.rank === 4 && a.nhwc ? AXIS_IN_NHWC[ax] : ax;
}

/** Inputs in one layout: NHWC when all are rank-4 NHWC already, NCHW otherwise (new handles). */
export function sameLayout(tf: Tf, ins: Act[]): { ts: TfTensor[]; nhwc: boolean } {
  const keep = ins.every((a) => a.t.rank === 4 && a.nhwc);
  return { ts: ins.map((a) => (keep ? tf.clone(a.t) : toNchw(tf, a))), nhwc: keep };
}

/** A per-channel vector shaped to broadcast along `axis` of a rank-`rank` tensor. */
export function alongAxis(tf: Tf, v: Float32Array, axis: number, rank: number): TfTensor {
  const shape = Array.from({ length: rank - axis }, (_, i) => (i === 0 ? v.length : 1));
  return tf.tensor(v, shape);
}

/** Runs `f` on the activation in NCHW order and returns an NCHW activation. */
export function inNchw(tf: Tf, x: Act, f: (t: TfTensor) => TfTensor): Act {
  const t = tf.tidy(() => f(x.t.rank === 4 && x.nhwc ? tf.transpose(x.t, NHWC_TO_NCHW) : x.t));
  return nchw(t === x.t ? tf.clone(t) : t);
}

/** Runs an element-wise `f` in whatever layout `x` is in. */
export function keepLayout(tf: Tf, x: Act, f: (t: TfTensor) => TfTensor): Act {
  const t = tf.tidy(() => f(x.t));
  return { t: t === x.t ? tf.clone(t) : t, nhwc: x.nhwc };
}
