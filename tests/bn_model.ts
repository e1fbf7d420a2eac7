/**
 * A small model with a BatchNorm or Scale after each of a Conv, a depthwise Conv and an FC (x [2,3,4,4] -> y [2,5]),
 * for the stages that rewrite those pairs (fold, channel scales). `r` draws the vectors, `weight` makes the weights.
 */
import { Tensor } from "../src/model/tensor.ts";
import type { Layer, ModelHeader } from "../src/model/types.ts";

export function bnModel(
  r: () => number,
  weight: (name: string, shape: number[]) => Tensor,
): { header: ModelHeader; layers: Layer[] } {
  const vec = (name: string, n: number, lo: number, hi: number) =>
    Tensor.fromFloat32(name, [n], Float32Array.from({ length: n }, () => lo + (hi - lo) * r()));
  const conv = (name: string, input: string, cout: number, cin: number, group: number, bias: boolean): Layer => ({
    name,
    op: "Conv",
    attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group },
    inputs: [input],
    outputs: [name],
    params: {
      weight: weight(`${name}.w`, [cout, cin / group, 3, 3]),
      ...(bias ? { bias: vec(`${name}.b`, cout, -1, 1) } : {}),
    },
  });
  const bn = (name: string, input: string, c: number): Layer => ({
    name,
    op: "BatchNorm",
    attrs: { epsilon: 1e-3 },
    inputs: [input],
    outputs: [name],
    params: {
      scale: vec(`${name}.s`, c, 0.2, 3),
      bias: vec(`${name}.b`, c, -1, 1),
      mean: vec(`${name}.m`, c, -0.5, 0.5),
      var: vec(`${name}.v`, c, 0.01, 2),
    },
  });

  const layers: Layer[] = [
    conv("c1", "x", 8, 3, 1, true),
    bn("bn1", "c1", 8),
    { name: "r1", op: "Relu", attrs: {}, inputs: ["bn1"], outputs: ["r1"], params: {} },
    conv("dw", "r1", 8, 8, 8, false), // depthwise, no bias
    {
      name: "sc",
      op: "Scale",
      attrs: { axis: 1 },
      inputs: ["dw"],
      outputs: ["sc"],
      params: { scale: vec("sc.s", 8, -2, 2), bias: vec("sc.b", 8, -1, 1) },
    },
    { name: "fl", op: "Flatten", attrs: { axis: 1 }, inputs: ["sc"], outputs: ["fl"], params: {} },
    {
      name: "fc",
      op: "FC",
      attrs: {},
      inputs: ["fl"],
      outputs: ["fc"],
      params: { weight: weight("fc.w", [5, 8 * 4 * 4]), bias: vec("fc.b", 5, -1, 1) },
    },
    bn("y", "fc", 5),
  ];
  const header: ModelHeader = {
    name: "t",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape: [2, 3, 4, 4] }],
    outputs: [{ name: "y", dtype: "float32", shape: [2, 5] }],
    metadata: {},
  };
  return { header, layers };
}

/** `layers` of {@link bnModel} with c1's output also read by an Add before the depthwise conv. */
export function withSharedValue(layers: Layer[]): Layer[] {
  const add: Layer = { name: "add", op: "Add", attrs: {}, inputs: ["c1", "r1"], outputs: ["add"], params: {} };
  return [...layers.slice(0, 3), add, ...layers.slice(3).map((l) => l.name === "dw" ? { ...l, inputs: ["add"] } : l)];
}
