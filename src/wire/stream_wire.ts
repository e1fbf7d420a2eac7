/**
 * The protobuf wire read from a {@link ByteReader}, for the top levels of large messages: it descends field by
 * field and hands a length-delimited field's bytes out as chunks ({@link ByteReader.chunks}) or skips them, without
 * buffering. Embedded messages are bounded by an absolute `end` offset, checked on every field.
 *
 * @module
 */
import type { ByteReader } from "../bytes/byte_reader.ts";
import { decodeVarint, varintSigned, varintUnsigned } from "./varint.ts";

/** A field key with the absolute offset it started at. */
export interface StreamTag {
  field: number;
  wireType: number;
  /** Absolute offset of the key's first byte. */
  offset: number;
}

async function varintRaw(r: ByteReader, what: string): Promise<void> {
  if (r.buffered < 10) await r.fill(10);
  const p = decodeVarint(r.window, r.windowStart, r.windowEnd);
  if (p === -1) throw r.eofError(1, what);
  if (p === -2) throw r.error("bad_wire", `Varint longer than 10 bytes in ${what} at byte ${r.position}`);
  r.advance(p - r.windowStart);
}

/** Reads an unsigned varint up to 2^53 - 1. */
export async function readUint(r: ByteReader, what = "varint"): Promise<number> {
  const at = r.position;
  await varintRaw(r, what);
  const v = varintUnsigned();
  if (v < 0) throw r.error("bad_wire", `Varint in ${what} at byte ${at} exceeds 2^53`, at);
  return v;
}

/** Reads a signed int64 varint. */
export async function readInt(r: ByteReader, what = "varint"): Promise<number> {
  const at = r.position;
  await varintRaw(r, what);
  const v = varintSigned();
  if (Number.isNaN(v)) throw r.error("bad_wire", `Integer in ${what} at byte ${at} is outside the safe range`, at);
  return v;
}

/**
 * Reads a field key, or returns null when `end` is reached. A key that straddles `end`, or a position past it,
 * is an error: the enclosing length was wrong.
 */
export async function readTag(r: ByteReader, end: number, what = "message"): Promise<StreamTag | null> {
  const offset = r.position;
  if (offset === end) return null;
  if (offset > end) {
    throw r.error("bad_wire", `Field in ${what} overruns its enclosing message (ends at byte ${end})`, offset);
  }
  if (end === Infinity && await r.atEnd()) return null;
  const v = await readUint(r, what);
  const field = Math.floor(v / 8), wireType = v & 7;
  if (field === 0) throw r.error("bad_wire", `Invalid field number 0 in ${what} at byte ${offset}`, offset);
  if (wireType !== 0 && wireType !== 1 && wireType !== 2 && wireType !== 5) {
    throw r.error("bad_wire", `Invalid wire type ${wireType} for field ${field} in ${what} at byte ${offset}`, offset);
  }
  return { field, wireType, offset };
}

/**
 * Reads a length prefix and returns the absolute end of the payload, checked against the enclosing `end` and the
 * input size.
 */
export async function readLength(r: ByteReader, end: number, what: string): Promise<number> {
  const at = r.position;
  const n = await readUint(r, what);
  const payloadEnd = r.position + n;
  if (payloadEnd > end) {
    throw r.error(
      "bad_wire",
      `Length ${n} of ${what} at byte ${at} runs past the end of its enclosing message (byte ${end})`,
      at,
    );
  }
  r.checkLength(n, what);
  return payloadEnd;
}

/** Skips a field value of the given wire type. */
export async function skipValue(r: ByteReader, wireType: number, end: number, what: string): Promise<void> {
  switch (wireType) {
    case 0:
      await varintRaw(r, what);
      return;
    case 1:
      await r.skip(8, what);
      return;
    case 5:
      await r.skip(4, what);
      return;
    case 2: {
      const e = await readLength(r, end, what);
      await r.skip(e - r.position, what);
      return;
    }
  }
}

/** Throws unless `tag` has `expected` wire type. */
export function expectWireType(r: ByteReader, tag: StreamTag, expected: number, what: string): void {
  if (tag.wireType !== expected) {
    throw r.error(
      "bad_wire",
      `Field ${tag.field} (${what}) at byte ${tag.offset} has wire type ${tag.wireType}, expected ${expected}`,
      tag.offset,
    );
  }
}
