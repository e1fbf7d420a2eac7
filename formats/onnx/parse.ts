/**
 * The ONNX wire walk: ModelProto -> GraphProto -> nodes and TensorProtos, as a stream of events. Tensor payloads
 * are never buffered on a seekable input: raw_data (and packed float_data/double_data, which are the same
 * little-endian bytes) become file-backed tensors read later by offset. On an in-order input each tensor is read
 * into memory as it passes, one at a time.
 *
 * @module
 */
import type { ByteReader } from "../../src/bytes/byte_reader.ts";
import { OnnxError, wrapError } from "../../src/errors.ts";
import { DTYPE_SIZE, numel, Tensor } from "../../src/model/tensor.ts";
import { readInt, readLength, readTag, readUint, skipValue } from "../../src/wire/stream_wire.ts";
import { WireReader } from "../../src/wire/wire_reader.ts";
import { openFileInput } from "../../src/bytes/inputs.ts";
import type { ByteInput } from "../../src/bytes/byte_reader.ts";
import { Graph, Model, ONNX_DTYPE, TensorField } from "./types.ts";
import { int32FieldBytes } from "./proto.ts";
import { confinePath } from "../../src/bytes/confine.ts";

/** What the walk finds, in file order. */
export type OnnxEvent =
  | { kind: "node"; bytes: Uint8Array; offset: number }
  | { kind: "tensor"; tensor: Tensor; offset: number }
  | { kind: "graphField"; field: number; bytes: Uint8Array }
  | { kind: "modelField"; field: number; bytes?: Uint8Array; value?: number };

/** Context for resolving external data. */
export interface ParseContext {
  /** Directory of the model file, for external data; undefined on stdin. */
  dir?: string;
  /** Open external data files, closed by the reader at the end. */
  external: Map<string, ByteInput>;
}

/** Largest non-tensor record accepted (nodes, value infos, metadata): 2 GiB, the protobuf message limit. */
const MAX_SMALL = 2 ** 31;

/** Walks a ModelProto, yielding events. */
export async function* walkModel(r: ByteReader, ctx: ParseContext): AsyncGenerator<OnnxEvent> {
  const end = r.size ?? Infinity;
  let sawGraph = false, sawIr = false, sawOpset = false;
  for (;;) {
    const tag = await readTag(r, end, "ModelProto");
    if (!tag) break;
    if (tag.field === Model.graph) {
      if (tag.wireType !== 2) throw badWire(r, tag.offset, "ModelProto.graph");
      const gEnd = await readLength(r, end, "ModelProto.graph");
      sawGraph = true;
      yield* walkGraph(r, gEnd, ctx);
      continue;
    }
    if (tag.field === Model.irVersion) sawIr = true;
    if (tag.field === Model.opsetImport) sawOpset = true;
    if (tag.wireType === 2) {
      const e = await readLength(r, end, `ModelProto field ${tag.field}`);
      const n = e - r.position;
      if (n > MAX_SMALL) throw badWire(r, tag.offset, `ModelProto field ${tag.field} (too large)`);
      yield { kind: "modelField", field: tag.field, bytes: await r.bytes(n, `ModelProto field ${tag.field}`) };
    } else if (tag.wireType === 0) {
      const v = await readInt(r, `ModelProto field ${tag.field}`);
      yield { kind: "modelField", field: tag.field, value: v };
    } else await skipValue(r, tag.wireType, end, `ModelProto field ${tag.field}`);
  }
  if (!sawGraph) {
    throw new OnnxError("bad_format", `Not an ONNX model: no graph found (input ends at byte ${r.position})`, {
      file: r.name,
      offset: r.position,
    });
  }
  if (!sawIr || !sawOpset) {
    const what = !sawIr ? "ir_version" : "opset_import";
    throw new OnnxError("bad_format", `ONNX model is missing ${what} (truncated at byte ${r.position}?)`, {
      file: r.name,
      offset: r.position,
    });
  }
}

function badWire(r: ByteReader, offset: number, what: string): OnnxError {
  return new OnnxError("bad_wire", `Wrong wire type for ${what} at byte ${offset}`, { file: r.name, offset });
}

