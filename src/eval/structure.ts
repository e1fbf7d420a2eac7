/**
 * A model's topology without its weights: which layer reads and writes which value. The executor uses it to free an
 * activation after its last consumer, and the side-by-side runner to know which outputs both models will produce.
 *
 * Sources, cheapest first: the header's layer plan when it lists inputs and outputs, or a structure-only pass over
 * a second opening of the model (tensors are never read, so on a seekable file this costs the index only).
 *
 * @module
 */
import type { Layer, LayerPlan, ModelHeader, ModelStream } from "../model/types.ts";

/** One layer's wiring. */
export interface LayerWiring {
  name: string;
  op: string;
  inputs: string[];
  outputs: string[];
}

/** A model's wiring, in stream order. */
export interface ModelStructure {
  layers: LayerWiring[];
  /** Graph outputs (kept until the end). */
  outputs: string[];
}

/** How many layers read each value (a value read twice by one layer counts twice). */
export function useCounts(s: ModelStructure): Map<string, number> {
  const uses = new Map<string, number>();
  for (const l of s.layers) for (const i of l.inputs) uses.set(i, (uses.get(i) ?? 0) + 1);
  return uses;
}

/** Every value the model produces, in order. */
export function producedValues(s: ModelStructure): string[] {
  return s.layers.flatMap((l) => l.outputs);
}

/** The structure from the header's plan, when the plan carries each layer's inputs and outputs. */
export function structureFromHeader(header: ModelHeader): ModelStructure | undefined {
  const plan = header.plan as (LayerPlan & { inputs?: string[]; outputs?: string[] })[] | undefined;
  if (!plan || header.pending || !plan.every((p) => Array.isArray(p.inputs) && Array.isArray(p.outputs))) {
    return undefined;
  }
  return {
    layers: plan.map((p) => ({ name: p.name, op: p.op, inputs: [...p.inputs!], outputs: [...p.outputs!] })),
    outputs: header.outputs.map((o) => o.name),
  };
}

/** Reads a model's structure by walking its layer stream without touching tensor data. Consumes `model`. */
export async function scanStructure(model: ModelStream): Promise<ModelStructure> {
  const layers: LayerWiring[] = [];
  for await (const l of model.layers as ReadableStream<Layer>) {
    layers.push({ name: l.name, op: l.op, inputs: [...l.inputs], outputs: [...l.outputs] });
  }
  return { layers, outputs: model.header.outputs.map((o) => o.name) };
}
