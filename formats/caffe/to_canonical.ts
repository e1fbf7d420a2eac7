/**
 * Caffe layers to canonical layers, one at a time. Keeps only a small naming state: Caffe blob names are not SSA
 * (in-place layers write their input, top == bottom), so every top gets a fresh value name and later bottoms are
 * mapped to the newest one. Train-only layers (data, loss, accuracy) are dropped and the first data layer's top
 * becomes the network input.
 *
 * Blob tensors arrive in Caffe's own shapes (`shape.dim`, or legacy num/channels/height/width, which count from
 * the end: an InnerProduct weight is (1,1,out,in)); they are reshaped to the canonical layouts of
 * src/model/ops.ts using the layer's parameters, and their value counts are checked.
 *
 * @module
 */
import { CaffeError } from "../../src/errors.ts";
import { numel, Tensor, toFloat32 } from "../../src/model/tensor.ts";
import type { Attrs, Dim, Layer, ValueInfo } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { TextMessage } from "./prototxt.ts";
import type { CaffeLayerDef } from "./net.ts";
import { DATA_TYPES, TRAIN_ONLY_TYPES } from "./types.ts";
import { normalizeLayer } from "../../src/ops/registry.ts";

/** A layer's blobs as read: tensors in the file's own shape. `null` in structure-only mode (shapes unknown). */
export type Blobs = Tensor[] | null;

/** Layer types that carry learned blobs. */
export const WEIGHTED_TYPES: ReadonlySet<string> = new Set([
  "Convolution",
  "Deconvolution",
  "InnerProduct",
  "BatchNorm",
  "Scale",
  "PReLU",
]);

/** Options of {@link CaffeLayerBuilder}. */
export interface BuilderOptions {
  /** Input shape that overrides what the file says. */
  inputShape?: number[];
  /** File name for errors. */
  file?: string;
}

/** Converts Caffe layer definitions (with their blobs) to canonical layers. */
export class CaffeLayerBuilder {
  /** Network inputs found so far. */
  readonly inputs: ValueInfo[] = [];
  #values = new Map<string, string>(); // Caffe blob name -> current value name
  #used = new Set<string>();
  #produced: string[] = [];
  #consumed = new Set<string>();
  #opts: BuilderOptions;
  #dataTops = new Set<string>();
  /** Once sealed, a bottom nobody produced is an error instead of a new input. */
  sealed = false;

  constructor(opts: BuilderOptions = {}) {
    this.#opts = opts;
  }

  /** Declares a network input. The batch dimension becomes symbolic unless `--input-shape` gave it. */
  addInput(name: string, shape: number[] | undefined, channels?: number): void {
    if (this.#values.has(name)) return;
    let dims: Dim[];
    const override = this.#opts.inputShape && this.inputs.length === 0 ? this.#opts.inputShape : undefined;
    if (override) dims = [...override];
    else if (shape && shape.length) dims = ["N", ...shape.slice(1)];
    else dims = ["N", channels ?? null, "H", "W"];
    const v = this.#fresh(name);
    this.#values.set(name, v);
    this.inputs.push({ name: v, dtype: "float32", shape: dims });
  }

  /** Values produced and never consumed: the network outputs, in production order. */
  outputs(): string[] {
    return this.#produced.filter((v) => !this.#consumed.has(v));
  }

  #fresh(base: string): string {
    let v = base || "value";
    for (let i = 1; this.#used.has(v); i++) v = `${base}_${i}`;
    this.#used.add(v);
    return v;
  }

  #err(def: CaffeLayerDef, code: "bad_format" | "unsupported", msg: string): CaffeError {
    return new CaffeError(code, `Caffe layer '${def.name}' (${def.type}): ${msg}`, {
      layer: def.name,
      file: this.#opts.file,
    });
  }

