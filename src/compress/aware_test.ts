import { assert, assertEquals, rng } from "../../tests/helpers.ts";
import { encodeClustered } from "../../formats/cvp/clustered.ts";
import { bitsFor, globMatch, parseBits } from "./cluster.ts";
import { inverseHessianFactor, nearest, quantizeSequential, refineCenters } from "./gptq.ts";
import { kmeans1d } from "./kmeans1d.ts";
import { combineRecipes, recipeFromFlags } from "./recipe.ts";
import { chooseBits, outputDivergence } from "./targets.ts";
import type { Layer } from "../model/types.ts";

function sparse(n: number, zeros: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < zeros ? 0 : (r() - 0.5) * (r() < 0.5 ? 0.2 : 0.05)));
}

Deno.test("k-means keeps an exact zero centre for a sparse tensor at low widths: zeros stay zeros", () => {
  const v = sparse(50_000, 0.8, 1);
  for (const bits of [2, 3, 4, 5, 6]) {
    const c = kmeans1d(v, 2 ** bits);
    assert(c.centers.length <= 2 ** bits, `${c.centers.length} centres at ${bits} bits`);
    const z = c.centers.indexOf(0);
    assert(z >= 0 && Object.is(c.centers[z], 0), `no +0 centre at ${bits} bits: ${c.centers.slice(0, 8)}`);
    for (let i = 0; i < v.length; i++) if (v[i] === 0) assert(c.indices[i] === z, `zero ${i} moved at ${bits} bits`);
    // the sparse-clustered encoding applies and is chosen
    const e = encodeClustered(c);
    assertEquals(e.fields.encoding, "cluster-sparse", `${bits} bits`);
  }
  // smaller at fewer bits (the regression: 6 bits larger than 7)
  const size = (b: number) => encodeClustered(kmeans1d(v, 2 ** b)).body.length;
  for (let b = 3; b <= 7; b++) assert(size(b - 1) < size(b), `${b - 1} bits ${size(b - 1)} B, ${b} bits ${size(b)} B`);
});

Deno.test("k-means on a dense tensor (few zeros) does not reserve a zero centre", () => {
  const r = rng(2);
  const v = Float32Array.from({ length: 20_000 }, (_, i) => (i % 100 === 0 ? 0 : r() * 2 - 1));
  const c = kmeans1d(v, 4);
  assertEquals(c.centers.length, 4);
  assert(c.centers.every((x) => Math.abs(x) > 0.1), `centres ${c.centers}`);
});

Deno.test("importance-weighted k-means lowers the weighted error", () => {
  const r = rng(3);
  const n = 40_000;
  const v = Float32Array.from({ length: n }, () => r() * 2 - 1);
  const w = (i: number) => (i % 2 === 0 && v[i] > 0.5 ? 100 : 1);
  const err = (c: ReturnType<typeof kmeans1d>) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += w(i) * (v[i] - c.centers[c.indices[i]]) ** 2;
    return s;
  };
  const plain = err(kmeans1d(v, 4)), weighted = err(kmeans1d(v, 4, { weightOf: w }));
  assert(weighted < 0.8 * plain, `weighted ${weighted} vs plain ${plain}`);
});

Deno.test("sequential error feedback (GPTQ) lowers the output error of a fixed codebook; masked zeros stay; rows in blocks", () => {
  const r = rng(5);
  const rows = 400, d = 24, out = 16;
  // correlated inputs
  const a = new Float32Array(rows * d);
  for (let i = 0; i < rows; i++) {
    const common = r() - 0.5;
    for (let j = 0; j < d; j++) a[i * d + j] = common + 0.3 * (r() - 0.5);
  }
  const h = new Float64Array(d * d);
  for (let i = 0; i < rows; i++) {
    for (let p = 0; p < d; p++) for (let q = 0; q < d; q++) h[p * d + q] += a[i * d + p] * a[i * d + q] / rows;
  }
  const w = Float32Array.from({ length: out * d }, (_, i) => (i % 5 === 0 ? 0 : r() - 0.5));
  const centers = Float32Array.from([-0.4, -0.15, 0, 0.15, 0.4]);
  const mask = Uint8Array.from(w, (x) => (x === 0 ? 1 : 0));
  const outErr = (idx: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < rows; i++) {
      for (let o = 0; o < out; o++) {
        let y = 0;
        for (let j = 0; j < d; j++) y += a[i * d + j] * (w[o * d + j] - centers[idx[o * d + j]]);
        s += y * y;
      }
    }
    return s;
  };
  const plain = Uint8Array.from(w, (x) => nearest(centers, x));
  const seq = quantizeSequential(w, out, d, inverseHessianFactor(h, d), centers, mask, 2);
  assert(outErr(seq) < 0.5 * outErr(plain), `sequential ${outErr(seq)} vs nearest ${outErr(plain)}`);
  for (let i = 0; i < w.length; i++) if (mask[i]) assertEquals(seq[i], 2, `masked ${i}`);
  // Rows go through in blocks: the same indices as each row alone, also for a partial last block (11 rows).
  const u = inverseHessianFactor(h, d);
  const part = quantizeSequential(w.subarray(0, 11 * d), 11, d, u, centers, mask.subarray(0, 11 * d), 2);
  for (let o = 0; o < out; o++) {
    const one = quantizeSequential(
      w.subarray(o * d, (o + 1) * d),
      1,
      d,
      u,
      centers,
      mask.subarray(o * d, (o + 1) * d),
      2,
    );
    assertEquals([...one], [...seq.subarray(o * d, (o + 1) * d)], `row ${o}`);
    if (o < 11) assertEquals([...one], [...part.subarray(o * d, (o + 1) * d)], `row ${o} of 11`);
  }
  // Re-solving the centres for these assignments lowers the output error further; the fixed zero stays.
  const refined = Float32Array.from(refineCenters(w, out, d, h, centers, seq, 2));
  assertEquals(refined[2], 0);
  const errWith = (cs: Float32Array) => {
    let s = 0;
    for (let i = 0; i < rows; i++) {
      for (let o = 0; o < out; o++) {
        let y = 0;
        for (let j = 0; j < d; j++) y += a[i * d + j] * (w[o * d + j] - cs[seq[o * d + j]]);
        s += y * y;
      }
    }
    return s;
  };
  assert(errWith(refined) < errWith(centers), `refined ${errWith(refined)} vs ${errWith(centers)}`);
});

