/**
 * The ONNX format: detect, read (./reader.ts), write (./writer.ts).
 *
 * @module
 */
import { OnnxError } from "../../src/errors.ts";
import { decodeVarint, varintUnsigned } from "../../src/wire/varint.ts";
import type { FormatModule } from "../../src/model/format.ts";
import type { OnnxReadOptions, OnnxWriteOptions } from "./options.ts";
import { readOnnx } from "./reader.ts";
import { writeOnnx } from "./writer.ts";

export { readOnnx } from "./reader.ts";
export { writeOnnx } from "./writer.ts";

/** ModelProto fields and their wire types. */
const MODEL_FIELDS: Readonly<Record<number, number>> = {
  1: 0,
  2: 2,
  3: 2,
  4: 2,
  5: 0,
  6: 2,
  7: 2,
  8: 2,
  14: 2,
  20: 2,
  25: 2,
};

/** True when `head` parses as the start of a ModelProto with a graph or an ir_version first. Never throws. */
export function looksLikeOnnx(head: Uint8Array): boolean {
  let pos = 0, fields = 0;
  while (pos < head.length) {
    const p = decodeVarint(head, pos, head.length);
    if (p < 0) return fields > 0;
    const key = varintUnsigned();
    const f = Math.floor(key / 8), wt = key & 7;
    if (MODEL_FIELDS[f] !== wt) return false;
    pos = p;
    fields++;
    if (wt === 0) {
      const q = decodeVarint(head, pos, head.length);
      if (q < 0) return true;
      pos = q;
      continue;
    }
    const q = decodeVarint(head, pos, head.length);
    if (q < 0) return true;
    const len = varintUnsigned();
    if (f === 7) return true;
    if (f === 2 || f === 3 || f === 4) {
      const s = head.subarray(q, Math.min(head.length, q + len));
      if (s.some((b) => b < 0x20 && b !== 0x0a && b !== 0x09)) return false;
    }
    pos = q + len;
  }
  return fields > 0;
}

/** The ONNX format module. */
export const onnxFormat: FormatModule<OnnxReadOptions, OnnxWriteOptions> = {
  name: "onnx",
  detect: (head) => looksLikeOnnx(head),
  read: (src, options) => {
    if (!src.reader) return Promise.reject(new OnnxError("usage", `ONNX input '${src.path}' is a directory`));
    const dir = src.path === "-"
      ? undefined
      : (src.path.includes("/") ? src.path.slice(0, src.path.lastIndexOf("/")) : ".");
    return readOnnx(src.reader, dir, options);
  },
  write: (model, path, options) => writeOnnx(model, path, options),
};
