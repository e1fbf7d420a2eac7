/**
 * Every op of the registry against ONNX Runtime: one small model per op family, made by the reference `onnx`
 * package (fixtures/eval/make_onnx_registry_ops.py). Each model is read into canonical layers (no pass-through
 * allowed), evaluated by convpress's kernels, and written back to ONNX from the canonical layers alone (the source
 * nodes dropped); ONNX Runtime runs the original and the rewritten file. Every graph output must agree within 1e-4
 * relative error. Ops no ONNX file maps to (Rsqrt, Swish, Scale) are built as canonical layers and checked the same
 * way through their ONNX export. Together the cases must cover every registry op.
 */
import * as ort from "onnxruntime-node";
import { openModel, writeModel } from "../mod.ts";
import { collectLayers, type Layer, type ModelStream } from "../src/model/types.ts";
import { Tensor } from "../src/model/tensor.ts";
import { OPS } from "../src/ops/registry.ts";
import { LayerExecutor } from "../src/eval/executor.ts";
import { assert, PYTHON, relativeError, removeOnExit, ROOT, testNeeding } from "./helpers.ts";

interface Case {
  name: string;
  ops: string[];
  shape: number[];
}

let made: Promise<{ dir: string; cases: Case[] }> | undefined;
function fixtures(): Promise<{ dir: string; cases: Case[] }> {
  made ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "ops_onnx_" });
    removeOnExit(dir);
    const out = await new Deno.Command(PYTHON, { args: [`${ROOT}/fixtures/eval/make_onnx_registry_ops.py`, dir] })
      .output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return { dir, cases: JSON.parse(await Deno.readTextFile(`${dir}/index.json`)) };
  })();
  return made;
}

async function ortAll(model: string, x: Float32Array, shape: number[]): Promise<Map<string, Float32Array>> {
  const s = await ort.InferenceSession.create(model);
  const res = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
  const out = new Map<string, Float32Array>();
  for (const o of s.outputNames) out.set(o, Float32Array.from(res[o].data as ArrayLike<number>, Number));
  await s.release?.();
  return out;
}

/** Runs canonical layers in convpress's evaluator; returns the named values (NCHW float32). */
async function evalAll(layers: Layer[], input: string, x: Float32Array, shape: number[], names: string[]) {
  const ex = await LayerExecutor.create({ keep: names });
  try {
    ex.setInput(input, x, shape);
    for (const l of layers) await ex.run(l);
    const out = new Map<string, Float32Array>();
    for (const n of names) if (ex.has(n)) out.set(n, (await ex.read(n)).data);
    return out;
  } finally {
    ex.dispose();
  }
}

function compare(what: string, got: Map<string, Float32Array>, want: Map<string, Float32Array>): void {
  for (const [name, w] of want) {
    const g = got.get(name);
    assert(g, `${what}: no value '${name}'`);
    assert(g.length === w.length, `${what}/${name}: ${g.length} values, ONNX Runtime has ${w.length}`);
    const e = relativeError(g, w);
    assert(e < 1e-4, `${what}/${name}: relative error ${e.toExponential(2)}`);
  }
}

/** The layers as a stream without their ONNX origins, so the writer must export every canonical layer itself. */
function canonicalOnly(header: ModelStream["header"], layers: Layer[]): ModelStream {
  return {
    header,
    // Pass-through layers keep their ONNX node: only canonical layers must be written from the registry.
    layers: ReadableStream.from(
      layers.map(({ origin, ...l }) => (l.op === "Passthrough" ? { ...l, origin } : l) as Layer),
    ),
  };
}

const seen = new Set<string>();

