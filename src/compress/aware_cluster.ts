/**
 * Data-aware clustering (`compress --calibration` with a cluster stage): the calibration batch flows through the
 * model as its layers stream, and each Conv/FC weight is clustered to minimise the error of the layer's output on
 * that data rather than the error of the weights:
 *
 * 1. **Hessian-weighted k-means**: with A the layer's input vectors (samples for FC, sampled im2col patches for
 *    Conv) and H = A^T A / rows, each weight's squared error counts by H's diagonal at its input column (the mean
 *    square of the input it multiplies), so the centres go where the output is sensitive.
 * 2. **Sequential error feedback** (GPTQ, see ./gptq.ts): columns are assigned one by one, each column's error
 *    compensated on the columns still to come through H^-1.
 * 3. **Bias correction** (Nagel et al. 2019): the output's mean shift (W - Wq) E[a] on the calibration data is
 *    subtracted from the bias.
 *
 * A depthwise conv (each filter reads one input channel) gets step 1 with each channel's own input power and step 3
 * with its own input mean; its filters are too short for step 2.
 *
 * Sparse tensors keep an exact zero centre and their zeros (../compress/kmeans1d.ts). The executor then runs the
 * quantized layer, so each layer is fitted on the inputs the compressed network really produces (errors of earlier
 * layers are seen, and partly compensated, by later ones).
 *
 * Per layer it also measures what other bit widths would have cost (relative output error and exact `.cvp` bytes),
 * for targets (see ./targets.ts).
 *
 * @module
 */
import type { Serial } from "./serial.ts";
import { encodeClustered } from "../../formats/cvp/clustered.ts";
import { LayerExecutor, SPILL_BYTES } from "../eval/executor.ts";
import { releaseMemory, trimMemory } from "../memory.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { ortGemm } from "../linalg/ort_gemm.ts";
import { calibrationOrt, chunkFor, patchesOfChunk } from "./calibrate.ts";
import { bitsFor, clusteredTensor, type ClusterOptions } from "./cluster.ts";
import { inverseHessianFactorFast, quantizeSequential, refineCenters, ROW_BLOCK } from "./gptq.ts";
import { type SimdArena, vectorArena } from "../linalg/simd.ts";
import { convGeometry, convOutputSize, samplePositions } from "./im2col.ts";
import { type CenterRepr, type Clustering, kmeans1d, kmeansCenters, roundTo } from "./kmeans1d.ts";
import { addChannelStats, addRows, type Inputs, isDepthwise, type LayerStats } from "./input_stats.ts";

export type { LayerStats };

/** Centres rounded to `repr`, sorted and distinct (+0 for zero), with the indices remapped. */
function tidyClustering(centers: ArrayLike<number>, indices: Uint8Array | Uint16Array, repr: CenterRepr): Clustering {
  const rounded = Array.from(centers, (c) => roundTo(c, repr) + 0);
  const sorted = Float32Array.from(new Set(rounded)).sort();
  const to = rounded.map((c) => sorted.indexOf(c));
  const out = sorted.length <= 256 ? new Uint8Array(indices.length) : new Uint16Array(indices.length);
  for (let i = 0; i < indices.length; i++) out[i] = to[indices[i]];
  return { centers: sorted, indices: out, repr };
}

/** Tuning of data-aware clustering. */
export interface AwareClusterSettings {
  /** Hessian-diagonal weighted k-means (default true). */
  weighted?: boolean;
  /** Sequential error feedback over input columns (default true). */
  gptq?: boolean;
  /** Bias correction of the output mean (default true). */
  biasCorrection?: boolean;
  /**
   * Rounds of centre refinement: after the error feedback assigned the weights, the centres are re-solved for the
   * least output error and the weights assigned again (default 1; 0: the k-means centres stay).
   */
  rounds?: number;
  /** Damping of H for the error feedback, relative to its mean diagonal (default 0.01). */
  damp?: number;
  /** Most sampled patch rows per conv (default 4096). */
  maxRows?: number;
  /** Largest input width d for the error feedback (default 2304); wider layers get weighted k-means only. */
  maxDim?: number;
  /** Bit widths to measure per layer besides the chosen one (for targets; default none). */
  measureBits?: number[];
  /** Run the original layers (not the clustered ones) on the batch: a measuring pass (default false). */
  measureOnly?: boolean;
  /** tfjs backend (default wasm). */
  backend?: "wasm" | "cpu";
  /**
   * Batched statistics kept across runs of the same recipe (targets compress several times): filled by the first
   * run, reused by the next.
   */
  statsCache?: Map<string, LayerStats>;
}

