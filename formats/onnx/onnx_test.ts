import {
  assert,
  assertEquals,
  assertRejects,
  ortRun,
  python,
  readF32,
  relativeError,
  rng,
  smallOnnx,
} from "../../tests/helpers.ts";
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { chunkedInput, memoryInput, openFileInput, splitAt } from "../../src/bytes/inputs.ts";
import { ConvpressError } from "../../src/errors.ts";
import type { Layer, ModelStream } from "../../src/model/types.ts";
import { readOnnx } from "./reader.ts";
import { writeOnnx } from "./writer.ts";

/** A comparable summary of a model: structure and every tensor's bytes. */
async function summary(m: ModelStream): Promise<string> {
  const rows: unknown[] = [];
  for await (const l of m.layers) {
    const params: unknown[] = [];
    for (const [role, t] of Object.entries(l.params)) {
      params.push([role, t.name, t.dtype, t.shape, Array.from(await t.bytes())]);
    }
    rows.push([l.name, l.op, l.attrs, l.inputs, l.outputs, params]);
  }
  const h = m.header;
  return JSON.stringify([h.name, h.inputs, h.outputs, h.metadata, rows]);
}

Deno.test("ONNX reader: the same model from a file, whole, 1 byte at a time, and in random splits", async () => {
  const dir = await smallOnnx();
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  const expected = await summary(await readOnnx(new ByteReader(memoryInput(bytes)), dir));
  assert(expected.includes('"Conv"') && expected.includes('"FC"') && expected.includes('"Passthrough"'));
  const r = rng(11);
  const splits = [
    [bytes],
    splitAt(bytes, Array.from({ length: bytes.length }, (_, i) => i)),
    splitAt(bytes, Array.from({ length: 20 }, () => Math.floor(r() * bytes.length))),
  ];
  for (const chunks of splits) {
    const got = await summary(await readOnnx(new ByteReader(chunkedInput(chunks), { name: "-" })));
    assertEquals(got, expected, `${chunks.length} chunks`);
  }
});

Deno.test("ONNX reader: every truncation is a precise error, on files and on streams", async () => {
  const dir = await smallOnnx();
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  for (let cut = 0; cut < bytes.length; cut++) {
    for (const seekable of [true, false]) {
      const prefix = bytes.subarray(0, cut);
      const input = seekable ? memoryInput(prefix) : chunkedInput([prefix]);
      const e = await assertRejects(async () => {
        await summary(await readOnnx(new ByteReader(input, { name: "m.onnx" }), dir));
      }, `cut at ${cut} (${seekable ? "file" : "stream"}) was accepted`);
      assert(e instanceof ConvpressError, `cut ${cut}: ${e.stack}`);
      assert(/byte \d+|no graph|missing/.test(e.message), `cut ${cut}: ${e.message}`);
    }
  }
});

Deno.test("ONNX reader: a length past the end, a wrong wire type and garbage are clear errors", async () => {
  const dir = await smallOnnx();
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  const graphAt = 17; // ModelProto.graph key (field 7, wire type 2), after ir_version and producer_name
  assertEquals(bytes[graphAt], 0x3a);
  const cases: [string, Uint8Array, RegExp][] = [];
  // ir_version 7, then a graph whose length (about 4 GiB) runs far past the end of the input
  const long = new Uint8Array([0x08, 0x07, 0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a, 0x00, 0x0a, 0x02, 0x0a]);
  cases.push(["length", long, /runs past the end|unexpected end/i]);
  const wt = bytes.slice();
  wt[graphAt] = 0x38; // field 7 as a varint
  cases.push(["wire type", wt, /wire type/i]);
  cases.push(["garbage", new TextEncoder().encode('name: "not onnx"\nlayer { }\n'), /wire type|field|graph/i]);
  for (const [what, b, re] of cases) {
    for (const seekable of [true, false]) {
      const input = seekable ? memoryInput(b) : chunkedInput([b]);
      const e = await assertRejects(async () => {
        await summary(await readOnnx(new ByteReader(input, { name: "bad.onnx" }), dir));
      }, what);
      assert(e instanceof ConvpressError && re.test(e.message), `${what}: ${e.message}`);
      assert(/bad\.onnx/.test(e.message), `${what} names the file: ${e.message}`);
    }
  }
});

