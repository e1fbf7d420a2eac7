import { assert, assertEquals, rng, testNeeding } from "./helpers.ts";
import { LOCAL, readBytes, REAL, summarize } from "./caffe_helpers.ts";
import { splitAt } from "../src/bytes/inputs.ts";
import { ConvpressError } from "../src/errors.ts";
import { WireReader } from "../src/wire/wire_reader.ts";
import { ByteReader } from "../src/bytes/byte_reader.ts";
import { streamInput } from "../src/bytes/inputs.ts";
import { caffeFormat } from "../formats/caffe/mod.ts";
import type { ReadOptions } from "../formats/registry.ts";

const tinyV2 = await Deno.readFile(`${LOCAL}/tiny_v2.caffemodel`);
const tinyV1 = await Deno.readFile(`${LOCAL}/tiny_v1.caffemodel`);

async function fails(p: Promise<unknown>): Promise<ConvpressError> {
  try {
    await p;
  } catch (e) {
    assert(e instanceof ConvpressError, `expected a ConvpressError, got ${(e as Error)?.stack ?? e}`);
    return e;
  }
  throw new Error("expected an error");
}

/** Offsets where a top-level NetParameter field ends: a cut there leaves a valid, shorter model. */
function recordEnds(bytes: Uint8Array): Set<number> {
  const ends = new Set<number>([0]);
  const w = new WireReader(bytes);
  while (!w.done) {
    const [, wt] = w.tag();
    w.skip(wt);
    ends.add(w.pos);
  }
  return ends;
}

const read = async (bytes: Uint8Array, options: ReadOptions = {}, chunks?: Uint8Array[]) =>
  await summarize(await readBytes(bytes, options, chunks));

Deno.test("reader: tiny current-form model maps to canonical layers", async () => {
  const s = await read(tinyV2);
  const lines = s.split("\n");
  assertEquals(JSON.parse(lines[0]), {
    inputs: [{ name: "data", dtype: "float32", shape: ["N", 2, 5, 5] }],
    outputs: [{ name: "prob", dtype: "float32", shape: ["N", 4] }],
  });
  assertEquals(lines.slice(1).map((l) => l.split(" ").slice(0, 2).join(" ")), [
    "conv1 Conv",
    "relu1 Relu",
    "pool1 MaxPool",
    "bn1 BatchNorm",
    "scale1 Scale",
    "ip1 FC",
    "prob Softmax",
  ]);
  // In-place layers get fresh value names: relu1 writes 'relu1', scale1 writes 'scale1'.
  assert(lines[2].includes("conv1->relu1"), lines[2]);
  assert(lines[3].includes("relu1->pool1"), lines[3]);
  assert(lines[5].includes("bn1->scale1"), lines[5]);
  assert(lines[6].includes("scale1->ip1 weight:float32[4,27]"), lines[6]);
  assert(lines[3].includes('"ceil":true'), lines[3]);
});

Deno.test("reader: V1 model with legacy blob dims and inputs after the layers", async () => {
  const s = await read(tinyV1);
  const lines = s.split("\n");
  assertEquals(JSON.parse(lines[0]).inputs, [{ name: "data", dtype: "float32", shape: ["N", 2, 5, 5] }]);
  assert(lines[1].includes("weight:float32[3,2,3,3]") && lines[1].includes("bias:float32[3]"), lines[1]);
  assert(lines[4].includes("weight:float32[4,27]") && lines[4].includes("bias:float32[4]"), lines[4]);
  // Streamed V1: the inputs come after the layers, so the input is found from the first layer's bottom.
  const streamed = (await read(tinyV1, {}, [tinyV1])).split("\n");
  assertEquals(JSON.parse(streamed[0]).inputs, [{ name: "data", dtype: "float32", shape: ["N", 2, "H", "W"] }]);
  assertEquals(streamed.slice(1), lines.slice(1));
  const shaped = (await read(tinyV1, { inputShape: [3, 2, 5, 5] }, [tinyV1])).split("\n");
  assertEquals(JSON.parse(shaped[0]).inputs[0].shape, [3, 2, 5, 5]);
});

Deno.test("reader: same model whole, one byte at a time, in random splits (streamed and seekable)", async () => {
  for (const bytes of [tinyV2, tinyV1]) {
    const whole = await read(bytes);
    const fromStream = await read(bytes, {}, [bytes]);
    assertEquals(fromStream.split("\n").slice(1), whole.split("\n").slice(1));
    const ones = Array.from({ length: bytes.length - 1 }, (_, i) => i + 1);
    assertEquals(await read(bytes, {}, splitAt(bytes, ones)), fromStream);
    const r = rng(42);
    for (let k = 0; k < 20; k++) {
      const cuts = Array.from({ length: 1 + Math.floor(r() * 12) }, () => Math.floor(r() * bytes.length));
      assertEquals(await read(bytes, {}, splitAt(bytes, cuts)), fromStream);
    }
  }
});

Deno.test("reader: a model cut at every prefix length is a clear error unless cut between records", async () => {
  for (const bytes of [tinyV2, tinyV1]) {
    const ends = recordEnds(bytes);
    for (let n = 0; n < bytes.length; n++) {
      const cut = bytes.subarray(0, n);
      for (const chunks of [undefined, [cut]]) {
        let err: unknown;
        try {
          await read(cut, {}, chunks);
        } catch (e) {
          err = e;
        }
        if (ends.has(n)) continue; // a valid, shorter NetParameter (or a model with no layers)
        assert(err instanceof ConvpressError, `cut at ${n}: expected an error, got ${err}`);
        assert(["unexpected_eof", "bad_wire", "bad_format"].includes(err.code), `cut at ${n}: code ${err.code}`);
        assert(/byte \d+/.test(err.message), `cut at ${n}: no byte offset in '${err.message}'`);
      }
    }
  }
});

