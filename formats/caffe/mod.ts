/**
 * The Caffe format: `.caffemodel` (current form and V1) read as a stream, written in the current form together with
 * a deploy `.prototxt`. See ./reader.ts and ./writer.ts.
 *
 * @module
 */
import type { FormatModule } from "../../src/model/format.ts";
import type { CaffeReadOptions, CaffeWriteOptions } from "./options.ts";
import { readCaffeModel } from "./reader.ts";
import { writeCaffeModel } from "./writer.ts";

/** Top-level NetParameter keys a caffemodel may start with: (field, wire type). */
const START_KEYS = new Set([
  0x0a, // name (1, string)
  0x12, // layers (2, V1)
  0x1a, // input (3)
  0x20, // input_dim (4, varint)
  0x22, // input_dim (4, packed)
  0x42, // input_shape (8)
]);

/**
 * True when `head` looks like a caffemodel: its first key is a NetParameter field and, when the first field is the
 * net name, the next key is `layers`, `input*`, `state` or `layer` (0xa2 0x06). ONNX starts with 0x08 instead.
 */
export function detectCaffeModel(head: Uint8Array, path: string): boolean {
  try {
    if (head.length < 2) return false;
    if (head[0] === 0xa2 && head[1] === 0x06) return true;
    if (!START_KEYS.has(head[0])) return false;
    if (head[0] !== 0x0a) return /\.caffemodel$/i.test(path) || head[0] === 0x12;
    const n = head[1];
    if (n >= 0x80) return /\.caffemodel$/i.test(path);
    const next = 2 + n;
    if (next + 1 >= head.length) return /\.caffemodel$/i.test(path);
    const k = head[next];
    return START_KEYS.has(k) && k !== 0x0a || k === 0x32 || (k === 0xa2 && head[next + 1] === 0x06);
  } catch {
    return false;
  }
}

/** The Caffe format module. */
export const caffeFormat: FormatModule<CaffeReadOptions, CaffeWriteOptions> = {
  name: "caffe",
  detect: detectCaffeModel,
  read: readCaffeModel,
  write: writeCaffeModel,
};
