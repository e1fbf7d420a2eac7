/**
 * Weights of a TF.js model: the manifest indexed against the shard files, and each weight as a lazy
 * {@link Tensor} read by offset from the shards.
 *
 * The shards of a group form one logical byte stream (tfjs-core's `CompositeArrayBuffer` idea) but are never
 * concatenated: a weight's byte range is mapped to (shard, offset) pieces and read straight from the files, so a
 * weight may cross a shard boundary and memory holds at most one read buffer per tensor being read.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import { confinePath } from "../../src/bytes/confine.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { numel } from "../../src/model/tensor.ts";
import { float16ToFloat32 } from "../../src/model/float16.ts";
import { STORED_SIZE, type WeightsManifestEntry, type WeightsManifestGroup } from "./types.ts";

const READ = 4 << 20;

/** Where one weight lies. */
export interface WeightRef {
  entry: WeightsManifestEntry;
  /** Group index (0-based). */
  group: number;
  /** Offset in the group's logical stream. */
  offset: number;
  /** Stored bytes. */
  byteLength: number;
}

/** The shard files of one group as one logical byte range. */
export class ShardSet {
  readonly files: string[];
  readonly sizes: number[];
  readonly starts: number[];
  readonly total: number;

  constructor(files: string[], sizes: number[]) {
    this.files = files;
    this.sizes = sizes;
    this.starts = [];
    let s = 0;
    for (const n of sizes) {
      this.starts.push(s);
      s += n;
    }
    this.total = s;
  }

  /** Yields `length` bytes from logical `offset` as borrowed chunks, crossing shard files as needed. */
  async *range(offset: number, length: number, what: string): AsyncGenerator<Uint8Array> {
    const buf = new Uint8Array(Math.max(1, Math.min(READ, length)));
    let pos = offset;
    const end = offset + length;
    let k = this.#shardAt(pos);
    while (pos < end) {
      const file = await Deno.open(this.files[k], { read: true });
      try {
        await file.seek(pos - this.starts[k], Deno.SeekMode.Start);
        const shardEnd = Math.min(end, this.starts[k] + this.sizes[k]);
        while (pos < shardEnd) {
          const want = Math.min(buf.length, shardEnd - pos);
          let got = 0;
          while (got < want) {
            const n = await file.read(buf.subarray(got, want));
            if (n === null || n === 0) {
              throw new TfjsError(
                "unexpected_eof",
                `Cannot read TF.js weight ${what}: shard '${this.files[k]}' ended at byte ${
                  pos + got - this.starts[k]
                } (it was ${this.sizes[k]} bytes when indexed)`,
                { file: this.files[k], offset: pos + got - this.starts[k], layer: what },
              );
            }
            got += n;
          }
          pos += got;
          yield buf.subarray(0, got);
        }
      } finally {
        file.close();
      }
      k++;
    }
  }

  #shardAt(pos: number): number {
    let k = 0;
    while (k + 1 < this.starts.length && this.starts[k + 1] <= pos) k++;
    return k;
  }
}

/** Stored bytes of a manifest entry; throws naming the weight for dtypes whose size is not fixed. */
export function storedByteLength(e: WeightsManifestEntry): number {
  const stored = e.quantization?.dtype ?? e.dtype;
  const size = STORED_SIZE[stored];
  if (!Array.isArray(e.shape) || e.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
    throw new TfjsError("bad_format", `TF.js weight '${e.name}' has an invalid shape ${JSON.stringify(e.shape)}`, {
      layer: e.name,
    });
  }
  if (size === undefined || stored === "complex64") {
    throw new TfjsError("unsupported", `TF.js weight '${e.name}' has an unsupported dtype '${stored}'`, {
      layer: e.name,
    });
  }
  if (e.quantization && !["uint8", "uint16", "float16"].includes(e.quantization.dtype)) {
    throw new TfjsError("unsupported", `TF.js weight '${e.name}' has an unsupported quantization dtype '${stored}'`, {
      layer: e.name,
    });
  }
  const q = e.quantization as { scale?: unknown; min?: unknown } | undefined;
  for (const k of ["scale", "min"] as const) {
    if (q && q[k] !== undefined && (typeof q[k] !== "number" || !Number.isFinite(q[k]))) {
      throw new TfjsError(
        "bad_format",
        `TF.js weight '${e.name}' has quantization ${k} ${JSON.stringify(q[k])}: it must be a finite number`,
        { layer: e.name },
      );
    }
  }
  if (e.quantization && !["float32", "int32"].includes(e.dtype)) {
    throw new TfjsError("unsupported", `TF.js weight '${e.name}' quantizes an unsupported dtype '${e.dtype}'`, {
      layer: e.name,
    });
  }
  return numel(e.shape) * size;
}

/**
 * Indexes the manifest against the shard files of `dir`: checks that every shard exists and that the shards hold
 * exactly the bytes the manifest needs. Optimizer weights are indexed but callers normally ignore them.
 */