  /** Converts one layer; returns zero or more canonical layers (dropped and alias layers give none). */
  convert(def: CaffeLayerDef, blobs: Blobs): Layer[] {
    if (def.type === "Silence" && def.bottom.every((b) => this.#values.has(b))) {
      // Consumes what a Slice drops (convpress's own floor-pooling crops write one): nothing to compute.
      this.#bottoms(def, blobs);
      return [];
    }
    if (TRAIN_ONLY_TYPES.has(def.type)) {
      // A data layer's first top becomes the input when a kept layer reads it (its channels are known then).
      if (DATA_TYPES.has(def.type) && def.top.length) this.#dataTops.add(def.top[0]);
      return [];
    }
    if (def.type === "Input") {
      const shapes = def.msg.msg("input_param")?.msgs("shape") ?? [];
      def.top.forEach((t, i) => this.addInput(t, (shapes[i] ?? shapes[0])?.nums("dim")));
      return [];
    }
    if (def.type === "Split") {
      const v = this.#bottoms(def, blobs)[0];
      for (const t of def.top) this.#values.set(t, v);
      return [];
    }
    const inputs = this.#bottoms(def, blobs);
    if (def.type === "Slice") return this.#slice(def, inputs);
    if (def.type === "Power") return this.#power(def, inputs);
    const { op, attrs, params } = this.#map(def, blobs);
    const outputs = def.top.map((t) => {
      const v = this.#fresh(def.bottom.includes(t) || this.#values.has(t) ? def.name : t);
      this.#values.set(t, v);
      this.#produced.push(v);
      return v;
    });
    const layer: Layer = { name: def.name, op, attrs, inputs, outputs, params };
    if (op === "Passthrough") layer.origin = { format: "caffe", data: { msg: def.msg } };
    else normalizeLayer(layer);
    return [layer];
  }

  #top(def: CaffeLayerDef, t: string): string {
    const v = this.#fresh(def.bottom.includes(t) || this.#values.has(t) ? def.name : t);
    this.#values.set(t, v);
    this.#produced.push(v);
    return v;
  }

