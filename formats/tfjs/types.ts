/**
 * The TensorFlow.js on-disk contract, as written by tfjs-layers (`LayersModel.save`) and the tfjs converter, and read
 * by `tf.loadLayersModel` / `tf.loadGraphModel`. Sources: tfjs-core `src/io/types.ts`, tfjs-converter
 * `write_weights.py`, `quantization.py`, `compiled_api.ts` (see ../../../shared/reference/formats.md §3).
 *
 * A model is one `model.json` plus weight shards:
 * - `model.json` holds the topology (Keras JSON for a layers-model, GraphDef JSON for a graph-model) and the
 *   weights manifest;
 * - the shards of one manifest group, concatenated in `paths` order, form one byte stream; the group's weights lie
 *   in it back to back in `weights` order, little-endian, with no alignment or padding. A weight may span shards;
 * - groups are concatenated in manifest order.
 *
 * @module
 */

/** The whole `model.json`. */
export interface ModelJson {
  /** Keras JSON (layers-model) or GraphDef JSON (graph-model). Required. */
  modelTopology: KerasTopology | GraphDefJson;
  /** Weight groups, in order. Required. */
  weightsManifest: WeightsManifestGroup[];
  /** `"layers-model"` or `"graph-model"`; older files omit it (then the topology tells). */
  format?: string;
  /** `"TensorFlow.js tfjs-layers v4.22.0"`, `"keras v2.x"` or a TF version string. */
  generatedBy?: string;
  /** `null` for JS saves; `"TensorFlow.js Converter v<ver>"` otherwise. */
  convertedBy?: string | null;
  /** Graph-model SignatureDef JSON (inputs and outputs by key). */
  signature?: SignatureJson;
  /** Free-form metadata; older converters put `signature` here. */
  userDefinedMetadata?: Record<string, unknown>;
  /** Graph-model initializer GraphDef (hash tables); passed through. */
  modelInitializer?: unknown;
  /** Layers-model training config; ignored. */
  trainingConfig?: unknown;
}

/** One weight group: its shard files and the weights they hold. */
export interface WeightsManifestGroup {
  /** Shard file names relative to model.json, in stream order (`group1-shard1of3.bin`, ...). */
  paths: string[];
  /** Weights in stream order. */
  weights: WeightsManifestEntry[];
}

/** The stored element types; bytes per element are in {@link STORED_SIZE}. */
export type ManifestDtype = "float32" | "float16" | "int32" | "bool" | "string" | "complex64" | "uint8" | "uint16";

/** One weight of the manifest. */
export interface WeightsManifestEntry {
  /** `<layer>/<weight>` (layers-model, for example `conv1/kernel`) or the Const node name (graph-model). */
  name: string;
  /** Dimensions of the (dequantized) tensor. */
  shape: number[];
  /** The tensor's dtype after dequantization (the original dtype). */
  dtype: ManifestDtype;
  /** `model` or `optimizer`; optimizer weights are skipped. */
  group?: string;
  /** Present when the bytes are quantized. */
  quantization?: Quantization;
}

/**
 * Quantized storage. The stored bytes are `size x bytes(dtype)`:
 * - uint8/uint16: value = q * scale + min (rounded for int32 originals);
 * - float16: IEEE half values of float32 originals (scale and min unused).
 */
export interface Quantization {
  dtype: "uint8" | "uint16" | "float16";
  scale?: number;
  min?: number;
  /** Written by the converter; the dtype before quantization. */
  original_dtype?: string;
}

/** Bytes per element of each stored dtype. Strings are variable (uint32 LE length + UTF-8 bytes per element). */
export const STORED_SIZE: Readonly<Record<string, number>> = Object.freeze({
  float32: 4,
  float16: 2,
  int32: 4,
  uint16: 2,
  uint8: 1,
  bool: 1,
  complex64: 8,
});

/** Graph-model signature: inputs and outputs by key. */
export interface SignatureJson {
  inputs?: Record<string, TensorInfoJson>;
  outputs?: Record<string, TensorInfoJson>;
  methodName?: string;
}

/** A signature tensor: `name` is `node:index`. */
export interface TensorInfoJson {
  name: string;
  dtype?: string;
  tensorShape?: TensorShapeJson;
}

// ---------------------------------------------------------------------------------------------------------------
// Layers-model topology (Keras JSON, snake_case keys)

/** A layers-model topology. The Keras converter nests the model under `model_config`. */
export interface KerasTopology {
  class_name?: string;
  config?: KerasModelConfig | KerasLayerJson[];
  model_config?: { class_name: string; config: KerasModelConfig | KerasLayerJson[] };
  keras_version?: string;
  backend?: string;
  training_config?: unknown;
}

/** A Sequential or functional model config. */
export interface KerasModelConfig {
  name?: string;
  layers: KerasLayerJson[];
  /** Functional only: `[[layerName, nodeIndex, tensorIndex], ...]`. */
  input_layers?: [string, number, number][];
  output_layers?: [string, number, number][];
}

/** One Keras layer. */
export interface KerasLayerJson {
  class_name: string;
  /** Layer settings (snake_case): filters, kernel_size, strides, padding, activation, use_bias, ... */
  config: Record<string, unknown>;
  /** Functional only; `config.name` otherwise. */
  name?: string;
  /**
   * Functional only: a list of call nodes, each a list of `[inboundLayer, nodeIndex, tensorIndex, kwargs]`.
   * Keras 3 writes `{args: [{class_name: "__keras_tensor__", config: {keras_history: [...]}}]}` objects instead.
   */
  inbound_nodes?: unknown[];
}

// ---------------------------------------------------------------------------------------------------------------
// Graph-model topology (json_format.MessageToDict(GraphDef): lowerCamelCase, int64 as strings, bytes as base64)

/** A GraphDef. */
export interface GraphDefJson {
  node?: NodeDefJson[];
  library?: unknown;
  versions?: { producer?: number; minConsumer?: number };
}

/** A node: inputs are `name`, `name:k` (output k) or `^name` (control dependency). */
export interface NodeDefJson {
  name: string;
  op: string;
  input?: string[];
  device?: string;
  attr?: Record<string, AttrValueJson>;
}

/** An attribute value; exactly one key is set. */
export interface AttrValueJson {
  /** bytes, base64 (`"U0FNRQ=="` is "SAME"). */
  s?: string;
  /** int64 as a string. */
  i?: string | number;
  f?: number;
  b?: boolean;
  /** `DT_FLOAT`, `DT_INT32`, ... */
  type?: string;
  shape?: TensorShapeJson;
  tensor?: TensorJson;
  list?: { s?: string[]; i?: (string | number)[]; f?: number[]; b?: boolean[]; type?: string[]; shape?: unknown[] };
  func?: unknown;
}

/** A tensor shape; sizes are int64 strings, -1 for unknown. */
export interface TensorShapeJson {
  dim?: { size?: string | number; name?: string }[];
  unknownRank?: boolean;
}

/** A Const node's value. The converter clears the data: values live in the manifest under the node's name. */
export interface TensorJson {
  dtype?: string;
  tensorShape?: TensorShapeJson;
  floatVal?: number[];
  intVal?: number[];
  int64Val?: string[];
  /** base64 bytes. */
  tensorContent?: string;
}
