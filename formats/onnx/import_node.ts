/**
 * ONNX node -> canonical layer, one table entry per ONNX op type ({@link IMPORTERS}). A node maps to a canonical op
 * only when every detail is captured (NOTSET auto_pad, constant weights and bounds, ...); anything else becomes a
 * `Passthrough` layer that keeps the node's bytes, so ONNX -> ONNX never loses it and other writers can name what
 * they cannot express. Attributes are handed over as read; the reader normalizes them against the op registry.
 *
 * @module
 */
import type { Attrs } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { attr, attrFloat, attrInt, attrInts, attrString, type NodeMsg } from "./proto.ts";

/** Resolves a value name to a constant tensor (initializer, Constant output, or an Identity alias of one). */
export type Resolve = (name: string) => Tensor | undefined;

/** Input positions that hold parameters, by op type (for deciding what a streamed node must wait for). */
export const PARAM_POSITIONS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [1, 2],
  MatMul: [1],
  BatchNormalization: [1, 2, 3, 4],
  Reshape: [1],
  Clip: [1, 2],
  Pad: [1, 2, 3],
  Dropout: [1, 2],
  PRelu: [1],
  Slice: [1, 2, 3, 4],
  Squeeze: [1],
  Unsqueeze: [1],
  Split: [1],
  Gather: [1],
  GatherND: [1],
  TopK: [1],
  Resize: [1, 2, 3],
  Upsample: [1],
  ReduceMean: [1],
  ReduceMax: [1],
  ReduceSum: [1],
});

/** What a node maps to. */
export type Mapped = { op: Op; attrs: Attrs; inputs: string[]; params: Record<string, Tensor> };

/** What an importer sees: the node, its inputs, and constant lookup. */
interface Ctx {
  node: NodeMsg;
  ins: string[];
  x: string;
  /** The constant at input i, if that input is one. */
  t(i: number): Tensor | undefined;
  /** The values of a small materialized constant at input i; undefined when it is not one. */
  vals(i: number): number[] | undefined;
  /** The model's default-domain opset, when known. */
  opset?: number;
  /** The rank of activation input i, when known. */
  rank(i: number): number | undefined;
}

type Importer = (c: Ctx) => Mapped | undefined;

const simple = (op: Op, attrs: (n: NodeMsg) => Attrs = () => ({})): Importer => (c) => ({
  op,
  attrs: attrs(c.node),
  inputs: [c.x],
  params: {},
});

function pads2d(node: NodeMsg): number[] | undefined {
  const p = attrInts(node, "pads", [0, 0, 0, 0])!;
  return p.length === 4 ? p : undefined;
}

function spatialOk(node: NodeMsg): boolean {
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  return autoPad === "NOTSET" || autoPad === "";
}

/** Binary ops: between activations, or with one constant operand. Constant-only nodes are folded by the reader. */
const binary = (op: Op): Importer => (c): Mapped | undefined => {
  const consts = c.ins.map((_, i) => c.t(i));
  const nConst = consts.filter(Boolean).length;
  if (c.ins.length === 2 && nConst === 1) {
    let k = consts[0] ?? consts[1]!;
    if (!k.dtype.startsWith("float")) {
      // An integer constant (index arithmetic) against a float32 canonical value: the operand becomes float32 too.
      const v = c.vals(consts[0] ? 0 : 1);
      if (!v) return undefined;
      k = Tensor.fromFloat32(`${k.name}_f32`, [...k.shape], Float32Array.from(v));
    }
    return {
      op,
      attrs: { constFirst: Boolean(consts[0]) },
      inputs: [consts[0] ? c.ins[1] : c.ins[0]],
      params: { const: k },
    };
  }
  if (nConst) return undefined;
  if (c.ins.length > 2 && !["Add", "Mul", "Max", "Min"].includes(op)) return undefined;
  return { op, attrs: {}, inputs: [...c.ins], params: {} };
};

function pool(c: Ctx): Mapped | undefined {
  const node = c.node;
  const k = attrInts(node, "kernel_shape", undefined);
  if (!k || k.length !== 2 || !spatialOk(node)) return undefined;
  if (node.output && node.output.length > 1 && node.output[1]) return undefined;
  const d = attrInts(node, "dilations", [1, 1])!;
  if (d.some((v) => v !== 1) || attrInt(node, "storage_order", 0) !== 0) return undefined;
  const pads = pads2d(node);
  if (!pads) return undefined;
  const attrs: Attrs = {
    kernel: k,
    strides: attrInts(node, "strides", [1, 1])!,
    pads,
    ceil: attrInt(node, "ceil_mode", 0) === 1,
  };
  if (node.opType === "AveragePool") attrs.countIncludePad = attrInt(node, "count_include_pad", 0) === 1;
  return { op: node.opType === "MaxPool" ? "MaxPool" : "AvgPool", attrs, inputs: [c.x], params: {} };
}

