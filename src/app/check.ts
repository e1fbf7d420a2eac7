/**
 * Pre-flight check: which layers, ops and attributes of a model a target format cannot express, all of them at
 * once (a conversion stops at the first). Each layer is tried against the target writer's own mapping table
 * (ONNX and Caffe convert the layer for real, without writing; TF.js by its op tables and the writer's known
 * limits), so the check and the conversion cannot disagree on ops they share.
 *
 * ```ts
 * const r = await checkModel("model.json", "caffe");
 * console.log(formatCheck(r)); // exit code 3 when r.problems.length
 * ```
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { formatFromExtension, openModel, type OpenOptions } from "./convert.ts";
import type { FormatName, Layer } from "../model/types.ts";
import { type Shape, ShapeTracker } from "../model/shapes.ts";
import { attrsOf } from "../ops/registry.ts";
import type { ConvAttrs } from "../ops/nn.ts";
import { exportLayer } from "../../formats/onnx/export_node.ts";
import { toCaffeRecords } from "../../formats/caffe/from_canonical.ts";
import { GRAPH_OPS } from "../../formats/tfjs/graph_ops.ts";

/** One layer the target cannot express. */
export interface CheckProblem {
  layer: string;
  /** The canonical op, or the source format's own op for a layer read as pass-through. */
  op: string;
  why: string;
}

/** What {@link checkModel} found. */
export interface CheckReport {
  file: string;
  source: FormatName;
  target: FormatName;
  layers: number;
  problems: CheckProblem[];
  /** Problems per op, most frequent first. */
  counts: [string, number][];
}

function nativeOp(layer: Layer): string {
  return layer.op === "Passthrough" ? String(layer.attrs.onnxOp || layer.attrs.type || "Passthrough") : layer.op;
}

function tfjsProblem(layer: Layer): string | undefined {
  if (layer.op === "Passthrough") return layer.origin?.format === "tfjs" ? undefined : "no TF.js op";
  if (!GRAPH_OPS[layer.op]) return "no TF.js op";
  if (layer.op === "ConvTranspose") {
    const a = attrsOf<ConvAttrs>(layer);
    if (a.group !== 1 || a.dilations.some((d) => d !== 1)) return "grouped or dilated transposed convolution";
  }
  return undefined;
}

/** Tries one layer against the target's mapping; returns why it cannot be expressed, or undefined. */
function problemOf(layer: Layer, target: FormatName, ins: Shape[], outs: Shape[]): string | undefined {
  const reason = typeof layer.attrs.reason === "string" ? layer.attrs.reason : undefined;
  try {
    switch (target) {
      case "onnx":
        if (layer.op === "Passthrough" && layer.origin?.format === "onnx") return undefined;
        exportLayer(layer, 13, ins[0]);
        return undefined;
      case "caffe":
        toCaffeRecords(layer, ins[0], outs);
        return undefined;
      case "tfjs": {
        const p = tfjsProblem(layer);
        return p && reason ? reason : p;
      }
      case "cvp":
        return undefined;
    }
  } catch (e) {
    if (e instanceof ConvpressError && e.code === "unsupported") return reason ?? e.message;
    throw e;
  }
}

/** Checks every layer of the model at `path` against format `target`. */
export async function checkModel(path: string, target: FormatName, options: OpenOptions = {}): Promise<CheckReport> {
  // Lenient: a TF.js node the reader cannot map becomes a pass-through layer instead of stopping the read.
  let model;
  try {
    model = await openModel(path, { ...options, lenient: true } as OpenOptions);
  } catch (e) {
    // What no reading can get past (a TF `while` loop is a cycle in the graph): one problem, for the whole model.
    if (!(e instanceof ConvpressError) || e.code !== "unsupported") throw e;
    const op = /cycle/.test(e.message) ? "control flow (while loop)" : "(model)";
    const source = options.format ?? formatFromExtension(path) ?? "onnx";
    return {
      file: path,
      source,
      target,
      layers: 0,
      problems: [{ layer: e.layer ?? "?", op, why: e.message }],
      counts: [[op, 1]],
    };
  }
  const tracker = new ShapeTracker(model.header);
  const problems: CheckProblem[] = [];
  let layers = 0;
  try {
    for await (const layer of model.layers) {
      layers++;
      const { ins, outs } = tracker.add(layer);
      const why = problemOf(layer, target, ins, outs);
      if (why) problems.push({ layer: layer.name, op: nativeOp(layer), why });
    }
  } finally {
    model.close?.();
  }
  const byOp = new Map<string, number>();
  for (const p of problems) byOp.set(p.op, (byOp.get(p.op) ?? 0) + 1);
  const counts = [...byOp.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return { file: path, source: model.header.sourceFormat, target, layers, problems, counts };
}

/** The report as the CLI prints it: a line per op with its count and first layer, then every layer. */
export function formatCheck(r: CheckReport): string {
  if (!r.problems.length) return `${r.file} (${r.source}) -> ${r.target}: all ${r.layers} layers can be expressed\n`;
  const lines = [
    `${r.file} (${r.source}) -> ${r.target}: ${r.problems.length} of ${r.layers} layers cannot be expressed`,
    "",
    "op                        count  first layer",
  ];
  for (const [op, n] of r.counts) {
    const first = r.problems.find((p) => p.op === op)!;
    lines.push(`${op.padEnd(24)}  ${String(n).padStart(5)}  ${first.layer}`);
  }
  lines.push("", "layers:");
  for (const p of r.problems) lines.push(`  '${p.layer}' (${p.op}): ${p.why}`);
  return lines.join("\n") + "\n";
}
