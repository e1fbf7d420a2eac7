/**
 * Ops that move elements rather than compute them (reshape, transpose, slice, pad, gather, resize, ...), reductions,
 * softmax and matrix products. Semantics follow ONNX (opset 13) on NCHW: an `axis` counts in the canonical layout,
 * negative axes count from the end. Kernels that depend on element order run in NCHW; the layout-free ones keep
 * what they get.
 *
 * @module
 */
import type { Dim } from "../model/types.ts";
import type { Tf, TfTensor } from "./op_def.ts";
import { AXIS_IN_NHWC, axisIn, inNchw, nchw, normAxis, sameLayout, toNchw } from "./act.ts";
import { type Act, bool, defineOp, float, floats, int, ints, type KernelContext, type OpDef, str } from "./op_def.ts";
import { dimNum } from "./window.ts";

const known = (ds: Dim[]): ds is number[] => ds.every((d) => typeof d === "number");
const prod = (ds: number[]) => ds.reduce((p, d) => p * d, 1);

function axisOrFail(k: KernelContext<unknown>, axis: number, r: number): number {
  const ax = normAxis(axis, r);
  if (ax === undefined) throw k.fail(`axis ${axis} is out of range for rank ${r}`);
  return ax;
}

/** Attributes of ops with one axis. */
export interface AxisAttrs {
  axis: number;
}

/** Flatten: [d0..d(axis-1)] x [d(axis)..] as a 2-D tensor. */
export const Flatten: OpDef<AxisAttrs> = defineOp<AxisAttrs>({
  doc: "2-D [prod(d<axis), prod(d>=axis)] in C,H,W order",
  attrs: { axis: int(1) },
  infer(a, [x]) {
    if (!x) return [undefined];
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    const p = (ds: Dim[]) => known(ds) ? prod(ds) : null;
    return [[p(x.slice(0, ax)), p(x.slice(ax))]];
  },
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const ax = k.a.axis < 0 ? k.a.axis + n.rank : k.a.axis;
      const lead = prod(n.shape.slice(0, ax));
      return k.tf.reshape(n, [lead, n.size / Math.max(1, lead)]);
    }),
  ],
});

/** Attributes of Reshape. */
export interface ReshapeAttrs {
  /** Target shape: 0 copies the input dimension, -1 is inferred. */
  shape: number[];
}

function reshapeTarget(spec: number[], x: Dim[]): Dim[] {
  const out: Dim[] = spec.map((d, i) => (d === 0 ? x[i] : d));
  const minus = out.indexOf(-1);
  if (minus >= 0) {
    const rest = out.filter((_, i) => i !== minus);
    out[minus] = known(x) && known(rest) ? prod(x) / Math.max(1, prod(rest)) : null;
  }
  return out;
}

/** Reshape to a constant shape. */
export const Reshape: OpDef<ReshapeAttrs> = defineOp<ReshapeAttrs>({
  doc: "to a constant shape (0 copies a dimension, -1 infers one), C,H,W order",
  attrs: { shape: ints() },
  validate: (a) => a.shape.filter((d) => d === -1).length > 1 ? "more than one -1 in the shape" : undefined,
  infer: (a, [x]) => [x ? reshapeTarget(a.shape, x) : undefined],
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const out = reshapeTarget(k.a.shape, n.shape) as number[];
      if (prod(out) !== n.size || out.some((d) => !Number.isInteger(d))) {
        throw k.fail(`cannot reshape [${n.shape.join(",")}] to [${k.a.shape.join(",")}]`);
      }
      return k.tf.reshape(n, out);
    }),
  ],
});

/** Attributes of Transpose. */
export interface TransposeAttrs {
  /** Output axis i is input axis perm[i]; null reverses the axes. */
  perm: number[] | null;
}

const permOf = (a: TransposeAttrs, r: number) => a.perm ?? Array.from({ length: r }, (_, i) => r - 1 - i);

/** Transpose: permutes the axes. */
export const Transpose: OpDef<TransposeAttrs> = defineOp<TransposeAttrs>({
  doc: "permutes axes: output axis i is input axis perm[i]",
  attrs: { perm: ints(null) },
  infer: (a, [x]) => [x ? permOf(a, x.length).map((p) => x[p]) : undefined],
  kernel: (k, [x]) => [inNchw(k.tf, x, (n) => k.tf.transpose(n, permOf(k.a, n.rank)))],
});

/** Attributes of Squeeze and Unsqueeze. */
export interface AxesAttrs {
  axes: number[] | null;
}

function squeezeShape(axes: number[] | null, x: Dim[]): Dim[] {
  const drop = new Set((axes ?? x.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + x.length : a)));
  return x.filter((_, i) => !drop.has(i));
}

