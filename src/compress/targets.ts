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
 * With calibration, each layer's error is weighed by its measured gain to the model's output: a probe pass per
 * layer quantizes only that layer (at `probeBits`, the others untouched) and measures the mean KL divergence of the
 * model's output distribution from the original's on the calibration data (streaming: the whole batch, which the
 * clustering stage runs; `--batch`: the written file run on the first `probeSamples` samples); the gain is
 * that divergence over the layer's squared relative output error, so the greedy minimises the predicted sum of output
 * divergences (for small errors the divergence is quadratic in each layer's error and independent layers add up).
 * Without calibration, each layer's relative (weight) error counts the same. The choice
 * is returned as a recipe that re-runs it.
 *
 * @module
 */
import { inspectCvp } from "../../formats/cvp/mod.ts";
import { openModel, type OpenOptions } from "../app/convert.ts";
import { ConvpressError } from "../errors.ts";
import { runModel } from "../eval/run_model.ts";
import { releaseMemory } from "../memory.ts";
import { calibrationBatches, type CalibrationDataOptions, sampleDims } from "./calibration_data.ts";
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
   * that keeps it (bisection over sizes; with `--batch`, each try's file is run on the calibration data).
   */
  maxDrop?: number;
  /** Bisection steps for `maxDrop` (default 5). */
  steps?: number;
  /** Candidate bit widths (default 2 to 8). */
  bits?: number[];
  /**
   * Weigh each layer by its measured gain to the model's output (one probe pass per layer; default true with
   * calibration, which it needs).
   */
  outputSensitivity?: boolean;
  /** The width each layer is probed at for its gain (default 4, or the nearest candidate). */
  probeBits?: number;
  /** With `--batch`: calibration samples each probe runs (default 32). */
  probeSamples?: number;
}

/** One layer's measured options. */
export interface LayerOptions {
  layer: string;
  tensor: string;
  options: { bits: number; error: number; bytes: number }[];
  /**
   * Weight of the layer's squared relative error at the model output (default 1): the measured output divergence
   * per unit of squared layer error.
   */
  gain?: number;
}

/** What a target run chose and reached. */
export interface TargetSummary {
  target: number;
  reached: boolean;
  /** Bytes of the file outside the clustered weights (topology, biases, framing), from pass 1. */
  overhead: number;
  predictedBytes: number;
  passes: number;
  choice: { layer: string; bits: number; error: number; bytes: number; gain?: number }[];
  /** Probe passes run for the output gains (0 when the errors counted the same). */
  probes?: number;
  /** The recipe that reproduces the choice. */
  recipe: Recipe;
  /** Top-1 agreement (%) with the original model on the calibration data (with `--batch`: for `maxDrop` only). */
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
        const db = o.bytes - cur.bytes, de = (l.gain ?? 1) * (cur.error ** 2 - o.error ** 2);
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
  let r1out: Float32Array | undefined;
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
    r1out = r1.calibration?.output;
    r1top1 = r1.calibration?.top1;
    const bytes = new Map((await inspectCvp(tmp)).tensors.map((t) => [t.tensor, t.bytes]));
    overhead = r1.fileBytes;
    for (const m of measured) overhead -= bytes.get(m.tensor) ?? 0;
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  // The model's output on the calibration data: from the streaming clustering, or (batched) by running the file.
  const cal = options.calibration;
  const batched = cal?.batch !== undefined;
  const needOutputs = target.maxDrop !== undefined || target.outputSensitivity !== false;
  const outputOf = async (r: CompressReport, path: string, limit?: number): Promise<Float32Array | undefined> => {
    if (!cal) return undefined;
    if (!batched) return r.calibration?.output;
    const data = limit === undefined ? cal : { ...cal, limit };
    return (await outputsOn(path, { inputShape: options.inputShape }, data, cal.batch!, cal.backend)).y;
  };
  let samplesIn: number | undefined;
  if (cal && batched && needOutputs) {
    const o = await outputsOn(input, options, cal, cal.batch!, cal.backend);
    [r1out, samplesIn] = [o.y, o.n];
  }
  const samples = r1out ? samplesIn ?? r1top1?.length ?? 0 : 0;
  const reference = r1out && samples ? top1Of(r1out, samples) : undefined;
  let probes = 0;
  if (target.outputSensitivity !== false && r1out && reference && measured.length > 1) {
    const probe = target.probeBits ?? 4;
    const at = target.probeSamples ?? 32;
    probes = await measureGains(input, recipe, options, measured, r1out, samples, probe, outputOf, at);
  }
  const agreementOf = (out: Float32Array | undefined): number | undefined => {
    if (!reference || !out || out.length !== r1out!.length) return undefined;
    const t = top1Of(out, samples);
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
        return { layer: m.layer, ...o, ...(m.gain === undefined ? {} : { gain: m.gain }) };
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
        probes,
        choice: chosen,
        recipe: r,
        agreement: batched && target.maxDrop === undefined ? undefined : agreementOf(await outputOf(report, output)),
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
    if (!reference) throw new ConvpressError("usage", "--max-drop needs --calibration (agreement is measured on it)");
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

/**
 * The first output of the model in `path` on the calibration samples ([n, classes]), run batch by batch (`batch` samples at a time;
 * the model is reopened per batch, so memory is one batch's activations and one layer's weights).
 */
export async function outputsOn(
  path: string,
  open: OpenOptions & { inputShape?: number[] },
  data: CalibrationDataOptions,
  batch: number,
  backend?: "wasm" | "cpu",
): Promise<{ y: Float32Array; n: number }> {
  const first = await openModel(path, open);
  const dims = sampleDims(first.header, open.inputShape);
  first.close?.();
  const parts: Float32Array[] = [];
  let n = 0;
  for await (const b of calibrationBatches(data, dims, batch)) {
    n += b.shape[0];
    const m = await openModel(path, open);
    try {
      parts.push(await runModel(m, b.x, b.shape, { backend }));
    } finally {
      m.close?.();
    }
    releaseMemory();
  }
  const out = new Float32Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) [out.set(p, at), at += p.length];
  return { y: out, n };
}

/** Indices of the largest value per row of `y` ([n, k]). */
export function top1Of(y: Float32Array, n: number): Int32Array {
  const k = y.length / n, top = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 1; j < k; j++) if (y[i * k + j] > y[i * k + top[i]]) top[i] = j;
  }
  return top;
}

