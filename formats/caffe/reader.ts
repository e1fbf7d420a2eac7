/**
 * Streaming `.caffemodel` reader: current form (`layer` = 100) and V1 (`layers` = 2); V0 is refused.
 *
 * Wire layout (NetParameter is the top-level message, so there is no outer length):
 * ```
 * NetParameter: name(1) layers(2)* input(3)* input_dim(4)* input_shape(8)* layer(100)*   (protoc writes ascending)
 * LayerParameter: name(1) type(2) bottom(3)* top(4)* blobs(7)* ... *_param(100+)         (blobs before params)
 * V1LayerParameter: bottom(2)* top(3)* name(4) type(5, enum) blobs(6)* ... *_param(9..42)
 * BlobProto: num(1) channels(2) height(3) width(4) data(5, packed f32) shape(7) double_data(8, packed f64)
 * ```
 * A new-style blob's data precedes its shape, and all of a layer's blobs precede its parameters, so:
 * - a seekable file is indexed first (blob data skipped, its offset kept) and tensors are read by offset later
 *   ({@link Tensor.fromFile}); memory holds the structure only;
 * - a stream (stdin) is read strictly in order; a layer's blob data is kept as the chunks it arrived in (no
 *   concatenation) until the layer record ends, so at most one layer's blobs are buffered.
 *
 * Train nets become deploy nets: layers outside the TEST phase and data/loss/accuracy layers are dropped. With a
 * deploy prototxt (`options.prototxt`) its structure and input shape win and weights are matched by layer name.
 *
 * @module
 */
import type { ByteReader } from "../../src/bytes/byte_reader.ts";
import { CaffeError, wrapError } from "../../src/errors.ts";
import { releaseMemory } from "../../src/memory.ts";
import { Tensor } from "../../src/model/tensor.ts";
import {
  type Layer,
  type LayerPlan,
  layerStream,
  type ModelHeader,
  type ModelStream,
  planOf,
} from "../../src/model/types.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { expectWireType, readInt, readLength, readTag, skipValue } from "../../src/wire/stream_wire.ts";
import { WireReader } from "../../src/wire/wire_reader.ts";
import { WireWriter } from "../../src/wire/wire_writer.ts";
import type { ModelSource } from "../../src/model/format.ts";
import type { CaffeReadOptions as ReadOptions } from "./options.ts";
import { decodeMessage } from "./param_codec.ts";
import { prototxtFields } from "./prototxt.ts";
import { type CaffeInput, type CaffeLayerDef, declaredInputs, inTestPhase, layerDef, NetFields } from "./net.ts";
import { type Blobs, CaffeLayerBuilder, lazyFloat32, WEIGHTED_TYPES } from "./to_canonical.ts";
import { BlobField, LayerField, NetField, V1LayerField } from "./types.ts";

/** One top-level item of a caffemodel, in file order. */
type NetEvent =
  | { kind: "name"; value: string }
  | { kind: "input"; value: string }
  | { kind: "input_dim"; value: number }
  | { kind: "input_shape"; value: number[] }
  | { kind: "layer"; def: CaffeLayerDef; blobs: Tensor[]; offset: number };

