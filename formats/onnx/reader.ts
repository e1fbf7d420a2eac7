/**
 * ONNX reader: ModelProto bytes -> model stream.
 *
 * A seekable file is indexed first (nodes and small records read, tensor payloads skipped and later read by
 * offset), so layers come out in node order whatever the order of the initializers. An in-order input (stdin) is
 * read once: nodes are small and kept; each initializer is read into memory as it passes and a layer is released
 * as soon as its parameters have all arrived, so with the usual protoc order (nodes, then initializers in node
 * order) memory holds about one layer. Graph inputs, outputs and opsets come after the graph's tensors on the wire;
 * on an in-order input the header is completed when the layer stream ends (`header.pending`).
 *
 * @module
 */
import type { ByteReader } from "../../src/bytes/byte_reader.ts";
import type { ByteInput } from "../../src/bytes/byte_reader.ts";
import { OnnxError, wrapError } from "../../src/errors.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { type Layer, layerStream, type ModelHeader, type ModelStream, type ValueInfo } from "../../src/model/types.ts";
import type { OnnxReadOptions as ReadOptions } from "./options.ts";
import { type OnnxEvent, walkModel } from "./parse.ts";
import { decodeMessage, type NodeMsg, num, onnx, tensorFromMessage, valueInfo } from "./proto.ts";
import { importNode, type Mapped, PARAM_POSITIONS, type Resolve } from "./import_node.ts";
import { attrProblems, normalizeLayer } from "../../src/ops/registry.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { foldNode } from "./fold.ts";
import { Graph, Model } from "./types.ts";

/** ONNX-specific header data kept for ONNX -> ONNX pass-through. */
export interface OnnxHeaderOrigin {
  /** Non-graph ModelProto fields: field number with bytes (length-delimited) or value (varint). */
  modelFields: { field: number; bytes?: Uint8Array; value?: number }[];
  /** GraphProto fields other than nodes and initializers (name, doc, inputs, outputs, value_info, ...). */
  graphFields: { field: number; bytes: Uint8Array }[];
}

/** ONNX-specific layer data: the node's bytes and the Constant/Identity nodes that fed it parameters. */
export interface OnnxLayerOrigin {
  node: Uint8Array;
  feeds: { output: string; bytes: Uint8Array }[];
  /** Every constant the node reads (initializers and Constant outputs), whether or not it is a canonical param. */
  tensors: Tensor[];
}

interface NodeRec {
  msg: NodeMsg;
  bytes: Uint8Array;
  offset: number;
}

/** Builds layers from nodes and tensors as they become available. */
class GraphBuilder {
  readonly nodes: NodeRec[] = [];
  readonly tensors = new Map<string, Tensor>();
  readonly feeds = new Map<string, Uint8Array>(); // value name -> Constant/Identity node bytes producing it
  readonly aliases = new Map<string, string>(); // Identity output -> its input
  readonly produced = new Set<string>();
  readonly used = new Set<string>();
  cursor = 0;
  file: string;
  /** True on in-order inputs: free tensors once used. */
  streaming: boolean;

  /** The model header; shapes are followed once its inputs are known (for folding `Shape`). */
  header?: ModelHeader;
  #shapes?: ShapeTracker;

  constructor(file: string, streaming: boolean) {
    this.file = file;
    this.streaming = streaming;
  }

  resolveName(name: string): string {
    let n = name;
    for (let i = 0; i < 64 && this.aliases.has(n); i++) n = this.aliases.get(n)!;
    return n;
  }

  resolve = (name: string): Tensor | undefined => this.tensors.get(this.resolveName(name));

  addNode(bytes: Uint8Array, offset: number): void {
    let msg: NodeMsg;
    try {
      msg = onnx.NodeProto.decode(bytes);
    } catch (e) {
      throw new OnnxError("bad_wire", `Cannot decode ONNX NodeProto at byte ${offset}: ${(e as Error).message}`, {
        file: this.file,
        offset,
        cause: e,
      });
    }
    this.nodes.push({ msg, bytes, offset });
  }

