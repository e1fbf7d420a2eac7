/**
 * The compression report: per source layer, the weight shapes, parameters, bits per weight, bytes and
 * multiply-accumulates before and after, the totals, the ratio, and the prune order. Printed as a table, written as
 * JSON, or as a static HTML page with a per-layer bar chart of bytes before and after.
 *
 * @module
 */
import { fmtBytes } from "../app/inspect.ts";
import { layerStats, ShapeTracker } from "../model/shapes.ts";
import type { Layer, ModelHeader } from "../model/types.ts";
import type { PruneStep } from "./prune.ts";
import { escapeText } from "../errors.ts";

/** One source layer's figures. */
export interface ReportLayer {
  name: string;
  op: string;
  /** Weight shape before, and the weight shapes after (two for a factorized FC). */
  shapeBefore: number[] | null;
  shapesAfter: number[][];
  paramsBefore: number;
  paramsAfter: number;
  /** Average stored bits per parameter after (from the file when it is `.cvp`). */
  bitsPerWeight: number;
  /** float32 bytes before; stored bytes after. */
  bytesBefore: number;
  bytesAfter: number;
  macsBefore: number;
  macsAfter: number;
  /** Layers the source layer became (a GAP, a factorized pair). */
  becomes: string[];
}

/** The whole report. */
export interface CompressReport {
  input: string;
  output: string;
  recipe: string;
  layers: ReportLayer[];
  totals: {
    paramsBefore: number;
    paramsAfter: number;
    bytesBefore: number;
    bytesAfter: number;
    macsBefore: number;
    macsAfter: number;
  };
  /** The output file's size in bytes. */
  fileBytes: number;
  /** float32 bytes of every original parameter / the output file's bytes. */
  ratio: number;
  pruneOrder: PruneStep[];
  pruneSkipped: { layer: string; reason: string }[];
  /** Set when a global pruning target was not reached (see `PrunePlan.warning` in ./prune.ts). */
  pruneWarning?: string;
  seconds: number;
  /** What calibration did (`compress --calibration`). */
  calibration?: import("./calibrate_pipeline.ts").CalibrationSummary;
}

interface Seen {
  name: string;
  op: string;
  from: string;
  weight: number[] | null;
  params: number;
  bytes: number;
  macs: number;
  tensors: { name: string; size: number; bits?: number }[];
}

/** A pass-through stage that records each layer's figures (before or after the other stages). */
export class ReportTap {
  readonly seen: Seen[] = [];
  #shapes: ShapeTracker;

  constructor(header: ModelHeader) {
    this.#shapes = new ShapeTracker(header);
  }

  stream(): TransformStream<Layer, Layer> {
    return new TransformStream<Layer, Layer>({
      transform: (layer, c) => {
        const { outs } = this.#shapes.add(layer);
        const s = layerStats(layer, outs[0]);
        this.seen.push({
          name: layer.name,
          op: layer.op,
          from: layer.from ?? layer.name,
          weight: layer.params.weight ? [...layer.params.weight.shape] : null,
          params: s.params,
          bytes: s.bytes,
          macs: s.macs,
          tensors: Object.values(layer.params).map((t) => ({
            name: t.name,
            size: t.size,
            bits: (t.meta.cluster as { bits?: number } | undefined)?.bits,
          })),
        });
        c.enqueue(layer);
      },
    });
  }
}

