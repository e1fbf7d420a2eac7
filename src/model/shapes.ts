/**
 * Shape inference for canonical ops (each op's own, from the op registry), and per-layer statistics (parameters,
 * bytes, multiply-accumulates). Works one layer at a time, so it follows the stream: {@link ShapeTracker} keeps only
 * a map of value name to shape.
 *
 * @module
 */
import type { Dim, Layer, ModelHeader } from "./types.ts";
import { attrsOf, opDef } from "../ops/registry.ts";
import { dimNum } from "../ops/window.ts";

export { windowOut } from "../ops/window.ts";

/** A shape, or undefined when unknown. */
export type Shape = Dim[] | undefined;

/** Infers a canonical layer's output shapes from its input shapes. */
export function inferShapes(layer: Layer, ins: Shape[]): Shape[] {
  const def = opDef(layer.op);
  if (!def) return layer.outputs.map(() => undefined);
  if (!def.infer) return [ins[0]];
  try {
    return def.infer(attrsOf(layer), ins, layer);
  } catch {
    // Attributes too broken to infer from: the layer's own checks report it where it is read or run.
    return layer.outputs.map(() => undefined);
  }
}

/** Follows shapes through the stream. */
export class ShapeTracker {
  #shapes = new Map<string, Shape>();

  constructor(header: ModelHeader) {
    for (const i of header.inputs) this.#shapes.set(i.name, i.shape);
  }

  /** Shape of a value, if known. */
  get(name: string): Shape {
    return this.#shapes.get(name);
  }

  /** Sets a value's shape (constants folded by a reader, say). */
  set(name: string, shape: Shape): void {
    this.#shapes.set(name, shape);
  }

  /** Records a layer's outputs; returns its input and output shapes. */
  add(layer: Layer): { ins: Shape[]; outs: Shape[] } {
    const ins = layer.inputs.map((n) => this.#shapes.get(n));
    const outs = inferShapes(layer, ins);
    layer.outputs.forEach((n, i) => this.#shapes.set(n, outs[i]));
    return { ins, outs };
  }
}

/** Parameter count, stored bytes and multiply-accumulates per sample of one layer. */
export interface LayerStats {
  params: number;
  bytes: number;
  macs: number;
}

/** Statistics of a layer, given its output shape. */
export function layerStats(layer: Layer, out: Shape): LayerStats {
  let params = 0, bytes = 0;
  for (const t of Object.values(layer.params)) {
    params += t.size;
    bytes += t.byteLength;
  }
  let macs = 0;
  const w = layer.params.weight;
  if ((layer.op === "Conv" || layer.op === "ConvTranspose") && w && out && out.length === 4) {
    const hw = (dimNum(out[2]) ?? 0) * (dimNum(out[3]) ?? 0);
    macs = hw * w.size;
  } else if (layer.op === "FC" && w) macs = w.size;
  return { params, bytes, macs };
}
