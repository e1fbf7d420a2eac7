/**
 * `compress --calibration`: wires {@link Calibrator}s into the recipe's stages.
 *
 * ```
 * pass 1 (with a prune stage): file -> [preGapTap] -> gap -> [calibrator: analyze] -> analyzePruning -> planPruning
 * pass 2:                       file -> [preGapTap] -> gap -> [calibrator: apply plan] -> prune -> tsvd -> cluster
 * ```
 * The calibrator sits just before the prune stage (just after the GAP stage when there is no prune stage). A
 * structure-only pass over the same stages (no tensor is read) gives the wiring that frees each calibration
 * activation after its last reader. The calibration batch is loaded once and used in both passes.
 *
 * @module
 */
import { applyStages, openModel, type OpenOptions } from "../app/convert.ts";
import { scanStructure, useCounts } from "../eval/structure.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import { type CalibrateSettings, type CalibrationEvent, Calibrator, type Criterion } from "./calibrate.ts";
import { type CalibrationDataOptions, loadCalibration, sampleDims } from "./calibration_data.ts";
import { analyzePruning, planPruning, type PruneOptions, type PrunePlan } from "./prune.ts";
import { createStage, kindOf } from "./stages.ts";
import type { Recipe, StageSpec } from "./recipe.ts";

/** Options of `compress --calibration`: the data (as `eval --data`) and the tuning. */
export interface CalibrationOptions extends CalibrationDataOptions, CalibrateSettings {}

/** What calibration did, for the report. */
export interface CalibrationSummary {
  data: string;
  samples: number;
  criterion?: Criterion;
  /** True when the prune order came from measured sensitivities. */
  sensitivityOrder: boolean;
  events: CalibrationEvent[];
}

/** A prepared calibrated compression: the prune plan (pass 1 done) and the stages of pass 2. */
export interface CalibratedRun {
  plan?: PrunePlan;
  /** The recipe's stages for pass 2 over `model`, with the calibrator in place. */
  stages(model: ModelStream): Promise<TransformStream<Layer, Layer>[]>;
  summary(): CalibrationSummary;
}

function emptyPlan(): PrunePlan {
  return { keep: new Map(), order: [], skipped: [], macsBefore: 0, macsAfter: 0, paramsBefore: 0, paramsAfter: 0 };
}

/**
 * The stages of `specs` over `model`, with `cal`'s pre-GAP tap before the GAP stage and its calibrating stage at
 * index `at` (before the spec there).
 */
function stagesWith(
  model: ModelStream,
  specs: StageSpec[],
  at: number,
  plan: PrunePlan | undefined,
  cal?: Calibrator,
): TransformStream<Layer, Layer>[] {
  const out: TransformStream<Layer, Layer>[] = [];
  specs.forEach((s, i) => {
    if (i === at && cal) out.push(cal.stage());
    if (cal && kindOf(s) === "gap") out.push(cal.preGapTap());
    out.push(createStage(s, { model, plan: plan ?? emptyPlan() }));
  });
  if (at === specs.length && cal) out.push(cal.stage());
  return out;
}

/** Loads the calibration batch, runs pruning's pass 1 on it when the recipe prunes, and prepares pass 2. */
export async function prepareCalibration(
  input: string,
  recipe: Recipe,
  open: OpenOptions & { inputShape?: number[] },
  options: CalibrationOptions,
): Promise<CalibratedRun> {
  const specs = recipe.stages;
  const pruneAt = specs.findIndex((s) => "prune" in s);
  const gapAt = specs.findIndex((s) => "gap" in s);
  const at = pruneAt >= 0 ? pruneAt : gapAt >= 0 ? gapAt + 1 : -1;
  // Wiring of the stream the calibrator sees (a structure-only pass: no tensor is read).
  const first = await openModel(input, open);
  const header = first.header;
  const structure = await scanStructure(
    applyStages(first, stagesWith(first, specs.slice(0, Math.max(0, at)), -1, undefined)),
  );
  first.close?.();
  const wiring = { uses: useCounts(structure), keep: structure.outputs };
  const batch = {
    ...(await loadCalibration(options, sampleDims(header, open.inputShape))),
    input: header.inputs[0].name,
  };
  const summary: CalibrationSummary = {
    data: options.path,
    samples: batch.shape[0],
    sensitivityOrder: false,
    events: [],
  };
  let plan: PrunePlan | undefined;
  if (pruneAt >= 0) {
    const prune = (specs[pruneAt] as { prune: PruneOptions }).prune;
    const criterion: Criterion = prune.criterion ?? "l1";
    summary.criterion = criterion;
    const cal = await Calibrator.create(batch, wiring, { analyze: { criterion, step: prune.step ?? 0.05 } }, options);
    const model = await openModel(input, open);
    try {
      const stream = applyStages(model, [
        ...stagesWith(model, specs.slice(0, pruneAt), -1, undefined, cal),
        cal.stage(),
      ]);
      const analysis = cal.applyTo(
        await analyzePruning(stream, { ...prune, criterion: criterion === "l2" ? "l2" : "l1" }),
      );
      summary.sensitivityOrder = analysis.producers.some((p) => p.removalCost);
      plan = planPruning(analysis, prune);
    } finally {
      cal.dispose();
      model.close?.();
    }
  }
  return {
    plan,
    async stages(model: ModelStream) {
      if (at < 0) return stagesWith(model, specs, -1, plan);
      const cal = await Calibrator.create(batch, wiring, { plan: plan ?? emptyPlan() }, options);
      summary.events = cal.events;
      return stagesWith(model, specs, at, plan, cal);
    },
    summary: () => summary,
  };
}

/** Short text lines for the CLI. */
export function formatCalibration(s: CalibrationSummary): string {
  const lines = [
    `calibration: ${s.samples} samples of ${s.data}` +
    (s.criterion
      ? `; criterion ${s.criterion}; prune order by ${s.sensitivityOrder ? "measured sensitivity" : "weights"}`
      : ""),
  ];
  for (const e of s.events) {
    const err = e.errorBefore === undefined
      ? ""
      : ` relative output error ${e.errorBefore.toExponential(2)} -> ${e.errorAfter!.toExponential(2)}`;
    lines.push(`  ${e.kind} ${e.layer}:${err}${e.note ? ` (${e.note})` : ""}`);
  }
  return lines.join("\n");
}
