/**
 * The prune stage (thesis step 2): remove conv filters and FC rows, and the matching input channels of their
 * consumers, through channel-wise layers (ReLU, pooling, BatchNorm, Scale, dropout, flatten, GAP).
 *
 * Pruning needs a plan before the first layer is rewritten, because the order-deciding scheme compares layers. So
 * it runs in two passes over the stream, both layer by layer:
 * 1. {@link analyzePruning} reads each prunable layer's weights once, keeping only a score per output channel and
 *    the wiring between a producer and its one consumer; {@link planPruning} then decides how many channels each
 *    layer keeps. With a global target (a FLOPs or parameter reduction), the order-deciding scheme prunes
 *    iteratively, each step taking a slice of the layer whose next slice costs least: the normalized importance of
 *    the filters removed per multiply-accumulate saved (its own and its consumer's). The steps are the prune order.
 * 2. {@link pruneStage} rewrites the layers as they stream: rows are dropped and columns selected by a row-local map
 *    (./rows.ts), so no weight is materialized. State between layers: the kept-channel list of each live value.
 *
 * A layer is left alone, with the reason reported, when its output reaches anything other than one Conv or FC
 * through channel-wise layers (an Add, a Concat, a graph output, a grouped conv, two consumers).
 *
 * @module
 */
import { ShapeTracker } from "../model/shapes.ts";
import type { Tensor } from "../model/tensor.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import type { Op } from "../model/ops.ts";
import { mapRows, selectVector } from "./rows.ts";
import { fraction, keyValues, type StageModule } from "./stage.ts";

/** Options of pruning. Give `keep`, or one of the global targets `flops` and `params`. */
export interface PruneOptions {
  /** Fraction of channels each prunable layer keeps, or per layer by name. */
  keep?: number | Record<string, number>;
  /** Global target: reduce the model's multiply-accumulates by this fraction. */
  flops?: number;
  /** Global target: reduce the model's parameters by this fraction. */
  params?: number;
  /**
   * Filter score: L1 (default) or L2 norm of its weights, or from calibration activations (mean activation, APoZ;
   * see ./calibrate.ts).
   */
  criterion?: "l1" | "l2" | "mean_activation" | "apoz";
  /** Fraction of a layer's channels removed per step of the iterative scheme (default 0.05). */
  step?: number;
  /** No layer keeps less than this fraction in global mode (default 0.25). */
  minKeep?: number;
  /** Layers never pruned. */
  exclude?: string[];
}

/** Channel-wise ops: output channel c depends only on input channel c. */
export const CHANNELWISE: ReadonlySet<Op> = new Set<Op>([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "MaxPool",
  "AvgPool",
  "GlobalAvgPool",
  "GlobalMaxPool",
  "BatchNorm",
  "Scale",
  "Dropout",
  "Identity",
]);

/** What pass 1 learns of a prunable layer. */
export interface ProducerInfo {
  name: string;
  op: Op;
  channels: number;
  /** Score per output channel (higher = more important). */
  scores: Float64Array;
  /** Own multiply-accumulates and parameters per output channel. */
  macsPerChannel: number;
  paramsPerChannel: number;
  consumer?: { name: string; outChannels: number; macsPerInput: number; paramsPerInput: number };
  blocked?: string;
  /**
   * Measured cost of removing the r lowest-scored channels, r = 0..channels (from calibration, see ./calibrate.ts);
   * when set, the order-deciding scheme uses it in place of the weight-only cost.
   */
  removalCost?: Float64Array;
}

/** Result of pass 1. */
export interface PruneAnalysis {
  producers: ProducerInfo[];
  totalMacs: number;
  totalParams: number;
}

/** One step of the prune order. */
export interface PruneStep {
  layer: string;
  /** Channels kept after the step. */
  kept: number;
  /** Normalized importance removed per MAC saved. */
  cost: number;
}

/** Result of planning: kept output channels per layer, and how it was decided. */
export interface PrunePlan {
  keep: Map<string, number[]>;
  order: PruneStep[];
  skipped: { layer: string; reason: string }[];
  macsBefore: number;
  macsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
}

/** Per-row L1 or L2 norms of a weight whose first axis is the output channel. */
async function rowScores(t: Tensor, criterion: "l1" | "l2"): Promise<Float64Array> {
  const rows = t.shape[0], len = t.size / rows;
  const out = new Float64Array(rows);
  await consume(mapRows(t, len, [0, 1], (row, _o, r) => {
    let s = 0;
    if (criterion === "l1") { for (let i = 0; i < len; i++) s += Math.abs(row[i]); }
    else for (let i = 0; i < len; i++) s += row[i] * row[i];
    out[r] = criterion === "l1" ? s : Math.sqrt(s);
    return false;
  }));
  return out;
}