/** Reads one BlobProto ending at `end`. Data stays in the file (seekable) or in the chunks it arrived in. */
async function readBlob(r: ByteReader, end: number, name: string): Promise<Tensor> {
  const what = `blob '${name}'`;
  const legacy = [0, 0, 0, 0];
  let hasLegacy = false;
  let shape: number[] | undefined;
  let data: { offset: number; bytes: number; dtype: "float32" | "float64"; parts?: Uint8Array[] } | undefined;
  const unpacked: number[] = [];
  let unpackedDtype: "float32" | "float64" = "float32";
  for (let tag; (tag = await readTag(r, end, what));) {
    switch (tag.field) {
      case BlobField.num:
      case BlobField.channels:
      case BlobField.height:
      case BlobField.width:
        expectWireType(r, tag, 0, "legacy blob dimension");
        legacy[tag.field - 1] = await readInt(r, what);
        hasLegacy = true;
        break;
      case BlobField.data:
      case BlobField.doubleData: {
        const dtype = tag.field === BlobField.data ? "float32" : "float64";
        if (tag.wireType === 2) {
          if (data || unpacked.length) {
            throw new CaffeError("unsupported", `Caffe ${what} has its data split over several records`, {
              offset: tag.offset,
            });
          }
          const e = await readLength(r, end, `${what} data`);
          const n = e - r.position;
          if (r.seekable) {
            data = { offset: r.position, bytes: n, dtype };
            await r.skip(n, `${what} data`);
          } else {
            const parts: Uint8Array[] = [];
            for await (const c of r.chunks(n, `${what} data`)) parts.push(c.slice());
            data = { offset: -1, bytes: n, dtype, parts };
          }
        } else {
          // Unpacked repeated float/double: one key per value (rare; only small blobs are written this way).
          expectWireType(r, tag, dtype === "float32" ? 5 : 1, `${what} data`);
          const b = await r.bytes(dtype === "float32" ? 4 : 8, what);
          const dv = new DataView(b.buffer);
          unpacked.push(dtype === "float32" ? dv.getFloat32(0, true) : dv.getFloat64(0, true));
          unpackedDtype = dtype;
        }
        break;
      }
      case BlobField.shape: {
        expectWireType(r, tag, 2, "blob shape");
        const e = await readLength(r, end, `${what} shape`);
        const at = r.position;
        const m = decodeMessage(new WireReader(await r.bytes(e - at, `${what} shape`), at), "BlobShape");
        shape = m.nums("dim");
        break;
      }
      default:
        await skipValue(r, tag.wireType, end, what);
    }
  }
  const dims = hasLegacy ? legacy : shape;
  const count = data ? data.bytes / (data.dtype === "float32" ? 4 : 8) : unpacked.length;
  const full = dims ?? [count];
  const want = full.reduce((a, b) => a * b, 1);
  if (dims && dims.some((d) => d < 0)) throw new CaffeError("bad_format", `Caffe ${what} has a negative dimension`);
  if (want !== count || (data && !Number.isInteger(count))) {
    throw new CaffeError(
      "bad_format",
      `Caffe ${what} holds ${count} values but its shape [${full.join(",")}] needs ${want}`,
      { layer: name, offset: data?.offset },
    );
  }
  if (!data) {
    return Tensor.fromFloat32(name, full, Float32Array.from(unpacked.map((v) => unpackedDtype === "float32" ? v : v)));
  }
  let t: Tensor;
  if (data.parts) {
    const parts = data.parts;
    t = Tensor.fromChunks(name, data.dtype, full, data.bytes, async function* () {
      yield* parts;
    });
  } else t = Tensor.fromFile(name, data.dtype, full, r.input, data.offset, data.bytes);
  if (data.dtype === "float64") {
    const src = t;
    t = lazyFloat32(name, full, async () => await src.float32());
  }
  return t;
}

/** Copies the raw field at the reader (whose key is `tag`) into `w`, returning a string value if it has one. */
async function copyField(
  r: ByteReader,
  tag: { field: number; wireType: number },
  end: number,
  w: WireWriter,
  what: string,
): Promise<Uint8Array | undefined> {
  w.tag(tag.field, tag.wireType);
  switch (tag.wireType) {
    case 0:
      w.int(await readInt(r, what));
      return undefined;
    case 1:
      w.raw(await r.bytes(8, what));
      return undefined;
    case 5:
      w.raw(await r.bytes(4, what));
      return undefined;
    default: {
      const e = await readLength(r, end, what);
      const b = await r.bytes(e - r.position, what);
      w.bytes(b);
      return b;
    }
  }
}

