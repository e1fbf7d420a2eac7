/**
 * Sequential record reading over a {@link ByteReader} (spec.md section 1): frame header (CRC checked before its
 * lengths are trusted), metadata (CRC checked before parsing), and the body, read whole, in copied blocks, or skipped
 * on a seekable input with its CRC kept for a later check. Every error names the record number, kind, name and
 * byte offset.
 *
 * @module
 */
import type { ByteInput, ByteReader } from "../../src/bytes/byte_reader.ts";
import { ConvpressError, CvpError, type ErrorCode } from "../../src/errors.ts";
import { crc32, crc32Update } from "./crc32.ts";
import { decodeFrame, FRAME_SIZE, KIND_NAME, MAGIC, PREAMBLE_SIZE, VERSION } from "./frame.ts";
import { decodeMeta } from "./json.ts";

/** A record whose frame and metadata have been read. */
export interface RecordHead {
  /** Record number, 0 for the header record. */
  no: number;
  kind: number;
  /** Byte offset of the frame. */
  offset: number;
  meta: Record<string, unknown>;
  bodyLength: number;
  /** Byte offset of the body. */
  bodyOffset: number;
}

/** Where a tensor body's bytes are: in memory (CRC checked) or in a seekable file (CRC checked when read). */
export type BodySource =
  | { kind: "memory"; blocks: Uint8Array[] }
  | { kind: "file"; input: ByteInput; offset: number; length: number; crc: number; describe: string };

/** Reads records in order. */
export class RecordReader {
  readonly r: ByteReader;
  readonly file: string;
  no = 0;
  readonly offsets: number[] = [];
  /** Called with every record's frame and metadata as it is read (`inspect` builds its table from these). */
  onRecord?: (head: RecordHead) => void;

  constructor(r: ByteReader, file: string, onRecord?: (head: RecordHead) => void) {
    this.r = r;
    this.file = file;
    this.onRecord = onRecord;
  }

  /** An error located at a record. */
  error(
    code: ErrorCode,
    head: { no: number; kind?: number; offset: number; meta?: Record<string, unknown> },
    msg: string,
  ) {
    return new CvpError(code, `${describe(head)}: ${msg}`, {
      file: this.file,
      offset: head.offset,
      layer: typeof head.meta?.name === "string" ? head.meta.name : undefined,
    });
  }

  /** Re-throws end-of-input and other reader errors located at a record. */
  wrap(e: unknown, head: { no: number; kind?: number; offset: number; meta?: Record<string, unknown> }): never {
    if (e instanceof CvpError) throw e;
    if (e instanceof ConvpressError) {
      throw new CvpError(e.code, `${describe(head)}: ${e.message}`, {
        file: this.file,
        offset: e.offset ?? head.offset,
        layer: typeof head.meta?.name === "string" ? head.meta.name : undefined,
        cause: e,
      });
    }
    throw e;
  }

  /** Reads and checks the preamble. */
  async preamble(): Promise<void> {
    const r = this.r;
    const have = await r.fill(PREAMBLE_SIZE);
    const w = r.window.subarray(r.windowStart, r.windowStart + Math.min(have, PREAMBLE_SIZE));
    for (let i = 0; i < Math.min(8, w.length); i++) {
      if (w[i] !== MAGIC[i]) {
        throw new CvpError("bad_format", `Not a .cvp file: bad magic at byte ${i}`, { file: this.file, offset: i });
      }
    }
    if (have < PREAMBLE_SIZE) {
      throw new CvpError("unexpected_eof", `Unexpected end of input in the .cvp preamble at byte ${have}`, {
        file: this.file,
        offset: have,
      });
    }
    const version = w[8] | (w[9] << 8);
    if (version !== VERSION) {
      throw new CvpError("unsupported", `Unsupported .cvp version ${version} (this reader knows ${VERSION})`, {
        file: this.file,
        offset: 8,
      });
    }
    if (w[10] | w[11]) {
      throw new CvpError("bad_format", "Reserved preamble bytes are not zero at byte 10", {
        file: this.file,
        offset: 10,
      });
    }
    r.advance(PREAMBLE_SIZE);
  }

