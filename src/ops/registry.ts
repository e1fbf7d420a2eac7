/**
 * The op registry: every canonical op, one entry each. Adding an op is one entry here (its definition in one of the
 * files beside this one) plus one line in each format's mapping tables that can express it.
 *
 * ```ts
 * import { attrsOf, opDef } from "./registry.ts";
 * const def = opDef("Conv");            // schema, shape inference, kernel
 * const a = attrsOf<ConvAttrs>(layer);  // typed, defaults filled
 * ```
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Attrs, AttrValue, Layer } from "../model/types.ts";
import type { AttrSpec, OpDef } from "./op_def.ts";
import * as nn from "./nn.ts";
import * as ew from "./elementwise.ts";
import * as tensor from "./tensor_ops.ts";

/** Every canonical op by name. */
export const OPS = Object.freeze({
  Conv: nn.Conv,
  ConvTranspose: nn.ConvTranspose,
  FC: nn.FC,
  MatMul: tensor.MatMul,
  MaxPool: nn.MaxPool,
  AvgPool: nn.AvgPool,
  GlobalAvgPool: nn.GlobalAvgPool,
  GlobalMaxPool: nn.GlobalMaxPool,
  BatchNorm: nn.BatchNorm,
  Scale: nn.Scale,
  LRN: nn.LRN,
  Relu: ew.Relu,
  LeakyRelu: ew.LeakyRelu,
  PRelu: ew.PRelu,
  Clip: ew.Clip,
  Sigmoid: ew.Sigmoid,
  HardSigmoid: ew.HardSigmoid,
  HardSwish: ew.HardSwish,
  Swish: ew.Swish,
  Tanh: ew.Tanh,
  Elu: ew.Elu,
  Selu: ew.Selu,
  Softplus: ew.Softplus,
  Abs: ew.Abs,
  Neg: ew.Neg,
  Exp: ew.Exp,
  Log: ew.Log,
  Sqrt: ew.Sqrt,
  Rsqrt: ew.Rsqrt,
  Reciprocal: ew.Reciprocal,
  Floor: ew.Floor,
  Cast: ew.Cast,
  Dropout: ew.Dropout,
  Identity: ew.Identity,
  Add: ew.Add,
  Sub: ew.Sub,
  Mul: ew.Mul,
  Div: ew.Div,
  Pow: ew.Pow,
  Max: ew.Max,
  Min: ew.Min,
  FloorDiv: ew.FloorDiv,
  FloorMod: ew.FloorMod,
  SquaredDifference: ew.SquaredDifference,
  Equal: ew.Equal,
  Less: ew.Less,
  Greater: ew.Greater,
  Softmax: tensor.Softmax,
  Concat: tensor.Concat,
  Split: tensor.Split,
  Flatten: tensor.Flatten,
  Reshape: tensor.Reshape,
  Transpose: tensor.Transpose,
  Squeeze: tensor.Squeeze,
  Unsqueeze: tensor.Unsqueeze,
  Slice: tensor.Slice,
  Pad: tensor.Pad,
  Gather: tensor.Gather,
  GatherND: tensor.GatherND,
  TopK: tensor.TopK,
  DepthToSpace: tensor.DepthToSpace,
  SpaceToDepth: tensor.SpaceToDepth,
  Resize: tensor.Resize,
  ReduceMean: tensor.ReduceMean,
  ReduceMax: tensor.ReduceMax,
  ReduceSum: tensor.ReduceSum,
  ArgMax: tensor.ArgMax,
});

/** A registered op name. */
export type RegisteredOp = keyof typeof OPS;

/** True when `op` is a registered canonical op (not Passthrough). */
export function isRegistered(op: string): op is RegisteredOp {
  return Object.hasOwn(OPS, op);
}

/** The definition of a registered op, or undefined (Passthrough, unknown). */
export function opDef(op: string): OpDef<Record<string, unknown>> | undefined {
  return isRegistered(op) ? (OPS[op] as unknown as OpDef<Record<string, unknown>>) : undefined;
}

function kindOk(spec: AttrSpec, v: AttrValue): boolean {
  switch (spec.kind) {
    case "int":
      return typeof v === "number" && (Number.isInteger(v) || !Number.isFinite(v));
    case "float":
      return typeof v === "number";
    case "bool":
      return typeof v === "boolean";
    case "string":
      return typeof v === "string" && (!spec.oneOf || spec.oneOf.includes(v));
    case "ints":
      return Array.isArray(v) && v.every((x) => typeof x === "number" && Number.isInteger(x));
    case "floats":
      return Array.isArray(v) && v.every((x) => typeof x === "number");
    case "strings":
      return Array.isArray(v) && v.every((x) => typeof x === "string");
  }
}

/**
 * The problems of a layer's attributes against its op's schema (missing required ones, wrong kinds, values the op's
 * own validation refuses). Empty for a valid layer and for ops outside the registry.
 */
export function attrProblems(layer: Layer): string[] {
  const def = opDef(layer.op);
  if (!def) return [];
  const out: string[] = [];
  const full: Attrs = {};
  for (const [k, spec] of Object.entries(def.attrs) as [string, AttrSpec][]) {
    const v = layer.attrs[k];
    if (v === undefined || v === null) {
      if (spec.default === undefined) out.push(`attribute '${k}' is required`);
      else full[k] = spec.default;
    } else if (!kindOk(spec, v)) {
      out.push(
        `attribute '${k}' = ${JSON.stringify(v)} is not ${spec.oneOf ? `one of ${spec.oneOf}` : `a ${spec.kind}`}`,
      );
    } else full[k] = v;
  }
  if (!out.length && def.validate) {
    const why = def.validate(full as Record<string, unknown>, layer);
    if (why) out.push(why);
  }
  return out;
}

/**
 * Fills the defaults of a layer's attributes in place and validates them: readers call it once per layer they
 * build. Attributes the schema does not know are kept (format-specific extras such as `onnxOp`).
 * Throws a `bad_format` ConvpressError naming the layer when an attribute is missing or malformed.
 */
export function normalizeLayer<L extends Layer>(layer: L): L {
  const def = opDef(layer.op);
  if (!def) return layer;
  const problems = attrProblems(layer);
  if (problems.length) {
    throw new ConvpressError("bad_format", `Layer '${layer.name}' (${layer.op}): ${problems.join("; ")}`, {
      layer: layer.name,
    });
  }
  for (const [k, spec] of Object.entries(def.attrs) as [string, AttrSpec][]) {
    if (layer.attrs[k] === undefined) layer.attrs[k] = spec.default ?? null;
  }
  return layer;
}

/**
 * A layer's attributes, typed, with defaults for any the layer leaves out (layers built by hand, or by stages).
 * Readers have already normalized theirs, so this is a cheap copy.
 */
export function attrsOf<A>(layer: Layer): A {
  const def = opDef(layer.op);
  if (!def) return layer.attrs as A;
  const out: Record<string, unknown> = { ...layer.attrs };
  for (const [k, spec] of Object.entries(def.attrs) as [string, AttrSpec][]) {
    if (out[k] === undefined) out[k] = spec.default ?? null;
  }
  return out as A;
}
