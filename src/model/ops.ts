/**
 * The canonical op set. Every op is an entry of the op registry (src/ops/registry.ts), with its parameter roles,
 * typed attributes and defaults, shape inference and evaluation kernel; `deno task convpress ops` style tables in the
 * README are generated from it. Conventions: activations are NCHW; spatial attributes are 2-D (`kernel` [kh, kw],
 * `strides` [sh, sw], `dilations` [dh, dw], `pads` [top, left, bottom, right] in ONNX order); an `axis` counts in
 * NCHW. `Passthrough` is the one op outside the registry: a layer a reader could not map, whose source format's own
 * record is in `layer.origin`.
 *
 * @module
 */
import type { RegisteredOp } from "../ops/registry.ts";
import { OPS } from "../ops/registry.ts";

/** Canonical op names: the registry's, plus Passthrough. */
export type Op = RegisteredOp | "Passthrough";

/** Parameter roles of each op, in order. */
export const PARAM_ROLES: Readonly<Partial<Record<Op, readonly string[]>>> = Object.freeze(
  Object.fromEntries(Object.entries(OPS).flatMap(([op, d]) => (d.params ? [[op, d.params]] : []))),
);

/** Ops whose output has the shape of their (first) input. */
export const ELEMENTWISE: ReadonlySet<Op> = new Set<Op>(
  (Object.keys(OPS) as RegisteredOp[]).filter((op) => (OPS[op] as { elementwise?: boolean }).elementwise),
);
