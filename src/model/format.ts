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
import { ConvpressError } from "../errors.ts";

/** Where a model is read from. `path` is `-` for stdin; `reader` is open on it (files are seekable). */
export interface ModelSource {
  path: string;
  /** A reader on the bytes. Absent when `path` is a directory (TF.js model folder). */
  reader?: ByteReader;
  /** True when `path` is a directory. */
  isDirectory: boolean;
}

/**
 * Options every reader takes; a format adds its own in its folder's `options.ts` (Caffe: `prototxt`). Unknown
 * options are ignored.
 */
export interface ReadOptions {
  /** Input shape N,C,H,W when the model does not state it. */
  inputShape?: number[];
}

/** Options every writer takes; a format adds its own in its folder's `options.ts`. Unknown options are ignored. */
export interface WriteOptions {
  /** Called with the layers written so far, the total when the header's plan knows it (else 0), and the layer. */
  progress?: ProgressFn;
  /** Called once per tensor with the bytes it takes in the output, by writers that know (`.cvp`: the whole record). */
  onTensor?: (tensor: string, bytes: number) => void;
  /** Called with notes a writer has for the user, one line each (the CLI prints them on stderr). */
  notice?: (line: string) => void;
}

/**
 * A command-line flag a format adds to the commands that read (`side: "read"`) or write (`"write"`) it, and how its
 * value becomes an option. The CLI's flags, help lines and option objects are made from these (formats/registry.ts).
 */
export interface FormatFlag {
  /** The flag without dashes: `external-data`. */
  name: string;
  type: "boolean" | "string";
  /** The value's placeholder in help: `BYTES`. */
  arg?: string;
  /** One line of help. */
  help: string;
  side: "read" | "write";
  /** Sets the option from the flag's value; throws a `usage` {@link ConvpressError} on a bad one. */
  apply(options: Record<string, unknown>, value: string | boolean): void;
}

/** A flag value that must be one of `allowed`. */
export function flagChoice<T extends string>(value: string | boolean, flag: string, allowed: readonly T[]): T {
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    throw new ConvpressError("usage", `Invalid --${flag} '${value}': expected ${allowed.join(", ")}`);
  }
  return value as T;
}

/** A flag value that must be a positive integer. */
export function flagPositiveInt(value: string | boolean, flag: string): number {
  const n = Number(value);
  if (typeof value !== "string" || !Number.isSafeInteger(n) || n <= 0) {
    throw new ConvpressError("usage", `Invalid --${flag} '${value}'`);
  }
  return n;
}

/** A format's entry points, with its own read options `R` and write options `W`. Probes never throw. */
export interface FormatModule<R extends ReadOptions = ReadOptions, W extends WriteOptions = WriteOptions> {
  name: FormatName;
  /** True when the first bytes (`head`, at most 4 KiB) look like this format. */
  detect(head: Uint8Array, path: string): boolean;
  /** Opens a model stream. */
  read(src: ModelSource, options: R): Promise<ModelStream>;
  /** Consumes a model stream and writes it to `path` (`-` for stdout). */
  write(model: ModelStream, path: string, options: W): Promise<void>;
}
