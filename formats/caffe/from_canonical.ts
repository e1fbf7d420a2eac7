/**
 * Canonical layers to Caffe layer records (current form): each canonical layer becomes one or two Caffe layers,
 * each a {@link TextMessage} (what the deploy prototxt prints and the caffemodel encodes) plus its blobs in Caffe's
 * shapes. Ops Caffe cannot express are a CaffeError `unsupported` naming the op, the layer and the format.
 *
 * @module
 */
import { CaffeError } from "../../src/errors.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { Layer } from "../../src/model/types.ts";
import { type Shape, windowOut } from "../../src/model/shapes.ts";
import { TextEnum, TextMessage } from "./prototxt.ts";
import { lazyFloat32 } from "./to_canonical.ts";

/** One Caffe layer to write: its record without blobs, and its blobs (float32). */
export interface CaffeRecord {
  msg: TextMessage;
  blobs: Tensor[];
}

function unsupported(layer: Layer, why: string): CaffeError {
  return new CaffeError("unsupported", `Cannot write ${layer.op} layer '${layer.name}' to Caffe: ${why}`, {
    layer: layer.name,
  });
}

function record(name: string, type: string, bottom: string[], top: string[]): TextMessage {
  const m = new TextMessage().add("name", name).add("type", type);
  for (const b of bottom) m.add("bottom", b);
  for (const t of top) m.add("top", t);
  return m;
}

function f32(t: Tensor, shape?: number[]): Tensor {
  const s = shape ?? [...t.shape];
  if (t.dtype === "float32") return t.with({ shape: s });
  return lazyFloat32(t.name, s, async () => Float32Array.from(await t.float32()));
}

