/**
 * `convpress check IN --to FORMAT`: every layer, op and attribute the target cannot express, all at once, with a
 * count per op; exit code 3 when there is any (`convert` stops at the first).
 *
 * @module
 */
import { checkModel, formatCheck } from "../app/check.ts";
import { type Command, formatArg, READ_FLAGS, readOptionsFrom, str, usage } from "./flags.ts";

/** `check`. */
export const checkCommand: Command = {
  help: `Usage: convpress check IN --to FORMAT [--from FORMAT] [--json]

Lists every layer of IN that FORMAT cannot express (with the reason), and a count per op. Exit code 3 when there
is any, 0 when the whole model converts.

Options:
      --to FORMAT     target format: onnx, caffe, tfjs or cvp
      --from FORMAT   input format (default: detected)
      --prototxt PATH Caffe: deploy prototxt
      --input-shape N,C,H,W  input shape when the model does not state it
      --json          print JSON instead of the table
  -h, --help          this help`,
  options: { ...READ_FLAGS, to: { type: "string" }, json: { type: "boolean" } },
  async run(v, positionals) {
    if (positionals.length !== 1) throw usage("check takes exactly one input", "check");
    const to = formatArg(str(v, "to"), "--to");
    if (!to) throw usage("check needs --to FORMAT", "check");
    const r = await checkModel(positionals[0], to, readOptionsFrom(v));
    console.log(v.json ? JSON.stringify(r, null, 2) : formatCheck(r).trimEnd());
    return r.problems.length ? 3 : 0;
  },
};
