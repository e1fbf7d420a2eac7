/**
 * One-dimensional k-means for weight clustering, fast on 100 M+ values: one pass for the range, one pass for a
 * fine histogram (bin counts and bin sums, so bin means are exact), Lloyd's iterations on the histogram with linear
 * initialisation (as in Deep Compression and the thesis), then the centres rounded to their 16-bit representation and
 * every weight assigned to the nearest rounded centre by binary search over the midpoints.
 *
 * Sparse tensors (at least {@link ZERO_FRACTION} exact zeros, as a pruned layer has) keep an exact zero centre: the
 * zeros are counted apart from the histogram, k-means places the other k - 1 centres over the non-zero values, and
 * every zero is assigned to the zero centre, so zeros stay zeros (and the `.cvp` writer can use the sparse-clustered
 * encoding). Without this the zero spike pulls a centre off zero at low bit widths and no weight stays zero.
 *
 * Data-aware clustering passes a per-element importance (`weightOf`, e.g. the mean square of the input that
 * multiplies the weight: the diagonal of the layer's Hessian): the histogram then holds weighted counts and sums,
 * so the centres minimise the importance-weighted squared error (the assignment to the nearest centre is optimal
 * for any positive weights).
 *
 * @module
 */
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from "../model/float16.ts";

/** How centres are stored: IEEE half (default: 10-bit mantissa, fine for weights of magnitude 6e-5..65504) or
 * bfloat16 (8-bit mantissa, float32's range). */
export type CenterRepr = "fp16" | "bf16";

/** Rounds `v` to the nearest value representable in `repr`. */
export function roundTo(v: number, repr: CenterRepr): number {
  return repr === "fp16" ? float16ToFloat32(float32ToFloat16(v)) : bfloat16ToFloat32(float32ToBfloat16(v));
}

/** A clustering of one tensor. */
export interface Clustering {
  /** Sorted distinct centres, each exactly representable in `repr`. */
  centers: Float32Array;
  /** Per-weight centre index. */
  indices: Uint8Array | Uint16Array;
  repr: CenterRepr;
}

/** Options of {@link kmeans1d}. */
export interface KMeansOptions {
  /** Histogram bins (default 65536). */
  bins?: number;
  /** Lloyd iterations at most (default 50). */
  iterations?: number;
  repr?: CenterRepr;
  /** Exact zero centre: "auto" (default) when at least {@link ZERO_FRACTION} of the values are exactly zero. */
  zero?: boolean | "auto";
  /** Importance of the value at element index `i` (default 1): the weight of its squared error. */
  weightOf?: (i: number) => number;
  /**
   * Importance by column, for values that are rows of `columnWeights.length` columns: element `i` weighs
   * `columnWeights[i % columnWeights.length]` (what `weightOf` would say, without a call per element). Takes the
   * place of `weightOf`.
   */
  columnWeights?: Float64Array;
}

/** The fraction of exact zeros from which a tensor is treated as sparse (keeps an exact zero centre). */
export const ZERO_FRACTION = 0.05;

/** Clusters `values` into at most `k` centres. */
export function kmeans1d(values: Float32Array, k: number, options: KMeansOptions = {}): Clustering {
  const h = histogramOf(values, options);
  const centers = h.centers(k, options);
  return { centers, indices: assign(values, centers, h.keepZero(options)), repr: options.repr ?? "fp16" };
}

/**
 * The centres {@link kmeans1d} would choose, without assigning the values to them: for a caller that assigns them
 * its own way (error feedback).
 */
export function kmeansCenters(values: Float32Array, k: number, options: KMeansOptions = {}): Float32Array {
  return histogramOf(values, options).centers(k, options);
}

function histogramOf(values: Float32Array, options: KMeansOptions): Histogram {
  const h = new Histogram(options.bins ?? 65536, options.weightOf);
  h.range(values);
  if (options.columnWeights) h.addColumns(values, options.columnWeights);
  else h.add(values, 0);
  return h;
}

