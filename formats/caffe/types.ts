/**
 * Caffe wire facts: field numbers of NetParameter, LayerParameter (current form), V1LayerParameter (`layers`),
 * BlobProto and BlobShape, the V1 LayerType enum, and a schema of the layer parameter messages convpress reads and
 * writes. Source: BVLC/caffe `src/caffe/proto/caffe.proto` (see ../../../shared/reference/formats.md, section 1).
 *
 * The parameter messages (ConvolutionParameter and so on) are the same message types in V1 and V2 layers; they are
 * decoded into the same tree the prototxt parser builds ({@link TextMessage} in ./prototxt.ts), so the binary and
 * text forms share one code path.
 *
 * @module
 */

/** NetParameter fields. protoc writes them in ascending order: a V1 file's `layers` (2) precede `input` (3, 4). */
export const NetField = Object.freeze({
  name: 1,
  layers: 2, // repeated V1LayerParameter (deprecated)
  input: 3, // repeated string
  inputDim: 4, // repeated int32, 4 per input (N, C, H, W), not packed
  forceBackward: 5,
  state: 6,
  debugInfo: 7,
  inputShape: 8, // repeated BlobShape
  layer: 100, // repeated LayerParameter
});

/** LayerParameter (current form) fields. `blobs` (7) come before every `*_param` (100 and up) on the wire. */
export const LayerField = Object.freeze({
  name: 1,
  type: 2,
  bottom: 3,
  top: 4,
  lossWeight: 5,
  param: 6,
  blobs: 7,
  include: 8,
  exclude: 9,
  phase: 10,
  propagateDown: 11,
});

/** V1LayerParameter fields. `blobs` (6) come after name (4) and type (5) and before the `*_param` fields. */
export const V1LayerField = Object.freeze({
  v0Layer: 1,
  bottom: 2,
  top: 3,
  name: 4,
  type: 5, // enum LayerType, see V1_LAYER_TYPES
  blobs: 6,
  blobsLr: 7,
  weightDecay: 8,
  include: 32,
  exclude: 33,
  lossWeight: 35,
  param: 1001,
});

/** BlobProto fields. A new-style blob's packed `data` (5) arrives before its `shape` (7). */
export const BlobField = Object.freeze({
  num: 1,
  channels: 2,
  height: 3,
  width: 4,
  data: 5, // repeated float, packed
  diff: 6,
  shape: 7, // BlobShape
  doubleData: 8, // repeated double, packed
  doubleDiff: 9,
});

/** Phase enum. */
export const Phase = Object.freeze({ TRAIN: 0, TEST: 1 });

/** V1 LayerType enum value to the current-form type string (UpgradeV1LayerType). */
export const V1_LAYER_TYPES: readonly string[] = Object.freeze([
  "", // 0 NONE
  "Accuracy",
  "BNLL",
  "Concat",
  "Convolution",
  "Data",
  "Dropout",
  "EuclideanLoss",
  "Flatten",
  "HDF5Data",
  "HDF5Output", // 10
  "Im2col",
  "ImageData",
  "InfogainLoss",
  "InnerProduct",
  "LRN",
  "MultinomialLogisticLoss",
  "Pooling",
  "ReLU",
  "Sigmoid",
  "Softmax", // 20
  "SoftmaxWithLoss",
  "Split",
  "TanH",
  "WindowData",
  "Eltwise",
  "Power",
  "SigmoidCrossEntropyLoss",
  "HingeLoss",
  "MemoryData",
  "ArgMax", // 30
  "Threshold",
  "DummyData",
  "Slice",
  "MVN",
  "AbsVal",
  "Silence",
  "ContrastiveLoss",
  "Exp",
  "Deconvolution", // 39
]);

