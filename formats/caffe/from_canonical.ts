/**
 * Canonical layers to Caffe layer records (current form), one table entry per canonical op ({@link CAFFE_WRITERS}):
 * each canonical layer becomes one or more Caffe layers, each a {@link TextMessage} (what the deploy prototxt prints
 * and the caffemodel encodes) plus its blobs in Caffe's shapes. Ops Caffe cannot express are a CaffeError
 * `unsupported` naming the op, the layer and the format.
 *
 * The reader most users have is OpenCV's DNN module, so what is written is what OpenCV 4.6 reads: floor-rounding
 * pooling is written as Caffe's default ceil pooling followed by a `Slice` that drops the extra row or column (the
 * dropped part goes to a `Silence` layer), never as `round_mode: FLOOR`, which OpenCV and Caffe releases before 2018
 * reject; Clip 0..6 is OpenCV's `ReLU6`. Caffe pads symmetrically and has no padding layer: a convolution with more
 * padding on one side (TF 'SAME' with stride 2) gets the extra zero rows and columns concatenated to its input
 * ({@link padRecords}: `Slice`, `Power` by 0, `Concat`), `Pad` is written the same way, max pooling with more
 * padding at the end pads the start and crops the ceil windows, and an average pooling that excludes padded cells is
 * followed by a `Scale` over H and W. A bilinear resize by integer factors (OpenCV 4.6 cannot parse `interp_param`)
 * is an edge pad and a depthwise Deconvolution with the bilinear kernel ({@link linearTaps}).
 *
 * @module
 */
import { CaffeError } from "../../src/errors.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Layer } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { type Shape, windowOut } from "../../src/model/shapes.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { ConvAttrs, ConvTransposeAttrs, PoolAttrs } from "../../src/ops/nn.ts";
import type { BinaryAttrs, ClipAttrs } from "../../src/ops/elementwise.ts";
import {
  nearestIsRepeat,
  type PadAttrs,
  type ReduceAttrs,
  type ResizeAttrs,
  type SliceAttrs,
  type SplitAttrs,
} from "../../src/ops/tensor_ops.ts";
import { TextEnum, TextMessage } from "./prototxt.ts";
import { lazyFloat32 } from "./to_canonical.ts";

/** One Caffe layer to write: its record without blobs, and its blobs (float32). */
export interface CaffeRecord {
  msg: TextMessage;
  blobs: Tensor[];
}

function unsupported(layer: Layer, why: string): CaffeError {
  return new CaffeError("unsupported", `Cannot write ${layer.op} layer '${layer.name}' to Caffe: ${why}`, {
    layer: layer.name,
  });
}

function record(name: string, type: string, bottom: string[], top: string[]): TextMessage {
  const m = new TextMessage().add("name", name).add("type", type);
  for (const b of bottom) m.add("bottom", b);
  for (const t of top) m.add("top", t);
  return m;
}

function f32(t: Tensor, shape?: number[]): Tensor {
  const s = shape ?? [...t.shape];
  if (t.dtype === "float32") return t.with({ shape: s });
  return lazyFloat32(t.name, s, async () => Float32Array.from(await t.float32()));
}

function symmetric(layer: Layer, p: number[]): [number, number] {
  if (p[0] !== p[2] || p[1] !== p[3]) throw unsupported(layer, `asymmetric padding [${p.join(",")}]`);
  return [p[0], p[1]];
}

function hw(m: TextMessage, name: string, v: number[], def: number): void {
  if (v[0] === v[1]) {
    if (v[0] !== def) m.add(name === "kernel" ? "kernel_size" : name, v[0]);
  } else m.add(`${name}_h`, v[0]).add(`${name}_w`, v[1]);
}

/** The Input layer record of a network input. Symbolic dimensions are written as 1. */
export function inputRecord(name: string, shape: (number | string | null)[]): TextMessage {
  const s = new TextMessage();
  for (const d of shape) s.add("dim", typeof d === "number" ? d : 1);
  return record(name, "Input", [], [name]).add("input_param", new TextMessage().add("shape", s));
}

/** What a table entry gets. */
interface Ctx {
  layer: Layer;
  inShape: Shape;
  outShapes: Shape[];
  /** One Caffe layer of `type` with the layer's own bottoms and tops. */
  one(type: string, param?: [string, TextMessage], blobs?: Tensor[]): CaffeRecord[];
  fail(why: string): never;
}

type Writer = (c: Ctx) => CaffeRecord[];

const plain = (type: string): Writer => (c) => c.one(type);

function convParam(c: Ctx, a: ConvAttrs, o: number, kernel: number[]): TextMessage {
  const p = new TextMessage().add("num_output", o);
  if (!c.layer.params.bias) p.add("bias_term", false);
  hw(p, "pad", symmetric(c.layer, a.pads), 0);
  hw(p, "kernel", kernel, -1);
  hw(p, "stride", a.strides, 1);
  if (a.group !== 1) p.add("group", a.group);
  if (a.dilations[0] !== 1 || a.dilations[1] !== 1) {
    p.add("dilation", a.dilations[0]);
    if (a.dilations[1] !== a.dilations[0]) p.add("dilation", a.dilations[1]);
  }
  return p;
}

/** Records that keep `[start, end)` of `axis` of `bottom` as `top`: a Slice, its dropped parts to a Silence. */
function sliceRecords(
  name: string,
  bottom: string,
  top: string,
  axis: number,
  start: number,
  end: number,
  dim: number,
) {
  const p = new TextMessage().add("axis", axis);
  const tops: string[] = [];
  const drop: string[] = [];
  if (start > 0) {
    p.add("slice_point", start);
    tops.push(`${name}_before`);
    drop.push(`${name}_before`);
  }
  tops.push(top);
  if (end < dim) {
    p.add("slice_point", end);
    tops.push(`${name}_after`);
    drop.push(`${name}_after`);
  }
  const out: CaffeRecord[] = [{ msg: record(name, "Slice", [bottom], tops).add("slice_param", p), blobs: [] }];
  if (drop.length) out.push({ msg: record(`${name}_silence`, "Silence", drop, []), blobs: [] });
  return out;
}

