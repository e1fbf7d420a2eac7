/**
 * Lazy loading of TensorFlow.js for the evaluation engine. Nothing here runs until {@link loadTf} is called, so a
 * plain conversion never pays for tfjs. The wasm backend (XNNPACK; about 17-24 GFLOP/s here against 0.7 for the
 * plain JavaScript backend) is preferred. Its `.wasm` binaries ship inside the npm package, so `setWasmPaths` points
 * at the package's own `dist/` folder, resolved from node_modules: no network. If wasm cannot start, the cpu backend
 * is used and {@link TfHandle.backend} says so.
 *
 * @module
 */

/** The tfjs namespace (type only: importing this type loads nothing). */
export type Tf = typeof import("@tensorflow/tfjs");
/** A tfjs tensor. */
export type TfTensor = import("@tensorflow/tfjs").Tensor;

/** A loaded tfjs with the backend in use. */
export interface TfHandle {
  tf: Tf;
  /** "wasm", or "cpu" when wasm could not start. */
  backend: string;
  /** Why wasm was not used, when it was not. */
  fallbackReason?: string;
}

let loading: Promise<TfHandle> | undefined;

/**
 * Loads tfjs once and selects a backend: `wasm` unless `CONVPRESS_TF_BACKEND=cpu` or `preferred` says otherwise.
 * Later calls return the same handle.
 */
export function loadTf(preferred: "wasm" | "cpu" = "wasm"): Promise<TfHandle> {
  loading ??= init(preferred);
  return loading;
}

async function init(preferred: "wasm" | "cpu"): Promise<TfHandle> {
  const tf = await import("@tensorflow/tfjs");
  let want = preferred;
  try {
    if (Deno.env.get("CONVPRESS_TF_BACKEND") === "cpu") want = "cpu";
  } catch {
    // No env permission: keep the preference.
  }
  let reason: string | undefined;
  if (want === "wasm") {
    try {
      const wasm = await import("@tensorflow/tfjs-backend-wasm");
      // The package entry is dist/tf-backend-wasm.node.js; the .wasm files sit beside it.
      const entry = import.meta.resolve("@tensorflow/tfjs-backend-wasm");
      wasm.setWasmPaths(new URL("./", entry).href);
      if (await tf.setBackend("wasm")) {
        await tf.ready();
        return { tf, backend: "wasm" };
      }
      reason = "tf.setBackend('wasm') returned false";
    } catch (e) {
      reason = `the wasm backend failed to start: ${(e as Error).message}`;
    }
  } else reason = "cpu backend requested";
  await tf.setBackend("cpu");
  await tf.ready();
  return { tf, backend: "cpu", fallbackReason: reason };
}

/**
 * The float32 values of `t` without copying them when the backend allows: a view into the wasm heap (valid only
 * until the next tfjs call, which may grow and move the heap), or the cpu backend's own array. Read it, do not keep
 * it, never write it. Other cases (another dtype or backend) get a copy from `dataSync`.
 *
 * This is what a comparison of two activations needs: tfjs's own reads (`data`, `dataSync`, even the wasm `slice`
 * kernel) copy the whole tensor to JavaScript each time.
 */
export function floatView(tf: Tf, t: TfTensor): Float32Array {
  if (t.dtype === "float32") {
    // Backend internals, typed here for the two backends convpress loads (tfjs-backend-wasm and -cpu 4.22.0).
    const be = tf.backend() as unknown as {
      typedArrayFromHeap?: (t: TfTensor) => Float32Array;
      data?: { get(id: object): { values?: unknown } | undefined };
    };
    if (typeof be.typedArrayFromHeap === "function") return be.typedArrayFromHeap(t);
    const v = be.data?.get(t.dataId)?.values;
    if (v instanceof Float32Array && v.length === t.size) return v;
  }
  return t.dataSync() as Float32Array;
}
