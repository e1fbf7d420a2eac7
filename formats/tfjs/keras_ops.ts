/**
 * The Keras side of the TF.js writer: a layers-model topology (Keras JSON, `Sequential` for a plain chain,
 * `Model` otherwise), one table entry per canonical op that has a tfjs-layers layer ({@link KERAS_OPS}). A layer
 * whose op has no entry, or whose entry declines it (a Softmax off the channel axis, a broadcasting Add), makes the
 * model a graph-model (./graph_ops.ts builds that side).
 *
 * Layer parameters are written through the shared context (./emit_context.ts) under the names the GraphDef side
 * uses too, so a model's shards are the same whichever kind is chosen at the end.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Layer, ModelHeader, ValueInfo } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { PadAttrs } from "../../src/ops/tensor_ops.ts";
import {
  cleanName,
  convPlan,
  type EmitContext,
  keepsBatch,
  poolPlan,
  softmaxOnLastAxis,
  spatialPads,
  toNhwcShape,
} from "./emit_context.ts";
import { oihwToDepthwise, oihwToHwio } from "./layout.ts";
import type { KerasLayerJson } from "./types.ts";

/** One Keras layer as collected (inbound: the producing layers' names). */
interface KerasLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound: string[];
}

/**
 * A Keras table entry: adds the layers for `l` (its unique name `name`). Returning `false` declines the layer: it
 * has no Keras form, and the model becomes a graph-model.
 */
export type KerasEntry = (k: KerasEmitter, l: Layer, name: string) => Promise<boolean | void> | boolean | void;

/** Collects a layers-model topology. */
export class KerasEmitter {
  readonly ctx: EmitContext;
  readonly #layers: KerasLayer[] = [];
  /** Canonical value -> the Keras layer producing it. */
  readonly #producers = new Map<string, string>();

  constructor(ctx: EmitContext) {
    this.ctx = ctx;
  }

  /** Adds a Keras layer reading canonical values `inputs`. */
  layer(class_name: string, name: string, config: Record<string, unknown>, inputs: string[]): void {
    if (!this.ctx.kerasLive) return;
    const inbound = inputs.map((v) => {
      const k = this.#producers.get(v);
      if (k === undefined) throw new Error(`no keras producer for ${v}`);
      return k;
    });
    this.#layers.push({ name, class_name, config: { name, trainable: true, ...config }, inbound });
  }

  /** Records that canonical value `v` is produced by Keras layer `layer`. */
  produces(v: string, layer: string | undefined): void {
    if (layer !== undefined) this.#producers.set(v, layer);
  }

  /** The Keras layer producing canonical value `v`. */
  producerOf(v: string): string | undefined {
    return this.#producers.get(v);
  }

  /** Adds an in-between layer (`conv1_pad`) reading `input`; returns the key of the value it produces. */
  derivedLayer(class_name: string, name: string, config: Record<string, unknown>, input: string): string {
    this.ctx.reserveName(name);
    this.layer(class_name, name, config, [input]);
    const v = `${input}#${name}`;
    if (this.ctx.kerasLive) this.produces(v, name);
    return v;
  }