async function* walkGraph(r: ByteReader, end: number, ctx: ParseContext): AsyncGenerator<OnnxEvent> {
  for (;;) {
    const tag = await readTag(r, end, "GraphProto");
    if (!tag) break;
    const what = `GraphProto field ${tag.field}`;
    if (tag.field === Graph.initializer) {
      if (tag.wireType !== 2) throw badWire(r, tag.offset, "GraphProto.initializer");
      const tEnd = await readLength(r, end, "GraphProto.initializer");
      const tensor = await readTensorProto(r, tEnd, ctx);
      yield { kind: "tensor", tensor, offset: tag.offset };
      continue;
    }
    if (tag.wireType !== 2) {
      if (tag.field === Graph.node) throw badWire(r, tag.offset, "GraphProto.node");
      await skipValue(r, tag.wireType, end, what);
      continue;
    }
    const e = await readLength(r, end, what);
    const offset = r.position;
    const bytes = await r.bytes(e - offset, tag.field === Graph.node ? "NodeProto" : what);
    if (tag.field === Graph.node) yield { kind: "node", bytes, offset };
    else yield { kind: "graphField", field: tag.field, bytes };
  }
}

interface Region {
  offset: number;
  length: number;
  bytes?: Uint8Array;
  parts?: Uint8Array[];
}

/** Reads a TensorProto ending at `end`. */
export async function readTensorProto(r: ByteReader, end: number, ctx: ParseContext): Promise<Tensor> {
  const start = r.position;
  let name = "";
  try {
    const dims: number[] = [];
    let dataType = 0, location = 0;
    let raw: Region | undefined, floats: Region | undefined, doubles: Region | undefined;
    const singles: number[] = []; // unpacked float/double values
    const ints: number[] = []; // int32_data / int64_data / uint64_data values
    const external = new Map<string, string>();
    for (;;) {
      const tag = await readTag(r, end, "TensorProto");
      if (!tag) break;
      switch (tag.field) {
        case TensorField.dims:
          if (tag.wireType === 0) dims.push(await readInt(r, "TensorProto.dims"));
          else if (tag.wireType === 2) await packedInts(r, end, dims, "TensorProto.dims");
          else throw badWire(r, tag.offset, "TensorProto.dims");
          break;
        case TensorField.dataType:
          dataType = await readUint(r, "TensorProto.data_type");
          break;
        case TensorField.name: {
          if (tag.wireType !== 2) throw badWire(r, tag.offset, "TensorProto.name");
          const e = await readLength(r, end, "TensorProto.name");
          name = new TextDecoder().decode(await r.bytes(e - r.position, "TensorProto.name"));
          break;
        }
        case TensorField.rawData:
          if (tag.wireType !== 2) throw badWire(r, tag.offset, "TensorProto.raw_data");
          raw = await region(r, end, "raw_data");
          break;
        case TensorField.floatData:
          if (tag.wireType === 2) floats = await region(r, end, "float_data");
          else if (tag.wireType === 5) singles.push(new DataView((await r.bytes(4)).buffer).getFloat32(0, true));
          else throw badWire(r, tag.offset, "TensorProto.float_data");
          break;
        case TensorField.doubleData:
          if (tag.wireType === 2) doubles = await region(r, end, "double_data");
          else if (tag.wireType === 1) singles.push(new DataView((await r.bytes(8)).buffer).getFloat64(0, true));
          else throw badWire(r, tag.offset, "TensorProto.double_data");
          break;
        case TensorField.int32Data:
        case TensorField.int64Data:
        case TensorField.uint64Data:
          if (tag.wireType === 0) ints.push(await readInt(r, "TensorProto int data"));
          else if (tag.wireType === 2) await packedInts(r, end, ints, "TensorProto int data");
          else throw badWire(r, tag.offset, "TensorProto int data");
          break;
        case TensorField.externalData: {
          if (tag.wireType !== 2) throw badWire(r, tag.offset, "TensorProto.external_data");
          const e = await readLength(r, end, "TensorProto.external_data");
          const w = new WireReader(await r.bytes(e - r.position), r.position - (e - r.position), 0, undefined, r.name);
          let k = "", v = "";
          while (!w.done) {
            const [f, wt] = w.tag();
            if (f === 1 && wt === 2) k = w.string();
            else if (f === 2 && wt === 2) v = w.string();
            else w.skip(wt);
          }
          external.set(k, v);
          break;
        }
        case TensorField.dataLocation:
          location = await readUint(r, "TensorProto.data_location");
          break;
        default:
          await skipValue(r, tag.wireType, end, `TensorProto field ${tag.field}`);
      }
    }
    const dtype = ONNX_DTYPE[dataType];
    const label = name || `(unnamed tensor at byte ${start})`;
    if (!dtype || dtype === "string") {
      throw new OnnxError("unsupported", `Tensor '${label}' has unsupported data type ${dataType}`, {
        file: r.name,
        offset: start,
        layer: name,
      });
    }
    const n = numel(dims);
    const nbytes = n * DTYPE_SIZE[dtype];
    if (location === 1) return await externalTensor(name, dtype, dims, external, ctx);
    const fromRegion = (reg: Region) => {
      if (reg.length !== nbytes) {
        throw new OnnxError(
          "bad_format",
          `Tensor '${label}' holds ${reg.length} bytes but its shape [${dims.join(",")}] of ${dtype} needs ${nbytes}`,
          { file: r.name, offset: reg.offset, layer: name },
        );
      }
      if (reg.bytes) return Tensor.fromBytes(name, dtype, dims, reg.bytes);
      if (reg.parts) return Tensor.fromParts(name, dtype, dims, reg.parts);
      return Tensor.fromFile(name, dtype, dims, r.input, reg.offset, reg.length);
    };
    if (raw) return fromRegion(raw);
    if (floats && dtype === "float32") return fromRegion(floats);
    if (doubles && dtype === "float64") return fromRegion(doubles);
    if (singles.length) {
      const arr = dtype === "float64" ? new Float64Array(singles) : new Float32Array(singles);
      return fromRegion({ offset: start, length: arr.byteLength, bytes: new Uint8Array(arr.buffer) });
    }
    if (ints.length || n === 0) {
      let bytes: Uint8Array;
      if (dtype === "int64") bytes = new Uint8Array(BigInt64Array.from(ints.map(BigInt)).buffer);
      else if (dtype === "uint64") bytes = new Uint8Array(BigUint64Array.from(ints.map(BigInt)).buffer);
      else if (dtype === "uint32") bytes = new Uint8Array(Uint32Array.from(ints).buffer);
      else if (dtype === "float32" || dtype === "float64") bytes = new Uint8Array(0);
      else bytes = int32FieldBytes(dtype, ints);
      return fromRegion({ offset: start, length: bytes.length, bytes });
    }
    throw new OnnxError("bad_format", `Tensor '${label}' has a shape of ${n} elements but no data`, {
      file: r.name,
      offset: start,
      layer: name,
    });
  } catch (e) {
    wrapError(e, OnnxError, `Cannot read ONNX TensorProto '${name || "?"}'`, { file: r.name, layer: name });
  }
}