function symmetric(layer: Layer): [number, number] {
  const p = (layer.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
  if (p[0] !== p[2] || p[1] !== p[3]) throw unsupported(layer, `asymmetric padding [${p.join(",")}]`);
  return [p[0], p[1]];
}

function hw(m: TextMessage, name: string, v: number[], def: number): void {
  if (v[0] === v[1]) {
    if (v[0] !== def) m.add(name === "kernel" ? "kernel_size" : name, v[0]);
  } else m.add(`${name}_h`, v[0]).add(`${name}_w`, v[1]);
}

/** The Input layer record of a network input. Symbolic dimensions are written as 1. */
export function inputRecord(name: string, shape: (number | string | null)[]): TextMessage {
  const s = new TextMessage();
  for (const d of shape) s.add("dim", typeof d === "number" ? d : 1);
  return record(name, "Input", [], [name]).add("input_param", new TextMessage().add("shape", s));
}

/** Converts one canonical layer. `inShape` is its first input's shape when known (used for pooling rounding). */
export function toCaffeRecords(layer: Layer, inShape: Shape): CaffeRecord[] {
  const { name, inputs, outputs, attrs, params } = layer;
  const one = (type: string, param?: [string, TextMessage], blobs: Tensor[] = []): CaffeRecord[] => {
    const msg = record(name, type, inputs, outputs);
    if (param && param[1].size) msg.add(param[0], param[1]);
    return [{ msg, blobs }];
  };
  switch (layer.op) {
    case "Conv": {
      const w = params.weight;
      if (!w || w.shape.length !== 4) throw unsupported(layer, "Caffe convolutions are 2-D");
      const p = new TextMessage().add("num_output", w.shape[0]);
      if (!params.bias) p.add("bias_term", false);
      const [ph, pw] = symmetric(layer);
      hw(p, "pad", [ph, pw], 0);
      hw(p, "kernel", (attrs.kernel as number[] | undefined) ?? [w.shape[2], w.shape[3]], -1);
      hw(p, "stride", (attrs.strides as number[] | undefined) ?? [1, 1], 1);
      const group = (attrs.group as number | undefined) ?? 1;
      if (group !== 1) p.add("group", group);
      const d = (attrs.dilations as number[] | undefined) ?? [1, 1];
      if (d[0] !== 1 || d[1] !== 1) {
        p.add("dilation", d[0]);
        if (d[1] !== d[0]) p.add("dilation", d[1]);
      }
      const blobs = [f32(w)];
      if (params.bias) blobs.push(f32(params.bias, [w.shape[0]]));
      return one("Convolution", ["convolution_param", p], blobs);
    }
    case "FC": {
      const w = params.weight;
      if (!w || w.shape.length !== 2) throw unsupported(layer, "FC weight must be [out, in]");
      const p = new TextMessage().add("num_output", w.shape[0]);
      if (!params.bias) p.add("bias_term", false);
      const blobs = [f32(w)];
      if (params.bias) blobs.push(f32(params.bias, [w.shape[0]]));
      return one("InnerProduct", ["inner_product_param", p], blobs);
    }
    case "MaxPool":
    case "AvgPool":
      return one("Pooling", ["pooling_param", pooling(layer, inShape)]);
    case "GlobalAvgPool":
    case "GlobalMaxPool": {
      const p = new TextMessage().add("pool", new TextEnum(layer.op === "GlobalMaxPool" ? "MAX" : "AVE"));
      return one("Pooling", ["pooling_param", p.add("global_pooling", true)]);
    }
    case "Relu":
      return one("ReLU");
    case "LeakyRelu":
      return one("ReLU", ["relu_param", new TextMessage().add("negative_slope", (attrs.alpha as number) ?? 0.01)]);
    case "Clip":
      if (attrs.min === 0 && (attrs.max === null || attrs.max === undefined || attrs.max === Infinity)) {
        return one("ReLU");
      }
      throw unsupported(layer, "Caffe has no clip layer");
    case "Sigmoid":
      return one("Sigmoid");
    case "Tanh":
      return one("TanH");
    case "Softmax": {
      const axis = (attrs.axis as number | undefined) ?? 1;
      return one("Softmax", ["softmax_param", axis === 1 ? new TextMessage() : new TextMessage().add("axis", axis)]);
    }
    case "LRN": {
      const p = new TextMessage()
        .add("local_size", (attrs.size as number) ?? 5)
        .add("alpha", (attrs.alpha as number) ?? 1e-4)
        .add("beta", (attrs.beta as number) ?? 0.75)
        .add("k", (attrs.bias as number) ?? 1);
      return one("LRN", ["lrn_param", p]);
    }
    case "Dropout":
      return one("Dropout", ["dropout_param", new TextMessage().add("dropout_ratio", (attrs.ratio as number) ?? 0.5)]);
    case "Identity":
      return one("Split");
    case "Concat": {
      const axis = (attrs.axis as number | undefined) ?? 1;
      return one("Concat", ["concat_param", axis === 1 ? new TextMessage() : new TextMessage().add("axis", axis)]);
    }
    case "Flatten": {
      const axis = (attrs.axis as number | undefined) ?? 1;
      return one("Flatten", ["flatten_param", axis === 1 ? new TextMessage() : new TextMessage().add("axis", axis)]);
    }
    case "Reshape": {
      const shape = new TextMessage();
      for (const d of (attrs.shape as number[] | undefined) ?? []) shape.add("dim", d);
      return one("Reshape", ["reshape_param", new TextMessage().add("shape", shape)]);
    }
    case "Add":
    case "Sub":
    case "Mul":
    case "Max": {
      if (inputs.length < 2) throw unsupported(layer, "Eltwise needs at least two activation inputs");
      const p = new TextMessage();
      if (layer.op === "Mul") p.add("operation", new TextEnum("PROD"));
      else if (layer.op === "Max") p.add("operation", new TextEnum("MAX"));
      else {
        let coeffs = attrs.coeffs as number[] | undefined;
        if (layer.op === "Sub") {
          if (inputs.length !== 2) throw unsupported(layer, "Sub of more than two inputs");
          coeffs = [1, -1];
        }
        for (const c of coeffs ?? []) p.add("coeff", c);
      }
      return one("Eltwise", ["eltwise_param", p]);
    }
    case "BatchNorm": {
      const { scale, bias, mean, var: variance } = params;
      if (!scale || !bias || !mean || !variance) throw unsupported(layer, "BatchNorm without all four parameters");
      const c = mean.size;
      const bn = record(name, "BatchNorm", inputs, outputs);
      bn.add(
        "batch_norm_param",
        new TextMessage().add("use_global_stats", true).add("eps", (attrs.epsilon as number) ?? 1e-5),
      );
      const sc = record(`${name}_scale`, "Scale", outputs, outputs);
      sc.add("scale_param", new TextMessage().add("bias_term", true));
      return [
        {
          msg: bn,
          blobs: [f32(mean, [c]), f32(variance, [c]), Tensor.fromFloat32(`${name}.factor`, [1], Float32Array.of(1))],
        },
        { msg: sc, blobs: [f32(scale, [c]), f32(bias, [c])] },
      ];
    }
    case "Scale": {
      const s = params.scale;
      if (!s) throw unsupported(layer, "Scale without a scale parameter");
      const p = new TextMessage();
      const axis = (attrs.axis as number | undefined) ?? 1;
      if (axis !== 1) p.add("axis", axis);
      if (params.bias) p.add("bias_term", true);
      const blobs = [f32(s, [s.size])];
      if (params.bias) blobs.push(f32(params.bias, [params.bias.size]));
      return one("Scale", ["scale_param", p], blobs);
    }
    case "Passthrough": {
      const o = layer.origin;
      if (o?.format !== "caffe") throw unsupported(layer, `a ${o?.format ?? "foreign"} layer passed through unchanged`);
      const src = (o.data as { msg: TextMessage }).msg;
      const msg = record(name, String(attrs.type ?? src.str("type", "")), inputs, outputs);
      for (const [k, v] of src.fields) if (!["name", "type", "bottom", "top", "phase"].includes(k)) msg.add(k, v);
      return [{ msg, blobs: Object.values(params).map((t) => f32(t)) }];
    }
    default:
      throw unsupported(layer, "Caffe has no such layer");
  }
}

function pooling(layer: Layer, inShape: Shape): TextMessage {
  const a = layer.attrs;
  const max = layer.op === "MaxPool";
  const p = new TextMessage().add("pool", new TextEnum(max ? "MAX" : "AVE"));
  const kernel = a.kernel as number[];
  const strides = (a.strides as number[] | undefined) ?? [1, 1];
  const pads = symmetric(layer);
  if (!max && !a.countIncludePad && (pads[0] || pads[1])) {
    throw unsupported(layer, "Caffe's average pooling counts padded cells (count_include_pad = 0 with padding)");
  }
  if ((a.dilations as number[] | undefined)?.some((d) => d !== 1)) throw unsupported(layer, "dilated pooling");
  hw(p, "kernel", kernel, -1);
  hw(p, "stride", strides, 1);
  hw(p, "pad", pads, 0);
  if (!a.ceil) {
    // Caffe rounds up. Floor rounding gives the same size unless the last window starts past the input; only then
    // is BVLC's `round_mode: FLOOR` written (OpenCV's Caffe reader does not know it). When the input size is not
    // known (an ONNX stream read from stdin states it only after its nodes) Caffe's default is kept.
    const dims = [2, 3].map((i) => (inShape && typeof inShape[i] === "number" ? inShape[i] as number : undefined));
    const differs = dims.some((d, i) =>
      d !== undefined &&
      windowOut(d, kernel[i], strides[i], pads[i], pads[i], 1, false) !==
        windowOut(d, kernel[i], strides[i], pads[i], pads[i], 1, true)
    );
    if (differs) p.add("round_mode", new TextEnum("FLOOR"));
  }
  return p;
}