/**
 * Clusters a stream of values read twice for the histogram (range, then counts) and once more for the
 * assignment; only the indices are held. Each chunk is used before the next is pulled, so a source may reuse its
 * array.
 */
export async function kmeans1dStream(
  source: () => AsyncIterable<Float32Array>,
  count: number,
  k: number,
  options: KMeansOptions = {},
): Promise<Clustering> {
  const h = new Histogram(options.bins ?? 65536, options.weightOf);
  for await (const v of source()) h.range(v);
  let at = 0;
  for await (const v of source()) {
    h.add(v, at);
    at += v.length;
  }
  const centers = h.centers(k, options);
  const zero = h.keepZero(options);
  const indices = k <= 256 ? new Uint8Array(count) : new Uint16Array(count);
  let off = 0;
  for await (const v of source()) {
    assign(v, centers, zero, indices.subarray(off, off + v.length));
    off += v.length;
  }
  return { centers, indices, repr: options.repr ?? "fp16" };
}

/** A fine histogram of values with per-bin (weighted) counts and sums, and Lloyd's k-means over it. */
class Histogram {
  lo = Infinity;
  hi = -Infinity;
  readonly bins: number;
  count: Float64Array;
  sum: Float64Array;
  /** Exact zeros (not in the bins), and all values seen. */
  zeros = 0;
  zeroWeight = 0;
  total = 0;
  readonly weightOf?: (i: number) => number;

  constructor(bins: number, weightOf?: (i: number) => number) {
    this.bins = bins;
    this.count = new Float64Array(bins);
    this.sum = new Float64Array(bins);
    this.weightOf = weightOf;
  }

  range(values: Float32Array): void {
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < this.lo) this.lo = v;
      if (v > this.hi) this.hi = v;
    }
  }

  /** Adds `values`, the elements from index `at` on. */
  add(values: Float32Array, at: number): void {
    const { weightOf } = this;
    const scale = this.#scale();
    this.total += values.length;
    for (let i = 0; i < values.length; i++) {
      this.#put(values[i], weightOf ? Math.max(weightOf(at + i), 1e-30) : 1, scale);
    }
  }

  /** Adds `values` (rows of `cw.length` columns) with weight `cw[column]`: {@link add} with `weightOf`, unrolled. */
  addColumns(values: Float32Array, cw: Float64Array): void {
    const scale = this.#scale();
    const d = cw.length;
    const ws = cw.map((w) => Math.max(w, 1e-30));
    this.total += values.length;
    for (let base = 0; base < values.length; base += d) {
      const end = Math.min(d, values.length - base);
      for (let j = 0; j < end; j++) this.#put(values[base + j], ws[j], scale);
    }
  }

  #scale(): number {
    return this.hi > this.lo ? (this.bins - 1) / (this.hi - this.lo) : 0;
  }

  /** One value `v` of weight `w`: an exact zero is counted apart, anything else goes to its bin. */
  #put(v: number, w: number, scale: number): void {
    if (v === 0) {
      this.zeros++;
      this.zeroWeight += w;
      return;
    }
    const b = Math.round((v - this.lo) * scale);
    this.count[b] += w;
    this.sum[b] += w * v;
  }

  /** Whether the clustering keeps an exact zero centre under `options`. */
  keepZero(options: KMeansOptions): boolean {
    const z = options.zero ?? "auto";
    if (z === "auto") return this.zeros > 0 && this.zeros >= ZERO_FRACTION * this.total;
    return z && this.zeros > 0;
  }

  /** Lloyd's iterations from linear initialisation; centres rounded to `repr`, sorted and distinct. */
  centers(k: number, options: KMeansOptions): Float32Array {
    const repr = options.repr ?? "fp16";
    const zero = this.keepZero(options);
    if (zero) k = Math.max(1, k - 1);
    else if (this.zeros > 0) {
      // Few zeros: they join the histogram as ordinary values.
      const b = Math.round((0 - this.lo) * (this.hi > this.lo ? (this.bins - 1) / (this.hi - this.lo) : 0));
      this.count[b] += this.zeroWeight;
    }
    const { lo, hi } = this;
    const px: number[] = [], pw: number[] = [];
    for (let b = 0; b < this.bins; b++) {
      if (this.count[b] > 0) {
        px.push(this.sum[b] / this.count[b]);
        pw.push(this.count[b]);
      }
    }
    let centers: number[];
    if (px.length <= k) centers = px.slice();
    else {
      centers = Array.from({ length: k }, (_, i) => lo + (hi - lo) * (k === 1 ? 0.5 : i / (k - 1)));
      for (let it = 0; it < (options.iterations ?? 50); it++) {
        const cs = new Float64Array(k), cw = new Float64Array(k);
        let c = 0;
        for (let p = 0; p < px.length; p++) {
          // points and centres are both sorted: the nearest centre only moves right
          while (c + 1 < k && Math.abs(centers[c + 1] - px[p]) <= Math.abs(centers[c] - px[p])) c++;
          cs[c] += px[p] * pw[p];
          cw[c] += pw[p];
        }
        let moved = false;
        const next = centers.map((old, i) => {
          const v = cw[i] > 0 ? cs[i] / cw[i] : old;
          if (Math.abs(v - old) > 1e-9 * (Math.abs(old) + 1e-12)) moved = true;
          return v;
        });
        centers = next.sort((a, b) => a - b);
        if (!moved) break;
      }
    }
    if (zero || centers.length === 0) centers.push(0);
    // + 0 turns a -0 (which the sparse encoding would not see as zero) into 0
    return Float32Array.from(new Set(centers.map((c) => roundTo(c, repr) + 0))).sort();
  }
}

