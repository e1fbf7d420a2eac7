/**
 * The `.cvp` reader: a model stream from a `.cvp` file or pipe (spec.md).
 *
 * - Seekable input: the footer and index are read first, so the header already holds the trailer's final inputs and
 *   outputs; then layers are read in order, tensor bodies are skipped and read by offset when a consumer asks, their
 *   CRC checked as they are read (bodies up to 1 MiB are read and checked at once).
 * - Stream input (stdin): read strictly in order; each layer's tensor bodies are read (CRC checked) before the layer is
 *   handed out, and the header is completed from the trailer when the layer stream ends.
 *
 * Tensors decode to their stored dtype (`raw`) or to float32 (16-bit and clustered encodings), in chunks. A clustered
 * tensor also carries its codebook and indices ({@link Tensor.encoded}) for writers that keep them.
 *
 * @module
 */
import type { ModelSource } from "../../src/model/format.ts";
import type { CvpReadOptions as ReadOptions } from "./options.ts";
import type { ByteReader } from "../../src/bytes/byte_reader.ts";
import { CvpError } from "../../src/errors.ts";
import { type Attrs, type Layer, layerStream, type ModelHeader, type ModelStream } from "../../src/model/types.ts";
import type { Op } from "../../src/model/ops.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { type DType, DTYPE_SIZE, numel, Tensor } from "../../src/model/tensor.ts";
import { clusteredBodyLength, clusteredCenters, decodeIndices } from "./clustered.ts";
import { decodeFooter, decodeFrame, FOOTER_SIZE, FRAME_SIZE, KIND } from "./frame.ts";
import { widenChunks } from "./half.ts";
import { decodeMeta, fromJsonValue, resolveParams } from "./json.ts";
import { bodyBytes, bodyChunks, type BodySource, readU32, type RecordHead, RecordReader } from "./records.ts";
import { crc32 } from "./crc32.ts";

const EAGER_BODY = 1 << 20;

/**
 * Opens a `.cvp` model stream. Reading the whole layer stream makes every structural check of the format (the
 * one validation `decode` and `inspect` share); `onRecord` sees each record's frame and metadata as it is read.
 */
export async function readCvp(
  src: ModelSource,
  _options: ReadOptions = {},
  onRecord?: (head: RecordHead) => void,
): Promise<ModelStream> {
  if (!src.reader) throw new CvpError("bad_format", `${src.path} is a directory, not a .cvp file`, { file: src.path });
  const file = src.path;
  const rr = new RecordReader(src.reader, file, onRecord);
  await rr.preamble();
  const h = await rr.next();
  if (h.kind !== KIND.header) throw rr.error("bad_format", h, "the first record is not the header");
  if (h.bodyLength !== 0) throw rr.error("bad_format", h, "the header record has a body");
  await rr.body(h);
  const header = parseHeader(rr, h);
  if (src.reader.seekable && src.reader.size !== undefined) {
    Object.assign(header, await readTrailerEarly(src.reader, file));
  }
  const ops = typeof h.meta.canonicalOps === "number" ? h.meta.canonicalOps : 1;
  return { header, layers: layerStream(readLayers(rr, header, ops), () => src.reader!.close()) };
}

function parseHeader(rr: RecordReader, h: RecordHead): ModelHeader {
  const m = h.meta;
  if (typeof m.name !== "string" || typeof m.sourceFormat !== "string") {
    throw rr.error("bad_format", h, "the header lacks name or sourceFormat");
  }
  const header: ModelHeader = {
    name: m.name,
    sourceFormat: "cvp",
    inputs: valueInfos(rr, h, m.inputs),
    outputs: valueInfos(rr, h, m.outputs),
    metadata: stringMap(rr, h, m.metadata),
  };
  if (m.origin !== undefined) header.origin = fromJson(rr, h, m.origin, "origin") as ModelHeader["origin"];
  return header;
}

type Where = Pick<RecordHead, "no" | "kind" | "offset" | "meta">;

