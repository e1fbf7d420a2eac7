/**
 * The evaluation kernels' dispatch: a canonical layer runs the kernel of its op's registry entry
 * (src/ops/registry.ts), which holds the exact Caffe/ONNX semantics. The layout rules are in src/ops/act.ts.
 *
 * Ownership: kernels never dispose their inputs; they return new tensors (intermediates are disposed inside).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Layer } from "../model/types.ts";
import { attrsOf, opDef } from "../ops/registry.ts";
import type { Act, Params } from "../ops/op_def.ts";
import { toNchw as nchwOf, toNhwc as nhwcOf } from "../ops/act.ts";
import type { Tf, TfTensor } from "./tf.ts";

export type { Act, Params };

function err(layer: Layer, msg: string, code: "unsupported" | "bad_format" = "bad_format"): ConvpressError {
  return new ConvpressError(code, `Cannot evaluate layer '${layer.name}' (${layer.op}): ${msg}`, {
    layer: layer.name,
  });
}

/** The tensor in NCHW order (a new handle; dispose it). */
export function toNchw(tf: Tf, a: Act): TfTensor {
  return nchwOf(tf, a);
}

/** The rank-4 tensor in NHWC order (a new handle; dispose it). */
export function toNhwc(tf: Tf, a: Act, layer: Layer): TfTensor {
  const t = nhwcOf(tf, a);
  if (!t) throw err(layer, `needs a rank-4 NCHW input, got shape [${a.t.shape.join(",")}]`);
  return t;
}

/** Runs one canonical layer (FC included, though ./executor.ts streams the weights of big ones itself). */
export function runKernel(tf: Tf, layer: Layer, ins: Act[], params: Params): Act[] {
  const def = opDef(layer.op);
  if (!def) {
    const native = layer.attrs.onnxOp ?? layer.attrs.type;
    const what = native ? `the source format's '${native}' op` : "an op the canonical set does not cover";
    throw err(layer, `${what} has no evaluator (it was read as a pass-through layer)`, "unsupported");
  }
  return def.kernel({ tf, layer, a: attrsOf(layer), params, fail: (m, c) => err(layer, m, c) }, ins);
}
