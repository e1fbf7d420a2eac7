/**
 * The `.cvp` encoder: consumes a model stream and writes it in one pass with no seeking back, so the output may be a
 * pipe (spec.md). Memory: one layer's metadata plus one chunk of a raw or 16-bit tensor; a clustered tensor's
 * encoded body is built in memory (at most 2 bytes per weight).
 *
 * Per tensor: a clustering attached by a stage (`tensor.meta.cluster`, see {@link Clustering}) is stored with the
 * smallest clustered encoding; other float32 tensors follow `options.weights` (`f32`, lossless, by default; `f16`
 * halves them, except tensors binary16 cannot hold); every other dtype is stored raw.
 *
 * @module
 */
import type { CvpWriteOptions as WriteOptions } from "./options.ts";
import type { ByteSink } from "../../src/bytes/byte_sink.ts";
import { CvpError } from "../../src/errors.ts";
import type { Layer, ModelHeader, ModelStream } from "../../src/model/types.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { numel } from "../../src/model/tensor.ts";
import { checkClustering, type ClusterChoice, type Clustering, encodeClustered } from "./clustered.ts";
import { crc32, crc32Update } from "./crc32.ts";
import { CANONICAL_OPS, encodeFooter, encodeFrame, encodePreamble, KIND, u32 } from "./frame.ts";
import { narrowChunks, overflowsHalf } from "./half.ts";
import { encodeMeta, holdTensors, toJsonValue } from "./json.ts";

/** A per-tensor override (`tensor.meta.cvp`), used to build test vectors: force an encoding or coding. */
export type TensorHint = ClusterChoice | { encoding: "raw" | "f16" | "bf16" };

type Body = Uint8Array | { length: number; chunks: AsyncIterable<Uint8Array> };

