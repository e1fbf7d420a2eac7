/**
 * Tensors of the model stream. A tensor's name, dtype, shape and byte length are known before its data. The data
 * is one of:
 * - materialized bytes in memory (what a non-seekable input delivers: one tensor buffered at a time);
 * - a byte range of a seekable input, read by offset on demand, as often as needed;
 * - a chunk producer (a stage's lazy output, for example the GAP fold over another tensor's rows).
 *
 * Chunks handed out by {@link Tensor.chunks} are borrowed: valid until the next one is pulled. Data is always
 * little-endian, row-major, in the canonical layout of ./ops.ts.
 *
 * A tensor may also carry an encoded form ({@link ClusteredForm}: a codebook and one index per element, as a clustered
 * `.cvp` tensor stores it). Writers that can store the form keep it (the ONNX writer's `--keep-clustered`); every other
 * consumer reads the float32 data, which the tensor dequantizes from the form lazily, slice by slice, on each read.
 *
 * @module
 */
import type { ByteInput } from "../bytes/byte_reader.ts";
import type { ByteSink } from "../bytes/byte_sink.ts";
import { ConvpressError } from "../errors.ts";
import { float16ToFloat32 } from "./float16.ts";

/** Element types. */
export type DType =
  | "float32"
  | "float16"
  | "bfloat16"
  | "float64"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "bool"
  | "string";

/** Bytes per element (strings have none fixed). */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = Object.freeze({
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  bool: 1,
  string: 0,
});

/** Product of the dimensions (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * A tensor stored as a codebook and one index per element: element `i` is `centers[index(i)]`. This is how a
 * clustered `.cvp` tensor travels from the reader to a writer that can keep it, without a float copy.
 */
export interface ClusteredForm {
  readonly kind: "clustered";
  /** The centres as float32 (exact: the 16-bit stored values widened). At most 65537 of them. */
  readonly centers: Float32Array;
  /** The 16-bit representation the centres were stored in. */
  readonly repr: "fp16" | "bf16";
  /**
   * Yields the indices in element order as slices of at most `slice` indices. Slices are borrowed: valid until the
   * next one is pulled. Each call decodes from the start.
   */
  indices(slice?: number): AsyncIterable<Uint32Array>;
}

type Source =
  | { kind: "bytes"; bytes: Uint8Array }
  | { kind: "parts"; parts: Uint8Array[] }
  | { kind: "file"; input: ByteInput; offset: number }
  | { kind: "chunks"; produce: () => AsyncIterable<Uint8Array> };

const READ_CHUNK = 4 << 20;

/**
 * Read buffers of READ_CHUNK bytes that finished tensor reads gave back. A model streams tensor after tensor; without
 * reuse each read left two fresh 4 MiB buffers for the garbage collector, which frees them lazily (VGG16 ONNX -> ONNX
 * peaked at 128 MB instead of about 80).
 */
const freeBuffers: Uint8Array[] = [];
const MAX_FREE = 4;

function takeBuffer(size: number): Uint8Array {
  return size === READ_CHUNK && freeBuffers.length ? freeBuffers.pop()! : new Uint8Array(size);
}

function giveBuffer(b: Uint8Array): void {
  if (b.length === READ_CHUNK && freeBuffers.length < MAX_FREE) freeBuffers.push(b);
}

/** A named n-dimensional array whose data may live in memory, in a file, or be produced on demand. */
export class Tensor {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly byteLength: number;
  /** Free-form annotations stages attach (for example a clustering chosen for `.cvp`). */
  meta: Record<string, unknown> = {};
  #source: Source;
  #encoded?: ClusteredForm;
  #codebook?: Float32Array;

  private constructor(name: string, dtype: DType, shape: readonly number[], byteLength: number, source: Source) {
    this.name = name;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.byteLength = byteLength;
    this.#source = source;
  }

  /** A tensor over bytes in memory (not copied). */
  static fromBytes(name: string, dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
    checkSize(name, dtype, shape, bytes.length);
    return new Tensor(name, dtype, shape, bytes.length, { kind: "bytes", bytes });
  }

