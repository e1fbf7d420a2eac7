/**
 * Turns samples into model inputs: channel count and order, resize and centre crop, then
 * `(x - mean) / std * scale` per channel.
 *
 * Presets (image data, pixels 0..255):
 * | preset | order | mean | std | scale |
 * |---|---|---|---|---|
 * | caffe | BGR | 103.939, 116.779, 123.68 (BGR) | 1 | 1 |
 * | torch | RGB | 0.485, 0.456, 0.406 x 255 | 0.229, 0.224, 0.225 x 255 | 1 |
 * | tf | RGB | 127.5 | 127.5 | 1 (gives [-1, 1]) |
 * | tf01 | RGB | 0 | 255 | 1 (gives [0, 1]) |
 * | none | as decoded | 0 | 1 | 1 |
 * `--mean`, `--std`, `--scale` and the channel order override a preset's values. A mean may be an image (a Caffe
 * `mean.binaryproto` or a `.npy`), subtracted element by element after resizing.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Sample } from "./types.ts";

/** Preset names. */
export const PRESETS = ["caffe", "torch", "tf", "tf01", "none"] as const;
/** A preset name. */
export type Preset = typeof PRESETS[number];

/** What to do to each sample. */
export interface PreprocessOptions {
  preset?: Preset;
  /** Per-channel means (one value for all), or a mean image [C, H, W]. */
  mean?: number[] | { data: Float32Array; shape: number[] };
  std?: number[];
  scale?: number;
  /** Resize to [H, W] (then centre-crop to the model's size); default: resize to the model's size when it differs. */
  resize?: [number, number];
  /**
   * Resize so the shorter side is this long, keeping the aspect ratio (the longer side truncated, as torchvision's
   * `Resize(int)`), then centre-crop: the standard ImageNet evaluation protocol (256 then 224 or 227).
   */
  resizeShorter?: number;
  /** The centre crop's [H, W]; it must be the model's input size (default: that size). */
  crop?: [number, number];
  /** Channel order the model wants; default from the preset (BGR for caffe, RGB otherwise). */
  order?: "rgb" | "bgr";
}

const PRESET_VALUES: Record<Preset, { order?: "rgb" | "bgr"; mean: number[]; std: number[] }> = {
  caffe: { order: "bgr", mean: [103.939, 116.779, 123.68], std: [1] },
  torch: { order: "rgb", mean: [0.485 * 255, 0.456 * 255, 0.406 * 255], std: [0.229 * 255, 0.224 * 255, 0.225 * 255] },
  tf: { order: "rgb", mean: [127.5], std: [127.5] },
  tf01: { order: "rgb", mean: [0], std: [255] },
  none: { mean: [0], std: [1] },
};

/** Bilinear resize of planar [C, H, W] data (half-pixel centres, as OpenCV's INTER_LINEAR). */
export function resizeBilinear(
  src: Float32Array,
  c: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
): Float32Array {
  if (h === oh && w === ow) return src;
  const out = new Float32Array(c * oh * ow);
  const sy = h / oh, sx = w / ow;
  for (let y = 0; y < oh; y++) {
    const fy = Math.max(0, (y + 0.5) * sy - 0.5);
    const y0 = Math.min(h - 1, Math.floor(fy)), y1 = Math.min(h - 1, y0 + 1), dy = fy - y0;
    for (let x = 0; x < ow; x++) {
      const fx = Math.max(0, (x + 0.5) * sx - 0.5);
      const x0 = Math.min(w - 1, Math.floor(fx)), x1 = Math.min(w - 1, x0 + 1), dx = fx - x0;
      for (let k = 0; k < c; k++) {
        const p = k * h * w;
        const top = src[p + y0 * w + x0] * (1 - dx) + src[p + y0 * w + x1] * dx;
        const bot = src[p + y1 * w + x0] * (1 - dx) + src[p + y1 * w + x1] * dx;
        out[k * oh * ow + y * ow + x] = top * (1 - dy) + bot * dy;
      }
    }
  }
  return out;
}

