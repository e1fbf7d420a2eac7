/**
 * Convolution, fully-connected, pooling and normalization ops, with the exact Caffe/ONNX semantics: explicit
 * [t, l, b, r] pads, ceil-mode pooling (a last window starting in the end padding is dropped), AvgPool divisors with
 * and without padded cells, grouped and depthwise convolution, FC flattening a rank > 2 input in C,H,W order.
 *
 * @module
 */
import type { Dim } from "../model/types.ts";
import type { Shape } from "../model/shapes.ts";
import type { Tf, TfTensor } from "./op_def.ts";
import { alongAxis, axisIn, nchw, nhwc, toNchw, toNhwc } from "./act.ts";
import { type Act, bool, defineOp, float, int, ints, type KernelContext, type OpDef, type Params } from "./op_def.ts";
import { dimNum, windowOut } from "./window.ts";

/** Attributes of Conv. */
export interface ConvAttrs {
  kernel: number[];
  strides: number[];
  pads: number[];
  dilations: number[];
  group: number;
}

/** Attributes of MaxPool and AvgPool. */
export interface PoolAttrs {
  kernel: number[];
  strides: number[];
  pads: number[];
  ceil: boolean;
  /** AvgPool: padded cells count in the divisor. */
  countIncludePad: boolean;
}

/** Attributes of ConvTranspose. */
export interface ConvTransposeAttrs extends ConvAttrs {
  outputPadding: number[];
}

const spatialSchema = {
  kernel: ints(),
  strides: ints([1, 1]),
  pads: ints([0, 0, 0, 0]),
};

function pair(v: number[], what: string): string | undefined {
  return v.length === 2 ? undefined : `${what} must have 2 values, got [${v.join(",")}]`;
}

function checkSpatial(a: { kernel: number[]; strides: number[]; pads: number[] }): string | undefined {
  if (a.pads.length !== 4) return `pads must be [top, left, bottom, right], got [${a.pads.join(",")}]`;
  return pair(a.kernel, "kernel") ?? pair(a.strides, "strides");
}

function spatialShape(
  x: Dim[],
  k: number[],
  s: number[],
  p: number[],
  d: number[],
  ceil: boolean,
  channels: Dim,
): Shape {
  if (x.length !== 4) return undefined;
  const h = dimNum(x[2]), w = dimNum(x[3]);
  return [
    x[0],
    channels,
    h === undefined ? null : windowOut(h, k[0], s[0], p[0], p[2], d[0], ceil),
    w === undefined ? null : windowOut(w, k[1], s[1], p[1], p[3], d[1], ceil),
  ];
}

/** Weight [O, I/g, kh, kw] as HWIO [kh, kw, I/g, O]. */
function hwio(tf: Tf, w: { data: Float32Array; shape: readonly number[] }): TfTensor {
  return tf.tidy(() => tf.transpose(tf.tensor4d(w.data, w.shape as [number, number, number, number]), [2, 3, 1, 0]));
}

type Pad4 = [[number, number], [number, number], [number, number], [number, number]];

function needNhwc(k: KernelContext<unknown>, x: Act): TfTensor {
  const t = toNhwc(k.tf, x);
  if (!t) throw k.fail(`needs a rank-4 NCHW input, got shape [${x.t.shape.join(",")}]`);
  return t;
}

