/**
 * TF.js reader and writer on the tiny models of fixtures/tfjs (written by tfjs itself, weights crossing 1000- and
 * 300-byte shards), checked by real clients: tfjs loads what we write, ONNX Runtime runs what we read.
 */
import { assert, assertEquals, assertRejects } from "./tfjs_assert.ts";
import { ortRun, ROOT } from "./helpers.ts";
import { convertModel, nhwcToNchw, randomInput, relErr, tfjsPredict } from "./tfjs_helpers.ts";
import { tfjsFormat } from "../formats/tfjs/mod.ts";
import { ByteReader } from "../src/bytes/byte_reader.ts";
import { chunkedInput, openFileInput, splitAt } from "../src/bytes/inputs.ts";
import { collectLayers, layerStream, type ModelStream } from "../src/model/types.ts";
import { Tensor } from "../src/model/tensor.ts";
import { TfjsError } from "../src/errors.ts";

const FIX = `${ROOT}/fixtures/tfjs`;
const models = [
  { name: "seq", shape: [2, 12, 10, 3] },
  { name: "func", shape: [2, 8, 8, 4] },
];

async function tmp(): Promise<string> {
  return await Deno.makeTempDir({ prefix: "convpress-tfjs-test-" });
}

for (const m of models) {
  const json = `${FIX}/${m.name}/model.json`;
  const n = m.shape.reduce((a, b) => a * b, 1);
  const x = randomInput(n, 3, -1, 1);

  Deno.test(`tfjs ${m.name}: read (folder and model.json path) -> ONNX matches tfjs in ONNX Runtime`, async () => {
    const ref = await tfjsPredict(json, x, m.shape);
    const dir = await tmp();
    try {
      const [b, h, w, c] = m.shape;
      for (const src of [`${FIX}/${m.name}`, json]) {
        await convertModel("tfjs", src, "onnx", `${dir}/m.onnx`);
        const got = await ortRun(`${dir}/m.onnx`, nhwcToNchw(x, m.shape), [b, c, h, w]);
        assert(relErr(got, ref) < 1e-5, `${src}: relative error ${relErr(got, ref)}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  for (const kind of ["auto", "layers-model", "graph-model"] as const) {
    Deno.test(`tfjs ${m.name}: write ${kind} -> tfjs predicts the same`, async () => {
      const ref = await tfjsPredict(json, x, m.shape);
      const dir = await tmp();
      try {
        await convertModel("tfjs", json, "tfjs", `${dir}/o`, { tfjsKind: kind, shardSize: 256 });
        const out = JSON.parse(await Deno.readTextFile(`${dir}/o/model.json`));
        const want = kind === "auto" ? (m.name === "seq" ? "layers-model" : "graph-model") : kind;
        assertEquals(out.format, want);
        const paths: string[] = out.weightsManifest[0].paths;
        paths.forEach((p, k) => assertEquals(p, `group1-shard${k + 1}of${paths.length}.bin`));
        for (const p of paths.slice(0, -1)) assertEquals((await Deno.stat(`${dir}/o/${p}`)).size, 256);
        const got = await tfjsPredict(`${dir}/o/model.json`, x, m.shape);
        assert(relErr(got, ref) < 1e-6, `relative error ${relErr(got, ref)}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }

  Deno.test(`tfjs ${m.name}: ONNX -> TF.js (canonical transposes, no TF.js shortcuts) predicts the same`, async () => {
    const ref = await tfjsPredict(json, x, m.shape);
    const dir = await tmp();
    try {
      await convertModel("tfjs", json, "onnx", `${dir}/m.onnx`);
      for (const kind of ["auto", "graph-model"] as const) {
        await convertModel("onnx", `${dir}/m.onnx`, "tfjs", `${dir}/${kind}`, { tfjsKind: kind });
        const got = await tfjsPredict(`${dir}/${kind}/model.json`, x, m.shape);
        assert(relErr(got, ref) < 1e-5, `${kind}: relative error ${relErr(got, ref)}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  for (const q of ["float16", "uint16", "uint8"] as const) {
    Deno.test(`tfjs ${m.name}: --quantize ${q} loads in tfjs, and our dequantization agrees with tfjs's`, async () => {
      const ref = await tfjsPredict(json, x, m.shape);
      const dir = await tmp();
      try {
        await convertModel("tfjs", json, "tfjs", `${dir}/q`, { quantize: q });
        const out = JSON.parse(await Deno.readTextFile(`${dir}/q/model.json`));
        for (const w of out.weightsManifest[0].weights) {
          if (w.dtype === "float32") assertEquals(w.quantization.dtype, q);
        }
        const got = await tfjsPredict(`${dir}/q/model.json`, x, m.shape);
        const tol = q === "uint8" ? 0.1 : 1e-2;
        assert(relErr(got, ref) < tol, `quantized vs float: relative error ${relErr(got, ref)}`);
        // Reading the quantized model back (our dequantization) and running it in ONNX Runtime matches tfjs.
        await convertModel("tfjs", `${dir}/q`, "onnx", `${dir}/q.onnx`);
        const [b, h, w, c] = m.shape;
        const viaOnnx = await ortRun(`${dir}/q.onnx`, nhwcToNchw(x, m.shape), [b, c, h, w]);
        assert(relErr(viaOnnx, got) < 1e-5, `dequantized: relative error ${relErr(viaOnnx, got)}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    });
  }
}

/** The layer list of a model as comparable JSON (names, ops, attributes, parameter bytes). */
async function summary(model: ModelStream): Promise<string> {
  const layers = await collectLayers(model.layers);
  const out = [];
  for (const l of layers) {
    const params: Record<string, number[]> = {};
    for (const [r, t] of Object.entries(l.params)) params[r] = Array.from(await t.float32());
    out.push({ name: l.name, op: l.op, attrs: l.attrs, inputs: l.inputs, outputs: l.outputs, params });
  }
  return JSON.stringify({ inputs: model.header.inputs, outputs: model.header.outputs, out });
}

Deno.test("tfjs tar: written with model.json last; read whole, 1 byte at a time, in random splits; every prefix cut fails cleanly", async () => {
  const dir = await tmp();
  try {
    await convertModel("tfjs", `${FIX}/seq`, "tfjs", `${dir}/m.tar`, { shardSize: 700 });
    await convertModel("tfjs", `${FIX}/seq`, "tfjs", `${dir}/m`, { shardSize: 700 });
    const bytes = await Deno.readFile(`${dir}/m.tar`);
    // Entry names in order: the shards, then model.json.
    const names: string[] = [];
    for (let off = 0; off + 512 <= bytes.length;) {
      const h = bytes.subarray(off, off + 512);
      if (h.every((b) => b === 0)) break;
      const name = new TextDecoder().decode(h.subarray(0, 100)).replace(/\0.*$/s, "");
      const size = parseInt(new TextDecoder().decode(h.subarray(124, 135)), 8);
      names.push(name);
      off += 512 + Math.ceil(size / 512) * 512;
    }
    assertEquals(names.at(-1), "model.json");
    assertEquals(names.slice(0, -1), names.slice(0, -1).map((_, k) => `group1-shard${k + 1}of${names.length - 1}.bin`));

    const whole = await summary(
      await tfjsFormat.read({ path: "-", isDirectory: false, reader: new ByteReader(chunkedInput([bytes])) }, {}),
    );
    const fromFolder = await summary(await tfjsFormat.read({ path: `${dir}/m`, isDirectory: true }, {}));
    assertEquals(whole, fromFolder);
    const ones = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    assertEquals(
      await summary(
        await tfjsFormat.read({ path: "-", isDirectory: false, reader: new ByteReader(chunkedInput(ones)) }, {}),
      ),
      whole,
    );
    const rnd = randomInput(20, 5);
    for (let k = 0; k < 5; k++) {
      const cuts = Array.from(rnd.subarray(k * 4, k * 4 + 4), (v) => Math.floor(v * bytes.length));
      const r = new ByteReader(chunkedInput(splitAt(bytes, cuts)));
      assertEquals(await summary(await tfjsFormat.read({ path: "-", isDirectory: false, reader: r }, {})), whole);
    }
    // Every prefix (step 37 bytes, plus each block edge) fails with a clear error, never hangs.
    const cutsAt = new Set<number>();
    for (let i = 0; i < bytes.length - 1024; i += 37) cutsAt.add(i);
    for (let i = 0; i < bytes.length - 1024; i += 512) cutsAt.add(i).add(i + 1);
    for (const cut of cutsAt) {
      const r = new ByteReader(chunkedInput([bytes.subarray(0, cut)]));
      const e = await assertRejects(() => tfjsFormat.read({ path: "-", isDirectory: false, reader: r }, {}));
      assert(e instanceof TfjsError, `cut ${cut}: ${e}`);
      assert(/end of input|no model\.json/.test(e.message), `cut ${cut}: ${e.message}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tfjs tar: a .tar file path is read like stdin", async () => {
  const dir = await tmp();
  try {
    await convertModel("tfjs", `${FIX}/func`, "tfjs", `${dir}/m.tar`);
    await convertModel("tfjs", `${FIX}/func`, "tfjs", `${dir}/m`);
    const r = new ByteReader(await openFileInput(`${dir}/m.tar`));
    const a = await summary(await tfjsFormat.read({ path: `${dir}/m.tar`, isDirectory: false, reader: r }, {}));
    r.close();
    assertEquals(a, await summary(await tfjsFormat.read({ path: `${dir}/m`, isDirectory: true }, {})));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Copies a fixture folder and lets `edit` break it. */
async function broken(
  name: string,
  edit: (dir: string, json: Record<string, unknown>) => Promise<void> | void,
): Promise<string> {
  const dir = await tmp();
  for await (const e of Deno.readDir(`${FIX}/${name}`)) {
    await Deno.copyFile(`${FIX}/${name}/${e.name}`, `${dir}/${e.name}`);
  }
  const json = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
  await edit(dir, json);
  await Deno.writeTextFile(`${dir}/model.json`, JSON.stringify(json));
  return dir;
}

const readDir = (dir: string) => tfjsFormat.read({ path: dir, isDirectory: true }, {});

Deno.test("tfjs bad input: a shard shorter than the manifest says names the weight and the shards", async () => {
  const dir = await broken("seq", async (d) => {
    const f = `${d}/group1-shard4of4.bin`;
    await Deno.writeFile(f, (await Deno.readFile(f)).subarray(0, 100));
  });
  const e = await assertRejects(
    () => readDir(dir),
    /TF\.js weight 'd2\/kernel' needs bytes 3004\.\.3144 of group 1 but its shards \(group1-shard1of4\.bin, .*group1-shard4of4\.bin\) hold only 3100 bytes/,
  );
  assertEquals((e as TfjsError).code, "bad_format");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs bad input: shards longer than the manifest says name the shard", async () => {
  const dir = await broken("seq", async (d) => {
    const f = `${d}/group1-shard4of4.bin`;
    const b = await Deno.readFile(f);
    await Deno.writeFile(f, new Uint8Array([...b, 1, 2, 3, 4]));
  });
  await assertRejects(
    () => readDir(dir),
    /hold 3216 bytes but the manifest's weights \(last 'bn1\/moving_variance'\) need 3212: shard 'group1-shard4of4\.bin' has 4 extra bytes/,
  );
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs bad input: a missing shard is named", async () => {
  const dir = await broken("seq", (d) => Deno.remove(`${d}/group1-shard2of4.bin`));
  const e = await assertRejects(() => readDir(dir), /weight shard 'group1-shard2of4\.bin' \(group 1\) is missing/);
  assertEquals((e as TfjsError).code, "io");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs bad input: an unknown dtype names the weight", async () => {
  const dir = await broken("seq", (_d, json) => {
    const w = (json.weightsManifest as { weights: { dtype: string }[] }[])[0].weights[2];
    w.dtype = "float64";
  });
  const e = await assertRejects(() => readDir(dir), /TF\.js weight 'bn1\/gamma' has an unsupported dtype 'float64'/);
  assertEquals((e as TfjsError).code, "unsupported");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs bad input: an op the canonical set cannot express names the node", async () => {
  const dir = await tmp();
  // A graph-model written by us, with one node changed to an op nothing maps.
  await convertModel("tfjs", `${FIX}/seq`, "tfjs", `${dir}/g`, { tfjsKind: "graph-model" });
  const json = JSON.parse(await Deno.readTextFile(`${dir}/g/model.json`));
  const node = json.modelTopology.node.find((n: { op: string }) => n.op === "Relu6");
  node.op = "Erf";
  await Deno.writeTextFile(`${dir}/g/model.json`, JSON.stringify(json));
  const e = await assertRejects(
    () => readDir(`${dir}/g`),
    /Cannot convert TF\.js node 'r1': op 'Erf' has no canonical equivalent/,
  );
  assertEquals((e as TfjsError).layer, "r1");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs writer: an op TF.js cannot express (grouped transposed conv) is an error naming the layer; no output is left", async () => {
  const dir = await tmp();
  const header = {
    name: "g",
    sourceFormat: "onnx" as const,
    inputs: [{ name: "x", dtype: "float32", shape: [1, 4, 5, 5] }],
    outputs: [{ name: "y", dtype: "float32", shape: [1, 4, 5, 5] }],
    metadata: {},
  };
  async function* gen() {
    yield await Promise.resolve({
      name: "grouped",
      op: "ConvTranspose" as const,
      attrs: {
        kernel: [1, 1],
        strides: [1, 1],
        pads: [0, 0, 0, 0],
        dilations: [1, 1],
        group: 2,
        outputPadding: [0, 0],
      },
      inputs: ["x"],
      outputs: ["y"],
      params: { weight: Tensor.fromFloat32("w", [4, 2, 1, 1], new Float32Array(8)) },
    });
  }
  const e = await assertRejects(
    () => tfjsFormat.write({ header, layers: layerStream(gen()) }, `${dir}/o`, {}),
    /Cannot write layer 'grouped' to TF\.js: grouped or dilated transposed convolution/,
  );
  assertEquals((e as TfjsError).code, "unsupported");
  const left = [];
  for await (const f of Deno.readDir(`${dir}/o`)) left.push(f.name);
  assertEquals(left, []);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("tfjs detect: model.json and tar streams, never throws", () => {
  const enc = new TextEncoder();
  assert(tfjsFormat.detect(enc.encode('{"format":"layers-model","modelTopology":{}}'), "x.json"));
  assert(!tfjsFormat.detect(enc.encode('{"foo":1}'), "x.json"));
  assert(tfjsFormat.detect(enc.encode('{"foo":1}'), "dir/model.json"));
  assert(!tfjsFormat.detect(new Uint8Array([8, 1, 18, 3]), "m.onnx"));
  assert(!tfjsFormat.detect(new Uint8Array(0), ""));
});
