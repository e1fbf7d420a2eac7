/**
 * Runs a `.cvp` in the demo page (headless Chromium) on one image and compares the page's output with ONNX Runtime on
 * the float decode; prints the load and run times the page measured.
 *
 * Usage: deno run -A bench/browser_run.ts MODEL.cvp DECODED.onnx IMAGE [--backend wasm|webgl|cpu] [--preprocess caffe]
 * (MODEL.cvp and IMAGE must sit in one folder, which is served as /models/.)
 *
 * @module
 */
import { parseArgs } from "node:util";
import { serveDemo } from "../web/serve.ts";
import { chromiumMissing, launchChromium } from "../web/chromium.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { backend: { type: "string", default: "wasm" }, preprocess: { type: "string", default: "auto" } },
});
const [cvp, onnx, image] = positionals;
if (!cvp || !onnx || !image) {
  console.error("Usage: deno run -A bench/browser_run.ts MODEL.cvp DECODED.onnx IMAGE [--backend B] [--preprocess P]");
  Deno.exit(2);
}
const missing = chromiumMissing();
if (missing) {
  console.error(missing);
  Deno.exit(1);
}
const abs = await Deno.realPath(cvp);
const dir = abs.slice(0, abs.lastIndexOf("/"));
const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);

interface Demo {
  cvpDemo: {
    state: string;
    error?: string;
    loadMs: number;
    result: { input: number[]; inputShape: number[]; output: number[]; top5: { index: number }[]; ms: number };
  };
}

/** The first output of an ONNX model in ONNX Runtime. */
async function ortRun(model: string, input: Float32Array, shape: number[]): Promise<Float32Array> {
  const ort = await import("onnxruntime-node");
  const session = await ort.InferenceSession.create(model);
  const res = await session.run({ [session.inputNames[0]]: new ort.Tensor("float32", input, shape) });
  const out = Float32Array.from(res[session.outputNames[0]].data as Float32Array);
  await session.release();
  return out;
}

const stop = new AbortController();
const server = await serveDemo({ port: 0, models: dir, signal: stop.signal });
const chromium = await launchChromium();
try {
  const page = await chromium.browser.newPage();
  const t0 = performance.now();
  await page.goto(
    `http://127.0.0.1:${server.addr.port}/?model=/models/${name(cvp)}&image=/models/${
      name(image)
    }&backend=${values.backend}&preprocess=${values.preprocess}`,
  );
  await page.waitForFunction(
    () => ["done", "error"].includes((globalThis as unknown as Demo).cvpDemo.state),
    { timeout: 300_000, polling: 500 },
  );
  const wall = performance.now() - t0;
  const s = await page.evaluate(() => {
    const d = (globalThis as unknown as Demo).cvpDemo;
    return { state: d.state, error: d.error, loadMs: d.loadMs, result: d.result };
  });
  if (s.state !== "done") throw new Error(`the page failed: ${s.error}`);
  const want = await ortRun(onnx, Float32Array.from(s.result.input), s.result.inputShape);
  let max = 0;
  for (let i = 0; i < want.length; i++) max = Math.max(max, Math.abs(s.result.output[i] - want[i]));
  const top = Array.from(want.keys()).sort((a, b) => want[b] - want[a]).slice(0, 5);
  console.log(
    `${name(cvp)} on ${name(image)}, ${values.backend}: load ${s.loadMs.toFixed(0)} ms, run ${
      s.result.ms.toFixed(0)
    } ms (page open to top-5: ${(wall / 1000).toFixed(1)} s); max |page - ONNX Runtime| ${
      max.toExponential(2)
    } over ${want.length} outputs; top-5 page ${s.result.top5.map((t) => t.index).join(",")}, ONNX Runtime ${
      top.join(",")
    }`,
  );
} finally {
  await chromium.close();
  stop.abort();
  await server.finished;
}
