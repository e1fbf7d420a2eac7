/**
 * The reference decoder for `.cvp` version 1, written from spec.md alone. It imports nothing, so it runs unchanged in
 * Deno, Node (18+) and browsers. It streams: it consumes a `ReadableStream<Uint8Array>` or any async iterable of byte
 * chunks, and yields the header, each layer, and each tensor's values in slices of at most `sliceElements` elements,
 * holding at most one clustered tensor's encoded body (or one slice of a raw or 16-bit body) in memory.
 *
 * Every CRC is checked and every structural rule of the spec enforced; the first problem is thrown as a
 * {@link CvpDecodeError} naming the record (number, kind, name) and its byte offset. A raw or 16-bit body's slices
 * are yielded as they arrive, so its CRC error (if any) comes after its last slice: consumers that must not act on
 * damaged data should wait for the `tensor-end` event.
 *
 * @example
 * ```ts ignore
 * import { decodeCvp } from "./decoder.ts";
 * const file = await fetch("model.cvp");
 * for await (const ev of decodeCvp(file.body!)) if (ev.type === "layer") console.log(ev.layer.name);
 * ```
 *
 * @module
 */

/** What went wrong: a CRC mismatch, a structural violation, the input ending early, or an unknown version. */
export type CvpDecodeErrorKind = "checksum" | "format" | "truncated" | "version";

/** A decoding error located at a record. */
export class CvpDecodeError extends Error {
  readonly kind: CvpDecodeErrorKind;
  /** Record number (0 = header record); -1 for the preamble, -2 for the footer. */
  readonly record: number;
  /** Byte offset of the record (or preamble/footer). */
  readonly offset: number;
  constructor(kind: CvpDecodeErrorKind, record: number, offset: number, message: string) {
    super(message);
    this.name = "CvpDecodeError";
    this.kind = kind;
    this.record = record;
    this.offset = offset;
  }
}

/** A graph input or output. */
export interface CvpValueInfo {
  name: string;
  dtype: string;
  shape: (number | string | null)[];
}

/** The model header (after the trailer, with the trailer's inputs, outputs and metadata). */
export interface CvpHeader {
  name: string;
  sourceFormat: string;
  inputs: CvpValueInfo[];
  outputs: CvpValueInfo[];
  metadata: Record<string, string>;
  origin?: unknown;
}

/** A layer descriptor. */
export interface CvpLayer {
  name: string;
  op: string;
  attrs: Record<string, unknown>;
  inputs: string[];
  outputs: string[];
  params: { role: string; name: string; dtype: string; shape: number[] }[];
  origin?: unknown;
}

/** Events yielded by {@link decodeCvp}, in file order. */
export type CvpEvent =
  | { type: "header"; header: CvpHeader }
  | { type: "layer"; layer: CvpLayer }
  | {
    type: "tensor";
    layer: string;
    role: string;
    name: string;
    dtype: string;
    shape: number[];
    encoding: string;
    /** Index of `data[0]` in the flattened tensor. */
    start: number;
    /** Values as float32 (int64 and other integer dtypes converted). */
    data: Float32Array;
  }
  | { type: "tensor-end"; layer: string; name: string; elements: number; bodyBytes: number }
  | { type: "end"; header: CvpHeader; records: number; bytes: number };

/** Options of {@link decodeCvp}. */
export interface DecodeOptions {
  /** Largest slice of tensor values yielded at once (default 1 Mi elements). */
  sliceElements?: number;
}

// ---------------------------------------------------------------------------------------------------------------
// Primitives

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crcUpdate(crc: number, b: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const BF = new Float32Array(1);
const BU = new Uint32Array(BF.buffer);
function bf16ToFloat(h: number): number {
  BU[0] = h << 16;
  return BF[0];
}

function bitsFor(a: number): number {
  let b = 0;
  while (2 ** b < a) b++;
  return b;
}

/** Reads LSB-first bits from a byte array. */
class BitReader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}
  bits(n: number): number {
    let v = 0;
    for (let i = 0; i < n; i++) {
      const p = this.pos + i;
      if (p >>> 3 >= this.bytes.length) throw new RangeError("stream ends early");
      v += ((this.bytes[p >>> 3] >>> (p & 7)) & 1) * 2 ** i;
    }
    this.pos += n;
    return v;
  }
  bit(): number {
    const p = this.pos++;
    if (p >>> 3 >= this.bytes.length) throw new RangeError("stream ends early");
    return (this.bytes[p >>> 3] >>> (p & 7)) & 1;
  }
}

