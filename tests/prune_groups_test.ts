/**
 * Coupled-channel pruning (src/compress/channel_groups.ts, src/compress/prune.ts): channels tied by a residual Add, a
 * Concat, a depthwise conv and a value with several readers are pruned as one group. The check, by ONNX Runtime:
 * the pruned model computes exactly what the original computes once the pruned channels' producer rows (and
 * biases) are zeroed, so nothing but the removed channels changed; and the real torchvision exports prune to their
 * MAC target and still run.
 */
import { applyStages, openModel } from "../src/app/convert.ts";
import { analyzePruning, planPruning, type PrunePlan, pruneStage } from "../src/compress/prune.ts";
import { Tensor } from "../src/model/tensor.ts";
import { collectLayers, type Layer, type ModelHeader, type ModelStream } from "../src/model/types.ts";
import { writeOnnx } from "../formats/onnx/writer.ts";
import { TORCH_DIR, torchExports } from "./torch_zoo.ts";
import {
  assert,
  assertEquals,
  ortRun,
  relativeError,
  removeOnExit,
  rng,
  runCli,
  streamOf,
  testNeeding,
} from "./helpers.ts";

/**
 * The original with every pruned channel's producer rows and biases set to zero (depthwise rows included), and the
 * shifts of channel-wise layers (BatchNorm/Scale bias and mean) zero there too, so a pruned channel stays zero.
 */
function zeroed(plan: PrunePlan): TransformStream<Layer, Layer> {
  return new TransformStream<Layer, Layer>({
    async transform(layer, c) {
      const inKeep = plan.values?.get(layer.inputs[0]);
      if (inKeep && (layer.op === "BatchNorm" || layer.op === "Scale")) {
        const kept = new Set(inKeep.keep);
        const params: Record<string, Tensor> = { ...layer.params };
        for (const role of ["bias", "mean"]) {
          const t = layer.params[role];
          if (!t || t.size !== inKeep.channels) continue;
          const d = Float32Array.from(await t.float32());
          for (let i = 0; i < d.length; i++) if (!kept.has(i)) d[i] = 0;
          params[role] = Tensor.fromFloat32(`${t.name}_z`, t.shape, d);
        }
        return c.enqueue({ ...layer, params, origin: undefined });
      }
      const w = layer.params.weight;
      const dw = layer.op === "Conv" && ((layer.attrs.group as number) ?? 1) > 1;
      const keep = dw ? plan.values?.get(layer.inputs[0])?.keep : plan.keep.get(layer.name);
      if (!keep || !w) return c.enqueue(layer);
      const kept = new Set(keep);
      const rows = w.shape[0], len = w.size / rows;
      const wd = Float32Array.from(await w.float32());
      const params: Record<string, Tensor> = { ...layer.params };
      for (let r = 0; r < rows; r++) if (!kept.has(r)) wd.fill(0, r * len, (r + 1) * len);
      params.weight = Tensor.fromFloat32(`${w.name}_z`, w.shape, wd);
      const b = layer.params.bias;
      if (b) {
        const bd = Float32Array.from(await b.float32());
        for (let r = 0; r < rows; r++) if (!kept.has(r)) bd[r] = 0;
        params.bias = Tensor.fromFloat32(`${b.name}_z`, b.shape, bd);
      }
      c.enqueue({ ...layer, params, origin: undefined });
    },
  });
}

async function onnxOf(model: ModelStream, dir: string, name: string): Promise<string> {
  const path = `${dir}/${name}.onnx`;
  await writeOnnx(model, path);
  return path;
}

const CONV = { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 };
const CONV1 = { kernel: [1, 1], strides: [1, 1], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 };

