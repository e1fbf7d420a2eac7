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
import { kindOf, stageOf, STAGES, type StageSpec } from "./stages.ts";

export type { StageSpec } from "./stages.ts";

/** A recipe. */
export interface Recipe {
  name?: string;
  description?: string;
  stages: StageSpec[];
  /** How `.cvp` stores tensors no stage encoded. */
  weights?: "f32" | "f16";
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
    const stage = keys.length === 1 ? stageOf(keys[0]) : undefined;
    if (!stage) fail(`stage ${i + 1} must be one of {${STAGES.map((s) => `"${s.kind}"`).join("|")}: {...}}`);
    const o = (s as Record<string, unknown>)[keys[0]];
    if (!o || typeof o !== "object") fail(`stage ${i + 1} (${keys[0]}) needs an options object`);
    const bad = stage!.validate(o);
    if (bad) fail(`stage ${i + 1} (${keys[0]})${bad.startsWith("needs") ? " " : ": "}${bad}`);
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

/** True when any stage flag (`--gap`, `--prune`, `--svd`, `--bits`) is set in `flags`. */
export function stageFlagsGiven(flags: Record<string, unknown>): boolean {
  return STAGES.some((s) => flags[s.flag.name] !== undefined && flags[s.flag.name] !== false);
}

/** The stage flags in parseArgs form. */
export const STAGE_FLAGS: Record<string, { type: "boolean" | "string" }> = Object.fromEntries(
  STAGES.map((s) => [s.flag.name, { type: s.flag.type }]),
);

/**
 * Builds a recipe from CLI flags, in the thesis order: `--gap`, `--prune flops=0.5|params=0.5|keep=0.5`,
 * `--svd rank=K|energy=E|bytes=B`, `--bits N` or `--bits conv=N,fc=M`.
 */
export function recipeFromFlags(f: Record<string, unknown>): Recipe {
  const stages: StageSpec[] = [];
  for (const s of STAGES) {
    const v = f[s.flag.name];
    if (v === undefined || v === false || v === "") continue;
    stages.push({ [s.kind]: s.fromFlags(v as string | boolean) } as StageSpec);
  }
  return validateRecipe({ name: "flags", stages }, "from flags");
}

/**
 * A recipe file with flags on top: a flag's stage replaces the recipe's stage of the same kind (in place), or joins
 * in the thesis order; cluster widths merge (flags win per key; a single width from the flags replaces them all).
 */
export function combineRecipes(base: Recipe, flags: Recipe): Recipe {
  const order = (s: StageSpec) => STAGES.findIndex((m) => m.kind === kindOf(s));
  const stages = base.stages.map((s) => ({ ...s })) as StageSpec[];
  for (const f of flags.stages) {
    const i = stages.findIndex((s) => kindOf(s) === kindOf(f));
    if (i < 0) {
      const at = stages.findIndex((s) => order(s) > order(f));
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
