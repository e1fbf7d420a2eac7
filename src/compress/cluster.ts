/**
 * The cluster stage: binary representation centre clustering (thesis step 4). Each Conv and FC weight tensor is
 * clustered by 1-D k-means into k = 2^bits centres stored as 16-bit values; the tensor that leaves the stage holds
 * the quantized values (produced on demand from the indices) and carries the clustering in
 * `tensor.meta.cluster` for the `.cvp` writer, which stores the indices bit-packed at exactly `bits` bits.
 *
 * Chunking contract: one layer at a time; a weight is read three times as chunks (range, histogram, assignment) and
 * only its indices (1 or 2 bytes per weight) are held.
 *
 * @module
 */
import { Tensor, toFloat32 } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { encodeClustered } from "../../formats/cvp/clustered.ts";
import { ConvpressError } from "../errors.ts";
import { type CenterRepr, type Clustering, kmeans1d, kmeans1dStream } from "./kmeans1d.ts";
import { keyValues, type StageModule } from "./stage.ts";

/** A request to measure other widths per layer (for targets): relative weight error and encoded bytes. */
export interface ClusterMeasure {
  bits: number[];
  into: { layer: string; tensor: string; options: { bits: number; error: number; bytes: number }[] }[];
}

/** Options of the cluster stage. */
export interface ClusterOptions {
  /** Bits per weight (k = 2^bits): one number, or per layer kind, with per-layer overrides. */
  bits: number | { conv?: number; fc?: number; default?: number; layers?: Record<string, number> };
  /** 16-bit representation of the centres (default fp16). */
  repr?: CenterRepr;
  /** Tensors with fewer elements stay as they are (default 0: cluster everything). */
  minSize?: number;
  /** Programmatic only (not in recipe files): measure other widths as the layers pass (see ./targets.ts). */
  measure?: ClusterMeasure;
}

/** Whether `name` matches `pattern`, where `*` stands for any run of characters. */
export function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp("^" + pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*") + "$");
  return re.test(name);
}

/**
 * Bits for a layer under `options`, or undefined to leave it alone: an exact layer name in `layers`, then the first
 * matching pattern with `*` there, then the layer kind (`conv`, `fc`), then `default`.
 */
export function bitsFor(layer: Layer, options: ClusterOptions): number | undefined {
  const b = options.bits;
  if (typeof b === "number") return b;
  const name = layer.from ?? layer.name;
  if (b.layers?.[layer.name] !== undefined) return b.layers[layer.name];
  if (b.layers?.[name] !== undefined) return b.layers[name];
  for (const [pattern, v] of Object.entries(b.layers ?? {})) {
    if (pattern.includes("*") && (globMatch(pattern, layer.name) || globMatch(pattern, name))) return v;
  }
  if (layer.op === "Conv" && b.conv !== undefined) return b.conv;
  if (layer.op === "FC" && b.fc !== undefined) return b.fc;
  return b.default;
}

/**
 * The float32 chunks of a tensor, converted when stored in another dtype. A float32 tensor's chunks are copied into
 * one reused array, so each is borrowed: valid until the next is pulled (a pass over VGG16's 411 MB fc6 would
 * otherwise leave a 4 MiB copy per chunk for the collector, 200+ MB resident before it runs).
 */
function floatChunks(t: Tensor): () => AsyncIterable<Float32Array> {
  return async function* () {
    const size = t.dtype === "float32" ? 4 : t.dtype === "float16" || t.dtype === "bfloat16" ? 2 : 8;
    let reuse = new Float32Array(0);
    let carry = new Uint8Array(0);
    for await (const c of t.chunks()) {
      let all = c;
      if (carry.length) {
        all = new Uint8Array(carry.length + c.length);
        all.set(carry);
        all.set(c, carry.length);
      }
      const whole = all.length - (all.length % size);
      if (t.dtype === "float32") {
        if (reuse.length < whole / 4) reuse = new Float32Array(whole / 4);
        const out = reuse.subarray(0, whole / 4);
        new Uint8Array(out.buffer, 0, whole).set(all.subarray(0, whole));
        yield out;
      } else yield toFloat32(t.dtype, all.slice(0, whole), t.name);
      carry = all.slice(whole);
    }
  };
}

/** Clusters one tensor; the result holds the quantized values and `meta.cluster`. */
export async function clusterTensor(t: Tensor, bits: number, repr: CenterRepr = "fp16"): Promise<Tensor> {
  const c: Clustering = await kmeans1dStream(floatChunks(t), t.size, 2 ** bits, { repr });
  return clusteredTensor(t, c, bits);
}

