/**
 * The executor's chunked batches (`chunk`): the same outputs as the whole batch, bit for bit on tfjs, also with
 * chunks spilled to disk (`spill`), and with convolutions and FC products on ONNX Runtime (`ort`; the FC's 5 rows in 5 blocks, one product
 * per block for all chunks) the same within float32 rounding.
 */
import { LayerExecutor } from "./executor.ts";
import { loadOrt } from "../linalg/ort.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { assert, assertEquals, rng } from "../../tests/helpers.ts";

function model(): Layer[] {
  const r = rng(5);
  const f = (n: number) => Float32Array.from({ length: n }, () => r() - 0.5);
  const t = (name: string, shape: number[]) => Tensor.fromFloat32(name, shape, f(shape.reduce((p, q) => p * q, 1)));
  const conv = (name: string, i: string, o: string, cin: number, cout: number): Layer => ({
    name,
    op: "Conv",
    attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
    inputs: [i],
    outputs: [o],
    params: { weight: t(`${name}_w`, [cout, cin, 3, 3]), bias: t(`${name}_b`, [cout]) },
  });
  return [
    conv("c1", "x", "c1", 3, 8),
    { name: "r1", op: "Relu", attrs: {}, inputs: ["c1"], outputs: ["r1"], params: {} },
    conv("c2", "r1", "c2", 8, 6),
    // c2 is read twice (here and by the Add), so it outlives its first reader.
    { name: "r2", op: "Relu", attrs: {}, inputs: ["c2"], outputs: ["r2"], params: {} },
    { name: "s", op: "Add", attrs: {}, inputs: ["c2", "r2"], outputs: ["s"], params: {} },
    { name: "fl", op: "Flatten", attrs: { axis: 1 }, inputs: ["s"], outputs: ["fl"], params: {} },
    {
      name: "fc",
      op: "FC",
      attrs: {},
      inputs: ["fl"],
      outputs: ["y"],
      params: { weight: t("fc_w", [5, 6 * 6 * 6]), bias: t("fc_b", [5]) },
    },
  ];
}

const tempFolders = () =>
  [...Deno.readDirSync(Deno.env.get("TMPDIR") ?? "/tmp")]
    .filter((e) => e.name.startsWith("convpress-activations-")).map((e) => e.name);

async function run(opts: { chunk?: number; ort?: boolean; spill?: number }): Promise<Float32Array> {
  const r = rng(9);
  const x = Float32Array.from({ length: 7 * 3 * 6 * 6 }, () => r() - 0.5);
  const uses = new Map([["x", 1], ["c1", 1], ["r1", 1], ["c2", 2], ["r2", 1], ["s", 1], ["fl", 1], ["y", 0]]);
  const ort = opts.ort ? (await loadOrt()).ort : undefined;
  const before = tempFolders();
  const ex = await LayerExecutor.create({
    uses,
    keep: ["y"],
    chunk: opts.chunk,
    ort,
    fcBlockBytes: 1000,
    spill: opts.spill,
    spillMin: 0,
  });
  try {
    ex.setInput("x", x, [7, 3, 6, 6]);
    for (const l of model()) await ex.run(l);
    if (opts.spill !== undefined && opts.chunk) {
      const made = tempFolders().filter((f) => !before.includes(f));
      assert(made.length === 1, `spilling made ${made.length} folders`);
    }
    const got = await ex.read("y");
    assert(got.shape.join() === "7,5", `shape ${got.shape}`);
    let n = 0;
    for await (const c of ex.readChunks("y")) n += c.shape[0];
    assert(n === 7, `chunks hold ${n} samples`);
    return got.data;
  } finally {
    ex.dispose();
    const left = tempFolders().filter((f) => !before.includes(f));
    assert(left.length === 0, `spill folders left behind: ${left}`);
  }
}

Deno.test("LayerExecutor: a batch run in chunks gives the whole batch's outputs bit for bit", async () => {
  const whole = await run({});
  for (const chunk of [1, 2, 3]) {
    // Budgets: nothing spilled, everything spilled, some chunks in memory and some on disk.
    for (const spill of [undefined, 0, 1500]) {
      const got = await run({ chunk, spill });
      got.forEach((v, i) =>
        assert(Object.is(v, whole[i]), `chunk ${chunk} spill ${spill}: y[${i}] ${v} vs ${whole[i]}`)
      );
    }
  }
});

