/**
 * Maps a TF.js graph-model (GraphDef JSON nodes, NHWC) to canonical layers (NCHW), one handler per TF op
 * ({@link HANDLERS}). Const nodes become parameters, read lazily from the weight shards; small constant subgraphs
 * (shapes, axes) are folded; every other node becomes zero or more canonical layers.
 *
 * Layout: a rank-4 value is NHWC in TF.js and NCHW in the stream. Ops with an axis (concat, reduce, slice, pad,
 * split, softmax, gather) get their axes remapped; an op whose result cannot be remapped (a reshape that mixes
 * channels with space, a transpose, a squeeze that changes the rank) runs on an explicit NHWC view: a Transpose
 * before it, and one after it when the result is rank 4 again. Constant operands are converted to the canonical
 * layout as they are read.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Attrs as LayerAttrs, Dim, ModelHeader, ValueInfo } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { TfjsLayerBuilder, type TfPadding } from "./builder.ts";
import { keepsBatch } from "./emit_context.ts";
import type { AttrValueJson, GraphDefJson, ModelJson, NodeDefJson } from "./types.ts";

const dec = new TextDecoder();

/** Decodes a base64 bytes attribute. */
function b64(s: string): string {
  return dec.decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
}

/** Reads node attributes in their JSON encodings. */
class Attrs {
  readonly #a: Record<string, AttrValueJson>;
  constructor(n: NodeDefJson) {
    this.#a = n.attr ?? {};
  }
  has(k: string): boolean {
    return k in this.#a;
  }
  str(k: string, def = ""): string {
    const v = this.#a[k]?.s;
    return v === undefined ? def : b64(v);
  }
  int(k: string, def = 0): number {
    const v = this.#a[k]?.i;
    return v === undefined ? def : Number(v);
  }
  float(k: string, def = 0): number {
    return this.#a[k]?.f ?? def;
  }
  bool(k: string, def = false): boolean {
    return this.#a[k]?.b ?? def;
  }
  ints(k: string, def: number[] = []): number[] {
    const l = this.#a[k]?.list?.i;
    return l ? l.map(Number) : def;
  }
  strs(k: string): string[] {
    return (this.#a[k]?.list?.s ?? []).map(b64);
  }
  type(k: string): string {
    return this.#a[k]?.type ?? "";
  }
  shape(k: string): number[] | undefined {
    const s = this.#a[k]?.shape;
    if (!s || s.unknownRank) return undefined;
    return (s.dim ?? []).map((d) => Number(d.size ?? -1));
  }
}

/** A value's TF name without the `:0` suffix; `^ctrl` inputs are dropped by the caller. */
function valueName(input: string): string {
  return input.endsWith(":0") ? input.slice(0, -2) : input;
}

function padding(a: Attrs): TfPadding {
  const p = a.str("padding", "VALID").toUpperCase();
  if (p === "SAME") return "same";
  if (p === "VALID") return "valid";
  if (p === "EXPLICIT") {
    const e = a.ints("explicit_paddings");
    // NHWC pairs: [0,0, top,bottom, left,right, 0,0] -> [top, left, bottom, right]
    return [e[2], e[4], e[3], e[5]];
  }
  throw new TfjsError("unsupported", `Unknown TF padding '${p}'`);
}

function spatial(v: number[], def: number): number[] {
  return v.length === 4 ? [v[1], v[2]] : v.length === 2 ? v : [def, def];
}

/** NHWC axis -> NCHW axis of a rank-4 tensor. */
const TF_TO_CANON = [0, 2, 3, 1];
/** Canonical (NCHW) -> TF (NHWC) order as a Transpose perm, and back. */
const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** A folded constant: small numbers with a shape. */
interface Folded {
  v: number[];
  shape: number[];
}

const TF_DTYPES: Record<string, string> = {
  DT_FLOAT: "float32",
  DT_HALF: "float16",
  DT_DOUBLE: "float64",
  DT_INT32: "int32",
  DT_INT64: "int64",
  DT_INT8: "int8",
  DT_UINT8: "uint8",
  DT_INT16: "int16",
  DT_BOOL: "bool",
};

/** What a handler gets. */
interface Ctx {
  n: NodeDefJson;
  a: Attrs;
  name: string;
  ins: string[];
  b: TfjsLayerBuilder;
  /** The activation at input i (canonical value name). */
  act(i?: number): string;
  /** True when input i is a constant (a weight, or folded). */
  isConst(i: number): boolean;
  /** The weight tensor at input i. */
  constOf(i: number): Tensor;
  /** The values of a constant input. */
  numbers(i: number): Promise<number[]>;
  /** A constant input as a float32 tensor in the canonical layout for broadcasting against a value of rank r. */
  operand(i: number, rank: number): Promise<Tensor>;
  fail(why: string): never;
}

type Handler = (c: Ctx) => string | string[] | Promise<string | string[]>;

/** A node that adds one canonical layer of `op` on its first input. */
const unary = (op: Op, attrs: (a: Attrs) => LayerAttrs = () => ({})): Handler => (c) =>
  c.b.op(op, c.name, [c.act()], attrs(c.a));

/** The value `v` (canonical) as TF order: a Transpose for rank 4. */
function tfView(c: Ctx, v: string): string {
  if (c.b.rank(v) !== 4) return v;
  const n = `${c.name}/to_nhwc`;
  return c.b.op("Transpose", n, [v], { perm: TO_NHWC }, n);
}

/** A TF-order result `v` back to canonical: a Transpose when it is rank 4. */
function fromTf(c: Ctx, v: string, out = c.name): string {
  if (c.b.rank(v) !== 4) return v;
  return c.b.op("Transpose", out, [v], { perm: TO_NCHW }, out);
}

/** Runs a TF-order op on a TF view of the first input and converts the result back. */
function viaTf(c: Ctx, op: Op, attrs: LayerAttrs): string {
  const v = tfView(c, c.act());
  const tmp = `${c.name}/nhwc`;
  const mid = c.b.op(op, tmp, [v], attrs, tmp);
  if (c.b.rank(mid) === 4) return fromTf(c, mid);
  // Rank is not 4: TF order is canonical order; rename through Identity to keep the node's name as the value.
  return c.b.op("Identity", c.name, [mid]);
}

/** A canonical axis for TF axis `axis` of a value of rank `r`. */
function canonAxis(axis: number, r: number): number {
  const a = axis < 0 ? axis + r : axis;
  return r === 4 ? TF_TO_CANON[a] : a;
}

function binary(op: Op): Handler {
  return async (c) => {
    const c0 = c.isConst(0), c1 = c.isConst(1);
    if (!c0 && !c1) {
      const r0 = c.b.rank(c.act(0)), r1 = c.b.rank(c.act(1));
      if ((r0 === 4) === (r1 === 4) || !r0 || !r1) return c.b.op(op, c.name, [c.act(0), c.act(1)]);
      if (r0 > 4 || r1 > 4) c.fail(`${c.n.op} between a rank-${r0} and a rank-${r1} value`);
      // TF broadcasting aligns the trailing axes: the lower-rank operand gets leading 1s in TF order (NHWC), then
      // goes to NCHW like every rank-4 value.
      const lift = (i: number, r: number) => {
        const x = c.b.tfOrder(c.act(i), `${c.name}/${i}`);
        const u = `${c.name}/lift${i}`, t = `${c.name}/lift${i}_nchw`;
        const v = c.b.op("Unsqueeze", u, [x], { axes: Array.from({ length: 4 - r }, (_, k) => k) }, u);
        return c.b.op("Transpose", t, [v], { perm: TO_NCHW }, t);
      };
      const a0 = r0 === 4 ? c.act(0) : lift(0, r0), a1 = r1 === 4 ? c.act(1) : lift(1, r1);
      return c.b.op(op, c.name, [a0, a1]);
    }
    if (c0 && c1) c.fail("both operands are constants");
    const xi = c0 ? 1 : 0;
    const x = c.act(xi);
    const k = await c.operand(c0 ? 0 : 1, c.b.rank(x));
    return c.b.add({
      name: c.b.unique(c.name),
      op,
      attrs: { constFirst: c0 },
      inputs: [x],
      outputs: [c.name],
      params: { const: k },
    });
  };
}

function reduce(op: Op): Handler {
  return async (c) => {
    const x = c.act();
    const r = c.b.rank(x);
    const axes = (await c.numbers(1)).map((d) => (d < 0 ? d + r : d));
    const keep = c.a.bool("keep_dims") || c.a.bool("keepdims");
    if (r === 4 && keep) return c.b.op(op, c.name, [x], { axes: axes.map((d) => TF_TO_CANON[d]), keepdims: true });
    if (r === 4 && axes.slice().sort().join() === "1,2") {
      // The usual global pooling: [N, C] comes out in the same order in both layouts.
      return c.b.op(op, c.name, [x], { axes: [2, 3], keepdims: false });
    }
    if (r !== 4) return c.b.op(op, c.name, [x], { axes, keepdims: keep });
    return viaTf(c, op, { axes, keepdims: keep });
  };
}

/** The pads of a TF `paddings` constant [[b, e] per axis] as canonical [begins..., ends...]. */
function padsOf(p: number[], r: number): number[] {
  const begins = new Array(r).fill(0), ends = new Array(r).fill(0);
  for (let i = 0; i < r; i++) {
    const ax = r === 4 ? TF_TO_CANON[i] : i;
    begins[ax] = p[2 * i];
    ends[ax] = p[2 * i + 1];
  }
  return [...begins, ...ends];
}

const ACTIVATIONS: Record<string, Op> = {
  Relu: "Relu",
  Sigmoid: "Sigmoid",
  Tanh: "Tanh",
  Elu: "Elu",
  Selu: "Selu",
  Softplus: "Softplus",
  Exp: "Exp",
  Log: "Log",
  Sqrt: "Sqrt",
  Rsqrt: "Rsqrt",
  Abs: "Abs",
  Neg: "Neg",
  Reciprocal: "Reciprocal",
  Inv: "Reciprocal",
  Floor: "Floor",
};

/** TF op -> canonical layers. */
export const HANDLERS: Readonly<Record<string, Handler>> = Object.freeze({
  Conv2D: conv,
  _FusedConv2D: conv,
  DepthwiseConv2dNative: conv,
  FusedDepthwiseConv2dNative: conv,
  MatMul: matMul,
  _FusedMatMul: matMul,
  BatchMatMul: matMul,
  BatchMatMulV2: matMul,
  BiasAdd: (c) => biasAdd(c),
  BiasAddV1: (c) => biasAdd(c),
  FusedBatchNorm: batchNorm,
  FusedBatchNormV2: batchNorm,
  FusedBatchNormV3: batchNorm,
  ...Object.fromEntries(Object.entries(ACTIVATIONS).map(([k, op]) => [k, unary(op)])),
  Relu6: unary("Clip", () => ({ min: 0, max: 6 })),
  LeakyRelu: unary("LeakyRelu", (a) => ({ alpha: a.float("alpha", 0.2) })),
  Square: (c) => c.b.op("Mul", c.name, [c.act(), c.act()]),
  Softmax: (c) => c.b.op("Softmax", c.name, [c.act()], { axis: canonAxis(-1, c.b.rank(c.act())) }),
  Prelu: (c) => prelu(c, c.name, c.act(), 1),
  Cast(c) {
    const to = TF_DTYPES[c.a.type("DstT")];
    if (!to) c.fail(`Cast to ${c.a.type("DstT")}`);
    return c.b.op("Cast", c.name, [c.act()], { to });
  },
  MaxPool: pool,
  AvgPool: pool,
  Mean: reduce("ReduceMean"),
  Max: reduce("ReduceMax"),
  Sum: reduce("ReduceSum"),
  ArgMax: async (c) => {
    const x = c.act();
    const axis = (await c.numbers(1))[0];
    const r = c.b.rank(x);
    if (r !== 4) return c.b.op("ArgMax", c.name, [x], { axis: axis < 0 ? axis + r : axis, keepdims: false });
    return viaTf(c, "ArgMax", { axis: axis < 0 ? axis + r : axis, keepdims: false });
  },
  Reshape: async (c) => reshape(c, await c.numbers(1)),
  Squeeze(c) {
    const x = c.act();
    const r = c.b.rank(x);
    const dims = c.a.ints("squeeze_dims", c.a.ints("axis")).map((d) => (d < 0 ? d + r : d));
    const s = c.b.shape(x);
    if (r === 4 && dims.slice().sort().join() === "1,2" && s?.[2] === 1 && s?.[3] === 1) {
      return c.b.flatten(c.name, c.name, x);
    }
    if (r !== 4) return c.b.op("Squeeze", c.name, [x], { axes: dims.length ? dims : null });
    return viaTf(c, "Squeeze", { axes: dims.length ? dims : null });
  },
  ExpandDims: async (c) => {
    const x = c.act();
    const r = c.b.rank(x);
    const ax = (await c.numbers(1))[0];
    const axes = [ax < 0 ? ax + r + 1 : ax];
    if (r === 4) return viaTf(c, "Unsqueeze", { axes });
    const v = c.b.op("Unsqueeze", `${c.name}/tf`, [x], { axes }, `${c.name}/tf`);
    // Rank 4 now: the TF order is NHWC.
    return c.b.rank(v) === 4 ? c.b.op("Transpose", c.name, [v], { perm: TO_NCHW }) : c.b.op("Identity", c.name, [v]);
  },
  Transpose: async (c) => {
    const x = c.act();
    const p = await c.numbers(1);
    if (c.b.rank(x) !== 4 || p.length !== 4) return c.b.op("Transpose", c.name, [x], { perm: p });
    // canonical out axis i = TF out axis TO_NHWC[i] = TF in axis p[..] = canonical axis TF_TO_CANON[..].
    const perm = TO_NHWC.map((_, i) => TF_TO_CANON[p[TO_NHWC[i]]]);
    return c.b.op("Transpose", c.name, [x], { perm });
  },
  Pad: padNode,
  PadV2: padNode,
  MirrorPad: padNode,
  Add: binary("Add"),
  AddV2: binary("Add"),
  Sub: binary("Sub"),
  Mul: binary("Mul"),
  RealDiv: binary("Div"),
  Div: binary("Div"),
  Maximum: binary("Max"),
  Minimum: binary("Min"),
  Pow: binary("Pow"),
  FloorDiv: binary("FloorDiv"),
  FloorMod: binary("FloorMod"),
  SquaredDifference: binary("SquaredDifference"),
  Equal: binary("Equal"),
  Less: binary("Less"),
  Greater: binary("Greater"),
  AddN(c) {
    return c.b.op("Add", c.name, c.ins.map((_, i) => c.act(i)));
  },
  ConcatV2: concat,
  Concat: concat,
  Pack: pack,
  GatherNd: gatherNd,
  Split: async (c) => {
    const x = c.act(1);
    const r = c.b.rank(x);
    const axis = canonAxis((await c.numbers(0))[0], r);
    const n = c.a.int("num_split", 1);
    return split(c, x, axis, null, n);
  },
  SplitV: async (c) => {
    const x = c.act(0);
    const r = c.b.rank(x);
    const sizes = await c.numbers(1);
    const axis = canonAxis((await c.numbers(2))[0], r);
    return split(c, x, axis, sizes, sizes.length);
  },
  Unpack(c) {
    let x = c.act();
    const r = c.b.rank(x);
    let axis = c.a.int("axis", 0);
    if (axis < 0) axis += r;
    const n = c.a.int("num", 1);
    // Unpacking the channels of a rank-4 value leaves N, H, W in the same order in both layouts.
    // Other axes: unpack an NHWC view (the rank-3 pieces are then in TF order, which is canonical for rank 3).
    if (r === 4 && axis === 3) axis = 1;
    else if (r === 4) x = tfView(c, x);
    const pieces = split({ ...c, name: `${c.name}/split` }, x, axis, null, n);
    return pieces.map((p, i) => {
      const out = i === 0 ? c.name : `${c.name}:${i}`;
      return c.b.op("Squeeze", out, [p], { axes: [axis] }, out);
    });
  },
  Slice: async (c) => {
    const x = c.act();
    const r = c.b.rank(x);
    const begin = await c.numbers(1), size = await c.numbers(2);
    const axes = begin.map((_, i) => canonAxis(i, r));
    const ends = begin.map((b, i) => (size[i] === -1 ? 2 ** 31 - 1 : b + size[i]));
    return c.b.op("Slice", c.name, [x], { starts: begin, ends, axes, steps: null });
  },
  StridedSlice: stridedSlice,
  GatherV2: async (c) => {
    if (c.a.int("batch_dims", 0) !== 0) c.fail(`GatherV2 with batch_dims ${c.a.int("batch_dims", 0)}`);
    if (!c.isConst(1)) {
      // Indices computed by the graph (int32 in TF, float32 integer values in the stream), which count elements in
      // TF's order: a flattened NHWC operand is regrouped first.
      const i = c.b.tfOrder(c.act(1), `${c.name}/indices`);
      const x = c.b.tfOrder(c.act(0), c.name);
      const r = c.b.rank(x), ri = c.b.rank(i);
      if (ri === 4) c.fail("GatherV2 with rank-4 indices");
      let axis = (await c.numbers(2))[0];
      if (axis < 0) axis += r;
      // A rank-1 index on a rank-4 value keeps rank 4: the axis maps to canonical; otherwise gather on a TF view.
      if (r === 4 && ri === 1) return c.b.op("Gather", c.name, [x, i], { axis: TF_TO_CANON[axis] });
      if (r !== 4) return c.b.op("Gather", c.name, [x, i], { axis });
      const v = tfView(c, x);
      const tmp = `${c.name}/nhwc`;
      const mid = c.b.op("Gather", tmp, [v, i], { axis }, tmp);
      return c.b.rank(mid) === 4 ? fromTf(c, mid) : c.b.op("Identity", c.name, [mid]);
    }
    const x = c.b.tfOrder(c.act(0), c.name);
    const t = c.constOf(1);
    const idx = await c.numbers(1);
    const axis = (await c.numbers(2))[0];
    const r = c.b.rank(x);
    const attrs = { axis: axis < 0 ? axis + r : axis, indices: idx, indicesShape: [...t.shape] };
    if (r !== 4) return c.b.op("Gather", c.name, [x], attrs);
    return viaTf(c, "Gather", attrs);
  },
  TopKV2: async (c) => {
    // Indices count elements in TF's order: a flattened NHWC value is regrouped first.
    const x = c.b.tfOrder(c.act(0), c.name);
    const r = c.b.rank(x);
    const k = (await c.numbers(1))[0];
    // TF takes the top k of the last axis: for a rank-4 value that is the channel axis.
    const attrs = { k, axis: r === 4 ? 1 : r - 1, largest: true, sorted: c.a.bool("sorted", true) };
    const outputs = [c.name, `${c.name}:1`];
    c.b.add({ name: c.b.unique(c.name), op: "TopK", attrs, inputs: [x], outputs, params: {} });
    return outputs;
  },
  DepthToSpace: (c) => c.b.op("DepthToSpace", c.name, [c.act()], { blocksize: c.a.int("block_size"), mode: "DCR" }),
  SpaceToDepth: (c) => c.b.op("SpaceToDepth", c.name, [c.act()], { blocksize: c.a.int("block_size") }),
  ResizeBilinear: resize,
  ResizeNearestNeighbor: resize,
  Conv2DBackpropInput: convTranspose,
  Identity: (c) => c.b.op("Identity", c.name, [c.act()]),
  StopGradient: (c) => c.b.op("Identity", c.name, [c.act()]),
  Snapshot: (c) => c.b.op("Identity", c.name, [c.act()]),
});

async function conv(c: Ctx): Promise<string> {
  const { a, name, b } = c;
  const depthwise = c.n.op.includes("Depthwise");
  const fused = a.strs("fused_ops");
  let bias: Tensor | undefined;
  let rest = fused;
  let next = 2;
  if (fused[0] === "BiasAdd") {
    bias = c.constOf(2);
    rest = fused.slice(1);
    next = 3;
  }
  const convOut = rest.length ? `${name}/conv` : name;
  let v = b.conv(name, convOut, c.act(), c.constOf(1), bias, {
    strides: spatial(a.ints("strides"), 1),
    dilations: spatial(a.ints("dilations"), 1),
    padding: padding(a),
    depthwise,
  });
  if (fused[0] === "FusedBatchNorm") {
    const [sc, of, me, va] = [2, 3, 4, 5].map((i) => c.constOf(i));
    rest = fused.slice(1);
    next = 6;
    v = b.add({
      name: b.unique(`${name}/bn`),
      op: "BatchNorm",
      attrs: { epsilon: a.float("epsilon", 1e-3) },
      inputs: [v],
      outputs: [rest.length ? `${name}/bn` : name],
      params: { scale: sc, bias: of, mean: me, var: va },
    });
  }
  return await fusedActivation(c, rest, v, next);
}

async function matMul(c: Ctx): Promise<string> {
  const { a, name, b } = c;
  const ta = a.bool("transpose_a") || a.bool("adj_x"), tb = a.bool("transpose_b") || a.bool("adj_y");
  const fused = a.strs("fused_ops");
  let bias: Tensor | undefined;
  let rest = fused;
  if (fused[0] === "BiasAdd") {
    bias = c.constOf(2);
    rest = fused.slice(1);
  }
  const out = rest.length ? `${name}/fc` : name;
  let v: string;
  if (c.isConst(1) && !ta && b.rank(c.act()) <= 2) {
    v = b.fc(name, out, c.act(), c.constOf(1), bias, tb);
  } else {
    const swap = (x: string, label: string) => {
      const r = b.rank(x);
      const perm = Array.from({ length: r }, (_, i) => i);
      [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
      return b.op("Transpose", `${name}/${label}`, [x], { perm }, `${name}/${label}`);
    };
    if (b.rank(c.act()) === 4) c.fail("a matrix product of a rank-4 value");
    const x = ta ? swap(c.act(), "ta") : c.act();
    const mmOut = bias ? `${name}/mm` : out;
    if (c.isConst(1)) {
      let w = c.constOf(1);
      if (tb) c.fail("a constant operand with transpose_b on a batched product");
      if (w.shape.length !== 2) c.fail(`a constant operand of rank ${w.shape.length}`);
      w = w.with({});
      v = b.add({
        name: b.unique(mmOut),
        op: "MatMul",
        attrs: {},
        inputs: [x],
        outputs: [mmOut],
        params: { weight: w },
      });
    } else {
      const y = tb ? swap(c.act(1), "tb") : c.act(1);
      v = b.op("MatMul", mmOut, [x, y], {}, mmOut);
    }
    if (bias) {
      v = b.add({
        name: b.unique(`${name}/bias`),
        op: "Add",
        attrs: {},
        inputs: [v],
        outputs: [out],
        params: { const: bias },
      });
    }
  }
  return await fusedActivation(c, rest, v, 3);
}

async function prelu(c: Ctx, out: string, x: string, alphaInput: number): Promise<string> {
  const slope = await c.operand(alphaInput, c.b.rank(x));
  return c.b.add({ name: c.b.unique(out), op: "PRelu", attrs: {}, inputs: [x], outputs: [out], params: { slope } });
}

async function fusedActivation(c: Ctx, ops: string[], v: string, next: number): Promise<string> {
  if (ops.length === 0) return v;
  if (ops.length > 1) c.fail(`fused ops [${ops.join(", ")}]`);
  const name = c.name;
  switch (ops[0]) {
    case "Prelu":
      return await prelu(c, name, v, next);
    case "Relu6":
      return c.b.op("Clip", `${name}/act`, [v], { min: 0, max: 6 }, name);
    case "LeakyRelu":
      return c.b.op("LeakyRelu", `${name}/act`, [v], { alpha: c.a.float("leakyrelu_alpha", 0.2) }, name);
    default: {
      const op = ACTIVATIONS[ops[0]];
      if (!op) c.fail(`fused activation '${ops[0]}' has no canonical op`);
      return c.b.op(op, `${name}/act`, [v], {}, name);
    }
  }
}

function biasAdd(c: Ctx): string {
  const { b, name } = c;
  const input = c.act();
  const bias = c.constOf(1);
  // Fold into the producing Conv/FC when it has no bias and this node is its only reader.
  const prod = b.layers.at(-1);
  if (
    prod && prod.outputs[0] === input && (prod.op === "Conv" || prod.op === "FC") && !prod.params.bias &&
    consumersOf(c, input) === 1
  ) {
    prod.params.bias = bias;
    b.layers.pop();
    return b.add({ ...prod, outputs: [name] });
  }
  return b.scaleConst(name, name, input, "Add", bias);
}

let consumersOf: (c: Ctx, canonical: string) => number = () => 0;

function batchNorm(c: Ctx): string {
  const [sc, of, me, va] = [1, 2, 3, 4].map((i) => c.constOf(i));
  return c.b.add({
    name: c.b.unique(c.name),
    op: "BatchNorm",
    attrs: { epsilon: c.a.float("epsilon", 1e-3) },
    inputs: [c.act()],
    outputs: [c.name],
    params: { scale: sc, bias: of, mean: me, var: va },
  });
}

function pool(c: Ctx): string {
  const { a, b, name } = c;
  const x = c.act();
  const k = spatial(a.ints("ksize"), 1), s = spatial(a.ints("strides"), 1);
  const pads = b.pads(x, name, padding(a), k, s, [1, 1]);
  const attrs: LayerAttrs = { kernel: k, strides: s, pads, ceil: false };
  if (c.n.op === "AvgPool") attrs.countIncludePad = false;
  return b.op(c.n.op === "MaxPool" ? "MaxPool" : "AvgPool", name, [x], attrs);
}

async function padNode(c: Ctx): Promise<string> {
  const x = c.act();
  const r = c.b.rank(x);
  const p = await c.numbers(1);
  if (p.length !== 2 * r) c.fail(`paddings of ${p.length / 2} axes on a rank-${r} value`);
  let mode = "constant";
  if (c.n.op === "MirrorPad") {
    const m = c.a.str("mode", "REFLECT").toUpperCase();
    if (m !== "REFLECT") c.fail(`MirrorPad mode ${m}`);
    mode = "reflect";
  }
  const value = c.n.op === "PadV2" ? (await c.numbers(2))[0] : 0;
  return c.b.op("Pad", c.name, [x], { pads: padsOf(p, r), mode, value });
}

async function concat(c: Ctx): Promise<string> {
  const v2 = c.n.op === "ConcatV2";
  const axisAt = v2 ? c.ins.length - 1 : 0;
  const parts = c.ins.map((_, i) => i).filter((i) => i !== axisAt);
  const first = parts.find((i) => !c.isConst(i));
  if (first === undefined) c.fail("only constant operands that do not fold");
  const r = c.b.rank(c.act(first!));
  const axis = canonAxis((await c.numbers(axisAt))[0], r);
  // Constant operands in the canonical layout (a rank-4 one transposed to NCHW).
  const ops: (string | Tensor)[] = [];
  for (const i of parts) {
    if (!c.isConst(i)) ops.push(c.act(i));
    else {
      const t = await constFloat(c, i, `${c.name}/const${ops.length}`);
      if (t.shape.length !== r) c.fail(`a constant operand of rank ${t.shape.length} joined to rank ${r}`);
      ops.push(r === 4 ? await transposed(t, TO_NCHW, t.name) : t);
    }
  }
  return joined(c, c.name, ops, axis);
}

/** A constant input as a float32 tensor of its TF shape (index constants are int32 in TF). */
async function constFloat(c: Ctx, i: number, name: string): Promise<Tensor> {
  const shape = [...c.constOf(i).shape];
  return Tensor.fromFloat32(name, shape, Float32Array.from(await c.numbers(i)));
}

/** A Concat of values and constants (in the layout the values are in) along canonical `axis`, named `out`. */
function joined(c: Ctx, out: string, ops: (string | Tensor)[], axis: number): string {
  const constAt = ops.flatMap((o, i) => (typeof o === "string" ? [] : [i]));
  const params: Record<string, Tensor> = {};
  constAt.forEach((p, k) => (params[`const${k}`] = ops[p] as Tensor));
  return c.b.add({
    name: c.b.unique(out),
    op: "Concat",
    attrs: { axis, constAt: constAt.length ? constAt : null },
    inputs: ops.filter((o): o is string => typeof o === "string"),
    outputs: [out],
    params,
  });
}

/**
 * Pack (tf.stack): each operand gets a new axis and they are joined along it, in TF order (a rank-4 value through
 * its NHWC view; a rank-4 result back to NCHW). Constant operands are stacked as they are.
 */
async function pack(c: Ctx): Promise<string> {
  const first = c.ins.findIndex((_, i) => !c.isConst(i));
  if (first < 0) c.fail("only constant operands that do not fold");
  const r = c.b.rank(c.act(first));
  let axis = c.a.int("axis", 0);
  if (axis < 0) axis += r + 1;
  const ops: (string | Tensor)[] = [];
  for (let i = 0; i < c.ins.length; i++) {
    if (c.isConst(i)) {
      const t = await constFloat(c, i, `${c.name}/const${i}`);
      if (t.shape.length !== r) c.fail(`a constant operand of rank ${t.shape.length} stacked with rank ${r}`);
      ops.push(t.with({ shape: [...t.shape.slice(0, axis), 1, ...t.shape.slice(axis)] }));
      continue;
    }
    let v = c.b.tfOrder(c.act(i), `${c.name}/${i}`);
    if (c.b.rank(v) === 4) {
      const n = `${c.name}/to_nhwc${i}`;
      v = c.b.op("Transpose", n, [v], { perm: TO_NHWC }, n);
    }
    const u = `${c.name}/expand${i}`;
    ops.push(c.b.op("Unsqueeze", u, [v], { axes: [axis] }, u));
  }
  if (r + 1 !== 4) return joined(c, c.name, ops, axis);
  const tmp = `${c.name}/nhwc`;
  return fromTf(c, joined(c, tmp, ops, axis));
}

/**
 * GatherNd: the last axis of the indices holds positions in TF's order of the data's axes, so a rank-4 value is
 * gathered from its NHWC view (an explicit Transpose; remapping the index columns would not be sound when fewer
 * than all four axes are addressed), and a rank-4 result goes back to NCHW.
 */
async function gatherNd(c: Ctx): Promise<string> {
  if (c.a.int("batch_dims", 0) !== 0) c.fail(`batch_dims ${c.a.int("batch_dims", 0)}`);
  let x = c.b.tfOrder(c.act(0), c.name);
  const r = c.b.rank(x);
  if (r === 4) {
    const n = `${c.name}/to_nhwc`;
    x = c.b.op("Transpose", n, [x], { perm: TO_NHWC }, n);
  }
  const inputs = [x];
  let attrs: LayerAttrs = {};
  if (c.isConst(1)) attrs = { indices: await c.numbers(1), indicesShape: [...c.constOf(1).shape] };
  else {
    let i = c.b.tfOrder(c.act(1), `${c.name}/indices`);
    if (c.b.rank(i) === 4) {
      const n = `${c.name}/indices_nhwc`;
      i = c.b.op("Transpose", n, [i], { perm: TO_NHWC }, n);
    }
    inputs.push(i);
  }
  const ri = attrs.indicesShape ? (attrs.indicesShape as number[]).length : c.b.rank(inputs[1]);
  if (r !== 4 && ri !== 4) return c.b.op("GatherND", c.name, inputs, attrs);
  const tmp = `${c.name}/nhwc`;
  const mid = c.b.op("GatherND", tmp, inputs, attrs, tmp);
  return c.b.rank(mid) === 4 ? fromTf(c, mid) : c.b.op("Identity", c.name, [mid]);
}

function split(c: Ctx, x: string, axis: number, sizes: number[] | null, n: number): string[] {
  const outs = Array.from({ length: n }, (_, i) => (i === 0 ? c.name : `${c.name}:${i}`));
  if (sizes && sizes.includes(-1)) {
    const d = c.b.dim(x, axis, c.name);
    const known = sizes.filter((s) => s !== -1).reduce((s, v) => s + v, 0);
    sizes = sizes.map((s) => (s === -1 ? d - known : s));
  }
  c.b.add({
    name: c.b.unique(c.name),
    op: "Split",
    attrs: { axis, split: sizes },
    inputs: [x],
    outputs: outs,
    params: {},
  });
  return outs;
}

async function stridedSlice(c: Ctx): Promise<string> {
  const { a } = c;
  if (a.int("ellipsis_mask") || a.int("new_axis_mask")) c.fail("StridedSlice with an ellipsis or new axis mask");
  const x = c.act();
  const r = c.b.rank(x);
  const begin = await c.numbers(1), end = await c.numbers(2), strides = await c.numbers(3);
  const bm = a.int("begin_mask"), em = a.int("end_mask"), shrink = a.int("shrink_axis_mask");
  const big = 2 ** 31 - 1;
  const starts: number[] = [], ends: number[] = [], steps: number[] = [], axes: number[] = [];
  const drop: number[] = [];
  begin.forEach((b0, i) => {
    const st = strides[i] ?? 1;
    let s = b0, e = end[i];
    if (bm & (1 << i)) s = st > 0 ? 0 : big;
    if (em & (1 << i)) e = st > 0 ? big : -big;
    if (shrink & (1 << i)) {
      e = s + 1;
      if (s === -1) e = big;
      drop.push(i);
    }
    starts.push(s);
    ends.push(e);
    steps.push(st);
    axes.push(i);
  });
  const attrs = { starts, ends, steps, axes };
  if (r === 4 && !drop.length) return c.b.op("Slice", c.name, [x], { ...attrs, axes: axes.map((i) => TF_TO_CANON[i]) });
  if (r !== 4) {
    if (!drop.length) return c.b.op("Slice", c.name, [x], attrs);
    const sl = c.b.op("Slice", `${c.name}/slice`, [x], attrs, `${c.name}/slice`);
    return c.b.op("Squeeze", c.name, [sl], { axes: drop });
  }
  const v = tfView(c, x);
  const sl = c.b.op("Slice", `${c.name}/slice`, [v], attrs, `${c.name}/slice`);
  const sq = c.b.op("Squeeze", `${c.name}/squeeze`, [sl], { axes: drop }, `${c.name}/squeeze`);
  return c.b.rank(sq) === 4 ? fromTf(c, sq) : c.b.op("Identity", c.name, [sq]);
}

async function resize(c: Ctx): Promise<string> {
  const size = await c.numbers(1);
  const ac = c.a.bool("align_corners"), hp = c.a.bool("half_pixel_centers");
  const linear = c.n.op === "ResizeBilinear";
  // tfjs: bilinear source = (o + 0.5) * in/out - 0.5 with half-pixel centers, o * (in-1)/(out-1) with aligned
  // corners, o * in/out otherwise; nearest rounds with aligned corners and floors otherwise.
  const coordinate = ac ? "align_corners" : hp ? (linear ? "half_pixel" : "tf_half_pixel_for_nn") : "asymmetric";
  const nearest = ac ? "round_prefer_ceil" : "floor";
  return c.b.op("Resize", c.name, [c.act()], {
    mode: linear ? "linear" : "nearest",
    coordinate,
    nearest,
    scales: null,
    sizes: [size[0], size[1]],
  });
}

async function convTranspose(c: Ctx): Promise<string> {
  const shape = await c.numbers(0);
  const f = c.constOf(1);
  const x = c.act(2);
  const [kh, kw, , i] = f.shape;
  const s = spatial(c.a.ints("strides"), 1);
  if (spatial(c.a.ints("dilations"), 1).some((d) => d !== 1)) c.fail("dilated Conv2DBackpropInput");
  const h = c.b.dim(x, 2, c.name), w = c.b.dim(x, 3, c.name);
  const [oh, ow] = [shape[1], shape[2]];
  const mode = padding(c.a);
  const crop = (
    inn: number,
    out: number,
    k: number,
    st: number,
    p: TfPadding,
    axis: number,
  ): [number, number, number] => {
    const full = (inn - 1) * st + k;
    let before: number;
    if (Array.isArray(p)) before = p[axis];
    else if (p === "valid") before = 0;
    else before = Math.floor(Math.max(0, (inn - 1) * st + k - out) / 2);
    const after = full - out - before;
    return after >= 0 ? [before, after, 0] : [before, 0, -after];
  };
  const [pt, pb, oph] = crop(h, oh, kh, s[0], mode, 0), [pl, pr, opw] = crop(w, ow, kw, s[1], mode, 1);
  // TF filter [kh, kw, out, in] -> canonical ConvTranspose weight [in, out, kh, kw].
  const weight = await transposed(f, [3, 2, 0, 1], `${f.name}/oihw`);
  if (i !== c.b.dim(x, 1, c.name)) c.fail(`the filter reads ${i} channels, the input has ${c.b.dim(x, 1, c.name)}`);
  return c.b.add({
    name: c.b.unique(c.name),
    op: "ConvTranspose",
    attrs: {
      kernel: [kh, kw],
      strides: s,
      pads: [pt, pl, pb, pr],
      dilations: [1, 1],
      group: 1,
      outputPadding: [oph, opw],
    },
    inputs: [x],
    outputs: [c.name],
    params: { weight },
  });
}

/** A small tensor's values permuted by `perm` (materialized: constants are small). */
async function transposed(t: Tensor, perm: number[], name: string): Promise<Tensor> {
  const v = await t.float32();
  const shape = [...t.shape];
  const out = new Float32Array(v.length);
  const os = perm.map((p) => shape[p]);
  const st = (s: number[]) => {
    const r = new Array(s.length).fill(1);
    for (let i = s.length - 2; i >= 0; i--) r[i] = r[i + 1] * s[i + 1];
    return r;
  };
  const is = st(shape), oss = st(os);
  for (let k = 0; k < v.length; k++) {
    let src = 0, rem = k;
    for (let d = 0; d < os.length; d++) {
      const c = Math.floor(rem / oss[d]);
      rem -= c * oss[d];
      src += c * is[perm[d]];
    }
    out[k] = v[src];
  }
  return Tensor.fromFloat32(name, os, out);
}

/**
 * A TF constant broadcast against a value of rank `r`, in the canonical layout: for r = 4 the constant is padded
 * to rank 4 as TF broadcasts (NHWC) and transposed to NCHW; scalars stay scalars.
 */
async function canonicalOperand(t: Tensor | Folded, r: number, name: string): Promise<Tensor> {
  const shape = "shape" in t && Array.isArray(t.shape) ? [...t.shape] : [];
  const vals = t instanceof Tensor ? await t.float32() : Float32Array.from(t.v);
  const size = vals.length;
  if (size === 1) return Tensor.fromFloat32(name, [], Float32Array.of(vals[0]));
  const base = t instanceof Tensor ? t : Tensor.fromFloat32(name, shape, Float32Array.from(vals));
  if (r !== 4) return base.with({ name });
  const four = [...new Array(Math.max(0, 4 - shape.length)).fill(1), ...shape];
  return await transposed(base.with({ shape: four }), TO_NCHW, name);
}

async function reshape(c: Ctx, spec: number[]): Promise<string> {
  const { b, name } = c;
  const input = c.act();
  const rank = b.rank(input);
  // [N, -1] keeps the batch: a flatten. Any other rank-2 target ([-1, 2], say) regroups the NHWC elements.
  if (rank === 4 && spec.length === 2 && keepsBatch(spec, b.shape(input) ?? [])) return b.flatten(name, name, input);
  if (rank !== 4 && spec.length !== 4) return b.op("Reshape", name, [input], { shape: spec });
  // General case: reshape in NHWC order between transposes.
  let v = input;
  if (rank === 4) v = b.op("Transpose", `${name}/to_nhwc`, [v], { perm: TO_NHWC }, `${name}/to_nhwc`);
  const last = spec.length === 4;
  v = b.op("Reshape", last ? `${name}/nhwc` : name, [v], { shape: spec }, last ? `${name}/nhwc` : name);
  if (last) v = b.op("Transpose", name, [v], { perm: TO_NCHW });
  return await Promise.resolve(v);
}

/** Folds a node of constants, or returns undefined. */
async function fold(
  n: NodeDefJson,
  ins: string[],
  get: (input: string) => Promise<Folded | undefined>,
  shapeOf: (input: string) => Dim[] | undefined,
): Promise<Folded | undefined> {
  if (n.op === "Shape") {
    const s = shapeOf(ins[0]);
    if (!s || !s.every((d) => typeof d === "number")) return undefined;
    const tf = s.length === 4 ? [s[0], s[2], s[3], s[1]] as number[] : s as number[];
    return { v: tf, shape: [tf.length] };
  }
  const vals: Folded[] = [];
  for (const i of ins) {
    const v = await get(i);
    if (!v) return undefined;
    vals.push(v);
  }
  const [x, y] = vals;
  switch (n.op) {
    case "Identity":
    case "Cast":
      return x;
    case "Pack": {
      const r = vals[0].shape.length;
      let axis = new Attrs(n).int("axis", 0);
      if (axis < 0) axis += r + 1;
      const up = vals.map((v) => ({ v: v.v, shape: [...v.shape.slice(0, axis), 1, ...v.shape.slice(axis)] }));
      return joinFolded(up, axis);
    }
    case "ConcatV2":
      return joinFolded(vals.slice(0, -1), vals[vals.length - 1].v[0]);
    case "StridedSlice": {
      if (x.shape.length !== 1) return undefined;
      const a = new Attrs(n);
      let s = vals[1].v[0], e = vals[2].v[0];
      const d = x.v.length;
      if (a.int("begin_mask") & 1) s = 0;
      if (a.int("end_mask") & 1) e = d;
      if (a.int("shrink_axis_mask") & 1) e = (s < 0 ? s + d : s) + 1;
      if (s < 0) s += d;
      if (e < 0) e += d;
      const v = x.v.slice(s, e);
      return { v, shape: a.int("shrink_axis_mask") & 1 ? [] : [v.length] };
    }
    case "Mul":
    case "Add":
    case "Sub":
    case "FloorDiv":
    case "RealDiv": {
      const f = {
        Mul: (p: number, q: number) => p * q,
        Add: (p: number, q: number) => p + q,
        Sub: (p: number, q: number) => p - q,
        FloorDiv: (p: number, q: number) => Math.floor(p / q),
        RealDiv: (p: number, q: number) => p / q,
      }[n.op];
      if (y.v.length === 1) return { v: x.v.map((p) => f(p, y.v[0])), shape: x.shape };
      if (x.v.length === 1) return { v: y.v.map((q) => f(x.v[0], q)), shape: y.shape };
      if (x.v.length === y.v.length) return { v: x.v.map((p, i) => f(p, y.v[i])), shape: x.shape };
      return undefined;
    }
    default:
      return undefined;
  }
}

/** Constants joined along `axis` (TF Concat semantics), or undefined when their shapes do not fit. */
function joinFolded(parts: Folded[], axis: number): Folded | undefined {
  const r = parts[0]?.shape.length ?? 0;
  const ax = axis < 0 ? axis + r : axis;
  if (!parts.length || ax < 0 || ax >= r) return undefined;
  const s0 = parts[0].shape;
  if (parts.some((p) => p.shape.length !== r || p.shape.some((d, i) => i !== ax && d !== s0[i]))) return undefined;
  if (parts.some((p) => p.v.length !== p.shape.reduce((a, b) => a * b, 1))) return undefined;
  const outer = s0.slice(0, ax).reduce((a, b) => a * b, 1);
  const v: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const p of parts) {
      const inner = p.v.length / Math.max(1, outer);
      for (let j = 0; j < inner; j++) v.push(p.v[o * inner + j]);
    }
  }
  const shape = [...s0];
  shape[ax] = parts.reduce((a, p) => a + p.shape[ax], 0);
  return { v, shape };
}

