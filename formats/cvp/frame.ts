/**
 * The fixed parts of a `.cvp` file (spec.md section 1): the preamble, the 20-byte record frame header and the
 * 16-byte footer.
 *
 * ```
 * preamble  magic[8] = 89 43 56 50 0D 0A 1A 0A, version u16 = 1, reserved u16 = 0
 * record    kind u8, reserved[3] = 0, metaLength u32, bodyLength u64, crc32(bytes 0..15) u32,
 *           meta[metaLength], crc32(meta) u32, body[bodyLength], crc32(body) u32
 * footer    indexOffset u64, crc32(bytes 0..7) u32, "CVP!"
 * ```
 *
 * @module
 */
import { crc32 } from "./crc32.ts";

/** The 8-byte magic at the start of every `.cvp` file. */
/**
 * The canonical op set a file's layers follow, stored as `canonicalOps` in the header metadata: 2 since the op
 * registry (Pad pads per axis, [begins..., ends...]); files without the field are set 1 (spec.md).
 */
export const CANONICAL_OPS = 2;

export const MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x89, 0x43, 0x56, 0x50, 0x0d, 0x0a, 0x1a, 0x0a);
/** The format version this implementation reads and writes. */
export const VERSION = 1;
/** Bytes of the preamble. */
export const PREAMBLE_SIZE = 12;
/** Bytes of a record's frame header. */
export const FRAME_SIZE = 20;
/** Bytes of the footer. */
export const FOOTER_SIZE = 16;
/** The footer's closing magic, `CVP!`. */
export const END_MAGIC: Readonly<Uint8Array> = Uint8Array.of(0x43, 0x56, 0x50, 0x21);
/** The largest metadata a record may carry. */
export const MAX_META = 16 << 20;

/** Record kinds. */
export const KIND = Object.freeze({ header: 0x48, layer: 0x4c, tensor: 0x54, trailer: 0x45, index: 0x58 });

/** Names of the kinds, for messages. */
export const KIND_NAME: Readonly<Record<number, string>> = Object.freeze({
  0x48: "header",
  0x4c: "layer",
  0x54: "tensor",
  0x45: "trailer",
  0x58: "index",
});

/** The preamble bytes. */
export function encodePreamble(): Uint8Array {
  const b = new Uint8Array(PREAMBLE_SIZE);
  b.set(MAGIC, 0);
  new DataView(b.buffer).setUint16(8, VERSION, true);
  return b;
}

/** A record's frame header. */
export function encodeFrame(kind: number, metaLength: number, bodyLength: number): Uint8Array {
  const b = new Uint8Array(FRAME_SIZE);
  const v = new DataView(b.buffer);
  b[0] = kind;
  v.setUint32(4, metaLength, true);
  v.setBigUint64(8, BigInt(bodyLength), true);
  v.setUint32(16, crc32(b.subarray(0, 16)), true);
  return b;
}

/** A decoded frame header, or the reason it is invalid. */
export type Frame = { kind: number; metaLength: number; bodyLength: number } | { error: string; checksum: boolean };

/** Decodes and checks a frame header (`b` holds at least {@link FRAME_SIZE} bytes). */
export function decodeFrame(b: Uint8Array): Frame {
  const v = new DataView(b.buffer, b.byteOffset, FRAME_SIZE);
  if (v.getUint32(16, true) !== crc32(b.subarray(0, 16))) return { error: "frame header CRC mismatch", checksum: true };
  const kind = b[0];
  if (!(kind in KIND_NAME)) return { error: `unknown record kind 0x${kind.toString(16)}`, checksum: false };
  if (b[1] | b[2] | b[3]) return { error: "reserved frame bytes are not zero", checksum: false };
  const metaLength = v.getUint32(4, true);
  const body = v.getBigUint64(8, true);
  if (metaLength > MAX_META) return { error: `metadata length ${metaLength} exceeds ${MAX_META}`, checksum: false };
  if (body >= 2n ** 53n) return { error: `body length ${body} is too large`, checksum: false };
  return { kind, metaLength, bodyLength: Number(body) };
}

/** A little-endian u32. */
export function u32(x: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x >>> 0, true);
  return b;
}

/** The footer pointing at the index record. */
export function encodeFooter(indexOffset: number): Uint8Array {
  const b = new Uint8Array(FOOTER_SIZE);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, BigInt(indexOffset), true);
  v.setUint32(8, crc32(b.subarray(0, 8)), true);
  b.set(END_MAGIC, 12);
  return b;
}

/** Decodes a footer: the index offset, or an error message. */
export function decodeFooter(b: Uint8Array): number | string {
  const v = new DataView(b.buffer, b.byteOffset, FOOTER_SIZE);
  for (let i = 0; i < 4; i++) if (b[12 + i] !== END_MAGIC[i]) return "footer magic is not CVP!";
  if (v.getUint32(8, true) !== crc32(b.subarray(0, 8))) return "footer CRC mismatch";
  const off = v.getBigUint64(0, true);
  if (off >= 2n ** 53n) return "footer index offset is too large";
  return Number(off);
}
