/**
 * Constant folding at read time: nodes whose inputs are all constants (or whose result depends only on static
 * shapes, as `Shape` does) are computed here, so `Shape -> Gather -> Concat -> Reshape` chains and constant
 * arithmetic become plain constants and the ops after them map to canonical ones. Only small tensors are folded.
 *
 * @module
 */
import { Tensor } from "../../src/model/tensor.ts";
import type { Dim } from "../../src/model/types.ts";
import { attrInt, attrInts, type NodeMsg } from "./proto.ts";
import { readNumbers, type Resolve } from "./import_node.ts";

/** A small constant as numbers. */
interface Val {
  v: number[];
  shape: number[];
  int: boolean;
}

const MAX = 4096;
const prod = (s: number[]) => s.reduce((p, d) => p * d, 1);

function val(t: Tensor | undefined): Val | undefined {
  if (!t || !t.materialized || t.size > MAX) return undefined;
  if (!["int64", "int32", "float32", "float64"].includes(t.dtype)) return undefined;
  return { v: readNumbers(t), shape: [...t.shape], int: t.dtype.startsWith("int") };
}

function strides(shape: number[]): number[] {
  const s = new Array(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

/** Numpy broadcast of two small values. */
function broadcast(a: Val, b: Val, f: (x: number, y: number) => number): Val | undefined {
  const r = Math.max(a.shape.length, b.shape.length);
  const pa = [...Array(r - a.shape.length).fill(1), ...a.shape],
    pb = [...Array(r - b.shape.length).fill(1), ...b.shape];
  const shape: number[] = [];
  for (let i = 0; i < r; i++) {
    if (pa[i] !== pb[i] && pa[i] !== 1 && pb[i] !== 1) return undefined;
    shape.push(Math.max(pa[i], pb[i]));
  }
  const sa = strides(pa), sb = strides(pb), so = strides(shape);
  const n = prod(shape);
  const v = new Array(n);
  for (let k = 0; k < n; k++) {
    let ia = 0, ib = 0;
    for (let i = 0; i < r; i++) {
      const c = Math.floor(k / so[i]) % shape[i];
      ia += (pa[i] === 1 ? 0 : c) * sa[i];
      ib += (pb[i] === 1 ? 0 : c) * sb[i];
    }
    v[k] = f(a.v[ia], b.v[ib]);
  }
  return { v, shape, int: a.int && b.int };
}

function gather(x: Val, idx: Val, axis: number): Val {
  const ax = axis < 0 ? axis + x.shape.length : axis;
  const outer = prod(x.shape.slice(0, ax)), d = x.shape[ax], inner = prod(x.shape.slice(ax + 1));
  const v: number[] = [];
  for (let o = 0; o < outer; o++) {
    for (const i0 of idx.v) {
      const i = i0 < 0 ? i0 + d : i0;
      for (let k = 0; k < inner; k++) v.push(x.v[(o * d + i) * inner + k]);
    }
  }
  return { v, shape: [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)], int: x.int };
}

const ARITH: Record<string, (x: number, y: number) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
};

