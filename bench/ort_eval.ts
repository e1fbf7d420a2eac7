/**
 * The peer of `convpress eval`: ONNX Runtime on the whole model, as a user would run it, on the same preprocessed
 * inputs (a .npy of N,C,H,W float32) in the same batches; prints top-1/top-5 when labels are given.
 * Usage: deno run -A bench/ort_eval.ts MODEL.onnx INPUTS.npy BATCH [LABELS.txt (one label per line)]
 */
import * as ort from "onnxruntime-node";
import { decodeNpy } from "../src/data/npy.ts";

const [model, npyPath, batchArg, labelsPath] = Deno.args;
const x = decodeNpy(await Deno.readFile(npyPath), npyPath);
const labels = labelsPath ? (await Deno.readTextFile(labelsPath)).trim().split(/\s+/).map(Number) : undefined;
const [n, ...dims] = x.shape;
const per = dims.reduce((a, b) => a * b, 1);
const batch = Number(batchArg);
const s = await ort.InferenceSession.create(model);
let top1 = 0, top5 = 0;
for (let b0 = 0; b0 < n; b0 += batch) {
  const k = Math.min(batch, n - b0);
  const t = new ort.Tensor("float32", x.data.subarray(b0 * per, (b0 + k) * per), [k, ...dims]);
  const y = (await s.run({ [s.inputNames[0]]: t }))[s.outputNames[0]].data as Float32Array;
  const classes = y.length / k;
  for (let i = 0; i < k && labels; i++) {
    const row = Array.from(y.subarray(i * classes, (i + 1) * classes));
    const order = row.map((v, j) => [v, j]).sort((p, q) => q[0] - p[0]).map((p) => p[1]);
    if (order[0] === labels[b0 + i]) top1++;
    if (order.slice(0, 5).includes(labels[b0 + i])) top5++;
  }
}
console.log(JSON.stringify({ count: n, ...(labels ? { top1: top1 / n, top5: top5 / n } : {}) }));
