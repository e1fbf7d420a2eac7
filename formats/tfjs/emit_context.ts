/**
 * What the two TF.js emitters share while a model streams through them: the weight shards (./shards.ts), the
 * name space (layer and node names are one set), the shape tracker, the requested kind, the small graph-only
 * constants held back until the kind is known, and the layout rules both sides must agree on (TF padding modes,
 * which values are flattened NHWC maps, the FC kernel layout).
 *
 * The Keras emitter (./keras_ops.ts) and the GraphDef emitter (./graph_ops.ts, ./graph_def.ts) see the same
 * layer in turn, Keras first; a layer parameter both sides name is written once, by whichever asks first.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Dim, Layer, ModelHeader } from "../../src/model/types.ts";
import { ShapeTracker, windowOut } from "../../src/model/shapes.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { PadAttrs } from "../../src/ops/tensor_ops.ts";
import { flattenMaps, permuteColumns, transposeBlocked } from "./layout.ts";
import type { QuantizeMode, ShardWriter } from "./shards.ts";

/** The model kind asked for (`auto`: a layers-model when every layer has a Keras layer). */
export type TfjsKind = "layers-model" | "graph-model" | "auto";

/** TF padding for a window: a mode, or explicit pads [top, left, bottom, right] to apply with a Pad first. */
export type TfPaddingMode = "same" | "valid" | number[];

/** A value flattened from an NHWC map of these dimensions (flatten order h, w, c). */
export interface FlatInfo {
  c: number;
  h: number;
  w: number;
}

/** Why a kind cannot express the model (the first reason wins). */
export interface Blocker {
  layer: string;
  what: string;
}

/** The largest finite float32, negated: the pad value for max pooling. */
export const LOWEST_FLOAT32 = -3.4028234663852886e38;

/** Ops an activation's flatten info passes through unchanged. */
const KEEPS_FLATTENING = new Set(["Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Dropout", "Identity"]);

/**
 * True when `op` may read a flattened NHWC map as TF.js holds it (h, w, c order): an FC (its kernel is permuted),
 * and the element-wise ops that pass the flatten info on. Any other reader needs the canonical (c, h, w) order.
 */
export function readsTfFlat(op: string): boolean {
  return op === "FC" || KEEPS_FLATTENING.has(op);
}

/** Sanitizes a name for tfjs (layer names and graph node names: letters, digits, `_`; a letter first). */
export function cleanName(s: string): string {
  let n = s.replace(/[^A-Za-z0-9_]/g, "_").replace(/^_+/, "");
  if (!/^[A-Za-z]/.test(n)) n = `n${n}`;
  return n;
}

/** NCHW shape -> the NHWC shape TF.js sees (other ranks unchanged). */
export function toNhwcShape<T>(s: readonly T[]): T[] {
  return s.length === 4 ? [s[0], s[2], s[3], s[1]] : [...s];
}

interface HeldConst {
  name: string;
  shape: number[];
  values: number[];
  dtype: "int32" | "float32";
}

/** The state both emitters share for one write. */
export class EmitContext {
  readonly kind: TfjsKind;
  readonly shards: ShardWriter;
  readonly quantize?: QuantizeMode;
  tracker: ShapeTracker;
  readonly #names = new Set<string>();
  readonly #flat = new Map<string, FlatInfo>();
  readonly #held: HeldConst[] = [];
  /** Set once a layer has no Keras layer: from then on only the GraphDef side is built. */
  kerasBlocker?: Blocker;
  /** Per layer: parameters already written (by name) and names already chosen (by key). */
  #layerParams = new Map<string, readonly number[]>();
  #layerNames = new Map<string, string>();

  constructor(header: ModelHeader, shards: ShardWriter, kind: TfjsKind, quantize?: QuantizeMode) {
    this.kind = kind;
    this.shards = shards;
    this.quantize = quantize;
    this.tracker = new ShapeTracker(header);
  }

  /** True while a layers-model is still possible and wanted. */
  get kerasLive(): boolean {
    return this.kind !== "graph-model" && !this.kerasBlocker;
  }

