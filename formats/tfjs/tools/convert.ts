/**
 * A stand-alone converter for benches and manual checks of the TF.js format, independent of the CLI:
 * `deno run -A formats/tfjs/tools/convert.ts FROM IN TO OUT [--kind K] [--quantize Q] [--shard N]`.
 * IN/OUT `-` mean stdin/stdout (a tar stream for TF.js).
 *
 * @module
 */
import { getFormat } from "../../registry.ts";
import { ByteReader } from "../../../src/bytes/byte_reader.ts";
import { openFileInput, stdinInput } from "../../../src/bytes/inputs.ts";
import type { FormatName } from "../../../src/model/types.ts";
import type { ReadOptions, WriteOptions } from "../../registry.ts";

const [from, inPath, to, outPath, ...rest] = Deno.args;
const opts: WriteOptions = {};
const readOpts: ReadOptions = {};
for (let i = 0; i < rest.length; i += 2) {
  if (rest[i] === "--kind") opts.tfjsKind = rest[i + 1] as WriteOptions["tfjsKind"];
  if (rest[i] === "--quantize") opts.quantize = rest[i + 1] as WriteOptions["quantize"];
  if (rest[i] === "--shard") opts.shardSize = Number(rest[i + 1]);
  if (rest[i] === "--prototxt") readOpts.prototxt = rest[i + 1];
  if (rest[i] === "--input-shape") readOpts.inputShape = rest[i + 1].split(",").map(Number);
}
const isDir = inPath !== "-" && (await Deno.stat(inPath)).isDirectory;
const reader = isDir ? undefined : new ByteReader(inPath === "-" ? stdinInput() : await openFileInput(inPath), {
  name: inPath,
});
const model = await (await getFormat(from as FormatName)).read({ path: inPath, reader, isDirectory: isDir }, readOpts);
await (await getFormat(to as FormatName)).write(model, outPath, opts);
model.close?.();
reader?.close();
