import { assert, assertEquals, rng } from "../../tests/helpers.ts";
import { decodeVarint, encodeVarint, varintSigned, varintSize, varintUnsigned } from "./varint.ts";

function roundTrip(v: number, width = 0): number {
  const b = new Uint8Array(16);
  const end = encodeVarint(b, 0, v, width);
  const p = decodeVarint(b, 0, end);
  assertEquals(p, end, `length of ${v}`);
  return v < 0 ? varintSigned() : varintUnsigned();
}

Deno.test("varint round-trips boundary values", () => {
  for (const v of [0, 1, 127, 128, 300, 2 ** 31 - 1, 2 ** 32, 411041792, 2 ** 53 - 1]) {
    assertEquals(roundTrip(v), v, String(v));
    assertEquals(varintSize(v), encodeVarint(new Uint8Array(16), 0, v), `size of ${v}`);
  }
});

Deno.test("varint encodes negative int64 in 10 bytes, as protobuf does", () => {
  const b = new Uint8Array(10);
  assertEquals(encodeVarint(b, 0, -1), 10);
  assertEquals([...b], [255, 255, 255, 255, 255, 255, 255, 255, 255, 1]);
  for (const v of [-1, -2, -300, -(2 ** 31), -(2 ** 40)]) assertEquals(roundTrip(v), v, String(v));
});

Deno.test("padded (non-canonical) varints decode to the same value", () => {
  const r = rng(1);
  for (let i = 0; i < 1000; i++) {
    const v = Math.floor(r() * 2 ** 34);
    const width = Math.max(varintSize(v), 5 + Math.floor(r() * 5));
    assertEquals(roundTrip(v, width), v);
  }
  // 0 padded to 5 bytes: 80 80 80 80 00
  const b = new Uint8Array(5);
  encodeVarint(b, 0, 0, 5);
  assertEquals([...b], [0x80, 0x80, 0x80, 0x80, 0]);
});

Deno.test("truncated and over-long varints are reported, not misread", () => {
  assertEquals(decodeVarint(new Uint8Array([0x80, 0x80]), 0, 2), -1);
  assertEquals(decodeVarint(new Uint8Array(11).fill(0x80), 0, 11), -2);
  decodeVarint(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0, 9);
  assert(varintUnsigned() === -1, "2^63 exceeds safe range");
});
