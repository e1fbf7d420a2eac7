/**
 * Caffe writer: a current-form `.caffemodel` written layer record by layer record as the stream arrives, plus a
 * deploy prototxt. NetParameter is the top-level message, so no total length is needed; each layer record's length
 * is computed from the blob byte lengths, known before their data.
 *
 * Outputs:
 * - a file: `path` is the caffemodel; the prototxt goes to `options.prototxtOut`, or beside it with the extension
 *   replaced by `.prototxt`;
 * - stdout (`-`): a ustar stream with `model.caffemodel` then `deploy.prototxt`. The caffemodel's size must precede
 *   its bytes in the tar header, so it is spooled to a temporary file first.
 *
 * Record layout written (field numbers from ./types.ts):
 * ```
 * name(1)  layer(100){ name(1) type(2) bottom(3)* top(4)* blobs(7){ data(5, packed f32) shape(7){ dim(1, packed) } }*
 *                      *_param(100+) }*
 * ```
 *
 * @module
 */
import { type ByteSink, openFileSink, stdoutSink } from "../../src/bytes/byte_sink.ts";
import { endTar, writeTarEntry } from "../../src/bytes/tar.ts";
import { CaffeError, namesOtherFile, wrapError } from "../../src/errors.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import type { ModelStream } from "../../src/model/types.ts";
import { ShapeTracker } from "../../src/model/shapes.ts";
import { WireType } from "../../src/wire/wire_reader.ts";
import { WireWriter } from "../../src/wire/wire_writer.ts";
import { varintSize } from "../../src/wire/varint.ts";
import type { CaffeWriteOptions as WriteOptions } from "./options.ts";
import { encodeMessage } from "./param_codec.ts";
import { printPrototxt, TextMessage } from "./prototxt.ts";
import { inputRecord, toCaffeRecords } from "./from_canonical.ts";
import { BlobField, LayerField, NetField } from "./types.ts";
import { makeTempDir, removeTemporary } from "../../src/bytes/temp_files.ts";

const HEAD_FIELDS = new Set(["name", "type", "bottom", "top"]);

/** Encodes a blob's shape field (BlobShape with packed dims). */
function shapeField(shape: readonly number[]): Uint8Array {
  const w = new WireWriter();
  w.tag(BlobField.shape, WireType.LengthDelimited).fork().tag(1, WireType.LengthDelimited).fork();
  for (const d of shape) w.int(d);
  return w.join().join().finish();
}

/** Writes one layer record: key, planned length, header fields, blobs streamed from their tensors, parameters. */
async function writeRecord(sink: ByteSink, msg: TextMessage, blobs: Tensor[]): Promise<void> {
  const head = new TextMessage(), tail = new TextMessage();
  for (const [k, v] of msg.fields) (HEAD_FIELDS.has(k) ? head : tail).add(k, v);
  const headBytes = encodeMessage(head, "LayerParameter").finish();
  const tailBytes = encodeMessage(tail, "LayerParameter").finish();
  const plans = blobs.map((t) => {
    const shape = shapeField(t.shape);
    const inner = 1 + varintSize(t.byteLength) + t.byteLength + shape.length;
    return { t, shape, inner };
  });
  let len = headBytes.length + tailBytes.length;
  for (const p of plans) len += 1 + varintSize(p.inner) + p.inner;
  const w = new WireWriter();
  w.tag(NetField.layer, WireType.LengthDelimited).uint(len).raw(headBytes);
  await sink.write(w.finish());
  for (const p of plans) {
    w.tag(LayerField.blobs, WireType.LengthDelimited).uint(p.inner);
    w.tag(BlobField.data, WireType.LengthDelimited).uint(p.t.byteLength);
    await sink.write(w.finish());
    const n = await p.t.writeTo(sink);
    if (n !== p.t.byteLength) throw new Error(`Tensor '${p.t.name}' gave ${n} of ${p.t.byteLength} bytes`);
    await sink.write(p.shape);
  }
  await sink.write(tailBytes);
}

