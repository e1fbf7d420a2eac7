/**
 * ONNX writer: model stream -> ModelProto bytes, one layer at a time.
 *
 * Layout written (all standard protobuf; field order is free on the wire):
 * ```
 * ModelProto
 *   [fields 1-6: ir_version, producer, ... when the header is complete]
 *   7 graph: LEN (5-byte padded varint, patched on a file; exact on stdout via a spool file)
 *     per layer: 5 initializer TensorProto { 1 dims*, 2 data_type, 8 name, 9 raw_data LEN <streamed bytes> }
 *                1 node NodeProto (the source node's own bytes when the layer is unchanged ONNX)
 *     2 name, 11 input*, 12 output*, 13 value_info* ...
 *   8 opset_import*, 14 metadata_props*  [and fields 1-6 when the header completed late]
 * ```
 * Initializers sit beside the node that uses them rather than after all nodes: protobuf keeps the order of each
 * repeated field, and this way the writer never holds more than the layer in hand.
 *
 * @module
 */
import { type ByteSink, openFileSink, stdoutSink } from "../../src/bytes/byte_sink.ts";
import { openFileInput } from "../../src/bytes/inputs.ts";
import { ConvpressError, namesOtherFile, OnnxError, wrapError } from "../../src/errors.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { ModelHeader, ModelStream, ValueInfo } from "../../src/model/types.ts";
import { WireWriter } from "../../src/wire/wire_writer.ts";
import { encodeVarint } from "../../src/wire/varint.ts";
import type { OnnxWriteOptions as WriteOptions } from "./options.ts";
import { clusteredParts } from "./clustered.ts";
import { exportedDtypes, exportLayer } from "./export_node.ts";
import { onnx } from "./proto.ts";
import type { OnnxHeaderOrigin, OnnxLayerOrigin } from "./reader.ts";
import { DTYPE_ONNX, Graph, Model, TensorField } from "./types.ts";
import { makeTempFile, removeTemporary } from "../../src/bytes/temp_files.ts";

/** The side file of --external-data. */
interface ExternalData {
  sink: ByteSink;
  location: string;
  threshold: number;
  used: boolean;
}

const DEFAULT_OPSET = 13;
const DEFAULT_IR = 7;
/** Width of the patched graph length: 5 bytes hold lengths up to 32 GiB. */
const LENGTH_WIDTH = 5;
/** Tensors smaller than this stay inside the model with --external-data (as the onnx package does). */
const EXTERNAL_THRESHOLD = 1024;

