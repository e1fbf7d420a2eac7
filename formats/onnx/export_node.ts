/**
 * Canonical layer -> ONNX nodes (and small extra initializers such as a Reshape's shape), one table entry per
 * canonical op ({@link EXPORTERS}). Targets the model's default-domain opset: 13 for models from other formats, or
 * the source ONNX model's own.
 *
 * @module
 */
import { OnnxError } from "../../src/errors.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Layer } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import type { Shape } from "../../src/model/shapes.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { ConvAttrs, ConvTransposeAttrs, PoolAttrs } from "../../src/ops/nn.ts";
import type { BinaryAttrs, ClipAttrs } from "../../src/ops/elementwise.ts";
import {
  type ConcatAttrs,
  concatParts,
  type GatherAttrs,
  type GatherNDAttrs,
  type PadAttrs,
  type ReduceAttrs,
  type ResizeAttrs,
  type SliceAttrs,
  type SplitAttrs,
  type TopKAttrs,
} from "../../src/ops/tensor_ops.ts";
import { AttrType } from "./types.ts";
import { onnx } from "./proto.ts";

/** An encoded NodeProto and the value names it reads. */
export interface ExportedNode {
  bytes: Uint8Array;
  inputs: string[];
}

/** Nodes for one layer, plus constant tensors they need as initializers. */
export interface ExportedLayer {
  nodes: ExportedNode[];
  constants: Tensor[];
}

type AttrSpec = { name: string; type: number; i?: number; f?: number; ints?: number[]; s?: Uint8Array };

const ints = (name: string, v: number[]): AttrSpec => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, v: number): AttrSpec => ({ name, type: AttrType.INT, i: v });
const float = (name: string, v: number): AttrSpec => ({ name, type: AttrType.FLOAT, f: v });
const string = (name: string, v: string): AttrSpec => ({ name, type: AttrType.STRING, s: new TextEncoder().encode(v) });

function node(
  opType: string,
  name: string,
  inputs: string[],
  outputs: string[],
  attribute: AttrSpec[] = [],
): ExportedNode {
  if ([...inputs, ...outputs].some((v) => typeof v !== "string") || outputs.length === 0) {
    throw new OnnxError("bad_format", `Layer '${name}' (${opType}) lacks an input or output name`, { layer: name });
  }
  return { bytes: onnx.NodeProto.encode({ opType, name, input: inputs, output: outputs, attribute }).finish(), inputs };
}

/** What an exporter gets. */
interface Ctx {
  layer: Layer;
  opset: number;
  inShape: Shape;
  x: string;
  y: string;
  /** One node of `opType` reading `inputs` (default: the first input) and writing the layer's output(s). */
  one(opType: string, attribute?: AttrSpec[], inputs?: string[], constants?: Tensor[]): ExportedLayer;
  /** An int64 constant initializer named after the layer. */
  i64(suffix: string, v: number[], shape?: number[]): Tensor;
  /** A float32 constant initializer named after the layer. */
  f32(suffix: string, v: number[], shape?: number[]): Tensor;
  fail(why: string): never;
}

type Exporter = (c: Ctx) => ExportedLayer;

const plain = (opType: string): Exporter => (c) => c.one(opType);

/** Binary op: activation inputs, with the constant operand on its side. */
const binary = (opType: string): Exporter => (c) => {
  const a = attrsOf<BinaryAttrs>(c.layer);
  const k = c.layer.params.const;
  if (a.coeffs && a.coeffs.some((v) => v !== 1)) c.fail(`${c.layer.op} with coefficients, which ONNX cannot express`);
  if (k) return c.one(opType, [], a.constFirst ? [k.name, c.x] : [c.x, k.name]);
  const ins = c.layer.inputs;
  if (ins.length <= 2 || opType === "Max" || opType === "Min") return c.one(opType, [], ins);
  if (opType === "Add") return c.one("Sum", [], ins);
  // Mul of more than two: a chain.
  const nodes: ExportedNode[] = [];
  let acc = ins[0];
  for (let i = 1; i < ins.length; i++) {
    const out = i === ins.length - 1 ? c.y : `${c.layer.name}_${i}`;
    nodes.push(node(opType, `${c.layer.name}/${i}`, [acc, ins[i]], [out]));
    acc = out;
  }
  return { nodes, constants: [] };
};

