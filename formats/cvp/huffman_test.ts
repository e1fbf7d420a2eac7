import { bitsFor, packedLength } from "./bitpack.ts";
import { codeLengths, huffmanDecode, huffmanEncode, MAX_CODE_LENGTH } from "./huffman.ts";
import { encodeSymbols } from "./symbols.ts";
import { assert, rng } from "../../tests/helpers.ts";

function roundTrip(symbols: Uint32Array, alphabet: number): Uint8Array {
  const enc = huffmanEncode(symbols, alphabet);
  const out = new Uint32Array(symbols.length);
  // Decode in uneven slices to exercise resumption.
  let dec;
  let done = 0;
  let step = 1;
  while (done < symbols.length) {
    const n = Math.min(step, symbols.length - done);
    const part = new Uint32Array(n);
    dec = huffmanDecode(enc, alphabet, n, part, dec);
    out.set(part, done);
    done += n;
    step = step * 3 + 1;
  }
  for (let i = 0; i < symbols.length; i++) {
    if (out[i] !== symbols[i]) throw new Error(`alphabet ${alphabet} symbol ${i}: ${out[i]} != ${symbols[i]}`);
  }
  return enc;
}

Deno.test("Huffman round-trips skewed, uniform, single-symbol and empty streams", () => {
  const r = rng(3);
  for (const alphabet of [1, 2, 3, 5, 16, 17, 256, 257, 4096, 65536, 65537]) {
    for (const shape of ["skewed", "uniform", "single", "empty"]) {
      const n = shape === "empty" ? 0 : 1 + Math.floor(r() * 3000);
      const s = new Uint32Array(n);
      for (let i = 0; i < n; i++) {
        s[i] = shape === "single"
          ? alphabet - 1
          : shape === "uniform"
          ? Math.floor(r() * alphabet)
          : Math.min(alphabet - 1, Math.floor(-Math.log(1 - r()) * 2));
      }
      roundTrip(s, alphabet);
    }
  }
});

Deno.test("Huffman code lengths stay within the limit on geometric (Fibonacci-like) counts", () => {
  const f = new Float64Array(60);
  let a = 1, b = 1;
  for (let i = 0; i < 60; i++) {
    f[i] = a;
    [a, b] = [b, a + b];
  }
  const l = codeLengths(f);
  assert(Math.max(...l) <= MAX_CODE_LENGTH, `max ${Math.max(...l)}`);
  let kraft = 0;
  for (const x of l) kraft += 2 ** -x;
  assert(kraft <= 1 + 1e-12, `kraft ${kraft}`);
  // A stream with those counts (scaled down) still round-trips.
  const s: number[] = [];
  for (let i = 0; i < 60; i++) for (let j = 0; j < Math.min(50, f[i]); j++) s.push(i);
  roundTrip(Uint32Array.from(s), 60);
});

Deno.test("chosen symbol coding never exceeds plain packing, for every k from 2 to 65536 (sampled lengths)", () => {
  const r = rng(4);
  for (let k = 2; k <= 65536; k += k < 300 ? 1 : 97) {
    const n = Math.floor(r() * 400);
    const s = new Uint32Array(n);
    const skew = r() < 0.5;
    for (let i = 0; i < n; i++) s[i] = skew ? Math.min(k - 1, Math.floor(-Math.log(1 - r()) * 3)) : Math.floor(r() * k);
    const enc = encodeSymbols(s, k);
    const plain = packedLength(n, bitsFor(k));
    assert(enc.bytes.length <= plain, `k=${k}: ${enc.bytes.length} > ${plain}`);
    if (enc.coding === "huffman") roundTrip(s, k);
  }
});

Deno.test("Huffman beats packing on skewed streams", () => {
  const r = rng(5);
  const s = new Uint32Array(100000);
  for (let i = 0; i < s.length; i++) s[i] = Math.min(255, Math.floor(-Math.log(1 - r()) * 4));
  const enc = encodeSymbols(s, 256);
  assert(enc.coding === "huffman", enc.coding);
  assert(enc.bytes.length < packedLength(s.length, 8) * 0.6, `${enc.bytes.length}`);
});

Deno.test("Huffman decoder rejects over-subscribed tables and truncated streams", () => {
  // Three symbols all of length 1: over-subscribed.
  const bad = new Uint8Array(4);
  bad[0] = 1 | (1 << 5);
  bad[1] = (1 >> 3) | (1 << 2);
  let threw = false;
  try {
    huffmanDecode(bad, 3, 1, new Uint8Array(1));
  } catch {
    threw = true;
  }
  assert(threw, "over-subscribed");
  const s = Uint32Array.from({ length: 100 }, (_, i) => i % 7);
  const enc = huffmanEncode(s, 7);
  threw = false;
  try {
    huffmanDecode(enc.subarray(0, enc.length - 3), 7, 100, new Uint8Array(100));
  } catch {
    threw = true;
  }
  assert(threw, "truncated");
});
