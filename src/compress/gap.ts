/**
 * The GAP stage: global average pooling before the first fully-connected layer (thesis step 1). The flatten that
 * feeds the first FC becomes a GlobalAvgPool, and the FC's weights are folded over the spatial positions: each
 * output's new weight for channel c is the sum of its H*W old weights for c, which gives exactly the old output
 * whenever the input is constant over space. VGG16's fc6 goes from 4096x25088 to 4096x512.
 *
 * Chunking contract: layers pass one at a time; a Flatten is held back for one layer, to see whether the first FC
 * consumes it. The fold streams the FC's rows (see ./rows.ts), so fc6 is never materialized.
 *
 * @module
 */
import { type Shape, ShapeTracker } from "../model/shapes.ts";
import type { Layer, ModelHeader } from "../model/types.ts";
import { mapRows } from "./rows.ts";
import type { StageModule } from "./stage.ts";

/** Folds an FC weight [out, C*hw] to [out, C] by summing each channel's hw positions. */
export function foldGap(layer: Layer, channels: number, hw: number): Layer {
  const w = layer.params.weight;
  const out = w.shape[0];
  const weight = mapRows(w, channels * hw, [out, channels], (row, o) => {
    for (let c = 0; c < channels; c++) {
      let s = 0;
      for (let j = 0; j < hw; j++) s += row[c * hw + j];
      o[c] = s;
    }
    return true;
  });
  return { ...layer, params: { ...layer.params, weight }, origin: undefined, from: layer.from ?? layer.name };
}

function spatial(s: Shape): { c: number; hw: number } | undefined {
  if (!s || s.length !== 4 || typeof s[1] !== "number" || typeof s[2] !== "number" || typeof s[3] !== "number") {
    return undefined;
  }
  return { c: s[1], hw: s[2] * s[3] };
}

/** Creates the GAP stage for a model with this header. */
export function gapStage(header: ModelHeader): TransformStream<Layer, Layer> {
  const shapes = new ShapeTracker(header);
  let done = false;
  let held: { layer: Layer; input: Shape } | undefined;
  return new TransformStream<Layer, Layer>({
    transform(layer, controller) {
      const { ins } = shapes.add(layer);
      if (done) return controller.enqueue(layer);
      if (held) {
        const flat = held;
        held = undefined;
        const sp = spatial(flat.input);
        if (layer.op === "FC" && layer.inputs[0] === flat.layer.outputs[0] && sp && sp.hw > 1) {
          done = true;
          controller.enqueue({
            name: `${layer.name}_gap`,
            op: "GlobalAvgPool",
            attrs: {},
            inputs: flat.layer.inputs,
            outputs: flat.layer.outputs,
            params: {},
            from: flat.layer.name,
          });
          return controller.enqueue(foldGap(layer, sp.c, sp.hw));
        }
        controller.enqueue(flat.layer);
      }
      if (layer.op === "Flatten" && ((layer.attrs.axis as number | undefined) ?? 1) === 1) {
        held = { layer, input: ins[0] };
        return;
      }
      if (layer.op === "FC") {
        done = true;
        const sp = spatial(ins[0]);
        if (!sp || sp.hw === 1) return controller.enqueue(layer);
        const gap = `${layer.name}_gap`;
        controller.enqueue({
          name: gap,
          op: "GlobalAvgPool",
          attrs: {},
          inputs: layer.inputs,
          outputs: [gap],
          params: {},
        });
        return controller.enqueue({ ...foldGap(layer, sp.c, sp.hw), inputs: [gap] });
      }
      controller.enqueue(layer);
    },
    flush(controller) {
      if (held) controller.enqueue(held.layer);
    },
  });
}

/** The GAP stage: `{ "gap": {} }`, `--gap`. */
export const gap: StageModule<"gap", Record<string, never>> = {
  kind: "gap",
  flag: { name: "gap", type: "boolean", help: "global average pooling before the first FC, with its weights folded" },
  validate: () => undefined,
  fromFlags: () => ({}),
  create: (_options, ctx) => gapStage(ctx.model.header),
};
