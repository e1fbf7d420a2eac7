/**
 * Canonical ops through the TF.js graph-model writer, run by tfjs itself and compared with convpress's evaluator:
 * TopK on every axis (TF's TopKV2 takes the last one only: the writer moves the axis there and back), GatherND with
 * constant and computed indices on a rank-4 (NHWC in TF.js) value, and a Concat with a rank-4 constant operand.
 */
import { writeModel } from "../mod.ts";
import type { Layer, ModelHeader } from "../src/model/types.ts";
import { Tensor } from "../src/model/tensor.ts";
import { LayerExecutor } from "../src/eval/executor.ts";
import { assert, relativeError, removeOnExit } from "./helpers.ts";
import { nhwcToNchw, readTfjsFiles, tfjs } from "./tfjs_helpers.ts";

const shape = [2, 4, 6, 6];
const x = Float32Array.from({ length: 288 }, (_, i) => Math.sin(i * 1.7) * 3 + ((i * 37) % 11) / 10);

const layer = (name: string, op: Layer["op"], attrs: Layer["attrs"], inputs = ["x"], outputs = [name]): Layer => ({
  name,
  op,
  attrs,
  inputs,
  outputs,
  params: {},
});

function model(): { header: ModelHeader; layers: Layer[] } {
  const plane = Tensor.fromFloat32("plane", [2, 1, 6, 6], Float32Array.from({ length: 72 }, (_, i) => i / 7 - 3));
  const layers: Layer[] = [
    layer("top_h", "TopK", { k: 3, axis: 2, largest: true, sorted: true }, ["x"], ["top_h", "top_h_i"]),
    layer("top_n", "TopK", { k: 1, axis: 0, largest: false, sorted: true }, ["x"], ["top_n", "top_n_i"]),
    layer("top_c", "TopK", { k: 2, axis: 1, largest: true, sorted: true }, ["x"], ["top_c", "top_c_i"]),
    layer("gnd_c", "GatherND", { indices: [1, 2, 0, -1, 1, 3], indicesShape: [3, 2] }),
    // Indices the graph computes: the arg max over the channels of image 0, row 0, as (n, c) pairs.
    layer("am", "ArgMax", { axis: 1, keepdims: false }),
    layer("am_row", "Slice", { starts: [0, 0], ends: [1, 1], axes: [0, 1], steps: null }, ["am"]),
    layer("am_col", "Reshape", { shape: [6, 1] }, ["am_row"]),
    {
      name: "idx",
      op: "Concat",
      attrs: { axis: 1, constAt: [0] },
      inputs: ["am_col"],
      outputs: ["idx"],
      params: { const0: Tensor.fromFloat32("zeros", [6, 1], new Float32Array(6)) },
    },
    layer("gnd_act", "GatherND", {}, ["x", "idx"]),
    {
      name: "cat",
      op: "Concat",
      attrs: { axis: 1, constAt: [1] },
      inputs: ["x"],
      outputs: ["cat"],
      params: { const0: plane },
    },
  ];
  const outs = ["top_h", "top_h_i", "top_n", "top_n_i", "top_c", "top_c_i", "gnd_c", "gnd_act", "cat"];
  const header: ModelHeader = {
    name: "ops",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape }],
    outputs: outs.map((name) => ({ name, dtype: "float32", shape: [] })),
    metadata: {},
  };
  return { header, layers };
}

