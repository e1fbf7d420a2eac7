/**
 * Runs two ONNX models in ONNX Runtime on the same input and prints the relative error between their outputs.
 * Usage: deno run -A bench/compare_onnx.ts A.onnx B.onnx INPUT.f32 N,C,H,W
 */
import * as ort from "onnxruntime-node";

const [a, b, inPath, shapeArg] = Deno.args;
const shape = shapeArg.split(",").map(Number);
const bytes = await Deno.readFile(inPath);
const x = new ort.Tensor("float32", new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), shape);
async function run(path: string): Promise<Float32Array> {
  const s = await ort.InferenceSession.create(path);
  const r = await s.run({ [s.inputNames[0]]: x });
  return r[s.outputNames[0]].data as Float32Array;
}
const ya = await run(a), yb = await run(b);
let num = 0, den = 0;
for (let i = 0; i < ya.length; i++) {
  num += (ya[i] - yb[i]) ** 2;
  den += ya[i] ** 2;
}
console.log(`ONNX Runtime ${b} vs ${a}: relative error ${Math.sqrt(num / den).toExponential(2)}`);
