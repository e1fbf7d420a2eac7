/**
 * The channel-scales stage: moving each output channel's scale into the BatchNorm or Scale after it computes the same
 * function (checked in ONNX Runtime on the written ONNX), leaves every row with max |w| = 1, and never rescales a
 * value something else also reads.
 */
import { assert, assertEquals, onnxFile, ortRun, relativeError, rng, streamOf } from "../../tests/helpers.ts";
import { bnModel, withSharedValue } from "../../tests/bn_model.ts";
import { ConvpressError } from "../errors.ts";
import { Tensor } from "../model/tensor.ts";
import { collectLayers, type ModelHeader } from "../model/types.ts";
import { channelScalesStage } from "./channel_scales.ts";

const r = rng(23);
/** Rows whose ranges differ by up to 1000x, as in MobileNet-style convolutions; row 1 all zero. */
const weight = (name: string, shape: number[]) => {
  const row = shape.slice(1).reduce((a, b) => a * b, 1);
  const w = Float32Array.from(
    { length: shape[0] * row },
    (_, i) => (r() - 0.5) * 10 ** (-3 * ((i / row) | 0) / shape[0]),
  );
  w.fill(0, row, 2 * row);
  return Tensor.fromFloat32(name, shape, w);
};
const model = () => bnModel(r, weight);

for (const mode of ["keep", "affine"] as const) {
  Deno.test(`channel scales (${mode}): Conv, depthwise Conv and FC rows go to unit range, the function stays`, async () => {
    const { header, layers } = model();
    const stage = channelScalesStage(header, { batchNorm: mode });
    const out = await collectLayers(streamOf(header, layers).layers.pipeThrough(stage));
    const ops = layers.map((l) => mode === "affine" && l.op === "BatchNorm" ? "Scale" : l.op);
    assertEquals(out.map((l) => l.op), ops);
    if (mode === "affine") assert(!out[0].params.bias && !out[6].params.bias, "the biases went into the Scales");
    for (const l of out.filter((l) => l.params.weight)) {
      const w = await l.params.weight.float32();
      const row = w.length / l.params.weight.shape[0];
      for (let c = 0; c < l.params.weight.shape[0]; c++) {
        const m = w.subarray(c * row, (c + 1) * row).reduce((a, v) => Math.max(a, Math.abs(v)), 0);
        assert(c === 1 ? m === 0 : Math.abs(m - 1) < 1e-6, `${l.name} row ${c}: max ${m}`);
      }
    }
    const x = Float32Array.from({ length: 2 * 3 * 4 * 4 }, () => r() * 2 - 1);
    const a = await ortRun(await onnxFile(header, layers), x, [2, 3, 4, 4]);
    const b = await ortRun(await onnxFile(header, out), x, [2, 3, 4, 4]);
    const e = relativeError(b, a);
    assert(e < 1e-5, `relative error ${e}`);
  });
}

Deno.test("channel scales: a value read by more than the BatchNorm is never rescaled silently", async () => {
  const { header, layers } = model();
  const withAdd = withSharedValue(layers); // c1 is read by bn1 and by an Add later on
  let msg = "";
  try {
    await collectLayers(streamOf(header, withAdd).layers.pipeThrough(channelScalesStage(header)));
  } catch (err) {
    assert(err instanceof ConvpressError && err.code === "unsupported", String(err));
    msg = err.message;
  }
  assert(/'c1'.*'bn1'.*'add'/.test(msg), msg);
  // With the wiring in the header's plan: c1 keeps its scales, the others move theirs.
  const plan = withAdd.map((l) => ({ name: l.name, op: l.op, params: [], inputs: l.inputs, outputs: l.outputs }));
  const h2 = { ...header, plan } as ModelHeader;
  const out = await collectLayers(streamOf(h2, withAdd).layers.pipeThrough(channelScalesStage(h2)));
  const c1 = out.find((l) => l.name === "c1")!;
  assert(c1.params.weight === withAdd[0].params.weight, "c1 must keep its weight");
  assert(out.find((l) => l.name === "dw")!.params.weight !== withAdd[4].params.weight, "dw must be rescaled");
});