Deno.test("chooseBits fits the budget and spends bytes where the error drops most", () => {
  const layers = [
    { layer: "a", tensor: "a.w", options: [2, 4, 6].map((b) => ({ bits: b, error: 2 ** -b, bytes: 100 * b })) },
    { layer: "b", tensor: "b.w", options: [2, 4, 6].map((b) => ({ bits: b, error: 8 * 2 ** -b, bytes: 100 * b })) },
  ];
  assertEquals(chooseBits(layers, 300), undefined);
  const c = chooseBits(layers, 600)!;
  assertEquals(c.get("b"), 4, "the layer with the larger error widens first");
  assertEquals(c.get("a"), 2);
  const all = chooseBits(layers, 10_000)!;
  assert(all.get("a") === 6 && all.get("b") === 6, "everything fits");
});

Deno.test("chooseBits weighs each layer's error by its gain to the model output", () => {
  // Same layer errors, but b's errors reach the output 100x amplified: b widens first.
  const opts = (s: number) => [2, 4, 6].map((b) => ({ bits: b, error: s * 2 ** -b, bytes: 100 * b }));
  const flat = chooseBits([
    { layer: "a", tensor: "a.w", options: opts(8) },
    { layer: "b", tensor: "b.w", options: opts(1) },
  ], 600)!;
  assertEquals([flat.get("a"), flat.get("b")], [4, 2], "equal gains: the larger layer error widens");
  const weighed = chooseBits([
    { layer: "a", tensor: "a.w", options: opts(8), gain: 1 },
    { layer: "b", tensor: "b.w", options: opts(1), gain: 100 },
  ], 600)!;
  assertEquals([weighed.get("a"), weighed.get("b")], [2, 4], "the layer with the larger output gain widens");
});

Deno.test("outputDivergence: KL of the output distributions, probabilities as they are, logits through softmax", () => {
  const p = Float32Array.of(0.7, 0.2, 0.1, 0.25, 0.25, 0.5);
  assertEquals(outputDivergence(p, p, 2), 0);
  const q = Float32Array.of(0.6, 0.3, 0.1, 0.25, 0.25, 0.5);
  const kl = (0.7 * Math.log(0.7 / 0.6) + 0.2 * Math.log(0.2 / 0.3)) / 2;
  assert(Math.abs(outputDivergence(p, q, 2) - kl) < 1e-6, `${outputDivergence(p, q, 2)} vs ${kl}`);
  // Logits: shifting a row by a constant changes nothing; a changed logit does.
  const z = Float32Array.of(2, -1, 0.5), z2 = Float32Array.of(3, 0, 1.5), z3 = Float32Array.of(0.5, -1, 2);
  assert(outputDivergence(z, z2, 1) < 1e-6);
  assert(outputDivergence(z, z3, 1) > 0.5);
});

Deno.test("--bits takes kinds, layer names and patterns; flags combine with a recipe and win", () => {
  const bits = parseBits("conv=5,fc=4,fire9/*=6,conv_final=8");
  assert(typeof bits === "object");
  const layer = (name: string, op: "Conv" | "FC") => ({ name, op }) as unknown as Layer;
  const opts = { bits };
  assertEquals(bitsFor(layer("conv_final", "Conv"), opts), 8);
  assertEquals(bitsFor(layer("fire9/conv1x1_1", "Conv"), opts), 6);
  assertEquals(bitsFor(layer("fire2/conv1x1_1", "Conv"), opts), 5);
  assertEquals(bitsFor(layer("ip1", "FC"), opts), 4);
  assert(globMatch("fire*/conv3x3_2", "fire4/conv3x3_2") && !globMatch("fire*", "conv1"), "glob");
  const base = { name: "r", stages: [{ tsvd: { rank: 64 } }, { cluster: { bits: { conv: 5, fc: 4 } } }] };
  const merged = combineRecipes(base, recipeFromFlags({ bits: "fc=3,ip2=8", gap: true }));
  assertEquals(merged.stages.map((s) => Object.keys(s)[0]).join(","), "gap,tsvd,cluster");
  const cl = (merged.stages[2] as { cluster: { bits: { conv: number; fc: number; layers: Record<string, number> } } })
    .cluster.bits;
  assert(cl.conv === 5 && cl.fc === 3 && cl.layers.ip2 === 8, JSON.stringify(cl));
});
