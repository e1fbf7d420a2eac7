/**
 * Writes a canonical model stream as a TF.js model: weight shards as the layers arrive, `model.json` last (it needs
 * the whole manifest). Output is a folder, or a tar stream (stdout, or a path ending in `.tar`) with the shards first
 * and `model.json` as the last entry.
 *
 * Kind: a layers-model (Keras JSON) when every layer has a Keras form and the model has one input, a graph-model
 * (GraphDef JSON) otherwise, or as `options.tfjsKind` says. Two emitters, each a table of ops, see every layer in
 * turn: the Keras one (./keras_ops.ts, while a layers-model is still possible and wanted) and the GraphDef one
 * (./graph_ops.ts, ./graph_def.ts); the kind is chosen at the end. They share the weight shards, names and layout
 * rules (./emit_context.ts). Small graph-only constants (reshape shapes, paddings, axes) are held until then so a
 * layers-model carries no weight tfjs-layers cannot place.
 *
 * Layout: canonical NCHW becomes NHWC (models written for TF.js take channels-last input); conv kernels OIHW ->
 * HWIO; FC [out, in] -> Dense [in, out] (a blocked transpose), or kept as [out, in] under MatMul `transpose_b` when
 * a graph-model is asked for; the FC after a Flatten of a 4-D tensor gets its input index permuted from (c, h, w)
 * to (h, w, c), row by row.
 *
 * @module
 */
import { ConvpressError } from "../../src/errors.ts";
import { asOutputError, openFileSink, outputError, stdoutSink } from "../../src/bytes/byte_sink.ts";
import type { ByteSink } from "../../src/bytes/byte_sink.ts";
import type { Layer, ModelStream, ValueInfo } from "../../src/model/types.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import type { TfjsWriteOptions as WriteOptions } from "./options.ts";
import { DEFAULT_SHARD_SIZE, ShardWriter } from "./shards.ts";
import { endTar, writeTarEntry } from "../../src/bytes/tar.ts";
import type { ModelJson } from "./types.ts";
import { makeOutputDir, makeTempDir, removeTemporary } from "../../src/bytes/temp_files.ts";
import { EmitContext, readsTfFlat, toNhwcShape } from "./emit_context.ts";
import { GRAPH_OPS } from "./graph_ops.ts";
import { GraphDefEmitter } from "./graph_def.ts";
import { KerasEmitter } from "./keras_ops.ts";

const enc = new TextEncoder();

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
    const w = new TfjsModelWriter(model, shards, options);
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

/** Feeds the stream to both emitters and chooses the kind at the end. */
class TfjsModelWriter {
  readonly #model: ModelStream;
  readonly #ctx: EmitContext;
  readonly #keras: KerasEmitter;
  readonly #graph: GraphDefEmitter;
  /** Layers seen so far (a late input declared before the first resets the shape tracker). */
  #tracked = 0;
  readonly #declared: { value: string; node: string }[] = [];

  constructor(model: ModelStream, shards: ShardWriter, options: WriteOptions) {
    this.#model = model;
    this.#ctx = new EmitContext(model.header, shards, options.tfjsKind ?? "auto", options.quantize);
    this.#keras = new KerasEmitter(this.#ctx);
    this.#graph = new GraphDefEmitter(this.#ctx);
  }