/** Padding of one axis: rows (or columns, channels) added before and after; negative ones crop. */
interface AxisPad {
  axis: number;
  before: number;
  after: number;
}

/**
 * Records that pad `bottom` (of known shape) as `top`, axis after axis, from layers OpenCV and Caffe read: the border
 * rows a mode needs are cut out by one `Slice` (the rest to a `Silence`), a constant row is the last row times 0
 * plus the value (`Power`), and a `Concat` joins the rows before, the input and the rows after. Negative pads
 * crop with a `Slice`. `edge` repeats the border row, `reflect` mirrors the rows next to it.
 */
function padRecords(
  name: string,
  bottom: string,
  top: string,
  shape: number[],
  pads: AxisPad[],
  mode: string,
  value: number,
): CaffeRecord[] {
  const out: CaffeRecord[] = [];
  const dims = [...shape];
  const todo = pads.filter((p) => p.before || p.after);
  let cur = bottom;
  todo.forEach((p, k) => {
    const n = `${name}_${"nchw"[p.axis] ?? p.axis}`;
    const next = k === todo.length - 1 ? top : `${n}_out`;
    const d = dims[p.axis];
    // Crops first: a Slice keeps the middle.
    const cropB = Math.max(0, -p.before), cropA = Math.max(0, -p.after);
    const b = Math.max(0, p.before), a = Math.max(0, p.after);
    if (cropB || cropA) {
      const cropped = b || a ? `${n}_crop_out` : next;
      out.push(...sliceRecords(`${n}_crop`, cur, cropped, p.axis, cropB, d - cropA, d));
      cur = cropped;
    }
    const m = d - cropB - cropA;
    if (b || a) {
      if (mode === "reflect" && (b >= m || a >= m)) {
        throw new CaffeError("unsupported", `reflect padding of ${Math.max(a, b)} on an axis of ${m}`);
      }
      // The rows each side needs, by index into the (cropped) input.
      const rowsB = mode === "reflect"
        ? Array.from({ length: b }, (_, i) => b - i)
        : new Array(b).fill(mode === "edge" ? 0 : m - 1);
      const rowsA = mode === "reflect" ? Array.from({ length: a }, (_, i) => m - 2 - i) : new Array(a).fill(m - 1);
      const need = [...new Set([...rowsB, ...rowsA])].sort((x, y) => x - y);
      const row = (i: number) => `${n}_row${i}`;
      // One Slice cutting every needed row out; the pieces in between go to a Silence.
      const pieces: { start: number; top: string }[] = [];
      const drop: string[] = [];
      let at = 0;
      for (const i of need) {
        if (i > at) {
          pieces.push({ start: at, top: `${n}_gap${at}` });
          drop.push(`${n}_gap${at}`);
        }
        pieces.push({ start: i, top: row(i) });
        at = i + 1;
      }
      if (at < m) {
        pieces.push({ start: at, top: `${n}_gap${at}` });
        drop.push(`${n}_gap${at}`);
      }
      const sp = new TextMessage().add("axis", p.axis);
      for (const q of pieces.slice(1)) sp.add("slice_point", q.start);
      const tops = pieces.map((q) => q.top);
      out.push({
        msg: pieces.length > 1
          ? record(`${n}_rows`, "Slice", [cur], tops).add("slice_param", sp)
          : record(`${n}_rows`, "Split", [cur], tops),
        blobs: [],
      });
      if (drop.length) out.push({ msg: record(`${n}_rows_silence`, "Silence", drop, []), blobs: [] });
      let fill = (i: number) => row(i);
      if (mode === "constant") {
        const f = `${n}_fill`;
        const pp = new TextMessage().add("scale", 0);
        if (value !== 0) pp.add("shift", value);
        out.push({ msg: record(f, "Power", [row(m - 1)], [f]).add("power_param", pp), blobs: [] });
        fill = () => f;
      }
      const cat = [...rowsB.map(fill), cur, ...rowsA.map(fill)];
      out.push({
        msg: record(`${n}_concat`, "Concat", cat, [next]).add("concat_param", new TextMessage().add("axis", p.axis)),
        blobs: [],
      });
      cur = next;
    }
    dims[p.axis] = m + b + a;
  });
  if (!todo.length) out.push({ msg: record(name, "Split", [bottom], [top]), blobs: [] });
  return out;
}