/** V1 LayerType enum names, by value (what a V1 prototxt writes: `type: CONVOLUTION`). */
export const V1_LAYER_ENUM: readonly string[] = Object.freeze([
  "NONE",
  "ACCURACY",
  "BNLL",
  "CONCAT",
  "CONVOLUTION",
  "DATA",
  "DROPOUT",
  "EUCLIDEAN_LOSS",
  "FLATTEN",
  "HDF5_DATA",
  "HDF5_OUTPUT",
  "IM2COL",
  "IMAGE_DATA",
  "INFOGAIN_LOSS",
  "INNER_PRODUCT",
  "LRN",
  "MULTINOMIAL_LOGISTIC_LOSS",
  "POOLING",
  "RELU",
  "SIGMOID",
  "SOFTMAX",
  "SOFTMAX_LOSS",
  "SPLIT",
  "TANH",
  "WINDOW_DATA",
  "ELTWISE",
  "POWER",
  "SIGMOID_CROSS_ENTROPY_LOSS",
  "HINGE_LOSS",
  "MEMORY_DATA",
  "ARGMAX",
  "THRESHOLD",
  "DUMMY_DATA",
  "SLICE",
  "MVN",
  "ABSVAL",
  "SILENCE",
  "CONTRASTIVE_LOSS",
  "EXP",
  "DECONVOLUTION",
]);

/** Layer types that feed data or compute a loss or a metric: dropped when a train net becomes a deploy net. */
export const TRAIN_ONLY_TYPES: ReadonlySet<string> = new Set([
  "Data",
  "ImageData",
  "HDF5Data",
  "HDF5Output",
  "MemoryData",
  "WindowData",
  "DummyData",
  "Accuracy",
  "Silence",
  "SoftmaxWithLoss",
  "EuclideanLoss",
  "HingeLoss",
  "InfogainLoss",
  "MultinomialLogisticLoss",
  "SigmoidCrossEntropyLoss",
  "ContrastiveLoss",
  "Python",
]);

/** Data-feeding layer types: their first top is the network input. */
export const DATA_TYPES: ReadonlySet<string> = new Set([
  "Data",
  "ImageData",
  "HDF5Data",
  "MemoryData",
  "WindowData",
  "DummyData",
]);

/** Kinds of scalar fields in {@link MESSAGES}. */
export type FieldKind = "uint" | "int" | "float" | "bool" | "string" | "enum" | "message" | "dims";

/**
 * One field of a parameter message: number, name, kind, and for enums the value names (by number), for messages
 * the message name. `dims` is BlobShape's packed repeated int64.
 */
export interface FieldSpec {
  no: number;
  name: string;
  kind: FieldKind;
  repeated?: boolean;
  enumNames?: readonly string[];
  message?: string;
}

const f = (
  no: number,
  name: string,
  kind: FieldKind,
  extra: Partial<FieldSpec> = {},
): FieldSpec => ({ no, name, kind, ...extra });
const rep = { repeated: true };