function unsqueezeShape(axes: number[], x: Dim[]): Dim[] {
  const r = x.length + axes.length;
  const at = new Set(axes.map((a) => (a < 0 ? a + r : a)));
  const out: Dim[] = [];
  let j = 0;
  for (let i = 0; i < r; i++) out.push(at.has(i) ? 1 : x[j++]);
  return out;
}

/** Squeeze: drops size-1 axes (all of them when `axes` is null). */
export const Squeeze: OpDef<AxesAttrs> = defineOp<AxesAttrs>({
  doc: "drops size-1 axes (all when axes is null)",
  attrs: { axes: ints(null) },
  infer: (a, [x]) => [x ? squeezeShape(a.axes, x) : undefined],
  kernel: (k, [x]) => [inNchw(k.tf, x, (n) => k.tf.reshape(n, squeezeShape(k.a.axes, n.shape) as number[]))],
});

/** Unsqueeze: inserts size-1 axes at `axes` of the output (TF ExpandDims). */
export const Unsqueeze: OpDef<{ axes: number[] }> = defineOp<{ axes: number[] }>({
  doc: "inserts size-1 axes at output positions `axes` (TF ExpandDims)",
  attrs: { axes: ints() },
  infer: (a, [x]) => [x ? unsqueezeShape(a.axes, x) : undefined],
  kernel: (k, [x]) => [inNchw(k.tf, x, (n) => k.tf.reshape(n, unsqueezeShape(k.a.axes, n.shape) as number[]))],
});

/** Attributes of Concat. */
export interface ConcatAttrs {
  axis: number;
  /**
   * Positions, in the joined operand list, of constant operands (parameters `const0`, `const1`, ... in that order,
   * canonical layout); null when every operand is an input.
   */
  constAt: number[] | null;
}

/** One operand of a Concat: an input value, or a constant parameter (its role). */
export type ConcatPart = { input: string } | { param: string };

/** The operands of a Concat layer in order: its inputs with its constants (`constAt`) between them. */
export function concatParts(a: Pick<ConcatAttrs, "constAt">, l: { inputs: readonly string[] }): ConcatPart[] {
  const at = a.constAt ?? [];
  const out: ConcatPart[] = [];
  let i = 0;
  for (let p = 0; p < l.inputs.length + at.length; p++) {
    const k = at.indexOf(p);
    out.push(k >= 0 ? { param: `const${k}` } : { input: l.inputs[i++] });
  }
  return out;
}

/** Concat: joins inputs (and constants) along `axis`. */
export const Concat: OpDef<ConcatAttrs> = defineOp<ConcatAttrs>({
  doc: "joins inputs (and constant operands, `constAt`) along any axis",
  attrs: { axis: int(1), constAt: ints(null) },
  validate(a, l) {
    const at = a.constAt ?? [];
    const n = l.inputs.length + at.length;
    if (at.some((p, i) => p < 0 || p >= n || at.indexOf(p) !== i)) return `constAt [${at}] is not a set of positions`;
    for (let k = 0; k < at.length; k++) if (!l.params[`const${k}`]) return `constant operand const${k} is missing`;
    return n ? undefined : "has no operands";
  },
  infer(a, ins, l) {
    let j = 0;
    const shapes = concatParts(a, l).map((p): Dim[] | undefined =>
      "param" in p ? [...(l.params[p.param]?.shape ?? [])] : ins[j++]
    );
    const x = shapes[0];
    if (!x || shapes.some((s) => !s)) return [undefined];
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    const out = [...x];
    const ds = shapes.map((s) => s![ax]);
    out[ax] = known(ds) ? ds.reduce((s, d) => s + d, 0) : null;
    return [out];
  },
  kernel(k, ins) {
    const { tf } = k;
    let keep = false;
    const parts = concatParts(k.a, k.layer);
    const t = tf.tidy(() => {
      let ts: TfTensor[], nhwc = false;
      if (parts.length === ins.length) ({ ts, nhwc } = sameLayout(tf, ins));
      else {
        // Constants are canonical: everything in NCHW.
        let j = 0;
        ts = parts.map((p) => {
          if ("input" in p) return toNchw(tf, ins[j++]);
          const c = k.params[p.param];
          return tf.tensor(c.data, [...c.shape]);
        });
      }
      keep = nhwc;
      const ax = axisOrFail(k, k.a.axis, ts[0].rank);
      return tf.concat(ts, nhwc ? AXIS_IN_NHWC[ax] : ax);
    });
    return [{ t, nhwc: keep }];
  },
});

/** Attributes of Split. */
export interface SplitAttrs {
  axis: number;
  /** Sizes of the pieces; null splits evenly into as many pieces as the layer has outputs. */
  split: number[] | null;
}

