/**
 * Canonical Huffman coding of a symbol stream over an alphabet of `A` symbols (the index stream of a clustered
 * tensor). Stream layout (spec.md, "Huffman symbol streams"):
 *
 * ```
 * code-length table: A lengths of 5 bits each (0 = symbol unused, else 1..24), LSB-first, padded to a byte
 * code bits:         each symbol's canonical code, most significant code bit first, appended to an LSB-first bit
 *                    stream (bit j is bit j%8 of byte j/8, as in Deflate), padded with zero bits to a byte
 * ```
 *
 * Canonical codes are assigned as in Deflate (RFC 1951 3.2.2): shorter codes first, ties by symbol number. A stream
 * that uses a single symbol gives it length 1. Code lengths are limited to {@link MAX_CODE_LENGTH} bits.
 *
 * @module
 */
import { packBits, unpackBits } from "./bitpack.ts";

/** The longest code length. */
export const MAX_CODE_LENGTH = 24;

/** Width of one entry of the code-length table. */
export const LENGTH_BITS = 5;

type Symbols = ArrayLike<number>;

/** Counts symbol frequencies. */
export function symbolCounts(symbols: Symbols, alphabet: number): Float64Array {
  const f = new Float64Array(alphabet);
  for (let i = 0; i < symbols.length; i++) f[symbols[i]]++;
  return f;
}

/** Huffman code lengths for the frequencies, limited to {@link MAX_CODE_LENGTH} by flattening the counts. */
export function codeLengths(freq: Float64Array): Uint8Array {
  let f = freq;
  for (;;) {
    const lengths = unlimitedLengths(f);
    let max = 0;
    for (const l of lengths) max = Math.max(max, l);
    if (max <= MAX_CODE_LENGTH) return lengths;
    const g = new Float64Array(f.length);
    for (let i = 0; i < f.length; i++) g[i] = f[i] > 0 ? Math.max(1, Math.floor(f[i] / 2)) : 0;
    f = g;
  }
}

function unlimitedLengths(freq: Float64Array): Uint8Array {
  const A = freq.length;
  const lengths = new Uint8Array(A);
  const used: number[] = [];
  for (let s = 0; s < A; s++) if (freq[s] > 0) used.push(s);
  if (used.length === 0) return lengths;
  if (used.length === 1) {
    lengths[used[0]] = 1;
    return lengths;
  }
  used.sort((a, b) => freq[a] - freq[b] || a - b);
  // Two-queue Huffman: leaves in increasing weight, internal nodes appended in increasing weight.
  const n = used.length;
  const weight = new Float64Array(2 * n);
  const parent = new Int32Array(2 * n);
  for (let i = 0; i < n; i++) weight[i] = freq[used[i]];
  let leaf = 0, node = n, next = n;
  const take = () => (leaf < n && (node >= next || weight[leaf] <= weight[node]) ? leaf++ : node++);
  for (; next < 2 * n - 1; next++) {
    const a = take(), b = take();
    weight[next] = weight[a] + weight[b];
    parent[a] = parent[b] = next;
  }
  const depth = new Int32Array(2 * n);
  for (let i = 2 * n - 3; i >= 0; i--) depth[i] = depth[parent[i]] + 1;
  for (let i = 0; i < n; i++) lengths[used[i]] = depth[i];
  return lengths;
}

/** Canonical codes for the lengths, bit-reversed so they can be appended LSB-first. */
function reversedCodes(lengths: Uint8Array): Uint32Array {
  const count = new Uint32Array(MAX_CODE_LENGTH + 1);
  for (const l of lengths) if (l) count[l]++;
  // Deflate's next_code (RFC 1951 3.2.2 step 2), with no count for length 0.
  const next = new Uint32Array(MAX_CODE_LENGTH + 1);
  let code = 0;
  for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
    code = (code + (l > 1 ? count[l - 1] : 0)) << 1;
    if (l === 1) code = 0;
    next[l] = code;
  }
  const out = new Uint32Array(lengths.length);
  for (let s = 0; s < lengths.length; s++) {
    const l = lengths[s];
    if (!l) continue;
    let c = next[l]++;
    let r = 0;
    for (let i = 0; i < l; i++) {
      r = (r << 1) | (c & 1);
      c >>>= 1;
    }
    out[s] = r >>> 0;
  }
  return out;
}

