/**
 * The fold stage: each inference-time BatchNorm (or per-channel Scale) that directly follows a Conv or FC is folded
 * into that layer's weights and bias, as every deployment tool does before quantizing. With r = scale / sqrt(var + eps),
 * BN(W x + b) = (r W) x + (r (b - mean) + beta), so the result is the same function (up to float32 rounding), with
 * one layer and four vectors fewer per BatchNorm. It comes first in the recipe: pruning, SVD and clustering then see
 * the folded weights, and a size target spends the bytes the BatchNorm parameters took (MobileNetV2: 51 of them).
 *
 * Chunking contract: layers pass one at a time; a Conv or FC is held back for one layer, to see whether a BatchNorm
 * reads it (./affine_pairs.ts: only when that BatchNorm alone reads it; a later reader of a folded-away value is an
 * error naming both layers). The scaled weight streams row by row (see ./rows.ts).
 *
 * @module
 */
import { Tensor } from "../model/tensor.ts";
import { batchNormAffine } from "../ops/nn.ts";
import type { Layer, ModelHeader } from "../model/types.ts";
import { affinePairStage } from "./affine_pairs.ts";
import { mapRows } from "./rows.ts";
import type { StageModule } from "./stage.ts";

/** The per-output-channel multiplier and addend of a BatchNorm or Scale layer, or undefined when it cannot fold. */
async function affineOf(layer: Layer): Promise<{ mul: Float32Array; add: Float32Array } | undefined> {
  const p = layer.params;
  if (layer.op === "BatchNorm") {
    if (!p.scale || !p.bias || !p.mean || !p.var) return undefined;
    const [s, b, m, v] = await Promise.all([p.scale.float32(), p.bias.float32(), p.mean.float32(), p.var.float32()]);
    return batchNormAffine(s, b, m, v, (layer.attrs.epsilon as number | undefined) ?? 1e-5);
  }
  if (layer.op === "Scale" && ((layer.attrs.axis as number | undefined) ?? 1) === 1 && p.scale) {
    const mul = await p.scale.float32();
    return { mul, add: p.bias ? await p.bias.float32() : new Float32Array(mul.length) };
  }
  return undefined;
}

/** `layer` (Conv or FC) with `bn` folded in, or undefined when the shapes do not match. */
export async function foldAffine(layer: Layer, bn: Layer): Promise<Layer | undefined> {
  const w = layer.params.weight;
  const affine = await affineOf(bn);
  if (!w || !affine || affine.mul.length !== w.shape[0]) return undefined;
  const { mul, add } = affine;
  const out = w.shape[0];
  const rowLen = w.size / out;
  const weight = mapRows(w, rowLen, w.shape, (row, o, i) => {
    const r = mul[i];
    for (let j = 0; j < rowLen; j++) o[j] = row[j] * r;
    return true;
  });
  const b = layer.params.bias ? await layer.params.bias.float32() : new Float32Array(out);
  const bias = new Float32Array(out);
  for (let i = 0; i < out; i++) bias[i] = b[i] * mul[i] + add[i];
  return {
    ...layer,
    outputs: [...bn.outputs],
    params: {
      ...layer.params,
      weight,
      bias: Tensor.fromFloat32(layer.params.bias?.name ?? `${layer.name}.bias`, [out], bias),
    },
    origin: undefined,
    from: layer.from ?? layer.name,
  };
}

/** Creates the fold stage for a model with this header. */
export function foldStage(header: ModelHeader): TransformStream<Layer, Layer> {
  return affinePairStage(header, {
    rewrite: async (layer, bn) => {
      const folded = await foldAffine(layer, bn);
      return folded && [folded];
    },
    conflict: (layer, bn, value, reader) =>
      `fold: '${layer}' was folded into BatchNorm '${bn}', but its output '${value}' is also read by '${reader}'; compress without the fold stage (--fold-bn)`,
  });
}

/** The fold stage: `{ "fold": {} }`, `--fold-bn`. */
export const fold: StageModule<"fold", Record<string, never>> = {
  kind: "fold",
  flag: {
    name: "fold-bn",
    type: "boolean",
    help: "fold each BatchNorm or Scale into the Conv or FC before it (the same function, fewer parameters)",
  },
  validate: () => undefined,
  fromFlags: () => ({}),
  create: (_options, ctx) => foldStage(ctx.model.header),
};
