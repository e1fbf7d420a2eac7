/**
 * Compressed TF.js weights from clustered tensors (a clustered `.cvp`'s, whose centres travel as
 * {@link Tensor.codebook} through the writer's layout transforms). tfjs has one compressed weight form that it
 * dequantizes itself: affine `uint8`/`uint16` (`quantization: {dtype, scale, min}`, value `q * scale + min` computed
 * in double and stored into a Float32Array), plus `float16`. A layer's weight is stored:
 * - as `uint8` when every centre is exactly `fround(q * scale + min)` for some q in 0..255 (equally spaced centres, or
 *   a subset of such a grid): lossless at one byte per weight;
 * - else as `float16` when every centre is a binary16 value (fp16 centres always are): lossless at two bytes;
 * - else as `float32` (bf16 centres outside binary16's range).
 * Each choice is lossless, so the written model predicts exactly as the float decode does.
 *
 * @module
 */
import { float16ToFloat32, float32ToFloat16 } from "../../src/model/float16.ts";

/** How one clustered weight is written, and why. */
export type ClusteredPlan =
  | { dtype: "uint8"; scale: number; min: number; levelOf: Map<number, number>; centres: number; reason: string }
  | { dtype: "float16" | "float32"; centres: number; reason: string };

/** Most levels tfjs's uint8 quantization has. */
const UINT8_LEVELS = 256;

/**
 * The exact affine uint8 grid of `values` for tfjs (`fround(q * scale + min)`), or undefined. Any grid that holds the
 * values narrows to one whose first level is the smallest value (`min`, exact at q = 0) and whose last is the
 * largest, so each level count Q of that span is tried: the levels are then fixed, and every value's float32
 * rounding interval bounds `scale`; a `scale` inside all the bounds is checked exactly.
 */
export function tfjsAffineGrid(
  values: Float32Array,
): { scale: number; min: number; levelOf: Map<number, number> } | undefined {
  const distinct = [...new Set(Array.from(values, (v) => (v === 0 ? 0 : v)))].sort((a, b) => a - b);
  if (distinct.length === 0 || distinct.length > UINT8_LEVELS || !distinct.every(Number.isFinite)) return undefined;
  const min = distinct[0], span = distinct[distinct.length - 1] - min;
  if (span === 0) return { scale: 1, min, levelOf: new Map([[min, 0]]) };
  for (let top = distinct.length - 1; top < UINT8_LEVELS; top++) {
    const levels = distinct.map((v) => Math.round(((v - min) / span) * top));
    if (levels.some((q, i) => i > 0 && q <= levels[i - 1])) continue;
    let lo = -Infinity, hi = Infinity;
    for (let i = 1; i < distinct.length; i++) {
      const [a, b] = roundingInterval(distinct[i]);
      lo = Math.max(lo, (a - min) / levels[i]);
      hi = Math.min(hi, (b - min) / levels[i]);
    }
    // The plain span / top first; the bounds' midpoint when rounding of the values left room.
    for (const scale of lo < hi ? [span / top, (lo + hi) / 2] : [span / top]) {
      if (distinct.every((v, i) => Math.fround(levels[i] * scale + min) === v)) {
        return { scale, min, levelOf: new Map(distinct.map((v, i) => [v, levels[i]])) };
      }
    }
  }
  return undefined;
}

/** The reals that round to the float32 `v`, as an open interval (the midpoints to its neighbours). */
function roundingInterval(v: number): [number, number] {
  if (v === 0) return [-(2 ** -150), 2 ** -150];
  const f = new Float32Array([v]);
  const u = new Int32Array(f.buffer);
  const bits = u[0];
  u[0] = bits + 1; // one step away from zero
  const away = f[0];
  u[0] = bits - 1; // one step toward zero
  const toward = f[0];
  return v > 0 ? [(v + toward) / 2, (v + away) / 2] : [(v + away) / 2, (v + toward) / 2];
}

/** Chooses how to write a weight whose every value is one of `codebook`. */
export function planClustered(codebook: Float32Array): ClusteredPlan {
  const centres = new Set(codebook).size;
  const grid = tfjsAffineGrid(codebook);
  if (grid) {
    return { dtype: "uint8", ...grid, centres, reason: `${centres} centres on an exact affine grid` };
  }
  const why = centres > UINT8_LEVELS
    ? `its ${centres} centres are more than uint8's ${UINT8_LEVELS} levels`
    : `its ${centres} centres are not on an affine grid of at most ${UINT8_LEVELS} levels`;
  if (codebook.every((c) => float16ToFloat32(float32ToFloat16(c)) === c)) {
    return { dtype: "float16", centres, reason: `${why} (float16 holds them exactly)` };
  }
  return { dtype: "float32", centres, reason: `${why}, and float16 does not hold them all` };
}

/** The notice line for a weight's plan. */
export function planNotice(name: string, plan: ClusteredPlan): string {
  if (plan.dtype === "uint8") return `tfjs: weight '${name}' stored as uint8: ${plan.reason}`;
  return `tfjs: weight '${name}' widened to ${plan.dtype}: ${plan.reason}`;
}

/** Maps float values to their uint8 levels; throws naming the weight on a value outside the grid. */
export function toLevels(a: Float32Array, levelOf: Map<number, number>, name: string): Uint8Array {
  const q = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) {
    const level = levelOf.get(a[i]);
    if (level === undefined) throw new RangeError(`Weight '${name}' holds ${a[i]}, which is not one of its centres`);
    q[i] = level;
  }
  return q;
}
