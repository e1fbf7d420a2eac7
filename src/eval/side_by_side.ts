/**
 * Runs a reference model and a candidate (its converted or compressed copy) side by side in one streaming pass over
 * both: the two layer streams are pulled in step, and each value both models produce (matched by output name) is
 * compared as soon as the second one has it. A compared value is pinned only from the first model's production to
 * the second's, so memory stays at two live activation sets plus one layer's weights per model.
 *
 * @module
 */
import { relativeErrorOf } from "../linalg/relative_error.ts";
import { ConvpressError } from "../errors.ts";
import type { Layer, ModelStream } from "../model/types.ts";
import { type Activation, LayerExecutor } from "./executor.ts";
import { diffStats } from "./diff_stats.ts";
import { type ModelStructure, producedValues, structureFromHeader, useCounts } from "./structure.ts";

/** One compared value. */
export interface LayerError {
  /** The output value's name (shared by both models). */
  name: string;
  /** ||candidate - reference|| / ||reference||, or undefined when the shapes differ. */
  relativeError?: number;
  /** Largest absolute difference. */
  maxAbsError?: number;
  /** Sum of squared differences and of squared reference values (to combine batches exactly). */
  squaredError?: number;
  squaredReference?: number;
  /** Set when the shapes differ (a pruned layer, say). */
  note?: string;
}

/** Options of {@link runSideBySide}. */
export interface SideBySideOptions {
  /** Wiring of the reference, to free activations and to know which outputs the two models share. */
  referenceStructure?: ModelStructure;
  /** Wiring of the candidate. */
  candidateStructure?: ModelStructure;
  /** Called as each shared value is compared. */
  onCompare?(e: LayerError): void | Promise<void>;
  /** "cpu" forces the plain JavaScript backend. */
  backend?: "wasm" | "cpu";
}

/** Outputs of both models and the per-layer errors. */
export interface SideBySideResult {
  reference: Activation;
  candidate: Activation;
  layers: LayerError[];
}

interface Side {
  model: ModelStream;
  ex: LayerExecutor;
  reader: ReadableStreamDefaultReader<Layer>;
  done: boolean;
  /** How many shared values it has produced. */
  progress: number;
  last?: string;
  output?: string;
}

/**
 * Runs `inputs` (NCHW float32 of `shape`) through both models, layer by layer in step. Without structures (stdin
 * inputs whose header has no wired plan) only the final outputs are compared and nothing is freed early.
 */
export async function runSideBySide(
  reference: ModelStream,
  candidate: ModelStream,
  inputs: Float32Array,
  shape: number[],
  opts: SideBySideOptions = {},
): Promise<SideBySideResult> {
  const rs = opts.referenceStructure ?? structureFromHeader(reference.header);
  const cs = opts.candidateStructure ?? structureFromHeader(candidate.header);
  const shared = new Set<string>();
  if (rs && cs) {
    const theirs = new Set(producedValues(cs));
    for (const v of producedValues(rs)) if (theirs.has(v)) shared.add(v);
  }
  const make = async (model: ModelStream, s: ModelStructure | undefined): Promise<Side> => {
    const output = model.header.outputs[0]?.name;
    const ex = await LayerExecutor.create({
      uses: s ? useCounts(s) : undefined,
      keep: output ? [output] : [],
      backend: opts.backend,
    });
    const input = model.header.inputs[0]?.name;
    if (!input) throw new ConvpressError("bad_format", "The model declares no input");
    ex.setInput(input, inputs, shape);
    return { model, ex, reader: model.layers.getReader(), done: false, progress: 0, output };
  };
  const sides: Side[] = [];
  try {
    sides.push(await make(reference, rs));
    sides.push(await make(candidate, cs));
    const [ref, cand] = sides;
    const layers: LayerError[] = [];
    const compare = async (name: string) => {
      const e = compareActs(ref.ex, cand.ex, name);
      layers.push(e);
      await opts.onCompare?.(e);
      ref.ex.unpin(name);
      cand.ex.unpin(name);
    };
    const step = async (side: Side, other: Side) => {
      const r = await side.reader.read();
      if (r.done) {
        side.done = true;
        return;
      }
      const layer = r.value;
      await side.ex.run(layer);
      side.last = layer.outputs[0] ?? side.last;
      for (const o of layer.outputs) {
        if (!shared.has(o) || !side.ex.has(o)) continue;
        side.progress++;
        side.ex.pin(o);
        if (other.ex.has(o)) await compare(o);
      }
    };
    while (!ref.done || !cand.done) {
      // Pull the side that is behind in shared values, so a pinned value waits for as short a time as possible.
      if (!ref.done && (cand.done || ref.progress <= cand.progress)) await step(ref, cand);
      else await step(cand, ref);
    }
    const outName = (s: Side) => (s.output && s.ex.has(s.output) ? s.output : s.last);
    const ro = outName(ref), co = outName(cand);
    if (!ro || !co) throw new ConvpressError("bad_format", "A model produced no output");
    const result = { reference: await ref.ex.read(ro), candidate: await cand.ex.read(co), layers };
    if (!shared.has(ro) || ro !== co) {
      const e = outputError(ro === co ? ro : `${ro} / ${co}`, result.reference, result.candidate);
      layers.push(e);
      await opts.onCompare?.(e);
    }
    return result;
  } finally {
    for (const s of sides) {
      s.ex.dispose();
      if (!s.done) await s.reader.cancel().catch(() => {});
    }
  }
}

function compareActs(a: LayerExecutor, b: LayerExecutor, name: string): LayerError {
  const sa = a.shape(name), sb = b.shape(name);
  if (sa.join(",") !== sb.join(",")) {
    return { name, note: `shapes differ: [${sa.join(",")}] against [${sb.join(",")}]` };
  }
  const { num, den, max } = diffStats(a.tf, a.act(name), b.act(name));
  return {
    name,
    relativeError: relativeErrorOf(num, den),
    maxAbsError: max,
    squaredError: num,
    squaredReference: den,
  };
}

function outputError(name: string, ref: Activation, cand: Activation): LayerError {
  if (ref.shape.join(",") !== cand.shape.join(",")) {
    return { name, note: `shapes differ: [${ref.shape.join(",")}] against [${cand.shape.join(",")}]` };
  }
  let num = 0, den = 0, max = 0;
  for (let i = 0; i < ref.data.length; i++) {
    const d = cand.data[i] - ref.data[i];
    num += d * d;
    den += ref.data[i] * ref.data[i];
    max = Math.max(max, Math.abs(d));
  }
  return {
    name,
    relativeError: relativeErrorOf(num, den),
    maxAbsError: max,
    squaredError: num,
    squaredReference: den,
  };
}
