/**
 * Record metadata as JSON (spec.md section 2): non-finite numbers, -0, byte arrays and big integers travel as
 * one-key wrapper objects (`{"$number": "NaN"}`, `{"$bytes": "..."}`, `{"$bigint": "..."}`), and keys of the
 * original data that start with `$` get one more `$`.
 *
 * @module
 */

import { type DType, Tensor } from "../../src/model/tensor.ts";

/** A tensor inside origin data, read into memory so it can be stored as `{"$tensor": ...}`. */
export class HeldTensor {
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly bytes: Uint8Array,
  ) {}
}

/** A reference from origin data to a parameter of the same layer, stored as `{"$param": role}`. */
export class ParamRef {
  constructor(readonly role: string) {}
}

/**
 * Replaces every {@link Tensor} inside `v` (origin data) with a {@link ParamRef} when it is one of the layer's
 * `params`, else with a {@link HeldTensor} (reading its bytes, at most `budget.left` bytes in all).
 */
export async function holdTensors(
  v: unknown,
  params: Map<Tensor, string> = new Map(),
  budget = { left: 8 << 20 },
): Promise<unknown> {
  if (v instanceof Tensor && params.has(v)) return new ParamRef(params.get(v)!);
  if (v instanceof Tensor) {
    if (v.byteLength > budget.left) throw new TypeError(`tensor '${v.name}' in origin data is too large`);
    budget.left -= v.byteLength;
    return new HeldTensor(v.name, v.dtype, v.shape, (await v.bytes()).slice());
  }
  if (Array.isArray(v)) return Promise.all(v.map((x) => holdTensors(x, params, budget)));
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await holdTensors(x, params, budget);
    return out;
  }
  return v;
}

/** Converts a value to plain JSON data with the wrappers. Throws on values JSON cannot hold (functions, classes). */
export function toJsonValue(v: unknown): unknown {
  if (v === null || typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") {
    if (Number.isNaN(v)) return { $number: "NaN" };
    if (v === Infinity) return { $number: "Infinity" };
    if (v === -Infinity) return { $number: "-Infinity" };
    if (Object.is(v, -0)) return { $number: "-0" };
    return v;
  }
  if (typeof v === "bigint") return { $bigint: v.toString() };
  if (v instanceof Uint8Array) return { $bytes: toBase64(v) };
  if (v instanceof ParamRef) return { $param: v.role };
  if (v instanceof HeldTensor) {
    return { $tensor: { name: v.name, dtype: v.dtype, shape: v.shape, bytes: toBase64(v.bytes) } };
  }
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      out[k.startsWith("$") ? "$" + k : k] = toJsonValue(x);
    }
    return out;
  }
  throw new TypeError(`Cannot store a ${Object.prototype.toString.call(v)} in .cvp metadata`);
}

/** Reverses {@link toJsonValue}. */
export function fromJsonValue(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJsonValue);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && typeof o[keys[0]] === "string") {
    const s = o[keys[0]] as string;
    if (keys[0] === "$number") {
      const n = { NaN: NaN, Infinity: Infinity, "-Infinity": -Infinity, "-0": -0 }[s];
      if (n === undefined) throw new SyntaxError(`Bad $number '${s}'`);
      return n;
    }
    if (keys[0] === "$bytes") return fromBase64(s);
    if (keys[0] === "$bigint") return BigInt(s);
    if (keys[0] === "$param") return new ParamRef(s);
  }
  if (keys.length === 1 && keys[0] === "$tensor" && o.$tensor && typeof o.$tensor === "object") {
    const t = o.$tensor as { name: string; dtype: DType; shape: number[]; bytes: string };
    return Tensor.fromBytes(t.name, t.dtype, t.shape, fromBase64(t.bytes));
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k.startsWith("$$") ? k.slice(1) : k] = fromJsonValue(o[k]);
  return out;
}

/** Serializes record metadata to UTF-8 JSON. */
export function encodeMeta(meta: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(meta));
}

/** Deepest nesting of arrays and objects accepted in record metadata (real files nest a few levels). */
export const MAX_META_DEPTH = 64;

/** Nesting depth of JSON text, counted without parsing (brackets inside strings do not count). */
export function jsonDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) max = Math.max(max, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Parses record metadata (plain JSON; wrappers are undone by the caller where the spec allows them). */
export function decodeMeta(bytes: Uint8Array): Record<string, unknown> {
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  // Deep nesting would overflow the stack of the recursive steps after parsing: refuse it before.
  if (jsonDepth(text) > MAX_META_DEPTH) throw new SyntaxError(`metadata nests deeper than ${MAX_META_DEPTH} levels`);
  const v = JSON.parse(text);
  if (v === null || typeof v !== "object" || Array.isArray(v)) throw new SyntaxError("metadata is not a JSON object");
  return v as Record<string, unknown>;
}

function toBase64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** Replaces every {@link ParamRef} inside `v` with the layer's tensor of that role. */
export function resolveParams(v: unknown, params: Record<string, unknown>): unknown {
  if (v instanceof ParamRef) return params[v.role];
  if (Array.isArray(v)) return v.map((x) => resolveParams(x, params));
  if (v && typeof v === "object" && Object.getPrototypeOf(v) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = resolveParams(x, params);
    return out;
  }
  return v;
}