Deno.test("reader: truncation inside a blob names the layer and the byte", async () => {
  const cut = tinyV2.subarray(0, 200);
  const e = await fails(read(cut, {}, [cut]));
  assertEquals(e.code, "unexpected_eof");
  assertEquals(e.layer, "conv1");
  assert(
    /^Cannot read Caffe layer 'conv1' at byte \d+: Unexpected end of input in blob 'conv1#0' data at byte 200/.test(
      e.message,
    ),
    e.message,
  );
  const seek = await fails(read(cut));
  assert(seek.message.includes("runs past the end"), seek.message);
});

Deno.test("reader: bad inputs", async () => {
  const count = await Deno.readFile(`${LOCAL}/bad_count.caffemodel`);
  for (const chunks of [undefined, [count]]) {
    const e = await fails(read(count, {}, chunks));
    assertEquals(e.code, "bad_format");
    assert(e.message.endsWith("Caffe blob 'ip#0' holds 5 values but its shape [2,3] needs 6"), e.message);
  }
  const mixed = await Deno.readFile(`${LOCAL}/bad_mixed.caffemodel`);
  for (const chunks of [undefined, [mixed]]) {
    const e = await fails(read(mixed, {}, chunks));
    assertEquals(e.code, "bad_format");
    assertEquals(e.message, "Caffe model has both 'layer' and 'layers' (V1) entries");
  }
  // V0: a V1 record holding a V0 `layer` (field 1).
  const v0 = new Uint8Array([0x12, 0x04, 0x0a, 0x02, 0x0a, 0x00]);
  assertEquals((await fails(read(v0))).code, "unsupported");
  // A length prefix far past the end must not allocate: 2^40 bytes announced in a 10-byte file.
  const huge = new Uint8Array([0xa2, 0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0, 0, 0, 0]);
  for (const chunks of [undefined, [huge]]) {
    const e = await fails(read(huge, {}, chunks));
    assert(["unexpected_eof", "bad_wire"].includes(e.code), e.message);
  }
  // A bad wire type at the top level.
  assertEquals((await fails(read(new Uint8Array([0x0b, 0x00])))).code, "bad_wire");
});

testNeeding("reader: train nets become deploy nets; --prototxt structure wins and weights match by name", {
  paths: [REAL],
}, async () => {
  const model = await Deno.readFile(`${REAL}/lenet/lenet_iter_10000.caffemodel`);
  const plain = (await read(model)).split("\n");
  assertEquals(JSON.parse(plain[0]).outputs.map((o: { name: string }) => o.name), ["ip2"]);
  assert(!plain.some((l) => /Data|Loss|Accuracy/.test(l)), "train-only layers are dropped");
  const withProto = (await read(model, { prototxt: `${REAL}/lenet/mnist_deploy.prototxt` })).split("\n");
  assertEquals(JSON.parse(withProto[0]), {
    inputs: [{ name: "data", dtype: "float32", shape: ["N", 1, 28, 28] }],
    outputs: [{ name: "loss", dtype: "float32", shape: ["N", 10] }],
  });
  const streamed = (await read(model, { prototxt: `${REAL}/lenet/mnist_deploy.prototxt` }, [model])).split("\n");
  assertEquals(streamed, withProto);
  assertEquals(withProto.slice(1, -1), plain.slice(1)); // same layers and weights, plus the deploy Softmax
  // A prototxt layer the model has no weights for.
  const proto = await Deno.makeTempFile({ suffix: ".prototxt" });
  await Deno.writeTextFile(
    proto,
    'layer { name: "d" type: "Input" top: "d" input_param { shape { dim: 1 dim: 1 dim: 28 dim: 28 } } }\n' +
      'layer { name: "nope" type: "InnerProduct" bottom: "d" top: "x" inner_product_param { num_output: 3 } }\n',
  );
  for (const chunks of [undefined, [model]]) {
    const e = await fails(read(model, { prototxt: proto }, chunks));
    assertEquals(e.message, "Caffe model test.caffemodel has no weights for layer 'nope' (InnerProduct)");
  }
  await Deno.remove(proto);
});

testNeeding(
  "reader: stdin is read in order without reading ahead of the layer in hand",
  { paths: [REAL] },
  async () => {
    const model = await Deno.readFile(`${REAL}/lenet/lenet_iter_10000.caffemodel`);
    let delivered = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (delivered >= model.length) return c.close();
        const n = Math.min(4096, model.length - delivered);
        c.enqueue(model.slice(delivered, delivered + n));
        delivered += n;
      },
    }, { highWaterMark: 0 });
    const reader = new ByteReader(streamInput(stream), { windowSize: 1 << 16 });
    const m = await caffeFormat.read({ path: "-", reader, isDirectory: false }, {});
    const it = m.layers.getReader();
    const first = await it.read();
    assertEquals(first.value?.name, "conv1");
    // conv1's record ends near byte 2.2 KB; the 1.6 MB of ip1 weights must not have been read yet.
    assert(delivered < 200_000, `read ${delivered} bytes before the first layer`);
    await it.cancel();
  },
);