/** The two operand names of a binary layer (activation or constant), refusing coefficients and n-ary forms. */
function operands(c: Ctx): [string, string] {
  const a = attrsOf<BinaryAttrs>(c.layer);
  const k = c.layer.params.const;
  if (k) return a.constFirst ? [k.name, c.x] : [c.x, k.name];
  if (c.layer.inputs.length !== 2) c.fail(`${c.layer.op} of ${c.layer.inputs.length} operands`);
  return [c.layer.inputs[0], c.layer.inputs[1]];
}

/** A comparison: ONNX's bool result cast to the canonical float32 0/1. */
const compare = (opType: string): Exporter => (c) => {
  const t = `${c.layer.name}_bool`;
  return {
    nodes: [
      node(opType, `${c.layer.name}/${opType}`, operands(c), [t]),
      node("Cast", c.layer.name, [t], [c.y], [int("to", 1)]),
    ],
    constants: [],
  };
};

/** floor(a / b) (and for FloorMod, a - floor(a / b) * b) on float32 values, as TF's FloorDiv and FloorMod. */
const floorDiv = (mod: boolean): Exporter => (c) => {
  const [a, b] = operands(c), n = c.layer.name;
  const q = `${n}_div`, f = mod ? `${n}_floor` : c.y;
  const nodes = [node("Div", `${n}/div`, [a, b], [q]), node("Floor", mod ? `${n}/floor` : n, [q], [f])];
  if (mod) nodes.push(node("Mul", `${n}/mul`, [f, b], [`${n}_mul`]), node("Sub", n, [a, `${n}_mul`], [c.y]));
  return { nodes, constants: [] };
};

const reduce = (opType: string): Exporter => (c) => {
  const a = attrsOf<ReduceAttrs>(c.layer);
  const kd = int("keepdims", a.keepdims ? 1 : 0);
  // ReduceSum takes axes as an input from opset 13, the others from 18.
  const asInput = opType === "ReduceSum" ? c.opset >= 13 : c.opset >= 18;
  if (!a.axes) return c.one(opType, [kd]);
  if (!asInput) return c.one(opType, [ints("axes", a.axes), kd]);
  const ax = c.i64("axes", a.axes);
  return c.one(opType, [kd], [c.x, ax.name], [ax]);
};

