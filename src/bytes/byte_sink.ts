/**
 * Byte outputs for writers. Small writes are gathered in a buffer; large chunks go straight through. A file output
 * is written to a temporary name beside the target and renamed only by {@link ByteSink.close}; {@link
 * ByteSink.abort} removes it, so a failed run never leaves a partial file behind.
 *
 * @module
 */

import { ConvpressError } from "../errors.ts";
import { kernelCopy, kernelCopyAvailable } from "./kernel_copy.ts";
import {
  guardCreation,
  removeTemporary,
  trackTemporary,
  trackUncommittedOutput,
  untrackTemporary,
} from "./temp_files.ts";

/** A byte output. `patch` exists only on seekable outputs. */
export interface ByteSink {
  /** Bytes written so far. */
  readonly position: number;
  /** Appends bytes. The chunk may be reused by the caller as soon as the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Overwrites bytes already written at absolute `offset` (seekable outputs only). */
  patch?(offset: number, bytes: Uint8Array): Promise<void>;
  /**
   * Appends `length` bytes at `offset` of file `path` by an in-kernel copy (file outputs only). Resolves false,
   * with nothing appended, when the kernel cannot copy them: the caller then writes them itself.
   */
  copyRange?(path: string, offset: number, length: number): Promise<boolean>;
  /** Flushes and finishes the output (renames a file output into place). */
  close(): Promise<void>;
  /** Discards the output (removes a file output's temporary file). */
  abort(): Promise<void>;
}

const BUFFER = 1 << 20;

abstract class BufferedSink implements ByteSink {
  position = 0;
  #buf = new Uint8Array(BUFFER);
  #used = 0;

  protected abstract writeRaw(chunk: Uint8Array): Promise<void>;
  abstract close(): Promise<void>;
  abstract abort(): Promise<void>;

