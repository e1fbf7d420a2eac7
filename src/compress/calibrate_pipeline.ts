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
import { Serial } from "./serial.ts";
import { applyStages, openModel, type OpenOptions } from "../app/convert.ts";
import { scanStructure, useCounts } from "../eval/structure.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import {
  type AwareClusterEvent,
  type AwareClusterSettings,
  ClusterCalibrator,
  type LayerStats,
} from "./aware_cluster.ts";
import { type CalibrateSettings, type CalibrationEvent, Calibrator, type Criterion } from "./calibrate.ts";
import {
  type CalibrationBatch,
  calibrationBatches,
  type CalibrationDataOptions,
  loadCalibration,
  sampleDims,
} from "./calibration_data.ts";
import type { ClusterOptions } from "./cluster.ts";
import { analyzePruning, planPruning, type PruneOptions, type PrunePlan } from "./prune.ts";
import { createStage, kindOf } from "./stages.ts";
import type { Recipe, StageSpec } from "./recipe.ts";

/** Options of `compress --calibration`: the data (as `eval --data`) and the tuning. */
export interface CalibrationOptions extends CalibrationDataOptions, CalibrateSettings {
  /** Data-aware clustering (see ./aware_cluster.ts); `false` clusters by the weights alone. */
  cluster?: AwareClusterSettings | false;
  /**
   * Samples per batch for the data-aware clustering's statistics (`--batch`): the samples go through the model one
   * batch per pass and only the layers' input moments are kept, so memory is one batch whatever `limit` is; the
   * statistics then come from the original layers' activations. Without it the whole calibration set is one batch
   * and each layer is clustered on the activations of the clustered layers before it.
   */
  batch?: number;
}

/** What calibration did, for the report. */
export interface CalibrationSummary {
  data: string;
  samples: number;
  criterion?: Criterion;
  /** True when the prune order came from measured sensitivities. */
  sensitivityOrder: boolean;
  events: CalibrationEvent[];
  /** Data-aware clustering, per layer. */
  clusterEvents?: AwareClusterEvent[];
  /** Samples the clustering statistics came from, when batched. */
  clusterSamples?: number;
  /** Top-1 class per calibration sample of the model the stream produced (streaming data-aware clustering). */
  top1?: Int32Array;
  /** The model's first output on the calibration samples [samples, classes] (streaming data-aware clustering). */
  output?: Float32Array;
}

/** A prepared calibrated compression: the prune plan (pass 1 done) and the stages of pass 2. */
export interface CalibratedRun {
  plan?: PrunePlan;
  /** The recipe's stages for pass 2 over `model`, with the calibrator in place. */
  stages(model: ModelStream): Promise<TransformStream<Layer, Layer>[]>;
  summary(): CalibrationSummary;
}

/** Key under which a statistics cache records its sample count. */
const SAMPLES = "\u0000samples";

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
  clusterCal?: ClusterCalibrator,
  structureOnly = false,
): TransformStream<Layer, Layer>[] {
  const out: TransformStream<Layer, Layer>[] = [];
  // The two calibrators take turns, layer by layer (see ./serial.ts).
  const serial = new Serial();
  specs.forEach((s, i) => {
    if (i === at && cal) out.push(cal.stage(serial));
    if (cal && kindOf(s) === "gap") out.push(cal.preGapTap());
    if (clusterCal && kindOf(s) === "cluster") out.push(clusterCal.stage(serial));
    else out.push(createStage(s, { model, plan: plan ?? emptyPlan(), structureOnly }));
  });
  if (at === specs.length && cal) out.push(cal.stage(serial));
  return out;
}

