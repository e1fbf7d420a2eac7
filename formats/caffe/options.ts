/**
 * Caffe's own options and the flags that set them (the registry, formats/registry.ts, hands them to the CLI).
 *
 * @module
 */
import type { FormatFlag, ReadOptions, WriteOptions } from "../../src/model/format.ts";

/** What the Caffe reader takes. */
export interface CaffeReadOptions extends ReadOptions {
  /** A deploy prototxt whose structure and input shape win over the caffemodel's. */
  prototxt?: string;
}

/** What the Caffe writer takes. */
export interface CaffeWriteOptions extends WriteOptions {
  /** Where to write the deploy prototxt. */
  prototxtOut?: string;
}

/** Caffe's flags. */
export const caffeFlags: readonly FormatFlag[] = [
  {
    name: "prototxt",
    type: "string",
    arg: "PATH",
    side: "read",
    help: "Caffe: deploy prototxt whose structure and input shape win",
    apply: (o, v) => {
      o.prototxt = v;
    },
  },
  {
    name: "prototxt-out",
    type: "string",
    arg: "PATH",
    side: "write",
    help: "Caffe output: where to write the deploy prototxt",
    apply: (o, v) => {
      o.prototxtOut = v;
    },
  },
];
