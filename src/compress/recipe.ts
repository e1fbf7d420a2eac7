/**
 * Recipes: which compression stages run, in which order, with which options. A recipe is JSON
 * (`recipes/*.json`) or built from CLI flags:
 *
 * ```json
 * { "name": "vgg16-thesis",
 *   "stages": [ { "gap": {} }, { "prune": { "flops": 0.5 } }, { "tsvd": { "energy": 0.8 } },
 *               { "cluster": { "bits": { "conv": 5, "fc": 4 } } } ],
 *   "weights": "f16" }
 * ```
 * `weights` says how tensors no stage encoded (biases, small layers) are stored in `.cvp`.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { ClusterOptions } from "./cluster.ts";
import type { PruneOptions } from "./prune.ts";
import type { TsvdOptions } from "./tsvd.ts";

/** One stage of a recipe. */
export type StageSpec =
  | { gap: Record<string, never> }
  | { prune: PruneOptions }
  | { tsvd: TsvdOptions }
  | { cluster: ClusterOptions };

/** A recipe. */
export interface Recipe {
  name?: string;
  description?: string;
  stages: StageSpec[];
  /** How `.cvp` stores tensors no stage encoded. */
  weights?: "f32" | "f16";
}

const KINDS = ["gap", "prune", "tsvd", "cluster"] as const;
/** Pruning criteria (the activation ones need `compress --calibration`). */
const CRITERIA: readonly string[] = ["l1", "l2", "mean_activation", "apoz"];

/** The kind of a stage spec. */
export function stageKind(s: StageSpec): (typeof KINDS)[number] {
  return Object.keys(s)[0] as (typeof KINDS)[number];
}

/** Checks a parsed recipe; `where` names its source in errors. */
export function validateRecipe(r: unknown, where: string): Recipe {
  const fail = (msg: string): never => {
    throw new ConvpressError("usage", `Invalid recipe ${where}: ${msg}`, { file: where });
  };
  if (!r || typeof r !== "object" || !Array.isArray((r as Recipe).stages)) return fail('expected {"stages": [...]}');
  const recipe = r as Recipe;
  recipe.stages.forEach((s, i) => {
    const keys = s && typeof s === "object" ? Object.keys(s) : [];
    if (keys.length !== 1 || !(KINDS as readonly string[]).includes(keys[0])) {
      fail(`stage ${i + 1} must be one of {"gap"|"prune"|"tsvd"|"cluster": {...}}`);
    }
    const o = (s as Record<string, unknown>)[keys[0]];
    if (!o || typeof o !== "object") fail(`stage ${i + 1} (${keys[0]}) needs an options object`);
    if (keys[0] === "cluster") {
      const bits = (o as ClusterOptions).bits;
      const ok = (b: unknown) => b === undefined || (Number.isInteger(b) && (b as number) >= 1 && (b as number) <= 16);
      if (typeof bits === "number" ? !ok(bits) : !bits || ![bits.conv, bits.fc, bits.default].every(ok)) {
        fail(`stage ${i + 1} (cluster) needs bits from 1 to 16`);
      }
    }
    if (keys[0] === "prune") {
      const p = o as PruneOptions;
      if (p.keep === undefined && p.flops === undefined && p.params === undefined) {
        fail(`stage ${i + 1} (prune) needs keep, flops or params`);
      }
      for (const v of [p.flops, p.params, typeof p.keep === "number" ? p.keep : undefined]) {
        if (v !== undefined && !(v > 0 && v < 1)) fail(`stage ${i + 1} (prune): fractions must be between 0 and 1`);
      }
      if (p.criterion !== undefined && !CRITERIA.includes(p.criterion)) {
        fail(`stage ${i + 1} (prune): criterion must be one of ${CRITERIA.join(", ")}`);
      }
    }
    if (keys[0] === "tsvd") {
      const t = o as TsvdOptions;
      if (t.rank === undefined && t.energy === undefined && t.bytes === undefined) {
        fail(`stage ${i + 1} (tsvd) needs rank, energy or bytes`);
      }
    }
  });
  if (recipe.weights !== undefined && recipe.weights !== "f32" && recipe.weights !== "f16") {
    fail(`weights must be "f32" or "f16"`);
  }
  return recipe;
}