Deno.test("coupled groups: residual Add, depthwise conv, Concat and a shared value prune as groups, exactly", async () => {
  const r = rng(11);
  const rand = (name: string, shape: number[]) =>
    Tensor.fromFloat32(name, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => r() * 2 - 1));
  const conv = (name: string, input: string, out: number, inC: number, k = 3): Layer => ({
    name,
    op: "Conv",
    attrs: k === 3 ? CONV : CONV1,
    inputs: [input],
    outputs: [name],
    params: { weight: rand(`${name}.w`, [out, inC, k, k]), bias: rand(`${name}.b`, [out]) },
  });
  const op = (name: string, o: string, inputs: string[], attrs: Layer["attrs"] = {}): Layer => ({
    name,
    op: o as Layer["op"],
    attrs,
    inputs,
    outputs: [name],
    params: {},
  });
  const original: Layer[] = [
    conv("a", "x", 8, 3),
    op("ra", "Relu", ["a"]),
    conv("b", "ra", 8, 8),
    op("add", "Add", ["ra", "b"]), // a and b: one group
    op("radd", "Relu", ["add"]), // read by the depthwise conv and by d: a shared value
    {
      ...conv("dw", "radd", 8, 1),
      attrs: { ...CONV, group: 8 },
      params: { weight: rand("dw.w", [8, 1, 3, 3]), bias: rand("dw.b", [8]) },
    },
    op("rdw", "Relu", ["dw"]),
    conv("c", "rdw", 6, 8, 1),
    conv("d", "radd", 6, 8),
    op("cat", "Concat", ["c", "d"], { axis: 1 }), // e reads c's channels, then d's at offset 6
    op("rcat", "Relu", ["cat"]),
    conv("e", "rcat", 10, 12),
    op("re", "Relu", ["e"]),
    op("gap", "GlobalAvgPool", ["re"]),
    op("flat", "Flatten", ["gap"], { axis: 1 }),
    { ...op("fc", "FC", ["flat"]), params: { weight: rand("fc.w", [5, 10]), bias: rand("fc.b", [5]) } },
  ];
  const layers = () => [...original];
  const hdr: ModelHeader = {
    name: "groups",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape: [1, 3, 8, 8] }],
    outputs: [{ name: "fc", dtype: "float32", shape: [1, 5] }],
    metadata: {},
  };
  const analysis = await analyzePruning(streamOf(hdr, layers()));
  const plan = planPruning(analysis, { keep: 0.5 });
  // Group consistency: a and b (residual Add) share one kept list; the depthwise conv follows it.
  const ka = plan.keep.get("a")!;
  assertEquals(ka.length, 4);
  assertEquals(plan.keep.get("b"), ka);
  assertEquals(plan.values?.get("radd")?.keep, ka);
  assertEquals(plan.keep.get("c")!.length, 3);
  assertEquals(plan.keep.get("d")!.length, 3);
  assertEquals(plan.keep.get("e")!.length, 5);
  assertEquals(plan.skipped, [{ layer: "fc", reason: "its output is a model output" }]);
  // Concat offsets: e's input keeps c's channels, then d's shifted by 6.
  assertEquals(plan.inputKeep?.get("e"), [...plan.keep.get("c")!, ...plan.keep.get("d")!.map((i) => i + 6)]);
  const pruned = await collectLayers(streamOf(hdr, layers()).layers.pipeThrough(pruneStage(streamOf(hdr, []), plan)));
  const by = new Map(pruned.map((l) => [l.name, l]));
  assertEquals(by.get("a")!.params.weight.shape, [4, 3, 3, 3]);
  assertEquals(by.get("b")!.params.weight.shape, [4, 4, 3, 3]);
  assertEquals(by.get("dw")!.params.weight.shape, [4, 1, 3, 3]);
  assertEquals(by.get("dw")!.attrs.group, 4);
  assertEquals(by.get("c")!.params.weight.shape, [3, 4, 1, 1]);
  assertEquals(by.get("d")!.params.weight.shape, [3, 4, 3, 3]);
  assertEquals(by.get("e")!.params.weight.shape, [5, 6, 3, 3]);
  assertEquals(by.get("fc")!.params.weight.shape, [5, 5]);
  const dir = await Deno.makeTempDir({ prefix: "convpress-prune-groups-" });
  removeOnExit(dir);
  const x = Float32Array.from({ length: 3 * 64 }, () => r() * 2 - 1);
  const ref = await ortRun(await onnxOf(applyStages(streamOf(hdr, layers()), [zeroed(plan)]), dir, "zeroed"), x, [
    1,
    3,
    8,
    8,
  ]);
  const small = await ortRun(await onnxOf(streamOf(hdr, pruned), dir, "pruned"), x, [1, 3, 8, 8]);
  const full = await ortRun(await onnxOf(streamOf(hdr, layers()), dir, "full"), x, [1, 3, 8, 8]);
  assert(relativeError(small, ref) < 1e-5, `pruned vs zeroed original: ${relativeError(small, ref)}`);
  assert(relativeError(full, ref) > 1e-3, "the zeroed channels must matter, or the test checks nothing");
});

const TORCH = TORCH_DIR;
const TORCH_NEEDS = { python: ["torch", "torchvision", "onnx"] };

