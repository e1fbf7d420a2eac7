/**
 * Sampled im2col for calibration of a convolution: the input patches feeding chosen output positions, as rows of
 * a matrix whose columns follow the weight layout [in, kh, kw] (so a conv weight [O, I, kh, kw] read as [O, I*kh*kw]
 * multiplies them directly). Only the chosen channels are gathered.
 *
 * @module
 */

/** Geometry of a (non-grouped) convolution in the canonical attributes. */
export interface ConvGeometry {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  /** [top, left, bottom, right]. */
  pads: number[];
}

/** The geometry of a canonical Conv layer with weight [O, I, kh, kw]. */
export function convGeometry(attrs: Record<string, unknown>, weightShape: readonly number[]): ConvGeometry {
  const nums = (v: unknown, def: number[]) => (Array.isArray(v) && v.length ? (v as number[]) : def);
  const [kh, kw] = nums(attrs.kernel, [weightShape[2], weightShape[3]]);
  const [sh, sw] = nums(attrs.strides, [1, 1]);
  const [dh, dw] = nums(attrs.dilations, [1, 1]);
  const pads = nums(attrs.pads, [0, 0, 0, 0]);
  return {
    kh,
    kw,
    sh,
    sw,
    dh,
    dw,
    pads: [pads[0] ?? 0, pads[1] ?? 0, pads[2] ?? pads[0] ?? 0, pads[3] ?? pads[1] ?? 0],
  };
}

/** Output height and width of the convolution on an H x W input. */
export function convOutputSize(g: ConvGeometry, h: number, w: number): [number, number] {
  const oh = Math.floor((h + g.pads[0] + g.pads[2] - g.dh * (g.kh - 1) - 1) / g.sh) + 1;
  const ow = Math.floor((w + g.pads[1] + g.pads[3] - g.dw * (g.kw - 1) - 1) / g.sw) + 1;
  return [oh, ow];
}

/**
 * Deterministic choice of `rows` output positions out of `total` (all of them when `rows >= total`): evenly spaced
 * with a fixed pseudo-random jitter, so strided patterns in the data do not alias with the spacing.
 */
export function samplePositions(total: number, rows: number, seed = 1): Int32Array {
  if (rows >= total) return Int32Array.from({ length: total }, (_, i) => i);
  const out = new Int32Array(rows);
  let s = seed >>> 0 || 1;
  const step = total / rows;
  for (let i = 0; i < rows; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = Math.min(total - 1, Math.floor(i * step + (s / 2 ** 32) * step));
  }
  return out;
}

/**
 * Gathers patches of `x` (NCHW [n, c, h, w]) at `positions` (indices into n x oh x ow) for `channels`: a row-major
 * [positions.length, channels.length * kh * kw] matrix.
 */
export function im2colRows(
  x: Float32Array,
  shape: readonly number[],
  g: ConvGeometry,
  positions: Int32Array,
  channels: readonly number[],
): Float32Array {
  const [, c, h, w] = shape;
  const [oh, ow] = convOutputSize(g, h, w);
  const k = g.kh * g.kw;
  const cols = channels.length * k;
  const out = new Float32Array(positions.length * cols);
  for (let r = 0; r < positions.length; r++) {
    const p = positions[r];
    const n = Math.floor(p / (oh * ow)), oy = Math.floor(p / ow) % oh, ox = p % ow;
    const base = r * cols;
    for (let ci = 0; ci < channels.length; ci++) {
      const plane = (n * c + channels[ci]) * h * w;
      for (let ky = 0; ky < g.kh; ky++) {
        const iy = oy * g.sh - g.pads[0] + ky * g.dh;
        if (iy < 0 || iy >= h) continue;
        for (let kx = 0; kx < g.kw; kx++) {
          const ix = ox * g.sw - g.pads[1] + kx * g.dw;
          if (ix < 0 || ix >= w) continue;
          out[base + ci * k + ky * g.kw + kx] = x[plane + iy * w + ix];
        }
      }
    }
  }
  return out;
}
