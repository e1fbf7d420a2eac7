import { assert } from "../../tests/helpers.ts";
import { Tensor } from "./tensor.ts";
import type { Layer, ModelHeader } from "./types.ts";
import { GraphValidator, validateLayerAttrs } from "./validate.ts";

const conv = (attrs: Layer["attrs"], wshape = [4, 2, 3, 3]): Layer => ({
  name: "c",
  op: "Conv",
  attrs,
  inputs: ["x"],
  outputs: ["y"],
  params: { weight: Tensor.fromFloat32("w", wshape, new Float32Array(wshape.reduce((a, b) => a * b, 1))) },
});

function throws(f: () => void, match: RegExp): void {
  try {
    f();
  } catch (e) {
    assert(match.test((e as Error).message), `'${(e as Error).message}' does not match ${match}`);
    return;
  }
  throw new Error(`no error (expected ${match})`);
}

Deno.test("validateLayerAttrs: conv and pool windows, groups, axes, reshape and transpose specs", () => {
  const x = [[1, 2, 8, 8]];
  validateLayerAttrs(conv({ kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 }), x);
  throws(() => validateLayerAttrs(conv({ strides: [0, 1] }), x), /strides \[0,1\] must be 2 integers from 1/);
  throws(() => validateLayerAttrs(conv({ dilations: [1, 1e9] }), x), /dilations/);
  throws(() => validateLayerAttrs(conv({ pads: [1, 1, -1, 1] }), x), /pads/);
  throws(() => validateLayerAttrs(conv({ strides: [1.5, 1] }), x), /strides/);
  throws(() => validateLayerAttrs(conv({ group: 3 }, [4, 1, 3, 3]), [[1, 3, 8, 8]]), /group 3 does not divide the 4/);
  throws(() => validateLayerAttrs(conv({ group: 2 }), x), /needs 4 input channels, got 2/);
  throws(() => validateLayerAttrs(conv({ kernel: [5, 5] }), x), /kernel \[5,5\] does not match the weight's 3x3/);
  const plain = (op: Layer["op"], attrs: Layer["attrs"]): Layer => ({
    name: "l",
    op,
    attrs,
    inputs: ["x"],
    outputs: ["y"],
    params: {},
  });
  throws(() => validateLayerAttrs(plain("MaxPool", { strides: [2, 2] }), x), /kernel is missing/);
  throws(() => validateLayerAttrs(plain("Softmax", { axis: 4 }), x), /axis 4 is out of range for an input of rank 4/);
  validateLayerAttrs(plain("Softmax", { axis: -1 }), x);
  throws(() => validateLayerAttrs(plain("Reshape", { shape: [-1, -1] }), x), /at most one -1/);
  throws(() => validateLayerAttrs(plain("Transpose", { perm: [0, 0, 1, 2] }), x), /not a permutation/);
  throws(() => validateLayerAttrs(plain("LeakyRelu", { alpha: NaN }), x), /alpha "NaN" must be a finite number/);
  throws(() => validateLayerAttrs(plain("Clip", { min: 6, max: 0 }), x), /min 6 is above max 0/);
});

Deno.test("GraphValidator: single assignment, inputs defined before use, unique outputs, sane declared shapes", () => {
  const header = (inputs: ModelHeader["inputs"], outputs = ["b"]): ModelHeader => ({
    name: "g",
    sourceFormat: "onnx",
    inputs,
    outputs: outputs.map((name) => ({ name, dtype: "float32", shape: [] })),
    metadata: {},
  });
  const relu = (name: string, input: string, output: string): Layer => ({
    name,
    op: "Relu",
    attrs: {},
    inputs: [input],
    outputs: [output],
    params: {},
  });
  const ok = new GraphValidator(header([{ name: "x", dtype: "float32", shape: [null, 3] }]));
  ok.add(relu("r1", "x", "a"));
  ok.add(relu("r2", "a", "b"));
  ok.finish();
  throws(() => new GraphValidator(header([{ name: "x", dtype: "float32", shape: [1, -3] }])), /dimension -3/);
  const cyc = new GraphValidator(header([{ name: "x", dtype: "float32", shape: [1] }]));
  throws(() => cyc.add(relu("r1", "b", "a")), /input 'b' is not defined before this layer/);
  const twice = new GraphValidator(header([{ name: "x", dtype: "float32", shape: [1] }]));
  twice.add(relu("r1", "x", "a"));
  throws(() => twice.add(relu("r2", "x", "a")), /output 'a' is already the output of layer 'r1'/);
  throws(() => twice.add(relu("r1", "a", "c")), /layer name is used twice/);
  const dup = new GraphValidator(header([{ name: "x", dtype: "float32", shape: [1] }], ["a", "a"]));
  dup.add(relu("r1", "x", "a"));
  throws(() => dup.finish(), /graph output 'a' is listed twice/);
  // A header completed at the end (ONNX on stdin): inputs are checked then.
  const late = header([]);
  late.pending = true;
  const v = new GraphValidator(late);
  v.add(relu("r1", "x", "b"));
  late.inputs.push({ name: "x", dtype: "float32", shape: [1] });
  late.pending = false;
  v.finish();
});
