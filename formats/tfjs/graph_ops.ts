/**
 * The GraphDef emitter table of the TF.js writer: one entry per canonical op TF.js can express ({@link GRAPH_OPS}),
 * writing the GraphDef nodes of a graph-model through a {@link GraphEmitter} (./graph_def.ts). The Keras table
 * (./keras_ops.ts) covers the ops with a tfjs-layers layer; an op only this table has makes the model a graph-model.
 * Layer parameters both tables name (`conv1/kernel`) go through `param`, written once (./emit_context.ts).
 *
 * Layout: rank-4 values are NHWC in TF.js, NCHW in the stream. Ops with an axis get it remapped; an op whose
 * meaning depends on the element order in a way no remap keeps (a transpose, a squeeze, a gather that changes the
 * rank) runs on an explicit NCHW view of its input, with a transpose back to NHWC when the result is rank 4.
 *
 * @module
 */
import type { Dim, Layer } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { BinaryAttrs } from "../../src/ops/elementwise.ts";
import type { ConvTransposeAttrs } from "../../src/ops/nn.ts";
import {
  convPlan,
  type EmitContext,
  keepsBatch,
  LOWEST_FLOAT32,
  poolPlan,
  softmaxOnLastAxis,
  spatialPads,
  type TfPaddingMode,
} from "./emit_context.ts";
import { oihwToDepthwise, oihwToHwio } from "./layout.ts";
import {
  type ConcatAttrs,
  concatParts,
  type GatherAttrs,
  type GatherNDAttrs,
  nearestIsRepeat,
  type PadAttrs,
  type ReduceAttrs,
  type ResizeAttrs,
  type SliceAttrs,
  type SplitAttrs,
  type TopKAttrs,
} from "../../src/ops/tensor_ops.ts";
import type { AttrValueJson } from "./types.ts";

/** What the graph entries may ask of the writer. */
export interface GraphEmitter {
  /** Adds a node (type T float unless `attr` says otherwise); returns its name. */
  node(op: string, name: string, input: string[], attr?: Record<string, AttrValueJson>): string;
  /** The graph node producing canonical value `v`. */
  g(v: string): string;
  /** Records that canonical value `v` is produced by graph node `node` (output index in `node:i`). */
  out(v: string, node: string): void;
  /** A small constant node; returns its name. */
  smallConst(base: string, shape: number[], values: number[], dtype?: "int32" | "float32"): Promise<string>;
  /** A weight tensor as a Const node; returns its name. */
  weight(name: string, t: Tensor): Promise<string>;
  /** The canonical shape of a value. */
  shape(v: string): Dim[] | undefined;
  /** A unique node name. */
  unique(base: string): string;
  /** Throws the writer's unsupported error for this layer. */
  fail(layer: string, why: string): never;
  /** True when some node produces canonical value `v`. */
  has(v: string): boolean;
  /** A layer parameter under its exact name (shared with the Keras side, written once) as a Const node. */
  param(name: string, make: () => Tensor): Promise<string>;
  /** Gives up the graph for want of shapes (an error at the end if a graph-model is chosen). */
  abandon(layer: string, what: string): void;
  /** The state shared with the Keras side: names, shapes, padding modes, flatten info. */
  readonly ctx: EmitContext;
}

type Entry = (e: GraphEmitter, l: Layer, name: string) => Promise<void> | void;

const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];
/** NCHW axis -> NHWC axis. */
const NHWC_AXIS = [0, 3, 1, 2];
const ints = (v: number[]): AttrValueJson => ({ list: { i: v.map(String) } });
const I32 = { type: "DT_INT32" };
const str = (s: string): AttrValueJson => ({ s: btoa(s) });

const rankOf = (e: GraphEmitter, v: string) => e.shape(v)?.length ?? 0;

async function transpose(e: GraphEmitter, name: string, input: string, perm: number[]): Promise<string> {
  const p = await e.smallConst(`${name}/perm`, [perm.length], perm);
  return e.node("Transpose", name, [input, p], { Tperm: I32 });
}

/** The graph tensor of `v` in canonical (NCHW) order. */
async function canonicalView(e: GraphEmitter, v: string, name: string): Promise<string> {
  return rankOf(e, v) === 4 ? await transpose(e, e.unique(`${name}_nchw`), e.g(v), TO_NCHW) : e.g(v);
}

/** Finishes a layer computed in canonical order: back to NHWC when rank 4. */
async function finishCanonical(e: GraphEmitter, l: Layer, name: string, node: string): Promise<void> {
  const out = e.shape(l.outputs[0]);
  if (out?.length === 4) e.out(l.outputs[0], await transpose(e, name, node, TO_NHWC));
  else e.out(l.outputs[0], node);
}

/** A canonical constant for broadcasting against a rank-4 NHWC tensor: transposed to NHWC when rank 4. */
async function constOperand(e: GraphEmitter, k: Tensor, rank: number, name: string): Promise<string> {
  if (rank === 4 && k.shape.length === 4) {
    const v = await k.float32();
    const [n, c, h, w] = k.shape;
    const out = new Float32Array(v.length);
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < c; b++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) out[((a * h + y) * w + x) * c + b] = v[((a * c + b) * h + y) * w + x];
        }
      }
    }
    return await e.weight(name, Tensor.fromFloat32(name, [n, h, w, c], out));
  }
  if (rank === 4 && k.shape.length > 1 && k.size !== 1) {
    // [C, 1, 1] and the like: per channel, which in NHWC is the last axis.
    const c = k.shape[k.shape.length - 3] ?? k.size;
    if (k.size !== c) e.fail(name, `a constant of shape [${k.shape}] that does not broadcast the same way in NHWC`);
    return await e.weight(name, Tensor.fromFloat32(name, [c], Float32Array.from(await k.float32())));
  }
  if (rank === 4 && k.shape.length === 1 && k.size !== 1) {
    e.fail(name, `a constant of shape [${k.shape}] broadcast over the last (W) axis`);
  }
  return await e.weight(name, Tensor.fromFloat32(name, [...k.shape], Float32Array.from(await k.float32())));
}

