/**
 * Model inputs from a data set: each sample preprocessed for the model's input shape. A data set that can prepare
 * its own inputs elsewhere (an image folder, on a Worker) does; any other is preprocessed here, sample by sample.
 *
 * @module
 */
import { makePreprocessor, type PreprocessOptions } from "./preprocess.ts";
import type { Dataset, Sample } from "./types.ts";

/**
 * The first `limit` samples of `data` as model inputs of shape `input` ([C, H, W] for images): each yielded
 * sample's `data` is the preprocessed input, and its `shape` is `input`.
 */
export function modelInputs(
  data: Dataset,
  opts: PreprocessOptions,
  input: number[],
  limit = Infinity,
): AsyncIterable<Sample> {
  // Made here, so that bad options throw now, before any work starts, wherever the work runs.
  const prep = makePreprocessor(opts, input, data.pixels);
  if (data.prepared) return data.prepared(opts, input, limit);
  return (async function* () {
    let seen = 0;
    for await (const s of data.samples()) {
      if (seen++ >= limit) break;
      yield { data: prep(s), shape: input, label: s.label, id: s.id };
    }
  })();
}