/** Reads and checks a recipe file. */
export async function loadRecipe(path: string): Promise<Recipe> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConvpressError("io", `Cannot read recipe '${path}': ${(e as Error).message}`, { file: path, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConvpressError("usage", `Invalid recipe ${path}: ${(e as Error).message}`, { file: path, cause: e });
  }
  const r = validateRecipe(json, path);
  r.name ??= path.slice(path.lastIndexOf("/") + 1).replace(/\.json$/, "");
  return r;
}

function keyValues(flag: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of v.split(",")) {
    const [k, val] = part.split("=");
    if (val === undefined) throw new ConvpressError("usage", `Invalid ${flag} '${v}': expected key=value[,key=value]`);
    out[k.trim()] = val.trim();
  }
  return out;
}

function fraction(flag: string, v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) {
    throw new ConvpressError("usage", `Invalid ${flag} value '${v}': expected a fraction in (0, 1)`);
  }
  return n;
}

/**
 * Builds a recipe from CLI flags, in the thesis order: `--gap`, `--prune flops=0.5|params=0.5|keep=0.5`,
 * `--svd rank=K|energy=E|bytes=B`, `--bits N` or `--bits conv=N,fc=M`.
 */
export function recipeFromFlags(f: { gap?: boolean; prune?: string; svd?: string; bits?: string }): Recipe {
  const stages: StageSpec[] = [];
  if (f.gap) stages.push({ gap: {} });
  if (f.prune) {
    const kv = keyValues("--prune", f.prune.includes("=") ? f.prune : `keep=${f.prune}`);
    const p: PruneOptions = {};
    if (kv.keep) p.keep = fraction("--prune keep", kv.keep);
    if (kv.flops) p.flops = fraction("--prune flops", kv.flops);
    if (kv.params) p.params = fraction("--prune params", kv.params);
    if (kv.criterion) p.criterion = kv.criterion as PruneOptions["criterion"];
    stages.push({ prune: p });
  }
  if (f.svd) {
    const kv = keyValues("--svd", f.svd.includes("=") ? f.svd : `rank=${f.svd}`);
    const t: TsvdOptions = {};
    if (kv.rank) t.rank = Number(kv.rank);
    if (kv.energy) t.energy = Number(kv.energy);
    if (kv.bytes) t.bytes = Number(kv.bytes);
    stages.push({ tsvd: t });
  }
  if (f.bits) stages.push({ cluster: { bits: parseBits(f.bits) } });
  return validateRecipe({ name: "flags", stages }, "from flags");
}

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

/**
 * A recipe file with flags on top: a flag's stage replaces the recipe's stage of the same kind (in place), or joins
 * in the thesis order; cluster widths merge (flags win per key).
 */
export function combineRecipes(base: Recipe, flags: Recipe): Recipe {
  const stages = base.stages.map((s) => ({ ...s })) as StageSpec[];
  for (const f of flags.stages) {
    const kind = stageKind(f);
    const i = stages.findIndex((s) => stageKind(s) === kind);
    if (i < 0) {
      const order = KINDS.indexOf(kind);
      const at = stages.findIndex((s) => KINDS.indexOf(stageKind(s)) > order);
      stages.splice(at < 0 ? stages.length : at, 0, f);
    } else if ("cluster" in f && "cluster" in stages[i]) {
      const old = (stages[i] as { cluster: ClusterOptions }).cluster;
      const asObj = (b: ClusterOptions["bits"]) => (typeof b === "number" ? { default: b } : b);
      const [ob, nb] = [asObj(old.bits), asObj(f.cluster.bits)];
      const bits = typeof f.cluster.bits === "number"
        ? f.cluster.bits
        : { ...ob, ...nb, layers: { ...ob.layers, ...nb.layers } };
      stages[i] = { cluster: { ...old, ...f.cluster, bits } };
    } else stages[i] = f;
  }
  return validateRecipe({ ...base, name: `${base.name ?? "recipe"}+flags`, stages }, "from --recipe and flags");
}