/** Undoes the JSON wrappers of untrusted metadata; a bad wrapper is a bad_format error at the record. */
function fromJson(rr: RecordReader, h: Where, v: unknown, what: string): unknown {
  try {
    return fromJsonValue(v);
  } catch (e) {
    throw rr.error("bad_format", h, `bad ${what}: ${(e as Error).message}`);
  }
}

function valueInfos(rr: RecordReader, h: Where, v: unknown): ModelHeader["inputs"] {
  if (!Array.isArray(v)) throw rr.error("bad_format", h, "inputs/outputs are not arrays");
  for (const x of v) {
    if (!x || typeof x.name !== "string" || typeof x.dtype !== "string" || !Array.isArray(x.shape)) {
      throw rr.error("bad_format", h, "bad input/output description");
    }
  }
  return v;
}

function stringMap(rr: RecordReader, h: Where, v: unknown): Record<string, string> {
  let m: unknown;
  try {
    m = fromJsonValue(v ?? {});
  } catch (e) {
    throw rr.error("bad_format", h, `bad metadata: ${(e as Error).message}`);
  }
  if (!m || typeof m !== "object" || Array.isArray(m) || Object.values(m).some((x) => typeof x !== "string")) {
    throw rr.error("bad_format", h, "metadata is not an object of strings");
  }
  return m as Record<string, string>;
}

/** Reads footer -> index -> trailer by offset. */
async function readTrailerEarly(r: ByteReader, file: string): Promise<Partial<ModelHeader>> {
  const size = r.size!;
  const readAt = async (offset: number, n: number): Promise<Uint8Array> => {
    const b = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const k = offset + got < size ? await r.input.readAt!(b.subarray(got), offset + got) : 0;
      if (k === 0) {
        throw new CvpError("unexpected_eof", `Unexpected end of input at byte ${offset + got}`, {
          file,
          offset: offset + got,
        });
      }
      got += k;
    }
    return b;
  };
  const damaged = (msg: string, offset: number, checksum = false) =>
    new CvpError(
      checksum ? "checksum" : "bad_format",
      `Cannot read the .cvp footer and index: the file is truncated or damaged (${msg})`,
      { file, offset },
    );
  if (size < FOOTER_SIZE + 12) throw damaged("too short", 0);
  const footer = decodeFooter(await readAt(size - FOOTER_SIZE, FOOTER_SIZE));
  if (typeof footer === "string") throw damaged(footer, size - FOOTER_SIZE);
  const record = async (offset: number, kind: number) => {
    if (offset + FRAME_SIZE > size) throw damaged(`record offset ${offset} is past the end`, offset);
    const f = decodeFrame(await readAt(offset, FRAME_SIZE));
    if ("error" in f) throw damaged(`record at byte ${offset}: ${f.error}`, offset);
    if (f.kind !== kind) throw damaged(`record at byte ${offset} is not the expected kind`, offset);
    if (offset + FRAME_SIZE + f.metaLength + 8 + f.bodyLength > size) {
      throw damaged(`record at byte ${offset} runs past the end`, offset);
    }
    // Both CRCs are checked before the metadata is parsed or the body trusted: damage here must read as damage.
    const metaBytes = await readAt(offset + FRAME_SIZE, f.metaLength);
    const metaCrc = readU32(await readAt(offset + FRAME_SIZE + f.metaLength, 4), 0);
    if (metaCrc !== crc32(metaBytes)) throw damaged(`record at byte ${offset}: metadata CRC mismatch`, offset, true);
    const body = await readAt(offset + FRAME_SIZE + f.metaLength + 4, f.bodyLength);
    const bodyCrc = readU32(await readAt(offset + FRAME_SIZE + f.metaLength + 4 + f.bodyLength, 4), 0);
    if (bodyCrc !== crc32(body)) throw damaged(`record at byte ${offset}: body CRC mismatch`, offset, true);
    let meta: Record<string, unknown>;
    try {
      meta = decodeMeta(metaBytes);
    } catch (e) {
      throw damaged(`record at byte ${offset}: bad metadata JSON: ${(e as Error).message}`, offset);
    }
    return { meta, body };
  };
  const x = await record(footer, KIND.index);
  if (x.body.length < 8 || x.body.length % 8 !== 0) throw damaged("bad index length", footer);
  const last = Number(
    new DataView(x.body.buffer, x.body.byteOffset, x.body.length).getBigUint64(x.body.length - 8, true),
  );
  if (last >= footer) throw damaged(`the index's last entry ${last} is not before the index`, footer);
  const e = await record(last, KIND.trailer);
  const out: Partial<ModelHeader> = {};
  const here = { no: x.body.length / 8 - 1, kind: KIND.trailer, offset: last, meta: e.meta };
  const rr = new RecordReader(r, file);
  try {
    out.inputs = valueInfos(rr, here, e.meta.inputs);
    out.outputs = valueInfos(rr, here, e.meta.outputs);
    out.metadata = stringMap(rr, here, e.meta.metadata);
  } catch (err) {
    if (err instanceof CvpError) throw damaged((err as Error).message, last);
    throw err;
  }
  return out;
}

