/**
 * A record-level `.cvp` editor for tests that craft damaged files whose every CRC is still right (so the damage
 * reaches the structural checks): split a file into records, change them, and join them again with fresh CRCs, a
 * fresh index and footer.
 *
 * @module
 */
import { crc32 } from "../formats/cvp/crc32.ts";
import { encodeFooter, encodeFrame, encodePreamble, FRAME_SIZE, KIND, PREAMBLE_SIZE } from "../formats/cvp/frame.ts";

/** One record: kind, metadata (parsed JSON) and body. */
export interface EditRecord {
  kind: number;
  meta: Record<string, unknown>;
  body: Uint8Array;
}

/** Splits a valid `.cvp` into its records, the index excluded. */
export function splitCvp(bytes: Uint8Array): EditRecord[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: EditRecord[] = [];
  for (let at = PREAMBLE_SIZE;;) {
    const kind = bytes[at];
    const metaLength = dv.getUint32(at + 4, true);
    const bodyLength = Number(dv.getBigUint64(at + 8, true));
    const m0 = at + FRAME_SIZE;
    if (kind === KIND.index) return out;
    const meta = JSON.parse(new TextDecoder().decode(bytes.subarray(m0, m0 + metaLength)));
    const b0 = m0 + metaLength + 4;
    out.push({ kind, meta, body: bytes.slice(b0, b0 + bodyLength) });
    at = b0 + bodyLength + 4;
  }
}

function u32(x: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, x >>> 0, true);
  return b;
}

/** Options of {@link joinCvp}: raw metadata text per record index, index entries to change, the footer's target. */
export interface JoinOptions {
  rawMeta?: Record<number, string>;
  indexEntry?: { at: number; value: number };
  footerOffset?: number;
  /** Bytes appended after the footer. */
  trailing?: Uint8Array;
}

/** Joins records into a `.cvp` with correct CRCs, index and footer (unless `options` says otherwise). */
export function joinCvp(records: EditRecord[], options: JoinOptions = {}): Uint8Array {
  const parts: Uint8Array[] = [encodePreamble()];
  let pos = PREAMBLE_SIZE;
  const offsets: number[] = [];
  const put = (kind: number, meta: Uint8Array, body: Uint8Array) => {
    offsets.push(pos);
    for (const p of [encodeFrame(kind, meta.length, body.length), meta, u32(crc32(meta)), body, u32(crc32(body))]) {
      parts.push(p);
      pos += p.length;
    }
  };
  records.forEach((r, i) => {
    const text = options.rawMeta?.[i] ?? JSON.stringify(r.meta);
    put(r.kind, new TextEncoder().encode(text), r.body);
  });
  const index = new Uint8Array(8 * offsets.length);
  const dv = new DataView(index.buffer);
  offsets.forEach((o, i) => dv.setBigUint64(8 * i, BigInt(o), true));
  if (options.indexEntry) dv.setBigUint64(8 * options.indexEntry.at, BigInt(options.indexEntry.value), true);
  const indexAt = pos;
  put(KIND.index, new TextEncoder().encode(JSON.stringify({ records: records.length })), index);
  parts.push(encodeFooter(options.footerOffset ?? indexAt));
  if (options.trailing) parts.push(options.trailing);
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
