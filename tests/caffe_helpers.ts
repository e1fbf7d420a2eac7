/**
 * Helpers shared by the Caffe tests: open a caffemodel from bytes (seekable or as in-order chunks), and summarize
 * a model stream so two reads can be compared.
 *
 * @module
 */
import { ByteReader } from "../src/bytes/byte_reader.ts";
import { chunkedInput, memoryInput } from "../src/bytes/inputs.ts";
import type { ModelStream } from "../src/model/types.ts";
import type { ReadOptions } from "../formats/registry.ts";
import { caffeFormat } from "../formats/caffe/mod.ts";

/** Shared fixtures (real models), relative to the project root. */
export const REAL = new URL("../../shared/fixtures/caffe", import.meta.url).pathname;
/** This project's tiny generated fixtures. */
export const LOCAL = new URL("../fixtures/caffe", import.meta.url).pathname;

/** Reads a caffemodel held in memory: seekable, or streamed in the given chunks when `chunks` is set. */
export function readBytes(bytes: Uint8Array, options: ReadOptions = {}, chunks?: Uint8Array[]): Promise<ModelStream> {
  const input = chunks ? chunkedInput(chunks) : memoryInput(bytes);
  const reader = new ByteReader(input, { name: "test.caffemodel", windowSize: 1 << 16 });
  return caffeFormat.read({ path: "test.caffemodel", reader, isDirectory: false }, options);
}

/** A text summary of a whole model: header, layers, and every parameter's bytes as a checksum. */
export async function summarize(m: ModelStream): Promise<string> {
  const lines: string[] = [];
  for await (const l of m.layers) {
    const params = [];
    for (const [role, t] of Object.entries(l.params)) {
      let h = 0;
      for (const b of await t.bytes()) h = (h * 31 + b) >>> 0;
      params.push(`${role}:${t.dtype}[${t.shape}]#${h}`);
    }
    lines.push(`${l.name} ${l.op} ${JSON.stringify(l.attrs)} ${l.inputs}->${l.outputs} ${params.join(" ")}`);
  }
  lines.unshift(JSON.stringify({ inputs: m.header.inputs, outputs: m.header.outputs }));
  return lines.join("\n");
}

/** Index of the largest value of each of `n` rows. */
export function top1(a: Float32Array, n: number): number[] {
  const k = a.length / n;
  return Array.from({ length: n }, (_, i) => {
    let best = 0;
    for (let j = 1; j < k; j++) if (a[i * k + j] > a[i * k + best]) best = j;
    return best;
  });
}
