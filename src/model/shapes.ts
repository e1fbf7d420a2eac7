/**
 * Shape inference for canonical ops, and per-layer statistics (parameters, bytes, multiply-accumulates). Works
 * one layer at a time, so it follows the stream: {@link ShapeTracker} keeps only a map of value name to shape.
 *
 * @module
 */
import type { Dim, Layer, ModelHeader } from "./types.ts";
import { ELEMENTWISE } from "./ops.ts";
import { numel } from "./tensor.ts";

/** A shape, or undefined when unknown. */
export type Shape = Dim[] | undefined;

/** Output size of a conv or pool window along one axis. */
export function windowOut(size: number, k: number, s: number, p0: number, p1: number, d = 1, ceil = false): number {
  const span = (k - 1) * d + 1;
  const num = size + p0 + p1 - span;
  let out = (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
  // A last window that would start in the end padding is dropped (Caffe and ONNX agree on this).
  if (ceil && (out - 1) * s >= size + p0) out--;
  return out;
}

function num(d: Dim): number | undefined {
  return typeof d === "number" ? d : undefined;
}

function spatial(layer: Layer, x: Dim[], ceil: boolean, channels: Dim): Shape {
  const k = layer.attrs.kernel as number[];
  const s = (layer.attrs.strides as number[] | undefined) ?? [1, 1];
  const p = (layer.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
  const d = (layer.attrs.dilations as number[] | undefined) ?? [1, 1];
  const h = num(x[2]), w = num(x[3]);
  return [
    x[0],
    channels,
    h === undefined ? null : windowOut(h, k[0], s[0], p[0], p[2], d[0], ceil),
    w === undefined ? null : windowOut(w, k[1], s[1], p[1], p[3], d[1], ceil),
  ];
}

/** Infers a canonical layer's output shapes from its input shapes. */
export function inferShapes(layer: Layer, ins: Shape[]): Shape[] {
  const x = ins[0];
  const one = (s: Shape): Shape[] => [s];
  if (ELEMENTWISE.has(layer.op)) return one(x);
  if (!x) return layer.outputs.map(() => undefined);
  switch (layer.op) {
    case "Conv": {
      const o = layer.params.weight?.shape[0];
      return one(x.length === 4 ? spatial(layer, x, false, o ?? null) : undefined);
    }
    case "MaxPool":
    case "AvgPool":
      return one(x.length === 4 ? spatial(layer, x, Boolean(layer.attrs.ceil), x[1]) : undefined);
    case "GlobalAvgPool":
    case "GlobalMaxPool":
      return one([x[0], x[1], ...x.slice(2).map(() => 1)]);
    case "FC":
      return one([x[0], layer.params.weight?.shape[0] ?? null]);
    case "Flatten": {
      const axis = (layer.attrs.axis as number | undefined) ?? 1;
      const a = axis < 0 ? axis + x.length : axis;
      const prod = (ds: Dim[]) => ds.every((d) => typeof d === "number") ? numel(ds as number[]) : null;
      return one([prod(x.slice(0, a)), prod(x.slice(a))]);
    }
    case "Reshape": {
      const spec = layer.attrs.shape as number[] | undefined;
      if (!spec) return one(undefined);
      const out: Dim[] = spec.map((d, i) => (d === 0 ? x[i] : d));
      const known = out.filter((d) => typeof d === "number" && d !== -1) as number[];
      const total = x.every((d) => typeof d === "number") ? numel(x as number[]) : undefined;
      const minus = out.indexOf(-1);
      if (minus >= 0) out[minus] = total === undefined ? null : total / numel(known);
      return one(out);
    }
    case "Transpose": {
      const perm = layer.attrs.perm as number[];
      return one(perm.map((p) => x[p]));
    }
    case "Pad": {
      const p = layer.attrs.pads as number[];
      const h = num(x[2]), w = num(x[3]);
      return one([x[0], x[1], h === undefined ? null : h + p[0] + p[2], w === undefined ? null : w + p[1] + p[3]]);
    }
    case "Concat": {
      const axis = (layer.attrs.axis as number | undefined) ?? 1;
      const a = axis < 0 ? axis + x.length : axis;
      if (ins.some((s) => !s)) return one(undefined);
      const out = [...x];
      const ds = ins.map((s) => s![a]);
      out[a] = ds.every((d) => typeof d === "number") ? (ds as number[]).reduce((s, d) => s + d, 0) : null;
      return one(out);
    }
    case "Add":
    case "Mul":
    case "Sub":
    case "Max":
      return one(x);
    default:
      return layer.outputs.map(() => undefined);
  }
}

/** Follows shapes through the stream. */
export class ShapeTracker {
  #shapes = new Map<string, Shape>();

  constructor(header: ModelHeader) {
    for (const i of header.inputs) this.#shapes.set(i.name, i.shape);
  }

  /** Records a value's shape (an input that becomes known while the stream is read). */
  set(name: string, shape: Shape): void {
    this.#shapes.set(name, shape);
  }

  /** Shape of a value, if known. */
  get(name: string): Shape {
    return this.#shapes.get(name);
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
  if (layer.op === "Conv" && w && out && out.length === 4) {
    const hw = (num(out[2]) ?? 0) * (num(out[3]) ?? 0);
    macs = hw * w.size;
  } else if (layer.op === "FC" && w) macs = w.size;
  return { params, bytes, macs };
}