/** Reads one layer record ending at `end`. */
async function readLayer(r: ByteReader, end: number, v1: boolean, offset: number): Promise<NetEvent> {
  const w = new WireWriter();
  const blobs: Tensor[] = [];
  let name = "";
  const blobField = v1 ? V1LayerField.blobs : LayerField.blobs;
  const nameField = v1 ? V1LayerField.name : LayerField.name;
  try {
    for (let tag; (tag = await readTag(r, end, "layer"));) {
      if (tag.field === blobField) {
        expectWireType(r, tag, 2, "blobs");
        const e = await readLength(r, end, "blob");
        blobs.push(await readBlob(r, e, `${name || "layer"}#${blobs.length}`));
      } else if (v1 && tag.field === V1LayerField.v0Layer) {
        throw new CaffeError("unsupported", "Caffe V0 layers are not supported", { offset: tag.offset });
      } else {
        const b = await copyField(r, tag, end, w, "layer field");
        if (tag.field === nameField && b) name = new TextDecoder().decode(b);
      }
    }
    const bytes = w.finish();
    const msg = decodeMessage(new WireReader(bytes, 0), v1 ? "V1LayerParameter" : "LayerParameter");
    return { kind: "layer", def: layerDef(msg, v1), blobs, offset };
  } catch (e) {
    wrapError(e, CaffeError, `Cannot read Caffe layer '${name || "?"}' at byte ${offset}`, {
      layer: name || undefined,
      file: r.name,
    });
  }
}

/** Reads the top-level fields of a NetParameter in order. */
async function* scanNet(r: ByteReader): AsyncGenerator<NetEvent> {
  let form: "layer" | "layers" | undefined;
  for (let tag; (tag = await readTag(r, Infinity, "NetParameter"));) {
    switch (tag.field) {
      case NetField.name: {
        expectWireType(r, tag, 2, "name");
        const e = await readLength(r, Infinity, "net name");
        yield { kind: "name", value: new TextDecoder().decode(await r.bytes(e - r.position, "net name")) };
        break;
      }
      case NetField.input: {
        expectWireType(r, tag, 2, "input");
        const e = await readLength(r, Infinity, "input name");
        yield { kind: "input", value: new TextDecoder().decode(await r.bytes(e - r.position, "input name")) };
        break;
      }
      case NetField.inputDim:
        if (tag.wireType === 2) {
          const e = await readLength(r, Infinity, "input_dim");
          const wr = new WireReader(await r.bytes(e - r.position, "input_dim"));
          while (!wr.done) yield { kind: "input_dim", value: wr.int() };
        } else {
          expectWireType(r, tag, 0, "input_dim");
          yield { kind: "input_dim", value: await readInt(r, "input_dim") };
        }
        break;
      case NetField.inputShape: {
        expectWireType(r, tag, 2, "input_shape");
        const e = await readLength(r, Infinity, "input_shape");
        const at = r.position;
        const m = decodeMessage(new WireReader(await r.bytes(e - at, "input_shape"), at), "BlobShape");
        yield { kind: "input_shape", value: m.nums("dim") };
        break;
      }
      case NetField.layers:
      case NetField.layer: {
        expectWireType(r, tag, 2, "layer");
        const kind = tag.field === NetField.layer ? "layer" : "layers";
        if (form && form !== kind) {
          throw new CaffeError("bad_format", "Caffe model has both 'layer' and 'layers' (V1) entries", {
            offset: tag.offset,
            file: r.name,
          });
        }
        form = kind;
        const e = await readLength(r, Infinity, kind);
        yield await readLayer(r, e, kind === "layers", tag.offset);
        break;
      }
      default:
        await skipValue(r, tag.wireType, Infinity, "NetParameter");
    }
  }
}

/** Collects net-level input fields as they arrive. */
class InputFields {
  names: string[] = [];
  dims: number[] = [];
  shapes: number[][] = [];
  add(ev: NetEvent): boolean {
    if (ev.kind === "input") this.names.push(ev.value);
    else if (ev.kind === "input_dim") this.dims.push(ev.value);
    else if (ev.kind === "input_shape") this.shapes.push(ev.value);
    else return false;
    return true;
  }
  get inputs(): CaffeInput[] {
    return declaredInputs(this.names, this.dims, this.shapes);
  }
}