function conv(k: KernelContext<ConvAttrs>, x: Act): Act {
  const { tf, a, params } = k;
  const w = params.weight;
  if (!w || w.shape.length !== 4) throw k.fail("needs a weight of shape [O, I/group, kh, kw]");
  const [o, ig, kh, kw] = w.shape;
  const g = a.group;
  const [sh, sw] = a.strides;
  const [dh, dw] = a.dilations;
  const [pt, pl, pb, pr] = a.pads;
  const xs = x.t.shape;
  const c = x.t.rank === 4 ? (x.nhwc ? xs[3] : xs[1]) : -1;
  if (c !== ig * g) {
    throw k.fail(`input has ${c} channels but the weight [${w.shape.join(",")}] with group ${g} needs ${ig * g}`);
  }
  if (o % g !== 0) throw k.fail(`${o} output channels do not split into ${g} groups`);
  const dilated = dh > 1 || dw > 1;
  // tfjs needs strides 1 when dilated: convolve densely, then take every s-th row and column.
  const strides: [number, number] = dilated ? [1, 1] : [sh, sw];
  const padding: Pad4 = [[0, 0], [pt, pb], [pl, pr], [0, 0]];
  // Intermediates are disposed as soon as they are used: a tidy scope would keep each of them (a full activation
  // each) alive until the end, and the wasm heap keeps its high-water mark for the rest of the process.
  const xin = needNhwc(k, x);
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
  return nhwc(y);
}

/** Conv: 2-D convolution, groups and dilation, explicit pads. */
export const Conv: OpDef<ConvAttrs> = defineOp<ConvAttrs>({
  doc: "2-D convolution; weight [O, I/group, kh, kw], bias? [O]",
  params: ["weight", "bias"],
  attrs: { ...spatialSchema, dilations: ints([1, 1]), group: int(1) },
  validate: (a) => checkSpatial(a) ?? pair(a.dilations, "dilations") ?? (a.group >= 1 ? undefined : "group < 1"),
  infer: (a, [x], l) =>
    x ? [spatialShape(x, a.kernel, a.strides, a.pads, a.dilations, false, l.params.weight?.shape[0] ?? null)] : [x],
  kernel: (k, [x]) => [conv(k, x)],
});

/** FC kernel on whole weights (the executor streams big ones in row blocks instead). */
function fc(k: KernelContext<Record<string, never>>, x: Act): Act {
  const { tf, params } = k;
  const w = params.weight;
  if (!w || w.shape.length !== 2) throw k.fail("needs a weight [out, in]");
  const t = tf.tidy(() => {
    const n = toNchw(tf, x);
    const x2 = tf.reshape(n, [n.shape[0], n.size / n.shape[0]]);
    if (x2.shape[1] !== w.shape[1]) {
      throw k.fail(`input has ${x2.shape[1]} features, the weight [${w.shape}] needs ${w.shape[1]}`);
    }
    let y = tf.matMul(x2 as never, tf.tensor2d(w.data, w.shape as [number, number]), false, true) as TfTensor;
    if (params.bias) y = tf.add(y, tf.tensor1d(params.bias.data));
    return y;
  });
  return nchw(t);
}