  /** A tensor over a list of chunks in memory (not concatenated). */
  static fromParts(name: string, dtype: DType, shape: readonly number[], parts: Uint8Array[]): Tensor {
    const n = parts.reduce((s, p) => s + p.length, 0);
    checkSize(name, dtype, shape, n);
    if (parts.length === 1) return new Tensor(name, dtype, shape, n, { kind: "bytes", bytes: parts[0] });
    return new Tensor(name, dtype, shape, n, { kind: "parts", parts });
  }

  /** A float32 tensor over a typed array (not copied). */
  static fromFloat32(name: string, shape: readonly number[], data: Float32Array): Tensor {
    return Tensor.fromBytes(name, "float32", shape, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }

  /** An int64 tensor from numbers. */
  static fromInt64(name: string, shape: readonly number[], values: readonly number[]): Tensor {
    const a = new BigInt64Array(values.map((v) => BigInt(v)));
    return Tensor.fromBytes(name, "int64", shape, new Uint8Array(a.buffer));
  }

  /** A tensor over `byteLength` bytes at `offset` of a seekable input. */
  static fromFile(
    name: string,
    dtype: DType,
    shape: readonly number[],
    input: ByteInput,
    offset: number,
    byteLength: number,
  ): Tensor {
    checkSize(name, dtype, shape, byteLength);
    if (!input.readAt) throw new Error("Tensor.fromFile needs a seekable input");
    return new Tensor(name, dtype, shape, byteLength, { kind: "file", input, offset });
  }

  /**
   * A float32 tensor held as a codebook and indices ({@link ClusteredForm}). Its float data is dequantized on each
   * read, one slice of indices at a time; {@link Tensor.encoded} hands the form itself to writers that keep it.
   */
  static fromClustered(name: string, shape: readonly number[], form: ClusteredForm): Tensor {
    const n = numel(shape);
    const { centers } = form;
    const t = Tensor.fromChunks(name, "float32", shape, 4 * n, async function* () {
      for await (const idx of form.indices()) {
        const out = new Float32Array(idx.length);
        for (let i = 0; i < idx.length; i++) {
          const v = centers[idx[i]];
          if (v === undefined) throw new RangeError(`index ${idx[i]} is not below ${centers.length} centres`);
          out[i] = v;
        }
        yield new Uint8Array(out.buffer);
      }
    });
    t.#encoded = form;
    return t;
  }

  /** A tensor whose bytes are produced on demand by `produce` (called once per read). */
  static fromChunks(
    name: string,
    dtype: DType,
    shape: readonly number[],
    byteLength: number,
    produce: () => AsyncIterable<Uint8Array>,
  ): Tensor {
    checkSize(name, dtype, shape, byteLength);
    return new Tensor(name, dtype, shape, byteLength, { kind: "chunks", produce });
  }

  /** Number of elements. */
  get size(): number {
    return numel(this.shape);
  }

  /** True when the data is in memory. */
  get materialized(): boolean {
    return this.#source.kind === "bytes" || this.#source.kind === "parts";
  }

  /** The encoded form the data comes from, when the source stored one (a clustered `.cvp` tensor). */
  get encoded(): ClusteredForm | undefined {
    return this.#encoded;
  }

  /**
   * The values every element is known to take, when known: a clustered tensor's centres, kept through
   * value-preserving transforms such as transposes (see {@link Tensor.sameValuesAs}). May list values no element
   * takes; never misses one.
   */
  get codebook(): Float32Array | undefined {
    return this.#encoded?.centers ?? this.#codebook;
  }

  /**
   * Marks this tensor as holding only values of `src`'s codebook (for a transform that moves elements without
   * changing them). Returns this tensor.
   */
  sameValuesAs(src: Tensor): this {
    if (src.codebook && this.dtype === "float32") this.#codebook = src.codebook;
    return this;
  }

  /** The same data under another name, shape or metadata. */
  with(changes: { name?: string; shape?: readonly number[] }): Tensor {
    const t = new Tensor(
      changes.name ?? this.name,
      this.dtype,
      changes.shape ?? this.shape,
      this.byteLength,
      this.#source,
    );
    if (changes.shape) checkSize(t.name, t.dtype, t.shape, t.byteLength);
    t.meta = { ...this.meta };
    // Element order is unchanged, so the encoded form still describes the data.
    t.#encoded = this.#encoded;
    t.#codebook = this.#codebook;
    return t;
  }

  /**
   * Appends the data to `sink`: inside the kernel when it is a range of a file that the sink can copy from
   * ({@link ByteSink.copyRange}), else chunk by chunk. Returns the bytes written (always `byteLength`).
   */
  async writeTo(sink: ByteSink): Promise<number> {
    const s = this.#source;
    if (s.kind === "file" && s.input.path !== undefined && sink.copyRange && this.byteLength > 0) {
      if (s.input.size !== undefined && s.offset + this.byteLength > s.input.size) {
        throw new ConvpressError(
          "unexpected_eof",
          `Unexpected end of input in tensor '${this.name}' at byte ${s.input.size}`,
          { offset: s.input.size, layer: this.name },
        );
      }
      if (await sink.copyRange(s.input.path, s.offset, this.byteLength)) return this.byteLength;
    }
    let n = 0;
    for await (const c of this.chunks()) {
      n += c.length;
      await sink.write(c);
    }
    return n;
  }

  /** Yields the data as borrowed chunks of at most `chunkSize` bytes. */
  async *chunks(chunkSize = READ_CHUNK): AsyncGenerator<Uint8Array> {
    const s = this.#source;
    if (s.kind === "bytes") {
      for (let off = 0; off < s.bytes.length; off += chunkSize) {
        yield s.bytes.subarray(off, Math.min(s.bytes.length, off + chunkSize));
      }
      return;
    }
    if (s.kind === "parts") {
      for (const p of s.parts) {
        for (let off = 0; off < p.length; off += chunkSize) yield p.subarray(off, Math.min(p.length, off + chunkSize));
      }
      return;
    }
    if (s.kind === "chunks") {
      let total = 0;
      for await (const c of s.produce()) {
        total += c.length;
        yield c;
      }
      if (total !== this.byteLength) {
        throw new Error(`Tensor '${this.name}' produced ${total} of ${this.byteLength} bytes`);
      }
      return;
    }
    // Two buffers: the next chunk is read while the consumer works on this one (writes it out, say), so reading and
    // writing a large tensor overlap. A chunk is still valid until the next one is pulled, as promised.
    const size = Math.min(chunkSize, Math.max(1, this.byteLength));
    const bufs = [takeBuffer(size), size < this.byteLength ? takeBuffer(size) : undefined];
    const fill = async (buf: Uint8Array, pos: number): Promise<Uint8Array> => {
      const want = Math.min(buf.length, this.byteLength - pos);
      let got = 0;
      while (got < want) {
        const n = await s.input.readAt!(buf.subarray(got, want), s.offset + pos + got);
        if (n === 0) {
          throw new ConvpressError(
            "unexpected_eof",
            `Unexpected end of input in tensor '${this.name}' at byte ${s.offset + pos + got}`,
            { offset: s.offset + pos + got, layer: this.name },
          );
        }
        got += n;
      }
      return buf.subarray(0, got);
    };
    let pos = 0, k = 0;
    let next: Promise<Uint8Array> | undefined = this.byteLength > 0 ? fill(bufs[0]!, 0) : undefined;
    try {
      while (next) {
        const chunk = await next;
        pos += chunk.length;
        k ^= 1;
        next = pos < this.byteLength ? fill(bufs[k]!, pos) : undefined;
        next?.catch(() => {}); // surfaced by the await above on the next turn
        yield chunk;
      }
    } finally {
      // A consumer that stops early: let the read in flight finish before its buffer goes.
      await next?.catch(() => {});
      // The consumer has pulled past the last chunk (or stopped): the buffers are free for the next tensor.
      for (const b of bufs) if (b) giveBuffer(b);
    }
  }

  /** The data as bytes the caller may keep (a view of in-memory data, a copy otherwise). */
  async bytes(): Promise<Uint8Array> {
    if (this.#source.kind === "bytes") return this.#source.bytes;
    const out = new Uint8Array(this.byteLength);
    let off = 0;
    for await (const c of this.chunks()) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }

  /** The bytes of a materialized tensor, synchronously (throws for file-backed or produced data). */
  syncBytes(): Uint8Array {
    const s = this.#source;
    if (s.kind === "parts") {
      const out = new Uint8Array(this.byteLength);
      let off = 0;
      for (const p of s.parts) {
        out.set(p, off);
        off += p.length;
      }
      return out;
    }
    if (s.kind !== "bytes") throw new Error(`Tensor '${this.name}' is not in memory`);
    return s.bytes;
  }

  /** The data as float32, converting from the stored dtype. May share memory with the tensor: do not modify. */
  async float32(): Promise<Float32Array> {
    const b = await this.bytes();
    return toFloat32(this.dtype, b, this.name);
  }

  /** The data as plain numbers (for small integer tensors such as shapes). */
  async numbers(): Promise<number[]> {
    const b = await this.bytes();
    const copy = b.byteOffset % 8 === 0 ? b : b.slice();
    switch (this.dtype) {
      case "int64":
        return Array.from(new BigInt64Array(copy.buffer, copy.byteOffset, this.size), Number);
      case "uint64":
        return Array.from(new BigUint64Array(copy.buffer, copy.byteOffset, this.size), Number);
      default:
        return Array.from(toFloat32(this.dtype, b, this.name));
    }
  }
}

function checkSize(name: string, dtype: DType, shape: readonly number[], byteLength: number): void {
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ConvpressError("bad_format", `Tensor '${name}' has an invalid dimension ${d}`, { layer: name });
    }
  }
  const size = DTYPE_SIZE[dtype];
  if (size > 0 && numel(shape) * size !== byteLength) {
    throw new ConvpressError(
      "bad_format",
      `Tensor '${name}' holds ${byteLength} bytes but its shape [${shape.join(",")}] of ${dtype} needs ${
        numel(shape) * size
      }`,
      { layer: name },
    );
  }
}