function outputsOf(builder: CaffeLayerBuilder, layers: Layer[], header: ModelHeader): void {
  const tracker = new ShapeTracker(header);
  for (const l of layers) tracker.add(l);
  header.outputs.push(...builder.outputs().map((name) => ({ name, dtype: "float32", shape: tracker.get(name) ?? [] })));
}

function newHeader(name: string, builder: CaffeLayerBuilder): ModelHeader {
  return { name, sourceFormat: "caffe", inputs: builder.inputs, outputs: [], metadata: {} };
}

/** A deploy prototxt: net-level fields kept, layers parsed again from the text whenever they are walked. */
interface Proto {
  name: string;
  inputs: CaffeInput[];
  /** The TEST-phase layers whose type needs weights, in order (checked before any layer is converted). */
  weighted: { name: string; type: string }[];
  /**
   * The TEST-phase layer definitions in file order. Each call parses the text again, one `layer` block at a time,
   * so only the text (about 80 bytes a simple layer) is held, not a parse tree of the whole net.
   */
  layers(): Generator<CaffeLayerDef>;
}

/** Yields the layer blocks of a prototxt, in order, as definitions (the first pass has checked them). */
function* layerBlocks(text: string, path: string): Generator<CaffeLayerDef> {
  const net = new NetFields();
  for (const [n, v] of prototxtFields(text, path)) {
    const block = net.add(n, v);
    if (block) yield layerDef(block, n === "layers");
  }
}

async function loadPrototxt(path: string): Promise<Proto> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    wrapError(e, CaffeError, `Cannot read prototxt ${path}`, { file: path });
  }
  // First pass: every parse error, then the whole-net checks, then the first bad layer, as parsing the whole text
  // and reading its tree would report them; each block is dropped once looked at.
  const net = new NetFields();
  const weighted: Proto["weighted"] = [];
  let bad: unknown;
  for (const [n, v] of prototxtFields(text, path)) {
    const block = net.add(n, v);
    if (!block || bad) continue;
    try {
      const def = layerDef(block, n === "layers");
      if (inTestPhase(def) && WEIGHTED_TYPES.has(def.type)) weighted.push({ name: def.name, type: def.type });
    } catch (e) {
      bad = e;
    }
  }
  net.check(path);
  if (bad) throw bad;
  return {
    name: net.name,
    inputs: net.inputs,
    weighted,
    *layers() {
      for (const def of layerBlocks(text, path)) if (inTestPhase(def)) yield def;
    },
  };
}

function missingWeights(def: { name: string; type: string }, file: string): CaffeError {
  return new CaffeError("bad_format", `Caffe model ${file} has no weights for layer '${def.name}' (${def.type})`, {
    layer: def.name,
    file,
  });
}

/** Opens a caffemodel as a model stream. */
export async function readCaffeModel(src: ModelSource, options: ReadOptions = {}): Promise<ModelStream> {
  const r = src.reader;
  if (!r) throw new CaffeError("bad_format", `Caffe model ${src.path} is a directory`, { file: src.path });
  const file = src.path;
  const newBuilder = () => new CaffeLayerBuilder({ inputShape: options.inputShape, file });
  const proto = options.prototxt ? await loadPrototxt(options.prototxt) : undefined;
  return r.seekable
    ? await readIndexed(r, file, newBuilder, proto)
    : await readStreamed(r, file, newBuilder(), proto, options);
}