function binaryConst(c: Ctx, op: Op): CaffeRecord[] {
  const { layer } = c;
  const a = attrsOf<BinaryAttrs>(layer);
  const k = layer.params.const;
  const channels = c.inShape?.[1];
  const n = k.size;
  if (a.constFirst && (op === "Sub" || op === "Div" || op === "Pow")) c.fail(`a constant on the left of ${op}`);
  const perChannel = n > 1 && typeof channels === "number" && n === channels &&
    k.shape.slice(-2).every((d, _, s) => s.length < 3 || d === 1) && (c.inShape?.length ?? 0) >= 2;
  if (n !== 1 && !perChannel) c.fail(`a constant operand of shape [${k.shape}] that is not per channel`);
  const values = async () => await k.float32();
  if (n === 1 && (op === "Mul" || op === "Add" || op === "Sub" || op === "Div" || op === "Pow")) {
    // Power: y = (shift + scale * x) ^ power. The scalar is read when the prototxt is printed... it must be known
    // now, so it is read synchronously from a materialized tensor.
    if (!k.materialized) c.fail("a scalar constant that is not in memory");
    const v = new Float32Array(k.syncBytes().slice().buffer)[0];
    const p = new TextMessage();
    if (op === "Mul") p.add("scale", v);
    else if (op === "Div") p.add("scale", 1 / v);
    else if (op === "Add") p.add("shift", v);
    else if (op === "Sub") p.add("shift", -v);
    else p.add("power", v);
    if (k.dtype !== "float32") c.fail(`a ${k.dtype} scalar`);
    return c.one("Power", ["power_param", p]);
  }
  if (n === 1 && (op === "Max" || op === "Min")) {
    // max(x, c) = relu(x - c) + c and min(x, c) = c - relu(c - x) (exact for c = 0: a ReLU); TF's clip_by_value.
    if (!k.materialized || k.dtype !== "float32") c.fail("a scalar constant that is not in memory");
    const v = new Float32Array(k.syncBytes().slice().buffer)[0];
    if (op === "Max" && v === 0) return c.one("ReLU");
    const { name } = layer;
    const s = op === "Max" ? 1 : -1;
    const power = (nm: string, b: string, t: string, shift: number) =>
      record(nm, "Power", [b], [t]).add("power_param", new TextMessage().add("scale", s).add("shift", shift));
    return [
      { msg: power(`${name}_in`, layer.inputs[0], `${name}_in`, -s * v), blobs: [] },
      { msg: record(`${name}_relu`, "ReLU", [`${name}_in`], [`${name}_relu`]), blobs: [] },
      { msg: power(name, `${name}_relu`, layer.outputs[0], v), blobs: [] },
    ];
  }
  if (op !== "Mul" && op !== "Add" && op !== "Sub" && op !== "Div") c.fail(`${op} with a per-channel constant`);
  const ch = n;
  const map = (f: (v: number) => number, name: string) => lazyFloat32(name, [ch], async () => (await values()).map(f));
  const p = new TextMessage();
  if (op === "Mul" || op === "Div") {
    const s = map(op === "Mul" ? (v) => v : (v) => 1 / v, `${k.name}/scale`);
    return c.one("Scale", ["scale_param", p], [s]);
  }
  p.add("bias_term", true);
  const ones = Tensor.fromFloat32(`${k.name}/ones`, [ch], new Float32Array(ch).fill(1));
  return c.one("Scale", ["scale_param", p], [ones, map(op === "Add" ? (v) => v : (v) => -v, `${k.name}/bias`)]);
}

function eltwise(c: Ctx): CaffeRecord[] {
  const { layer } = c;
  if (layer.params.const) return binaryConst(c, layer.op);
  if (layer.inputs.length < 2) c.fail("Eltwise needs at least two activation inputs");
  const p = new TextMessage();
  if (layer.op === "Mul") p.add("operation", new TextEnum("PROD"));
  else if (layer.op === "Max") p.add("operation", new TextEnum("MAX"));
  else if (layer.op === "Add" || layer.op === "Sub") {
    let coeffs = attrsOf<BinaryAttrs>(layer).coeffs;
    if (layer.op === "Sub") {
      if (layer.inputs.length !== 2) c.fail("Sub of more than two inputs");
      coeffs = [1, -1];
    }
    for (const v of coeffs ?? []) p.add("coeff", v);
  } else c.fail(`${layer.op} of two activations`);
  return c.one("Eltwise", ["eltwise_param", p]);
}

function pooling(c: Ctx): CaffeRecord[] {
  const { layer, inShape } = c;
  const a = attrsOf<PoolAttrs>(layer);
  const max = layer.op === "MaxPool";
  const p = new TextMessage().add("pool", new TextEnum(max ? "MAX" : "AVE"));
  // Max pooling with more padding at the end (TF 'SAME', stride 2, even size): Caffe pads the start, and its
  // windows are clipped to the input, as padding with -inf does; the window count is cut to size below.
  const [t, l, b, r] = a.pads;
  const endHeavy = max && b >= t && r >= l && (b !== t || r !== l);
  const pads: [number, number] = endHeavy ? [t, l] : symmetric(layer, a.pads);
  const ends = endHeavy ? [b, r] : pads;
  if (!max && !a.countIncludePad && (pads[0] || pads[1])) return averageOfValid(c, a, pads);
  hw(p, "kernel", a.kernel, -1);
  hw(p, "stride", a.strides, 1);
  hw(p, "pad", pads, 0);
  if (a.ceil && !endHeavy) return c.one("Pooling", ["pooling_param", p]);
  // Caffe rounds up. Floor rounding gives the same size unless the last window starts inside the input; then the
  // ceil result has one more row or column, which a Slice drops (the first windows are the same in both modes).
  const dims = [2, 3].map((i) => (inShape && typeof inShape[i] === "number" ? inShape[i] as number : undefined));
  const sizes = dims.map((d, i) =>
    d === undefined ? undefined : {
      want: windowOut(d, a.kernel[i], a.strides[i], pads[i], ends[i], 1, a.ceil),
      caffe: windowOut(d, a.kernel[i], a.strides[i], pads[i], pads[i], 1, true),
    }
  );
  if (sizes.some((s) => s === undefined)) {
    // Size unknown (an ONNX stream read from stdin states it only after its nodes): a floor window count can only
    // be kept when no window can hang over; with stride 1 and no padding both roundings agree.
    if (a.strides.every((s) => s === 1) && !endHeavy) return c.one("Pooling", ["pooling_param", p]);
    c.fail(
      endHeavy
        ? `padding [${a.pads}] on an input of unknown size`
        : "floor-rounding pooling on an input of unknown size",
    );
  }
  if (sizes.some((s) => s!.caffe < s!.want)) c.fail(`asymmetric padding [${a.pads}] with ceil rounding`);
  const differs = sizes.map((s) => s!.want !== s!.caffe);
  if (!differs.some(Boolean)) return c.one("Pooling", ["pooling_param", p]);
  const name = layer.name, out = layer.outputs[0];
  const pooled = `${name}_ceil`;
  const records: CaffeRecord[] = [{
    msg: record(name, "Pooling", layer.inputs, [pooled]).add("pooling_param", p),
    blobs: [],
  }];
  let cur = pooled;
  [0, 1].forEach((i) => {
    if (!differs[i]) return;
    const last = i === 1 || !differs[1];
    const top = last ? out : `${name}_crop_h`;
    records.push(...sliceRecords(`${name}_crop_${i ? "w" : "h"}`, cur, top, i + 2, 0, sizes[i]!.want, sizes[i]!.caffe));
    cur = top;
  });
  return records;
}

