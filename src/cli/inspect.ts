/**
 * `convpress inspect IN`: per-layer op, shape, parameters, bytes and MACs; for a `.cvp`, how each tensor is stored.
 *
 * @module
 */
import { detectFormat, openModel, openSource } from "../app/convert.ts";
import { formatInspection, inspectModel } from "../app/inspect.ts";
import { type Command, READ_FLAGS, readOptionsFrom, usage } from "./flags.ts";

/** The detected format of a file, or undefined. */
async function sniff(path: string): Promise<string | undefined> {
  const src = await openSource(path);
  try {
    return (await detectFormat(src)).name;
  } catch {
    return undefined;
  } finally {
    src.reader?.close();
  }
}

/** `inspect`. */
export const inspectCommand: Command = {
  help: `Usage: convpress inspect IN [--from FORMAT] [--json]

Prints each layer's op, output shape, parameter count, bytes and multiply-accumulates, and the totals.

Options:
      --from FORMAT   input format (default: detected)
      --prototxt PATH Caffe: deploy prototxt
      --json          print JSON instead of a table
  -h, --help          this help`,
  options: { ...READ_FLAGS, json: { type: "boolean" } },
  async run(v, positionals) {
    if (positionals.length !== 1) throw usage("inspect takes exactly one input", "inspect");
    const input = positionals[0];
    const read = readOptionsFrom(v);
    if (input !== "-" && (read.format ?? await sniff(input)) === "cvp") {
      // A .cvp shows how each tensor is stored: encoding, bits per weight, bytes, ratio.
      const cvp = await import("../../formats/cvp/mod.ts");
      const x = await cvp.inspectCvp(input);
      console.log(v.json ? JSON.stringify(x, null, 2) : cvp.formatInspection(x));
      return 0;
    }
    const x = await inspectModel(await openModel(input, read));
    console.log(v.json ? JSON.stringify(x, null, 2) : formatInspection(x));
    return 0;
  },
};
