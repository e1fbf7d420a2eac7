/**
 * Compressed ONNX (`--keep-clustered`): a clustered tensor ({@link ClusteredForm}, as a `.cvp` stores it) is written
 * as its indices plus a small decoding subgraph whose output carries the tensor's name, so the consuming Conv or Gemm
 * is unchanged and ONNX Runtime runs the file as it is.
 *
 * ```
 * indices, direct (uint8 / uint16, shaped like the weight):
 *   q ──Cast(int32)──> idx ──Gather(codebook[k] float32, axis 0)──> weight
 * indices, packed `per` to a word of W = 8/32/64 bits (index i of word w at bits [i*b, (i+1)*b), LSB first):
 *   q[m,1] ──BitShift LEFT by [W-b-i*b]──> ──BitShift RIGHT by W-b──> [m,per] ──Cast──> ──Reshape[-1]──>
 *          ──Slice[0:n] (when m*per > n)──> ──Reshape(weight shape)──> idx ──Gather──> weight
 * affine centres (centre j = (q_j - zp) * scale, exactly in float32): the same unpacking, Cast to uint8, then
 *   ──DequantizeLinear(scale, zp)──> weight   (no codebook)
 * ```
 * Why these ops: Gather's indices must be int32/int64, so a narrow index tensor needs a Cast; the 4-bit `UINT4` type
 * needs opset 21 and IR 10, which ONNX Runtime 1.30 runs but the `onnx` checker this project tests with (1.12:
 * opset 17, IR 8) rejects (bench/uint4_probe.sh), while BitShift (opset 11) packs any bit width into ordinary
 * unsigned words (4 bits: UINT4's very bytes). The codebook is float32 (4k bytes, at most 1 KiB for 8 bits) so the
 * Gather output feeds the float32 Conv/Gemm with no second Cast. The word width is the one that wastes fewest bits
 * per index (5 bits: 6 to a uint32, 5.33 bits each); direct bytes are used for 8 bits and below opset 11. A tensor
 * whose parts would not be smaller than its float32 initializer (a small one with a big codebook) stays float.
 * ONNX Runtime folds these subgraphs into constants at load with its default optimizations, so outputs are those of
 * the float weights, bit for bit (bench/results/compressed_onnx.md has the memory this costs at load).
 *
 * @module
 */
import { Tensor } from "../../src/model/tensor.ts";
import type { ClusteredForm } from "../../src/model/tensor.ts";
import { onnx } from "./proto.ts";
import { AttrType } from "./types.ts";

/** ONNX TensorProto data types used here. */
const T = { FLOAT: 1, UINT8: 2, INT32: 6 } as const;

/** How one clustered tensor is stored in the file. */
export interface ClusteredLayout {
  /** `gather` (codebook + indices) or `dequantize` (affine centres, DequantizeLinear). */
  kind: "gather" | "dequantize";
  /** Bits of information per index: ceil(log2 k), or of the largest affine level. */
  bits: number;
  /** Storage word: 8, 16, 32 or 64 bits, holding `per` indices. */
  word: number;
  per: number;
  /** Bytes of the stored index tensor. */
  indexBytes: number;
  /** Bytes of the codebook (or of scale and zero point). */
  codebookBytes: number;
}

/** The initializers and nodes that rebuild a tensor, and how it is stored. */
export interface ClusteredParts {
  tensors: Tensor[];
  /** Encoded NodeProtos, in topological order; the last one outputs the tensor's name. */
  nodes: Uint8Array[];
  layout: ClusteredLayout;
}

/** Minimum opsets of the ops used. */
const OPSET_BITSHIFT = 11;
const OPSET_DEQUANTIZE = 10;

/** Bits to tell `k` values apart (1 for k = 1, so every index tensor has elements). */
export function indexBits(k: number): number {
  let b = 1;
  while (2 ** b < k) b++;
  return b;
}

/** The storage word for `b`-bit indices: fewest bits per index, direct (per = 1) on ties. */
export function chooseWord(b: number, opset: number): { word: number; per: number } {
  const direct = b <= 8 ? 8 : 16;
  let best = { word: direct, per: 1 };
  if (opset < OPSET_BITSHIFT) return best;
  for (const word of [8, 32, 64]) {
    const per = Math.floor(word / b);
    if (per >= 2 && word / per < best.word / best.per) best = { word, per };
  }
  return best;
}

/**
 * Affine levels for the centres, when ONNX's DequantizeLinear (y = (q - zp) * scale in float32, q and zp uint8)
 * reproduces every centre exactly: the level of each centre, scale and zero point. Undefined otherwise.
 */
