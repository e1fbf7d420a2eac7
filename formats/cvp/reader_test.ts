import { splitAt } from "../../src/bytes/inputs.ts";
import { ConvpressError } from "../../src/errors.ts";
import { rng, sampleHeader, sampleLayers, sampleModel } from "./sample_model.ts";
import { expectedBytes, readAll, sameBytes, writeToBytes } from "./testing.ts";
import { cvpFormat } from "./mod.ts";
import { assert } from "../../tests/helpers.ts";

async function checkSample(bytes: Uint8Array, chunks?: Uint8Array[], weights: "f32" | "f16" = "f32") {
  const got = await readAll(bytes, chunks);
  const want = sampleLayers();
  assert(got.layers.length === want.length, `${got.layers.length} layers`);
  assert(JSON.stringify(got.header.inputs) === JSON.stringify(sampleHeader().inputs), "inputs");
  assert(got.header.metadata.note === "ünïcode", "metadata");
  for (let i = 0; i < want.length; i++) {
    const g = got.layers[i].layer, w = want[i];
    assert(g.name === w.name && g.op === w.op, `layer ${i}`);
    assert(JSON.stringify(g.inputs) === JSON.stringify(w.inputs), "layer inputs");
    for (const [k, v] of Object.entries(w.attrs)) {
      assert(Object.is(g.attrs[k], v) || JSON.stringify(g.attrs[k]) === JSON.stringify(v), `attr ${k}`);
    }
    for (const [role, t] of Object.entries(w.params)) {
      const exp = await expectedBytes(t, weights);
      assert(sameBytes(got.layers[i].values[role], exp), `tensor ${t.name} (${chunks ? "stream" : "file"})`);
      assert(JSON.stringify(g.params[role].shape) === JSON.stringify(t.shape), `shape ${t.name}`);
    }
  }
  const origin = got.layers[2].layer.origin as { format: string; data: { nodes: Uint8Array[]; $odd: string } };
  assert(origin.format === "onnx" && sameBytes(origin.data.nodes[0], Uint8Array.of(1, 2, 3, 255)), "origin bytes");
  assert(origin.data.$odd === "dollar key", "dollar key");
  assert(got.layers[1].layer.attrs.min === -Infinity, "-Infinity attr");
}

Deno.test("every encoding round-trips through the file reader and the stream reader", async () => {
  const bytes = await writeToBytes(sampleModel());
  assert(cvpFormat.detect(bytes.subarray(0, 4096), "x"), "detect");
  await checkSample(bytes);
  await checkSample(bytes, [bytes]);
});

Deno.test("a pipe-written file (no seekable sink) is byte-identical to a file-written one", async () => {
  const a = await writeToBytes(sampleModel());
  const b = await writeToBytes(sampleModel(), {}, true);
  assert(sameBytes(a, b));
});

Deno.test("the stream reader gives the same model one byte at a time and in random splits", async () => {
  const bytes = await writeToBytes(sampleModel());
  await checkSample(bytes, Array.from(bytes, (_, i) => bytes.subarray(i, i + 1)));
  const r = rng(7);
  for (let t = 0; t < 5; t++) {
    const cuts = Array.from({ length: 20 }, () => Math.floor(r() * bytes.length));
    await checkSample(bytes, splitAt(bytes, cuts));
  }
});

Deno.test("weights f16 stores unclustered float32 tensors as f16", async () => {
  const f32 = await writeToBytes(sampleModel());
  const f16 = await writeToBytes(sampleModel(), { weights: "f16" });
  assert(f16.length < f32.length, `${f16.length} < ${f32.length}`);
  await checkSample(f16, undefined, "f16");
});

Deno.test("truncation at every prefix length is a clear error, on files and streams", async () => {
  const bytes = await writeToBytes(sampleModel(true));
  for (let cut = 0; cut < bytes.length; cut++) {
    for (const stream of [false, true]) {
      const part = bytes.slice(0, cut);
      let err: unknown;
      try {
        await readAll(part, stream ? [part] : undefined);
      } catch (e) {
        err = e;
      }
      assert(err instanceof ConvpressError, `cut ${cut} ${stream}: ${err}`);
      assert(
        /end of input|truncated|past the end|bad magic|Not a \.cvp/i.test(err.message),
        `cut ${cut}: ${err.message}`,
      );
      if (cut > 12 && stream) assert(/^Record \d+|^Footer/.test(err.message), `names the record: ${err.message}`);
    }
  }
});

Deno.test("flipping any single byte is detected and names the record", async () => {
  const bytes = await writeToBytes(sampleModel(true));
  const seen = new Set<string>();
  for (let i = 0; i < bytes.length; i++) {
    for (const mask of [0xff, 0x01]) {
      const bad = bytes.slice();
      bad[i] ^= mask;
      let err: unknown;
      try {
        await readAll(bad, [bad]);
      } catch (e) {
        err = e;
      }
      assert(err instanceof ConvpressError, `byte ${i} ^ ${mask} not detected: ${err}`);
      if (i >= 12) assert(/^Record \d+ .*at byte \d+|^Footer at byte/.test(err.message), `byte ${i}: ${err.message}`);
      seen.add(err.code);
    }
  }
  assert(seen.has("checksum") && seen.has("bad_format"), [...seen].join());
});
