import { assert, assertEquals, ortRun, python, rng, testNeeding } from "../../tests/helpers.ts";
import type { ModelStream } from "../../src/model/types.ts";
import { clusteredTensor, floats, smallModel } from "../../tests/clustered_helpers.ts";
import { readAll, writeToBytes } from "../cvp/testing.ts";
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { memoryInput } from "../../src/bytes/inputs.ts";
import { readCvp } from "../cvp/reader.ts";
import { affineLevels, chooseWord, clusteredParts, indexBits } from "./clustered.ts";
import { writeOnnx } from "./writer.ts";
import { ConvpressError } from "../../src/errors.ts";

Deno.test("index bits and storage words: fewest bits per index, direct bytes below opset 11", () => {
  assertEquals([1, 2, 3, 4, 16, 17, 256, 257].map(indexBits), [1, 1, 2, 2, 4, 5, 8, 9]);
  assertEquals(chooseWord(4, 13), { word: 8, per: 2 });
  assertEquals(chooseWord(5, 13), { word: 32, per: 6 });
  assertEquals(chooseWord(3, 13), { word: 64, per: 21 });
  assertEquals(chooseWord(8, 13), { word: 8, per: 1 });
  assertEquals(chooseWord(7, 13), { word: 64, per: 9 });
  assertEquals(chooseWord(12, 13), { word: 64, per: 5 });
  assertEquals(chooseWord(4, 10), { word: 8, per: 1 });
  assertEquals(chooseWord(12, 10), { word: 16, per: 1 });
});

Deno.test("affine levels: exact in float32 or rejected", () => {
  const even = Float32Array.from({ length: 16 }, (_, j) => (j - 5) * 0.125);
  const a = affineLevels(even)!;
  assert(a, "equally spaced centres are affine");
  for (let j = 0; j < 16; j++) assertEquals(Math.fround((a.levels[j] - a.zeroPoint) * a.scale), even[j]);
  // A subset of a grid is affine too; k-means-like centres are not.
  assert(affineLevels(Float32Array.from([-0.5, 0, 0.75, 2])));
  assertEquals(affineLevels(Float32Array.from([0.1, 0.2, 0.35, 0.7123].map(Math.fround))), undefined);
  assertEquals(affineLevels(Float32Array.from([1, 1000])), undefined, "1000 levels do not fit in uint8");
});

async function openCvp(bytes: Uint8Array): Promise<ModelStream> {
  return await readCvp({
    path: "t.cvp",
    reader: new ByteReader(memoryInput(bytes), { name: "t.cvp" }),
    isDirectory: false,
  });
}

const CASES: { label: string; k: number; opts?: Parameters<typeof clusteredTensor>[4]; expect: string }[] = [
  { label: "k=1", k: 1, expect: "gather 1 bits in 8/8" },
  { label: "k=3, 2 bits", k: 3, expect: "gather 2 bits in 8/4" },
  {
    label: "k=8, 3 bits, Huffman",
    k: 8,
    opts: { hint: { encoding: "cluster", coding: "huffman" } },
    expect: "gather 3 bits in 64/21",
  },
  { label: "k=16", k: 16, expect: "gather 4 bits in 8/2" },
  { label: "k=32, bf16 centres", k: 32, opts: { repr: "bf16" }, expect: "gather 5 bits in 32/6" },
  { label: "k=200", k: 200, expect: "gather 8 bits in 8/1" },
  { label: "k=300", k: 300, opts: { hint: { encoding: "cluster" } }, expect: "gather 9 bits in 64/7" },
  {
    label: "sparse",
    k: 16,
    opts: { zeros: 0.8, hint: { encoding: "cluster-sparse" } },
    expect: "gather 4 bits in 8/2",
  },
  {
    label: "affine",
    k: 12,
    opts: { centers: Array.from({ length: 12 }, (_, j) => (j - 4) * 0.0625) },
    expect: "dequantize 4 bits in 8/2",
  },
];