/** The stages of `specs` for a structure-only scan of `model` (no calibrator; no tensor computed that can be skipped). */
function wiringStages(model: ModelStream, specs: StageSpec[]): TransformStream<Layer, Layer>[] {
  return stagesWith(model, specs, -1, undefined, undefined, undefined, true);
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
    applyStages(first, wiringStages(first, specs.slice(0, Math.max(0, at)))),
  );
  first.close?.();
  const wiring = { uses: useCounts(structure), keep: structure.outputs };
  // The same for the stream the data-aware cluster stage sees (after every stage before it).
  const clusterAt = options.cluster === false ? -1 : specs.findIndex((s) => "cluster" in s);
  let clusterWiring: typeof wiring | undefined;
  if (clusterAt >= 0) {
    const m = await openModel(input, open);
    const st = await scanStructure(
      applyStages(m, wiringStages(m, specs.slice(0, clusterAt))),
    );
    m.close?.();
    clusterWiring = { uses: useCounts(st), keep: st.outputs };
  }
  const dims = sampleDims(header, open.inputShape);
  const batched = options.batch !== undefined && clusterAt >= 0;
  // One batch for the prune/GAP calibrator and the streaming clustering (not needed when batched and no other).
  const whole: CalibrationBatch | undefined = batched && at < 0 ? undefined : await loadCalibration(options, dims);
  const batch = { x: new Float32Array(0), shape: [0, ...dims], ...whole, input: header.inputs[0].name };
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
      plan = planPruning(analysis, prune);
      summary.sensitivityOrder = plan.measured ?? false;
    } finally {
      cal.dispose();
      model.close?.();
    }
  }
  return {
    plan,
    async stages(model: ModelStream) {
      let clusterCal: ClusterCalibrator | undefined;
      if (clusterWiring) {
        const spec = (specs[clusterAt] as { cluster: ClusterOptions }).cluster;
        const settings = { backend: options.backend, ...(options.cluster || {}) };
        if (batched) {
          // One pass over the model per batch, keeping only each layer's input moments.
          const cache = options.cluster ? options.cluster.statsCache : undefined;
          const stats = cache ?? new Map<string, LayerStats>();
          let samples = cache?.size ? (cache.get(SAMPLES)?.rows ?? 0) : 0;
          const batches = cache?.size ? [] : calibrationBatches(options, dims, options.batch!);
          // Patch rows sampled per conv and batch: about twice the single-batch budget over the whole set.
          const perBatch = Math.max(
            256,
            Math.ceil(
              (2 * (settings.maxRows ?? 4096) * options.batch!) / Math.max(options.batch!, options.limit ?? 128),
            ),
          );
          for await (const b of batches) {
            samples += b.shape[0];
            const m = await openModel(input, open);
            try {
              const pre = at >= 0 && at <= clusterAt
                ? await Calibrator.create(batch, wiring, { plan: plan ?? emptyPlan() }, options)
                : undefined;
              const input0 = { ...b, input: header.inputs[0].name };
              const collect = await ClusterCalibrator.collector(input0, clusterWiring, spec, stats, {
                ...settings,
                maxRows: perBatch,
              });
              const before = stagesWith(m, specs.slice(0, clusterAt), pre ? at : -1, plan, pre);
              const layers = applyStages(m, [...before, collect.stage()]).layers;
              for await (const _ of layers) { /* drain */ }
            } finally {
              m.close?.();
            }
          }
          stats.set(SAMPLES, { d: 0, rows: samples, diag: new Float64Array(0), sum: new Float64Array(0) });
          summary.clusterSamples = samples;
          clusterCal = await ClusterCalibrator.fromStats(stats, spec, settings);
        } else {
          const c = await ClusterCalibrator.create(batch, clusterWiring, spec, settings);
          clusterCal = c;
          Object.defineProperty(summary, "top1", { get: () => c.top1, enumerable: false, configurable: true });
          Object.defineProperty(summary, "output", { get: () => c.output, enumerable: false, configurable: true });
        }
        summary.clusterEvents = clusterCal.events;
      }
      if (at < 0) return stagesWith(model, specs, -1, plan, undefined, clusterCal);
      const cal = await Calibrator.create(batch, wiring, { plan: plan ?? emptyPlan() }, options);
      summary.events = cal.events;
      return stagesWith(model, specs, at, plan, cal, clusterCal);
    },
    summary: () => summary,
  };
}

/** Short text lines for the CLI. */
export function formatCalibration(s: CalibrationSummary): string {
  const lines = [
    `calibration: ${s.samples || s.clusterSamples || 0} samples of ${s.data}` +
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
  if (s.clusterEvents?.length) {
    lines.push(
      "data-aware clustering (relative output error on the calibration data, plain k-means -> this)" +
        (s.clusterSamples ? `, statistics of ${s.clusterSamples} samples in batches:` : ":"),
    );
    for (const e of s.clusterEvents) {
      const err = Number.isNaN(e.error)
        ? ""
        : ` ${e.plainError?.toExponential(2) ?? "?"} -> ${e.error.toExponential(2)}${
          e.gptq ? " (error feedback)" : ""
        }`;
      const bias = e.biasShift === undefined ? "" : `; bias corrected by up to ${(100 * e.biasShift).toFixed(1)}%`;
      lines.push(`  ${e.layer}: ${e.bits} bits${err}${bias}${e.note ? ` (${e.note})` : ""}`);
    }
  }
  return lines.join("\n");
}