  /** True when GraphDef nodes are recorded (not when a layers-model is asked for). */
  get graphLive(): boolean {
    return this.kind !== "layers-model";
  }

  /** Starts a layer: forgets the previous layer's shared parameters and names. */
  beginLayer(): void {
    this.#layerParams = new Map();
    this.#layerNames = new Map();
  }

  /** A fresh name derived from `base` (cleaned), taken from the shared name space. */
  uniqueName(base: string): string {
    let n = cleanName(base), k = 1;
    const b = n;
    while (this.#names.has(n)) n = `${b}_${k++}`;
    this.#names.add(n);
    return n;
  }

  /** Like {@link uniqueName}, but both emitters asking with the same `key` in one layer get the same name. */
  layerName(key: string, base: string): string {
    let n = this.#layerNames.get(key);
    if (n === undefined) this.#layerNames.set(key, n = this.uniqueName(base));
    return n;
  }

  /** Takes `name` as it is (a derived name such as `conv1_pad`) into the name space. */
  reserveName(name: string): void {
    this.#names.add(name);
  }

  /** Records that no Keras layer expresses `layer`: an error when a layers-model was asked for. */
  blockKeras(layer: string, what: string): void {
    if (this.kind === "layers-model") {
      throw new TfjsError("unsupported", `Cannot write layer '${layer}' to a TF.js layers-model: ${what}`, { layer });
    }
    // From now on graph-only constants are written straight away (the driver flushes the held ones after this layer).
    this.kerasBlocker ??= { layer, what };
  }

  /** Throws: TF.js (either kind) cannot express `layer`. */
  failTfjs(layer: string, what: string): never {
    throw new TfjsError("unsupported", `Cannot write layer '${layer}' to TF.js: ${what}`, { layer });
  }

  /**
   * A layer parameter under its own name (`conv1/kernel`): written to the shards once per layer, by the first side
   * asking. Returns its shape.
   */
  async param(name: string, make: () => Tensor): Promise<readonly number[]> {
    const seen = this.#layerParams.get(name);
    if (seen) return seen;
    const t = make();
    this.#layerParams.set(name, t.shape);
    await this.shards.writeFloat(name, t, this.quantize);
    return t.shape;
  }

  /** A weight only the GraphDef side uses: written now. */
  async graphWeight(name: string, t: Tensor): Promise<void> {
    await this.shards.writeFloat(name, t, this.quantize);
  }

  /** A small graph-only constant: written now, or held while a layers-model is still possible. */
  async smallConst(name: string, shape: number[], values: number[], dtype: "int32" | "float32"): Promise<void> {
    this.#held.push({ name, shape, values, dtype });
    if (!(this.kerasLive && this.kind === "auto")) await this.flushHeld();
  }

  /** Writes the held small constants. */
  async flushHeld(): Promise<void> {
    for (const c of this.#held.splice(0)) {
      if (c.dtype === "int32") await this.shards.writeInt32(c.name, c.shape, c.values);
      else {
        await this.shards.write(new Uint8Array(Float32Array.from(c.values).buffer));
        this.shards.entries.push({ name: c.name, shape: c.shape, dtype: "float32" });
      }
    }
  }

  /** True when small constants are still held. */
  get holding(): boolean {
    return this.#held.length > 0;
  }

  /** The canonical shape of a value, as tracked so far. */
  shape(v: string): Dim[] | undefined {
    return this.tracker.get(v);
  }

  /** The shape of `v` when every axis but the batch is known. */
  knownDims(v: string): number[] | undefined {
    const s = this.shape(v);
    return s && s.slice(1).every((d) => typeof d === "number") ? s as number[] : undefined;
  }

  /** Like {@link knownDims}, or an error naming the layer. */
  requireDims(v: string, layer: string): number[] {
    const s = this.knownDims(v);
    if (!s) {
      throw new TfjsError("unsupported", `Cannot write layer '${layer}' to TF.js: the shape of '${v}' is unknown`, {
        layer,
      });
    }
    return s;
  }

  /** Flatten info of `v`, when it is a flattened NHWC map. */
  flatOf(v: string): FlatInfo | undefined {
    return this.#flat.get(v);
  }

  /** Records that `v` is a flattened NHWC map. */
  setFlat(v: string, f: FlatInfo): void {
    this.#flat.set(v, f);
  }

  /** After a layer: flatten info passes through activations. */
  passFlat(l: Layer): void {
    const f = this.#flat.get(l.inputs[0]);
    if (f && KEEPS_FLATTENING.has(l.op)) this.#flat.set(l.outputs[0], f);
  }

  /** The FC kernel as TF.js holds it: Dense [in, out], or [out, in] under MatMul `transpose_b` for a graph-model. */
  fcKernel(l: Layer, x: string): { kernel: Tensor; transposeB: boolean } {
    const W = l.params.weight;
    const [o, n] = W.shape;
    const f = this.flatOf(x);
    const maps = f && f.h * f.w > 1 && f.c > 1 ? flattenMaps(f.c, f.h, f.w) : undefined;
    const transposeB = this.kind === "graph-model";
    const orig = W.meta.tfjsKernel as { tensor: Tensor; transposed: boolean; flat: string } | undefined;
    const flatKey = maps ? `${f!.c},${f!.h},${f!.w}` : "";
    const kernel = orig && orig.transposed === transposeB && orig.flat === flatKey
      ? orig.tensor
      : transposeB
      ? (maps ? permuteColumns(W, o, n, maps.canonToTf) : W)
      : transposeBlocked(W, o, n, { rowMap: maps?.canonToTf });
    return { kernel, transposeB };
  }

  /** True when every activation input of `l` has the same known shape (Keras merge layers do not broadcast). */
  sameInputShapes(l: Layer): boolean {
    const s = l.inputs.map((v) => this.shape(v));
    if (s.some((x) => !x)) return true; // unknown: the merge layers' own shape rule applies, as before
    return s.every((x) => JSON.stringify(x) === JSON.stringify(s[0]));
  }

  /**
   * TF padding for a window: "same"/"valid", or explicit pads to apply with a Pad first. Without a known input
   * size, only what holds for every size is used: no pads, stride-1 'same', or explicit pads.
   */
  paddingMode(
    x: string,
    layer: string,
    k: number[],
    s: number[],
    d: number[],
    pads: number[],
    ceil = false,
  ): TfPaddingMode {
    const dims = this.knownDims(x);
    if (!dims) {
      if (ceil) this.requireDims(x, layer); // throws: ceil rounding needs the size
      if (pads.every((p) => p === 0)) return "valid";
      const t = (i: number) => (k[i] - 1) * d[i];
      const same1 = [
        Math.floor(t(0) / 2),
        Math.floor(t(1) / 2),
        t(0) - Math.floor(t(0) / 2),
        t(1) - Math.floor(t(1) / 2),
      ];
      return s[0] === 1 && s[1] === 1 && same1.join() === pads.join() ? "same" : [...pads];
    }
    const [, , h, w] = dims;
    const outHW = [
      windowOut(h, k[0], s[0], pads[0], pads[2], d[0], ceil),
      windowOut(w, k[1], s[1], pads[1], pads[3], d[1], ceil),
    ];
    const validOut = (size: number, i: number, p0: number, p1: number) =>
      Math.floor((size + p0 + p1 - ((k[i] - 1) * d[i] + 1)) / s[i]) + 1;
    if (pads.every((p) => p === 0) && validOut(h, 0, 0, 0) === outHW[0] && validOut(w, 1, 0, 0) === outHW[1]) {
      return "valid";
    }
    const total = (size: number, i: number) =>
      Math.max(0, (Math.ceil(size / s[i]) - 1) * s[i] + (k[i] - 1) * d[i] + 1 - size);
    const th = total(h, 0), tw = total(w, 1);
    const same = [Math.floor(th / 2), Math.floor(tw / 2), th - Math.floor(th / 2), tw - Math.floor(tw / 2)];
    if (same.join() === pads.join() && outHW[0] === Math.ceil(h / s[0]) && outHW[1] === Math.ceil(w / s[1])) {
      return "same";
    }
    // Explicit: grow bottom/right until a valid window gives the canonical output size (ceil mode).
    const p = [...pads];
    while (validOut(h, 0, p[0], p[2]) < outHW[0]) p[2]++;
    while (validOut(w, 1, p[1], p[3]) < outHW[1]) p[3]++;
    return p;
  }
}

/** True when a Softmax runs on the last TF.js axis already (NHWC channels for rank 4): no transposes needed. */
export function softmaxOnLastAxis(ctx: EmitContext, l: Layer): boolean {
  const rank = ctx.shape(l.inputs[0])?.length ?? 2;
  const axis = Number(l.attrs.axis ?? 1);
  return rank === 4 ? axis === 1 || axis === -3 : axis === rank - 1 || axis === -1;
}

/** The spatial pads [top, left, bottom, right] of a constant Pad that touches only H and W, else undefined. */
export function spatialPads(l: Layer): number[] | undefined {
  const a = attrsOf<PadAttrs>(l);
  const q = a.pads;
  const spatialOnly = q.length === 8 && !q[0] && !q[1] && !q[4] && !q[5] && q.every((v) => v >= 0);
  return spatialOnly && a.mode === "constant" ? [q[2], q[3], q[6], q[7]] : undefined;
}

/** Pool attributes both sides read the same way. */
export function poolPlan(
  ctx: EmitContext,
  l: Layer,
): { k: number[]; s: number[]; pads: number[]; ceil: boolean; max: boolean; mode: TfPaddingMode } {
  const a = l.attrs;
  const k = a.kernel as number[];
  const s = (a.strides as number[] | undefined) ?? [1, 1];
  const pads = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
  const ceil = Boolean(a.ceil);
  const max = l.op === "MaxPool";
  const include = Boolean(a.countIncludePad);
  let mode = ctx.paddingMode(l.inputs[0], l.name, k, s, [1, 1], pads, ceil);
  if (mode === "same" && !max && include && pads.some((p) => p > 0)) mode = [...pads];
  if (Array.isArray(mode)) {
    const extra = mode[2] !== pads[2] || mode[3] !== pads[3];
    if (!max && (!include || extra)) {
      ctx.failTfjs(l.name, `AvgPool with pads [${pads}]${ceil ? " in ceil mode" : ""} that TF.js cannot express`);
    }
  }
  return { k, s, pads, ceil, max, mode };
}

/** Conv attributes both sides read the same way. */
export function convPlan(ctx: EmitContext, l: Layer): {
  s: number[];
  d: number[];
  group: number;
  depthwise: boolean;
  mode: TfPaddingMode;
} {
  const a = l.attrs, W = l.params.weight;
  const [, ig, kh, kw] = W.shape;
  const group = Number(a.group ?? 1);
  const c = ig * group; // input channels, known from the weight even when shapes are not
  const s = (a.strides as number[] | undefined) ?? [1, 1];
  const d = (a.dilations as number[] | undefined) ?? [1, 1];
  const pads = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
  const mode = ctx.paddingMode(l.inputs[0], l.name, [kh, kw], s, d, pads);
  return { s, d, group, depthwise: group > 1 && group === c && ig === 1, mode };
}

/**
 * True when a rank-2 reshape `spec` of a rank-4 value of shape `s` keeps the batch axis ([N, -1], [-1, C*H*W]): a
 * flatten. Any other rank-2 target ([-1, 2], say) regroups the elements and is a plain reshape.
 */
export function keepsBatch(spec: number[], s: readonly Dim[]): boolean {
  const rest = s.slice(1).every((d) => typeof d === "number")
    ? (s.slice(1) as number[]).reduce((p, d) => p * d, 1)
    : undefined;
  return spec[1] === -1 ? spec[0] === s[0] : spec[1] === rest && (spec[0] === -1 || spec[0] === s[0]);
}