interface ParamDesc {
  role: string;
  name: string;
  dtype: DType;
  shape: number[];
}

async function* readLayers(rr: RecordReader, header: ModelHeader, ops: number): AsyncGenerator<Layer> {
  let layers = 0, tensors = 0;
  // Before canonical op set 2 some attributes had other forms: the shapes tell which (upgradeLayer).
  const shapes = ops < 2 ? new ShapeTracker(header) : undefined;
  const seekable = rr.r.seekable;
  for (;;) {
    const head = await rr.next();
    if (head.kind === KIND.trailer) {
      await finish(rr, head, header, layers, tensors);
      return;
    }
    if (head.kind !== KIND.layer) throw rr.error("bad_format", head, "expected a layer or the trailer");
    if (head.bodyLength !== 0) throw rr.error("bad_format", head, "a layer record has a body");
    await rr.body(head);
    const layer = parseLayer(rr, head);
    if (shapes) upgradeLayer(rr, head, layer, shapes);
    const descs = head.meta.params as ParamDesc[];
    for (const d of descs) {
      const t = await rr.next();
      if (t.kind !== KIND.tensor) {
        throw rr.error("bad_format", t, `expected tensor '${d.name}' of layer '${layer.name}'`);
      }
      const m = t.meta;
      if (m.role !== d.role || m.name !== d.name || m.dtype !== d.dtype || !sameShape(m.shape, d.shape)) {
        throw rr.error("bad_format", t, `does not match parameter '${d.name}' (${d.role}) of layer '${layer.name}'`);
      }
      const expected = expectedBodyLength(rr, t, d);
      if (expected !== t.bodyLength) {
        throw rr.error(
          "bad_format",
          t,
          `body holds ${t.bodyLength} bytes, the ${m.encoding} encoding needs ${expected}`,
        );
      }
      const src: BodySource = seekable && t.bodyLength > EAGER_BODY
        ? await rr.skipBody(t)
        : { kind: "memory", blocks: await rr.body(t) };
      layer.params[d.role] = await makeTensor(rr, t, d, src);
      tensors++;
    }
    if (layer.origin) layer.origin = resolveParams(layer.origin, layer.params) as Layer["origin"];
    layers++;
    yield layer;
  }
}

/**
 * Converts a layer of a file written before canonical op set 2 (no `canonicalOps` in the header) to today's form,
 * and records its output shapes. Pad: the old writer stored [top, left, bottom, right] for a rank-4 input (the only
 * Pad it had); today's pads are per axis in ONNX order, [begins..., ends...]. Four pads on a rank-4 input can only
 * be the old form, on a rank-2 input only the new one; on an input of unknown rank the file is refused rather than
 * guessed.
 */
