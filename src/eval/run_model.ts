/**
 * Runs a batch through a model as its layers stream: each layer is pulled, run and dropped before the next one is
 * read, so memory holds one layer's weights plus the live activations.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import { type Activation, LayerExecutor } from "./executor.ts";
import type { OrtEngine } from "./ort_engine.ts";
import { type ModelStructure, structureFromHeader, useCounts } from "./structure.ts";

/** A layer's output as the run goes: its NCHW shape, and its data on request (a read-back copy). */
export interface ActivationView {
  name: string;
  shape: number[];
  data(): Promise<Float32Array>;
}

/** Options of {@link runModel}. */
export interface RunOptions {
  /** Called after each layer with its first output. */
  onLayer?(name: string, output: ActivationView): void | Promise<void>;
  /**
   * Called before each layer runs, with the executor holding the activations entering it
   * (`executor.inputsOf(layer)`); a calibration stage reads them here.
   */
  beforeLayer?(layer: Layer, executor: LayerExecutor): void | Promise<void>;
  /** The model's wiring, to free activations after their last reader (see ./structure.ts). */
  structure?: ModelStructure;
  /** The graph input to feed (default: the header's first input). */
  inputName?: string;
  /** The value to return (default: the header's first output, else the last layer's first output). */
  outputName?: string;
  /** "cpu" forces the plain JavaScript backend. */
  backend?: "wasm" | "cpu";
  /**
   * Runs the model on ONNX Runtime instead of tfjs (./ort_engine.ts), when neither per-layer hook is given: those
   * look at the tfjs executor's activations layer by layer.
   */
  engine?: OrtEngine;
}

/** A finished run's output. */
export interface RunResult extends Activation {
  name: string;
}

/**
 * Runs `inputs` (NCHW float32 of `shape`, batch first) through `model` and returns the output. Consumes the stream.
 * Without a structure (options or header plan) activations are freed only at the end.
 */
export async function runModel(
  model: ModelStream,
  inputs: Float32Array,
  shape: number[],
  opts: RunOptions = {},
): Promise<Float32Array> {
  return (await runModelDetailed(model, inputs, shape, opts)).data;
}

/** {@link runModel}, returning the output's name and shape too. */
export async function runModelDetailed(
  model: ModelStream,
  inputs: Float32Array,
  shape: number[],
  opts: RunOptions = {},
): Promise<RunResult> {
  const structure = opts.structure ?? structureFromHeader(model.header);
  if (opts.engine && !opts.onLayer && !opts.beforeLayer) {
    return opts.engine.run(model, inputs, shape, { structure, inputName: opts.inputName, outputName: opts.outputName });
  }
  const wanted = opts.outputName ?? model.header.outputs[0]?.name;
  const ex = await LayerExecutor.create({
    uses: structure ? useCounts(structure) : undefined,
    keep: wanted ? [wanted] : [],
    backend: opts.backend,
  });
  const inputName = opts.inputName ?? model.header.inputs[0]?.name;
  if (!inputName) {
    await model.layers.cancel();
    throw new ConvpressError("bad_format", "The model declares no input");
  }
  let last: string | undefined;
  try {
    ex.setInput(inputName, inputs, shape);
    for await (const layer of model.layers as ReadableStream<Layer>) {
      await opts.beforeLayer?.(layer, ex);
      await ex.run(layer);
      last = layer.outputs[0] ?? last;
      if (opts.onLayer && layer.outputs[0] && ex.has(layer.outputs[0])) {
        const name = layer.outputs[0];
        await opts.onLayer(layer.name, { name, shape: ex.shape(name), data: async () => (await ex.read(name)).data });
      }
    }
    const name = wanted && ex.has(wanted) ? wanted : last;
    if (!name || !ex.has(name)) {
      throw new ConvpressError("bad_format", `The model never produced its output '${wanted ?? "?"}'`);
    }
    return { name, ...(await ex.read(name)) };
  } finally {
    ex.dispose();
  }
}