export function affineLevels(
  centers: Float32Array,
  maxLevels = 256,
): { levels: Uint32Array; scale: number; zeroPoint: number } | undefined {
  const k = centers.length;
  if (k > maxLevels || centers.some((c) => !Number.isFinite(c))) return undefined;
  const nonzero = [...centers].filter((c) => c !== 0).map(Math.abs);
  if (nonzero.length === 0) return { levels: new Uint32Array(k), scale: 1, zeroPoint: 0 };
  const g = Math.min(...nonzero);
  // 0 is always a level (q = zp), so every centre is t * scale for an integer t, and scale = g / a for some a.
  for (let a = 1; a < maxLevels; a++) {
    const scale = Math.fround(g / a);
    if (scale === 0) break;
    const t = Array.from(centers, (c) => Math.round(c / scale));
    const lo = Math.min(0, ...t), hi = Math.max(0, ...t);
    if (hi - lo > maxLevels - 1) break; // finer scales only widen the range
    if (!t.every((ti, j) => Math.fround(ti * scale) === centers[j])) continue;
    const zeroPoint = -lo;
    return { levels: Uint32Array.from(t, (ti) => ti + zeroPoint), scale, zeroPoint };
  }
  return undefined;
}

type Attr = { name: string; type: number; i?: number; s?: Uint8Array };

function node(opType: string, name: string, input: string[], output: string[], attribute: Attr[] = []): Uint8Array {
  return onnx.NodeProto.encode({ opType, name, input, output, attribute }).finish();
}

/**
 * The parts that store `t` in its clustered form, or undefined when it has none or when the float32 initializer
 * would be no larger (a small tensor with a big codebook). `opset` is the model's default-domain opset (BitShift
 * needs 11, DequantizeLinear 10).
 */
export function clusteredParts(t: Tensor, opset: number): ClusteredParts | undefined {
  const form = t.encoded;
  if (!form || t.dtype !== "float32") return undefined;
  const n = t.size;
  const k = form.centers.length;
  const base = `${t.name}__cvp`;
  const gatherBits = indexBits(k);
  const affine = opset >= OPSET_DEQUANTIZE ? affineLevels(form.centers) : undefined;
  const affineBits = affine ? indexBits(Math.max(...affine.levels) + 1) : Infinity;
  const gw = chooseWord(gatherBits, opset);
  const useAffine = affine !== undefined &&
    wordBytes(n, chooseWord(affineBits, opset)) + 5 <= wordBytes(n, gw) + 4 * k;
  const bits = useAffine ? affineBits : gatherBits;
  const { word, per } = useAffine ? chooseWord(affineBits, opset) : gw;
  const q = indexTensor(`${base}_q`, t, form, bits, word, per, useAffine ? affine!.levels : undefined);
  const tensors: Tensor[] = [q];
  const nodes: Uint8Array[] = [];
  const to = useAffine ? T.UINT8 : T.INT32;
  let idx: string;
  if (per === 1) {
    idx = useAffine ? q.name : `${base}_idx`;
    if (!useAffine) {
      nodes.push(node("Cast", `${base}/cast`, [q.name], [idx], [{ name: "to", type: AttrType.INT, i: to }]));
    }
  } else {
    const wordType = word === 8 ? "uint8" : word === 32 ? "uint32" : "uint64";
    const shl = uintTensor(`${base}_shl`, wordType, [per], (i) => word - bits - i * bits);
    const shr = uintTensor(`${base}_shr`, wordType, [1], () => word - bits);
    tensors.push(shl, shr);
    const dir = (d: string) => ({ name: "direction", type: AttrType.STRING, s: new TextEncoder().encode(d) });
    nodes.push(node("BitShift", `${base}/shl`, [q.name, shl.name], [`${base}_hi`], [dir("LEFT")]));
    nodes.push(node("BitShift", `${base}/shr`, [`${base}_hi`, shr.name], [`${base}_lo`], [dir("RIGHT")]));
    nodes.push(
      node("Cast", `${base}/cast`, [`${base}_lo`], [`${base}_cast`], [{ name: "to", type: AttrType.INT, i: to }]),
    );
    let flat = `${base}_cast`;
    if ((q.shape[0] as number) * per > n) {
      const all = Tensor.fromInt64(`${base}_all`, [1], [-1]);
      const zero = Tensor.fromInt64(`${base}_start`, [1], [0]);
      const end = Tensor.fromInt64(`${base}_end`, [1], [n]);
      tensors.push(all, zero, end);
      nodes.push(node("Reshape", `${base}/flat`, [flat, all.name], [`${base}_flat`]));
      nodes.push(node("Slice", `${base}/slice`, [`${base}_flat`, zero.name, end.name, zero.name], [`${base}_cut`]));
      flat = `${base}_cut`;
    }
    const shape = Tensor.fromInt64(`${base}_shape`, [t.shape.length], [...t.shape]);
    tensors.push(shape);
    idx = `${base}_idx`;
    nodes.push(node("Reshape", `${base}/reshape`, [flat, shape.name], [idx]));
  }
  let codebookBytes: number;
  if (useAffine) {
    const scale = Tensor.fromFloat32(`${base}_scale`, [], new Float32Array([affine!.scale]));
    const zp = Tensor.fromBytes(`${base}_zp`, "uint8", [], new Uint8Array([affine!.zeroPoint]));
    tensors.push(scale, zp);
    nodes.push(node("DequantizeLinear", `${base}/dequantize`, [idx, scale.name, zp.name], [t.name]));
    codebookBytes = 5;
  } else {
    const codebook = Tensor.fromFloat32(`${base}_codebook`, [k], Float32Array.from(form.centers));
    tensors.push(codebook);
    nodes.push(
      node("Gather", `${base}/gather`, [codebook.name, idx], [t.name], [{ name: "axis", type: AttrType.INT, i: 0 }]),
    );
    codebookBytes = 4 * k;
  }
  // Kept only when smaller than the float32 initializer (field tags and lengths: a few bytes per proto).
  const protoBytes = (t: Tensor) => t.byteLength + t.name.length + 2 * t.shape.length + 12;
  const cost = tensors.reduce((s, c) => s + protoBytes(c), 0) + nodes.reduce((s, b) => s + b.length + 4, 0);
  if (cost >= protoBytes(t)) return undefined;
  return {
    tensors,
    nodes,
    layout: {
      kind: useAffine ? "dequantize" : "gather",
      bits,
      word,
      per,
      indexBytes: q.byteLength,
      codebookBytes,
    },
  };
}