  addTensor(t: Tensor, offset: number): void {
    if (!t.name) {
      throw new OnnxError("bad_format", `Initializer at byte ${offset} has no name`, { file: this.file, offset });
    }
    this.tensors.set(t.name, t);
  }

  /** True when node `n` must wait for parameters that have not arrived yet. */
  #waiting(n: NodeMsg): boolean {
    const ins = n.input ?? [];
    const known = PARAM_POSITIONS[n.opType ?? ""];
    for (let i = 0; i < ins.length; i++) {
      const name = ins[i];
      if (!name || this.produced.has(name) || this.resolve(name)) continue;
      if (i === 0 && n.opType !== "Identity") continue;
      if (!known || known.includes(i) || n.opType === "Identity") return true;
    }
    return false;
  }

  /** Yields every layer that can be built now; with `final`, all the rest. */
  *drain(final: boolean): Generator<Layer> {
    while (this.cursor < this.nodes.length) {
      const rec = this.nodes[this.cursor];
      if (!final && this.#waiting(rec.msg)) return;
      this.cursor++;
      const layer = this.#build(rec);
      if (layer) {
        this.#tracker()?.add(layer);
        yield layer;
      }
      if (this.streaming) this.#release();
    }
    if (final) yield* this.#leftovers();
  }

  #build(rec: NodeRec): Layer | undefined {
    const n = rec.msg;
    const outs = n.output ?? [];
    const name = n.name || outs[0] || `node_${this.cursor - 1}`;
    try {
      if (n.opType === "Constant" && (n.domain ?? "") === "" && outs.length === 1 && n.attribute?.length === 1) {
        const a = n.attribute[0];
        if (a.name === "value" && a.t) {
          this.tensors.set(outs[0], tensorFromMessage(a.t, outs[0]).with({ name: outs[0] }));
          this.feeds.set(outs[0], rec.bytes);
          return undefined;
        }
      }
      if (n.opType === "Identity" && outs.length === 1 && n.input?.length === 1 && this.resolve(n.input[0])) {
        this.aliases.set(outs[0], n.input[0]);
        this.feeds.set(outs[0], rec.bytes);
        return undefined;
      }
      const folded = foldNode(n, this.resolve, (v) => this.#tracker()?.get(this.resolveName(v)));
      if (folded) {
        for (const i of n.input ?? []) if (i && this.resolve(i)) this.#noteUse(i, []);
        this.tensors.set(outs[0], folded);
        return undefined;
      }
      const opset = Number(this.header?.metadata.onnx_opset ?? NaN);
      const mapped = importMapped(n, name, outs, this.resolve, {
        opset: Number.isFinite(opset) ? opset : undefined,
        rank: (v) => this.#tracker()?.get(this.resolveName(v))?.length,
      });
      const feeds: OnnxLayerOrigin["feeds"] = [];
      const consts: Tensor[] = [];
      const params: Record<string, Tensor> = {};
      const inputs: string[] = [];
      const ins = n.input ?? [];
      for (let i = 0; i < ins.length; i++) {
        const t = ins[i] ? this.resolve(ins[i]) : undefined;
        if (t) {
          this.#noteUse(ins[i], feeds);
          if (!consts.includes(t)) consts.push(t);
          if (!mapped) params[`input${i}`] = t;
        } else if (!mapped) inputs.push(ins[i]);
      }
      for (const o of outs) this.produced.add(o);
      const origin = {
        format: "onnx" as const,
        data: { node: rec.bytes, feeds, tensors: consts } satisfies OnnxLayerOrigin,
      };
      if (!mapped) {
        return {
          name,
          op: "Passthrough",
          attrs: { onnxOp: n.opType ?? "" },
          inputs,
          outputs: [...outs],
          params,
          origin,
        };
      }
      return normalizeLayer({
        name,
        op: mapped.op,
        attrs: mapped.attrs,
        inputs: mapped.inputs,
        outputs: [...outs],
        params: mapped.params,
        origin,
      });
    } catch (e) {
      wrapError(e, OnnxError, `Cannot read ONNX node '${name}' (${n.opType})`, {
        file: this.file,
        layer: name,
        offset: rec.offset,
      });
    }
  }

  #tracker(): ShapeTracker | undefined {
    if (!this.#shapes && this.header && !this.header.pending) this.#shapes = new ShapeTracker(this.header);
    return this.#shapes;
  }

  /** Records that value `name` (maybe through aliases) was used, collecting the feed nodes on the way. */
  #noteUse(name: string, feeds: OnnxLayerOrigin["feeds"]): void {
    const chain: string[] = [];
    let n = name;
    for (let i = 0; i < 64; i++) {
      chain.push(n);
      if (!this.aliases.has(n)) break;
      n = this.aliases.get(n)!;
    }
    for (const c of chain.reverse()) {
      const f = this.feeds.get(c);
      if (f && !feeds.some((x) => x.output === c)) feeds.push({ output: c, bytes: f });
      this.used.add(c);
    }
  }

  /** On in-order inputs, drops tensors no pending node refers to. */
  #release(): void {
    const wanted = new Set<string>();
    for (let i = this.cursor; i < this.nodes.length; i++) {
      for (const n of this.nodes[i].msg.input ?? []) wanted.add(this.resolveName(n));
    }
    for (const name of this.used) {
      const real = this.resolveName(name);
      if (!wanted.has(real) && this.tensors.has(real)) this.tensors.delete(real);
    }
  }

  /** Tensors no node consumed still belong to the model: they travel as parameters of an Identity-less layer. */
  *#leftovers(): Generator<Layer> {
    for (const [name, t] of this.tensors) {
      if (this.used.has(name) || this.feeds.has(name)) continue;
      yield {
        name,
        op: "Passthrough",
        attrs: { onnxOp: "" },
        inputs: [],
        outputs: [],
        params: { input0: t },
        origin: {
          format: "onnx",
          data: { node: new Uint8Array(0), feeds: [], tensors: [t] } satisfies OnnxLayerOrigin,
        },
      };
    }
  }
}

