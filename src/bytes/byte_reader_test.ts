import { assert, assertEquals, assertRejects, rng } from "../../tests/helpers.ts";
import { ByteReader } from "./byte_reader.ts";
import { chunkedInput, memoryInput, splitAt } from "./inputs.ts";
import { ConvpressError } from "../errors.ts";

const data = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 7 + (i >> 8)) & 0xff);

function splits(seed: number): Uint8Array[][] {
  const r = rng(seed);
  const random = Array.from({ length: 50 }, () => Math.floor(r() * data.length));
  return [
    [data],
    splitAt(data, random),
    splitAt(data, Array.from({ length: 3000 }, (_, i) => i + 1)), // the first 3000 bytes one at a time
  ];
}

async function readPattern(reader: ByteReader): Promise<Uint8Array> {
  // Mixed reads: small exact reads, a skip, a large chunked read, then the rest.
  const parts: Uint8Array[] = [];
  parts.push(await reader.bytes(10));
  parts.push(Uint8Array.of(await reader.u8()));
  await reader.skip(1000);
  parts.push(new Uint8Array(1000).fill(0)); // placeholder for skipped bytes
  for await (const c of reader.chunks(200_000)) parts.push(c.slice());
  parts.push(await reader.bytes(data.length - reader.position));
  const out = new Uint8Array(data.length);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  out.set(data.subarray(11, 1011), 11);
  return out;
}

Deno.test("ByteReader gives the same bytes whole, byte by byte and in random splits", async () => {
  for (const chunks of splits(3)) {
    const r = new ByteReader(chunkedInput(chunks), { windowSize: 1 << 16, chunkSize: 1 << 15 });
    assertEquals((await readPattern(r)).every((b, i) => b === data[i]), true);
    assert(await r.atEnd(), "at end");
  }
  const seekable = new ByteReader(memoryInput(data), { windowSize: 1 << 16, chunkSize: 1 << 15 });
  assertEquals((await readPattern(seekable)).every((b, i) => b === data[i]), true);
});

Deno.test("ByteReader reports truncation with the offset and the missing count", async () => {
  const r = new ByteReader(chunkedInput([data.subarray(0, 100)]));
  await r.bytes(90);
  const e = await assertRejects(() => r.bytes(20));
  assert(e instanceof ConvpressError && e.code === "unexpected_eof", e.message);
  assert(/needed 10 more bytes/.test(e.message), e.message);
});

Deno.test("ByteReader refuses a length past the end of a file before allocating", async () => {
  const r = new ByteReader(memoryInput(data.subarray(0, 100)));
  const e = await assertRejects(() => r.bytes(2 ** 40));
  assert(e instanceof ConvpressError && /runs past the end/.test(e.message), e.message);
});