function wordBytes(n: number, w: { word: number; per: number }): number {
  return Math.ceil(n / w.per) * (w.word / 8);
}

function uintTensor(name: string, dtype: "uint8" | "uint32" | "uint64", shape: number[], f: (i: number) => number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const a = dtype === "uint8"
    ? Uint8Array.from({ length: n }, (_, i) => f(i))
    : dtype === "uint32"
    ? Uint32Array.from({ length: n }, (_, i) => f(i))
    : BigUint64Array.from({ length: n }, (_, i) => BigInt(f(i)));
  return Tensor.fromBytes(name, dtype, shape, new Uint8Array(a.buffer));
}

/**
 * The stored index tensor, produced lazily from the form's index slices: `direct` words shaped like the weight, or
 * `per` indices to a little-endian word, shaped [m, 1]. `levels` maps centre numbers to stored values (affine).
 */
function indexTensor(
  name: string,
  t: Tensor,
  form: ClusteredForm,
  bits: number,
  word: number,
  per: number,
  levels?: Uint32Array,
): Tensor {
  const n = t.size;
  const m = Math.ceil(n / per);
  const bytesPerWord = word / 8;
  const dtype = word === 8 ? "uint8" : word === 16 ? "uint16" : word === 32 ? "uint32" : "uint64";
  const shape = per === 1 ? t.shape : [m, 1];
  return Tensor.fromChunks(name, dtype, shape, m * bytesPerWord, async function* () {
    const wordsPerChunk = 1 << 16;
    let buf = new Uint8Array(wordsPerChunk * bytesPerWord);
    let u16 = new Uint16Array(buf.buffer);
    let u32 = new Uint32Array(buf.buffer, 0, (buf.length / 4) | 0);
    let w = 0, slot = 0;
    for await (const idx of form.indices()) {
      for (let i = 0; i < idx.length; i++) {
        const v = levels ? levels[idx[i]] : idx[i];
        const p = slot * bits;
        if (word === 8) buf[w] |= v << p;
        else if (word === 16) u16[w] = v;
        else if (word === 32) u32[w] |= v << p;
        else if (p + bits <= 32) u32[2 * w] |= v << p;
        else if (p >= 32) u32[2 * w + 1] |= v << (p - 32);
        else {
          u32[2 * w] |= v << p;
          u32[2 * w + 1] |= v >>> (32 - p);
        }
        if (++slot === per) {
          slot = 0;
          if (++w === wordsPerChunk) {
            yield buf;
            buf = new Uint8Array(wordsPerChunk * bytesPerWord);
            u16 = new Uint16Array(buf.buffer);
            u32 = new Uint32Array(buf.buffer, 0, (buf.length / 4) | 0);
            w = 0;
          }
        }
      }
    }
    if (slot > 0) w++;
    if (w > 0) yield buf.subarray(0, w * bytesPerWord);
  });
}