/** A binary op; `bool` casts TF's bool result (comparisons) to the canonical float32 0/1. */
function binary(tfOp: string, bool = false): Entry {
  return async (e, l, name) => {
    const a = attrsOf<BinaryAttrs>(l);
    if (a.coeffs && a.coeffs.some((c) => c !== 1)) e.fail(l.name, `${l.op} with coefficients`);
    const last = bool ? e.unique(`${name}_bool`) : name;
    const done = (y: string) =>
      e.out(
        l.outputs[0],
        bool ? e.node("Cast", name, [y], { SrcT: { type: "DT_BOOL" }, DstT: { type: "DT_FLOAT" } }) : y,
      );
    const k = l.params.const;
    if (k) {
      const c = await constOperand(e, k, rankOf(e, l.inputs[0]), `${name}/const`);
      const ins = a.constFirst ? [c, e.g(l.inputs[0])] : [e.g(l.inputs[0]), c];
      done(e.node(tfOp, last, ins));
      return;
    }
    const ranks = l.inputs.map((v) => rankOf(e, v));
    if (ranks.some((r) => r === 4) && ranks.some((r) => r !== 4)) e.fail(l.name, `${l.op} of rank-4 and other values`);
    if (bool && l.inputs.length !== 2) e.fail(l.name, `${l.op} of ${l.inputs.length} operands`);
    let acc = e.g(l.inputs[0]);
    for (let i = 1; i < l.inputs.length; i++) {
      acc = e.node(tfOp, i === l.inputs.length - 1 ? last : e.unique(`${name}_${i}`), [acc, e.g(l.inputs[i])]);
    }
    done(acc);
  };
}

const unary = (tfOp: string): Entry => (e, l, name) => e.out(l.outputs[0], e.node(tfOp, name, [e.g(l.inputs[0])]));

function reduce(tfOp: string): Entry {
  return async (e, l, name) => {
    const a = attrsOf<ReduceAttrs>(l);
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const axes = (a.axes ?? Array.from({ length: r }, (_, i) => i)).map((v) => (v < 0 ? v + r : v));
    const keep = { keep_dims: { b: a.keepdims }, Tidx: I32 };
    if (r === 4 && (a.keepdims || axes.slice().sort().join() === "2,3" || axes.length === 4)) {
      const ax = await e.smallConst(`${name}/axes`, [axes.length], axes.map((v) => NHWC_AXIS[v]));
      e.out(l.outputs[0], e.node(tfOp, name, [e.g(x), ax], keep));
      return;
    }
    const v = await canonicalView(e, x, name);
    const ax = await e.smallConst(`${name}/axes`, [axes.length], axes);
    const red = e.node(tfOp, e.unique(`${name}_reduce`), [v, ax], keep);
    await finishCanonical(e, l, name, red);
  };
}

