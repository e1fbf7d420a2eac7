/**
 * Canonical ops (src/model/ops.ts) on tfjs tensors, with the exact Caffe/ONNX semantics: explicit [t, l, b, r]
 * pads, ceil-mode pooling (a last window starting in the end padding is dropped), AvgPool divisors with and without
 * padded cells, grouped and depthwise convolution, FC flattening a rank > 2 input in C,H,W order.
 *
 * Layout: the canonical layout is NCHW, but tfjs convolves and pools in NHWC. An {@link Act} carries a flag saying
 * which layout its rank-4 tensor is in. Spatial ops produce NHWC, element-wise and per-channel ops keep what they
 * get, and ops whose meaning depends on the element order (FC, Flatten, Reshape, Transpose) first convert to NCHW.
 * So a conv -> relu -> pool chain transposes once, not per layer.
 *
 * Ownership: kernels never dispose their inputs; they return new tensors (intermediates are disposed inside).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Layer } from "../model/types.ts";
import { windowOut } from "../model/shapes.ts";
import type { Tf, TfTensor } from "./tf.ts";

/** An activation: a tfjs tensor, and for rank 4 whether it is NHWC (else NCHW). */
export interface Act {
  t: TfTensor;
  nhwc: boolean;
}

/** A layer's parameters as float32 arrays with their shapes (FC weights are streamed instead, see ./executor.ts). */
export type Params = Record<string, { data: Float32Array; shape: readonly number[] }>;

const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
/** NCHW axis -> NHWC axis. */
const AXIS_IN_NHWC = [0, 3, 1, 2];

function err(layer: Layer, msg: string, code: "unsupported" | "bad_format" = "bad_format"): ConvpressError {
  return new ConvpressError(code, `Cannot evaluate layer '${layer.name}' (${layer.op}): ${msg}`, {
    layer: layer.name,
  });
}

/** The tensor in NCHW order (a new handle; dispose it). */
export function toNchw(tf: Tf, a: Act): TfTensor {
  return a.t.rank === 4 && a.nhwc ? tf.transpose(a.t, NHWC_TO_NCHW) : tf.clone(a.t);
}

/** The rank-4 tensor in NHWC order (a new handle; dispose it). */
export function toNhwc(tf: Tf, a: Act, layer: Layer): TfTensor {
  if (a.t.rank !== 4) throw err(layer, `needs a rank-4 NCHW input, got shape [${a.t.shape.join(",")}]`);
  return a.nhwc ? tf.clone(a.t) : tf.transpose(a.t, NCHW_TO_NHWC);
}

/** An NCHW axis (maybe negative) as an axis of `a`'s actual layout. */
function axisOf(a: Act, axis: number, layer: Layer): number {
  const r = a.t.rank;
  const ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r) throw err(layer, `axis ${axis} is out of range for rank ${r}`);
  return r === 4 && a.nhwc ? AXIS_IN_NHWC[ax] : ax;
}

function nums(v: unknown, fallback: number[]): number[] {
  return Array.isArray(v) ? (v as number[]) : fallback;
}

function num(v: unknown, fallback: number): number {
  return typeof v === "number" ? v : fallback;
}

function nhwc(t: TfTensor): Act {
  return { t, nhwc: true };
}

