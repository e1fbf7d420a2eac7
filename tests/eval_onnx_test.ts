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

/** The backend this process runs: tfjs picks one per process (`CONVPRESS_TF_BACKEND=cpu`, else wasm). */
const processBackend = Deno.env.get("CONVPRESS_TF_BACKEND") === "cpu" ? "cpu" : "wasm";

for (const backend of ["wasm", "cpu"] as const) {
  for (const name of ["spatial", "channels"]) {
    const title = `eval matches ONNX Runtime: ${name} (${backend})`;
    Deno.test(title, async () => {
      if (backend === processBackend) return await compare(name, backend);
      // The other backend runs this very test in a child process that selects it.
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["test", "--allow-all", "--filter", title, new URL(import.meta.url).pathname],
        env: { CONVPRESS_TF_BACKEND: backend, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      if (!out.success) throw new Error(`${title} failed in a child process:\n${text}`);
      if (!/\| 1 passed \| 0 failed/.test(text)) throw new Error(`${title}: the child process ran no test:\n${text}`);
    });
  }
}