/** Seekable input: index the whole file, then hand out layers whose tensors read by offset. */
async function readIndexed(
  r: ByteReader,
  file: string,
  newBuilder: () => CaffeLayerBuilder,
  proto?: Proto,
): Promise<ModelStream> {
  let name = "";
  const fields = new InputFields();
  const records: { def: CaffeLayerDef; blobs: Tensor[] }[] = [];
  for await (const ev of scanNet(r)) {
    if (ev.kind === "name") name = ev.value;
    else if (ev.kind === "layer") records.push(ev);
    else fields.add(ev);
  }
  if (proto) {
    const weights = new Map(records.map((x) => [x.def.name, x.blobs]));
    for (const w of proto.weighted) if (!weights.get(w.name)?.length) throw missingWeights(w, file);
    const model = lazyIndexed(r, proto.name || name, proto, (def) => weights.get(def.name) ?? [], newBuilder);
    // The first pass's builder and shape tracker (a few hundred bytes a layer) are garbage in V8's old space now:
    // collect them before the second pass builds the same again.
    releaseMemory();
    return model;
  }
  const kept = records.filter((x) => inTestPhase(x.def)).map((x): [CaffeLayerDef, Blobs] => [x.def, x.blobs]);
  const entries = (function* () {
    // Each definition is dropped once converted, so the definitions and the canonical layers are not all held.
    for (let i = 0; i < kept.length; i++) {
      const e = kept[i];
      (kept as unknown[])[i] = undefined;
      yield e;
    }
  })();
  const inputs = fields.inputs;
  const builder = newBuilder();
  for (const i of inputs) builder.addInput(i.name, i.shape);
  const layers: Layer[] = [];
  for (const [def, blobs] of entries) layers.push(...builder.convert(def, blobs));
  builder.sealed = true;
  const header = newHeader(name, builder);
  outputsOf(builder, layers, header);
  header.plan = planOf(layers);
  async function* gen() {
    // By index, dropping each layer as it goes (shift() on a long list would copy it every time).
    for (let i = 0; i < layers.length; i++) {
      const l = layers[i];
      (layers as (Layer | undefined)[])[i] = undefined;
      yield l;
    }
  }
  return { header, layers: layerStream(gen(), () => r.close()) };
}

/** The parameter list of a plan entry without parameters (read-only, shared). */
const NO_PARAMS: LayerPlan["params"] = Object.freeze([]) as unknown as LayerPlan["params"];

/**
 * Seekable input with a prototxt: every layer is converted once at open for the header (inputs, outputs with their
 * shapes, the plan) and dropped, then converted again from the prototxt text, block by block, as the stream is
 * read. The conversion is deterministic, so both passes give the same layers and any error comes from the first.
 */
function lazyIndexed(
  r: ByteReader,
  name: string,
  proto: Proto,
  weightsOf: (def: CaffeLayerDef) => Blobs,
  newBuilder: () => CaffeLayerBuilder,
): ModelStream {
  const first = newBuilder();
  for (const i of proto.inputs) first.addInput(i.name, i.shape);
  const header = newHeader(name, first);
  const tracker = new ShapeTracker(header);
  const plan: LayerPlan[] = [];
  const ops = new Map<string, LayerPlan["op"]>();
  let known = first.inputs.length;
  for (const def of proto.layers()) {
    for (const l of first.convert(def, weightsOf(def))) {
      // A bottom nobody produced became an input during the conversion.
      for (; known < first.inputs.length; known++) tracker.set(first.inputs[known].name, first.inputs[known].shape);
      tracker.add(l);
      const [entry] = planOf([l]);
      // Op names come as fresh strings from the builder, and most layers have no parameters: share both.
      let op = ops.get(entry.op);
      if (op === undefined) ops.set(entry.op, op = entry.op);
      plan.push({ name: entry.name, op, params: entry.params.length ? entry.params : NO_PARAMS });
    }
  }
  first.sealed = true;
  header.outputs.push(
    ...first.outputs().map((n) => ({ name: n, dtype: "float32", shape: tracker.get(n) ?? [] })),
  );
  header.plan = plan;
  return { header, layers: layerStream(convertAgain(proto, weightsOf, newBuilder), () => r.close()) };
}

/**
 * The second pass of {@link lazyIndexed}. A separate function, so the stream holds only what it names: a closure
 * there would keep the first pass's builder and shape tracker alive.
 */
async function* convertAgain(
  proto: Proto,
  weightsOf: (def: CaffeLayerDef) => Blobs,
  newBuilder: () => CaffeLayerBuilder,
): AsyncGenerator<Layer> {
  const builder = newBuilder();
  for (const i of proto.inputs) builder.addInput(i.name, i.shape);
  for (const def of proto.layers()) yield* builder.convert(def, weightsOf(def));
}

