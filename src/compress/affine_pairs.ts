/**
 * The stream mechanism the fold and channel-scales stages share: a Conv or FC whose output only the BatchNorm (or
 * per-channel Scale) right after it reads is held back one layer and the pair handed to a rewrite; a later reader of
 * the rewritten value is an error naming both layers, never a model that computes something else.
 *
 * Chunking contract: one layer held at a time; the rewrite decides what it streams. Whether the value has other
 * readers comes from the header's wiring when the reader gives it, else is checked as the rest of the stream passes.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { structureFromHeader, useCounts } from "../eval/structure.ts";
import type { Layer, ModelHeader } from "../model/types.ts";

/** What a stage over Conv/FC + BatchNorm pairs supplies. */
export interface AffinePairRewrite {
  /** Layers that may be rewritten, besides being a Conv or FC with a weight whose one output nothing else reads. */
  accept?: (layer: Layer) => boolean;
  /** The layers that replace `layer` followed by `bn`, or undefined to leave both as they are. */
  rewrite: (layer: Layer, bn: Layer) => Promise<Layer[] | undefined>;
  /** The error when `reader` also reads `value`, the output of `layer` that `bn` took over. */
  conflict: (layer: string, bn: string, value: string, reader: string) => string;
}

/** The stream stage rewriting each Conv/FC + BatchNorm pair of a model with this header (see the module doc). */
export function affinePairStage(header: ModelHeader, r: AffinePairRewrite): TransformStream<Layer, Layer> {
  const structure = structureFromHeader(header);
  const uses = structure ? useCounts(structure) : undefined;
  const modelOutputs = new Set(header.outputs.map((o) => o.name));
  /** Rewritten values, with the layers that made them and took them over. */
  const taken = new Map<string, { layer: string; bn: string }>();
  let held: Layer | undefined;
  const check = (layer: Layer) => {
    for (const i of layer.inputs) {
      const t = taken.get(i);
      if (t) throw new ConvpressError("unsupported", r.conflict(t.layer, t.bn, i, layer.name));
    }
  };
  const candidate = (l: Layer) =>
    (l.op === "Conv" || l.op === "FC") && l.outputs.length === 1 && !!l.params.weight &&
    !modelOutputs.has(l.outputs[0]) && (uses === undefined || uses.get(l.outputs[0]) === 1) &&
    (r.accept?.(l) ?? true);
  return new TransformStream<Layer, Layer>({
    async transform(layer, controller) {
      check(layer);
      if (held) {
        const prev = held;
        held = undefined;
        if (
          (layer.op === "BatchNorm" || layer.op === "Scale") && layer.inputs.length === 1 &&
          layer.inputs[0] === prev.outputs[0] && layer.outputs.length === 1
        ) {
          const out = await r.rewrite(prev, layer);
          if (out) {
            taken.set(prev.outputs[0], { layer: prev.name, bn: layer.name });
            for (const l of out) controller.enqueue(l);
            return;
          }
        }
        controller.enqueue(prev);
      }
      if (candidate(layer)) held = layer;
      else controller.enqueue(layer);
    },
    flush(controller) {
      if (held) controller.enqueue(held);
    },
  });
}
