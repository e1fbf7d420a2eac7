/**
 * Binary protobuf <-> {@link TextMessage} for Caffe's small messages (layer headers and `*_param` messages), driven
 * by the schemas of ./types.ts. Blobs are not handled here: the reader streams them and the writer emits them
 * itself. Unknown fields are skipped when decoding.
 *
 * @module
 */
import { type WireReader, WireType } from "../../src/wire/wire_reader.ts";
import { WireWriter } from "../../src/wire/wire_writer.ts";
import { CaffeError } from "../../src/errors.ts";
import { shortFloat32, TextEnum, TextMessage, type TextValue } from "./prototxt.ts";
import { type FieldSpec, LAYER_PARAMS, MESSAGES, V1_LAYER_ENUM, V1_LAYER_PARAMS } from "./types.ts";

const rep = { repeated: true };
const paramFields = (list: readonly [number, string, string][]): FieldSpec[] =>
  list.map(([no, name, message]) => ({ no, name, kind: "message", message }));

/** Schemas of the layer records without their blobs, current form and V1. */
export const LAYER_SCHEMAS: Readonly<Record<string, readonly FieldSpec[]>> = Object.freeze({
  LayerParameter: [
    { no: 1, name: "name", kind: "string" },
    { no: 2, name: "type", kind: "string" },
    { no: 3, name: "bottom", kind: "string", ...rep },
    { no: 4, name: "top", kind: "string", ...rep },
    { no: 5, name: "loss_weight", kind: "float", ...rep },
    { no: 6, name: "param", kind: "message", message: "ParamSpec", ...rep },
    { no: 8, name: "include", kind: "message", message: "NetStateRule", ...rep },
    { no: 9, name: "exclude", kind: "message", message: "NetStateRule", ...rep },
    { no: 10, name: "phase", kind: "enum", enumNames: ["TRAIN", "TEST"] },
    ...paramFields(LAYER_PARAMS),
  ],
  V1LayerParameter: [
    { no: 2, name: "bottom", kind: "string", ...rep },
    { no: 3, name: "top", kind: "string", ...rep },
    { no: 4, name: "name", kind: "string" },
    { no: 5, name: "type", kind: "enum", enumNames: V1_LAYER_ENUM },
    { no: 7, name: "blobs_lr", kind: "float", ...rep },
    { no: 8, name: "weight_decay", kind: "float", ...rep },
    { no: 32, name: "include", kind: "message", message: "NetStateRule", ...rep },
    { no: 33, name: "exclude", kind: "message", message: "NetStateRule", ...rep },
    { no: 35, name: "loss_weight", kind: "float", ...rep },
    { no: 1001, name: "param", kind: "string", ...rep },
    ...paramFields(V1_LAYER_PARAMS),
  ],
});

function schema(name: string): readonly FieldSpec[] {
  const s = MESSAGES[name] ?? LAYER_SCHEMAS[name];
  if (!s) throw new Error(`No Caffe schema for ${name}`);
  return s;
}

/** Decodes wire bytes of message type `type` (a key of MESSAGES or LAYER_SCHEMAS). */
export function decodeMessage(r: WireReader, type: string): TextMessage {
  const specs = schema(type);
  const byNo = new Map(specs.map((s) => [s.no, s]));
  const m = new TextMessage();
  while (!r.done) {
    const [no, wt] = r.tag();
    const s = byNo.get(no);
    if (!s) {
      r.skip(wt);
      continue;
    }
    readField(r, s, wt, m);
  }
  return m;
}

function readField(r: WireReader, s: FieldSpec, wt: number, m: TextMessage): void {
  switch (s.kind) {
    case "string":
      r.expect(s.no, wt, WireType.LengthDelimited, s.name);
      m.add(s.name, r.string());
      return;
    case "message":
      r.expect(s.no, wt, WireType.LengthDelimited, s.name);
      m.add(s.name, decodeMessage(r.sub(), s.message!));
      return;
    case "float": {
      const out: number[] = [];
      r.repeatedFloat(wt, out);
      for (const v of out) m.add(s.name, shortFloat32(v));
      return;
    }
    case "dims":
    case "uint":
    case "int":
    case "bool":
    case "enum": {
      const out: number[] = [];
      r.repeatedInt(wt, out);
      for (let v of out) {
        if (s.kind === "int" || s.kind === "dims") m.add(s.name, v);
        else if (s.kind === "uint") m.add(s.name, v >= 0 ? v : v + 2 ** 32);
        else if (s.kind === "bool") m.add(s.name, v !== 0);
        else {
          v = v | 0;
          const n = s.enumNames?.[v];
          m.add(s.name, n ? new TextEnum(n) : v);
        }
      }
      return;
    }
  }
}

/** Encodes a message of type `type`. Fields go out in the message's order; unknown names are an error. */
export function encodeMessage(m: TextMessage, type: string, w = new WireWriter()): WireWriter {
  const specs = schema(type);
  const byName = new Map(specs.map((s) => [s.name, s]));
  const dims: number[] = [];
  for (const [name, v] of m.fields) {
    const s = byName.get(name);
    if (!s) throw new CaffeError("unsupported", `Cannot write Caffe field '${name}' of ${type}: unknown field`);
    if (s.kind === "dims") {
      dims.push(Number(v));
      continue;
    }
    writeField(w, s, v, type);
  }
  if (dims.length) {
    // BlobShape.dim is packed.
    w.tag(1, WireType.LengthDelimited).fork();
    for (const d of dims) w.int(d);
    w.join();
  }
  return w;
}

function writeField(w: WireWriter, s: FieldSpec, v: TextValue, type: string): void {
  const bad = (): never => {
    throw new CaffeError("bad_format", `Cannot write Caffe field '${s.name}' of ${type}: bad value`);
  };
  switch (s.kind) {
    case "string":
      if (typeof v !== "string") bad();
      w.tag(s.no, WireType.LengthDelimited).string(v as string);
      return;
    case "message":
      if (!(v instanceof TextMessage)) bad();
      w.tag(s.no, WireType.LengthDelimited).fork();
      encodeMessage(v as TextMessage, s.message!, w);
      w.join();
      return;
    case "float":
      if (typeof v !== "number") bad();
      w.tag(s.no, WireType.Bit32).float(v as number);
      return;
    case "bool":
      w.tag(s.no, WireType.Varint).bool(v === true || v === 1);
      return;
    case "enum": {
      let n: number;
      if (typeof v === "number") n = v;
      else if (v instanceof TextEnum) n = s.enumNames?.indexOf(v.name) ?? -1;
      else n = bad();
      if (n < 0) bad();
      w.tag(s.no, WireType.Varint).int(n);
      return;
    }
    default:
      if (typeof v !== "number") bad();
      w.tag(s.no, WireType.Varint).int(v as number);
  }
}