/** What data-aware clustering did to one layer, and what other widths would have cost. */
export interface AwareClusterEvent {
  layer: string;
  /** The weight tensor's name. */
  tensor?: string;
  bits: number;
  /** Relative output error ||A (W - Wq)^T|| / ||A W^T|| on the calibration inputs. */
  error: number;
  /** Same for plain k-means at the same width (the weight-only baseline). */
  plainError?: number;
  /** Largest bias change, relative to the RMS of the layer's output. */
  biasShift?: number;
  gptq: boolean;
  /** Per measured width: relative output error and encoded bytes of the weight. */
  options?: { bits: number; error: number; bytes: number }[];
  note?: string;
}

/** Runs the calibration batch along the stream and clusters each Conv/FC weight on it (see the module doc). */
export class ClusterCalibrator {
  readonly events: AwareClusterEvent[] = [];
  #ex: LayerExecutor;
  #batch?: { x: Float32Array; shape: number[]; input: string };
  /** Collecting: statistics accumulate here (no clustering). Applying precomputed statistics: read from here. */
  #stats?: { map: Map<string, LayerStats>; collect: boolean };
  #options: ClusterOptions;
  #s: Required<Omit<AwareClusterSettings, "backend" | "statsCache">>;
  #started = false;
  #outputs: string[] = [];
  /** Top-1 class per calibration sample at the model's first output, once the stream ended (streaming mode). */
  top1?: Int32Array;
  /** The model's first output on the calibration batch [samples, classes], once the stream ended (streaming mode). */
  output?: Float32Array;
  #seed = 7;

