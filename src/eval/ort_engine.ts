/**
 * An evaluation engine on ONNX Runtime (`onnxruntime-node`, loaded lazily): consecutive layers are gathered into a
 * small ONNX graph holding just their weights (built with the ONNX writer's node export, formats/onnx), run as one
 * session, and dropped, so memory holds one group of layers' weights plus the live activations. ONNX Runtime's
 * kernels (MLAS, all cores) do the arithmetic; the model is still read once, as it streams.
 *
 * - Groups hold up to {@link OrtEngineOptions.groupBytes} of weights; an FC whose weight is bigger (VGG16's fc6,
 *   411 MB) runs as a series of Gemm graphs over blocks of its rows, the outputs assembled in place.
 * - The next group is read and its session built as soon as the previous one is under way. onnxruntime-node
 *   1.30 runs sessions (and builds them) synchronously on the main thread, its own pool doing the arithmetic on
 *   all cores, so this does not yet overlap reading with computing; a worker would (not measured; for VGG16 on 16
 *   images it is one pass over 553 MB of weights against about 500 GFLOP of arithmetic). What does overlap is image decoding (sharp, on libuv's threads).
 * - A group whose activations would be large (VGG16's first convolutions on a batch of 16: 205 MB each) runs on
 *   slices of the batch, so ONNX Runtime's own buffers stay near {@link OrtEngineOptions.activationBytes}.
 * - Sessions of a small model (all groups within {@link OrtEngineOptions.cacheBytes}) are kept across batches, so
 *   SqueezeNet is built once per `eval` rather than once per batch; their weights are then not read again.
 *
 * The tfjs executor (./executor.ts) stays the engine for side-by-side comparison and calibration, and wherever
 * ONNX Runtime cannot load: {@link loadOrt} says why.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { type Shape, ShapeTracker } from "../model/shapes.ts";
import { DTYPE_SIZE, numel, Tensor, toFloat32 } from "../model/tensor.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import { EXPORTERS, exportLayer } from "../../formats/onnx/export_node.ts";
import { DTYPE_ONNX } from "../../formats/onnx/types.ts";
import { onnx } from "../../formats/onnx/proto.ts";
import { WireWriter } from "../wire/wire_writer.ts";
import { releaseMemory, trimMemory } from "../memory.ts";
import { loadOrt, type Ort } from "../linalg/ort.ts";
import { type ModelStructure, structureFromHeader, useCounts } from "./structure.ts";
import type { RunResult } from "./run_model.ts";

export { loadOrt, type Ort, type OrtHandle } from "../linalg/ort.ts";
type Session = import("onnxruntime-node").InferenceSession;

/** Canonical ops the engine runs: every op the ONNX node export expresses. */
export const ORT_OPS: ReadonlySet<string> = new Set(Object.keys(EXPORTERS));

/** True when every op of `structure` runs on the engine. */
export function ortCanRun(structure: ModelStructure): boolean {
  return structure.layers.every((l) => ORT_OPS.has(l.op));
}

/** Options of {@link OrtEngine}. */
export interface OrtEngineOptions {
  /** Weights per group (default 48 MiB). A bigger FC runs by blocks of rows of about this size. */
  groupBytes?: number;
  /** Rows of an FC bigger than a group run in blocks of about this many bytes of float32 (default 32 MiB). */
  fcBlockBytes?: number;
  /** Largest activation ONNX Runtime should hold inside a group, per slice of the batch (default 16 MiB). */
  activationBytes?: number;
  /** Sessions are kept across batches while their weights add up to at most this (default 32 MiB). */
  cacheBytes?: number;
  /** Intra-op threads (default: ONNX Runtime's, one per core). */
  threads?: number;
}

interface Act {
  data: Float32Array;
  shape: number[];
}

/** An initializer of a group's graph: written straight into the model bytes when the session is built. */
interface Init {
  name: string;
  dims: number[];
  /** ONNX data type of the initializer (float32, or the tensor's own for integer and boolean constants). */
  dataType: number;
  /** Bytes of the raw data in the model. */
  byteLength: number;
  /** Writes the raw data into `dst` (exactly byteLength bytes). */
  fill(dst: Uint8Array): Promise<void>;
}