/** Tensors up to this size are read into memory even from a file: shapes, scalars, small biases. */
const SMALL_TENSOR = 1 << 16;

async function region(r: ByteReader, end: number, what: string): Promise<Region> {
  const e = await readLength(r, end, `TensorProto.${what}`);
  const offset = r.position, length = e - offset;
  if (r.seekable && length > SMALL_TENSOR) {
    await r.skip(length, `TensorProto.${what}`);
    return { offset, length };
  }
  if (length <= SMALL_TENSOR) return { offset, length, bytes: await r.bytes(length, `TensorProto.${what}`) };
  return { offset, length, parts: await r.parts(length, `TensorProto.${what}`) };
}

async function packedInts(r: ByteReader, end: number, out: number[], what: string): Promise<void> {
  const e = await readLength(r, end, what);
  const at = r.position;
  const w = new WireReader(await r.bytes(e - at, what), at, 0, undefined, r.name);
  while (!w.done) out.push(w.int());
}

async function externalTensor(
  name: string,
  dtype: import("../../src/model/tensor.ts").DType,
  dims: number[],
  ext: Map<string, string>,
  ctx: ParseContext,
): Promise<Tensor> {
  const location = ext.get("location");
  if (!location) throw new OnnxError("bad_format", `Tensor '${name}' uses external data but names no location`);
  if (ctx.dir === undefined) {
    throw new OnnxError("unsupported", `Tensor '${name}' uses external data, which cannot be found from stdin`, {
      layer: name,
    });
  }
  const where = await confinePath(ctx.dir, location);
  if ("error" in where) {
    throw new OnnxError(
      where.missing ? "io" : "bad_format",
      `Tensor '${name}' names external data '${location}' that ${where.error}`,
      { layer: name },
    );
  }
  const path = where.path;
  let input = ctx.external.get(path);
  if (!input) {
    try {
      input = await openFileInput(path);
    } catch (e) {
      throw new OnnxError("io", `Cannot open external data '${path}' of tensor '${name}': ${(e as Error).message}`, {
        layer: name,
        cause: e,
      });
    }
    ctx.external.set(path, input);
  }
  const offset = Number(ext.get("offset") ?? 0);
  const n = numel(dims) * DTYPE_SIZE[dtype];
  const length = ext.has("length") ? Number(ext.get("length")) : n;
  if (!Number.isSafeInteger(offset) || offset < 0 || length !== n || offset + length > (input.size ?? 0)) {
    throw new OnnxError(
      "bad_format",
      `External data of tensor '${name}' (offset ${offset}, length ${length}) does not fit '${path}' (${input.size} bytes) or its shape (${n} bytes)`,
      { layer: name },
    );
  }
  return Tensor.fromFile(name, dtype, dims, input, offset, length);
}
