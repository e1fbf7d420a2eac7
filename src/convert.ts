/**
 * The library's top level: open a model from a path or stdin (detecting its format), and convert a model stream
 * to a path or stdout in any format.
 *
 * @module
 */
import { ByteReader } from "./bytes/byte_reader.ts";
import { openFileInput, stdinInput } from "./bytes/inputs.ts";
import { ConvpressError } from "./errors.ts";
import { withOutputs } from "./bytes/temp_files.ts";
import { validateModel } from "./model/validate.ts";
import type { FormatName, Layer, ModelStream } from "./model/types.ts";
import {
  allFormats,
  FORMAT_NAMES,
  type FormatModule,
  getFormat,
  type ModelSource,
  type ReadOptions,
  type WriteOptions,
} from "../formats/registry.ts";

/** Options of {@link openModel}. */
export interface OpenOptions extends ReadOptions {
  /** The format, when not detected from the content. */
  format?: FormatName;
}

/** Guesses a format from a path's extension. */
export function formatFromExtension(path: string): FormatName | undefined {
  const p = path.toLowerCase();
  if (p.endsWith(".onnx")) return "onnx";
  if (p.endsWith(".caffemodel") || p.endsWith(".prototxt")) return "caffe";
  if (p.endsWith(".cvp")) return "cvp";
  if (p.endsWith(".json") || p.endsWith("/") || p.endsWith(".tar")) return "tfjs";
  return undefined;
}

/** Opens `path` (`-` for stdin) as a model source. */
export async function openSource(path: string): Promise<ModelSource> {
  if (path === "-") return { path, isDirectory: false, reader: new ByteReader(stdinInput(), { name: "-" }) };
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new ConvpressError("io", `Cannot open '${path}': ${(e as Error).message}`, { file: path, cause: e });
  }
  if (info.isDirectory) return { path, isDirectory: true };
  return { path, isDirectory: false, reader: new ByteReader(await openFileInput(path), { name: path }) };
}

/** Picks the format of `src`: content probes, with the extension's format tried first. */
export async function detectFormat(src: ModelSource): Promise<FormatModule> {
  const hinted = formatFromExtension(src.path);
  if (src.isDirectory) return await getFormat("tfjs");
  const have = await src.reader!.fill(4096);
  const w = src.reader!;
  const head = w.window.subarray(w.windowStart, w.windowStart + have);
  const formats = await allFormats();
  formats.sort((a, b) => (a.name === hinted ? -1 : b.name === hinted ? 1 : 0));
  for (const f of formats) {
    let ok = false;
    try {
      ok = f.detect(head, src.path);
    } catch {
      ok = false;
    }
    if (ok) return f;
  }
  if (have === 0) throw new ConvpressError("unknown_format", `Input '${src.path}' is empty`, { file: src.path });
  throw new ConvpressError(
    "unknown_format",
    `Cannot tell the format of '${src.path}': it is not ${FORMAT_NAMES.join(", ")} (use --from to say which)`,
    { file: src.path, offset: 0 },
  );
}

/** Opens a model as a stream from `path` (`-` for stdin). */
export async function openModel(path: string, options: OpenOptions = {}): Promise<ModelStream> {
  const src = await openSource(path);
  try {
    const fmt = options.format ? await getFormat(options.format) : await detectFormat(src);
    return validateModel(await fmt.read(src, options), path);
  } catch (e) {
    src.reader?.close();
    throw e;
  }
}

/** Writes a model stream in `format` to `path` (`-` for stdout). */
export async function writeModel(
  model: ModelStream,
  path: string,
  format: FormatName,
  options: WriteOptions = {},
): Promise<void> {
  const fmt = await getFormat(format);
  await withOutputs(() => fmt.write(model, path, options));
}

/** Applies `stages` to a model stream's layers. */
export function applyStages(model: ModelStream, stages: TransformStream<Layer, Layer>[]): ModelStream {
  let layers = model.layers;
  for (const s of stages) layers = layers.pipeThrough(s);
  return { header: model.header, layers };
}

/** Converts `input` to `output`: formats from options, content or extensions. */
export async function convert(
  input: string,
  output: string,
  options: OpenOptions & WriteOptions & { to?: FormatName } = {},
): Promise<void> {
  const model = await openModel(input, options);
  const to = options.to ?? formatFromExtension(output) ?? (output === "-" ? model.header.sourceFormat : undefined);
  if (!to) {
    await model.layers.cancel();
    throw new ConvpressError("usage", `Cannot tell the output format of '${output}': use --to`, { file: output });
  }
  try {
    await writeModel(model, output, to, options);
  } finally {
    model.close?.();
  }
}
