/**
 * Writes a canonical model stream as a TF.js model: weight shards as the layers arrive, `model.json` last (it needs
 * the whole manifest). Output is a folder, or a tar stream (stdout, or a path ending in `.tar`) with the shards first
 * and `model.json` as the last entry.
 *
 * Kind: a layers-model (Keras JSON) when the network is a plain stack of Keras layers, a graph-model (GraphDef JSON)
 * otherwise, or as `options.tfjsKind` says. Both are built side by side while streaming, and one is chosen at the
 * end. Small graph-only constants (reshape shapes, paddings, axes) are held until then so a layers-model carries no
 * weight tfjs-layers cannot place.
 *
 * Layout: canonical NCHW becomes NHWC (models written for TF.js take channels-last input); conv kernels OIHW ->
 * HWIO; FC [out, in] -> Dense [in, out] (a blocked transpose), or kept as [out, in] under MatMul `transpose_b` when
 * a graph-model is asked for; the FC after a Flatten of a 4-D tensor gets its input index permuted from (c, h, w)
 * to (h, w, c), row by row.
 *
 * @module
 */
import { ConvpressError, TfjsError } from "../../src/errors.ts";
import { asOutputError, openFileSink, outputError, stdoutSink } from "../../src/bytes/byte_sink.ts";
import type { ByteSink } from "../../src/bytes/byte_sink.ts";
import type { Dim, Layer, ModelStream, ValueInfo } from "../../src/model/types.ts";
import { inferShapes, ShapeTracker, windowOut } from "../../src/model/shapes.ts";
import { attrsOf } from "../../src/ops/registry.ts";
import type { PadAttrs } from "../../src/ops/tensor_ops.ts";
import { GRAPH_OPS, type GraphEmitter, keepsBatch } from "./graph_ops.ts";
import { Tensor } from "../../src/model/tensor.ts";
import type { TfjsWriteOptions as WriteOptions } from "./options.ts";
import { flattenMaps, oihwToDepthwise, oihwToHwio, permuteColumns, transposeBlocked } from "./layout.ts";
import { DEFAULT_SHARD_SIZE, type QuantizeMode, ShardWriter } from "./shards.ts";
import { endTar, writeTarEntry } from "../../src/bytes/tar.ts";
import type { AttrValueJson, KerasLayerJson, ModelJson, NodeDefJson } from "./types.ts";
import { makeOutputDir, makeTempDir, removeTemporary } from "../../src/bytes/temp_files.ts";

const enc = new TextEncoder();
const b64 = (s: string) => btoa(s);
const ints = (v: number[]): AttrValueJson => ({ list: { i: v.map(String) } });
const str = (s: string): AttrValueJson => ({ s: b64(s) });
const LOWEST = -3.4028234663852886e38;

interface KLayer {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound: string[];
}

/** Why a kind cannot express the model (first reason wins). */
interface Blocker {
  layer: string;
  what: string;
}

/** Writes `model` as TF.js to `path` (a folder, `-` for a tar on stdout, or `*.tar`). */
export async function writeTfjs(model: ModelStream, path: string, options: WriteOptions = {}): Promise<void> {
  const toTar = path === "-" || path.endsWith(".tar");
  const outDir = toTar
    ? undefined
    : path.endsWith("model.json")
    ? path.slice(0, path.lastIndexOf("/") + 1) || "."
    : path;
  if (outDir) {
    await makeOutputDir(outDir).catch((e) => {
      throw outputError(outDir, e);
    });
  }
  const spool = outDir
    ? await makeTempDir({ dir: outDir, prefix: ".convpress-" }).catch((e) => {
      throw outputError(outDir, e);
    })
    : await makeTempDir({ prefix: "convpress-tfjs-out-" });
  const shards = new ShardWriter(spool, options.shardSize ?? DEFAULT_SHARD_SIZE, options.notice);
  let sink: ByteSink | undefined;
  try {
    const w = new TfjsBuilder(model, shards, options);
    await w.run();
    const json = await w.finish();
    if (outDir) {
      const stale = await previousShards(outDir);
      const names = await shards.finish(outDir);
      json.weightsManifest[0].paths = names;
      sink = await openFileSink(`${outDir.replace(/\/$/, "")}/model.json`);
      await sink.write(enc.encode(JSON.stringify(json)));
      await sink.close();
      // The model.json this one replaced listed shards the new one does not: remove them, now that it has landed.
      for (const n of stale) if (!names.includes(n)) await Deno.remove(`${outDir}/${n}`).catch(() => {});
    } else {
      const names = await shards.finish(spool);
      json.weightsManifest[0].paths = names;
      sink = path === "-" ? stdoutSink() : await openFileSink(path);
      for (const n of names) {
        const f = await Deno.open(`${spool}/${n}`, { read: true });
        try {
          await writeTarEntry(sink, n, (await f.stat()).size, f.readable);
        } catch (e) {
          try {
            f.close();
          } catch { /* closed by the stream */ }
          throw e;
        }
      }
      const body = enc.encode(JSON.stringify(json));
      await writeTarEntry(sink, "model.json", body.length, [body]);
      await endTar(sink);
      await sink.close();
    }
  } catch (e) {
    shards.close();
    await sink?.abort();
    await model.layers.cancel().catch(() => {});
    throw asOutputError(path, e);
  } finally {
    await removeTemporary(spool);
  }
}

