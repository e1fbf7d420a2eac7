/**
 * The calibration batch of `compress --calibration PATH`: the first `limit` samples of a data set (any source
 * `convpress eval --data` reads, see ../data/open_dataset.ts), preprocessed the same way, as one NCHW float32 batch.
 * The whole calibration set is one batch because every layer's reconstruction needs all of its activations at once;
 * keep it small (64-512 samples for LeNet, 2-8 for a VGG16-sized net).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { readMean } from "../data/mean.ts";
import { openDataset } from "../data/open_dataset.ts";
import { modelInputs } from "../data/model_inputs.ts";
import { type Preset, PRESETS } from "../data/preprocess.ts";
import type { ModelHeader } from "../model/types.ts";

/** Where the calibration data comes from and how it is preprocessed (the `eval` data options). */
export interface CalibrationDataOptions {
  /** `--calibration PATH`: anything `eval --data` takes ("mnist", IDX, CIFAR, `.npy`, image folders). */
  path: string;
  labels?: string;
  /** Samples in the batch (default 128). */
  limit?: number;
  preprocess?: string;
  scale?: number;
  /** "a,b,c", or a mean image file (.binaryproto, .npy). */
  mean?: string;
  std?: number[];
  resize?: [number, number];
  /** Shorter-side resize, then the centre crop (see ../data/preprocess.ts). */
  resizeShorter?: number;
  crop?: [number, number];
  order?: "rgb" | "bgr";
}

/** One NCHW float32 batch. */
export interface CalibrationBatch {
  x: Float32Array;
  shape: number[];
  /** Labels of the samples, where the data set has them. */
  labels: (number | undefined)[];
}

/** The per-sample input dimensions [C, H, W] of a model (or of `inputShape` = [N, C, H, W]). */
export function sampleDims(header: ModelHeader, inputShape?: number[]): number[] {
  if (inputShape) return inputShape.slice(1);
  const s = header.inputs[0]?.shape;
  const dims = s?.slice(1);
  if (!dims || !dims.length || dims.some((d) => typeof d !== "number" || d <= 0)) {
    throw new ConvpressError(
      "usage",
      `The model's input shape [${s?.join(",") ?? ""}] is not fixed: give --input-shape N,C,H,W for calibration`,
    );
  }
  return dims as number[];
}

/** Loads the calibration batch for a model taking samples of `dims` = [C, H, W]. */
export async function loadCalibration(o: CalibrationDataOptions, dims: number[]): Promise<CalibrationBatch> {
  let all: CalibrationBatch | undefined;
  for await (const b of calibrationBatches(o, dims, o.limit ?? 128)) all = b;
  return all!;
}

/**
 * The first `limit` samples of the calibration data as batches of at most `batch` samples, read and preprocessed
 * lazily (one batch in memory at a time).
 */
export async function* calibrationBatches(
  o: CalibrationDataOptions,
  dims: number[],
  batch: number,
): AsyncGenerator<CalibrationBatch> {
  if (o.preprocess !== undefined && !(PRESETS as readonly string[]).includes(o.preprocess)) {
    throw new ConvpressError("usage", `--preprocess must be one of ${PRESETS.join(", ")}`);
  }
  const limit = o.limit ?? 128;
  const data = await openDataset(o.path, o.labels);
  const inputs = modelInputs(
    data,
    {
      preset: o.preprocess as Preset | undefined,
      scale: o.scale,
      mean: o.mean === undefined ? undefined : await readMean(o.mean),
      std: o.std,
      resize: o.resize,
      resizeShorter: o.resizeShorter,
      crop: o.crop,
      order: o.order,
    },
    dims,
    limit,
  );
  const per = dims.reduce((p, d) => p * d, 1);
  let rows: Float32Array[] = [], labels: (number | undefined)[] = [];
  let seen = 0;
  const flush = (): CalibrationBatch => {
    const x = new Float32Array(rows.length * per);
    rows.forEach((r, i) => x.set(r, i * per));
    const b = { x, shape: [rows.length, ...dims], labels };
    rows = [];
    labels = [];
    return b;
  };
  for await (const s of inputs) {
    rows.push(s.data);
    labels.push(s.label);
    seen++;
    if (rows.length >= batch) yield flush();
  }
  if (!seen) throw new ConvpressError("bad_format", `Calibration data '${o.path}' holds no samples`);
  if (rows.length) yield flush();
}
