/**
 * `.cvp`'s own options and the flags that set them (the registry, formats/registry.ts, hands them to the CLI).
 *
 * @module
 */
import { flagChoice, type FormatFlag, type ReadOptions, type WriteOptions } from "../../src/model/format.ts";

/** What the `.cvp` reader takes. */
export type CvpReadOptions = ReadOptions;

/** What the `.cvp` writer takes. */
export interface CvpWriteOptions extends WriteOptions {
  /** How to store float weights that no stage encoded. */
  weights?: "f32" | "f16";
}

/** `.cvp`'s flags. */
export const cvpFlags: readonly FormatFlag[] = [
  {
    name: "weights",
    type: "string",
    arg: "f32|f16",
    side: "write",
    help: ".cvp output: how to store weights (default f32, lossless)",
    apply: (o, v) => {
      o.weights = flagChoice(v, "weights", ["f32", "f16"] as const);
    },
  },
];
