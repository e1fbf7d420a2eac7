import { CvpDecodeError, decodeCvp, decodeCvpToMemory } from "./decoder.ts";
import { sampleModel } from "./sample_model.ts";
import { readAll, writeToBytes } from "./testing.ts";
import { toFloat32 } from "../../src/model/tensor.ts";
import { assert } from "../../tests/helpers.ts";

async function* chunksOf(b: Uint8Array, size: number) {
  for (let i = 0; i < b.length; i += size) yield b.subarray(i, i + size);
}

Deno.test("the reference decoder agrees with reader.ts on every tensor, bit for bit", async () => {
  for (const weights of ["f32", "f16"] as const) {
    const bytes = await writeToBytes(sampleModel(), { weights });
    const mine = await readAll(bytes);
    for (const size of [bytes.length, 13, 4096]) {
      const ref = await decodeCvpToMemory(chunksOf(bytes, size));
      assert(ref.layers.length === mine.layers.length);
      assert(JSON.stringify(ref.header.outputs) === JSON.stringify(mine.header.outputs));
      for (let i = 0; i < ref.layers.length; i++) {
        const l = mine.layers[i].layer;
        assert(ref.layers[i].name === l.name && ref.layers[i].op === l.op, `layer ${i}`);
        for (const [role, t] of Object.entries(l.params)) {
          const a = toFloat32(t.dtype, mine.layers[i].values[role]);
          const b = ref.layers[i].values[role];
          assert(a.length === b.length, `${t.name} length`);
          const ua = new Uint32Array(Float32Array.from(a).buffer), ub = new Uint32Array(b.buffer);
          assert(ua.every((x, j) => x === ub[j]), `${t.name} values (${weights}, chunks of ${size})`);
        }
      }
    }
  }
});

Deno.test("the reference decoder reads a ReadableStream and yields bounded slices", async () => {
  const bytes = await writeToBytes(sampleModel());
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(bytes);
      c.close();
    },
  });
  let maxSlice = 0, ends = 0;
  for await (const ev of decodeCvp(stream, { sliceElements: 100 })) {
    if (ev.type === "tensor") maxSlice = Math.max(maxSlice, ev.data.length);
    if (ev.type === "end") ends++;
  }
  assert(maxSlice === 100 && ends === 1, `${maxSlice} ${ends}`);
});

Deno.test("the reference decoder names the record of any flipped byte and any truncation", async () => {
  const bytes = await writeToBytes(sampleModel(true));
  const run = async (b: Uint8Array) => {
    try {
      for await (const _ of decodeCvp(chunksOf(b, 1000))) { /* drain */ }
    } catch (e) {
      return e;
    }
  };
  for (let i = 0; i < bytes.length; i++) {
    const bad = bytes.slice();
    bad[i] ^= 0x5a;
    const e = await run(bad);
    assert(e instanceof CvpDecodeError, `flip ${i} not detected`);
    if (i >= 12) assert(/^Record \d+ .*at byte \d+|^Footer at byte/.test(e.message), e.message);
  }
  for (let cut = 0; cut < bytes.length; cut++) {
    const e = await run(bytes.subarray(0, cut));
    assert(e instanceof CvpDecodeError, `cut ${cut} not detected`);
    assert(e.kind === "truncated" || (cut < 8 && e.kind === "format"), `cut ${cut}: ${e.kind} ${e.message}`);
  }
});
