/**
 * The clustered tensor encodings (spec.md sections 3.1 to 3.3): `cluster` (16-bit centres and an index stream),
 * `cluster-sparse` (zero as a reserved cluster, gap + symbol streams, as in Deep Compression), and the plain 16-bit
 * fallback, with the writer's choice of the smallest and the reader's slice-by-slice decoding.
 *
 * @module
 */
import { bitsFor, packedLength } from "./bitpack.ts";
import { fromHalf, type HalfKind, toHalf } from "./half.ts";
import { encodePlanned, encodeSymbols, planSymbols, type SymbolCoding, SymbolReader } from "./symbols.ts";

/** What the compression stage attaches to a tensor as `tensor.meta.cluster`. */
export interface Clustering {
  /** The centres, already rounded to `repr`. */
  centers: Float32Array;
  /** One centre index per element. */
  indices: Uint8Array | Uint16Array;
  /** The 16-bit representation of the centres. */
  repr: "fp16" | "bf16";
}

/** Encodings a clustered tensor may take. */
export type ClusteredEncoding = "cluster" | "cluster-sparse" | "f16" | "bf16";

/** Test hooks: force an encoding or a symbol coding. */
export interface ClusterChoice {
  encoding?: ClusteredEncoding;
  coding?: SymbolCoding;
  gapBits?: number;
}

/** An encoded tensor: the metadata fields beyond role/name/dtype/shape, and the body. */
export interface EncodedBody {
  fields: Record<string, unknown>;
  body: Uint8Array;
}

const halfOf = (repr: "fp16" | "bf16"): HalfKind => (repr === "fp16" ? "f16" : "bf16");

/** Checks a clustering against a tensor of `n` elements; returns an error message or undefined. */
export function checkClustering(c: Clustering, n: number): string | undefined {
  if (!(c.centers instanceof Float32Array)) return "centers is not a Float32Array";
  if (!(c.indices instanceof Uint8Array || c.indices instanceof Uint16Array)) return "indices is not a Uint8/16Array";
  if (c.repr !== "fp16" && c.repr !== "bf16") return `repr '${c.repr}' is not fp16 or bf16`;
  const k = c.centers.length;
  if (k < 1 || k > 65536) return `${k} centres (1 to 65536 allowed)`;
  if (c.indices.length !== n) return `${c.indices.length} indices for ${n} elements`;
  for (let i = 0; i < n; i++) if (c.indices[i] >= k) return `index ${c.indices[i]} at ${i} is not below k = ${k}`;
  return undefined;
}

/** Encodes a clustered tensor, keeping the smallest of the encodings (or the forced one). */
export function encodeClustered(c: Clustering, choice: ClusterChoice = {}): EncodedBody {
  const half = halfOf(c.repr);
  const k = c.centers.length;
  const centres = new Uint16Array(k);
  for (let i = 0; i < k; i++) centres[i] = toHalf(half, c.centers[i]);
  // Each candidate's length is known before its body is built, so only the smallest is built (VGG16's fc6 at 8 bits:
  // no 205 MB 16-bit body made only to be dropped). Ties go to the earlier candidate.
  const candidates: { bytes: number; build: () => EncodedBody }[] = [];
  const want = (e: ClusteredEncoding) => choice.encoding === undefined || choice.encoding === e;
  if (want("cluster")) candidates.push(dense(c, centres, choice.coding));
  if (want("cluster-sparse")) {
    const e = sparse(c, centres, choice.coding, choice.gapBits);
    if (e) candidates.push({ bytes: e.body.length, build: () => e });
  }
  if (want(half)) candidates.push({ bytes: 2 * c.indices.length, build: () => plain(c, centres, half) });
  let best: (typeof candidates)[number] | undefined;
  for (const e of candidates) if (!best || e.bytes < best.bytes) best = e;
  if (!best) throw new RangeError(`Encoding ${choice.encoding} does not apply to this clustering`);
  return best.build();
}

function centreBytes(centres: Uint16Array, extra: number): { body: Uint8Array; at: number } {
  const body = new Uint8Array(centres.length * 2 + extra);
  for (let i = 0; i < centres.length; i++) {
    body[2 * i] = centres[i] & 0xff;
    body[2 * i + 1] = centres[i] >> 8;
  }
  return { body, at: centres.length * 2 };
}