/** Bytes of the Huffman stream for these symbols and lengths, without building it. */
export function huffmanLength(freq: Float64Array, lengths: Uint8Array): number {
  let bits = 0;
  for (let s = 0; s < freq.length; s++) bits += freq[s] * lengths[s];
  return Math.ceil((lengths.length * LENGTH_BITS) / 8) + Math.ceil(bits / 8);
}

/**
 * Encodes `symbols` (each < `alphabet`) as a Huffman stream, after `reserve` zero bytes (room for a caller's header).
 *
 * @example
 * ```ts
 * import { huffmanDecode, huffmanEncode } from "./huffman.ts";
 * const s = [0, 0, 0, 1, 0, 2, 0, 0];
 * const out = new Uint16Array(s.length);
 * huffmanDecode(huffmanEncode(s, 4), 4, s.length, out);
 * if (out.join() !== s.join()) throw new Error("bad round trip");
 * ```
 */
export function huffmanEncode(symbols: Symbols, alphabet: number, lengths?: Uint8Array, reserve = 0): Uint8Array {
  lengths ??= codeLengths(symbolCounts(symbols, alphabet));
  const table = packBits(lengths, LENGTH_BITS);
  const codes = reversedCodes(lengths);
  let totalBits = 0;
  for (let i = 0; i < symbols.length; i++) totalBits += lengths[symbols[i]];
  const out = new Uint8Array(reserve + table.length + Math.ceil(totalBits / 8));
  out.set(table, reserve);
  let o = reserve + table.length;
  let acc = 0, accBits = 0;
  for (let i = 0; i < symbols.length; i++) {
    const s = symbols[i];
    const l = lengths[s];
    if (!l) throw new RangeError(`Symbol ${s} has no code`);
    // acc holds < 8 bits; l <= 24, so acc stays within 31 bits.
    acc = (acc | (codes[s] << accBits)) >>> 0;
    accBits += l;
    while (accBits >= 8) {
      out[o++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) out[o++] = acc & 0xff;
  return out;
}

const FAST_BITS = 11;

/**
 * Decodes `count` symbols of a Huffman stream into `out`, starting at symbol `state.symbol` of the stream and bit
 * `state.bit` of the code bits; `state` is advanced, so a long stream can be decoded in slices. Throws on a malformed
 * table, an invalid code or a stream that ends early.
 */
export function huffmanDecode(
  bytes: Uint8Array,
  alphabet: number,
  count: number,
  out: Uint8Array | Uint16Array | Uint32Array,
  decoder: HuffmanDecoder = new HuffmanDecoder(bytes, alphabet),
): HuffmanDecoder {
  decoder.decode(count, out);
  return decoder;
}

/** A resumable canonical Huffman decoder over one stream. */
export class HuffmanDecoder {
  readonly #bytes: Uint8Array;
  #bit: number;
  readonly #fast: Int32Array; // (symbol << 5) | length for every FAST_BITS-bit prefix, -1 when longer
  readonly #firstCode: Int32Array;
  readonly #count: Int32Array;
  readonly #offset: Int32Array;
  readonly #sorted: Int32Array;
  readonly #maxLen: number;

  constructor(bytes: Uint8Array, alphabet: number) {
    const tableBytes = Math.ceil((alphabet * LENGTH_BITS) / 8);
    if (bytes.length < tableBytes) {
      throw new RangeError(`Huffman table needs ${tableBytes} bytes, stream has ${bytes.length}`);
    }
    const lengths = new Uint8Array(alphabet);
    unpackBits(bytes, LENGTH_BITS, 0, alphabet, lengths);
    this.#bytes = bytes;
    this.#bit = tableBytes * 8;
    const count = new Int32Array(MAX_CODE_LENGTH + 1);
    let maxLen = 0;
    for (const l of lengths) {
      if (l > MAX_CODE_LENGTH) throw new RangeError(`Huffman code length ${l} exceeds ${MAX_CODE_LENGTH}`);
      if (l) {
        count[l]++;
        maxLen = Math.max(maxLen, l);
      }
    }
    // Kraft inequality: an over-subscribed table cannot come from a valid encoder.
    let kraft = 0;
    for (let l = 1; l <= MAX_CODE_LENGTH; l++) kraft += count[l] * 2 ** (MAX_CODE_LENGTH - l);
    if (kraft > 2 ** MAX_CODE_LENGTH) throw new RangeError("Huffman code lengths are over-subscribed");
    const firstCode = new Int32Array(MAX_CODE_LENGTH + 2);
    const offset = new Int32Array(MAX_CODE_LENGTH + 2);
    let code = 0, off = 0;
    for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
      code = (code + (l > 1 ? count[l - 1] : 0)) << 1;
      if (l === 1) code = 0;
      firstCode[l] = code;
      offset[l] = off;
      off += count[l];
    }
    const sorted = new Int32Array(off);
    const fill = offset.slice();
    for (let l = 1; l <= MAX_CODE_LENGTH; l++) {
      for (let s = 0; s < alphabet; s++) if (lengths[s] === l) sorted[fill[l]++] = s;
    }
    this.#firstCode = firstCode;
    this.#count = count;
    this.#offset = offset;
    this.#sorted = sorted;
    this.#maxLen = maxLen;
    // Fast table indexed by the next FAST_BITS stream bits (LSB-first, so the code's first bit is bit 0).
    this.#fast = new Int32Array(1 << FAST_BITS).fill(-1);
    for (let l = 1; l <= Math.min(FAST_BITS, maxLen); l++) {
      for (let i = 0; i < count[l]; i++) {
        const s = sorted[offset[l] + i];
        const c = firstCode[l] + i;
        let r = 0;
        for (let b = 0; b < l; b++) r |= ((c >>> (l - 1 - b)) & 1) << b;
        for (let hi = 0; hi < 1 << (FAST_BITS - l); hi++) this.#fast[r | (hi << l)] = (s << 5) | l;
      }
    }
  }

  /** Decodes the next `count` symbols into `out`. */
  decode(count: number, out: Uint8Array | Uint16Array | Uint32Array): void {
    const bytes = this.#bytes;
    const totalBits = bytes.length * 8;
    let bit = this.#bit;
    for (let i = 0; i < count; i++) {
      const byte = bit >>> 3;
      let w = bytes[byte] | (bytes[byte + 1] << 8) | (bytes[byte + 2] << 16);
      w >>>= bit & 7; // at least 17 valid bits (missing bytes read as 0 and are checked below)
      const e = this.#fast[w & ((1 << FAST_BITS) - 1)];
      if (e >= 0 && bit + (e & 31) <= totalBits) {
        out[i] = e >>> 5;
        bit += e & 31;
        continue;
      }
      // Slow path: one bit at a time, canonical order.
      let code = 0;
      let l = 1;
      for (; l <= this.#maxLen; l++) {
        if (bit >= totalBits) throw new RangeError(`Huffman stream ends early at symbol ${i}`);
        code = (code << 1) | ((bytes[bit >>> 3] >>> (bit & 7)) & 1);
        bit++;
        const d = code - this.#firstCode[l];
        if (d >= 0 && d < this.#count[l]) {
          out[i] = this.#sorted[this.#offset[l] + d];
          break;
        }
      }
      if (l > this.#maxLen) throw new RangeError(`Invalid Huffman code at stream bit ${bit}`);
    }
    this.#bit = bit;
  }

  /** Bytes of the stream not reached by decoding (must be 0 after the last symbol, padding aside). */
  get trailingBytes(): number {
    return this.#bytes.length - Math.ceil(this.#bit / 8);
  }
}