function splitSizes(a: SplitAttrs, d: number, n: number): number[] {
  if (a.split) return a.split;
  const each = Math.ceil(d / n);
  return Array.from({ length: n }, (_, i) => Math.min(each, d - each * i));
}

/** Split: cuts the input along `axis` into the layer's outputs. */
export const Split: OpDef<SplitAttrs> = defineOp<SplitAttrs>({
  doc: "cuts along `axis` into the layer's outputs (sizes `split`, or even)",
  attrs: { axis: int(0), split: ints(null) },
  validate: (a, l) =>
    a.split && a.split.length !== l.outputs.length ? "split sizes do not match the outputs" : undefined,
  infer(a, [x], l) {
    if (!x) return l.outputs.map(() => undefined);
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    const d = dimNum(x[ax]);
    return l.outputs.map((_, i) => {
      const s = [...x];
      s[ax] = a.split ? a.split[i] : d === undefined ? null : splitSizes(a, d, l.outputs.length)[i];
      return s;
    });
  },
  kernel(k, [x]) {
    const { tf } = k;
    const ax = axisOrFail(k, k.a.axis, x.t.rank);
    const real = axisIn(x, ax);
    const sizes = splitSizes(k.a, x.t.shape[real], k.layer.outputs.length);
    if (sizes.reduce((s, d) => s + d, 0) !== x.t.shape[real]) throw k.fail(`split sizes [${sizes}] do not add up`);
    return tf.split(x.t, sizes, real).map((t) => ({ t, nhwc: x.nhwc }));
  },
});

/** Attributes of Slice. */
export interface SliceAttrs {
  starts: number[];
  ends: number[];
  /** Axes the bounds apply to; null: the first starts.length axes. */
  axes: number[] | null;
  steps: number[] | null;
}

/** The indices Slice keeps along each axis (ONNX clamping rules). */
function sliceIndices(a: SliceAttrs, shape: number[]): (number[] | undefined)[] {
  const out: (number[] | undefined)[] = shape.map(() => undefined);
  a.starts.forEach((s0, i) => {
    const ax0 = a.axes ? a.axes[i] : i;
    const ax = ax0 < 0 ? ax0 + shape.length : ax0;
    const d = shape[ax];
    const step = a.steps?.[i] ?? 1;
    const clampS = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + d : v, lo), hi);
    const idx: number[] = [];
    if (step > 0) {
      const s = clampS(s0, 0, d), e = clampS(a.ends[i], 0, d);
      for (let j = s; j < e; j += step) idx.push(j);
    } else {
      const s = clampS(s0, 0, d - 1), e = clampS(a.ends[i], -1, d - 1);
      for (let j = s; j > e; j += step) idx.push(j);
    }
    out[ax] = idx;
  });
  return out;
}

/** Slice with constant bounds (ONNX Slice, TF StridedSlice without masks that change rank). */
export const Slice: OpDef<SliceAttrs> = defineOp<SliceAttrs>({
  doc: "constant starts/ends/axes/steps on any axis (ONNX clamping; negative steps)",
  attrs: { starts: ints(), ends: ints(), axes: ints(null), steps: ints(null) },
  validate(a) {
    if (a.ends.length !== a.starts.length) return "starts and ends differ in length";
    if (a.steps?.some((s) => s === 0)) return "a step of 0";
    return undefined;
  },
  infer(a, [x]) {
    if (!x) return [undefined];
    const out = [...x];
    a.starts.forEach((_, i) => {
      const ax0 = a.axes ? a.axes[i] : i;
      const ax = ax0 < 0 ? ax0 + x.length : ax0;
      const d = dimNum(x[ax]);
      if (d === undefined) out[ax] = null;
      else {
        const one: SliceAttrs = { starts: [a.starts[i]], ends: [a.ends[i]], axes: [0], steps: [a.steps?.[i] ?? 1] };
        out[ax] = sliceIndices(one, [d])[0]!.length;
      }
    });
    return [out];
  },
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const { tf } = k;
      let y = n;
      sliceIndices(k.a, n.shape).forEach((idx, ax) => {
        if (!idx) return;
        const contiguous = idx.every((v, i) => v === idx[0] + i);
        if (contiguous && idx.length) {
          const begin = y.shape.map((_, j) => (j === ax ? idx[0] : 0));
          const size = y.shape.map((d, j) => (j === ax ? idx.length : d));
          y = tf.slice(y, begin, size);
        } else y = tf.gather(y, tf.tensor1d(idx, "int32"), ax);
      });
      return y;
    }),
  ],
});

/** Attributes of Pad. */
export interface PadAttrs {
  /** [x1_begin, x2_begin, ..., x1_end, x2_end, ...] over every axis (ONNX order); negative crops. */
  pads: number[];
  mode: string;
  value: number;
}