/**
 * Average pooling that excludes padded cells (TF 'SAME', count_include_pad = 0): Caffe's AVE divides by the window
 * clipped to the padded input, so a `Scale` over H and W (axis 2, a blob [H', W']) multiplies each output by
 * Caffe's divisor over the count of real cells in its window.
 */
function averageOfValid(c: Ctx, a: PoolAttrs, pads: [number, number]): CaffeRecord[] {
  const { layer } = c;
  const shape = knownShape(c, [2, 3]);
  const mid = `${layer.name}_with_pads`;
  const inner: Ctx = {
    ...c,
    layer: { ...layer, outputs: [mid], attrs: { ...layer.attrs, countIncludePad: true } },
    one: (type, param, blobs = []) => {
      const msg = record(layer.name, type, layer.inputs, [mid]);
      if (param && param[1].size) msg.add(param[0], param[1]);
      return [{ msg, blobs }];
    },
  };
  const records = pooling(inner);
  // Per axis: Caffe's divisor and the real cells of output o's window, for the sizes the pooling gives.
  const axis = (i: number) => {
    const d = shape[2 + i], k = a.kernel[i], st = a.strides[i], p = pads[i];
    const n = windowOut(d, k, st, p, p, 1, a.ceil);
    return Array.from({ length: n }, (_, o) => {
      const start = o * st - p, end = Math.min(start + k, d + p);
      return { caffe: end - start, real: Math.min(end, d) - Math.max(start, 0) };
    });
  };
  const [hs, ws] = [axis(0), axis(1)];
  const m = new Float32Array(hs.length * ws.length);
  hs.forEach((y, i) => ws.forEach((x, j) => (m[i * ws.length + j] = (y.caffe * x.caffe) / (y.real * x.real))));
  const p = new TextMessage().add("axis", 2).add("num_axes", 2);
  const scale = Tensor.fromFloat32(`${layer.name}.valid`, [hs.length, ws.length], m);
  const sc = record(`${layer.name}_valid`, "Scale", [mid], layer.outputs).add("scale_param", p);
  return [...records, { msg: sc, blobs: [scale] }];
}

function globalPool(c: Ctx, max: boolean, flatten: boolean): CaffeRecord[] {
  const p = new TextMessage().add("pool", new TextEnum(max ? "MAX" : "AVE")).add("global_pooling", true);
  const { layer } = c;
  if (!flatten) return c.one("Pooling", ["pooling_param", p]);
  const mid = `${layer.name}_pool`;
  return [
    { msg: record(layer.name, "Pooling", layer.inputs, [mid]).add("pooling_param", p), blobs: [] },
    { msg: record(`${layer.name}_flatten`, "Flatten", [mid], layer.outputs), blobs: [] },
  ];
}

function reshapeTo(c: Ctx): CaffeRecord[] {
  const out = c.outShapes[0];
  if (!out || out.slice(1).some((d) => typeof d !== "number")) c.fail("the output shape is unknown");
  const shape = new TextMessage().add("dim", 0);
  for (const d of out!.slice(1)) shape.add("dim", d as number);
  return c.one("Reshape", ["reshape_param", new TextMessage().add("shape", shape)]);
}

/** The layer's input shape with `axes` known (others, such as a symbolic batch, may be anything), or an error. */
function knownShape(c: Ctx, axes: number[]): number[] {
  const s = c.inShape;
  if (!s || axes.some((i) => typeof s[i] !== "number")) c.fail("the input shape is unknown (pass an input shape)");
  return s!.map((d) => (typeof d === "number" ? d : -1));
}

/** The Deconvolution that upsamples one axis linearly: its taps, its padding (output rows cropped each side), the
 * edge rows padded to its input each side. */
export interface LinearTaps {
  weights: number[];
  crop: number;
  pad: number;
}

/**
 * One axis of a linear resize of an axis of `n` by the integer factor `f`, as an edge pad by `pad` rows each side
 * and a Deconvolution of stride f with `weights` and padding `crop` (Caffe's deconvolution padding drops that many
 * rows of its output at each end), which gives the n * f rows. Output o samples the input at
 * x = (o + alpha) / f - beta, clamped to [0, n - 1]; on the edge-padded input the clamp is the padding itself while x
 * stays within `pad` rows of the input, so output o = sum_j padded[j] * tent(x + pad - j), and the tent (1 - |t|)
 * sampled at steps of 1 / f is the kernel (FCN's bilinear upsampling kernel), zero-extended at the end to give the
 * size. Undefined when the coordinates are not of that form (align_corners steps by (n - 1) / (n * f - 1), not 1 / f).
 */