/** A symbol stream (spec 4): `read()` returns the next symbol. */
function symbolStream(coding: unknown, bytes: Uint8Array, alphabet: number, count: number): {
  read(): number;
  end(): void;
} {
  const br = new BitReader(bytes);
  if (coding === "packed") {
    const b = bitsFor(alphabet);
    if (bytes.length !== Math.ceil((count * b) / 8)) throw new RangeError("packed stream has the wrong length");
    return {
      read() {
        const v = br.bits(b);
        if (v >= alphabet) throw new RangeError(`symbol ${v} is not below ${alphabet}`);
        return v;
      },
      end() {},
    };
  }
  if (coding !== "huffman") throw new RangeError(`unknown symbol coding ${coding}`);
  const lengths: number[] = [];
  for (let s = 0; s < alphabet; s++) lengths.push(br.bits(5));
  br.pos = Math.ceil(br.pos / 8) * 8;
  const count_ = new Array(25).fill(0);
  for (const l of lengths) {
    if (l > 24) throw new RangeError("code length over 24");
    if (l) count_[l]++;
  }
  let kraft = 0;
  for (let l = 1; l <= 24; l++) kraft += count_[l] / 2 ** l;
  if (kraft > 1) throw new RangeError("over-subscribed Huffman code");
  const first = new Array(25).fill(0);
  const index = new Array(25).fill(0);
  const sorted: number[] = [];
  let code = 0;
  for (let l = 1; l <= 24; l++) {
    code = l === 1 ? 0 : (code + count_[l - 1]) * 2;
    first[l] = code;
    index[l] = sorted.length;
    for (let s = 0; s < alphabet; s++) if (lengths[s] === l) sorted.push(s);
  }
  return {
    read() {
      let c = 0;
      for (let l = 1; l <= 24; l++) {
        c = c * 2 + br.bit();
        if (c - first[l] < count_[l] && c >= first[l]) return sorted[index[l] + c - first[l]];
      }
      throw new RangeError("invalid Huffman code");
    },
    end() {
      if (Math.ceil(br.pos / 8) !== bytes.length) throw new RangeError("bytes left after the last Huffman code");
    },
  };
}

function fromJsonValue(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) return v.map(fromJsonValue);
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && typeof o[keys[0]] === "string") {
    const s = o[keys[0]] as string;
    if (keys[0] === "$number") {
      if (s === "NaN") return NaN;
      if (s === "Infinity") return Infinity;
      if (s === "-Infinity") return -Infinity;
      if (s === "-0") return -0;
      throw new RangeError(`bad $number ${s}`);
    }
    if (keys[0] === "$bytes") return Uint8Array.from(atob(s), (ch) => ch.charCodeAt(0));
    if (keys[0] === "$bigint") return BigInt(s);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k.startsWith("$$") ? k.slice(1) : k] = fromJsonValue(o[k]);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Input

/** Pulls exact byte counts out of a chunk iterator. */
class Input {
  #it: AsyncIterator<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #buffered = 0;
  #done = false;
  offset = 0; // bytes consumed so far

