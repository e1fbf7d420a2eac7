/**
 * Reads a TF.js model (layers-model or graph-model) as a canonical model stream.
 *
 * Sources:
 * - a folder holding `model.json`, or the path of a `model.json` (shards beside it);
 * - a tar stream (stdin, or a `.tar` file) holding `model.json` and the shards in any order. A tar is read strictly
 *   in order; its shards are spooled to a temporary folder (disk, not memory) because `model.json`, which says how
 *   to cut them, normally comes last. The folder is removed by `ModelStream.close()`, or when the process exits.
 *
 * model.json is parsed whole (it holds topology and manifest only); weights stay in the shards and are read by
 * offset when a consumer reads a layer's tensors.
 *
 * @module
 */
import { TfjsError, wrapError } from "../../src/errors.ts";
import { asOutputError } from "../../src/bytes/byte_sink.ts";
import { guardCreation, makeTempDir, removeTemporary, removeTemporarySync } from "../../src/bytes/temp_files.ts";
import type { ByteReader } from "../../src/bytes/byte_reader.ts";
import { layerStream, type ModelStream, planOf } from "../../src/model/types.ts";
import type { ModelSource } from "../../src/model/format.ts";
import type { TfjsReadOptions as ReadOptions } from "./options.ts";
import { readGraphModel } from "./graph_reader.ts";
import { readLayersModel } from "./layers_reader.ts";
import { isTar, readTar } from "../../src/bytes/tar.ts";
import type { ModelJson } from "./types.ts";
import { indexWeights, weightTensor } from "./weights.ts";
import type { Tensor } from "../../src/model/tensor.ts";

/** Largest model.json accepted (topologies of big graph-models are a few MB). */
const MAX_JSON = 256 << 20;

/** Spools a tar stream's entries into a new temporary folder; returns it. */
export async function spoolTar(r: ByteReader): Promise<string> {
  const dir = await makeTempDir({ prefix: "convpress-tfjs-" });
  try {
    let sawJson = false;
    for await (const e of readTar(r, TfjsError)) {
      if (e.name.startsWith("/") || e.name.split("/").includes("..")) {
        throw new TfjsError("bad_format", `Tar entry '${e.name}' leads out of the model's folder`, {
          file: r.name,
          offset: e.offset,
        });
      }
      const base = e.name.split("/").pop()!;
      if (!base || base.startsWith(".")) continue;
      if (base.endsWith(".json")) {
        if (e.size > MAX_JSON) {
          throw new TfjsError("bad_format", `TF.js model.json in the tar is ${e.size} bytes`, { file: r.name });
        }
        sawJson = sawJson || base === "model.json";
      }
      // Inside the guard: a signal during the open waits for it, so the clean-up never races a new entry in `dir`.
      const f = await guardCreation(() => Deno.open(`${dir}/${base}`, { write: true, create: true, truncate: true }));
      try {
        for await (const c of e.body()) {
          let off = 0;
          while (off < c.length) {
            off += await f.write(c.subarray(off)).catch((err) => {
              throw asOutputError(`${dir}/${base}`, err);
            });
          }
        }
      } finally {
        f.close();
      }
    }
    if (!sawJson) throw new TfjsError("bad_format", "The tar stream holds no model.json", { file: r.name });
    return dir;
  } catch (e) {
    await removeTemporary(dir);
    throw e;
  }
}

/** Parses model.json text, checking the fields the readers rely on. */
export function parseModelJson(text: string, file: string): ModelJson {
  let json: ModelJson;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfjsError("bad_format", `Cannot parse TF.js ${file}: ${(e as Error).message}`, { file, cause: e });
  }
  if (!json || typeof json !== "object" || !json.modelTopology || !Array.isArray(json.weightsManifest)) {
    throw new TfjsError("bad_format", `TF.js ${file} lacks modelTopology or weightsManifest`, { file });
  }
  return json;
}