function conv(c: Ctx, transpose: boolean): Mapped | undefined {
  const node = c.node;
  const w = c.t(1), b = c.ins[2] ? c.t(2) : undefined;
  if (!w || w.shape.length !== 4 || (c.ins[2] && !b) || !spatialOk(node)) return undefined;
  const pads = pads2d(node);
  if (!pads) return undefined;
  const params: Record<string, Tensor> = { weight: w };
  if (b) params.bias = b;
  const attrs: Attrs = {
    kernel: attrInts(node, "kernel_shape", [w.shape[2], w.shape[3]])!,
    strides: attrInts(node, "strides", [1, 1])!,
    pads,
    dilations: attrInts(node, "dilations", [1, 1])!,
    group: attrInt(node, "group", 1),
  };
  if (transpose) {
    if (attr(node, "output_shape")) return undefined;
    attrs.outputPadding = attrInts(node, "output_padding", [0, 0])!;
  }
  return { op: transpose ? "ConvTranspose" : "Conv", attrs, inputs: [c.x], params };
}

/** Axes from an attribute (older opsets) or a constant input (newer ones); null when absent, undefined when not constant. */
function axesOf(c: Ctx, i: number, name = "axes"): number[] | null | undefined {
  if (c.ins[i]) return c.vals(i);
  return attrInts(c.node, name, undefined) ?? null;
}

const CAST_TO: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  5: "int16",
  6: "int32",
  7: "int64",
  9: "bool",
  10: "float16",
  11: "float64",
};

function reduce(op: Op): Importer {
  return (c) => {
    const axes = axesOf(c, 1);
    if (axes === undefined) return undefined;
    if (axes === null && attrInt(c.node, "noop_with_empty_axes", 0) === 1) return undefined;
    return { op, attrs: { axes, keepdims: attrInt(c.node, "keepdims", 1) === 1 }, inputs: [c.x], params: {} };
  };
}

function resize(c: Ctx): Mapped | undefined {
  const node = c.node;
  const upsample = node.opType === "Upsample";
  const mode = attrString(node, "mode", "nearest");
  if (mode !== "nearest" && mode !== "linear" && mode !== "bilinear") return undefined;
  if (attrInt(node, "antialias", 0) || attrInt(node, "exclude_outside", 0)) return undefined;
  if (attrString(node, "keep_aspect_ratio_policy", "stretch") !== "stretch" || attr(node, "axes")) return undefined;
  let scales: number[] | undefined, sizes: number[] | undefined;
  if (upsample) scales = c.ins[1] ? c.vals(1) : attr(node, "scales")?.floats?.map(Number);
  else {
    // Resize-10: (X, scales); 11+: (X, roi, scales, sizes).
    const si = c.ins.length === 2 ? 1 : 2;
    if (c.ins[si]) scales = c.vals(si);
    if (c.ins[3]) sizes = c.vals(3);
    if (c.ins[si] && scales === undefined || c.ins[3] && sizes === undefined) return undefined;
    if (scales && scales.length === 0) scales = undefined;
  }
  const four = sizes ?? scales;
  if (!four || four.length !== 4) return undefined;
  if (scales && (scales[0] !== 1 || scales[1] !== 1)) return undefined;
  const coordinate = upsample || c.ins.length === 2
    ? "asymmetric"
    : attrString(node, "coordinate_transformation_mode", "half_pixel");
  const nearest = upsample || c.ins.length === 2 ? "floor" : attrString(node, "nearest_mode", "round_prefer_floor");
  return {
    op: "Resize",
    attrs: {
      mode: mode === "nearest" ? "nearest" : "linear",
      coordinate,
      nearest,
      scales: scales ? scales.slice(2) : null,
      sizes: sizes ? sizes.slice(2) : null,
    },
    inputs: [c.x],
    params: {},
  };
}

