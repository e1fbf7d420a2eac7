/**
 * Loads a `.cvp` straight into TensorFlow.js while it downloads: {@link loadCvpModel} reads the file with the reference
 * decoder (`formats/cvp/decoder.ts`), builds a tfjs GraphDef from the canonical layers as their descriptors arrive,
 * and turns each parameter tensor into a tfjs tensor as soon as its record ends. Clustered tensors are dequantized
 * (centre[index]) one tensor at a time, straight into the layout TF.js wants (conv kernels OIHW -> HWIO, depthwise
 * kernels -> [kh, kw, C, M]); FC weights stay [out, in] under `MatMul transpose_b`. So decoding holds the model being
 * built (tfjs tensors in the backend) plus one tensor in hand, its encoded body and the bytes of the stream still to
 * parse: never the whole file, never a float copy of the model.
 *
 * The module imports nothing at run time: the tfjs namespace is passed in (`options.tf`) or taken from
 * `globalThis.tf` (the page's `<script src=".../tf.min.js">`). It runs in browsers, Deno and Node 18+.
 * `web/cvp_loader.js` is its browser-ready build (`deno task build-web`; `web/cvp_loader_test.ts` checks it is up to
 * date).
 *
 * The model takes and returns canonical layouts: its input is NCHW as the `.cvp` header says, a 4-D output comes
 * back NCHW, so its outputs can be compared with ONNX Runtime's on the decoded ONNX as they are. Inside, the graph runs
 * NHWC (a Transpose after the input), the layout every tfjs backend implements.
 *
 * @example
 * ```ts ignore
 * import { loadCvpModel } from "./cvp_loader.js";
 * const { model, inputs, outputs, layers } = await loadCvpModel("lenet.cvp", {
 *   onProgress: (p) => console.log(`${p.bytes} of ${p.totalBytes} bytes, ${p.layers} layers`),
 * });
 * const y = model.execute({ [inputs[0].node]: tf.zeros([1, 1, 28, 28]) }, outputs[0].node);
 * ```
 *
 * @module
 */
import { type CvpHeader, type CvpLayer, decodeCvp } from "../formats/cvp/decoder.ts";
import type * as TfNamespace from "@tensorflow/tfjs";

/** The tfjs namespace the loader uses (type only: nothing is imported at run time). */
export type Tf = typeof TfNamespace;
/** A tfjs graph-model. */
export type GraphModel = TfNamespace.GraphModel;

/** Stable codes of {@link CvpLoadError}. */
export type CvpLoadErrorCode = "unsupported_op" | "bad_format" | "bad_source" | "no_tfjs" | "tfjs_internal";

/** An error of the loader (decoding errors are the decoder's `CvpDecodeError`, passed on as they are). */
export class CvpLoadError extends Error {
  /** A stable code for programs. */
  readonly code: CvpLoadErrorCode;
  /** The layer concerned, when there is one. */
  readonly layer?: string;
  /** Creates an error; the message names the layer when one is given. */
  constructor(code: CvpLoadErrorCode, message: string, layer?: string) {
    super(layer ? `Layer '${layer}': ${message}` : message);
    this.name = "CvpLoadError";
    this.code = code;
    this.layer = layer;
  }
}

/** What {@link loadCvpModel} reports as it goes. */
export interface CvpProgress {
  /** `header`, `layer` (a descriptor arrived), `tensor` (a tensor became a tfjs tensor), `done`. */
  phase: "header" | "layer" | "tensor" | "done";
  /** Bytes of the `.cvp` read so far. */
  bytes: number;
  /** The file's size when known (Content-Length, a Blob's size, bytes' length). */
  totalBytes?: number;
  /** Layers and tensors seen so far. */
  layers: number;
  tensors: number;
  /** The layer in hand. */
  layer?: string;
}

/** One parameter tensor as the file stores it. */
export interface CvpTensorReport {
  role: string;
  name: string;
  shape: number[];
  /** `raw`, `f16`, `bf16`, `cluster` or `cluster-sparse`. */
  encoding: string;
  /** Bytes of its record body in the file. */
  bytes: number;
}

/** One layer of the model, for the per-layer report. */
export interface CvpLayerReport {
  name: string;
  op: string;
  /** Canonical (NCHW) output shape; `null` for the batch or an unknown dimension. */
  outputShape: (number | null)[];
  /** Parameter count. */
  params: number;
  tensors: CvpTensorReport[];
  /** Bytes of the layer's tensor bodies. */
  bytes: number;
}

/** A graph input or output of the built model. */
export interface CvpEndpoint {
  /** Name in the `.cvp`. */
  name: string;
  /** Node name in the tfjs graph (what `model.execute` takes). */
  node: string;
  /** Canonical (NCHW) shape; `null` for the batch or an unknown dimension. */
  shape: (number | null)[];
}

