/**
 * ONNX node -> canonical layer. A node maps to a canonical op only when every detail is captured (2-D spatial ops,
 * NOTSET auto_pad, constant weights); anything else becomes a `Passthrough` layer that keeps the node's bytes, so
 * ONNX -> ONNX never loses it and other writers can name what they cannot express.
 *
 * @module
 */
import type { Attrs } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { attr, attrFloat, attrInt, attrInts, attrString, type NodeMsg } from "./proto.ts";

/** Resolves a value name to a constant tensor (initializer, Constant output, or an Identity alias of one). */
export type Resolve = (name: string) => Tensor | undefined;

/** Input positions that hold parameters, by op type (for deciding what a streamed node must wait for). */
export const PARAM_POSITIONS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  Conv: [1, 2],
  Gemm: [1, 2],
  MatMul: [1],
  BatchNormalization: [1, 2, 3, 4],
  Reshape: [1],
  Clip: [1, 2],
  Pad: [1, 2, 3],
  Dropout: [1, 2],
});

type Mapped = { op: Op; attrs: Attrs; inputs: string[]; params: Record<string, Tensor> };

function pads2d(node: NodeMsg): number[] | undefined {
  const p = attrInts(node, "pads", [0, 0, 0, 0])!;
  return p.length === 4 ? p : undefined;
}

function spatialOk(node: NodeMsg): boolean {
  const autoPad = attrString(node, "auto_pad", "NOTSET");
  return autoPad === "NOTSET" || autoPad === "";
}