/** Pad on any axis: constant, reflect or edge. */
export const Pad: OpDef<PadAttrs> = defineOp<PadAttrs>({
  doc: "pads [begins..., ends...] on every axis; constant (value), reflect or edge; negative pads crop",
  attrs: { pads: ints(), mode: str("constant", ["constant", "reflect", "edge"]), value: float(0) },
  validate: (a) => a.pads.length % 2 ? "pads must hold a begin and an end per axis" : undefined,
  infer(a, [x]) {
    if (!x) return [undefined];
    const r = a.pads.length / 2;
    if (r !== x.length) return [undefined];
    return [x.map((d, i) => (typeof d === "number" ? d + a.pads[i] + a.pads[i + r] : d))];
  },
  kernel(k, [x]) {
    const { tf, a } = k;
    const r = x.t.rank;
    if (a.pads.length !== 2 * r) throw k.fail(`pads [${a.pads}] do not fit a rank-${r} input`);
    const keep = r === 4 && x.nhwc;
    // Pairs in the tensor's actual layout.
    const pairs: [number, number][] = Array.from({ length: r }, () => [0, 0]);
    for (let i = 0; i < r; i++) pairs[keep ? AXIS_IN_NHWC[i] : i] = [a.pads[i], a.pads[i + r]];
    const t = tf.tidy(() => {
      let y = x.t;
      const grow = pairs.map(([b, e]) => [Math.max(0, b), Math.max(0, e)] as [number, number]);
      if (grow.some(([b, e]) => b || e)) {
        if (a.mode === "constant") y = tf.pad(y, grow, a.value);
        else if (a.mode === "reflect") y = tf.mirrorPad(y, grow, "reflect");
        else {
          grow.forEach(([b, e], ax) => {
            if (!b && !e) return;
            const d = y.shape[ax];
            const idx = Array.from({ length: d + b + e }, (_, j) => Math.min(Math.max(j - b, 0), d - 1));
            y = tf.gather(y, tf.tensor1d(idx, "int32"), ax);
          });
        }
      }
      if (pairs.some(([b, e]) => b < 0 || e < 0)) {
        const begin = pairs.map(([b]) => Math.max(0, -b));
        const size = y.shape.map((d, i) => d - begin[i] - Math.max(0, -pairs[i][1]));
        y = tf.slice(y, begin, size);
      }
      return y === x.t ? tf.clone(y) : y;
    });
    return [{ t, nhwc: keep }];
  },
});

/** Attributes of Gather. */
export interface GatherAttrs {
  axis: number;
  /** Constant indices; null when they are the layer's second input (an activation of float32 integer values). */
  indices: number[] | null;
  /** Shape of the constant indices ([] for a scalar index, which drops the axis); null with activation indices. */
  indicesShape: number[] | null;
}

/** Gather with constant indices, or with indices computed by the graph (the second input). */
export const Gather: OpDef<GatherAttrs> = defineOp<GatherAttrs>({
  doc: "takes indices along `axis`: constant (of shape indicesShape) or the second input (integer values)",
  attrs: { axis: int(0), indices: ints(null), indicesShape: ints(null) },
  validate(a, l) {
    if (l.inputs.length === 2) return a.indices ? "has both constant and activation indices" : undefined;
    if (l.inputs.length !== 1) return `takes one or two inputs, has ${l.inputs.length}`;
    if (!a.indices || !a.indicesShape) return "needs indices (an attribute or a second input)";
    return prod(a.indicesShape) === a.indices.length ? undefined : "indices do not fill indicesShape";
  },
  infer(a, [x, i]) {
    if (!x) return [undefined];
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    const is = a.indicesShape ?? i;
    return [is ? [...x.slice(0, ax), ...is, ...x.slice(ax + 1)] : undefined];
  },
  kernel(k, [x, ix]) {
    const { tf } = k;
    if (ix) {
      const t = tf.tidy(() => {
        const n = toNchw(tf, x), it = toNchw(tf, ix);
        const ax = axisOrFail(k, k.a.axis, n.rank);
        const d = n.shape[ax];
        // Float32 integer values; TF and ONNX count negative indices from the end (ONNX) or refuse them (TF).
        let i = tf.cast(tf.round(it), "int32");
        i = tf.where(tf.less(i, 0), tf.add(i, tf.scalar(d, "int32")), i);
        return tf.gather(n, i, ax);
      });
      return [nchw(t)];
    }
    return [
      inNchw(tf, x, (n) => {
        const ax = axisOrFail(k, k.a.axis, n.rank);
        const d = n.shape[ax];
        const idx = k.a.indices!.map((i) => (i < 0 ? i + d : i));
        const g = tf.gather(n, tf.tensor1d(idx, "int32"), ax);
        return tf.reshape(g, [...n.shape.slice(0, ax), ...k.a.indicesShape!, ...n.shape.slice(ax + 1)]);
      }),
    ];
  },
});