/** Canonical op -> GraphDef nodes. */
export const GRAPH_OPS: Readonly<Partial<Record<Op, Entry>>> = Object.freeze({
  Conv: conv,
  FC: fullyConnected,
  BatchNorm: batchNorm,
  MaxPool: pool,
  AvgPool: pool,
  GlobalAvgPool: globalPool,
  GlobalMaxPool: globalPool,
  Flatten(e, l, name) {
    const x = l.inputs[0];
    const s = e.shape(x);
    if (s && s.length > 2) return flatten(e, x, l.outputs[0], name, l.name);
    if (e.has(x)) e.out(l.outputs[0], e.g(x));
  },
  Reshape: reshape,
  Concat: concat,
  Scale: scale,
  LRN(e, l, name) {
    const a = l.attrs;
    const size = Number(a.size ?? 5);
    e.out(
      l.outputs[0],
      e.node("LRN", name, [e.g(l.inputs[0])], {
        depth_radius: { i: String((size - 1) / 2) },
        bias: { f: Number(a.bias ?? 1) },
        alpha: { f: Number(a.alpha ?? 1e-4) / size },
        beta: { f: Number(a.beta ?? 0.75) },
      }),
    );
  },
  Dropout: unary("Identity"),
  Identity: unary("Identity"),
  Relu: unary("Relu"),
  Sigmoid: unary("Sigmoid"),
  Tanh: unary("Tanh"),
  LeakyRelu(e, l, name) {
    const alpha = Number(l.attrs.alpha ?? 0.01);
    e.out(l.outputs[0], e.node("LeakyRelu", name, [e.g(l.inputs[0])], { alpha: { f: alpha } }));
  },
  Add: merge("AddV2"),
  Sub: merge("Sub"),
  Mul: merge("Mul"),
  Div: binary("RealDiv"),
  Pow: binary("Pow"),
  Max: merge("Maximum"),
  Min: binary("Minimum"),
  FloorDiv: binary("FloorDiv"),
  FloorMod: binary("FloorMod"),
  SquaredDifference: binary("SquaredDifference"),
  Equal: binary("Equal", true),
  Less: binary("Less", true),
  Greater: binary("Greater", true),
  Abs: unary("Abs"),
  Neg: unary("Neg"),
  Exp: unary("Exp"),
  Log: unary("Log"),
  Sqrt: unary("Sqrt"),
  Rsqrt: unary("Rsqrt"),
  Reciprocal: unary("Reciprocal"),
  Floor: unary("Floor"),
  Softplus: unary("Softplus"),
  Elu(e, l, name) {
    if (attrsOf<{ alpha: number }>(l).alpha !== 1) e.fail(l.name, "Elu with alpha other than 1");
    e.out(l.outputs[0], e.node("Elu", name, [e.g(l.inputs[0])]));
  },
  Selu(e, l, name) {
    const a = attrsOf<{ alpha: number; gamma: number }>(l);
    if (Math.abs(a.alpha - 1.6732632) > 1e-6 || Math.abs(a.gamma - 1.0507009) > 1e-6) {
      e.fail(l.name, "Selu with other constants");
    }
    e.out(l.outputs[0], e.node("Selu", name, [e.g(l.inputs[0])]));
  },
  Swish(e, l, name) {
    const s = e.node("Sigmoid", e.unique(`${name}_sigmoid`), [e.g(l.inputs[0])]);
    e.out(l.outputs[0], e.node("Mul", name, [e.g(l.inputs[0]), s]));
  },
  async HardSigmoid(e, l, name) {
    const a = attrsOf<{ alpha: number; beta: number }>(l);
    e.out(l.outputs[0], await hardSigmoid(e, e.g(l.inputs[0]), a.alpha, a.beta, name));
  },
  async HardSwish(e, l, name) {
    const hs = await hardSigmoid(e, e.g(l.inputs[0]), 1 / 6, 0.5, e.unique(`${name}_hs`));
    e.out(l.outputs[0], e.node("Mul", name, [e.g(l.inputs[0]), hs]));
  },
  async PRelu(e, l, name) {
    const s = l.params.slope;
    const alpha = await constOperand(e, s, rankOf(e, l.inputs[0]), `${name}/alpha`);
    e.out(l.outputs[0], e.node("Prelu", name, [e.g(l.inputs[0]), alpha]));
  },
  Cast(e, l, name) {
    const to = attrsOf<{ to: string }>(l).to;
    const dst = { float32: "DT_FLOAT", int32: "DT_INT32", bool: "DT_BOOL", int64: "DT_INT32" }[to];
    if (!dst) e.fail(l.name, `Cast to ${to}`);
    // tfjs computes in float32 and int32: a round trip through int32 truncates as the canonical Cast does.
    const c = e.node("Cast", e.unique(`${name}_to`), [e.g(l.inputs[0])], {
      SrcT: { type: "DT_FLOAT" },
      DstT: { type: dst! },
    });
    e.out(l.outputs[0], e.node("Cast", name, [c], { SrcT: { type: dst! }, DstT: { type: "DT_FLOAT" } }));
  },
  async Transpose(e, l, name) {
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const perm = attrsOf<{ perm: number[] | null }>(l).perm ?? Array.from({ length: r }, (_, i) => r - 1 - i);
    if (r !== 4) return e.out(l.outputs[0], await transpose(e, name, e.g(x), perm));
    // NHWC in -> canonical out axis i reads canonical in axis perm[i]; as NHWC: out j = NHWC_AXIS^-1 ...
    const tfPerm = TO_NHWC.map((ci) => NHWC_AXIS[perm[ci]]);
    e.out(l.outputs[0], await transpose(e, name, e.g(x), tfPerm));
  },
  Squeeze: viaCanonical("Squeeze"),
  Unsqueeze: viaCanonical("Unsqueeze"),
  async Split(e, l, name) {
    const a = attrsOf<SplitAttrs>(l);
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const ax = a.axis < 0 ? a.axis + r : a.axis;
    const d = e.shape(x)?.[ax];
    const n = l.outputs.length;
    const sizes = a.split ??
      (typeof d === "number"
        ? Array.from({ length: n }, (_, i) => Math.min(Math.ceil(d / n), d - Math.ceil(d / n) * i))
        : undefined);
    if (!sizes) e.fail(l.name, "an even split of an axis of unknown size");
    const s = await e.smallConst(`${name}/sizes`, [n], sizes!);
    const axis = await e.smallConst(`${name}/axis`, [], [r === 4 ? NHWC_AXIS[ax] : ax]);
    e.node("SplitV", name, [e.g(x), s, axis], { num_split: { i: String(n) }, Tlen: I32 });
    l.outputs.forEach((o, i) => e.out(o, i === 0 ? name : `${name}:${i}`));
  },
  async Slice(e, l, name) {
    const a = attrsOf<SliceAttrs>(l);
    const x = l.inputs[0];
    const s = e.shape(x);
    const r = s?.length ?? 0;
    const begin = new Array(r).fill(0), end = new Array(r).fill(0), strides = new Array(r).fill(1);
    let endMask = 0;
    for (let i = 0; i < r; i++) endMask |= 1 << i;
    a.starts.forEach((st, i) => {
      const ax0 = a.axes ? a.axes[i] : i;
      const ax = ax0 < 0 ? ax0 + r : ax0;
      const d = s?.[ax];
      const step = a.steps?.[i] ?? 1;
      if (typeof d !== "number") e.fail(l.name, "a slice of an axis of unknown size");
      const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v < 0 ? v + (d as number) : v, lo), hi);
      const tf = r === 4 ? NHWC_AXIS[ax] : ax;
      if (step > 0) {
        begin[tf] = clamp(st, 0, d as number);
        end[tf] = clamp(a.ends[i], 0, d as number);
      } else {
        begin[tf] = clamp(st, 0, (d as number) - 1);
        const en = a.ends[i] < -(d as number) ? -1 : clamp(a.ends[i], -1, (d as number) - 1);
        end[tf] = en;
        if (en === -1) {
          strides[tf] = step;
          return;
        }
      }
      strides[tf] = step;
      endMask &= ~(1 << tf);
    });
    const b = await e.smallConst(`${name}/begin`, [r], begin);
    const en = await e.smallConst(`${name}/end`, [r], end);
    const st = await e.smallConst(`${name}/strides`, [r], strides);
    e.out(
      l.outputs[0],
      e.node("StridedSlice", name, [e.g(x), b, en, st], {
        Index: I32,
        begin_mask: { i: "0" },
        end_mask: { i: String(endMask) },
        ellipsis_mask: { i: "0" },
        new_axis_mask: { i: "0" },
        shrink_axis_mask: { i: "0" },
      }),
    );
  },
  async Pad(e, l, name) {
    const a = attrsOf<PadAttrs>(l);
    const x = l.inputs[0];
    const spatial = spatialPads(l);
    if (spatial) return e.out(l.outputs[0], await padNode(e, name, e.g(x), spatial, a.value));
    const r = a.pads.length / 2;
    if (a.pads.some((p) => p < 0)) e.fail(l.name, "negative pads (cropping)");
    if (a.mode === "edge") e.fail(l.name, "edge padding");
    const pairs = new Array(2 * r).fill(0);
    for (let i = 0; i < r; i++) {
      const tf = r === 4 ? NHWC_AXIS[i] : i;
      pairs[2 * tf] = a.pads[i];
      pairs[2 * tf + 1] = a.pads[i + r];
    }
    const p = await e.smallConst(`${name}/paddings`, [r, 2], pairs);
    if (a.mode === "reflect") {
      e.out(l.outputs[0], e.node("MirrorPad", name, [e.g(x), p], { Tpaddings: I32, mode: { s: btoa("REFLECT") } }));
      return;
    }
    const v = await e.smallConst(`${name}/value`, [], [a.value], "float32");
    e.out(l.outputs[0], e.node("PadV2", name, [e.g(x), p, v], { Tpaddings: I32 }));
  },
  async Gather(e, l, name) {
    const a = attrsOf<GatherAttrs>(l);
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const ax = a.axis < 0 ? a.axis + r : a.axis;
    const gather = { Taxis: I32, Tindices: I32, Tparams: { type: "DT_FLOAT" }, batch_dims: { i: "0" } };
    if (l.inputs.length === 2) {
      // Activation indices are float32 integer values: GatherV2 takes int32.
      const i = l.inputs[1], ri = rankOf(e, i);
      const tfOrder = r === 4 && ri === 1;
      const iv = tfOrder ? e.g(i) : await canonicalView(e, i, `${name}_indices`);
      const ii = e.node("Cast", e.unique(`${name}_int`), [iv], { SrcT: { type: "DT_FLOAT" }, DstT: I32 });
      const axis = await e.smallConst(`${name}/axis`, [], [tfOrder ? NHWC_AXIS[ax] : ax]);
      if (tfOrder) {
        e.out(l.outputs[0], e.node("GatherV2", name, [e.g(x), ii, axis], gather));
        return;
      }
      const v = await canonicalView(e, x, name);
      await finishCanonical(e, l, name, e.node("GatherV2", e.unique(`${name}_gather`), [v, ii, axis], gather));
      return;
    }
    const idx = await e.smallConst(`${name}/indices`, a.indicesShape!, a.indices!);
    if (r === 4 && a.indicesShape!.length === 1) {
      const axis = await e.smallConst(`${name}/axis`, [], [NHWC_AXIS[ax]]);
      e.out(
        l.outputs[0],
        e.node("GatherV2", name, [e.g(x), idx, axis], {
          Taxis: I32,
          Tindices: I32,
          Tparams: { type: "DT_FLOAT" },
          batch_dims: { i: "0" },
        }),
      );
      return;
    }
    const v = await canonicalView(e, x, name);
    const axis = await e.smallConst(`${name}/axis`, [], [ax]);
    const g = e.node("GatherV2", e.unique(`${name}_gather`), [v, idx, axis], {
      Taxis: I32,
      Tindices: I32,
      Tparams: { type: "DT_FLOAT" },
      batch_dims: { i: "0" },
    });
    await finishCanonical(e, l, name, g);
  },
  async GatherND(e, l, name) {
    const a = attrsOf<GatherNDAttrs>(l);
    const x = l.inputs[0];
    // Indices address the canonical (NCHW) order: gather from the canonical view, and back to NHWC if rank 4.
    const v = await canonicalView(e, x, name);
    const xs = e.shape(x) ?? [];
    let ii: string;
    if (l.inputs.length === 2) {
      // Activation indices are float32 integer values: GatherNd takes int32, and no negative ones (ONNX counts
      // those from the end: FloorMod by the dimensions maps them there and keeps the others).
      const iv = await canonicalView(e, l.inputs[1], `${name}_indices`);
      ii = e.node("Cast", e.unique(`${name}_int`), [iv], { SrcT: { type: "DT_FLOAT" }, DstT: I32 });
      const k = e.shape(l.inputs[1])?.at(-1);
      const dims = typeof k === "number" ? xs.slice(0, k) : [];
      if (typeof k === "number" && dims.every((d) => typeof d === "number")) {
        const d = await e.smallConst(`${name}/dims`, [k], dims as number[]);
        ii = e.node("FloorMod", e.unique(`${name}_wrapped`), [ii, d], { T: I32 });
      }
    } else {
      const k = a.indicesShape!.at(-1)!;
      const idx = a.indices!.map((i, j) => {
        const d = xs[j % k];
        if (i >= 0) return i;
        if (typeof d !== "number") e.fail(l.name, "a negative index into an axis of unknown size");
        return i + (d as number);
      });
      ii = await e.smallConst(`${name}/indices`, a.indicesShape!, idx);
    }
    const g = e.node("GatherNd", e.unique(`${name}_gather`), [v, ii], { Tindices: I32, Tparams: { type: "DT_FLOAT" } });
    await finishCanonical(e, l, name, g);
  },
  async TopK(e, l, name) {
    const a = attrsOf<TopKAttrs>(l);
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const ax = a.axis < 0 ? a.axis + r : a.axis;
    // TopKV2 works on the last axis of the graph tensor (NHWC's last is the canonical channel axis): another axis
    // is moved there by a Transpose, and the values and indices moved back.
    const tfAx = r === 4 ? NHWC_AXIS[ax] : ax;
    const perm = Array.from({ length: r }, (_, i) => i).filter((i) => i !== tfAx).concat([tfAx]);
    const back = perm.map((_, i) => perm.indexOf(i));
    const moved = tfAx !== r - 1;
    const k = await e.smallConst(`${name}/k`, [], [a.k]);
    let src = moved ? await transpose(e, e.unique(`${name}_last`), e.g(x), perm) : e.g(x);
    if (!a.largest) src = e.node("Neg", e.unique(`${name}_neg`), [src]);
    const direct = a.largest && !moved;
    const top = e.node("TopKV2", direct ? name : e.unique(`${name}_top`), [src, k], { sorted: { b: a.sorted } });
    let values = a.largest ? top : e.node("Neg", moved ? e.unique(`${name}_values`) : name, [top]);
    if (moved) values = await transpose(e, name, values, back);
    e.out(l.outputs[0], values);
    if (l.outputs[1]) {
      let i = e.node("Cast", e.unique(`${name}_indices`), [`${top}:1`], { SrcT: I32, DstT: { type: "DT_FLOAT" } });
      if (moved) i = await transpose(e, e.unique(`${name}_indices_back`), i, back);
      e.out(l.outputs[1], i);
    }
  },
  DepthToSpace(e, l, name) {
    const a = attrsOf<{ blocksize: number; mode: string }>(l);
    if (a.mode !== "DCR") e.fail(l.name, "DepthToSpace in CRD mode (TF's is DCR)");
    e.out(
      l.outputs[0],
      e.node("DepthToSpace", name, [e.g(l.inputs[0])], {
        block_size: { i: String(a.blocksize) },
        data_format: { s: btoa("NHWC") },
      }),
    );
  },
  SpaceToDepth(e, l, name) {
    const a = attrsOf<{ blocksize: number }>(l);
    e.out(
      l.outputs[0],
      e.node("SpaceToDepth", name, [e.g(l.inputs[0])], {
        block_size: { i: String(a.blocksize) },
        data_format: { s: btoa("NHWC") },
      }),
    );
  },
  async Resize(e, l, name) {
    const a = attrsOf<ResizeAttrs>(l);
    const out = e.shape(l.outputs[0]);
    if (!out || typeof out[2] !== "number" || typeof out[3] !== "number") e.fail(l.name, "the output size is unknown");
    let flags: { align: boolean; half: boolean } | undefined;
    if (a.mode === "linear") {
      if (a.coordinate === "align_corners") flags = { align: true, half: false };
      else if (
        a.coordinate === "half_pixel" ||
        a.coordinate === "pytorch_half_pixel" && (out![2] as number) > 1 && (out![3] as number) > 1
      ) flags = { align: false, half: true };
      else if (a.coordinate === "asymmetric") flags = { align: false, half: false };
    } else {
      const x = e.shape(l.inputs[0]);
      const [sh, sw] = [(out![2] as number) / (x?.[2] as number), (out![3] as number) / (x?.[3] as number)];
      if (a.coordinate === "tf_half_pixel_for_nn" && a.nearest === "floor") flags = { align: false, half: true };
      else if (a.coordinate === "align_corners" && a.nearest === "round_prefer_ceil") {
        flags = { align: true, half: false };
      } else if (nearestIsRepeat(a, sh, sw) || (a.coordinate === "asymmetric" && a.nearest === "floor")) {
        // TF's legacy nearest resize: source floor(o * in / out).
        flags = { align: false, half: false };
      }
    }
    if (!flags) e.fail(l.name, `${a.mode} resize with ${a.coordinate} coordinates and ${a.nearest} rounding`);
    const size = await e.smallConst(`${name}/size`, [2], [out![2] as number, out![3] as number]);
    e.out(
      l.outputs[0],
      e.node(a.mode === "linear" ? "ResizeBilinear" : "ResizeNearestNeighbor", name, [e.g(l.inputs[0]), size], {
        align_corners: { b: flags!.align },
        half_pixel_centers: { b: flags!.half },
      }),
    );
  },
  ReduceMean: reduce("Mean"),
  ReduceMax: reduce("Max"),
  ReduceSum: reduce("Sum"),
  async ArgMax(e, l, name) {
    const a = attrsOf<{ axis: number; keepdims: boolean }>(l);
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const ax = a.axis < 0 ? a.axis + r : a.axis;
    const v = await canonicalView(e, x, name);
    const axis = await e.smallConst(`${name}/axis`, [], [ax]);
    let y = e.node("ArgMax", e.unique(`${name}_argmax`), [v, axis], { Tidx: I32, output_type: { type: "DT_INT32" } });
    y = e.node("Cast", e.unique(`${name}_float`), [y], { SrcT: { type: "DT_INT32" }, DstT: { type: "DT_FLOAT" } });
    if (a.keepdims) {
      const d = await e.smallConst(`${name}/dim`, [], [ax]);
      y = e.node("ExpandDims", e.unique(`${name}_keep`), [y, d], { Tdim: I32 });
    }
    await finishCanonical(e, l, name, y);
  },
  async Softmax(e, l, name) {
    if (softmaxOnLastAxis(e.ctx, l)) return unary("Softmax")(e, l, name);
    // TF.js softmax runs on the last axis of its (NHWC for rank 4) tensor: move the canonical axis there and back.
    const x = l.inputs[0];
    const r = rankOf(e, x);
    const ax0 = attrsOf<{ axis: number }>(l).axis;
    const ax = ax0 < 0 ? ax0 + r : ax0;
    const tfAx = r === 4 ? NHWC_AXIS[ax] : ax;
    if (tfAx === r - 1) return e.out(l.outputs[0], e.node("Softmax", name, [e.g(x)]));
    const perm = Array.from({ length: r }, (_, i) => i).filter((i) => i !== tfAx).concat([tfAx]);
    const inv = perm.map((_, i) => perm.indexOf(i));
    const t = await transpose(e, e.unique(`${name}_last`), e.g(x), perm);
    const s = e.node("Softmax", e.unique(`${name}_softmax`), [t]);
    e.out(l.outputs[0], await transpose(e, name, s, inv));
  },
  async MatMul(e, l, name) {
    const w = l.params.weight;
    const x = l.inputs[0];
    const r = Math.max(rankOf(e, x), w ? 2 : rankOf(e, l.inputs[1]));
    // Rank-4 operands are NHWC in TF.js: multiply their canonical (NCHW) views.
    const a = await canonicalView(e, x, `${name}_a`);
    const b = w ? await e.weight(`${name}/b`, w) : await canonicalView(e, l.inputs[1], `${name}_b`);
    const mm = e.node(
      r > 2 ? "BatchMatMulV2" : "MatMul",
      r === 4 ? e.unique(`${name}_mm`) : name,
      [a, b],
      r > 2 ? { adj_x: { b: false }, adj_y: { b: false } } : { transpose_a: { b: false }, transpose_b: { b: false } },
    );
    if (r === 4) await finishCanonical(e, l, name, mm);
    else e.out(l.outputs[0], mm);
  },
  async ConvTranspose(e, l, name) {
    const a = attrsOf<ConvTransposeAttrs>(l);
    const w = l.params.weight;
    if (a.group !== 1 || a.dilations.some((d) => d !== 1)) e.fail(l.name, "grouped or dilated transposed convolution");
    const out = e.shape(l.outputs[0]);
    const x = e.shape(l.inputs[0]) ?? [];
    if (!out || x.length !== 4 || out.slice(1).some((d) => typeof d !== "number")) {
      e.fail(l.name, "the output shape is unknown");
    }
    const [ci, co, kh, kw] = w.shape;
    // Canonical [in, out, kh, kw] -> TF [kh, kw, out, in]; full output, then crop/pad to the canonical pads.
    const v = await w.float32();
    const f = new Float32Array(v.length);
    for (let i = 0; i < ci; i++) {
      for (let o = 0; o < co; o++) {
        for (let y = 0; y < kh; y++) {
          for (let z = 0; z < kw; z++) f[((y * kw + z) * co + o) * ci + i] = v[((i * co + o) * kh + y) * kw + z];
        }
      }
    }
    const filt = await e.weight(`${name}/filter`, Tensor.fromFloat32(`${name}/filter`, [kh, kw, co, ci], f));
    const [h, ww] = [x[2] as number, x[3] as number];
    const fh = (h - 1) * a.strides[0] + kh, fw = (ww - 1) * a.strides[1] + kw;
    const shape = await e.smallConst(`${name}/output_shape`, [4], [1, fh, fw, co]);
    if (typeof x[0] !== "number" || x[0] !== 1) e.fail(l.name, "a transposed convolution with a batch other than 1");
    let y = e.node("Conv2DBackpropInput", e.unique(`${name}_full`), [shape, filt, e.g(l.inputs[0])], {
      strides: ints([1, a.strides[0], a.strides[1], 1]),
      padding: { s: btoa("VALID") },
      data_format: { s: btoa("NHWC") },
      dilations: ints([1, 1, 1, 1]),
    });
    const [pt, pl, pb, pr] = a.pads, [oph, opw] = a.outputPadding;
    const oh = out![2] as number, ow = out![3] as number;
    if (oph || opw) {
      const p = await e.smallConst(`${name}/outpad`, [4, 2], [0, 0, 0, oph, 0, opw, 0, 0]);
      y = e.node("Pad", e.unique(`${name}_outpad`), [y, p], { Tpaddings: I32 });
    }
    if (pt || pl || pb || pr) {
      const b = await e.smallConst(`${name}/crop_begin`, [4], [0, pt, pl, 0]);
      const s = await e.smallConst(`${name}/crop_size`, [4], [-1, oh, ow, -1]);
      y = e.node("Slice", e.unique(`${name}_crop`), [y, b, s], { Index: I32 });
    }
    if (l.params.bias) {
      const bn = await e.weight(`${name}/bias`, l.params.bias);
      y = e.node("BiasAdd", name, [y, bn], { data_format: { s: btoa("NHWC") } });
    } else y = e.node("Identity", name, [y]);
    e.out(l.outputs[0], y);
  },
  async Clip(e, l, name) {
    const a = l.attrs;
    const min = Number(a.min ?? -Infinity), max = Number(a.max ?? Infinity);
    if (min === 0 && max === 6) return unary("Relu6")(e, l, name);
    if (min === 0 && max === Infinity) return unary("Relu")(e, l, name);
    const lo = await e.smallConst(`${name}/min`, [], [Math.max(min, LOWEST_FLOAT32)], "float32");
    const hi = await e.smallConst(`${name}/max`, [], [Math.min(max, -LOWEST_FLOAT32)], "float32");
    e.out(l.outputs[0], e.node("ClipByValue", name, [e.g(l.inputs[0]), lo, hi]));
  },
});