  /** Declares a model input (`node`: its unique name, shared with the GraphDef side). */
  declareInput(i: ValueInfo, node: string): void {
    this.#layers.push({
      name: node,
      class_name: "InputLayer",
      config: { batch_input_shape: batchInputShape(toNhwcShape(i.shape)), dtype: "float32", sparse: false, name: node },
      inbound: [],
    });
    this.#producers.set(i.name, node);
  }

  /** Puts the header's shape on the InputLayer `node` (learned after the input was declared). */
  updateInput(node: string, nhwc: readonly (number | string | null)[]): void {
    const k = this.#layers.find((l) => l.name === node);
    if (k) k.config.batch_input_shape = batchInputShape(nhwc);
  }

  /** Runs `l` through {@link KERAS_OPS}; a layer without a Keras form blocks the layers-model. */
  async emit(l: Layer, name: string): Promise<void> {
    const entry = KERAS_OPS[l.op];
    const done = entry ? await entry(this, l, name) : false;
    if (done === false) {
      this.ctx.blockKeras(l.name, `${l.op}${l.params.const ? " with a constant operand" : ""} has no Keras layer`);
    }
  }

  /** True when the layers form one chain from the single input to the single output (a `Sequential`). */
  isChain(header: ModelHeader): boolean {
    const ls = this.#layers;
    if (ls.length < 2 || ls[0].class_name !== "InputLayer") return false;
    for (let i = 1; i < ls.length; i++) {
      if (ls[i].inbound.length !== 1 || ls[i].inbound[0] !== ls[i - 1].name) return false;
    }
    const outs = header.outputs;
    return outs.length === 1 && this.#producers.get(outs[0].name) === ls.at(-1)!.name;
  }

  /** The `modelTopology` of a layers-model; an error when a layer had no Keras form. */
  topology(header: ModelHeader, chain: boolean): Record<string, unknown> {
    const block = this.ctx.kerasBlocker;
    if (block) {
      throw new TfjsError(
        "unsupported",
        `Cannot write layer '${block.layer}' to a TF.js layers-model: ${block.what}`,
        {
          layer: block.layer,
        },
      );
    }
    const meta = { keras_version: "tfjs-layers 4.22.0", backend: "tensor_flow.js" };
    const name = cleanName(header.name || "model");
    if (chain) {
      const [input, ...rest] = this.#layers;
      const layers = rest.map((l, i) => ({
        class_name: l.class_name,
        config: i === 0
          ? { ...l.config, batch_input_shape: input.config.batch_input_shape, dtype: "float32" }
          : l.config,
      }));
      return { class_name: "Sequential", config: { name, layers }, ...meta };
    }
    const layers: KerasLayerJson[] = this.#layers.map((l) => ({
      name: l.name,
      class_name: l.class_name,
      config: l.config,
      inbound_nodes: l.inbound.length ? [l.inbound.map((n) => [n, 0, 0, {}])] : [],
    }));
    return {
      class_name: "Model",
      config: {
        name,
        layers,
        input_layers: header.inputs.map((i) => [this.#producers.get(i.name), 0, 0]),
        output_layers: header.outputs.map((o) => [this.#producers.get(o.name), 0, 0]),
      },
      ...meta,
    };
  }
}

function batchInputShape(nhwc: readonly (number | string | null)[]): (number | null)[] {
  return nhwc.map((d, k) => (k === 0 || typeof d !== "number" ? null : d));
}

/** A layer that only applies a Keras activation. */
const activation = (keras: string): KerasEntry => (k, l, name) => {
  k.layer("Activation", name, { activation: keras }, [l.inputs[0]]);
  k.produces(l.outputs[0], name);
};

/** A ZeroPadding2D for explicit pads [top, left, bottom, right] before a window layer; returns the padded value. */
function zeroPadding(k: KerasEmitter, x: string, name: string, p: number[]): string {
  return k.derivedLayer(
    "ZeroPadding2D",
    name,
    { padding: [[p[0], p[2]], [p[1], p[3]]], data_format: "channels_last" },
    x,
  );
}

/** Flatten of a rank-4 value to [N, C*H*W] (the canonical order is C, H, W; TF.js flattens H, W, C). */
function flatten(k: KerasEmitter, x: string, out: string, name: string): void {
  const dims = k.ctx.knownDims(x);
  if (!dims) {
    // Unknown C, H, W: put the activation in (c, h, w) order first, so the next FC needs no permutation.
    const chw = k.derivedLayer("Permute", `${name}_chw`, { dims: [3, 1, 2] }, x);
    k.layer("Flatten", name, {}, [chw]);
    return k.produces(out, name);
  }
  const [, c, h, w] = dims;
  k.layer("Flatten", name, {}, [x]);
  k.produces(out, name);
  k.ctx.setFlat(out, { c, h, w });
}

/** Canonical op -> Keras layers. */
export const KERAS_OPS: Readonly<Partial<Record<Op, KerasEntry>>> = Object.freeze({
  async Conv(k, l, name) {
    const W = l.params.weight;
    const [o, ig, kh, kw] = W.shape;
    const plan = convPlan(k.ctx, l);
    let x = l.inputs[0], mode = plan.mode;
    if (Array.isArray(mode)) {
      x = zeroPadding(k, x, `${name}_pad`, mode);
      mode = "valid";
    }
    if (plan.group !== 1 && !plan.depthwise) {
      k.ctx.blockKeras(l.name, `grouped convolution (group ${l.attrs.group}) has no Keras layer`);
      return;
    }
    const common = {
      kernel_size: [kh, kw],
      strides: plan.s,
      padding: mode,
      data_format: "channels_last",
      dilation_rate: plan.d,
      activation: "linear",
      use_bias: Boolean(l.params.bias),
    };
    const orig = W.meta.tfjsKernel as { tensor: Tensor; depthwise: boolean } | undefined;
    const same = orig && orig.depthwise === plan.depthwise ? orig.tensor : undefined;
    if (plan.depthwise) {
      const m = o / (ig * plan.group);
      await k.ctx.param(`${name}/depthwise_kernel`, () => same ?? oihwToDepthwise(W, m));
      k.layer("DepthwiseConv2D", name, { ...common, depth_multiplier: m }, [x]);
    } else {
      await k.ctx.param(`${name}/kernel`, () => same ?? oihwToHwio(W));
      k.layer("Conv2D", name, { ...common, filters: o }, [x]);
    }
    if (l.params.bias) await k.ctx.param(`${name}/bias`, () => l.params.bias);
    k.produces(l.outputs[0], name);
  },
  async FC(k, l, name) {
    let x = l.inputs[0];
    if ((k.ctx.shape(x)?.length ?? 2) > 2) {
      // The canonical FC flattens its input (C, H, W order): flatten first in TF.js and permute like after a Flatten.
      const flat = `${x}#flat`;
      flatten(k, x, flat, k.ctx.layerName("flatten", `${l.name}_flatten`));
      x = flat;
    }
    const { kernel } = k.ctx.fcKernel(l, x);
    await k.ctx.param(`${name}/kernel`, () => kernel);
    k.layer(
      "Dense",
      name,
      { units: l.params.weight.shape[0], activation: "linear", use_bias: Boolean(l.params.bias) },
      [
        x,
      ],
    );
    if (l.params.bias) await k.ctx.param(`${name}/bias`, () => l.params.bias);
    k.produces(l.outputs[0], name);
  },
  async BatchNorm(k, l, name) {
    const x = l.inputs[0];
    const rank = k.ctx.shape(x)?.length ?? 4;
    const p = l.params;
    await k.ctx.param(`${name}/gamma`, () => p.scale);
    await k.ctx.param(`${name}/beta`, () => p.bias);
    await k.ctx.param(`${name}/moving_mean`, () => p.mean);
    await k.ctx.param(`${name}/moving_variance`, () => p.var);
    const eps = Number(l.attrs.epsilon ?? 1e-5);
    k.layer(
      "BatchNormalization",
      name,
      { axis: rank - 1, epsilon: eps, momentum: 0.99, center: true, scale: true },
      [x],
    );
    k.produces(l.outputs[0], name);
  },
  Relu: activation("relu"),
  Sigmoid: activation("sigmoid"),
  Tanh: activation("tanh"),
  Softmax(k, l, name) {
    if (!softmaxOnLastAxis(k.ctx, l)) return false;
    activation("softmax")(k, l, name);
  },
  LeakyRelu(k, l, name) {
    k.layer("LeakyReLU", name, { alpha: Number(l.attrs.alpha ?? 0.01) }, [l.inputs[0]]);
    k.produces(l.outputs[0], name);
  },
  Clip(k, l, name) {
    const min = Number(l.attrs.min ?? -Infinity), max = Number(l.attrs.max ?? Infinity);
    if (min === 0 && max === 6) return activation("relu6")(k, l, name);
    if (min === 0 && max === Infinity) return activation("relu")(k, l, name);
    if (min !== 0) return k.ctx.blockKeras(l.name, `Clip to [${min}, ${max}]`);
    k.layer("ReLU", name, { max_value: max }, [l.inputs[0]]);
    k.produces(l.outputs[0], name);
  },
  MaxPool: pool,
  AvgPool: pool,
  GlobalAvgPool: globalPool,
  GlobalMaxPool: globalPool,
  Flatten(k, l, name) {
    const x = l.inputs[0];
    const s = k.ctx.shape(x);
    if (!s || s.length <= 2) return k.produces(l.outputs[0], k.producerOf(x));
    flatten(k, x, l.outputs[0], name);
  },
  Reshape(k, l, name) {
    const x = l.inputs[0];
    const inS = k.ctx.shape(x);
    const outS = (l.attrs.shape as number[]).map((d, i) => (d === 0 ? (inS?.[i] as number) : d));
    const rankIn = inS?.length ?? 0;
    if (rankIn === 4 && outS.length === 2) {
      // [N, -1] is a flatten; any other rank-2 target ([-1, 2]) regroups across the batch axis: no Keras form.
      if (!keepsBatch(outS, inS!)) return false;
      return flatten(k, x, l.outputs[0], name);
    }
    // General case: NHWC -> NCHW order, reshape, back to NHWC for a 4-D result.
    const v = rankIn === 4 ? k.derivedLayer("Permute", `${name}_nchw`, { dims: [3, 1, 2] }, x) : x;
    if (outS.length !== 4) {
      k.layer("Reshape", name, { target_shape: outS.slice(1) }, [v]);
      return k.produces(l.outputs[0], name);
    }
    const r = k.derivedLayer("Reshape", `${name}_flat`, { target_shape: outS.slice(1) }, v);
    k.layer("Permute", name, { dims: [2, 3, 1] }, [r]);
    k.produces(l.outputs[0], name);
  },
  Pad(k, l, name) {
    const p = spatialPads(l);
    if (!p) return false;
    const value = attrsOf<PadAttrs>(l).value;
    if (value !== 0) return k.ctx.blockKeras(l.name, `Pad with value ${value}`);
    k.layer("ZeroPadding2D", name, { padding: [[p[0], p[2]], [p[1], p[3]]], data_format: "channels_last" }, [
      l.inputs[0],
    ]);
    k.produces(l.outputs[0], name);
  },
  Add: merge("Add"),
  Sub: merge("Subtract"),
  Mul: merge("Multiply"),
  Max: merge("Maximum"),
  Concat(k, l, name) {
    // Constant operands: no Keras layer holds one.
    if (attrsOf<{ constAt: number[] | null }>(l).constAt?.length) return false;
    const rank = k.ctx.shape(l.inputs[0])?.length ?? 4;
    let axis = Number(l.attrs.axis ?? 1);
    if (axis < 0) axis += rank;
    const tfAxis = rank === 4 ? [0, 3, 1, 2][axis] : axis;
    k.layer("Concatenate", name, { axis: tfAxis === rank - 1 ? -1 : tfAxis }, l.inputs);
    k.produces(l.outputs[0], name);
  },
  Scale(k, l) {
    k.ctx.blockKeras(l.name, "Scale (per-channel affine) has no Keras layer");
  },
  LRN(k, l) {
    k.ctx.blockKeras(l.name, "LRN has no Keras layer in tfjs-layers");
  },
  Dropout(k, l, name) {
    k.layer("Dropout", name, { rate: Number(l.attrs.ratio ?? 0.5) }, [l.inputs[0]]);
    k.produces(l.outputs[0], name);
  },
  Identity(k, l) {
    k.produces(l.outputs[0], k.producerOf(l.inputs[0]));
  },
});

function pool(k: KerasEmitter, l: Layer, name: string): void {
  const plan = poolPlan(k.ctx, l);
  let x = l.inputs[0], mode = plan.mode;
  if (Array.isArray(mode)) {
    if (plan.max) return k.ctx.blockKeras(l.name, `MaxPool with explicit pads [${plan.pads}]`);
    x = zeroPadding(k, x, `${name}_pad`, mode);
    mode = "valid";
  }
  k.layer(plan.max ? "MaxPooling2D" : "AveragePooling2D", name, {
    pool_size: plan.k,
    strides: plan.s,
    padding: mode,
    data_format: "channels_last",
  }, [x]);
  k.produces(l.outputs[0], name);
}

/** Global pooling keeps the spatial axes (as 1) in canonical form: pooling, then a Reshape to [1, 1, C]. */
function globalPool(k: KerasEmitter, l: Layer, name: string): void {
  const c = k.ctx.knownDims(l.inputs[0])?.[1] ?? -1;
  const pool = `${name}_pool`;
  k.ctx.reserveName(pool);
  const cls = l.op === "GlobalAvgPool" ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D";
  k.layer(cls, pool, { data_format: "channels_last" }, [l.inputs[0]]);
  k.produces(`${l.outputs[0]}#pool`, pool);
  k.layer("Reshape", name, { target_shape: [1, 1, c] }, [`${l.outputs[0]}#pool`]);
  k.produces(l.outputs[0], name);
}

/** Keras merge layers take equal shapes only: a constant operand or broadcasting goes to the GraphDef side. */
function merge(cls: string): KerasEntry {
  return (k, l, name) => {
    if (l.params.const || !k.ctx.sameInputShapes(l)) return false;
    k.layer(cls, name, {}, l.inputs);
    k.produces(l.outputs[0], name);
  };
}