/** Attributes of GatherND. */
export interface GatherNDAttrs {
  /** Constant indices; null when they are the layer's second input (an activation of float32 integer values). */
  indices: number[] | null;
  /** Shape of the constant indices [..., K]; null with activation indices. */
  indicesShape: number[] | null;
}

/** Output shape of GatherND: indices [..., K] pick slices of data's leading K axes. */
function gatherNdShape(x: Dim[], is: Dim[]): Dim[] | undefined {
  const kk = is[is.length - 1];
  if (typeof kk !== "number" || kk > x.length) return undefined;
  return [...is.slice(0, -1), ...x.slice(kk)];
}

/**
 * GatherND (ONNX, batch_dims 0; TF GatherNd): the last axis of the indices, of size K, holds positions in the data's
 * first K axes (canonical order), and each picks the slice of the remaining axes.
 */
export const GatherND: OpDef<GatherNDAttrs> = defineOp<GatherNDAttrs>({
  doc: "indices [..., K] address the first K axes: constant (of shape indicesShape), or the second input",
  attrs: { indices: ints(null), indicesShape: ints(null) },
  validate(a, l) {
    if (l.inputs.length === 2) return a.indices ? "has both constant and activation indices" : undefined;
    if (l.inputs.length !== 1) return `takes one or two inputs, has ${l.inputs.length}`;
    if (!a.indices || !a.indicesShape?.length) return "needs indices (an attribute or a second input)";
    return prod(a.indicesShape) === a.indices.length ? undefined : "indices do not fill indicesShape";
  },
  infer(a, [x, i]) {
    const is = a.indicesShape ?? i;
    return [x && is && is.length ? gatherNdShape(x, is) : undefined];
  },
  kernel(k, [x, ix]) {
    const { tf } = k;
    const t = tf.tidy(() => {
      const n = toNchw(tf, x);
      const it = ix
        ? tf.cast(tf.round(toNchw(tf, ix)), "int32")
        : tf.tensor(Int32Array.from(k.a.indices!), k.a.indicesShape!, "int32");
      const kk = it.shape[it.rank - 1]!;
      if (kk > n.rank) throw k.fail(`indices address ${kk} axes of a rank-${n.rank} input`);
      // Negative positions count from the end of their axis (ONNX).
      const dims = tf.tensor1d(n.shape.slice(0, kk), "int32");
      const i = tf.where(tf.less(it, 0), tf.add(it, dims), it);
      return tf.gatherND(n, i);
    });
    return [nchw(t)];
  },
});

/** Attributes of TopK. */
export interface TopKAttrs {
  /** How many; a constant. */
  k: number;
  axis: number;
  /** True: the largest k (TF's only mode); false: the smallest. */
  largest: boolean;
  sorted: boolean;
}

/** TopK: the k largest (or smallest) values along `axis` and their indices, as two outputs. */
export const TopK: OpDef<TopKAttrs> = defineOp<TopKAttrs>({
  doc: "the k largest (or smallest) values along `axis`, sorted, and their indices (second output, float32 values)",
  attrs: { k: int(), axis: int(-1), largest: bool(true), sorted: bool(true) },
  validate: (a, l) =>
    a.k < 0
      ? `k ${a.k} is negative`
      : l.outputs.length < 1 || l.outputs.length > 2
      ? "has one or two outputs"
      : undefined,
  infer(a, [x], l) {
    if (!x) return l.outputs.map(() => undefined);
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    const s = x.map((d, i) => (i === ax ? a.k : d));
    return l.outputs.map(() => s);
  },
  kernel(k, [x]) {
    const { tf } = k;
    const r = x.t.rank;
    const ax = axisOrFail(k, k.a.axis, r);
    if (k.a.k > (x.nhwc && r === 4 ? x.t.shape[AXIS_IN_NHWC[ax]] : x.t.shape[ax])) {
      throw k.fail(`k ${k.a.k} is larger than axis ${ax}`);
    }
    const [values, indices] = tf.tidy(() => {
      const n = toNchw(tf, x);
      // tfjs takes the top k of the last axis: move `ax` there and back.
      const perm = Array.from({ length: r }, (_, i) => i).filter((i) => i !== ax).concat([ax]);
      const back = perm.map((_, i) => perm.indexOf(i));
      const moved = ax === r - 1 ? n : tf.transpose(n, perm);
      const src = k.a.largest ? moved : tf.neg(moved);
      const top = tf.topk(src, k.a.k, true);
      const v = k.a.largest ? top.values : tf.neg(top.values);
      const i = tf.cast(top.indices, "float32");
      return ax === r - 1 ? [v, i] : [tf.transpose(v, back), tf.transpose(i, back)];
    });
    return k.layer.outputs.length === 2 ? [nchw(values), nchw(indices)] : (indices.dispose(), [nchw(values)]);
  },
});

