/**
 * ONNX wire facts: field numbers of the messages convpress streams itself, and the TensorProto data types.
 * Source: onnx/onnx.proto (IR version 10). The small messages (NodeProto, ValueInfoProto, ...) are decoded and
 * encoded by `onnx-proto`.
 *
 * @module
 */
import type { DType } from "../../src/model/tensor.ts";

/** ModelProto fields. The graph (7) precedes opset_import (8) in protoc's field order. */
export const Model = Object.freeze({
  irVersion: 1,
  producerName: 2,
  producerVersion: 3,
  domain: 4,
  modelVersion: 5,
  docString: 6,
  graph: 7,
  opsetImport: 8,
  metadataProps: 14,
  trainingInfo: 20,
  functions: 25,
});

/** GraphProto fields. On the wire protoc writes nodes, name, initializers, doc, inputs, outputs, value_info. */
export const Graph = Object.freeze({
  node: 1,
  name: 2,
  initializer: 5,
  docString: 10,
  input: 11,
  output: 12,
  valueInfo: 13,
  quantizationAnnotation: 14,
  sparseInitializer: 15,
  metadataProps: 16,
});

/** TensorProto fields. raw_data (9) follows dims (1), data_type (2) and name (8) in protoc's order. */
export const TensorField = Object.freeze({
  dims: 1,
  dataType: 2,
  segment: 3,
  floatData: 4,
  int32Data: 5,
  stringData: 6,
  int64Data: 7,
  name: 8,
  rawData: 9,
  doubleData: 10,
  uint64Data: 11,
  docString: 12,
  externalData: 13,
  dataLocation: 14,
});

/** TensorProto.DataType to convpress dtypes. */
export const ONNX_DTYPE: Readonly<Record<number, DType>> = Object.freeze({
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
});

/** convpress dtypes to TensorProto.DataType. */
export const DTYPE_ONNX: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, Number(k)])),
);

/** AttributeProto.AttributeType. */
export const AttrType = Object.freeze({
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
});