/** Non-seekable input: read in order, converting each layer as its record ends. */
async function readStreamed(
  r: ByteReader,
  file: string,
  builder: CaffeLayerBuilder,
  proto: Proto | undefined,
  options: ReadOptions,
): Promise<ModelStream> {
  const events = scanNet(r);
  let name = "";
  const fields = new InputFields();
  let inputsDone = false;
  const declare = () => {
    if (inputsDone) return;
    inputsDone = true;
    for (const i of fields.inputs) builder.addInput(i.name, i.shape);
  };

  if (proto) {
    // Structure and outputs come from the prototxt (a dry run without blobs); weights are matched by name.
    const dry = new CaffeLayerBuilder({ inputShape: options.inputShape, file });
    for (const i of proto.inputs) {
      dry.addInput(i.name, i.shape);
      builder.addInput(i.name, i.shape);
    }
    const planned: Layer[] = [];
    for (const def of proto.layers()) planned.push(...dry.convert(def, null));
    const header = newHeader(proto.name, dry);
    outputsOf(dry, planned, header);
    planned.length = 0;
    const waiting = new Map<string, Tensor[]>();
    const needed = new Set<string>();
    for (const def of proto.layers()) needed.add(def.name);
    const weightsFor = async (def: CaffeLayerDef): Promise<Tensor[]> => {
      if (waiting.has(def.name)) {
        const w = waiting.get(def.name)!;
        waiting.delete(def.name);
        return w;
      }
      for (let ev; !(ev = await events.next()).done;) {
        const e = ev.value;
        if (e.kind !== "layer") continue;
        if (e.def.name === def.name) return e.blobs;
        // Out of order: keep the blobs only when a later prototxt layer will ask for them.
        if (needed.has(e.def.name) && e.blobs.length) waiting.set(e.def.name, e.blobs);
      }
      return [];
    };
    const gen = async function* () {
      for (const def of proto.layers()) {
        const blobs = WEIGHTED_TYPES.has(def.type) || !isKnownWeightless(def.type) ? await weightsFor(def) : [];
        if (!blobs.length && WEIGHTED_TYPES.has(def.type)) throw missingWeights(def, file);
        needed.delete(def.name);
        yield* builder.convert(def, blobs);
      }
    };
    return { header, layers: layerStream(gen(), () => r.close()) };
  }

  // Without a prototxt: read ahead until the inputs are known and one layer is ready, then stream.
  const pending: Layer[] = [];
  let ended = false;
  const step = async (): Promise<void> => {
    const ev = await events.next();
    if (ev.done) {
      ended = true;
      return;
    }
    const e = ev.value;
    if (e.kind === "name") name = e.value;
    else if (e.kind === "layer") {
      declare();
      if (inTestPhase(e.def)) pending.push(...builder.convert(e.def, e.blobs));
    } else if (!inputsDone) fields.add(e);
  };
  while (!ended && (pending.length === 0 || builder.inputs.length === 0)) await step();
  declare();
  builder.sealed = true;
  const header = newHeader(name, builder);
  const tracker = new ShapeTracker(header);
  async function* gen() {
    while (true) {
      while (!pending.length && !ended) await step();
      const l = pending.shift();
      if (!l) break;
      tracker.add(l);
      yield l;
    }
    // The outputs are known only now: the header's list is filled in when the stream ends.
    header.outputs.push(
      ...builder.outputs().map((n) => ({ name: n, dtype: "float32", shape: tracker.get(n) ?? [] })),
    );
  }
  return { header, layers: layerStream(gen(), () => r.close()) };
}

function isKnownWeightless(type: string): boolean {
  return [
    "ReLU",
    "Pooling",
    "Sigmoid",
    "TanH",
    "LRN",
    "Dropout",
    "Softmax",
    "Concat",
    "Eltwise",
    "Flatten",
    "Reshape",
    "Split",
    "Input",
  ].includes(type);
}
