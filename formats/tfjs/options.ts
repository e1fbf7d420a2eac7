/**
 * TF.js's own options and the flags that set them (the registry, formats/registry.ts, hands them to the CLI).
 *
 * @module
 */
import {
  flagChoice,
  flagPositiveInt,
  type FormatFlag,
  type ReadOptions,
  type WriteOptions,
} from "../../src/model/format.ts";

/** What the TF.js reader takes. */
export type TfjsReadOptions = ReadOptions;

/** What the TF.js writer takes. */
export interface TfjsWriteOptions extends WriteOptions {
  /** Layers-model, graph-model, or chosen from the network ("auto"). */
  tfjsKind?: "layers-model" | "graph-model" | "auto";
  /** Shard size in bytes (default 4 MiB). */
  shardSize?: number;
  /** Weight quantization. */
  quantize?: "float16" | "uint8" | "uint16";
}

/** TF.js's flags. */
export const tfjsFlags: readonly FormatFlag[] = [
  {
    name: "tfjs-kind",
    type: "string",
    arg: "KIND",
    side: "write",
    help: "TF.js output: layers-model, graph-model or auto (default)",
    apply: (o, v) => {
      o.tfjsKind = flagChoice(v, "tfjs-kind", ["layers-model", "graph-model", "auto"] as const);
    },
  },
  {
    name: "shard-size",
    type: "string",
    arg: "BYTES",
    side: "write",
    help: "TF.js output: weight shard size (default 4194304)",
    apply: (o, v) => {
      o.shardSize = flagPositiveInt(v, "shard-size");
    },
  },
  {
    name: "quantize",
    type: "string",
    arg: "TYPE",
    side: "write",
    help: "TF.js output: float16, uint8 or uint16",
    apply: (o, v) => {
      o.quantize = flagChoice(v, "quantize", ["float16", "uint8", "uint16"] as const);
    },
  },
];