/** The tensor standing for clustering `c` of `t`: quantized values on demand, and `meta.cluster`. */
export function clusteredTensor(t: Tensor, c: Clustering, bits: number): Tensor {
  // The clustered form too, so writers that keep it (compressed ONNX, TF.js) need no float pass.
  const out = Tensor.fromClustered(t.name, t.shape, {
    kind: "clustered",
    centers: c.centers,
    repr: c.repr,
    async *indices(slice = 1 << 18) {
      const buf = new Uint32Array(Math.max(1, Math.min(t.size, slice)));
      for (let off = 0; off < t.size; off += buf.length) {
        const n = Math.min(buf.length, t.size - off);
        buf.set(c.indices.subarray(off, off + n));
        yield buf.subarray(0, n);
      }
    },
  });
  out.meta = { ...t.meta, cluster: { ...c, bits } };
  return out;
}

/** Relative weight error and encoded bytes of `w` clustered at each of `bits`. */
async function measureWidths(w: Tensor, bits: number[], repr: CenterRepr = "fp16") {
  const v = await w.float32();
  let ref = 0;
  for (let i = 0; i < v.length; i++) ref += v[i] * v[i];
  return bits.map((b) => {
    const c = kmeans1d(v, 2 ** b, { repr });
    let e = 0;
    for (let i = 0; i < v.length; i++) e += (v[i] - c.centers[c.indices[i]]) ** 2;
    return { bits: b, error: Math.sqrt(e / (ref || 1)), bytes: encodeClustered(c).body.length };
  });
}

/** Creates the cluster stage; with `options.measure`, it also measures the widths asked for, layer by layer. */
export function clusterStage(options: ClusterOptions): TransformStream<Layer, Layer> {
  const measure = options.measure;
  return new TransformStream<Layer, Layer>({
    async transform(layer, controller) {
      const w = layer.params.weight;
      const bits = (layer.op === "Conv" || layer.op === "FC") && w ? bitsFor(layer, options) : undefined;
      if (bits === undefined || bits >= 16 || w.size < (options.minSize ?? 0)) return controller.enqueue(layer);
      if (!Number.isInteger(bits) || bits < 1) throw new RangeError(`Invalid bits ${bits} for layer '${layer.name}'`);
      if (measure) {
        const options_ = await measureWidths(w, measure.bits, options.repr);
        measure.into.push({ layer: layer.name, tensor: w.name, options: options_ });
      }
      const weight = await clusterTensor(w, bits, options.repr);
      controller.enqueue({
        ...layer,
        params: { ...layer.params, weight },
        origin: undefined,
        from: layer.from ?? layer.name,
      });
    },
  });
}

/** The clustering stage: `{ "cluster": { "bits": { "conv": 5, "fc": 4 } } }`, `--bits conv=5,fc=4`. */
export const cluster: StageModule<"cluster", ClusterOptions> = {
  kind: "cluster",
  flag: {
    name: "bits",
    type: "string",
    help: "N | conv=N,fc=M,LAYER=N,fire9/*=N: k-means clustering with 2^N centres (per kind, layer or pattern)",
  },
  validate(o) {
    const bits = (o as ClusterOptions).bits;
    const ok = (b: unknown) => b === undefined || (Number.isInteger(b) && (b as number) >= 1 && (b as number) <= 16);
    if (
      typeof bits === "number" ? !ok(bits) : !bits || typeof bits !== "object" ||
        ![bits.conv, bits.fc, bits.default, ...Object.values(bits.layers ?? {})].every(ok)
    ) {
      return "needs bits from 1 to 16";
    }
    return undefined;
  },
  fromFlags: (value) => ({ bits: parseBits(String(value)) }),
  create: (options) => clusterStage(options),
};

/**
 * `--bits N` or `--bits conv=5,fc=4,fire9/*=6,conv_final=8`: `conv`, `fc` and `default` set a kind's width, any
 * other key a layer's (exact name, or a pattern with `*`).
 */
export function parseBits(v: string): ClusterOptions["bits"] {
  if (!v.includes("=")) return Number(v);
  const out: { conv?: number; fc?: number; default?: number; layers?: Record<string, number> } = {};
  for (const [k, val] of Object.entries(keyValues("--bits", v))) {
    const n = Number(val);
    if (!(Number.isInteger(n) && n >= 1 && n <= 16)) {
      throw new ConvpressError("usage", `Invalid --bits ${k}=${val}: expected an integer from 1 to 16`);
    }
    if (k === "conv" || k === "fc" || k === "default") out[k] = n;
    else (out.layers ??= {})[k] = n;
  }
  return out;
}
