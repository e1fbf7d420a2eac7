import { assert, assertEquals, onnxFile, ortRun, relativeError, rng, streamOf } from "../../tests/helpers.ts";
import { Tensor } from "../model/tensor.ts";
import { collectLayers, type Layer, type ModelHeader } from "../model/types.ts";
import { gapStage } from "./gap.ts";
import { kmeans1d } from "./kmeans1d.ts";
import { analyzePruning, planPruning, pruneStage } from "./prune.ts";
import { factorize } from "./tsvd.ts";
import { clusterTensor } from "./cluster.ts";
import { float16ToFloat32, float32ToFloat16 } from "../model/float16.ts";

function randn(r: () => number, n: number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);
}

function header(input: number[], output: string, outShape: number[]): ModelHeader {
  return {
    name: "t",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape: input }],
    outputs: [{ name: output, dtype: "float32", shape: outShape }],
    metadata: {},
  };
}

const conv = (name: string, input: string, w: Tensor, b: Tensor): Layer => ({
  name,
  op: "Conv",
  attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
  inputs: [input],
  outputs: [name],
  params: { weight: w, bias: b },
});

Deno.test("GAP fold is exact on spatially constant inputs", async () => {
  const r = rng(1);
  const [c, h, w, o] = [6, 4, 5, 7];
  const hdr = header([1, c, h, w], "y", [1, o]);
  const layers: Layer[] = [
    { name: "flat", op: "Flatten", attrs: { axis: 1 }, inputs: ["x"], outputs: ["f"], params: {} },
    {
      name: "fc",
      op: "FC",
      attrs: {},
      inputs: ["f"],
      outputs: ["y"],
      params: {
        weight: Tensor.fromFloat32("fc.w", [o, c * h * w], randn(r, o * c * h * w)),
        bias: Tensor.fromFloat32("fc.b", [o], randn(r, o)),
      },
    },
  ];
  const folded = await collectLayers(streamOf(hdr, layers).layers.pipeThrough(gapStage(hdr)));
  assertEquals(folded.map((l) => l.op), ["GlobalAvgPool", "FC"]);
  assertEquals(folded[1].params.weight.shape, [o, c]);
  const x = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) x.fill(r() * 4 - 2, ch * h * w, (ch + 1) * h * w);
  const a = await ortRun(await onnxFile(hdr, layers), x, [1, c, h, w]);
  const b = await ortRun(await onnxFile(hdr, folded), x, [1, c, h, w]);
  assert(relativeError(b, a) < 1e-6, `relative error ${relativeError(b, a)}`);
});

Deno.test("pruning keeps the untouched channels' outputs identical, and exact when pruned filters are dead", async () => {
  const r = rng(2);
  const [c0, c1, c2, s] = [3, 8, 4, 6];
  const w1 = randn(r, c1 * c0 * 9), b1 = randn(r, c1, 0.1);
  for (const dead of [1, 4, 6]) { // filters whose ReLU output is always 0
    w1.fill(0, dead * c0 * 9, (dead + 1) * c0 * 9);
    b1[dead] = -1;
  }
  const layers = (): Layer[] => [
    conv("conv1", "x", Tensor.fromFloat32("w1", [c1, c0, 3, 3], w1), Tensor.fromFloat32("b1", [c1], b1)),
    { name: "relu1", op: "Relu", attrs: {}, inputs: ["conv1"], outputs: ["r1"], params: {} },
    conv(
      "conv2",
      "r1",
      Tensor.fromFloat32("w2", [c2, c1, 3, 3], randn(r, c2 * c1 * 9)),
      Tensor.fromFloat32("b2", [c2], randn(r, c2)),
    ),
  ];
  const hdr = header([1, c0, s, s], "conv2", [1, c2, s, s]);
  const original = layers();
  const plan = planPruning(await analyzePruning(streamOf(hdr, original)), { keep: { conv1: 5 / 8 } });
  assertEquals(plan.keep.get("conv1"), [0, 2, 3, 5, 7]);
  const pruned = await collectLayers(streamOf(hdr, original).layers.pipeThrough(pruneStage(streamOf(hdr, []), plan)));
  assertEquals(pruned[0].params.weight.shape, [5, c0, 3, 3]);
  assertEquals(pruned[2].params.weight.shape, [c2, 5, 3, 3]);
  const x = randn(r, c0 * s * s);
  // The model output: exact, since only dead channels went.
  const full = await ortRun(await onnxFile(hdr, original), x, [1, c0, s, s]);
  const small = await ortRun(await onnxFile(hdr, pruned), x, [1, c0, s, s]);
  assert(relativeError(small, full) < 1e-6, `model output ${relativeError(small, full)}`);
  // conv1's kept channels: identical to the original's.
  const h1 = header([1, c0, s, s], "conv1", [1, c1, s, s]);
  const a = await ortRun(await onnxFile(h1, [original[0]]), x, [1, c0, s, s]);
  const b = await ortRun(
    await onnxFile({ ...h1, outputs: [{ ...h1.outputs[0], shape: [1, 5, s, s] }] }, [pruned[0]]),
    x,
    [1, c0, s, s],
  );
  [0, 2, 3, 5, 7].forEach((ch, i) => {
    assertEquals(
      Array.from(b.subarray(i * s * s, (i + 1) * s * s)),
      Array.from(a.subarray(ch * s * s, (ch + 1) * s * s)),
    );
  });
});

