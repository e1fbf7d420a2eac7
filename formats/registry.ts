/**
 * The format registry: how the CLI and the library find a reader or writer. Each format folder's `mod.ts` exports
 * one {@link FormatModule}; this file lists them and picks one from content (with the file extension as a hint).
 *
 * @module
 */
import type { ByteReader } from "../src/bytes/byte_reader.ts";
import type { FormatName, ModelStream } from "../src/model/types.ts";
import type { ProgressFn } from "../src/progress.ts";

/** Where a model is read from. `path` is `-` for stdin; `reader` is open on it (files are seekable). */
export interface ModelSource {
  path: string;
  /** A reader on the bytes. Absent when `path` is a directory (TF.js model folder). */
  reader?: ByteReader;
  /** True when `path` is a directory. */
  isDirectory: boolean;
}

/** Options any reader may take. Unknown options are ignored. */
export interface ReadOptions {
  /** Caffe: a deploy prototxt whose structure and input shape win over the caffemodel's. */
  prototxt?: string;
  /** Input shape N,C,H,W when the model does not state it. */
  inputShape?: number[];
  /** Called with bytes read so far. */
  progress?: ProgressFn;
}

/** Options any writer may take. Unknown options are ignored. */
export interface WriteOptions {
  /** ONNX: write tensors to a side file `<out>.data` (external data). */
  externalData?: boolean;
  /** ONNX: tensors of at least this many bytes go to the side file (default 1024, as the onnx package). */
  externalDataThreshold?: number;
  /**
   * ONNX: keep clustered tensors (a clustered `.cvp`'s) as indices plus a codebook, decoded inside the graph
   * (formats/onnx/clustered.ts), instead of float32 initializers.
   */
  keepClustered?: boolean;
  /** Caffe: where to write the deploy prototxt. */
  prototxtOut?: string;
  /** TF.js: layers-model, graph-model, or chosen from the network ("auto"). */
  tfjsKind?: "layers-model" | "graph-model" | "auto";
  /** TF.js: shard size in bytes (default 4 MiB). */
  shardSize?: number;
  /** TF.js: weight quantization. */
  quantize?: "float16" | "uint8" | "uint16";
  /** `.cvp`: how to store float weights that no stage encoded. */
  weights?: "f32" | "f16";
  /** Called with bytes written so far. */
  progress?: ProgressFn;
  /** Called with notes a writer has for the user, one line each (the CLI prints them on stderr). */
  notice?: (line: string) => void;
}

/** A format's entry points. Probes never throw. */
export interface FormatModule {
  name: FormatName;
  /** File extensions, lower case with the dot, used as a hint. */
  extensions: string[];
  /** True when the first bytes (`head`, at most 4 KiB) look like this format. */
  detect(head: Uint8Array, path: string): boolean;
  /** Opens a model stream. */
  read(src: ModelSource, options: ReadOptions): Promise<ModelStream>;
  /** Consumes a model stream and writes it to `path` (`-` for stdout). */
  write(model: ModelStream, path: string, options: WriteOptions): Promise<void>;
}

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
