/**
 * The fold stage: BatchNorm and Scale folded into the Conv or FC before them compute the same function (checked in
 * ONNX Runtime on the written ONNX), and a value that something else also reads is never folded away silently.
 */
import { assert, assertEquals, onnxFile, ortRun, relativeError, rng, streamOf } from "../../tests/helpers.ts";
import { bnModel, withSharedValue } from "../../tests/bn_model.ts";
import { ConvpressError } from "../errors.ts";
import { Tensor } from "../model/tensor.ts";
import { collectLayers, type ModelHeader } from "../model/types.ts";
import { foldStage } from "./fold.ts";

const r = rng(17);
const weight = (name: string, shape: number[]) =>
  Tensor.fromFloat32(name, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r() - 0.5));
const model = () => bnModel(r, weight);

Deno.test("fold: BatchNorm and Scale after Conv, depthwise Conv and FC fold into the same function", async () => {
  const { header, layers } = model();
  const folded = await collectLayers(streamOf(header, layers).layers.pipeThrough(foldStage(header)));
  assertEquals(folded.map((l) => l.op), ["Conv", "Relu", "Conv", "Flatten", "FC"]);
  assertEquals(folded.map((l) => l.outputs[0]), ["bn1", "r1", "sc", "fl", "y"]);
  const x = Float32Array.from({ length: 2 * 3 * 4 * 4 }, () => r() * 2 - 1);
  const a = await ortRun(await onnxFile(header, layers), x, [2, 3, 4, 4]);
  const b = await ortRun(await onnxFile(header, folded), x, [2, 3, 4, 4]);
  const e = relativeError(b, a);
  assert(e < 1e-5, `relative error ${e}`);
});

Deno.test("fold: a value read by more than the BatchNorm is never folded away silently", async () => {
  const { header, layers } = model();
  const withAdd = withSharedValue(layers); // c1 is read by bn1 and by an Add later on
  // Without the wiring in the header: the later reader is an error naming both layers.
  let msg = "";
  try {
    await collectLayers(streamOf(header, withAdd).layers.pipeThrough(foldStage(header)));
  } catch (err) {
    assert(err instanceof ConvpressError && err.code === "unsupported", String(err));
    msg = err.message;
  }
  assert(/'c1'.*'bn1'.*'add'/.test(msg), msg);
  // With the wiring in the header's plan: c1 is left unfolded, the rest still folds.
  const plan = withAdd.map((l) => ({ name: l.name, op: l.op, params: [], inputs: l.inputs, outputs: l.outputs }));
  const h2 = { ...header, plan } as ModelHeader;
  const folded = await collectLayers(streamOf(h2, withAdd).layers.pipeThrough(foldStage(h2)));
  assertEquals(folded.map((l) => l.name), ["c1", "bn1", "r1", "add", "dw", "fl", "fc"]);
});
