/**
 * `convpress convert IN -o OUT`: any format to any other, layer by layer.
 *
 * @module
 */
import { convert } from "../app/convert.ts";
import { terminalProgress } from "../progress.ts";
import { checkConvertPaths } from "./path_guards.ts";
import { FORMAT_NAMES, formatFromExtension } from "../../formats/registry.ts";
import {
  type Command,
  type FlagValues,
  formatArg,
  formatFlagHelp,
  READ_FLAGS,
  readOptionsFrom,
  str,
  usage,
  WRITE_FLAGS,
  writeOptionsFrom,
} from "./flags.ts";

/** The flags of `convert` and `decode`. */
export const CONVERT_OPTIONS: Command["options"] = {
  output: { type: "string", short: "o" },
  to: { type: "string" },
  ...READ_FLAGS,
  ...WRITE_FLAGS,
};

/** Converts as `convert` and `decode` do; `name` is the command, for messages and the progress bar. */
export async function runConvert(
  name: string,
  v: FlagValues,
  positionals: string[],
  defaultFrom?: "cvp",
): Promise<number> {
  if (positionals.length !== 1) throw usage(`${name} takes exactly one input`, name);
  const output = str(v, "output");
  if (!output) throw usage(`${name} needs -o OUT (- for stdout)`);
  const read = readOptionsFrom(v, defaultFrom);
  const write = writeOptionsFrom(v);
  const to = formatArg(str(v, "to"), "--to") ?? formatFromExtension(output);
  await checkConvertPaths(positionals[0], output, to, v);
  const progress = terminalProgress(name);
  try {
    await convert(positionals[0], output, {
      ...read,
      ...write,
      to,
      progress,
      notice: (line: string) => console.error(line),
    });
  } finally {
    progress.end();
  }
  return 0;
}

/** `convert`. */
export const convertCommand: Command = {
  help: `Usage: convpress convert IN -o OUT [options]

Reads IN (a file, a TF.js folder or model.json, or - for stdin) and writes OUT (- for stdout) in another format.
Formats are detected from content, with the extension as a hint.

Options:
  -o, --output PATH        output path, or - for stdout (required)
      --from FORMAT        input format: ${FORMAT_NAMES.join("|")}
      --to FORMAT          output format (default: from the output extension, or the input's format)
${formatFlagHelp("read")}
      --input-shape N,C,H,W  input shape when the model does not state it
${formatFlagHelp("write")}
  -h, --help               this help

Examples:
  convpress convert vgg16.onnx -o vgg16.caffemodel --prototxt-out vgg16.prototxt
  cat model.onnx | convpress convert --from onnx --to onnx - -o - > copy.onnx`,
  options: CONVERT_OPTIONS,
  run: (v, positionals) => runConvert("convert", v, positionals),
};