/** Converts little-endian bytes of `dtype` to float32. Shares memory when already float32 and aligned. */
export function toFloat32(dtype: DType, b: Uint8Array, name = "tensor"): Float32Array {
  const aligned = (k: number) => (b.byteOffset % k === 0 ? b : b.slice());
  switch (dtype) {
    case "float32": {
      const a = aligned(4);
      return new Float32Array(a.buffer, a.byteOffset, a.length / 4);
    }
    case "float64": {
      const a = aligned(8);
      return Float32Array.from(new Float64Array(a.buffer, a.byteOffset, a.length / 8));
    }
    case "float16": {
      const a = aligned(2);
      const h = new Uint16Array(a.buffer, a.byteOffset, a.length / 2);
      const out = new Float32Array(h.length);
      for (let i = 0; i < h.length; i++) out[i] = float16ToFloat32(h[i]);
      return out;
    }
    case "bfloat16": {
      const a = aligned(2);
      const h = new Uint16Array(a.buffer, a.byteOffset, a.length / 2);
      const u = new Uint32Array(h.length);
      for (let i = 0; i < h.length; i++) u[i] = h[i] << 16;
      return new Float32Array(u.buffer);
    }
    case "int8":
      return Float32Array.from(new Int8Array(b.buffer, b.byteOffset, b.length));
    case "uint8":
    case "bool":
      return Float32Array.from(b);
    case "int16": {
      const a = aligned(2);
      return Float32Array.from(new Int16Array(a.buffer, a.byteOffset, a.length / 2));
    }
    case "uint16": {
      const a = aligned(2);
      return Float32Array.from(new Uint16Array(a.buffer, a.byteOffset, a.length / 2));
    }
    case "int32": {
      const a = aligned(4);
      return Float32Array.from(new Int32Array(a.buffer, a.byteOffset, a.length / 4));
    }
    case "uint32": {
      const a = aligned(4);
      return Float32Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length / 4));
    }
    case "int64": {
      const a = aligned(8);
      return Float32Array.from(new BigInt64Array(a.buffer, a.byteOffset, a.length / 8), Number);
    }
    case "uint64": {
      const a = aligned(8);
      return Float32Array.from(new BigUint64Array(a.buffer, a.byteOffset, a.length / 8), Number);
    }
    case "string":
      throw new ConvpressError("unsupported", `Tensor '${name}' holds strings, not numbers`, { layer: name });
  }
}
