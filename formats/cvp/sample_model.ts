/**
 * A small deterministic model that exercises every `.cvp` encoding, for tests and the test vectors: raw float32,
 * f16, bf16, clustered (packed and Huffman, fp16 and bf16 centres, k = 1 and k = 65536 included), sparse clustered
 * with long zero runs, int64 raw, an empty tensor, non-finite attributes and binary origin data.
 *
 * @module
 */
import type { Layer, ModelHeader, ModelStream } from "../../src/model/types.ts";
import { layerStream } from "../../src/model/types.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from "../../src/model/float16.ts";
import type { Clustering } from "./clustered.ts";
import type { TensorHint } from "./writer.ts";

/** mulberry32: a small deterministic PRNG. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Rounds to binary16 / bfloat16. */
export const roundF16 = (v: number) => float16ToFloat32(float32ToFloat16(v));
export const roundBf16 = (v: number) => bfloat16ToFloat32(float32ToBfloat16(v));

function clustered(
  name: string,
  shape: number[],
  k: number,
  repr: "fp16" | "bf16",
  r: () => number,
  opts: { zeroFrac?: number; skew?: boolean; hint?: TensorHint } = {},
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const round = repr === "fp16" ? roundF16 : roundBf16;
  const centers = new Float32Array(k);
  for (let i = 0; i < k; i++) centers[i] = round((i - k / 2) / Math.max(1, k) + 0.001 * (i + 1));
  let zero = -1;
  if (opts.zeroFrac !== undefined) {
    zero = 0;
    centers[0] = 0;
  }
  const indices = k > 256 ? new Uint16Array(n) : new Uint8Array(n);
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let c: number;
    if (zero >= 0 && r() < opts.zeroFrac!) c = zero;
    else if (opts.skew) c = Math.min(k - 1, Math.floor(-Math.log(1 - r()) * 2));
    else c = Math.floor(r() * k);
    if (zero >= 0 && c === zero && r() >= opts.zeroFrac!) c = Math.min(k - 1, 1);
    indices[i] = c;
    values[i] = centers[c];
  }
  const t = Tensor.fromFloat32(name, shape, values);
  t.meta.cluster = { centers, indices, repr } satisfies Clustering;
  if (opts.hint) t.meta.cvp = opts.hint;
  return t;
}

function floats(name: string, shape: number[], r: () => number, hint?: TensorHint): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) v[i] = (r() - 0.5) * 0.2;
  if (n > 3) {
    v[0] = 0;
    v[1] = -0;
    v[2] = 1e-30; // a float32 subnormal-range value binary16 flushes to zero
  }
  const t = Tensor.fromFloat32(name, shape, v);
  if (hint) t.meta.cvp = hint;
  return t;
}

/** The sample model's layers (fresh tensors on each call); see {@link sampleModel} for `small`. */
export function sampleLayers(small = false): Layer[] {
  const r = rng(42);
  return [
    {
      name: "conv1",
      op: "Conv",
      attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
      inputs: ["data"],
      outputs: ["conv1"],
      params: { weight: floats("conv1.weight", [4, 3, 3, 3], r), bias: floats("conv1.bias", [4], r) },
    },
    { name: "clip1", op: "Clip", attrs: { min: -Infinity, max: 6 }, inputs: ["conv1"], outputs: ["clip1"], params: {} },
    {
      name: "conv2",
      op: "Conv",
      attrs: { kernel: [3, 3], strides: [2, 2], pads: [0, 0, 0, 0], dilations: [1, 1], group: 1 },
      inputs: ["clip1"],
      outputs: ["conv2"],
      params: {
        weight: floats("conv2.weight", [8, 4, 3, 3], r, { encoding: "f16" }),
        bias: floats("conv2.bias", [8], r, { encoding: "bf16" }),
      },
      origin: { format: "onnx", data: { nodes: [Uint8Array.of(1, 2, 3, 255)], $odd: "dollar key" } },
    },
    {
      name: "fc1",
      op: "FC",
      attrs: {},
      inputs: ["conv2"],
      outputs: ["fc1"],
      params: {
        weight: clustered("fc1.weight", [16, 72], 16, "fp16", r, { hint: { encoding: "cluster", coding: "packed" } }),
        bias: clustered("fc1.bias", [16], 1, "fp16", r, { hint: { encoding: "cluster" } }),
      },
    },
    {
      name: "fc2",
      op: "FC",
      attrs: {},
      inputs: ["fc1"],
      outputs: ["fc2"],
      params: {
        weight: clustered("fc2.weight", [32, 16], 32, "bf16", r, {
          skew: true,
          hint: { encoding: "cluster", coding: "huffman" },
        }),
        bias: clustered("fc2.bias", [32], small ? 300 : 65536, "fp16", r, { hint: { encoding: "cluster" } }),
      },
    },
    {
      name: "fc3",
      op: "FC",
      attrs: {},
      inputs: ["fc2"],
      outputs: ["fc3"],
      params: {
        weight: clustered("fc3.weight", [10, 400], 6, "fp16", r, {
          zeroFrac: 0.97,
          hint: { encoding: "cluster-sparse", coding: "packed", gapBits: 3 },
        }),
        bias: clustered("fc3.bias", [10], 4, "fp16", r, { zeroFrac: 0.5 }),
      },
    },
    {
      name: "reshape",
      op: "Reshape",
      attrs: { shape: [1, -1] },
      inputs: ["fc3"],
      outputs: ["out"],
      params: {
        shape: Tensor.fromInt64("reshape.shape", [2], [1, -1]),
        empty: Tensor.fromFloat32("reshape.empty", [0, 3], new Float32Array(0)),
      },
    },
  ];
}

/** The sample model's header. */
export function sampleHeader(): ModelHeader {
  return {
    name: "sample",
    sourceFormat: "onnx",
    inputs: [{ name: "data", dtype: "float32", shape: [null, 3, 8, 8] }],
    outputs: [{ name: "out", dtype: "float32", shape: [1, 10] }],
    metadata: { producer_name: "convpress tests", note: "ünïcode" },
  };
}

/** The sample model as a stream (`small`: k = 300 instead of 65536 for one tensor, for byte-by-byte tests). */
export function sampleModel(small = false): ModelStream {
  const layers = sampleLayers(small);
  return {
    header: sampleHeader(),
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  };
}
