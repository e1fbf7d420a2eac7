/**
 * `inspect`: a per-layer table of a model stream (op, shapes, parameters, bytes, multiply-accumulates) and totals.
 * Reads tensor metadata only, never tensor data, so it is fast on any size.
 *
 * @module
 */
import { layerStats, type Shape, ShapeTracker } from "../model/shapes.ts";
import type { ModelStream } from "../model/types.ts";
import { escapeText } from "../errors.ts";

/** One row of the inspection. */
export interface InspectRow {
  name: string;
  op: string;
  input: Shape;
  output: Shape;
  params: number;
  bytes: number;
  macs: number;
  /** Parameter tensors: name, dtype, shape. */
  tensors: { name: string; role: string; dtype: string; shape: number[] }[];
}

/** The whole inspection. */
export interface Inspection {
  name: string;
  format: string;
  inputs: { name: string; shape: Shape }[];
  outputs: { name: string; shape: Shape }[];
  layers: InspectRow[];
  totals: { layers: number; params: number; bytes: number; macs: number };
}

/** Walks a model stream and tabulates it. */
export async function inspectModel(model: ModelStream): Promise<Inspection> {
  const layers: InspectRow[] = [];
  let shapes: ShapeTracker | undefined;
  const pendingLayers = [];
  for await (const layer of model.layers) {
    if (model.header.pending) {
      pendingLayers.push(layer);
      continue;
    }
    shapes ??= new ShapeTracker(model.header);
    for (const l of pendingLayers.splice(0)) layers.push(row(l, shapes));
    layers.push(row(layer, shapes));
  }
  shapes ??= new ShapeTracker(model.header);
  for (const l of pendingLayers) layers.push(row(l, shapes));
  model.close?.();
  const totals = { layers: layers.length, params: 0, bytes: 0, macs: 0 };
  for (const r of layers) {
    totals.params += r.params;
    totals.bytes += r.bytes;
    totals.macs += r.macs;
  }
  const h = model.header;
  return {
    name: h.name,
    format: h.sourceFormat,
    inputs: h.inputs.map((i) => ({ name: i.name, shape: i.shape })),
    outputs: h.outputs.map((o) => ({ name: o.name, shape: o.shape })),
    layers,
    totals,
  };
}

function row(layer: import("../model/types.ts").Layer, shapes: ShapeTracker): InspectRow {
  const { ins, outs } = shapes.add(layer);
  const s = layerStats(layer, outs[0]);
  const op = layer.op === "Passthrough" ? `(${String(layer.attrs.onnxOp ?? layer.attrs.op ?? "?")})` : layer.op;
  return {
    name: layer.name,
    op,
    input: ins[0],
    output: outs[0],
    ...s,
    tensors: Object.entries(layer.params).map(([role, t]) => ({
      name: t.name,
      role,
      dtype: t.dtype,
      shape: [...t.shape],
    })),
  };
}

const fmtShape = (s: Shape) => (s ? s.map((d) => (d === null ? "?" : String(d))).join("x") : "?");
/** 1234567 -> "1,234,567" (toLocaleString goes through ICU: seconds for a 100,000-layer table). */
const fmtInt = (n: number) => {
  if (!Number.isSafeInteger(n)) return n.toLocaleString("en-US");
  const s = String(Math.abs(n));
  let out = "";
  for (let i = 0; i < s.length; i++) out += (i > 0 && (s.length - i) % 3 === 0 ? "," : "") + s[i];
  return n < 0 ? "-" + out : out;
};

/** Formats a byte count for people (1.5 MB). */
export function fmtBytes(n: number): string {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** Renders an inspection as a text table. */
export function formatInspection(x: Inspection): string {
  const head = ["layer", "op", "output", "params", "bytes", "MACs"];
  const rows = x.layers.map((
    r,
  ) => [escapeText(r.name), escapeText(r.op), fmtShape(r.output), fmtInt(r.params), fmtBytes(r.bytes), fmtInt(r.macs)]);
  rows.push([
    "total",
    `${x.totals.layers} layers`,
    "",
    fmtInt(x.totals.params),
    fmtBytes(x.totals.bytes),
    fmtInt(x.totals.macs),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ");
  const io = (v: { name: string; shape: Shape }[]) =>
    v.map((i) => `${escapeText(i.name)} ${fmtShape(i.shape)}`).join(", ");
  return [
    `model ${escapeText(x.name) || "(unnamed)"} (${x.format}); inputs: ${io(x.inputs)}; outputs: ${io(x.outputs)}`,
    line(head),
    ...rows.slice(0, -1).map(line),
    widths.map((w) => "-".repeat(w)).join("  "),
    line(rows[rows.length - 1]),
  ].join("\n");
}