/** What {@link loadCvpModel} returns. */
export interface CvpModel {
  /** The tfjs graph-model, ready for `execute`/`predict`/`executeAsync`. */
  model: GraphModel;
  /** The model header, completed by the trailer. */
  header: CvpHeader;
  inputs: CvpEndpoint[];
  outputs: CvpEndpoint[];
  layers: CvpLayerReport[];
  /** Size of the `.cvp` in bytes. */
  bytes: number;
  /** The GraphDef JSON given to tfjs (for inspection and tests). */
  graph: { node: NodeDef[]; versions: { producer: number } };
}

/** Options of {@link loadCvpModel}. */
export interface LoadCvpOptions {
  /** The tfjs namespace (default `globalThis.tf`). */
  tf?: Tf;
  /** Called as bytes, layers and tensors arrive. */
  onProgress?: (p: CvpProgress) => void;
  /** `fetch` for a URL source (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Passed to `fetch` for a URL source. */
  signal?: AbortSignal;
}

/** A source of `.cvp` bytes. */
export type CvpSource =
  | string
  | URL
  | Response
  | ReadableStream<Uint8Array>
  | Blob
  | Uint8Array
  | ArrayBuffer;

/** A GraphDef node as tfjs's model.json holds it. */
export interface NodeDef {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

type Dims = (number | null)[];

const LOWEST = -3.4028234663852886e38;
const ints = (v: number[]) => ({ list: { i: v.map(String) } });
const str = (s: string) => ({ s: btoa(s) });
const FLOAT = { type: "DT_FLOAT" };

/** Opens a source as a byte stream, with its size when known. */
async function open(source: CvpSource, options: LoadCvpOptions): Promise<{ stream: ReadableStream; total?: number }> {
  if (typeof source === "string" || source instanceof URL) {
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new CvpLoadError("bad_source", "No fetch to load a URL with");
    source = await f(source, { signal: options.signal });
  }
  if (typeof Response !== "undefined" && source instanceof Response) {
    if (!source.ok) {
      throw new CvpLoadError("bad_source", `Fetching ${source.url || "the model"} failed: ${source.status}`);
    }
    if (!source.body) throw new CvpLoadError("bad_source", "The response has no body");
    const len = Number(source.headers.get("content-length"));
    const encoded = source.headers.get("content-encoding");
    return { stream: source.body, total: len > 0 && !encoded ? len : undefined };
  }
  if (source instanceof ReadableStream) return { stream: source };
  if (typeof Blob !== "undefined" && source instanceof Blob) return { stream: source.stream(), total: source.size };
  if (source instanceof ArrayBuffer) source = new Uint8Array(source);
  if (source instanceof Uint8Array) {
    const bytes = source;
    return {
      stream: new ReadableStream({
        start(c) {
          c.enqueue(bytes);
          c.close();
        },
      }),
      total: bytes.length,
    };
  }
  throw new CvpLoadError("bad_source", "The source is not a URL, a Response, a ReadableStream, a Blob or bytes");
}

/**
 * Downloads (or reads) a `.cvp` and builds a tfjs graph-model from it as its records arrive.
 *
 * @param source A URL, a `Response`, a `ReadableStream` of bytes, a `Blob`/`File`, or the bytes themselves.
 * @returns The model, its endpoints and the per-layer report.
 * @throws {CvpLoadError} for an op TF.js cannot run or a layer that does not fit its inputs; the decoder's
 *   `CvpDecodeError` for a damaged file (every CRC is checked before the model is handed out).
 */
export async function loadCvpModel(source: CvpSource, options: LoadCvpOptions = {}): Promise<CvpModel> {
  const tf = options.tf ?? (globalThis as unknown as { tf?: Tf }).tf;
  if (!tf || typeof tf.GraphModel !== "function") {
    throw new CvpLoadError("no_tfjs", "TensorFlow.js is not loaded: pass options.tf or load tf.min.js first");
  }
  const { stream, total } = await open(source, options);
  let bytes = 0;
  // The loader reads the stream itself, to count bytes and to cancel the download when it stops early.
  const reader = (stream as ReadableStream<Uint8Array>).getReader();
  const chunks = async function* () {
    for (;;) {
      const r = await reader.read();
      if (r.done) return;
      bytes += r.value.length;
      yield r.value;
    }
  };
  const builder = new GraphBuilder(tf);
  const report: CvpLayerReport[] = [];
  let layers = 0, tensors = 0;
  const progress = (phase: CvpProgress["phase"], layer?: string) =>
    options.onProgress?.({ phase, bytes, totalBytes: total, layers, tensors, layer });

  let header: CvpHeader | undefined;
  let layer: CvpLayer | undefined;
  let hand: TensorInHand | undefined;
  let param = 0; // index in layer.params of the tensor in hand
  try {
    // Slices of 64 Ki values (256 kB): the slice in flight stays small next to the tensor in hand.
    for await (const ev of decodeCvp(chunks(), { sliceElements: 1 << 16 })) {
      switch (ev.type) {
        case "header":
          header = ev.header;
          builder.inputs(ev.header);
          progress("header");
          break;
        case "layer":
          layer = ev.layer;
          param = 0;
          layers++;
          report.push({
            name: layer.name,
            op: layer.op,
            outputShape: [],
            params: layer.params.reduce((a, p) => a + p.shape.reduce((x, y) => x * y, 1), 0),
            tensors: [],
            bytes: 0,
          });
          builder.layer(layer);
          report[report.length - 1].outputShape = builder.dims(layer.outputs[0]) ?? [];
          progress("layer", layer.name);
          break;
        case "tensor":
          if (!hand || hand.name !== ev.name) {
            hand = builder.tensorInHand(layer!, ev.role, ev.shape);
            report[report.length - 1].tensors.push({
              role: ev.role,
              name: ev.name,
              shape: ev.shape,
              encoding: ev.encoding,
              bytes: 0,
            });
          }
          hand.put(ev.start, ev.data);
          break;
        case "tensor-end": {
          // A zero-element tensor yields no slice: make its (empty) holder here.
          hand ??= builder.tensorInHand(layer!, layer!.params[param].role, layer!.params[param].shape);
          param++;
          builder.finish(hand);
          hand = undefined;
          const r = report[report.length - 1];
          const t = r.tensors[r.tensors.length - 1];
          if (t) t.bytes = ev.bodyBytes;
          r.bytes += ev.bodyBytes;
          tensors++;
          progress("tensor", layer!.name);
          break;
        }
        case "end":
          header = ev.header;
          break;
      }
    }
    const built = builder.model(header!);
    progress("done");
    return { ...built, header: header!, layers: report, bytes };
  } catch (e) {
    builder.dispose();
    await reader.cancel(e).catch(() => {});
    throw e;
  }
}

/** A tensor being filled slice by slice, in TF.js layout. */
interface TensorInHand {
  name: string;
  /** The weight-map name of the Const node it becomes. */
  node: string;
  shape: number[];
  data: Float32Array;
  put(start: number, values: Float32Array): void;
}

/** How a canonical parameter maps to TF.js: its Const node name, TF shape and the index map. */
interface ParamPlan {
  node: string;
  shape: number[];
  /** Canonical flat index -> TF flat index (identity when absent). */
  map?: (i: number) => number;
}

/** Builds the GraphDef and the weight map as layers and tensors arrive. */
class GraphBuilder {
  readonly #tf: Tf;
  readonly #nodes: NodeDef[] = [];
  readonly #weights: Record<string, TfNamespace.Tensor> = {};
  /** Canonical value name -> graph node producing it (NHWC inside for rank 4). */
  readonly #value = new Map<string, string>();
  /** Canonical value name -> canonical (NCHW) dims. */
  readonly #dims = new Map<string, Dims>();
  readonly #names = new Set<string>();
  /** Planned parameters of the layer in hand, by role. */
  #plans = new Map<string, ParamPlan>();
  #inputs: { name: string; node: string; shape: Dims }[] = [];