/** Runs one canonical layer (all ops but FC, which ./executor.ts streams). */
export function runKernel(tf: Tf, layer: Layer, ins: Act[], params: Params): Act[] {
  const x = ins[0];
  switch (layer.op) {
    case "Conv":
      return [conv(tf, layer, x, params)];
    case "MaxPool":
    case "AvgPool":
      return [pool(tf, layer, x)];
    case "GlobalAvgPool":
    case "GlobalMaxPool": {
      const axes = x.t.rank === 4 && x.nhwc ? [1, 2] : Array.from({ length: x.t.rank - 2 }, (_, i) => i + 2);
      const t = layer.op === "GlobalAvgPool" ? tf.mean(x.t, axes, true) : tf.max(x.t, axes, true);
      return [{ t, nhwc: x.nhwc }];
    }
    case "Relu":
      return [{ t: tf.relu(x.t), nhwc: x.nhwc }];
    case "Sigmoid":
      return [{ t: tf.sigmoid(x.t), nhwc: x.nhwc }];
    case "Tanh":
      return [{ t: tf.tanh(x.t), nhwc: x.nhwc }];
    case "LeakyRelu":
      return [{ t: tf.leakyRelu(x.t, num(layer.attrs.alpha, 0.01)), nhwc: x.nhwc }];
    case "Clip":
      return [{ t: clip(tf, x.t, num(layer.attrs.min, -Infinity), num(layer.attrs.max, Infinity)), nhwc: x.nhwc }];
    case "Dropout":
    case "Identity":
      return [{ t: tf.clone(x.t), nhwc: x.nhwc }];
    case "Softmax":
      return [{ t: softmax(tf, x.t, axisOf(x, num(layer.attrs.axis, 1), layer)), nhwc: x.nhwc }];
    case "LRN":
      return [lrn(tf, layer, x)];
    case "BatchNorm":
      return [batchNorm(tf, layer, x, params)];
    case "Scale":
      return [scale(tf, layer, x, params)];
    case "Add":
    case "Mul":
    case "Sub":
    case "Max":
      return [binary(tf, layer, ins)];
    case "Concat":
      return [concat(tf, layer, ins)];
    case "Flatten":
      return [flatten(tf, layer, x)];
    case "Reshape":
      return [reshape(tf, layer, x)];
    case "Transpose": {
      const t = tf.tidy(() => {
        const n = toNchw(tf, x);
        return tf.transpose(n, nums(layer.attrs.perm, []));
      });
      return [{ t, nhwc: false }];
    }
    case "Pad":
      return [pad(tf, layer, x)];
    case "Passthrough": {
      const native = layer.attrs.onnxOp ?? layer.attrs.type;
      const what = native ? `the source format's '${native}' op` : "an op the canonical set does not cover";
      throw err(layer, `${what} has no evaluator (it was read as a pass-through layer)`, "unsupported");
    }
    default:
      throw err(layer, `the op has no evaluator`, "unsupported");
  }
}

function clip(tf: Tf, x: TfTensor, min: number, max: number): TfTensor {
  return tf.tidy(() => {
    let y = x;
    if (Number.isFinite(min) || min === Infinity) y = tf.maximum(y, min);
    if (Number.isFinite(max) || max === -Infinity) y = tf.minimum(y, max);
    return y === x ? tf.clone(x) : y;
  });
}

function softmax(tf: Tf, x: TfTensor, axis: number): TfTensor {
  if (axis === x.rank - 1) return tf.softmax(x, -1);
  return tf.tidy(() => {
    const e = tf.exp(tf.sub(x, tf.max(x, axis, true)));
    return tf.div(e, tf.sum(e, axis, true));
  });
}

/** Weight [O, I/g, kh, kw] as HWIO [kh, kw, I/g, O]. */
function hwio(tf: Tf, w: { data: Float32Array; shape: readonly number[] }): TfTensor {
  return tf.tidy(() => tf.transpose(tf.tensor4d(w.data, w.shape as [number, number, number, number]), [2, 3, 1, 0]));
}