export async function indexWeights(
  dir: string,
  manifest: WeightsManifestGroup[],
): Promise<{ refs: Map<string, WeightRef>; shards: ShardSet[] }> {
  const refs = new Map<string, WeightRef>();
  const shards: ShardSet[] = [];
  if (!Array.isArray(manifest)) throw new TfjsError("bad_format", "TF.js model.json has no weightsManifest list");
  for (let g = 0; g < manifest.length; g++) {
    const group = manifest[g];
    if (!Array.isArray(group?.paths) || !Array.isArray(group?.weights)) {
      throw new TfjsError("bad_format", `TF.js weightsManifest group ${g + 1} lacks paths or weights`);
    }
    const files: string[] = [], sizes: number[] = [];
    for (const p of group.paths) {
      const where = await confinePath(dir, p);
      if ("error" in where) {
        throw new TfjsError(
          where.missing ? "io" : "bad_format",
          `TF.js weight shard '${String(p)}' (group ${g + 1}) ${
            where.missing ? `is missing from ${dir}` : where.error
          }`,
          { layer: String(p) },
        );
      }
      const st = await Deno.stat(where.path);
      if (!st.isFile) {
        throw new TfjsError("bad_format", `TF.js weight shard '${p}' (group ${g + 1}) is not a file`, { layer: p });
      }
      files.push(where.path);
      sizes.push(st.size);
    }
    const set = new ShardSet(files, sizes);
    let off = 0;
    for (const e of group.weights) {
      const n = storedByteLength(e);
      if (off + n > set.total) {
        throw new TfjsError(
          "bad_format",
          `TF.js weight '${e.name}' needs bytes ${off}..${off + n} of group ${g + 1} but its shards (${
            group.paths.join(", ")
          }) hold only ${set.total} bytes`,
          { layer: e.name, offset: off },
        );
      }
      refs.set(e.name, { entry: e, group: g, offset: off, byteLength: n });
      off += n;
    }
    if (off !== set.total) {
      const last = group.weights.at(-1)?.name ?? "(none)";
      throw new TfjsError(
        "bad_format",
        `TF.js shards of group ${
          g + 1
        } hold ${set.total} bytes but the manifest's weights (last '${last}') need ${off}: shard '${
          group.paths.at(-1)
        }' has ${set.total - off} extra bytes`,
        { offset: off, file: files.at(-1) },
      );
    }
    shards.push(set);
  }
  return { refs, shards };
}

/**
 * Decodes stored chunks of a weight to float32 (or int32 for int32 originals) little-endian bytes: dequantizes
 * uint8/uint16 (q * scale + min) and float16, and re-aligns elements split across chunk (shard) boundaries.
 */
export async function* decodeChunks(
  e: WeightsManifestEntry,
  raw: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const q = e.quantization;
  const stored = q?.dtype ?? e.dtype;
  const size = STORED_SIZE[stored];
  if (!q) {
    // Plain float32/int32/bool: only re-chunk so every chunk holds whole elements.
    let carry = new Uint8Array(0);
    for await (const c of raw) {
      const all = carry.length ? concat(carry, c) : c;
      const whole = all.length - (all.length % size);
      if (whole) yield all.subarray(0, whole);
      carry = all.slice(whole);
    }
    return;
  }
  const scale = q.scale ?? 1, min = q.min ?? 0;
  const toInt = e.dtype === "int32";
  let carry = new Uint8Array(0);
  for await (const c of raw) {
    const all = carry.length ? concat(carry, c) : c;
    const n = Math.floor(all.length / size);
    const out = toInt ? new Int32Array(n) : new Float32Array(n);
    const dv = new DataView(all.buffer, all.byteOffset, all.byteLength);
    if (stored === "uint8") { for (let i = 0; i < n; i++) out[i] = deq(all[i], scale, min, toInt); }
    else if (stored === "uint16") {
      for (let i = 0; i < n; i++) out[i] = deq(dv.getUint16(2 * i, true), scale, min, toInt);
    } else for (let i = 0; i < n; i++) out[i] = float16ToFloat32(dv.getUint16(2 * i, true));
    carry = all.slice(n * size);
    yield new Uint8Array(out.buffer);
  }
}

function deq(v: number, scale: number, min: number, toInt: boolean): number {
  const x = v * scale + min;
  return toInt ? Math.round(x) : x;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}

/** A weight as a lazy tensor: float32 (dequantized), int32 or bool; read from the shards on each use. */
export function weightTensor(ref: WeightRef, shards: ShardSet[], name = ref.entry.name): Tensor {
  const e = ref.entry;
  const dtype = e.dtype === "int32" ? "int32" : e.dtype === "bool" ? "bool" : "float32";
  if (!["float32", "int32", "bool"].includes(e.dtype)) {
    throw new TfjsError("unsupported", `TF.js weight '${e.name}' has an unsupported dtype '${e.dtype}'`, {
      layer: e.name,
    });
  }
  const n = numel(e.shape);
  const byteLength = dtype === "bool" ? n : n * 4;
  const set = shards[ref.group];
  return Tensor.fromChunks(
    name,
    dtype,
    e.shape,
    byteLength,
    () => decodeChunks(e, set.range(ref.offset, ref.byteLength, `'${e.name}'`)),
  );
}