/** Joins the before and after taps into a report. `tensorBytes` gives stored bytes by tensor name, when known. */
export function buildReport(
  before: ReportTap,
  after: ReportTap,
  info: {
    input: string;
    output: string;
    recipe: string;
    fileBytes: number;
    seconds: number;
    pruneOrder?: PruneStep[];
    pruneSkipped?: { layer: string; reason: string }[];
    tensorBytes?: Map<string, number>;
  },
): CompressReport {
  const layers: ReportLayer[] = [];
  const afterByFrom = new Map<string, Seen[]>();
  for (const a of after.seen) afterByFrom.set(a.from, [...(afterByFrom.get(a.from) ?? []), a]);
  for (const b of before.seen) {
    const as = afterByFrom.get(b.name) ?? [];
    afterByFrom.delete(b.name);
    if (b.params === 0 && as.every((a) => a.params === 0)) continue;
    layers.push(row(b, as, info.tensorBytes));
  }
  const totals = { paramsBefore: 0, paramsAfter: 0, bytesBefore: 0, bytesAfter: 0, macsBefore: 0, macsAfter: 0 };
  for (const l of layers) {
    totals.paramsBefore += l.paramsBefore;
    totals.paramsAfter += l.paramsAfter;
    totals.bytesBefore += l.bytesBefore;
    totals.bytesAfter += l.bytesAfter;
    totals.macsBefore += l.macsBefore;
    totals.macsAfter += l.macsAfter;
  }
  return {
    input: info.input,
    output: info.output,
    recipe: info.recipe,
    layers,
    totals,
    fileBytes: info.fileBytes,
    ratio: info.fileBytes > 0 ? (totals.paramsBefore * 4) / info.fileBytes : 0,
    pruneOrder: info.pruneOrder ?? [],
    pruneSkipped: info.pruneSkipped ?? [],
    seconds: info.seconds,
  };
}

function row(b: Seen, as: Seen[], tensorBytes?: Map<string, number>): ReportLayer {
  let bytesAfter = 0, paramsAfter = 0, macsAfter = 0;
  for (const a of as) {
    paramsAfter += a.params;
    macsAfter += a.macs;
    for (const t of a.tensors) {
      bytesAfter += tensorBytes?.get(t.name) ?? (t.bits !== undefined ? Math.ceil(t.size * t.bits / 8) : t.size * 4);
    }
  }
  return {
    name: b.name,
    op: b.op,
    shapeBefore: b.weight,
    shapesAfter: as.filter((a) => a.weight).map((a) => a.weight!),
    paramsBefore: b.params,
    paramsAfter,
    bitsPerWeight: paramsAfter > 0 ? (bytesAfter * 8) / paramsAfter : 0,
    bytesBefore: b.params * 4,
    bytesAfter,
    macsBefore: b.macs,
    macsAfter,
    becomes: as.map((a) => a.name),
  };
}

const int = (n: number) => n.toLocaleString("en-US");
const shape = (s: number[] | null) => (s ? s.join("x") : "-");

