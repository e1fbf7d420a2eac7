/**
 * Weight output for the TF.js writer: one logical byte stream cut into shards of `shardSize` bytes, written to
 * numbered temporary files as the weights arrive. The final names `group1-shardKofN.bin` need N, known only at the
 * end, so {@link ShardWriter.finish} names them then. At most one read chunk is held in memory.
 *
 * @module
 */
import { float32ToFloat16 } from "../../src/model/float16.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { floatChunks } from "./layout.ts";
import type { Quantization, WeightsManifestEntry } from "./types.ts";
import { guardCreation, trackUncommittedOutput } from "../../src/bytes/temp_files.ts";
import { planClustered, planNotice, toLevels } from "./clustered.ts";

/** TF.js converter's default shard size: 4 MiB. */
export const DEFAULT_SHARD_SIZE = 4 * 1024 * 1024;

/** Weight quantization choices. */
export type QuantizeMode = "float16" | "uint8" | "uint16";

/** Writes weights into shard files in a folder. */
export class ShardWriter {
  readonly dir: string;
  readonly shardSize: number;
  readonly entries: WeightsManifestEntry[] = [];
  readonly files: string[] = [];
  #file: Deno.FsFile | undefined;
  #inShard = 0;
  total = 0;

  /** Called with a line per clustered weight: how it was stored, and why when it had to widen. */
  readonly notice?: (line: string) => void;
  /** Clustered weights written, by stored dtype. */
  readonly clustered: Record<"uint8" | "float16" | "float32", number> = { uint8: 0, float16: 0, float32: 0 };

  constructor(dir: string, shardSize = DEFAULT_SHARD_SIZE, notice?: (line: string) => void) {
    this.dir = dir;
    this.shardSize = Math.max(1, Math.floor(shardSize));
    this.notice = notice;
  }

  /** Appends raw bytes, cutting shards at exact `shardSize` boundaries. */
  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      if (!this.#file || this.#inShard === this.shardSize) {
        this.#file?.close();
        const path = `${this.dir}/.shard-${this.files.length + 1}.part`;
        this.files.push(path);
        // Inside a guard: a signal during the open waits for it, so the clean-up sees the new shard.
        this.#file = await guardCreation(() => Deno.open(path, { write: true, create: true, truncate: true }));
        this.#inShard = 0;
      }
      const take = Math.min(bytes.length - off, this.shardSize - this.#inShard);
      const part = bytes.subarray(off, off + take);
      let w = 0;
      while (w < part.length) w += await this.#file.write(part.subarray(w));
      this.#inShard += take;
      this.total += take;
      off += take;
    }
  }

  /**
   * Writes a float tensor (already in TF.js layout), quantized as asked; records its manifest entry. With no
   * `quantize`, a tensor known to hold only a few values (a clustered tensor's {@link Tensor.codebook}) is stored in
   * the smallest tfjs form that holds them exactly (./clustered.ts).
   */
  async writeFloat(name: string, t: Tensor, quantize?: QuantizeMode): Promise<void> {
    const shape = [...t.shape];
    if (!quantize && t.codebook && t.dtype === "float32") {
      const plan = planClustered(t.codebook);
      this.notice?.(planNotice(name, plan));
      this.clustered[plan.dtype]++;
      if (plan.dtype === "float16") return await this.writeFloat(name, t, "float16");
      if (plan.dtype === "uint8") {
        for await (const a of floatChunks(t)) await this.write(toLevels(a, plan.levelOf, name));
        const quantization: Quantization = {
          dtype: "uint8",
          scale: plan.scale,
          min: plan.min,
          original_dtype: "float32",
        };
        this.entries.push({ name, shape, dtype: "float32", quantization });
        return;
      }
    }
    if (!quantize) {
      if (t.dtype === "float32") { for await (const c of t.chunks()) await this.write(c); }
      else for await (const a of floatChunks(t)) await this.write(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
      this.entries.push({ name, shape, dtype: "float32" });
      return;
    }
    if (quantize === "float16") {
      for await (const a of floatChunks(t)) {
        const h = new Uint16Array(a.length);
        for (let i = 0; i < a.length; i++) h[i] = float32ToFloat16(a[i]);
        await this.write(new Uint8Array(h.buffer));
      }
      this.entries.push({
        name,
        shape,
        dtype: "float32",
        quantization: { dtype: "float16", original_dtype: "float32" },
      });
      return;
    }
    // uint8/uint16 as the TF.js converter does (quantization.py): affine over [min, max], with min nudged so that
    // zero is exactly representable when the range spans it.
    let lo = Infinity, hi = -Infinity;
    for await (const a of floatChunks(t)) {
      for (let i = 0; i < a.length; i++) {
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
      }
    }
    if (t.size === 0) lo = hi = 0;
    const qmax = quantize === "uint8" ? 255 : 65535;
    let scale: number, min: number;
    if (lo === hi) {
      scale = 1;
      min = lo;
    } else {
      scale = (hi - lo) / qmax;
      min = lo <= 0 && hi >= 0 ? -Math.round(-lo / scale) * scale : lo;
    }
    const max = min + qmax * scale;
    for await (const a of floatChunks(t)) {
      const q = quantize === "uint8" ? new Uint8Array(a.length) : new Uint16Array(a.length);
      if (lo !== hi) {
        for (let i = 0; i < a.length; i++) q[i] = Math.round((Math.min(max, Math.max(min, a[i])) - min) / scale);
      }
      await this.write(new Uint8Array(q.buffer));
    }
    const quantization: Quantization = { dtype: quantize, scale, min, original_dtype: "float32" };
    this.entries.push({ name, shape, dtype: "float32", quantization });
  }

  /** Writes a small int32 tensor (shapes, paddings, axes). */
  async writeInt32(name: string, shape: number[], values: number[]): Promise<void> {
    await this.write(new Uint8Array(Int32Array.from(values).buffer));
    this.entries.push({ name, shape, dtype: "int32" });
  }

  /** Closes the last shard and renames all to `group1-shardKofN.bin` in `outDir`; returns the names. */
  async finish(outDir: string): Promise<string[]> {
    const c = this.clustered;
    if (c.uint8 + c.float16 + c.float32 > 0) {
      this.notice?.(
        `tfjs: clustered weights: ${c.uint8} stored as uint8, ${c.float16} widened to float16, ${c.float32} to float32 (all exact)`,
      );
    }
    this.#file?.close();
    this.#file = undefined;
    const n = this.files.length;
    const names: string[] = [];
    for (let k = 0; k < n; k++) {
      const name = `group1-shard${k + 1}of${n}.bin`;
      trackUncommittedOutput(`${outDir}/${name}`);
      await guardCreation(() => Deno.rename(this.files[k], `${outDir}/${name}`));
      names.push(name);
    }
    return names;
  }

  /** Closes the current shard (on failure). */
  close(): void {
    try {
      this.#file?.close();
    } catch { /* closed */ }
    this.#file = undefined;
  }
}