async function convertInMemory(bytes: Uint8Array, dir: string, stage?: (l: Layer) => Layer): Promise<string> {
  const m = await readOnnx(new ByteReader(memoryInput(bytes)), dir);
  const layers = stage
    ? m.layers.pipeThrough(new TransformStream({ transform: (l, c) => c.enqueue(stage(l)) }))
    : m.layers;
  const out = `${await Deno.makeTempDir()}/out.onnx`;
  await writeOnnx({ header: m.header, layers }, out);
  return out;
}

Deno.test("ONNX writer: ONNX Runtime gives identical outputs, and the onnx checker accepts the file", async () => {
  const dir = await smallOnnx();
  const x = await readF32(`${dir}/small_in.f32`);
  const ref = await ortRun(`${dir}/small_cnn.onnx`, x, [1, 3, 8, 8]);
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  const passthrough = await convertInMemory(bytes, dir);
  // Rebuild every canonical layer from its op and attributes (the path other formats take).
  const rebuilt = await convertInMemory(bytes, dir, (l) => (l.op === "Passthrough" ? l : { ...l, origin: undefined }));
  for (const out of [passthrough, rebuilt]) {
    const got = await ortRun(out, x, [1, 3, 8, 8]);
    assertEquals(relativeError(got, ref), 0, out);
    await python(["-c", "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))", out]);
  }
});

Deno.test("ONNX: external data is read, and written with --external-data", async () => {
  const dir = await smallOnnx();
  const x = await readF32(`${dir}/small_in.f32`);
  const ref = await ortRun(`${dir}/small_cnn.onnx`, x, [1, 3, 8, 8]);
  const m = await readOnnx(new ByteReader(memoryInput(await Deno.readFile(`${dir}/small_ext.onnx`))), dir);
  const outDir = await Deno.makeTempDir();
  await writeOnnx(m, `${outDir}/ext.onnx`, { externalData: true, externalDataThreshold: 64 });
  assert((await Deno.stat(`${outDir}/ext.onnx.data`)).size > 0, "side file written");
  assertEquals(relativeError(await ortRun(`${outDir}/ext.onnx`, x, [1, 3, 8, 8]), ref), 0);
});

Deno.test("ONNX: an If node's subgraphs pass through ONNX -> ONNX unchanged", async () => {
  const dir = await smallOnnx();
  const x = await readF32(`${dir}/small_in.f32`);
  const ref = await ortRun(`${dir}/small_if.onnx`, x, [1, 3, 8, 8]);
  const out = await convertInMemory(await Deno.readFile(`${dir}/small_if.onnx`), dir);
  assertEquals(relativeError(await ortRun(out, x, [1, 3, 8, 8]), ref), 0);
  await python(["-c", "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))", out]);
});

Deno.test("ONNX: random byte damage never crashes: every failure is a ConvpressError", async () => {
  const dir = await smallOnnx();
  const bytes = await Deno.readFile(`${dir}/small_cnn.onnx`);
  const r = rng(42);
  const out = `${await Deno.makeTempDir()}/fuzz.onnx`;
  let failures = 0;
  for (let i = 0; i < 600; i++) {
    const b = bytes.slice();
    for (let f = 0, n = 1 + Math.floor(r() * 3); f < n; f++) b[Math.floor(r() * b.length)] = Math.floor(r() * 256);
    try {
      await writeOnnx(await readOnnx(new ByteReader(memoryInput(b), { name: "fuzz.onnx" }), dir), out);
    } catch (e) {
      failures++;
      assert(e instanceof ConvpressError, `case ${i}: ${(e as Error).stack}`);
    }
  }
  assert(failures > 50, `only ${failures} of 600 damaged files were refused`);
});

