/**
 * Checks convpress's ONNX Runtime engine (group by group, weights streamed) against ONNX Runtime on the whole model:
 * the same .npy batch through both, relative error of the outputs and top-1 agreement.
 * Usage: deno run -A bench/engine_vs_ort.ts MODEL.onnx INPUTS.npy [CONVPRESS_MODEL [PROTOTXT]]
 * (CONVPRESS_MODEL: the model convpress reads, for example the caffemodel MODEL.onnx was converted from.)
 */
import * as ort from "onnxruntime-node";
import { openModel } from "../src/app/convert.ts";
import { decodeNpy } from "../src/data/npy.ts";
import { OrtEngine } from "../src/eval/ort_engine.ts";
import { runModel } from "../src/eval/run_model.ts";
import { scanStructure } from "../src/eval/structure.ts";

const [onnxPath, npyPath, cpPath = Deno.args[0], prototxt] = Deno.args;
const x = decodeNpy(await Deno.readFile(npyPath), npyPath);
const s = await ort.InferenceSession.create(onnxPath);
const want = (await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x.data, x.shape) }))[s.outputNames[0]]
  .data as Float32Array;
await s.release();
const { engine } = await OrtEngine.create();
const structure = await scanStructure(await openModel(cpPath, { prototxt }));
const got = await runModel(await openModel(cpPath, { prototxt }), x.data, x.shape, { engine, structure });
let num = 0, den = 0, agree = 0;
const n = x.shape[0], k = want.length / n;
const argmax = (a: Float32Array, i: number) => {
  let best = 0;
  for (let j = 1; j < k; j++) if (a[i * k + j] > a[i * k + best]) best = j;
  return best;
};
for (let i = 0; i < want.length; i++) {
  num += (got[i] - want[i]) ** 2;
  den += want[i] ** 2;
}
for (let i = 0; i < n; i++) if (argmax(got, i) === argmax(want, i)) agree++;
console.log(
  `engine vs ONNX Runtime on the whole model: relative error ${Math.sqrt(num / den).toExponential(2)}, ` +
    `top-1 agreement ${agree}/${n}`,
);