  /** Reads the next record's frame and metadata. */
  async next(): Promise<RecordHead> {
    const r = this.r;
    const head = { no: this.no, offset: r.position } as RecordHead;
    try {
      await r.need(FRAME_SIZE, "a record frame");
      const f = decodeFrame(r.window.subarray(r.windowStart, r.windowStart + FRAME_SIZE));
      if ("error" in f) throw this.error(f.checksum ? "checksum" : "bad_format", head, f.error);
      r.advance(FRAME_SIZE);
      head.kind = f.kind;
      head.bodyLength = f.bodyLength;
      const m = await r.bytes(f.metaLength, "record metadata");
      await r.need(4, "a metadata CRC");
      const crc = readU32(r.window, r.windowStart);
      r.advance(4);
      if (crc !== crc32(m)) throw this.error("checksum", head, "metadata CRC mismatch");
      try {
        head.meta = decodeMeta(m);
      } catch (e) {
        throw this.error("bad_format", head, `bad metadata JSON: ${(e as Error).message}`);
      }
      head.bodyOffset = r.position;
      r.checkLength(head.bodyLength + 4, "a record body");
    } catch (e) {
      this.wrap(e, head);
    }
    this.offsets.push(head.offset);
    this.no++;
    this.onRecord?.(head);
    return head;
  }

  /** Reads a whole body (small ones, or everything on a stream) and checks its CRC. */
  async body(head: RecordHead): Promise<Uint8Array[]> {
    const r = this.r;
    try {
      const blocks: Uint8Array[] = [];
      let crc = 0;
      if (head.bodyLength <= 1 << 20) {
        const b = await r.bytes(head.bodyLength, "a record body");
        crc = crc32(b);
        blocks.push(b);
      } else {
        for await (const c of r.chunks(head.bodyLength, "a record body")) {
          crc = crc32Update(crc, c);
          blocks.push(c.slice());
        }
      }
      await r.need(4, "a body CRC");
      const want = readU32(r.window, r.windowStart);
      r.advance(4);
      if (want !== crc) throw this.error("checksum", head, "body CRC mismatch");
      return blocks;
    } catch (e) {
      this.wrap(e, head);
    }
  }

  /** Skips a body on a seekable input and returns where it is; its CRC is checked when it is read. */
  async skipBody(head: RecordHead): Promise<BodySource> {
    const r = this.r;
    try {
      await r.skip(head.bodyLength, "a record body");
      await r.need(4, "a body CRC");
      const crc = readU32(r.window, r.windowStart);
      r.advance(4);
      return {
        kind: "file",
        input: r.input,
        offset: head.bodyOffset,
        length: head.bodyLength,
        crc,
        describe: describe(head),
      };
    } catch (e) {
      this.wrap(e, head);
    }
  }
}

/** "Record 7 (tensor 'conv1.weight') at byte 1234". */
export function describe(head: { no: number; kind?: number; offset: number; meta?: Record<string, unknown> }): string {
  const kind = head.kind === undefined ? "" : KIND_NAME[head.kind] ?? "record";
  const name = typeof head.meta?.name === "string" ? ` '${head.meta.name}'` : "";
  return `Record ${head.no}${kind ? ` (${kind}${name})` : ""} at byte ${head.offset}`;
}

/** Yields a body's bytes; a file body's CRC is checked after its last chunk. */
export async function* bodyChunks(src: BodySource, file: string): AsyncGenerator<Uint8Array> {
  if (src.kind === "memory") {
    yield* src.blocks;
    return;
  }
  const buf = new Uint8Array(Math.min(4 << 20, Math.max(1, src.length)));
  let pos = 0, crc = 0;
  while (pos < src.length) {
    const want = Math.min(buf.length, src.length - pos);
    let got = 0;
    while (got < want) {
      const n = await src.input.readAt!(buf.subarray(got, want), src.offset + pos + got);
      if (n === 0) {
        throw new CvpError(
          "unexpected_eof",
          `${src.describe}: unexpected end of input at byte ${src.offset + pos + got}`,
          {
            file,
            offset: src.offset + pos + got,
          },
        );
      }
      got += n;
    }
    crc = crc32Update(crc, buf.subarray(0, got));
    pos += got;
    yield buf.subarray(0, got);
  }
  if (crc !== src.crc) {
    throw new CvpError("checksum", `${src.describe}: body CRC mismatch`, { file, offset: src.offset });
  }
}

/** Gathers a body into one array. */
export async function bodyBytes(src: BodySource, file: string): Promise<Uint8Array> {
  if (src.kind === "memory" && src.blocks.length === 1) return src.blocks[0];
  const out = new Uint8Array(src.kind === "memory" ? src.blocks.reduce((s, b) => s + b.length, 0) : src.length);
  let off = 0;
  for await (const c of bodyChunks(src, file)) {
    out.set(c, off);
    off += c.length;
  }
  return out;
}

/** A little-endian u32 at `at`. */
export function readU32(b: Uint8Array, at: number): number {
  return (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24)) >>> 0;
}
