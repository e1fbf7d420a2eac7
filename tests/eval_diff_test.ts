/**
 * diffStats reads activations in place (wasm heap view, or the cpu backend's array): its sums must equal a plain
 * computation over the NCHW values, in every layout pairing, and reading must leave no tensor behind.
 */
import { diffStats } from "../src/eval/diff_stats.ts";
import { loadTf } from "../src/linalg/tf.ts";

function rand(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    a[i] = s / 1073741824 - 1;
  }
  return a;
}

function near(got: number, want: number, what: string) {
  if (!(Math.abs(got - want) <= 1e-9 + 1e-5 * Math.abs(want))) throw new Error(`${what}: got ${got}, want ${want}`);
}

Deno.test("diffStats matches a plain computation for NCHW/NHWC pairings and flat tensors", async () => {
  const { tf } = await loadTf();
  const shape = [2, 5, 3, 7]; // N, C, H, W: unequal sizes catch a swapped index
  const n = shape.reduce((p, d) => p * d, 1);
  const ref = rand(n, 1), cand = rand(n, 2);
  let num = 0, den = 0, max = 0;
  for (let i = 0; i < n; i++) {
    const d = cand[i] - ref[i];
    num += d * d;
    den += ref[i] * ref[i];
    max = Math.max(max, Math.abs(d));
  }
  const before = tf.memory().numTensors;
  const make = (data: Float32Array, nhwc: boolean) => {
    const t = tf.tensor4d(data, shape as [number, number, number, number]);
    if (!nhwc) return { t, nhwc };
    const u = tf.transpose(t, [0, 2, 3, 1]);
    t.dispose();
    return { t: u, nhwc };
  };
  for (const [rn, cn] of [[false, false], [true, true], [true, false], [false, true]]) {
    const a = make(ref, rn), b = make(cand, cn);
    const s = diffStats(tf, a, b);
    const what = `reference ${rn ? "NHWC" : "NCHW"}, candidate ${cn ? "NHWC" : "NCHW"}`;
    near(s.num, num, `${what}: squared error`);
    near(s.den, den, `${what}: squared reference`);
    near(s.max, max, `${what}: max abs`);
    a.t.dispose();
    b.t.dispose();
  }
  const fa = tf.tensor2d(ref, [6, n / 6]), fb = tf.tensor2d(cand, [6, n / 6]);
  const flat = diffStats(tf, { t: fa, nhwc: false }, { t: fb, nhwc: false });
  near(flat.num, num, "rank 2: squared error");
  near(flat.max, max, "rank 2: max abs");
  fa.dispose();
  fb.dispose();
  if (tf.memory().numTensors !== before) {
    throw new Error(`diffStats left ${tf.memory().numTensors - before} tensors behind`);
  }
});
