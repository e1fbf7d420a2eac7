/**
 * The TensorFlow.js format: layers-models and graph-models, read from a folder, a model.json path or a tar stream,
 * and written to a folder or a tar stream (model.json last). See ./reader.ts and ./writer.ts.
 *
 * @module
 */
import type { FormatModule } from "../../src/model/format.ts";
import type { TfjsReadOptions, TfjsWriteOptions } from "./options.ts";
import { readTfjs } from "./reader.ts";
import { writeTfjs } from "./writer.ts";
import { isTar } from "../../src/bytes/tar.ts";

const dec = new TextDecoder();

/** True when `head` looks like a TF.js model.json or a tar stream (how TF.js models travel through pipes). */
export function detectTfjs(head: Uint8Array, path: string): boolean {
  try {
    if (isTar(head)) return true;
    const text = dec.decode(head.subarray(0, 4096));
    if (!/^\s*\{/.test(text)) return false;
    return /"(modelTopology|weightsManifest)"\s*:/.test(text) || path.endsWith("model.json");
  } catch {
    return false;
  }
}

/** The TF.js format module. */
export const tfjsFormat: FormatModule<TfjsReadOptions, TfjsWriteOptions> = {
  name: "tfjs",
  detect: detectTfjs,
  read: readTfjs,
  write: writeTfjs,
};
