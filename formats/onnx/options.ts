/**
 * ONNX's own options and the flags that set them (the registry, formats/registry.ts, hands them to the CLI).
 *
 * @module
 */
import type { FormatFlag, ReadOptions, WriteOptions } from "../../src/model/format.ts";

/** What the ONNX reader takes. */
export type OnnxReadOptions = ReadOptions;

/** What the ONNX writer takes. */
export interface OnnxWriteOptions extends WriteOptions {
  /** Write tensors to a side file `<out>.data` (external data). */
  externalData?: boolean;
  /** Tensors of at least this many bytes go to the side file (default 1024, as the onnx package). */
  externalDataThreshold?: number;
  /**
   * Keep clustered tensors (a clustered `.cvp`'s) as indices plus a codebook, decoded inside the graph
   * (./clustered.ts), instead of float32 initializers.
   */
  keepClustered?: boolean;
}

/** ONNX's flags. */
export const onnxFlags: readonly FormatFlag[] = [
  {
    name: "external-data",
    type: "boolean",
    side: "write",
    help: "ONNX output: store tensors in OUT.data",
    apply: (o, v) => {
      o.externalData = v === true;
    },
  },
  {
    name: "keep-clustered",
    type: "boolean",
    side: "write",
    help: "ONNX output from a clustered .cvp: keep cluster indices and codebooks, decoded in the graph",
    apply: (o, v) => {
      o.keepClustered = v === true;
    },
  },
];