/** Writes a model stream as ONNX to `path` (`-` for stdout). */
export async function writeOnnx(model: ModelStream, path: string, options: WriteOptions = {}): Promise<void> {
  const out = path === "-" ? stdoutSink() : await openFileSink(path);
  let ext: ExternalData | undefined;
  let spool: { sink: ByteSink; path: string } | undefined;
  try {
    if (options.externalData) {
      if (path === "-") throw new OnnxError("usage", "--external-data needs an output file, not stdout");
      const location = `${path.slice(path.lastIndexOf("/") + 1)}.data`;
      ext = {
        sink: await openFileSink(`${path}.data`),
        location,
        threshold: options.externalDataThreshold ?? EXTERNAL_THRESHOLD,
        used: false,
      };
    }
    const { header } = model;
    const early = !header.pending;
    if (early) await out.write(modelFields(header, (f) => f < Model.graph));
    // The graph: a length-delimited field whose length is known only at its end.
    let graph: ByteSink;
    let lengthAt = -1;
    if (out.patch) {
      const w = new WireWriter();
      w.tag(Model.graph, 2);
      lengthAt = out.position + w.length;
      w.fixedWidthUint(0, LENGTH_WIDTH);
      await out.write(w.finish());
      graph = out;
    } else {
      const p = await makeTempFile({ prefix: "convpress-onnx-", suffix: ".spool" });
      spool = { sink: await openFileSink(p), path: p };
      graph = spool.sink;
    }
    const graphStart = graph.position;
    const { allOrigin, dtypes } = await writeLayers(model, graph, ext, options);
    await graph.write(graphFields(header, allOrigin, dtypes));
    const graphLength = graph.position - graphStart;
    if (lengthAt >= 0) {
      const b = new Uint8Array(LENGTH_WIDTH);
      encodeVarint(b, 0, graphLength, LENGTH_WIDTH);
      await out.patch!(lengthAt, b);
    } else if (spool) {
      await spool.sink.close();
      const w = new WireWriter();
      w.tag(Model.graph, 2).uint(graphLength);
      await out.write(w.finish());
      const input = await openFileInput(spool.path);
      try {
        const buf = new Uint8Array(4 << 20);
        for (let pos = 0; pos < graphLength;) {
          const n = await input.readAt!(buf, pos);
          if (n === 0) throw new OnnxError("io", `Spool file ${spool.path} ended early`);
          await out.write(buf.subarray(0, n));
          pos += n;
        }
      } finally {
        input.close();
      }
    }
    await out.write(modelFields(header, (f) => f > Model.graph || (!early && f < Model.graph)));
    if (ext?.used) await ext.sink.close();
    else if (ext) await ext.sink.abort();
    await out.close();
  } catch (e) {
    await out.abort();
    if (ext) await ext.sink.abort();
    if (spool) await spool.sink.abort();
    if (namesOtherFile(e, path, `${path}.data`)) throw e; // a read error: not "Cannot write"
    wrapError(e, OnnxError, `Cannot write ONNX '${path}'`, { file: path });
  } finally {
    if (spool) await removeTemporary(spool.path);
  }
}

/** The default-domain opset the output declares. */
function targetOpset(header: ModelHeader): number {
  const v = Number(header.metadata.onnx_opset);
  return header.origin?.format === "onnx" && v > 0 ? v : DEFAULT_OPSET;
}

async function writeLayers(
  model: ModelStream,
  graph: ByteSink,
  ext: ExternalData | undefined,
  options: WriteOptions,
): Promise<{ allOrigin: boolean; dtypes: Map<string, string> }> {
  const { header } = model;
  const shapes = new ShapeTracker(header);
  const written = new Set<string>(); // initializer and feed-node output names already in the file
  // Element types of the values rebuilt layers compute (an output passed through keeps its declared type).
  const dtypes = new Map<string, string>();
  let allOrigin = true;
  let count = 0;
  for await (const layer of model.layers) {
    try {
      const { ins } = shapes.add(layer);
      const origin = layerOrigin(layer.origin?.format === "onnx" ? layer.origin.data : undefined);
      if (origin) {
        const fed = new Set(origin.feeds.map((f) => f.output));
        for (const t of origin.tensors) {
          if (!fed.has(t.name)) await writeParam(graph, t, written, ext, options, targetOpset(header));
        }
        for (const f of origin.feeds) {
          if (written.has(f.output)) continue;
          written.add(f.output);
          await graph.write(field(Graph.node, f.bytes));
        }
        if (origin.node.length) await graph.write(field(Graph.node, origin.node));
      } else {
        allOrigin = false;
        const opset = targetOpset(model.header);
        const exported = exportLayer(layer, opset, ins[0]);
        // Only what the nodes reference: a Scale's [C] params travel as their [C,1,1] constants.
        const used = new Set(exported.nodes.flatMap((n) => n.inputs));
        for (const t of [...exported.constants, ...Object.values(layer.params)]) {
          if (used.has(t.name)) await writeParam(graph, t, written, ext, options, opset);
        }
        for (const n of exported.nodes) await graph.write(field(Graph.node, n.bytes));
        exportedDtypes(layer).forEach((d, i) => dtypes.set(layer.outputs[i], d));
      }
    } catch (e) {
      if (e instanceof ConvpressError && !e.layer) e.layer = layer.name;
      if (namesOtherFile(e)) throw e;
      wrapError(e, OnnxError, `Cannot write layer '${layer.name}' (${layer.op})`, { layer: layer.name });
    }
    options.progress?.(++count, header.plan?.length ?? 0, layer.name);
  }
  return { allOrigin, dtypes };
}

