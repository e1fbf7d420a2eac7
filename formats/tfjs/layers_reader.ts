/**
 * Maps a TF.js layers-model (Keras JSON, Sequential or functional with `inbound_nodes`, possibly nested under
 * `model_config`) to canonical layers. Weights are found by name, `<layer>/<weight>`.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Dim, ModelHeader, ValueInfo } from "../../src/model/types.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { TfjsLayerBuilder, type TfPadding } from "./builder.ts";
import type { KerasLayerJson, KerasModelConfig, KerasTopology, ModelJson } from "./types.ts";

type Cfg = Record<string, unknown>;

function pair(v: unknown, def: number): number[] {
  if (v === undefined || v === null) return [def, def];
  if (typeof v === "number") return [v, v];
  const a = v as number[];
  return a.length === 1 ? [a[0], a[0]] : [a[0], a[1]];
}

/** Unwraps `model_config` and old bare-array Sequential configs. */
export function kerasModel(t: KerasTopology): { className: string; config: KerasModelConfig } {
  const inner = t.model_config ?? t;
  const className = String(inner.class_name ?? "Sequential");
  const c = inner.config;
  if (Array.isArray(c)) return { className, config: { layers: c } };
  if (!c || !Array.isArray(c.layers)) {
    throw new TfjsError("bad_format", "TF.js layers-model topology has no layer list");
  }
  return { className, config: c };
}

/** Inbound layer names of a functional layer's first call. */
function inboundOf(l: KerasLayerJson): string[] {
  const nodes = l.inbound_nodes ?? [];
  if (nodes.length === 0) return [];
  if (nodes.length > 1) {
    throw new TfjsError(
      "unsupported",
      `Cannot convert TF.js layer '${layerName(l)}': shared layers (called ${nodes.length} times)`,
      {
        layer: layerName(l),
      },
    );
  }
  const node = nodes[0];
  if (Array.isArray(node)) return node.map((e) => String((e as unknown[])[0]));
  // Keras 3: {args: [keras tensor | [keras tensors]], kwargs}
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === "object") {
      const o = v as Cfg;
      if (o.class_name === "__keras_tensor__") out.push(String(((o.config as Cfg).keras_history as unknown[])[0]));
    }
  };
  walk((node as Cfg).args);
  return out;
}

function layerName(l: KerasLayerJson): string {
  return String(l.name ?? l.config.name);
}

