/**
 * The library's top level: open a model from a path or stdin (detecting its format), and convert a model stream
 * to a path or stdout in any format.
 *
 * @module
 */
import { ByteReader } from "../bytes/byte_reader.ts";
import { openFileInput, stdinInput } from "../bytes/inputs.ts";
import { ConvpressError } from "../errors.ts";
import { withOutputs } from "../bytes/temp_files.ts";
import { validateModel } from "../model/validate.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import type { ProgressFn } from "../progress.ts";
import {
  allFormats,
  FORMAT_NAMES,
  formatFromExtension,
  type FormatModule,
  getFormat,
  type ModelSource,
  type ReadOptions,
  type WriteOptions,
} from "../../formats/registry.ts";

export { formatFromExtension };

/** Options of {@link openModel}. */
export interface OpenOptions extends ReadOptions {
  /** The format (a registered name), when not detected from the content. */
  format?: string;
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
  format: string,
  options: WriteOptions = {},
): Promise<void> {
  const fmt = await getFormat(format);
  await withOutputs(() => fmt.write(model, path, options));
}

/**
 * A pass-through stage that reports each layer to `progress` (layers so far, the plan's length or 0, the name), and
 * runs `each` on it first (compress releases memory there). The CLI's progress is fed here, whatever the formats.
 */
export function progressStage(
  header: ModelStream["header"],
  progress: ProgressFn | undefined,
  each?: (layer: Layer) => void,
): TransformStream<Layer, Layer> {
  let count = 0;
  return new TransformStream<Layer, Layer>({
    transform(l, c) {
      progress?.(++count, header.plan?.length ?? 0, l.name);
      each?.(l);
      c.enqueue(l);
    },
  });
}

/** Applies `stages` to a model stream's layers; the result closes the same source as `model`. */
export function applyStages(model: ModelStream, stages: TransformStream<Layer, Layer>[]): ModelStream {
  let layers = model.layers;
  for (const s of stages) layers = layers.pipeThrough(s);
  return { ...model, layers };
}

/** Converts `input` to `output`: formats from options, content or extensions. */
export async function convert(
  input: string,
  output: string,
  options: OpenOptions & WriteOptions & { to?: string } = {},
): Promise<void> {
  const model = await openModel(input, options);
  const to = options.to ?? formatFromExtension(output) ?? (output === "-" ? model.header.sourceFormat : undefined);
  if (!to) {
    await model.layers.cancel();
    throw new ConvpressError("usage", `Cannot tell the output format of '${output}': use --to`, { file: output });
  }
  const { progress, ...writeOptions } = options;
  try {
    await writeModel(applyStages(model, [progressStage(model.header, progress)]), output, to, writeOptions);
  } finally {
    model.close?.();
  }
}