/**
 * The ONNX pass-through data of a layer, if it has the expected form. Origins may come from a file (a `.cvp` keeps
 * them), so they are checked rather than trusted; a layer without a usable one is rebuilt from its canonical op.
 */
function layerOrigin(data: unknown): OnnxLayerOrigin | undefined {
  const o = data as Partial<OnnxLayerOrigin> | undefined;
  if (!o || !(o.node instanceof Uint8Array) || !Array.isArray(o.feeds) || !Array.isArray(o.tensors)) return undefined;
  const feedsOk = o.feeds.every((f) => f && typeof f.output === "string" && f.bytes instanceof Uint8Array);
  return feedsOk && o.tensors.every((t) => t instanceof Tensor) ? o as OnnxLayerOrigin : undefined;
}

/** The ONNX header data, if it has the expected form (see {@link layerOrigin}). */
function headerOrigin(header: ModelHeader): OnnxHeaderOrigin | undefined {
  const o = (header.origin?.format === "onnx" ? header.origin.data : undefined) as
    | Partial<OnnxHeaderOrigin>
    | undefined;
  if (!o || !Array.isArray(o.modelFields) || !Array.isArray(o.graphFields)) return undefined;
  const fieldOk = (f: { field?: unknown; bytes?: unknown }) =>
    Number.isInteger(f?.field) && (f.bytes === undefined || f.bytes instanceof Uint8Array);
  const ok = o.modelFields.every(fieldOk) && o.graphFields.every((f) => fieldOk(f) && f.bytes instanceof Uint8Array);
  return ok ? o as OnnxHeaderOrigin : undefined;
}

/** A length-delimited field holding `bytes`. */
function field(num: number, bytes: Uint8Array): Uint8Array {
  const w = new WireWriter(bytes.length + 8);
  w.tag(num, 2).bytes(bytes);
  return w.finish();
}

/**
 * Writes a layer's tensor: as an initializer, or with `keepClustered` and a clustered tensor, as its indices and
 * the nodes that decode them (formats/onnx/clustered.ts), which precede the layer's own nodes.
 */
async function writeParam(
  out: ByteSink,
  t: Tensor,
  written: Set<string>,
  ext: ExternalData | undefined,
  options: WriteOptions,
  opset: number,
): Promise<void> {
  const parts = options.keepClustered && !written.has(t.name) ? clusteredParts(t, opset) : undefined;
  if (!parts) return await writeInitializer(out, t, written, ext);
  written.add(t.name);
  for (const c of parts.tensors) await writeInitializer(out, c, written, ext);
  for (const n of parts.nodes) await out.write(field(Graph.node, n));
}

/** Writes `t` as an initializer (once per name), streaming its bytes. */
async function writeInitializer(
  out: ByteSink,
  t: Tensor,
  written: Set<string>,
  ext: ExternalData | undefined,
): Promise<void> {
  if (written.has(t.name)) return;
  written.add(t.name);
  const dt = DTYPE_ONNX[t.dtype];
  if (!dt || t.dtype === "string") {
    throw new OnnxError("unsupported", `Tensor '${t.name}' has dtype ${t.dtype}, which this writer cannot store`);
  }
  const head = new WireWriter();
  for (const d of t.shape) head.tag(TensorField.dims, 0).int(d);
  head.tag(TensorField.dataType, 0).uint(dt);
  head.tag(TensorField.name, 2).string(t.name);
  const external = ext && t.byteLength >= ext.threshold;
  if (external) {
    ext.used = true;
    const offset = ext.sink.position;
    await t.writeTo(ext.sink);
    const entry = (k: string, v: string) => {
      head.tag(TensorField.externalData, 2).fork().tag(1, 2).string(k).tag(2, 2).string(v).join();
    };
    entry("location", ext.location);
    entry("offset", String(offset));
    entry("length", String(t.byteLength));
    head.tag(TensorField.dataLocation, 0).uint(1);
  } else head.tag(TensorField.rawData, 2).uint(t.byteLength);
  const headBytes = head.finish();
  const prefix = new WireWriter();
  prefix.tag(Graph.initializer, 2).uint(headBytes.length + (external ? 0 : t.byteLength));
  await out.write(prefix.finish());
  await out.write(headBytes);
  if (external) return;
  const n = await t.writeTo(out);
  if (n !== t.byteLength) {
    throw new OnnxError("bad_format", `Tensor '${t.name}' delivered ${n} of ${t.byteLength} bytes`);
  }
}