export function linearTaps(coordinate: string, n: number, f: number): LinearTaps | undefined {
  const modes: Record<string, [number, number]> = {
    half_pixel: [0.5, 0.5],
    // PyTorch's variant differs only for an output of one row, where both sample x = 0.
    pytorch_half_pixel: [0.5, 0.5],
    asymmetric: [0, 0],
    tf_half_pixel_for_nn: [0.5, 0],
  };
  // A single row is copied whatever the coordinates, and a factor of 1 with aligned corners is the identity.
  const same = n === 1 || (coordinate === "align_corners" && f === 1);
  const [alpha, beta] = same ? [0, 0] : modes[coordinate] ?? [NaN, NaN];
  if (Number.isNaN(alpha) || !Number.isInteger(f) || f < 1) return undefined;
  const pad = f === 1 && alpha === beta ? 0 : 1;
  const lo = alpha / f - beta, hi = (n * f - 1 + alpha) / f - beta;
  if (lo < -pad || hi > n - 1 + pad) return undefined;
  // Output o is row q = o + crop of the full deconvolution; tap m = q - j * f weighs tent((m - center) / f), and
  // the crop puts the first tap that weighs anything at m = 0.
  const crop = Math.ceil(alpha + (pad - beta + 1) * f - 1);
  const center = crop - alpha - (pad - beta) * f;
  const taps = Math.ceil(center + f);
  // The deconvolution gives f * (n + 2 pad - 1) + k - 2 crop rows: n * f for this kernel size k.
  const k = 2 * crop + f * (1 - 2 * pad);
  if (k < taps) return undefined;
  const weights = Array.from({ length: k }, (_, m) => Math.max(0, 1 - Math.abs(m - center) / f));
  return { weights, crop, pad };
}

/**
 * Bilinear resize by integer factors, as OpenCV 4.6 reads it (it has no `Interp`): an edge pad by one row and
 * column ({@link padRecords}) and a depthwise Deconvolution with the bilinear kernel whose padding crops the rows
 * and columns it adds at the borders ({@link linearTaps}).
 */
function bilinearResize(c: Ctx, a: ResizeAttrs): CaffeRecord[] {
  const { layer } = c;
  const shape = knownShape(c, [1, 2, 3]);
  const out = c.outShapes[0];
  const [ch, h, w] = [shape[1], shape[2], shape[3]];
  const oh = out?.[2], ow = out?.[3];
  if (typeof oh !== "number" || typeof ow !== "number") c.fail("the output size is unknown");
  const f = [(oh as number) / h, (ow as number) / w];
  // The evaluator samples with the given scales when there are any: they must be the factors too.
  const scalesAgree = !a.scales || (a.scales[0] === f[0] && a.scales[1] === f[1]);
  if (!f.every((v) => Number.isInteger(v) && v >= 1) || !scalesAgree) {
    c.fail(
      `linear resize by ${a.scales ? a.scales.join("x") : f.join("x")} (only integer factors are a Deconvolution)`,
    );
  }
  const taps = [linearTaps(a.coordinate, h, f[0]), linearTaps(a.coordinate, w, f[1])];
  if (!taps[0] || !taps[1]) {
    c.fail(
      `linear resize with ${a.coordinate} coordinates (its source step (n - 1) / (n * f - 1) is not 1 / f: no fixed-stride Deconvolution)`,
    );
  }
  const [th, tw] = taps as LinearTaps[];
  const name = layer.name;
  const records: CaffeRecord[] = [];
  let bottom = layer.inputs[0];
  if (th.pad || tw.pad) {
    bottom = `${name}_padded`;
    const pads = [{ axis: 2, before: th.pad, after: th.pad }, { axis: 3, before: tw.pad, after: tw.pad }];
    records.push(...padRecords(`${name}_pad`, layer.inputs[0], bottom, shape, pads, "edge", 0));
  }
  const [kh, kw] = [th.weights.length, tw.weights.length];
  const kernel = new Float32Array(ch * kh * kw);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) kernel[i * kw + j] = th.weights[i] * tw.weights[j];
  }
  for (let k = 1; k < ch; k++) kernel.copyWithin(k * kh * kw, 0, kh * kw);
  const p = new TextMessage().add("num_output", ch).add("bias_term", false);
  hw(p, "pad", [th.crop, tw.crop], 0);
  hw(p, "kernel", [kh, kw], -1);
  hw(p, "stride", f, 1);
  p.add("group", ch);
  records.push({
    msg: record(name, "Deconvolution", [bottom], layer.outputs).add("convolution_param", p),
    blobs: [Tensor.fromFloat32(`${name}.bilinear`, [ch, 1, kh, kw], kernel)],
  });
  return records;
}

