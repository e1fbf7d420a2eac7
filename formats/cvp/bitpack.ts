/**
 * Fixed-width bit packing of unsigned integers, least significant bit first: value `i` of width `b` occupies stream
 * bits `[i*b, (i+1)*b)`, and stream bit `j` is bit `j % 8` of byte `floor(j / 8)`. The last byte is padded with zero
 * bits. A stream of `n` values takes exactly `ceil(n*b / 8)` bytes. Widths 0 to 24 are supported (width 0 stores
 * nothing: every value is 0).
 *
 * @module
 */

/** The largest supported width. */
export const MAX_BITS = 24;

/** Bits needed to tell `k` symbols apart: `ceil(log2 k)`, 0 for k <= 1. */
export function bitsFor(k: number): number {
  if (k <= 1) return 0;
  if (k > 2 ** 31) throw new RangeError(`Alphabet of ${k} symbols is too large`);
  return 32 - Math.clz32(k - 1);
}

/** Bytes a packed stream of `count` values of `bits` bits takes. */
export function packedLength(count: number, bits: number): number {
  return Math.ceil((count * bits) / 8);
}

/**
 * Packs `values` (each < 2**bits) at `bits` bits each, after `reserve` zero bytes (room for a caller's header).
 *
 * @example
 * ```ts
 * import { packBits } from "./bitpack.ts";
 * const b = packBits([1, 2, 3], 2); // 01 10 11 -> 0b00111001
 * if (b.length !== 1 || b[0] !== 0b00111001) throw new Error("bad packing");
 * ```
 */
export function packBits(values: ArrayLike<number>, bits: number, reserve = 0): Uint8Array {
  checkBits(bits);
  const n = values.length;
  const out = new Uint8Array(reserve + packedLength(n, bits));
  if (bits === 0) return out;
  const max = 2 ** bits;
  let acc = 0; // pending bits, at most 7 + 24 = 31 of them
  let accBits = 0;
  let o = reserve;
  for (let i = 0; i < n; i++) {
    const v = values[i];
    if (!(v >= 0 && v < max) || v !== Math.floor(v)) {
      throw new RangeError(`Value ${v} at ${i} does not fit ${bits} bits`);
    }
    acc = (acc | (v << accBits)) >>> 0;
    accBits += bits;
    while (accBits >= 8) {
      out[o++] = acc & 0xff;
      acc >>>= 8;
      accBits -= 8;
    }
  }
  if (accBits > 0) out[o++] = acc & 0xff;
  return out;
}

/**
 * Unpacks `count` values of `bits` bits starting at value index `start` into `out` (which must hold `count`).
 * Random access: any window of a packed stream can be decoded on its own.
 */
export function unpackBits(
  bytes: Uint8Array,
  bits: number,
  start: number,
  count: number,
  out: Uint8Array | Uint16Array | Uint32Array | number[],
): void {
  checkBits(bits);
  if (bits === 0) {
    for (let i = 0; i < count; i++) out[i] = 0;
    return;
  }
  const need = packedLength(start + count, bits);
  if (need > bytes.length) throw new RangeError(`Packed stream of ${bytes.length} bytes is too short (${need} needed)`);
  const mask = bits === 32 ? 0xffffffff : (1 << bits) - 1;
  const last = bytes.length;
  let p = start * bits;
  for (let i = 0; i < count; i++, p += bits) {
    const byte = p >>> 3;
    const shift = p & 7;
    // Up to 4 bytes cover shift (<= 7) + bits (<= 24) <= 31 bits.
    let w = bytes[byte];
    if (byte + 1 < last) w |= bytes[byte + 1] << 8;
    if (byte + 2 < last) w |= bytes[byte + 2] << 16;
    if (byte + 3 < last) w |= bytes[byte + 3] << 24;
    out[i] = (w >>> shift) & mask;
  }
}

function checkBits(bits: number): void {
  if (!Number.isInteger(bits) || bits < 0 || bits > MAX_BITS) throw new RangeError(`Unsupported bit width ${bits}`);
}