/** Writes `model` to `sink` as `.cvp`, then closes the sink (aborts it on failure). */
export async function writeCvp(model: ModelStream, sink: ByteSink, options: WriteOptions = {}): Promise<void> {
  const w = new RecordWriter(sink, options);
  try {
    await sink.write(encodePreamble());
    await w.record(KIND.header, await headerMeta(model.header));
    let layers = 0, tensors = 0;
    for await (const layer of model.layers) {
      await writeLayer(w, layer, options);
      layers++;
      options.progress?.(layers, model.header.plan?.length ?? 0, layer.name);
      tensors += Object.keys(layer.params).length;
    }
    // The header object may have been completed while the layers streamed (ONNX read from a pipe).
    const h = model.header;
    await w.record(KIND.trailer, {
      layers,
      tensors,
      inputs: h.inputs,
      outputs: h.outputs,
      metadata: toJsonValue(h.metadata),
    });
    const index = new Uint8Array(8 * w.offsets.length);
    const dv = new DataView(index.buffer);
    w.offsets.forEach((o, i) => dv.setBigUint64(8 * i, BigInt(o), true));
    const indexAt = sink.position;
    await w.record(KIND.index, { records: w.offsets.length }, index);
    await sink.write(encodeFooter(indexAt));
    await sink.close();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

async function headerMeta(h: ModelHeader): Promise<Record<string, unknown>> {
  const meta: Record<string, unknown> = {
    name: h.name,
    sourceFormat: h.sourceFormat,
    producer: "convpress",
    // The canonical op set the layers follow: 2 = the op registry's attributes (Pad pads per axis). Files without it
    // are older (spec.md, "Canonical op sets"); the reader converts what changed.
    canonicalOps: CANONICAL_OPS,
    inputs: h.inputs,
    outputs: h.outputs,
    metadata: toJsonValue(h.metadata),
  };
  const origin = await optionalJson(h.origin);
  if (origin !== undefined) meta.origin = origin;
  return meta;
}

/**
 * Origins are best-effort: tensors inside them (ONNX constants a node reads) are stored inline up to 8 MiB; an
 * origin that holds anything else JSON cannot carry (a live object) is left out, and the layer is rebuilt from its
 * canonical op.
 */
async function optionalJson(v: unknown, params?: Map<Tensor, string>): Promise<unknown> {
  if (v === undefined) return undefined;
  try {
    return toJsonValue(await holdTensors(v, params));
  } catch {
    return undefined;
  }
}

async function writeLayer(w: RecordWriter, layer: Layer, options: WriteOptions): Promise<void> {
  const params = Object.entries(layer.params);
  let attrs: unknown;
  try {
    attrs = toJsonValue(layer.attrs);
  } catch (e) {
    throw new CvpError("unsupported", `Cannot write layer '${layer.name}' to .cvp: ${(e as Error).message}`, {
      layer: layer.name,
      cause: e,
    });
  }
  const meta: Record<string, unknown> = {
    name: layer.name,
    op: layer.op,
    attrs,
    inputs: layer.inputs,
    outputs: layer.outputs,
    params: params.map(([role, t]) => ({ role, name: t.name, dtype: t.dtype, shape: t.shape })),
  };
  const origin = await optionalJson(layer.origin, new Map(params.map(([role, t]) => [t, role])));
  if (origin !== undefined) meta.origin = origin;
  await w.record(KIND.layer, meta);
  for (const [role, t] of params) await writeTensor(w, layer.name, role, t, options);
}

async function writeTensor(w: RecordWriter, layer: string, role: string, t: Tensor, options: WriteOptions) {
  const base = { role, name: t.name, dtype: t.dtype, shape: t.shape };
  const hint = t.meta.cvp as TensorHint | undefined;
  const fail = (msg: string) =>
    new CvpError("bad_format", `Cannot write tensor '${t.name}' of layer '${layer}' to .cvp: ${msg}`, {
      layer: layer,
    });
  if (t.dtype === "string") throw new CvpError("unsupported", `Tensor '${t.name}' holds strings`, { layer });
  const cluster = (t.meta.cluster as Clustering | undefined) ?? await fromEncoded(t);
  if (cluster !== undefined) {
    const n = numel(t.shape);
    const bad = checkClustering(cluster, n);
    if (bad) throw fail(`bad clustering: ${bad}`);
    const e = encodeClustered(cluster, hint as ClusterChoice | undefined);
    await w.record(KIND.tensor, { ...base, dtype: "float32", ...e.fields }, e.body);
    return;
  }
  let encoding = hint?.encoding ?? (t.dtype === "float32" && options.weights === "f16" ? "f16" : "raw");
  if (t.dtype !== "float32") encoding = "raw";
  if (encoding === "f16" && !hint && await overflowsHalf(t.chunks())) encoding = "raw";
  if (encoding === "f16" || encoding === "bf16") {
    const kind = encoding;
    await w.record(KIND.tensor, { ...base, encoding }, {
      length: t.byteLength / 2,
      chunks: narrowChunks(kind, t.chunks()),
    });
    return;
  }
  if (encoding !== "raw") throw fail(`encoding ${encoding} needs a clustering`);
  await w.record(KIND.tensor, { ...base, encoding: "raw" }, { length: t.byteLength, chunks: t.chunks() });
}

/** A clustering from a tensor's clustered form (a `.cvp` read back), so `.cvp` -> `.cvp` keeps it; indices in memory. */
async function fromEncoded(t: Tensor): Promise<Clustering | undefined> {
  const form = t.encoded;
  if (!form || form.centers.length > 65536) return undefined;
  const indices = form.centers.length > 256 ? new Uint16Array(t.size) : new Uint8Array(t.size);
  let at = 0;
  for await (const s of form.indices()) {
    indices.set(s, at);
    at += s.length;
  }
  return { centers: form.centers, indices, repr: form.repr };
}

class RecordWriter {
  readonly offsets: number[] = [];
  readonly #sink: ByteSink;
  readonly #options: WriteOptions;

  constructor(sink: ByteSink, options: WriteOptions) {
    this.#sink = sink;
    this.#options = options;
  }

  /** Writes one record: frame, metadata, its CRC, body, its CRC. Streamed bodies are checked for their length. */
  async record(kind: number, meta: Record<string, unknown>, body: Body = new Uint8Array(0)): Promise<void> {
    const sink = this.#sink;
    const m = encodeMeta(meta);
    const start = sink.position;
    this.offsets.push(start);
    await sink.write(encodeFrame(kind, m.length, body.length));
    await sink.write(m);
    await sink.write(u32(crc32(m)));
    if (body instanceof Uint8Array) {
      await sink.write(body);
      await sink.write(u32(crc32(body)));
    } else {
      let crc = 0, total = 0;
      for await (const c of body.chunks) {
        total += c.length;
        if (total > body.length) break;
        crc = crc32Update(crc, c);
        await sink.write(c);
      }
      if (total !== body.length) {
        throw new CvpError("bad_format", `Tensor '${meta.name}' delivered ${total} bytes, ${body.length} expected`, {
          layer: meta.name as string,
        });
      }
      await sink.write(u32(crc));
    }
    if (kind === KIND.tensor) this.#options.onTensor?.(meta.name as string, sink.position - start);
  }
}