/** Canonical op -> Caffe layers. */
export const CAFFE_WRITERS: Readonly<Partial<Record<Op, Writer>>> = Object.freeze({
  Conv(c) {
    const w = c.layer.params.weight;
    if (!w || w.shape.length !== 4) c.fail("Caffe convolutions are 2-D");
    const a = attrsOf<ConvAttrs>(c.layer);
    const blobs = [f32(w)];
    if (c.layer.params.bias) blobs.push(f32(c.layer.params.bias, [w.shape[0]]));
    const [t, l, b, r] = a.pads;
    if (t === b && l === r) {
      return c.one("Convolution", ["convolution_param", convParam(c, a, w.shape[0], a.kernel)], blobs);
    }
    // Asymmetric padding (TF 'SAME' with stride 2 on an even size pads one more at the end): the extra rows and
    // columns of zeros are concatenated to the input, and the convolution pads the rest symmetrically.
    const { layer } = c;
    const shape = knownShape(c, [2, 3]);
    const ph = Math.min(t, b), pw = Math.min(l, r);
    const padded = `${layer.name}_padded`;
    const extra = [{ axis: 2, before: t - ph, after: b - ph }, { axis: 3, before: l - pw, after: r - pw }];
    const p = convParam(c, { ...a, pads: [ph, pw, ph, pw] }, w.shape[0], a.kernel);
    return [
      ...padRecords(`${layer.name}_pad`, layer.inputs[0], padded, shape, extra, "constant", 0),
      { msg: record(layer.name, "Convolution", [padded], layer.outputs).add("convolution_param", p), blobs },
    ];
  },
  ConvTranspose(c) {
    const w = c.layer.params.weight;
    const a = attrsOf<ConvTransposeAttrs>(c.layer);
    if (a.outputPadding.some((v) => v !== 0)) c.fail(`output padding [${a.outputPadding}]`);
    // Caffe's Deconvolution weight is [in, out/group, kh, kw], as ONNX's.
    const o = w.shape[1] * a.group;
    const blobs = [f32(w)];
    if (c.layer.params.bias) blobs.push(f32(c.layer.params.bias, [o]));
    return c.one("Deconvolution", ["convolution_param", convParam(c, a, o, a.kernel)], blobs);
  },
  FC(c) {
    const w = c.layer.params.weight;
    if (!w || w.shape.length !== 2) c.fail("FC weight must be [out, in]");
    const p = new TextMessage().add("num_output", w.shape[0]);
    if (!c.layer.params.bias) p.add("bias_term", false);
    const blobs = [f32(w)];
    if (c.layer.params.bias) blobs.push(f32(c.layer.params.bias, [w.shape[0]]));
    return c.one("InnerProduct", ["inner_product_param", p], blobs);
  },
  MatMul(c) {
    const w = c.layer.params.weight;
    if (!w || c.inShape?.length !== 2) c.fail("a matrix product other than a 2-D input times a constant");
    // InnerProduct weight [N, K] = the constant [K, N] transposed.
    const [k, n] = w.shape;
    const t = lazyFloat32(`${w.name}/t`, [n, k], async () => {
      const v = await w.float32();
      const o = new Float32Array(v.length);
      for (let i = 0; i < k; i++) for (let j = 0; j < n; j++) o[j * k + i] = v[i * n + j];
      return o;
    });
    const p = new TextMessage().add("num_output", n).add("bias_term", false);
    return c.one("InnerProduct", ["inner_product_param", p], [t]);
  },
  MaxPool: pooling,
  AvgPool: pooling,
  GlobalAvgPool: (c) => globalPool(c, false, false),
  GlobalMaxPool: (c) => globalPool(c, true, false),
  ReduceMean: (c) => reducePool(c, false),
  ReduceMax: (c) => reducePool(c, true),
  Relu: plain("ReLU"),
  LeakyRelu: (c) =>
    c.one("ReLU", ["relu_param", new TextMessage().add("negative_slope", attrsOf<{ alpha: number }>(c.layer).alpha)]),
  PRelu(c) {
    const s = c.layer.params.slope;
    const ch = c.inShape?.[1];
    if (s.size === 1) {
      return c.one("PReLU", ["prelu_param", new TextMessage().add("channel_shared", true)], [f32(s, [1])]);
    }
    // Per channel: [C, 1, 1] or [1, C, 1, 1] (TF's broadcast against NHWC, converted), whatever leading 1s.
    const at = s.shape.length - 3;
    if (s.size !== ch || at < 0 || s.shape.some((d, i) => i !== at && d !== 1)) c.fail(`a slope of shape [${s.shape}]`);
    return c.one("PReLU", ["prelu_param", new TextMessage()], [f32(s, [s.size])]);
  },
  Clip(c) {
    const { min, max } = attrsOf<ClipAttrs>(c.layer);
    if (min === 0 && max === Infinity) return c.one("ReLU");
    // OpenCV's Caffe reader knows ReLU6 (0..6); BVLC Caffe has no clip layer.
    if (min === 0 && max === 6) return c.one("ReLU6");
    return c.fail(`Caffe has no clip layer for [${min}, ${max}] (only ReLU6, as OpenCV reads it)`);
  },
  Sigmoid: plain("Sigmoid"),
  Swish(c) {
    // x * sigmoid(x): a Sigmoid and an Eltwise product.
    const { layer } = c;
    const s = `${layer.name}_sigmoid`;
    return [
      { msg: record(s, "Sigmoid", layer.inputs, [s]), blobs: [] },
      { msg: eltProd(layer.name, [layer.inputs[0], s], layer.outputs), blobs: [] },
    ];
  },
  HardSigmoid(c) {
    const a = attrsOf<{ alpha: number; beta: number }>(c.layer);
    return hardSigmoid(c.layer.name, c.layer.inputs[0], c.layer.outputs[0], a.alpha, a.beta);
  },
  HardSwish(c) {
    const { layer } = c;
    const hs = `${layer.name}_hardsigmoid`;
    return [
      ...hardSigmoid(hs, layer.inputs[0], hs, 1 / 6, 0.5),
      { msg: eltProd(layer.name, [layer.inputs[0], hs], layer.outputs), blobs: [] },
    ];
  },
  Resize(c) {
    const { layer, inShape } = c;
    const a = attrsOf<ResizeAttrs>(layer);
    const out = c.outShapes[0];
    const ch = inShape?.[1], h = inShape?.[2], w = inShape?.[3];
    if (a.mode === "linear") return bilinearResize(c, a);
    if (a.coordinate === "align_corners") c.fail(`${a.mode} resize with ${a.coordinate} coordinates`);
    // Nearest resizing by an integer factor repeats each pixel: a depthwise Deconvolution with a kernel of ones
    // and the factor as stride (OpenCV and Caffe both read it).
    if (typeof ch !== "number" || typeof h !== "number" || typeof w !== "number" || !out) {
      c.fail("the input size is unknown");
    }
    const [sh, sw] = [(out![2] as number) / (h as number), (out![3] as number) / (w as number)];
    if (!nearestIsRepeat(a, sh, sw)) {
      c.fail(
        `nearest resize by ${sh}x${sw} with ${a.coordinate} coordinates and ${a.nearest} rounding (only a repeat of pixels is a Deconvolution)`,
      );
    }
    const p = new TextMessage().add("num_output", ch as number).add("bias_term", false);
    hw(p, "kernel", [sh, sw], -1);
    hw(p, "stride", [sh, sw], 1);
    p.add("group", ch as number);
    const n = (ch as number) * sh * sw;
    return c.one("Deconvolution", ["convolution_param", p], [
      Tensor.fromFloat32(`${layer.name}.ones`, [ch as number, 1, sh, sw], new Float32Array(n).fill(1)),
    ]);
  },
  Tanh: plain("TanH"),
  Abs: plain("AbsVal"),
  Softplus: plain("BNLL"),
  Exp: plain("Exp"),
  Log: plain("Log"),
  Elu: (c) => c.one("ELU", ["elu_param", new TextMessage().add("alpha", attrsOf<{ alpha: number }>(c.layer).alpha)]),
  Softmax(c) {
    const axis = attrsOf<{ axis: number }>(c.layer).axis;
    const rank = c.inShape?.length;
    const ax = axis < 0 && rank ? axis + rank : axis;
    if (ax < 0) c.fail(`softmax axis ${axis} of an input of unknown rank`);
    return c.one("Softmax", ["softmax_param", ax === 1 ? new TextMessage() : new TextMessage().add("axis", ax)]);
  },
  LRN(c) {
    const a = attrsOf<{ size: number; alpha: number; beta: number; bias: number }>(c.layer);
    const p = new TextMessage().add("local_size", a.size).add("alpha", a.alpha).add("beta", a.beta).add("k", a.bias);
    return c.one("LRN", ["lrn_param", p]);
  },
  Dropout: (c) =>
    c.one("Dropout", [
      "dropout_param",
      new TextMessage().add("dropout_ratio", attrsOf<{ ratio: number }>(c.layer).ratio),
    ]),
  Identity: plain("Split"),
  Cast(c) {
    // Every canonical value is float32 already: a cast to float32 (from an int32 input, say) changes nothing.
    const to = attrsOf<{ to: string }>(c.layer).to;
    if (to !== "float32") return c.fail(`Caffe has no cast (to ${to})`);
    return c.one("Split");
  },
  Pad(c) {
    // PyTorch exports some average pools with an all-zero Pad in front: nothing to do, so a Split (identity).
    const a = attrsOf<PadAttrs>(c.layer);
    if (a.pads.every((p) => p === 0)) return c.one("Split");
    // Caffe has no padding layer: border rows (zeros, copies or mirrors) concatenated on each padded axis.
    const r = a.pads.length / 2;
    const shape = knownShape(c, Array.from({ length: r }, (_, i) => i).filter((i) => a.pads[i] || a.pads[i + r]));
    if (r !== shape.length) c.fail(`pads [${a.pads}] do not fit a rank-${shape.length} input`);
    const axes = Array.from({ length: r }, (_, i) => ({ axis: i, before: a.pads[i], after: a.pads[i + r] }));
    try {
      return padRecords(c.layer.name, c.layer.inputs[0], c.layer.outputs[0], shape, axes, a.mode, a.value);
    } catch (e) {
      if (e instanceof CaffeError) c.fail(e.message);
      throw e;
    }
  },
  Concat(c) {
    const { axis, constAt } = attrsOf<{ axis: number; constAt: number[] | null }>(c.layer);
    if (constAt?.length) c.fail("Caffe has no constant operand for Concat");
    return c.one("Concat", ["concat_param", axis === 1 ? new TextMessage() : new TextMessage().add("axis", axis)]);
  },
  Flatten(c) {
    const axis = attrsOf<{ axis: number }>(c.layer).axis;
    return c.one("Flatten", ["flatten_param", axis === 1 ? new TextMessage() : new TextMessage().add("axis", axis)]);
  },
  Reshape(c) {
    const shape = new TextMessage();
    for (const d of attrsOf<{ shape: number[] }>(c.layer).shape) shape.add("dim", d);
    return c.one("Reshape", ["reshape_param", new TextMessage().add("shape", shape)]);
  },
  Squeeze: reshapeTo,
  Unsqueeze: reshapeTo,
  Transpose(c) {
    const perm = attrsOf<{ perm: number[] | null }>(c.layer).perm;
    const rank = c.inShape?.length;
    const order = perm ?? (rank ? Array.from({ length: rank }, (_, i) => rank - 1 - i) : undefined);
    if (!order) c.fail("a transpose of an input of unknown rank");
    const p = new TextMessage();
    for (const o of order!) p.add("order", o);
    return c.one("Permute", ["permute_param", p]);
  },
  Slice(c) {
    const a = attrsOf<SliceAttrs>(c.layer);
    if (a.starts.length !== 1 || (a.steps && a.steps[0] !== 1)) c.fail("a slice of more than one axis or with steps");
    const rank = c.inShape?.length ?? 0;
    let axis = a.axes ? a.axes[0] : 0;
    if (axis < 0) axis += rank;
    const d = c.inShape?.[axis];
    if (typeof d !== "number") c.fail("a slice of an axis of unknown size");
    const cl = (v: number) => Math.min(Math.max(v < 0 ? v + (d as number) : v, 0), d as number);
    return sliceRecords(
      c.layer.name,
      c.layer.inputs[0],
      c.layer.outputs[0],
      axis,
      cl(a.starts[0]),
      cl(a.ends[0]),
      d as number,
    );
  },
  Split(c) {
    // Caffe's Slice cuts one axis at the slice points, into as many tops as the layer has outputs.
    const a = attrsOf<SplitAttrs>(c.layer);
    const rank = c.inShape?.length ?? 0;
    const axis = a.axis < 0 ? a.axis + rank : a.axis;
    const sizes = c.outShapes.map((s) => s?.[axis]);
    if (sizes.some((d) => typeof d !== "number")) c.fail("a split of an axis of unknown size");
    const p = new TextMessage().add("axis", axis);
    let at = 0;
    for (const d of sizes.slice(0, -1)) p.add("slice_point", at += d as number);
    return c.one("Slice", ["slice_param", p]);
  },
  Add: eltwise,
  Sub: eltwise,
  Mul: eltwise,
  Max: eltwise,
  Min: eltwise,
  Div: eltwise,
  Pow: eltwise,
  BatchNorm(c) {
    const { layer } = c;
    const { scale, bias, mean, var: variance } = layer.params;
    if (!scale || !bias || !mean || !variance) c.fail("BatchNorm without all four parameters");
    const ch = mean.size;
    const bn = record(layer.name, "BatchNorm", layer.inputs, layer.outputs);
    bn.add(
      "batch_norm_param",
      new TextMessage().add("use_global_stats", true).add("eps", attrsOf<{ epsilon: number }>(layer).epsilon),
    );
    const sc = record(`${layer.name}_scale`, "Scale", layer.outputs, layer.outputs);
    sc.add("scale_param", new TextMessage().add("bias_term", true));
    return [
      {
        msg: bn,
        blobs: [
          f32(mean, [ch]),
          f32(variance, [ch]),
          Tensor.fromFloat32(`${layer.name}.factor`, [1], Float32Array.of(1)),
        ],
      },
      { msg: sc, blobs: [f32(scale, [ch]), f32(bias, [ch])] },
    ];
  },
  Scale(c) {
    const s = c.layer.params.scale;
    if (!s) c.fail("Scale without a scale parameter");
    const p = new TextMessage();
    const axis = attrsOf<{ axis: number }>(c.layer).axis;
    if (axis !== 1) p.add("axis", axis);
    if (c.layer.params.bias) p.add("bias_term", true);
    const blobs = [f32(s, [s.size])];
    if (c.layer.params.bias) blobs.push(f32(c.layer.params.bias, [c.layer.params.bias.size]));
    return c.one("Scale", ["scale_param", p], blobs);
  },
  Passthrough(c) {
    const { layer } = c;
    const o = layer.origin;
    if (o?.format !== "caffe") {
      const native = layer.attrs.onnxOp ?? layer.attrs.type;
      c.fail(`a ${o?.format ?? "foreign"} layer passed through unchanged${native ? ` (${native})` : ""}`);
    }
    const src = (o!.data as { msg: TextMessage }).msg;
    const msg = record(layer.name, String(layer.attrs.type ?? src.str("type", "")), layer.inputs, layer.outputs);
    for (const [k, v] of src.fields) if (!["name", "type", "bottom", "top", "phase"].includes(k)) msg.add(k, v);
    return [{ msg, blobs: Object.values(layer.params).map((t) => f32(t)) }];
  },
});

