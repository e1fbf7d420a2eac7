/**
 * The truncated-SVD stage (thesis step 3): an FC with weight W [m, n] becomes two FCs, n -> k and then k -> m, with
 * W ~ (U_k S_k^1/2)(S_k^1/2 V_k^T) and the bias on the second. The rank comes from a fixed k, a kept energy fraction
 * (of the squared Frobenius norm), or a byte budget; a layer is left alone when the factors would not be smaller.
 *
 * Chunking contract: one layer at a time; the FC's weight is materialized (the SVD needs all of it).
 *
 * @module
 */
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { randomizedSvd, type TruncatedSvd } from "../linalg/randomized_svd.ts";
import { keyValues, type StageModule } from "./stage.ts";

/** Options of the TSVD stage. Give one of `rank`, `energy` or `bytes`. */
export interface TsvdOptions {
  /** Fixed rank k. */
  rank?: number;
  /** Smallest k keeping at least this fraction of the squared Frobenius norm (0..1]. */
  energy?: number;
  /** Largest k whose two factors fit this many bytes at `bytesPerWeight`. */
  bytes?: number;
  /** Bytes per weight for the byte budget (default 4; 0.5 for 4-bit clustering). */
  bytesPerWeight?: number;
  /** Only these layers (by name); default every FC. */
  layers?: string[];
  /** Factorize even when the factors are not smaller (for tests and analysis). */
  always?: boolean;
  /** Power iterations of the randomized SVD (default 2). */
  powerIterations?: number;
}

/** The rank that `rank` or `bytes` fixes for an m x n weight (no weights needed), or undefined for `energy`. */
function fixedRank(m: number, n: number, o: TsvdOptions): number | undefined {
  const full = Math.min(m, n);
  if (o.rank !== undefined) return Math.max(1, Math.min(o.rank, full));
  if (o.bytes !== undefined) {
    return Math.max(1, Math.min(full, Math.floor(o.bytes / ((o.bytesPerWeight ?? 4) * (m + n)))));
  }
  return undefined;
}

/** Chooses the rank for an m x n weight; returns the SVD computed on the way, if any. */
async function chooseRank(
  w: Float32Array,
  m: number,
  n: number,
  o: TsvdOptions,
): Promise<{ k: number; svd?: TruncatedSvd }> {
  const full = Math.min(m, n);
  const it = o.powerIterations;
  const fixed = fixedRank(m, n, o);
  if (fixed !== undefined) return { k: fixed };
  const energy = o.energy ?? 0.9;
  let total = 0;
  for (let i = 0; i < w.length; i++) total += w[i] * w[i];
  for (let k = Math.min(full, 128);; k = Math.min(full, k * 2)) {
    await Promise.resolve(); // let progress and other streams breathe between heavy steps
    const svd = await randomizedSvd(w, m, n, k, { powerIterations: it });
    let acc = 0;
    for (let t = 0; t < svd.k; t++) {
      acc += svd.s[t] * svd.s[t];
      if (acc >= energy * total) return { k: t + 1, svd };
    }
    if (k === full) return { k: full, svd };
  }
}

/** A float32 tensor of `shape` that a structure-only pass emits instead of computing it: reading it is a bug. */
function placeholder(name: string, shape: number[]): Tensor {
  return Tensor.fromChunks(name, "float32", shape, 4 * shape[0] * shape[1], () => {
    throw new Error(`Tensor '${name}' was not computed (structure-only pass)`);
  });
}

/**
 * Factorizes one FC layer; returns it unchanged when that would not save parameters. With `structureOnly` and a
 * rank that does not depend on the weights (`rank`, `bytes`), only the wiring is made: the two factors are
 * placeholders (no SVD is run).
 */
export async function factorize(layer: Layer, options: TsvdOptions, structureOnly = false): Promise<Layer[]> {
  const wt = layer.params.weight;
  const [m, n] = wt.shape;
  let a: Tensor, b: Tensor, k: number;
  const fixed = structureOnly ? fixedRank(m, n, options) : undefined;
  if (fixed !== undefined) {
    k = fixed;
    if (k * (m + n) >= m * n && !options.always) return [layer];
    a = placeholder(`${wt.name}_svd_v`, [k, n]);
    b = placeholder(`${wt.name}_svd_u`, [m, k]);
  } else {
    const w = await wt.float32();
    const chosen = await chooseRank(w, m, n, options);
    k = chosen.k;
    if (k * (m + n) >= m * n && !options.always) return [layer];
    const pre = chosen.svd;
    const svd = pre && pre.k >= k ? pre : await randomizedSvd(w, m, n, k, { powerIterations: options.powerIterations });
    const av = new Float32Array(k * n), bv = new Float32Array(m * k);
    for (let t = 0; t < k; t++) {
      const r = Math.sqrt(svd.s[t]);
      for (let j = 0; j < n; j++) av[t * n + j] = r * svd.vt[t * n + j];
      for (let i = 0; i < m; i++) bv[i * k + t] = r * svd.u[i * svd.k + t];
    }
    a = Tensor.fromFloat32(`${wt.name}_svd_v`, [k, n], av);
    b = Tensor.fromFloat32(`${wt.name}_svd_u`, [m, k], bv);
  }
  const mid = `${layer.name}_svd`;
  const from = layer.from ?? layer.name;
  const first: Layer = {
    name: mid,
    op: "FC",
    attrs: {},
    inputs: layer.inputs,
    outputs: [mid],
    params: { weight: a },
    from,
  };
  const second: Layer = {
    ...layer,
    inputs: [mid],
    params: { ...layer.params, weight: b },
    origin: undefined,
    from,
  };
  return [first, second];
}

/** Creates the TSVD stage (`structureOnly`: see {@link factorize}). */
export function tsvdStage(options: TsvdOptions, structureOnly = false): TransformStream<Layer, Layer> {
  return new TransformStream<Layer, Layer>({
    async transform(layer, controller) {
      const name = layer.from ?? layer.name;
      const chosen = !options.layers || options.layers.includes(name) || options.layers.includes(layer.name);
      if (layer.op !== "FC" || !chosen || !layer.params.weight) return controller.enqueue(layer);
      for (const l of await factorize(layer, options, structureOnly)) controller.enqueue(l);
    },
  });
}

/** The truncated-SVD stage: `{ "tsvd": { "rank": 256 } }`, `--svd rank=256`. */
export const tsvd: StageModule<"tsvd", TsvdOptions> = {
  kind: "tsvd",
  flag: { name: "svd", type: "string", help: "rank=K | energy=E | bytes=B: truncated SVD of FC layers" },
  validate(o) {
    const t = o as TsvdOptions;
    if (t.rank === undefined && t.energy === undefined && t.bytes === undefined) return "needs rank, energy or bytes";
    return undefined;
  },
  fromFlags(value) {
    const v = String(value);
    const kv = keyValues("--svd", v.includes("=") ? v : `rank=${v}`);
    const t: TsvdOptions = {};
    if (kv.rank) t.rank = Number(kv.rank);
    if (kv.energy) t.energy = Number(kv.energy);
    if (kv.bytes) t.bytes = Number(kv.bytes);
    return t;
  },
  create: (options, ctx) => tsvdStage(options, ctx.structureOnly),
};