/** Maps a node to a canonical op, or returns undefined for pass-through. */
export function importNode(node: NodeMsg, resolve: Resolve): Mapped | undefined {
  const ins = node.input ?? [];
  const x = ins[0];
  const t = (i: number) => (ins[i] ? resolve(ins[i]) : undefined);
  const domain = node.domain ?? "";
  if (domain !== "" && domain !== "ai.onnx") return undefined;
  switch (node.opType) {
    case "Conv": {
      const w = t(1), b = ins[2] ? t(2) : undefined;
      if (!w || w.shape.length !== 4 || (ins[2] && !b) || !spatialOk(node)) return undefined;
      const pads = pads2d(node);
      if (!pads) return undefined;
      const params: Record<string, Tensor> = { weight: w };
      if (b) params.bias = b;
      return {
        op: "Conv",
        attrs: {
          kernel: attrInts(node, "kernel_shape", [w.shape[2], w.shape[3]])!,
          strides: attrInts(node, "strides", [1, 1])!,
          pads,
          dilations: attrInts(node, "dilations", [1, 1])!,
          group: attrInt(node, "group", 1),
        },
        inputs: [x],
        params,
      };
    }
    case "Gemm": {
      const w = t(1), b = ins[2] ? t(2) : undefined;
      if (!w || w.shape.length !== 2 || (ins[2] && !b)) return undefined;
      if (attrFloat(node, "alpha", 1) !== 1 || attrFloat(node, "beta", 1) !== 1 || attrInt(node, "transA", 0) !== 0) {
        return undefined;
      }
      // FC weights are [out, in]: Gemm transB=1 stores them that way; transB=0 needs a transpose (see reader).
      if (attrInt(node, "transB", 0) !== 1) return undefined;
      if (b && !(b.shape.length === 1 || (b.shape.length === 2 && b.shape[0] === 1))) return undefined;
      if (b && b.size !== w.shape[0]) return undefined;
      const params: Record<string, Tensor> = { weight: w };
      if (b) params.bias = b.shape.length === 1 ? b : b.with({ shape: [b.size] });
      return { op: "FC", attrs: {}, inputs: [x], params };
    }
    case "MaxPool":
    case "AveragePool": {
      const k = attrInts(node, "kernel_shape", undefined);
      if (!k || k.length !== 2 || !spatialOk(node)) return undefined;
      if (node.output && node.output.length > 1 && node.output[1]) return undefined;
      const d = attrInts(node, "dilations", [1, 1])!;
      if (d.some((v) => v !== 1) || attrInt(node, "storage_order", 0) !== 0) return undefined;
      const pads = pads2d(node);
      if (!pads) return undefined;
      const attrs: Attrs = {
        kernel: k,
        strides: attrInts(node, "strides", [1, 1])!,
        pads,
        ceil: attrInt(node, "ceil_mode", 0) === 1,
      };
      if (node.opType === "AveragePool") attrs.countIncludePad = attrInt(node, "count_include_pad", 0) === 1;
      return { op: node.opType === "MaxPool" ? "MaxPool" : "AvgPool", attrs, inputs: [x], params: {} };
    }
    case "GlobalAveragePool":
      return { op: "GlobalAvgPool", attrs: {}, inputs: [x], params: {} };
    case "GlobalMaxPool":
      return { op: "GlobalMaxPool", attrs: {}, inputs: [x], params: {} };
    case "Relu":
    case "Sigmoid":
    case "Tanh":
    case "Identity":
      return { op: node.opType as Op, attrs: {}, inputs: [x], params: {} };
    case "LeakyRelu":
      return { op: "LeakyRelu", attrs: { alpha: attrFloat(node, "alpha", 0.01) }, inputs: [x], params: {} };
    case "Clip": {
      let min = attrFloat(node, "min", -Infinity), max = attrFloat(node, "max", Infinity);
      if (ins[1]) {
        const m = t(1);
        if (!m || m.size !== 1 || !m.materialized) return undefined;
        min = readScalar(m);
        if (Number.isNaN(min)) return undefined;
      }
      if (ins[2]) {
        const m = t(2);
        if (!m || m.size !== 1 || !m.materialized) return undefined;
        max = readScalar(m);
        if (Number.isNaN(max)) return undefined;
      }
      return { op: "Clip", attrs: { min, max }, inputs: [x], params: {} };
    }
    case "Softmax":
      return { op: "Softmax", attrs: { axis: attrInt(node, "axis", -1) }, inputs: [x], params: {} };
    case "LRN":
      return {
        op: "LRN",
        attrs: {
          size: attrInt(node, "size", 1),
          alpha: attrFloat(node, "alpha", 1e-4),
          beta: attrFloat(node, "beta", 0.75),
          bias: attrFloat(node, "bias", 1),
        },
        inputs: [x],
        params: {},
      };
    case "BatchNormalization": {
      const [s, b, m, v] = [t(1), t(2), t(3), t(4)];
      if (!s || !b || !m || !v || (node.output?.length ?? 1) > 1 || attrInt(node, "training_mode", 0) !== 0) {
        return undefined;
      }
      return {
        op: "BatchNorm",
        attrs: { epsilon: attrFloat(node, "epsilon", 1e-5) },
        inputs: [x],
        params: { scale: s, bias: b, mean: m, var: v },
      };
    }
    case "Add":
    case "Mul":
    case "Sub":
    case "Max":
      if (ins.some((n) => resolve(n))) return undefined;
      return { op: node.opType as Op, attrs: {}, inputs: [...ins], params: {} };
    case "Concat":
      if (ins.some((n) => resolve(n))) return undefined;
      return { op: "Concat", attrs: { axis: attrInt(node, "axis", 1) }, inputs: [...ins], params: {} };
    case "Flatten":
      return { op: "Flatten", attrs: { axis: attrInt(node, "axis", 1) }, inputs: [x], params: {} };
    case "Reshape": {
      const s = t(1);
      if (!s || !s.materialized || attrInt(node, "allowzero", 0) !== 0) return undefined;
      const shape = readInts(s);
      if (shape.some((v) => !Number.isInteger(v))) return undefined;
      return { op: "Reshape", attrs: { shape }, inputs: [x], params: {} };
    }
    case "Transpose": {
      const perm = attrInts(node, "perm", undefined);
      if (!perm) return undefined;
      return { op: "Transpose", attrs: { perm }, inputs: [x], params: {} };
    }
    case "Pad": {
      if (attrString(node, "mode", "constant") !== "constant" || ins[3]) return undefined;
      let pads = attrInts(node, "pads", undefined);
      let value = attrFloat(node, "value", 0);
      if (ins[1]) {
        const p = t(1);
        if (!p || !p.materialized) return undefined;
        pads = readInts(p);
      }
      if (ins[2]) {
        const v = t(2);
        if (!v || v.size !== 1 || !v.materialized) return undefined;
        value = readScalar(v);
      }
      // [n0, c0, h0, w0, n1, c1, h1, w1]: only spatial padding of a 4-D tensor is canonical.
      if (!pads || pads.length !== 8 || pads[0] || pads[1] || pads[4] || pads[5] || pads.some((v) => v < 0)) {
        return undefined;
      }
      return { op: "Pad", attrs: { pads: [pads[2], pads[3], pads[6], pads[7]], value }, inputs: [x], params: {} };
    }
    case "Dropout":
      if ((node.output?.length ?? 1) > 1 && node.output![1]) return undefined;
      return {
        op: "Dropout",
        attrs: { ratio: attr(node, "ratio") ? attrFloat(node, "ratio", 0.5) : 0.5 },
        inputs: [x],
        params: {},
      };
    default:
      return undefined;
  }
}

function readScalar(t: Tensor): number {
  return readInts(t)[0];
}

/** Reads a small materialized tensor's values synchronously. */
function readInts(t: Tensor): number[] {
  const c = t.syncBytes().slice();
  switch (t.dtype) {
    case "int64":
      return Array.from(new BigInt64Array(c.buffer), Number);
    case "int32":
      return Array.from(new Int32Array(c.buffer));
    case "float32":
      return Array.from(new Float32Array(c.buffer));
    case "float64":
      return Array.from(new Float64Array(c.buffer));
    default:
      return [NaN];
  }
}
