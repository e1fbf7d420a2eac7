/**
 * The layer-at-a-time executor: push canonical layers in stream order, it runs each on the live activations and
 * frees every activation after its last consumer. It holds one layer's weights at a time (FC weights not even
 * that: they stream through in row blocks, so VGG16's 411 MB fc6 never sits in memory whole).
 *
 * It is push-based on purpose: {@link runModel} drives it from a model stream, and a compression stage (pruning
 * with least-squares reconstruction, say) can drive it itself, asking for the activations entering a layer with
 * {@link LayerExecutor.inputsOf} before it decides on that layer's new weights and runs the changed layer.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Layer } from "../model/types.ts";
import { DTYPE_SIZE, type Tensor, toFloat32 } from "../model/tensor.ts";
import { type Act, type Params, runKernel, toNchw } from "./kernels.ts";
import { loadTf, type Tf, type TfTensor } from "../linalg/tf.ts";
import { releaseMemory, trimMemory } from "../memory.ts";
import type { Ort } from "../linalg/ort.ts";
import { fusable, ortConv } from "./ort_conv.ts";
import { ortGemm } from "../linalg/ort_gemm.ts";
import { type Scratch, scratchArray, type Spilled, SpillStore } from "./spill.ts";
import { inferShapes } from "../model/shapes.ts";

/** An activation read back to JavaScript: float32 in NCHW order, with its shape. */
export interface Activation {
  data: Float32Array;
  shape: number[];
}

/** Options of {@link LayerExecutor}. */
export interface ExecutorOptions {
  /**
   * How many layers read each value (see ./structure.ts). Values reach zero and are freed after their last reader.
   * Without it nothing is freed before {@link LayerExecutor.dispose}.
   */
  uses?: Map<string, number>;
  /** Values never freed by use counting (the graph outputs). */
  keep?: Iterable<string>;
  /** FC weights stream in blocks of about this many bytes (default 16 MiB). */
  fcBlockBytes?: number;
  /** "cpu" forces the plain JavaScript backend. */
  backend?: "wasm" | "cpu";
  /**
   * Samples per chunk: a graph input with more samples is held and run as chunks of this many samples, layer by
   * layer, so a layer's transient memory is one chunk's, not the whole batch's (FC weights still stream once per
   * layer). Only for graphs whose layers treat samples independently. Default: one chunk.
   */
  chunk?: number;
  /**
   * Convolutions run on ONNX Runtime (./ort_conv.ts, all cores) instead of tfjs, and FC layers as one product per
   * block of weight rows for all chunks at once: faster, and rounded differently, so only for callers that accept
   * that (calibration on ONNX Runtime). Everything else stays in tfjs.
   */
  ort?: Ort;
  /**
   * With `chunk`: a budget in bytes for the chunks of live values held in memory (callers use {@link SPILL_BYTES}).
   * A float32 chunk computed while the budget is full, and of at least `spillMin` bytes, is written to a temporary
   * folder and read back when a layer needs it, so memory holds about the budget plus one chunk's input and output,
   * not the batch's live activations (a calibration's batch of 16 VGG16 images: 205 MB per value at the first
   * convolutions). The values and their rounding are the same as in memory; the folder is removed by
   * {@link LayerExecutor.dispose} (and on any failure or signal).
   */
  spill?: number;
  /** The smallest chunk that may spill (default {@link SPILL_MIN_BYTES}; smaller ones stay in memory). */
  spillMin?: number;
}

/** The smallest chunk worth writing to disk when spilling (smaller ones stay in memory). */
export const SPILL_MIN_BYTES = 1 << 20;

/**
 * The calibrators' budget of activation chunks held in memory (`spill`): 0, so every chunk of at least
 * {@link SPILL_MIN_BYTES} waits on disk. Measured on VGG16's thesis recipe calibrated on 16 images (peak RSS): budget
 * 0 515 MB, 32 MiB 615 MB, 64 MiB 652 MB, 128 MiB 768 MB, not spilling 1,019 MB; the disk costs time (see
 * bench/results/calibration.md).
 */
export const SPILL_BYTES = 0;

/** A chunk of a value: in memory (a tfjs tensor) or on disk. */
type Held = Act | Spilled;

function isSpilled(h: Held): h is Spilled {
  return "file" in h;
}

function heldShape(h: Held): number[] {
  return isSpilled(h) ? h.shape : [...h.t.shape as number[]];
}