/** Reads an ONNX model from `r` (seekable or not). `dir` locates external data. */
export async function readOnnx(r: ByteReader, dir?: string, options: ReadOptions = {}): Promise<ModelStream> {
  const external = new Map<string, ByteInput>();
  const ctx = { dir, external };
  const builder = new GraphBuilder(r.name, !r.seekable);
  const origin: OnnxHeaderOrigin = { modelFields: [], graphFields: [] };
  const header: ModelHeader = {
    name: "",
    sourceFormat: "onnx",
    inputs: [],
    outputs: [],
    metadata: {},
    origin: { format: "onnx", data: origin },
  };
  builder.header = header;
  const events = walkModel(r, ctx);
  const take = (ev: OnnxEvent) => {
    switch (ev.kind) {
      case "node":
        builder.addNode(ev.bytes, ev.offset);
        break;
      case "tensor":
        builder.addTensor(ev.tensor, ev.offset);
        break;
      case "graphField":
        origin.graphFields.push({ field: ev.field, bytes: ev.bytes });
        break;
      case "modelField":
        origin.modelFields.push({ field: ev.field, bytes: ev.bytes, value: ev.value });
        break;
    }
  };
  const cleanup = once(() => {
    for (const i of external.values()) i.close();
    r.close();
  });
  const wrap = (e: unknown): never => wrapError(e, OnnxError, `Cannot read ONNX model '${r.name}'`, { file: r.name });

  if (r.seekable) {
    try {
      for await (const ev of events) take(ev);
      completeHeader(header, origin, builder, options);
    } catch (e) {
      cleanup();
      wrap(e);
    }
    const all = async function* (): AsyncGenerator<Layer> {
      yield* builder.drain(true);
    };
    return { header, layers: layerStream(all(), cleanup), close: once(cleanup) };
  }

  header.pending = true;
  async function* inOrder(): AsyncGenerator<Layer> {
    try {
      for await (const ev of events) {
        take(ev);
        if (ev.kind === "tensor" || ev.kind === "node") yield* builder.drain(false);
      }
      completeHeader(header, origin, builder, options);
    } catch (e) {
      wrap(e);
    }
    yield* builder.drain(true);
  }
  return { header, layers: layerStream(inOrder(), cleanup), close: once(cleanup) };
}

