/**
 * Builds the canonical layer list of a TF.js model, shared by the layers-model and graph-model readers. It follows
 * shapes through the layers (canonical NCHW, from ../../src/model/shapes.ts), turns TF 'SAME' padding into
 * explicit pads, converts kernels to the canonical layout, and remembers which values are flattened NHWC tensors so
 * the FC that consumes one gets its input index permuted from (h, w, c) to (c, h, w).
 *
 * Only the topology is held (model.json is small); parameter tensors stay lazy until a consumer reads them.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Attrs, Dim, Layer, ModelHeader } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { normalizeLayer } from "../../src/ops/registry.ts";
import { Tensor } from "../../src/model/tensor.ts";
import { depthwiseToOihw, flattenMaps, floatChunks, hwioToOihw, permuteColumns, transposeBlocked } from "./layout.ts";

/** TF padding: a mode, or explicit pads [top, left, bottom, right]. */
export type TfPadding = "same" | "valid" | number[];

/** A value flattened from an NHWC tensor of these dimensions (flatten order h, w, c). */
interface FlatInfo {
  c: number;
  h: number;
  w: number;
  /** The rank-4 value the Flatten read, on the Flatten's own output (not on activations after it). */
  src?: string;
}

const PASS_FLAT: ReadonlySet<Op> = new Set<Op>(["Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Dropout", "Identity"]);

/** Collects canonical layers with shape tracking. */
export class TfjsLayerBuilder {
  readonly layers: Layer[] = [];
  readonly tracker: ShapeTracker;
  readonly #flat = new Map<string, FlatInfo>();
  readonly #names = new Set<string>();
  readonly #format: string;

  constructor(header: ModelHeader, format = "TF.js") {
    this.tracker = new ShapeTracker(header);
    this.#format = format;
  }

  /** Canonical shape of a value. */
  shape(v: string): Dim[] | undefined {
    return this.tracker.get(v);
  }

  /** Rank of a value (0 when unknown). */
  rank(v: string): number {
    return this.shape(v)?.length ?? 0;
  }

  /** A known dimension, or an error naming the layer. */
  dim(v: string, axis: number, layer: string): number {
    const d = this.shape(v)?.[axis];
    if (typeof d !== "number") {
      throw new TfjsError(
        "unsupported",
        `Cannot convert TF.js node '${layer}': the shape of its input '${v}' is unknown (pass an input shape)`,
        {
          layer,
        },
      );
    }
    return d;
  }