function valueInfoBytes(v: ValueInfo): Uint8Array {
  return onnx.ValueInfoProto.encode({
    name: v.name,
    type: {
      tensorType: {
        elemType: DTYPE_ONNX[v.dtype] ?? 1,
        shape: { dim: v.shape.map((d) => (typeof d === "number" ? { dimValue: d } : d ? { dimParam: d } : {})) },
      },
    },
  }).finish();
}

/**
 * GraphProto fields after the layers: the source's own when every layer passed through, else rebuilt. A graph output
 * a rebuilt layer computes is declared with the type its nodes give (`dtypes`): float32 where the source declared
 * ArgMax's int64, say, which the exporter casts.
 */
function graphFields(header: ModelHeader, allOrigin: boolean, dtypes: Map<string, string>): Uint8Array {
  const w = new WireWriter();
  const o = headerOrigin(header);
  if (o && allOrigin) {
    for (const f of o.graphFields) w.tag(f.field, 2).bytes(f.bytes);
    return w.finish();
  }
  w.tag(Graph.name, 2).string(header.name || "convpress");
  for (const v of header.inputs) w.tag(Graph.input, 2).bytes(valueInfoBytes(v));
  for (const v of header.outputs) {
    const dtype = dtypes.get(v.name) ?? v.dtype;
    w.tag(Graph.output, 2).bytes(valueInfoBytes(dtype === v.dtype ? v : { ...v, dtype }));
  }
  if (o) {
    // Keep what does not depend on the layers: doc strings and metadata.
    for (const f of o.graphFields) {
      if (f.field === Graph.docString || f.field === Graph.metadataProps) w.tag(f.field, 2).bytes(f.bytes);
    }
  }
  return w.finish();
}

/** ModelProto fields other than the graph, selected by field number. */
function modelFields(header: ModelHeader, select: (field: number) => boolean): Uint8Array {
  const w = new WireWriter();
  const o = headerOrigin(header);
  if (o) {
    for (const f of o.modelFields) {
      if (!select(f.field)) continue;
      if (f.bytes) w.tag(f.field, 2).bytes(f.bytes);
      else w.tag(f.field, 0).int(f.value ?? 0);
    }
    return w.finish();
  }
  if (select(Model.irVersion)) w.tag(Model.irVersion, 0).uint(DEFAULT_IR);
  if (select(Model.producerName)) w.tag(Model.producerName, 2).string("convpress");
  if (select(Model.producerVersion)) w.tag(Model.producerVersion, 2).string("0.1.0");
  if (select(Model.docString) && header.metadata.doc_string) {
    w.tag(Model.docString, 2).string(header.metadata.doc_string);
  }
  if (select(Model.opsetImport)) {
    w.tag(Model.opsetImport, 2).bytes(onnx.OperatorSetIdProto.encode({ domain: "", version: DEFAULT_OPSET }).finish());
  }
  if (select(Model.metadataProps)) {
    for (const [k, v] of Object.entries(header.metadata)) {
      if (k === "doc_string" || k.startsWith("onnx_")) continue;
      w.tag(Model.metadataProps, 2).bytes(onnx.StringStringEntryProto.encode({ key: k, value: v }).finish());
    }
  }
  return w.finish();
}