/** Schemas of the parameter messages convpress understands. Unknown fields are skipped when reading. */
export const MESSAGES: Readonly<Record<string, readonly FieldSpec[]>> = Object.freeze({
  BlobShape: [f(1, "dim", "dims", rep)],
  FillerParameter: [
    f(1, "type", "string"),
    f(2, "value", "float"),
    f(3, "min", "float"),
    f(4, "max", "float"),
    f(5, "mean", "float"),
    f(6, "std", "float"),
    f(7, "sparse", "int"),
    f(8, "variance_norm", "enum", { enumNames: ["FAN_IN", "FAN_OUT", "AVERAGE"] }),
  ],
  ParamSpec: [
    f(1, "name", "string"),
    f(2, "share_mode", "enum", { enumNames: ["STRICT", "PERMISSIVE"] }),
    f(3, "lr_mult", "float"),
    f(4, "decay_mult", "float"),
  ],
  NetStateRule: [
    f(1, "phase", "enum", { enumNames: ["TRAIN", "TEST"] }),
    f(2, "min_level", "int"),
    f(3, "max_level", "int"),
    f(4, "stage", "string", rep),
    f(5, "not_stage", "string", rep),
  ],
  ConvolutionParameter: [
    f(1, "num_output", "uint"),
    f(2, "bias_term", "bool"),
    f(3, "pad", "uint", rep),
    f(4, "kernel_size", "uint", rep),
    f(5, "group", "uint"),
    f(6, "stride", "uint", rep),
    f(7, "weight_filler", "message", { message: "FillerParameter" }),
    f(8, "bias_filler", "message", { message: "FillerParameter" }),
    f(9, "pad_h", "uint"),
    f(10, "pad_w", "uint"),
    f(11, "kernel_h", "uint"),
    f(12, "kernel_w", "uint"),
    f(13, "stride_h", "uint"),
    f(14, "stride_w", "uint"),
    f(15, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] }),
    f(16, "axis", "int"),
    f(17, "force_nd_im2col", "bool"),
    f(18, "dilation", "uint", rep),
  ],
  PoolingParameter: [
    f(1, "pool", "enum", { enumNames: ["MAX", "AVE", "STOCHASTIC"] }),
    f(2, "kernel_size", "uint"),
    f(3, "stride", "uint"),
    f(4, "pad", "uint"),
    f(5, "kernel_h", "uint"),
    f(6, "kernel_w", "uint"),
    f(7, "stride_h", "uint"),
    f(8, "stride_w", "uint"),
    f(9, "pad_h", "uint"),
    f(10, "pad_w", "uint"),
    f(11, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] }),
    f(12, "global_pooling", "bool"),
    f(13, "round_mode", "enum", { enumNames: ["CEIL", "FLOOR"] }),
  ],
  InnerProductParameter: [
    f(1, "num_output", "uint"),
    f(2, "bias_term", "bool"),
    f(3, "weight_filler", "message", { message: "FillerParameter" }),
    f(4, "bias_filler", "message", { message: "FillerParameter" }),
    f(5, "axis", "int"),
    f(6, "transpose", "bool"),
  ],
  LRNParameter: [
    f(1, "local_size", "uint"),
    f(2, "alpha", "float"),
    f(3, "beta", "float"),
    f(4, "norm_region", "enum", { enumNames: ["ACROSS_CHANNELS", "WITHIN_CHANNEL"] }),
    f(5, "k", "float"),
    f(6, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] }),
  ],
  DropoutParameter: [f(1, "dropout_ratio", "float")],
  BatchNormParameter: [
    f(1, "use_global_stats", "bool"),
    f(2, "moving_average_fraction", "float"),
    f(3, "eps", "float"),
  ],
  ScaleParameter: [
    f(1, "axis", "int"),
    f(2, "num_axes", "int"),
    f(3, "filler", "message", { message: "FillerParameter" }),
    f(4, "bias_term", "bool"),
    f(5, "bias_filler", "message", { message: "FillerParameter" }),
  ],
  EltwiseParameter: [
    f(1, "operation", "enum", { enumNames: ["PROD", "SUM", "MAX"] }),
    f(2, "coeff", "float", rep),
    f(3, "stable_prod_grad", "bool"),
  ],
  ConcatParameter: [f(1, "concat_dim", "uint"), f(2, "axis", "int")],
  FlattenParameter: [f(1, "axis", "int"), f(2, "end_axis", "int")],
  ReshapeParameter: [f(1, "shape", "message", { message: "BlobShape" }), f(2, "axis", "int"), f(3, "num_axes", "int")],
  InputParameter: [f(1, "shape", "message", { ...rep, message: "BlobShape" })],
  SoftmaxParameter: [f(1, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] }), f(2, "axis", "int")],
  ReLUParameter: [
    f(1, "negative_slope", "float"),
    f(2, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] }),
  ],
  SigmoidParameter: [f(1, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] })],
  PReLUParameter: [f(1, "filler", "message", { message: "FillerParameter" }), f(2, "channel_shared", "bool")],
  ELUParameter: [f(1, "alpha", "float")],
  PowerParameter: [f(1, "power", "float"), f(2, "scale", "float"), f(3, "shift", "float")],
  ExpParameter: [f(1, "base", "float"), f(2, "scale", "float"), f(3, "shift", "float")],
  LogParameter: [f(1, "base", "float"), f(2, "scale", "float"), f(3, "shift", "float")],
  SliceParameter: [f(1, "slice_dim", "uint"), f(2, "slice_point", "uint", rep), f(3, "axis", "int")],
  // SSD Caffe's (and OpenCV's caffe.proto): not in BVLC Caffe.
  PermuteParameter: [f(1, "order", "uint", rep)],
  TanHParameter: [f(1, "engine", "enum", { enumNames: ["DEFAULT", "CAFFE", "CUDNN"] })],
  TransformationParameter: [
    f(1, "scale", "float"),
    f(2, "mirror", "bool"),
    f(3, "crop_size", "uint"),
    f(4, "mean_file", "string"),
    f(5, "mean_value", "float", rep),
    f(6, "force_color", "bool"),
    f(7, "force_gray", "bool"),
  ],
  DataParameter: [
    f(1, "source", "string"),
    f(2, "scale", "float"),
    f(3, "mean_file", "string"),
    f(4, "batch_size", "uint"),
    f(5, "crop_size", "uint"),
    f(6, "mirror", "bool"),
    f(7, "rand_skip", "uint"),
    f(8, "backend", "enum", { enumNames: ["LEVELDB", "LMDB"] }),
  ],
});

