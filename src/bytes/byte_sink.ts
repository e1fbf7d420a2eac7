/**
 * Byte outputs for writers. Small writes are gathered in a buffer; large chunks go straight through. A file output
 * is written to a temporary name beside the target and renamed only by {@link ByteSink.close}; {@link
 * ByteSink.abort} removes it, so a failed run never leaves a partial file behind.
 *
 * @module
 */

/** A byte output. `patch` exists only on seekable outputs. */
export interface ByteSink {
  /** Bytes written so far. */
  readonly position: number;
  /** Appends bytes. The chunk may be reused by the caller as soon as the promise resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Overwrites bytes already written at absolute `offset` (seekable outputs only). */
  patch?(offset: number, bytes: Uint8Array): Promise<void>;
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
    return writeAll(this.#file, chunk);
  }

  async patch(offset: number, bytes: Uint8Array): Promise<void> {
    await this.flush();
    await this.#file.seek(offset, Deno.SeekMode.Start);
    await writeAll(this.#file, bytes);
    await this.#file.seek(0, Deno.SeekMode.End);
  }

  async close(): Promise<void> {
    if (this.#done) return;
    await this.flush();
    this.#file.close();
    this.#done = true;
    await Deno.rename(this.#tmp, this.#path);
  }

  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#file.close();
    } catch { /* already closed */ }
    await Deno.remove(this.#tmp).catch(() => {});
  }
}

/** Temporary files created by this process, removed on abnormal exit by {@link removeTemporaryFiles}. */
const temporaries = new Set<string>();

/** Removes every temporary output file still open (used by the CLI on SIGINT). */
export function removeTemporaryFiles(): void {
  for (const t of temporaries) {
    try {
      Deno.removeSync(t);
    } catch { /* gone */ }
  }
  temporaries.clear();
}

/** Opens a file output at `path`, written under a temporary name until closed. */
export async function openFileSink(path: string): Promise<ByteSink> {
  const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/") + 1) : "";
  const base = path.slice(dir.length);
  const tmp = `${dir}.${base}.${Deno.pid}.${Math.random().toString(36).slice(2, 8)}.tmp`;
  const file = await Deno.open(tmp, { write: true, create: true, truncate: true });
  temporaries.add(tmp);
  const sink = new FileSink(file, tmp, path);
  const close = sink.close.bind(sink), abort = sink.abort.bind(sink);
  sink.close = async () => {
    await close();
    temporaries.delete(tmp);
  };
  sink.abort = async () => {
    await abort();
    temporaries.delete(tmp);
  };
  return sink;
}

class StdoutSink extends BufferedSink {
  protected writeRaw(chunk: Uint8Array): Promise<void> {
    return writeAll(Deno.stdout, chunk);
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