/** Attributes of DepthToSpace and SpaceToDepth. */
export interface BlockAttrs {
  blocksize: number;
  /** DepthToSpace: DCR (depth-column-row, TF) or CRD (column-row-depth, PyTorch PixelShuffle). */
  mode: string;
}

/** DepthToSpace: moves channel blocks into space. */
export const DepthToSpace: OpDef<BlockAttrs> = defineOp<BlockAttrs>({
  doc: "channels to blocksize x blocksize space; mode DCR (TF) or CRD (PixelShuffle)",
  attrs: { blocksize: int(), mode: str("DCR", ["DCR", "CRD"]) },
  infer(a, [x]) {
    if (!x || x.length !== 4) return [undefined];
    const b = a.blocksize, m = (d: Dim, f: number) => (typeof d === "number" ? d * f : null);
    return [[x[0], m(x[1], 1 / (b * b)), m(x[2], b), m(x[3], b)]];
  },
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const { tf } = k;
      const [N, C, H, W] = n.shape, b = k.a.blocksize, c = C / (b * b);
      if (k.a.mode === "DCR") {
        const t = tf.transpose(tf.reshape(n, [N, b, b, c, H, W]), [0, 3, 4, 1, 5, 2]);
        return tf.reshape(t, [N, c, H * b, W * b]);
      }
      const t = tf.transpose(tf.reshape(n, [N, c, b, b, H, W]), [0, 1, 4, 2, 5, 3]);
      return tf.reshape(t, [N, c, H * b, W * b]);
    }),
  ],
});

/** SpaceToDepth: moves blocksize x blocksize space blocks into channels (DCR order). */
export const SpaceToDepth: OpDef<{ blocksize: number }> = defineOp<{ blocksize: number }>({
  doc: "blocksize x blocksize space blocks to channels (DCR order, as TF and ONNX)",
  attrs: { blocksize: int() },
  infer(a, [x]) {
    if (!x || x.length !== 4) return [undefined];
    const b = a.blocksize, m = (d: Dim, f: number) => (typeof d === "number" ? d * f : null);
    return [[x[0], m(x[1], b * b), m(x[2], 1 / b), m(x[3], 1 / b)]];
  },
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const { tf } = k;
      const [N, C, H, W] = n.shape, b = k.a.blocksize;
      const t = tf.transpose(tf.reshape(n, [N, C, H / b, b, W / b, b]), [0, 3, 5, 1, 2, 4]);
      return tf.reshape(t, [N, C * b * b, H / b, W / b]);
    }),
  ],
});

/** Attributes of Resize. */
export interface ResizeAttrs {
  mode: string;
  /** How output coordinates map to input ones (ONNX coordinate_transformation_mode). */
  coordinate: string;
  /** Rounding of nearest mode. */
  nearest: string;
  /** [scaleH, scaleW], or null when `sizes` is given. */
  scales: number[] | null;
  /** [outH, outW], or null when `scales` is given. */
  sizes: number[] | null;
}

const COORDS = ["half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"] as const;

function resizeOut(a: ResizeAttrs, h: number, w: number): [number, number] {
  if (a.sizes) return [a.sizes[0], a.sizes[1]];
  return [Math.floor(h * a.scales![0]), Math.floor(w * a.scales![1])];
}

/** Source coordinate of output index `o` (ONNX coordinate transformation). */
function source(a: ResizeAttrs, o: number, inn: number, out: number, scale: number): number {
  switch (a.coordinate) {
    case "half_pixel":
      return (o + 0.5) / scale - 0.5;
    case "pytorch_half_pixel":
      return out > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case "align_corners":
      return out === 1 ? 0 : (o * (inn - 1)) / (out - 1);
    case "tf_half_pixel_for_nn":
      return (o + 0.5) / scale;
    default:
      return o / scale;
  }
}

function nearestIndex(mode: string, x: number): number {
  switch (mode) {
    case "floor":
      return Math.floor(x);
    case "ceil":
      return Math.ceil(x);
    case "round_prefer_ceil":
      return Math.floor(x + 0.5);
    default:
      return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x);
  }
}