const FOLDABLE = new Set([
  "Shape",
  "Identity",
  "Cast",
  "Pack",
  "ConcatV2",
  "StridedSlice",
  "Mul",
  "Add",
  "Sub",
  "FloorDiv",
  "RealDiv",
]);

/** Builds the header and canonical layers of a graph-model. `weight(name)` gives a Const node's lazy tensor. */
export async function readGraphModel(
  json: ModelJson,
  weight: (name: string) => Tensor | undefined,
  options: { inputShape?: number[]; name?: string; lenient?: boolean } = {},
): Promise<{ header: ModelHeader; builder: TfjsLayerBuilder; unsupported: TfjsError[] }> {
  const graph = json.modelTopology as GraphDefJson;
  const nodes = graph.node ?? [];
  const byName = new Map<string, NodeDefJson>();
  for (const n of nodes) byName.set(n.name, n);
  const consumers = new Map<string, number>();
  for (const n of nodes) {
    for (const i of n.input ?? []) {
      if (i.startsWith("^")) continue;
      const v = valueName(i);
      consumers.set(v, (consumers.get(v) ?? 0) + 1);
    }
  }

  // Outputs: the signature's, else nodes nothing consumes.
  const sig = json.signature ?? (json.userDefinedMetadata?.signature as ModelJson["signature"]);
  let outNames = Object.values(sig?.outputs ?? {}).map((t) => valueName(t.name));
  if (outNames.length === 0) {
    outNames = nodes.filter((n) => !consumers.has(n.name) && !["Const", "NoOp", "Placeholder"].includes(n.op)).map((
      n,
    ) => n.name);
  }

  // Topological order of what the outputs need (GraphDef does not promise one).
  const order: NodeDefJson[] = [];
  const state = new Map<string, number>();
  const visit = (name: string) => {
    const base = name.split(":")[0];
    const st = state.get(base);
    if (st === 2) return;
    if (st === 1) throw new TfjsError("unsupported", `TF.js graph has a cycle through node '${base}'`, { layer: base });
    const n = byName.get(base);
    if (!n) throw new TfjsError("bad_format", `TF.js graph refers to a missing node '${base}'`, { layer: base });
    state.set(base, 1);
    const stack: string[] = (n.input ?? []).filter((i) => !i.startsWith("^"));
    for (const i of stack) visit(i);
    state.set(base, 2);
    order.push(n);
  };
  for (const o of outNames) visit(o);

  // Inputs: Placeholders, NHWC -> NCHW.
  const inputs: ValueInfo[] = [];
  for (const n of order) {
    if (n.op !== "Placeholder") continue;
    const a = new Attrs(n);
    let s: Dim[] = (a.shape("shape") ?? []).map((d) => (d < 0 ? null : d));
    if (s.length === 4) s = [s[0], s[3], s[1], s[2]];
    if (options.inputShape && options.inputShape.length === s.length) {
      s = s.map((d, i) => (d === null ? options.inputShape![i] : d));
    }
    inputs.push({ name: n.name, dtype: "float32", shape: s });
  }
  const header: ModelHeader = {
    name: options.name ?? "model",
    sourceFormat: "tfjs",
    inputs,
    outputs: [],
    metadata: {},
  };
  if (json.generatedBy) header.metadata.generatedBy = String(json.generatedBy);
  if (json.convertedBy) header.metadata.convertedBy = String(json.convertedBy);
  const b = new TfjsLayerBuilder(header);

  const unsupported: TfjsError[] = [];
  const vals = new Map<string, string>(); // TF value -> canonical value
  const folded = new Map<string, Folded>(); // TF value -> folded constant
  const isWeight = (input: string) => byName.get(valueName(input))?.op === "Const";
  const isConst = (input: string) => isWeight(input) || folded.has(valueName(input));
  const constVal = async (input: string): Promise<Folded | undefined> => {
    const v = valueName(input);
    const f = folded.get(v);
    if (f) return f;
    if (!isWeight(v)) return undefined;
    const t = weight(v);
    if (!t || t.size > 4096) return undefined;
    return {
      v: t.dtype === "float32" || t.dtype === "float16" ? Array.from(await t.float32()) : await t.numbers(),
      shape: [...t.shape],
    };
  };
  consumersOf = (_c, canonical) => {
    const tfName = [...vals.entries()].find(([, v]) => v === canonical)?.[0] ?? canonical;
    return consumers.get(tfName) ?? 0;
  };

  for (const n of order) {
    if (n.op === "Const" || n.op === "NoOp") continue;
    if (n.op === "Placeholder") {
      vals.set(n.name, n.name);
      continue;
    }
    const ins = (n.input ?? []).filter((i) => !i.startsWith("^"));
    try {
      if (FOLDABLE.has(n.op) && (n.op === "Shape" || ins.every(isConst))) {
        const f = await fold(n, ins, constVal, (i) => {
          const v = vals.get(valueName(i));
          return v === undefined ? undefined : b.shape(v);
        });
        if (f) {
          folded.set(n.name, f);
          continue;
        }
      }
      const handler = HANDLERS[n.op];
      if (!handler) {
        throw new TfjsError(
          "unsupported",
          `Cannot convert TF.js node '${n.name}': op '${n.op}' has no canonical equivalent`,
          {
            layer: n.name,
          },
        );
      }
      const ctx = context(n, ins);
      const out = await handler(ctx);
      if (Array.isArray(out)) out.forEach((v, i) => vals.set(i === 0 ? n.name : `${n.name}:${i}`, v));
      else vals.set(n.name, out);
    } catch (e) {
      if (e instanceof TfjsError && !e.layer) e.layer = n.name;
      if (!(options.lenient && e instanceof TfjsError && e.code === "unsupported")) throw e;
      // Lenient (for `check`): the node becomes a pass-through layer and reading goes on, so every problem shows.
      unsupported.push(e);
      const inputs = ins.map((i) => vals.get(valueName(i))).filter((v): v is string => v !== undefined);
      vals.set(
        n.name,
        b.add({
          name: b.unique(n.name),
          op: "Passthrough",
          attrs: { type: n.op, reason: e.message },
          inputs,
          outputs: [n.name],
          params: {},
        }),
      );
    }
  }
  header.outputs = outNames.map((o) => {
    const v = vals.get(o) ?? o;
    return { name: v, dtype: "float32", shape: b.shape(v) ?? [] };
  });
  return { header, builder: b, unsupported };

  function context(n: NodeDefJson, ins: string[]): Ctx {
    const name = n.name;
    const fail = (why: string): never => {
      throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}' (${n.op}): ${why}`, { layer: name });
    };
    const a = new Attrs(n);
    const fmt = a.str("data_format", "NHWC");
    if (fmt !== "NHWC" && a.has("data_format")) fail(`data_format ${fmt}`);
    const constOf = (i: number): Tensor => {
      const v = valueName(ins[i] ?? "");
      const t = isWeight(v) ? weight(v) : undefined;
      if (t) return t;
      const f = folded.get(v);
      if (f) return Tensor.fromFloat32(v, f.shape, Float32Array.from(f.v));
      return fail(`input '${v}' is not a constant in the weights manifest`);
    };
    return {
      n,
      a,
      name,
      ins,
      b,
      act(i = 0) {
        const v = valueName(ins[i] ?? "");
        const c = vals.get(v);
        if (c === undefined) {
          throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}': input '${v}' is not an activation`, {
            layer: name,
          });
        }
        return c;
      },
      isConst: (i) => isConst(ins[i] ?? ""),
      constOf,
      async numbers(i) {
        const f = await constVal(ins[i] ?? "");
        if (!f) return await constOf(i).numbers();
        return f.v;
      },
      async operand(i, r) {
        const v = valueName(ins[i] ?? "");
        const f = folded.get(v);
        return await canonicalOperand(f ?? constOf(i), r, `${v}/canonical`);
      },
      fail,
    };
  }
}
