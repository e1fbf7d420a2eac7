/**
 * The channel-scales stage: each Conv or FC whose output only a BatchNorm (or per-channel Scale) reads gets its
 * output channels' scales moved into that BatchNorm, so clustering, which shares one codebook per tensor, sees every
 * channel over the same range. With s_c = max |W_c| (1 for an all-zero row), W_c / s_c goes into the layer, its bias
 * b_c / s_c, and the BatchNorm takes gamma_c * s_c and mean_c / s_c:
 *   gamma s (y/s + b/s - mean/s) / sqrt(var + eps) + beta = gamma (y + b - mean) / sqrt(var + eps) + beta,
 * the same function (up to float32 rounding) with the same parameter count, and the BatchNorm stays a BatchNorm, so
 * every writer and runtime takes it. A Scale takes scale_c * s_c. With `batchNorm: "affine"` the BatchNorm becomes a
 * Scale (mul_c s_c, mul_c b_c + add_c) and the layer loses its bias: the bytes of `--fold-bn` without its widened
 * ranges.
 *
 * Why: MobileNet-style networks put a BatchNorm after every convolution, and their channels' weight ranges differ by
 * orders of magnitude (the BatchNorm rescales them); a per-tensor codebook spends its centres on the widest channels
 * and rounds the narrow ones to a few values. Per-channel scales are what post-training quantizers use there
 * (Nagel et al. 2021, "A White Paper on Neural Network Quantization", section 3.1); here they cost no bytes, since
 * the BatchNorm's four vectors are stored anyway. It comes right before clustering: pruning scores filters by their
 * norms, which the scales would equalize.
 *
 * Chunking contract: as the fold stage (./affine_pairs.ts): a Conv or FC is held back one layer; the weight streams twice
 * (once for the row maxima, once scaled when pulled), one row at a time (./rows.ts).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { Tensor } from "../model/tensor.ts";
import type { Layer, ModelHeader } from "../model/types.ts";
import { batchNormAffine } from "../ops/nn.ts";
import { affinePairStage } from "./affine_pairs.ts";
import { mapRows } from "./rows.ts";
import type { StageModule } from "./stage.ts";

/** Options of the channel-scales stage. */
export interface ChannelScalesOptions {
  /**
   * `"keep"` (default): the BatchNorm stays a BatchNorm with the scales in gamma and mean. `"affine"`: it becomes a
   * per-channel Scale (multiplier and addend, the layer's bias folded in): two vectors instead of four and the
   * layer's bias, as with `--fold-bn`, while the weights keep unit ranges. ONNX, TF.js graph models, Caffe and
   * `.cvp` hold a Scale; a Keras layers-model does not.
   */
  batchNorm?: "keep" | "affine";
}

/** max |row| of each row of a float32 tensor, streaming (0 for an all-zero row). */
export async function rowMaxAbs(w: Tensor, rowLen: number): Promise<Float32Array> {
  const rows = w.size / rowLen;
  const max = new Float32Array(rows);
  const scan = mapRows(w, rowLen, [0, rowLen], (row, _o, r) => {
    let m = 0;
    for (let j = 0; j < rowLen; j++) {
      const a = Math.abs(row[j]);
      if (a > m) m = a;
    }
    max[r] = m;
    return false;
  });
  for await (const _ of scan.chunks()) { /* the row function records the maxima */ }
  return max;
}

/** The per-channel vector roles of the BatchNorm or Scale `bn` that the scales move into, or undefined. */
function absorber(bn: Layer, channels: number): "BatchNorm" | "Scale" | undefined {
  const p = bn.params;
  const fits = (t: Tensor | undefined) => !!t && t.size === channels;
  if (bn.op === "BatchNorm" && fits(p.scale) && fits(p.mean) && fits(p.var) && fits(p.bias)) return "BatchNorm";
  if (bn.op === "Scale" && ((bn.attrs.axis as number | undefined) ?? 1) === 1 && fits(p.scale)) return "Scale";
  return undefined;
}

