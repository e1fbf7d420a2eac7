/**
 * Bulk float32 <-> 16-bit conversions for tensor bodies, chunk by chunk. Chunks may split an element anywhere: the
 * converters carry the partial element over to the next chunk.
 *
 * @module
 */
import { bfloat16ToFloat32, float16ToFloat32, float32ToBfloat16, float32ToFloat16 } from "../../src/model/float16.ts";

/** The two 16-bit float representations. */
export type HalfKind = "f16" | "bf16";

/** Converts a float32 to the 16-bit pattern of `kind` (round to nearest even). */
export function toHalf(kind: HalfKind, v: number): number {
  return kind === "f16" ? float32ToFloat16(v) : float32ToBfloat16(v);
}

/** Converts a 16-bit pattern of `kind` to a number. */
export function fromHalf(kind: HalfKind, h: number): number {
  return kind === "f16" ? float16ToFloat32(h) : bfloat16ToFloat32(h);
}

const F16_TABLE = (() => {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = float16ToFloat32(h);
  return t;
})();

/** Narrows little-endian float32 chunks to 16-bit chunks. Output chunks are fresh arrays. */
export async function* narrowChunks(kind: HalfKind, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const carry = new Uint8Array(4);
  let carried = 0;
  const f = new Float32Array(1);
  const fb = new Uint8Array(f.buffer);
  for await (const c of chunks) {
    let i = 0;
    const out = new Uint8Array(((carried + c.length) >> 2) * 2);
    let o = 0;
    if (carried > 0) {
      while (carried < 4 && i < c.length) carry[carried++] = c[i++];
      if (carried < 4) continue;
      fb.set(carry);
      const h = toHalf(kind, f[0]);
      out[o++] = h & 0xff;
      out[o++] = h >> 8;
      carried = 0;
    }
    const whole = (c.length - i) >> 2;
    const aligned = (c.byteOffset + i) % 4 === 0 ? c.subarray(i, i + whole * 4) : c.slice(i, i + whole * 4);
    const src = new Float32Array(aligned.buffer, aligned.byteOffset, whole);
    for (let j = 0; j < whole; j++) {
      const h = toHalf(kind, src[j]);
      out[o++] = h & 0xff;
      out[o++] = h >> 8;
    }
    i += whole * 4;
    while (i < c.length) carry[carried++] = c[i++];
    yield out.subarray(0, o);
  }
  if (carried) throw new RangeError("float32 data ends inside an element");
}

/** Widens little-endian 16-bit chunks of `kind` to float32 chunks. Output chunks are fresh arrays. */
export async function* widenChunks(kind: HalfKind, chunks: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let carry = -1;
  for await (const c of chunks) {
    let i = 0;
    const n = ((carry >= 0 ? 1 : 0) + c.length) >> 1;
    const out = new Float32Array(n);
    const ou = new Uint32Array(out.buffer);
    let o = 0;
    const put = (h: number) => {
      if (kind === "f16") out[o++] = F16_TABLE[h];
      else ou[o++] = h << 16;
    };
    if (carry >= 0 && c.length > 0) {
      put(carry | (c[0] << 8));
      i = 1;
      carry = -1;
    }
    for (; i + 1 < c.length; i += 2) put(c[i] | (c[i + 1] << 8));
    if (i < c.length) carry = c[i];
    if (o > 0) yield new Uint8Array(out.buffer, 0, o * 4);
  }
  if (carry >= 0) throw new RangeError("16-bit data ends inside an element");
}

/** True when some finite value of the float32 chunks would overflow binary16 (|x| >= 65520). */
export async function overflowsHalf(chunks: AsyncIterable<Uint8Array>): Promise<boolean> {
  let carry = new Uint8Array(0);
  for await (const c0 of chunks) {
    const c = carry.length ? concat(carry, c0) : c0;
    const whole = c.length >> 2;
    const a = c.byteOffset % 4 === 0 ? c : c.slice();
    const f = new Float32Array(a.buffer, a.byteOffset, whole);
    for (let j = 0; j < whole; j++) {
      const x = f[j];
      if ((x >= 65520 || x <= -65520) && Number.isFinite(x)) return true;
    }
    carry = c.slice(whole * 4);
  }
  return false;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
}
