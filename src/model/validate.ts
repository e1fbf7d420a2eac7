/**
 * Validation of a model stream, once, where it is built (`openModel`): the graph (single assignment, every input
 * defined before use, which in a topologically ordered stream also rules out cycles, unique graph outputs that some
 * layer or input produces) and each canonical layer's attributes (kernels, strides, dilations and pads in range,
 * a group that divides the channels, axes inside the rank, well-formed reshape and transpose specs), plus the input
 * shapes the header declares. Errors name the layer and the attribute.
 *
 * Validation follows the stream: it holds a set of value names and their shapes, nothing more.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { inferShapes, type Shape } from "./shapes.ts";
import type { AttrValue, Layer, ModelHeader, ModelStream } from "./types.ts";

/** Largest kernel, stride, dilation or pad accepted (real models stay far below). */
export const MAX_WINDOW = 1 << 16;
/** Largest dimension accepted in a declared shape. */
export const MAX_DIM = 2 ** 31 - 1;

let file: string | undefined; // the model being validated, named by errors (validation is synchronous per step)

function fail(layer: Layer | undefined, msg: string): ConvpressError {
  const where = layer ? `Layer '${layer.name}' (${layer.op}): ` : "";
  return new ConvpressError("bad_format", `Invalid model: ${where}${msg}`, { layer: layer?.name, file });
}

function show(v: AttrValue | undefined): string {
  try {
    const s = JSON.stringify(v, (_k, x) => (typeof x === "number" && !Number.isFinite(x) ? String(x) : x));
    return s === undefined ? String(v) : s;
  } catch {
    return String(v);
  }
}

function intList(layer: Layer, name: string, len: number[], min: number, max: number): number[] | undefined {
  const v = layer.attrs[name];
  if (v === undefined || v === null) return undefined;
  const ok = Array.isArray(v) && len.includes(v.length) &&
    v.every((x) => typeof x === "number" && Number.isInteger(x) && x >= min && x <= max);
  if (!ok) {
    throw fail(layer, `attribute ${name} ${show(v)} must be ${len.join(" or ")} integers from ${min} to ${max}`);
  }
  return v as number[];
}

function intAttr(layer: Layer, name: string, min: number, max: number): number | undefined {
  const v = layer.attrs[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw fail(layer, `attribute ${name} ${show(v)} must be an integer from ${min} to ${max}`);
  }
  return v;
}

function finiteAttr(layer: Layer, name: string, min = -Infinity, max = Infinity): number | undefined {
  const v = layer.attrs[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    const range = Number.isFinite(min) || Number.isFinite(max) ? ` from ${min} to ${max}` : "";
    throw fail(layer, `attribute ${name} ${show(v)} must be a finite number${range}`);
  }
  return v;
}

function axisAttr(layer: Layer, rank: number | undefined, dflt: number): void {
  const axis = intAttr(layer, "axis", -8, 8) ?? dflt;
  if (rank !== undefined && (axis < -rank || axis >= rank)) {
    throw fail(layer, `attribute axis ${axis} is out of range for an input of rank ${rank}`);
  }
}

function windowAttrs(layer: Layer, needKernel: boolean): void {
  const kernel = intList(layer, "kernel", [2], 1, MAX_WINDOW);
  if (needKernel && !kernel) throw fail(layer, "attribute kernel is missing");
  intList(layer, "strides", [2], 1, MAX_WINDOW);
  intList(layer, "dilations", [2], 1, MAX_WINDOW);
  intList(layer, "pads", [4], 0, MAX_WINDOW);
}

