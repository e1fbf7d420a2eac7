/**
 * Small models with clustered weights for the compressed-output tests: a clustered tensor as the cluster stage hands
 * it to the `.cvp` writer (`meta.cluster`), and Conv -> Relu -> Conv -> FC over such tensors.
 *
 * @module
 */
import { Tensor } from "../src/model/tensor.ts";
import { type Layer, layerStream, type ModelHeader, type ModelStream } from "../src/model/types.ts";
import { roundBf16, roundF16 } from "../formats/cvp/sample_model.ts";
import type { Clustering } from "../formats/cvp/clustered.ts";

/** Options of {@link clusteredTensor}. */
export interface ClusteredTensorOptions {
  /** The centres (default: pseudo-random values rounded to `repr`). */
  centers?: number[];
  repr?: "fp16" | "bf16";
  /** Fraction of elements that take centre 0, which is then +0.0. */
  zeros?: number;
  /** A `.cvp` writer hint (`meta.cvp`), to force an encoding. */
  hint?: Record<string, unknown>;
}

/** A clustered tensor of `k` centres (`centers` given or pseudo-random fp16 values). */
export function clusteredTensor(
  name: string,
  shape: number[],
  k: number,
  r: () => number,
  opts: ClusteredTensorOptions = {},
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const repr = opts.repr ?? "fp16";
  const round = repr === "fp16" ? roundF16 : roundBf16;
  const centers = Float32Array.from(opts.centers ?? Array.from({ length: k }, () => round((r() - 0.5) * 0.6)));
  if (opts.zeros !== undefined) centers[0] = 0;
  const indices = k > 256 ? new Uint16Array(n) : new Uint8Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    indices[i] = opts.zeros !== undefined && r() < opts.zeros ? 0 : Math.floor(r() * k);
    values[i] = centers[indices[i]];
  }
  const t = Tensor.fromFloat32(name, shape, values);
  t.meta.cluster = { centers, indices, repr } satisfies Clustering;
  if (opts.hint) t.meta.cvp = opts.hint;
  return t;
}

/** A float32 tensor of pseudo-random values in [0, 1). */
export function floats(name: string, shape: number[], r: () => number): Tensor {
  return Tensor.fromFloat32(name, shape, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r()));
}

/** Conv(c1, 2->6) -> Relu -> Conv(c2, 6->4) -> FC(fc, 144->40) on a [1, 2, 6, 6] input; `make` makes each weight. */
export function smallModel(make: (name: string, shape: number[]) => Tensor, r: () => number): ModelStream {
  const conv = (name: string, x: string, o: number, i: number): Layer => ({
    name,
    op: "Conv",
    attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
    inputs: [x],
    outputs: [name],
    params: { weight: make(`${name}.weight`, [o, i, 3, 3]), bias: floats(`${name}.bias`, [o], r) },
  });
  const layers: Layer[] = [
    conv("c1", "x", 6, 2),
    { name: "relu", op: "Relu", attrs: {}, inputs: ["c1"], outputs: ["r1"], params: {} },
    conv("c2", "r1", 4, 6),
    {
      name: "fc",
      op: "FC",
      attrs: {},
      inputs: ["c2"],
      outputs: ["y"],
      params: { weight: make("fc.weight", [40, 4 * 6 * 6]), bias: floats("fc.bias", [40], r) },
    },
  ];
  const header: ModelHeader = {
    name: "clustered",
    sourceFormat: "cvp",
    inputs: [{ name: "x", dtype: "float32", shape: [1, 2, 6, 6] }],
    outputs: [{ name: "y", dtype: "float32", shape: [1, 40] }],
    metadata: {},
  };
  return {
    header,
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  };
}
