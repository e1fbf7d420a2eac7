/**
 * A minimal ustar reader and writer, for models piped through stdin/stdout as one tar stream (TF.js: shards first,
 * `model.json` last; Caffe: `model.caffemodel`, then `deploy.prototxt`). Errors are of the class the caller names
 * (its format's), {@link ConvpressError} by default. Only regular files matter; directories, links and pax/GNU long-name records are understood
 * as far as naming goes and otherwise skipped.
 *
 * Header block (512 bytes, all numbers ASCII octal, NUL or space terminated):
 * name 0..100, mode 100..108, uid 108..116, gid 116..124, size 124..136, mtime 136..148, chksum 148..156,
 * typeflag 156, linkname 157..257, magic 257..263 ("ustar\0"), version 263..265 ("00"), uname, gname, devmajor,
 * devminor, prefix 345..500. Data follows, padded to a multiple of 512. Two zero blocks end the archive.
 *
 * @module
 */
import type { ByteReader } from "./byte_reader.ts";
import type { ByteSink } from "./byte_sink.ts";
import { ConvpressError, type ErrorClass } from "../errors.ts";

const BLOCK = 512;
const dec = new TextDecoder();
const enc = new TextEncoder();

/** One regular file of a tar stream. `body` must be consumed (or skipped) before the next entry is pulled. */
export interface TarEntry {
  name: string;
  size: number;
  /** Absolute offset of the data in the stream. */
  offset: number;
  /** Yields the data as borrowed chunks. */
  body(): AsyncGenerator<Uint8Array>;
}

function field(h: Uint8Array, start: number, len: number): string {
  let end = start;
  while (end < start + len && h[end] !== 0) end++;
  return dec.decode(h.subarray(start, end));
}

function octal(h: Uint8Array, start: number, len: number, what: string, at: number, Err: ErrorClass): number {
  const s = field(h, start, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) {
    throw new Err("bad_format", `Invalid tar ${what} '${s}' at byte ${at + start}`, { offset: at + start });
  }
  return parseInt(s, 8);
}

/** True when `head` starts with a ustar header. */
export function isTar(head: Uint8Array): boolean {
  return head.length >= 263 && dec.decode(head.subarray(257, 262)) === "ustar";
}

/** Reads the regular files of a tar stream, strictly in order. */
export async function* readTar(r: ByteReader, Err: ErrorClass = ConvpressError): AsyncGenerator<TarEntry> {
  let longName: string | undefined;
  while (true) {
    if (await r.atEnd()) return;
    const at = r.position;
    await r.need(BLOCK, "tar header");
    const h = r.window.slice(r.windowStart, r.windowStart + BLOCK);
    r.advance(BLOCK);
    if (h.every((b) => b === 0)) return;
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
    const stored = octal(h, 148, 8, "checksum", at, Err);
    if (stored !== sum) {
      throw new Err(
        "checksum",
        `Tar header checksum mismatch at byte ${at} (stored ${stored}, computed ${sum})`,
        {
          offset: at,
        },
      );
    }
    const size = octal(h, 124, 12, "size", at, Err);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = field(h, 345, 155);
    let name = longName ?? (prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100));
    longName = undefined;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L" || type === "x") {
      // GNU long name or pax extended header: small text records naming the next entry.
      if (size > 1 << 20) {
        throw new Err("bad_format", `Tar extended header of ${size} bytes at byte ${at}`, { offset: at });
      }
      const text = dec.decode(await r.bytes(size, "tar extended header"));
      await r.skip(padded - size, "tar padding");
      if (type === "L") longName = text.replace(/\0+$/, "");
      else {
        const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text);
        if (m) longName = m[1];
      }
      continue;
    }
    if (type !== "0" && type !== "7") {
      await r.skip(padded, "tar entry");
      continue;
    }
    name = name.replace(/^(\.\/)+/, "");
    let consumed = false;
    const offset = r.position;
    yield {
      name,
      size,
      offset,
      async *body() {
        consumed = true;
        yield* r.chunks(size, `tar entry '${name}'`);
      },
    };
    if (!consumed) await r.skip(size, `tar entry '${name}'`);
    await r.skip(padded - size, "tar padding");
  }
}

/** Builds a ustar header for a regular file (mode 644, owner 0, mtime 0, so equal inputs give equal archives). */
export function tarHeader(name: string, size: number, Err: ErrorClass = ConvpressError): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (s: string, start: number, len: number) => h.set(enc.encode(s).subarray(0, len), start);
  const nameBytes = enc.encode(name);
  if (nameBytes.length > 100) throw new Err("usage", `Tar entry name '${name}' is longer than 100 bytes`);
  h.set(nameBytes, 0);
  put("0000644\0", 100, 8);
  put("0000000\0", 108, 8);
  put("0000000\0", 116, 8);
  put(size.toString(8).padStart(11, "0") + "\0", 124, 12);
  put("00000000000\0", 136, 12);
  put("        ", 148, 8);
  h[156] = 48; // '0': regular file
  put("ustar\0", 257, 6);
  put("00", 263, 2);
  let sum = 0;
  for (const b of h) sum += b;
  put(sum.toString(8).padStart(6, "0") + "\0 ", 148, 8);
  return h;
}

/** Writes one tar entry: header, data from `chunks` (exactly `size` bytes), padding. */
export async function writeTarEntry(
  sink: ByteSink,
  name: string,
  size: number,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  Err: ErrorClass = ConvpressError,
): Promise<void> {
  await sink.write(tarHeader(name, size, Err));
  let n = 0;
  for await (const c of chunks) {
    n += c.length;
    await sink.write(c);
  }
  if (n !== size) throw new Error(`Tar entry '${name}' got ${n} of ${size} bytes`);
  const pad = (BLOCK - (size % BLOCK)) % BLOCK;
  if (pad) await sink.write(new Uint8Array(pad));
}

/** Writes the two zero blocks that end an archive. */
export async function endTar(sink: ByteSink): Promise<void> {
  await sink.write(new Uint8Array(2 * BLOCK));
}
