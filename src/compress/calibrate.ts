/**
 * Data-aware compression: a calibration batch flows through the model as its layers stream (one
 * {@link LayerExecutor}, so memory is one layer plus the batch's live activations), and each layer is looked at
 * with the activations that enter it.
 *
 * A {@link Calibrator} is a pass-through stage placed after the GAP stage and before the prune stage:
 * ```
 * layers -> [preGapTap] -> gap -> [calibrator] -> prune -> tsvd -> cluster
 * ```
 * - The pre-GAP tap remembers the first FC layer as it was (its tensors stay in the file), so that when the GAP
 *   stage's GlobalAvgPool arrives, the calibrator can run the original FC on the pre-GAP activation: its outputs are
 *   the target of the least-squares refit of the folded FC.
 * - In analysis mode (pruning pass 1) it measures, at the consumer of each Conv/FC output, per channel: the mean
 *   absolute activation and the fraction of exact zeros (APoZ, after ReLU), and the consumer's output error when
 *   the lowest-scored channels are removed, slice by slice: the sensitivity curve the order-deciding scheme uses in
 *   place of the weight-only cost (see `ProducerInfo.removalCost` in ./prune.ts).
 * - In apply mode (pass 2, with a prune plan) it rewrites each consumer of a pruned producer by ridge least squares
 *   (He et al. 2017; ThiNet): min ||[X_kept 1] [W'; b']^T - Y||^2 + lambda ||W' - W||^2, where Y is the consumer's
 *   original output (the original weights on the full input, or the original FC's output before the GAP fold) and
 *   X_kept its input restricted to the kept channels (im2col patches sampled from the activations for a conv). The
 *   rewritten weight keeps its full width with zero columns at the removed channels, so the prune stage after it
 *   drops exactly those columns. The executor runs the rewritten layer, so later layers are fitted on the inputs
 *   the compressed network will really see.
 *
 * Memory and speed: the batch runs in chunks of samples ({@link chunkFor}; VGG16: 1 image a chunk) that wait on disk
 * between layers (the executor's `spill`), each layer's input is read back chunk by chunk (statistics and sampled
 * patches in one pass, never the whole activation copied out), and with ONNX Runtime (`--allow-ffi`) the products of the fits and of the sensitivity curves, and the
 * executor's convolutions, run there on all cores. Without it everything runs in tfjs, as before (same results).
 *
 * @module
 */
import type { Serial } from "./serial.ts";
import { type Activation, LayerExecutor, SPILL_BYTES } from "../eval/executor.ts";
import { gemmOrt } from "../linalg/ort_gemm.ts";
import type { Ort } from "../linalg/ort.ts";
import { trimMemory } from "../memory.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { convGeometry, convOutputSize, im2colRows, samplePositions } from "./im2col.ts";
import { curveOrt, curveTf, type FitSystem, solveOrt, solveTf } from "./calibrate_products.ts";
import { CHANNELWISE, type PruneAnalysis, type PrunePlan } from "./prune.ts";
import { mapRows } from "./rows.ts";

/** Pruning criteria, weight-only (`l1`, `l2`) or from calibration activations. */
export type Criterion = "l1" | "l2" | "mean_activation" | "apoz";

/** Tuning of the calibration. */
export interface CalibrateSettings {
  /** Ridge, relative to the mean diagonal of the Gram matrix (default 1e-3). */
  ridge?: number;
  /** Most sampled patch rows per conv (default 8192). */
  maxRows?: number;
  /** Most float32 cells of a sampled patch matrix (default 4Mi = 16 MB). */
  maxCells?: number;
  /** Largest least-squares system solved; larger ones keep the plain pruned weights (default 3072). */
  maxDim?: number;
  /** Least-squares reconstruction of pruned consumers (default true). */
  reconstruct?: boolean;
  /** Least-squares refit of the GAP-folded FC (default true). */
  refitGap?: boolean;
  /** Sensitivity-based prune order (default true). */
  sensitivity?: boolean;
  /** tfjs backend (default wasm). */
  backend?: "wasm" | "cpu";
  /**
   * The batch runs in chunks of samples sized so that one chunk's input is at most 1/32 of this (default 16 MiB:
   * 1 VGG16 sample), and the chunks wait on disk between layers, so a layer's transient memory is about one chunk's
   * (see ../eval/executor.ts).
   */
  chunkBytes?: number;
}

