/**
 * Record metadata as JSON (spec.md section 2): non-finite numbers, -0, byte arrays and big integers travel as
 * one-key wrapper objects (`{"$number": "NaN"}`, `{"$bytes": "..."}`, `{"$bigint": "..."}`), and keys of the
 * original data that start with `$` get one more `$`.
 *
 * @module
 */

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
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k.startsWith("$$") ? k.slice(1) : k] = fromJsonValue(o[k]);
  return out;
}

/** Serializes record metadata to UTF-8 JSON. */
export function encodeMeta(meta: Record<string, unknown>): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(meta));
}

/** Parses record metadata (plain JSON; wrappers are undone by the caller where the spec allows them). */
export function decodeMeta(bytes: Uint8Array): Record<string, unknown> {
  const v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
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