function centerCrop(src: Float32Array, c: number, h: number, w: number, oh: number, ow: number): Float32Array {
  if (h === oh && w === ow) return src;
  const top = Math.floor((h - oh) / 2), left = Math.floor((w - ow) / 2);
  const out = new Float32Array(c * oh * ow);
  for (let k = 0; k < c; k++) {
    for (let y = 0; y < oh; y++) {
      const s = k * h * w + (y + top) * w + left;
      out.set(src.subarray(s, s + ow), k * oh * ow + y * ow);
    }
  }
  return out;
}

function perChannel(v: number[], c: number, what: string): number[] {
  if (v.length === 1) return Array(c).fill(v[0]);
  if (v.length === c) return v;
  if (c === 1) return [v.reduce((a, b) => a + b, 0) / v.length];
  throw new ConvpressError("usage", `${what} has ${v.length} values for ${c} channels`);
}

/** Makes the function that turns a sample into a model input of `input` = [C, H, W] (or any shape for tensors). */
export function makePreprocessor(
  opts: PreprocessOptions,
  input: number[],
  pixels: boolean,
): ((s: Sample) => Float32Array) & {
  /** The steps after the resize: centre crop of an owned [c, rh, rw] image, then normalization. */
  finish(data: Float32Array, c: number, rh: number, rw: number): Float32Array;
} {
  const preset = PRESET_VALUES[opts.preset ?? "none"];
  const order = opts.order ?? preset.order;
  const scale = opts.scale ?? 1;
  const prep = (s: Sample) => {
    let data = s.data;
    const want = input.reduce((p, d) => p * d, 1);
    if (!pixels || input.length !== 3 || s.shape.length !== 3) {
      if (data.length !== want) {
        throw new ConvpressError(
          "usage",
          `Sample '${s.id}' of shape [${s.shape.join(",")}] does not fit the model input [${input.join(",")}]`,
        );
      }
      const c = input.length >= 1 ? input[0] : 1;
      return normalize(data.slice(), c, want / Math.max(1, c), order === "bgr", opts, preset, scale);
    }
    let [c, h, w] = s.shape;
    const [mc, mh, mw] = input;
    if (c === 3 && mc === 1) {
      const g = new Float32Array(h * w);
      for (let i = 0; i < h * w; i++) g[i] = 0.299 * data[i] + 0.587 * data[h * w + i] + 0.114 * data[2 * h * w + i];
      data = g;
      c = 1;
    } else if (c === 1 && mc === 3) {
      const rgb = new Float32Array(3 * h * w);
      for (let k = 0; k < 3; k++) rgb.set(data, k * h * w);
      data = rgb;
      c = 3;
    } else if (c !== mc) {
      throw new ConvpressError("usage", `Image '${s.id}' has ${c} channels, the model wants ${mc}`);
    }
    const [rh, rw] = resizeTarget(opts, h, w, mh, mw);
    // 8-bit pixels resize exactly as OpenCV does (so eval's top-1 equals OpenCV DNN's); other values in float.
    const bytes = (s.bytes && (data === s.data || c === 3 && s.shape[0] === 1)) || isBytes(data);
    const resized = bytes ? resizeLinear8(data, c, h, w, rh, rw) : resizeBilinear(data, c, h, w, rh, rw);
    return finish(resized === s.data ? resized.slice() : resized, c, rh, rw);
  };
  /** Centre crop of the resized [c, rh, rw] image (owned), then normalization. */
  const finish = (data: Float32Array, c: number, rh: number, rw: number): Float32Array => {
    const [, mh, mw] = input;
    data = centerCrop(data, c, rh, rw, mh, mw);
    return normalize(data, c, mh * mw, order === "bgr" && c === 3, opts, preset, scale);
  };
  return Object.assign(prep, { finish });
}