/** What the calibrator did to a layer. */
export interface CalibrationEvent {
  layer: string;
  kind: "reconstruct" | "refit" | "skip";
  /** Relative output error on the calibration data before and after the least-squares fit. */
  errorBefore?: number;
  errorAfter?: number;
  note?: string;
}

/** Per-channel statistics of a producer, measured where its consumer reads it. */
export interface ChannelStats {
  /** Mean absolute activation. */
  mean: Float64Array;
  /** Fraction of exact zeros (APoZ). */
  zeros: Float64Array;
  /** The scores used for the removal order (higher = more important). */
  scores: Float64Array;
  /** Relative consumer output error when the r lowest-scored channels are removed, r = 0..channels. */
  removalCost?: Float64Array;
}

/** Mode of a {@link Calibrator}. */
export type CalibratorMode =
  | { analyze: { criterion: Criterion; step: number } }
  | { plan: PrunePlan };

interface Carried {
  producer: string;
  hw: number;
  /** After a Concat (analysis only): the producers whose channels the value carries, at their offsets. */
  parts?: Part[];
}

interface Part {
  producer: string;
  offset: number;
  len: number;
}

const REF_LAYER = "__calibration_reference";
const REF_VALUE = "__calibration_reference_out";

/** Runs the calibration batch along the stream and rewrites layers (see the module doc). */
export class Calibrator {
  readonly events: CalibrationEvent[] = [];
  readonly stats = new Map<string, ChannelStats>();
  #ex: LayerExecutor;
  #mode: CalibratorMode;
  #s: Required<Omit<CalibrateSettings, "backend" | "chunkBytes">>;
  #origFc?: Layer;
  #gapRef?: { fc: string; y: Float32Array; out: number };
  #carrier = new Map<string, Carried>();
  #weightScores = new Map<string, Float64Array>();
  #batch: { x: Float32Array; shape: number[]; input: string };
  #started = false;
  #seed = 1;
  /** Products (and the executor's convolutions) on ONNX Runtime. */
  #ort: boolean;