function conv(tf: Tf, layer: Layer, x: Act, params: Params): Act {
  const w = params.weight;
  if (!w || w.shape.length !== 4) throw err(layer, "needs a weight of shape [O, I/group, kh, kw]");
  const [o, ig, kh, kw] = w.shape;
  const g = num(layer.attrs.group, 1);
  const [sh, sw] = nums(layer.attrs.strides, [1, 1]);
  const [dh, dw] = nums(layer.attrs.dilations, [1, 1]);
  const [pt, pl, pb, pr] = nums(layer.attrs.pads, [0, 0, 0, 0]);
  const xs = x.t.shape;
  const c = x.t.rank === 4 ? (x.nhwc ? xs[3] : xs[1]) : -1;
  if (c !== ig * g) {
    throw err(layer, `input has ${c} channels but the weight [${w.shape.join(",")}] with group ${g} needs ${ig * g}`);
  }
  if (o % g !== 0) throw err(layer, `${o} output channels do not split into ${g} groups`);
  const dilated = dh > 1 || dw > 1;
  // tfjs needs strides 1 when dilated: convolve densely, then take every s-th row and column.
  const strides: [number, number] = dilated ? [1, 1] : [sh, sw];
  const padding = [[0, 0], [pt, pb], [pl, pr], [0, 0]] as [[number, number], [number, number], [number, number], [
    number,
    number,
  ]];
  // Intermediates are disposed as soon as they are used: a tidy scope would keep each of them (a full activation
  // each) alive until the end, and the wasm heap keeps its high-water mark for the rest of the process.
  const xin = toNhwc(tf, x, layer);
  const bias = params.bias ? tf.tensor1d(params.bias.data) : undefined;
  let y: TfTensor;
  try {
    if (g === 1) {
      // Bias fused into the convolution: no second activation-sized tensor for the sum.
      const f = hwio(tf, w);
      try {
        y = tf.fused.conv2d({
          x: xin as never,
          filter: f as never,
          strides,
          pad: padding,
          dataFormat: "NHWC",
          dilations: [dh, dw],
          bias: bias as never,
        });
      } finally {
        f.dispose();
      }
    } else {
      let z: TfTensor;
      if (ig === 1 && g === c) {
        // Depthwise: output channel k = ch * mult + m reads input channel ch. Filter [kh, kw, C, mult].
        const mult = o / g;
        const f = tf.tidy(() => tf.transpose(tf.reshape(tf.tensor1d(w.data), [c, mult, kh, kw]), [2, 3, 0, 1]));
        try {
          z = tf.depthwiseConv2d(xin as never, f as never, strides, padding, "NHWC", [dh, dw]);
        } finally {
          f.dispose();
        }
      } else {
        // One group at a time, its channels picked with gather (tfjs's split and slice copy the whole input to
        // JavaScript per piece on wasm); each group's input and filter are freed once convolved.
        const wall = hwio(tf, w);
        const outs: TfTensor[] = [];
        try {
          for (let i = 0; i < g; i++) {
            const ci = tf.range(i * ig, (i + 1) * ig, 1, "int32");
            const co = tf.range(i * (o / g), (i + 1) * (o / g), 1, "int32");
            const xi = tf.gather(xin, ci, 3), wi = tf.gather(wall, co, 3);
            ci.dispose();
            co.dispose();
            try {
              outs.push(tf.conv2d(xi as never, wi as never, strides, padding, "NHWC", [dh, dw]) as TfTensor);
            } finally {
              xi.dispose();
              wi.dispose();
            }
          }
          z = tf.concat(outs, 3);
        } finally {
          wall.dispose();
          for (const t of outs) t.dispose();
        }
      }
      if (bias) {
        y = tf.add(z, bias);
        z.dispose();
      } else y = z;
    }
  } finally {
    xin.dispose();
    bias?.dispose();
  }
  if (dilated && (sh > 1 || sw > 1)) {
    // Bias already added: adding a constant per channel commutes with taking every s-th row and column.
    const [n, h, ww, oc] = y.shape;
    const s = tf.stridedSlice(y, [0, 0, 0, 0], [n, h, ww, oc], [1, sh, sw, 1]);
    y.dispose();
    y = s;
  }
  const t = y;
  return nhwc(t);
}

function pool(tf: Tf, layer: Layer, x: Act): Act {
  const [kh, kw] = nums(layer.attrs.kernel, []);
  if (!kh || !kw) throw err(layer, "needs a kernel size");
  const [sh, sw] = nums(layer.attrs.strides, [1, 1]);
  const [pt, pl, pb, pr] = nums(layer.attrs.pads, [0, 0, 0, 0]);
  const ceil = Boolean(layer.attrs.ceil);
  const t = tf.tidy(() => {
    const xin = toNhwc(tf, x, layer);
    const [n, h, w, c] = xin.shape;
    const oh = windowOut(h, kh, sh, pt, pb, 1, ceil);
    const ow = windowOut(w, kw, sw, pl, pr, 1, ceil);
    if (oh < 1 || ow < 1) throw err(layer, `a ${h}x${w} input gives an empty ${oh}x${ow} output`);
    // Pad explicitly so every output window exists; ceil mode may need cells past the declared end padding.
    const eb = Math.max(0, (oh - 1) * sh + kh - (h + pt + pb));
    const er = Math.max(0, (ow - 1) * sw + kw - (w + pl + pr));
    const max = layer.op === "MaxPool";
    // No padding (VGG's 2x2 pools): pool the input itself rather than an activation-sized copy of it.
    const padded = pt || pb + eb || pl || pr + er
      ? tf.pad(xin, [[0, 0], [pt, pb + eb], [pl, pr + er], [0, 0]], max ? -Infinity : 0)
      : xin;
    let y = max
      ? tf.maxPool(padded as never, [kh, kw], [sh, sw], "valid")
      : tf.avgPool(padded as never, [kh, kw], [sh, sw], "valid") as TfTensor;
    if (y.shape[1] !== oh || y.shape[2] !== ow) y = tf.slice(y, [0, 0, 0, 0], [n, oh, ow, c]);
    if (!max) {
      const f = avgFactors(h, w, oh, ow, kh, kw, sh, sw, pt, pl, pb, pr, Boolean(layer.attrs.countIncludePad));
      if (f) y = tf.mul(y, tf.tensor4d(f, [1, oh, ow, 1]));
    }
    return y;
  });
  return nhwc(t);
}