/** An initializer from a tensor: float32 streams chunk by chunk into place, other types convert whole. */
function initOf(t: Tensor): Init {
  const base = { name: t.name, dims: [...t.shape] };
  if (!FLOATS.has(t.dtype) && DTYPE_ONNX[t.dtype]) {
    return {
      ...base,
      dataType: DTYPE_ONNX[t.dtype],
      byteLength: t.byteLength,
      fill: async (dst) => dst.set(await t.bytes()),
    };
  }
  if (t.dtype === "float32") {
    return {
      ...base,
      dataType: F32,
      byteLength: t.byteLength,
      async fill(dst) {
        let off = 0;
        for await (const c of t.chunks()) {
          dst.set(c, off);
          off += c.length;
        }
      },
    };
  }
  return {
    ...base,
    dataType: F32,
    byteLength: t.size * 4,
    async fill(dst) {
      const f = await t.float32();
      dst.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
    },
  };
}

/** What a group of layers needs to become a session and run. */
interface Group {
  key: string;
  nodes: Uint8Array[];
  inits: Init[];
  initNames: Set<string>;
  produced: Set<string>;
  /** Values from outside the group, in first-use order, with how often the group reads each. */
  reads: Map<string, number>;
  /** Reads of values the group itself produces. */
  innerReads: Map<string, number>;
  /** What the group hands back (set when it is built). */
  outputs: string[];
  shapes: Map<string, Shape>;
  weightBytes: number;
  /** Largest per-sample activation (bytes) any layer of the group makes. */
  sampleBytes: number;
  names: string[];
  /** Set for one block of a row-blocked FC. */
  fcBlock?: { y: string; x: string; out: number; r0: number; rows: number; last: boolean };
}

const OPSET = 13;
/** Floating-point dtypes, all handed to ONNX Runtime as float32 (what its kernels run). */
const FLOATS = new Set(["float32", "float16", "bfloat16", "float64"]);
const F32 = 1;

function newGroup(): Group {
  return {
    key: "",
    nodes: [],
    inits: [],
    initNames: new Set(),
    produced: new Set(),
    reads: new Map(),
    innerReads: new Map(),
    outputs: [],
    shapes: new Map(),
    weightBytes: 0,
    sampleBytes: 0,
    names: [],
  };
}

function err(msg: string, layer?: string): ConvpressError {
  return new ConvpressError("bad_format", msg, layer ? { layer } : undefined);
}

/** Runs models on ONNX Runtime group by group; one engine per model, reused across its batches. */
export class OrtEngine {
  readonly ort: Ort;
  #groupBytes: number;
  #blockBytes: number;
  #actBytes: number;
  #cacheBytes: number;
  #threads?: number;
  #cache = new Map<string, Session>();
  #cachedBytes = 0;

  constructor(ort: Ort, options: OrtEngineOptions = {}) {
    this.ort = ort;
    this.#groupBytes = options.groupBytes ?? 48 << 20;
    this.#blockBytes = options.fcBlockBytes ?? 32 << 20;
    this.#actBytes = options.activationBytes ?? 16 << 20;
    this.#cacheBytes = options.cacheBytes ?? 32 << 20;
    this.#threads = options.threads;
  }

  /** Makes an engine, or undefined (with the reason) when onnxruntime-node cannot load. */
  static async create(options: OrtEngineOptions = {}): Promise<{ engine?: OrtEngine; reason?: string }> {
    const h = await loadOrt();
    return h.ort ? { engine: new OrtEngine(h.ort, options) } : { reason: h.reason };
  }