Deno.test("tfjs writer: TopK on any axis, GatherND and Concat with a constant run in tfjs as convpress evaluates them", async () => {
  const { header, layers } = model();
  const names = header.outputs.map((o) => o.name);
  const ex = await LayerExecutor.create({ keep: names });
  const want = new Map<string, Float32Array>();
  try {
    ex.setInput("x", x, shape);
    for (const l of layers) await ex.run(l);
    for (const n of names) want.set(n, (await ex.read(n)).data);
  } finally {
    ex.dispose();
  }
  const dir = await Deno.makeTempDir({ prefix: "tfjs_ops_" });
  removeOnExit(dir);
  await writeModel({ header, layers: ReadableStream.from(layers) }, `${dir}/m`, "tfjs");
  const tf = await tfjs();
  const { handler, graph } = await readTfjsFiles(`${dir}/m/model.json`);
  assert(graph, "written as a graph-model");
  const m = await tf.loadGraphModel(handler);
  const [n, c, h, w] = shape;
  const nhwc = new Float32Array(x.length);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < c; b++) {
      for (let y = 0; y < h; y++) {
        for (let z = 0; z < w; z++) nhwc[((a * h + y) * w + z) * c + b] = x[((a * c + b) * h + y) * w + z];
      }
    }
  }
  const input = tf.tensor(nhwc, [n, h, w, c]);
  let ys = await m.executeAsync(input);
  if (!Array.isArray(ys)) ys = [ys];
  assert(ys.length === names.length, `${ys.length} outputs, want ${names.length}`);
  for (let i = 0; i < names.length; i++) {
    let got: Float32Array = Float32Array.from(await ys[i].data() as Float32Array);
    if (ys[i].shape.length === 4) got = nhwcToNchw(got, ys[i].shape);
    const ref = want.get(names[i])!;
    assert(got.length === ref.length, `${names[i]}: ${got.length} values, the evaluator has ${ref.length}`);
    const e = relativeError(got, ref);
    assert(e < 1e-5, `${names[i]}: relative error ${e.toExponential(2)}`);
  }
  input.dispose();
  for (const y of ys) y.dispose();
});

Deno.test("tfjs writer: a Flatten read by anything but an FC (softmax, an output, through a ReLU) is in canonical order", async () => {
  const s = [2, 3, 4, 5];
  const xs = Float32Array.from({ length: 120 }, (_, i) => Math.cos(i * 0.9) * 2);
  const w = Tensor.fromFloat32("w", [4, 60], Float32Array.from({ length: 240 }, (_, i) => Math.sin(i) / 5));
  const layers: Layer[] = [
    layer("f", "Flatten", { axis: 1 }),
    layer("r", "Relu", {}, ["f"]),
    layer("sm", "Softmax", { axis: 1 }, ["f"]),
    { name: "fc", op: "FC", attrs: {}, inputs: ["r"], outputs: ["fc"], params: { weight: w } },
  ];
  const outs = ["f", "r", "sm", "fc"];
  const header: ModelHeader = {
    name: "flat",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape: s }],
    outputs: outs.map((name) => ({ name, dtype: "float32", shape: [] })),
    metadata: {},
  };
  const ex = await LayerExecutor.create({ keep: outs });
  const want = new Map<string, Float32Array>();
  try {
    ex.setInput("x", xs, s);
    for (const l of layers) await ex.run(l);
    for (const n of outs) want.set(n, (await ex.read(n)).data);
  } finally {
    ex.dispose();
  }
  const tf = await tfjs();
  for (const kind of ["graph-model", "auto"] as const) {
    const dir = await Deno.makeTempDir({ prefix: "tfjs_flat_" });
    removeOnExit(dir);
    await writeModel({ header, layers: ReadableStream.from(layers) }, `${dir}/m`, "tfjs", { tfjsKind: kind } as never);
    const { handler, graph } = await readTfjsFiles(`${dir}/m/model.json`);
    const m = graph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
    const [n, c, h, ww] = s;
    const nhwc = new Float32Array(xs.length);
    for (let a = 0; a < n; a++) {
      for (let b = 0; b < c; b++) {
        for (let y = 0; y < h; y++) {
          for (let z = 0; z < ww; z++) nhwc[((a * h + y) * ww + z) * c + b] = xs[((a * c + b) * h + y) * ww + z];
        }
      }
    }
    const input = tf.tensor(nhwc, [n, h, ww, c]);
    let ys = graph ? await m.executeAsync(input) : m.predict(input);
    if (!Array.isArray(ys)) ys = [ys];
    for (let i = 0; i < outs.length; i++) {
      const got = Float32Array.from(await ys[i].data() as Float32Array);
      const e = relativeError(got, want.get(outs[i])!);
      assert(e < 1e-5, `${kind} ${outs[i]}: relative error ${e.toExponential(2)}`);
      ys[i].dispose();
    }
    input.dispose();
  }
});
