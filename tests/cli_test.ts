/** The command line: help, exit codes, one-line errors naming the file and offset, no partial output files. */
import { assert, assertEquals, ortRun, readF32, relativeError, runCli, smallOnnx } from "./helpers.ts";

Deno.test("CLI: --help for every command, and usage errors exit 2", async () => {
  for (const args of [["--help"], ["convert", "--help"], ["inspect", "--help"], ["decode", "--help"]]) {
    const r = await runCli(args);
    assertEquals(r.code, 0, args.join(" "));
    assert(new TextDecoder().decode(r.stdout).includes("Usage"), args.join(" "));
  }
  for (
    const args of [["frobnicate"], ["convert", "x.onnx"], ["convert", "--bogus", "x", "-o", "y"], [
      "convert",
      "a",
      "b",
      "-o",
      "c",
    ], ["inspect", "x", "--from", "pdf"]]
  ) {
    const r = await runCli(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert(r.stderr.startsWith("convpress: ") && r.stderr.trim().split("\n").length === 1, r.stderr);
  }
});

Deno.test("CLI: convert through files and pipes; inspect counts parameters", async () => {
  const dir = await smallOnnx();
  const out = await Deno.makeTempDir();
  const x = await readF32(`${dir}/small_in.f32`);
  const ref = await ortRun(`${dir}/small_cnn.onnx`, x, [1, 3, 8, 8]);
  assertEquals((await runCli(["convert", `${dir}/small_cnn.onnx`, "-o", `${out}/a.onnx`])).code, 0);
  assertEquals(relativeError(await ortRun(`${out}/a.onnx`, x, [1, 3, 8, 8]), ref), 0);
  const piped = await runCli(["convert", "-", "-o", "-", "--from", "onnx", "--to", "onnx"], `${dir}/small_cnn.onnx`);
  assertEquals(piped.code, 0, piped.stderr);
  assertEquals(relativeError(await ortRun(piped.stdout, x, [1, 3, 8, 8]), ref), 0);
  const inspect = await runCli(["inspect", `${dir}/small_cnn.onnx`, "--json"]);
  const j = JSON.parse(new TextDecoder().decode(inspect.stdout));
  assertEquals(j.totals.params, 4 * 27 + 4 + 6 * 36 + 6 + 5 * 24 + 5); // the Reshape shape is an attribute, not a parameter
  assertEquals(j.layers.map((l: { op: string }) => l.op), [
    "Conv",
    "Relu",
    "MaxPool",
    "Conv",
    "(Erf)",
    "Reshape",
    "FC",
    "Softmax",
  ]);
});

Deno.test("CLI: bad input is one line naming the file and the byte, exit 1, and no output file is left", async () => {
  const dir = await smallOnnx();
  const work = await Deno.makeTempDir();
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  await Deno.writeFile(`${work}/cut.onnx`, bytes.subarray(0, 1500));
  await Deno.writeFile(`${work}/text.onnx`, new TextEncoder().encode("this is not a model\n"));
  await Deno.writeFile(`${work}/empty.onnx`, new Uint8Array(0));
  for (
    const [file, re] of [["cut.onnx", /cut\.onnx.*byte \d+/], ["text.onnx", /text\.onnx/], [
      "empty.onnx",
      /empty/,
    ]] as const
  ) {
    const r = await runCli(["convert", `${work}/${file}`, "-o", `${work}/out.onnx`]);
    assertEquals(r.code, 1, `${file}: ${r.stderr}`);
    assert(re.test(r.stderr) && r.stderr.trim().split("\n").length === 1, `${file}: ${r.stderr}`);
    const left = [...Deno.readDirSync(work)].map((e) => e.name).filter((n) =>
      n.startsWith("out") || n.endsWith(".tmp")
    );
    assertEquals(left, [], `${file} left files behind`);
  }
  const missing = await runCli(["inspect", `${work}/nope.onnx`]);
  assertEquals(missing.code, 1);
  assert(/nope\.onnx/.test(missing.stderr), missing.stderr);
});