function upgradeLayer(rr: RecordReader, head: RecordHead, layer: Layer, shapes: ShapeTracker): void {
  const pads = layer.attrs.pads;
  if (layer.op === "Pad" && Array.isArray(pads) && pads.length === 4) {
    const rank = shapes.get(layer.inputs[0])?.length;
    if (rank === 4) {
      const [t, l, b, r] = pads as number[];
      layer.attrs.pads = [0, 0, t, l, 0, 0, b, r];
    } else if (rank !== 2) {
      throw rr.error(
        "bad_format",
        head,
        `Pad layer '${layer.name}' of a file without canonicalOps has 4 pads on an input of unknown rank: ` +
          "[top, left, bottom, right] (before canonical op set 2) and per-axis pads cannot be told apart",
      );
    }
  }
  shapes.add(layer);
}

function sameShape(a: unknown, b: number[]): boolean {
  return Array.isArray(a) && a.length === b.length && a.every((x, i) => x === b[i]);
}

function parseLayer(rr: RecordReader, head: RecordHead): Layer {
  const m = head.meta;
  const strings = (v: unknown) => Array.isArray(v) && v.every((s) => typeof s === "string");
  if (typeof m.name !== "string" || typeof m.op !== "string" || !strings(m.inputs) || !strings(m.outputs)) {
    throw rr.error("bad_format", head, "bad layer description");
  }
  if (!m.attrs || typeof m.attrs !== "object" || Array.isArray(m.attrs) || !Array.isArray(m.params)) {
    throw rr.error("bad_format", head, "bad layer attributes or parameters");
  }
  for (const p of m.params as ParamDesc[]) {
    const okShape = Array.isArray(p?.shape) && p.shape.every((d) => Number.isSafeInteger(d) && d >= 0);
    if (typeof p?.role !== "string" || typeof p.name !== "string" || !(p.dtype in DTYPE_SIZE) || !okShape) {
      throw rr.error("bad_format", head, "bad parameter description");
    }
  }
  const layer: Layer = {
    name: m.name,
    op: m.op as Op,
    attrs: fromJson(rr, head, m.attrs, "attributes") as Attrs,
    inputs: m.inputs as string[],
    outputs: m.outputs as string[],
    params: {},
  };
  if (m.origin !== undefined) layer.origin = fromJson(rr, head, m.origin, "origin") as Layer["origin"];
  return layer;
}

function expectedBodyLength(rr: RecordReader, t: RecordHead, d: ParamDesc): number {
  const n = numel(d.shape);
  const enc = t.meta.encoding;
  if (enc === "raw") {
    if (d.dtype === "string") throw rr.error("unsupported", t, "string tensors are not supported");
    return n * DTYPE_SIZE[d.dtype];
  }
  if (d.dtype !== "float32") throw rr.error("bad_format", t, `encoding ${enc} needs dtype float32, not ${d.dtype}`);
  if (enc === "f16" || enc === "bf16") return 2 * n;
  if (enc === "cluster" || enc === "cluster-sparse") {
    try {
      return clusteredBodyLength(t.meta);
    } catch (e) {
      throw rr.error("bad_format", t, (e as Error).message);
    }
  }
  throw rr.error("bad_format", t, `unknown encoding '${enc}'`);
}

async function makeTensor(rr: RecordReader, t: RecordHead, d: ParamDesc, src: BodySource): Promise<Tensor> {
  const file = rr.file;
  const n = numel(d.shape);
  const enc = t.meta.encoding as string;
  if (enc === "raw") {
    if (src.kind === "memory" && src.blocks.length === 1) {
      return Tensor.fromBytes(d.name, d.dtype, d.shape, src.blocks[0]);
    }
    return Tensor.fromChunks(d.name, d.dtype, d.shape, t.bodyLength, () => bodyChunks(src, file));
  }
  if (enc === "f16" || enc === "bf16") {
    return Tensor.fromChunks(d.name, "float32", d.shape, 4 * n, () => widenChunks(enc, bodyChunks(src, file)));
  }
  const meta = t.meta;
  const head = { no: t.no, kind: t.kind, offset: t.offset, meta };
  // The centres (2k bytes at the start of the body) are read now; the indices on each read of the tensor, with the
  // body's CRC checked then.
  const centers = clusteredCenters(meta, await bodyHead(src, 2 * (meta.k as number), rr, t));
  return Tensor.fromClustered(d.name, d.shape, {
    kind: "clustered",
    centers,
    repr: meta.repr as "fp16" | "bf16",
    async *indices(slice?: number) {
      const body = await bodyBytes(src, file);
      try {
        yield* decodeIndices(meta, body, n, slice);
      } catch (e) {
        if (e instanceof RangeError) throw rr.error("bad_format", head, `bad ${enc} data: ${e.message}`);
        throw e;
      }
    },
  });
}