/** `layer` with unit-range output channels and `bn` with their scales, or undefined when `bn` cannot take them. */
export async function moveScales(
  layer: Layer,
  bn: Layer,
  mode: ChannelScalesOptions["batchNorm"] = "keep",
): Promise<[Layer, Layer] | undefined> {
  const w = layer.params.weight;
  if (!w || w.shape.length < 2) return undefined;
  const out = w.shape[0];
  const kind = absorber(bn, out);
  if (!kind) return undefined;
  const rowLen = w.size / out;
  const s = await rowMaxAbs(w, rowLen);
  for (let i = 0; i < out; i++) if (!(s[i] > 0) || !Number.isFinite(s[i])) s[i] = 1;
  const weight = mapRows(w, rowLen, w.shape, (row, o, i) => {
    const r = 1 / s[i];
    for (let j = 0; j < rowLen; j++) o[j] = row[j] * r;
    return true;
  });
  const scaled = (t: Tensor, f: (v: number, i: number) => number) =>
    t.float32().then((v) => Tensor.fromFloat32(t.name, t.shape, v.map(f)));
  const params: Record<string, Tensor> = { ...layer.params, weight };
  if (kind === "BatchNorm" && mode === "affine") {
    // mul (W x + b) + add = (mul s) (W/s) x + (mul b + add): a Scale, and no bias on the layer.
    const p = bn.params;
    const [g, be, m, v] = await Promise.all([p.scale.float32(), p.bias.float32(), p.mean.float32(), p.var.float32()]);
    const { mul, add } = batchNormAffine(g, be, m, v, (bn.attrs.epsilon as number | undefined) ?? 1e-5);
    const b = layer.params.bias ? await layer.params.bias.float32() : new Float32Array(out);
    const bias = add.map((a, i) => a + mul[i] * b[i]);
    delete params.bias;
    const scale: Layer = {
      name: bn.name,
      op: "Scale",
      attrs: { axis: 1 },
      inputs: [...bn.inputs],
      outputs: [...bn.outputs],
      params: {
        scale: Tensor.fromFloat32(p.scale.name, [out], mul.map((x, i) => x * s[i])),
        bias: Tensor.fromFloat32(p.bias.name, [out], bias),
      },
      from: bn.from ?? bn.name,
    };
    return [{ ...layer, params, origin: undefined, from: layer.from ?? layer.name }, scale];
  }
  if (layer.params.bias) params.bias = await scaled(layer.params.bias, (v, i) => v / s[i]);
  const bnParams: Record<string, Tensor> = { ...bn.params };
  bnParams.scale = await scaled(bn.params.scale, (v, i) => v * s[i]);
  if (kind === "BatchNorm") bnParams.mean = await scaled(bn.params.mean, (v, i) => v / s[i]);
  return [
    { ...layer, params, origin: undefined, from: layer.from ?? layer.name },
    { ...bn, params: bnParams, origin: undefined, from: bn.from ?? bn.name },
  ];
}

/** Creates the channel-scales stage for a model with this header. */
export function channelScalesStage(
  header: ModelHeader,
  options: ChannelScalesOptions = {},
): TransformStream<Layer, Layer> {
  return affinePairStage(header, {
    accept: (l) => l.params.weight.dtype === "float32",
    rewrite: (layer, bn) => moveScales(layer, bn, options.batchNorm),
    conflict: (layer, bn, value, reader) =>
      `channel scales: '${layer}' gave its channel scales to '${bn}', but its output '${value}' is also read by '${reader}'; compress without --channel-scales`,
  });
}

/** The channel-scales stage: `{ "channelScales": { "batchNorm"?: "keep" | "affine" } }`, `--channel-scales MODE`. */
export const channelScales: StageModule<"channelScales", ChannelScalesOptions> = {
  kind: "channelScales",
  flag: {
    name: "channel-scales",
    type: "string",
    help: "keep|affine: move each Conv/FC output channel's scale into the BatchNorm after it (affine: as a Scale)",
  },
  validate: (o) => {
    if (typeof o !== "object" || o === null || Array.isArray(o)) return "must be an object";
    const extra = Object.keys(o).filter((k) => k !== "batchNorm");
    if (extra.length) return `unknown option '${extra[0]}'`;
    const m = (o as ChannelScalesOptions).batchNorm;
    return m === undefined || m === "keep" || m === "affine" ? undefined : `batchNorm must be "keep" or "affine"`;
  },
  fromFlags: (v) => {
    if (v !== "keep" && v !== "affine") {
      throw new ConvpressError("usage", `Invalid --channel-scales '${v}': expected keep or affine`);
    }
    return { batchNorm: v };
  },
  // Only the wiring is wanted when scanning: the stage changes values, never wiring, so it passes layers through.
  create: (options, ctx) =>
    ctx.structureOnly ? new TransformStream<Layer, Layer>() : channelScalesStage(ctx.model.header, options),
};