  private constructor(
    ex: LayerExecutor,
    batch: { x: Float32Array; shape: number[]; input: string } | undefined,
    options: ClusterOptions,
    s: AwareClusterSettings,
    stats?: { map: Map<string, LayerStats>; collect: boolean },
  ) {
    this.#ex = ex;
    this.#batch = batch;
    this.#stats = stats;
    this.#options = options;
    this.#s = {
      weighted: s.weighted ?? true,
      gptq: s.gptq ?? true,
      biasCorrection: s.biasCorrection ?? true,
      damp: s.damp ?? 0.01,
      rounds: s.rounds ?? 1,
      maxRows: s.maxRows ?? 4096,
      maxDim: s.maxDim ?? 2304,
      measureBits: s.measureBits ?? [],
      measureOnly: s.measureOnly ?? false,
    };
  }

  /** Makes the stage's executor; `wiring` is that of the stream it will see (see ../eval/structure.ts). */
  static async create(
    batch: { x: Float32Array; shape: number[]; input: string },
    wiring: { uses?: Map<string, number>; keep?: string[] },
    options: ClusterOptions,
    settings: AwareClusterSettings = {},
  ): Promise<ClusterCalibrator> {
    const ex = await LayerExecutor.create({
      uses: wiring.uses,
      keep: wiring.keep,
      backend: settings.backend,
      chunk: chunkFor(batch),
      spill: SPILL_BYTES,
      ort: await calibrationOrt(settings.backend),
    });
    const c = new ClusterCalibrator(ex, batch, options, settings);
    c.#outputs = wiring.keep ?? [];
    return c;
  }

  /**
   * A pass-through stage that runs `batch` along the stream and adds each clustered layer's input statistics to
   * `stats` (one batch of a batched calibration; the original layers run).
   */
  static async collector(
    batch: { x: Float32Array; shape: number[]; input: string },
    wiring: { uses?: Map<string, number>; keep?: string[] },
    options: ClusterOptions,
    stats: Map<string, LayerStats>,
    settings: AwareClusterSettings = {},
  ): Promise<ClusterCalibrator> {
    const ex = await LayerExecutor.create({
      uses: wiring.uses,
      keep: wiring.keep,
      backend: settings.backend,
      chunk: chunkFor(batch),
      spill: SPILL_BYTES,
      ort: await calibrationOrt(settings.backend),
    });
    return new ClusterCalibrator(ex, batch, options, settings, { map: stats, collect: true });
  }

  /** The clustering stage from statistics collected before (batched calibration: no activations held). */
  static async fromStats(
    stats: Map<string, LayerStats>,
    options: ClusterOptions,
    settings: AwareClusterSettings = {},
  ): Promise<ClusterCalibrator> {
    const ex = await LayerExecutor.create({ backend: settings.backend });
    return new ClusterCalibrator(ex, undefined, options, settings, { map: stats, collect: false });
  }

  /** The clustering stage; with `serial`, its layers run one at a time with the other stages sharing it. */
  stage(serial?: Serial): TransformStream<Layer, Layer> {
    return new TransformStream<Layer, Layer>({
      transform: async (layer, c) =>
        c.enqueue(await (serial ? serial.run(() => this.#layer(layer)) : this.#layer(layer))),
      flush: async () => {
        // The model's output on the batch: what the network (clustered, or original when measuring) answers.
        const name = this.#outputs.find((o) => this.#ex.has(o));
        if (this.#batch && !this.#stats && name) {
          const y = await this.#ex.read(name);
          const n = y.shape[0], k = y.data.length / n;
          this.output = y.data;
          this.top1 = new Int32Array(n);
          for (let i = 0; i < n; i++) {
            let best = 0;
            for (let j = 1; j < k; j++) if (y.data[i * k + j] > y.data[i * k + best]) best = j;
            this.top1[i] = best;
          }
        }
        this.dispose();
      },
    });
  }

  /** Frees the executor's activations. */
  dispose(): void {
    this.#ex.dispose();
  }

  async #layer(layer: Layer): Promise<Layer> {
    const ex = this.#ex;
    if (!this.#started && this.#batch) {
      ex.setInput(this.#batch.input, this.#batch.x, this.#batch.shape);
      this.#started = true;
    }
    const w = layer.params.weight;
    const bits = (layer.op === "Conv" || layer.op === "FC") && w ? bitsFor(layer, this.#options) : undefined;
    let out = layer;
    if (bits !== undefined && bits < 16 && w.size >= (this.#options.minSize ?? 0)) {
      if (!Number.isInteger(bits) || bits < 1) throw new RangeError(`Invalid bits ${bits} for layer '${layer.name}'`);
      const dw = ex.has(layer.inputs[0]) && isDepthwise(layer, ex.shape(layer.inputs[0]));
      if (this.#stats?.collect) {
        const old = this.#stats.map.get(layer.name);
        if (dw) {
          if (!old || old.perChannel) {
            this.#stats.map.set(layer.name, await addChannelStats(ex.readChunks(layer.inputs[0]), old, w.shape[0]));
          }
        } else {
          const inp = ex.has(layer.inputs[0]) ? await this.#inputs(layer) : undefined;
          if (inp && (!old || (old.d === inp.d && !old.perChannel))) {
            this.#stats.map.set(layer.name, await addRows(ex, inp, this.#s.maxDim, old));
          }
        }
      } else if (this.#stats) out = await this.#cluster(layer, bits, this.#stats.map.get(layer.name));
      else if (dw) {
        out = await this.#cluster(
          layer,
          bits,
          await addChannelStats(ex.readChunks(layer.inputs[0]), undefined, w.shape[0]),
        );
      } else out = await this.#cluster(layer, bits, await this.#freshStats(layer));
    }
    if (this.#batch) await ex.run(this.#s.measureOnly || this.#stats?.collect ? layer : out);
    trimMemory(); // the executor collected after the layer
    return out;
  }

  /** The layer's input statistics from this batch alone (the sampled rows are not kept past this call). */
  async #freshStats(layer: Layer): Promise<LayerStats | undefined> {
    const inp = this.#ex.has(layer.inputs[0]) ? await this.#inputs(layer) : undefined;
    return inp ? await addRows(this.#ex, inp, this.#s.maxDim, undefined, true) : undefined;
  }

  /**
   * A [rows, d]: the layer's inputs as rows, or undefined when the layout is not understood. A conv's patches are
   * gathered chunk by chunk of the batch, so its input is never copied out whole.
   */
  async #inputs(layer: Layer): Promise<Inputs | undefined> {
    const w = layer.params.weight;
    const d = w.size / w.shape[0];
    const name = layer.inputs[0];
    const shape = this.#ex.shape(name);
    if (layer.op === "FC") {
      const x = await this.#ex.read(name);
      const n = x.shape[0];
      return x.data.length / n === d ? { a: x.data, rows: n, d } : undefined;
    }
    if (((layer.attrs.group as number | undefined) ?? 1) !== 1 || shape.length !== 4) return undefined;
    const g = convGeometry(layer.attrs, w.shape);
    if (shape[1] * g.kh * g.kw !== d) return undefined;
    const [oh, ow] = convOutputSize(g, shape[2], shape[3]);
    const total = shape[0] * oh * ow;
    const rows = Math.max(1, Math.min(total, this.#s.maxRows));
    const pos = samplePositions(total, rows, this.#seed++);
    const channels = Array.from({ length: shape[1] }, (_, i) => i);
    const a = new Float32Array(rows * d);
    let at = 0;
    for await (const x of this.#ex.readChunks(name)) at = patchesOfChunk(x, g, oh * ow, pos, channels, a, at);
    return { a, rows, d };
  }

  async #cluster(layer: Layer, bits: number, st: LayerStats | undefined): Promise<Layer> {
    const w = layer.params.weight;
    const repr = this.#options.repr ?? "fp16";
    const wData = await w.float32();
    const out = w.shape[0];
    const d = wData.length / out;
    if (st?.perChannel && st.d === out && st.rows > 0) return this.#clusterDepthwise(layer, w, wData, bits, st);
    if (!st || st.d !== d || st.rows === 0 || st.perChannel) {
      const c = kmeans1d(wData, 2 ** bits, { repr });
      this.events.push({ layer: layer.name, bits, error: NaN, gptq: false, note: "input layout not supported" });
      return this.#result(layer, clusteredTensor(w, c, bits));
    }
    const { tf } = this.#ex;
    const rows = st.rows;
    // H = E[a a^T] (its diagonal when d is too large), and E[a].
    const mean = st.sum.map((v) => v / rows);
    const diag = st.diag.map((v) => v / rows);
    // H and U live in one arena with room for the kernels' blocks (../linalg/simd.ts), so neither is copied there.
    let h: Float64Array | undefined, arena: SimdArena | undefined;
    if (st.h) {
      // The input rows and the Gram product they were reduced to are garbage, and glibc keeps ONNX Runtime's freed
      // buffers (the product's and the convolutions' that made this layer's input): give both back before the arena,
      // WebAssembly memory that can reuse neither (together 150+ MB at VGG16's conv3/conv4 layers).
      releaseMemory();
      arena = vectorArena(2 * d * d + ROW_BLOCK * (2 ** Math.max(bits, ...this.#s.measureBits) * d + d));
      h = arena.array(d * d);
      for (let i = 0; i < h.length; i++) h[i] = st.h[i] / rows;
      // Statistics made for this layer alone (not a batched run's, which are reused) are not needed any more.
      if (!this.#stats) st.h = undefined;
    }
    // The sums H came from (and without H, the input rows) are garbage now: collect them before the d x d factor's
    // temporaries (VGG16's conv3 layers: 100+ MB).
    releaseMemory();
    let diagMean = 0;
    for (let j = 0; j < d; j++) diagMean += diag[j];
    diagMean = diagMean / d || 1;
    const floor = 1e-3 * diagMean;
    const u = this.#s.gptq && h ? await inverseHessianFactorFast(h, d, this.#s.damp, arena?.array(d * d)) : undefined;
    if (u) trimMemory(); // the factor's temporaries (ONNX Runtime's; its own arrays were collected as they went)
    const mask = new Uint8Array(wData.length);
    let anyZero = false;
    for (let i = 0; i < wData.length; i++) {
      mask[i] = wData[i] === 0 ? 1 : 0;
      if (mask[i]) anyZero = true;
    }
    // Weighted k-means: each weight's squared error counts by its input's mean square (H's diagonal).
    const columnWeights = this.#s.weighted ? diag.map((v) => v + floor) : undefined;
    const quantize = (b: number): Clustering => {
      if (!u) return kmeans1d(wData, 2 ** b, { repr, columnWeights });
      // Error feedback assigns every weight itself: only k-means' centres are needed. A zero centre keeps the exact
      // zeros (k-means assigns them there, whether it kept that centre for them or it came out at zero).
      const centers = kmeansCenters(wData, 2 ** b, { repr, columnWeights });
      let zero = centers.indexOf(0);
      const sparse = zero >= 0 && anyZero;
      let cur: Clustering = {
        centers,
        repr,
        indices: quantizeSequential(wData, out, d, u, centers, sparse ? mask : undefined, zero, arena),
      };
      for (let round = 0; h && round < this.#s.rounds; round++) {
        const refined = refineCenters(wData, out, d, h, cur.centers, cur.indices, sparse ? zero : -1, arena);
        cur = tidyClustering(refined, cur.indices, repr);
        zero = cur.centers.indexOf(0);
        if (round + 1 < this.#s.rounds) {
          cur = {
            ...cur,
            indices: quantizeSequential(wData, out, d, u, cur.centers, sparse ? mask : undefined, zero, arena),
          };
        }
      }
      return cur;
    };
    // Relative output error of a clustering: tr(dW H dW^T) / tr(W H W^T) (H's diagonal only when d is too large).
    // When the executor runs on ONNX Runtime (it only measures, and is rounded differently there) the product with H
    // does too (all cores), and the diagonal's sum is one pass in JavaScript (no tfjs tensors: tfjs-wasm's heap
    // never shrinks, and conv5's would add 17 MB to it); else both are tfjs's.
    const ortPath = (await calibrationOrt(this.#ex.backend)) !== undefined;
    const hf = h ? Float32Array.from(h) : undefined;
    const th = ortPath ? undefined : hf ? tf.tensor2d(hf, [d, d]) : tf.tensor1d(Float32Array.from(diag));
    const quad = async (m: Float32Array): Promise<number> => {
      if (!ortPath) {
        return tf.tidy(() => {
          const t = tf.tensor2d(m, [out, d]);
          return tf.sum(tf.mul(hf ? tf.matMul(t, th!) : tf.mul(t, th!), t)).dataSync()[0];
        });
      }
      let s = 0;
      if (hf) {
        const mh = (await ortGemm(m, hf, out, d, d))!;
        for (let i = 0; i < m.length; i++) s += mh[i] * m[i];
      } else {
        for (let o = 0; o < out; o++) {
          for (let j = 0, base = o * d; j < d; j++) s += m[base + j] * m[base + j] * diag[j];
        }
      }
      return s;
    };
    const ref = (await quad(wData)) || 1;
    const errorOf = async (c: Clustering): Promise<number> => {
      const q = new Float32Array(wData.length);
      for (let i = 0; i < q.length; i++) q[i] = wData[i] - c.centers[c.indices[i]];
      return Math.sqrt(Math.max(0, await quad(q)) / ref);
    };
    let chosen: Clustering | undefined;
    const options: { bits: number; error: number; bytes: number }[] = [];
    try {
      for (const b of [...new Set([bits, ...this.#s.measureBits])].sort((p, q) => p - q)) {
        const c = quantize(b);
        if (b === bits) chosen = c;
        if (this.#s.measureBits.length) {
          options.push({ bits: b, error: await errorOf(c), bytes: encodeClustered(c).body.length });
        }
      }
      const c = chosen!;
      const event: AwareClusterEvent = {
        layer: layer.name,
        tensor: w.name,
        bits,
        error: await errorOf(c),
        gptq: !!u,
      };
      event.plainError = await errorOf(kmeans1d(wData, 2 ** bits, { repr }));
      if (options.length) event.options = options;
      let params: Record<string, Tensor> = { ...layer.params, weight: clusteredTensor(w, c, bits) };
      if (this.#s.biasCorrection && layer.params.bias) {
        const bias = await layer.params.bias.float32();
        const nb = Float32Array.from(bias);
        let shift = 0;
        for (let o = 0; o < out; o++) {
          let s = 0;
          for (let j = 0; j < d; j++) s += (wData[o * d + j] - c.centers[c.indices[o * d + j]]) * mean[j];
          nb[o] += s;
          shift = Math.max(shift, Math.abs(s));
        }
        event.biasShift = shift / Math.sqrt(ref / out);
        params = { ...params, bias: Tensor.fromFloat32(layer.params.bias.name, layer.params.bias.shape, nb) };
      }
      this.events.push(event);
      return this.#result(layer, params.weight, params);
    } finally {
      th?.dispose();
    }
  }

  /**
   * A depthwise conv: filter c reads input channel c only, so its weights' squared errors count by that channel's
   * mean square E[x_c^2] (the diagonal of its own Hessian, the same for its taps up to borders and strides);
   * weighted k-means over the whole tensor, the error measured the same way, bias correction with E[x_c]. No error
   * feedback: a filter has only kh x kw weights.
   */
  async #clusterDepthwise(
    layer: Layer,
    w: Tensor,
    wData: Float32Array,
    bits: number,
    st: LayerStats,
  ): Promise<Layer> {
    const repr = this.#options.repr ?? "fp16";
    const out = w.shape[0];
    const d = wData.length / out;
    const power = st.diag.map((v) => v / st.rows);
    let mean = 0;
    for (let c = 0; c < out; c++) mean += power[c];
    const floor = 1e-3 * (mean / out || 1);
    const weightOf = this.#s.weighted ? (i: number) => power[(i / d) | 0] + floor : undefined;
    let ref = 0;
    for (let i = 0; i < wData.length; i++) ref += power[(i / d) | 0] * wData[i] * wData[i];
    ref = ref || 1;
    const errorOf = (c: Clustering): number => {
      let e = 0;
      for (let i = 0; i < wData.length; i++) {
        const dq = wData[i] - c.centers[c.indices[i]];
        e += power[(i / d) | 0] * dq * dq;
      }
      return Math.sqrt(e / ref);
    };
    let chosen: Clustering | undefined;
    const options: { bits: number; error: number; bytes: number }[] = [];
    for (const b of [...new Set([bits, ...this.#s.measureBits])].sort((p, q) => p - q)) {
      const c = kmeans1d(wData, 2 ** b, { repr, weightOf });
      if (b === bits) chosen = c;
      if (this.#s.measureBits.length) {
        options.push({ bits: b, error: errorOf(c), bytes: encodeClustered(c).body.length });
      }
    }
    const c = chosen!;
    const event: AwareClusterEvent = {
      layer: layer.name,
      tensor: w.name,
      bits,
      error: errorOf(c),
      plainError: errorOf(kmeans1d(wData, 2 ** bits, { repr })),
      gptq: false,
      note: "depthwise: per-channel input power",
    };
    if (options.length) event.options = options;
    let params: Record<string, Tensor> = { ...layer.params, weight: clusteredTensor(w, c, bits) };
    if (this.#s.biasCorrection && layer.params.bias) {
      const nb = Float32Array.from(await layer.params.bias.float32());
      let shift = 0;
      for (let o = 0; o < out; o++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += wData[o * d + j] - c.centers[c.indices[o * d + j]];
        nb[o] += s * (st.sum[o] / st.rows);
        shift = Math.max(shift, Math.abs(s * (st.sum[o] / st.rows)));
      }
      event.biasShift = shift / Math.sqrt(ref / out);
      params = { ...params, bias: Tensor.fromFloat32(layer.params.bias.name, layer.params.bias.shape, nb) };
    }
    this.events.push(event);
    return this.#result(layer, params.weight, params);
  }

  #result(layer: Layer, weight: Tensor, params?: Record<string, Tensor>): Layer {
    return {
      ...layer,
      params: params ?? { ...layer.params, weight },
      origin: undefined,
      from: layer.from ?? layer.name,
    };
  }
}