  /** A unique layer name derived from `base`. */
  unique(base: string): string {
    let n = base, k = 1;
    while (this.#names.has(n)) n = `${base}_${k++}`;
    return n;
  }

  /** Appends a layer and records its output shapes; flatten info passes through activations. */
  add(layer: Layer): string {
    normalizeLayer(layer);
    this.#names.add(layer.name);
    this.layers.push(layer);
    this.tracker.add(layer);
    const f = this.#flat.get(layer.inputs[0]);
    if (f && PASS_FLAT.has(layer.op)) this.#flat.set(layer.outputs[0], { ...f, src: undefined });
    return layer.outputs[0];
  }

  /** Adds a parameterless op. */
  op(op: Op, name: string, inputs: string[], attrs: Attrs = {}, out = name): string {
    return this.add({ name: this.unique(name), op, attrs, inputs, outputs: [out], params: {} });
  }

  /** Explicit pads [t, l, b, r] of TF padding for a window over `input`. */
  pads(input: string, layer: string, padding: TfPadding, k: number[], s: number[], d: number[]): number[] {
    if (Array.isArray(padding)) return padding;
    if (padding === "valid") return [0, 0, 0, 0];
    const h = this.dim(input, 2, layer), w = this.dim(input, 3, layer);
    const total = (size: number, i: number) => {
      const out = Math.ceil(size / s[i]);
      return Math.max(0, (out - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
    };
    const th = total(h, 0), tw = total(w, 1);
    return [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
  }

  /**
   * A conv from a TF kernel: HWIO [kh, kw, I, O], or depthwise [kh, kw, C, m] when `depthwise`.
   * Returns the output value.
   */
  conv(
    name: string,
    out: string,
    input: string,
    kernel: Tensor,
    bias: Tensor | undefined,
    o: { strides: number[]; dilations: number[]; padding: TfPadding; depthwise: boolean },
  ): string {
    const [kh, kw, ci] = kernel.shape;
    if (kernel.shape.length !== 4) {
      throw new TfjsError("bad_format", `TF.js node '${name}': conv kernel '${kernel.name}' is not 4-D`, {
        layer: name,
      });
    }
    const weight = o.depthwise ? depthwiseToOihw(kernel) : hwioToOihw(kernel);
    // The TF.js original, so a TF.js writer can skip the round trip through the canonical layout.
    weight.meta.tfjsKernel = { tensor: kernel, depthwise: o.depthwise };
    const pads = this.pads(input, name, o.padding, [kh, kw], o.strides, o.dilations);
    const params: Record<string, Tensor> = { weight };
    if (bias) params.bias = bias;
    return this.add({
      name: this.unique(name),
      op: "Conv",
      attrs: { kernel: [kh, kw], strides: o.strides, pads, dilations: o.dilations, group: o.depthwise ? ci : 1 },
      inputs: [input],
      outputs: [out],
      params,
    });
  }

  /**
   * An FC from a TF kernel: [in, out], or [out, in] when `transposed` (MatMul transpose_b). A whole-matrix
   * transpose is blocked; a flattened NHWC input permutes each row's index from (h, w, c) to (c, h, w).
   */
  fc(name: string, out: string, input: string, kernel: Tensor, bias: Tensor | undefined, transposed = false): string {
    if (kernel.shape.length !== 2) {
      throw new TfjsError("bad_format", `TF.js node '${name}': dense kernel '${kernel.name}' is not 2-D`, {
        layer: name,
      });
    }
    if (this.rank(input) > 2) {
      throw new TfjsError(
        "unsupported",
        `Cannot convert TF.js node '${name}': a dense layer on a rank-${this.rank(input)} input`,
        {
          layer: name,
        },
      );
    }
    const f = this.#flat.get(input);
    const maps = f && f.h * f.w > 1 ? flattenMaps(f.c, f.h, f.w) : undefined;
    let weight: Tensor;
    if (transposed) {
      const [rows, cols] = kernel.shape;
      weight = maps ? permuteColumns(kernel, rows, cols, maps.tfToCanon) : kernel;
    } else {
      const [rows, cols] = kernel.shape;
      weight = transposeBlocked(kernel, rows, cols, { colMap: maps?.tfToCanon });
    }
    weight.meta.tfjsKernel = { tensor: kernel, transposed, flat: maps ? `${f!.c},${f!.h},${f!.w}` : "" };
    const params: Record<string, Tensor> = { weight };
    if (bias) params.bias = bias;
    return this.add({ name: this.unique(name), op: "FC", attrs: {}, inputs: [input], outputs: [out], params });
  }

  /** A Flatten of an NHWC tensor (its order is h, w, c). */
  flatten(name: string, out: string, input: string): string {
    const s = this.shape(input);
    const v = this.op("Flatten", name, [input], { axis: 1 }, out);
    if (s && s.length === 4 && s.slice(1).every((d) => typeof d === "number")) {
      this.#flat.set(v, { c: s[1] as number, h: s[2] as number, w: s[3] as number, src: input });
    }
    return v;
  }

  /**
   * `v` in TF's element order: a flattened NHWC tensor (held in the canonical c, h, w order) is regrouped to h, w, c
   * with Reshape, Transpose and Reshape layers named after `name`. For ops whose result depends on the order of a flat
   * value's elements (indices from TopK, gathers). Other values come back as they are.
   */
  tfOrder(v: string, name: string): string {
    const f = this.#flat.get(v);
    if (!f || !this.isPermutedFlat(v)) return v;
    const n = this.shape(v)?.[0] ?? -1;
    // From the Flatten's rank-4 input when there is one: writers may hold the flat value itself in TF's order already.
    const a = f.src ?? this.op("Reshape", `${name}/unflat`, [v], { shape: [-1, f.c, f.h, f.w] }, `${name}/unflat`);
    const t = this.op("Transpose", `${name}/hwc`, [a], { perm: [0, 2, 3, 1] }, `${name}/hwc`);
    // Through rank 3: a rank-4 -> rank-2 reshape that keeps the batch reads as a flatten, which writers may make lazy.
    const r3 = this.op("Reshape", `${name}/hw_c`, [t], { shape: [-1, f.h * f.w, f.c] }, `${name}/hw_c`);
    const flat = [typeof n === "number" ? n : -1, -1];
    return this.op("Reshape", `${name}/tf_flat`, [r3], { shape: flat }, `${name}/tf_flat`);
  }

  /** True when `v` is a flattened NHWC tensor whose order differs from the canonical one. */
  isPermutedFlat(v: string): boolean {
    const f = this.#flat.get(v);
    return f !== undefined && f.h * f.w > 1 && f.c > 1;
  }

  /** An activation by Keras/TF name; `linear` adds nothing. Returns the output value. */
  activation(kind: string, name: string, input: string, out: string, alpha?: number): string {
    switch (kind.toLowerCase()) {
      case "linear":
      case "":
        return input;
      case "relu":
        return this.op("Relu", name, [input], {}, out);
      case "relu6":
        return this.op("Clip", name, [input], { min: 0, max: 6 }, out);
      case "sigmoid":
        return this.op("Sigmoid", name, [input], {}, out);
      case "tanh":
        return this.op("Tanh", name, [input], {}, out);
      case "softmax":
        return this.op("Softmax", name, [input], {
          axis: this.rank(input) === 4 ? 1 : Math.max(1, this.rank(input) - 1),
        }, out);
      case "leakyrelu":
        return this.op("LeakyRelu", name, [input], { alpha: alpha ?? 0.2 }, out);
      default:
        throw new TfjsError(
          "unsupported",
          `Cannot convert TF.js node '${name}': activation '${kind}' has no canonical op`,
          {
            layer: name,
          },
        );
    }
  }

  /** Canonical axis of a TF (NHWC) axis of a tensor of rank `rank`. */
  static axis(axis: number, rank: number): number {
    const a = axis < 0 ? axis + rank : axis;
    if (rank !== 4) return a;
    return [0, 2, 3, 1][a];
  }

  /** A per-channel Scale from a constant: x*c (Mul), x+c (Add), x-c (Sub). Scalars broadcast to C channels. */
  scaleConst(name: string, out: string, input: string, kind: "Mul" | "Add" | "Sub", c: Tensor): string {
    const channels = this.dim(input, 1, name);
    const n = c.size;
    if (n !== 1 && n !== channels) {
      throw new TfjsError(
        "unsupported",
        `Cannot convert TF.js node '${name}': ${kind} by a constant of shape [${c.shape}] on ${channels} channels`,
        {
          layer: name,
        },
      );
    }
    const expand = (f: (v: number) => number, tname: string) =>
      Tensor.fromChunks(tname, "float32", [channels], channels * 4, async function* () {
        const vals: number[] = [];
        for await (const a of floatChunks(c)) vals.push(...a);
        const o = new Float32Array(channels);
        for (let i = 0; i < channels; i++) o[i] = f(vals[n === 1 ? 0 : i]);
        yield new Uint8Array(o.buffer);
      });
    const ones = Tensor.fromFloat32(`${c.name}/ones`, [channels], new Float32Array(channels).fill(1));
    const params: Record<string, Tensor> = kind === "Mul"
      ? { scale: expand((v) => v, c.name) }
      : { scale: ones, bias: expand(kind === "Sub" ? (v) => -v : (v) => v, c.name) };
    return this.add({
      name: this.unique(name),
      op: "Scale",
      attrs: { axis: 1 },
      inputs: [input],
      outputs: [out],
      params,
    });
  }

  /** A message-ready name for errors. */
  get format(): string {
    return this.#format;
  }
}