for (const name of ["resnet18", "mobilenet_v2", "squeezenet1_1", "googlenet"]) {
  testNeeding(
    `torchvision ${name}: --prune flops=0.5 reaches its target, equals the zeroed original in ONNX Runtime`,
    TORCH_NEEDS,
    async () => {
      const path = `${await torchExports([name])}/${name}.onnx`;
      const dir = await Deno.makeTempDir({ prefix: "convpress-prune-zoo-" });
      removeOnExit(dir);
      const analysis = await analyzePruning(await openModel(path));
      const plan = planPruning(analysis, { flops: 0.5 });
      assert(plan.macsAfter <= 0.5 * plan.macsBefore, `MACs ${plan.macsAfter} of ${plan.macsBefore}`);
      assertEquals(plan.warning, undefined);
      assert(plan.keep.size > 0, "nothing pruned");
      const m1 = await openModel(path), m2 = await openModel(path);
      const pruned = await onnxOf(applyStages(m1, [pruneStage(m1, plan)]), dir, "pruned");
      const ref = await onnxOf(applyStages(m2, [zeroed(plan)]), dir, "zeroed");
      const r = rng(5);
      const x = Float32Array.from({ length: 3 * 224 * 224 }, () => r() * 2 - 1);
      const a = await ortRun(pruned, x, [1, 3, 224, 224]), b = await ortRun(ref, x, [1, 3, 224, 224]);
      assertEquals(a.length, 1000);
      assert(relativeError(a, b) < 1e-4, `pruned vs zeroed original: ${relativeError(a, b)}`);
    },
  );
}

// Other zoo models: whatever their groups allow (channel shuffle, squeeze-excitation Mul and BatchNorm before a
// conv block some), the pruned model still equals the zeroed original, and a target not reached says so.
for (const name of ["densenet121", "efficientnet_b0", "shufflenet_v2_x1_0", "mnasnet", "regnet", "alexnet"]) {
  testNeeding(
    `torchvision ${name}: --prune flops=0.5 equals the zeroed original, or warns`,
    TORCH_NEEDS,
    async () => {
      const path = `${await torchExports([name])}/${name}.onnx`;
      const dir = await Deno.makeTempDir({ prefix: "convpress-prune-zoo-" });
      removeOnExit(dir);
      const plan = planPruning(await analyzePruning(await openModel(path)), { flops: 0.5 });
      assertEquals(plan.warning !== undefined, plan.macsAfter > 0.5 * plan.macsBefore);
      const m1 = await openModel(path), m2 = await openModel(path);
      const pruned = await onnxOf(applyStages(m1, [pruneStage(m1, plan)]), dir, "pruned");
      const ref = await onnxOf(applyStages(m2, [zeroed(plan)]), dir, "zeroed");
      const r = rng(6);
      const x = Float32Array.from({ length: 3 * 224 * 224 }, () => r() * 2 - 1);
      const a = await ortRun(pruned, x, [1, 3, 224, 224]), b = await ortRun(ref, x, [1, 3, 224, 224]);
      assertEquals(a.length, 1000);
      assert(relativeError(a, b) < 1e-4, `pruned vs zeroed original: ${relativeError(a, b)}`);
      console.log(`${name}: MACs ${(plan.macsAfter / plan.macsBefore * 100).toFixed(1)}%, ${plan.keep.size} pruned`);
    },
  );
}

testNeeding(
  "compress --prune: a target the floors cannot reach warns, and fails with --strict",
  TORCH_NEEDS,
  async () => {
    await torchExports(["squeezenet1_1"]);
    const dir = await Deno.makeTempDir({ prefix: "convpress-prune-warn-" });
    removeOnExit(dir);
    const args = ["compress", `${TORCH}/squeezenet1_1.onnx`, "--prune", "flops=0.95", "-o", `${dir}/s.cvp`];
    const warn = await runCli(args);
    assertEquals(warn.code, 0, warn.stderr);
    assert(/warning: Pruning target not reached \(flops=0.95: MACs cut by/.test(warn.stderr), warn.stderr);
    const strict = await runCli([...args, "--strict"]);
    assert(strict.code !== 0, "--strict must fail");
    const dec = await runCli(["decode", `${dir}/s.cvp`, "-o", `${dir}/s.onnx`]);
    assertEquals(dec.code, 0, dec.stderr);
    const y = await ortRun(`${dir}/s.onnx`, new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
    assertEquals(y.length, 1000);
  },
);