/**
 * Per-window factors turning tfjs's mean over kh*kw cells into the op's average: Caffe and ONNX with
 * count_include_pad divide by the window clipped to the padded image (declared pads count, cells added for ceil mode
 * do not); without it they divide by the real cells in the window. Undefined when every factor is 1.
 */
function avgFactors(
  h: number,
  w: number,
  oh: number,
  ow: number,
  kh: number,
  kw: number,
  sh: number,
  sw: number,
  pt: number,
  pl: number,
  pb: number,
  pr: number,
  includePad: boolean,
): Float32Array | undefined {
  const f = new Float32Array(oh * ow);
  let trivial = true;
  const span = (start: number, k: number, size: number, p1: number) => {
    if (includePad) return Math.min(start + k, size + p1) - start;
    return Math.min(start + k, size) - Math.max(start, 0);
  };
  for (let i = 0; i < oh; i++) {
    const nh = span(i * sh - pt, kh, h, pb);
    for (let j = 0; j < ow; j++) {
      const nw = span(j * sw - pl, kw, w, pr);
      const v = (kh * kw) / Math.max(1, nh * nw);
      f[i * ow + j] = v;
      if (v !== 1) trivial = false;
    }
  }
  return trivial ? undefined : f;
}

/** A per-channel vector shaped to broadcast along `axis` of a rank-`rank` tensor. */
function alongAxis(tf: Tf, v: Float32Array, axis: number, rank: number): TfTensor {
  const shape = Array.from({ length: rank - axis }, (_, i) => (i === 0 ? v.length : 1));
  return tf.tensor(v, shape);
}

function channelCount(layer: Layer, x: TfTensor, axis: number, n: number): void {
  if (x.shape[axis] !== n) {
    throw err(layer, `input has ${x.shape[axis]} channels on axis ${axis}, parameters have ${n}`);
  }
}

function batchNorm(tf: Tf, layer: Layer, x: Act, params: Params): Act {
  const { scale: s, bias: b, mean: m, var: v } = params;
  if (!s || !b || !m || !v) throw err(layer, "needs scale, bias, mean and var");
  const eps = num(layer.attrs.epsilon, 1e-5);
  const c = s.data.length;
  const a = new Float32Array(c), k = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const r = s.data[i] / Math.sqrt(v.data[i] + eps);
    a[i] = r;
    k[i] = b.data[i] - m.data[i] * r;
  }
  const axis = axisOf(x, 1, layer);
  channelCount(layer, x.t, axis, c);
  const t = tf.tidy(() =>
    tf.add(tf.mul(x.t, alongAxis(tf, a, axis, x.t.rank)), alongAxis(tf, k, axis, x.t.rank)) as TfTensor
  );
  return { t, nhwc: x.nhwc };
}

function scale(tf: Tf, layer: Layer, x: Act, params: Params): Act {
  const s = params.scale;
  if (!s) throw err(layer, "needs a scale");
  const axis = axisOf(x, num(layer.attrs.axis, 1), layer);
  channelCount(layer, x.t, axis, s.data.length);
  const t = tf.tidy(() => {
    let y = tf.mul(x.t, alongAxis(tf, s.data, axis, x.t.rank));
    if (params.bias) y = tf.add(y, alongAxis(tf, params.bias.data, axis, x.t.rank));
    return y as TfTensor;
  });
  return { t, nhwc: x.nhwc };
}

/** Inputs in one layout: NHWC when all are rank-4 NHWC already, NCHW otherwise. */
function sameLayout(tf: Tf, ins: Act[]): { ts: TfTensor[]; nhwc: boolean } {
  const keep = ins.every((a) => a.t.rank === 4 && a.nhwc);
  return { ts: ins.map((a) => (keep ? tf.clone(a.t) : toNchw(tf, a))), nhwc: keep };
}

function binary(tf: Tf, layer: Layer, ins: Act[]): Act {
  if (ins.length < 1) throw err(layer, "needs inputs");
  const coeffs = layer.attrs.coeffs as number[] | undefined;
  let nhwcOut = false;
  const t = tf.tidy(() => {
    const { ts, nhwc: keep } = sameLayout(tf, ins);
    nhwcOut = keep;
    const term = (i: number) => (coeffs && coeffs[i] !== 1 ? tf.mul(ts[i], coeffs[i]) : ts[i]);
    let y = term(0);
    for (let i = 1; i < ts.length; i++) {
      if (layer.op === "Add") y = tf.add(y, term(i));
      else if (layer.op === "Sub") y = tf.sub(y, ts[i]);
      else if (layer.op === "Mul") y = tf.mul(y, ts[i]);
      else y = tf.maximum(y, ts[i]);
    }
    return ts.length === 1 && y === ts[0] ? tf.clone(y) : y;
  });
  return { t, nhwc: nhwcOut };
}

