/**
 * The executor's chunked batches (`chunk`): the same outputs as the whole batch, bit for bit on tfjs, and with
 * convolutions on ONNX Runtime (`ort`) the same within float32 rounding.
 */
import { LayerExecutor } from "./executor.ts";
import { loadOrt } from "../linalg/ort.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { assert, rng } from "../../tests/helpers.ts";

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
    { name: "fl", op: "Flatten", attrs: { axis: 1 }, inputs: ["c2"], outputs: ["fl"], params: {} },
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

async function run(opts: { chunk?: number; ort?: boolean }): Promise<Float32Array> {
  const r = rng(9);
  const x = Float32Array.from({ length: 7 * 3 * 6 * 6 }, () => r() - 0.5);
  const uses = new Map([["x", 1], ["c1", 1], ["r1", 1], ["c2", 1], ["fl", 1], ["y", 0]]);
  const ort = opts.ort ? (await loadOrt()).ort : undefined;
  const ex = await LayerExecutor.create({ uses, keep: ["y"], chunk: opts.chunk, ort, fcBlockBytes: 1000 });
  try {
    ex.setInput("x", x, [7, 3, 6, 6]);
    for (const l of model()) await ex.run(l);
    const got = await ex.read("y");
    assert(got.shape.join() === "7,5", `shape ${got.shape}`);
    let n = 0;
    for await (const c of ex.readChunks("y")) n += c.shape[0];
    assert(n === 7, `chunks hold ${n} samples`);
    return got.data;
  } finally {
    ex.dispose();
  }
}

Deno.test("LayerExecutor: a batch run in chunks gives the whole batch's outputs bit for bit", async () => {
  const whole = await run({});
  for (const chunk of [1, 2, 3]) {
    const got = await run({ chunk });
    got.forEach((v, i) => assert(Object.is(v, whole[i]), `chunk ${chunk}: y[${i}] ${v} vs ${whole[i]}`));
  }
});

Deno.test("LayerExecutor: convolutions on ONNX Runtime agree with tfjs", async () => {
  if (!(await loadOrt()).ort) return;
  const whole = await run({});
  const got = await run({ chunk: 3, ort: true });
  got.forEach((v, i) => assert(Math.abs(v - whole[i]) < 1e-5, `y[${i}] ${v} vs ${whole[i]}`));
});
