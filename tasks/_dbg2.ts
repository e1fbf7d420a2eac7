import * as ort from "onnxruntime-node";
import { openModel } from "../mod.ts";
import { runModelDetailed } from "../src/eval/run_model.ts";
import { relativeError } from "../tests/helpers.ts";
const src = "/tmp/convpress-zoo-cache/ocr/ch_PP-OCRv4_det_infer_1x3x64x64.onnx";
const shape = [1, 3, 64, 64];
const { randomInput } = await import("../tests/tfjs_helpers.ts"); const x = randomInput(3*64*64, 7, -1, 1);
const s = await ort.InferenceSession.create("/tmp/h10_det_all.onnx");
const ref = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
let n = 0;
const m = await openModel(src);
await runModelDetailed(m, x, shape, {
  async onLayer(name, out) {
    const r = ref[out.name];
    if (!r) return;
    const e = relativeError(await out.data(), r.data as Float32Array);
    if (n++ > 318) console.log(name, out.name, e, out.shape, r.dims);
  },
});
const r = ref["sigmoid_0.tmp_0"].data as Float32Array;
console.log("max", Math.max(...r), "min", Math.min(...r));