async function consume(t: Tensor): Promise<void> {
  for await (const _ of t.chunks()) { /* drain */ }
}

/** Pass 1: reads the stream once, keeping per-channel scores and the producer -> consumer wiring. */
export async function analyzePruning(model: ModelStream, options: PruneOptions = {}): Promise<PruneAnalysis> {
  const shapes = new ShapeTracker(model.header);
  const producers = new Map<string, ProducerInfo>();
  const carrier = new Map<string, { producer: string; hw: number }>(); // value -> channels it carries
  const uses = new Map<string, number>();
  let totalMacs = 0, totalParams = 0;
  const exclude = new Set(options.exclude ?? []);
  for await (const layer of model.layers) {
    const { ins, outs } = shapes.add(layer);
    for (const i of layer.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
    const w = layer.params.weight;
    const macs = layerMacs(layer, outs[0]);
    totalMacs += macs;
    for (const t of Object.values(layer.params)) totalParams += t.size;
    // How this layer consumes carried channels.
    layer.inputs.forEach((input, idx) => {
      const c = carrier.get(input);
      if (!c) return;
      const p = producers.get(c.producer)!;
      if ((uses.get(input) ?? 0) > 1) return void (p.blocked ??= `its output feeds several layers`);
      if (idx === 0 && CHANNELWISE.has(layer.op)) return void carrier.set(layer.outputs[0], c);
      if (idx === 0 && layer.op === "Flatten" && ((layer.attrs.axis as number | undefined) ?? 1) === 1) {
        const s = ins[0];
        const hw = s && s.length === 4 ? (s[2] as number) * (s[3] as number) : 1;
        return void carrier.set(layer.outputs[0], { producer: c.producer, hw: c.hw * hw });
      }
      const grouped = layer.op === "Conv" && (layer.attrs.group as number) !== 1;
      if (idx === 0 && (layer.op === "FC" || (layer.op === "Conv" && !grouped)) && w) {
        if (p.consumer) return void (p.blocked ??= "its output feeds several layers");
        const s = ins[0];
        const hw = layer.op === "FC" && s && s.length === 4 ? (s[2] as number) * (s[3] as number) : c.hw;
        const inputs = layer.op === "FC" ? w.shape[1] / hw : w.shape[1];
        p.consumer = {
          name: layer.name,
          outChannels: w.shape[0],
          macsPerInput: macs / inputs,
          paramsPerInput: w.size / inputs,
        };
        return;
      }
      p.blocked ??= `its output reaches ${layer.op} layer '${layer.name}'`;
    });
    if ((layer.op === "Conv" && (layer.attrs.group as number) === 1 || layer.op === "FC") && w) {
      const channels = w.shape[0];
      const params = Object.values(layer.params).reduce((s, t) => s + t.size, 0);
      producers.set(layer.name, {
        name: layer.name,
        op: layer.op,
        channels,
        scores: await rowScores(w, options.criterion === "l2" ? "l2" : "l1"),
        macsPerChannel: macs / channels,
        paramsPerChannel: params / channels,
        blocked: exclude.has(layer.name) ? "excluded by the recipe" : undefined,
      });
      carrier.set(layer.outputs[0], { producer: layer.name, hw: 1 });
    }
  }
  for (const o of model.header.outputs) {
    const c = carrier.get(o.name);
    if (c) producers.get(c.producer)!.blocked ??= "its output is a model output";
  }
  for (const p of producers.values()) if (!p.consumer) p.blocked ??= "its output reaches no Conv or FC";
  return { producers: [...producers.values()], totalMacs, totalParams };
}

function layerMacs(layer: Layer, out: (number | string | null)[] | undefined): number {
  const w = layer.params.weight;
  if (!w) return 0;
  if (layer.op === "FC") return w.size;
  if (layer.op === "Conv" && out && out.length === 4) return w.size * (out[2] as number) * (out[3] as number);
  return 0;
}

/** Decides the kept channels of each prunable layer. */
export function planPruning(a: PruneAnalysis, options: PruneOptions): PrunePlan {
  const live = a.producers.filter((p) => !p.blocked);
  const skipped = a.producers.filter((p) => p.blocked).map((p) => ({ layer: p.name, reason: p.blocked! }));
  const kept = new Map(live.map((p) => [p.name, p.channels]));
  const sorted = new Map(
    live.map((p) => [p.name, Array.from(p.scores.keys()).sort((x, y) => p.scores[x] - p.scores[y])]),
  );
  const mean = new Map(live.map((p) => [p.name, p.scores.reduce((s, v) => s + v, 0) / p.channels || 1]));
  const byName = new Map(live.map((p) => [p.name, p]));
  // The producer feeding p: p's own cost per channel shrinks as its inputs are pruned.
  const feeder = new Map<string, ProducerInfo>();
  for (const p of live) if (p.consumer && byName.has(p.consumer.name)) feeder.set(p.consumer.name, p);
  const inputShare = (p: ProducerInfo) => {
    const f = feeder.get(p.name);
    return f ? kept.get(f.name)! / f.channels : 1;
  };
  // MACs and parameters saved by removing `n` more channels of p, given the current counts.
  const savings = (p: ProducerInfo, n: number) => {
    const c = p.consumer!;
    const consumerShare = (kept.get(c.name) ?? c.outChannels) / c.outChannels;
    return {
      macs: n * (p.macsPerChannel * inputShare(p) + c.macsPerInput * consumerShare),
      params: n * (p.paramsPerChannel * inputShare(p) + c.paramsPerInput * consumerShare),
    };
  };
  const order: PruneStep[] = [];
  const costOf = (p: ProducerInfo, n: number) => {
    const k = kept.get(p.name)!;
    const rc = p.removalCost;
    if (rc) return (rc[p.channels - k + n] - rc[p.channels - k]) / Math.max(1, savings(p, n).macs);
    const idx = sorted.get(p.name)!;
    let removed = 0;
    for (let i = p.channels - k; i < p.channels - k + n; i++) removed += p.scores[idx[i]] / mean.get(p.name)!;
    return removed / Math.max(1, savings(p, n).macs);
  };
  let macs = a.totalMacs, params = a.totalParams;
  if (options.keep !== undefined) {
    for (const p of live) {
      const ratio = typeof options.keep === "number" ? options.keep : options.keep[p.name];
      if (ratio === undefined) continue;
      const target = Math.max(1, Math.round(ratio * p.channels));
      const n = p.channels - target;
      if (n <= 0) continue;
      const s = savings(p, n);
      order.push({ layer: p.name, kept: target, cost: costOf(p, n) });
      kept.set(p.name, target);
      macs -= s.macs;
      params -= s.params;
    }
    order.sort((x, y) => x.cost - y.cost);
  } else if (options.flops !== undefined || options.params !== undefined) {
    const step = options.step ?? 0.05, minKeep = options.minKeep ?? 0.25;
    const goalMacs = options.flops !== undefined ? a.totalMacs * (1 - options.flops) : -Infinity;
    const goalParams = options.params !== undefined ? a.totalParams * (1 - options.params) : -Infinity;
    while ((options.flops !== undefined && macs > goalMacs) || (options.params !== undefined && params > goalParams)) {
      let best: { p: ProducerInfo; n: number; cost: number } | undefined;
      for (const p of live) {
        const k = kept.get(p.name)!;
        const n = Math.min(Math.max(1, Math.round(step * p.channels)), k - Math.ceil(minKeep * p.channels));
        if (n <= 0) continue;
        const cost = costOf(p, n);
        if (!best || cost < best.cost) best = { p, n, cost };
      }
      if (!best) break;
      const s = savings(best.p, best.n);
      macs -= s.macs;
      params -= s.params;
      kept.set(best.p.name, kept.get(best.p.name)! - best.n);
      order.push({ layer: best.p.name, kept: kept.get(best.p.name)!, cost: best.cost });
    }
  }
  const keep = new Map<string, number[]>();
  for (const p of live) {
    const k = kept.get(p.name)!;
    if (k < p.channels) keep.set(p.name, sorted.get(p.name)!.slice(p.channels - k).sort((x, y) => x - y));
  }
  return {
    keep,
    order,
    skipped,
    macsBefore: a.totalMacs,
    macsAfter: Math.round(macs),
    paramsBefore: a.totalParams,
    paramsAfter: Math.round(params),
  };
}

/** Pass 2: rewrites layers by the plan as they stream. */
export function pruneStage(model: ModelStream, plan: PrunePlan): TransformStream<Layer, Layer> {
  const shapes = new ShapeTracker(model.header);
  const kept = new Map<string, { keep: number[]; hw: number }>(); // value -> kept channels it carries
  return new TransformStream<Layer, Layer>({
    async transform(layer, controller) {
      const { ins } = shapes.add(layer);
      const inKeep = kept.get(layer.inputs[0]);
      const outKeep = plan.keep.get(layer.name);
      if (!inKeep && !outKeep) return controller.enqueue(layer);
      const params: Record<string, Tensor> = { ...layer.params };
      if (inKeep && CHANNELWISE.has(layer.op)) {
        for (const [role, t] of Object.entries(layer.params)) params[role] = await selectVector(t, inKeep.keep);
        kept.set(layer.outputs[0], inKeep);
      } else if (inKeep && layer.op === "Flatten") {
        const s = ins[0];
        const hw = s && s.length === 4 ? (s[2] as number) * (s[3] as number) : 1;
        kept.set(layer.outputs[0], { keep: inKeep.keep, hw: inKeep.hw * hw });
      }
      const w = layer.params.weight;
      if ((layer.op === "Conv" || layer.op === "FC") && w) {
        const rows = w.shape[0], rowLen = w.size / rows;
        // Input columns to keep: blocks of `block` values per kept input channel.
        let cols: { keep: number[]; block: number } | undefined;
        if (inKeep) {
          const s = ins[0];
          const hw = layer.op === "FC" && s && s.length === 4 ? (s[2] as number) * (s[3] as number) : inKeep.hw;
          const block = layer.op === "FC" ? hw : rowLen / w.shape[1];
          cols = { keep: inKeep.keep, block };
        }
        const keepRows = outKeep ? new Set(outKeep) : undefined;
        const outRows = outKeep ? outKeep.length : rows;
        const outRowLen = cols ? cols.keep.length * cols.block : rowLen;
        const shape = layer.op === "FC"
          ? [outRows, outRowLen]
          : [outRows, cols ? cols.keep.length : w.shape[1], ...w.shape.slice(2)];
        params.weight = mapRows(w, rowLen, shape, (row, out, r) => {
          if (keepRows && !keepRows.has(r)) return false;
          if (!cols) out.set(row);
          else {
            const b = cols.block;
            cols.keep.forEach((c, i) => out.set(row.subarray(c * b, (c + 1) * b), i * b));
          }
          return true;
        });
        if (outKeep && layer.params.bias) params.bias = await selectVector(layer.params.bias, outKeep);
        if (outKeep) kept.set(layer.outputs[0], { keep: outKeep, hw: 1 });
      }
      controller.enqueue({ ...layer, params, origin: undefined, from: layer.from ?? layer.name });
    },
  });
}

/** Pruning criteria (the activation ones need `compress --calibration`). */
const CRITERIA: readonly string[] = ["l1", "l2", "mean_activation", "apoz"];

/** The prune stage: `{ "prune": { "flops": 0.5 } }`, `--prune flops=0.5`. */
export const prune: StageModule<"prune", PruneOptions> = {
  kind: "prune",
  flag: { name: "prune", type: "string", help: "flops=F | params=F | keep=F, criterion=l1|l2|mean_activation|apoz" },
  validate(o) {
    const p = o as PruneOptions;
    if (p.keep === undefined && p.flops === undefined && p.params === undefined) return "needs keep, flops or params";
    for (const v of [p.flops, p.params, typeof p.keep === "number" ? p.keep : undefined]) {
      if (v !== undefined && !(v > 0 && v < 1)) return "fractions must be between 0 and 1";
    }
    if (p.criterion !== undefined && !CRITERIA.includes(p.criterion)) {
      return `criterion must be one of ${CRITERIA.join(", ")}`;
    }
    return undefined;
  },
  fromFlags(value) {
    const v = String(value);
    const kv = keyValues("--prune", v.includes("=") ? v : `keep=${v}`);
    const p: PruneOptions = {};
    if (kv.keep) p.keep = fraction("--prune keep", kv.keep);
    if (kv.flops) p.flops = fraction("--prune flops", kv.flops);
    if (kv.params) p.params = fraction("--prune params", kv.params);
    if (kv.criterion) p.criterion = kv.criterion as PruneOptions["criterion"];
    return p;
  },
  create: (_options, ctx) =>
    pruneStage(
      ctx.model,
      (ctx.plan as PrunePlan | undefined) ??
        { keep: new Map(), order: [], skipped: [], macsBefore: 0, macsAfter: 0, paramsBefore: 0, paramsAfter: 0 },
    ),
};
