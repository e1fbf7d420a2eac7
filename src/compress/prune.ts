/**
 * The prune stage (thesis step 2): remove conv filters and FC rows, and the matching input channels of their
 * consumers, through channel-wise layers (ReLU, pooling, BatchNorm, Scale, dropout, flatten, GAP), Concat, residual
 * Add and depthwise convolutions: channels tied together are pruned as one group (./channel_groups.ts, as
 * Torch-Pruning's dependency graph).
 *
 * Pruning needs a plan before the first layer is rewritten, because the order-deciding scheme compares layers. So
 * it runs in two passes over the stream, both layer by layer:
 * 1. {@link analyzePruning} reads each Conv/FC weight once, keeping only a score per output channel, and follows
 *    the topology into channel groups (the producers feeding one Add, a depthwise conv and its producer) with their
 *    consumers (every Conv/FC reading the group's channels, at their Concat offsets); {@link planPruning} then
 *    decides how many channels each group keeps. A group's score per channel is the sum of its members' (L1 or L2
 *    norms of the filters, the depthwise filters included). With a global target (a FLOPs or parameter reduction),
 *    the order-deciding scheme prunes iteratively, each step taking a slice of the group whose next slice costs
 *    least: the normalized importance of the channels removed per multiply-accumulate saved (its members' own and
 *    every consumer's). The steps are the prune order. A target the floors (`minKeep`) stop short of is a warning.
 * 2. {@link pruneStage} rewrites the layers as they stream: rows are dropped and columns selected by a row-local map
 *    (./rows.ts), so no weight is materialized. State between layers: none but the plan's kept channels per value.
 *
 * A group is left alone, with the reason reported, when its channels reach anything else (a graph output, a grouped
 * non-depthwise conv, Reshape, Mul with another activation, an Add of misaligned Concats).
 *
 * @module
 */
import { ShapeTracker } from "../model/shapes.ts";
import type { Tensor } from "../model/tensor.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import type { Op } from "../model/ops.ts";
import { mapRows, selectVector } from "./rows.ts";
import { fraction, keyValues, type StageModule } from "./stage.ts";
import {
  channelsOf,
  ChannelSpaces,
  keptIndices,
  sameBoundaries,
  type Segment,
  type ValueChannels,
} from "./channel_groups.ts";

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

/** What pass 1 learns of a Conv/FC layer whose output rows can be pruned (a member of its channel group). */
export interface ProducerInfo {
  name: string;
  op: Op;
  channels: number;
  /** Score per output channel (higher = more important). */
  scores: Float64Array;
  /** Own multiply-accumulates and parameters per output channel. */
  macsPerChannel: number;
  paramsPerChannel: number;
  /** Its output's channel space (see ./channel_groups.ts), and the segments of its input. */
  space: number;
  inSegs: Segment[];
  blocked?: string;
  /**
   * Measured cost of removing the r lowest-scored channels, r = 0..channels (from calibration, see ./calibrate.ts);
   * when set, the order-deciding scheme uses it in place of the weight-only cost.
   */
  removalCost?: Float64Array;
}

/** A Conv/FC reading pruned channels: its input columns follow the channel groups of its input. */
export interface ConsumerInfo {
  name: string;
  segs: Segment[];
  macsPerInput: number;
  paramsPerInput: number;
  /** Its own output space when it is a producer. */
  outSpace?: number;
}

/** A depthwise conv: its channels are its input's, pruned with them. */
export interface DepthwiseInfo {
  name: string;
  segs: Segment[];
  /** Score per channel, in its input's channel order. */
  scores: Float64Array;
  macsPerChannel: number;
  paramsPerChannel: number;
}