/** The size an [.., h, w] image is resized to before the centre crop to [mh, mw]; checks --crop and the size. */
function resizeTarget(opts: PreprocessOptions, h: number, w: number, mh: number, mw: number): [number, number] {
  if (opts.crop && (opts.crop[0] !== mh || opts.crop[1] !== mw)) {
    throw new ConvpressError("usage", `--crop ${opts.crop.join(",")} differs from the model input ${mh}x${mw}`);
  }
  let [rh, rw] = opts.resize ?? [mh, mw];
  if (opts.resizeShorter) {
    const r = opts.resizeShorter;
    [rh, rw] = h <= w ? [r, Math.floor((r * w) / h)] : [Math.floor((r * h) / w), r];
  }
  if (rh < mh || rw < mw) {
    const flag = opts.resizeShorter ? `--resize-shorter ${opts.resizeShorter}` : `--resize ${rh},${rw}`;
    throw new ConvpressError("usage", `${flag} gives ${rh}x${rw}, smaller than the input ${mh}x${mw}`);
  }
  return [rh, rw];
}

/** 8-bit interleaved pixels, as image decoders give them: `channels` values per pixel. */
export interface Pixels8 {
  px: Uint8Array;
  width: number;
  height: number;
  /** Values per pixel: 1-2 gray (with alpha), 3-4 RGB (with alpha). */
  channels: number;
  /** Gray although `channels` is 3 or 4 (a gray PNG expanded to RGBA): the first value of each pixel. */
  gray?: boolean;
}

/** Interleaved 8-bit pixels to planar float32: 3 planes RGB (alpha dropped), or 1 for gray. */
export function planar(p: Pixels8): { data: Float32Array; shape: number[]; bytes: true } {
  const { px, width: w, height: h, channels: ch } = p;
  const gray = p.gray || ch <= 2;
  const c = gray ? 1 : 3;
  const data = new Float32Array(c * h * w);
  const n = h * w;
  if (c === 1) { for (let i = 0; i < n; i++) data[i] = px[i * ch]; }
  else {
    for (let i = 0, j = 0; i < n; i++, j += ch) {
      data[i] = px[j];
      data[n + i] = px[j + 1];
      data[2 * n + i] = px[j + 2];
    }
  }
  return { data, shape: [c, h, w], bytes: true };
}

/**
 * Makes the function that turns decoded 8-bit pixels into a model input of `input` = [C, H, W]: the same values as
 * {@link makePreprocessor} on their planar form, with the resize read straight from the interleaved pixels (no
 * full-size float copy of the image).
 */
export function makePixelPreprocessor(
  opts: PreprocessOptions,
  input: number[],
): (p: Pixels8, id: string) => Float32Array {
  const prep = makePreprocessor(opts, input, true);
  return (p: Pixels8, id: string) => {
    const c = p.gray || p.channels <= 2 ? 1 : 3;
    const { width: w, height: h } = p;
    if (input.length !== 3 || c !== input[0]) return prep({ ...planar(p), id });
    const [rh, rw] = resizeTarget(opts, h, w, input[1], input[2]);
    if (rh === h && rw === w) return prep({ ...planar(p), id });
    return prep.finish(resizeLinear8(p.px, c, h, w, rh, rw, p.channels), c, rh, rw);
  };
}

function normalize(
  data: Float32Array,
  c: number,
  plane: number,
  swap: boolean,
  opts: PreprocessOptions,
  preset: { mean: number[]; std: number[] },
  scale: number,
): Float32Array {
  if (swap) {
    const r = data.slice(0, plane);
    data.copyWithin(0, 2 * plane, 3 * plane);
    data.set(r, 2 * plane);
  }
  const std = perChannel(opts.std ?? preset.std, c, "--std");
  const mean = opts.mean ?? preset.mean;
  if (Array.isArray(mean)) {
    const m = perChannel(mean, c, "--mean");
    for (let k = 0; k < c; k++) {
      for (let i = k * plane; i < (k + 1) * plane; i++) data[i] = ((data[i] - m[k]) / std[k]) * scale;
    }
  } else {
    if (mean.data.length !== data.length) {
      throw new ConvpressError(
        "usage",
        `The mean image [${mean.shape.join(",")}] does not match the input (${data.length} values)`,
      );
    }
    for (let k = 0; k < c; k++) {
      for (let i = k * plane; i < (k + 1) * plane; i++) data[i] = ((data[i] - mean.data[i]) / std[k]) * scale;
    }
  }
  return data;
}