  async write(chunk: Uint8Array): Promise<void> {
    this.position += chunk.length;
    if (this.#used + chunk.length <= this.#buf.length) {
      this.#buf.set(chunk, this.#used);
      this.#used += chunk.length;
      return;
    }
    await this.flush();
    if (chunk.length >= this.#buf.length / 2) await this.writeRaw(chunk);
    else {
      this.#buf.set(chunk, 0);
      this.#used = chunk.length;
    }
  }

  protected async flush(): Promise<void> {
    if (this.#used > 0) {
      await this.writeRaw(this.#buf.subarray(0, this.#used));
      this.#used = 0;
    }
  }
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += await w.write(chunk.subarray(off));
}

class FileSink extends BufferedSink {
  #file: Deno.FsFile;
  #tmp: string;
  #path: string;
  #done = false;

  constructor(file: Deno.FsFile, tmp: string, path: string) {
    super();
    this.#file = file;
    this.#tmp = tmp;
    this.#path = path;
  }

  protected writeRaw(chunk: Uint8Array): Promise<void> {
    // Synchronous, as the file inputs' reads are (./inputs.ts): into the page cache, without a thread hop per chunk.
    try {
      let off = 0;
      while (off < chunk.length) off += this.#file.writeSync(chunk.subarray(off));
    } catch (e) {
      return Promise.reject(outputError(this.#path, e));
    }
    return Promise.resolve();
  }

  async copyRange(path: string, offset: number, length: number): Promise<boolean> {
    if (!kernelCopyAvailable()) return false;
    await this.flush();
    const at = this.position;
    const n = kernelCopy(path, offset, this.#tmp, at, length);
    try {
      // Past the copied bytes; after a partial copy, back where it started (the caller's writes cover it again).
      this.#file.seekSync(n === length ? at + length : at, Deno.SeekMode.Start);
    } catch (e) {
      throw outputError(this.#path, e);
    }
    if (n !== length) return false;
    this.position += length;
    return true;
  }

  async patch(offset: number, bytes: Uint8Array): Promise<void> {
    await this.flush();
    try {
      await this.#file.seek(offset, Deno.SeekMode.Start);
      await writeAll(this.#file, bytes);
      await this.#file.seek(0, Deno.SeekMode.End);
    } catch (e) {
      throw outputError(this.#path, e);
    }
  }

  async close(): Promise<void> {
    if (this.#done) return;
    await this.flush();
    try {
      this.#file.close();
    } catch (e) {
      throw outputError(this.#path, e);
    }
    this.#done = true;
    // Until the whole conversion succeeds the renamed file is an uncommitted output: a later failure (the
    // prototxt of a caffemodel, a report) or a signal removes it.
    trackUncommittedOutput(this.#path);
    try {
      await guardCreation(async () => {
        await replaceQuietly(this.#path);
        await Deno.rename(this.#tmp, this.#path);
      });
    } catch (e) {
      untrackTemporary(this.#path);
      throw outputError(this.#path, e);
    }
    untrackTemporary(this.#tmp);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#file.close();
    } catch { /* already closed */ }
    await removeTemporary(this.#tmp);
  }
}

/**
 * Removes an existing regular file at `path` just before a finished output is renamed over it. The result is the
 * same as the rename alone, but ext4 (auto_da_alloc) treats a rename over an existing file as a request to write
 * the new file's data out at once: for a 553 MB output the rename took 0.1-0.35 s of the whole conversion's 0.8 s.
 */
async function replaceQuietly(path: string): Promise<void> {
  try {
    if ((await Deno.lstat(path)).isFile) await Deno.remove(path);
  } catch {
    // Not there, or not removable: the rename then says what is wrong.
  }
}

/** A one-line error for a failed write to `path`: its folder is missing, read-only, full, or `path` is a folder. */
export function outputError(path: string, e: unknown): ConvpressError {
  if (e instanceof ConvpressError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  let why = msg;
  if (e instanceof Deno.errors.NotFound) why = "its folder does not exist";
  else if (e instanceof Deno.errors.IsADirectory || /is a directory/i.test(msg)) why = "it is a folder";
  else if (e instanceof Deno.errors.PermissionDenied || /read-only file system/i.test(msg)) {
    why = /read-only/i.test(msg) ? "the file system is read-only" : "permission denied";
  } else if (/no space left|ENOSPC|os error 28/i.test(msg)) why = "no space left on the device";
  else if (/quota/i.test(msg)) why = "disk quota exceeded";
  return new ConvpressError("io", `Cannot write '${path}': ${why}`, { file: path, cause: e });
}

/**
 * `outputError` for file-system failures met while writing `path` (a shard, a spool file); anything else (a bug)
 * is returned unchanged, to keep its stack.
 */
export function asOutputError(path: string, e: unknown): unknown {
  if (e instanceof ConvpressError) return e;
  const fsError = Object.values(Deno.errors).some((C) => e instanceof C) || /\(os error \d+\)/.test(String(e));
  return fsError ? outputError(path, e) : e;
}

/** Opens a file output at `path`, written under a temporary name until closed. */
export async function openFileSink(path: string): Promise<ByteSink> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
  const base = path.slice(dir.length);
  try {
    const info = await Deno.stat(path);
    if (info.isDirectory) throw new Deno.errors.IsADirectory(`${path} is a directory`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw outputError(path, e);
  }
  const tmp = `${dir}.${base}.${Deno.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  trackTemporary(tmp);
  let file: Deno.FsFile;
  try {
    file = await guardCreation(() => Deno.open(tmp, { write: true, create: true, truncate: true }));
  } catch (e) {
    untrackTemporary(tmp);
    throw outputError(path, e);
  }
  return new FileSink(file, tmp, path);
}

class StdoutSink extends BufferedSink {
  protected async writeRaw(chunk: Uint8Array): Promise<void> {
    try {
      await writeAll(Deno.stdout, chunk);
    } catch (e) {
      if (e instanceof Error && e.name === "BrokenPipe") throw e;
      throw outputError("-", e);
    }
  }
  async close(): Promise<void> {
    await this.flush();
  }
  async abort(): Promise<void> {
    await this.flush().catch(() => {});
  }
}

/** Standard output (not seekable). */
export function stdoutSink(): ByteSink {
  return new StdoutSink();
}

/** An in-memory output, seekable. `bytes()` returns what was written. */
export class MemorySink implements ByteSink {
  position = 0;
  #parts: Uint8Array[] = [];
  #flat: Uint8Array | undefined;

  write(chunk: Uint8Array): Promise<void> {
    this.#parts.push(chunk.slice());
    this.#flat = undefined;
    this.position += chunk.length;
    return Promise.resolve();
  }

  patch(offset: number, bytes: Uint8Array): Promise<void> {
    const all = this.bytes();
    all.set(bytes, offset);
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  abort(): Promise<void> {
    return Promise.resolve();
  }

  /** Everything written so far, as one array. */
  bytes(): Uint8Array {
    if (!this.#flat) {
      const out = new Uint8Array(this.position);
      let off = 0;
      for (const p of this.#parts) {
        out.set(p, off);
        off += p.length;
      }
      this.#flat = out;
      this.#parts = [out];
    }
    return this.#flat;
  }
}

/** A non-seekable in-memory output, to test the paths writers take for stdout. */
export function memoryStreamSink(): MemorySink & { patch: undefined } {
  const sink = new MemorySink() as MemorySink & { patch: undefined };
  Object.defineProperty(sink, "patch", { value: undefined });
  return sink;
}
