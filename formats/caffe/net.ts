/**
 * Caffe network structure shared by the binary reader and the prototxt parser: a layer definition (name, type in
 * the current-form spelling, bottoms, tops, and the layer's own message with its `*_param` fields), the net's
 * declared inputs, and the TEST-phase filter that turns a train net into a deploy net.
 *
 * @module
 */
import { CaffeError } from "../../src/errors.ts";
import { TextEnum, TextMessage, type TextValue } from "./prototxt.ts";
import { V1_LAYER_ENUM, V1_LAYER_TYPES } from "./types.ts";

/** One Caffe layer, without its blobs. */
export interface CaffeLayerDef {
  name: string;
  /** Current-form type string ("Convolution"); V1 enum types are translated. */
  type: string;
  bottom: string[];
  top: string[];
  /** The layer record (name, type, bottom, top, `*_param`, include/exclude...). */
  msg: TextMessage;
  /** True when the layer came from a V1 `layers` record. */
  v1: boolean;
}

/** A declared network input. `shape` is undefined when the net does not say. */
export interface CaffeInput {
  name: string;
  shape?: number[];
}

/** A network's structure: name, declared inputs and layers in file order. */
export interface CaffeNetDef {
  name: string;
  inputs: CaffeInput[];
  layers: CaffeLayerDef[];
  v1: boolean;
}

/** Builds a layer definition from its message. `v1` says the record is a V1 `layers` entry. */
export function layerDef(msg: TextMessage, v1: boolean, where = ""): CaffeLayerDef {
  const t = msg.get("type");
  let type = "";
  if (v1) {
    if (t instanceof TextEnum) {
      const i = V1_LAYER_ENUM.indexOf(t.name);
      type = i >= 0 ? V1_LAYER_TYPES[i] : t.name;
    } else if (typeof t === "number") type = V1_LAYER_TYPES[t] ?? String(t);
    else if (typeof t === "string") type = t;
  } else if (typeof t === "string") type = t;
  else if (t instanceof TextEnum) {
    throw new CaffeError(
      "bad_format",
      `Caffe layer '${msg.str("name", "")}'${where} uses the V1 enum type ${t.name} inside a current-form 'layer'`,
    );
  }
  return { name: msg.str("name", ""), type, bottom: msg.strs("bottom"), top: msg.strs("top"), msg, v1 };
}

/** True when the layer runs in the TEST phase: no include rule or one for TEST, and no exclude rule for TEST. */
export function inTestPhase(def: CaffeLayerDef): boolean {
  const phaseOf = (r: TextMessage) => r.has("phase") ? r.enumName("phase", ["TRAIN", "TEST"], "") : undefined;
  const include = def.msg.msgs("include");
  if (include.length && !include.some((r) => phaseOf(r) === undefined || phaseOf(r) === "TEST")) return false;
  if (def.msg.msgs("exclude").some((r) => phaseOf(r) === "TEST")) return false;
  // A stored layer's own `phase` (10) records the phase the net ran in when saved, not a rule: ignored.
  return true;
}

function shapeOf(m: TextMessage | undefined): number[] | undefined {
  if (!m) return undefined;
  return m.nums("dim");
}

/**
 * The net-level fields of a prototxt NetParameter, taken one top-level field at a time (from
 * {@link PrototxtParser}): name and declared inputs are kept, each `layer`/`layers` block is handed back to the caller
 * rather than kept, so a net's layers need not all be in memory together.
 */
export class NetFields {
  #name: TextValue | undefined;
  #inputs: string[] = [];
  #dims: number[] = [];
  #shapes: (number[] | undefined)[] = [];
  #v2 = false;
  #v1 = false;
  #v0 = false;

  /** Takes one top-level field; returns the layer message when it is a `layer` or `layers` block. */
  add(name: string, v: TextValue): TextMessage | undefined {
    if (name === "name") this.#name = v;
    else if (name === "input") {
      if (typeof v === "string") this.#inputs.push(v);
    } else if (name === "input_dim") {
      if (typeof v === "number") this.#dims.push(v);
    } else if (name === "input_shape") {
      if (v instanceof TextMessage) this.#shapes.push(shapeOf(v));
    } else if ((name === "layer" || name === "layers") && v instanceof TextMessage) {
      if (name === "layer") this.#v2 = true;
      else {
        this.#v1 = true;
        if (v.has("layer")) this.#v0 = true;
      }
      return v;
    }
    return undefined;
  }

  /** True when the net's layers are V1 `layers` records. */
  get v1(): boolean {
    return this.#v1;
  }

  /** The checks that need the whole net (mixed forms, V0), once every field has been added. */
  check(file?: string): void {
    if (this.#v2 && this.#v1) {
      throw new CaffeError(
        "bad_format",
        `Caffe net${file ? ` ${file}` : ""} has both 'layer' and 'layers' (V1) entries`,
        {
          file,
        },
      );
    }
    if (this.#v0) {
      throw new CaffeError(
        "unsupported",
        `Caffe net${file ? ` ${file}` : ""} is in the V0 format, which is not supported`,
        {
          file,
        },
      );
    }
  }

  /** The net's name (the last `name`, as a string or identifier; otherwise ""). */
  get name(): string {
    const v = this.#name;
    return typeof v === "string" ? v : v instanceof TextEnum ? v.name : "";
  }

  /** The declared inputs. */
  get inputs(): CaffeInput[] {
    return declaredInputs(this.#inputs, this.#dims, this.#shapes);
  }
}

/** Reads a parsed prototxt NetParameter into a network definition. */
export function netFromText(m: TextMessage, file?: string): CaffeNetDef {
  const net = new NetFields();
  const blocks: TextMessage[] = [];
  for (let i = 0; i < m.size; i++) {
    const b = net.add(...m.at(i));
    if (b) blocks.push(b);
  }
  net.check(file);
  const layers = blocks.map((l) => layerDef(l, net.v1));
  return { name: net.name, inputs: net.inputs, layers, v1: net.v1 };
}

/** Combines the deprecated net-level input fields: `input` names with `input_dim` (4 per input) or `input_shape`. */
export function declaredInputs(names: string[], dims: number[], shapes: (number[] | undefined)[]): CaffeInput[] {
  return names.map((name, i) => ({
    name,
    shape: shapes[i] ?? (dims.length >= 4 * (i + 1) ? dims.slice(4 * i, 4 * i + 4) : undefined),
  }));
}
