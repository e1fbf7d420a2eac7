/**
 * {@link ByteInput} implementations: files (seekable), stdin and Web streams (in order only), and memory.
 *
 * @module
 */
import type { ByteInput } from "./byte_reader.ts";
import { ConvpressError } from "../errors.ts";

/**
 * Opens `path` as a seekable input. Reads at an offset are a seek and a read on one file handle, so they are
 * serialized: a reader indexing ahead and a stage pulling a tensor's chunks may call `readAt` concurrently.
 */
export async function openFileInput(path: string): Promise<ByteInput> {
  const file = await Deno.open(path, { read: true });
  const size = (await file.stat()).size;
  let filePos = 0;
  let closed = false;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(f: () => Promise<T>): Promise<T> => {
    const run = queue.then(f, f);
    queue = run.catch(() => {});
    return run;
  };
  // Reads are synchronous: a local file's reads come from the page cache in well under a millisecond, and an
  // asynchronous read hands every chunk to another thread, which on this machine doubled the kernel time of a
  // 553 MB convert (bench/results/speed.md).
  const readAt = (buf: Uint8Array, position: number) => {
    // A reader's stream may end (an error upstream closes the input) while a consumer still reads a tensor.
    if (closed) throw new ConvpressError("io", `Cannot read '${path}': the input was closed`, { file: path });
    if (position !== filePos) {
      file.seekSync(position, Deno.SeekMode.Start);
      filePos = position;
    }
    const n = file.readSync(buf);
    if (n === null) return Promise.resolve(0);
    filePos += n;
    return Promise.resolve(n);
  };
  return {
    size,
    path,
    read: (buf) => serial(() => readAt(buf, filePos)),
    readAt: (buf, position) => serial(() => readAt(buf, position)),
    close() {
      if (closed) return;
      closed = true;
      // After the reads already queued: closing under a read in flight would fail it with a bad resource.
      serial(() => {
        try {
          file.close();
        } catch { /* already closed */ }
        return Promise.resolve();
      });
    },
  };
}

/** Standard input, read strictly in order with large reads. */
export function stdinInput(): ByteInput {
  return {
    async read(buf) {
      const n = await Deno.stdin.read(buf);
      return n ?? 0;
    },
    close() {},
  };
}

/**
 * A `ReadableStream<Uint8Array>` as an in-order input. Chunks larger than the caller's buffer are split; nothing
 * is copied more than once.
 */
export function streamInput(stream: ReadableStream<Uint8Array>): ByteInput {
  const reader = stream.getReader();
  let pending: Uint8Array | undefined;
  return {
    async read(buf) {
      let n = 0;
      while (n < buf.length) {
        if (!pending || pending.length === 0) {
          if (n > 0) break; // return what we have rather than wait
          const r = await reader.read();
          if (r.done) return n;
          pending = r.value;
          continue;
        }
        const take = Math.min(pending.length, buf.length - n);
        buf.set(pending.subarray(0, take), n);
        pending = pending.subarray(take);
        n += take;
      }
      return n;
    },
    close() {
      reader.releaseLock();
    },
  };
}

/** A byte array as a seekable input. */
export function memoryInput(bytes: Uint8Array): ByteInput {
  let pos = 0;
  const readAt = (buf: Uint8Array, position: number) => {
    const n = Math.max(0, Math.min(buf.length, bytes.length - position));
    buf.set(bytes.subarray(position, position + n));
    return Promise.resolve(n);
  };
  return {
    size: bytes.length,
    async read(buf) {
      const n = await readAt(buf, pos);
      pos += n;
      return n;
    },
    readAt,
    close() {},
  };
}

/** Chunks delivered in order as a non-seekable input, for tests of chunk boundaries. */
export function chunkedInput(chunks: Uint8Array[]): ByteInput {
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      for (const ch of chunks) c.enqueue(ch);
      c.close();
    },
  });
  return streamInput(stream);
}

/** Splits `bytes` into chunks at the given cut points. */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    if (c <= prev || c >= bytes.length) continue;
    out.push(bytes.subarray(prev, c));
    prev = c;
  }
  out.push(bytes.subarray(prev));
  return out;
}