async function hardSigmoid(e: GraphEmitter, x: string, alpha: number, beta: number, name: string): Promise<string> {
  const a = await e.smallConst(`${name}/alpha`, [], [alpha], "float32");
  const b = await e.smallConst(`${name}/beta`, [], [beta], "float32");
  const lo = await e.smallConst(`${name}/zero`, [], [0], "float32");
  const hi = await e.smallConst(`${name}/one`, [], [1], "float32");
  const m = e.node("Mul", e.unique(`${name}_mul`), [x, a]);
  const s = e.node("AddV2", e.unique(`${name}_add`), [m, b]);
  return e.node("ClipByValue", name, [s, lo, hi]);
}

/** Squeeze/Unsqueeze as a Reshape of the canonical-order tensor to the inferred shape. */
function viaCanonical(_op: string): Entry {
  return async (e, l, name) => {
    const out = e.shape(l.outputs[0]);
    if (!out || out.slice(1).some((d) => typeof d !== "number")) e.fail(l.name, "the output shape is unknown");
    const v = await canonicalView(e, l.inputs[0], name);
    const s = await e.smallConst(`${name}/shape`, [out!.length], out!.map((d, i) => (i === 0 ? -1 : d as number)));
    const r = e.node("Reshape", e.unique(`${name}_reshape`), [v, s], { Tshape: I32 });
    await finishCanonical(e, l, name, r);
  };
}

