/**
 * Runs an ONNX model in ONNX Runtime on a float32 input file and writes its first output as float32.
 * Usage: deno run -A bench/ort_run.ts MODEL.onnx INPUT.f32 N,C,H,W OUT.f32
 */
import * as ort from "onnxruntime-node";

const [model, inPath, shapeArg, outPath] = Deno.args;
const bytes = await Deno.readFile(inPath);
const shape = shapeArg.split(",").map(Number);
const s = await ort.InferenceSession.create(model);
const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", new Float32Array(bytes.buffer), shape) });
const y = r[s.outputNames[0]].data as Float32Array;
await Deno.writeFile(outPath, new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
console.log(`ONNX Runtime ran ${model}: ${y.length} outputs written to ${outPath}`);
