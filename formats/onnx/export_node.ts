/**
 * Canonical layer -> ONNX nodes (and small extra initializers such as a Reshape's shape). Targets the model's
 * default-domain opset: 13 for models from other formats, or the source ONNX model's own.
 *
 * @module
 */
import { OnnxError } from "../../src/errors.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Layer } from "../../src/model/types.ts";
import type { Shape } from "../../src/model/shapes.ts";
import { AttrType } from "./types.ts";
import { onnx } from "./proto.ts";

/** An encoded NodeProto and the value names it reads. */
export interface ExportedNode {
  bytes: Uint8Array;
  inputs: string[];
}

/** Nodes for one layer, plus constant tensors they need as initializers. */
export interface ExportedLayer {
  nodes: ExportedNode[];
  constants: Tensor[];
}

type AttrSpec = { name: string; type: number; i?: number; f?: number; ints?: number[]; s?: Uint8Array };

const ints = (name: string, v: number[]): AttrSpec => ({ name, type: AttrType.INTS, ints: v });
const int = (name: string, v: number): AttrSpec => ({ name, type: AttrType.INT, i: v });
const float = (name: string, v: number): AttrSpec => ({ name, type: AttrType.FLOAT, f: v });

function node(
  opType: string,
  name: string,
  inputs: string[],
  outputs: string[],
  attribute: AttrSpec[] = [],
): ExportedNode {
  if ([...inputs, ...outputs].some((v) => typeof v !== "string") || outputs.length === 0) {
    throw new OnnxError("bad_format", `Layer '${name}' (${opType}) lacks an input or output name`, { layer: name });
  }
  return { bytes: onnx.NodeProto.encode({ opType, name, input: inputs, output: outputs, attribute }).finish(), inputs };
}

