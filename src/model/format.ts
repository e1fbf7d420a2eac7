/**
 * What a format is, to the layers above it: the source a reader reads from, the options readers and writers take,
 * and {@link FormatModule}, the entry points each format folder's `mod.ts` exports. Formats import these types from
 * here (core), never from the registry above them.
 *
 * @module
 */
import type { ByteReader } from "../bytes/byte_reader.ts";
import type { FormatName, ModelStream } from "./types.ts";
import type { ProgressFn } from "../progress.ts";

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
}

/** Options any writer may take. Unknown options are ignored. */
export interface WriteOptions {
  /** ONNX: write tensors to a side file `<out>.data` (external data). */
  externalData?: boolean;
  /** ONNX: tensors of at least this many bytes go to the side file (default 1024, as the onnx package). */
  externalDataThreshold?: number;
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
  /** Called with the layers written so far, the total when the header's plan knows it (else 0), and the layer. */
  progress?: ProgressFn;
  /** Called once per tensor with the bytes it takes in the output, by writers that know (`.cvp`: the whole record). */
  onTensor?: (tensor: string, bytes: number) => void;
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
