/**
 * The model stream: what every reader produces, every stage transforms and every writer consumes.
 *
 * ```
 * bytes -> reader -> { header, layers } -> stages (TransformStream<Layer, Layer>) -> writer -> bytes
 * ```
 *
 * Choices, and why:
 * - The header comes first and carries everything a writer must emit before the first layer (inputs, outputs,
 *   metadata), plus the layer plan when the format gives it up front. Writers that need sizes before data (ONNX's
 *   graph length, TF.js's manifest) can then plan, patch or spool instead of buffering the model.
 * - Layers arrive in topological order, one at a time. A layer holds its own parameters, so a stage sees a conv's
 *   weights and bias together, and memory holds at most the layer in hand.
 * - Activation inputs and parameters are kept apart: `inputs` names activations, `params` maps a role (`weight`,
 *   `bias`, ...) to a tensor. Roles, not positions, because formats order parameters differently.
 * - Layouts are canonical (NCHW; conv [out, in/group, kh, kw]; FC [out, in]); readers and writers convert. Both
 *   Caffe and ONNX already use it, so the common conversions never transpose.
 * - `origin` keeps a format's own record of a layer (an ONNX node's bytes, say), so a same-format conversion can
 *   pass through what the canonical op set does not capture. Stages that change a layer drop it.
 * - The layer stream is pulled (`highWaterMark: 0`): a reader reads the next layer only when asked.
 *
 * @module
 */
import type { Tensor } from "./tensor.ts";
import type { Op } from "./ops.ts";

/** Names of the supported formats. */
export type FormatName = string;

/** A dimension: a number, or a symbolic name / null when unknown (batch). */
export type Dim = number | string | null;

/** A graph input or output. */
export interface ValueInfo {
  name: string;
  dtype: string;
  shape: Dim[];
}

/** An attribute value of a canonical op. */
export type AttrValue = number | string | boolean | number[] | string[] | null;

/** Attributes of a layer. Canonical ops document theirs in ./ops.ts. */
export type Attrs = Record<string, AttrValue>;

/** A format's own record of a layer, for same-format pass-through. */
export interface LayerOrigin {
  format: FormatName;
  /** Format-specific payload, for example `{ nodes: Uint8Array[] }` for ONNX. */
  data: unknown;
}

/** One layer of the stream. */
export interface Layer {
  name: string;
  op: Op;
  attrs: Attrs;
  /** Activation inputs, by value name. */
  inputs: string[];
  /** Outputs, by value name. */
  outputs: string[];
  /** Parameters by role, in the order the op lists them. */
  params: Record<string, Tensor>;
  origin?: LayerOrigin;
  /** The source layer this one was derived from, when a stage split, replaced or inserted it (for reports). */
  from?: string;
}

/** What a reader knows of a layer before its data, when the format gives a plan up front. */
export interface LayerPlan {
  name: string;
  op: Op;
  params: { role: string; name: string; dtype: string; shape: number[]; byteLength: number }[];
}

/** The plan of layers already built (readers that map the whole structure before streaming the data). */
export function planOf(layers: readonly Layer[]): LayerPlan[] {
  return layers.map((l) => ({
    name: l.name,
    op: l.op,
    params: Object.entries(l.params).map(([role, t]) => ({
      role,
      name: t.name,
      dtype: t.dtype,
      shape: [...t.shape],
      byteLength: t.byteLength,
    })),
  }));
}

/** The head of the stream. */
export interface ModelHeader {
  name: string;
  sourceFormat: FormatName;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Free-form string metadata (producer, doc string, ...), kept across conversions. */
  metadata: Record<string, string>;
  /** The layer list, when known before the first layer. */
  plan?: LayerPlan[];
  /**
   * True while fields some formats deliver after their tensors (ONNX graph inputs, outputs and opsets on an
   * in-order input) are still unknown. The reader fills them in before the layer stream closes, so a writer that
   * needs them reads them at the end.
   */
  pending?: boolean;
  /** Format-specific header data for same-format pass-through (ONNX opsets, value_info, ...). */
  origin?: { format: FormatName; data: unknown };
}

/** A model as a header and a pull-based stream of layers. */
export interface ModelStream {
  header: ModelHeader;
  layers: ReadableStream<Layer>;
  /**
   * Releases the input (file handles). Call it when every tensor has been consumed: file-backed tensors read
   * from the input after the layer stream has ended, so the stream's end cannot close it. Idempotent.
   */
  close?(): void;
}

/**
 * Builds a pull-based layer stream from an async generator. `cleanup` runs if the stream errors or is cancelled;
 * on a normal end the reader's owner calls {@link ModelStream.close} once the last tensors are consumed.
 */
export function layerStream(gen: AsyncGenerator<Layer>, cleanup?: () => void): ReadableStream<Layer> {
  let closed = false;
  const finish = () => {
    if (!closed) {
      closed = true;
      cleanup?.();
    }
  };
  return new ReadableStream<Layer>({
    async pull(controller) {
      try {
        const r = await gen.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      } catch (e) {
        finish();
        controller.error(e);
      }
    },
    async cancel() {
      finish();
      await gen.return(undefined);
    },
  }, { highWaterMark: 0 });
}

/** Collects a stream's layers (for tests and small models). */
export async function collectLayers(s: ReadableStream<Layer>): Promise<Layer[]> {
  const out: Layer[] = [];
  for await (const l of s) out.push(l);
  return out;
}
