/**
 * The stage registry: every compression stage, in the thesis order (GAP -> prune -> TSVD -> cluster) after the
 * BatchNorm fold, with the channel scales (both only rewrite the model into the same function) right before
 * clustering, which is also the order flags build a recipe in. A new stage is its module (see ./stage.ts) plus one entry here.
 *
 * @module
 */
import { channelScales } from "./channel_scales.ts";
import { cluster } from "./cluster.ts";
import { fold } from "./fold.ts";
import { gap } from "./gap.ts";
import { prune } from "./prune.ts";
import type { StageContext, StageModule } from "./stage.ts";
import { tsvd } from "./tsvd.ts";
import type { Layer } from "../model/types.ts";

const ALL = [fold, gap, prune, tsvd, channelScales, cluster] as const;

/** A stage of any kind. */
// deno-lint-ignore no-explicit-any
export type AnyStage = StageModule<string, any>; // options differ per stage; StageSpec ties kind to options

/** The stages, in the thesis order. */
export const STAGES: readonly AnyStage[] = ALL;

type SpecOf<S> = S extends StageModule<infer K, infer O> ? { [P in K]: O } : never;

/** One stage of a recipe: `{ "<kind>": options }`. */
export type StageSpec = SpecOf<(typeof ALL)[number]>;

/** A stage's kind. */
export type StageKind = (typeof ALL)[number]["kind"];

/** The kind of a spec (its one key). */
export function kindOf(spec: StageSpec): StageKind {
  return Object.keys(spec)[0] as StageKind;
}

/** The stage module of `kind`, or undefined. */
export function stageOf(kind: string): AnyStage | undefined {
  return STAGES.find((s) => s.kind === kind);
}

/** The stream stage of one spec. */
export function createStage(spec: StageSpec, ctx: StageContext): TransformStream<Layer, Layer> {
  const kind = kindOf(spec);
  return stageOf(kind)!.create((spec as Record<string, unknown>)[kind], ctx);
}