/** ONNX op type -> canonical layer. */
export const IMPORTERS: Readonly<Record<string, Importer>> = Object.freeze({
  Conv: (c) => conv(c, false),
  ConvTranspose: (c) => conv(c, true),
  Gemm(c) {
    const node = c.node;
    const w = c.t(1), b = c.ins[2] ? c.t(2) : undefined;
    if (!w || w.shape.length !== 2 || (c.ins[2] && !b)) return undefined;
    if (attrFloat(node, "alpha", 1) !== 1 || attrFloat(node, "beta", 1) !== 1 || attrInt(node, "transA", 0) !== 0) {
      return undefined;
    }
    // FC weights are [out, in]: Gemm transB=1 stores them that way; transB=0 is a MatMul plus a bias.
    if (attrInt(node, "transB", 0) !== 1) return undefined;
    if (b && !(b.shape.length === 1 || (b.shape.length === 2 && b.shape[0] === 1))) return undefined;
    if (b && b.size !== w.shape[0]) return undefined;
    const params: Record<string, Tensor> = { weight: w };
    if (b) params.bias = b.shape.length === 1 ? b : b.with({ shape: [b.size] });
    return { op: "FC", attrs: {}, inputs: [c.x], params };
  },
  MatMul(c): Mapped | undefined {
    const a = c.t(0), b = c.t(1);
    if (a) return undefined;
    if (b) return b.shape.length === 2 ? { op: "MatMul", attrs: {}, inputs: [c.x], params: { weight: b } } : undefined;
    return { op: "MatMul", attrs: {}, inputs: [c.ins[0], c.ins[1]], params: {} };
  },
  MaxPool: pool,
  AveragePool: pool,
  GlobalAveragePool: simple("GlobalAvgPool"),
  GlobalMaxPool: simple("GlobalMaxPool"),
  Relu: simple("Relu"),
  Sigmoid: simple("Sigmoid"),
  Tanh: simple("Tanh"),
  Identity: simple("Identity"),
  Abs: simple("Abs"),
  Neg: simple("Neg"),
  Exp: simple("Exp"),
  Log: simple("Log"),
  Sqrt: simple("Sqrt"),
  Reciprocal: simple("Reciprocal"),
  Floor: simple("Floor"),
  Softplus: simple("Softplus"),
  HardSwish: simple("HardSwish"),
  LeakyRelu: simple("LeakyRelu", (n) => ({ alpha: attrFloat(n, "alpha", 0.01) })),
  Elu: simple("Elu", (n) => ({ alpha: attrFloat(n, "alpha", 1) })),
  Selu: simple(
    "Selu",
    (n) => ({
      alpha: attrFloat(n, "alpha", 1.67326319217681884765625),
      gamma: attrFloat(n, "gamma", 1.05070102214813232421875),
    }),
  ),
  HardSigmoid: simple("HardSigmoid", (n) => ({ alpha: attrFloat(n, "alpha", 0.2), beta: attrFloat(n, "beta", 0.5) })),
  Cast(c) {
    const to = CAST_TO[attrInt(c.node, "to", 1)];
    return to ? { op: "Cast", attrs: { to }, inputs: [c.x], params: {} } : undefined;
  },
  PRelu(c) {
    const s = c.t(1);
    return s ? { op: "PRelu", attrs: {}, inputs: [c.x], params: { slope: s } } : undefined;
  },
  Clip(c) {
    let min = attrFloat(c.node, "min", -Infinity), max = attrFloat(c.node, "max", Infinity);
    for (const [i, set] of [[1, (v: number) => (min = v)], [2, (v: number) => (max = v)]] as const) {
      if (!c.ins[i]) continue;
      const v = c.vals(i);
      if (!v || v.length !== 1 || Number.isNaN(v[0])) return undefined;
      set(v[0]);
    }
    return { op: "Clip", attrs: { min, max }, inputs: [c.x], params: {} };
  },
  Softmax(c) {
    // Before opset 13 Softmax flattens the input to 2-D at `axis` (default 1) and normalizes the whole tail; that is
    // the canonical (one-axis) Softmax only when `axis` is the last one. (An in-order input states its opset only
    // after the nodes: read as opset 13, as before.)
    const old = c.opset !== undefined && c.opset < 13;
    const axis = attrInt(c.node, "axis", old ? 1 : -1);
    if (old) {
      const r = c.rank(0);
      if (r === undefined || !(axis === -1 || axis === r - 1)) return undefined;
    }
    return { op: "Softmax", attrs: { axis }, inputs: [c.x], params: {} };
  },
  LRN: simple("LRN", (n) => ({
    size: attrInt(n, "size", 1),
    alpha: attrFloat(n, "alpha", 1e-4),
    beta: attrFloat(n, "beta", 0.75),
    bias: attrFloat(n, "bias", 1),
  })),
  BatchNormalization(c) {
    const [s, b, m, v] = [c.t(1), c.t(2), c.t(3), c.t(4)];
    if (!s || !b || !m || !v || (c.node.output?.length ?? 1) > 1 || attrInt(c.node, "training_mode", 0) !== 0) {
      return undefined;
    }
    return {
      op: "BatchNorm",
      attrs: { epsilon: attrFloat(c.node, "epsilon", 1e-5) },
      inputs: [c.x],
      params: { scale: s, bias: b, mean: m, var: v },
    };
  },
  Add: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  Div: binary("Div"),
  Pow: binary("Pow"),
  Max: binary("Max"),
  Min: binary("Min"),
  Equal: binary("Equal"),
  Less: binary("Less"),
  Greater: binary("Greater"),
  Sum: (c) => binary("Add")(c),
  Concat(c) {
    const at = c.ins.flatMap((_, i) => (c.t(i) ? [i] : []));
    const axis = attrInt(c.node, "axis", 1);
    if (!at.length) return { op: "Concat", attrs: { axis, constAt: null }, inputs: [...c.ins], params: {} };
    // All constant: the reader folds it. Some: the constants are operands (float32, as every canonical value).
    if (at.length === c.ins.length) return undefined;
    const params: Record<string, Tensor> = {};
    for (const [k, i] of at.entries()) {
      const t = c.t(i)!;
      if (t.dtype === "float32") params[`const${k}`] = t;
      else {
        const v = c.vals(i);
        if (!v) return undefined;
        params[`const${k}`] = Tensor.fromFloat32(`${t.name}_f32`, [...t.shape], Float32Array.from(v));
      }
    }
    return { op: "Concat", attrs: { axis, constAt: at }, inputs: c.ins.filter((_, i) => !c.t(i)), params };
  },
  Split(c) {
    const split = axesOf(c, 1, "split");
    if (split === undefined || attr(c.node, "num_outputs")) return undefined;
    return { op: "Split", attrs: { axis: attrInt(c.node, "axis", 0), split }, inputs: [c.x], params: {} };
  },
  Flatten: simple("Flatten", (n) => ({ axis: attrInt(n, "axis", 1) })),
  Reshape(c) {
    const shape = c.vals(1);
    if (!shape || attrInt(c.node, "allowzero", 0) !== 0 || shape.some((v) => !Number.isInteger(v))) return undefined;
    return { op: "Reshape", attrs: { shape }, inputs: [c.x], params: {} };
  },
  Transpose: simple("Transpose", (n) => ({ perm: attrInts(n, "perm", undefined) ?? null })),
  Squeeze(c) {
    const axes = axesOf(c, 1);
    return axes === undefined ? undefined : { op: "Squeeze", attrs: { axes }, inputs: [c.x], params: {} };
  },
  Unsqueeze(c) {
    const axes = axesOf(c, 1);
    return axes ? { op: "Unsqueeze", attrs: { axes }, inputs: [c.x], params: {} } : undefined;
  },
  Slice(c) {
    let starts: number[] | undefined, ends: number[] | undefined, axes: number[] | null | undefined = null;
    let steps: number[] | null | undefined = null;
    if (c.ins.length === 1) {
      starts = attrInts(c.node, "starts", undefined);
      ends = attrInts(c.node, "ends", undefined);
      axes = attrInts(c.node, "axes", undefined) ?? null;
    } else {
      starts = c.vals(1);
      ends = c.vals(2);
      if (c.ins[3]) axes = c.vals(3);
      if (c.ins[4]) steps = c.vals(4);
    }
    if (!starts || !ends || axes === undefined || steps === undefined) return undefined;
    // INT64 bounds such as INT64_MAX arrive as large floats: clamp them into the int range the schema allows.
    const clampInt = (v: number) => Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, v));
    return {
      op: "Slice",
      attrs: { starts: starts.map(clampInt), ends: ends.map(clampInt), axes, steps },
      inputs: [c.x],
      params: {},
    };
  },
  Pad(c) {
    const mode = attrString(c.node, "mode", "constant");
    if (!["constant", "reflect", "edge"].includes(mode) || c.ins[3]) return undefined;
    let pads = attrInts(c.node, "pads", undefined);
    let value = attrFloat(c.node, "value", 0);
    if (c.ins[1]) pads = c.vals(1);
    if (c.ins[2]) {
      const v = c.vals(2);
      if (!v || v.length !== 1) return undefined;
      value = v[0];
    }
    if (!pads) return undefined;
    return { op: "Pad", attrs: { pads, mode, value }, inputs: [c.x], params: {} };
  },
  Gather(c) {
    if (c.t(0)) return undefined;
    const t = c.t(1), v = c.vals(1);
    if (!t) {
      const attrs = { axis: attrInt(c.node, "axis", 0), indices: null, indicesShape: null };
      return { op: "Gather", attrs, inputs: [c.x, c.ins[1]], params: {} };
    }
    if (!v) return undefined;
    return {
      op: "Gather",
      attrs: { axis: attrInt(c.node, "axis", 0), indices: v, indicesShape: [...t.shape] },
      inputs: [c.x],
      params: {},
    };
  },
  GatherND(c) {
    if (c.t(0) || attrInt(c.node, "batch_dims", 0) !== 0) return undefined;
    const t = c.t(1), v = c.vals(1);
    if (!t) {
      return { op: "GatherND", attrs: { indices: null, indicesShape: null }, inputs: [c.x, c.ins[1]], params: {} };
    }
    if (!v || !t.shape.length) return undefined;
    return { op: "GatherND", attrs: { indices: v, indicesShape: [...t.shape] }, inputs: [c.x], params: {} };
  },
  TopK(c) {
    const k = c.vals(1);
    if (!k || k.length !== 1) return undefined;
    const attrs = {
      k: k[0],
      axis: attrInt(c.node, "axis", -1),
      largest: attrInt(c.node, "largest", 1) !== 0,
      sorted: attrInt(c.node, "sorted", 1) !== 0,
    };
    return { op: "TopK", attrs, inputs: [c.x], params: {} };
  },
  DepthToSpace: simple("DepthToSpace", (n) => ({
    blocksize: attrInt(n, "blocksize", 0),
    mode: attrString(n, "mode", "DCR"),
  })),
  SpaceToDepth: simple("SpaceToDepth", (n) => ({ blocksize: attrInt(n, "blocksize", 0) })),
  Resize: resize,
  Upsample: resize,
  ReduceMean: reduce("ReduceMean"),
  ReduceMax: reduce("ReduceMax"),
  ReduceSum: reduce("ReduceSum"),
  ArgMax(c) {
    if (attrInt(c.node, "select_last_index", 0)) return undefined;
    return {
      op: "ArgMax",
      attrs: { axis: attrInt(c.node, "axis", 0), keepdims: attrInt(c.node, "keepdims", 1) === 1 },
      inputs: [c.x],
      params: {},
    };
  },
  Dropout(c) {
    if ((c.node.output?.length ?? 1) > 1 && c.node.output![1]) return undefined;
    return {
      op: "Dropout",
      attrs: { ratio: attr(c.node, "ratio") ? attrFloat(c.node, "ratio", 0.5) : 0.5 },
      inputs: [c.x],
      params: {},
    };
  },
});

