/**
 * Lazy loading of ONNX Runtime (`onnxruntime-node`, a native binding shipped in its npm package): nothing here runs
 * until {@link loadOrt} is called, so a plain conversion never pays for it. Used by the randomized SVD's large
 * products (./ort_gemm.ts) and by `eval`'s engine (src/eval/ort_engine.ts).
 *
 * @module
 */

/** onnxruntime-node's namespace (type only: importing this type loads nothing). */
export type Ort = typeof import("onnxruntime-node");

/** onnxruntime-node when it loads, else why not. */
export interface OrtHandle {
  ort?: Ort;
  reason?: string;
}

let loading: Promise<OrtHandle> | undefined;

/** Loads onnxruntime-node once; `ort` is undefined (with a reason) when its native binding cannot start. */
export function loadOrt(): Promise<OrtHandle> {
  loading ??= (async () => {
    try {
      const ort = await import("onnxruntime-node");
      return { ort: (ort as { default?: Ort }).default ?? ort };
    } catch (e) {
      return { reason: `onnxruntime-node did not load: ${(e as Error).message}` };
    }
  })();
  return loading;
}
