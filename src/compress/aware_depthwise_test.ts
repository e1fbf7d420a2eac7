/**
 * Data-aware clustering of a depthwise conv: each filter's errors count by the power of the one input channel it
 * reads, so on inputs whose channels differ widely in power the output error falls below plain k-means', every width
 * is measured for targets, and the bias correction removes the output's mean shift.
 */
import { assert, assertEquals, rng, streamOf } from "../../tests/helpers.ts";
import { Tensor } from "../model/tensor.ts";
import { collectLayers, type Layer, type ModelHeader } from "../model/types.ts";
import { ClusterCalibrator } from "./aware_cluster.ts";

Deno.test("depthwise conv: per-channel input power weighs the clustering, widths are measured", async () => {
  const r = rng(5);
  const [n, c, h] = [8, 16, 6];
  // Channel ch's inputs have power 10^(ch/4): the high channels' filters matter most.
  const x = new Float32Array(n * c * h * h);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.3) * 10 ** (((i / (h * h)) | 0) % c / 8);
  const w = Float32Array.from({ length: c * 9 }, () => r() - 0.5);
  const layer: Layer = {
    name: "dw",
    op: "Conv",
    attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: c },
    inputs: ["x"],
    outputs: ["y"],
    params: {
      weight: Tensor.fromFloat32("dw.w", [c, 1, 3, 3], w),
      bias: Tensor.fromFloat32("dw.b", [c], new Float32Array(c)),
    },
  };
  const header: ModelHeader = {
    name: "t",
    sourceFormat: "onnx",
    inputs: [{ name: "x", dtype: "float32", shape: [n, c, h, h] }],
    outputs: [{ name: "y", dtype: "float32", shape: [n, c, h, h] }],
    metadata: {},
  };
  const cal = await ClusterCalibrator.create(
    { x, shape: [n, c, h, h], input: "x" },
    { keep: ["y"] },
    { bits: 2 },
    { measureBits: [2, 3, 4], backend: "cpu" },
  );
  const out = await collectLayers(streamOf(header, [layer]).layers.pipeThrough(cal.stage()));
  assertEquals(cal.events.length, 1);
  const e = cal.events[0];
  assert(/depthwise/.test(e.note ?? ""), `note ${e.note}`);
  assert(e.error < e.plainError!, `weighted ${e.error} vs plain ${e.plainError}`);
  assertEquals(e.options!.map((o) => o.bits), [2, 3, 4]);
  assert(e.options![0].error > e.options![2].error, "error falls with width");
  // Bias correction: the clustered filter's mean output (sum of its weights times the channel mean) plus the new bias
  // equals the original's.
  const q = await out[0].params.weight.float32();
  const b = await out[0].params.bias.float32();
  for (let ch = 0; ch < c; ch++) {
    let m = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < h * h; j++) m += x[(i * c + ch) * h * h + j];
    m /= n * h * h;
    let dw = 0;
    for (let j = 0; j < 9; j++) dw += w[ch * 9 + j] - q[ch * 9 + j];
    assert(Math.abs(b[ch] - dw * m) < 1e-4 * (1 + Math.abs(dw * m)), `channel ${ch}: bias ${b[ch]} vs ${dw * m}`);
  }
});
