/**
 * What a compression stage is to the rest of `compress`: a {@link StageModule} names its recipe key (`kind`), checks
 * its options (`validate`), makes them from its CLI flag (`fromFlags`) and makes the stream stage (`create`). The
 * registry, ./stages.ts, lists them in the thesis order; recipes, flags, `compress` and calibration all go through it.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Layer, ModelStream } from "../model/types.ts";

/** What a stage may need besides its options: the model it runs over and, for pruning, the plan of pass 1. */
export interface StageContext {
  model: ModelStream;
  /** The prune plan of pass 1 (a `PrunePlan` of ./prune.ts, read by the prune stage only; empty when absent). */
  plan?: unknown;
  /**
   * The stream is only scanned for its wiring (layer names, ops, inputs, outputs; see ../eval/structure.ts): a stage
   * may then skip computing tensors it would emit, emitting placeholders of the right shape that refuse to be read.
   */
  structureOnly?: boolean;
}

/** One compression stage. */
export interface StageModule<K extends string = string, O = unknown> {
  /** The recipe key: `{ "<kind>": { ...options } }`. */
  kind: K;
  /** Its CLI flag (`--gap`, `--prune SPEC`, ...), in parseArgs form, with one line of help. */
  flag: { name: string; type: "boolean" | "string"; help: string };
  /** Why `options` (parsed JSON) are invalid, or undefined when they are valid. */
  validate(options: unknown): string | undefined;
  /** The options its flag's value gives; a bad value is a `usage` error. */
  fromFlags(value: string | boolean): O;
  /** The stream stage. */
  create(options: O, ctx: StageContext): TransformStream<Layer, Layer>;
}

/** `key=value[,key=value]` of a stage flag. */
export function keyValues(flag: string, v: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of v.split(",")) {
    const [k, val] = part.split("=");
    if (val === undefined) throw new ConvpressError("usage", `Invalid ${flag} '${v}': expected key=value[,key=value]`);
    out[k.trim()] = val.trim();
  }
  return out;
}

/** A fraction in (0, 1) of a stage flag. */
export function fraction(flag: string, v: string): number {
  const n = Number(v);
  if (!(n > 0 && n < 1)) {
    throw new ConvpressError("usage", `Invalid ${flag} value '${v}': expected a fraction in (0, 1)`);
  }
  return n;
}
