/**
 * The ONNX Runtime engine against ONNX Runtime on the whole converted model: SqueezeNet (fire modules: branches and
 * concatenations) and LeNet (an FC over a rank-4 input), with groups, FC row blocks and batch slices forced small so
 * every path runs, and again with the sessions cached from the first batch.
 */
import { openModel } from "../app/convert.ts";
import { OrtEngine } from "./ort_engine.ts";
import { runModel } from "./run_model.ts";
import { scanStructure } from "./structure.ts";
import { assert, ortRun, relativeError, removeOnExit, rng, runCli, SHARED } from "../../tests/helpers.ts";

const SQ = `${SHARED}/fixtures/caffe/squeezenet_dc`;
const LENET = `${SHARED}/fixtures/caffe/lenet`;
const have = async (p: string) => await Deno.stat(p).then(() => true, () => false);
const sqMissing = !(await have(`${SQ}/decompressed_SqueezeNet.caffemodel`));
const lenetMissing = !(await have(LENET));

async function toOnnx(model: string, prototxt: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "convpress-ort-engine-" });
  removeOnExit(dir);
  const out = `${dir}/m.onnx`;
  const r = await runCli(["convert", model, "--prototxt", prototxt, "-o", out]);
  assert(r.code === 0, r.stderr);
  return out;
}

function randomInput(n: number, shape: number[], seed: number, scale: number): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * scale;
  return x;
}

async function check(model: string, prototxt: string, dims: number[], scale: number, options = {}) {
  const onnx = await toOnnx(model, prototxt);
  const shape = [3, ...dims];
  const x = randomInput(3, dims, 7, scale);
  const want = await ortRun(onnx, x, shape);
  const { engine } = await OrtEngine.create(options);
  assert(engine, "onnxruntime-node loads");
  try {
    const structure = await scanStructure(await openModel(model, { prototxt }));
    const first = await runModel(await openModel(model, { prototxt }), x, shape, { engine, structure });
    const err = relativeError(first, want);
    assert(err < 1e-5, `engine vs ONNX Runtime on the whole model: relative error ${err}`);
    // The second batch runs on the sessions the first one cached (if any).
    const again = await runModel(await openModel(model, { prototxt }), x, shape, { engine, structure });
    assert(relativeError(again, want) < 1e-5, "second run");
    // Without a structure every value is kept to the end: same output.
    const noStructure = await engine.run(await openModel(model, { prototxt }), x, shape);
    assert(relativeError(noStructure.data, want) < 1e-5, "run without a structure");
  } finally {
    await engine.dispose();
  }
}

Deno.test({
  name: "ORT engine: SqueezeNet in small groups and batch slices equals ONNX Runtime on the whole model",
  ignore: sqMissing,
  fn: () =>
    check(`${SQ}/decompressed_SqueezeNet.caffemodel`, `${SQ}/SqueezeNet_deploy.prototxt`, [3, 227, 227], 200, {
      groupBytes: 512 << 10,
      activationBytes: 1 << 20,
      cacheBytes: 1 << 20,
    }),
});

Deno.test({
  name: "ORT engine: LeNet with its FCs in row blocks equals ONNX Runtime on the whole model",
  ignore: lenetMissing,
  fn: () =>
    check(`${LENET}/lenet_iter_10000.caffemodel`, `${LENET}/mnist_deploy.prototxt`, [1, 28, 28], 1, {
      groupBytes: 64 << 10,
      fcBlockBytes: 32 << 10,
      cacheBytes: 0,
    }),
});

Deno.test({
  name: "ORT engine: defaults (one cached group for SqueezeNet)",
  ignore: sqMissing,
  fn: () => check(`${SQ}/decompressed_SqueezeNet.caffemodel`, `${SQ}/SqueezeNet_deploy.prototxt`, [3, 227, 227], 200),
});
