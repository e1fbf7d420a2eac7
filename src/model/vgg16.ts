/**
 * A VGG16-shaped model stream (138,357,544 parameters) with seeded pseudo-random weights, produced on demand:
 * no tensor exists in memory until a consumer pulls its chunks. It is the demo's built-in default and a benchmark
 * input that needs no download.
 *
 * @module
 */
import { Tensor } from "./tensor.ts";
import type { Layer, ModelStream } from "./types.ts";
import { layerStream } from "./types.ts";

const BLOCKS = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];

/**
 * Seeded float32 values, roughly normal with standard deviation `std` (a sum of four uniforms, like trained and
 * freshly initialized weights rather than flat noise), as chunks of at most 1 MiB.
 */
function seeded(seed: number, count: number, std: number): () => AsyncIterable<Uint8Array> {
  return async function* () {
    let s = (seed * 2654435761) >>> 0 || 1;
    const chunk = new Float32Array(1 << 18);
    for (let done = 0; done < count;) {
      const n = Math.min(chunk.length, count - done);
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let j = 0; j < 4; j++) {
          // xorshift32
          s ^= s << 13;
          s ^= s >>> 17;
          s ^= s << 5;
          sum += (s >>> 0) / 4294967296;
        }
        chunk[i] = (sum - 2) * std * Math.sqrt(3); // four uniforms: variance 1/3
      }
      done += n;
      yield new Uint8Array(chunk.buffer, 0, n * 4);
    }
  };
}

function param(name: string, shape: number[], seed: number, scale: number): Tensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromChunks(name, "float32", shape, count * 4, seeded(seed, count, scale));
}

/** The VGG16 layer list (torchvision/Caffe VGG_ILSVRC_16_layers), NCHW input 1x3x224x224. */
export function vgg16Stream(seed = 1): ModelStream {
  const layers: Layer[] = [];
  let x = "data", c = 3, k = 0;
  const add = (l: Omit<Layer, "outputs" | "inputs"> & { inputs?: string[] }) => {
    const out = l.name;
    layers.push({ inputs: [x], outputs: [out], ...l } as Layer);
    x = out;
  };
  BLOCKS.forEach((block, b) => {
    block.forEach((o, i) => {
      const name = `conv${b + 1}_${i + 1}`;
      const std = Math.sqrt(2 / (c * 9)); // He initialisation keeps activations in range through 13 convs
      add({
        name,
        op: "Conv",
        attrs: { kernel: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], dilations: [1, 1], group: 1 },
        params: {
          weight: param(`${name}.weight`, [o, c, 3, 3], ++k, std),
          bias: param(`${name}.bias`, [o], ++k, 0.03),
        },
      });
      add({ name: `relu${b + 1}_${i + 1}`, op: "Relu", attrs: {}, params: {} });
      c = o;
    });
    add({
      name: `pool${b + 1}`,
      op: "MaxPool",
      attrs: { kernel: [2, 2], strides: [2, 2], pads: [0, 0, 0, 0], ceil: false },
      params: {},
    });
  });
  let n = c * 7 * 7;
  for (const [i, o] of [[6, 4096], [7, 4096], [8, 1000]]) {
    const name = `fc${i}`;
    add({
      name,
      op: "FC",
      attrs: {},
      params: {
        weight: param(`${name}.weight`, [o, n], ++k, 0.01),
        bias: param(`${name}.bias`, [o], ++k, 0.03),
      },
    });
    if (i < 8) {
      add({ name: `relu${i}`, op: "Relu", attrs: {}, params: {} });
      add({ name: `drop${i}`, op: "Dropout", attrs: { ratio: 0.5 }, params: {} });
    }
    n = o;
  }
  add({ name: "prob", op: "Softmax", attrs: { axis: 1 }, params: {} });
  async function* gen(): AsyncGenerator<Layer> {
    yield* layers;
  }
  return {
    header: {
      name: "VGG_ILSVRC_16_layers",
      sourceFormat: "onnx",
      inputs: [{ name: "data", dtype: "float32", shape: [1, 3, 224, 224] }],
      outputs: [{ name: "prob", dtype: "float32", shape: [1, 1000] }],
      metadata: { generated_by: `convpress vgg16Stream(seed=${seed})` },
    },
    layers: layerStream(gen()),
  };
}