// ---- the ops with a Keras form too (./keras_ops.ts): same names, same parameters, in the same order

/** A 2-D pad [top, left, bottom, right] of an NHWC tensor: Pad (zero) or PadV2; returns the node. */
async function padNode(e: GraphEmitter, name: string, input: string, p: number[], value: number): Promise<string> {
  const pads = await e.smallConst(`${name}/paddings`, [4, 2], [0, 0, p[0], p[2], p[1], p[3], 0, 0]);
  if (value === 0) return e.node("Pad", name, [input, pads], { Tpaddings: I32 });
  const cv = await e.smallConst(`${name}/value`, [], [value], "float32");
  return e.node("PadV2", name, [input, pads, cv], { Tpaddings: I32 });
}

/** Explicit window pads become a Pad node in front; returns the window's input and its TF padding. */
async function padForWindow(
  e: GraphEmitter,
  name: string,
  input: string,
  mode: TfPaddingMode,
  value: number,
): Promise<{ input: string; padding: string }> {
  if (!Array.isArray(mode)) return { input, padding: mode.toUpperCase() };
  const pn = `${name}_pad`;
  e.ctx.reserveName(pn);
  return { input: await padNode(e, pn, input, mode, value), padding: "VALID" };
}

const window2d = (s: number[], padding: string, d: number[]) => ({
  strides: ints([1, s[0], s[1], 1]),
  padding: str(padding),
  dilations: ints([1, d[0], d[1], 1]),
  data_format: str("NHWC"),
  explicit_paddings: { list: {} },
});

