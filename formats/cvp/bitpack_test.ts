import { bitsFor, packBits, packedLength, unpackBits } from "./bitpack.ts";
import { assert, rng } from "../../tests/helpers.ts";

Deno.test("bitsFor is ceil(log2 k)", () => {
  assert(bitsFor(1) === 0 && bitsFor(2) === 1 && bitsFor(3) === 2 && bitsFor(4) === 2 && bitsFor(5) === 3);
  for (let b = 1; b <= 24; b++) {
    assert(bitsFor(2 ** b) === b, `k=2^${b}`);
    assert(bitsFor(2 ** b + 1) === b + 1, `k=2^${b}+1`);
  }
});

Deno.test("pack/unpack round-trips for every k from 2 to 65536 at random lengths", () => {
  const r = rng(1);
  for (let k = 2; k <= 65536; k++) {
    const bits = bitsFor(k);
    const n = Math.floor(r() * 24);
    const v = new Uint32Array(n + 1);
    for (let i = 0; i < n; i++) v[i] = Math.floor(r() * k);
    v[n] = k - 1; // the largest index always appears
    const packed = packBits(v, bits);
    assert(packed.length === packedLength(n + 1, bits), `length k=${k}`);
    const out = new Uint32Array(n + 1);
    unpackBits(packed, bits, 0, n + 1, out);
    for (let i = 0; i <= n; i++) if (out[i] !== v[i]) throw new Error(`k=${k} i=${i}: ${out[i]} != ${v[i]}`);
  }
});

Deno.test("pack/unpack long random streams, and any window decodes alone", () => {
  const r = rng(2);
  for (let bits = 0; bits <= 24; bits++) {
    for (let trial = 0; trial < 4; trial++) {
      const n = Math.floor(r() * 5000);
      const v = new Uint32Array(n);
      for (let i = 0; i < n; i++) v[i] = Math.floor(r() * 2 ** bits);
      const packed = packBits(v, bits);
      assert(packed.length === Math.ceil((n * bits) / 8));
      const out = new Uint32Array(n);
      unpackBits(packed, bits, 0, n, out);
      assert(out.every((x, i) => x === v[i]), `bits=${bits}`);
      if (n > 10) {
        const s = Math.floor(r() * (n - 5));
        const w = new Uint32Array(5);
        unpackBits(packed, bits, s, 5, w);
        assert(w.every((x, i) => x === v[s + i]), `window bits=${bits}`);
      }
    }
  }
});

Deno.test("pack rejects values that do not fit and unpack rejects short streams", () => {
  let threw = false;
  try {
    packBits([4], 2);
  } catch {
    threw = true;
  }
  assert(threw, "4 in 2 bits");
  threw = false;
  try {
    unpackBits(new Uint8Array(1), 3, 0, 3, new Uint8Array(3));
  } catch {
    threw = true;
  }
  assert(threw, "short stream");
});
