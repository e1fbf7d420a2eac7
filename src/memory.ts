/**
 * Asks V8 for a full collection when the process was started with `--v8-flags=--expose-gc` (the `convpress` task
 * and the compiled binary are). Large typed arrays live outside V8's heap and V8 collects them lazily, so a stage
 * that allocates a layer-sized buffer per step (the SVD's blocks, a factor) would otherwise leave hundreds of MB of
 * garbage resident before the next collection. A no-op otherwise.
 *
 * @module
 */

const gc = (globalThis as { gc?: () => void }).gc;

/** Collects garbage now, if the runtime allows it. */
export function releaseMemory(): void {
  gc?.();
}
