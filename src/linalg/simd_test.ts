import { assert } from "../../tests/helpers.ts";
import { simdArena } from "./simd.ts";

Deno.test("SIMD kernels: add and axpy give the plain loops' values bit for bit, any length and offset", () => {
  const ar = simdArena(3 * 1000);
  assert(ar, "WebAssembly SIMD is available in Deno");
  const a = ar.array(1000), x = ar.array(1000), y = ar.array(7);
  assert(a.byteOffset % 16 === 0 && x.byteOffset % 16 === 0 && y.byteOffset % 16 === 0, "arrays are aligned");
  let s = 3;
  const r = () => ((s = (s * 16807) % 2147483647) / 2147483647) - 0.5;
  for (const [ai, xi, n] of [[0, 0, 1000], [3, 1, 997], [5, 5, 2], [1, 0, 1], [10, 20, 0]]) {
    for (let i = 0; i < 1000; i++) [a[i], x[i]] = [r() * 1e3, r() / 7];
    const add = Float64Array.from(a);
    for (let j = 0; j < n; j++) add[ai + j] += x[xi + j];
    ar.add(a, ai, x, xi, n);
    assert(a.every((v, i) => Object.is(v, add[i])), `add ${ai} ${xi} ${n}`);
    const e = r() * 3;
    const axpy = Float64Array.from(a);
    for (let j = 0; j < n; j++) axpy[ai + j] -= e * x[xi + j];
    ar.axpy(a, ai, x, xi, n, e);
    assert(a.every((v, i) => Object.is(v, axpy[i])), `axpy ${ai} ${xi} ${n}`);
  }
  // mark/release give space back; owns tells an arena's arrays from others.
  const m = ar.mark(), t1 = ar.array(8);
  ar.release(m);
  assert(ar.array(8).byteOffset === t1.byteOffset && ar.owns(t1) && !ar.owns(new Float64Array(8)), "mark, release");
  // Each arena has its own memory, sized for what it was asked.
  assert(y.buffer !== simdArena(4)!.array(4).buffer, "arenas are separate");
});
