/**
 * Test helpers for `.cvp`: write a model to bytes, read bytes back through the reader, and the values a tensor must
 * decode to.
 *
 * @module
 */
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { MemorySink, memoryStreamSink } from "../../src/bytes/byte_sink.ts";
import { chunkedInput, memoryInput } from "../../src/bytes/inputs.ts";
import type { Layer, ModelStream } from "../../src/model/types.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import type { CvpWriteOptions as WriteOptions } from "./options.ts";
import { readCvp } from "./reader.ts";
import { writeCvp } from "./writer.ts";
import { roundBf16, roundF16 } from "./sample_model.ts";

/** Writes a model to `.cvp` bytes; `stream` uses a non-seekable sink. */
export async function writeToBytes(
  model: ModelStream,
  options: WriteOptions = {},
  stream = false,
): Promise<Uint8Array> {
  const sink = stream ? memoryStreamSink() : new MemorySink();
  await writeCvp(model, sink, options);
  return sink.bytes();
}

/** Reads `.cvp` bytes whole (seekable) or as the given chunks (stream), collecting layers and tensor values. */
export async function readAll(bytes: Uint8Array, chunks?: Uint8Array[]) {
  const input = chunks ? chunkedInput(chunks) : memoryInput(bytes);
  const m = await readCvp({
    path: "test.cvp",
    reader: new ByteReader(input, { name: "test.cvp" }),
    isDirectory: false,
  });
  const layers: { layer: Layer; values: Record<string, Uint8Array> }[] = [];
  for await (const layer of m.layers) {
    const values: Record<string, Uint8Array> = {};
    for (const [role, t] of Object.entries(layer.params)) values[role] = (await t.bytes()).slice();
    layers.push({ layer, values });
  }
  return { header: m.header, layers };
}

/** The bytes a tensor of the sample model must decode to, given the writer's hint and options. */
export async function expectedBytes(t: Tensor, weights: "f32" | "f16" = "f32"): Promise<Uint8Array> {
  const hint = (t.meta.cvp as { encoding?: string } | undefined)?.encoding;
  if (t.dtype !== "float32") return (await t.bytes()).slice();
  const v = Float32Array.from(await t.float32());
  const round = hint === "bf16"
    ? roundBf16
    : hint === "f16" || (!hint && !t.meta.cluster && weights === "f16")
    ? roundF16
    : undefined;
  if (round && !t.meta.cluster) { for (let i = 0; i < v.length; i++) v[i] = round(v[i]); }
  return new Uint8Array(v.buffer);
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
