import { assert, assertEquals } from "../../tests/helpers.ts";
import {
  BLOCKED_MIN,
  blockedAvailable,
  cholesky,
  choleskyBlocked,
  invertLowerBlocked,
  solveLowerBlocked,
  solveUpperBlocked,
  transposeSquare,
} from "./cholesky.ts";
import { ridgeSolve, ridgeSolveFast } from "../compress/lstsq.ts";
import { inverseHessianFactor, inverseHessianFactorFast } from "../compress/gptq.ts";

const ort = await blockedAvailable();
const why = "the blocked forms need ONNX Runtime (onnxruntime-node) to load";

function rand(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/** A Gram matrix X^T X of `rows` random rows (rank-limited when rows < d), plus `ridge` I. */
function gram(d: number, rows: number, ridge: number, seed = 1): Float64Array {
  const r = rand(seed);
  const x = new Float64Array(rows * d).map(() => r());
  const g = new Float64Array(d * d);
  for (let k = 0; k < rows; k++) {
    for (let i = 0; i < d; i++) {
      const v = x[k * d + i];
      if (v === 0) continue;
      for (let j = 0; j <= i; j++) g[i * d + j] += v * x[k * d + j];
    }
  }
  for (let i = 0; i < d; i++) {
    g[i * d + i] += ridge;
    for (let j = 0; j < i; j++) g[j * d + i] = g[i * d + j];
  }
  return g;
}

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}

// 1100: above the threshold, and not a multiple of the block size (a last block of 76 rows).
const D = 1100;

Deno.test({
  name: "blocked Cholesky, solves and inverse agree with the loops (d = 1100, blocks of 256)",
  ignore: !ort,
  async fn() {
    const g = gram(D, 400, 0.5);
    const ref = g.slice();
    cholesky(ref, D);
    const l = g.slice();
    await choleskyBlocked(l, D);
    for (let i = 0; i < D; i++) {
      for (let j = i + 1; j < D; j++) assertEquals(l[i * D + j], 0, `upper part (${i}, ${j}) is zeroed`);
      for (let j = 0; j <= i; j++) ref[j * D + i] = j === i ? ref[i * D + i] : 0;
    }
    assert(maxRelDiff(l, ref) < 1e-12, `factor: ${maxRelDiff(l, ref)}`);
    // L L^T X = B through the two solves, checked by multiplying back.
    const m = 37, r = rand(5);
    const b = new Float64Array(D * m).map(() => r());
    const z = await solveLowerBlocked(l, D, b, m);
    const lt = l.slice();
    transposeSquare(lt, D);
    const x = await solveUpperBlocked(lt, D, z, m);
    const back = new Float64Array(D * m);
    for (let i = 0; i < D; i++) {
      for (let k = 0; k < D; k++) {
        const v = g[i * D + k];
        for (let j = 0; j < m; j++) back[i * m + j] += v * x[k * m + j];
      }
    }
    assert(maxRelDiff(back, b) < 1e-9, `G X = B: ${maxRelDiff(back, b)}`);
    // L^-1 L = I.
    const inv = await invertLowerBlocked(l, D);
    let worst = 0;
    for (let i = 0; i < D; i += 7) {
      for (let j = 0; j < D; j += 5) {
        let s = 0;
        for (let k = 0; k < D; k++) s += inv[i * D + k] * l[k * D + j];
        worst = Math.max(worst, Math.abs(s - (i === j ? 1 : 0)));
      }
    }
    assert(worst < 1e-9, `L^-1 L - I: ${worst}`);
  },
});

Deno.test({
  name:
    "ridgeSolveFast and inverseHessianFactorFast: the loops' results below the threshold (bit for bit), near them above",
  ignore: !ort,
  async fn() {
    for (const d of [BLOCKED_MIN - 1, D]) {
      const g = gram(d, d < D ? 300 : 500, 0, d);
      const m = 16, r = rand(d);
      const rhs = new Float64Array(d * m).map(() => r());
      const prior = new Float64Array(d * m).map(() => r());
      const slow = ridgeSolve(g.slice(), rhs, d, m, { prior });
      const fast = await ridgeSolveFast(g.slice(), rhs, d, m, { prior });
      assertEquals(fast.lambda, slow.lambda);
      const diff = maxRelDiff(fast.x, slow.x);
      if (d < BLOCKED_MIN) assertEquals(diff, 0, "the loops themselves below the threshold");
      else assert(diff > 0 && diff < 1e-8, `ridge solution: ${diff} (the blocked path ran, and agrees)`);
      const u0 = inverseHessianFactor(g, d, 0.01);
      const u1 = await inverseHessianFactorFast(g, d, 0.01);
      const du = maxRelDiff(u1, u0);
      if (d < BLOCKED_MIN) assertEquals(du, 0);
      else assert(du > 0 && du < 1e-8, `inverse Hessian factor: ${du}`);
    }
  },
});

if (!ort) Deno.test({ name: `blocked Cholesky (skipped: ${why})`, ignore: true, fn() {} });