for (const c of CASES) {
  const name =
    `keep-clustered ONNX (${c.label}): ONNX Runtime gives the float decode's outputs, the checker accepts it`;
  testNeeding(name, { python: ["onnx"] }, async () => {
    const r = rng(c.k * 7 + 1);
    const cvp = await writeToBytes(smallModel((name, shape) => clusteredTensor(name, shape, c.k, r, c.opts), r));
    // The reader hands the clustered form over; its float data is the stored values.
    const { layers } = await readAll(cvp);
    const fc = layers.find((l) => l.layer.name === "fc")!;
    assert(fc.layer.params.weight.encoded, "the reader hands the FC weight over clustered");
    const probe = await openCvp(cvp);
    for await (const l of probe.layers) {
      const w = l.params.weight;
      const p = w && clusteredParts(w, 13);
      if (!p) continue;
      assertEquals(p.layout.indexBytes, Math.ceil(w.size / p.layout.per) * p.layout.word / 8);
      if (l.name === "fc") {
        assertEquals(`${p.layout.kind} ${p.layout.bits} bits in ${p.layout.word}/${p.layout.per}`, c.expect);
      }
    }
    const dir = await Deno.makeTempDir();
    try {
      await writeOnnx(await openCvp(cvp), `${dir}/float.onnx`);
      await writeOnnx(await openCvp(cvp), `${dir}/kept.onnx`, { keepClustered: true });
      const x = Float32Array.from({ length: 72 }, () => r() * 2 - 1);
      const want = await ortRun(`${dir}/float.onnx`, x, [1, 2, 6, 6]);
      const got = await ortRun(`${dir}/kept.onnx`, x, [1, 2, 6, 6]);
      // Within 1e-6 of the largest output: ONNX Runtime folds Gather into a constant weight (bit-equal outputs) but
      // keeps DequantizeLinear as a node, and its Conv over a computed weight sums in another order.
      const scale = Math.max(1, ...Array.from(want, Math.abs));
      for (let i = 0; i < want.length; i++) {
        assert(Math.abs(got[i] - want[i]) <= 1e-6 * scale, `output ${i}: ${got[i]} vs ${want[i]}`);
      }
      const ops = await python([
        "-c",
        "import onnx,sys; m=onnx.load(sys.argv[1]); onnx.checker.check_model(m); print(' '.join(n.op_type for n in m.graph.node))",
        `${dir}/kept.onnx`,
      ]);
      assert(ops.includes(c.expect.startsWith("dequantize") ? "DequantizeLinear" : "Gather"), ops);
      const float = (await Deno.stat(`${dir}/float.onnx`)).size, kept = (await Deno.stat(`${dir}/kept.onnx`)).size;
      assert(kept < float, `kept ${kept} bytes, float ${float}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("without keep-clustered, and for tensors with no clustered form, the ONNX writer writes floats", async () => {
  const r = rng(5);
  const cvp = await writeToBytes(smallModel((name, shape) => floats(name, shape, r), r));
  for await (const l of (await openCvp(cvp)).layers) {
    for (const t of Object.values(l.params)) assertEquals(clusteredParts(t, 13), undefined);
  }
});

Deno.test("a damaged clustered .cvp fails with a located ConvpressError when written with keep-clustered", async () => {
  const r = rng(8);
  const cvp = await writeToBytes(smallModel((name, shape) => clusteredTensor(name, shape, 16, r), r));
  const dir = await Deno.makeTempDir();
  try {
    for (let i = 0; i < 40; i++) {
      const bad = cvp.slice();
      const at = Math.floor(r() * (bad.length - 16));
      bad[at] ^= 1 << Math.floor(r() * 8);
      let error: unknown;
      try {
        await writeOnnx(await openCvp(bad), `${dir}/m.onnx`, { keepClustered: true });
      } catch (e) {
        error = e;
      }
      assert(
        error instanceof ConvpressError,
        `flip at byte ${at}: ${error instanceof Error ? error.stack : "accepted"}`,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
