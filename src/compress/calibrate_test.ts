/**
 * Unit tests of the calibration pieces: the ridge solver against ml-matrix, sampled im2col against the eval
 * engine's convolution (itself checked against ONNX Runtime in tests/eval_onnx_test.ts), and the flag checks.
 */
import { Matrix, solve } from "ml-matrix";
import { LayerExecutor } from "../eval/executor.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer } from "../model/types.ts";
import { assert, rng } from "../../tests/helpers.ts";
import { convGeometry, convOutputSize, im2colRows, samplePositions } from "./im2col.ts";
import { cholesky, ridgeSolve } from "./lstsq.ts";
import { inverseHessianFactor } from "./gptq.ts";
import { calibrationFromFlags } from "../cli/calibrate_flags.ts";
import { validateRecipe } from "./recipe.ts";

Deno.test("ridgeSolve: matches ml-matrix on the same regularized normal equations", () => {
  const r = rng(7);
  const n = 40, d = 12, m = 3;
  const a = Matrix.from1DArray(n, d, Array.from({ length: n * d }, () => r() - 0.5));
  const y = Matrix.from1DArray(n, m, Array.from({ length: n * m }, () => r() - 0.5));
  const prior = Matrix.from1DArray(d, m, Array.from({ length: d * m }, () => r() - 0.5));
  const g = a.transpose().mmul(a), rhs = a.transpose().mmul(y);
  const lambda = 0.05 * g.trace() / d;
  const want = solve(g.clone().add(Matrix.eye(d).mul(lambda)), rhs.clone().add(prior.clone().mul(lambda)));
  const got = ridgeSolve(Float64Array.from(g.to1DArray()), Float64Array.from(rhs.to1DArray()), d, m, {
    ridge: 0.05,
    prior: Float64Array.from(prior.to1DArray()),
  });
  assert(Math.abs(got.lambda - lambda) < 1e-12, `lambda ${got.lambda} vs ${lambda}`);
  const w = want.to1DArray();
  for (let i = 0; i < w.length; i++) assert(Math.abs(got.x[i] - w[i]) < 1e-9, `x[${i}] ${got.x[i]} vs ${w[i]}`);
});

Deno.test("ridgeSolve: a tiny ridge recovers an exact linear map", () => {
  const r = rng(3);
  const n = 60, d = 8, m = 2;
  const a = Array.from({ length: n * d }, () => r() - 0.5), t = Array.from({ length: d * m }, () => r() - 0.5);
  const A = Matrix.from1DArray(n, d, a), T = Matrix.from1DArray(d, m, t);
  const Y = A.mmul(T);
  const { x } = ridgeSolve(
    Float64Array.from(A.transpose().mmul(A).to1DArray()),
    Float64Array.from(A.transpose().mmul(Y).to1DArray()),
    d,
    m,
    { ridge: 1e-12 },
  );
  t.forEach((v, i) => assert(Math.abs(x[i] - v) < 1e-7, `x[${i}] ${x[i]} vs ${v}`));
});

Deno.test("im2colRows: patches times the weight equal the executor's convolution (pads, strides, dilation)", async () => {
  const r = rng(11);
  const [n, c, h, w, o] = [2, 3, 9, 8, 4];
  const x = Float32Array.from({ length: n * c * h * w }, () => r() - 0.5);
  const wt = Float32Array.from({ length: o * c * 3 * 3 }, () => r() - 0.5);
  const attrs = { kernel: [3, 3], strides: [2, 1], pads: [1, 2, 0, 1], dilations: [1, 2], group: 1 };
  const layer: Layer = {
    name: "conv",
    op: "Conv",
    attrs,
    inputs: ["x"],
    outputs: ["y"],
    params: { weight: Tensor.fromFloat32("w", [o, c, 3, 3], wt) },
  };
  const ex = await LayerExecutor.create({ backend: "cpu" });
  try {
    ex.setInput("x", x, [n, c, h, w]);
    await ex.run(layer);
    const y = await ex.read("y");
    const g = convGeometry(attrs, [o, c, 3, 3]);
    const [oh, ow] = convOutputSize(g, h, w);
    assert(y.shape[2] === oh && y.shape[3] === ow, `shape ${y.shape} vs ${oh}x${ow}`);
    const pos = samplePositions(n * oh * ow, 17, 5);
    const rows = im2colRows(x, [n, c, h, w], g, pos, [0, 1, 2]);
    const k = c * 9;
    pos.forEach((p, i) => {
      const b = Math.floor(p / (oh * ow)), yy = Math.floor(p / ow) % oh, xx = p % ow;
      for (let oc = 0; oc < o; oc++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += rows[i * k + j] * wt[oc * k + j];
        const want = y.data[((b * o + oc) * oh + yy) * ow + xx];
        assert(Math.abs(s - want) < 1e-5, `position ${p} channel ${oc}: ${s} vs ${want}`);
      }
    });
    // A channel subset gathers the same values.
    const sub = im2colRows(x, [n, c, h, w], g, pos, [2]);
    for (let i = 0; i < pos.length; i++) {
      for (let j = 0; j < 9; j++) assert(sub[i * 9 + j] === rows[i * k + 18 + j]);
    }
  } finally {
    ex.dispose();
  }
});

Deno.test("samplePositions: deterministic, in range, all positions when enough rows", () => {
  const a = samplePositions(1000, 50, 3), b = samplePositions(1000, 50, 3);
  assert(a.every((v, i) => v === b[i] && v >= 0 && v < 1000));
  assert(samplePositions(10, 20).join() === "0,1,2,3,4,5,6,7,8,9");
});