  /** Power: y = (shift + scale * x) ^ power, as a chain of Mul, Add and Pow by scalar constants. */
  #power(def: CaffeLayerDef, inputs: string[]): Layer[] {
    const p = def.msg.msg("power_param") ?? new TextMessage();
    const steps: [Op, number][] = [];
    if (p.num("scale", 1) !== 1) steps.push(["Mul", p.num("scale", 1)]);
    if (p.num("shift", 0) !== 0) steps.push(["Add", p.num("shift", 0)]);
    if (p.num("power", 1) !== 1) steps.push(["Pow", p.num("power", 1)]);
    if (!steps.length) steps.push(["Mul", 1]);
    const out: Layer[] = [];
    let x = inputs[0];
    steps.forEach(([op, v], i) => {
      const last = i === steps.length - 1;
      const name = i === 0 ? def.name : `${def.name}/${op.toLowerCase()}`;
      const y = last ? this.#top(def, def.top[0]) : this.#fresh(name);
      out.push(normalizeLayer({
        name,
        op,
        attrs: {},
        inputs: [x],
        outputs: [y],
        params: { const: Tensor.fromFloat32(`${name}.const`, [], Float32Array.of(v)) },
      }));
      x = y;
    });
    return out;
  }

  /** Slice: each top is a canonical Slice of one range of the axis (no shapes needed), or an even Split. */
  #slice(def: CaffeLayerDef, inputs: string[]): Layer[] {
    const p = def.msg.msg("slice_param") ?? new TextMessage();
    const axis = p.has("axis") ? p.num("axis", 1) : p.num("slice_dim", 1);
    const points = p.nums("slice_point");
    if (!points.length) {
      const outputs = def.top.map((t) => this.#top(def, t));
      return [
        normalizeLayer({ name: def.name, op: "Split", attrs: { axis, split: null }, inputs, outputs, params: {} }),
      ];
    }
    if (points.length !== def.top.length - 1) {
      throw this.#err(def, "bad_format", `has ${points.length} slice points for ${def.top.length} tops`);
    }
    return def.top.map((t, i) =>
      normalizeLayer({
        name: i === 0 ? def.name : `${def.name}/${i}`,
        op: "Slice",
        attrs: {
          starts: [i === 0 ? 0 : points[i - 1]],
          ends: [i < points.length ? points[i] : 2 ** 31 - 1],
          axes: [axis],
          steps: null,
        },
        inputs,
        outputs: [this.#top(def, t)],
        params: {},
      })
    );
  }

  #bottoms(def: CaffeLayerDef, blobs: Blobs): string[] {
    return def.bottom.map((b) => {
      let v = this.#values.get(b);
      if (v === undefined) {
        if (this.sealed && this.inputs.length) {
          throw this.#err(def, "bad_format", `reads '${b}', which no layer produces`);
        }
        let channels: number | undefined;
        if (def.type === "Convolution" && blobs?.[0]) {
          const cp = def.msg.msg("convolution_param") ?? new TextMessage();
          const [kh, kw] = pair(cp, "kernel", 0);
          const o = cp.num("num_output", 0);
          if (o && kh && kw) channels = (blobs[0].size / (o * kh * kw)) * cp.num("group", 1);
        }
        this.addInput(b, undefined, channels);
        v = this.#values.get(b)!;
      }
      this.#consumed.add(v);
      return v;
    });
  }

  #map(def: CaffeLayerDef, blobs: Blobs): { op: Op; attrs: Attrs; params: Record<string, Tensor> } {
    const m = def.msg;
    const none = { params: {} as Record<string, Tensor> };
    switch (def.type) {
      case "Convolution":
        return this.#conv(def, blobs);
      case "InnerProduct":
        return this.#fc(def, blobs);
      case "Pooling":
        return { ...this.#pool(def), ...none };
      case "ReLU": {
        const slope = m.msg("relu_param")?.num("negative_slope", 0) ?? 0;
        return slope ? { op: "LeakyRelu", attrs: { alpha: slope }, ...none } : { op: "Relu", attrs: {}, ...none };
      }
      case "ReLU6":
        return { op: "Clip", attrs: { min: 0, max: 6 }, ...none };
      case "PReLU": {
        const shared = m.msg("prelu_param")?.bool("channel_shared", false) ?? false;
        const b = this.#need(def, blobs, 1, "a slope blob");
        if (!b) return { op: "PRelu", attrs: {}, params: {} };
        const n = b[0].size;
        return {
          op: "PRelu",
          attrs: {},
          params: { slope: this.#reshape(def, b[0], "slope", shared ? [1] : [n, 1, 1]) },
        };
      }
      case "ELU":
        return { op: "Elu", attrs: { alpha: m.msg("elu_param")?.num("alpha", 1) ?? 1 }, ...none };
      case "AbsVal":
        return { op: "Abs", attrs: {}, ...none };
      case "BNLL":
        return { op: "Softplus", attrs: {}, ...none };
      case "Exp":
      case "Log": {
        const p = m.msg(def.type === "Exp" ? "exp_param" : "log_param") ?? new TextMessage();
        if (p.num("base", -1) !== -1 || p.num("scale", 1) !== 1 || p.num("shift", 0) !== 0) {
          throw this.#err(def, "unsupported", `${def.type} with a base, scale or shift`);
        }
        return { op: def.type as Op, attrs: {}, ...none };
      }
      case "Permute":
        return { op: "Transpose", attrs: { perm: m.msg("permute_param")?.nums("order") ?? [] }, ...none };
      case "Interp": {
        const p = m.msg("interp_param") ?? new TextMessage();
        const h = p.num("height", 0), w = p.num("width", 0);
        if (!h || !w) throw this.#err(def, "unsupported", "Interp without an explicit height and width");
        return {
          op: "Resize",
          attrs: { mode: "linear", coordinate: "align_corners", nearest: "floor", scales: null, sizes: [h, w] },
          ...none,
        };
      }
      case "Deconvolution":
        return this.#conv(def, blobs, true);
      case "Sigmoid":
        return { op: "Sigmoid", attrs: {}, ...none };
      case "TanH":
        return { op: "Tanh", attrs: {}, ...none };
      case "LRN": {
        const p = m.msg("lrn_param") ?? new TextMessage();
        if (p.enumName("norm_region", ["ACROSS_CHANNELS", "WITHIN_CHANNEL"], "ACROSS_CHANNELS") !== "ACROSS_CHANNELS") {
          throw this.#err(def, "unsupported", "LRN WITHIN_CHANNEL has no canonical equivalent");
        }
        const attrs = {
          size: p.num("local_size", 5),
          alpha: p.num("alpha", 1),
          beta: p.num("beta", 0.75),
          bias: p.num("k", 1),
        };
        return { op: "LRN", attrs, ...none };
      }
      case "Dropout":
        return { op: "Dropout", attrs: { ratio: m.msg("dropout_param")?.num("dropout_ratio", 0.5) ?? 0.5 }, ...none };
      case "Softmax":
        return { op: "Softmax", attrs: { axis: m.msg("softmax_param")?.num("axis", 1) ?? 1 }, ...none };
      case "Concat": {
        const p = m.msg("concat_param");
        const axis = p?.has("axis") ? p.num("axis", 1) : p?.num("concat_dim", 1) ?? 1;
        return { op: "Concat", attrs: { axis }, ...none };
      }
      case "Eltwise": {
        const p = m.msg("eltwise_param") ?? new TextMessage();
        const operation = p.enumName("operation", ["PROD", "SUM", "MAX"], "SUM");
        if (operation === "PROD") return { op: "Mul", attrs: {}, ...none };
        if (operation === "MAX") return { op: "Max", attrs: {}, ...none };
        const coeffs = p.nums("coeff");
        if (coeffs.length && coeffs.length !== def.bottom.length) {
          throw this.#err(def, "bad_format", `has ${coeffs.length} coefficients for ${def.bottom.length} inputs`);
        }
        return { op: "Add", attrs: coeffs.some((c) => c !== 1) ? { coeffs } : {}, ...none };
      }
      case "Flatten": {
        const p = m.msg("flatten_param") ?? new TextMessage();
        if (p.num("end_axis", -1) !== -1) throw this.#err(def, "unsupported", "Flatten with end_axis other than -1");
        return { op: "Flatten", attrs: { axis: p.num("axis", 1) }, ...none };
      }
      case "Reshape": {
        const p = m.msg("reshape_param") ?? new TextMessage();
        if (p.num("axis", 0) !== 0 || p.num("num_axes", -1) !== -1) {
          throw this.#err(def, "unsupported", "Reshape of a sub-range of axes (axis/num_axes)");
        }
        return { op: "Reshape", attrs: { shape: p.msg("shape")?.nums("dim") ?? [] }, ...none };
      }
      case "BatchNorm":
        return this.#batchNorm(def, blobs);
      case "Scale":
        return this.#scale(def, blobs);
      default: {
        const params: Record<string, Tensor> = {};
        (blobs ?? []).forEach((b, i) => (params[`blob${i}`] = b));
        return { op: "Passthrough", attrs: { type: def.type }, params };
      }
    }
  }

  #need(def: CaffeLayerDef, blobs: Blobs, n: number, what: string): Tensor[] | null {
    if (blobs === null) return null;
    if (blobs.length < n) throw this.#err(def, "bad_format", `needs ${what} but the model holds ${blobs.length} blobs`);
    return blobs;
  }

  #conv(
    def: CaffeLayerDef,
    blobs: Blobs,
    transposed = false,
  ): { op: Op; attrs: Attrs; params: Record<string, Tensor> } {
    const p = def.msg.msg("convolution_param") ?? new TextMessage();
    if (p.num("axis", 1) !== 1) throw this.#err(def, "unsupported", "convolution over an axis other than 1");
    const kernel = pair(p, "kernel", 0);
    const strides = pair(p, "stride", 1);
    const pad = pair(p, "pad", 0);
    const dil = p.nums("dilation");
    const dilations = dil.length ? [dil[0], dil[1] ?? dil[0]] : [1, 1];
    const group = p.num("group", 1);
    const o = p.num("num_output", 0);
    const bias = p.bool("bias_term", true);
    if (!o || !kernel[0] || !kernel[1]) throw this.#err(def, "bad_format", "missing num_output or kernel size");
    const attrs: Attrs = { kernel, strides, pads: [pad[0], pad[1], pad[0], pad[1]], dilations, group };
    const b = this.#need(def, blobs, bias ? 2 : 1, bias ? "a weight and a bias" : "a weight");
    if (transposed) {
      // Deconvolution weight: [in, out/group, kh, kw], as ONNX ConvTranspose.
      attrs.outputPadding = [0, 0];
      const params: Record<string, Tensor> = {};
      if (!b) return { op: "ConvTranspose", attrs, params };
      const per = (o / group) * kernel[0] * kernel[1];
      if (b[0].size % per !== 0) throw this.#err(def, "bad_format", `weight blob holds ${b[0].size} values`);
      params.weight = this.#reshape(def, b[0], "weight", [b[0].size / per, o / group, kernel[0], kernel[1]]);
      if (bias) params.bias = this.#reshape(def, b[1], "bias", [o]);
      return { op: "ConvTranspose", attrs, params };
    }
    const params: Record<string, Tensor> = {};
    if (!b) {
      params.weight = Tensor.fromBytes(`${def.name}.weight`, "float32", [o, 0, kernel[0], kernel[1]], new Uint8Array());
      return { op: "Conv", attrs, params };
    }
    const per = o * kernel[0] * kernel[1];
    if (b[0].size % per !== 0) {
      throw this.#err(
        def,
        "bad_format",
        `weight blob holds ${b[0].size} values, not a multiple of ${o}x${kernel.join("x")}`,
      );
    }
    params.weight = this.#reshape(def, b[0], "weight", [o, b[0].size / per, kernel[0], kernel[1]]);
    if (bias) params.bias = this.#reshape(def, b[1], "bias", [o]);
    return { op: "Conv", attrs, params };
  }

  #fc(def: CaffeLayerDef, blobs: Blobs): { op: Op; attrs: Attrs; params: Record<string, Tensor> } {
    const p = def.msg.msg("inner_product_param") ?? new TextMessage();
    if (p.num("axis", 1) !== 1) throw this.#err(def, "unsupported", "InnerProduct over an axis other than 1");
    const n = p.num("num_output", 0);
    if (!n) throw this.#err(def, "bad_format", "missing num_output");
    const bias = p.bool("bias_term", true);
    const b = this.#need(def, blobs, bias ? 2 : 1, bias ? "a weight and a bias" : "a weight");
    const params: Record<string, Tensor> = {};
    if (!b) {
      params.weight = Tensor.fromBytes(`${def.name}.weight`, "float32", [n, 0], new Uint8Array());
      return { op: "FC", attrs: {}, params };
    }
    if (b[0].size % n !== 0) {
      throw this.#err(def, "bad_format", `weight blob holds ${b[0].size} values, not a multiple of num_output ${n}`);
    }
    const k = b[0].size / n;
    if (p.bool("transpose", false)) params.weight = transposed(`${def.name}.weight`, b[0], k, n);
    else params.weight = this.#reshape(def, b[0], "weight", [n, k]);
    if (bias) params.bias = this.#reshape(def, b[1], "bias", [n]);
    return { op: "FC", attrs: {}, params };
  }

  #pool(def: CaffeLayerDef): { op: Op; attrs: Attrs } {
    const p = def.msg.msg("pooling_param") ?? new TextMessage();
    const method = p.enumName("pool", ["MAX", "AVE", "STOCHASTIC"], "MAX");
    if (method === "STOCHASTIC") throw this.#err(def, "unsupported", "STOCHASTIC pooling");
    const max = method === "MAX";
    if (p.bool("global_pooling", false)) return { op: max ? "GlobalMaxPool" : "GlobalAvgPool", attrs: {} };
    const single = (name: string, def0: number) => {
      const h = p.has(`${name}_h`) ? p.num(`${name}_h`, def0) : p.num(name === "kernel" ? "kernel_size" : name, def0);
      const w = p.has(`${name}_w`) ? p.num(`${name}_w`, def0) : p.num(name === "kernel" ? "kernel_size" : name, def0);
      return [h, w];
    };
    const kernel = single("kernel", 0), strides = single("stride", 1), pad = single("pad", 0);
    if (!kernel[0] || !kernel[1]) throw this.#err(def, "bad_format", "missing kernel size");
    const ceil = p.enumName("round_mode", ["CEIL", "FLOOR"], "CEIL") !== "FLOOR";
    const attrs: Attrs = { kernel, strides, pads: [pad[0], pad[1], pad[0], pad[1]], ceil };
    // Caffe's AVE divides by the window clipped to the padded image: padded cells count, cells past the pad do not.
    if (!max) attrs.countIncludePad = pad[0] > 0 || pad[1] > 0;
    return { op: max ? "MaxPool" : "AvgPool", attrs };
  }

  #batchNorm(def: CaffeLayerDef, blobs: Blobs): { op: Op; attrs: Attrs; params: Record<string, Tensor> } {
    const p = def.msg.msg("batch_norm_param") ?? new TextMessage();
    const attrs = { epsilon: p.num("eps", 1e-5) };
    const b = this.#need(def, blobs, 3, "mean, variance and scale factor blobs");
    if (!b) return { op: "BatchNorm", attrs, params: {} };
    const c = b[0].size;
    if (b[1].size !== c || b[2].size !== 1) {
      throw this.#err(def, "bad_format", `blob sizes ${b[0].size}, ${b[1].size}, ${b[2].size} (want C, C, 1)`);
    }
    // Caffe stores mean*s and var*s with the moving-average factor s in blob 2; s = 0 means a zero factor.
    const scaled = (src: Tensor, role: string) =>
      lazyFloat32(`${def.name}.${role}`, [c], async () => {
        const s = (await b[2].float32())[0];
        const f = s === 0 ? 0 : 1 / s;
        const v = await src.float32();
        return v.map((x) => x * f);
      });
    return {
      op: "BatchNorm",
      attrs,
      params: {
        scale: Tensor.fromFloat32(`${def.name}.scale`, [c], new Float32Array(c).fill(1)),
        bias: Tensor.fromFloat32(`${def.name}.bias`, [c], new Float32Array(c)),
        mean: scaled(b[0], "mean"),
        var: scaled(b[1], "var"),
      },
    };
  }

  #scale(def: CaffeLayerDef, blobs: Blobs): { op: Op; attrs: Attrs; params: Record<string, Tensor> } {
    const p = def.msg.msg("scale_param") ?? new TextMessage();
    if (def.bottom.length > 1) throw this.#err(def, "unsupported", "Scale with the scale taken from a second input");
    if (p.num("num_axes", 1) === 2 && p.num("axis", 1) === 2 && !p.bool("bias_term", false)) {
      // A factor per (h, w) position (convpress writes one after an average pooling that excludes padded cells):
      // a Mul by the [H, W] constant, which broadcasts over N and C.
      const b = this.#need(def, blobs, 1, "a scale");
      const k = b
        ? b[0].with({ name: `${def.name}.scale` })
        : Tensor.fromFloat32(`${def.name}.scale`, [1], Float32Array.of(1));
      return { op: "Mul", attrs: {}, params: { const: k } };
    }
    if (p.num("num_axes", 1) !== 1) throw this.#err(def, "unsupported", "Scale over more than one axis");
    const bias = p.bool("bias_term", false);
    const attrs = { axis: p.num("axis", 1) };
    const b = this.#need(def, blobs, bias ? 2 : 1, bias ? "a scale and a bias" : "a scale");
    if (!b) return { op: "Scale", attrs, params: {} };
    const c = b[0].size;
    const params: Record<string, Tensor> = { scale: this.#reshape(def, b[0], "scale", [c]) };
    if (bias) params.bias = this.#reshape(def, b[1], "bias", [c]);
    return { op: "Scale", attrs, params };
  }

  #reshape(def: CaffeLayerDef, t: Tensor, role: string, shape: number[]): Tensor {
    if (t.size !== numel(shape)) {
      throw this.#err(
        def,
        "bad_format",
        `${role} blob holds ${t.size} values but the layer needs [${shape.join(",")}]`,
      );
    }
    return t.with({ name: `${def.name}.${role}`, shape });
  }
}

