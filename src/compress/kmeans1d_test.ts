import { assertEquals, rng } from "../../tests/helpers.ts";
import { assign, kmeans1d, kmeansCenters } from "./kmeans1d.ts";

/** The nearest sorted centre by a plain binary search over the midpoints: what `assign` must agree with. */
function plainAssign(values: Float32Array, centers: Float32Array, zero: boolean): number[] {
  const mids = Array.from({ length: Math.max(0, centers.length - 1) }, (_, i) => (centers[i] + centers[i + 1]) / 2);
  const z = zero ? centers.indexOf(0) : -1;
  return Array.from(values, (v) => {
    if (v === 0 && z >= 0) return z;
    let a = 0, b = mids.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (mids[m] < v) a = m + 1;
      else b = m;
    }
    return a;
  });
}

Deno.test("assign (bucketed search) gives the nearest centre's index exactly, ties, outliers and non-finite values included", () => {
  const r = rng(3);
  for (const [k, n] of [[1, 50], [2, 500], [4, 20_000], [32, 50_000], [256, 50_000], [3000, 20_000]]) {
    // Centres with far outliers (most midpoints then share a bucket) and values on the midpoints themselves.
    const c = Float32Array.from(new Set(Float32Array.from({ length: k }, () => (r() - 0.5) * (r() < 0.05 ? 40 : 1))))
      .sort();
    const v = Float32Array.from({ length: n }, () => (r() - 0.5) * (r() < 0.01 ? 60 : 1));
    for (let i = 0; i + 1 < c.length && 3 * i + 1 < n; i++) v[3 * i + 1] = (c[i] + c[i + 1]) / 2;
    for (let i = 0; i < n; i += 7) v[i] = 0;
    v[2 % n] = NaN;
    if (n > 8) [v[5], v[8]] = [Infinity, -Infinity];
    for (const zero of [false, true]) {
      const cs = zero ? Float32Array.from(new Set([...c, 0])).sort() : c;
      assertEquals([...assign(v, cs, zero, new Uint16Array(n))], plainAssign(v, cs, zero), `k = ${k}, zero ${zero}`);
    }
  }
});

Deno.test("column weights give the centres of the same per-element weights, and kmeansCenters those of kmeans1d", () => {
  const r = rng(5);
  const d = 37, rows = 300;
  const v = Float32Array.from({ length: d * rows }, () => (r() < 0.2 ? 0 : (r() - 0.5) * (r() < 0.1 ? 1 : 0.1)));
  const cw = Float64Array.from({ length: d }, () => r() * 3 + 1e-3);
  for (const k of [4, 16, 64]) {
    const byCall = kmeans1d(v, k, { weightOf: (i) => cw[i % d] });
    const byColumn = kmeans1d(v, k, { columnWeights: cw });
    assertEquals([...byColumn.centers], [...byCall.centers], `k = ${k}`);
    assertEquals([...byColumn.indices], [...byCall.indices], `k = ${k}`);
    assertEquals([...kmeansCenters(v, k, { columnWeights: cw })], [...byCall.centers], `k = ${k}`);
  }
});