Deno.test("ONNX reader: --input-shape fills unknown dimensions and refuses ones that disagree", async () => {
  const dir = await smallOnnx();
  const out = `${await Deno.makeTempDir()}/symbolic.onnx`;
  const open = async (path: string, inputShape?: number[]) => {
    const r = new ByteReader(await openFileInput(path), { name: path });
    return await readOnnx(r, undefined, { inputShape });
  };
  const m = await open(`${dir}/small_plain.onnx`);
  m.header.inputs[0] = { ...m.header.inputs[0], shape: ["N", 3, 8, 8] };
  m.header.origin = undefined; // write the inputs from the header, not the original graph
  await writeOnnx(m, out);
  const plain = await open(out);
  assertEquals(plain.header.inputs[0].shape, ["N", 3, 8, 8]);
  plain.close?.();
  const filled = await open(out, [4, 3, 8, 8]);
  assertEquals(filled.header.inputs[0].shape, [4, 3, 8, 8]);
  filled.close?.();
  const e = await assertRejects(() => open(out, [4, 3, 9, 9]));
  assert(e instanceof ConvpressError && e.code === "usage" && /disagrees/.test(e.message), String(e));
  const rank = await assertRejects(() => open(out, [4, 3]));
  assert(rank instanceof ConvpressError && rank.code === "usage" && /dimensions/.test(rank.message), String(rank));
});

Deno.test("ONNX writer: a graph output straight from ArgMax, rebuilt, is declared float32 as its Cast computes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "convpress-argmax-" });
  const src = `${dir}/argmax.onnx`;
  await python([
    "-c",
    `import numpy as np, onnx, sys
from onnx import helper, numpy_helper, TensorProto as T
r = np.random.default_rng(3)
w = numpy_helper.from_array(r.standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
g = helper.make_graph([
    helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv"),
    helper.make_node("ArgMax", ["y"], ["idx"], axis=1, keepdims=1, name="argmax"),
], "argmax", [helper.make_tensor_value_info("x", T.FLOAT, [1, 3, 6, 5])],
    [helper.make_tensor_value_info("idx", T.INT64, [1, 1, 6, 5])], [w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 7
onnx.checker.check_model(m)
onnx.save(m, sys.argv[1])`,
    src,
  ]);
  const ort = await import("onnxruntime-node");
  const x = Float32Array.from({ length: 90 }, (_, i) => Math.sin(i * 0.9));
  async function run(path: string): Promise<{ type: string; values: number[] }> {
    const s = await ort.InferenceSession.create(path);
    try {
      const y = (await s.run({ x: new ort.Tensor("float32", x, [1, 3, 6, 5]) }))[s.outputNames[0]];
      return { type: y.type, values: Array.from(y.data as ArrayLike<number | bigint>, Number) };
    } finally {
      await s.release?.();
    }
  }
  const ref = await run(src);
  assertEquals(ref.type, "int64");
  assert(new Set(ref.values).size > 1, "the indices vary");
  const declared = async (p: string) =>
    (await python([
      "-c",
      "import onnx,sys; print(onnx.load(sys.argv[1]).graph.output[0].type.tensor_type.elem_type)",
      p,
    ]))
      .trim();
  const bytes = await Deno.readFile(src);
  // Passed through, the ArgMax node is the source's: int64, as declared.
  const same = await convertInMemory(bytes, dir);
  assertEquals(await declared(same), "7");
  assertEquals(await run(same), ref);
  // Rebuilt from the canonical layers: ArgMax then a Cast to float32, and the output declared so.
  const rebuilt = await convertInMemory(bytes, dir, (l) => ({ ...l, origin: undefined }));
  assertEquals(await declared(rebuilt), "1");
  const got = await run(rebuilt);
  assertEquals(got.type, "float32");
  assertEquals(got.values, ref.values);
  await python(["-c", "import onnx,sys; onnx.checker.check_model(onnx.load(sys.argv[1]))", rebuilt]);
});