/** True when the topology is a GraphDef. */
export function isGraphModel(json: ModelJson): boolean {
  if (json.format === "graph-model") return true;
  if (json.format === "layers-model") return false;
  return Array.isArray((json.modelTopology as { node?: unknown }).node);
}

async function* yieldAll<T>(items: T[]): AsyncGenerator<T> {
  for (const i of items) yield i;
}

/** Opens a TF.js model as a canonical model stream. */
export async function readTfjs(src: ModelSource, options: ReadOptions = {}): Promise<ModelStream> {
  let dir: string;
  let temp: string | undefined;
  let jsonPath: string;
  try {
    if (src.isDirectory) {
      dir = src.path.replace(/\/+$/, "") || "/";
      jsonPath = `${dir}/model.json`;
    } else if (
      src.reader &&
      (src.path === "-" ||
        (await src.reader.fill(512), isTar(src.reader.window.subarray(src.reader.windowStart, src.reader.windowEnd))))
    ) {
      temp = dir = await spoolTar(src.reader);
      jsonPath = `${dir}/model.json`;
    } else {
      jsonPath = src.path;
      dir = src.path.includes("/") ? src.path.slice(0, src.path.lastIndexOf("/")) || "/" : ".";
    }
  } catch (e) {
    wrapError(e, TfjsError, `Cannot read TF.js model from ${src.path}`, { file: src.path });
  }
  // A spooled tar's shards back the lazy tensors, which consumers may read after the layer stream has ended (a
  // writer that emits its graph before the weights): the folder is removed by ModelStream.close, or at exit.
  const cleanup = () => {};
  try {
    let text: string;
    try {
      text = await Deno.readTextFile(jsonPath);
    } catch (e) {
      wrapError(e, TfjsError, `Cannot read TF.js model.json`, { file: jsonPath });
    }
    const json = parseModelJson(text, jsonPath);
    const { refs, shards } = await indexWeights(dir, json.weightsManifest);
    const weight = (name: string): Tensor | undefined => {
      const r = refs.get(name) ?? refs.get(name.replace(/:0$/, ""));
      return r ? weightTensor(r, shards) : undefined;
    };
    // A tar's spool folder has a random name: the model is named after the tar file, or "model" on stdin, so the
    // same input always gives the same bytes.
    const name = temp
      ? (src.path === "-" ? "model" : src.path.split("/").pop()!.replace(/\.tar$/i, "") || "model")
      : jsonPath.split("/").at(-2) ?? "model";
    const { header, builder } = isGraphModel(json)
      ? await readGraphModel(json, weight, {
        inputShape: options.inputShape,
        name,
        // `check` reads leniently to list every node it cannot convert (not a ReadOptions field: format-specific).
        lenient: (options as { lenient?: boolean }).lenient,
      })
      : readLayersModel(json, weight, { inputShape: options.inputShape, name });
    header.metadata.tfjsFormat = isGraphModel(json) ? "graph-model" : "layers-model";
    header.plan = planOf(builder.layers);
    const layers = builder.layers;
    const close = () => {
      if (!temp) return;
      const t = temp;
      temp = undefined;
      removeTemporarySync(t);
    };
    return { header, layers: layerStream(yieldAll(layers), cleanup), close };
  } catch (e) {
    if (temp) {
      await removeTemporary(temp);
      // Errors name the tar (`-` on stdin), not the spool folder the user never saw.
      if (e instanceof Error) {
        const spool = temp;
        e.message = e.message.replaceAll(`${spool}/`, `${src.path}:`).replaceAll(spool, src.path);
        if (e instanceof TfjsError || "file" in e) (e as { file?: string }).file = src.path;
      }
    }
    // model.json is untrusted JSON: a field of the wrong type or missing deep inside a config surfaces as a
    // TypeError while it is mapped; that is a malformed file, not a bug to print a stack for.
    if (e instanceof TypeError) {
      throw new TfjsError("bad_format", `Malformed TF.js model.json: ${e.message}`, { file: jsonPath, cause: e });
    }
    throw e;
  }
}
