import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { openFileInput } from "../../src/bytes/inputs.ts";
import { ConvpressError } from "../../src/errors.ts";
import { toFloat32 } from "../../src/model/tensor.ts";
import { CvpDecodeError, decodeCvpToMemory } from "./decoder.ts";
import { readCvp } from "./reader.ts";
import { sampleModel } from "./sample_model.ts";
import { writeToBytes } from "./testing.ts";
import { assert } from "../../tests/helpers.ts";

const dir = new URL("./testdata/", import.meta.url).pathname;
const hex = (f: Float32Array) =>
  Array.from(new Uint8Array(f.buffer, f.byteOffset, f.byteLength), (x) => x.toString(16).padStart(2, "0")).join("");

interface Expected {
  layers: { name: string; op: string }[];
  tensors: { layer: string; role: string; name: string; float32Hex: string }[];
}

for (const name of ["minimal", "sample", "sample_f16"]) {
  Deno.test(`test vector ${name}: reference decoder and reader.ts both give the expected values`, async () => {
    const exp: Expected = JSON.parse(await Deno.readTextFile(`${dir}${name}.json`));
    const ref = await decodeCvpToMemory((await Deno.open(`${dir}${name}.cvp`)).readable);
    assert(JSON.stringify(ref.layers.map((l) => ({ name: l.name, op: l.op }))) === JSON.stringify(exp.layers));
    for (const t of exp.tensors) {
      const got = ref.layers.find((l) => l.name === t.layer)!.values[t.role];
      assert(hex(got) === t.float32Hex, `decoder: ${t.name}`);
    }
    const m = await readCvp({
      path: name,
      reader: new ByteReader(await openFileInput(`${dir}${name}.cvp`), { name }),
      isDirectory: false,
    });
    const seen = new Map<string, string>();
    for await (const l of m.layers) {
      for (const [role, t] of Object.entries(l.params)) {
        seen.set(`${l.name}/${role}`, hex(toFloat32(t.dtype, (await t.bytes()).slice())));
      }
    }
    for (const t of exp.tensors) assert(seen.get(`${t.layer}/${t.role}`) === t.float32Hex, `reader: ${t.name}`);
  });
}

Deno.test("damaged test vectors fail with the expected kind at the expected record, in both readers", async () => {
  const errs: Record<string, { kind: string; record: number; offset: number }> = JSON.parse(
    await Deno.readTextFile(`${dir}expected_errors.json`),
  );
  const codes: Record<string, string> = {
    checksum: "checksum",
    format: "bad_format",
    truncated: "unexpected_eof",
    version: "unsupported",
  };
  for (const [file, exp] of Object.entries(errs)) {
    let e: unknown;
    try {
      await decodeCvpToMemory((await Deno.open(dir + file)).readable);
    } catch (x) {
      e = x;
    }
    assert(e instanceof CvpDecodeError, `${file}: not detected by the decoder`);
    assert(
      e.kind === exp.kind && e.record === exp.record && e.offset === exp.offset,
      `${file}: ${e.kind} ${e.record} ${e.offset}`,
    );
    // reader.ts, reading the file as a stream so it meets the damage in file order.
    let r: unknown;
    try {
      const f = await Deno.open(dir + file);
      const { streamInput } = await import("../../src/bytes/inputs.ts");
      const m = await readCvp({
        path: file,
        reader: new ByteReader(streamInput(f.readable), { name: file }),
        isDirectory: false,
      });
      for await (const l of m.layers) for (const t of Object.values(l.params)) await t.bytes();
    } catch (x) {
      r = x;
    }
    assert(r instanceof ConvpressError, `${file}: not detected by reader.ts`);
    assert(r.code === codes[exp.kind], `${file}: reader.ts code ${r.code}`);
    if (exp.record >= 0) assert(r.message.startsWith(`Record ${exp.record} `), `${file}: ${r.message}`);
  }
});

Deno.test("the committed sample vectors are what the writer produces today", async () => {
  const now = await writeToBytes(sampleModel(true));
  const committed = await Deno.readFile(`${dir}sample.cvp`);
  assert(now.length === committed.length && now.every((x, i) => x === committed[i]), "re-run testdata/make_vectors.ts");
});