/** Resizes one axis of `t` by gathering (nearest) or blending two gathers (linear). */
function resizeAxis(tf: Tf, t: TfTensor, a: ResizeAttrs, ax: number, out: number, scale: number): TfTensor {
  const inn = t.shape[ax];
  if (a.mode === "nearest") {
    const idx = Array.from(
      { length: out },
      (_, o) => Math.min(Math.max(nearestIndex(a.nearest, source(a, o, inn, out, scale)), 0), inn - 1),
    );
    return tf.gather(t, tf.tensor1d(idx, "int32"), ax);
  }
  const lo: number[] = [], hi: number[] = [], wt: number[] = [];
  for (let o = 0; o < out; o++) {
    const x = Math.min(Math.max(source(a, o, inn, out, scale), 0), inn - 1);
    const l = Math.floor(x);
    lo.push(l);
    hi.push(Math.min(l + 1, inn - 1));
    wt.push(x - l);
  }
  const shape = t.shape.map((_, i) => (i === ax ? out : 1));
  const w = tf.tensor(wt, shape);
  const g0 = tf.gather(t, tf.tensor1d(lo, "int32"), ax), g1 = tf.gather(t, tf.tensor1d(hi, "int32"), ax);
  return tf.add(g0, tf.mul(tf.sub(g1, g0), w));
}

/**
 * True when a nearest Resize by integer factors `sh` x `sw` picks source pixel floor(o / s) for every output o, so
 * it is a plain repeat of each pixel (writers express that as a strided transposed convolution, or TF's legacy
 * nearest resize).
 */
export function nearestIsRepeat(a: ResizeAttrs, sh: number, sw: number): boolean {
  if (a.mode !== "nearest" || !Number.isInteger(sh) || !Number.isInteger(sw) || sh < 1 || sw < 1) return false;
  const s = Math.max(sh, sw);
  const rounds = a.nearest === "round_prefer_floor" || a.nearest === "round_prefer_ceil";
  switch (a.coordinate) {
    case "asymmetric":
      // o / s = k + r / s: floor gives k; rounding half down keeps k while r / s <= 1/2.
      return a.nearest === "floor" || (a.nearest === "round_prefer_floor" && s <= 2) || s === 1;
    case "half_pixel":
    case "pytorch_half_pixel":
      // (o + 0.5) / s - 0.5 = k + (r + 0.5) / s - 0.5, strictly within half a pixel of k.
      return rounds || s === 1;
    case "tf_half_pixel_for_nn":
      return a.nearest === "floor" || rounds && s === 1;
    default:
      return s === 1;
  }
}

/** Resize: nearest or (bi)linear on H and W, every ONNX coordinate mode. */
export const Resize: OpDef<ResizeAttrs> = defineOp<ResizeAttrs>({
  doc: "H,W resize: nearest (rounding `nearest`) or linear, coordinate modes of ONNX (TF's align_corners, half_pixel)",
  attrs: {
    mode: str("nearest", ["nearest", "linear"]),
    coordinate: str("half_pixel", COORDS),
    nearest: str("round_prefer_floor", ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]),
    scales: floats(null),
    sizes: ints(null),
  },
  validate: (a) => (a.scales ?? a.sizes)?.length === 2 ? undefined : "needs 2 spatial scales or sizes",
  infer(a, [x]) {
    if (!x || x.length !== 4) return [undefined];
    const h = dimNum(x[2]), w = dimNum(x[3]);
    if (a.sizes) return [[x[0], x[1], a.sizes[0], a.sizes[1]]];
    return [[
      x[0],
      x[1],
      h === undefined ? null : Math.floor(h * a.scales![0]),
      w === undefined ? null : Math.floor(w * a.scales![1]),
    ]];
  },
  kernel(k, [x]) {
    const { tf, a } = k;
    if (x.t.rank !== 4) throw k.fail("needs a rank-4 input");
    const [hAx, wAx] = x.nhwc ? [1, 2] : [2, 3];
    const h = x.t.shape[hAx], w = x.t.shape[wAx];
    const [oh, ow] = resizeOut(a, h, w);
    const sh = a.scales ? a.scales[0] : oh / h, sw = a.scales ? a.scales[1] : ow / w;
    const t = tf.tidy(() => resizeAxis(tf, resizeAxis(tf, x.t, a, hAx, oh, sh), a, wAx, ow, sw));
    return [{ t, nhwc: x.nhwc }];
  },
});

/** Softmax over one axis. */
export const Softmax: OpDef<AxisAttrs> = defineOp<AxisAttrs>({
  doc: "softmax over one axis",
  attrs: { axis: int(-1) },
  elementwise: true,
  kernel(k, [x]) {
    const { tf } = k;
    const axis = axisIn(x, axisOrFail(k, k.a.axis, x.t.rank));
    const t = axis === x.t.rank - 1 ? tf.softmax(x.t, -1) : tf.tidy(() => {
      const e = tf.exp(tf.sub(x.t, tf.max(x.t, axis, true)));
      return tf.div(e, tf.sum(e, axis, true));
    });
    return [{ t, nhwc: x.nhwc }];
  },
});