Deno.test("calibration flags and recipe criteria: bad values are usage errors", () => {
  assert(calibrationFromFlags({}) === undefined);
  const o = calibrationFromFlags({ calibration: "mnist", limit: "64", scale: "0.00390625", resize: "32" })!;
  assert(o.path === "mnist" && o.limit === 64 && o.scale === 0.00390625 && o.resize![1] === 32);
  const throws = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return (e as { code?: string }).code === "usage";
    }
    return false;
  };
  assert(throws(() => calibrationFromFlags({ limit: "5" })), "--limit without --calibration");
  assert(throws(() => calibrationFromFlags({ calibration: "x", limit: "0" })), "--limit 0");
  assert(throws(() => validateRecipe({ stages: [{ prune: { keep: 0.5, criterion: "taylor" } }] }, "t")));
  validateRecipe({ stages: [{ prune: { keep: 0.5, criterion: "apoz" } }] }, "t");
});

Deno.test("calibration products: ONNX Runtime's sensitivity curve and least-squares fit agree with tfjs'", async () => {
  const { _products: p } = await import("./calibrate.ts");
  const { loadOrt } = await import("../linalg/ort.ts");
  if (!(await loadOrt()).ort) return;
  const { tf } = await LayerExecutor.create({ backend: "cpu" });
  const r = rng(21);
  const rows = 300, channels = 6, block = 4, d = channels * block, out = 5;
  const a = Float32Array.from({ length: rows * d }, () => r() - 0.5);
  const w = Float32Array.from({ length: out * d }, () => r() - 0.5);
  const order = [3, 0, 5, 1, 4, 2];
  const ct = p.curveTf(tf, a, w, rows, d, out, order, block, 2);
  const co = await p.curveOrt(a, w, rows, d, out, order, block, 2);
  assert(ct.size === co.size && ct.size === 4, `points ${ct.size} vs ${co.size}`);
  for (const [k, v] of ct) assert(Math.abs(co.get(k)! - v) < 1e-4, `curve at ${k}: ${co.get(k)} vs ${v}`);
  const keptCols = [0, 1, 2, 3, 8, 9, 10, 11, 20, 21, 22, 23];
  const dk = keptCols.length + 1;
  const bias = Float32Array.from({ length: out }, () => r() - 0.5);
  const prior = new Float64Array(dk * out);
  for (let o = 0; o < out; o++) {
    keptCols.forEach((c, i) => (prior[i * out + o] = w[o * d + c]));
    prior[(dk - 1) * out + o] = bias[o];
  }
  const sys = { a, rows, d, out, wData: w, bias, keptCols, dk, prior, ridge: 1e-3 };
  const ft = (await p.solveTf(tf, sys))!, fo = (await p.solveOrt(sys))!;
  assert(Math.abs(ft.errBefore - fo.errBefore) < 1e-4 * ft.errBefore, `before ${fo.errBefore} vs ${ft.errBefore}`);
  assert(Math.abs(ft.errAfter - fo.errAfter) < 1e-3 * ft.errAfter, `after ${fo.errAfter} vs ${ft.errAfter}`);
  ft.theta.forEach((v, i) => assert(Math.abs(fo.theta[i] - v) < 1e-4, `theta[${i}] ${fo.theta[i]} vs ${v}`));
});

/** A^T A of a random rows x d matrix A (uniform in [-0.5, 0.5)): symmetric positive definite when rows >= d. */
function randomGram(r: () => number, d: number, rows: number): Float64Array {
  const a = Float64Array.from({ length: rows * d }, () => r() - 0.5);
  const g = new Float64Array(d * d);
  for (let s = 0; s < rows; s++) {
    for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) g[i * d + j] += a[s * d + i] * a[s * d + j];
  }
  return g;
}

Deno.test("inverseHessianFactor: U is upper triangular and U^T U is (H + damp I)^-1 (ml-matrix), all sizes", () => {
  const r = rng(11);
  for (const d of [1, 3, 4, 7, 13, 40]) {
    const h = randomGram(r, d, d + 5);
    const damp = 0.05;
    const u = inverseHessianFactor(h, d, damp);
    let mean = 0;
    for (let i = 0; i < d; i++) mean += h[i * d + i] / d;
    const hd = Matrix.from1DArray(d, d, Array.from(h)).add(Matrix.eye(d, d).mul(damp * mean));
    const inv = solve(hd, Matrix.eye(d, d));
    let err = 0, norm = 0;
    for (let i = 0; i < d; i++) {
      assert(u[i * d + i] > 0, `diagonal ${i} of d=${d}`);
      for (let j = 0; j < d; j++) {
        if (j < i) assert(u[i * d + j] === 0, `U[${i},${j}] = ${u[i * d + j]} below the diagonal (d=${d})`);
        let v = 0;
        for (let k = 0; k < d; k++) v += u[k * d + i] * u[k * d + j];
        err += (v - inv.get(i, j)) ** 2;
        norm += inv.get(i, j) ** 2;
      }
    }
    assert(Math.sqrt(err / norm) < 1e-10, `d=${d}: U^T U vs inverse ${Math.sqrt(err / norm)}`);
  }
});

Deno.test("cholesky: L L^T equals the matrix for every size around the 4-row blocking", () => {
  const r = rng(12);
  for (const d of [1, 2, 5, 8, 9, 23]) {
    const g = randomGram(r, d, d + 3);
    const l = Float64Array.from(g);
    cholesky(l, d);
    let err = 0;
    for (let i = 0; i < d; i++) {
      for (let j = 0; j <= i; j++) {
        let v = 0;
        for (let k = 0; k <= j; k++) v += l[i * d + k] * l[j * d + k];
        err = Math.max(err, Math.abs(v - g[i * d + j]));
      }
    }
    assert(err < 1e-12 * d, `d=${d}: max |L L^T - G| ${err}`);
  }
});
