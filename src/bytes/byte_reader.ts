/**
 * Exact-count reads from a byte input: a seekable file, stdin, or any `ReadableStream<Uint8Array>`.
 *
 * Small reads (tags, varints, small messages) go through one reused window buffer. Large reads ({@link
 * ByteReader.chunks}) bypass it and read straight into a reused chunk buffer, so a 411 MB packed field streams in
 * a few MiB of memory. Every read is bounds-checked: running out of input raises `unexpected_eof` with the byte
 * offset and the number of bytes still needed, and no allocation is ever sized by a length taken from the input
 * beyond what the input really delivers.
 *
 * @module
 */
import { type ConvpressError, type ErrorCode, WireError } from "../errors.ts";

/** A source of bytes. `readAt` and `size` are present only when the source is seekable. */
export interface ByteInput {
  /** Reads up to `buf.length` bytes at the current position; resolves 0 at the end. */
  read(buf: Uint8Array): Promise<number>;
  /** Reads up to `buf.length` bytes at absolute `position` (seekable sources only). */
  readAt?(buf: Uint8Array, position: number): Promise<number>;
  /** Total size in bytes, when known. */
  readonly size?: number;
  /** The file's path, for a file input (what an in-kernel copy opens; ./kernel_copy.ts). */
  readonly path?: string;
  /** Releases the underlying resource. */
  close(): void;
}

/** Options for {@link ByteReader}. */
export interface ByteReaderOptions {
  /** Size of the window buffer used for small reads. At least 64 KiB. */
  windowSize?: number;
  /** Size of the reused buffer {@link ByteReader.chunks} reads into. */
  chunkSize?: number;
  /** Name used in error messages (`-` for stdin). */
  name?: string;
}

const DEFAULTS: Readonly<Required<ByteReaderOptions>> = Object.freeze({
  windowSize: 1 << 20,
  chunkSize: 4 << 20,
  name: "input",
});

/** Pull-based reader with exact-N semantics over a {@link ByteInput}. */
export class ByteReader {
  readonly input: ByteInput;
  readonly name: string;
  #win: Uint8Array;
  #start = 0; // first unread byte in #win
  #end = 0; // one past the last valid byte in #win
  #winPos = 0; // absolute position of #win[0]
  #eof = false;
  #chunkBuf: Uint8Array | undefined;
  readonly #chunkSize: number;

  constructor(input: ByteInput, options: ByteReaderOptions = {}) {
    const o = { ...DEFAULTS, ...options };
    this.input = input;
    this.name = o.name;
    this.#win = new Uint8Array(Math.max(1 << 16, o.windowSize));
    this.#chunkSize = o.chunkSize;
  }

  /** Absolute position of the next unread byte. */
  get position(): number {
    return this.#winPos + this.#start;
  }

  /** Total size of the input when known (seekable files). */
  get size(): number | undefined {
    return this.input.size;
  }

  /** True when the input is seekable. */
  get seekable(): boolean {
    return this.input.readAt !== undefined;
  }

  /** Bytes buffered and not yet consumed. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** The window, for sync fast paths: valid bytes are `window[start..end)`. */
  get window(): Uint8Array {
    return this.#win;
  }
  get windowStart(): number {
    return this.#start;
  }
  get windowEnd(): number {
    return this.#end;
  }

  /** Consumes `n` bytes already buffered (after a sync fast path read them). */
  advance(n: number): void {
    this.#start += n;
  }