  constructor(tf: Tf) {
    this.#tf = tf;
  }

  /** A node name: the canonical name made safe for TF, unique. */
  #unique(base: string): string {
    let n = base.replace(/[^A-Za-z0-9_./-]/g, "_").replace(/^[^A-Za-z0-9.]/, "x");
    if (!n) n = "x";
    let s = n;
    for (let i = 1; this.#names.has(s); i++) s = `${n}_${i}`;
    this.#names.add(s);
    return s;
  }

  #node(op: string, base: string, input: string[], attr: Record<string, unknown> = {}, typed = true): string {
    const name = this.#unique(base);
    this.#nodes.push({ name, op, input, attr: typed ? { T: FLOAT, ...attr } : attr });
    return name;
  }

  #constNode(name: string, dtype: "DT_FLOAT" | "DT_INT32", shape: number[]): void {
    this.#nodes.push({
      name,
      op: "Const",
      attr: {
        dtype: { type: dtype },
        value: { tensor: { dtype, tensorShape: { dim: shape.map((s) => ({ size: String(s) })) } } },
      },
    });
  }

  /** A small int32 (or float32) constant, made now. */
  #small(base: string, shape: number[], values: number[], dtype: "int32" | "float32" = "int32"): string {
    const name = this.#unique(base);
    this.#constNode(name, dtype === "int32" ? "DT_INT32" : "DT_FLOAT", shape);
    this.#weights[name] = this.#tf.tensor(values, shape, dtype);
    return name;
  }

  /** Canonical dims of a value. */
  dims(v: string): Dims | undefined {
    return this.#dims.get(v);
  }

  #in(l: CvpLayer, i = 0): { node: string; dims: Dims } {
    const v = l.inputs[i];
    const node = this.#value.get(v);
    const dims = this.#dims.get(v);
    if (node === undefined || !dims) {
      throw new CvpLoadError("bad_format", `input '${v}' is not produced before`, l.name);
    }
    return { node, dims };
  }

  #out(l: CvpLayer, node: string, dims: Dims): void {
    this.#value.set(l.outputs[0], node);
    this.#dims.set(l.outputs[0], dims);
  }

  /** Declares the graph inputs: a Placeholder in NCHW, transposed to NHWC when 4-D. */
  inputs(h: CvpHeader): void {
    for (const i of h.inputs) {
      const shape: Dims = i.shape.map((d, k) => (k > 0 && typeof d === "number" ? d : null));
      const ph = this.#unique(i.name);
      this.#nodes.push({
        name: ph,
        op: "Placeholder",
        attr: {
          dtype: FLOAT,
          shape: { shape: { dim: shape.map((d) => ({ size: String(d ?? -1) })) } },
        },
      });
      this.#inputs.push({ name: i.name, node: ph, shape });
      let node = ph;
      if (shape.length === 4) node = this.#transpose(`${ph}_nhwc`, ph, [0, 2, 3, 1]);
      this.#value.set(i.name, node);
      this.#dims.set(i.name, shape);
    }
  }

  #transpose(base: string, x: string, perm: number[]): string {
    const p = this.#small(`${base}/perm`, [perm.length], perm);
    return this.#node("Transpose", base, [x, p], { Tperm: { type: "DT_INT32" } });
  }

  /** NHWC 4-D -> NCHW flat [N, C*H*W] (the canonical flatten order). */
  #flatten(base: string, x: string, d: Dims, layer: string): string {
    if (d.length <= 2) return x;
    const rest = d.slice(1);
    if (rest.some((v) => v === null)) throw new CvpLoadError("bad_format", "flatten of an unknown shape", layer);
    const n = (rest as number[]).reduce((a, b) => a * b, 1);
    const t = d.length === 4 ? this.#transpose(`${base}_nchw`, x, [0, 3, 1, 2]) : x;
    const s = this.#small(`${base}/shape`, [2], [-1, n]);
    return this.#node("Reshape", base, [t, s], { Tshape: { type: "DT_INT32" } });
  }

  /** Pads NHWC spatial dims explicitly ([t, l, b, r]) with `value`. */
  #pad(base: string, x: string, p: number[], value: number): string {
    const pads = this.#small(`${base}/paddings`, [4, 2], [0, 0, p[0], p[2], p[1], p[3], 0, 0]);
    if (value === 0) return this.#node("Pad", base, [x, pads], { Tpaddings: { type: "DT_INT32" } });
    const cv = this.#small(`${base}/value`, [], [value], "float32");
    return this.#node("PadV2", base, [x, pads, cv], { Tpaddings: { type: "DT_INT32" } });
  }

  /** Adds one layer's nodes; its parameters become Const nodes now and weights when their tensors end. */
  layer(l: CvpLayer): void {
    this.#plans = new Map();
    const a = l.attrs;
    const name = l.name;
    const param = (role: string, shape: number[], map?: (i: number) => number): string => {
      const node = this.#unique(`${name}/${role}`);
      this.#constNode(node, "DT_FLOAT", shape);
      this.#plans.set(role, { node, shape, map });
      return node;
    };
    const p = (role: string) => l.params.find((q) => q.role === role);
    const ew = (op: string, attr: Record<string, unknown> = {}) => {
      const x = this.#in(l);
      this.#out(l, this.#node(op, name, [x.node], attr), x.dims);
    };
    switch (l.op) {
      case "Conv":
        return this.#conv(l, param);
      case "FC": {
        const x = this.#in(l);
        const w = p("weight")!;
        const [o, n] = w.shape;
        const flat = this.#flatten(`${name}_flatten`, x.node, x.dims, name);
        const kn = param("weight", [o, n]);
        const b = p("bias");
        const mm = this.#node("MatMul", b ? `${name}_matmul` : name, [flat, kn], {
          transpose_a: { b: false },
          transpose_b: { b: true },
        });
        const out = b ? this.#node("BiasAdd", name, [mm, param("bias", b.shape)], { data_format: str("NHWC") }) : mm;
        return this.#out(l, out, [x.dims[0] ?? null, o]);
      }
      case "MaxPool":
      case "AvgPool":
        return this.#pool(l);
      case "GlobalAvgPool":
      case "GlobalMaxPool": {
        const x = this.#in(l);
        if (x.dims.length !== 4) {
          throw new CvpLoadError("unsupported_op", `${l.op} of a rank-${x.dims.length} input`, name);
        }
        const axes = this.#small(`${name}/axes`, [2], [1, 2]);
        const op = l.op === "GlobalAvgPool" ? "Mean" : "Max";
        const node = this.#node(op, name, [x.node, axes], { keep_dims: { b: true }, Tidx: { type: "DT_INT32" } });
        return this.#out(l, node, [x.dims[0], x.dims[1], 1, 1]);
      }
      case "Relu":
        return ew("Relu");
      case "Sigmoid":
        return ew("Sigmoid");
      case "Tanh":
        return ew("Tanh");
      case "LeakyRelu":
        return ew("LeakyRelu", { alpha: { f: Number(a.alpha ?? 0.01) } });
      case "Clip": {
        const min = Number(a.min ?? -Infinity), max = Number(a.max ?? Infinity);
        if (min === 0 && max === 6) return ew("Relu6");
        if (min === 0 && max === Infinity) return ew("Relu");
        const x = this.#in(l);
        const lo = this.#small(`${name}/min`, [], [Math.max(min, LOWEST)], "float32");
        const hi = this.#small(`${name}/max`, [], [Math.min(max, -LOWEST)], "float32");
        return this.#out(l, this.#node("ClipByValue", name, [x.node, lo, hi]), x.dims);
      }
      case "Softmax": {
        const x = this.#in(l);
        const axis = Number(a.axis ?? 1);
        const rank = x.dims.length;
        // NHWC puts the channels (canonical axis 1 of a 4-D tensor) last, where tfjs's softmax runs.
        const ok = rank === 4 ? axis === 1 || axis === -3 : axis === rank - 1 || axis === -1;
        if (!ok) throw new CvpLoadError("unsupported_op", `Softmax on axis ${axis} of a rank-${rank} tensor`, name);
        return ew("Softmax");
      }
      case "LRN": {
        const size = Number(a.size ?? 5);
        return ew("LRN", {
          depth_radius: { i: String((size - 1) / 2) },
          bias: { f: Number(a.bias ?? 1) },
          alpha: { f: Number(a.alpha ?? 1e-4) / size },
          beta: { f: Number(a.beta ?? 0.75) },
        });
      }
      case "BatchNorm": {
        const x = this.#in(l);
        const c = p("scale")!.shape;
        const ins = ["scale", "bias", "mean", "var"].map((r) => param(r, c));
        const node = this.#node("FusedBatchNormV3", name, [x.node, ...ins], {
          epsilon: { f: Number(a.epsilon ?? 1e-5) },
          data_format: str("NHWC"),
          is_training: { b: false },
          U: FLOAT,
        });
        return this.#out(l, node, x.dims);
      }
      case "Scale": {
        const x = this.#in(l);
        const axis = Number(a.axis ?? 1);
        if (axis !== 1) throw new CvpLoadError("unsupported_op", `Scale on axis ${axis}`, name);
        let v = x.node;
        const s = p("scale"), b = p("bias");
        if (s) v = this.#node("Mul", b ? `${name}_mul` : name, [v, param("scale", s.shape)]);
        if (b) v = this.#node("AddV2", name, [v, param("bias", b.shape)]);
        return this.#out(l, v, x.dims);
      }
      case "Add":
      case "Sub":
      case "Mul":
      case "Max": {
        const coeffs = a.coeffs as number[] | undefined;
        const ins = l.inputs.map((_, i) => this.#in(l, i));
        const rank = ins[0].dims.length;
        // NHWC inside: broadcasting is canonical only between tensors of one rank.
        if (ins.some((i) => i.dims.length !== rank)) {
          throw new CvpLoadError("unsupported_op", `${l.op} of inputs of different ranks`, name);
        }
        const dims = ins[0].dims.map((_, k) => {
          const ds = ins.map((i) => i.dims[k]);
          return ds.includes(null) ? null : Math.max(...(ds as number[]));
        });
        // Caffe's Eltwise SUM with coefficients: each input scaled first.
        const nodes = ins.map((i, k) => {
          const c = l.op === "Add" ? coeffs?.[k] ?? 1 : 1;
          if (c === 1) return i.node;
          return this.#node("Mul", `${name}_coeff${k}`, [i.node, this.#small(`${name}/coeff${k}`, [], [c], "float32")]);
        });
        let node: string;
        if (ins.length > 2) {
          if (l.op !== "Add") throw new CvpLoadError("unsupported_op", `${l.op} of ${ins.length} inputs`, name);
          node = this.#node("AddN", name, nodes, { N: { i: String(nodes.length) } });
        } else node = this.#node({ Add: "AddV2", Sub: "Sub", Mul: "Mul", Max: "Maximum" }[l.op], name, nodes);
        return this.#out(l, node, dims);
      }
      case "Concat": {
        if (l.params.length) throw new CvpLoadError("unsupported_op", "Concat with constant operands", name);
        const ins = l.inputs.map((_, i) => this.#in(l, i));
        const rank = ins[0].dims.length;
        let axis = Number(a.axis ?? 1);
        if (axis < 0) axis += rank;
        const tfAxis = rank === 4 ? [0, 3, 1, 2][axis] : axis;
        const ax = this.#small(`${name}/axis`, [], [tfAxis]);
        const node = this.#node("ConcatV2", name, [...ins.map((i) => i.node), ax], {
          N: { i: String(ins.length) },
          Tidx: { type: "DT_INT32" },
        });
        const dims = [...ins[0].dims];
        const sum = ins.map((i) => i.dims[axis]);
        dims[axis] = sum.every((d) => d !== null) ? (sum as number[]).reduce((x, y) => x + y, 0) : null;
        return this.#out(l, node, dims);
      }
      case "Flatten": {
        const x = this.#in(l);
        const axis = Number(a.axis ?? 1);
        if (axis !== 1) throw new CvpLoadError("unsupported_op", `Flatten from axis ${axis}`, name);
        const rest = x.dims.slice(1);
        const n = rest.every((d) => d !== null) ? (rest as number[]).reduce((u, v) => u * v, 1) : null;
        return this.#out(l, this.#flatten(name, x.node, x.dims, name), [x.dims[0], n]);
      }
      case "Reshape":
        return this.#reshape(l);
      case "Transpose": {
        const x = this.#in(l);
        const perm = (a.perm as number[]).map((v) => (v < 0 ? v + x.dims.length : v));
        // One Transpose from the NHWC value to the canonical result, itself NHWC when 4-D.
        let cur = x.dims.length === 4 ? [0, 3, 1, 2] : perm.map((_, i) => i);
        cur = perm.map((i) => cur[i]);
        if (perm.length === 4) cur = [0, 2, 3, 1].map((i) => cur[i]);
        const node = this.#transpose(name, x.node, cur);
        return this.#out(l, node, perm.map((p) => x.dims[p]));
      }
      case "Pad": {
        const x = this.#in(l);
        const pads = a.pads as number[];
        if (x.dims.length !== 4) throw new CvpLoadError("unsupported_op", `Pad of a rank-${x.dims.length} input`, name);
        const node = this.#pad(name, x.node, pads, Number(a.value ?? 0));
        const d = x.dims;
        const add = (v: number | null, k: number) => (v === null ? null : v + k);
        return this.#out(l, node, [d[0], d[1], add(d[2], pads[0] + pads[2]), add(d[3], pads[1] + pads[3])]);
      }
      case "Dropout":
      case "Identity":
        return ew("Identity");
      default:
        throw new CvpLoadError("unsupported_op", `op '${l.op}' has no TF.js graph op in the loader`, name);
    }
  }

  #conv(l: CvpLayer, param: (role: string, shape: number[], map?: (i: number) => number) => string): void {
    const x = this.#in(l);
    const a = l.attrs, name = l.name;
    const w = l.params.find((q) => q.role === "weight")!;
    const b = l.params.find((q) => q.role === "bias");
    const [o, ig, kh, kw] = w.shape;
    const group = Number(a.group ?? 1);
    const c = ig * group;
    const s = (a.strides as number[] | undefined) ?? [1, 1];
    const d = (a.dilations as number[] | undefined) ?? [1, 1];
    const pads = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
    const depthwise = group > 1 && group === c && ig === 1;
    let input = x.node;
    if (pads.some((v) => v !== 0)) input = this.#pad(`${name}_pad`, input, pads, 0);
    const khw = kh * kw;
    let kn: string;
    if (depthwise) {
      // canonical [C*M, 1, kh, kw] (o = c*M + m) -> [kh, kw, C, M]
      const m = o / c;
      kn = param("weight", [kh, kw, c, m], (i) => {
        const oo = Math.floor(i / khw), r = i - oo * khw;
        return r * c * m + oo; // ((h*kw + w) * C + c) * M + m = r*C*M + c*M + m = r*C*M + oo
      });
    } else {
      // canonical OIHW -> HWIO
      kn = param("weight", [kh, kw, ig, o], (i) => {
        const oo = Math.floor(i / (ig * khw));
        let r = i - oo * ig * khw;
        const ci = Math.floor(r / khw);
        r -= ci * khw;
        return (r * ig + ci) * o + oo;
      });
    }
    // tfjs convolves with strides or dilations, not both: then it convolves at stride 1 and keeps every s-th value.
    const subsample = (s[0] > 1 || s[1] > 1) && (d[0] > 1 || d[1] > 1);
    const stride = subsample ? [1, 1] : s;
    const convName = b || subsample ? `${name}_conv` : name;
    const convAttrs = {
      strides: ints([1, stride[0], stride[1], 1]),
      padding: str("VALID"),
      dilations: ints([1, d[0], d[1], 1]),
      data_format: str("NHWC"),
      explicit_paddings: { list: {} },
    };
    let conv: string;
    if (group === 1 || depthwise) {
      conv = this.#node(depthwise ? "DepthwiseConv2dNative" : "Conv2D", convName, [input, kn], convAttrs);
    } else {
      // A grouped convolution: split the input channels and the kernel's output channels into `group` parts, one
      // Conv2D each, concatenated (the kernel stays one tensor, [kh, kw, I/group, O]).
      const split = (base: string, v: string) => {
        const axis = this.#small(`${base}/axis`, [], [3]);
        return this.#node("Split", base, [axis, v], { num_split: { i: String(group) } });
      };
      const xs = split(`${name}_split_x`, input), ws = split(`${name}_split_w`, kn);
      const parts = Array.from(
        { length: group },
        (_, g) => this.#node("Conv2D", `${name}_group${g}`, [`${xs}:${g}`, `${ws}:${g}`], convAttrs),
      );
      const ax = this.#small(`${convName}/axis`, [], [3]);
      conv = this.#node("ConcatV2", convName, [...parts, ax], { N: { i: String(group) }, Tidx: { type: "DT_INT32" } });
    }
    if (subsample) {
      const zeros = this.#small(`${name}_subsample/begin`, [4], [0, 0, 0, 0]);
      const ends = this.#small(`${name}_subsample/end`, [4], [0, 0, 0, 0]);
      const steps = this.#small(`${name}_subsample/strides`, [4], [1, s[0], s[1], 1]);
      conv = this.#node("StridedSlice", b ? `${name}_subsample` : name, [conv, zeros, ends, steps], {
        Index: { type: "DT_INT32" },
        begin_mask: { i: "15" },
        end_mask: { i: "15" },
        ellipsis_mask: { i: "0" },
        new_axis_mask: { i: "0" },
        shrink_axis_mask: { i: "0" },
      });
    }
    const out = b ? this.#node("BiasAdd", name, [conv, param("bias", b.shape)], { data_format: str("NHWC") }) : conv;
    const hw = [0, 1].map((k) => {
      const size = x.dims[2 + k];
      if (size === null) return null;
      return Math.floor((size + pads[k] + pads[k + 2] - ((k ? kw : kh) - 1) * d[k] - 1) / s[k]) + 1;
    });
    this.#out(l, out, [x.dims[0], o, hw[0], hw[1]]);
  }

  #pool(l: CvpLayer): void {
    const x = this.#in(l);
    const a = l.attrs, name = l.name;
    const k = a.kernel as number[];
    const s = (a.strides as number[] | undefined) ?? [1, 1];
    const pads = [...((a.pads as number[] | undefined) ?? [0, 0, 0, 0])];
    const ceil = Boolean(a.ceil);
    const max = l.op === "MaxPool";
    if (x.dims.length !== 4) throw new CvpLoadError("unsupported_op", `${l.op} of a rank-${x.dims.length} input`, name);
    const outHW = [0, 1].map((i) => {
      const size = x.dims[2 + i];
      if (size === null) {
        if (ceil) throw new CvpLoadError("bad_format", `${l.op} in ceil mode needs the input size`, name);
        return null;
      }
      // As src/model/shapes.ts windowOut: a last window starting in the end padding is dropped.
      const num = size + pads[i] + pads[i + 2] - k[i];
      let out = (ceil ? Math.ceil(num / s[i]) : Math.floor(num / s[i])) + 1;
      if (ceil && (out - 1) * s[i] >= size + pads[i]) out--;
      return out;
    });
    // Grow the bottom/right padding until a VALID window gives the canonical output size (ceil mode).
    const explicit = [...pads];
    for (const i of [0, 1]) {
      const size = x.dims[2 + i], want = outHW[i];
      if (size === null || want === null) continue;
      while (Math.floor((size + explicit[i] + explicit[i + 2] - k[i]) / s[i]) + 1 < want) explicit[i + 2]++;
    }
    const padded = explicit.some((v) => v !== 0);
    const input = padded ? this.#pad(`${name}_pad`, x.node, explicit, max ? LOWEST : 0) : x.node;
    // AvgPool over zero padding divides by the whole window; where the canonical divisor differs (padding left out
    // of the count, or a ceil-mode window reaching past the padded input), a constant map rescales each position.
    const scale = !max && padded ? this.#avgScale(l, x.dims, k, s, pads, outHW) : undefined;
    const pool = this.#node(max ? "MaxPool" : "AvgPool", scale ? `${name}_pool` : name, [input], {
      ksize: ints([1, k[0], k[1], 1]),
      strides: ints([1, s[0], s[1], 1]),
      padding: str("VALID"),
      data_format: str("NHWC"),
    });
    const node = scale ? this.#node("Mul", name, [pool, scale]) : pool;
    this.#out(l, node, [x.dims[0], x.dims[1], outHW[0], outHW[1]]);
  }

  /** The `[1, oh, ow, 1]` map of window area / canonical divisor, or undefined when it is 1 everywhere. */
  #avgScale(
    l: CvpLayer,
    d: Dims,
    k: number[],
    s: number[],
    pads: number[],
    out: (number | null)[],
  ): string | undefined {
    const [h, w] = [d[2], d[3]];
    const [oh, ow] = out;
    if (h === null || w === null || oh === null || ow === null) {
      throw new CvpLoadError("bad_format", "AvgPool with pads needs the input size", l.name);
    }
    const include = Boolean(l.attrs.countIncludePad);
    // As Caffe and ONNX Runtime: a window is clipped to the padded input (include) or to the input itself.
    const count = (o: number, i: 0 | 1, size: number) => {
      const start = o * s[i] - pads[i];
      const end = Math.min(start + k[i], size + pads[i + 2]);
      return include ? end - start : Math.min(end, size) - Math.max(start, 0);
    };
    const map = new Array<number>(oh * ow);
    let trivial = true;
    for (let y = 0; y < oh; y++) {
      for (let x = 0; x < ow; x++) {
        const v = (k[0] * k[1]) / (count(y, 0, h) * count(x, 1, w));
        map[y * ow + x] = v;
        if (v !== 1) trivial = false;
      }
    }
    return trivial ? undefined : this.#small(`${l.name}/divisor`, [1, oh, ow, 1], map, "float32");
  }

  #reshape(l: CvpLayer): void {
    const x = this.#in(l);
    const name = l.name;
    const spec = (l.attrs.shape as number[]).map((d, i) => (d === 0 ? x.dims[i] : d));
    if (spec.slice(1).some((d) => d === null)) {
      throw new CvpLoadError("bad_format", "Reshape copies an unknown dimension", name);
    }
    const inN = x.dims.slice(1).every((d) => d !== null)
      ? (x.dims.slice(1) as number[]).reduce((a, b) => a * b, 1)
      : null;
    const known = (spec.slice(1) as number[]).filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const dims: Dims = spec.map((d, i) => (i === 0 ? x.dims[0] : d === -1 ? (inN === null ? null : inN / known) : d));
    let g = x.dims.length === 4 ? this.#transpose(`${name}_nchw`, x.node, [0, 3, 1, 2]) : x.node;
    const four = dims.length === 4;
    const shape = this.#small(`${name}/shape`, [dims.length], dims.map((d, i) => (i === 0 ? -1 : d ?? -1)));
    g = this.#node("Reshape", four ? `${name}_reshape` : name, [g, shape], { Tshape: { type: "DT_INT32" } });
    if (four) g = this.#transpose(name, g, [0, 2, 3, 1]);
    this.#out(l, g, dims);
  }

  /** A holder for the next tensor of layer `l`, in its TF layout. */
  tensorInHand(l: CvpLayer, role: string, shape: number[]): TensorInHand {
    const n = shape.reduce((a, b) => a * b, 1);
    const name = l.params.find((p) => p.role === role)?.name ?? role;
    const plan = this.#plans.get(role);
    // A parameter the op does not use here (for example the shape tensor an ONNX Reshape kept) is checked and dropped.
    if (!plan) return { name, node: "", shape, data: new Float32Array(0), put: () => {} };
    const data = new Float32Array(n);
    const map = plan.map;
    return {
      name,
      node: plan.node,
      shape: plan.shape,
      data,
      put: map
        ? (start, values) => {
          for (let i = 0; i < values.length; i++) data[map(start + i)] = values[i];
        }
        : (start, values) => data.set(values, start),
    };
  }

  /** Hands a filled tensor to tfjs (the backend takes it; the loader keeps no copy). */
  finish(t: TensorInHand): void {
    if (t.node) this.#weights[t.node] = this.#tf.tensor(t.data, t.shape, "float32");
  }

  /** Frees the tensors made so far (after an error). */
  dispose(): void {
    for (const t of Object.values(this.#weights)) t.dispose();
  }

  /** The graph-model, with graph outputs in canonical layout. */
  model(h: CvpHeader): { model: GraphModel; inputs: CvpEndpoint[]; outputs: CvpEndpoint[]; graph: CvpModel["graph"] } {
    const outputs: CvpEndpoint[] = [];
    for (const o of h.outputs) {
      const node = this.#value.get(o.name);
      const dims = this.#dims.get(o.name);
      if (node === undefined || !dims) throw new CvpLoadError("bad_format", `Output '${o.name}' is not produced`);
      const back = dims.length === 4 ? this.#transpose(`${o.name}_nchw`, node, [0, 3, 1, 2]) : node;
      const id = this.#node("Identity", `${o.name}_out`, [back]);
      outputs.push({ name: o.name, node: id, shape: dims });
    }
    const graph = { node: this.#nodes, versions: { producer: 1395 } };
    const sig = (list: { name: string; node: string; shape: Dims }[]) =>
      Object.fromEntries(list.map((e) => [e.node, {
        name: `${e.node}:0`,
        dtype: "DT_FLOAT",
        tensorShape: { dim: e.shape.map((d) => ({ size: String(d ?? -1) })) },
      }]));
    const artifacts = {
      modelTopology: graph,
      format: "graph-model",
      generatedBy: "convpress cvp_loader",
      convertedBy: "convpress cvp_loader",
      signature: { inputs: sig(this.#inputs), outputs: sig(outputs) },
      weightSpecs: [],
    };
    const tf = this.#tf;
    const model = new tf.GraphModel(tf.io.fromMemory(artifacts));
    // GraphModel.load() would decode a weight buffer; the tensors exist already, so hand them over as the weight map
    // (the step tfjs's own streamed loading, `loadGraphModel(..., {streamWeights: true})`, ends with).
    const withMap = (model as unknown as { loadWithWeightMap?: (a: unknown, w: unknown) => boolean })
      .loadWithWeightMap;
    if (typeof withMap !== "function") {
      throw new CvpLoadError(
        "tfjs_internal",
        "This tfjs has no GraphModel.loadWithWeightMap (tfjs 4.17 or later is needed)",
      );
    }
    withMap.call(model, artifacts, this.#weights);
    return { model, inputs: this.#inputs.map((i) => ({ ...i })), outputs, graph };
  }
}