/** FC: y = x W^T + b; a rank > 2 input is flattened from axis 1 (C,H,W order). */
export const FC: OpDef<Record<string, never>> = defineOp<Record<string, never>>({
  doc: "fully connected; weight [out, in], bias? [out]; a rank > 2 input is flattened in C,H,W order",
  params: ["weight", "bias"],
  attrs: {},
  infer: (_a, [x], l) => [x ? [x[0], l.params.weight?.shape[0] ?? null] : undefined],
  kernel: (k, [x]) => [fc(k, x)],
});

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
  a: PoolAttrs,
): Float32Array | undefined {
  const [kh, kw] = a.kernel, [sh, sw] = a.strides, [pt, pl, pb, pr] = a.pads;
  const f = new Float32Array(oh * ow);
  let trivial = true;
  const span = (start: number, k: number, size: number, p1: number) => {
    if (a.countIncludePad) return Math.min(start + k, size + p1) - start;
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

function pool(k: KernelContext<PoolAttrs>, x: Act, max: boolean): Act {
  const { tf, a } = k;
  const [kh, kw] = a.kernel, [sh, sw] = a.strides, [pt, pl, pb, pr] = a.pads;
  const xin = needNhwc(k, x);
  const t = tf.tidy(() => {
    const [n, h, w, c] = xin.shape;
    const oh = windowOut(h, kh, sh, pt, pb, 1, a.ceil);
    const ow = windowOut(w, kw, sw, pl, pr, 1, a.ceil);
    if (oh < 1 || ow < 1) throw k.fail(`a ${h}x${w} input gives an empty ${oh}x${ow} output`);
    // Pad explicitly so every output window exists; ceil mode may need cells past the declared end padding.
    const eb = Math.max(0, (oh - 1) * sh + kh - (h + pt + pb));
    const er = Math.max(0, (ow - 1) * sw + kw - (w + pl + pr));
    // No padding (VGG's 2x2 pools): pool the input itself rather than an activation-sized copy of it.
    const padded = pt || pb + eb || pl || pr + er
      ? tf.pad(xin, [[0, 0], [pt, pb + eb], [pl, pr + er], [0, 0]], max ? -Infinity : 0)
      : xin;
    let y = max
      ? tf.maxPool(padded as never, [kh, kw], [sh, sw], "valid")
      : tf.avgPool(padded as never, [kh, kw], [sh, sw], "valid") as TfTensor;
    if (y.shape[1] !== oh || y.shape[2] !== ow) y = tf.slice(y, [0, 0, 0, 0], [n, oh, ow, c]);
    if (!max) {
      const f = avgFactors(h, w, oh, ow, a);
      if (f) y = tf.mul(y, tf.tensor4d(f, [1, oh, ow, 1]));
    }
    return y;
  });
  xin.dispose();
  return nhwc(t);
}

const poolSchema = { ...spatialSchema, ceil: bool(false), countIncludePad: bool(false) };

/** MaxPool: 2-D max pooling. */
export const MaxPool: OpDef<PoolAttrs> = defineOp<PoolAttrs>({
  doc: "2-D max pooling; ceil or floor rounding, explicit pads",
  attrs: poolSchema,
  validate: checkSpatial,
  infer: (a, [x]) => [x ? spatialShape(x, a.kernel, a.strides, a.pads, [1, 1], a.ceil, x[1]) : undefined],
  kernel: (k, [x]) => [pool(k, x, true)],
});

/** AvgPool: 2-D average pooling. */
export const AvgPool: OpDef<PoolAttrs> = defineOp<PoolAttrs>({
  doc: "2-D average pooling; ceil or floor rounding, explicit pads, countIncludePad",
  attrs: poolSchema,
  validate: checkSpatial,
  infer: (a, [x]) => [x ? spatialShape(x, a.kernel, a.strides, a.pads, [1, 1], a.ceil, x[1]) : undefined],
  kernel: (k, [x]) => [pool(k, x, false)],
});

function globalPool(k: KernelContext<unknown>, x: Act, avg: boolean): Act {
  const { tf } = k;
  const axes = x.t.rank === 4 && x.nhwc ? [1, 2] : Array.from({ length: x.t.rank - 2 }, (_, i) => i + 2);
  const t = avg ? tf.mean(x.t, axes, true) : tf.max(x.t, axes, true);
  return { t, nhwc: x.nhwc };
}

const globalShape = (x: Shape): Shape[] => [x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined];

/** GlobalAvgPool: mean over every axis after the channels, kept as size 1. */
export const GlobalAvgPool: OpDef<Record<string, never>> = defineOp<Record<string, never>>({
  doc: "mean over the spatial axes (kept as 1)",
  attrs: {},
  infer: (_a, [x]) => globalShape(x),
  kernel: (k, [x]) => [globalPool(k, x, true)],
});

/** GlobalMaxPool: max over every axis after the channels, kept as size 1. */
export const GlobalMaxPool: OpDef<Record<string, never>> = defineOp<Record<string, never>>({
  doc: "max over the spatial axes (kept as 1)",
  attrs: {},
  infer: (_a, [x]) => globalShape(x),
  kernel: (k, [x]) => [globalPool(k, x, false)],
});

function channelAxis(k: KernelContext<unknown>, x: Act, axis: number, n: number): number {
  const r = x.t.rank;
  const ax = axis < 0 ? axis + r : axis;
  if (ax < 0 || ax >= r) throw k.fail(`axis ${axis} is out of range for rank ${r}`);
  const real = axisIn(x, ax);
  if (x.t.shape[real] !== n) throw k.fail(`input has ${x.t.shape[real]} channels on axis ${ax}, parameters have ${n}`);
  return real;
}

/** Attributes of BatchNorm. */
export interface BatchNormAttrs {
  epsilon: number;
}

/**
 * The per-channel multiplier and addend of an inference-time BatchNorm: y = x * mul + add with
 * mul = scale / sqrt(var + epsilon), add = bias - mean * mul.
 */
export function batchNormAffine(
  scale: Float32Array,
  bias: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  epsilon: number,
): { mul: Float32Array; add: Float32Array } {
  const c = scale.length;
  const mul = new Float32Array(c), add = new Float32Array(c);
  for (let i = 0; i < c; i++) {
    const r = scale[i] / Math.sqrt(variance[i] + epsilon);
    mul[i] = r;
    add[i] = bias[i] - mean[i] * r;
  }
  return { mul, add };
}

/** BatchNorm: inference-time batch normalization over axis 1. */
export const BatchNorm: OpDef<BatchNormAttrs> = defineOp<BatchNormAttrs>({
  doc: "inference batch normalization over axis 1; scale, bias, mean, var [C]",
  params: ["scale", "bias", "mean", "var"],
  attrs: { epsilon: float(1e-5) },
  elementwise: true,
  channelwise: true,
  kernel(k, [x]) {
    const { tf, params: p } = k;
    const { scale: s, bias: b, mean: m, var: v } = p;
    if (!s || !b || !m || !v) throw k.fail("needs scale, bias, mean and var");
    const { mul, add } = batchNormAffine(s.data, b.data, m.data, v.data, k.a.epsilon);
    const axis = channelAxis(k, x, 1, mul.length);
    const r = x.t.rank;
    const t = tf.tidy(() => tf.add(tf.mul(x.t, alongAxis(tf, mul, axis, r)), alongAxis(tf, add, axis, r)) as TfTensor);
    return [{ t, nhwc: x.nhwc }];
  },
});

/** Attributes of Scale. */
export interface ScaleAttrs {
  axis: number;
}

/** Scale: per-channel affine y = x * scale[c] + bias[c]. */
export const Scale: OpDef<ScaleAttrs> = defineOp<ScaleAttrs>({
  doc: "per-channel affine on `axis`; scale [C], bias? [C]",
  params: ["scale", "bias"],
  attrs: { axis: int(1) },
  elementwise: true,
  channelwise: true,
  kernel(k, [x]) {
    const { tf, params } = k;
    const s = params.scale;
    if (!s) throw k.fail("needs a scale");
    const axis = channelAxis(k, x, k.a.axis, s.data.length);
    const t = tf.tidy(() => {
      let y = tf.mul(x.t, alongAxis(tf, s.data, axis, x.t.rank));
      if (params.bias) y = tf.add(y, alongAxis(tf, params.bias.data, axis, x.t.rank));
      return y as TfTensor;
    });
    return [{ t, nhwc: x.nhwc }];
  },
});

/** Attributes of LRN. */
export interface LrnAttrs {
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

function lrn(k: KernelContext<LrnAttrs>, x: Act): Act {
  const { tf, a } = k;
  const { size, alpha, beta, bias } = a;
  // Caffe ACROSS_CHANNELS and ONNX: x / (bias + alpha / size * sum of squares over channels
  // [c - floor((size-1)/2), c + ceil((size-1)/2)])^beta. An odd size makes the window symmetric: tfjs's own LRN
  // (channels last, depth radius (size-1)/2, unscaled alpha) computes exactly that in one op.
  if (x.t.rank === 4 && size % 2 === 1) {
    const xin = needNhwc(k, x);
    try {
      return nhwc(tf.localResponseNormalization(xin as never, (size - 1) / 2, bias, alpha / size, beta));
    } finally {
      xin.dispose();
    }
  }
  // Otherwise by slices of the padded squares (each wasm slice copies its whole input to JavaScript: slow path).
  const axis = axisIn(x, 1);
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

/** LRN: local response normalization across channels. */
export const LRN: OpDef<LrnAttrs> = defineOp<LrnAttrs>({
  doc: "local response normalization across channels (Caffe ACROSS_CHANNELS, ONNX LRN)",
  attrs: { size: int(5), alpha: float(1e-4), beta: float(0.75), bias: float(1) },
  elementwise: true,
  kernel: (k, [x]) => [lrn(k, x)],
});

function convTranspose(k: KernelContext<ConvTransposeAttrs>, x: Act): Act {
  const { tf, a, params } = k;
  const w = params.weight;
  if (!w || w.shape.length !== 4) throw k.fail("needs a weight of shape [I, O/group, kh, kw]");
  if (a.group !== 1) throw k.fail(`grouped transposed convolution (group ${a.group})`, "unsupported");
  if (a.dilations.some((d) => d !== 1)) throw k.fail("dilated transposed convolution", "unsupported");
  const [ci, o, kh, kw] = w.shape;
  const [sh, sw] = a.strides, [pt, pl, pb, pr] = a.pads, [oph, opw] = a.outputPadding;
  const xin = needNhwc(k, x);
  const t = tf.tidy(() => {
    const [n, h, ww, c] = xin.shape;
    if (c !== ci) throw k.fail(`input has ${c} channels, the weight [${w.shape}] needs ${ci}`);
    // The full ("valid") result, then ONNX's pads crop it and output_padding extends it at the end.
    const fh = (h - 1) * sh + kh, fw = (ww - 1) * sw + kw;
    const f = tf.transpose(tf.tensor4d(w.data, w.shape as [number, number, number, number]), [2, 3, 1, 0]);
    let y = tf.conv2dTranspose(xin as never, f as never, [n, fh, fw, o], [sh, sw], "valid") as TfTensor;
    const oh = fh + oph - pt - pb, ow = fw + opw - pl - pr;
    if (oph || opw) y = tf.pad(y, [[0, 0], [0, oph], [0, opw], [0, 0]]);
    if (pt || pl || oh !== y.shape[1] || ow !== y.shape[2]) y = tf.slice(y, [0, pt, pl, 0], [n, oh, ow, o]);
    if (params.bias) y = tf.add(y, tf.tensor1d(params.bias.data));
    return y;
  });
  xin.dispose();
  return nhwc(t);
}

/** ConvTranspose: 2-D transposed convolution (Caffe Deconvolution, TF Conv2DBackpropInput). */
export const ConvTranspose: OpDef<ConvTransposeAttrs> = defineOp<ConvTransposeAttrs>({
  doc: "2-D transposed convolution; weight [I, O/group, kh, kw] (ONNX), bias? [O]; pads crop, outputPadding extends",
  params: ["weight", "bias"],
  attrs: { ...spatialSchema, dilations: ints([1, 1]), group: int(1), outputPadding: ints([0, 0]) },
  validate: (a) => checkSpatial(a) ?? pair(a.outputPadding, "outputPadding"),
  infer(a, [x], l) {
    if (!x || x.length !== 4) return [undefined];
    const w = l.params.weight?.shape;
    const o = w ? w[1] * a.group : null;
    const out = (d: Dim, i: number) => {
      const n = dimNum(d);
      if (n === undefined) return null;
      return (n - 1) * a.strides[i] + (a.kernel[i] - 1) * a.dilations[i] + 1 + a.outputPadding[i] - a.pads[i] -
        a.pads[i + 2];
    };
    return [[x[0], o, out(x[2], 0), out(x[3], 1)]];
  },
  kernel: (k, [x]) => [convTranspose(k, x)],
});

/** Params type re-exported for the executor. */
export type { Params };