/** Canonical op -> ONNX nodes. */
export const EXPORTERS: Readonly<Partial<Record<Op, Exporter>>> = Object.freeze({
  Conv(c) {
    const a = attrsOf<ConvAttrs>(c.layer), p = c.layer.params;
    const ins = [c.x, p.weight.name];
    if (p.bias) ins.push(p.bias.name);
    return c.one("Conv", [
      ints("kernel_shape", a.kernel),
      ints("strides", a.strides),
      ints("pads", a.pads),
      ints("dilations", a.dilations),
      int("group", a.group),
    ], ins);
  },
  ConvTranspose(c) {
    const a = attrsOf<ConvTransposeAttrs>(c.layer), p = c.layer.params;
    const ins = [c.x, p.weight.name];
    if (p.bias) ins.push(p.bias.name);
    return c.one("ConvTranspose", [
      ints("kernel_shape", a.kernel),
      ints("strides", a.strides),
      ints("pads", a.pads),
      ints("dilations", a.dilations),
      int("group", a.group),
      ints("output_padding", a.outputPadding),
    ], ins);
  },
  FC(c) {
    const p = c.layer.params, name = c.layer.name;
    const ins = [c.x, p.weight.name];
    if (p.bias) ins.push(p.bias.name);
    const gemmAttrs = [int("transB", 1)];
    if (c.inShape && c.inShape.length === 2) return c.one("Gemm", gemmAttrs, ins);
    const flat = `${name}_flatten`;
    ins[0] = flat;
    return {
      nodes: [
        node("Flatten", `${name}/flatten`, [c.x], [flat], [int("axis", 1)]),
        node("Gemm", name, ins, [c.y], gemmAttrs),
      ],
      constants: [],
    };
  },
  MatMul(c) {
    const w = c.layer.params.weight;
    return c.one("MatMul", [], w ? [c.x, w.name] : c.layer.inputs);
  },
  MaxPool: (c) => pool(c, "MaxPool"),
  AvgPool: (c) => pool(c, "AveragePool"),
  GlobalAvgPool: plain("GlobalAveragePool"),
  GlobalMaxPool: plain("GlobalMaxPool"),
  Relu: plain("Relu"),
  Sigmoid: plain("Sigmoid"),
  Tanh: plain("Tanh"),
  Identity: plain("Identity"),
  Dropout: plain("Dropout"),
  Abs: plain("Abs"),
  Neg: plain("Neg"),
  Exp: plain("Exp"),
  Log: plain("Log"),
  Sqrt: plain("Sqrt"),
  Reciprocal: plain("Reciprocal"),
  Floor: plain("Floor"),
  Softplus: plain("Softplus"),
  Rsqrt(c) {
    const s = c.layer.name;
    return {
      nodes: [node("Sqrt", `${s}/sqrt`, [c.x], [`${s}_sqrt`]), node("Reciprocal", s, [`${s}_sqrt`], [c.y])],
      constants: [],
    };
  },
  Swish(c) {
    const s = c.layer.name;
    return {
      nodes: [node("Sigmoid", `${s}/sigmoid`, [c.x], [`${s}_sigmoid`]), node("Mul", s, [c.x, `${s}_sigmoid`], [c.y])],
      constants: [],
    };
  },
  HardSwish(c) {
    if (c.opset >= 14) return c.one("HardSwish");
    const s = c.layer.name;
    return {
      nodes: [
        node("HardSigmoid", `${s}/hs`, [c.x], [`${s}_hs`], [float("alpha", 1 / 6), float("beta", 0.5)]),
        node("Mul", s, [c.x, `${s}_hs`], [c.y]),
      ],
      constants: [],
    };
  },
  LeakyRelu: (c) => c.one("LeakyRelu", [float("alpha", attrsOf<{ alpha: number }>(c.layer).alpha)]),
  Elu: (c) => c.one("Elu", [float("alpha", attrsOf<{ alpha: number }>(c.layer).alpha)]),
  Selu(c) {
    const a = attrsOf<{ alpha: number; gamma: number }>(c.layer);
    return c.one("Selu", [float("alpha", a.alpha), float("gamma", a.gamma)]);
  },
  HardSigmoid(c) {
    const a = attrsOf<{ alpha: number; beta: number }>(c.layer);
    return c.one("HardSigmoid", [float("alpha", a.alpha), float("beta", a.beta)]);
  },
  PRelu: (c) => c.one("PRelu", [], [c.x, c.layer.params.slope.name]),
  Cast(c) {
    const to = attrsOf<{ to: string }>(c.layer).to;
    const code = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 }[to];
    if (!code) return c.fail(`Cast to ${to}`);
    return c.one("Cast", [int("to", code)]);
  },
  Clip(c) {
    const { min, max } = attrsOf<ClipAttrs>(c.layer);
    if (c.opset < 11) return c.one("Clip", [float("min", min), float("max", max)]);
    const lo = c.f32("min", [min], []), hi = c.f32("max", [max], []);
    return c.one("Clip", [], [c.x, lo.name, hi.name], [lo, hi]);
  },
  Softmax(c) {
    const axis = attrsOf<{ axis: number }>(c.layer).axis;
    const rank = c.inShape?.length;
    if (c.opset < 13 && !(rank === 2 || (rank !== undefined && (axis === rank - 1 || axis === -1)))) {
      c.fail(`Softmax needs opset 13 for axis ${axis}`);
    }
    return c.one("Softmax", [int("axis", axis)]);
  },
  LRN(c) {
    const a = attrsOf<{ size: number; alpha: number; beta: number; bias: number }>(c.layer);
    return c.one("LRN", [int("size", a.size), float("alpha", a.alpha), float("beta", a.beta), float("bias", a.bias)]);
  },
  BatchNorm(c) {
    const p = c.layer.params;
    return c.one("BatchNormalization", [float("epsilon", attrsOf<{ epsilon: number }>(c.layer).epsilon)], [
      c.x,
      p.scale.name,
      p.bias.name,
      p.mean.name,
      p.var.name,
    ]);
  },
  Scale(c) {
    // y = x * scale[c] (+ bias[c]) over axis 1: reshape the vectors to [C, 1, 1] and broadcast.
    const p = c.layer.params, name = c.layer.name;
    const rank = c.inShape?.length ?? 4;
    const bshape = [p.scale.size, ...Array(Math.max(0, rank - 2)).fill(1)];
    // Reshaped copies under their own names: the [C] params may be written too (a shared tensor, a report).
    const s = p.scale.with({ name: `${p.scale.name}_c11`, shape: bshape });
    const nodes = [node("Mul", `${name}/mul`, [c.x, s.name], [p.bias ? `${name}_mul` : c.y])];
    const constants = [s];
    if (p.bias) {
      const b = p.bias.with({ name: `${p.bias.name}_c11`, shape: bshape });
      nodes.push(node("Add", name, [`${name}_mul`, b.name], [c.y]));
      constants.push(b);
    }
    return { nodes, constants };
  },
  Add: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  Div: binary("Div"),
  Pow: binary("Pow"),
  Max: binary("Max"),
  Min: binary("Min"),
  FloorDiv: floorDiv(false),
  FloorMod: floorDiv(true),
  SquaredDifference(c) {
    const [a, b] = operands(c), n = c.layer.name;
    return {
      nodes: [node("Sub", `${n}/sub`, [a, b], [`${n}_sub`]), node("Mul", n, [`${n}_sub`, `${n}_sub`], [c.y])],
      constants: [],
    };
  },
  Equal: compare("Equal"),
  Less: compare("Less"),
  Greater: compare("Greater"),
  Concat(c) {
    const a = attrsOf<ConcatAttrs>(c.layer);
    const ins = concatParts(a, c.layer).map((p) => ("input" in p ? p.input : c.layer.params[p.param].name));
    return c.one("Concat", [int("axis", a.axis)], ins);
  },
  Split(c) {
    const a = attrsOf<SplitAttrs>(c.layer);
    if (!a.split) return c.one("Split", [int("axis", a.axis)]);
    if (c.opset < 13) return c.one("Split", [int("axis", a.axis), ints("split", a.split)]);
    const s = c.i64("split", a.split);
    return c.one("Split", [int("axis", a.axis)], [c.x, s.name], [s]);
  },
  Flatten: (c) => c.one("Flatten", [int("axis", attrsOf<{ axis: number }>(c.layer).axis)]),
  Reshape(c) {
    const s = c.i64("shape", attrsOf<{ shape: number[] }>(c.layer).shape);
    return c.one("Reshape", [], [c.x, s.name], [s]);
  },
  Transpose(c) {
    const perm = attrsOf<{ perm: number[] | null }>(c.layer).perm;
    return c.one("Transpose", perm ? [ints("perm", perm)] : []);
  },
  Squeeze(c) {
    const axes = attrsOf<{ axes: number[] | null }>(c.layer).axes;
    if (!axes) return c.one("Squeeze");
    if (c.opset < 13) return c.one("Squeeze", [ints("axes", axes)]);
    const t = c.i64("axes", axes);
    return c.one("Squeeze", [], [c.x, t.name], [t]);
  },
  Unsqueeze(c) {
    const axes = attrsOf<{ axes: number[] }>(c.layer).axes;
    if (c.opset < 13) return c.one("Unsqueeze", [ints("axes", axes)]);
    const t = c.i64("axes", axes);
    return c.one("Unsqueeze", [], [c.x, t.name], [t]);
  },
  Slice(c) {
    const a = attrsOf<SliceAttrs>(c.layer);
    const axes = a.axes ?? a.starts.map((_, i) => i);
    const steps = a.steps ?? a.starts.map(() => 1);
    const t = [c.i64("starts", a.starts), c.i64("ends", a.ends), c.i64("axes", axes), c.i64("steps", steps)];
    return c.one("Slice", [], [c.x, ...t.map((v) => v.name)], t);
  },
  Pad(c) {
    const a = attrsOf<PadAttrs>(c.layer);
    const mode = string("mode", a.mode);
    if (c.opset < 11) return c.one("Pad", [mode, ints("pads", a.pads), float("value", a.value)]);
    const pt = c.i64("pads", a.pads), vt = c.f32("value", [a.value], []);
    return c.one("Pad", [mode], [c.x, pt.name, vt.name], [pt, vt]);
  },
  Gather(c) {
    const a = attrsOf<GatherAttrs>(c.layer);
    if (c.layer.inputs.length === 2) {
      // Activation indices are float32 integer values: ONNX's Gather takes int64.
      const n = c.layer.name, i = `${n}_indices`;
      return {
        nodes: [
          node("Cast", `${n}/indices`, [c.layer.inputs[1]], [i], [int("to", 7)]),
          node("Gather", n, [c.x, i], [c.y], [int("axis", a.axis)]),
        ],
        constants: [],
      };
    }
    const t = c.i64("indices", a.indices!, a.indicesShape!);
    return c.one("Gather", [int("axis", a.axis)], [c.x, t.name], [t]);
  },
  GatherND(c) {
    const a = attrsOf<GatherNDAttrs>(c.layer);
    if (c.layer.inputs.length === 2) {
      // Activation indices are float32 integer values: ONNX's GatherND takes int64.
      const n = c.layer.name, i = `${n}_indices`;
      return {
        nodes: [
          node("Cast", `${n}/indices`, [c.layer.inputs[1]], [i], [int("to", 7)]),
          node("GatherND", n, [c.x, i], [c.y]),
        ],
        constants: [],
      };
    }
    const t = c.i64("indices", a.indices!, a.indicesShape!);
    return c.one("GatherND", [], [c.x, t.name], [t]);
  },
  TopK(c) {
    const a = attrsOf<TopKAttrs>(c.layer);
    if (c.opset < 11 && (!a.largest || !a.sorted)) c.fail("TopK smallest or unsorted before opset 11");
    const n = c.layer.name, outs = c.layer.outputs;
    const k = c.i64("k", [a.k], [1]);
    const attrs = [
      int("axis", a.axis),
      ...(c.opset >= 11 ? [int("largest", a.largest ? 1 : 0), int("sorted", a.sorted ? 1 : 0)] : []),
    ];
    const idx = `${n}_indices`;
    // ONNX's int64 indices cast to the canonical float32 values.
    return {
      nodes: [
        node("TopK", n, [c.x, k.name], [outs[0], idx], attrs),
        ...(outs[1] ? [node("Cast", `${n}/indices`, [idx], [outs[1]], [int("to", 1)])] : []),
      ],
      constants: [k],
    };
  },
  DepthToSpace(c) {
    const a = attrsOf<{ blocksize: number; mode: string }>(c.layer);
    return c.one("DepthToSpace", [int("blocksize", a.blocksize), string("mode", a.mode)]);
  },
  SpaceToDepth: (c) => c.one("SpaceToDepth", [int("blocksize", attrsOf<{ blocksize: number }>(c.layer).blocksize)]),
  Resize(c) {
    const a = attrsOf<ResizeAttrs>(c.layer);
    if (c.opset < 11) c.fail("Resize needs opset 11");
    const attrs = [
      string("mode", a.mode),
      string("coordinate_transformation_mode", a.coordinate),
      string("nearest_mode", a.nearest),
    ];
    if (a.scales) {
      const s = c.f32("scales", [1, 1, ...a.scales]);
      return c.one("Resize", attrs, [c.x, "", s.name], [s]);
    }
    const n = c.inShape?.[0], ch = c.inShape?.[1];
    if (typeof n !== "number" || typeof ch !== "number") {
      return c.fail("Resize to sizes needs the input's batch and channels");
    }
    const s = c.i64("sizes", [n, ch, ...a.sizes!]);
    return c.one("Resize", attrs, [c.x, "", "", s.name], [s]);
  },
  ReduceMean: reduce("ReduceMean"),
  ReduceMax: reduce("ReduceMax"),
  ReduceSum: reduce("ReduceSum"),
  ArgMax(c) {
    const a = attrsOf<{ axis: number; keepdims: boolean }>(c.layer);
    // ONNX's int64 result cast to the canonical float32 values (index arithmetic after it is float32).
    const n = c.layer.name, i = `${n}_int64`;
    return {
      nodes: [
        node("ArgMax", n, [c.x], [i], [int("axis", a.axis), int("keepdims", a.keepdims ? 1 : 0)]),
        node("Cast", `${n}/float`, [i], [c.y], [int("to", 1)]),
      ],
      constants: [],
    };
  },
});

