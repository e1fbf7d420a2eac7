/**
 * `convpress decode IN.cvp -o OUT`: a float model back from `.cvp` (`convert --from cvp`).
 *
 * @module
 */
import type { Command } from "./flags.ts";
import { CONVERT_OPTIONS, runConvert } from "./convert.ts";

/** `decode`. */
export const decodeCommand: Command = {
  help: `Usage: convpress decode IN.cvp -o OUT [--to FORMAT] [--keep-clustered]

Restores a float model from a .cvp file in any format (see 'convert --help' for output options).
With --keep-clustered, ONNX output keeps clustered weights as indices plus codebooks that ONNX Runtime decodes.
TF.js output stores clustered weights as uint8, float16 or float32, whichever holds them exactly, and says which.`,
  options: CONVERT_OPTIONS,
  run: (v, positionals) => runConvert("decode", v, positionals, "cvp"),
};
