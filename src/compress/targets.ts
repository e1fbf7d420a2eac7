/**
 * Targets instead of knobs: `compress --target-size BYTES` chooses each layer's bit width so that the final `.cvp`
 * (entropy coding, topology and framing included) fits in BYTES with the least output error.
 *
 * ```
 * pass 1 (measure): the recipe's stages, the cluster stage measuring every width in `bits` per layer:
 *                   relative output error (on the calibration data; on the weights without it) and exact bytes
 * choose:           greedy on the convex hull: start every layer at its narrowest width, then repeatedly take
 *                   the widening with the largest drop of squared error per byte that still fits
 * pass 2:           the recipe with the chosen `bits.layers`; if the file still exceeds the target (pass 2 sees
 *                   the quantized activations, so sizes move a little), choose again with the excess taken off
 * ```
 * Each layer's relative output error counts the same at the model output (errors of independent layers add up in
 * squares). The choice is returned as a recipe that re-runs it.
 *
 * @module
 */
import { inspectCvp } from "../../formats/cvp/mod.ts";
import { ConvpressError } from "../errors.ts";
import type { ClusterOptions } from "./cluster.ts";
import { compress, type CompressOptions } from "./compress.ts";
import type { CompressReport } from "./report.ts";
import type { Recipe, StageSpec } from "./recipe.ts";

/** Options of {@link compressToTarget}. */
export interface TargetOptions {
  /** The `.cvp` file's size at most, in bytes. */
  size: number;
  /** Candidate bit widths (default 2 to 8). */
  bits?: number[];
}

/** One layer's measured options. */
export interface LayerOptions {
  layer: string;
  tensor: string;
  options: { bits: number; error: number; bytes: number }[];
}

/** What a target run chose and reached. */
export interface TargetSummary {
  target: number;
  reached: boolean;
  /** Bytes of the file outside the clustered weights (topology, biases, framing), from pass 1. */
  overhead: number;
  predictedBytes: number;
  passes: number;
  choice: { layer: string; bits: number; error: number; bytes: number }[];
  /** The recipe that reproduces the choice. */
  recipe: Recipe;
  warning?: string;
}

/** Chooses a width per layer for at most `budget` weight bytes (see the module doc); undefined when none fits. */
export function chooseBits(layers: LayerOptions[], budget: number): Map<string, number> | undefined {
  const at = layers.map(() => 0);
  let total = 0;
  for (const l of layers) total += l.options[0].bytes;
  if (total > budget) return undefined;
  for (;;) {
    let best = -1, bestTo = 0, bestRate = 0;
    layers.forEach((l, i) => {
      const cur = l.options[at[i]];
      for (let t = at[i] + 1; t < l.options.length; t++) {
        const o = l.options[t];
        const db = o.bytes - cur.bytes, de = cur.error ** 2 - o.error ** 2;
        if (total + db > budget || de <= 0) continue;
        const rate = db <= 0 ? Infinity : de / db;
        if (rate > bestRate) [best, bestTo, bestRate] = [i, t, rate];
      }
    });
    if (best < 0) break;
    total += layers[best].options[bestTo].bytes - layers[best].options[at[best]].bytes;
    at[best] = bestTo;
  }
  return new Map(layers.map((l, i) => [l.layer, l.options[at[i]].bits]));
}

function withCluster(recipe: Recipe, bits: ClusterOptions["bits"]): Recipe {
  const stages: StageSpec[] = recipe.stages.filter((s) => !("cluster" in s));
  const old = recipe.stages.find((s) => "cluster" in s) as { cluster: ClusterOptions } | undefined;
  stages.push({ cluster: { ...old?.cluster, bits } });
  return { ...recipe, stages };
}

/** Compresses `input` into `output` to at most `target.size` bytes (see the module doc). */
export async function compressToTarget(
  input: string,
  output: string,
  recipe: Recipe,
  options: CompressOptions,
  target: TargetOptions,
): Promise<CompressReport & { target: TargetSummary }> {
  if (output === "-") throw new ConvpressError("usage", "--target-size needs an output file, not stdout");
  const widths = target.bits ?? [2, 3, 4, 5, 6, 7, 8];
  const measured: LayerOptions[] = [];
  const tmp = await Deno.makeTempFile({ prefix: "convpress-target-", suffix: ".cvp" });
  let overhead: number;
  try {
    const measureRecipe = withCluster(recipe, Math.max(...widths));
    const calibration = options.calibration
      ? { ...options.calibration, cluster: { ...options.calibration.cluster, measureBits: widths, measureOnly: true } }
      : undefined;
    const r1 = await compress(input, tmp, measureRecipe, {
      ...options,
      calibration,
      measure: calibration ? undefined : { bits: widths, into: measured },
    });
    for (const e of r1.calibration?.clusterEvents ?? []) {
      if (e.options && e.tensor) measured.push({ layer: e.layer, tensor: e.tensor, options: e.options });
    }
    const bytes = new Map((await inspectCvp(tmp)).tensors.map((t) => [t.tensor, t.bytes]));
    overhead = r1.fileBytes;
    for (const m of measured) overhead -= bytes.get(m.tensor) ?? 0;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  let budget = target.size - overhead;
  // Batched statistics do not depend on the widths: collect them once for all passes.
  if (options.calibration?.batch !== undefined && options.calibration.cluster !== false) {
    options = {
      ...options,
      calibration: { ...options.calibration, cluster: { ...options.calibration.cluster, statsCache: new Map() } },
    };
  }
  let report: CompressReport | undefined;
  let summary: TargetSummary | undefined;
  for (let pass = 2; pass <= 4; pass++) {
    const choice = chooseBits(measured, budget);
    const bits = choice ?? new Map(measured.map((m) => [m.layer, m.options[0].bits]));
    const chosen = measured.map((m) => {
      const o = m.options.find((x) => x.bits === bits.get(m.layer))!;
      return { layer: m.layer, ...o };
    });
    const layers = Object.fromEntries(chosen.map((c) => [c.layer, c.bits]));
    const r = withCluster({ ...recipe, name: `${recipe.name ?? "recipe"}-${target.size}B` }, { layers });
    report = await compress(input, output, r, options);
    const predicted = overhead + chosen.reduce((s, c) => s + c.bytes, 0);
    summary = {
      target: target.size,
      reached: report.fileBytes <= target.size,
      overhead,
      predictedBytes: predicted,
      passes: pass,
      choice: chosen,
      recipe: r,
    };
    if (!choice) break; // even the narrowest widths do not fit
    if (summary.reached) break;
    budget -= report.fileBytes - target.size;
  }
  if (!summary!.reached) {
    summary!.warning = `Target size ${target.size} B not reached: the file is ${report!.fileBytes} B` +
      (chooseBits(measured, target.size - overhead) ? "" : ` (even ${Math.min(...widths)} bits everywhere is larger)`);
  }
  return { ...report!, target: summary! };
}

/** Text lines of a target run for the CLI. */
export function formatTarget(t: TargetSummary): string {
  const lines = [
    `target size ${t.target} B: ${t.reached ? "reached" : "NOT reached"} after ${t.passes} passes ` +
    `(predicted ${t.predictedBytes} B; ${t.overhead} B outside the clustered weights)`,
    "chosen bits per layer (relative output error, weight bytes):",
  ];
  for (const c of t.choice) lines.push(`  ${c.layer}: ${c.bits} bits (${c.error.toExponential(2)}, ${c.bytes} B)`);
  return lines.join("\n");
}