/** Folds one node; returns its single output's value, or undefined when it is not foldable. */
function foldValue(
  node: NodeMsg,
  ins: (Val | undefined)[],
  shapeOf: (name: string) => Dim[] | undefined,
): Val | undefined {
  const op = node.opType ?? "";
  const x = ins[0];
  if (op === "Shape") {
    const s = shapeOf(node.input?.[0] ?? "");
    if (!s || !s.every((d) => typeof d === "number")) return undefined;
    const r = s.length;
    const start = attrInt(node, "start", 0), end = attrInt(node, "end", r);
    const cl = (v: number) => Math.min(Math.max(v < 0 ? v + r : v, 0), r);
    const v = (s as number[]).slice(cl(start), cl(end));
    return { v, shape: [v.length], int: true };
  }
  if (!x || ins.some((v, i) => node.input?.[i] && !v)) return undefined;
  switch (op) {
    case "Identity":
      return x;
    case "Gather":
      return ins[1] ? gather(x, ins[1], attrInt(node, "axis", 0)) : undefined;
    case "Unsqueeze": {
      const axes = ins[1]?.v ?? attrInts(node, "axes", [])!;
      const r = x.shape.length + axes.length;
      const at = new Set(axes.map((a) => (a < 0 ? a + r : a)));
      const shape: number[] = [];
      let j = 0;
      for (let i = 0; i < r; i++) shape.push(at.has(i) ? 1 : x.shape[j++]);
      return { ...x, shape };
    }
    case "Squeeze": {
      const axes = ins[1]?.v ?? attrInts(node, "axes", undefined);
      const drop = new Set(
        (axes ?? x.shape.flatMap((d, i) => (d === 1 ? [i] : []))).map((a) => (a < 0 ? a + x.shape.length : a)),
      );
      return { ...x, shape: x.shape.filter((_, i) => !drop.has(i)) };
    }
    case "Concat": {
      if (
        ins.some((v) => v!.shape.length !== 1) ||
        attrInt(node, "axis", 0) !== 0 && x.shape.length === 1 && attrInt(node, "axis", 0) !== -1
      ) {
        return undefined;
      }
      const v = ins.flatMap((i) => i!.v);
      return { v, shape: [v.length], int: ins.every((i) => i!.int) };
    }
    case "Cast": {
      const to = attrInt(node, "to", 1);
      const int = [2, 3, 5, 6, 7].includes(to);
      if (!int && to !== 1 && to !== 11) return undefined;
      return { v: int ? x.v.map(Math.trunc) : x.v, shape: x.shape, int };
    }
    case "Reshape": {
      if (!ins[1]) return undefined;
      const spec = ins[1].v;
      const out = spec.map((d, i) => (d === 0 ? x.shape[i] : d));
      const m = out.indexOf(-1);
      if (m >= 0) out[m] = x.v.length / prod(out.filter((_, i) => i !== m));
      return { ...x, shape: out };
    }
    case "Slice": {
      if (x.shape.length !== 1) return undefined;
      const d = x.v.length;
      // Opset < 10: bounds are attributes.
      const s0 = ins[1]?.v[0] ?? attrInts(node, "starts", [0])![0];
      const e0 = ins[2]?.v[0] ?? attrInts(node, "ends", [d])![0];
      const step = ins[4]?.v[0] ?? 1;
      if (step !== 1) return undefined;
      const cl = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      const v = x.v.slice(cl(s0), cl(e0));
      return { v, shape: [v.length], int: x.int };
    }
    case "Floor":
      return { ...x, v: x.v.map(Math.floor) };
    default: {
      const f = ARITH[op];
      if (!f || ins.length !== 2 || !ins[1]) return undefined;
      const r = broadcast(x, ins[1], f);
      if (r && r.int && op === "Div") r.v = r.v.map(Math.trunc);
      return r;
    }
  }
}

/**
 * The folded output of `node` as a tensor named after its output, or undefined. `shapeOf` gives the static shape of
 * an activation, when known.
 */
export function foldNode(
  node: NodeMsg,
  resolve: Resolve,
  shapeOf: (name: string) => Dim[] | undefined,
): Tensor | undefined {
  if ((node.domain ?? "") !== "" || (node.output?.length ?? 0) !== 1) return undefined;
  const inputs = node.input ?? [];
  if (!inputs.length) return undefined;
  const ins = inputs.map((n) => (n ? val(resolve(n)) : undefined));
  const r = foldValue(node, ins, shapeOf);
  if (!r || r.v.length > MAX || r.v.length !== prod(r.shape) || r.v.some((v) => !Number.isFinite(v))) return undefined;
  const name = node.output![0];
  return r.int ? Tensor.fromInt64(name, r.shape, r.v) : Tensor.fromFloat32(name, r.shape, Float32Array.from(r.v));
}
