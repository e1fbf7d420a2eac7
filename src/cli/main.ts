/**
 * The command line's dispatcher: the command list (each command is one file here, `{ help, options, run }`),
 * `--help` and `--version`, flag parsing, and the one error-to-exit mapping (./exit.ts). Exit codes: 0 success,
 * 1 bad or unreadable input, 2 usage, 3 unsupported model feature, 70 internal error.
 *
 * @module
 */
import { removeTemporaries } from "../bytes/temp_files.ts";
import { reportError } from "./exit.ts";
import { type Command, parseFlags, usage } from "./flags.ts";
import { VERSION } from "./version.ts";

/** The commands: a name, the line of the main help, and the command's module (loaded when used). */
export const COMMANDS: readonly { name: string; summary: string; load(): Promise<Command> }[] = [
  {
    name: "convert",
    summary: "convert IN -o OUT    convert between formats (IN or OUT may be - for stdin/stdout)",
    load: async () => (await import("./convert.ts")).convertCommand,
  },
  {
    name: "compress",
    summary: "compress IN -o OUT   compress by a recipe (GAP, pruning, truncated SVD, clustering) into .cvp",
    load: async () => (await import("./compress.ts")).compressCommand,
  },
  {
    name: "decode",
    summary: "decode IN.cvp -o OUT restore a float model from .cvp (same as convert --from cvp)",
    load: async () => (await import("./decode.ts")).decodeCommand,
  },
  {
    name: "inspect",
    summary: "inspect IN           per-layer table: op, shapes, parameters, bytes, MACs",
    load: async () => (await import("./inspect.ts")).inspectCommand,
  },
  {
    name: "check",
    summary: "check IN --to FORMAT every layer FORMAT cannot express, counted per op (exit 3 if any)",
    load: async () => (await import("./check.ts")).checkCommand,
  },
  {
    name: "eval",
    summary: "eval MODEL --data D  accuracy, or agreement with a reference model, by streaming inference",
    load: async () => (await import("./eval.ts")).evalCommand,
  },
];

/** The main help. */
export const MAIN_HELP =
  `convpress ${VERSION}: convert and compress convolutional networks (Caffe, ONNX, TF.js, .cvp), layer by layer

Usage: convpress <command> [options]

Commands:
${COMMANDS.map((c) => `  ${c.summary}`).join("\n")}

Run 'convpress <command> --help' for a command's options.
Exit codes: 0 ok, 1 bad input, 2 usage, 3 unsupported model feature, 70 internal error.`;

async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(MAIN_HELP);
    return 0;
  }
  if (name === "--version" || name === "-V") {
    console.log(`convpress ${VERSION}`);
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) throw usage(`Unknown command '${name}' (see convpress --help)`);
  const command = await entry.load();
  const { values, positionals } = parseFlags(name, command, rest);
  currentInput = positionals[0];
  if (values.help) {
    console.log(command.help);
    return 0;
  }
  return await command.run(values, positionals);
}

/** The command's input, named by error messages that name no file. */
let currentInput: string | undefined;

/** Runs the CLI with `args` and returns the exit code; errors are printed on stderr (one line, or a stack for bugs). */
export async function main(args: string[]): Promise<number> {
  currentInput = undefined;
  try {
    return await run(args);
  } catch (e) {
    removeTemporaries();
    return reportError(e, currentInput);
  }
}
