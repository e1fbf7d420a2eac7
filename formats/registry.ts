/**
 * The format registry: how the CLI and the library find a reader or writer. Each format folder's `mod.ts` exports
 * one {@link FormatModule}; this file lists them and picks one from content (with the file extension as a hint).
 *
 * @module
 */
import type { FormatName } from "../src/model/types.ts";
import type { FormatModule } from "../src/model/format.ts";

export type { FormatModule, ModelSource, ReadOptions, WriteOptions } from "../src/model/format.ts";

const modules = new Map<FormatName, () => Promise<FormatModule>>([
  ["onnx", async () => (await import("./onnx/mod.ts")).onnxFormat],
  ["caffe", async () => (await import("./caffe/mod.ts")).caffeFormat],
  ["tfjs", async () => (await import("./tfjs/mod.ts")).tfjsFormat],
  ["cvp", async () => (await import("./cvp/mod.ts")).cvpFormat],
]);

/** Names of all formats. */
export const FORMAT_NAMES: readonly FormatName[] = ["onnx", "caffe", "tfjs", "cvp"];

/** Loads a format module by name. */
export async function getFormat(name: FormatName): Promise<FormatModule> {
  const load = modules.get(name);
  if (!load) throw new Error(`Unknown format ${name}`);
  return await load();
}

/** Every format module. */
export async function allFormats(): Promise<FormatModule[]> {
  return await Promise.all(FORMAT_NAMES.map(getFormat));
}