/** Maps a node to a canonical op, or returns undefined for pass-through. */
export function importNode(
  node: NodeMsg,
  resolve: Resolve,
  hints: { opset?: number; rank?: (name: string) => number | undefined } = {},
): Mapped | undefined {
  const domain = node.domain ?? "";
  if (domain !== "" && domain !== "ai.onnx") return undefined;
  const f = IMPORTERS[node.opType ?? ""];
  if (!f) return undefined;
  const ins = node.input ?? [];
  const t = (i: number) => (ins[i] ? resolve(ins[i]) : undefined);
  return f({
    node,
    ins,
    x: ins[0],
    t,
    opset: hints.opset,
    rank: (i) => (ins[i] ? hints.rank?.(ins[i]) : undefined),
    vals(i) {
      const c = t(i);
      if (!c || !c.materialized || c.size > 4096) return undefined;
      const v = readNumbers(c);
      return v.some((x) => Number.isNaN(x)) && c.dtype !== "float32" ? undefined : v;
    },
  });
}

/** Reads a small materialized tensor's values synchronously. */
export function readNumbers(t: Tensor): number[] {
  const c = t.syncBytes().slice();
  switch (t.dtype) {
    case "int64":
      return Array.from(new BigInt64Array(c.buffer), Number);
    case "int32":
      return Array.from(new Int32Array(c.buffer));
    case "float32":
      return Array.from(new Float32Array(c.buffer));
    case "float64":
      return Array.from(new Float64Array(c.buffer));
    default:
      return [NaN];
  }
}
