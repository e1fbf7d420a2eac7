/**
 * Top-1 accuracy and top-1 agreement of ONNX models in ONNX Runtime on a labelled data set, skipping the samples used
 * for calibration. The data are read and preprocessed by convpress's own loaders (as `eval --data`), once, and cached
 * as float32 in `$TMPDIR/convpress-accuracy/`.
 *
 * Usage: deno run -A bench/accuracy.ts --data imagenet|vgg224|imagenet224|imagenet299|mnist|cifar10 [--skip N] [--limit M] [--ref ORIG.onnx]
 *        MODEL.onnx...
 * Prints one line per model: `model top1 agreement samples` (agreement = same top-1 class as `--ref`).
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";
import { openDataset } from "../src/data/open_dataset.ts";
import { makePreprocessor, type PreprocessOptions } from "../src/data/preprocess.ts";
import { decodeBlobProto } from "../src/data/blobproto.ts";

const FIX = new URL("../../shared/fixtures/", import.meta.url).pathname;

interface DataSpec {
  path: string;
  labels?: string;
  dims: number[];
  prep: () => Promise<PreprocessOptions>;
}

const DATA: Record<string, DataSpec> = {
  imagenet: {
    path: `${FIX}imagenet/images`,
    labels: `${FIX}imagenet/labels.txt`,
    dims: [3, 227, 227],
    prep: () => Promise.resolve({ preset: "caffe" }),
  },
  // VGG16 (Caffe, 224 x 224, the caffe preset's BGR means).
  vgg224: {
    path: `${FIX}imagenet/images`,
    labels: `${FIX}imagenet/labels.txt`,
    dims: [3, 224, 224],
    prep: () => Promise.resolve({ preset: "caffe" }),
  },
  // nsfwjs (TF.js graph models, read as NCHW): RGB / 255, resized to 224 (MobileNetV2) or 299 (InceptionV3).
  imagenet224: {
    path: `${FIX}imagenet/images`,
    labels: `${FIX}imagenet/labels.txt`,
    dims: [3, 224, 224],
    prep: () => Promise.resolve({ preset: "tf01" }),
  },
  imagenet299: {
    path: `${FIX}imagenet/images`,
    labels: `${FIX}imagenet/labels.txt`,
    dims: [3, 299, 299],
    prep: () => Promise.resolve({ preset: "tf01" }),
  },
  mnist: {
    path: `${FIX}mnist/t10k-even-images-idx3-ubyte`,
    dims: [1, 28, 28],
    prep: () => Promise.resolve({ scale: 0.00390625 }),
  },
  cifar10: {
    path: `${FIX}cifar10/test_batch_even.bin`,
    dims: [3, 32, 32],
    prep: async () => {
      const m = decodeBlobProto(await Deno.readFile(`${FIX}caffe/cifar10_quick/mean.binaryproto`), "mean");
      return { mean: { data: m.data, shape: m.shape.slice(-3) } };
    },
  },
};

/** The whole data set preprocessed, cached on disk. */
async function load(name: string): Promise<{ x: Float32Array; labels: Int32Array; per: number }> {
  const spec = DATA[name];
  if (!spec) throw new Error(`Unknown data '${name}'`);
  const dir = `${Deno.env.get("TMPDIR") ?? "/tmp"}/convpress-accuracy`;
  await Deno.mkdir(dir, { recursive: true });
  const per = spec.dims.reduce((a, b) => a * b, 1);
  try {
    const x = await Deno.readFile(`${dir}/${name}.f32`);
    const l = await Deno.readFile(`${dir}/${name}.labels`);
    return { x: new Float32Array(x.buffer), labels: new Int32Array(l.buffer), per };
  } catch { /* not cached yet */ }
  const data = await openDataset(spec.path, spec.labels);
  const prep = makePreprocessor(await spec.prep(), spec.dims, data.pixels);
  const rows: Float32Array[] = [], labels: number[] = [];
  for await (const s of data.samples()) {
    rows.push(prep(s));
    labels.push(s.label ?? -1);
  }
  const x = new Float32Array(rows.length * per);
  rows.forEach((r, i) => x.set(r, i * per));
  const l = Int32Array.from(labels);
  await Deno.writeFile(`${dir}/${name}.f32`, new Uint8Array(x.buffer));
  await Deno.writeFile(`${dir}/${name}.labels`, new Uint8Array(l.buffer));
  return { x, labels: l, per };
}

/** Top-1 class of each sample, run one sample at a time (the decoded models have batch 1). */
async function predict(model: string, x: Float32Array, per: number, dims: number[], from: number, to: number) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const out = new Int32Array(to - from);
  for (let i = from; i < to; i++) {
    const t = new ort.Tensor("float32", x.subarray(i * per, (i + 1) * per), [1, ...dims]);
    const r = await s.run({ [s.inputNames[0]]: t });
    const y = r[s.outputNames[0]].data as Float32Array;
    let best = 0;
    for (let j = 1; j < y.length; j++) if (y[j] > y[best]) best = j;
    out[i - from] = best;
  }
  await s.release();
  return out;
}

const { values: v, positionals } = parseArgs({
  args: Deno.args,
  options: { data: { type: "string" }, skip: { type: "string" }, limit: { type: "string" }, ref: { type: "string" } },
  allowPositionals: true,
});
const name = v.data ?? "imagenet";
const { x, labels, per } = await load(name);
const n = labels.length;
const from = Number(v.skip ?? 0), to = Math.min(n, from + Number(v.limit ?? n));
const dims = DATA[name].dims;
const ref = v.ref ? await predict(v.ref, x, per, dims, from, to) : undefined;
const pct = (k: number) => (100 * k / (to - from)).toFixed(2);
if (v.ref && ref) {
  let c = 0;
  for (let i = from; i < to; i++) if (ref[i - from] === labels[i]) c++;
  console.log(`${v.ref} top1 ${pct(c)} (reference) samples ${from}..${to - 1}`);
}
for (const m of positionals) {
  const p = await predict(m, x, per, dims, from, to);
  let c = 0, a = 0;
  for (let i = from; i < to; i++) {
    if (p[i - from] === labels[i]) c++;
    if (ref && p[i - from] === ref[i - from]) a++;
  }
  console.log(`${m} top1 ${pct(c)} agreement ${ref ? pct(a) : "-"} samples ${from}..${to - 1}`);
}
