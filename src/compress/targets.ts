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
  size?: number;
  /**
   * Top-1 agreement with the original on the calibration data may drop at most this many points: the smallest size
   * that keeps it (bisection over sizes; needs streaming calibration, no `--batch`).
   */
  maxDrop?: number;
  /** Bisection steps for `maxDrop` (default 5). */
  steps?: number;
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
  /** Top-1 agreement (%) with the original model on the calibration data (streaming calibration only). */
  agreement?: number;
  maxDrop?: number;
  /** The sizes tried for `maxDrop`, with the file bytes and agreement each gave. */
  tries?: { size: number; bytes: number; agreement: number }[];
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
  if (target.size === undefined && target.maxDrop === undefined) {
    throw new ConvpressError("usage", "A target needs a size or a maximum drop");
  }
  const widths = target.bits ?? [2, 3, 4, 5, 6, 7, 8];
  // Batched statistics do not depend on the widths: collect them once for all passes.
  if (options.calibration?.batch !== undefined && options.calibration.cluster !== false) {
    options = {
      ...options,
      calibration: { ...options.calibration, cluster: { ...options.calibration.cluster, statsCache: new Map() } },
    };
  }
  const measured: LayerOptions[] = [];
  const tmp = await Deno.makeTempFile({ prefix: "convpress-target-", suffix: ".cvp" });
  let overhead: number;
  let r1top1: Int32Array | undefined;
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
    r1top1 = r1.calibration?.top1;
    const bytes = new Map((await inspectCvp(tmp)).tensors.map((t) => [t.tensor, t.bytes]));
    overhead = r1.fileBytes;
    for (const m of measured) overhead -= bytes.get(m.tensor) ?? 0;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  const reference = r1top1;
  const agreementOf = (r: CompressReport): number | undefined => {
    const t = r.calibration?.top1;
    if (!reference || !t || t.length !== reference.length) return undefined;
    let same = 0;
    for (let i = 0; i < t.length; i++) if (t[i] === reference[i]) same++;
    return (100 * same) / t.length;
  };
  /** One compression with the widths chosen for at most `size` bytes (retried until the file fits). */
  const attempt = async (size: number, label: string) => {
    let budget = size - overhead;
    let report: CompressReport | undefined;
    let summary: TargetSummary | undefined;
    for (let pass = 1; pass <= 3; pass++) {
      const choice = chooseBits(measured, budget);
      const bits = choice ?? new Map(measured.map((m) => [m.layer, m.options[0].bits]));
      const chosen = measured.map((m) => {
        const o = m.options.find((x) => x.bits === bits.get(m.layer))!;
        return { layer: m.layer, ...o };
      });
      const layers = Object.fromEntries(chosen.map((c) => [c.layer, c.bits]));
      const r = withCluster({ ...recipe, name: `${recipe.name ?? "recipe"}-${label}` }, { layers });
      report = await compress(input, output, r, options);
      summary = {
        target: size,
        reached: report.fileBytes <= size,
        overhead,
        predictedBytes: overhead + chosen.reduce((s, c) => s + c.bytes, 0),
        passes: 1 + pass,
        choice: chosen,
        recipe: r,
        agreement: agreementOf(report),
      };
      if (!choice || summary.reached) break; // fits, or even the narrowest widths do not
      budget -= report.fileBytes - size;
    }
    return { report: report!, summary: summary! };
  };
  let done: { report: CompressReport; summary: TargetSummary };
  if (target.maxDrop === undefined) {
    done = await attempt(target.size!, `${target.size}B`);
    if (!done.summary.reached) {
      done.summary.warning = `Target size ${target.size} B not reached: the file is ${done.report.fileBytes} B` +
        (chooseBits(measured, target.size! - overhead)
          ? ""
          : ` (even ${Math.min(...widths)} bits everywhere is larger)`);
    }
  } else {
    // The smallest size whose top-1 agreement with the original on the calibration data drops at most maxDrop points:
    // bisection between the narrowest and the widest widths (and below target.size when given).
    if (!reference) {
      throw new ConvpressError(
        "usage",
        "--max-drop needs --calibration without --batch (agreement is measured on the calibration batch)",
      );
    }
    const need = 100 - target.maxDrop;
    let lo = overhead + measured.reduce((s, m) => s + m.options[0].bytes, 0);
    let hi = Math.min(target.size ?? Infinity, overhead + measured.reduce((s, m) => s + m.options.at(-1)!.bytes, 0));
    let best: { size: number; agreement: number } | undefined;
    const tries: { size: number; bytes: number; agreement: number }[] = [];
    const top = await attempt(hi, `max-drop-${target.maxDrop}`);
    tries.push({ size: hi, bytes: top.report.fileBytes, agreement: top.summary.agreement ?? 0 });
    done = top;
    if ((top.summary.agreement ?? 0) >= need) {
      best = { size: hi, agreement: top.summary.agreement! };
      for (let i = 0; i < (target.steps ?? 5) && hi - lo > 0.01 * hi; i++) {
        const mid = Math.round((lo + hi) / 2);
        const r = await attempt(mid, `max-drop-${target.maxDrop}`);
        tries.push({ size: mid, bytes: r.report.fileBytes, agreement: r.summary.agreement ?? 0 });
        if ((r.summary.agreement ?? 0) >= need) {
          best = { size: mid, agreement: r.summary.agreement! };
          hi = mid;
          done = r;
        } else lo = mid;
      }
      if (done.summary.target !== best.size) done = await attempt(best.size, `max-drop-${target.maxDrop}`);
    } else {
      done.summary.warning = `Agreement ${top.summary.agreement?.toFixed(2)}% on the calibration data is below ` +
        `${need}% even at the widest widths`;
    }
    done.summary.maxDrop = target.maxDrop;
    done.summary.tries = tries;
  }
  return { ...done.report, target: done.summary };
}

/** Text lines of a target run for the CLI. */
export function formatTarget(t: TargetSummary): string {
  const agreement = t.agreement === undefined
    ? ""
    : `; top-1 agreement with the original on the calibration data ${t.agreement.toFixed(2)}%`;
  const lines = [
    t.maxDrop === undefined
      ? `target size ${t.target} B: ${t.reached ? "reached" : "NOT reached"} after ${t.passes} passes ` +
        `(predicted ${t.predictedBytes} B; ${t.overhead} B outside the clustered weights)${agreement}`
      : `max drop ${t.maxDrop} points: widths chosen for ${t.target} B (predicted ${t.predictedBytes} B; ` +
        `${t.overhead} B outside the clustered weights)${agreement}`,
  ];
  if (t.maxDrop !== undefined) {
    lines.push(
      `--max-drop ${t.maxDrop}: tried ${t.tries?.map((x) => `${x.bytes} B at ${x.agreement.toFixed(2)}%`).join(", ")}`,
    );
  }
  lines.push("chosen bits per layer (relative output error, weight bytes):");
  for (const c of t.choice) lines.push(`  ${c.layer}: ${c.bits} bits (${c.error.toExponential(2)}, ${c.bytes} B)`);
  return lines.join("\n");
}
