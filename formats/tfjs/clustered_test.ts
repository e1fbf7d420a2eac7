import { assert, assertEquals, rng } from "../../tests/helpers.ts";
import { clusteredTensor, floats, smallModel } from "../../tests/clustered_helpers.ts";
import { tfjsPredict } from "../../tests/tfjs_helpers.ts";
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { memoryInput } from "../../src/bytes/inputs.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Layer, ModelStream } from "../../src/model/types.ts";
import { applyStages } from "../../src/app/convert.ts";
import { readCvp } from "../cvp/reader.ts";
import { writeToBytes } from "../cvp/testing.ts";
import { planClustered, tfjsAffineGrid } from "./clustered.ts";
import { writeTfjs } from "./writer.ts";

/** tfjs's dequantization of a uint8 level (tfjs-core io_utils: `v * scale + min` into a Float32Array). */
const tfjsValue = (q: number, scale: number, min: number) => Math.fround(q * scale + min);

Deno.test("tfjs affine grid: equally spaced centres and subsets of a grid are exact; others are not", () => {
  // A grid as tfjs would decode one (float32 levels of a double scale): its float32 span / 15 is not that scale.
  const m = Math.fround(-0.3);
  const even = Float32Array.from({ length: 16 }, (_, j) => tfjsValue(j, 0.04, m));
  for (
    const values of [
      even,
      Float32Array.from([-1, -0.25, 0.5, 2]),
      Float32Array.from([3.5]),
      new Float32Array(256).map((_, i) => i / 64),
    ]
  ) {
    const g = tfjsAffineGrid(values);
    assert(g, `[${values.slice(0, 4)}...] is on a grid`);
    for (const v of values) {
      const q = g.levelOf.get(v)!;
      assert(q >= 0 && q <= 255, `level ${q}`);
      assertEquals(tfjsValue(q, g.scale, g.min), v, `value ${v}`);
    }
  }
  assertEquals(tfjsAffineGrid(Float32Array.from([0.1, 0.2, 0.35, 0.7123].map(Math.fround))), undefined);
  assertEquals(tfjsAffineGrid(new Float32Array(257).map((_, i) => i)), undefined, "257 levels");
  assertEquals(tfjsAffineGrid(Float32Array.from([0, 1, 1000])), undefined, "1000 steps of 1");
});

Deno.test("plan per weight: uint8 when affine, else float16 when exact, else float32, with the reason", () => {
  assertEquals(planClustered(Float32Array.from([-0.5, 0, 0.5, 1])).dtype, "uint8");
  // 0.1 is not a binary16 value.
  assertEquals(planClustered(Float32Array.from([0.1, 0.2, 0.35, 0.7123].map((v) => Math.fround(v)))).dtype, "float32");
  const halves = planClustered(Float32Array.from([0.0999755859375, 0.199951171875, 0.35009765625, 0.712890625]));
  assertEquals(halves.dtype, "float16");
  assert(halves.reason.includes("not on an affine grid"), halves.reason);
  const wide = planClustered(Float32Array.from([1e-30, 3, 70000]));
  assertEquals(wide.dtype, "float32");
  assert(wide.reason.includes("float16 does not hold them"), wide.reason);
  assert(planClustered(new Float32Array(300).map((_, i) => i * i)).reason.includes("more than uint8's 256 levels"));
});

async function openCvp(bytes: Uint8Array): Promise<ModelStream> {
  return await readCvp({
    path: "t.cvp",
    reader: new ByteReader(memoryInput(bytes), { name: "t.cvp" }),
    isDirectory: false,
  });
}

/** The same model with every tensor copied to memory: plain float32 data, no codebook. */
function plain(m: ModelStream): ModelStream {
  return applyStages(m, [
    new TransformStream<Layer, Layer>({
      async transform(layer, c) {
        const params: Record<string, Tensor> = {};
        for (const [role, t] of Object.entries(layer.params)) {
          params[role] = Tensor.fromBytes(t.name, t.dtype, t.shape, (await t.bytes()).slice());
        }
        c.enqueue({ ...layer, params });
      },
    }),
  ]);
}

for (const kind of ["layers-model", "graph-model"] as const) {
  Deno.test(`clustered .cvp -> TF.js ${kind}: uint8 / float16 / float32 per layer, tfjs predicts as the float model`, async () => {
    const r = rng(9);
    const make = (name: string, shape: number[]) => {
      if (name === "c1.weight") {
        return clusteredTensor(name, shape, 12, r, { centers: Array.from({ length: 12 }, (_, j) => (j - 4) * 0.0625) });
      }
      if (name === "c2.weight") return clusteredTensor(name, shape, 16, r, { hint: { encoding: "cluster" } });
      if (name === "fc.weight") {
        // bf16 centres beyond binary16's range.
        return clusteredTensor(name, shape, 4, r, { repr: "bf16", centers: [-1e-30, 0.25, 1.5, 70144] });
      }
      return floats(name, shape, r);
    };
    const cvp = await writeToBytes(smallModel(make, r));
    const dir = await Deno.makeTempDir();
    try {
      const notes: string[] = [];
      await writeTfjs(await openCvp(cvp), `${dir}/kept`, { tfjsKind: kind, notice: (l) => notes.push(l) });
      await writeTfjs(plain(await openCvp(cvp)), `${dir}/float`, { tfjsKind: kind });
      const manifest = (d: string) => JSON.parse(Deno.readTextFileSync(`${d}/model.json`)).weightsManifest[0].weights;
      const stored = Object.fromEntries(
        manifest(`${dir}/kept`).map((
          w: { name: string; quantization?: { dtype: string } },
        ) => [w.name, w.quantization?.dtype ?? "float32"]),
      );
      const kernels = Object.entries(stored).filter(([n]) => /kernel/.test(n)).map(([, d]) => d);
      assertEquals(kernels, ["uint8", "float16", "float32"], JSON.stringify(stored));
      assert(
        manifest(`${dir}/float`).every((w: { quantization?: unknown }) => !w.quantization),
        "the reference is plain float32",
      );
      assertEquals(notes.length, 4, notes.join("\n"));
      assertEquals(
        notes[3],
        "tfjs: clustered weights: 1 stored as uint8, 1 widened to float16, 1 to float32 (all exact)",
      );
      assert(
        notes[0].includes("stored as uint8") && notes[1].includes("widened to float16") &&
          notes[2].includes("widened to float32"),
        notes.join("\n"),
      );
      const x = Float32Array.from({ length: 72 }, () => r() * 2 - 1);
      const want = await tfjsPredict(`${dir}/float/model.json`, x, [1, 6, 6, 2]);
      const got = await tfjsPredict(`${dir}/kept/model.json`, x, [1, 6, 6, 2]);
      assertEquals(Array.from(got), Array.from(want));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
