/**
 * Errors. Every failure a user can cause (bad input, unsupported op, bad flag) is a {@link ConvpressError} with a
 * stable `code`, and where known the byte `offset`, the `file` and the `layer`. The CLI prints `message` on one line
 * and exits with {@link ConvpressError.exitCode}; anything else is a bug and prints its stack.
 *
 * @module
 */

/** Stable error codes. Scripts may match on them; never rename one. */
export type ErrorCode =
  | "unexpected_eof" // input ended inside a record
  | "bad_wire" // protobuf wire-level damage: bad varint, wire type, length past the end
  | "bad_format" // structurally valid bytes that do not form a valid model of the format
  | "unknown_format" // no reader recognises the input
  | "unsupported" // a valid model using something convpress (or the target format) cannot express
  | "checksum" // a CRC mismatch
  | "usage" // bad command-line arguments or options
  | "io"; // file system errors

/** Fields that locate an error. */
export interface ErrorContext {
  /** The input or output file, `-` for stdin/stdout. */
  file?: string;
  /** The layer (or tensor, node, weight) being read or written. */
  layer?: string;
  /** Absolute byte offset in the input where the problem was found. */
  offset?: number;
  /** The error that caused this one. */
  cause?: unknown;
}

/** The base class of every user-facing error. */
export class ConvpressError extends Error {
  readonly code: ErrorCode;
  file?: string;
  layer?: string;
  offset?: number;

  constructor(code: ErrorCode, message: string, ctx: ErrorContext = {}) {
    super(message, ctx.cause === undefined ? undefined : { cause: ctx.cause });
    this.name = "ConvpressError";
    this.code = code;
    this.file = ctx.file;
    this.layer = ctx.layer;
    this.offset = ctx.offset;
  }

  /** Process exit code for the CLI: 2 for usage errors, 3 for unsupported models, 1 otherwise. */
  get exitCode(): number {
    if (this.code === "usage") return 2;
    if (this.code === "unsupported") return 3;
    return 1;
  }
}

/** The constructor shape every error class here has. */
export type ErrorClass = new (code: ErrorCode, message: string, ctx?: ErrorContext) => ConvpressError;

/**
 * An error raised by one part: a format's reader or writer, or the protobuf wire. `part` says which (`onnx`,
 * `caffe`, `tfjs`, `cvp`, `wire`) and the class name (`OnnxError`, ...) follows it; the code and context are as for
 * any {@link ConvpressError}.
 */
export class PartError extends ConvpressError {
  readonly part: string;

  constructor(part: string, name: string, code: ErrorCode, message: string, ctx: ErrorContext = {}) {
    super(code, message, ctx);
    this.name = name;
    this.part = part;
  }
}

/** The class of one part's errors. */
export type PartErrorClass = new (code: ErrorCode, message: string, ctx?: ErrorContext) => PartError;

/** Makes the error class of one part: `class extends PartError` named `name`, so `instanceof` tells parts apart. */
export function partError(part: string, name: string): PartErrorClass {
  const cls = class extends PartError {
    constructor(code: ErrorCode, message: string, ctx: ErrorContext = {}) {
      super(part, name, code, message, ctx);
    }
  };
  Object.defineProperty(cls, "name", { value: name });
  return cls;
}

/** A protobuf wire-level error (format-agnostic). */
export const WireError: PartErrorClass = partError("wire", "WireError");
/** A protobuf wire-level error (format-agnostic). */
export type WireError = PartError;
/** An error reading or writing ONNX. */
export const OnnxError: PartErrorClass = partError("onnx", "OnnxError");
/** An error reading or writing ONNX. */
export type OnnxError = PartError;
/** An error reading or writing Caffe. */
export const CaffeError: PartErrorClass = partError("caffe", "CaffeError");
/** An error reading or writing Caffe. */
export type CaffeError = PartError;
/** An error reading or writing TensorFlow.js. */
export const TfjsError: PartErrorClass = partError("tfjs", "TfjsError");
/** An error reading or writing TensorFlow.js. */
export type TfjsError = PartError;
/** An error reading or writing `.cvp`. */
export const CvpError: PartErrorClass = partError("cvp", "CvpError");
/** An error reading or writing `.cvp`. */
export type CvpError = PartError;

/**
 * Re-throws `err` as a `Cls` error saying what was being read, keeping the innermost code and offset. Non-convpress
 * errors (bugs, I/O) are wrapped with code `io` when they are file-system errors and re-thrown unchanged otherwise.
 */
export function wrapError(
  err: unknown,
  Cls: ErrorClass,
  what: string,
  ctx: ErrorContext = {},
): never {
  if (err instanceof ConvpressError) {
    const e = new Cls(err.code, `${what}: ${err.message}`, {
      file: err.file ?? ctx.file,
      layer: err.layer ?? ctx.layer,
      offset: err.offset ?? ctx.offset,
      cause: err,
    });
    throw e;
  }
  if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.PermissionDenied) {
    throw new Cls("io", `${what}: ${(err as Error).message}`, { ...ctx, cause: err });
  }
  throw err;
}

/** Longest name (layer, tensor, file) a message shows before it is cut. */
export const MAX_NAME = 120;

/**
 * Makes untrusted text safe for one terminal line: control characters (C0, DEL, C1, line and paragraph separators,
 * bidirectional overrides) become `\xNN` / `\uNNNN` escapes, so a layer name cannot forge stderr lines or move the
 * cursor; text longer than `max` characters is cut with a note of how much was left out.
 */
export function escapeText(s: string, max = MAX_NAME): string {
  let out = "";
  let n = 0;
  for (const ch of s) {
    if (n === max) {
      const rest = [...s].length - max;
      return `${out}... (${rest} more characters)`;
    }
    const c = ch.codePointAt(0)!;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else if (c === 0x2028 || c === 0x2029 || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) {
      out += `\\u${c.toString(16).padStart(4, "0")}`;
    } else if (c === 0xfffd || (c >= 0xd800 && c <= 0xdfff)) out += "\\ufffd";
    else out += ch;
    n++;
  }
  return out;
}

/**
 * The one line the CLI prints for `err`: names the file it concerns (`fallbackFile`, the input, when the error
 * carries none), cuts every quoted name longer than {@link MAX_NAME} and escapes control characters.
 */
export function errorLine(err: ConvpressError, fallbackFile?: string): string {
  let msg = err.message;
  const file = err.file ?? (err.code === "usage" ? undefined : fallbackFile);
  if (file !== undefined && !msg.includes(file) && !(file === "-" && /\bstdin\b|'-'/.test(msg))) {
    msg = `${file === "-" ? "stdin" : `'${file}'`}: ${msg}`;
  }
  // Names are quoted as '...': cut long ones before escaping, so a 14 KB binary name prints as one short line.
  // The user's own paths are kept whole.
  const keep = new Set([file, fallbackFile, err.file]);
  msg = msg.replace(
    /'([^']{121,})'/g,
    (all, name: string) => keep.has(name) ? all : `'${[...name].slice(0, MAX_NAME).join("")}...'`,
  );
  return escapeText(msg, 2000);
}

/** True when `err` already names a file other than `outputs`: a read error met while writing, passed on unwrapped. */
export function namesOtherFile(err: unknown, ...outputs: string[]): boolean {
  return err instanceof ConvpressError && err.file !== undefined && !outputs.includes(err.file);
}