/** Checks one canonical layer's attributes against its parameters and input shapes; throws naming the attribute. */
export function validateLayerAttrs(layer: Layer, ins: Shape[]): void {
  const x = ins[0];
  const rank = x?.length;
  const a = layer.attrs;
  switch (layer.op) {
    case "Conv": {
      windowAttrs(layer, false);
      const group = intAttr(layer, "group", 1, MAX_DIM) ?? 1;
      const w = layer.params.weight;
      if (!w) throw fail(layer, "has no weight");
      if (w.shape.length !== 4) throw fail(layer, `weight shape [${w.shape}] is not [out, in/group, kh, kw]`);
      const [o, ipg, kh, kw] = w.shape;
      const k = a.kernel as number[] | undefined;
      if (k && (k[0] !== kh || k[1] !== kw)) {
        throw fail(layer, `attribute kernel ${show(k)} does not match the weight's ${kh}x${kw}`);
      }
      if (o % group !== 0) throw fail(layer, `attribute group ${group} does not divide the ${o} output channels`);
      const c = x?.[1];
      if (typeof c === "number" && ipg * group !== c) {
        throw fail(
          layer,
          `attribute group ${group} with weight [${w.shape}] needs ${ipg * group} input channels, got ${c}`,
        );
      }
      break;
    }
    case "MaxPool":
    case "AvgPool":
      windowAttrs(layer, true);
      break;
    case "FC": {
      const w = layer.params.weight;
      if (!w || w.shape.length !== 2) throw fail(layer, `weight shape [${w?.shape ?? ""}] is not [out, in]`);
      break;
    }
    case "LRN":
      intAttr(layer, "size", 1, MAX_WINDOW);
      finiteAttr(layer, "alpha");
      finiteAttr(layer, "beta");
      finiteAttr(layer, "bias");
      break;
    case "LeakyRelu":
      finiteAttr(layer, "alpha");
      break;
    case "Clip": {
      const lo = a.min, hi = a.max;
      for (const n of ["min", "max"]) {
        const v = a[n];
        if (v !== undefined && v !== null && (typeof v !== "number" || Number.isNaN(v))) {
          throw fail(layer, `attribute ${n} ${show(v)} must be a number`);
        }
      }
      if (typeof lo === "number" && typeof hi === "number" && lo > hi) {
        throw fail(layer, `attribute min ${lo} is above max ${hi}`);
      }
      break;
    }
    case "BatchNorm":
      finiteAttr(layer, "epsilon", 0);
      break;
    case "Dropout":
      finiteAttr(layer, "ratio", 0, 1);
      break;
    case "Softmax":
      axisAttr(layer, rank, -1);
      break;
    case "Concat":
    case "Flatten":
    case "Scale":
      axisAttr(layer, layer.op === "Flatten" && rank !== undefined ? rank + 1 : rank, 1);
      break;
    case "Reshape": {
      const s = a.shape;
      if (s === undefined) break;
      const ok = Array.isArray(s) &&
        s.every((d) => typeof d === "number" && Number.isInteger(d) && d >= -1 && d <= MAX_DIM);
      if (!ok || (s as number[]).filter((d) => d === -1).length > 1) {
        throw fail(layer, `attribute shape ${show(s)} must be integers >= -1 with at most one -1`);
      }
      break;
    }
    case "Transpose": {
      const p = a.perm;
      const ok = Array.isArray(p) && p.every((d) => typeof d === "number") &&
        [...(p as number[])].sort((i, j) => i - j).every((d, i) => d === i);
      if (!ok) throw fail(layer, `attribute perm ${show(p)} is not a permutation`);
      if (rank !== undefined && (p as number[]).length !== rank) {
        throw fail(layer, `attribute perm ${show(p)} does not fit an input of rank ${rank}`);
      }
      break;
    }
    case "Pad": {
      // Begin and end pads for every axis (ONNX order); negative pads crop.
      const lens = rank !== undefined ? [2 * rank] : [2, 4, 6, 8, 10, 12, 14, 16];
      intList(layer, "pads", lens, -MAX_WINDOW, MAX_WINDOW) ?? (() => {
        throw fail(layer, "attribute pads is missing");
      })();
      break;
    }
  }
}

/** Checks a declared shape: dimensions are non-negative integers (or symbolic / unknown). */
function checkShape(what: string, shape: unknown): void {
  if (!Array.isArray(shape)) throw fail(undefined, `${what} has no shape list`);
  for (const d of shape) {
    if (d === null || typeof d === "string") continue;
    if (typeof d !== "number" || !Number.isInteger(d) || d < 0 || d > MAX_DIM) {
      throw fail(
        undefined,
        `${what} has dimension ${show(d as AttrValue)}: dimensions must be integers from 0 to ${MAX_DIM}`,
      );
    }
  }
}

/** Follows the graph of a stream, one layer at a time. */
export class GraphValidator {
  readonly #header: ModelHeader;
  readonly #shapes = new Map<string, Shape>();
  readonly #producer = new Map<string, string>();
  readonly #names = new Set<string>();
  readonly #undefinedAtStart: { layer: Layer; input: string }[] = [];