/** Builds the ONNX nodes of a canonical layer. `inShape` is the first input's shape when known. */
export function exportLayer(layer: Layer, opset: number, inShape: Shape): ExportedLayer {
  const { name, attrs } = layer;
  const x = layer.inputs[0];
  const y = layer.outputs[0];
  const p = layer.params;
  const one = (opType: string, attribute: AttrSpec[] = [], inputs = [x]): ExportedLayer => ({
    nodes: [node(opType, name, inputs, [y], attribute)],
    constants: [],
  });
  switch (layer.op) {
    case "Conv": {
      const ins = [x, p.weight.name];
      if (p.bias) ins.push(p.bias.name);
      return one("Conv", [
        ints("kernel_shape", attrs.kernel as number[]),
        ints("strides", attrs.strides as number[]),
        ints("pads", attrs.pads as number[]),
        ints("dilations", attrs.dilations as number[]),
        int("group", attrs.group as number),
      ], ins);
    }
    case "FC": {
      const ins = [x, p.weight.name];
      if (p.bias) ins.push(p.bias.name);
      const gemmAttrs = [int("transB", 1)];
      if (inShape && inShape.length === 2) return one("Gemm", gemmAttrs, ins);
      const flat = `${name}_flatten`;
      ins[0] = flat;
      return {
        nodes: [
          node("Flatten", `${name}/flatten`, [x], [flat], [int("axis", 1)]),
          node("Gemm", name, ins, [y], gemmAttrs),
        ],
        constants: [],
      };
    }
    case "MaxPool":
    case "AvgPool": {
      const a = [
        ints("kernel_shape", attrs.kernel as number[]),
        ints("strides", attrs.strides as number[]),
        ints("pads", attrs.pads as number[]),
      ];
      if (attrs.ceil) a.push(int("ceil_mode", 1));
      if (layer.op === "AvgPool" && attrs.countIncludePad) a.push(int("count_include_pad", 1));
      return one(layer.op === "MaxPool" ? "MaxPool" : "AveragePool", a);
    }
    case "GlobalAvgPool":
      return one("GlobalAveragePool");
    case "GlobalMaxPool":
      return one("GlobalMaxPool");
    case "Relu":
    case "Sigmoid":
    case "Tanh":
    case "Identity":
      return one(layer.op);
    case "Dropout":
      return one("Dropout");
    case "LeakyRelu":
      return one("LeakyRelu", [float("alpha", attrs.alpha as number)]);
    case "Clip": {
      const min = attrs.min as number, max = attrs.max as number;
      if (opset < 11) return one("Clip", [float("min", min), float("max", max)]);
      const lo = Tensor.fromFloat32(`${name}_min`, [], new Float32Array([min]));
      const hi = Tensor.fromFloat32(`${name}_max`, [], new Float32Array([max]));
      return { nodes: [node("Clip", name, [x, lo.name, hi.name], [y])], constants: [lo, hi] };
    }
    case "Softmax": {
      const axis = (attrs.axis as number | undefined) ?? -1;
      const rank = inShape?.length;
      if (opset < 13 && !(rank === 2 || (rank !== undefined && (axis === rank - 1 || axis === -1)))) {
        throw new OnnxError("unsupported", `Softmax layer '${name}' needs opset 13 for axis ${axis}`, { layer: name });
      }
      return one("Softmax", [int("axis", axis)]);
    }
    case "LRN":
      return one("LRN", [
        int("size", attrs.size as number),
        float("alpha", attrs.alpha as number),
        float("beta", attrs.beta as number),
        float("bias", attrs.bias as number),
      ]);
    case "BatchNorm":
      return one("BatchNormalization", [float("epsilon", attrs.epsilon as number)], [
        x,
        p.scale.name,
        p.bias.name,
        p.mean.name,
        p.var.name,
      ]);
    case "Scale": {
      // y = x * scale[c] (+ bias[c]) over axis 1: reshape the vectors to [C, 1, 1] and broadcast.
      const rank = inShape?.length ?? 4;
      const bshape = [p.scale.size, ...Array(Math.max(0, rank - 2)).fill(1)];
      // Reshaped copies under their own names: the [C] params may be written too (a shared tensor, a report).
      const s = p.scale.with({ name: `${p.scale.name}_c11`, shape: bshape });
      const nodes = [node("Mul", `${name}/mul`, [x, s.name], [p.bias ? `${name}_mul` : y])];
      const constants = [s];
      if (p.bias) {
        const b = p.bias.with({ name: `${p.bias.name}_c11`, shape: bshape });
        nodes.push(node("Add", name, [`${name}_mul`, b.name], [y]));
        constants.push(b);
      }
      return { nodes, constants };
    }
    case "Add": {
      const coeffs = attrs.coeffs as number[] | undefined;
      if (coeffs && coeffs.some((c) => c !== 1)) {
        throw new OnnxError("unsupported", `Add layer '${name}' has coefficients, which ONNX Add cannot express`, {
          layer: name,
        });
      }
      return chain("Add", layer);
    }
    case "Mul":
    case "Max":
      return chain(layer.op, layer);
    case "Sub":
      return one("Sub", [], layer.inputs);
    case "Concat":
      return one("Concat", [int("axis", attrs.axis as number)], layer.inputs);
    case "Flatten":
      return one("Flatten", [int("axis", (attrs.axis as number | undefined) ?? 1)]);
    case "Reshape": {
      const s = Tensor.fromInt64(`${name}_shape`, [(attrs.shape as number[]).length], attrs.shape as number[]);
      return { nodes: [node("Reshape", name, [x, s.name], [y])], constants: [s] };
    }
    case "Transpose":
      return one("Transpose", [ints("perm", attrs.perm as number[])]);
    case "Pad": {
      const [t, l, b, r] = attrs.pads as number[];
      const pads = [0, 0, t, l, 0, 0, b, r];
      const value = (attrs.value as number | undefined) ?? 0;
      if (opset < 11) return one("Pad", [ints("pads", pads), float("value", value)]);
      const pt = Tensor.fromInt64(`${name}_pads`, [8], pads);
      const vt = Tensor.fromFloat32(`${name}_value`, [], new Float32Array([value]));
      return { nodes: [node("Pad", name, [x, pt.name, vt.name], [y])], constants: [pt, vt] };
    }
    default:
      throw new OnnxError(
        "unsupported",
        `Layer '${name}' uses op ${
          layer.op === "Passthrough" ? String(attrs.op ?? attrs.onnxOp ?? "?") : layer.op
        }, which the ONNX writer cannot express`,
        { layer: name },
      );
  }
}

/** ONNX Mul/Max with two inputs; more are chained (Max and Sum take many, but this keeps one shape rule). */
function chain(op: string, layer: Layer): ExportedLayer {
  const ins = layer.inputs;
  if (ins.length <= 2 || op === "Max") {
    return {
      nodes: [node(op === "Add" && ins.length > 2 ? "Sum" : op, layer.name, ins, [layer.outputs[0]])],
      constants: [],
    };
  }
  if (op === "Add") return { nodes: [node("Sum", layer.name, ins, [layer.outputs[0]])], constants: [] };
  const nodes: ExportedNode[] = [];
  let acc = ins[0];
  for (let i = 1; i < ins.length; i++) {
    const out = i === ins.length - 1 ? layer.outputs[0] : `${layer.name}_${i}`;
    nodes.push(node(op, `${layer.name}/${i}`, [acc, ins[i]], [out]));
    acc = out;
  }
  return { nodes, constants: [] };
}