Deno.test("LayerExecutor: convolutions and FC blocks on ONNX Runtime agree with tfjs", async () => {
  if (!(await loadOrt()).ort) return;
  const whole = await run({});
  const got = await run({ chunk: 3, ort: true });
  got.forEach((v, i) => assert(Math.abs(v - whole[i]) < 1e-5, `y[${i}] ${v} vs ${whole[i]}`));
  const spilled = await run({ chunk: 3, ort: true, spill: 0 });
  spilled.forEach((v, i) => assert(Object.is(v, got[i]), `spilled: y[${i}] ${v} vs ${got[i]}`));
});

Deno.test("LayerExecutor: a Conv on ONNX Runtime waits for its Relu and runs fused, with the same values", async () => {
  const { ort } = await loadOrt();
  if (!ort) return;
  const r = rng(9);
  const x = Float32Array.from({ length: 7 * 3 * 6 * 6 }, () => r() - 0.5);
  const uses = new Map([["x", 1], ["c1", 1], ["r1", 1], ["c2", 2], ["r2", 1], ["s", 1], ["fl", 1], ["y", 0]]);
  const layers = model();
  // split: c1 run alone, then looked at (shape, pin, read) before its Relu, so it is not fused.
  const go = async (split: boolean) => {
    const ex = await LayerExecutor.create({ uses, keep: ["y"], chunk: 3, ort, spill: 0, spillMin: 0 });
    try {
      ex.setInput("x", x, [7, 3, 6, 6]);
      await ex.run(layers[0]);
      assert(ex.has("c1"), "the waiting Conv's output is live");
      assertEquals(ex.shape("c1"), [7, 8, 6, 6]);
      let c1: Float32Array | undefined;
      if (split) {
        ex.pin("c1");
        c1 = (await ex.read("c1")).data;
        ex.unpin("c1");
      }
      for (const l of layers.slice(1)) await ex.run(l);
      assert(!ex.has("c1") && !ex.has("r1"), "c1 and r1 freed after their readers");
      return { y: (await ex.read("y")).data, c1 };
    } finally {
      ex.dispose();
    }
  };
  const fused = await go(false), split = await go(true);
  fused.y.forEach((v, i) => assert(Object.is(v, split.y[i]), `y[${i}] fused ${v} vs ${split.y[i]}`));
  const tf = await run({});
  split.y.forEach((v, i) => assert(Math.abs(v - tf[i]) < 1e-5, `y[${i}] ${v} vs tfjs ${tf[i]}`));
  assertEquals(split.c1!.length, 7 * 8 * 6 * 6);
});

Deno.test("LayerExecutor: Conv, Relu and MaxPool on ONNX Runtime run as one chain; the values equal tfjs'", async () => {
  const { ort } = await loadOrt();
  if (!ort) return;
  const r = rng(11);
  const w = Tensor.fromFloat32("w", [4, 3, 3, 3], Float32Array.from({ length: 108 }, () => r() - 0.5));
  const layers: Layer[] = [
    {
      name: "c",
      op: "Conv",
      attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
      inputs: ["x"],
      outputs: ["c"],
      params: { weight: w },
    },
    { name: "r", op: "Relu", attrs: {}, inputs: ["c"], outputs: ["r"], params: {} },
    {
      name: "p",
      op: "MaxPool",
      attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil: true, countIncludePad: false },
      inputs: ["r"],
      outputs: ["p"],
      params: {},
    },
  ];
  const x = Float32Array.from({ length: 5 * 3 * 7 * 7 }, () => r() - 0.5);
  const uses = new Map([["x", 1], ["c", 1], ["r", 1], ["p", 0]]);
  const go = async (useOrt: boolean, split: boolean) => {
    const ex = await LayerExecutor.create({ uses, keep: ["p"], chunk: 2, ort: useOrt ? ort : undefined, spill: 0 });
    try {
      ex.setInput("x", x, [5, 3, 7, 7]);
      await ex.run(layers[0]);
      await ex.run(layers[1]);
      if (useOrt) assertEquals(ex.shape("r"), [5, 4, 7, 7]);
      if (split) assertEquals((await ex.read("r")).shape, [5, 4, 7, 7]);
      await ex.run(layers[2]);
      const y = await ex.read("p");
      assertEquals(y.shape, [5, 4, 4, 4]);
      return y.data;
    } finally {
      ex.dispose();
    }
  };
  const chain = await go(true, false), split = await go(true, true), tf = await go(false, false);
  chain.forEach((v, i) => assert(Object.is(v, split[i]), `p[${i}] chain ${v} vs split ${split[i]}`));
  chain.forEach((v, i) => assert(Math.abs(v - tf[i]) < 1e-5, `p[${i}] ${v} vs tfjs ${tf[i]}`));
});
