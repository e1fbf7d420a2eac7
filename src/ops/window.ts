/**
 * Window arithmetic shared by shape inference, kernels and writers.
 *
 * @module
 */
import type { Dim } from "../model/types.ts";

/** Output size of a conv or pool window along one axis. */
export function windowOut(size: number, k: number, s: number, p0: number, p1: number, d = 1, ceil = false): number {
  const span = (k - 1) * d + 1;
  const num = size + p0 + p1 - span;
  let out = (ceil ? Math.ceil(num / s) : Math.floor(num / s)) + 1;
  // A last window that would start in the end padding is dropped (Caffe and ONNX agree on this).
  if (ceil && (out - 1) * s >= size + p0) out--;
  return out;
}

/** A dimension as a number, or undefined when symbolic. */
export function dimNum(d: Dim | undefined): number | undefined {
  return typeof d === "number" ? d : undefined;
}

/** Numpy-style broadcast of two shapes (null where unknown); undefined when they cannot broadcast. */
export function broadcastShapes(a: Dim[], b: Dim[]): Dim[] | undefined {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (typeof x === "number" && typeof y === "number") {
      if (x !== y) return undefined;
      out.push(x);
    } else out.push(typeof x === "number" ? x : typeof y === "number" ? y : x);
  }
  return out;
}
