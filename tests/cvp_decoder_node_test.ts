/**
 * The reference decoder runs outside Deno: bundled to plain JavaScript by `deno bundle` (it has no imports), then run
 * by Node.js on the test vectors of formats/cvp/testdata, which it must decode to their expected values, and whose
 * damaged files it must refuse.
 */
import { assert, assertEquals, ROOT } from "./helpers.ts";

const NODE_SCRIPT = `
import { decodeCvpToMemory } from "./decoder.mjs";
import { createReadStream, readFileSync } from "node:fs";
const dir = process.argv[2];
const hex = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("hex");
let checked = 0;
for (const name of ["minimal", "sample", "sample_f16"]) {
  const want = JSON.parse(readFileSync(dir + "/" + name + ".json", "utf8"));
  const got = await decodeCvpToMemory(createReadStream(dir + "/" + name + ".cvp"));
  for (const t of want.tensors) {
    const layer = got.layers.find((l) => l.name === t.layer);
    if (hex(layer.values[t.role]) !== t.float32Hex) throw new Error(name + " " + t.name + " differs");
    checked++;
  }
}
let refused = 0;
for (const bad of Object.keys(JSON.parse(readFileSync(dir + "/expected_errors.json", "utf8")))) {
  try {
    await decodeCvpToMemory(createReadStream(dir + "/" + bad));
  } catch {
    refused++;
  }
}
console.log(JSON.stringify({ checked, refused }));
`;

Deno.test("reference decoder: bundled and run by Node.js, decodes the test vectors and refuses the damaged ones", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", `${ROOT}/formats/cvp/decoder.ts`, "-o", `${dir}/decoder.mjs`],
      stderr: "piped",
    }).output();
    assert(bundle.code === 0, new TextDecoder().decode(bundle.stderr));
    await Deno.writeTextFile(`${dir}/check.mjs`, NODE_SCRIPT);
    const run = await new Deno.Command("node", {
      args: [`${dir}/check.mjs`, `${ROOT}/formats/cvp/testdata`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(run.code === 0, new TextDecoder().decode(run.stderr));
    const { checked, refused } = JSON.parse(new TextDecoder().decode(run.stdout));
    const bad = Object.keys(JSON.parse(await Deno.readTextFile(`${ROOT}/formats/cvp/testdata/expected_errors.json`)));
    assert(checked >= 10, `only ${checked} tensors checked`);
    assertEquals(refused, bad.length, "damaged files refused");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
