/**
 * The CLI's checks before a command reads anything (see src/bytes/output_paths.ts): every path the command reads
 * and writes, from its flags, so that no output is an input and every output folder exists.
 *
 * @module
 */
import { checkCommandPaths } from "../bytes/output_paths.ts";
import { defaultPrototxtPath } from "../../formats/caffe/writer.ts";

type Flags = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);

/** `convert` and `decode`: the model, its prototxt, and the outputs (deploy prototxt and external data included). */
export async function checkConvertPaths(
  input: string,
  output: string,
  to: string | undefined,
  v: Flags,
): Promise<void> {
  const protoOut = str(v["prototxt-out"]) ??
    (to === "caffe" && output !== "-" ? defaultPrototxtPath(output) : undefined);
  await checkCommandPaths({
    inputs: [input, str(v.prototxt)],
    outputs: [output, protoOut, v["external-data"] ? `${output}.data` : undefined],
    folders: (to ?? "tfjs") === "tfjs" ? [output] : [],
  });
}

/** `compress`: the model, its prototxt, recipe and calibration data; the output and the report files. */
export async function checkCompressPaths(input: string, output: string, v: Flags): Promise<void> {
  await checkCommandPaths({
    inputs: [input, str(v.prototxt), str(v.recipe), str(v.calibration)],
    outputs: [output, str(v["report-json"]), str(v["report-html"])],
  });
}