/** Shard names (`groupG-shardKofN.bin` only) listed by a model.json already in `dir`, which this write replaces. */
async function previousShards(dir: string): Promise<string[]> {
  try {
    const json = JSON.parse(await Deno.readTextFile(`${dir}/model.json`));
    const paths = (json?.weightsManifest ?? []).flatMap((g: { paths?: unknown }) =>
      Array.isArray(g?.paths) ? g.paths : []
    );
    return paths.filter((p: unknown): p is string => typeof p === "string" && /^group\d+-shard\d+of\d+\.bin$/.test(p));
  } catch {
    return [];
  }
}

/** Sanitizes a name for tfjs (layer names and graph node names: letters, digits, `_`; a letter first). */
function cleanName(s: string): string {
  let n = s.replace(/[^A-Za-z0-9_]/g, "_").replace(/^_+/, "");
  if (!/^[A-Za-z]/.test(n)) n = `n${n}`;
  return n;
}

class TfjsBuilder {
  readonly #model: ModelStream;
  readonly #shards: ShardWriter;
  readonly #kind: "layers-model" | "graph-model" | "auto";
  readonly #quantize?: QuantizeMode;
  #tracker: ShapeTracker;
  #tracked = 0;
  readonly #declared: { value: string; node: string }[] = [];
  readonly #names = new Set<string>();
  // Keras side: value -> producing Keras layer name; graph side: value -> node name.
  readonly #kOut = new Map<string, string>();
  readonly #gOut = new Map<string, string>();
  readonly #flat = new Map<string, { c: number; h: number; w: number }>();
  readonly #klayers: KLayer[] = [];
  readonly #nodes: NodeDefJson[] = [];
  readonly #deferred: { name: string; shape: number[]; values: number[]; dtype: "int32" | "float32" }[] = [];
  #kBlock?: Blocker;
  /** Set when the graph side could not be built for want of shapes; an error if a graph-model is chosen. */
  #graphUnknown?: Blocker;

  constructor(model: ModelStream, shards: ShardWriter, options: WriteOptions) {
    this.#model = model;
    this.#shards = shards;
    this.#kind = options.tfjsKind ?? "auto";
    this.#quantize = options.quantize;
    this.#tracker = new ShapeTracker(model.header);
  }