  /** Declares a model input on both sides (NCHW -> NHWC). */
  #declareInput(i: ValueInfo): void {
    const node = this.#ctx.uniqueName(i.name);
    this.#graph.declareInput(i, node);
    this.#keras.declareInput(i, node);
    this.#declared.push({ value: i.name, node });
  }

  /**
   * Inputs a reader declares only late (ONNX on stdin states graph inputs after the nodes): declared when first
   * used, with the header's shape if it is known by then; finish() fills in shapes learned later still.
   */
  #lateInputs(l: Layer): void {
    for (const v of l.inputs) {
      if (this.#keras.producerOf(v) !== undefined || this.#graph.has(v)) continue;
      const spatial = ["Conv", "MaxPool", "AvgPool", "GlobalAvgPool", "GlobalMaxPool", "Pad", "LRN"].includes(l.op);
      const info = this.#model.header.inputs.find((i) => i.name === v) ??
        { name: v, dtype: "float32", shape: spatial ? [null, null, null, null] : [null, null] };
      this.#declareInput(info);
      if (this.#tracked === 0) this.#ctx.tracker = new ShapeTracker({ ...this.#model.header, inputs: [info] });
    }
  }

  /** Streams every layer through the emitters. */
  async run(): Promise<void> {
    const ctx = this.#ctx;
    for (const i of this.#model.header.inputs) this.#declareInput(i);
    for await (const layer of this.#model.layers) {
      try {
        this.#lateInputs(layer);
        ctx.beginLayer();
        const name = ctx.uniqueName(layer.name);
        if (!GRAPH_OPS[layer.op]) {
          ctx.failTfjs(layer.name, `op '${layer.op}' cannot be expressed in TF.js by convpress`);
        }
        // A flattened NHWC map is held in TF's order for the FC after it; any other reader gets the canonical one.
        for (const v of layer.inputs) {
          const f = ctx.flatOf(v);
          if (!f || readsTfFlat(layer.op)) continue;
          ctx.blockKeras(layer.name, `reads the flattened '${v}' other than by a dense layer`);
          await this.#graph.readCanonical(v, f);
        }
        if (ctx.kerasLive) await this.#keras.emit(layer, name);
        await this.#graph.emit(layer, name);
      } catch (e) {
        if (e instanceof ConvpressError && !e.layer) e.layer = layer.name;
        throw e;
      }
      ctx.tracker.add(layer);
      this.#tracked++;
      if (!ctx.kerasLive && ctx.holding) await ctx.flushHeld();
      ctx.passFlat(layer);
    }
    // Outputs in the canonical order too.
    for (const o of this.#model.header.outputs) {
      const f = ctx.flatOf(o.name);
      if (!f) continue;
      ctx.blockKeras(o.name, "a model output is a flattened map");
      this.#graph.out(o.name, await this.#graph.readCanonical(o.name, f));
    }
  }

  /** Chooses the kind and builds model.json (paths are filled in by the caller). */
  async finish(): Promise<ModelJson> {
    const ctx = this.#ctx, h = this.#model.header;
    for (const d of this.#declared) {
      const s = h.inputs.find((i) => i.name === d.value)?.shape;
      if (!s) continue;
      this.#keras.updateInput(d.node, toNhwcShape(s));
      this.#graph.updateInput(d.node, toNhwcShape(s));
    }
    const chain = this.#keras.isChain(h);
    let kind = ctx.kind;
    if (kind === "auto") kind = !ctx.kerasBlocker && chain && h.inputs.length === 1 ? "layers-model" : "graph-model";
    const unknown = this.#graph.unknownShape;
    if (kind === "graph-model" && unknown) ctx.failTfjs(unknown.layer, unknown.what);
    if (kind === "graph-model") await ctx.flushHeld();
    const manifest = [{ paths: [] as string[], weights: ctx.shards.entries }];
    const base = {
      format: kind,
      generatedBy: "convpress",
      convertedBy: "convpress 0.1.0",
      weightsManifest: manifest,
    };
    if (kind === "layers-model") return { ...base, modelTopology: this.#keras.topology(h, chain) };
    const info = (v: string) => ({
      dtype: "DT_FLOAT",
      tensorShape: {
        dim: toNhwcShape(ctx.shape(v) ?? []).map((d) => ({ size: String(typeof d === "number" ? d : -1) })),
      },
    });
    const g = (v: string) => this.#graph.g(v);
    const signature = {
      inputs: Object.fromEntries(h.inputs.map((i) => [g(i.name), { name: `${g(i.name)}:0`, ...info(i.name) }])),
      outputs: Object.fromEntries(h.outputs.map((o) => [g(o.name), { name: `${g(o.name)}:0`, ...info(o.name) }])),
    };
    return { ...base, modelTopology: { node: this.#graph.nodes, versions: { producer: 1395 } }, signature };
  }
}
