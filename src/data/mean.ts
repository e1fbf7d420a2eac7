/**
 * The `--mean` value of `eval` and of compression's calibration data: per-channel means `a,b,c`, or a mean image
 * (a Caffe `mean.binaryproto` or a `.npy`).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { decodeBlobProto } from "./blobproto.ts";
import { decodeNpy } from "./npy.ts";
import type { PreprocessOptions } from "./preprocess.ts";

/**
 * Reads a `--mean` value: numbers separated by commas, or a `.binaryproto`/`.npy` file whose leading unit dimensions
 * are dropped down to [C, H, W]. Bad numbers are a `usage` error made by `usage` (the command's own wording).
 */
export async function readMean(
  v: string,
  usage: (msg: string) => ConvpressError = (msg) => new ConvpressError("usage", msg),
): Promise<PreprocessOptions["mean"]> {
  if (!/\.(binaryproto|npy)$/i.test(v)) {
    const xs = v.split(",").map((s) => Number(s.trim()));
    if (!xs.length || xs.some((x) => !Number.isFinite(x))) throw usage(`--mean wants numbers separated by commas`);
    return xs;
  }
  let b: Uint8Array;
  try {
    b = await Deno.readFile(v);
  } catch (e) {
    throw new ConvpressError("io", `Cannot read mean file '${v}': ${(e as Error).message}`, { file: v, cause: e });
  }
  const m = /\.npy$/i.test(v) ? decodeNpy(b, v) : decodeBlobProto(b, v);
  const shape = [...m.shape];
  while (shape.length > 3 && shape[0] === 1) shape.shift();
  return { data: m.data, shape };
}