/** The first `n` bytes of a body (no CRC check: the whole body's is checked when it is read). */
async function bodyHead(src: BodySource, n: number, rr: RecordReader, t: RecordHead): Promise<Uint8Array> {
  if (src.kind === "memory") {
    if (src.blocks.length === 1 || src.blocks[0].length >= n) return src.blocks[0].subarray(0, n);
    return concat(src.blocks).subarray(0, n);
  }
  const out = new Uint8Array(n);
  for (let got = 0; got < n;) {
    const k = await src.input.readAt!(out.subarray(got), src.offset + got);
    if (k === 0) throw rr.error("unexpected_eof", t, `unexpected end of input at byte ${src.offset + got}`);
    got += k;
  }
  return out;
}

async function finish(rr: RecordReader, e: RecordHead, header: ModelHeader, layers: number, tensors: number) {
  if (e.bodyLength !== 0) throw rr.error("bad_format", e, "the trailer has a body");
  await rr.body(e);
  if (e.meta.layers !== layers || e.meta.tensors !== tensors) {
    throw rr.error(
      "bad_format",
      e,
      `counts ${e.meta.layers} layers and ${e.meta.tensors} tensors, the file holds ${layers} and ${tensors}`,
    );
  }
  header.inputs = valueInfos(rr, e, e.meta.inputs);
  header.outputs = valueInfos(rr, e, e.meta.outputs);
  header.metadata = stringMap(rr, e, e.meta.metadata);
  const recordOffsets = [...rr.offsets];
  const x = await rr.next();
  if (x.kind !== KIND.index) throw rr.error("bad_format", x, "expected the index after the trailer");
  if (x.meta.records !== recordOffsets.length || x.bodyLength !== 8 * recordOffsets.length) {
    throw rr.error("bad_format", x, `index lists ${x.meta.records} records, the file holds ${recordOffsets.length}`);
  }
  const body = concat(await rr.body(x));
  const dv = new DataView(body.buffer, body.byteOffset, body.length);
  for (let i = 0; i < recordOffsets.length; i++) {
    if (Number(dv.getBigUint64(8 * i, true)) !== recordOffsets[i]) {
      throw rr.error("bad_format", x, `index entry ${i} does not match record ${i} at byte ${recordOffsets[i]}`);
    }
  }
  const r = rr.r;
  const at = r.position;
  try {
    await r.need(FOOTER_SIZE, "the footer");
  } catch (err) {
    rr.wrap(err, { no: rr.no, offset: at });
  }
  const f = decodeFooter(r.window.subarray(r.windowStart, r.windowStart + FOOTER_SIZE));
  const where = `Footer at byte ${at}`;
  if (typeof f === "string") {
    throw new CvpError(f.includes("CRC") ? "checksum" : "bad_format", `${where}: ${f}`, { file: rr.file, offset: at });
  }
  if (f !== x.offset) {
    throw new CvpError("bad_format", `${where}: points at byte ${f}, the index is at ${x.offset}`, {
      file: rr.file,
      offset: at,
    });
  }
  r.advance(FOOTER_SIZE);
  if (!(await r.atEnd())) {
    throw new CvpError("bad_format", `${where}: data follows the footer`, { file: rr.file, offset: r.position });
  }
}

function concat(blocks: Uint8Array[]): Uint8Array {
  if (blocks.length === 1) return blocks[0];
  const out = new Uint8Array(blocks.reduce((s, b) => s + b.length, 0));
  let o = 0;
  for (const b of blocks) {
    out.set(b, o);
    o += b.length;
  }
  return out;
}