/** The `cluster` encoding: its length, and the body built on demand (the index stream after the centres). */
function dense(
  c: Clustering,
  centres: Uint16Array,
  coding?: SymbolCoding,
): { bytes: number; build: () => EncodedBody } {
  const plan = planSymbols(c.indices, centres.length, coding);
  return {
    bytes: 2 * centres.length + plan.bytes,
    build() {
      const body = encodePlanned(c.indices, plan, 2 * centres.length);
      for (let i = 0; i < centres.length; i++) {
        body[2 * i] = centres[i] & 0xff;
        body[2 * i + 1] = centres[i] >> 8;
      }
      return {
        fields: {
          encoding: "cluster",
          k: centres.length,
          repr: c.repr,
          indices: { coding: plan.coding, bytes: plan.bytes },
        },
        body,
      };
    },
  };
}

function sparse(c: Clustering, all: Uint16Array, coding?: SymbolCoding, forceBits?: number): EncodedBody | undefined {
  // Symbol 0 is zero; non-zero centres keep their order as symbols 1..k.
  const symOf = new Uint32Array(all.length);
  const kept: number[] = [];
  for (let i = 0; i < all.length; i++) {
    if (all[i] === 0) symOf[i] = 0;
    else {
      kept.push(all[i]);
      symOf[i] = kept.length;
    }
  }
  if (kept.length === all.length) return undefined; // no zero cluster
  const n = c.indices.length;
  const gaps: number[] = [];
  const syms: number[] = [];
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const s = symOf[c.indices[i]];
    if (s === 0) continue;
    gaps.push(i - prev);
    syms.push(s);
    prev = i + 1;
  }
  const symBits = bitsFor(kept.length + 1);
  let g = forceBits ?? 1;
  if (forceBits === undefined) {
    let bestCost = Infinity;
    for (let b = 1; b <= 16; b++) {
      let entries = 0;
      for (const x of gaps) entries += 1 + Math.floor(x / 2 ** b);
      const cost = packedLength(entries, b) + packedLength(entries, symBits);
      if (cost < bestCost) [bestCost, g] = [cost, b];
    }
  }
  const max = 2 ** g - 1;
  const gapStream: number[] = [];
  const symStream: number[] = [];
  for (let j = 0; j < gaps.length; j++) {
    let gap = gaps[j];
    while (gap > max) {
      gapStream.push(max);
      symStream.push(0);
      gap -= max + 1;
    }
    gapStream.push(gap);
    symStream.push(syms[j]);
  }
  const gs = encodeSymbols(gapStream, 2 ** g, coding);
  const ss = encodeSymbols(symStream, kept.length + 1, coding);
  const { body, at } = centreBytes(Uint16Array.from(kept), gs.bytes.length + ss.bytes.length);
  body.set(gs.bytes, at);
  body.set(ss.bytes, at + gs.bytes.length);
  return {
    fields: {
      encoding: "cluster-sparse",
      k: kept.length,
      repr: c.repr,
      entries: gapStream.length,
      gapBits: g,
      gaps: { coding: gs.coding, bytes: gs.bytes.length },
      symbols: { coding: ss.coding, bytes: ss.bytes.length },
    },
    body,
  };
}

function plain(c: Clustering, centres: Uint16Array, half: HalfKind): EncodedBody {
  const n = c.indices.length;
  const body = new Uint8Array(2 * n);
  for (let i = 0; i < n; i++) {
    const h = centres[c.indices[i]];
    body[2 * i] = h & 0xff;
    body[2 * i + 1] = h >> 8;
  }
  return { fields: { encoding: half }, body };
}

/** Stream length fields of a clustered encoding, validated; throws a message on bad metadata. */
export function clusteredBodyLength(m: Record<string, unknown>): number {
  const k = m.k;
  const sparseEnc = m.encoding === "cluster-sparse";
  if (!Number.isInteger(k) || (k as number) < (sparseEnc ? 0 : 1) || (k as number) > (sparseEnc ? 65535 : 65536)) {
    throw new RangeError(`bad centre count ${k}`);
  }
  if (m.repr !== "fp16" && m.repr !== "bf16") throw new RangeError(`bad centre representation ${m.repr}`);
  const streams = sparseEnc ? [m.gaps, m.symbols] : [m.indices];
  let total = 2 * (k as number);
  for (const s of streams) total += streamBytes(s);
  if (sparseEnc) {
    if (!Number.isInteger(m.gapBits) || (m.gapBits as number) < 1 || (m.gapBits as number) > 16) {
      throw new RangeError(`bad gapBits ${m.gapBits}`);
    }
    if (!Number.isSafeInteger(m.entries) || (m.entries as number) < 0) throw new RangeError(`bad entries ${m.entries}`);
  }
  return total;
}

