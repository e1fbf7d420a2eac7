/**
 * A synchronous protobuf wire writer into a growable buffer, for small messages and for the headers of large
 * records whose payload is streamed separately. `fork()`/`join()` write a length-delimited part whose length is
 * known only once it is complete.
 *
 * @module
 */
import { encodeVarint } from "./varint.ts";

/** Encodes protobuf wire data. Method names follow protobuf types. */
export class WireWriter {
  #buf: Uint8Array;
  #pos = 0;
  #view: DataView;
  #forks: number[] = [];

  constructor(initial = 256) {
    this.#buf = new Uint8Array(initial);
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#pos;
  }

  #ensure(n: number): void {
    if (this.#pos + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#pos + n) size *= 2;
    const b = new Uint8Array(size);
    b.set(this.#buf.subarray(0, this.#pos));
    this.#buf = b;
    this.#view = new DataView(b.buffer);
  }

  /** Writes a field key. */
  tag(field: number, wireType: number): this {
    return this.uint(field * 8 + wireType);
  }

  /** An unsigned varint (uint32/uint64/enum/bool and lengths). */
  uint(v: number): this {
    this.#ensure(10);
    this.#pos = encodeVarint(this.#buf, this.#pos, v);
    return this;
  }

  /** A signed int32/int64 varint; negative values take 10 bytes. */
  int(v: number): this {
    return this.uint(v);
  }

  /** A varint padded to exactly `width` bytes; returns its offset so it can be patched. */
  fixedWidthUint(v: number, width: number): number {
    this.#ensure(width);
    const at = this.#pos;
    this.#pos = encodeVarint(this.#buf, this.#pos, v, width);
    return at;
  }

  bool(v: boolean): this {
    return this.uint(v ? 1 : 0);
  }

  float(v: number): this {
    this.#ensure(4);
    this.#view.setFloat32(this.#pos, v, true);
    this.#pos += 4;
    return this;
  }

  double(v: number): this {
    this.#ensure(8);
    this.#view.setFloat64(this.#pos, v, true);
    this.#pos += 8;
    return this;
  }

  fixed32(v: number): this {
    this.#ensure(4);
    this.#view.setUint32(this.#pos, v, true);
    this.#pos += 4;
    return this;
  }

  /** Raw bytes with no prefix. */
  raw(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(b: Uint8Array): this {
    return this.uint(b.length).raw(b);
  }

  string(s: string): this {
    return this.bytes(encoder.encode(s));
  }

  /** Starts a length-delimited part. */
  fork(): this {
    this.#forks.push(this.#pos);
    return this;
  }

  /** Ends the part started by the matching {@link fork} and writes its length in front of it. */
  join(): this {
    const start = this.#forks.pop();
    if (start === undefined) throw new Error("join() without fork()");
    const body = this.#buf.slice(start, this.#pos);
    this.#pos = start;
    return this.bytes(body);
  }

  /** The bytes written (a copy), and resets the writer. */
  finish(): Uint8Array {
    if (this.#forks.length) throw new Error("finish() with an open fork()");
    const out = this.#buf.slice(0, this.#pos);
    this.#pos = 0;
    return out;
  }
}

const encoder = new TextEncoder();
