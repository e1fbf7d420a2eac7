/**
 * The canonical op set. Each op lists its parameter roles (in order) and its attributes. Spatial attributes are
 * 2-D: `kernel` [kh, kw], `strides` [sh, sw], `dilations` [dh, dw], `pads` [top, left, bottom, right] (ONNX
 * order). Activations are NCHW.
 *
 * | op | params | attrs |
 * |---|---|---|
 * | Conv | weight [O, I/group, kh, kw], bias? [O] | kernel, strides, pads, dilations, group |
 * | FC | weight [out, in], bias? [out] | (input of rank > 2 is flattened from axis 1, C,H,W order) |
 * | MaxPool, AvgPool | | kernel, strides, pads, ceil (bool), countIncludePad (AvgPool) |
 * | GlobalAvgPool, GlobalMaxPool | | |
 * | Relu, Sigmoid, Tanh, Identity | | |
 * | LeakyRelu | | alpha |
 * | Clip | | min, max (Relu6 = Clip 0..6) |
 * | Softmax | | axis |
 * | LRN | | size, alpha, beta, bias |
 * | BatchNorm | scale, bias, mean, var (all [C]) | epsilon |
 * | Scale | scale [C], bias? [C] | axis |
 * | Add, Mul, Sub | | coeffs? (Add) |
 * | Max | | |
 * | Concat | | axis |
 * | Flatten | | axis |
 * | Reshape | | shape (0 copies, -1 infers) |
 * | Transpose | | perm |
 * | Pad | | pads [t, l, b, r], value |
 * | Dropout | | ratio (identity at inference) |
 * | Passthrough | any | the source format's own record is in `layer.origin` |
 *
 * @module
 */

/** Canonical op names. */
export type Op =
  | "Conv"
  | "FC"
  | "MaxPool"
  | "AvgPool"
  | "GlobalAvgPool"
  | "GlobalMaxPool"
  | "Relu"
  | "LeakyRelu"
  | "Clip"
  | "Sigmoid"
  | "Tanh"
  | "Softmax"
  | "LRN"
  | "BatchNorm"
  | "Scale"
  | "Add"
  | "Mul"
  | "Sub"
  | "Max"
  | "Concat"
  | "Flatten"
  | "Reshape"
  | "Transpose"
  | "Pad"
  | "Dropout"
  | "Identity"
  | "Passthrough";

/** Parameter roles of each op, in order. */
export const PARAM_ROLES: Readonly<Partial<Record<Op, readonly string[]>>> = Object.freeze({
  Conv: ["weight", "bias"],
  FC: ["weight", "bias"],
  BatchNorm: ["scale", "bias", "mean", "var"],
  Scale: ["scale", "bias"],
});

/** Ops whose output has the shape of their (first) input. */
export const ELEMENTWISE: ReadonlySet<Op> = new Set<Op>([
  "Relu",
  "LeakyRelu",
  "Clip",
  "Sigmoid",
  "Tanh",
  "Softmax",
  "LRN",
  "BatchNorm",
  "Scale",
  "Dropout",
  "Identity",
]);