/** Attributes of the reductions. */
export interface ReduceAttrs {
  /** Axes to reduce; null reduces all. */
  axes: number[] | null;
  keepdims: boolean;
}

function reduceShape(a: ReduceAttrs, x: Dim[]): Dim[] {
  const ax = new Set((a.axes ?? x.map((_, i) => i)).map((v) => (v < 0 ? v + x.length : v)));
  return a.keepdims ? x.map((d, i) => (ax.has(i) ? 1 : d)) : x.filter((_, i) => !ax.has(i));
}

function reduce(doc: string, f: (tf: Tf, t: TfTensor, axes: number[], keep: boolean) => TfTensor) {
  return defineOp<ReduceAttrs>({
    doc,
    attrs: { axes: ints(null), keepdims: bool(true) },
    infer: (a, [x]) => [x ? reduceShape(a, x) : undefined],
    kernel(k, [x]) {
      const { tf, a } = k;
      const r = x.t.rank;
      const axes = (a.axes ?? x.t.shape.map((_, i) => i)).map((v) => axisOrFail(k, v, r));
      if (a.keepdims) {
        const t = f(tf, x.t, axes.map((v) => axisIn(x, v)), true);
        return [{ t, nhwc: x.nhwc }];
      }
      return [inNchw(tf, x, (n) => f(tf, n, axes, false))];
    },
  });
}

export const ReduceMean: OpDef<ReduceAttrs> = reduce(
  "mean over axes (global average pooling included)",
  (tf, t, ax, kd) => tf.mean(t, ax, kd),
);
export const ReduceMax: OpDef<ReduceAttrs> = reduce(
  "max over axes (global max pooling included)",
  (tf, t, ax, kd) => tf.max(t, ax, kd),
);
export const ReduceSum: OpDef<ReduceAttrs> = reduce("sum over axes", (tf, t, ax, kd) => tf.sum(t, ax, kd));

/** Attributes of ArgMax. */
export interface ArgMaxAttrs {
  axis: number;
  keepdims: boolean;
}

/** ArgMax: index of the largest value along `axis` (first one on ties). */
export const ArgMax: OpDef<ArgMaxAttrs> = defineOp<ArgMaxAttrs>({
  doc: "index of the largest value along `axis` (int64 in ONNX; float32 values in eval)",
  attrs: { axis: int(0), keepdims: bool(true) },
  infer(a, [x]) {
    if (!x) return [undefined];
    const ax = a.axis < 0 ? a.axis + x.length : a.axis;
    return [a.keepdims ? x.map((d, i) => (i === ax ? 1 : d)) : x.filter((_, i) => i !== ax)];
  },
  kernel: (k, [x]) => [
    inNchw(k.tf, x, (n) => {
      const ax = axisOrFail(k, k.a.axis, n.rank);
      let y = k.tf.cast(k.tf.argMax(n, ax), "float32");
      if (k.a.keepdims) y = k.tf.expandDims(y, ax);
      return y;
    }),
  ],
});

/** MatMul: numpy matrix product of two activations, or of an activation and a constant `weight` [K, N]. */
export const MatMul: OpDef<Record<string, never>> = defineOp<Record<string, never>>({
  doc: "numpy matmul: activation x activation, or activation x constant weight [K, N]",
  params: ["weight"],
  attrs: {},
  validate: (_a, l) => l.inputs.length + (l.params.weight ? 1 : 0) === 2 ? undefined : "needs two operands",
  infer(_a, ins, l) {
    const w = l.params.weight;
    const a = ins[0], b = w ? [...w.shape] as Dim[] : ins[1];
    if (!a || !b || a.length < 2 || b.length < 2) return [undefined];
    const batch = a.length >= b.length ? a.slice(0, -2) : b.slice(0, -2);
    return [[...batch, a[a.length - 2], b[b.length - 1]]];
  },
  kernel(k, ins) {
    const { tf } = k;
    const w = k.params.weight;
    const t = tf.tidy(() => {
      const a = toNchw(tf, ins[0]);
      const b = w ? tf.tensor(w.data, [...w.shape]) : toNchw(tf, ins[1]);
      if (b.rank === 2 && a.rank > 2) {
        const lead = a.shape.slice(0, -1);
        const y = tf.matMul(tf.reshape(a, [-1, a.shape[a.rank - 1]]) as never, b as never);
        return tf.reshape(y, [...lead, b.shape[1]] as number[]);
      }
      return tf.matMul(a as never, b as never) as TfTensor;
    });
    return [nchw(t)];
  },
});

/** Re-export for kernels that only need the activation type. */
export type { Act };