/** Conv2D or DepthwiseConv2dNative (+ BiasAdd); a grouped convolution goes to {@link groupedConv}. */
async function conv(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  const W = l.params.weight;
  const [o, ig] = W.shape;
  const plan = convPlan(e.ctx, l);
  const { input, padding } = await padForWindow(e, name, e.g(l.inputs[0]), plan.mode, 0);
  if (plan.group !== 1 && !plan.depthwise) return await groupedConv(e, l, name, input, padding);
  const orig = W.meta.tfjsKernel as { tensor: Tensor; depthwise: boolean } | undefined;
  const same = orig && orig.depthwise === plan.depthwise ? orig.tensor : undefined;
  const kernel = plan.depthwise
    ? await e.param(`${name}/depthwise_kernel`, () => same ?? oihwToDepthwise(W, o / (ig * plan.group)))
    : await e.param(`${name}/kernel`, () => same ?? oihwToHwio(W));
  const convName = l.params.bias ? `${name}_conv` : name;
  e.ctx.reserveName(convName);
  const op = plan.depthwise ? "DepthwiseConv2dNative" : "Conv2D";
  e.node(op, convName, [input, kernel], window2d(plan.s, padding, plan.d));
  e.out(l.outputs[0], await biasAdd(e, l, name, convName));
}

