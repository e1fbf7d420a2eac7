/**
 * Random damage to any input never crashes the converter: every failure is a ConvpressError (a clear message, a
 * stable code, a non-zero exit), never a TypeError or RangeError with a stack. ONNX has its own in
 * formats/onnx/onnx_test.ts.
 */
import { assert, rng, ROOT } from "./helpers.ts";
import { ConvpressError } from "../src/errors.ts";
import { convert } from "../src/app/convert.ts";

async function damage(
  label: string,
  original: Uint8Array,
  write: (bytes: Uint8Array) => Promise<string>,
  options: Parameters<typeof convert>[2],
  json = false,
): Promise<void> {
  const r = rng(label.length * 7919);
  const out = `${await Deno.makeTempDir()}/out.onnx`;
  let refused = 0;
  for (let i = 0; i < 300; i++) {
    const b = original.slice();
    for (let f = 0, n = 1 + Math.floor(r() * 3); f < n; f++) {
      const at = Math.floor(r() * Math.min(b.length, 4096));
      b[at] = json ? '0123456789,:[]{}"-ae '.charCodeAt(Math.floor(r() * 21)) : Math.floor(r() * 256);
    }
    const input = await write(b);
    try {
      await convert(input, out, { ...options, to: "onnx" });
    } catch (e) {
      refused++;
      assert(e instanceof ConvpressError, `${label} case ${i}: ${(e as Error).stack}`);
    }
  }
  assert(refused > 30, `${label}: only ${refused} of 300 damaged inputs were refused`);
}

Deno.test("damaged Caffe models (current and V1) fail with ConvpressErrors only", async () => {
  const dir = await Deno.makeTempDir();
  for (const name of ["tiny_v2", "tiny_v1"]) {
    const bytes = await Deno.readFile(`${ROOT}/fixtures/caffe/${name}.caffemodel`);
    await damage(name, bytes, async (b) => {
      await Deno.writeFile(`${dir}/m.caffemodel`, b);
      return `${dir}/m.caffemodel`;
    }, { format: "caffe" });
  }
});

Deno.test("damaged TF.js model.json fails with ConvpressErrors only", async () => {
  const dir = await Deno.makeTempDir();
  const src = `${ROOT}/fixtures/tfjs/func`;
  for (const e of Deno.readDirSync(src)) {
    if (e.name !== "model.json") await Deno.copyFile(`${src}/${e.name}`, `${dir}/${e.name}`);
  }
  const json = await Deno.readFile(`${src}/model.json`);
  await damage(
    "tfjs",
    json,
    async (b) => {
      await Deno.writeFile(`${dir}/model.json`, b);
      return `${dir}/model.json`;
    },
    {},
    true,
  );
});

Deno.test("damaged .cvp files fail with ConvpressErrors only, also when decoded to ONNX", async () => {
  const dir = await Deno.makeTempDir();
  const bytes = await Deno.readFile(`${ROOT}/formats/cvp/testdata/sample.cvp`);
  await damage("cvp", bytes, async (b) => {
    await Deno.writeFile(`${dir}/m.cvp`, b);
    return `${dir}/m.cvp`;
  }, { format: "cvp" });
});