/** A kernel/stride/pad pair from ConvolutionParameter: `_h`/`_w`, or the repeated field (1 or 2 values). */
function pair(p: TextMessage, name: "kernel" | "stride" | "pad", def: number): [number, number] {
  if (p.has(`${name}_h`) || p.has(`${name}_w`)) return [p.num(`${name}_h`, def), p.num(`${name}_w`, def)];
  const v = p.nums(name === "kernel" ? "kernel_size" : name);
  if (!v.length) return [def, def];
  return [v[0], v[1] ?? v[0]];
}

/** A float32 tensor computed on first read (small derived parameters such as BatchNorm's mean). */
export function lazyFloat32(name: string, shape: number[], compute: () => Promise<Float32Array>): Tensor {
  return Tensor.fromChunks(name, "float32", shape, numel(shape) * 4, async function* () {
    const v = await compute();
    yield new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  });
}

/** The transpose of a [rows, cols] blob as [cols, rows] (InnerProduct `transpose: true`); materializes it. */
function transposed(name: string, t: Tensor, rows: number, cols: number): Tensor {
  return lazyFloat32(name, [cols, rows], async () => {
    const a = toFloat32(t.dtype, await t.bytes(), t.name);
    const out = new Float32Array(a.length);
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
    return out;
  });
}
