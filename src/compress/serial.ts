/**
 * One-at-a-time for the calibrating stages of one stream. The pruning calibrator and the data-aware clustering are
 * stages of the same pipe, so one's layer can start while the other's is still in its await points; everything they
 * do runs on the main thread anyway (ONNX Runtime's sessions included), so running them one after the other costs no
 * time, and memory then holds one layer's fit at a time instead of both (VGG16's conv3/conv4 fits: 100-250 MB each).
 *
 * @module
 */

/** Runs async jobs one at a time, in the order they were asked for. */
export class Serial {
  #tail: Promise<unknown> = Promise.resolve();

  /** Runs `job` once every job asked for before it has settled. */
  run<T>(job: () => Promise<T>): Promise<T> {
    const r = this.#tail.then(job);
    this.#tail = r.catch(() => {});
    return r;
  }
}
