import { assert, assertEquals } from "../tests/helpers.ts";
import { checkLayers, checkSources, importsOf, layerOf } from "./check_layers.ts";

const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

Deno.test("layers: the repository's imports run one way", async () => {
  const bad = await checkLayers(root);
  assertEquals(bad.map((v) => v.message), []);
});

Deno.test("layers: an upward import from core to a format fails", () => {
  const files = new Map([
    ["src/model/types.ts", 'import { readOnnx } from "../../formats/onnx/reader.ts";\n'],
    ["formats/onnx/reader.ts", 'import type { Layer } from "../../src/model/types.ts";\n'],
  ]);
  const bad = checkSources(files);
  assertEquals(bad.length, 1);
  assertEquals(bad[0].file, "src/model/types.ts");
  assertEquals(bad[0].target, "formats/onnx/reader.ts");
  assert(bad[0].message.includes("a layer above it"), bad[0].message);
});

Deno.test("layers: a format importing another format, a dynamic import up, and an unplaced file fail", () => {
  const files = new Map([
    ["formats/caffe/writer.ts", 'export { x } from "../onnx/proto.ts";\n'],
    ["src/bytes/inputs.ts", 'const m = await import("../app/convert.ts");\n'],
    ["lib/extra.ts", "export const x = 1;\n"],
    ["src/cli/ok.ts", 'import { x } from "../../formats/registry.ts";\n'],
    ["tests/any_test.ts", 'import { x } from "../main.ts";\n'],
  ]);
  const msgs = checkSources(files).map((v) => v.message).sort();
  assertEquals(msgs.length, 3, msgs.join("\n"));
  assert(msgs.some((m) => m.includes("stay apart")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("src/bytes/inputs.ts (bytes) imports src/app/convert.ts")), msgs.join("\n"));
  assert(msgs.some((m) => m.startsWith("lib/extra.ts is in no layer")), msgs.join("\n"));
});

Deno.test("layers: the checker run as a script fails on a tree with an upward import", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convpress-layers-" });
  try {
    await Deno.mkdir(`${dir}/src/wire`, { recursive: true });
    await Deno.mkdir(`${dir}/src/eval`, { recursive: true });
    await Deno.mkdir(`${dir}/tools`, { recursive: true });
    await Deno.copyFile(`${root}/tools/check_layers.ts`, `${dir}/tools/check_layers.ts`);
    await Deno.writeTextFile(`${dir}/src/eval/run.ts`, "export const run = 1;\n");
    await Deno.writeTextFile(`${dir}/src/wire/w.ts`, 'import { run } from "../eval/run.ts";\nexport { run };\n');
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", `${dir}/tools/check_layers.ts`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const err = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 1, err);
    assert(err.includes("src/wire/w.ts (wire) imports src/eval/run.ts (application)"), err);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("layers: longest prefix wins, imports resolve against the file", () => {
  assertEquals(layerOf("formats/registry.ts")?.path, "formats/registry.ts");
  assertEquals(layerOf("formats/onnx/reader.ts")?.path, "formats/");
  assertEquals(importsOf("src/app/convert.ts", 'import { a } from "../../formats/registry.ts";'), [
    "formats/registry.ts",
  ]);
});
