/**
 * The `compress` flags of calibration (`--calibration PATH` with the `eval` data options) as
 * {@link CalibrationOptions}.
 *
 * @module
 */
import type { ConvpressError } from "../errors.ts";
import { numberList, positiveInt, usage as cliUsage } from "./flags.ts";
import type { CalibrationOptions } from "../compress/calibrate_pipeline.ts";
export { formatCalibration } from "../compress/calibrate_pipeline.ts";

/** The flags, as parsed by `node:util` parseArgs. */
export interface CalibrationFlags {
  calibration?: string;
  limit?: string;
  preprocess?: string;
  scale?: string;
  mean?: string;
  std?: string;
  resize?: string;
  "resize-shorter"?: string;
  crop?: string;
  "channel-order"?: string;
  labels?: string;
  batch?: string;
}

function usage(msg: string): ConvpressError {
  return cliUsage(msg, "compress");
}

function numbers(v: string, flag: string): number[] {
  return numberList(v, flag, "compress");
}

/** Calibration options from the flags; undefined without `--calibration`. Data flags without it are an error. */
export function calibrationFromFlags(f: CalibrationFlags): CalibrationOptions | undefined {
  const data = [f.limit, f.preprocess, f.scale, f.mean, f.std, f.resize, f["resize-shorter"], f.crop];
  data.push(f["channel-order"], f.labels, f.batch);
  if (!f.calibration) {
    if (data.some((x) => x !== undefined)) throw usage("Data options (--limit, --scale, ...) need --calibration PATH");
    return undefined;
  }
  const limit = f.limit === undefined ? undefined : positiveInt(f.limit, "--limit", "compress", 1);
  const batch = f.batch === undefined ? undefined : positiveInt(f.batch, "--batch", "compress", 1);
  const order = f["channel-order"];
  if (order !== undefined && order !== "rgb" && order !== "bgr") throw usage("--channel-order must be rgb or bgr");
  let resize: [number, number] | undefined;
  if (f.resize !== undefined) {
    const r = numbers(f.resize, "--resize");
    resize = [r[0], r[1] ?? r[0]];
  }
  return {
    path: f.calibration,
    labels: f.labels,
    limit,
    preprocess: f.preprocess,
    scale: f.scale === undefined ? undefined : numbers(f.scale, "--scale")[0],
    mean: f.mean,
    std: f.std === undefined ? undefined : numbers(f.std, "--std"),
    resize,
    resizeShorter: f["resize-shorter"] === undefined ? undefined : numbers(f["resize-shorter"], "--resize-shorter")[0],
    crop: f.crop === undefined
      ? undefined
      : ((r) => [r[0], r[1] ?? r[0]] as [number, number])(numbers(f.crop, "--crop")),
    order,
    batch,
  };
}
