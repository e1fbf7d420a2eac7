/**
 * Loads an ONNX model in ONNX Runtime, runs it on a float32 input file, writes its first output as float32 and
 * prints this process's peak resident memory (VmHWM). Usage:
 *   deno run -A bench/ort_peak.ts MODEL.onnx INPUT.f32 N,C,H,W OUT.f32 [all|disabled] [arena|noarena]
 * The optional arguments are ONNX Runtime's graph optimization level and whether its CPU memory arena is on (the
 * defaults, all and arena, are ONNX Runtime's own).
 */
import * as ort from "onnxruntime-node";

const [model, inPath, shapeArg, outPath, level = "all", arena = "arena"] = Deno.args;
const bytes = await Deno.readFile(inPath);
const shape = shapeArg.split(",").map(Number);
const t0 = performance.now();
const s = await ort.InferenceSession.create(model, {
  graphOptimizationLevel: level as "all" | "disabled",
  enableCpuMemArena: arena !== "noarena",
});
const t1 = performance.now();
const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", new Float32Array(bytes.buffer), shape) });
const t2 = performance.now();
const y = r[s.outputNames[0]].data as Float32Array;
await Deno.writeFile(outPath, new Uint8Array(y.buffer, y.byteOffset, y.byteLength));
const hwm = /VmHWM:\s+(\d+) kB/.exec(await Deno.readTextFile("/proc/self/status"))?.[1];
console.log(
  `${model} (optimization ${level}, ${arena}): load ${((t1 - t0) / 1000).toFixed(2)} s, run ${
    ((t2 - t1) / 1000).toFixed(2)
  } s, peak RSS ${(Number(hwm) / 1024).toFixed(0)} MB`,
);