  /** Releases the cached sessions. */
  async dispose(): Promise<void> {
    for (const s of this.#cache.values()) await s.release();
    this.#cache.clear();
    this.#cachedBytes = 0;
  }

  /**
   * Runs `inputs` (NCHW float32 of `shape`, batch first) through `model` and returns its output. Consumes the
   * stream. `structure` (or the header's plan) tells when an activation is dead; without it every value is kept.
   */
  async run(
    model: ModelStream,
    inputs: Float32Array,
    shape: number[],
    opts: { structure?: ModelStructure; inputName?: string; outputName?: string } = {},
  ): Promise<RunResult> {
    const header = model.header;
    const structure = opts.structure ?? structureFromHeader(header);
    const uses = structure ? useCounts(structure) : undefined;
    const wanted = opts.outputName ?? header.outputs[0]?.name;
    const inputName = opts.inputName ?? header.inputs[0]?.name;
    if (!inputName) {
      await model.layers.cancel();
      throw err("The model declares no input");
    }
    const batch = shape[0];
    const tracker = new ShapeTracker({ ...header, inputs: [{ name: inputName, dtype: "float32", shape }] });
    const acts = new Map<string, Act>([[inputName, { data: inputs, shape: [...shape] }]]);
    const left = new Map<string, number>();
    const keep = new Set(wanted ? [wanted] : []);
    const leftOf = (v: string) => left.get(v) ?? (uses ? uses.get(v) ?? 0 : Infinity);
    let inflight: Promise<void> = Promise.resolve();
    let seen = 0;
    let last: string | undefined;
    const fcParts = new Map<string, Float32Array>();

    const exec = async (g: Group, session: Session, cached: boolean) => {
      try {
        if (g.fcBlock) await this.#execFcBlock(g, session, acts, fcParts, batch);
        else await this.#execGroup(g, session, acts, batch);
      } finally {
        if (!cached) await session.release();
      }
      // Inputs read for the last time go; an FC's input stays until its last block.
      if (g.fcBlock && !g.fcBlock.last) return;
      if (!g.fcBlock) { for (const v of g.outputs) left.set(v, leftOf(v) - (g.innerReads.get(v) ?? 0)); }
      let freed = false;
      for (const [v, n] of g.reads) {
        const l = leftOf(v) - n;
        left.set(v, l);
        if (l <= 0 && !keep.has(v)) freed = acts.delete(v) || freed;
      }
      // Dead activations (and the slices a group's output was assembled from) are garbage outside V8's heap: collect
      // them now, before the next group's outputs are allocated, not when the group after next is built.
      if (freed) releaseMemory();
    };
    const flush = async (g: Group) => {
      if (!g.nodes.length) return;
      const prev = inflight;
      g.outputs = this.#outputs(g, uses, keep);
      // Only a model whose weights so far all fit the cache is cached: one block of VGG16's fc6 kept across
      // batches would hold its arena and prepacked weights for nothing.
      seen += g.weightBytes;
      const built = this.#session(g, seen <= this.#cacheBytes);
      const next = (async () => {
        const { session, cached } = await built;
        await prev;
        await exec(g, session, cached);
      })();
      next.catch(() => {}); // awaited below; this only keeps an early failure from being reported as unhandled
      inflight = next;
      // At most one group built ahead of the one running: never more than two groups' weights in memory.
      await prev;
    };

    let g = newGroup();
    try {
      for await (const layer of model.layers as ReadableStream<Layer>) {
        if (!ORT_OPS.has(layer.op)) {
          throw new ConvpressError("unsupported", `Layer '${layer.name}' (${layer.op}) cannot run in ONNX Runtime`, {
            layer: layer.name,
          });
        }
        const { ins, outs } = tracker.add(layer);
        last = layer.outputs[0] ?? last;
        const bytes = Object.values(layer.params).reduce((s, t) => s + t.size * 4, 0);
        if (layer.op === "FC" && bytes > this.#groupBytes) {
          await flush(g);
          g = newGroup();
          for (const b of this.#fcBlocks(layer, ins[0], batch)) await flush(b);
          continue;
        }
        if (g.nodes.length && g.weightBytes + bytes > this.#groupBytes) {
          await flush(g);
          g = newGroup();
        }
        this.#add(g, layer, ins, outs, batch);
      }
      await flush(g);
      await inflight;
    } catch (e) {
      await inflight.catch(() => {});
      await model.layers.cancel().catch(() => {});
      throw e;
    }
    const name = wanted && acts.has(wanted) ? wanted : last;
    const out = name ? acts.get(name) : undefined;
    if (!name || !out) throw err(`The model never produced its output '${wanted ?? "?"}'`);
    return { name, data: out.data, shape: out.shape };
  }

  /** Adds a layer's nodes and weights to a group. */
  #add(g: Group, layer: Layer, ins: Shape[], outs: Shape[], batch: number): void {
    const ex = exportLayer(layer, OPSET, ins[0]);
    const used = new Set(ex.nodes.flatMap((n) => n.inputs));
    for (const t of [...ex.constants, ...Object.values(layer.params)]) {
      if (!used.has(t.name) || g.initNames.has(t.name)) continue;
      g.initNames.add(t.name);
      g.inits.push(initOf(t));
      g.weightBytes += t.size * 4;
    }
    layer.inputs.forEach((v, i) => {
      if (g.produced.has(v)) g.innerReads.set(v, (g.innerReads.get(v) ?? 0) + 1);
      if (g.produced.has(v) || g.initNames.has(v)) return;
      g.reads.set(v, (g.reads.get(v) ?? 0) + 1);
      if (!g.shapes.has(v)) g.shapes.set(v, ins[i]);
    });
    for (const n of ex.nodes) g.nodes.push(n.bytes);
    layer.outputs.forEach((v, i) => {
      g.produced.add(v);
      g.shapes.set(v, outs[i]);
      const s = outs[i];
      if (s && s.every((d) => typeof d === "number")) {
        g.sampleBytes = Math.max(g.sampleBytes, (numel(s as number[]) / Math.max(1, batch)) * 4);
      }
    });
    g.names.push(layer.name);
    g.key += `${layer.name}:${layer.op}:${layer.inputs.join(",")}>${layer.outputs.join(",")};`;
  }

  /**
   * One group per block of rows of a big FC's weight. A block's rows are read straight into its model bytes when
   * its session is built, in block order.
   */
  *#fcBlocks(layer: Layer, inShape: Shape, batch: number): Generator<Group> {
    const w = layer.params.weight;
    if (!w || w.shape.length !== 2) throw err(`Layer '${layer.name}' (FC) needs a weight [out, in]`, layer.name);
    const [out, inn] = w.shape;
    const rowsPer = Math.max(1, Math.floor(this.#blockBytes / (inn * 4)));
    const x = layer.inputs[0], y = layer.outputs[0];
    const es = DTYPE_SIZE[w.dtype];
    const rows = w.chunks();
    let pending: Uint8Array | undefined;
    let bias: Promise<Float32Array> | undefined;
    let queue: Promise<void> = Promise.resolve();
    // Reads the next dst.length bytes of the weight into dst.
    const takeInto = async (dst: Uint8Array) => {
      let fill = 0;
      if (pending) {
        const k = Math.min(dst.length, pending.length);
        dst.set(pending.subarray(0, k));
        fill = k;
        pending = k < pending.length ? pending.subarray(k) : undefined;
      }
      while (fill < dst.length) {
        const r = await rows.next();
        if (r.done) throw new ConvpressError("unexpected_eof", `FC weight '${w.name}' ended early`, { layer: w.name });
        const k = Math.min(dst.length - fill, r.value.length);
        dst.set(r.value.subarray(0, k), fill);
        fill += k;
        if (k < r.value.length) pending = r.value.slice(k);
      }
    };
    for (let r0 = 0; r0 < out; r0 += rowsPer) {
      const n = Math.min(rowsPer, out - r0);
      const g = newGroup();
      const part = `${y}#rows${r0}`;
      // Stand-ins with the block's names and shapes; their data comes from the fills below.
      const wBlock = Tensor.fromChunks(`${w.name}#rows${r0}`, "float32", [n, inn], n * inn * 4, noChunks);
      const bBlock = layer.params.bias
        ? Tensor.fromChunks(`${w.name}#bias${r0}`, "float32", [n], n * 4, noChunks)
        : undefined;
      const block: Layer = {
        ...layer,
        outputs: [part],
        params: { weight: wBlock, ...(bBlock ? { bias: bBlock } : {}) },
      };
      this.#add(g, block, [inShape], [[batch, n]], batch);
      for (const init of g.inits) {
        if (init.name === wBlock.name) {
          init.fill = (dst) => {
            const read = queue.then(async () => {
              if (es === 4 && w.dtype === "float32") return takeInto(dst);
              const raw = new Uint8Array(n * inn * es);
              await takeInto(raw);
              const f = toFloat32(w.dtype, raw, w.name);
              dst.set(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
            });
            queue = read.catch(() => {});
            return read;
          };
        } else if (bBlock && init.name === bBlock.name) {
          init.fill = async (dst) => {
            bias ??= layer.params.bias!.float32();
            const b = (await bias).subarray(r0, r0 + n);
            dst.set(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
          };
        }
      }
      g.fcBlock = { y, x, out, r0, rows: n, last: r0 + n >= out };
      yield g;
    }
  }

  /** The group's session: from the cache, or built now (and cached when small enough). */
  async #session(g: Group, cacheable: boolean): Promise<{ session: Session; cached: boolean }> {
    // The same layers with other outputs (a run without a structure keeps everything) are another graph.
    const key = `${g.key}|${g.outputs.join(",")}`;
    const hit = this.#cache.get(key);
    if (hit) return { session: hit, cached: true };
    const bytes = await this.#modelBytes(g, g.outputs);
    const options: import("onnxruntime-node").InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      executionMode: "sequential",
    };
    if (this.#threads) options.intraOpNumThreads = this.#threads;
    // Idle compute threads sleep instead of spinning: the spin burns the CPU that the image decoding worker (and
    // anything else on the machine) needs; measured on SqueezeNet eval from JPEGs, 15-17.7 s of user time instead of
    // 17.3-18.9 s, and wall time no worse (bench/results/speed.md).
    const extra: Record<string, Record<string, unknown>> = { session: { intra_op: { allow_spinning: "0" } } };
    options.extra = extra;
    const cache = cacheable && this.#cachedBytes + g.weightBytes <= this.#cacheBytes;
    if (!cache) {
      // A one-off session: no arena to outlive it, and no second, prepacked copy of its weights.
      options.enableCpuMemArena = false;
      extra.session.disable_prepacking = "1";
    }
    let session: Session;
    try {
      session = await this.ort.InferenceSession.create(bytes, options);
      // The model bytes (a group's weights) are ONNX Runtime's now: collect the JavaScript copy.
      releaseMemory();
    } catch (e) {
      throw new ConvpressError(
        "unsupported",
        `ONNX Runtime cannot run layers ${g.names.join(", ")}: ${(e as Error).message}`,
        { layer: g.names[0], cause: e },
      );
    }
    if (cache) {
      this.#cache.set(key, session);
      this.#cachedBytes += g.weightBytes;
    }
    return { session, cached: cache };
  }

  /** The values a group must hand back: read later, kept, or (without a structure) all of them. */
  #outputs(g: Group, uses: Map<string, number> | undefined, keep: Set<string>): string[] {
    if (g.fcBlock) return [`${g.fcBlock.y}#rows${g.fcBlock.r0}`];
    return [...g.produced].filter((v) => !uses || keep.has(v) || (uses.get(v) ?? 0) > (g.innerReads.get(v) ?? 0));
  }

  async #execGroup(
    g: Group,
    session: Session,
    acts: Map<string, Act>,
    batch: number,
  ): Promise<void> {
    const outs = g.outputs;
    const ins = [...g.reads.keys()].map((v) => {
      const a = acts.get(v);
      if (!a) throw err(`Cannot evaluate layer '${g.names[0]}': its input '${v}' is not available`, g.names[0]);
      return [v, a] as const;
    });
    // Slices of the batch when the group's activations are big and every value is batch-first.
    const batchFirst = [...ins.map(([, a]) => a.shape), ...outs.map((v) => g.shapes.get(v))].every((s) =>
      s && s[0] === batch
    );
    const per = batchFirst
      ? Math.max(1, Math.min(batch, Math.floor(this.#actBytes / Math.max(1, g.sampleBytes))))
      : batch;
    const results = new Map<string, { parts: Float32Array[]; shape: number[] }>();
    for (let b0 = 0; b0 < batch; b0 += per) {
      const n = Math.min(per, batch - b0);
      const feeds: Record<string, import("onnxruntime-node").Tensor> = {};
      for (const [v, a] of ins) {
        const size = a.data.length / a.shape[0];
        const data = n === batch ? a.data : a.data.subarray(b0 * size, (b0 + n) * size);
        feeds[v] = new this.ort.Tensor("float32", data, n === batch ? a.shape : [n, ...a.shape.slice(1)]);
      }
      const r = await session.run(feeds, outs);
      // Without an arena each slice's intermediate buffers are malloc'd and freed; glibc kept them (VGG16's first
      // group on 16 images grew 25 MB a slice, to 650 MB): give them back before the next slice.
      if (per < batch) trimMemory();
      for (const v of outs) {
        const t = r[v];
        const e = results.get(v) ?? { parts: [], shape: [...(t.dims as number[])] };
        e.parts.push(t.data as Float32Array);
        results.set(v, e);
      }
    }
    for (const [v, e] of results) {
      let data = e.parts[0];
      if (e.parts.length > 1) {
        data = new Float32Array(e.parts.reduce((s, p) => s + p.length, 0));
        let off = 0;
        for (const p of e.parts) {
          data.set(p, off);
          off += p.length;
        }
        e.shape[0] = batch;
      }
      acts.set(v, { data, shape: e.shape });
    }
  }

  async #execFcBlock(
    g: Group,
    session: Session,
    acts: Map<string, Act>,
    fcParts: Map<string, Float32Array>,
    batch: number,
  ): Promise<void> {
    const b = g.fcBlock!;
    const a = acts.get(b.x);
    if (!a) throw err(`Cannot evaluate layer '${g.names[0]}': its input '${b.x}' is not available`, g.names[0]);
    const part = `${b.y}#rows${b.r0}`;
    const r = await session.run({ [b.x]: new this.ort.Tensor("float32", a.data, a.shape) }, [part]);
    const p = r[part].data as Float32Array;
    let y = fcParts.get(b.y);
    if (!y) {
      y = new Float32Array(batch * b.out);
      fcParts.set(b.y, y);
    }
    for (let i = 0; i < batch; i++) y.set(p.subarray(i * b.rows, (i + 1) * b.rows), i * b.out + b.r0);
    if (b.last) {
      fcParts.delete(b.y);
      acts.set(b.y, { data: y, shape: [batch, b.out] });
    }
  }

  /** An ONNX model holding the group: its nodes, its weights as float32 initializers, inputs with a free batch. */
  async #modelBytes(g: Group, outs: string[]): Promise<Uint8Array> {
    // Gathered as parts and joined once: a group's weights are copied exactly once on their way to ONNX Runtime.
    const graph: Uint8Array[] = [];
    for (const n of g.nodes) graph.push(head(1, n.length), n);
    const name = new TextEncoder().encode("group");
    graph.push(head(2, name.length), name);
    const fills: { init: Init; part: number }[] = [];
    for (const t of g.inits) {
      const meta = onnx.TensorProto.encode({ dims: t.dims, dataType: t.dataType, name: t.name }).finish();
      const rawHead = head(9, t.byteLength);
      graph.push(head(5, meta.length + rawHead.length + t.byteLength), meta, rawHead);
      fills.push({ init: t, part: graph.length });
      graph.push(new Uint8Array(0)); // the raw data's place: filled in the joined buffer
    }
    for (const v of g.reads.keys()) {
      const vi = valueInfo(v, g.shapes.get(v));
      graph.push(head(11, vi.length), vi);
    }
    for (const v of outs) {
      const vi = valueInfo(v, undefined);
      graph.push(head(12, vi.length), vi);
    }
    const rawLen = (i: number) => fills.find((f) => f.part === i)?.init.byteLength ?? 0;
    const graphLen = graph.reduce((s, p, i) => s + p.length + rawLen(i), 0);
    const opset = onnx.OperatorSetIdProto.encode({ domain: "", version: OPSET }).finish();
    const pre = [new Uint8Array([0x08, 7]), head(7, graphLen)];
    const post = [head(8, opset.length), opset];
    const total = [...pre, ...post].reduce((s, p) => s + p.length, 0) + graphLen;
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of pre) {
      out.set(p, off);
      off += p.length;
    }
    for (let i = 0; i < graph.length; i++) {
      out.set(graph[i], off);
      off += graph[i].length;
      const f = fills.find((x) => x.part === i);
      if (f) {
        await f.init.fill(out.subarray(off, off + f.init.byteLength));
        off += f.init.byteLength;
      }
    }
    for (const p of post) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** The data of a stand-in tensor whose bytes are written by its initializer's fill instead. */
async function* noChunks(): AsyncGenerator<Uint8Array> {}

/** The key and length prefix of a length-delimited field. */
function head(field: number, length: number): Uint8Array {
  return new WireWriter(16).tag(field, 2).uint(length).finish();
}

function valueInfo(name: string, shape: Shape): Uint8Array {
  const dims = shape?.map((d, i) => (i === 0 || typeof d !== "number" ? { dimParam: `d${i}` } : { dimValue: d }));
  return onnx.ValueInfoProto.encode({
    name,
    type: { tensorType: { elemType: F32, ...(dims ? { shape: { dim: dims } } : {}) } },
  }).finish();
}