/** `*_param` fields of a current-form LayerParameter: field number, name, message. */
export const LAYER_PARAMS: readonly [number, string, string][] = Object.freeze([
  [100, "transform_param", "TransformationParameter"],
  [104, "concat_param", "ConcatParameter"],
  [106, "convolution_param", "ConvolutionParameter"],
  [107, "data_param", "DataParameter"],
  [108, "dropout_param", "DropoutParameter"],
  [110, "eltwise_param", "EltwiseParameter"],
  [117, "inner_product_param", "InnerProductParameter"],
  [118, "lrn_param", "LRNParameter"],
  [111, "exp_param", "ExpParameter"],
  [121, "pooling_param", "PoolingParameter"],
  [122, "power_param", "PowerParameter"],
  [123, "relu_param", "ReLUParameter"],
  [124, "sigmoid_param", "SigmoidParameter"],
  [125, "softmax_param", "SoftmaxParameter"],
  [126, "slice_param", "SliceParameter"],
  [127, "tanh_param", "TanHParameter"],
  [131, "prelu_param", "PReLUParameter"],
  [133, "reshape_param", "ReshapeParameter"],
  [134, "log_param", "LogParameter"],
  [135, "flatten_param", "FlattenParameter"],
  [139, "batch_norm_param", "BatchNormParameter"],
  [140, "elu_param", "ELUParameter"],
  [142, "scale_param", "ScaleParameter"],
  [143, "input_param", "InputParameter"],
  [202, "permute_param", "PermuteParameter"],
]);

/** `*_param` fields of a V1LayerParameter: field number, name, message. */
export const V1_LAYER_PARAMS: readonly [number, string, string][] = Object.freeze([
  [9, "concat_param", "ConcatParameter"],
  [10, "convolution_param", "ConvolutionParameter"],
  [11, "data_param", "DataParameter"],
  [12, "dropout_param", "DropoutParameter"],
  [17, "inner_product_param", "InnerProductParameter"],
  [18, "lrn_param", "LRNParameter"],
  [19, "pooling_param", "PoolingParameter"],
  [24, "eltwise_param", "EltwiseParameter"],
  [30, "relu_param", "ReLUParameter"],
  [36, "transform_param", "TransformationParameter"],
  [37, "tanh_param", "TanHParameter"],
  [38, "sigmoid_param", "SigmoidParameter"],
  [39, "softmax_param", "SoftmaxParameter"],
]);
