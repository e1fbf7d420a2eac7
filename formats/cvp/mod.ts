/**
 * The `.cvp` format: convpress's compact, streamable, checksummed container (spec.md). `decoder.ts` is the
 * dependency-free reference decoder; `reader.ts` and `writer.ts` are the model-stream reader and writer.
 *
 * @module
 */
import type { FormatModule } from "../../src/model/format.ts";
import type { CvpReadOptions, CvpWriteOptions } from "./options.ts";
import { openFileSink, stdoutSink } from "../../src/bytes/byte_sink.ts";
import { MAGIC } from "./frame.ts";
import { readCvp } from "./reader.ts";
import { writeCvp } from "./writer.ts";

export { type CvpInspection, type CvpTensorRow, formatInspection, inspectCvp } from "./inspect.ts";
export { readCvp } from "./reader.ts";
export { writeCvp } from "./writer.ts";

/** The cvp format module. */
export const cvpFormat: FormatModule<CvpReadOptions, CvpWriteOptions> = {
  name: "cvp",
  detect: (head) => head.length >= MAGIC.length && MAGIC.every((b, i) => head[i] === b),
  read: readCvp,
  async write(model, path, options) {
    const sink = path === "-" ? stdoutSink() : await openFileSink(path);
    await writeCvp(model, sink, options);
  },
};
