/**
 * `compress`: runs a recipe's stages over a model stream and writes the result (a `.cvp` normally), with a report.
 *
 * ```
 * file -> reader -> [tap: before] -> gap -> prune -> tsvd -> cluster -> [tap: after] -> writer -> file
 * ```
 * Pruning plans from a first pass over the same stages that precede it (see ./prune.ts), so the input is read
 * twice; stdin is spooled to a temporary file first in that case.
 *
 * @module
 */
import {
  applyStages,
  formatFromExtension,
  openModel,
  type OpenOptions,
  progressStage,
  writeModel,
} from "../app/convert.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import type { ProgressFn } from "../progress.ts";
import { analyzePruning, planPruning, type PruneOptions, type PrunePlan } from "./prune.ts";
import { createStage } from "./stages.ts";
import type { Recipe, StageSpec } from "./recipe.ts";
import { buildReport, type CompressReport, ReportTap } from "./report.ts";
import { ConvpressError } from "../errors.ts";
import { releaseMemory } from "../memory.ts";
import type { CalibratedRun, CalibrationOptions } from "./calibrate_pipeline.ts";
import type { ClusterMeasure } from "./cluster.ts";
import { makeTempFile, removeTemporary } from "../bytes/temp_files.ts";
import { asOutputError } from "../bytes/byte_sink.ts";

/** Options of {@link compress}. */
export interface CompressOptions extends OpenOptions {
  /** Output format (default: from the extension, else `.cvp`). */
  to?: string;
  progress?: ProgressFn;
  /** Calibration data and tuning: data-aware pruning and least-squares fits (see ./calibrate.ts). */
  calibration?: CalibrationOptions;
  /** Measure other bit widths per layer in the cluster stage (see ./targets.ts). */
  measure?: ClusterMeasure;
}

function stagesOf(model: ModelStream, specs: StageSpec[], plan?: PrunePlan): TransformStream<Layer, Layer>[] {
  return specs.map((s) => createStage(s, { model, plan }));
}

async function spoolStdin(): Promise<string> {
  const path = await makeTempFile({ prefix: "convpress-stdin-" });
  const f = await Deno.open(path, { write: true });
  await Deno.stdin.readable.pipeTo(f.writable).catch((e) => {
    throw asOutputError(path, e);
  });
  return path;
}

/** Compresses `input` into `output` by `recipe`; returns the report. */
export async function compress(
  input: string,
  output: string,
  recipe: Recipe,
  options: CompressOptions = {},
): Promise<CompressReport> {
  const t0 = performance.now();
  if (options.measure) {
    const measure = options.measure;
    recipe = {
      ...recipe,
      stages: recipe.stages.map((s) => ("cluster" in s ? { cluster: { ...s.cluster, measure } } : s)),
    };
  }
  const to = options.to ?? formatFromExtension(output) ?? "cvp";
  const pruneAt = recipe.stages.findIndex((s) => "prune" in s);
  let spooled: string | undefined;
  try {
    if ((pruneAt >= 0 || options.calibration) && input === "-") input = spooled = await spoolStdin();
    let plan: PrunePlan | undefined;
    let cal: CalibratedRun | undefined;
    const criterion = pruneAt >= 0 ? (recipe.stages[pruneAt] as { prune: PruneOptions }).prune.criterion : undefined;
    if (!options.calibration && (criterion === "mean_activation" || criterion === "apoz")) {
      throw new ConvpressError("usage", `Pruning criterion '${criterion}' needs calibration data (--calibration PATH)`);
    }
    if (options.calibration) {
      const { prepareCalibration } = await import("./calibrate_pipeline.ts");
      cal = await prepareCalibration(input, recipe, options, options.calibration);
      plan = cal.plan;
    } else if (pruneAt >= 0) {
      const first = await openModel(input, options);
      const before = recipe.stages.slice(0, pruneAt);
      const { prune } = recipe.stages[pruneAt] as { prune: PruneOptions };
      try {
        plan = planPruning(await analyzePruning(applyStages(first, stagesOf(first, before)), prune), prune);
      } finally {
        first.close?.();
      }
    }
    const model = await openModel(input, options);
    const beforeTap = new ReportTap(model.header), afterTap = new ReportTap(model.header);
    const progress = progressStage(model.header, options.progress, releaseMemory);
    const middle = cal ? await cal.stages(model) : stagesOf(model, recipe.stages, plan);
    const stages = [beforeTap.stream(), ...middle, afterTap.stream(), progress];
    const tensorBytes = new Map<string, number>();
    const onTensor = (tensor: string, bytes: number) => tensorBytes.set(tensor, bytes);
    try {
      await writeModel(applyStages(model, stages), output, to, { weights: recipe.weights ?? "f16", onTensor });
    } finally {
      model.close?.();
    }
    const fileBytes = output === "-" ? 0 : (await Deno.stat(output)).size;
    const report = buildReport(beforeTap, afterTap, {
      input: spooled ? "-" : input,
      output,
      recipe: recipe.name ?? "recipe",
      fileBytes,
      seconds: (performance.now() - t0) / 1000,
      pruneOrder: plan?.order,
      pruneSkipped: plan?.skipped,
      tensorBytes: tensorBytes.size > 0 ? tensorBytes : undefined,
    });
    if (plan?.warning) report.pruneWarning = plan.warning;
    if (cal) report.calibration = cal.summary();
    return report;
  } finally {
    if (spooled) await removeTemporary(spooled);
  }
}
