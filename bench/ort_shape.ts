/**
 * Runs an original and a compressed ONNX model in ONNX Runtime on one seeded random 1x3x224x224 input; prints the
 * output shapes and the top-1 agreement of the two (one sample: same or different).
 * Usage: deno run -A bench/ort_shape.ts ORIGINAL.onnx COMPRESSED.onnx
 */
import * as ort from "onnxruntime-node";

const x = new Float32Array(3 * 224 * 224);
let s = 1;
for (let i = 0; i < x.length; i++) x[i] = ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
const run = async (path: string) => {
  const m = await ort.InferenceSession.create(path);
  const r = await m.run({ [m.inputNames[0]]: new ort.Tensor("float32", x, [1, 3, 224, 224]) });
  return r[m.outputNames[0]];
};
const a = await run(Deno.args[0]), b = await run(Deno.args[1]);
const top = (d: Float32Array) => d.indexOf(Math.max(...d));
console.log(
  `ONNX Runtime output ${JSON.stringify(b.dims)} (original ${JSON.stringify(a.dims)}), top-1 ` +
    `${top(a.data as Float32Array) === top(b.data as Float32Array) ? "same" : "differs"}`,
);