  /**
   * Buffers at least `n` bytes (n ≤ window size) unless the input ends first.
   * Returns the number of bytes buffered afterwards.
   */
  async fill(n: number): Promise<number> {
    if (this.#end - this.#start >= n || this.#eof) return this.#end - this.#start;
    if (n > this.#win.length) throw new Error(`fill(${n}) exceeds the window`);
    if (this.#start > 0) {
      this.#win.copyWithin(0, this.#start, this.#end);
      this.#winPos += this.#start;
      this.#end -= this.#start;
      this.#start = 0;
    }
    while (this.#end < n && !this.#eof) {
      const got = await this.#readRaw(this.#win.subarray(this.#end), this.#winPos + this.#end);
      if (got === 0) this.#eof = true;
      this.#end += got;
    }
    return this.#end - this.#start;
  }

  /** True when every byte has been consumed. */
  async atEnd(): Promise<boolean> {
    return (await this.fill(1)) === 0;
  }

  /** Throws `unexpected_eof` if fewer than `n` bytes remain buffered after a fill. */
  async need(n: number, what = "data"): Promise<void> {
    const have = await this.fill(n);
    if (have < n) throw this.eofError(n - have, what);
  }

  /** An `unexpected_eof` error at the current position. */
  eofError(missing: number, what = "data"): ConvpressError {
    const at = this.#winPos + this.#end;
    return new WireError(
      "unexpected_eof",
      `Unexpected end of input in ${what} at byte ${at} (needed ${missing} more bytes)`,
      { file: this.name, offset: at },
    );
  }

  /** An error of the given code located at `offset` (default: current position). */
  error(code: ErrorCode, message: string, offset = this.position): ConvpressError {
    return new WireError(code, message, { file: this.name, offset });
  }

  /** Reads one byte. */
  async u8(): Promise<number> {
    await this.need(1);
    return this.#win[this.#start++];
  }

  /**
   * Reads `n` bytes into a new array the caller owns. The input is checked to really hold `n` bytes before more
   * than one window's worth is allocated: on a seekable input against its size, on a stream by reading it.
   */
  async bytes(n: number, what = "data"): Promise<Uint8Array> {
    this.checkLength(n, what);
    if (n <= this.#win.length) {
      await this.need(n, what);
      const out = this.#win.slice(this.#start, this.#start + n);
      this.#start += n;
      return out;
    }
    if (this.size !== undefined) {
      const out = new Uint8Array(n);
      let off = 0;
      for await (const c of this.chunks(n, what)) {
        out.set(c, off);
        off += c.length;
      }
      return out;
    }
    return concatBytes(await this.parts(n, what), n);
  }

  /**
   * Reads `n` bytes as a list of owned chunks, allocating only as the bytes arrive: the way to hold a large
   * field from a stream whose length prefix cannot be checked against a file size.
   */
  async parts(n: number, what = "data"): Promise<Uint8Array[]> {
    const parts: Uint8Array[] = [];
    for await (const c of this.chunks(n, what)) parts.push(c.slice());
    return parts;
  }

  /** Throws when `n` is negative or, on a sized input, reaches past its end. */
  checkLength(n: number, what = "data"): void {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw this.error("bad_wire", `Invalid length ${n} for ${what} at byte ${this.position}`);
    }
    if (this.size !== undefined && this.position + n > this.size) {
      throw new WireError(
        "unexpected_eof",
        `Length ${n} of ${what} at byte ${this.position} runs past the end of the input (${this.size} bytes)`,
        { file: this.name, offset: this.position },
      );
    }
  }

  /**
   * Yields exactly `n` bytes as chunks. Chunks are borrowed: each is valid only until the next one is pulled, so
   * copy what you keep. Throws `unexpected_eof` if the input ends first.
   */
  async *chunks(n: number, what = "data"): AsyncGenerator<Uint8Array> {
    this.checkLength(n, what);
    let left = n;
    const fromWin = Math.min(left, this.#end - this.#start);
    if (fromWin > 0) {
      const c = this.#win.subarray(this.#start, this.#start + fromWin);
      this.#start += fromWin;
      left -= fromWin;
      yield c;
    }
    if (left === 0) return;
    if (left < this.#win.length / 2) {
      // Small remainder: go through the window so the bytes after it are buffered too.
      while (left > 0) {
        const have = await this.fill(Math.min(left, this.#win.length));
        if (have === 0) throw this.eofError(left, what);
        const take = Math.min(have, left);
        const c = this.#win.subarray(this.#start, this.#start + take);
        this.#start += take;
        left -= take;
        yield c;
      }
      return;
    }
    // Large remainder: the window is empty here; read straight into the reused chunk buffer.
    this.#chunkBuf ??= new Uint8Array(this.#chunkSize);
    let pos = this.position;
    this.#winPos = pos;
    this.#start = this.#end = 0;
    while (left > 0) {
      const want = Math.min(left, this.#chunkBuf.length);
      let got = 0;
      while (got < want) {
        const r = await this.#readRaw(this.#chunkBuf.subarray(got, want), pos + got);
        if (r === 0) {
          this.#eof = true;
          this.#winPos = pos + got;
          throw this.eofError(left - got, what);
        }
        got += r;
      }
      pos += got;
      left -= got;
      this.#winPos = pos;
      yield this.#chunkBuf.subarray(0, got);
    }
  }

  /** Skips `n` bytes: a seek on seekable inputs, a read on streams. */
  async skip(n: number, what = "data"): Promise<void> {
    this.checkLength(n, what);
    const fromWin = Math.min(n, this.#end - this.#start);
    this.#start += fromWin;
    if (fromWin === n) return;
    if (this.seekable) {
      this.seek(this.position + n - fromWin);
      return;
    }
    // deno-lint-ignore no-empty
    for await (const _ of this.chunks(n - fromWin, what)) {}
  }

  /** Moves to absolute `position` (seekable inputs only). Cheap when the target is inside the window. */
  seek(position: number): void {
    if (!this.seekable) throw new Error("seek on a non-seekable input");
    if (position >= this.#winPos && position <= this.#winPos + this.#end) {
      this.#start = position - this.#winPos;
      return;
    }
    this.#winPos = position;
    this.#start = this.#end = 0;
    this.#eof = false;
  }

  /** Closes the input. */
  close(): void {
    this.input.close();
  }

  async #readRaw(buf: Uint8Array, position: number): Promise<number> {
    if (buf.length === 0) return 0;
    if (this.input.readAt) {
      if (this.size !== undefined && position >= this.size) return 0;
      return await this.input.readAt(buf, position);
    }
    return await this.input.read(buf);
  }
}

/** Concatenates `parts` into one array of `total` bytes. */
export function concatBytes(parts: Uint8Array[], total = parts.reduce((s, p) => s + p.length, 0)): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