/** `BiasAdd` of the layer's bias under `name` when it has one; else `node` itself. */
async function biasAdd(e: GraphEmitter, l: Layer, name: string, node: string): Promise<string> {
  if (!l.params.bias) return node;
  const bias = await e.param(`${name}/bias`, () => l.params.bias);
  return e.node("BiasAdd", name, [node, bias], { data_format: str("NHWC") });
}

/**
 * A grouped convolution (neither plain nor depthwise), which TF.js has no op for: the input's channels split
 * into the groups (SplitV), one Conv2D per group with that group's filters, and the results joined (ConcatV2).
 */
async function groupedConv(e: GraphEmitter, l: Layer, name: string, input: string, padding: string): Promise<void> {
  const W = l.params.weight, a = l.attrs;
  const [o, ig, kh, kw] = W.shape;
  const g = Number(a.group);
  const s = (a.strides as number[] | undefined) ?? [1, 1];
  const d = (a.dilations as number[] | undefined) ?? [1, 1];
  const og = o / g, per = og * ig * kh * kw;
  const sizes = await e.smallConst(`${name}/group_sizes`, [g], new Array(g).fill(ig));
  const axis = await e.smallConst(`${name}/group_axis`, [], [3]);
  const split = e.unique(`${name}_groups`);
  e.node("SplitV", split, [input, sizes, axis], { num_split: { i: String(g) }, Tlen: I32 });
  const outs: string[] = [];
  for (let i = 0; i < g; i++) {
    // Group i's filters are rows [i * og, (i + 1) * og) of the OIHW weight: contiguous.
    const part = Tensor.fromChunks(`${W.name}/g${i}`, "float32", [og, ig, kh, kw], per * 4, async function* () {
      const all = await W.float32();
      yield new Uint8Array(all.slice(i * per, (i + 1) * per).buffer);
    });
    const k = await e.weight(`${name}/kernel_g${i}`, oihwToHwio(part));
    const groupInput = i === 0 ? split : `${split}:${i}`;
    outs.push(e.node("Conv2D", e.unique(`${name}_g${i}`), [groupInput, k], window2d(s, padding, d)));
  }
  const ax = await e.smallConst(`${name}/concat_axis`, [], [3]);
  const cat = l.params.bias ? e.unique(`${name}_concat`) : name;
  e.node("ConcatV2", cat, [...outs, ax], { N: { i: String(g) }, Tidx: I32 });
  e.out(l.outputs[0], await biasAdd(e, l, name, cat));
}

/** Flatten of a rank-4 value: a Reshape to [-1, C*H*W] (flatten info lets the next FC permute its kernel). */
async function flatten(e: GraphEmitter, x: string, out: string, name: string, layer: string): Promise<void> {
  if (!e.ctx.knownDims(x)) {
    // The Keras side flattens in (c, h, w) order instead; the graph cannot be built without the shape.
    e.abandon(layer, `the shape of '${x}' is unknown (pass the input shape)`);
    e.ctx.reserveName(`${name}_chw`);
    return;
  }
  const [, c, h, w] = e.ctx.requireDims(x, layer);
  const shape = await e.smallConst(`${name}/shape`, [2], [-1, c * h * w]);
  e.out(out, e.node("Reshape", name, [e.g(x), shape], { Tshape: I32 }));
  e.ctx.setFlat(out, { c, h, w });
}

/** MatMul (+ BiasAdd); a rank > 2 input is flattened first, as the canonical FC does. */
async function fullyConnected(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  let x = l.inputs[0];
  if ((e.ctx.shape(x)?.length ?? 2) > 2) {
    const flat = `${x}#flat`;
    await flatten(e, x, flat, e.ctx.layerName("flatten", `${l.name}_flatten`), l.name);
    x = flat;
  }
  const input = x;
  const kernel = await e.param(`${name}/kernel`, () => e.ctx.fcKernel(l, input).kernel);
  const mm = l.params.bias ? `${name}_matmul` : name;
  e.ctx.reserveName(mm);
  const transposeB = e.ctx.kind === "graph-model";
  e.node("MatMul", mm, [e.g(x), kernel], { transpose_a: { b: false }, transpose_b: { b: transposeB } });
  e.out(l.outputs[0], await biasAdd(e, l, name, mm));
}

