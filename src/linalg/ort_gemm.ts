/**
 * Dense float32 products on ONNX Runtime (MLAS, all cores): one small Gemm graph per combination of transposes,
 * with both operands as inputs of any size, built once and kept. The operands are handed over without a copy.
 * About 3-4x the single-threaded tfjs-wasm products on this 2-core machine; undefined where onnxruntime-node
 * cannot load, and ./gemm.ts falls back to tfjs or JavaScript.
 *
 * @module
 */
import onnxProto from "onnx-proto";
import { loadOrt, type Ort } from "./ort.ts";

const onnx = onnxProto.onnx;

type Session = import("onnxruntime-node").InferenceSession;

let ortLoading: Promise<Ort | undefined> | undefined;
const sessions = new Map<string, Promise<Session>>();

/** onnxruntime-node, or undefined (loaded on first call; `CONVPRESS_GEMM=tfjs` turns it off). */
export function gemmOrt(): Promise<Ort | undefined> {
  ortLoading ??= (async () => {
    try {
      if (Deno.env.get("CONVPRESS_GEMM") === "tfjs") return undefined;
    } catch {
      // No env permission: use ONNX Runtime.
    }
    return (await loadOrt()).ort;
  })();
  return ortLoading;
}

function gemmModel(transA: boolean, transB: boolean, f: number): Uint8Array {
  const vi = (name: string) => ({
    name,
    type: { tensorType: { elemType: f, shape: { dim: [{ dimParam: `${name}0` }, { dimParam: `${name}1` }] } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 7,
    opsetImport: [{ domain: "", version: 13 }],
    graph: {
      name: "gemm",
      node: [{
        opType: "Gemm",
        input: ["a", "b"],
        output: ["c"],
        attribute: [
          { name: "transA", type: 2, i: transA ? 1 : 0 },
          { name: "transB", type: 2, i: transB ? 1 : 0 },
        ],
      }],
      input: [vi("a"), vi("b")],
      output: [{ name: "c", type: { tensorType: { elemType: f } } }],
    },
  }).finish();
}

/**
 * C = op(A) op(B) on ONNX Runtime, or undefined when it is not available. A is (transA ? k x m : m x k), B is
 * (transB ? n x k : k x n), row-major.
 */
export async function ortGemm(
  a: Float32Array,
  b: Float32Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Promise<Float32Array | undefined> {
  return (await run("float32", a, b, m, k, n, transA, transB)) as Float32Array | undefined;
}

/** {@link ortGemm} in float64 (MLAS's double kernels: about 74 GFLOP/s on this 2-core machine, 13x plain loops). */
export async function ortGemm64(
  a: Float64Array,
  b: Float64Array,
  m: number,
  k: number,
  n: number,
  transA = false,
  transB = false,
): Promise<Float64Array | undefined> {
  return (await run("float64", a, b, m, k, n, transA, transB)) as Float64Array | undefined;
}

async function run(
  type: "float32" | "float64",
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Promise<Float32Array | Float64Array | undefined> {
  const ort = await gemmOrt();
  if (!ort) return undefined;
  const key = `${type}${transA}${transB}`;
  let s = sessions.get(key);
  if (!s) {
    // No memory arena: it would keep the largest product's buffers (fc7's randomized SVD, calibration patches)
    // for the rest of the run.
    s = ort.InferenceSession.create(gemmModel(transA, transB, type === "float32" ? 1 : 11), {
      graphOptimizationLevel: "all",
      enableCpuMemArena: false,
      enableMemPattern: false,
    });
    sessions.set(key, s);
  }
  const session = await s;
  const ta = new ort.Tensor(type, a, transA ? [k, m] : [m, k]);
  const tb = new ort.Tensor(type, b, transB ? [n, k] : [k, n]);
  const r = await session.run({ a: ta, b: tb });
  return r.c.data as Float32Array | Float64Array;
}