/** Writes the net to `sink` as a caffemodel and returns the deploy prototxt text. */
export async function writeCaffeNet(model: ModelStream, sink: ByteSink, options: WriteOptions = {}): Promise<string> {
  const { header } = model;
  const net = new TextMessage();
  if (header.name) net.add("name", header.name);
  const w = new WireWriter();
  if (header.name) w.tag(NetField.name, WireType.LengthDelimited).string(header.name);
  await sink.write(w.finish());
  const declared = new Set<string>();
  const declare = async (name: string, shape: (number | string | null)[]) => {
    const msg = inputRecord(name, shape);
    net.add("layer", msg);
    await writeRecord(sink, msg, []);
    declared.add(name);
  };
  for (const input of header.inputs) await declare(input.name, input.shape);
  const tracker = new ShapeTracker(header);
  let done = 0;
  for await (const layer of model.layers) {
    // An input the header did not list yet (an ONNX stream from stdin states its inputs after the nodes) is
    // declared where it is first read, with the header's shape if known by now, else [1, C, 1, 1].
    for (const v of layer.inputs) {
      if (declared.has(v)) continue;
      const known = header.inputs.find((i) => i.name === v)?.shape;
      const w = layer.params.weight;
      const c = layer.op === "Conv" && w ? w.shape[1] * ((layer.attrs.group as number | undefined) ?? 1) : 1;
      await declare(v, known ?? [1, c, 1, 1]);
    }
    const { ins, outs } = tracker.add(layer);
    const records = toCaffeRecords(layer, ins[0], outs);
    for (const r of records) {
      try {
        await writeRecord(sink, r.msg, r.blobs);
      } catch (e) {
        if (namesOtherFile(e)) throw e; // a read error met while writing
        wrapError(e, CaffeError, `Cannot write Caffe layer '${r.msg.str("name", layer.name)}'`, { layer: layer.name });
      }
      net.add("layer", r.msg);
    }
    for (const o of layer.outputs) declared.add(o);
    options.progress?.(++done, header.plan?.length ?? 0, layer.name);
  }
  return printPrototxt(net);
}

/** Where the deploy prototxt of `path` goes by default: the same name with `.prototxt`. */
export function defaultPrototxtPath(path: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  return (dot > slash + 1 ? path.slice(0, dot) : path) + ".prototxt";
}

/** Writes a caffemodel and its deploy prototxt to files, or both as a tar stream to stdout (`-`). */
export async function writeCaffeModel(model: ModelStream, path: string, options: WriteOptions = {}): Promise<void> {
  if (path === "-") return await writeCaffeTar(model, options);
  const sink = await openFileSink(path);
  const protoPath = options.prototxtOut ?? defaultPrototxtPath(path);
  let protoSink: ByteSink | undefined;
  try {
    const text = await writeCaffeNet(model, sink, options);
    protoSink = await openFileSink(protoPath);
    await protoSink.write(new TextEncoder().encode(text));
    await sink.close();
    await protoSink.close();
  } catch (e) {
    await sink.abort();
    await protoSink?.abort();
    await model.layers.cancel().catch(() => {});
    throw e;
  }
}

/** Writes `model.caffemodel` and `deploy.prototxt` as a ustar stream to `out` (stdout when omitted). */
export async function writeCaffeTar(model: ModelStream, options: WriteOptions = {}, out = stdoutSink()): Promise<void> {
  const dir = await makeTempDir({ prefix: "convpress-caffe-" });
  const spool = `${dir}/model.caffemodel`;
  try {
    const sink = await openFileSink(spool);
    let text: string;
    try {
      text = await writeCaffeNet(model, sink, options);
      await sink.close();
    } catch (e) {
      await sink.abort();
      await model.layers.cancel().catch(() => {});
      throw e;
    }
    const f = await Deno.open(spool);
    try {
      await writeTarEntry(out, "model.caffemodel", (await f.stat()).size, f.readable, CaffeError);
    } finally {
      try {
        f.close();
      } catch { /* the readable closed it */ }
    }
    const proto = new TextEncoder().encode(text);
    await writeTarEntry(out, "deploy.prototxt", proto.length, [proto], CaffeError);
    await endTar(out);
    await out.close();
  } finally {
    await removeTemporary(dir);
  }
}
