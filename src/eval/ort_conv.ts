/**
 * One convolution (and the Relu and MaxPool fused after it) as an ONNX Runtime session (MLAS, all cores), for the
 * layer-at-a-time executor (./executor.ts) when it is asked to: the weights are the session's initializers, the input
 * has a free batch. Calibration's forward passes are mostly VGG16's convolutions, which run here 3-4x faster than in
 * single-threaded tfjs-wasm; the rounding differs from tfjs' (a different summation order), so only runs that opt in
 * use it.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import type { Layer } from "../model/types.ts";
import { exportLayer } from "../../formats/onnx/export_node.ts";
import type { Ort } from "../linalg/ort.ts";

const onnx = onnxProto.onnx;
const OPSET = 13;
type Session = import("onnxruntime-node").InferenceSession;

/** A convolution ready to run on NCHW float32 batches. */
export interface OrtConv {
  /** Runs on x [n, c, h, w]; the output goes `into` the caller's array when given (its shape must be the output's). */
  run(
    x: Float32Array,
    shape: readonly number[],
    into?: { data: Float32Array; shape: number[] },
  ): Promise<{ data: Float32Array; shape: number[] }>;
  release(): Promise<void>;
}

const bytesOf = (f: Float32Array) => new Uint8Array(f.buffer, f.byteOffset, f.byteLength);

/**
 * The session of a canonical Conv layer, its weights given as float32, and of the Relu and MaxPool layers in `after`
 * on its output, in order, in the same session (the same values as each run alone: max is exact).
 */
export async function ortConv(
  ort: Ort,
  layer: Layer,
  weight: Float32Array,
  bias: Float32Array | undefined,
  after: Layer[] = [],
): Promise<OrtConv> {
  const w = layer.params.weight;
  // Every node as the ONNX exporter writes it (one mapping of canonical attributes), renamed into the chain
  // x -> t0 -> ... -> y; the Conv reads the initializers w and b.
  const chain = [layer, ...after];
  const names = chain.map((_, i) => (i + 1 === chain.length ? "y" : `t${i}`));
  const model = onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: "", version: OPSET }],
    graph: {
      name: "conv",
      node: chain.map((l, i) =>
        exportedNode(l, i === 0 ? ["x", "w", ...(bias ? ["b"] : [])] : [names[i - 1]], names[i])
      ),
      initializer: [
        { name: "w", dims: [...w.shape], dataType: 1, rawData: bytesOf(weight) },
        ...(bias ? [{ name: "b", dims: [bias.length], dataType: 1, rawData: bytesOf(bias) }] : []),
      ],
      input: [{
        name: "x",
        type: {
          tensorType: {
            elemType: 1,
            shape: { dim: [{ dimParam: "n" }, { dimParam: "c" }, { dimParam: "h" }, { dimParam: "w" }] },
          },
        },
      }],
      output: [{ name: "y", type: { tensorType: { elemType: 1 } } }],
    },
  }).finish();
  // No memory arena: each run's buffers go back at once (an arena would keep the largest chunk's output and
  // workspace, 100+ MB for VGG16's first layers, for the rest of the run).
  const session: Session = await ort.InferenceSession.create(model, {
    graphOptimizationLevel: "all",
    enableCpuMemArena: false,
    enableMemPattern: false,
  });
  return {
    async run(x, shape, into) {
      const feeds = { x: new ort.Tensor("float32", x, [...shape]) };
      if (into) {
        await session.run(feeds, { y: new ort.Tensor("float32", into.data, into.shape) });
        return { data: into.data, shape: [...into.shape] };
      }
      const r = await session.run(feeds);
      return { data: r.y.data as Float32Array, shape: [...r.y.dims] };
    },
    release: () => session.release(),
  };
}

/**
 * True when `layer` can run in a Conv's session as one ONNX node with no constants of its own, as the ONNX exporter
 * writes it (formats/onnx/export_node.ts: the one mapping of canonical attributes to ONNX's).
 */
export function fusable(layer: Layer): boolean {
  try {
    const ex = exportLayer(layer, OPSET, undefined);
    return ex.nodes.length === 1 && ex.constants.length === 0;
  } catch {
    return false;
  }
}

/** The exporter's node for `layer` (one node: a Conv, or see {@link fusable}), reading `inputs`, writing `output`. */
function exportedNode(layer: Layer, inputs: string[], output: string) {
  const node = onnx.NodeProto.decode(exportLayer(layer, OPSET, undefined).nodes[0].bytes);
  node.input = inputs;
  node.output = [output];
  return node;
}