/** The report as a text table. */
export function formatReport(r: CompressReport): string {
  const head = [
    "layer",
    "weight before",
    "weight after",
    "params before",
    "params after",
    "bits/w",
    "bytes before",
    "bytes after",
    "MACs before",
    "MACs after",
  ];
  const rows = r.layers.map((l) => [
    l.name,
    shape(l.shapeBefore),
    l.shapesAfter.map(shape).join(" + ") || "-",
    int(l.paramsBefore),
    int(l.paramsAfter),
    l.bitsPerWeight.toFixed(2),
    fmtBytes(l.bytesBefore),
    fmtBytes(l.bytesAfter),
    int(l.macsBefore),
    int(l.macsAfter),
  ]);
  const t = r.totals;
  const total = [
    "total",
    "",
    "",
    int(t.paramsBefore),
    int(t.paramsAfter),
    t.paramsAfter ? (t.bytesAfter * 8 / t.paramsAfter).toFixed(2) : "-",
    fmtBytes(t.bytesBefore),
    fmtBytes(t.bytesAfter),
    int(t.macsBefore),
    int(t.macsAfter),
  ];
  const widths = head.map((h, i) => Math.max(h.length, total[i].length, ...rows.map((x) => x[i].length)));
  const line = (x: string[]) => x.map((c, i) => (i >= 3 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ");
  const out = [line(head), ...rows.map(line), widths.map((w) => "-".repeat(w)).join("  "), line(total)];
  if (r.pruneOrder.length) {
    out.push("", `prune order (${r.pruneOrder.length} steps): ${compactOrder(r.pruneOrder)}`);
  }
  for (const s of r.pruneSkipped) out.push(`not pruned: ${s.layer} (${s.reason})`);
  if (r.pruneWarning) out.push(`warning: ${r.pruneWarning}`);
  out.push(
    "",
    `${r.input} -> ${r.output} with ${r.recipe}: ${fmtBytes(t.bytesBefore)} of float32 parameters -> ${
      fmtBytes(r.fileBytes)
    } file; ratio ${r.ratio.toFixed(1)}x; MACs ${
      (t.macsAfter / Math.max(1, t.macsBefore) * 100).toFixed(1)
    }% of before; ${r.seconds.toFixed(1)} s`,
  );
  // Layer names come from the model: no control character reaches the terminal.
  return out.map((l) => escapeText(l, Infinity)).join("\n");
}

/** "conv5_3 x4 (512->410), fc6 x2 ..." : runs of steps on the same layer merged. */
function compactOrder(order: PruneStep[]): string {
  const runs: { layer: string; n: number; kept: number }[] = [];
  for (const s of order) {
    const last = runs[runs.length - 1];
    if (last && last.layer === s.layer) {
      last.n++;
      last.kept = s.kept;
    } else runs.push({ layer: s.layer, n: 1, kept: s.kept });
  }
  return runs.map((r) => `${r.layer}${r.n > 1 ? ` x${r.n}` : ""} (->${r.kept})`).join(", ");
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/** The report as a static HTML page with a bar chart of bytes before and after per layer (log scale). */
export function reportHtml(r: CompressReport): string {
  const max = Math.max(1, ...r.layers.map((l) => l.bytesBefore));
  const bar = (v: number, cls: string) => {
    const w = v > 0 ? Math.max(0.5, (Math.log10(v) / Math.log10(max)) * 100) : 0;
    return `<div class="bar ${cls}" style="width:${w.toFixed(1)}%"><span>${esc(fmtBytes(v))}</span></div>`;
  };
  const rows = r.layers.map((l) =>
    `<tr><th>${esc(l.name)}</th><td class="chart">${bar(l.bytesBefore, "before")}${bar(l.bytesAfter, "after")}</td>` +
    `<td>${esc(shape(l.shapeBefore))}</td><td>${esc(l.shapesAfter.map(shape).join(" + "))}</td>` +
    `<td>${l.bitsPerWeight.toFixed(2)}</td><td>${(l.bytesBefore / Math.max(1, l.bytesAfter)).toFixed(1)}x</td></tr>`
  ).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>convpress report: ${esc(r.input)}</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;width:100%}th,td{padding:3px 8px;text-align:left;border-bottom:1px solid #eee;white-space:nowrap}
td.chart{width:50%}.bar{height:11px;margin:2px 0;position:relative}.bar span{position:absolute;left:100%;padding-left:4px;font-size:11px;top:-2px}
.before{background:#b8c4d6}.after{background:#2f6fba}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
</style></head><body>
<h1>convpress compression report</h1>
<p>${esc(r.input)} &rarr; ${esc(r.output)} with recipe <b>${esc(r.recipe)}</b>: ${
    esc(fmtBytes(r.totals.bytesBefore))
  } of
float32 parameters &rarr; ${esc(fmtBytes(r.fileBytes))} file, <b>ratio ${r.ratio.toFixed(1)}x</b>; parameters
${int(r.totals.paramsBefore)} &rarr; ${int(r.totals.paramsAfter)}; MACs ${int(r.totals.macsBefore)} &rarr; ${
    int(r.totals.macsAfter)
  }.</p>
<p class="legend">bytes per layer (log scale):<span class="before"></span>before<span class="after"></span>after</p>
<table><thead><tr><th>layer</th><th>bytes</th><th>weight before</th><th>weight after</th><th>bits/w</th><th>ratio</th></tr></thead>
<tbody>
${rows}
</tbody></table>
${r.pruneOrder.length ? `<p>Prune order: ${esc(compactOrder(r.pruneOrder))}</p>` : ""}
</body></html>
`;
}