/**
 * Mean KL divergence of `out`'s distributions from `ref`'s over `n` samples: rows that are probabilities already
 * (non-negative, summing to 1) are taken as they are, others through a softmax.
 */
export function outputDivergence(ref: Float32Array, out: Float32Array, n: number): number {
  const k = ref.length / n;
  const dist = (y: Float32Array, i: number): Float64Array => {
    const row = Float64Array.from(y.subarray(i * k, (i + 1) * k));
    let sum = 0, neg = false;
    for (const v of row) [sum, neg] = [sum + v, neg || v < 0];
    if (neg || Math.abs(sum - 1) > 1e-3) {
      const top = Math.max(...row);
      sum = 0;
      for (let j = 0; j < k; j++) sum += row[j] = Math.exp(row[j] - top);
    }
    for (let j = 0; j < k; j++) row[j] /= sum || 1;
    return row;
  };
  let kl = 0;
  for (let i = 0; i < n; i++) {
    const p = dist(ref, i), q = dist(out, i);
    for (let j = 0; j < k; j++) if (p[j] > 0) kl += p[j] * Math.log(p[j] / Math.max(q[j], 1e-30));
  }
  return Math.max(0, kl / n);
}

/**
 * Sets each measured layer's `gain`: one compression per layer with only that layer clustered at the candidate width
 * nearest `probeBits`, the model's output divergence on the calibration data over the layer's squared relative
 * error there (see the module doc). Returns the number of probe passes.
 */
async function measureGains(
  input: string,
  recipe: Recipe,
  options: CompressOptions,
  measured: LayerOptions[],
  reference: Float32Array,
  samples: number,
  probeBits: number,
  outputOf: (r: CompressReport, path: string, limit?: number) => Promise<Float32Array | undefined>,
  probeSamples: number,
): Promise<number> {
  // Batched probes run the file on the first `probeSamples` samples only (streaming ones see the whole batch).
  const n = options.calibration?.batch === undefined ? samples : Math.min(samples, probeSamples);
  const ref = reference.subarray(0, (reference.length / samples) * n);
  const tmp = await Deno.makeTempFile({ prefix: "convpress-probe-", suffix: ".cvp" });
  let probes = 0;
  try {
    for (const m of measured) {
      const probe = m.options.reduce((a, o) => Math.abs(o.bits - probeBits) < Math.abs(a.bits - probeBits) ? o : a);
      if (!(probe.error > 0)) continue;
      const r = await compress(input, tmp, withCluster(recipe, { layers: { [m.layer]: probe.bits } }), options);
      probes++;
      const out = await outputOf(r, tmp, n);
      if (!out || out.length !== ref.length) continue;
      m.gain = outputDivergence(ref, out, n) / probe.error ** 2;
    }
  } finally {
    await Deno.remove(tmp).catch(() => {});
  }
  // Layers without a measured gain count as the mean of the others.
  const known = measured.filter((m) => m.gain !== undefined);
  const mean = known.reduce((s, m) => s + m.gain!, 0) / (known.length || 1);
  for (const m of measured) m.gain ??= known.length ? mean : 1;
  return probes;
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
  lines.push(
    t.probes
      ? `chosen bits per layer (relative output error, weight bytes, gain to the model output from ${t.probes} probes):`
      : "chosen bits per layer (relative output error, weight bytes):",
  );
  for (const c of t.choice) {
    const gain = c.gain === undefined ? "" : `, gain ${c.gain.toExponential(2)}`;
    lines.push(`  ${c.layer}: ${c.bits} bits (${c.error.toExponential(2)}, ${c.bytes} B${gain})`);
  }
  return lines.join("\n");
}