  constructor(src: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>) {
    const s = src as ReadableStream<Uint8Array> & AsyncIterable<Uint8Array>;
    if (typeof s[Symbol.asyncIterator] === "function") this.#it = s[Symbol.asyncIterator]();
    else {
      const reader = s.getReader();
      this.#it = {
        next: () => reader.read() as Promise<IteratorResult<Uint8Array>>,
        return: () => {
          reader.releaseLock();
          return Promise.resolve({ done: true, value: undefined });
        },
      };
    }
  }

  /** Buffers up to `n` bytes; returns how many are buffered. */
  async fill(n: number): Promise<number> {
    while (this.#buffered < n && !this.#done) {
      const r = await this.#it.next();
      if (r.done) this.#done = true;
      else if (r.value.length) {
        this.#chunks.push(r.value);
        this.#buffered += r.value.length;
      }
    }
    return this.#buffered;
  }

  /** Takes exactly `n` bytes (n must be buffered). */
  take(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let o = 0;
    while (o < n) {
      const c = this.#chunks[0];
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    this.#buffered -= n;
    this.offset += n;
    return out;
  }

  async atEnd(): Promise<boolean> {
    return (await this.fill(1)) === 0;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoder

const KINDS: Record<number, string> = { 0x48: "header", 0x4c: "layer", 0x54: "tensor", 0x45: "trailer", 0x58: "index" };
const DTYPE_SIZE: Record<string, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
};
const MAGIC = [0x89, 0x43, 0x56, 0x50, 0x0d, 0x0a, 0x1a, 0x0a];

interface Rec {
  no: number;
  kind: number;
  offset: number;
  meta: Record<string, unknown>;
  bodyLength: number;
}

/**
 * Decodes a `.cvp` stream. Yields `header`, then for each layer a `layer` event followed by its tensors' `tensor`
 * slices and `tensor-end`, then `end` (with the header completed by the trailer).
 */
export async function* decodeCvp(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
  options: DecodeOptions = {},
): AsyncGenerator<CvpEvent> {
  const slice = Math.max(1, options.sliceElements ?? 1 << 20);
  const input = new Input(source);
  let no = 0;
  const offsets: number[] = [];

  const where = (r: { no: number; kind?: number; offset: number; meta?: Record<string, unknown> }) => {
    const name = r.meta && typeof r.meta.name === "string" ? ` '${r.meta.name}'` : "";
    const kind = r.kind !== undefined ? ` (${KINDS[r.kind] ?? "record"}${name})` : "";
    return `Record ${r.no}${kind} at byte ${r.offset}`;
  };
  const fail = (kind: CvpDecodeErrorKind, r: { no: number; kind?: number; offset: number }, msg: string) =>
    new CvpDecodeError(kind, r.no, r.offset, `${where(r)}: ${msg}`);
  const need = async (n: number, r: { no: number; kind?: number; offset: number }, what: string) => {
    const have = await input.fill(n);
    if (have < n) {
      throw fail("truncated", r, `unexpected end of input in ${what} at byte ${input.offset + have}`);
    }
    return input.take(n);
  };
  const u32 = (b: Uint8Array, at: number) => (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
  const u64 = (b: Uint8Array, at: number) => u32(b, at) + u32(b, at + 4) * 2 ** 32;

  // Preamble
  {
    const have = await input.fill(12);
    const p = input.take(Math.min(have, 12));
    for (let i = 0; i < Math.min(8, p.length); i++) {
      if (p[i] !== MAGIC[i]) {
        throw new CvpDecodeError("format", -1, 0, `Preamble: not a .cvp file (bad magic byte ${i})`);
      }
    }
    if (p.length < 12) {
      throw new CvpDecodeError("truncated", -1, 0, `Preamble: unexpected end of input at byte ${p.length}`);
    }
    if ((p[8] | (p[9] << 8)) !== 1) {
      throw new CvpDecodeError("version", -1, 8, `Preamble: unsupported version ${p[8] | (p[9] << 8)}`);
    }
    if (p[10] | p[11]) throw new CvpDecodeError("format", -1, 10, "Preamble: reserved bytes are not zero");
  }

  /** Reads a record's frame and metadata. */
  const nextRecord = async (): Promise<Rec> => {
    const r = { no, offset: input.offset } as Rec;
    const f = await need(20, r, "a record frame");
    if (u32(f, 16) !== crcUpdate(0, f.subarray(0, 16))) throw fail("checksum", r, "frame header CRC mismatch");
    r.kind = f[0];
    if (!KINDS[r.kind]) throw fail("format", r, `unknown record kind 0x${r.kind.toString(16)}`);
    if (f[1] | f[2] | f[3]) throw fail("format", r, "reserved frame bytes are not zero");
    const metaLength = u32(f, 4);
    if (metaLength > 16777216) throw fail("format", r, "metadata too long");
    r.bodyLength = u64(f, 8);
    if (r.bodyLength >= 2 ** 53) throw fail("format", r, "body too long");
    const m = await need(metaLength + 4, r, "record metadata");
    if (u32(m, metaLength) !== crcUpdate(0, m.subarray(0, metaLength))) {
      throw fail("checksum", r, "metadata CRC mismatch");
    }
    let meta: unknown;
    try {
      meta = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(m.subarray(0, metaLength)));
    } catch (e) {
      throw fail("format", r, `bad metadata JSON: ${(e as Error).message}`);
    }
    if (!meta || typeof meta !== "object" || Array.isArray(meta)) throw fail("format", r, "metadata is not an object");
    r.meta = meta as Record<string, unknown>;
    offsets.push(r.offset);
    no++;
    return r;
  };
  /** Reads a whole body and its CRC. */
  const wholeBody = async (r: Rec): Promise<Uint8Array> => {
    const b = await need(r.bodyLength + 4, r, "a record body");
    if (u32(b, r.bodyLength) !== crcUpdate(0, b.subarray(0, r.bodyLength))) {
      throw fail("checksum", r, "body CRC mismatch");
    }
    return b.subarray(0, r.bodyLength);
  };
  const bad = (r: Rec, msg: string) => fail("format", r, msg);
  const isStrings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  const isShape = (v: unknown) => Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
  const valueInfos = (r: Rec, v: unknown) => {
    if (!Array.isArray(v) || !v.every((x) => x && typeof x.name === "string" && Array.isArray(x.shape))) {
      throw bad(r, "bad inputs or outputs");
    }
    return v as CvpValueInfo[];
  };

  // Header
  const h = await nextRecord();
  if (h.kind !== 0x48) throw bad(h, "the first record is not the header");
  if (h.bodyLength !== 0) throw bad(h, "the header has a body");
  await wholeBody(h);
  if (typeof h.meta.name !== "string" || typeof h.meta.sourceFormat !== "string") throw bad(h, "header lacks fields");
  const header: CvpHeader = {
    name: h.meta.name,
    sourceFormat: h.meta.sourceFormat,
    inputs: valueInfos(h, h.meta.inputs),
    outputs: valueInfos(h, h.meta.outputs),
    metadata: fromJsonValue(h.meta.metadata ?? {}) as Record<string, string>,
  };
  if (h.meta.origin !== undefined) header.origin = fromJsonValue(h.meta.origin);
  yield { type: "header", header };

  let layers = 0, tensors = 0;
  let rec = await nextRecord();
  while (rec.kind === 0x4c) {
    const L = rec;
    const m = L.meta;
    if (L.bodyLength !== 0) throw bad(L, "a layer has a body");
    await wholeBody(L);
    if (typeof m.name !== "string" || typeof m.op !== "string" || !isStrings(m.inputs) || !isStrings(m.outputs)) {
      throw bad(L, "bad layer descriptor");
    }
    if (!m.attrs || typeof m.attrs !== "object" || !Array.isArray(m.params)) throw bad(L, "bad layer descriptor");
    const params = m.params as CvpLayer["params"];
    for (const p of params) {
      if (
        !p || typeof p.role !== "string" || typeof p.name !== "string" || !(p.dtype in DTYPE_SIZE) || !isShape(p.shape)
      ) {
        throw bad(L, "bad parameter description");
      }
    }
    const layer: CvpLayer = {
      name: m.name,
      op: m.op,
      attrs: fromJsonValue(m.attrs) as Record<string, unknown>,
      inputs: m.inputs as string[],
      outputs: m.outputs as string[],
      params,
    };
    if (m.origin !== undefined) layer.origin = fromJsonValue(m.origin);
    yield { type: "layer", layer };
    layers++;
    for (const p of params) {
      const T = await nextRecord();
      if (T.kind !== 0x54) throw bad(T, `expected tensor '${p.name}'`);
      const tm = T.meta;
      if (
        tm.role !== p.role || tm.name !== p.name || tm.dtype !== p.dtype ||
        JSON.stringify(tm.shape) !== JSON.stringify(p.shape)
      ) {
        throw bad(T, `does not match parameter '${p.name}' of layer '${layer.name}'`);
      }
      yield* decodeTensor(T, layer.name, p);
      tensors++;
    }
    rec = await nextRecord();
  }

  // Trailer
  const E = rec;
  if (E.kind !== 0x45) throw bad(E, "expected a layer or the trailer");
  if (E.bodyLength !== 0) throw bad(E, "the trailer has a body");
  await wholeBody(E);
  if (E.meta.layers !== layers || E.meta.tensors !== tensors) throw bad(E, "layer or tensor count mismatch");
  header.inputs = valueInfos(E, E.meta.inputs);
  header.outputs = valueInfos(E, E.meta.outputs);
  header.metadata = fromJsonValue(E.meta.metadata ?? {}) as Record<string, string>;
  const listed = offsets.slice();

  // Index
  const X = await nextRecord();
  if (X.kind !== 0x58) throw bad(X, "expected the index");
  if (X.meta.records !== listed.length || X.bodyLength !== 8 * listed.length) {
    throw bad(X, "index record count mismatch");
  }
  const ib = await wholeBody(X);
  for (let i = 0; i < listed.length; i++) {
    if (u64(ib, 8 * i) !== listed[i]) throw bad(X, `index entry ${i} does not match record ${i}`);
  }

  // Footer
  const fat = input.offset;
  const fhave = await input.fill(16);
  if (fhave < 16) throw new CvpDecodeError("truncated", -2, fat, `Footer at byte ${fat}: unexpected end of input`);
  const f = input.take(16);
  if (f[12] !== 0x43 || f[13] !== 0x56 || f[14] !== 0x50 || f[15] !== 0x21) {
    throw new CvpDecodeError("format", -2, fat, `Footer at byte ${fat}: bad end magic`);
  }
  if (u32(f, 8) !== crcUpdate(0, f.subarray(0, 8))) {
    throw new CvpDecodeError("checksum", -2, fat, `Footer at byte ${fat}: CRC mismatch`);
  }
  if (u64(f, 0) !== X.offset) throw new CvpDecodeError("format", -2, fat, `Footer at byte ${fat}: wrong index offset`);
  if (!(await input.atEnd())) {
    throw new CvpDecodeError("format", -2, fat, `Footer at byte ${fat}: data after the footer`);
  }
  yield { type: "end", header, records: no, bytes: input.offset };

  /** Decodes one tensor record's body. */
  async function* decodeTensor(T: Rec, layerName: string, p: CvpLayer["params"][number]): AsyncGenerator<CvpEvent> {
    const tm = T.meta;
    const n = p.shape.reduce((a, b) => a * b, 1);
    const enc = tm.encoding;
    const base = {
      type: "tensor" as const,
      layer: layerName,
      role: p.role,
      name: p.name,
      dtype: p.dtype,
      shape: p.shape,
    };
    const endEv: CvpEvent = {
      type: "tensor-end",
      layer: layerName,
      name: p.name,
      elements: n,
      bodyBytes: T.bodyLength,
    };
    if (enc === "raw" || enc === "f16" || enc === "bf16") {
      if (enc !== "raw" && p.dtype !== "float32") throw bad(T, `${enc} needs dtype float32`);
      const size = enc === "raw" ? DTYPE_SIZE[p.dtype] : 2;
      if (T.bodyLength !== n * size) throw bad(T, `body holds ${T.bodyLength} bytes, ${n * size} expected`);
      let crc = 0;
      for (let start = 0; start < n; start += slice) {
        const c = Math.min(slice, n - start);
        const b = await need(c * size, T, "a tensor body");
        crc = crcUpdate(crc, b);
        yield { ...base, encoding: enc, start, data: toFloats(enc === "raw" ? p.dtype : enc, b, c) };
      }
      const cb = await need(4, T, "a body CRC");
      if (u32(cb, 0) !== crc) throw fail("checksum", T, "body CRC mismatch");
      yield endEv;
      return;
    }
    if (enc !== "cluster" && enc !== "cluster-sparse") throw bad(T, `unknown encoding ${enc}`);
    if (p.dtype !== "float32") throw bad(T, `${enc} needs dtype float32`);
    const sparse = enc === "cluster-sparse";
    const k = tm.k as number;
    if (!Number.isInteger(k) || k < (sparse ? 0 : 1) || k > (sparse ? 65535 : 65536)) throw bad(T, "bad k");
    if (tm.repr !== "fp16" && tm.repr !== "bf16") throw bad(T, "bad repr");
    const streams = (sparse ? [tm.gaps, tm.symbols] : [tm.indices]) as { coding: unknown; bytes: unknown }[];
    let expect = 2 * k;
    for (const s of streams) {
      if (!s || typeof s !== "object" || !Number.isSafeInteger(s.bytes) || (s.bytes as number) < 0) {
        throw bad(T, "bad symbol stream description");
      }
      expect += s.bytes as number;
    }
    if (sparse) {
      const g = tm.gapBits as number;
      if (!Number.isInteger(g) || g < 1 || g > 16) throw bad(T, "bad gapBits");
      if (!Number.isSafeInteger(tm.entries) || (tm.entries as number) < 0) throw bad(T, "bad entries");
    }
    if (T.bodyLength !== expect) throw bad(T, `body holds ${T.bodyLength} bytes, ${expect} expected`);
    const body = await wholeBody(T);
    const toF = tm.repr === "fp16" ? halfToFloat : bf16ToFloat;
    const values = [sparse ? 0 : NaN];
    if (!sparse) values.pop();
    for (let i = 0; i < k; i++) values.push(toF(body[2 * i] | (body[2 * i + 1] << 8)));
    let at = 2 * k;
    const part = (s: { bytes: unknown }) => body.subarray(at, at += s.bytes as number);
    try {
      if (!sparse) {
        const idx = symbolStream(streams[0].coding, part(streams[0]), k, n);
        for (let start = 0; start < n; start += slice) {
          const c = Math.min(slice, n - start);
          const data = new Float32Array(c);
          for (let i = 0; i < c; i++) data[i] = values[idx.read()];
          yield { ...base, encoding: enc, start, data };
        }
        idx.end();
      } else {
        const E = tm.entries as number;
        const gaps = symbolStream(streams[0].coding, part(streams[0]), 2 ** (tm.gapBits as number), E);
        const syms = symbolStream(streams[1].coding, part(streams[1]), k + 1, E);
        let start = 0;
        let data = new Float32Array(Math.min(slice, n));
        let pos = 0;
        for (let e = 0; e < E; e++) {
          pos += gaps.read();
          const s = syms.read();
          if (pos >= n) throw new RangeError(`entry ${e} lands past the end of the tensor`);
          while (pos >= start + data.length) {
            yield { ...base, encoding: enc, start, data };
            start += data.length;
            data = new Float32Array(Math.min(slice, n - start));
          }
          data[pos - start] = values[s];
          pos++;
        }
        gaps.end();
        syms.end();
        while (start < n) {
          yield { ...base, encoding: enc, start, data };
          start += data.length;
          data = new Float32Array(Math.min(slice, n - start));
        }
      }
    } catch (e) {
      if (e instanceof RangeError) throw bad(T, `bad ${enc} data: ${e.message}`);
      throw e;
    }
    yield endEv;
  }
}

/** Converts `count` little-endian elements of `dtype` (or a 16-bit encoding) to float32. */
function toFloats(dtype: string, b: Uint8Array, count: number): Float32Array {
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    switch (dtype) {
      case "float32":
        out[i] = v.getFloat32(4 * i, true);
        break;
      case "f16":
      case "float16":
        out[i] = halfToFloat(v.getUint16(2 * i, true));
        break;
      case "bf16":
      case "bfloat16":
        out[i] = bf16ToFloat(v.getUint16(2 * i, true));
        break;
      case "float64":
        out[i] = v.getFloat64(8 * i, true);
        break;
      case "int8":
        out[i] = v.getInt8(i);
        break;
      case "uint8":
      case "bool":
        out[i] = v.getUint8(i);
        break;
      case "int16":
        out[i] = v.getInt16(2 * i, true);
        break;
      case "uint16":
        out[i] = v.getUint16(2 * i, true);
        break;
      case "int32":
        out[i] = v.getInt32(4 * i, true);
        break;
      case "uint32":
        out[i] = v.getUint32(4 * i, true);
        break;
      case "int64":
        out[i] = Number(v.getBigInt64(8 * i, true));
        break;
      case "uint64":
        out[i] = Number(v.getBigUint64(8 * i, true));
        break;
    }
  }
  return out;
}

/** Decodes a whole `.cvp` into memory (for small models and tests): header, layers and each tensor's values. */
export async function decodeCvpToMemory(
  source: ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<{ header: CvpHeader; layers: (CvpLayer & { values: Record<string, Float32Array> })[] }> {
  let header: CvpHeader | undefined;
  const layers: (CvpLayer & { values: Record<string, Float32Array> })[] = [];
  for await (const ev of decodeCvp(source)) {
    if (ev.type === "header" || ev.type === "end") header = ev.header;
    else if (ev.type === "layer") {
      const values: Record<string, Float32Array> = {};
      for (const p of ev.layer.params) values[p.role] = new Float32Array(p.shape.reduce((a, b) => a * b, 1));
      layers.push({ ...ev.layer, values });
    } else if (ev.type === "tensor") layers[layers.length - 1].values[ev.role].set(ev.data, ev.start);
  }
  return { header: header!, layers };
}
