/**
 * Rebuilds the `.cvp` test vectors: `deno run -A formats/cvp/testdata/make_vectors.ts`.
 *
 * - `minimal.cvp`: assembled byte by byte here, without the writer, to pin the layout of spec.md;
 * - `sample.cvp` / `sample_f16.cvp`: the writer on a model using every encoding (raw, f16, bf16, cluster packed and
 *   Huffman with fp16 and bf16 centres, k = 1 and k = 300, cluster-sparse with fillers, int64, an empty tensor);
 * - `<name>.json`: the expected decoded values, computed from the source model (not by decoding): per tensor the
 *   float32 values as little-endian hex (`float32Hex`, normative) and as numbers (`values`, for reading);
 * - `bad_*.cvp` with `expected_errors.json`: damaged files, the error kind and the record they must be reported at.
 *
 * @module
 */
import { sampleModel } from "../sample_model.ts";
import { expectedBytes, writeToBytes } from "../testing.ts";
import { sampleLayers } from "../sample_model.ts";
import { crc32 } from "../crc32.ts";
import { toFloat32 } from "../../../src/model/tensor.ts";

const dir = new URL(".", import.meta.url).pathname;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

async function expectedJson(weights: "f32" | "f16") {
  const tensors = [];
  for (const l of sampleLayers(true)) {
    for (const [role, t] of Object.entries(l.params)) {
      const b = await expectedBytes(t, weights);
      const f = t.dtype === "float32" ? new Float32Array(b.slice().buffer) : toFloat32(t.dtype, b);
      tensors.push({
        layer: l.name,
        role,
        name: t.name,
        shape: t.shape,
        float32Hex: hex(new Uint8Array(f.buffer, f.byteOffset, f.byteLength)),
        values: Array.from(f),
      });
    }
  }
  return { layers: sampleLayers(true).map((l) => ({ name: l.name, op: l.op })), tensors };
}

/** `minimal.cvp`, by hand: one FC layer with a raw float32 weight [1, 2] = [1.5, -2]. */
function minimal(): Uint8Array {
  const parts: number[] = [];
  const push = (b: ArrayLike<number>) => parts.push(...Array.from(b));
  const le = (v: number, n: number) => Array.from({ length: n }, (_, i) => Math.floor(v / 2 ** (8 * i)) & 0xff);
  const offsets: number[] = [];
  const record = (kind: string, meta: unknown, body: number[] = []) => {
    offsets.push(parts.length);
    const m = new TextEncoder().encode(JSON.stringify(meta));
    const frame = [kind.charCodeAt(0), 0, 0, 0, ...le(m.length, 4), ...le(body.length, 8)];
    push(frame);
    push(le(crc32(Uint8Array.from(frame)), 4));
    push(m);
    push(le(crc32(m), 4));
    push(body);
    push(le(crc32(Uint8Array.from(body)), 4));
  };
  push([0x89, 0x43, 0x56, 0x50, 0x0d, 0x0a, 0x1a, 0x0a, 1, 0, 0, 0]);
  const io = {
    inputs: [{ name: "x", dtype: "float32", shape: [1, 2] }],
    outputs: [{ name: "y", dtype: "float32", shape: [1, 1] }],
    metadata: {},
  };
  record("H", { name: "minimal", sourceFormat: "onnx", ...io });
  const p = { role: "weight", name: "fc.weight", dtype: "float32", shape: [1, 2] };
  record("L", { name: "fc", op: "FC", attrs: {}, inputs: ["x"], outputs: ["y"], params: [p] });
  record("T", { ...p, encoding: "raw" }, [0, 0, 0xc0, 0x3f, 0, 0, 0, 0xc0]); // 1.5, -2 as float32 LE
  record("E", { layers: 1, tensors: 1, ...io });
  const listed = offsets.slice();
  const indexAt = parts.length;
  record("X", { records: listed.length }, listed.flatMap((o) => le(o, 8)));
  const f = le(indexAt, 8);
  push(f);
  push(le(crc32(Uint8Array.from(f)), 4));
  push([0x43, 0x56, 0x50, 0x21]);
  return Uint8Array.from(parts);
}

const write = (name: string, b: Uint8Array | string) =>
  typeof b === "string" ? Deno.writeTextFile(dir + name, b) : Deno.writeFile(dir + name, b);

const sample = await writeToBytes(sampleModel(true));
const sampleF16 = await writeToBytes(sampleModel(true), { weights: "f16" });
await write("minimal.cvp", minimal());
await write(
  "minimal.json",
  JSON.stringify(
    {
      layers: [{ name: "fc", op: "FC" }],
      tensors: [{
        layer: "fc",
        role: "weight",
        name: "fc.weight",
        shape: [1, 2],
        float32Hex: "0000c03f000000c0",
        values: [1.5, -2],
      }],
    },
    null,
    1,
  ) + "\n",
);
await write("sample.cvp", sample);
await write("sample.json", JSON.stringify(await expectedJson("f32")) + "\n");
await write("sample_f16.cvp", sampleF16);
await write("sample_f16.json", JSON.stringify(await expectedJson("f16")) + "\n");

// Damaged copies of minimal.cvp.
const m = minimal();
const flip = (b: Uint8Array, at: number) => {
  const c = b.slice();
  c[at] ^= 0x10;
  return c;
};
// minimal.cvp: record 0 at byte 12 (H), record 1 (L), record 2 (T), record 3 (E), record 4 (X), then the footer.
const recOffsets: number[] = [];
{
  let at = 12;
  for (let i = 0; i < 5; i++) {
    recOffsets.push(at);
    const dv = new DataView(m.buffer, at);
    at += 28 + dv.getUint32(4, true) + Number(dv.getBigUint64(8, true));
  }
}
const errors: Record<string, { kind: string; record: number; offset: number }> = {};
const bad = async (name: string, b: Uint8Array, kind: string, record: number, offset: number) => {
  await write(name, b);
  errors[name] = { kind, record, offset };
};
await bad("bad_magic.cvp", flip(m, 1), "format", -1, 0);
await bad(
  "bad_version.cvp",
  (() => {
    const c = m.slice();
    c[8] = 2;
    return c;
  })(),
  "version",
  -1,
  8,
);
await bad("bad_frame_crc.cvp", flip(m, recOffsets[1] + 5), "checksum", 1, recOffsets[1]);
await bad("bad_meta_crc.cvp", flip(m, recOffsets[1] + 25), "checksum", 1, recOffsets[1]);
const tensorBody = recOffsets[2] + 24 + new DataView(m.buffer, recOffsets[2]).getUint32(4, true);
await bad("bad_body_crc.cvp", flip(m, tensorBody + 3), "checksum", 2, recOffsets[2]);
await bad("bad_truncated.cvp", m.subarray(0, recOffsets[3] + 10), "truncated", 3, recOffsets[3]);
await bad("bad_footer.cvp", flip(m, m.length - 10), "checksum", -2, m.length - 16);
await write("expected_errors.json", JSON.stringify(errors, null, 1) + "\n");
console.log(`wrote vectors: minimal ${m.length} B, sample ${sample.length} B, sample_f16 ${sampleF16.length} B`);
