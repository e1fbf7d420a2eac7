/**
 * What one canonical op is: its parameter roles, its typed attributes with defaults, how to validate them, shape
 * inference, and its evaluation kernel. Every op is one {@link OpDef} in ./registry.ts; formats map their own ops to
 * and from these in one table per direction.
 *
 * Attributes are declared once per op as a schema. Readers build layers with whatever they read; the registry's
 * `normalizeAttrs` fills the defaults and validates, once, when a reader hands the layer on. Everything downstream
 * reads them typed with `attrsOf(layer)` instead of `Number(attrs.x ?? default)`.
 *
 * @module
 */
import type { AttrValue, Layer } from "../model/types.ts";
import type { Shape } from "../model/shapes.ts";
/** The tfjs namespace (type only: importing it loads nothing; kernels get the loaded module as an argument). */
export type Tf = typeof import("@tensorflow/tfjs");
/** A tfjs tensor. */
export type TfTensor = import("@tensorflow/tfjs").Tensor;

/** The JSON-like kinds an attribute can have. */
export type AttrKind = "int" | "float" | "bool" | "string" | "ints" | "floats" | "strings";

/** One attribute: its kind and its default (`undefined` = required, `null` = optional with no value). */
export interface AttrSpec {
  kind: AttrKind;
  default?: AttrValue;
  /** Allowed values of a string attribute. */
  oneOf?: readonly string[];
  doc?: string;
}

/** An attribute schema: one spec per attribute of `A`. */
export type AttrSchema<A> = { [K in keyof A]-?: AttrSpec };

/** An activation: a tfjs tensor, and for rank 4 whether it is NHWC (else NCHW, the canonical layout). */
export interface Act {
  t: TfTensor;
  nhwc: boolean;
}

/** A layer's parameters as float32 arrays with their shapes. */
export type Params = Record<string, { data: Float32Array; shape: readonly number[] }>;

/** What a kernel gets: tfjs, the layer, its typed attributes and its parameters. */
export interface KernelContext<A> {
  tf: Tf;
  layer: Layer;
  a: A;
  params: Params;
  /** An error naming the layer: "Cannot evaluate layer 'x' (Op): msg". */
  fail(msg: string, code?: "unsupported" | "bad_format"): Error;
}

/** One canonical op. */
export interface OpDef<A = Record<string, never>> {
  /** One line for the op table in the docs. */
  doc: string;
  /** Parameter roles, in order (optional ones included). */
  params?: readonly string[];
  /** Attribute schema. */
  attrs: AttrSchema<A>;
  /** True when the output has the shape of the first input and the op works in any layout, element by element. */
  elementwise?: boolean;
  /** True when the op is per-channel on axis 1 (the NHWC layout must map it to the last axis). */
  channelwise?: boolean;
  /** Extra checks on normalized attributes; returns what is wrong, or undefined. */
  validate?(a: A, layer: Layer): string | undefined;
  /** Output shapes from input shapes (the first input's shape is `ins[0]`). Defaults to the first input's shape. */
  infer?(a: A, ins: Shape[], layer: Layer): Shape[];
  /** The evaluation kernel. Never disposes its inputs; returns new tensors. */
  kernel(k: KernelContext<A>, ins: Act[]): Act[];
}

/** A schema helper: `int(1)`, `ints()` (required), `float(null)` (optional, no default). */
export const int = (d?: number | null): AttrSpec => ({ kind: "int", default: d });
/** A float attribute. */
export const float = (d?: number | null): AttrSpec => ({ kind: "float", default: d });
/** A boolean attribute. */
export const bool = (d?: boolean | null): AttrSpec => ({ kind: "bool", default: d });
/** A string attribute, optionally one of a list. */
export const str = (d?: string | null, oneOf?: readonly string[]): AttrSpec => ({ kind: "string", default: d, oneOf });
/** An integer list attribute. */
export const ints = (d?: number[] | null): AttrSpec => ({ kind: "ints", default: d });
/** A float list attribute. */
export const floats = (d?: number[] | null): AttrSpec => ({ kind: "floats", default: d });

/** Defines an op (identity; gives the attribute type to the schema and the functions). */
export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}