function concat(tf: Tf, layer: Layer, ins: Act[]): Act {
  let nhwcOut = false;
  const t = tf.tidy(() => {
    const { ts, nhwc: keep } = sameLayout(tf, ins);
    nhwcOut = keep;
    const axis = num(layer.attrs.axis, 1);
    const r = ts[0].rank;
    const ax = axis < 0 ? axis + r : axis;
    return tf.concat(ts, keep ? AXIS_IN_NHWC[ax] : ax);
  });
  return { t, nhwc: nhwcOut };
}

function flatten(tf: Tf, layer: Layer, x: Act): Act {
  const t = tf.tidy(() => {
    const n = toNchw(tf, x);
    const axis = num(layer.attrs.axis, 1);
    const a = axis < 0 ? axis + n.rank : axis;
    const lead = n.shape.slice(0, a).reduce((p, d) => p * d, 1);
    return tf.reshape(n, [lead, n.size / Math.max(1, lead)]);
  });
  return { t, nhwc: false };
}

function reshape(tf: Tf, layer: Layer, x: Act): Act {
  const spec = nums(layer.attrs.shape, []);
  const t = tf.tidy(() => {
    const n = toNchw(tf, x);
    const shape = spec.map((d, i) => (d === 0 ? n.shape[i] : d));
    const known = shape.filter((d) => d !== -1).reduce((p, d) => p * d, 1);
    const out = shape.map((d) => (d === -1 ? n.size / known : d));
    if (out.reduce((p, d) => p * d, 1) !== n.size) {
      throw err(layer, `cannot reshape [${n.shape.join(",")}] to [${spec.join(",")}]`);
    }
    return tf.reshape(n, out);
  });
  return { t, nhwc: false };
}

function pad(tf: Tf, layer: Layer, x: Act): Act {
  const [pt, pl, pb, pr] = nums(layer.attrs.pads, [0, 0, 0, 0]);
  if ([pt, pl, pb, pr].some((p) => p < 0)) throw err(layer, "negative pads (cropping)", "unsupported");
  const mode = layer.attrs.mode;
  if (mode !== undefined && mode !== "constant") throw err(layer, `pad mode '${mode}'`, "unsupported");
  const value = num(layer.attrs.value, 0);
  const t = tf.tidy(() => tf.pad(toNhwc(tf, x, layer), [[0, 0], [pt, pb], [pl, pr], [0, 0]], value));
  return nhwc(t);
}

function lrn(tf: Tf, layer: Layer, x: Act): Act {
  const size = num(layer.attrs.size, 5);
  const alpha = num(layer.attrs.alpha, 1e-4), beta = num(layer.attrs.beta, 0.75), bias = num(layer.attrs.bias, 1);
  // Caffe ACROSS_CHANNELS and ONNX: x / (bias + alpha / size * sum of squares over channels
  // [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta. An odd size makes the window symmetric: tfjs's own LRN
  // (channels last, depth radius (size-1)/2, unscaled alpha) computes exactly that in one op.
  if (x.t.rank === 4 && size % 2 === 1) {
    const xin = toNhwc(tf, x, layer);
    try {
      return nhwc(tf.localResponseNormalization(xin as never, (size - 1) / 2, bias, alpha / size, beta));
    } finally {
      xin.dispose();
    }
  }
  // Otherwise by slices of the padded squares (each wasm slice copies its whole input to JavaScript: slow path).
  const axis = axisOf(x, 1, layer);
  const lo = Math.floor((size - 1) / 2), hi = size - 1 - lo;
  const t = tf.tidy(() => {
    const c = x.t.shape[axis];
    const sq = tf.square(x.t);
    const padSpec = x.t.shape.map((_, i) => (i === axis ? [lo, hi] : [0, 0]) as [number, number]);
    const p = tf.pad(sq, padSpec);
    let sum: TfTensor | undefined;
    for (let i = 0; i < size; i++) {
      const begin = x.t.shape.map((_, j) => (j === axis ? i : 0));
      const sz = x.t.shape.map((d, j) => (j === axis ? c : d));
      const s = tf.slice(p, begin, sz);
      sum = sum ? tf.add(sum, s) : s;
    }
    const den = tf.pow(tf.add(tf.mul(sum!, alpha / size), bias), -beta);
    return tf.mul(x.t, den) as TfTensor;
  });
  return { t, nhwc: x.nhwc };
}
