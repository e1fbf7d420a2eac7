/**
 * The evaluator against ONNX Runtime (the reference client) on small models made by the reference `onnx` package
 * (fixtures/eval/make_onnx_ops.py): every graph output, intermediate ones included, must match within 1e-4
 * relative error.
 */
import * as ort from "onnxruntime-node";
import { openModel } from "../src/app/convert.ts";
import { runModelDetailed } from "../src/eval/run_model.ts";
import { scanStructure } from "../src/eval/structure.ts";
import { relativeError } from "../src/eval/metrics.ts";
import { PYTHON, ROOT } from "./helpers.ts";

let dir: Promise<string> | undefined;
function fixtures(): Promise<string> {
  dir ??= (async () => {
    const d = await Deno.makeTempDir({ prefix: "eval_onnx_" });
    const out = await new Deno.Command(PYTHON, { args: [`${ROOT}/fixtures/eval/make_onnx_ops.py`, d] }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
    return d;
  })();
  return dir;
}

async function compare(name: string, backend: "wasm" | "cpu") {
  const d = await fixtures();
  const path = `${d}/${name}.onnx`;
  const input = new Float32Array((await Deno.readFile(`${d}/${name}.in.f32`)).buffer);
  const shape = [2, 4, 11, 11];
  const session = await ort.InferenceSession.create(path);
  const ref = await session.run({ x: new ort.Tensor("float32", input, shape) });
  const ours = new Map<string, Float32Array>();
  const structure = await scanStructure(await openModel(path));
  const res = await runModelDetailed(await openModel(path), input, shape, {
    structure,
    backend,
    async onLayer(_layer, out) {
      if (session.outputNames.includes(out.name)) ours.set(out.name, await out.data());
    },
  });
  ours.set(res.name, res.data);
  for (const o of session.outputNames) {
    const want = ref[o].data as Float32Array;
    const got = ours.get(o);
    if (!got) throw new Error(`${name}: no value '${o}' from the evaluator`);
    if (got.length !== want.length) throw new Error(`${name}/${o}: ${got.length} values, ORT has ${want.length}`);
    const e = relativeError(got, want);
    if (Deno.env.get("EVAL_VERBOSE")) console.log(`${name}/${o}: ${e.toExponential(2)}`);
    if (!(e < 1e-4)) throw new Error(`${name}/${o} (${backend}): relative error ${e.toExponential(2)}`);
  }
}

for (const backend of ["wasm", "cpu"] as const) {
  for (const name of ["spatial", "channels"]) {
    Deno.test(`eval matches ONNX Runtime: ${name} (${backend})`, async () => {
      // The backend is chosen once per process; cpu runs only when CONVPRESS_TF_BACKEND=cpu.
      const want = Deno.env.get("CONVPRESS_TF_BACKEND") === "cpu" ? "cpu" : "wasm";
      if (backend !== want) return;
      await compare(name, backend);
    });
  }
}