/**
 * Assigns each value to its nearest centre (sorted), by binary search over the midpoints; with `zero`, exact zeros
 * go to the zero centre. Into `out` when given (as long as `values`; 16-bit when there are more than 256 centres).
 */
export function assign(
  values: Float32Array,
  centers: Float32Array,
  zero = false,
  out: Uint8Array | Uint16Array = centers.length <= 256
    ? new Uint8Array(values.length)
    : new Uint16Array(values.length),
): Uint8Array | Uint16Array {
  const k = centers.length;
  const mids = new Float64Array(Math.max(0, k - 1));
  for (let i = 0; i + 1 < k; i++) mids[i] = (centers[i] + centers[i + 1]) / 2;
  const z = zero ? centers.indexOf(0) : -1;
  // The index is the first midpoint >= v. A table over the midpoints' range says, for each of BUCKETS equal
  // buckets, how many midpoints lie in the buckets before it: those are all < v, and those in later buckets all > v
  // (a value's bucket is monotone in the value), so the binary search only covers the midpoints in v's bucket.
  const m = mids.length;
  const lo = m > 0 ? mids[0] : 0, span = m > 0 ? mids[m - 1] - lo : 0;
  const scale = span > 0 ? BUCKETS / span : 0;
  const before = new Int32Array(BUCKETS + 2);
  for (let i = 0; i < m; i++) before[bucketOf(mids[i], lo, scale) + 1]++;
  for (let t = 1; t < before.length; t++) before[t] += before[t - 1];
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === 0 && z >= 0) {
      out[i] = z;
      continue;
    }
    const t = bucketOf(v, lo, scale);
    let a = before[t], b = before[t + 1];
    while (a < b) {
      const c = (a + b) >> 1;
      if (mids[c] < v) a = c + 1;
      else b = c;
    }
    out[i] = a;
  }
  return out;
}

/** Buckets of {@link assign}'s table. */
const BUCKETS = 1024;

/** 0 below the midpoints (and for NaN), BUCKETS above them; monotone in `v`. */
function bucketOf(v: number, lo: number, scale: number): number {
  const t = Math.floor((v - lo) * scale);
  return t > 0 ? (t < BUCKETS ? t : BUCKETS) : 0;
}