  private constructor(
    ex: LayerExecutor,
    batch: { x: Float32Array; shape: number[]; input: string },
    mode: CalibratorMode,
    s: CalibrateSettings,
    ort: boolean,
  ) {
    this.#ex = ex;
    this.#ort = ort;
    this.#batch = batch;
    this.#mode = mode;
    this.#s = {
      ridge: s.ridge ?? 1e-3,
      maxRows: s.maxRows ?? 8192,
      maxCells: s.maxCells ?? 4 << 20,
      maxDim: s.maxDim ?? 3072,
      reconstruct: s.reconstruct ?? true,
      refitGap: s.refitGap ?? true,
      sensitivity: s.sensitivity ?? true,
    };
  }

  /**
   * Makes a calibrator feeding `x` (NCHW, `shape`) to graph input `input`; `uses` and `keep` are the wiring of the
   * stream it will see (see ../eval/structure.ts), so activations are freed after their last reader.
   */
  static async create(
    batch: { x: Float32Array; shape: number[]; input: string },
    wiring: { uses?: Map<string, number>; keep?: string[] },
    mode: CalibratorMode,
    settings: CalibrateSettings = {},
  ): Promise<Calibrator> {
    const chunk = chunkFor(batch, settings.chunkBytes);
    // With ONNX Runtime (and no forced JavaScript backend) the convolutions run there too.
    const ort = await calibrationOrt(settings.backend);
    const ex = await LayerExecutor.create({
      uses: wiring.uses,
      keep: wiring.keep,
      backend: settings.backend,
      chunk,
      ort,
      spill: SPILL_BYTES,
    });
    return new Calibrator(ex, batch, mode, settings, !!ort);
  }

  /** A pass-through stage to put before the GAP stage: remembers the first FC as it was. */
  preGapTap(): TransformStream<Layer, Layer> {
    return new TransformStream<Layer, Layer>({
      transform: (layer, c) => {
        if (!this.#origFc && layer.op === "FC" && layer.params.weight) this.#origFc = layer;
        c.enqueue(layer);
      },
    });
  }

  /** The calibrating stage; with `serial`, its layers run one at a time with the other stages sharing it. */
  stage(serial?: Serial): TransformStream<Layer, Layer> {
    return new TransformStream<Layer, Layer>({
      transform: async (layer, c) =>
        c.enqueue(await (serial ? serial.run(() => this.#layer(layer)) : this.#layer(layer))),
      flush: () => this.dispose(),
    });
  }

  /** Frees the executor's activations. */
  dispose(): void {
    this.#ex.dispose();
  }

  async #layer(layer: Layer): Promise<Layer> {
    const ex = this.#ex;
    if (!this.#started) {
      ex.setInput(this.#batch.input, this.#batch.x, this.#batch.shape);
      this.#started = true;
    }
    const origFc = this.#origFc;
    if (
      this.#s.refitGap && origFc && layer.op === "GlobalAvgPool" && layer.name === `${origFc.name}_gap` &&
      ex.has(layer.inputs[0])
    ) {
      // The original FC on the pre-GAP activation: the refit's target.
      ex.pin(layer.inputs[0]);
      await ex.run({
        name: REF_LAYER,
        op: "FC",
        attrs: {},
        inputs: [layer.inputs[0]],
        outputs: [REF_VALUE],
        params: origFc.params,
      });
      const y = await ex.read(REF_VALUE);
      this.#gapRef = { fc: origFc.name, y: y.data, out: y.shape[1] };
      this.#origFc = undefined;
    }
    const input = layer.inputs[0];
    const carried = input === undefined ? undefined : this.#carrier.get(input);
    if (carried && CHANNELWISE.has(layer.op)) this.#carrier.set(layer.outputs[0], carried);
    if (carried && layer.op === "Flatten" && ((layer.attrs.axis as number | undefined) ?? 1) === 1) {
      const s = ex.shape(input);
      this.#carrier.set(layer.outputs[0], {
        producer: carried.producer,
        hw: carried.hw * (s.length === 4 ? s[2] * s[3] : 1),
      });
    }
    if (
      "analyze" in this.#mode && layer.op === "Concat" && ((layer.attrs.axis as number | undefined) ?? 1) === 1
    ) {
      // The consumer after a fire/inception Concat measures each producer's slice.
      const parts: Part[] = [];
      let offset = 0;
      for (const i of layer.inputs) {
        const c = this.#carrier.get(i);
        const s = ex.has(i) ? ex.shape(i) : undefined;
        if (!c || c.hw !== 1 || !s || s.length !== 4) {
          parts.length = 0;
          break;
        }
        for (const p of c.parts ?? [{ producer: c.producer, offset: 0, len: s[1] }]) {
          parts.push({ ...p, offset: offset + p.offset });
        }
        offset += s[1];
      }
      if (parts.length > 0) this.#carrier.set(layer.outputs[0], { producer: "", hw: 1, parts });
    }
    const w = layer.params.weight;
    const isConv = layer.op === "Conv" && ((layer.attrs.group as number | undefined) ?? 1) === 1;
    let out = layer;
    if ((isConv || layer.op === "FC") && w && ex.has(input)) {
      const plan = "plan" in this.#mode ? this.#mode.plan : undefined;
      const keep = plan?.inputKeep?.get(layer.name) ?? (carried ? plan?.keep.get(carried.producer) : undefined);
      const gapRef = this.#gapRef?.fc === layer.name ? this.#gapRef : undefined;
      if ((keep && this.#s.reconstruct) || gapRef) {
        // Columns per channel of an FC input that this carrier does not follow (after a Concat or an Add).
        const value = plan?.values?.get(input);
        out = await this.#fit(layer, carried ?? (value && { producer: "", hw: value.hw }), keep, gapRef);
        if (gapRef) this.#gapRef = undefined;
      }
      if ("analyze" in this.#mode && carried && this.#weightScores.has(carried.producer)) {
        await this.#measure(out, carried);
      }
      if ("analyze" in this.#mode && carried?.parts && carried.hw === 1) {
        for (const part of carried.parts) {
          if (this.#weightScores.has(part.producer)) await this.#measure(out, carried, part);
        }
      }
      // A possible producer: its output channels are tracked to their consumer.
      this.#carrier.set(layer.outputs[0], { producer: layer.name, hw: 1 });
      if ("analyze" in this.#mode) {
        const crit = this.#mode.analyze.criterion;
        this.#weightScores.set(layer.name, await rowNorms(out.params.weight, crit === "l2" ? "l2" : "l1"));
      }
    }
    await ex.run(out);
    if (out !== layer || "analyze" in this.#mode) trimMemory(); // the executor collected after the layer
    return out;
  }

  /** Column layout of `layer`'s input as channels: channel count, columns per channel, and the input's shape. */
  #columns(layer: Layer, carried: Carried | undefined): { shape: number[]; channels: number; block: number } {
    const shape = this.#ex.shape(layer.inputs[0]);
    const w = layer.params.weight;
    if (layer.op === "FC") {
      const f = shape.slice(1).reduce((p, q) => p * q, 1);
      const hw = shape.length === 4 ? shape[2] * shape[3] : carried?.hw ?? 1;
      return { shape, channels: f / hw, block: hw };
    }
    return { shape, channels: shape[1], block: w.shape[2] * w.shape[3] };
  }

  /**
   * One pass over the layer's input, chunk by chunk (so a big activation is never copied out whole): per-channel
   * sums of |x| and zero counts when `stats`, and when `rows` the matrix A whose rows are the layer's input vectors
   * over all channels (samples for FC, sampled patches for Conv).
   */
  async #scan(
    layer: Layer,
    shape: number[],
    channels: number,
    want: { stats: boolean; rows: boolean },
  ): Promise<{ mean: Float64Array; zeros: Float64Array; a: Float32Array; rows: number }> {
    const mean = new Float64Array(channels), zeros = new Float64Array(channels);
    const n = shape[0];
    const f = shape.slice(1).reduce((p, q) => p * q, 1);
    let a = new Float32Array(0), rows = 0;
    let conv: { g: ReturnType<typeof convGeometry>; ohw: number; pos: Int32Array; cols: number } | undefined;
    if (want.rows) {
      if (layer.op === "FC") {
        a = new Float32Array(n * f);
        rows = n;
      } else {
        const g = convGeometry(layer.attrs, layer.params.weight.shape);
        const [oh, ow] = convOutputSize(g, shape[2], shape[3]);
        const total = n * oh * ow;
        const cols = channels * g.kh * g.kw;
        rows = Math.max(1, Math.min(total, this.#s.maxRows, Math.floor(this.#s.maxCells / Math.max(1, cols))));
        conv = { g, ohw: oh * ow, pos: samplePositions(total, rows, this.#seed++), cols };
        a = new Float32Array(rows * cols);
      }
    }
    const all = Array.from({ length: channels }, (_, i) => i);
    let at = 0; // next position row (Conv)
    for await (const x of this.#ex.readChunks(layer.inputs[0])) {
      const m = x.shape[0], per = x.data.length / m / channels;
      if (want.stats) {
        for (let i = 0; i < m; i++) {
          for (let ch = 0; ch < channels; ch++) {
            const base = (i * channels + ch) * per;
            let s = 0, z = 0;
            for (let j = 0; j < per; j++) {
              const v = x.data[base + j];
              s += Math.abs(v);
              if (v === 0) z++;
            }
            mean[ch] += s;
            zeros[ch] += z;
          }
        }
      }
      if (!want.rows) continue;
      if (!conv) {
        a.set(x.data, x.first * f);
        continue;
      }
      at = patchesOfChunk(x, conv.g, conv.ohw, conv.pos, all, a, at);
    }
    if (want.stats) {
      const per = f / channels;
      for (let ch = 0; ch < channels; ch++) {
        mean[ch] /= n * per;
        zeros[ch] /= n * per;
      }
    }
    return { mean, zeros, a, rows };
  }

  /** Analysis: channel statistics and the sensitivity curve of the producer feeding `layer`. */
  async #measure(layer: Layer, carried: Carried, part?: Part): Promise<void> {
    const { tf } = this.#ex;
    const { shape, channels: all, block } = this.#columns(layer, carried);
    const producer = part?.producer ?? carried.producer;
    // The producer's channels are `channels` of the input's `all`, from `off`.
    const off = part?.offset ?? 0, channels = part?.len ?? all;
    const wScores = this.#weightScores.get(producer)!;
    if (wScores.length !== channels || off + channels > all) return;
    // Per-channel mean |x| and zero fraction over samples and positions; the rows for the sensitivity in the same pass.
    const scan = await this.#scan(layer, shape, all, { stats: true, rows: this.#s.sensitivity });
    const { a, rows } = scan;
    const mean = scan.mean.slice(off, off + channels), zeros = scan.zeros.slice(off, off + channels);
    const { criterion, step } = (this.#mode as { analyze: { criterion: Criterion; step: number } }).analyze;
    let scores: Float64Array;
    if (criterion === "mean_activation") scores = mean;
    else if (criterion === "apoz") {
      const top = Math.max(...mean) || 1;
      scores = zeros.map((z, ch) => 1 - z + 1e-6 * mean[ch] / top);
    } else scores = wScores;
    const stats: ChannelStats = { mean, zeros, scores };
    this.stats.set(producer, stats);
    if (!this.#s.sensitivity) return;
    // Sensitivity: ||A_R W_R^T||^2 / ||A W^T||^2 for R = the r lowest-scored channels, r by slices.
    const d = all * block;
    const wData = await layer.params.weight.float32();
    const out = layer.params.weight.shape[0];
    const order = Array.from(scores.keys()).sort((p, q) => scores[p] - scores[q]);
    const slice = Math.max(1, Math.round(step * channels));
    // Columns of the whole input: the producer's channels start at `off`.
    const global = order.map((ch) => off + ch);
    const at = this.#ort
      ? await curveOrt(a, wData, rows, d, out, global, block, slice)
      : curveTf(tf, a, wData, rows, d, out, global, block, slice);
    // Linear between the measured points, made non-decreasing.
    const cost = new Float64Array(channels + 1);
    const pts = [...at.keys()].sort((p, q) => p - q);
    for (let k = 1; k < pts.length; k++) {
      const [r0, r1] = [pts[k - 1], pts[k]];
      for (let r = r0; r <= r1; r++) cost[r] = at.get(r0)! + (at.get(r1)! - at.get(r0)!) * (r - r0) / (r1 - r0);
    }
    for (let r = 1; r <= channels; r++) cost[r] = Math.max(cost[r], cost[r - 1]);
    stats.removalCost = cost;
  }

  /** Least-squares rewrite of `layer` on its kept input channels (all channels for a GAP refit). */
  async #fit(
    layer: Layer,
    carried: Carried | undefined,
    keep: number[] | undefined,
    gapRef: { y: Float32Array; out: number } | undefined,
  ): Promise<Layer> {
    const { tf } = this.#ex;
    const w = layer.params.weight;
    const { shape, channels, block } = this.#columns(layer, carried);
    const kept = keep ?? Array.from({ length: channels }, (_, i) => i);
    const kind = gapRef ? "refit" : "reconstruct";
    const hasBias = !!layer.params.bias;
    const dk = kept.length * block + (hasBias ? 1 : 0);
    if (kept.some((k) => k >= channels) || channels * block !== w.size / w.shape[0]) {
      this.events.push({ layer: layer.name, kind: "skip", note: "input channels do not match the plan" });
      return layer;
    }
    if (dk > this.#s.maxDim) {
      this.events.push({ layer: layer.name, kind: "skip", note: `${dk} unknowns per output (max ${this.#s.maxDim})` });
      return layer;
    }
    const out = w.shape[0], d = channels * block;
    const wData = await w.float32();
    const bias = hasBias ? await layer.params.bias.float32() : undefined;
    // Rows: samples (FC) or sampled patches (Conv) over all channels; A_k = the kept columns (+ a ones column).
    const keptCols: number[] = [];
    for (const ch of kept) for (let j = 0; j < block; j++) keptCols.push(ch * block + j);
    // Prior theta0 [dk, out]: the current weights on the kept columns, and the bias.
    const prior = new Float64Array(dk * out);
    for (let o = 0; o < out; o++) {
      keptCols.forEach((col, i) => (prior[i * out + o] = wData[o * d + col]));
      if (bias) prior[(dk - 1) * out + o] = bias[o];
    }
    const sys: FitSystem = {
      a: new Float32Array(0),
      rows: 0,
      d,
      out,
      wData,
      bias,
      keptCols,
      dk,
      prior,
      gapRef,
      ridge: this.#s.ridge,
    };
    // The rows go into the system only (no local keeps them), so the solver can let them go once it is done with them.
    ({ a: sys.a, rows: sys.rows } = await this.#scan(layer, shape, channels, { stats: false, rows: true }));
    const rows = sys.rows;
    const solved = this.#ort ? await solveOrt(sys) : await solveTf(tf, sys);
    if (!solved) {
      this.events.push({ layer: layer.name, kind: "skip", note: "the reference output does not match" });
      return layer;
    }
    const { theta, errBefore, errAfter } = solved;
    // Full-width weight, zero at the removed channels; the prune stage drops those columns.
    const nw = new Float32Array(out * d);
    for (let o = 0; o < out; o++) keptCols.forEach((col, i) => (nw[o * d + col] = theta[i * out + o]));
    const params: Record<string, Tensor> = { ...layer.params, weight: Tensor.fromFloat32(w.name, w.shape, nw) };
    if (bias) {
      const nb = new Float32Array(out);
      for (let o = 0; o < out; o++) nb[o] = theta[(dk - 1) * out + o];
      params.bias = Tensor.fromFloat32(layer.params.bias.name, layer.params.bias.shape, nb);
    }
    this.events.push({
      layer: layer.name,
      kind,
      errorBefore: Math.sqrt(errBefore),
      errorAfter: Math.sqrt(errAfter),
      note: `${rows} rows, ${dk} unknowns per output`,
    });
    return { ...layer, params, origin: undefined, from: layer.from ?? layer.name };
  }

  /** Applies the collected statistics to a pruning analysis: scores, and the sensitivity curves. */
  applyTo(a: PruneAnalysis): PruneAnalysis {
    const live = a.producers.filter((p) => !p.blocked);
    const withCurve = live.filter((p) => this.stats.get(p.name)?.removalCost?.length === p.channels + 1);
    const curves = withCurve.length === live.length;
    for (const p of live) {
      const s = this.stats.get(p.name);
      if (!s || s.scores.length !== p.channels) continue;
      p.scores = s.scores;
      if (curves) p.removalCost = s.removalCost;
    }
    return a;
  }
}

type Tf = LayerExecutor["tf"];

/**
 * ONNX Runtime for a calibrator's executor (its convolutions and FC products, on all cores, rounded differently from
 * tfjs) and products, unless the JavaScript backend is forced; undefined where it does not load (no `--allow-ffi`):
 * tfjs runs them then.
 */
export async function calibrationOrt(backend?: string): Promise<Ort | undefined> {
  return backend === "cpu" ? undefined : await gemmOrt();
}

/**
 * Samples per executor chunk for a calibration batch: one chunk's input at most 1/32 of `chunkBytes` (default
 * 16 MiB: one VGG16 image), the largest activations being about 20x the input; undefined when the whole batch fits
 * in one. The calibrators' executors spill chunks to disk, so memory holds about one chunk's input and output.
 */
export function chunkFor(batch: { x: Float32Array; shape: number[] }, chunkBytes = 16 << 20): number | undefined {
  const n = batch.shape[0] ?? 1;
  const sampleBytes = (4 * batch.x.length) / Math.max(1, n);
  const chunk = Math.max(1, Math.floor(chunkBytes / (32 * Math.max(1, sampleBytes))));
  return chunk < n ? chunk : undefined;
}

/**
 * Writes into `into` (rows of `channels.length * kh * kw`) the patches of chunk `x` (samples from `x.first`) at the
 * sampled positions `pos` (increasing, over samples x oh x ow) that fall in it, from row `at`; returns the next row.
 */
export function patchesOfChunk(
  x: Activation & { first: number },
  g: ReturnType<typeof convGeometry>,
  ohw: number,
  pos: Int32Array,
  channels: readonly number[],
  into: Float32Array,
  at: number,
): number {
  const lo = x.first * ohw, hi = (x.first + x.shape[0]) * ohw;
  let end = at;
  while (end < pos.length && pos[end] < hi) end++;
  if (end > at) {
    const cols = channels.length * g.kh * g.kw;
    into.set(im2colRows(x.data, x.shape, g, pos.slice(at, end).map((p) => p - lo), channels), at * cols);
  }
  return end;
}

/** Per-row L1 or L2 norms of a weight whose first axis is the output channel (streamed by rows). */
async function rowNorms(t: Tensor, kind: "l1" | "l2"): Promise<Float64Array> {
  const rows = t.shape[0], len = t.size / rows;
  const out = new Float64Array(rows);
  const m = mapRows(t, len, [0, 1], (row, _o, r) => {
    let s = 0;
    if (kind === "l1") { for (let i = 0; i < len; i++) s += Math.abs(row[i]); }
    else for (let i = 0; i < len; i++) s += row[i] * row[i];
    out[r] = kind === "l1" ? s : Math.sqrt(s);
    return false;
  });
  for await (const _ of m.chunks()) { /* drain */ }
  return out;
}

/** The two product paths, for tests (tfjs and ONNX Runtime must agree). @internal */
export { _products } from "./calibrate_products.ts";
