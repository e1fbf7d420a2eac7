/**
 * The format registry: one line per format (name, file extensions, flags, loader). The names, the extension
 * hints, the CLI's format flags and the option types of the commands are all made from {@link FORMATS}; each format
 * folder's `mod.ts` exports its {@link FormatModule} and its `options.ts` its options and flags.
 *
 * @module
 */
import { ConvpressError } from "../src/errors.ts";
import type { FormatFlag, FormatModule } from "../src/model/format.ts";
import { caffeFlags, type CaffeReadOptions, type CaffeWriteOptions } from "./caffe/options.ts";
import { cvpFlags, type CvpWriteOptions } from "./cvp/options.ts";
import { onnxFlags, type OnnxWriteOptions } from "./onnx/options.ts";
import { tfjsFlags, type TfjsWriteOptions } from "./tfjs/options.ts";
import type { ReadOptions as CommonReadOptions, WriteOptions as CommonWriteOptions } from "../src/model/format.ts";

export type { FormatFlag, FormatModule, ModelSource } from "../src/model/format.ts";

/** One registered format. `extensions` are lower case (a folder is `/`); the first format whose extension ends a path is its hint. */
export interface FormatEntry {
  name: string;
  extensions: readonly string[];
  flags: readonly FormatFlag[];
  load(): Promise<AnyFormat>;
}

/** A loaded format module, taking every format's options. */
export type AnyFormat = FormatModule<ReadOptions, WriteOptions>;

// deno-fmt-ignore
const REGISTRY = [
  { name: "onnx", extensions: [".onnx"], flags: onnxFlags, load: async (): Promise<AnyFormat> => (await import("./onnx/mod.ts")).onnxFormat },
  { name: "caffe", extensions: [".caffemodel", ".prototxt"], flags: caffeFlags, load: async (): Promise<AnyFormat> => (await import("./caffe/mod.ts")).caffeFormat },
  { name: "tfjs", extensions: [".json", ".tar", "/"], flags: tfjsFlags, load: async (): Promise<AnyFormat> => (await import("./tfjs/mod.ts")).tfjsFormat },
  { name: "cvp", extensions: [".cvp"], flags: cvpFlags, load: async (): Promise<AnyFormat> => (await import("./cvp/mod.ts")).cvpFormat },
] as const satisfies readonly FormatEntry[];

/** The formats, one line each (in `REGISTRY`): a new format is its folder plus one line there. */
export const FORMATS: readonly FormatEntry[] = REGISTRY;

/** A registered format's name. */
export type FormatName = (typeof REGISTRY)[number]["name"];

/** What the commands read with: every format's read options. */
export type ReadOptions = CommonReadOptions & CaffeReadOptions;

/** What the commands write with: every format's write options. */
export type WriteOptions =
  & CommonWriteOptions
  & OnnxWriteOptions
  & CaffeWriteOptions
  & TfjsWriteOptions
  & CvpWriteOptions;

/** Names of all formats. */
export const FORMAT_NAMES: readonly FormatName[] = REGISTRY.map((f) => f.name);

/** Every format's flags. */
export const FORMAT_FLAGS: readonly FormatFlag[] = FORMATS.flatMap((f) => f.flags);

/** True when `name` is a registered format. */
export function isFormatName(name: string): name is FormatName {
  return (FORMAT_NAMES as readonly string[]).includes(name);
}

/** Guesses a format from a path's extension (a trailing `/` is a folder: TF.js). */
export function formatFromExtension(path: string): FormatName | undefined {
  const p = path.toLowerCase();
  return REGISTRY.find((f) => f.extensions.some((e) => p.endsWith(e)))?.name;
}

/** Loads a format module by name. */
export async function getFormat(name: string): Promise<FormatModule<ReadOptions, WriteOptions>> {
  const entry = FORMATS.find((f) => f.name === name);
  if (!entry) {
    throw new ConvpressError("usage", `Unknown format '${name}': expected one of ${FORMAT_NAMES.join(", ")}`);
  }
  return await entry.load();
}

/** Every format module. */
export async function allFormats(): Promise<FormatModule<ReadOptions, WriteOptions>[]> {
  return await Promise.all(FORMAT_NAMES.map(getFormat));
}