  constructor(header: ModelHeader) {
    this.#header = header;
    if (!header.pending) this.#checkHeaderInputs();
  }

  #checkHeaderInputs(): void {
    for (const i of this.#header.inputs) {
      checkShape(`input '${i.name}'`, i.shape);
      if (this.#producer.has(i.name) && this.#producer.get(i.name) !== "") {
        throw fail(undefined, `input '${i.name}' is also the output of layer '${this.#producer.get(i.name)}'`);
      }
      this.#producer.set(i.name, "");
      this.#shapes.set(i.name, i.shape);
    }
  }

  /** Checks a layer, in stream order. */
  add(layer: Layer): void {
    if (typeof layer.name !== "string" || layer.name === "") throw fail(undefined, "a layer has no name");
    if (this.#names.has(layer.name)) throw fail(layer, "the layer name is used twice");
    this.#names.add(layer.name);
    if (!Array.isArray(layer.outputs) || layer.outputs.length === 0) throw fail(layer, "the layer has no outputs");
    for (const v of layer.inputs) {
      if (typeof v !== "string") throw fail(layer, "an input name is not a string");
      if (v === "") continue; // an omitted optional input (ONNX)
      if (!this.#producer.has(v)) {
        // A graph whose inputs arrive at the end (ONNX on stdin) is checked then; otherwise this is a cycle or a
        // dangling reference: either way no runtime can order it.
        if (this.#header.pending) this.#undefinedAtStart.push({ layer, input: v });
        else throw fail(layer, `input '${v}' is not defined before this layer (a cycle, or a missing producer)`);
      }
    }
    for (const v of layer.outputs) {
      if (typeof v !== "string" || v === "") throw fail(layer, "an output has no name");
      const prev = this.#producer.get(v);
      if (prev !== undefined) {
        throw fail(
          layer,
          `output '${v}' is already ${prev === "" ? "a graph input" : `the output of layer '${prev}'`}`,
        );
      }
      this.#producer.set(v, layer.name);
    }
    if (layer.op === "Passthrough") return;
    const ins = layer.inputs.map((n) => this.#shapes.get(n));
    validateLayerAttrs(layer, ins);
    let outs: Shape[];
    try {
      outs = inferShapes(layer, ins);
    } catch {
      outs = layer.outputs.map(() => undefined);
    }
    layer.outputs.forEach((n, i) => this.#shapes.set(n, outs[i]));
  }

  /** Checks what only the end can tell: graph outputs, and inputs of a header completed late. */
  finish(): void {
    if (this.#header.pending === false || this.#undefinedAtStart.length) {
      const late = new Set(this.#header.inputs.map((i) => i.name));
      for (const i of this.#header.inputs) checkShape(`input '${i.name}'`, i.shape);
      for (const { layer, input } of this.#undefinedAtStart) {
        if (!late.has(input) && this.#producer.get(input) === undefined) {
          throw fail(layer, `input '${input}' is not defined before this layer (a cycle, or a missing producer)`);
        }
      }
    }
    const seen = new Set<string>();
    for (const o of this.#header.outputs) {
      if (seen.has(o.name)) throw fail(undefined, `graph output '${o.name}' is listed twice`);
      seen.add(o.name);
    }
  }
}

/**
 * The model with a validating layer stream: each layer is checked as it passes, the graph's outputs at the end.
 * The first invalid layer errors the stream, so a writer aborts before its output lands. Errors name `path`.
 */
export function validateModel(model: ModelStream, path?: string): ModelStream {
  const named = <T>(f: () => T): T => {
    file = path;
    try {
      return f();
    } finally {
      file = undefined;
    }
  };
  const v = named(() => new GraphValidator(model.header));
  const reader = model.layers.getReader();
  let failed = false;
  // Pulled one layer at a time, as the reader's own stream: validation never reads ahead.
  const layers = new ReadableStream<Layer>({
    async pull(c) {
      const r = await reader.read();
      try {
        if (r.done) {
          named(() => v.finish());
          c.close();
        } else {
          named(() => v.add(r.value));
          c.enqueue(r.value);
        }
      } catch (e) {
        // The reader is released by close(), once the consumer is done: a consumer may still be reading the
        // tensors of the layer before, and cancelling now would close the input under it.
        failed = true;
        c.error(e);
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  const close = () => {
    if (failed) reader.cancel().catch(() => {});
    model.close?.();
  };
  return { ...model, layers, close };
}