/** The node's canonical mapping, or undefined (pass-through) when its attributes do not fit the op's schema. */
function importMapped(
  n: NodeMsg,
  name: string,
  outs: string[],
  resolve: Resolve,
  hints: Parameters<typeof importNode>[2],
): Mapped | undefined {
  const m = importNode(n, resolve, hints);
  if (!m) return undefined;
  const probe = { name, op: m.op, attrs: m.attrs, inputs: m.inputs, outputs: outs, params: m.params };
  return attrProblems(probe).length ? undefined : m;
}

function once(f: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      f();
    }
  };
}

/** Fills the header from the graph's fields once they are known. */
function completeHeader(
  header: ModelHeader,
  origin: OnnxHeaderOrigin,
  builder: GraphBuilder,
  options: ReadOptions,
): void {
  const dec = new TextDecoder();
  for (const f of origin.graphFields) {
    if (f.field === Graph.name) header.name = dec.decode(f.bytes);
    else if (f.field === Graph.input) {
      const v = valueInfo(f.bytes);
      if (!builder.tensors.has(v.name) && !builder.used.has(v.name)) header.inputs.push(v);
    } else if (f.field === Graph.output) header.outputs.push(valueInfo(f.bytes));
    else if (f.field === Graph.docString) header.metadata.graph_doc_string = dec.decode(f.bytes);
  }
  for (const f of origin.modelFields) {
    if (f.field === Model.producerName && f.bytes) header.metadata.producer_name = dec.decode(f.bytes);
    else if (f.field === Model.producerVersion && f.bytes) header.metadata.producer_version = dec.decode(f.bytes);
    else if (f.field === Model.docString && f.bytes) header.metadata.doc_string = dec.decode(f.bytes);
    else if (f.field === Model.irVersion && f.value !== undefined) header.metadata.onnx_ir_version = String(f.value);
    else if (f.field === Model.opsetImport && f.bytes) {
      const o = decodeMessage(onnx.OperatorSetIdProto, f.bytes, "OperatorSetIdProto");
      header.metadata[`onnx_opset${o.domain ? "_" + o.domain : ""}`] = String(num(o.version as never));
    } else if (f.field === Model.metadataProps && f.bytes) {
      const p = decodeMessage(onnx.StringStringEntryProto, f.bytes, "StringStringEntryProto");
      header.metadata[p.key ?? ""] = p.value ?? "";
    }
  }
  if (options.inputShape && header.inputs.length > 0) {
    header.inputs[0] = withShape(header.inputs[0], options.inputShape);
  }
  header.pending = false;
}

/**
 * `--input-shape` on an ONNX input: fills the dimensions the model leaves unknown (symbolic or absent); a stated
 * dimension that disagrees is an error.
 */
function withShape(v: ValueInfo, shape: number[]): ValueInfo {
  if (v.shape.length === 0) return { ...v, shape: [...shape] };
  if (v.shape.length !== shape.length) {
    throw new OnnxError(
      "usage",
      `--input-shape ${shape.join(",")} has ${shape.length} dimensions, ONNX input '${v.name}' has ${v.shape.length}`,
    );
  }
  return {
    ...v,
    shape: v.shape.map((d, i) => {
      if (typeof d === "number" && d > 0 && d !== shape[i]) {
        throw new OnnxError(
          "usage",
          `--input-shape ${shape.join(",")} disagrees with ONNX input '${v.name}' [${v.shape.join(",")}]`,
        );
      }
      return shape[i];
    }),
  };
}
