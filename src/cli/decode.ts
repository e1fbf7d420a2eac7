/**
 * `convpress decode IN.cvp -o OUT`: a float model back from `.cvp` (`convert --from cvp`).
 *
 * @module
 */
import type { Command } from "./flags.ts";
import { CONVERT_OPTIONS, runConvert } from "./convert.ts";

/** `decode`. */
export const decodeCommand: Command = {
  help: `Usage: convpress decode IN.cvp -o OUT [--to FORMAT]

Restores a float model from a .cvp file in any format (see 'convert --help' for output options).`,
  options: CONVERT_OPTIONS,
  run: (v, positionals) => runConvert("decode", v, positionals, "cvp"),
};
