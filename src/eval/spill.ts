/**
 * The executor's activation chunks on disk (../eval/executor.ts `spill`): one temporary folder per executor, made on
 * first use and registered for removal on any failure or signal, one file of raw float32 per chunk in the chunk's own
 * layout. Also the reused arrays (`Scratch`) that chunks are read into and computed from without a copy per chunk.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { removeTemporarySync, trackTemporary } from "../bytes/temp_files.ts";

/** A chunk on disk: the raw float32 data of its tensor, in the tensor's own layout. */
export interface Spilled {
  file: string;
  shape: number[];
  nhwc: boolean;
}

/**
 * A reused array: `get(n)` gives n values of it (valid until the next call), made anew when it is too small or more
 * than twice too large: activations shrink along a network (VGG16's chunks: 12.8 MB at conv1, 1.6 MB at conv4), and
 * an executor's chunk reader keeps one for its whole run, which should not stay at the first layers' size.
 */
export type Scratch = (n: number) => Float32Array;

/** A new {@link Scratch}. */
export function scratchArray(): Scratch {
  let buf = new Float32Array(0);
  return (n) => {
    if (buf.length < n || n < buf.length / 2) buf = new Float32Array(n);
    return buf.subarray(0, n);
  };
}

/** One executor's spill folder. */
export class SpillStore {
  #dir?: string;
  #count = 0;

  /** Writes a chunk's data to a new file. */
  write(data: Float32Array, shape: number[], nhwc: boolean): Spilled {
    if (!this.#dir) {
      this.#dir = Deno.makeTempDirSync({ prefix: "convpress-activations-" });
      trackTemporary(this.#dir, true);
    }
    const file = `${this.#dir}/${this.#count++}.f32`;
    Deno.writeFileSync(file, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return { file, shape, nhwc };
  }

  /**
   * Reads a chunk back as float32: into `scratch(n)`, a caller's reused array of its n values, when given (no copy
   * left to the collector), else into a new array (`fresh` is then told its bytes).
   */
  read(h: Spilled, scratch?: Scratch, fresh?: (bytes: number) => void): Float32Array {
    if (!scratch) {
      const bytes = Deno.readFileSync(h.file);
      fresh?.(bytes.byteLength);
      return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    }
    const into = scratch(h.shape.reduce((p, q) => p * q, 1));
    const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
    const f = Deno.openSync(h.file);
    try {
      let got = 0;
      while (got < bytes.length) {
        const n = f.readSync(bytes.subarray(got));
        if (n === null || n === 0) throw new ConvpressError("unexpected_eof", `Spill file ${h.file} is short`);
        got += n;
      }
    } finally {
      f.close();
    }
    return into;
  }

  /** Removes a chunk's file. */
  drop(h: Spilled): void {
    removeTemporarySync(h.file);
  }

  /** Removes the folder and everything in it. */
  dispose(): void {
    if (this.#dir) removeTemporarySync(this.#dir);
    this.#dir = undefined;
  }
}