async function batchNorm(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  const p = l.params;
  const w = [
    await e.param(`${name}/gamma`, () => p.scale),
    await e.param(`${name}/beta`, () => p.bias),
    await e.param(`${name}/moving_mean`, () => p.mean),
    await e.param(`${name}/moving_variance`, () => p.var),
  ];
  const node = e.node("FusedBatchNormV3", name, [e.g(l.inputs[0]), ...w], {
    epsilon: { f: Number(l.attrs.epsilon ?? 1e-5) },
    data_format: str("NHWC"),
    is_training: { b: false },
    U: { type: "DT_FLOAT" },
  });
  e.out(l.outputs[0], node);
}

/** MaxPool or AvgPool; explicit pads become a Pad in front (-max float for max pooling). */
async function pool(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  const plan = poolPlan(e.ctx, l);
  const fill = plan.max ? LOWEST_FLOAT32 : 0;
  const { input, padding } = await padForWindow(e, name, e.g(l.inputs[0]), plan.mode, fill);
  const node = e.node(plan.max ? "MaxPool" : "AvgPool", name, [input], {
    ksize: ints([1, plan.k[0], plan.k[1], 1]),
    strides: ints([1, plan.s[0], plan.s[1], 1]),
    padding: str(padding),
    data_format: str("NHWC"),
  });
  e.out(l.outputs[0], node);
}

/** Global pooling: Mean or Max over H and W, kept as 1. */
async function globalPool(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  e.ctx.reserveName(`${name}_pool`); // the Keras side's pooling layer
  const axes = await e.smallConst(`${name}/axes`, [2], [1, 2]);
  const op = l.op === "GlobalAvgPool" ? "Mean" : "Max";
  e.out(l.outputs[0], e.node(op, name, [e.g(l.inputs[0]), axes], { keep_dims: { b: true }, Tidx: I32 }));
}

/** Reshape: a flatten of a rank-4 value, or NHWC -> NCHW, reshape, and back to NHWC for a rank-4 result. */
async function reshape(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  const x = l.inputs[0];
  const inS = e.ctx.shape(x);
  const outS = (l.attrs.shape as number[]).map((d, i) => (d === 0 ? (inS?.[i] as number) : d));
  const rankIn = inS?.length ?? 0;
  if (rankIn === 4 && outS.length === 2 && keepsBatch(outS, inS!)) {
    return await flatten(e, x, l.outputs[0], name, l.name);
  }
  let g = e.g(x);
  if (rankIn === 4) {
    const t = `${name}_nchw`;
    e.ctx.reserveName(t);
    g = await transpose(e, t, g, TO_NCHW);
  }
  const four = outS.length === 4;
  const r = four ? `${name}_flat` : name;
  e.ctx.reserveName(r);
  // The batch axis becomes -1 unless the target shape already infers another axis.
  const tfShape = outS.includes(-1) ? outS : outS.map((d, i) => (i === 0 ? -1 : d));
  const shape = await e.smallConst(`${name}/shape`, [outS.length], tfShape);
  g = e.node("Reshape", r, [g, shape], { Tshape: I32 });
  if (four) g = await transpose(e, name, g, TO_NHWC);
  e.out(l.outputs[0], g);
}

async function concat(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  const a = attrsOf<ConcatAttrs>(l);
  const rank = e.ctx.shape(l.outputs[0])?.length ?? e.ctx.shape(l.inputs[0])?.length ?? 4;
  let axis = a.axis;
  if (axis < 0) axis += rank;
  const ax = await e.smallConst(`${name}/axis`, [], [rank === 4 ? NHWC_AXIS[axis] : axis]);
  const parts: string[] = [];
  for (const p of concatParts(a, l)) {
    if ("input" in p) parts.push(e.g(p.input));
    else {
      const k = l.params[p.param];
      if (k.shape.length !== rank) {
        e.fail(l.name, `a constant operand of rank ${k.shape.length} in a rank-${rank} concat`);
      }
      // Canonical constants: a rank-4 one is written NHWC, as every rank-4 value in the graph.
      parts.push(await constOperand(e, k, rank, `${name}/${p.param}`));
    }
  }
  e.out(l.outputs[0], e.node("ConcatV2", name, [...parts, ax], { N: { i: String(parts.length) }, Tidx: I32 }));
}

/** Per-channel affine: Mul by the scale, AddV2 of the offset. */
async function scale(e: GraphEmitter, l: Layer, name: string): Promise<void> {
  let v = e.g(l.inputs[0]);
  if (l.params.scale) {
    const s = await e.param(`${name}/scale`, () => l.params.scale);
    v = e.node("Mul", l.params.bias ? `${name}_mul` : name, [v, s]);
  }
  if (l.params.bias) {
    const b = await e.param(`${name}/offset`, () => l.params.bias);
    v = e.node("AddV2", name, [v, b]);
  }
  e.out(l.outputs[0], v);
}

/**
 * Add, Sub, Mul, Max of same-shaped activations (the Keras merge layers' case): one node, AddN for an n-ary Add.
 * A constant operand or broadcasting goes to {@link binary}.
 */
function merge(tfOp: string): Entry {
  const general = binary(tfOp);
  return (e, l, name) => {
    if (l.params.const || !e.ctx.sameInputShapes(l)) return general(e, l, name);
    const coeffs = l.attrs.coeffs as number[] | undefined;
    if (coeffs && coeffs.some((c) => c !== 1)) e.fail(l.name, `Add with coefficients [${coeffs}]`);
    const ins = l.inputs.map((v) => e.g(v));
    if (l.inputs.length > 2) {
      if (l.op !== "Add") e.fail(l.name, `${l.op} of ${l.inputs.length} inputs`);
      return e.out(l.outputs[0], e.node("AddN", name, ins, { N: { i: String(ins.length) } }));
    }
    e.out(l.outputs[0], e.node(tfOp, name, ins));
  };
}