function pool(c: Ctx, opType: string): ExportedLayer {
  const a = attrsOf<PoolAttrs>(c.layer);
  const attrs = [ints("kernel_shape", a.kernel), ints("strides", a.strides), ints("pads", a.pads)];
  if (a.ceil) attrs.push(int("ceil_mode", 1));
  if (opType === "AveragePool" && a.countIncludePad) attrs.push(int("count_include_pad", 1));
  return c.one(opType, attrs);
}

/** Builds the ONNX nodes of a canonical layer. `inShape` is the first input's shape when known. */
/**
 * The element type of each output of `layer` as its exported nodes compute it: canonical values are float32 (the
 * exporters cast ONNX's int64 and bool results, ArgMax's, TopK's indices and the comparisons', to float32), except a
 * Cast's.
 */
export function exportedDtypes(layer: Layer): string[] {
  const to = layer.op === "Cast" ? attrsOf<{ to: string }>(layer).to : "float32";
  return layer.outputs.map(() => to);
}

export function exportLayer(layer: Layer, opset: number, inShape: Shape): ExportedLayer {
  const { name } = layer;
  const fail = (why: string): never => {
    throw new OnnxError("unsupported", `Cannot write layer '${name}' (${layer.op}) to ONNX: ${why}`, { layer: name });
  };
  const f = EXPORTERS[layer.op];
  if (!f) {
    const op = layer.op === "Passthrough" ? String(layer.attrs.op ?? layer.attrs.onnxOp ?? "?") : layer.op;
    throw new OnnxError("unsupported", `Layer '${name}' uses op ${op}, which the ONNX writer cannot express`, {
      layer: name,
    });
  }
  return f({
    layer,
    opset,
    inShape,
    x: layer.inputs[0],
    y: layer.outputs[0],
    one: (opType, attribute = [], inputs = [layer.inputs[0]], constants = []) => ({
      nodes: [node(opType, name, inputs, layer.outputs, attribute)],
      constants,
    }),
    i64: (suffix, v, shape = [v.length]) => Tensor.fromInt64(`${name}_${suffix}`, shape, v),
    f32: (suffix, v, shape = [v.length]) => Tensor.fromFloat32(`${name}_${suffix}`, shape, new Float32Array(v)),
    fail,
  });
}