interface Entry {
  /** One activation per chunk of samples (one for an unchunked batch). */
  acts: Held[];
  /** Readers still to come, plus pins; Infinity when the value is kept. */
  left: number;
}

/** Runs canonical layers one at a time on a batch. */
export class LayerExecutor {
  readonly tf: Tf;
  /** The tfjs backend in use ("wasm", or "cpu"). */
  readonly backend: string;
  #values = new Map<string, Entry>();
  #uses?: Map<string, number>;
  #keep: Set<string>;
  #blockBytes: number;
  #dead: string[] = [];
  #chunk: number;
  #ort?: Ort;
  /** Bytes of JavaScript copies of activations made since the last collection. */
  #garbage = 0;
  /** Bytes of ONNX Runtime outputs written into reused arrays since the allocator was last trimmed. */
  #native = 0;
  #spill?: number;
  #spillMin: number;
  /** The chunks on disk (./spill.ts). */
  #disk = new SpillStore();
  /** The array {@link readChunks} reads chunks on disk into. */
  #chunkScratch = scratchArray();
  /**
   * A Conv on ONNX Runtime whose output has one reader, not run yet (its input pinned), and the layers fused after it
   * so far (`after`): when that reader comes next and is a Relu, or a MaxPool, it joins the chain, which runs as one
   * session once it ends, so the values between are never held (nor spilled and read back: more than half of a
   * VGG16 calibration's activation traffic). Anything else runs the chain first. `pins`: pins asked for its output.
   */
  #pending?: { layer: Layer; after: Layer[]; ins: Held[]; pins: number };

  constructor(tf: Tf, backend: string, options: ExecutorOptions = {}) {
    this.tf = tf;
    this.backend = backend;
    this.#uses = options.uses;
    this.#keep = new Set(options.keep ?? []);
    this.#blockBytes = options.fcBlockBytes ?? 16 << 20;
    this.#ort = options.ort;
    this.#chunk = options.chunk !== undefined && options.chunk >= 1 ? Math.floor(options.chunk) : Infinity;
    this.#spill = options.spill;
    this.#spillMin = options.spillMin ?? SPILL_MIN_BYTES;
  }

  /** Loads tfjs (lazily, once) and makes an executor. */
  static async create(options: ExecutorOptions = {}): Promise<LayerExecutor> {
    const h = await loadTf(options.backend);
    return new LayerExecutor(h.tf, h.backend, options);
  }

  #initialLeft(name: string): number {
    if (this.#keep.has(name) || !this.#uses) return Infinity;
    return this.#uses.get(name) ?? 0;
  }

