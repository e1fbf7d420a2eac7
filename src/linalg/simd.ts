/**
 * Two float64 vector kernels in WebAssembly SIMD (f64x2), for the inner loops of data-aware clustering
 * (../compress/gptq.ts) that V8 runs one element at a time: `add` (acc += x) and `axpy` (y -= a x). Each lane does
 * the same IEEE operations in the same order as the JavaScript loop it replaces (a product rounded, then a
 * difference rounded; no fused multiply-add), so the results are bit for bit the same, about 2-3x faster.
 *
 * The module is assembled here from its opcodes (no binary blob, no toolchain). Each {@link SimdArena} has its own
 * memory, so the memory goes with the arena (WebAssembly memories never shrink). Where WebAssembly SIMD is missing,
 * {@link simdArena} returns undefined and {@link vectorArena} the same kernels as plain loops.
 *
 * @module
 */

// Opcodes used below (WebAssembly core 2.0 with fixed-width SIMD).
const BLOCK = 0x02, LOOP = 0x03, BR = 0x0c, BR_IF = 0x0d, END = 0x0b, VOID = 0x40;
const LOCAL_GET = 0x20, LOCAL_SET = 0x21, I32_CONST = 0x41, I32_EQZ = 0x45, I32_ADD = 0x6a, I32_SUB = 0x6b;
const SIMD = 0xfd;
const V128_LOAD = [SIMD, 0x00, 0x00, 0x00]; // memarg: align hint 0, offset 0
const V128_STORE = [SIMD, 0x0b, 0x00, 0x00];
const F64X2_SPLAT = [SIMD, 0x14];
const F64X2_ADD = [SIMD, 0xf0, 0x01];
const F64X2_SUB = [SIMD, 0xf1, 0x01];
const F64X2_MUL = [SIMD, 0xf2, 0x01];
const I32 = 0x7f, F64 = 0x7c;

/** while (n != 0) { body; p += 16; q += 16; n -= 2 } over locals p = 0, q = 1, n = 2. */
function pairLoop(body: number[]): number[] {
  const step = (l: number, by: number, op: number) => [LOCAL_GET, l, I32_CONST, by, op, LOCAL_SET, l];
  return [
    BLOCK,
    VOID,
    LOOP,
    VOID,
    LOCAL_GET,
    2,
    I32_EQZ,
    BR_IF,
    1,
    ...body,
    ...step(0, 16, I32_ADD),
    ...step(1, 16, I32_ADD),
    ...step(2, 2, I32_SUB),
    BR,
    0,
    END,
    END,
    END,
  ];
}

/** add(acc, x, n): acc[0..n) += x[0..n), byte addresses, n even. */
const ADD_BODY = pairLoop([
  LOCAL_GET,
  0,
  LOCAL_GET,
  0,
  ...V128_LOAD,
  LOCAL_GET,
  1,
  ...V128_LOAD,
  ...F64X2_ADD,
  ...V128_STORE,
]);

/** axpy(y, x, n, a): y[0..n) -= a * x[0..n), byte addresses, n even. */
const AXPY_BODY = pairLoop([
  LOCAL_GET,
  0,
  LOCAL_GET,
  0,
  ...V128_LOAD,
  LOCAL_GET,
  1,
  ...V128_LOAD,
  LOCAL_GET,
  3,
  ...F64X2_SPLAT,
  ...F64X2_MUL,
  ...F64X2_SUB,
  ...V128_STORE,
]);

const leb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
};
const section = (id: number, body: number[]) => [id, ...leb(body.length), ...body];
const name = (s: string) => [s.length, ...[...s].map((c) => c.charCodeAt(0))];

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const types = [2, 0x60, 3, I32, I32, I32, 0, 0x60, 4, I32, I32, I32, F64, 0];
  const exports = [3, ...name("memory"), 2, 0, ...name("add"), 0, 0, ...name("axpy"), 0, 1];
  const body = (code: number[]) => {
    const b = [0, ...code]; // no locals beyond the parameters
    return [...leb(b.length), ...b];
  };
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, types),
    ...section(3, [2, 0, 1]),
    ...section(5, [1, 0, 1]), // one memory, at least one page, no maximum
    ...section(7, exports),
    ...section(10, [2, ...body(ADD_BODY), ...body(AXPY_BODY)]),
  ]);
}

let compiled: WebAssembly.Module | null | undefined;

function simdModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    compiled = new WebAssembly.Module(moduleBytes());
  } catch {
    compiled = null; // no SIMD here
  }
  return compiled;
}

/** A memory of float64 arrays and the two kernels over it. */
export interface SimdArena {
  /** True for WebAssembly SIMD; false for the plain arena of {@link vectorArena} (JavaScript loops, any arrays). */
  readonly simd: boolean;
  /** A float64 array of `n` elements in the arena (allocated in order; 16-byte aligned). */
  array(n: number): Float64Array;
  /** True when `a` is an array of this arena. */
  owns(a: Float64Array): boolean;
  /** The allocation point now, for {@link release}. */
  mark(): number;
  /** Gives back every array allocated since `mark` (they must no longer be used). */
  release(mark: number): void;
  /** acc[0..n) += x[0..n) for arrays of this arena, from element offsets `ai` and `xi`. */
  add(acc: Float64Array, ai: number, x: Float64Array, xi: number, n: number): void;
  /** y[0..n) -= a * x[0..n) for arrays of this arena, from element offsets `yi` and `xi`. */
  axpy(y: Float64Array, yi: number, x: Float64Array, xi: number, n: number, a: number): void;
}

/**
 * An arena for arrays of `elements` float64 values in all (plus 16 bytes of alignment per array, up to 64 arrays), or
 * undefined without WebAssembly SIMD.
 */
export function simdArena(elements: number): SimdArena | undefined {
  const mod = simdModule();
  if (!mod) return undefined;
  const inst = new WebAssembly.Instance(mod);
  const e = inst.exports as unknown as {
    memory: WebAssembly.Memory;
    add: (a: number, x: number, n: number) => void;
    axpy: (y: number, x: number, n: number, a: number) => void;
  };
  // Each array is padded to 16 bytes, so every array starts aligned.
  const bytes = 8 * elements + 16 * 64;
  const pages = Math.ceil(bytes / 65536);
  if (pages > 1) e.memory.grow(pages - 1);
  let used = 0;
  return {
    simd: true,
    array(n) {
      const a = new Float64Array(e.memory.buffer, used, n);
      used += Math.ceil((8 * n) / 16) * 16;
      if (used > e.memory.buffer.byteLength) throw new RangeError("SIMD arena overflow");
      return a;
    },
    owns: (a) => a.buffer === e.memory.buffer,
    mark: () => used,
    release(mark) {
      used = mark;
    },
    add(acc, ai, x, xi, n) {
      const even = n & ~1;
      if (even) e.add(acc.byteOffset + 8 * ai, x.byteOffset + 8 * xi, even);
      if (n & 1) acc[ai + even] += x[xi + even];
    },
    axpy(y, yi, x, xi, n, a) {
      // Any element offsets: WebAssembly's loads and stores need no alignment.
      const even = n & ~1;
      if (even) e.axpy(y.byteOffset + 8 * yi, x.byteOffset + 8 * xi, even, a);
      if (n & 1) y[yi + even] -= a * x[xi + even];
    },
  };
}

/** The kernels as plain loops over ordinary arrays (the same operations, in the same order). */
const PLAIN: SimdArena = {
  simd: false,
  array: (n) => new Float64Array(n),
  owns: () => true,
  mark: () => 0,
  release() {},
  add(acc, ai, x, xi, n) {
    for (let j = 0; j < n; j++) acc[ai + j] += x[xi + j];
  },
  axpy(y, yi, x, xi, n, a) {
    for (let j = 0; j < n; j++) y[yi + j] -= a * x[xi + j];
  },
};

/** {@link simdArena}, or where WebAssembly SIMD is missing the plain loops over ordinary arrays. */
export function vectorArena(elements: number): SimdArena {
  return simdArena(elements) ?? PLAIN;
}

/**
 * `a` in an arena with room for `extra` more elements: `arena` itself when it holds `a` already, else a new arena
 * with a copy of `a` (no copy for the plain arena, which takes any array).
 */
export function holding(
  arena: SimdArena | undefined,
  a: Float64Array,
  extra: number,
): { arena: SimdArena; a: Float64Array } {
  if (arena?.owns(a)) return { arena, a };
  const fresh = vectorArena(a.length + extra);
  if (fresh.owns(a)) return { arena: fresh, a };
  const copy = fresh.array(a.length);
  copy.set(a);
  return { arena: fresh, a: copy };
}