function streamBytes(s: unknown): number {
  const o = s as { coding?: unknown; bytes?: unknown } | null;
  if (!o || typeof o !== "object" || (o.coding !== "packed" && o.coding !== "huffman")) {
    throw new RangeError("bad symbol stream description");
  }
  if (!Number.isSafeInteger(o.bytes) || (o.bytes as number) < 0) throw new RangeError(`bad stream length ${o.bytes}`);
  return o.bytes as number;
}

/**
 * The centre table of a clustered body (whose length {@link clusteredBodyLength} checked), as float32: the `k`
 * stored centres for `cluster`, and +0.0 followed by the `k` stored centres for `cluster-sparse` (symbol 0 is zero).
 */
export function clusteredCenters(m: Record<string, unknown>, body: Uint8Array): Float32Array {
  const k = m.k as number;
  const half = halfOf(m.repr as "fp16" | "bf16");
  const off = m.encoding === "cluster-sparse" ? 1 : 0;
  const values = new Float32Array(k + off);
  for (let i = 0; i < k; i++) values[i + off] = fromHalf(half, body[2 * i] | (body[2 * i + 1] << 8));
  return values;
}

/**
 * Decodes the indices of a clustered body into {@link clusteredCenters}' table, `slice` elements at a time, in
 * element order. Yields one reused Uint32Array (borrowed: valid until the next slice is pulled).
 */
export function* decodeIndices(
  m: Record<string, unknown>,
  body: Uint8Array,
  n: number,
  slice = 1 << 20,
): Generator<Uint32Array> {
  const k = m.k as number;
  let at = 2 * k;
  const take = (s: unknown) => {
    const b = (s as { bytes: number }).bytes;
    const part = body.subarray(at, at + b);
    at += b;
    return { coding: (s as { coding: SymbolCoding }).coding, bytes: part };
  };
  if (m.encoding === "cluster") {
    const s = take(m.indices);
    const r = new SymbolReader(s.coding, s.bytes, k, n);
    const idx = new Uint32Array(Math.max(1, Math.min(slice, n)));
    for (let done = 0; done < n;) {
      const c = Math.min(slice, n - done);
      r.next(c, idx);
      done += c;
      yield idx.subarray(0, c);
    }
    r.finish();
    return;
  }
  const E = m.entries as number;
  const g = take(m.gaps), s = take(m.symbols);
  const gr = new SymbolReader(g.coding, g.bytes, 2 ** (m.gapBits as number), E);
  const sr = new SymbolReader(s.coding, s.bytes, k + 1, E);
  const step = Math.max(1, Math.min(slice, E));
  const gbuf = new Uint32Array(step), sbuf = new Uint32Array(step);
  const out = new Uint32Array(Math.max(1, Math.min(slice, n)));
  let outStart = 0; // element index of out[0]
  let pos = 0;
  const full = () => out.subarray(0, Math.min(out.length, n - outStart));
  for (let e = 0; e < E;) {
    const c = Math.min(step, E - e);
    gr.next(c, gbuf);
    sr.next(c, sbuf);
    for (let j = 0; j < c; j++) {
      pos += gbuf[j];
      if (pos >= n) throw new RangeError(`entry ${e + j} lands at element ${pos}, past the ${n} elements`);
      while (pos >= outStart + out.length) {
        yield full();
        outStart += out.length;
        out.fill(0);
      }
      out[pos - outStart] = sbuf[j];
      pos++;
    }
    e += c;
  }
  gr.finish();
  sr.finish();
  while (outStart < n) {
    yield full();
    outStart += out.length;
    out.fill(0);
  }
}

/**
 * Decodes a clustered body (whose length {@link clusteredBodyLength} checked) to float32, `slice` elements at a time.
 * Yields fresh little-endian float32 byte arrays.
 */
export function* decodeClustered(
  m: Record<string, unknown>,
  body: Uint8Array,
  n: number,
  slice = 1 << 20,
): Generator<Uint8Array> {
  const values = clusteredCenters(m, body);
  for (const idx of decodeIndices(m, body, n, slice)) {
    const out = new Float32Array(idx.length);
    for (let i = 0; i < idx.length; i++) out[i] = values[idx[i]];
    yield new Uint8Array(out.buffer);
  }
}