/** True when every value is an integer 0..255. */
function isBytes(a: Float32Array): boolean {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (!(v >= 0 && v <= 255) || v !== Math.floor(v)) return false;
  }
  return true;
}

/**
 * OpenCV's fixed-point coefficients for one axis of an INTER_LINEAR resize of 8-bit data (scale 2048). Along x a
 * tap outside the image is clamped to the edge with weight 1; along y the weights stay and the rows are clamped.
 */
function linearTaps(
  src: number,
  dst: number,
  clampWeights: boolean,
): { ofs: Int32Array; a0: Int32Array; a1: Int32Array } {
  const scale = 1 / (dst / src);
  const ofs = new Int32Array(dst), a0 = new Int32Array(dst), a1 = new Int32Array(dst);
  for (let d = 0; d < dst; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clampWeights && s < 0) (f = 0), (s = 0);
    if (clampWeights && s >= src - 1) (f = 0), (s = src - 1);
    ofs[d] = s;
    a0[d] = roundEven(Math.fround(1 - f) * 2048);
    a1[d] = roundEven(f * 2048);
  }
  return { ofs, a0, a1 };
}

function roundEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Bilinear resize of planar [C, H, W] 8-bit values (held as floats), bit for bit as OpenCV's `cv::resize` with
 * INTER_LINEAR on 8-bit images (what `cv2.dnn.blobFromImage` and Caffe's tools use): 11-bit fixed-point weights,
 * a horizontal pass into integers, a vertical pass rounded back to 0..255.
 */
export function resizeLinear8(
  src: Float32Array | Uint8Array,
  c: number,
  h: number,
  w: number,
  oh: number,
  ow: number,
  interleaved = 0,
): Float32Array {
  if (h === oh && w === ow && !interleaved) return src as Float32Array;
  const xs = linearTaps(w, ow, true), ys = linearTaps(h, oh, false);
  // Element (k, y, x) is src[k * plane + (y * w + x) * step]: planar [C, H, W], or `interleaved` values per pixel.
  const step = interleaved || 1, plane = interleaved ? 1 : h * w;
  const ofs = xs.ofs.map((s) => s * step);
  const out = new Float32Array(c * oh * ow);
  let row0 = new Int32Array(ow), row1 = new Int32Array(ow);
  const hrow = (p: number, y: number, dst: Int32Array) => {
    const base = p + y * w * step;
    for (let x = 0; x < ow; x++) {
      const s = base + ofs[x];
      dst[x] = src[s] * xs.a0[x] + (xs.a1[x] ? src[s + step] * xs.a1[x] : 0);
    }
  };
  for (let k = 0; k < c; k++) {
    const p = k * plane;
    // Source rows held in row0 / row1 (-1: none); a row the previous output row used is not computed again.
    let have0 = -1, have1 = -1;
    for (let y = 0; y < oh; y++) {
      const sy = ys.ofs[y], b0 = ys.a0[y], b1 = ys.a1[y];
      const y0 = Math.min(h - 1, Math.max(0, sy)), y1 = Math.min(h - 1, Math.max(0, sy + 1));
      if (y0 === have1 && y0 !== have0) {
        [row0, row1] = [row1, row0];
        [have0, have1] = [have1, have0];
      }
      if (y0 !== have0) hrow(p, y0, row0), have0 = y0;
      if (b1 && y1 !== have1) hrow(p, y1, row1), have1 = y1;
      const o = k * oh * ow + y * ow;
      for (let x = 0; x < ow; x++) {
        const v = ((((row0[x] >> 4) * b0) >> 16) + (b1 ? ((row1[x] >> 4) * b1) >> 16 : 0) + 2) >> 2;
        out[o + x] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  return out;
}