function eltProd(name: string, bottoms: string[], tops: string[]): TextMessage {
  return record(name, "Eltwise", bottoms, tops).add(
    "eltwise_param",
    new TextMessage().add("operation", new TextEnum("PROD")),
  );
}

/** clip(alpha * x + beta, 0, 1) = relu(alpha * x + beta) - relu(alpha * x + beta - 1): Power, ReLUs and an Eltwise. */
function hardSigmoid(name: string, x: string, out: string, alpha: number, beta: number): CaffeRecord[] {
  const lin = `${name}_linear`, hi = `${name}_minus1`, r0 = `${name}_relu`, r1 = `${name}_relu1`;
  const power = (n: string, b: string, t: string, scale: number, shift: number) =>
    record(n, "Power", [b], [t]).add("power_param", new TextMessage().add("scale", scale).add("shift", shift));
  return [
    { msg: power(lin, x, lin, alpha, beta), blobs: [] },
    { msg: power(hi, x, hi, alpha, beta - 1), blobs: [] },
    { msg: record(r0, "ReLU", [lin], [r0]), blobs: [] },
    { msg: record(r1, "ReLU", [hi], [r1]), blobs: [] },
    {
      msg: record(name, "Eltwise", [r0, r1], [out]).add(
        "eltwise_param",
        new TextMessage().add("operation", new TextEnum("SUM")).add("coeff", 1).add("coeff", -1),
      ),
      blobs: [],
    },
  ];
}

function reducePool(c: Ctx, max: boolean): CaffeRecord[] {
  const a = attrsOf<ReduceAttrs>(c.layer);
  const rank = c.inShape?.length;
  const axes = (a.axes ?? []).map((x) => (x < 0 && rank ? x + rank : x)).sort().join();
  if (rank !== 4 || axes !== "2,3") c.fail(`a reduction over axes [${a.axes}] (Caffe pools over H and W only)`);
  return globalPool(c, max, !a.keepdims);
}

/** Converts one canonical layer. `inShape` is its first input's shape and `outShapes` its outputs', when known. */
export function toCaffeRecords(layer: Layer, inShape: Shape, outShapes: Shape[] = []): CaffeRecord[] {
  const fail = (why: string): never => {
    throw unsupported(layer, why);
  };
  const f = CAFFE_WRITERS[layer.op];
  if (!f) return fail("Caffe has no such layer");
  return f({
    layer,
    inShape,
    outShapes,
    one(type, param, blobs = []) {
      const msg = record(layer.name, type, layer.inputs, layer.outputs);
      if (param && param[1].size) msg.add(param[0], param[1]);
      return [{ msg, blobs }];
    },
    fail,
  });
}
