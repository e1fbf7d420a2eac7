/**
 * Protobuf base-128 varints. Decoding accepts non-canonical (zero-padded) forms up to 10 bytes, so writers may
 * reserve a fixed-width length and patch it later.
 *
 * @module
 */

/** Result registers of {@link decodeVarint}: the low and high 32 bits, unsigned. */
export const varintResult = { lo: 0, hi: 0 };

/**
 * Decodes a varint from `buf[pos..end)` into {@link varintResult}. Returns the position after it, -1 if the
 * varint is cut off by `end`, or -2 if it is longer than 10 bytes.
 */
export function decodeVarint(buf: Uint8Array, pos: number, end: number): number {
  let lo = 0, hi = 0, b = 0;
  for (let i = 0; i < 4; i++) {
    if (pos >= end) return -1;
    b = buf[pos++];
    lo |= (b & 0x7f) << (7 * i);
    if (b < 0x80) return done(lo, hi, pos);
  }
  if (pos >= end) return -1;
  b = buf[pos++];
  lo |= (b & 0x0f) << 28;
  hi = (b & 0x7f) >> 4;
  if (b < 0x80) return done(lo, hi, pos);
  for (let i = 0; i < 5; i++) {
    if (pos >= end) return -1;
    b = buf[pos++];
    hi |= (b & 0x7f) << (7 * i + 3);
    if (b < 0x80) return done(lo, hi, pos);
  }
  return -2;
}

function done(lo: number, hi: number, pos: number): number {
  varintResult.lo = lo >>> 0;
  varintResult.hi = hi >>> 0;
  return pos;
}

/** The unsigned value of {@link varintResult}, or -1 if it exceeds 2^53 - 1. */
export function varintUnsigned(): number {
  const { lo, hi } = varintResult;
  if (hi >= 0x200000) return -1;
  return hi * 0x100000000 + lo;
}

/** The signed (two's complement int64) value of {@link varintResult}, or NaN if it is not a safe integer. */
export function varintSigned(): number {
  const { lo, hi } = varintResult;
  if (hi & 0x80000000) {
    const v = (hi | 0) * 0x100000000 + lo;
    return Number.isSafeInteger(v) ? v : NaN;
  }
  if (hi >= 0x200000) return NaN;
  return hi * 0x100000000 + lo;
}

/** Bytes needed to encode non-negative `v` (or a negative int64, which takes 10). */
export function varintSize(v: number): number {
  if (v < 0) return 10;
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/**
 * Encodes `v` (a safe integer; negative values as 10-byte two's complement int64) into `buf` at `pos`. With
 * `width`, pads with continuation bytes to exactly that many bytes. Returns the position after it.
 */
export function encodeVarint(buf: Uint8Array, pos: number, v: number, width = 0): number {
  if (v < 0) {
    // Two's complement over 64 bits, as protobuf writes a negative int32 or int64: always 10 bytes.
    let b = BigInt.asUintN(64, BigInt(v));
    for (let i = 0; i < 9; i++) {
      buf[pos++] = Number(b & 0x7fn) | 0x80;
      b >>= 7n;
    }
    buf[pos++] = Number(b);
    return pos;
  }
  const start = pos;
  while (v >= 128) {
    buf[pos++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[pos++] = v;
  if (width > 0) {
    const used = pos - start;
    if (used > width) throw new RangeError(`Value ${v} does not fit a ${width}-byte varint`);
    if (used < width) {
      buf[pos - 1] |= 0x80;
      for (let i = used; i < width - 1; i++) buf[pos++] = 0x80;
      buf[pos++] = 0x00;
    }
  }
  return pos;
}