Deno.test("TSVD at full rank reproduces the layer", async () => {
  const r = rng(3);
  const [m, n] = [9, 14];
  const w = randn(r, m * n);
  const layer: Layer = {
    name: "fc",
    op: "FC",
    attrs: {},
    inputs: ["x"],
    outputs: ["y"],
    params: { weight: Tensor.fromFloat32("w", [m, n], w), bias: Tensor.fromFloat32("b", [m], randn(r, m)) },
  };
  // Full rank saves nothing, so it is skipped: the layer comes back as it was.
  assertEquals((await factorize(layer, { rank: m })).length, 1);
  // Factorized anyway at full rank, U S V^T equals W.
  const wide: Layer = {
    ...layer,
    params: { ...layer.params, weight: Tensor.fromFloat32("w", [3, 40], randn(r, 120)) },
  };
  const [a, b] = await factorize({
    ...wide,
    params: { weight: wide.params.weight, bias: Tensor.fromFloat32("b", [3], randn(r, 3)) },
  }, { rank: 3, always: true });
  const va = await a.params.weight.float32(),
    ub = await b.params.weight.float32(),
    orig = await wide.params.weight.float32();
  let err = 0, norm = 0;
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 40; j++) {
      let v = 0;
      for (let t = 0; t < 3; t++) v += ub[i * 3 + t] * va[t * 40 + j];
      err += (v - orig[i * 40 + j]) ** 2;
      norm += orig[i * 40 + j] ** 2;
    }
  }
  assert(Math.sqrt(err / norm) < 1e-5, `reconstruction error ${Math.sqrt(err / norm)}`);
  const hdr = header([2, 40], "y", [2, 3]);
  const x = randn(r, 80);
  const before = await ortRun(
    await onnxFile(hdr, [{ ...wide, params: { weight: wide.params.weight, bias: b.params.bias } }]),
    x,
    [2, 40],
  );
  const after = await ortRun(await onnxFile(hdr, [a, b]), x, [2, 40]);
  assert(relativeError(after, before) < 1e-5, `outputs ${relativeError(after, before)}`);
  // A structure-only pass gives the same wiring and shapes without an SVD; its factors refuse to be read.
  const [sa, sb] = await factorize(wide, { rank: 3, always: true }, true);
  assertEquals([sa.name, sa.inputs, sa.outputs, sa.params.weight.shape], [a.name, a.inputs, a.outputs, [3, 40]]);
  assertEquals([sb.name, sb.inputs, sb.outputs, sb.params.weight.shape], [b.name, b.inputs, b.outputs, [3, 3]]);
  let refused = false;
  await sa.params.weight.float32().catch(() => (refused = true));
  assert(refused, "a placeholder factor was read");
  assertEquals((await factorize(layer, { rank: m }, true)).length, 1, "full rank is skipped in a scan too");
});

Deno.test("k-means on a known mixture finds its centres; clustering keeps at most 2^bits fp16 values", async () => {
  const r = rng(4);
  const centres = [-1, 0, 0.5, 2];
  const v = Float32Array.from({ length: 100_000 }, (_, i) => centres[i % 4] + (r() - 0.5) * 0.02);
  const c = kmeans1d(v, 4);
  assertEquals(c.centers.length, 4);
  c.centers.forEach((x, i) => assert(Math.abs(x - centres[i]) < 0.005, `centre ${x} vs ${centres[i]}`));
  const t = await clusterTensor(Tensor.fromFloat32("w", [v.length], v), 3);
  const values = new Set(await t.float32());
  assert(values.size <= 8, `${values.size} distinct values`);
  for (const x of values) assertEquals(float16ToFloat32(float32ToFloat16(x)), x, "representable in fp16");
  // Read in odd-sized chunks (values split across chunks, one reused array): the same clustering as in one piece.
  const bytes = new Uint8Array(v.buffer);
  const chunked = Tensor.fromChunks("w", "float32", [v.length], bytes.length, async function* () {
    for (let off = 0; off < bytes.length; off += 4093) yield bytes.slice(off, Math.min(bytes.length, off + 4093));
  });
  const a = (await clusterTensor(Tensor.fromFloat32("w", [v.length], v), 3)).meta.cluster as { indices: Uint8Array };
  const b = (await clusterTensor(chunked, 3)).meta.cluster as { indices: Uint8Array };
  assertEquals(b.indices.length, v.length);
  assert(a.indices.every((x, i) => x === b.indices[i]), "chunked indices differ");
  const centersOf = (x: Tensor) => [...(x.meta.cluster as { centers: Float32Array }).centers];
  assertEquals(centersOf(await clusterTensor(chunked, 3)), centersOf(t));
});