/** Builds the header and canonical layers of a layers-model. `weight(name)` gives a weight by manifest name. */
export function readLayersModel(
  json: ModelJson,
  weight: (name: string) => Tensor | undefined,
  options: { inputShape?: number[]; name?: string } = {},
): { header: ModelHeader; builder: TfjsLayerBuilder } {
  const { className, config } = kerasModel(json.modelTopology as KerasTopology);
  const sequential = className === "Sequential";
  const layers = config.layers;
  const header: ModelHeader = {
    name: options.name ?? String(config.name ?? "model"),
    sourceFormat: "tfjs",
    inputs: [],
    outputs: [],
    metadata: {},
  };
  if (json.generatedBy) header.metadata.generatedBy = String(json.generatedBy);
  const toCanonShape = (s: unknown[]): Dim[] => {
    let d: Dim[] = s.map((v) => (typeof v === "number" && v >= 0 ? v : null));
    if (d.length === 4) d = [d[0], d[3], d[1], d[2]];
    if (options.inputShape?.length === d.length) d = d.map((v, i) => v ?? options.inputShape![i]);
    return d;
  };
  const inputShapeOf = (c: Cfg): unknown[] | undefined =>
    (c.batch_input_shape ?? c.batch_shape) as unknown[] | undefined;

  // Inputs are declared before layers are built, so the builder knows their shapes.
  const inputs: ValueInfo[] = [];
  if (sequential) {
    const first = layers[0];
    const s = first && inputShapeOf(first.config);
    if (!s) throw new TfjsError("bad_format", "TF.js Sequential model has no batch_input_shape on its first layer");
    inputs.push({
      name: first.class_name === "InputLayer" ? layerName(first) : "input",
      dtype: "float32",
      shape: toCanonShape(s),
    });
  } else {
    for (const l of layers) {
      if (l.class_name !== "InputLayer") continue;
      const s = inputShapeOf(l.config);
      if (!s) throw new TfjsError("bad_format", `TF.js InputLayer '${layerName(l)}' has no batch_input_shape`);
      inputs.push({ name: layerName(l), dtype: "float32", shape: toCanonShape(s) });
    }
  }
  header.inputs = inputs;
  const b = new TfjsLayerBuilder(header);

  const find = (lname: string, w: string, need = true): Tensor | undefined => {
    const t = weight(`${lname}/${w}`);
    if (t || !need) return t;
    throw new TfjsError("bad_format", `TF.js layer '${lname}' has no weight '${lname}/${w}' in the manifest`, {
      layer: lname,
    });
  };

  const outOf = new Map<string, string>(); // Keras layer -> canonical value
  let prev = inputs[0]?.name;
  if (inputs[0]) outOf.set(inputs[0].name, inputs[0].name);
  for (const l of layers) {
    const name = layerName(l);
    if (l.class_name === "InputLayer") {
      prev = name;
      continue;
    }
    const ins = sequential ? [prev] : inboundOf(l).map((n) => {
      const v = outOf.get(n);
      if (!v) throw new TfjsError("bad_format", `TF.js layer '${name}' reads unknown layer '${n}'`, { layer: name });
      return v;
    });
    const out = convertLayer(l, name, ins);
    outOf.set(name, out);
    prev = out;
  }
  const outs = sequential ? [prev] : (config.output_layers ?? []).map((o) => outOf.get(String(o[0])) ?? String(o[0]));
  header.outputs = outs.map((v) => ({ name: v, dtype: "float32", shape: b.shape(v) ?? [] }));
  return { header, builder: b };

  function convertLayer(l: KerasLayerJson, name: string, ins: string[]): string {
    const c = l.config;
    const x = ins[0];
    if (c.data_format === "channels_first") {
      throw new TfjsError(
        "unsupported",
        `Cannot convert TF.js layer '${name}' (${l.class_name}): data_format channels_first`,
        {
          layer: name,
        },
      );
    }
    const act = (v: string) => b.activation(String(c.activation ?? "linear"), `${name}/act`, v, name);
    const pre = () => (c.activation && c.activation !== "linear" ? `${name}/linear` : name);
    const pad = (): TfPadding => (String(c.padding ?? "valid").toLowerCase() === "same" ? "same" : "valid");
    switch (l.class_name) {
      case "Conv2D":
      case "DepthwiseConv2D": {
        const dw = l.class_name === "DepthwiseConv2D";
        const v = b.conv(
          name,
          pre(),
          x,
          find(name, dw ? "depthwise_kernel" : "kernel")!,
          c.use_bias === false ? undefined : find(name, "bias"),
          {
            strides: pair(c.strides, 1),
            dilations: pair(c.dilation_rate, 1),
            padding: pad(),
            depthwise: dw,
          },
        );
        return act(v);
      }
      case "SeparableConv2D": {
        const d = b.conv(`${name}/depthwise`, `${name}/depthwise`, x, find(name, "depthwise_kernel")!, undefined, {
          strides: pair(c.strides, 1),
          dilations: pair(c.dilation_rate, 1),
          padding: pad(),
          depthwise: true,
        });
        const v = b.conv(
          name,
          pre(),
          d,
          find(name, "pointwise_kernel")!,
          c.use_bias === false ? undefined : find(name, "bias"),
          {
            strides: [1, 1],
            dilations: [1, 1],
            padding: "valid",
            depthwise: false,
          },
        );
        return act(v);
      }
      case "Dense":
        return act(b.fc(name, pre(), x, find(name, "kernel")!, c.use_bias === false ? undefined : find(name, "bias")));
      case "BatchNormalization": {
        const axis = Number(c.axis ?? -1);
        if (
          axis !== -1 && axis !== b.rank(x) - 1 && !(Array.isArray(c.axis) && (c.axis as number[])[0] === b.rank(x) - 1)
        ) {
          throw new TfjsError(
            "unsupported",
            `Cannot convert TF.js layer '${name}' (BatchNormalization) on axis ${c.axis}`,
            { layer: name },
          );
        }
        const mean = find(name, "moving_mean")!;
        const n = mean.size;
        const gamma = find(name, "gamma", c.scale !== false) ??
          Tensor.fromFloat32(`${name}/gamma`, [n], new Float32Array(n).fill(1));
        const beta = find(name, "beta", c.center !== false) ??
          Tensor.fromFloat32(`${name}/beta`, [n], new Float32Array(n));
        return b.add({
          name: b.unique(name),
          op: "BatchNorm",
          attrs: { epsilon: Number(c.epsilon ?? 1e-3) },
          inputs: [x],
          outputs: [name],
          params: { scale: gamma, bias: beta, mean, var: find(name, "moving_variance")! },
        });
      }
      case "Activation":
        return b.activation(String(c.activation), name, x, name);
      case "ReLU": {
        const max = c.max_value as number | null | undefined;
        const slope = Number(c.negative_slope ?? 0);
        if (Number(c.threshold ?? 0) !== 0) {
          throw new TfjsError("unsupported", `Cannot convert TF.js layer '${name}' (ReLU) with a threshold`, {
            layer: name,
          });
        }
        if (slope !== 0) {
          if (max !== null && max !== undefined) {
            throw new TfjsError(
              "unsupported",
              `Cannot convert TF.js layer '${name}' (ReLU) with both max_value and negative_slope`,
              { layer: name },
            );
          }
          return b.activation("leakyrelu", name, x, name, slope);
        }
        if (max === null || max === undefined) return b.activation("relu", name, x, name);
        return b.op("Clip", name, [x], { min: 0, max: Number(max) });
      }
      case "LeakyReLU":
        return b.activation("leakyrelu", name, x, name, Number(c.alpha ?? c.negative_slope ?? 0.3));
      case "Softmax":
        if (![-1, b.rank(x) - 1].includes(Number(c.axis ?? -1))) {
          throw new TfjsError("unsupported", `Cannot convert TF.js layer '${name}' (Softmax) on axis ${c.axis}`, {
            layer: name,
          });
        }
        return b.activation("softmax", name, x, name);
      case "MaxPooling2D":
      case "AveragePooling2D": {
        const k = pair(c.pool_size, 2);
        const s = c.strides ? pair(c.strides, 1) : k;
        const pads = b.pads(x, name, pad(), k, s, [1, 1]);
        const max = l.class_name === "MaxPooling2D";
        const attrs: Record<string, number[] | boolean> = { kernel: k, strides: s, pads, ceil: false };
        if (!max) attrs.countIncludePad = false;
        return b.op(max ? "MaxPool" : "AvgPool", name, [x], attrs);
      }
      case "GlobalAveragePooling2D":
      case "GlobalMaxPooling2D": {
        const op = l.class_name === "GlobalAveragePooling2D" ? "GlobalAvgPool" : "GlobalMaxPool";
        if (c.keepdims) return b.op(op, name, [x]);
        const g = b.op(op, `${name}/pool`, [x], {}, `${name}/pool`);
        return b.flatten(name, name, g);
      }
      case "Flatten":
        return b.rank(x) === 2 ? b.op("Identity", name, [x]) : b.flatten(name, name, x);
      case "Reshape": {
        const t = (c.target_shape as number[]).map(Number);
        if (b.rank(x) === 4 && t.length === 1) return b.flatten(name, name, x);
        if (b.rank(x) === 2 && t.length === 1) return b.op("Identity", name, [x]);
        let v = x;
        if (b.rank(x) === 4) v = b.op("Transpose", `${name}/to_nhwc`, [v], { perm: [0, 2, 3, 1] }, `${name}/to_nhwc`);
        const four = t.length === 3;
        v = b.op("Reshape", four ? `${name}/nhwc` : name, [v], { shape: [-1, ...t] }, four ? `${name}/nhwc` : name);
        return four ? b.op("Transpose", name, [v], { perm: [0, 3, 1, 2] }) : v;
      }
      case "ZeroPadding2D": {
        const p = c.padding;
        let tb: number[], lr: number[];
        if (typeof p === "number") tb = lr = [p, p];
        else if (Array.isArray(p) && Array.isArray(p[0])) [tb, lr] = p as number[][];
        else tb = lr = pair(p, 1);
        if (Array.isArray(p) && !Array.isArray(p[0])) [tb, lr] = [[p[0], p[0]], [p[1], p[1]]];
        return b.op("Pad", name, [x], { pads: [0, 0, tb[0], lr[0], 0, 0, tb[1], lr[1]], value: 0 });
      }
      case "Dropout":
      case "SpatialDropout2D":
      case "GaussianNoise":
      case "GaussianDropout":
        return b.op("Dropout", name, [x], { ratio: Number(c.rate ?? 0) });
      case "Add":
        return b.op("Add", name, ins);
      case "Multiply":
        return b.op("Mul", name, ins);
      case "Subtract":
        return b.op("Sub", name, ins);
      case "Maximum":
        return b.op("Max", name, ins);
      case "Concatenate":
        return b.op("Concat", name, ins, { axis: TfjsLayerBuilder.axis(Number(c.axis ?? -1), b.rank(x)) });
      default:
        throw new TfjsError(
          "unsupported",
          `Cannot convert TF.js layer '${name}': Keras layer '${l.class_name}' has no canonical equivalent`,
          {
            layer: name,
          },
        );
    }
  }
}