/** Result of pass 1. */
export interface PruneAnalysis {
  producers: ProducerInfo[];
  totalMacs: number;
  totalParams: number;
  spaces: ChannelSpaces;
  /** Channels carried by each value that carries any pruneable space. */
  values: Map<string, ValueChannels>;
  consumers: ConsumerInfo[];
  depthwise: DepthwiseInfo[];
  /** Parameters per channel of channel-wise layers (BatchNorm, Scale), by space. */
  channelParams: Map<number, number>;
  /** Names of tensors more than one layer reads (an exporter's shared initializer): a pruned copy is renamed. */
  sharedTensors: Set<string>;
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
  /** Kept output channels of each pruned producer (every member of a group gets the group's list). */
  keep: Map<string, number[]>;
  /** Kept channels of each value whose channels are pruned, with its original channel count. */
  values?: Map<string, { keep: number[]; channels: number; hw: number }>;
  /** Kept input channels of each Conv/FC whose input is pruned (in its input's channel order). */
  inputKeep?: Map<string, number[]>;
  order: PruneStep[];
  skipped: { layer: string; reason: string }[];
  macsBefore: number;
  macsAfter: number;
  paramsBefore: number;
  paramsAfter: number;
  /** Set when a global target was not reached. */
  warning?: string;
  /** True when the order came from measured removal costs (calibration), for every group. */
  measured?: boolean;
  /** Tensor names several layers share (see `PruneAnalysis.sharedTensors`). */
  sharedTensors?: Set<string>;
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

function isDepthwise(layer: Layer, inChannels: number | undefined): boolean {
  const w = layer.params.weight, g = (layer.attrs.group as number | undefined) ?? 1;
  return layer.op === "Conv" && !!w && g > 1 && w.shape[0] === g && w.shape[1] === 1 && inChannels === g;
}

/**
 * Pass 1: reads the stream once, keeping per-channel scores of each Conv/FC (and depthwise conv) and the channel
 * groups of the topology (./channel_groups.ts).
 */
export async function analyzePruning(model: ModelStream, options: PruneOptions = {}): Promise<PruneAnalysis> {
  const shapes = new ShapeTracker(model.header);
  const spaces = new ChannelSpaces();
  const values = new Map<string, ValueChannels>();
  const producers: ProducerInfo[] = [];
  const consumers: ConsumerInfo[] = [];
  const depthwise: DepthwiseInfo[] = [];
  const channelParams = new Map<number, number>();
  const tensorUses = new Map<string, number>();
  let totalMacs = 0, totalParams = 0;
  const exclude = new Set(options.exclude ?? []);
  const criterion = options.criterion === "l2" ? "l2" : "l1";
  for await (const layer of model.layers) {
    const { ins, outs } = shapes.add(layer);
    const w = layer.params.weight;
    const macs = layerMacs(layer, outs[0]);
    totalMacs += macs;
    for (const t of Object.values(layer.params)) {
      totalParams += t.size;
      tensorUses.set(t.name, (tensorUses.get(t.name) ?? 0) + 1);
    }
    const carried = layer.inputs.map((i) => values.get(i));
    const v0 = carried[0];
    const reaches = `its output reaches ${layer.op} layer '${layer.name}'`;
    /** The segments of input i, or a blocked placeholder space of its channel count. */
    const segsOf = (i: number): Segment[] | undefined => {
      if (carried[i]) return carried[i]!.segs;
      const c = ins[i]?.[1];
      return typeof c === "number" && (ins[i]?.length ?? 0) >= 2
        ? [{ space: spaces.add(c, reaches), len: c }]
        : undefined;
    };
    const blockRest = (from: number) => carried.forEach((c, i) => i >= from && c && spaces.blockAll(c.segs, reaches));
    const op = layer.op;
    if (CHANNELWISE.has(op) && v0) {
      const c = channelsOf(v0.segs);
      const sizes = Object.values(layer.params).map((t) => t.size);
      if (sizes.some((s) => s !== c && s !== 1)) spaces.blockAll(v0.segs, reaches);
      const per = sizes.filter((s) => s === c).length;
      if (per > 0) { for (const s of v0.segs) channelParams.set(s.space, (channelParams.get(s.space) ?? 0) + per); }
      values.set(layer.outputs[0], v0);
      blockRest(1);
    } else if (op === "Flatten" && v0 && ((layer.attrs.axis as number | undefined) ?? 1) === 1) {
      const s = ins[0];
      const hw = s && s.length === 4 ? (s[2] as number) * (s[3] as number) : 1;
      values.set(layer.outputs[0], { segs: v0.segs, hw: v0.hw * hw });
    } else if (op === "Concat" && carried.some((c) => c)) {
      const rank = ins[0]?.length ?? 0;
      const axis = (layer.attrs.axis as number | undefined) ?? 1;
      const all = layer.inputs.map((_, i) => segsOf(i));
      if ((axis === 1 || axis + rank === 1) && all.every((s) => s) && carried.every((c) => !c || c.hw === 1)) {
        values.set(layer.outputs[0], { segs: all.flatMap((s) => s!), hw: 1 });
      } else blockRest(0);
    } else if (op === "Add" && carried.some((c) => c)) {
      const all = layer.inputs.map((_, i) => segsOf(i));
      const params = Object.values(layer.params);
      const first = all[0];
      const ok = first && params.every((t) => t.size === 1) && carried.every((c) => !c || c.hw === v0?.hw) &&
        all.every((s) => s && sameBoundaries(s, first)) && ins.every((s) => s && ins[0] && s.length === ins[0].length);
      if (ok) {
        for (const s of all.slice(1)) s!.forEach((g, j) => spaces.union(first[j].space, g.space));
        values.set(layer.outputs[0], { segs: first, hw: carried.find((c) => c)!.hw });
      } else blockRest(0);
    } else if (w && isDepthwise(layer, ins[0]?.[1] as number | undefined)) {
      if (v0) {
        if (exclude.has(layer.name)) spaces.blockAll(v0.segs, "excluded by the recipe");
        const c = w.shape[0];
        const params = Object.values(layer.params).reduce((s, t) => s + t.size, 0);
        depthwise.push({
          name: layer.name,
          segs: v0.segs,
          scores: await rowScores(w, criterion),
          macsPerChannel: macs / c,
          paramsPerChannel: params / c,
        });
        values.set(layer.outputs[0], v0);
      }
      blockRest(1);
    } else if ((op === "FC" || (op === "Conv" && ((layer.attrs.group as number | undefined) ?? 1) === 1)) && w) {
      if (v0) {
        const s = ins[0];
        const hw = op === "FC" && s && s.length === 4 ? (s[2] as number) * (s[3] as number) : v0.hw;
        const inputs = op === "FC" ? w.shape[1] / hw : w.shape[1];
        if (channelsOf(v0.segs) !== inputs) spaces.blockAll(v0.segs, reaches);
        consumers.push({
          name: layer.name,
          segs: v0.segs,
          macsPerInput: macs / inputs,
          paramsPerInput: w.size / inputs,
        });
      }
      blockRest(1);
      const channels = w.shape[0];
      const params = Object.values(layer.params).reduce((s, t) => s + t.size, 0);
      const space = spaces.add(channels, exclude.has(layer.name) ? "excluded by the recipe" : undefined);
      if (v0) consumers[consumers.length - 1].outSpace = space;
      producers.push({
        name: layer.name,
        op,
        channels,
        scores: await rowScores(w, criterion),
        macsPerChannel: macs / channels,
        paramsPerChannel: params / channels,
        space,
        inSegs: v0?.segs ?? [],
      });
      values.set(layer.outputs[0], { segs: [{ space, len: channels }], hw: 1 });
    } else blockRest(0);
  }
  for (const o of model.header.outputs) {
    const c = values.get(o.name);
    if (c) spaces.blockAll(c.segs, "its output is a model output");
  }
  const consumed = new Set<number>();
  for (const c of consumers) for (const s of c.segs) consumed.add(spaces.find(s.space));
  for (const p of producers) {
    if (!consumed.has(spaces.find(p.space))) spaces.block(p.space, "its output reaches no Conv or FC");
  }
  for (const p of producers) p.blocked = spaces.blocked(p.space);
  const sharedTensors = new Set([...tensorUses].filter(([, n]) => n > 1).map(([name]) => name));
  return { producers, totalMacs, totalParams, spaces, values, consumers, depthwise, channelParams, sharedTensors };
}

function layerMacs(layer: Layer, out: (number | string | null)[] | undefined): number {
  const w = layer.params.weight;
  if (!w) return 0;
  if (layer.op === "FC") return w.size;
  if (layer.op === "Conv" && out && out.length === 4) return w.size * (out[2] as number) * (out[3] as number);
  return 0;
}

/** A channel group being planned: its members' scores summed, and what removing one of its channels saves. */
interface Group {
  root: number;
  name: string;
  channels: number;
  members: ProducerInfo[];
  scores: Float64Array;
  removalCost?: Float64Array;
  dw: DepthwiseInfo[];
  consumers: ConsumerInfo[];
  channelParams: number;
}

function groupName(members: ProducerInfo[]): string {
  if (members.length === 1) return members[0].name;
  if (members.length <= 3) return members.map((m) => m.name).join("+");
  return `${members[0].name}+${members.length - 1} more`;
}

/** Decides the kept channels of each prunable channel group. */
export function planPruning(a: PruneAnalysis, options: PruneOptions): PrunePlan {
  const sp = a.spaces;
  const skipped = a.producers.filter((p) => p.blocked).map((p) => ({ layer: p.name, reason: p.blocked! }));
  const byRoot = new Map<number, Group>();
  for (const p of a.producers) {
    if (p.blocked) continue;
    const root = sp.find(p.space);
    let g = byRoot.get(root);
    if (!g) {
      g = {
        root,
        name: "",
        channels: p.channels,
        members: [],
        scores: p.scores,
        dw: [],
        consumers: [],
        channelParams: 0,
      };
      byRoot.set(root, g);
    }
    g.members.push(p);
  }
  const groups = [...byRoot.values()];
  for (const d of a.depthwise) {
    for (const s of d.segs) byRoot.get(sp.find(s.space))?.dw.push(d);
  }
  for (const c of a.consumers) for (const s of c.segs) byRoot.get(sp.find(s.space))?.consumers.push(c);
  for (const [s, n] of a.channelParams) {
    const g = byRoot.get(sp.find(s));
    if (g) g.channelParams += n;
  }
  // Scores of a group: the sum over its members (producers and depthwise convs) of their channel scores.
  const dwOffsets = new Map<DepthwiseInfo, Map<number, number>>(); // depthwise -> space -> offset
  for (const d of a.depthwise) {
    const m = new Map<number, number>();
    let off = 0;
    for (const s of d.segs) {
      m.set(s.space, off);
      off += s.len;
    }
    dwOffsets.set(d, m);
  }
  for (const g of groups) {
    g.name = groupName(g.members);
    if (g.members.length === 1 && g.dw.length === 0) {
      g.removalCost = g.members[0].removalCost;
      continue;
    }
    const s = new Float64Array(g.channels);
    for (const m of g.members) for (let i = 0; i < g.channels; i++) s[i] += m.scores[i];
    for (const d of g.dw) {
      for (const [space, off] of dwOffsets.get(d)!) {
        if (sp.find(space) !== g.root) continue;
        for (let i = 0; i < g.channels; i++) s[i] += d.scores[off + i];
      }
    }
    g.scores = s;
  }
  // Measured removal costs and weight norms are not on one scale: curves only when every group has one.
  const measured = groups.length > 0 && groups.every((g) => g.removalCost);
  if (!measured) { for (const g of groups) g.removalCost = undefined; }
  const kept = new Map(groups.map((g) => [g.root, g.channels]));
  const keptOf = (space: number) => {
    const r = sp.find(space);
    return kept.get(r) ?? sp.len(r);
  };
  const sorted = new Map(
    groups.map((g) => [g.root, Array.from(g.scores.keys()).sort((x, y) => g.scores[x] - g.scores[y])]),
  );
  const mean = new Map(groups.map((g) => [g.root, g.scores.reduce((s, v) => s + v, 0) / g.channels || 1]));
  // A producer's own cost per channel shrinks as its inputs are pruned.
  const inputShare = (p: ProducerInfo) => {
    if (p.inSegs.length === 0) return 1;
    let k = 0, n = 0;
    for (const s of p.inSegs) {
      k += keptOf(s.space);
      n += s.len;
    }
    return k / n;
  };
  // MACs and parameters saved by removing `n` more channels of g, given the current counts.
  const savings = (g: Group, n: number) => {
    let macs = 0, params = 0;
    for (const p of g.members) {
      const share = inputShare(p);
      macs += p.macsPerChannel * share;
      params += p.paramsPerChannel * share;
    }
    for (const d of g.dw) {
      macs += d.macsPerChannel;
      params += d.paramsPerChannel;
    }
    for (const c of g.consumers) {
      const share = c.outSpace === undefined ? 1 : keptOf(c.outSpace) / sp.len(c.outSpace);
      macs += c.macsPerInput * share;
      params += c.paramsPerInput * share;
    }
    params += g.channelParams;
    return { macs: n * macs, params: n * params };
  };
  const order: PruneStep[] = [];
  const costOf = (g: Group, n: number) => {
    const k = kept.get(g.root)!;
    const rc = g.removalCost;
    if (rc) return (rc[g.channels - k + n] - rc[g.channels - k]) / Math.max(1, savings(g, n).macs);
    const idx = sorted.get(g.root)!;
    let removed = 0;
    for (let i = g.channels - k; i < g.channels - k + n; i++) removed += g.scores[idx[i]] / mean.get(g.root)!;
    return removed / Math.max(1, savings(g, n).macs);
  };
  let macs = a.totalMacs, params = a.totalParams;
  let warning: string | undefined;
  if (options.keep !== undefined) {
    for (const g of groups) {
      const named = options.keep as Record<string, number>;
      const ratio = typeof options.keep === "number"
        ? options.keep
        : g.members.map((m) => named[m.name]).find((r) => r !== undefined);
      if (ratio === undefined) continue;
      const target = Math.max(1, Math.round(ratio * g.channels));
      const n = g.channels - target;
      if (n <= 0) continue;
      const s = savings(g, n);
      order.push({ layer: g.name, kept: target, cost: costOf(g, n) });
      kept.set(g.root, target);
      macs -= s.macs;
      params -= s.params;
    }
    order.sort((x, y) => x.cost - y.cost);
  } else if (options.flops !== undefined || options.params !== undefined) {
    const step = options.step ?? 0.05, minKeep = options.minKeep ?? 0.25;
    const goalMacs = options.flops !== undefined ? a.totalMacs * (1 - options.flops) : -Infinity;
    const goalParams = options.params !== undefined ? a.totalParams * (1 - options.params) : -Infinity;
    while ((options.flops !== undefined && macs > goalMacs) || (options.params !== undefined && params > goalParams)) {
      let best: { g: Group; n: number; cost: number } | undefined;
      for (const g of groups) {
        const k = kept.get(g.root)!;
        const n = Math.min(Math.max(1, Math.round(step * g.channels)), k - Math.ceil(minKeep * g.channels));
        if (n <= 0) continue;
        const cost = costOf(g, n);
        if (!best || cost < best.cost) best = { g, n, cost };
      }
      if (!best) break;
      const s = savings(best.g, best.n);
      macs -= s.macs;
      params -= s.params;
      kept.set(best.g.root, kept.get(best.g.root)! - best.n);
      order.push({ layer: best.g.name, kept: kept.get(best.g.root)!, cost: best.cost });
    }
    const missed: string[] = [];
    if (options.flops !== undefined && macs > goalMacs) {
      missed.push(`flops=${options.flops}: MACs cut by ${pct(1 - macs / a.totalMacs)}`);
    }
    if (options.params !== undefined && params > goalParams) {
      missed.push(`params=${options.params}: parameters cut by ${pct(1 - params / a.totalParams)}`);
    }
    if (missed.length > 0) {
      warning = `Pruning target not reached (${missed.join("; ")}): every prunable group is at its floor ` +
        `(minKeep ${minKeep}); ${groups.length} groups prunable, ${skipped.length} layers left alone`;
    }
  }
  const groupKeep = new Map<number, number[]>();
  const keep = new Map<string, number[]>();
  for (const g of groups) {
    const k = kept.get(g.root)!;
    if (k >= g.channels) continue;
    const list = sorted.get(g.root)!.slice(g.channels - k).sort((x, y) => x - y);
    groupKeep.set(g.root, list);
    for (const m of g.members) keep.set(m.name, list);
  }
  const valueKeep = new Map<string, { keep: number[]; channels: number; hw: number }>();
  for (const [name, v] of a.values) {
    const k = keptIndices(v, sp, groupKeep);
    if (k) valueKeep.set(name, { keep: k, channels: channelsOf(v.segs), hw: v.hw });
  }
  const inputKeep = new Map<string, number[]>();
  for (const c of a.consumers) {
    const k = keptIndices({ segs: c.segs, hw: 1 }, sp, groupKeep);
    if (k) inputKeep.set(c.name, k);
  }
  return {
    keep,
    values: valueKeep,
    inputKeep,
    order,
    skipped,
    macsBefore: a.totalMacs,
    macsAfter: Math.round(macs),
    paramsBefore: a.totalParams,
    paramsAfter: Math.round(params),
    warning,
    measured,
    sharedTensors: a.sharedTensors,
  };
}

function pct(x: number): string {
  return `${(x * 100).toFixed(1)}%`;
}

/** Pass 2: rewrites layers by the plan as they stream. */
export function pruneStage(model: ModelStream, plan: PrunePlan): TransformStream<Layer, Layer> {
  const shapes = new ShapeTracker(model.header);
  const values = plan.values ?? new Map();
  const shared = plan.sharedTensors ?? new Set<string>();
  // A tensor several layers share gets a name of its own once this layer's copy is cut.
  const own = (t: Tensor, layer: Layer, role: string) => shared.has(t.name) ? `${layer.name}/${role}` : t.name;
  const select = async (t: Tensor, keep: number[], layer: Layer, role: string) => {
    const v = await selectVector(t, keep);
    return shared.has(t.name) ? v.with({ name: own(t, layer, role) }) : v;
  };
  return new TransformStream<Layer, Layer>({
    async transform(layer, controller) {
      const { ins } = shapes.add(layer);
      const inKeep = values.get(layer.inputs[0]);
      const outKeep = plan.keep.get(layer.name);
      if (!inKeep && !outKeep && !layer.inputs.some((i) => values.has(i))) return controller.enqueue(layer);
      const params: Record<string, Tensor> = { ...layer.params };
      let attrs = layer.attrs;
      if (inKeep && CHANNELWISE.has(layer.op)) {
        for (const [role, t] of Object.entries(layer.params)) {
          if (t.size === inKeep.channels) params[role] = await select(t, inKeep.keep, layer, role);
        }
      }
      const w = layer.params.weight;
      const group = (layer.attrs.group as number | undefined) ?? 1;
      if (layer.op === "Conv" && w && group > 1 && inKeep) {
        // Depthwise: its channels are its input's.
        const keepRows = new Set(inKeep.keep);
        const rowLen = w.size / w.shape[0];
        params.weight = mapRows(w, rowLen, [inKeep.keep.length, ...w.shape.slice(1)], (row, out, r) => {
          if (!keepRows.has(r)) return false;
          out.set(row);
          return true;
        }, own(w, layer, "weight"));
        if (layer.params.bias) params.bias = await select(layer.params.bias, inKeep.keep, layer, "bias");
        attrs = { ...layer.attrs, group: inKeep.keep.length };
      } else if ((layer.op === "Conv" || layer.op === "FC") && w) {
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
        }, own(w, layer, "weight"));
        if (outKeep && layer.params.bias) params.bias = await select(layer.params.bias, outKeep, layer, "bias");
      }
      controller.enqueue({ ...layer, attrs, params, origin: undefined, from: layer.from ?? layer.name });
    },
  });
}

/** Pruning criteria (the activation ones need `compress --calibration`). */
const CRITERIA: readonly string[] = ["l1", "l2", "mean_activation", "apoz"];

/** The prune stage: `{ "prune": { "flops": 0.5 } }`, `--prune flops=0.5`. */
export const prune: StageModule<"prune", PruneOptions> = {
  kind: "prune",
  flag: {
    name: "prune",
    type: "string",
    help: "flops=F | params=F | keep=F, criterion=l1|l2|mean_activation|apoz, minkeep=F, step=F",
  },
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
    if (kv.minkeep) p.minKeep = fraction("--prune minkeep", kv.minkeep);
    if (kv.step) p.step = fraction("--prune step", kv.step);
    return p;
  },
  create: (_options, ctx) =>
    pruneStage(
      ctx.model,
      (ctx.plan as PrunePlan | undefined) ??
        { keep: new Map(), order: [], skipped: [], macsBefore: 0, macsAfter: 0, paramsBefore: 0, paramsAfter: 0 },
    ),
};