/** The case names, from the fixture script's `save("NAME", ...)` calls. */
const list = [
  ...Deno.readTextFileSync(`${ROOT}/fixtures/eval/make_onnx_registry_ops.py`).matchAll(/save\("(\w+)"/g),
].map((m) => m[1]);

for (const name of list.filter((n) => n !== "softmax_opset11")) {
  testNeeding(`registry ops against ONNX Runtime: ${name}`, { python: ["onnx"] }, async () => {
    const { dir, cases } = await fixtures();
    const c = cases.find((k) => k.name === name)!;
    const path = `${dir}/${name}.onnx`;
    const b = await Deno.readFile(`${dir}/${name}.in.f32`);
    const x = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
    const want = await ortAll(path, x, c.shape);
    const model = await openModel(path);
    const layers = await collectLayers(model.layers);
    const pass = layers.filter((l) => l.op === "Passthrough").map((l) => `${l.name} (${l.attrs.onnxOp})`);
    assert(pass.length === 0, `${name}: not mapped to canonical ops: ${pass.join(", ")}`);
    for (const l of layers) seen.add(l.op);
    compare(`${name} eval`, await evalAll(layers, model.header.inputs[0].name, x, c.shape, [...want.keys()]), want);
    const out = `${dir}/${name}.rewritten.onnx`;
    await writeModel(canonicalOnly(model.header, layers), out, "onnx");
    model.close?.();
    compare(`${name} rewritten`, await ortAll(out, x, c.shape), want);
  });
}

testNeeding("registry ops against ONNX Runtime: opset 11 Softmax is canonical only on the last axis", {
  python: ["onnx"],
}, async () => {
  const { dir, cases } = await fixtures();
  const c = cases.find((k) => k.name === "softmax_opset11")!;
  const path = `${dir}/softmax_opset11.onnx`;
  const b = await Deno.readFile(`${dir}/softmax_opset11.in.f32`);
  const x = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  const want = await ortAll(path, x, c.shape);
  const model = await openModel(path);
  const layers = await collectLayers(model.layers);
  const byOut = (o: string) => layers.find((l) => l.outputs.includes(o))!;
  assert(byOut("sm_last").op === "Softmax", `sm_last read as ${byOut("sm_last").op}`);
  // Flattening at axis 1 normalizes C,H,W together: no canonical op computes that, so it stays ONNX's node.
  assert(byOut("sm_flat").op === "Passthrough", `sm_flat read as ${byOut("sm_flat").op}`);
  const last = new Map([["sm_last", want.get("sm_last")!]]);
  compare(
    "softmax_opset11 eval",
    await evalAll([byOut("sm_last")], model.header.inputs[0].name, x, c.shape, ["sm_last"]),
    last,
  );
  const out = `${dir}/softmax_opset11.rewritten.onnx`;
  await writeModel(canonicalOnly(model.header, layers), out, "onnx");
  model.close?.();
  compare("softmax_opset11 rewritten", await ortAll(out, x, c.shape), want);
});

Deno.test("registry ops against ONNX Runtime: canonical-only ops through their ONNX export", async () => {
  const shape = [2, 3, 4, 5];
  const x = Float32Array.from({ length: 120 }, (_, i) => 0.1 + ((i * 37) % 17) / 7);
  const header = {
    name: "hand",
    sourceFormat: "onnx" as const,
    inputs: [{ name: "x", dtype: "float32", shape }],
    outputs: ["rsqrt", "swish", "scale", "floordiv", "floormod", "floormod_c", "sqdiff"].map((n) => ({
      name: n,
      dtype: "float32",
      shape,
    })),
    metadata: {},
  };
  const layer = (name: string, op: Layer["op"], params: Layer["params"] = {}, inputs = ["x"]): Layer => ({
    name,
    op,
    attrs: {},
    inputs,
    outputs: [name],
    params,
  });
  const layers = [
    layer("rsqrt", "Rsqrt"),
    layer("swish", "Swish"),
    layer("scale", "Scale", {
      scale: Tensor.fromFloat32("s", [3], Float32Array.of(0.5, -1, 2)),
      bias: Tensor.fromFloat32("b", [3], Float32Array.of(0.1, 0.2, 0.3)),
    }),
    // TF's floor division and modulo, on values of both signs (x - 1.2 has negatives) and a negative divisor.
    layer("xm", "Sub", { const: Tensor.fromFloat32("c12", [], Float32Array.of(1.2)) }),
    layer("floordiv", "FloorDiv", {}, ["xm", "x"]),
    layer("floormod", "FloorMod", {}, ["xm", "x"]),
    layer("floormod_c", "FloorMod", { const: Tensor.fromFloat32("cm", [3, 1, 1], Float32Array.of(0.7, -0.9, 2)) }, [
      "xm",
    ]),
    layer("sqdiff", "SquaredDifference", {}, ["xm", "x"]),
  ];
  for (const l of layers) seen.add(l.op);
  const dir = await Deno.makeTempDir({ prefix: "ops_hand_" });
  removeOnExit(dir);
  await writeModel({ header, layers: ReadableStream.from(layers) }, `${dir}/hand.onnx`, "onnx");
  const want = await ortAll(`${dir}/hand.onnx`, x, shape);
  compare("hand eval", await evalAll(layers, "x", x, shape, [...want.keys()]), want);
});

testNeeding("registry ops against ONNX Runtime: every registry op is covered", { python: ["onnx"] }, async () => {
  // Ops the older eval tests cover against ONNX Runtime and OpenCV (tests/eval_onnx_test.ts, tests/eval_caffe_test.ts).
  for (const op of ["Conv", "FC", "MaxPool", "AvgPool", "GlobalMaxPool", "BatchNorm", "LRN", "Dropout", "Flatten"]) {
    seen.add(op);
  }
  const { cases } = await fixtures();
  assert(cases.length === list.length, "every fixture has a test");
  const missing = Object.keys(OPS).filter((op) => !seen.has(op));
  assert(missing.length === 0, `registry ops with no test against ONNX Runtime: ${missing.join(", ")}`);
});
