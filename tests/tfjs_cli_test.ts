/**
 * The TF.js format through the CLI: tar streams on stdin and stdout, and a bad model's exit code and message.
 */
import { assert, assertEquals } from "./tfjs_assert.ts";
import { ortRun, ROOT, runCli } from "./helpers.ts";
import { nhwcToNchw, randomInput, relErr, tfjsPredict } from "./tfjs_helpers.ts";

const SEQ = `${ROOT}/fixtures/tfjs/seq`;
const SHAPE = [2, 12, 10, 3];

async function tarOf(dir: string): Promise<Uint8Array> {
  const out = await new Deno.Command("tar", { args: ["-cf", "-", "-C", dir, "."], stdout: "piped" }).output();
  return out.stdout;
}

Deno.test("cli tfjs: a tar on stdin converts to ONNX that ONNX Runtime runs like tfjs", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convpress-tfjs-cli-" });
  try {
    const r = await runCli(["convert", "-", "--from", "tfjs", "--to", "onnx", "-o", `${dir}/m.onnx`], await tarOf(SEQ));
    assertEquals(r.code, 0, r.stderr);
    const x = randomInput(SHAPE.reduce((a, b) => a * b, 1), 9);
    const ref = await tfjsPredict(`${SEQ}/model.json`, x, SHAPE);
    const got = await ortRun(`${dir}/m.onnx`, nhwcToNchw(x, SHAPE), [2, 3, 12, 10]);
    assert(relErr(got, ref) < 1e-5, `relative error ${relErr(got, ref)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli tfjs: -o - writes a tar with model.json last that tfjs loads", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convpress-tfjs-cli-" });
  try {
    const r = await runCli([
      "convert",
      SEQ,
      "--to",
      "tfjs",
      "--shard-size",
      "500",
      "--tfjs-kind",
      "graph-model",
      "-o",
      "-",
    ]);
    assertEquals(r.code, 0, r.stderr);
    await Deno.writeFile(`${dir}/m.tar`, r.stdout);
    const list = await new Deno.Command("tar", { args: ["-tf", `${dir}/m.tar`], stdout: "piped" }).output();
    const names = new TextDecoder().decode(list.stdout).trim().split("\n");
    assertEquals(names.at(-1), "model.json");
    assertEquals(names.length, 1 + Math.ceil(3212 / 500));
    await new Deno.Command("tar", { args: ["-xf", `${dir}/m.tar`, "-C", dir] }).output();
    const x = randomInput(SHAPE.reduce((a, b) => a * b, 1), 10);
    const ref = await tfjsPredict(`${SEQ}/model.json`, x, SHAPE);
    const got = await tfjsPredict(`${dir}/model.json`, x, SHAPE);
    assert(relErr(got, ref) < 1e-6, `relative error ${relErr(got, ref)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("cli tfjs: a missing shard exits non-zero naming it, and leaves no output", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convpress-tfjs-cli-" });
  try {
    await Deno.mkdir(`${dir}/in`);
    for await (const e of Deno.readDir(SEQ)) {
      if (e.name !== "group1-shard3of4.bin") await Deno.copyFile(`${SEQ}/${e.name}`, `${dir}/in/${e.name}`);
    }
    const r = await runCli(["convert", `${dir}/in`, "--to", "onnx", "-o", `${dir}/out.onnx`]);
    assert(r.code !== 0, "exit code");
    assert(/group1-shard3of4\.bin/.test(r.stderr), r.stderr);
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assertEquals(left, ["in"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