  #set(name: string, acts: Held[]): void {
    const old = this.#values.get(name);
    if (old) {
      for (const a of old.acts) if (!acts.some((b) => !isSpilled(a) && !isSpilled(b) && b.t === a.t)) this.#drop(a);
    }
    const left = this.#initialLeft(name);
    this.#values.set(name, { acts, left });
    if (left <= 0) this.#dead.push(name);
  }

  /** Feeds a graph input (NCHW float32), split into chunks of samples when the executor was made with `chunk`. */
  setInput(name: string, data: Float32Array, shape: readonly number[]): void {
    const n = shape[0] ?? 1;
    if (shape.length === 0 || n <= this.#chunk) {
      this.#set(name, [{ t: this.tf.tensor(data, [...shape]), nhwc: false }]);
      return;
    }
    const per = data.length / n;
    const acts: Held[] = [];
    for (let i = 0; i < n; i += this.#chunk) {
      const m = Math.min(this.#chunk, n - i);
      const part = data.subarray(i * per, (i + m) * per), partShape = [m, ...shape.slice(1)];
      acts.push(
        this.#spills(part.byteLength, [acts])
          ? this.#disk.write(part, partShape, false)
          : { t: this.tf.tensor(part, partShape), nhwc: false },
      );
    }
    this.#set(name, acts);
  }

  /**
   * True when a new chunk of `bytes` goes to disk: spilling is on, the chunk is at least `spillMin` bytes and
   * the chunks in memory (of live values and of `pending`, a layer's outputs so far) would pass the budget with it.
   */
  #spills(bytes: number, pending: Held[][] = []): boolean {
    if (this.#spill === undefined || this.#chunk === Infinity || bytes < this.#spillMin) return false;
    return this.#resident(pending) + bytes > this.#spill;
  }

  /** Bytes of the chunks held in memory by live values and by `pending` (each tensor counted once). */
  #resident(pending: Held[][]): number {
    const seen = new Set<Act["t"]>();
    let n = 0;
    const count = (h: Held | undefined) => {
      if (!h || isSpilled(h) || h.t.isDisposed || seen.has(h.t)) return;
      seen.add(h.t);
      n += 4 * h.t.size;
    };
    for (const e of this.#values.values()) for (const h of e.acts) count(h);
    for (const p of pending) for (const h of p) count(h);
    return n;
  }

  /** Reads a spilled chunk back (see {@link SpillStore.read}); a new array counts as a copy to collect. */
  #readFile(h: Spilled, scratch?: Scratch): Float32Array {
    return this.#disk.read(h, scratch, (bytes) => this.#copied(bytes));
  }

  /** An activation computed by a layer, as it is held: on disk when it spills (the tensor is then disposed). */
  async #hold(a: Act, pending: Held[][]): Promise<Held> {
    if (a.t.dtype !== "float32" || !this.#spills(4 * a.t.size, pending)) return a;
    const data = (await a.t.data()) as Float32Array;
    this.#copied(data.byteLength);
    const h = this.#disk.write(data, [...a.t.shape as number[]], a.nhwc);
    a.t.dispose();
    return h;
  }

  /** A held chunk as a tfjs activation, and whether it was loaded from disk (then the caller disposes it). */
  #load(h: Held): { act: Act; loaded: boolean } {
    if (!isSpilled(h)) return { act: h, loaded: false };
    return { act: { t: this.tf.tensor(this.#readFile(h), h.shape), nhwc: h.nhwc }, loaded: true };
  }

  /** Frees a held chunk (its tensor, or its file). */
  #drop(h: Held): void {
    if (isSpilled(h)) this.#disk.drop(h);
    else h.t.dispose();
  }

  /** True while value `name` is live. */
  has(name: string): boolean {
    return this.#values.has(name) || this.#pendingOut() === name;
  }

  /** Names of the live values. */
  live(): string[] {
    return [...this.#values.keys(), ...(this.#pending ? [this.#pendingOut()!] : [])];
  }

  /** The output of the deferred chain (see {@link #pending}). */
  #pendingOut(): string | undefined {
    const p = this.#pending;
    return p ? (p.after.at(-1) ?? p.layer).outputs[0] : undefined;
  }

  /** Runs the deferred chain (see {@link #pending}). */
  async #settle(): Promise<void> {
    const p = this.#pending;
    if (!p) return;
    this.#pending = undefined;
    const input = p.layer.inputs[0];
    const last = p.after.at(-1) ?? p.layer;
    try {
      this.#set(last.outputs[0], await this.#ortConv(p.layer, p.ins, p.after));
      const e = this.#values.get(last.outputs[0]);
      if (e) e.left += p.pins;
    } finally {
      this.unpin(input);
    }
  }

  /**
   * True when `layer` can join the deferred chain: it reads the chain's output alone (nothing else pinned it), and is
   * a Relu right after the Conv, or a MaxPool at the end.
   */
  #joins(layer: Layer): boolean {
    const p = this.#pending;
    if (!p || p.pins || layer.inputs.length !== 1 || layer.inputs[0] !== this.#pendingOut()) return false;
    if (layer.outputs.length !== 1) return false;
    if (layer.op === "Relu") return p.after.length === 0;
    if (layer.op === "MaxPool") return !p.after.some((l) => l.op === "MaxPool") && fusable(layer);
    return false;
  }

  /** Runs the deferred chain first when `name` is its output. */
  async #settled(name: string): Promise<void> {
    if (this.#pendingOut() === name) await this.#settle();
  }

  #acts(name: string): Held[] {
    const e = this.#values.get(name);
    if (!e) throw new ConvpressError("bad_format", `Activation '${name}' is not available (never produced, or freed)`);
    return e.acts;
  }

  /** The live activation (tfjs tensor and layout) of `name`, unchunked; borrowed, do not dispose. */
  act(name: string): Act {
    const acts = this.#acts(name);
    if (acts.length !== 1 || isSpilled(acts[0])) {
      throw new ConvpressError("bad_format", `Activation '${name}' is held in chunks`);
    }
    return acts[0];
  }

  /** The NCHW shape of a live value (all chunks' samples). */
  shape(name: string): number[] {
    const p = this.#pending;
    if (p && this.#pendingOut() === name) {
      const s = chainShape(p.layer, p.after, this.shape(p.layer.inputs[0]));
      if (s) return s;
    }
    const acts = this.#acts(name);
    const a = acts[0];
    const s = heldShape(a);
    const out = s.length === 4 && a.nhwc ? [s[0], s[3], s[1], s[2]] : [...s];
    if (acts.length > 1) out[0] = acts.reduce((k, b) => k + heldShape(b)[0], 0);
    return out;
  }

  /** Reads a live value back as NCHW float32 (all chunks joined). */
  async read(name: string): Promise<Activation> {
    await this.#settled(name);
    const acts = this.#acts(name);
    if (acts.length === 1) return await this.#readAct(acts[0]);
    const shape = this.shape(name);
    const data = new Float32Array(shape.reduce((p, q) => p * q, 1));
    let off = 0;
    for (const a of acts) {
      const r = await this.#readAct(a);
      data.set(r.data, off);
      off += r.data.length;
    }
    return { data, shape };
  }

  /**
   * Reads a live value back chunk by chunk (one chunk's copy at a time): NCHW float32 and `first`, the index of the
   * chunk's first sample. A chunk on disk is read into one reused array: each chunk's data is valid until the next
   * is pulled (a calibration reads every convolution's input this way, 16 x 13 MB for VGG16's conv1_2, which would
   * otherwise be garbage for the collector).
   */
  async *readChunks(name: string): AsyncGenerator<Activation & { first: number }> {
    await this.#settled(name);
    let first = 0;
    for (const a of this.#acts(name)) {
      const r = await this.#readAct(a, this.#chunkScratch);
      yield { ...r, first };
      first += r.shape[0];
    }
  }

  /** Collects once copies of activations (read-backs, ONNX Runtime outputs) add up to 64 MiB. */
  #copied(bytes: number): void {
    this.#garbage += bytes;
    if (this.#garbage >= 64 << 20) {
      releaseMemory();
      this.#garbage = 0;
    }
  }

  /** A held chunk as NCHW float32; a spilled NCHW chunk goes into `scratch` when given (see {@link #readFile}). */
  async #readAct(h: Held, scratch?: Scratch): Promise<Activation> {
    if (isSpilled(h) && (!h.nhwc || h.shape.length !== 4)) {
      return { data: this.#readFile(h, scratch), shape: [...h.shape] };
    }
    const { act: a, loaded } = this.#load(h);
    this.#copied(4 * a.t.size);
    const t = toNchw(this.tf, a);
    try {
      return { data: (await t.data()) as Float32Array, shape: [...t.shape] };
    } finally {
      t.dispose();
      if (loaded) a.t.dispose();
    }
  }

  /** The activations entering `layer`, read back as NCHW float32 (for calibration). */
  async inputsOf(layer: Layer): Promise<Activation[]> {
    const out: Activation[] = [];
    for (const i of layer.inputs) out.push(await this.read(i));
    return out;
  }

  /** Keeps `name` alive past its last reader until {@link unpin}. */
  pin(name: string): void {
    const e = this.#values.get(name);
    if (e) e.left++;
    else if (this.#pending && this.#pendingOut() === name) this.#pending.pins++;
  }

  /** Drops a pin; frees the value when nothing else needs it. */
  unpin(name: string): void {
    if (this.#pending && this.#pendingOut() === name && this.#pending.pins > 0) {
      this.#pending.pins--;
      return;
    }
    const e = this.#values.get(name);
    if (!e) return;
    e.left--;
    if (e.left <= 0) this.#free(name);
  }

  #free(name: string): void {
    const e = this.#values.get(name);
    if (!e) return;
    for (const a of e.acts) this.#drop(a);
    this.#values.delete(name);
  }

  /** Runs one layer: reads its parameters, computes its outputs, frees inputs past their last reader. */
  async run(layer: Layer): Promise<void> {
    // Values no layer reads stay until the next layer runs, so the caller can look at the last outputs.
    for (const d of this.#dead.splice(0)) {
      const e = this.#values.get(d);
      if (e && e.left <= 0) this.#free(d);
    }
    const p = this.#pending;
    if (p) {
      if (this.#joins(layer)) {
        p.after.push(layer);
        // The chain waits for one more layer while its output has one reader and a MaxPool may still come.
        const o = layer.outputs[0];
        const more = layer.op === "Relu" && this.#uses?.get(o) === 1 && !this.#keep.has(o);
        if (!more) await this.#settle();
        return;
      }
      await this.#settle();
    }
    const ins = layer.inputs.map((n) => {
      const e = this.#values.get(n);
      if (!e) {
        throw new ConvpressError(
          "bad_format",
          `Cannot evaluate layer '${layer.name}' (${layer.op}): its input '${n}' is not available`,
          { layer: layer.name },
        );
      }
      return e.acts;
    });
    if (!ins.length) {
      throw new ConvpressError("bad_format", `Cannot evaluate layer '${layer.name}' (${layer.op}): it has no input`, {
        layer: layer.name,
      });
    }
    const chunks = ins[0].length;
    if (ins.some((c) => c.length !== chunks)) {
      throw new ConvpressError(
        "bad_format",
        `Cannot evaluate layer '${layer.name}' (${layer.op}): inputs in unlike chunks`,
        {
          layer: layer.name,
        },
      );
    }
    // outs[i][c]: output i of chunk c.
    let outs: Held[][];
    if (layer.op === "FC" && this.#ort && layer.params.weight?.shape.length === 2) {
      outs = [await this.#ortFc(layer, ins[0])];
    } else if (layer.op === "FC") {
      const loads = ins[0].map((h) => this.#load(h));
      try {
        outs = [await this.#fc(layer, loads.map((l) => l.act))];
      } finally {
        for (const l of loads) if (l.loaded) l.act.t.dispose();
      }
      const held: Held[] = [];
      for (const a of outs[0]) held.push(await this.#hold(a as Act, [held, outs[0].slice(held.length + 1)]));
      outs[0] = held;
    } else if (this.#ort && layer.op === "Conv" && layer.params.weight && ins.length === 1) {
      const o = layer.outputs[0];
      if (layer.outputs.length === 1 && this.#uses?.get(o) === 1 && !this.#keep.has(o)) {
        // Its one reader may be a Relu: wait for it (see #pending).
        this.pin(layer.inputs[0]);
        this.#pending = { layer, after: [], ins: ins[0], pins: 0 };
        outs = [];
      } else outs = [await this.#ortConv(layer, ins[0])];
    } else {
      const params: Params = {};
      for (const [role, t] of Object.entries(layer.params)) params[role] = { data: await t.float32(), shape: t.shape };
      outs = [];
      // Inputs this layer reads for the last time are freed chunk by chunk, so the batch's input and output of the
      // layer are never both whole in memory.
      const last = chunks > 1
        ? [...new Set(layer.inputs)].filter((n) => {
          const e = this.#values.get(n)!;
          return e.left - layer.inputs.filter((m) => m === n).length <= 0;
        }).map((n) => this.#values.get(n)!.acts)
        : [];
      for (let c = 0; c < chunks; c++) {
        const loads = ins.map((x) => this.#load(x[c]));
        const made = runKernel(this.tf, layer, loads.map((l) => l.act), params);
        const owned = new Set(loads.filter((l) => !l.loaded).map((l) => l.act.t));
        // An output that is an input held in memory stays shared with it (as unchunked); others may spill.
        for (let i = 0; i < made.length; i++) {
          const pending = [...outs, made.slice(i + 1)];
          (outs[i] ??= []).push(owned.has(made[i].t) ? made[i] : await this.#hold(made[i], pending));
        }
        const kept = (t: Act["t"]) => outs.some((o) => !isSpilled(o[c]) && (o[c] as Act).t === t);
        for (const l of loads) if (l.loaded && !kept(l.act.t)) l.act.t.dispose();
        for (const acts of last) {
          const h = acts[c];
          if (isSpilled(h) || !kept(h.t)) this.#drop(h);
        }
      }
    }
    // The layer's weights were read into JavaScript arrays and copied into the backend: collect them now rather than
    // letting layer after layer of them pile up outside V8's heap (a no-op without --expose-gc).
    if (Object.keys(layer.params).length) releaseMemory();
    layer.outputs.forEach((o, i) => {
      if (outs[i]) this.#set(o, outs[i]);
    });
    for (const o of outs.slice(layer.outputs.length)) for (const a of o) this.#drop(a);
    for (const n of layer.inputs) {
      const e = this.#values.get(n);
      if (!e) continue;
      e.left--;
      if (e.left <= 0) this.#free(n);
    }
  }

  /** Conv on ONNX Runtime, chunk by chunk; an input chunk read for the last time is freed once it is consumed. */
  async #ortConv(layer: Layer, xs: Held[], after: Layer[] = []): Promise<Held[]> {
    const e = this.#values.get(layer.inputs[0])!;
    const lastRead = xs.length > 1 && e.left - 1 <= 0;
    const bias = layer.params.bias ? await layer.params.bias.float32() : undefined;
    const conv = await ortConv(this.#ort!, layer, await layer.params.weight.float32(), bias, after);
    const outs: Held[] = [];
    // A chunk read from disk and an output that goes to disk pass through two reused arrays, not a new pair per
    // chunk left to the collector (a VGG16 calibration pass: about 1 GB of each).
    const input = scratchArray(), output = scratchArray();
    try {
      for (const x of xs) {
        const r = await this.#readAct(x, input);
        if (lastRead) this.#drop(x);
        const ys = chainShape(layer, after, r.shape);
        const size = ys ? ys.reduce((p, q) => p * q, 1) : -1;
        if (ys && this.#spills(4 * size, [outs])) {
          const y = await conv.run(r.data, r.shape, { data: output(size), shape: ys });
          outs.push(this.#disk.write(y.data, y.shape, false));
          // ONNX Runtime freed its working buffers (no arena); glibc keeps them unless asked.
          this.#native += 4 * size;
          if (this.#native >= 64 << 20) {
            trimMemory();
            this.#native = 0;
          }
          continue;
        }
        const y = await conv.run(r.data, r.shape);
        this.#copied(y.data.byteLength);
        outs.push(
          this.#spills(y.data.byteLength, [outs])
            ? this.#disk.write(y.data, y.shape, false)
            : { t: this.tf.tensor(y.data, y.shape), nhwc: false },
        );
      }
    } catch (err) {
      for (const o of outs) this.#drop(o);
      throw err;
    } finally {
      await conv.release();
    }
    return outs;
  }

  /**
   * FC on ONNX Runtime: the chunks' inputs joined into one [samples, in] matrix, so each block of weight rows is one
   * product for the whole batch (not one thin product per chunk), then split back into chunks.
   */
  async #ortFc(layer: Layer, xs: Held[]): Promise<Held[]> {
    const w = layer.params.weight;
    const [out, inn] = w.shape;
    const { data: x, shape } = await this.read(layer.inputs[0]);
    const n = shape[0] ?? 1;
    if (x.length / Math.max(1, n) !== inn) throw fcInputError(layer, x.length / Math.max(1, n));
    const y = new Float32Array(n * out);
    let col = 0, sinceGc = 0;
    for await (const block of weightRows(w, this.#blockBytes, true)) {
      const c = await ortGemm(x, block.data, n, inn, block.rows, false, true);
      if (!c) throw new ConvpressError("unsupported", `ONNX Runtime did not run layer '${layer.name}' (FC)`);
      for (let i = 0; i < n; i++) y.set(c.subarray(i * block.rows, (i + 1) * block.rows), i * out + col);
      col += block.rows;
      sinceGc += block.data.byteLength + c.byteLength;
      if (sinceGc >= 4 * this.#blockBytes) {
        releaseMemory();
        sinceGc = 0;
      }
    }
    if (layer.params.bias) {
      const b = await layer.params.bias.float32();
      for (let i = 0; i < n; i++) for (let j = 0; j < out; j++) y[i * out + j] += b[j];
    }
    const outs: Held[] = [];
    let first = 0;
    for (const h of xs) {
      const m = heldShape(h)[0], data = y.slice(first * out, (first + m) * out);
      first += m;
      outs.push(
        this.#spills(data.byteLength, [outs]) ? this.#disk.write(data, [m, out], false) : {
          t: this.tf.tensor(data, [m, out]),
          nhwc: false,
        },
      );
    }
    return outs;
  }

  /** FC: y = x W^T + b with W [out, in] streamed in blocks of rows. A rank > 2 input is flattened in C,H,W order. */
  async #fc(layer: Layer, xs: Act[]): Promise<Act[]> {
    const tf = this.tf;
    const w = layer.params.weight;
    if (!w || w.shape.length !== 2) {
      throw new ConvpressError("bad_format", `Cannot evaluate layer '${layer.name}' (FC): needs a weight [out, in]`, {
        layer: layer.name,
      });
    }
    const inn = w.shape[1];
    const x2s = xs.map((x) =>
      tf.tidy(() => {
        const n = toNchw(tf, x);
        return tf.reshape(n, [n.shape[0], n.size / n.shape[0]]);
      })
    );
    // parts[c]: the output blocks of chunk c.
    const parts: TfTensor[][] = xs.map(() => []);
    try {
      const x2 = x2s[0];
      if (x2.shape[1] !== inn) throw fcInputError(layer, x2.shape[1]);
      const bias = layer.params.bias ? await layer.params.bias.float32() : undefined;
      let sinceGc = 0;
      for await (const block of weightRows(w, this.#blockBytes)) {
        const wt = tf.tensor2d(block.data, [block.rows, inn]);
        x2s.forEach((x, c) => parts[c].push(tf.matMul(x, wt, false, true)));
        wt.dispose();
        // Each block leaves its file chunks and float32 copy as garbage: collect every few blocks.
        sinceGc += block.data.byteLength;
        if (sinceGc >= 4 * this.#blockBytes) {
          releaseMemory();
          sinceGc = 0;
        }
      }
      return parts.map((ps) => {
        const y = tf.tidy(() => {
          let r = ps.length === 1 ? tf.clone(ps[0]) : tf.concat(ps, 1);
          if (bias) r = tf.add(r, tf.tensor1d(bias));
          return r;
        });
        return { t: y, nhwc: false };
      });
    } finally {
      for (const x of x2s) x.dispose();
      for (const ps of parts) for (const p of ps) p.dispose();
    }
  }

  /** Frees every live value. */
  dispose(): void {
    for (const e of this.#values.values()) for (const a of e.acts) if (!isSpilled(a)) a.t.dispose();
    this.#values.clear();
    this.#dead = [];
    this.#pending = undefined;
    this.#disk.dispose();
  }
}

/**
 * Yields a [rows, in] weight as float32 blocks of whole rows, at most `blockBytes` each (at least one row). Each
 * block is a fresh array, because tfjs backends may keep a reference to the array a tensor was made from; with
 * `reuse` (ONNX Runtime, which reads its inputs during the run only) the blocks share one array, each valid until
 * the next is pulled (VGG16's fc6 is 411 MB of blocks that would otherwise wait for the collector).
 */
async function* weightRows(
  w: Tensor,
  blockBytes: number,
  reuse = false,
): AsyncGenerator<{ data: Float32Array; rows: number }> {
  const [out, inn] = w.shape;
  const es = DTYPE_SIZE[w.dtype];
  const rowBytes = inn * es;
  const rowsPer = Math.max(1, Math.min(out, Math.floor(blockBytes / Math.max(1, inn * 4))));
  let rows = Math.min(rowsPer, out);
  const whole = new Uint8Array(rows * rowBytes);
  let buf = whole;
  let fill = 0, done = 0;
  for await (const c of w.chunks()) {
    let off = 0;
    while (off < c.length) {
      if (rows === 0) throw new ConvpressError("bad_format", `FC weight '${w.name}' holds more than ${out} rows`);
      const n = Math.min(buf.length - fill, c.length - off);
      buf.set(c.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === buf.length) {
        const data = toFloat32(w.dtype, buf, w.name);
        yield { data, rows };
        done += rows;
        rows = Math.min(rowsPer, out - done);
        buf = reuse ? whole.subarray(0, rows * rowBytes) : new Uint8Array(rows * rowBytes);
        fill = 0;
      }
    }
  }
  if (done !== out) {
    throw new ConvpressError("unexpected_eof", `FC weight '${w.name}' ended after ${done} of ${out} rows`);
  }
}

/** The output shape of a Conv and the layers fused after it, from its input's; undefined when not all known. */
function chainShape(layer: Layer, after: Layer[], input: number[]): number[] | undefined {
  let s = inferShapes(layer, [input])[0];
  for (const l of after) s = inferShapes(l, [s])[0];
  return s && s.every((d) => typeof d === "number") ? s as number[] : undefined;
}

/** An FC layer's input that does not have the weight's width. */
function fcInputError(layer: Layer, features: number | undefined): ConvpressError {
  const [out, inn] = layer.params.weight.shape;
  return new ConvpressError(
    "bad_format",
    `Cannot evaluate layer '${layer.name}' (FC): input has ${features} features, the weight [${out},${inn}] needs ${inn}`,
    { layer: layer.name },
  );
}
