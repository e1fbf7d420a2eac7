/**
 * `deno task demo [MODEL [--prototxt P]]`: the main job end to end. Without MODEL it generates a VGG16
 * (138,357,544 parameters, 553 MB) with seeded weights through convpress's own ONNX writer; then it compresses it by
 * the thesis recipe (GAP -> pruning with the order-deciding scheme -> truncated SVD -> 16-bit-centre clustering)
 * into a `.cvp`, prints the per-layer report and the ratio, decodes the `.cvp` back to ONNX, and runs the decoded
 * model in ONNX Runtime.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { convert } from "../src/app/convert.ts";
import { fmtBytes } from "../src/app/inspect.ts";
import { vgg16Stream } from "../src/model/vgg16.ts";
import { writeOnnx } from "../formats/onnx/writer.ts";
import { compress } from "../src/compress/compress.ts";
import { loadRecipe } from "../src/compress/recipe.ts";
import { formatReport } from "../src/compress/report.ts";
import { terminalProgress } from "../src/progress.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  options: { prototxt: { type: "string" }, recipe: { type: "string" }, keep: { type: "boolean" } },
  allowPositionals: true,
});
const root = new URL("..", import.meta.url).pathname;
const work = await Deno.makeTempDir({ prefix: "convpress-demo-" });
const secs = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
try {
  let input = positionals[0];
  if (!input) {
    input = `${work}/vgg16.onnx`;
    const t = performance.now();
    await writeOnnx(vgg16Stream(1), input);
    console.log(
      `1. generated VGG16 with seeded weights: ${input} (${fmtBytes((await Deno.stat(input)).size)}, ${secs(t)})`,
    );
  }
  const recipe = await loadRecipe(values.recipe ?? `${root}recipes/vgg16-thesis.json`);
  const cvp = `${work}/model.cvp`;
  const progress = terminalProgress("compress");
  const report = await compress(input, cvp, recipe, { prototxt: values.prototxt, progress });
  progress.end();
  console.log(`2. compressed by recipe ${recipe.name}:\n`);
  console.log(formatReport(report));
  const decoded = `${work}/decoded.onnx`;
  const t = performance.now();
  await convert(cvp, decoded, { to: "onnx" });
  console.log(`\n3. decoded ${cvp} to ${decoded} (${fmtBytes((await Deno.stat(decoded)).size)}, ${secs(t)})`);

  // 4. Run the decoded model in ONNX Runtime (loaded only here: conversion never imports it).
  const ort = await import("onnxruntime-node");
  const run = async (path: string, x: Float32Array, shape: number[]) => {
    const s = await ort.InferenceSession.create(path);
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
    const out = r[s.outputNames[0]].data as Float32Array;
    await s.release();
    return out;
  };
  const s0 = await ort.InferenceSession.create(decoded);
  const dims = (s0.inputMetadata?.[0] as { shape?: (number | string)[] } | undefined)?.shape;
  await s0.release();
  const shape = (dims ?? [1, 3, 224, 224]).map((d) => (typeof d === "number" && d > 0 ? d : 1));
  let seed = 7;
  const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return (seed / 2 ** 32) * 2 - 1;
  });
  const after = await run(decoded, x, shape);
  const top = (y: Float32Array) => Array.from(y.keys()).sort((a, b) => y[b] - y[a]).slice(0, 5);
  console.log(
    `4. ONNX Runtime runs the decoded model: output ${after.length} values, top-5 classes ${top(after).join(", ")}`,
  );
  console.log("   (the original is not run: ONNX Runtime needs about 1.2 GB for it, and seeded weights carry no");
  console.log("   meaning to compare; accuracy on real data: README, LeNet on MNIST)");
  console.log(
    `\nratio ${report.ratio.toFixed(1)}x: ${report.totals.paramsBefore.toLocaleString("en-US")} float32 parameters (${
      fmtBytes(report.totals.paramsBefore * 4)
    }) -> ${fmtBytes(report.fileBytes)} .cvp`,
  );
} finally {
  if (!values.keep) await Deno.remove(work, { recursive: true });
  else console.log(`kept ${work}`);
}