  /** True while a layers-model is still possible and wanted. */
  get #kerasLive(): boolean {
    return this.#kind !== "graph-model" && !this.#kBlock;
  }

  /** True when the graph side must be built (not when a layers-model is asked for). */
  get #graphLive(): boolean {
    return this.#kind !== "layers-model";
  }

  #unique(base: string): string {
    let n = cleanName(base), k = 1;
    const b = n;
    while (this.#names.has(n)) n = `${b}_${k++}`;
    this.#names.add(n);
    return n;
  }

  #blockKeras(layer: string, what: string): void {
    if (this.#kind === "layers-model") {
      throw new TfjsError("unsupported", `Cannot write layer '${layer}' to a TF.js layers-model: ${what}`, { layer });
    }
    // From now on graph-only constants are written straight away (run() flushes the held ones after this layer).
    this.#kBlock ??= { layer, what };
  }

  #blockGraph(layer: string, what: string): never {
    throw new TfjsError("unsupported", `Cannot write layer '${layer}' to TF.js: ${what}`, { layer });
  }

  async #flushDeferred(): Promise<void> {
    const d = this.#deferred.splice(0);
    for (const c of d) {
      if (c.dtype === "int32") await this.#shards.writeInt32(c.name, c.shape, c.values);
      else {
        await this.#shards.write(new Uint8Array(Float32Array.from(c.values).buffer));
        this.#shards.entries.push({ name: c.name, shape: c.shape, dtype: "float32" });
      }
    }
  }

  // ---- graph helpers

  #node(op: string, name: string, input: string[], attr: Record<string, AttrValueJson> = {}): string {
    if (this.#graphLive) this.#nodes.push({ name, op, input, attr: { T: { type: "DT_FLOAT" }, ...attr } });
    return name;
  }

  #constNode(name: string, dtype: "DT_FLOAT" | "DT_INT32", shape: number[]): void {
    this.#nodes.push({
      name,
      op: "Const",
      attr: {
        dtype: { type: dtype },
        value: { tensor: { dtype, tensorShape: { dim: shape.map((s) => ({ size: String(s) })) } } },
      },
    });
  }

  /** A small graph-only constant: written now, or held until the kind is known. */
  async #smallConst(
    base: string,
    shape: number[],
    values: number[],
    dtype: "int32" | "float32" = "int32",
  ): Promise<string> {
    const name = this.#unique(base);
    if (!this.#graphLive) return name;
    this.#constNode(name, dtype === "int32" ? "DT_INT32" : "DT_FLOAT", shape);
    const c = { name, shape, values, dtype };
    if (this.#kerasLive && this.#kind === "auto") this.#deferred.push(c);
    else {
      this.#deferred.push(c);
      await this.#flushDeferred();
    }
    return name;
  }

  /** A weight: written to the shards, and a Const node on the graph side. */
  async #weight(name: string, t: Tensor): Promise<string> {
    await this.#shards.writeFloat(name, t, this.#quantize);
    if (this.#graphLive) this.#constNode(name, "DT_FLOAT", [...t.shape]);
    return name;
  }

  // ---- keras helpers

  #k(class_name: string, name: string, config: Record<string, unknown>, inputs: string[]): void {
    if (!this.#kerasLive) return;
    const inbound = inputs.map((v) => {
      const k = this.#kOut.get(v);
      if (k === undefined) throw new Error(`no keras producer for ${v}`);
      return k;
    });
    this.#klayers.push({ name, class_name, config: { name, trainable: true, ...config }, inbound });
  }

  #shape(v: string): Dim[] | undefined {
    return this.#tracker.get(v);
  }

  #tryDims(v: string): number[] | undefined {
    const s = this.#shape(v);
    return s && s.slice(1).every((d) => typeof d === "number") ? s as number[] : undefined;
  }

  #dims(v: string, layer: string): number[] {
    const s = this.#shape(v);
    if (!s || s.slice(1).some((d) => typeof d !== "number")) {
      throw new TfjsError("unsupported", `Cannot write layer '${layer}' to TF.js: the shape of '${v}' is unknown`, {
        layer,
      });
    }
    return s as number[];
  }

  /** Registers a value's producers on both sides. */
  #out(v: string, keras: string | undefined, node: string | undefined): void {
    if (keras !== undefined) this.#kOut.set(v, keras);
    if (node !== undefined) this.#gOut.set(v, node);
  }

  #g(v: string): string {
    const n = this.#gOut.get(v);
    if (n === undefined && this.#graphUnknown) return "?"; // the graph side is abandoned (see #flatten)
    if (n === undefined) throw new TfjsError("bad_format", `TF.js writer: value '${v}' has no producer`);
    return n;
  }

  /** Declares a model input on both sides (NCHW -> NHWC). */
  #declareInput(i: ValueInfo): void {
    const name = this.#unique(i.name);
    const s = i.shape;
    const tf = s.length === 4 ? [s[0], s[2], s[3], s[1]] : s;
    if (this.#graphLive) {
      this.#nodes.push({
        name,
        op: "Placeholder",
        attr: {
          dtype: { type: "DT_FLOAT" },
          shape: { shape: { dim: tf.map((d) => ({ size: String(typeof d === "number" ? d : -1) })) } },
        },
      });
    }
    this.#klayers.push({
      name,
      class_name: "InputLayer",
      config: {
        batch_input_shape: tf.map((d, k) => (k === 0 || typeof d !== "number" ? null : d)),
        dtype: "float32",
        sparse: false,
        name,
      },
      inbound: [],
    });
    this.#out(i.name, name, name);
    this.#declared.push({ value: i.name, node: name });
  }

  /**
   * Inputs a reader declares only late (ONNX on stdin states graph inputs after the nodes): declared when first
   * used, with the header's shape if it is known by then; finish() fills in shapes learned later still.
   */
  #lateInputs(l: Layer): void {
    for (const v of l.inputs) {
      if (this.#kOut.has(v) || this.#gOut.has(v)) continue;
      const spatial = ["Conv", "MaxPool", "AvgPool", "GlobalAvgPool", "GlobalMaxPool", "Pad", "LRN"].includes(l.op);
      const info = this.#model.header.inputs.find((i) => i.name === v) ??
        { name: v, dtype: "float32", shape: spatial ? [null, null, null, null] : [null, null] };
      this.#declareInput(info);
      if (this.#tracked === 0) this.#tracker = new ShapeTracker({ ...this.#model.header, inputs: [info] });
    }
  }

  async run(): Promise<void> {
    for (const i of this.#model.header.inputs) this.#declareInput(i);
    for await (const layer of this.#model.layers) {
      try {
        this.#lateInputs(layer);
        await this.#layer(layer);
      } catch (e) {
        if (e instanceof ConvpressError && !e.layer) e.layer = layer.name;
        throw e;
      }
      this.#tracker.add(layer);
      this.#tracked++;
      if (!this.#kerasLive && this.#deferred.length) await this.#flushDeferred();
      const f = this.#flat.get(layer.inputs[0]);
      if (f && ["Relu", "LeakyRelu", "Clip", "Sigmoid", "Tanh", "Dropout", "Identity"].includes(layer.op)) {
        this.#flat.set(layer.outputs[0], f);
      }
    }
  }

  async #layer(l: Layer): Promise<void> {
    const x = l.inputs[0];
    const out = l.outputs[0];
    const a = l.attrs;
    const name = this.#unique(l.name);
    const alias = () => this.#out(out, this.#kOut.get(x), this.#gOut.get(x));
    switch (l.op) {
      case "Conv":
        return await this.#conv(l, name);
      case "FC":
        return await this.#fc(l, name);
      case "BatchNorm": {
        const rank = this.#shape(x)?.length ?? 4;
        const p = l.params;
        const w = [
          await this.#weight(`${name}/gamma`, p.scale),
          await this.#weight(`${name}/beta`, p.bias),
          await this.#weight(`${name}/moving_mean`, p.mean),
          await this.#weight(`${name}/moving_variance`, p.var),
        ];
        const eps = Number(a.epsilon ?? 1e-5);
        this.#k(
          "BatchNormalization",
          name,
          { axis: rank - 1, epsilon: eps, momentum: 0.99, center: true, scale: true },
          [x],
        );
        this.#node("FusedBatchNormV3", name, [this.#g(x), ...w], {
          epsilon: { f: eps },
          data_format: str("NHWC"),
          is_training: { b: false },
          U: { type: "DT_FLOAT" },
        });
        return this.#out(out, name, name);
      }
      case "Relu":
        return this.#act(l, name, "relu", "Relu");
      case "Sigmoid":
        return this.#act(l, name, "sigmoid", "Sigmoid");
      case "Tanh":
        return this.#act(l, name, "tanh", "Tanh");
      case "Softmax": {
        const rank = this.#shape(x)?.length ?? 2;
        const axis = Number(a.axis ?? 1);
        const ok = rank === 4 ? axis === 1 || axis === -3 : axis === rank - 1 || axis === -1;
        // Other axes: moved last by a transpose and back (./graph_ops.ts).
        if (!ok) return await this.#graphOp(l, name);
        return this.#act(l, name, "softmax", "Softmax");
      }
      case "LeakyRelu": {
        const alpha = Number(a.alpha ?? 0.01);
        this.#k("LeakyReLU", name, { alpha }, [x]);
        this.#node("LeakyRelu", name, [this.#g(x)], { alpha: { f: alpha } });
        return this.#out(out, name, name);
      }
      case "Clip": {
        const min = Number(a.min ?? -Infinity), max = Number(a.max ?? Infinity);
        if (min === 0 && max === 6) return this.#act(l, name, "relu6", "Relu6");
        if (min === 0 && max === Infinity) return this.#act(l, name, "relu", "Relu");
        if (min === 0) this.#k("ReLU", name, { max_value: max }, [x]);
        else this.#blockKeras(l.name, `Clip to [${min}, ${max}]`);
        const lo = await this.#smallConst(`${name}/min`, [], [Math.max(min, LOWEST)], "float32");
        const hi = await this.#smallConst(`${name}/max`, [], [Math.min(max, -LOWEST)], "float32");
        this.#node("ClipByValue", name, [this.#g(x), lo, hi]);
        return this.#out(out, min === 0 ? name : undefined, name);
      }
      case "MaxPool":
      case "AvgPool":
        return await this.#pool(l, name);
      case "GlobalAvgPool":
      case "GlobalMaxPool": {
        const c = this.#tryDims(x)?.[1] ?? -1;
        const avg = l.op === "GlobalAvgPool";
        const pool = `${name}_pool`;
        this.#names.add(pool);
        this.#k(avg ? "GlobalAveragePooling2D" : "GlobalMaxPooling2D", pool, { data_format: "channels_last" }, [x]);
        if (this.#kerasLive) this.#kOut.set(`${out}#pool`, pool);
        this.#k("Reshape", name, { target_shape: [1, 1, c] }, [`${out}#pool`]);
        const axes = await this.#smallConst(`${name}/axes`, [2], [1, 2]);
        this.#node(avg ? "Mean" : "Max", name, [this.#g(x), axes], {
          keep_dims: { b: true },
          Tidx: { type: "DT_INT32" },
        });
        return this.#out(out, name, name);
      }
      case "Flatten": {
        const s = this.#shape(x);
        if (!s || s.length <= 2) return alias();
        return await this.#flatten(x, out, name, l.name);
      }
      case "Reshape":
        return await this.#reshape(l, name);
      case "Pad": {
        const pa = attrsOf<PadAttrs>(l);
        const q = pa.pads;
        const spatialOnly = q.length === 8 && !q[0] && !q[1] && !q[4] && !q[5] && q.every((v) => v >= 0);
        if (!spatialOnly || pa.mode !== "constant") return await this.#graphOp(l, name);
        const p = [q[2], q[3], q[6], q[7]];
        const value = pa.value;
        if (value !== 0) this.#blockKeras(l.name, `Pad with value ${value}`);
        this.#k("ZeroPadding2D", name, { padding: [[p[0], p[2]], [p[1], p[3]]], data_format: "channels_last" }, [x]);
        await this.#padNode(name, this.#g(x), p, value);
        return this.#out(out, name, name);
      }
      case "Add":
      case "Sub":
      case "Mul":
      case "Max": {
        if (l.params.const || !this.#sameShapes(l)) return await this.#graphOp(l, name);
        const coeffs = a.coeffs as number[] | undefined;
        if (coeffs && coeffs.some((c) => c !== 1)) this.#blockGraph(l.name, `Add with coefficients [${coeffs}]`);
        const cls = { Add: "Add", Sub: "Subtract", Mul: "Multiply", Max: "Maximum" }[l.op];
        this.#k(cls, name, {}, l.inputs);
        const gin = l.inputs.map((v) => this.#g(v));
        if (l.inputs.length > 2) {
          if (l.op !== "Add") this.#blockGraph(l.name, `${l.op} of ${l.inputs.length} inputs`);
          this.#node("AddN", name, gin, { N: { i: String(gin.length) } });
        } else {
          this.#node({ Add: "AddV2", Sub: "Sub", Mul: "Mul", Max: "Maximum" }[l.op], name, gin);
        }
        return this.#out(out, name, name);
      }
      case "Concat": {
        const rank = this.#shape(x)?.length ?? 4;
        let axis = Number(a.axis ?? 1);
        if (axis < 0) axis += rank;
        const tfAxis = rank === 4 ? [0, 3, 1, 2][axis] : axis;
        this.#k("Concatenate", name, { axis: tfAxis === rank - 1 ? -1 : tfAxis }, l.inputs);
        const ax = await this.#smallConst(`${name}/axis`, [], [tfAxis]);
        this.#node("ConcatV2", name, [...l.inputs.map((v) => this.#g(v)), ax], {
          N: { i: String(l.inputs.length) },
          Tidx: { type: "DT_INT32" },
        });
        return this.#out(out, name, name);
      }
      case "Scale": {
        this.#blockKeras(l.name, "Scale (per-channel affine) has no Keras layer");
        let v = this.#g(x);
        if (l.params.scale) {
          const s = await this.#weight(`${name}/scale`, l.params.scale);
          v = this.#node("Mul", l.params.bias ? `${name}_mul` : name, [v, s]);
          if (l.params.bias) this.#names.add(`${name}_mul`);
        }
        if (l.params.bias) {
          const bb = await this.#weight(`${name}/offset`, l.params.bias);
          v = this.#node("AddV2", name, [v, bb]);
        }
        return this.#out(out, undefined, v);
      }
      case "LRN": {
        this.#blockKeras(l.name, "LRN has no Keras layer in tfjs-layers");
        const size = Number(a.size ?? 5);
        this.#node("LRN", name, [this.#g(x)], {
          depth_radius: { i: String((size - 1) / 2) },
          bias: { f: Number(a.bias ?? 1) },
          alpha: { f: Number(a.alpha ?? 1e-4) / size },
          beta: { f: Number(a.beta ?? 0.75) },
        });
        return this.#out(out, undefined, name);
      }
      case "Dropout":
        this.#k("Dropout", name, { rate: Number(a.ratio ?? 0.5) }, [x]);
        this.#node("Identity", name, [this.#g(x)]);
        return this.#out(out, name, name);
      case "Identity":
        this.#node("Identity", name, [this.#g(x)]);
        return this.#out(out, this.#kOut.get(x), name);
      default:
        if (GRAPH_OPS[l.op]) return await this.#graphOp(l, name);
        this.#blockGraph(l.name, `op '${l.op}' cannot be expressed in TF.js by convpress`);
    }
  }

  /** True when every activation input of `l` has the same known shape (Keras merge layers do not broadcast). */
  #sameShapes(l: Layer): boolean {
    const s = l.inputs.map((v) => this.#shape(v));
    if (s.some((x) => !x)) return true; // unknown: the merge layers' own shape rule applies, as before
    return s.every((x) => JSON.stringify(x) === JSON.stringify(s[0]));
  }

  /** An op of the GraphDef table (./graph_ops.ts): no Keras layer, so the model becomes a graph-model. */
  async #graphOp(l: Layer, name: string): Promise<void> {
    const entry = GRAPH_OPS[l.op];
    if (!entry) this.#blockGraph(l.name, `op '${l.op}' cannot be expressed in TF.js by convpress`);
    this.#blockKeras(l.name, `${l.op}${l.params.const ? " with a constant operand" : ""} has no Keras layer`);
    const outs = inferShapes(l, l.inputs.map((v) => this.#shape(v)));
    const emitter: GraphEmitter = {
      node: (op, n, input, attr) => {
        this.#names.add(n);
        return this.#node(op, n, input, attr);
      },
      g: (v) => this.#g(v),
      out: (v, node) => this.#out(v, undefined, node),
      smallConst: (b, s, v, d) => this.#smallConst(b, s, v, d),
      weight: (n, t) => this.#weight(this.#unique(n), t),
      shape: (v) => {
        const i = l.outputs.indexOf(v);
        return i >= 0 ? outs[i] : this.#shape(v);
      },
      unique: (b) => this.#unique(b),
      fail: (layer, why) => this.#blockGraph(layer, why),
    };
    await entry!(emitter, l, name);
  }

  #act(l: Layer, name: string, keras: string, op: string): void {
    this.#k("Activation", name, { activation: keras }, [l.inputs[0]]);
    this.#node(op, name, [this.#g(l.inputs[0])]);
    this.#out(l.outputs[0], name, name);
  }

  async #padNode(name: string, input: string, p: number[], value: number): Promise<string> {
    const pads = await this.#smallConst(`${name}/paddings`, [4, 2], [0, 0, p[0], p[2], p[1], p[3], 0, 0]);
    if (value === 0) return this.#node("Pad", name, [input, pads], { Tpaddings: { type: "DT_INT32" } });
    const cv = await this.#smallConst(`${name}/value`, [], [value], "float32");
    return this.#node("PadV2", name, [input, pads, cv], { Tpaddings: { type: "DT_INT32" } });
  }

  /**
   * TF padding for a window: "same"/"valid", or explicit pads to apply with a Pad first. Without a known input
   * size, only what holds for every size is used: no pads, stride-1 'same', or explicit pads.
   */
  #padMode(
    x: string,
    layer: string,
    k: number[],
    s: number[],
    d: number[],
    pads: number[],
    ceil = false,
  ): "same" | "valid" | number[] {
    const dims = this.#tryDims(x);
    if (!dims) {
      if (ceil) this.#dims(x, layer); // throws: ceil rounding needs the size
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

  async #conv(l: Layer, name: string): Promise<void> {
    const x = l.inputs[0], a = l.attrs, W = l.params.weight;
    const [o, ig, kh, kw] = W.shape;
    const group = Number(a.group ?? 1);
    const c = ig * group; // input channels, known from the weight even when shapes are not
    const s = (a.strides as number[] | undefined) ?? [1, 1];
    const d = (a.dilations as number[] | undefined) ?? [1, 1];
    const pads = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
    let mode = this.#padMode(x, l.name, [kh, kw], s, d, pads);
    let kIn = x, gIn = this.#g(x);
    if (Array.isArray(mode)) {
      const pn = `${name}_pad`;
      this.#names.add(pn);
      this.#k(
        "ZeroPadding2D",
        pn,
        { padding: [[mode[0], mode[2]], [mode[1], mode[3]]], data_format: "channels_last" },
        [x],
      );
      if (this.#kerasLive) this.#kOut.set(`${x}#${pn}`, pn);
      kIn = `${x}#${pn}`;
      gIn = await this.#padNode(pn, gIn, mode, 0);
      mode = "valid";
    }
    const depthwise = group > 1 && group === c && ig === 1;
    if (group !== 1 && !depthwise) return await this.#groupedConv(l, name, gIn, mode);
    const common = {
      kernel_size: [kh, kw],
      strides: s,
      padding: mode,
      data_format: "channels_last",
      dilation_rate: d,
      activation: "linear",
      use_bias: Boolean(l.params.bias),
    };
    let kName: string;
    const orig = W.meta.tfjsKernel as { tensor: Tensor; depthwise: boolean } | undefined;
    const same = orig && orig.depthwise === depthwise ? orig.tensor : undefined;
    if (depthwise) {
      const m = o / c;
      kName = await this.#weight(`${name}/depthwise_kernel`, same ?? oihwToDepthwise(W, m));
      this.#k("DepthwiseConv2D", name, { ...common, depth_multiplier: m }, [kIn]);
    } else {
      kName = await this.#weight(`${name}/kernel`, same ?? oihwToHwio(W));
      this.#k("Conv2D", name, { ...common, filters: o }, [kIn]);
    }
    const convName = l.params.bias ? `${name}_conv` : name;
    this.#names.add(convName);
    this.#node(depthwise ? "DepthwiseConv2dNative" : "Conv2D", convName, [gIn, kName], {
      strides: ints([1, s[0], s[1], 1]),
      padding: str(mode.toUpperCase()),
      dilations: ints([1, d[0], d[1], 1]),
      data_format: str("NHWC"),
      explicit_paddings: { list: {} },
    });
    if (l.params.bias) {
      const bn = await this.#weight(`${name}/bias`, l.params.bias);
      this.#node("BiasAdd", name, [convName, bn], { data_format: str("NHWC") });
    }
    this.#out(l.outputs[0], name, name);
  }

  /**
   * A grouped convolution (neither plain nor depthwise), which TF.js has no op for: the input's channels split
   * into the groups (SplitV), one Conv2D per group with that group's filters, and the results joined (ConcatV2).
   * Graph side only: there is no Keras layer for it.
   */
  async #groupedConv(l: Layer, name: string, gIn: string, mode: "same" | "valid"): Promise<void> {
    this.#blockKeras(l.name, `grouped convolution (group ${l.attrs.group}) has no Keras layer`);
    const W = l.params.weight, a = l.attrs;
    const [o, ig, kh, kw] = W.shape;
    const g = Number(a.group);
    const s = (a.strides as number[] | undefined) ?? [1, 1];
    const d = (a.dilations as number[] | undefined) ?? [1, 1];
    const og = o / g, per = og * ig * kh * kw;
    const sizes = await this.#smallConst(`${name}/group_sizes`, [g], new Array(g).fill(ig));
    const axis = await this.#smallConst(`${name}/group_axis`, [], [3]);
    const split = this.#unique(`${name}_groups`);
    this.#node("SplitV", split, [gIn, sizes, axis], { num_split: { i: String(g) }, Tlen: { type: "DT_INT32" } });
    const outs: string[] = [];
    for (let i = 0; i < g; i++) {
      // Group i's filters are rows [i * og, (i + 1) * og) of the OIHW weight: contiguous.
      const part = Tensor.fromChunks(`${W.name}/g${i}`, "float32", [og, ig, kh, kw], per * 4, async function* () {
        const all = await W.float32();
        yield new Uint8Array(all.slice(i * per, (i + 1) * per).buffer);
      });
      const k = await this.#weight(this.#unique(`${name}/kernel_g${i}`), oihwToHwio(part));
      outs.push(this.#node("Conv2D", this.#unique(`${name}_g${i}`), [i === 0 ? split : `${split}:${i}`, k], {
        strides: ints([1, s[0], s[1], 1]),
        padding: str(mode.toUpperCase()),
        dilations: ints([1, d[0], d[1], 1]),
        data_format: str("NHWC"),
        explicit_paddings: { list: {} },
      }));
    }
    const ax = await this.#smallConst(`${name}/concat_axis`, [], [3]);
    const cat = l.params.bias ? this.#unique(`${name}_concat`) : name;
    this.#node("ConcatV2", cat, [...outs, ax], { N: { i: String(g) }, Tidx: { type: "DT_INT32" } });
    if (l.params.bias) {
      const bn = await this.#weight(`${name}/bias`, l.params.bias);
      this.#node("BiasAdd", name, [cat, bn], { data_format: str("NHWC") });
    }
    this.#out(l.outputs[0], undefined, name);
  }

  async #flatten(x: string, out: string, name: string, layer: string): Promise<void> {
    if (!this.#tryDims(x)) {
      // Unknown C, H, W: put the activation in (c, h, w) order first, so the next FC needs no permutation.
      this.#graphUnknown ??= { layer, what: `the shape of '${x}' is unknown (pass the input shape)` };
      if (this.#kind === "graph-model") this.#blockGraph(layer, this.#graphUnknown.what);
      const t = `${name}_chw`;
      this.#names.add(t);
      this.#k("Permute", t, { dims: [3, 1, 2] }, [x]);
      if (this.#kerasLive) this.#kOut.set(`${x}#${t}`, t);
      this.#k("Flatten", name, {}, [`${x}#${t}`]);
      return this.#out(out, name, undefined);
    }
    const [, c, h, w] = this.#dims(x, layer);
    this.#k("Flatten", name, {}, [x]);
    const shape = await this.#smallConst(`${name}/shape`, [2], [-1, c * h * w]);
    this.#node("Reshape", name, [this.#g(x), shape], { Tshape: { type: "DT_INT32" } });
    this.#out(out, name, name);
    this.#flat.set(out, { c, h, w });
  }

  async #fc(l: Layer, name: string): Promise<void> {
    let x = l.inputs[0];
    const W = l.params.weight;
    const [o, n] = W.shape;
    if ((this.#shape(x)?.length ?? 2) > 2) {
      // The canonical FC flattens its input (C, H, W order): flatten first in TF.js and permute like after a Flatten.
      const fl = `${x}#flat`;
      const fname = this.#unique(`${l.name}_flatten`);
      await this.#flatten(x, fl, fname, l.name);
      x = fl;
    }
    const f = this.#flat.get(x);
    const maps = f && f.h * f.w > 1 && f.c > 1 ? flattenMaps(f.c, f.h, f.w) : undefined;
    const transB = this.#kind === "graph-model";
    const orig = W.meta.tfjsKernel as { tensor: Tensor; transposed: boolean; flat: string } | undefined;
    const flatKey = maps ? `${f!.c},${f!.h},${f!.w}` : "";
    const kernel = orig && orig.transposed === transB && orig.flat === flatKey
      ? orig.tensor
      : transB
      ? (maps ? permuteColumns(W, o, n, maps.canonToTf) : W)
      : transposeBlocked(W, o, n, { rowMap: maps?.canonToTf });
    const kName = await this.#weight(`${name}/kernel`, kernel);
    this.#k("Dense", name, { units: o, activation: "linear", use_bias: Boolean(l.params.bias) }, [x]);
    const mm = l.params.bias ? `${name}_matmul` : name;
    this.#names.add(mm);
    this.#node("MatMul", mm, [this.#g(x), kName], { transpose_a: { b: false }, transpose_b: { b: transB } });
    if (l.params.bias) {
      const bn = await this.#weight(`${name}/bias`, l.params.bias);
      this.#node("BiasAdd", name, [mm, bn], { data_format: str("NHWC") });
    }
    this.#out(l.outputs[0], name, name);
  }

  async #pool(l: Layer, name: string): Promise<void> {
    const x = l.inputs[0], a = l.attrs;
    const k = a.kernel as number[];
    const s = (a.strides as number[] | undefined) ?? [1, 1];
    const pads = (a.pads as number[] | undefined) ?? [0, 0, 0, 0];
    const ceil = Boolean(a.ceil);
    const max = l.op === "MaxPool";
    const include = Boolean(a.countIncludePad);
    let mode = this.#padMode(x, l.name, k, s, [1, 1], pads, ceil);
    let kIn = x, gIn = this.#g(x);
    if (mode === "same" && !max && include && pads.some((p) => p > 0)) mode = [...pads];
    if (Array.isArray(mode)) {
      const extra = mode[2] !== pads[2] || mode[3] !== pads[3];
      if (!max && (!include || extra)) {
        this.#blockGraph(l.name, `AvgPool with pads [${pads}]${ceil ? " in ceil mode" : ""} that TF.js cannot express`);
      }
      const pn = `${name}_pad`;
      this.#names.add(pn);
      if (max) this.#blockKeras(l.name, `MaxPool with explicit pads [${pads}]`);
      else {
        this.#k("ZeroPadding2D", pn, {
          padding: [[mode[0], mode[2]], [mode[1], mode[3]]],
          data_format: "channels_last",
        }, [x]);
        if (this.#kerasLive) this.#kOut.set(`${x}#${pn}`, pn);
        kIn = `${x}#${pn}`;
      }
      gIn = await this.#padNode(pn, gIn, mode, max ? LOWEST : 0);
      mode = "valid";
    }
    this.#k(max ? "MaxPooling2D" : "AveragePooling2D", name, {
      pool_size: k,
      strides: s,
      padding: mode,
      data_format: "channels_last",
    }, [kIn]);
    this.#node(max ? "MaxPool" : "AvgPool", name, [gIn], {
      ksize: ints([1, k[0], k[1], 1]),
      strides: ints([1, s[0], s[1], 1]),
      padding: str(mode.toUpperCase()),
      data_format: str("NHWC"),
    });
    this.#out(l.outputs[0], name, name);
  }

  async #reshape(l: Layer, name: string): Promise<void> {
    const x = l.inputs[0];
    const inS = this.#shape(x);
    const spec = (l.attrs.shape as number[]).map((d, i) => (d === 0 ? (inS?.[i] as number) : d));
    const outS = [...spec];
    const rankIn = inS?.length ?? 0;
    if (rankIn === 4 && spec.length === 2 && keepsBatch(spec, inS!)) {
      return await this.#flatten(x, l.outputs[0], name, l.name);
    }
    // General case: NHWC -> NCHW order, reshape, back to NHWC for a 4-D result.
    let kIn = x, g = this.#g(x);
    if (rankIn === 4) {
      const t = `${name}_nchw`;
      this.#names.add(t);
      this.#k("Permute", t, { dims: [3, 1, 2] }, [x]);
      if (this.#kerasLive) this.#kOut.set(`${x}#${t}`, t);
      kIn = `${x}#${t}`;
      const perm = await this.#smallConst(`${t}/perm`, [4], [0, 3, 1, 2]);
      g = this.#node("Transpose", t, [g, perm], { Tperm: { type: "DT_INT32" } });
    }
    const four = outS.length === 4;
    const r = four ? `${name}_flat` : name;
    this.#names.add(r);
    this.#k("Reshape", r, { target_shape: outS.slice(1) }, [kIn]);
    // The batch axis becomes -1 unless the target shape already infers another axis.
    const tfShape = outS.includes(-1) ? outS : outS.map((d, i) => (i === 0 ? -1 : d));
    const shape = await this.#smallConst(`${name}/shape`, [outS.length], tfShape);
    g = this.#node("Reshape", r, [g, shape], { Tshape: { type: "DT_INT32" } });
    if (four) {
      if (this.#kerasLive) this.#kOut.set(`${x}#${r}`, r);
      this.#k("Permute", name, { dims: [2, 3, 1] }, [`${x}#${r}`]);
      const perm = await this.#smallConst(`${name}/perm`, [4], [0, 2, 3, 1]);
      g = this.#node("Transpose", name, [g, perm], { Tperm: { type: "DT_INT32" } });
    }
    this.#out(l.outputs[0], name, g);
  }

  /** Chooses the kind and builds model.json (paths are filled in by the caller). */
  async finish(): Promise<ModelJson> {
    const h = this.#model.header;
    for (const d of this.#declared) {
      const s = h.inputs.find((i) => i.name === d.value)?.shape;
      if (!s) continue;
      const tf = s.length === 4 ? [s[0], s[2], s[3], s[1]] : s;
      const k = this.#klayers.find((l) => l.name === d.node);
      if (k) k.config.batch_input_shape = tf.map((x, i) => (i === 0 || typeof x !== "number" ? null : x));
      const n = this.#nodes.find((x) => x.name === d.node);
      if (n) n.attr!.shape = { shape: { dim: tf.map((x) => ({ size: String(typeof x === "number" ? x : -1) })) } };
    }
    const chain = this.#isChain();
    let kind = this.#kind;
    if (kind === "auto") kind = !this.#kBlock && chain && h.inputs.length === 1 ? "layers-model" : "graph-model";
    if (kind === "graph-model" && this.#graphUnknown) {
      this.#blockGraph(this.#graphUnknown.layer, this.#graphUnknown.what);
    }
    if (kind === "graph-model") await this.#flushDeferred();
    const manifest = [{ paths: [] as string[], weights: this.#shards.entries }];
    const base = {
      format: kind,
      generatedBy: "convpress",
      convertedBy: "convpress 0.1.0",
      weightsManifest: manifest,
    };
    if (kind === "layers-model") {
      return { ...base, modelTopology: this.#kerasTopology(chain) };
    }
    const info = (v: string) => {
      const s = this.#tracker.get(v) ?? [];
      const tf = s.length === 4 ? [s[0], s[2], s[3], s[1]] : s;
      return {
        dtype: "DT_FLOAT",
        tensorShape: { dim: tf.map((d) => ({ size: String(typeof d === "number" ? d : -1) })) },
      };
    };
    const signature = {
      inputs: Object.fromEntries(
        h.inputs.map((i) => [this.#g(i.name), { name: `${this.#g(i.name)}:0`, ...info(i.name) }]),
      ),
      outputs: Object.fromEntries(
        h.outputs.map((o) => [this.#g(o.name), { name: `${this.#g(o.name)}:0`, ...info(o.name) }]),
      ),
    };
    return { ...base, modelTopology: { node: this.#nodes, versions: { producer: 1395 } }, signature };
  }

  #isChain(): boolean {
    const ls = this.#klayers;
    if (ls.length < 2 || ls[0].class_name !== "InputLayer") return false;
    for (let i = 1; i < ls.length; i++) {
      if (ls[i].inbound.length !== 1 || ls[i].inbound[0] !== ls[i - 1].name) return false;
    }
    const outs = this.#model.header.outputs;
    return outs.length === 1 && this.#kOut.get(outs[0].name) === ls.at(-1)!.name;
  }

  #kerasTopology(chain: boolean): Record<string, unknown> {
    if (this.#kBlock) {
      throw new TfjsError(
        "unsupported",
        `Cannot write layer '${this.#kBlock.layer}' to a TF.js layers-model: ${this.#kBlock.what}`,
        {
          layer: this.#kBlock.layer,
        },
      );
    }
    const meta = { keras_version: "tfjs-layers 4.22.0", backend: "tensor_flow.js" };
    const name = cleanName(this.#model.header.name || "model");
    if (chain) {
      const [input, ...rest] = this.#klayers;
      const layers = rest.map((l, i) => ({
        class_name: l.class_name,
        config: i === 0
          ? { ...l.config, batch_input_shape: input.config.batch_input_shape, dtype: "float32" }
          : l.config,
      }));
      return { class_name: "Sequential", config: { name, layers }, ...meta };
    }
    const layers: KerasLayerJson[] = this.#klayers.map((l) => ({
      name: l.name,
      class_name: l.class_name,
      config: l.config,
      inbound_nodes: l.inbound.length ? [l.inbound.map((n) => [n, 0, 0, {}])] : [],
    }));
    const h = this.#model.header;
    return {
      class_name: "Model",
      config: {
        name,
        layers,
        input_layers: h.inputs.map((i) => [this.#kOut.get(i.name), 0, 0]),
        output_layers: h.outputs.map((o) => [this.#kOut.get(o.name), 0, 0]),
      },
      ...meta,
    };
  }
}
