/**
 * Helpers over `onnx-proto` (protobufjs) messages: int64 `Long`s to numbers, attributes by name, small
 * TensorProtos to {@link Tensor}s, ValueInfoProtos to {@link ValueInfo}s.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import { OnnxError } from "../../src/errors.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Dim, ValueInfo } from "../../src/model/types.ts";
import { ONNX_DTYPE } from "./types.ts";

/** The protobufjs namespace of ONNX messages. */
export const onnx = onnxProto.onnx;
/** A decoded NodeProto. */
export type NodeMsg = onnxProto.onnx.NodeProto;
/** A decoded AttributeProto. */
export type AttrMsg = onnxProto.onnx.IAttributeProto;
/** A decoded TensorProto. */
export type TensorMsg = onnxProto.onnx.ITensorProto;

/** protobufjs gives int64 fields as numbers, strings or Long objects. */
export type LongLike = number | string | { toNumber(): number } | null | undefined;

/** Converts a protobufjs int64 to a number. */
export function num(v: LongLike): number {
  if (v === null || v === undefined) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") return Number(v);
  return v.toNumber();
}

/** Finds an attribute by name. */
export function attr(node: NodeMsg, name: string): AttrMsg | undefined {
  return node.attribute?.find((a) => a.name === name);
}

/** An INT attribute, or `dflt`. */
export function attrInt(node: NodeMsg, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? num(a.i as LongLike) : dflt;
}

/** A FLOAT attribute, or `dflt`. */
export function attrFloat(node: NodeMsg, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? 0) : dflt;
}

/** An INTS attribute, or `dflt`. */
export function attrInts(node: NodeMsg, name: string, dflt: number[] | undefined): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map((v) => num(v as LongLike)) : dflt;
}

/** A STRING attribute, or `dflt`. */
export function attrString(node: NodeMsg, name: string, dflt: string): string {
  const a = attr(node, name);
  return a?.s ? new TextDecoder().decode(a.s) : dflt;
}

/** Converts a small in-memory TensorProto (a Constant node's value) to a tensor. */
export function tensorFromMessage(t: TensorMsg, fallbackName: string): Tensor {
  const name = t.name || fallbackName;
  const dtype = ONNX_DTYPE[t.dataType ?? 0];
  if (!dtype || dtype === "string") {
    throw new OnnxError("unsupported", `Tensor '${name}' has unsupported data type ${t.dataType}`, { layer: name });
  }
  if (t.dataLocation === 1) {
    throw new OnnxError(
      "unsupported",
      `Constant tensor '${name}' uses external data, which is only read for initializers`,
      {
        layer: name,
      },
    );
  }
  const shape = (t.dims ?? []).map((d) => num(d as LongLike));
  let n = 1;
  for (const d of shape) n *= d;
  if (t.rawData && t.rawData.length > 0) return Tensor.fromBytes(name, dtype, shape, new Uint8Array(t.rawData));
  return Tensor.fromBytes(name, dtype, shape, typedFieldBytes(dtype, n, t, name));
}

function typedFieldBytes(dtype: string, n: number, t: TensorMsg, name: string): Uint8Array {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const check = (len: number) => {
    if (len !== n) {
      throw new OnnxError("bad_format", `Tensor '${name}' holds ${len} values but its shape needs ${n}`, {
        layer: name,
      });
    }
  };
  switch (dtype) {
    case "float32":
      check(t.floatData?.length ?? 0);
      return bytes(Float32Array.from(t.floatData ?? []));
    case "float64":
      check(t.doubleData?.length ?? 0);
      return bytes(Float64Array.from(t.doubleData ?? []));
    case "int64":
      check(t.int64Data?.length ?? 0);
      return bytes(BigInt64Array.from((t.int64Data ?? []).map((v) => BigInt(num(v as LongLike)))));
    case "uint32":
    case "uint64": {
      const v = (t.uint64Data ?? []).map((x) => num(x as LongLike));
      check(v.length);
      return dtype === "uint32" ? bytes(Uint32Array.from(v)) : bytes(BigUint64Array.from(v.map(BigInt)));
    }
    default: {
      const v = t.int32Data ?? [];
      check(v.length);
      return int32FieldBytes(dtype, v);
    }
  }
}

/** Packs values of TensorProto.int32_data into the bytes of `dtype` (narrow types and 16-bit float bit patterns). */
export function int32FieldBytes(dtype: string, v: ArrayLike<number>): Uint8Array {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case "int32":
      return bytes(Int32Array.from(v));
    case "int16":
      return bytes(Int16Array.from(v));
    case "uint16":
    case "float16":
    case "bfloat16":
      return bytes(Uint16Array.from(v));
    case "int8":
      return bytes(Int8Array.from(v));
    default:
      return Uint8Array.from(v);
  }
}

/**
 * Decodes a small message with onnx-proto, turning its exceptions (which name no message and no file) into an
 * OnnxError that says what was being read.
 */
export function decodeMessage<T>(decoder: { decode(b: Uint8Array): T }, bytes: Uint8Array, what: string): T {
  try {
    return decoder.decode(bytes);
  } catch (e) {
    throw new OnnxError("bad_wire", `Cannot decode ONNX ${what}: ${(e as Error).message}`, { cause: e });
  }
}

/** Converts a ValueInfoProto to a {@link ValueInfo}. */
export function valueInfo(bytes: Uint8Array): ValueInfo {
  const v = decodeMessage(onnx.ValueInfoProto, bytes, "ValueInfoProto");
  const tt = v.type?.tensorType;
  const shape: Dim[] = (tt?.shape?.dim ?? []).map((d) =>
    d.dimParam ? d.dimParam : d.dimValue !== null && d.dimValue !== undefined ? num(d.dimValue as LongLike) : null
  );
  return { name: v.name ?? "", dtype: ONNX_DTYPE[tt?.elemType ?? 1] ?? "float32", shape };
}
