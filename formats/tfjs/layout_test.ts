import {
  flattenMaps,
  floatChunks,
  hwioToOihw,
  oihwToDepthwise,
  oihwToHwio,
  permuteColumns,
  transposeBlocked,
} from "./layout.ts";
import { depthwiseToOihw } from "./layout.ts";
import { Tensor } from "../../src/model/tensor.ts";

function eq(a: ArrayLike<number>, b: ArrayLike<number>, what: string): void {
  if (a.length !== b.length || Array.from(a).some((v, i) => v !== b[i])) {
    throw new Error(`${what}: ${Array.from(a)} != ${Array.from(b)}`);
  }
}

/** A float32 tensor delivered in odd-sized (misaligned) chunks. */
function chunked(name: string, shape: number[], data: Float32Array, step: number): Tensor {
  const bytes = new Uint8Array(data.buffer);
  return Tensor.fromChunks(name, "float32", shape, bytes.length, async function* () {
    for (let i = 0; i < bytes.length; i += step) yield await Promise.resolve(bytes.slice(i, i + step));
  });
}

Deno.test("transposeBlocked: any block size and chunking gives out[rowMap(c)][colMap(r)] = src[r][c]", async () => {
  const rows = 12, cols = 7;
  const src = Float32Array.from({ length: rows * cols }, (_, i) => i);
  const { tfToCanon } = flattenMaps(3, 2, 2); // 12 = c3 x h2 x w2
  const want = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[c * rows + tfToCanon(r)] = src[r * cols + c];
  for (const step of [1, 3, 5, 28, 1000]) {
    for (const blockBytes of [1, rows * 4 * 2, 1 << 20]) {
      const t = transposeBlocked(chunked("w", [rows, cols], src, step), rows, cols, { colMap: tfToCanon, blockBytes });
      eq(await t.float32(), want, `step ${step} block ${blockBytes}`);
    }
  }
});

Deno.test("permuteColumns and flattenMaps: (c,h,w) <-> (h,w,c) are inverse permutations", async () => {
  const { tfToCanon, canonToTf } = flattenMaps(4, 3, 2);
  for (let i = 0; i < 24; i++) if (canonToTf(tfToCanon(i)) !== i) throw new Error(`not inverse at ${i}`);
  const src = Float32Array.from({ length: 2 * 24 }, (_, i) => i);
  const p = permuteColumns(chunked("w", [2, 24], src, 7), 2, 24, canonToTf);
  const back = permuteColumns(p, 2, 24, tfToCanon);
  eq(await back.float32(), src, "round trip");
});

Deno.test("conv kernel layouts: HWIO <-> OIHW and depthwise <-> grouped round-trip; element check", async () => {
  const k = Float32Array.from({ length: 2 * 3 * 4 * 5 }, (_, i) => i); // [kh2, kw3, I4, O5]
  const t = Tensor.fromFloat32("k", [2, 3, 4, 5], k);
  const o = hwioToOihw(t);
  const a = await o.float32();
  // OIHW[o][i][y][x] = HWIO[y][x][i][o]
  if (a[((4 * 4 + 3) * 2 + 1) * 3 + 2] !== k[((1 * 3 + 2) * 4 + 3) * 5 + 4]) throw new Error("element");
  eq(await oihwToHwio(o).float32(), k, "HWIO round trip");
  const d = Tensor.fromFloat32("d", [2, 3, 4, 2], Float32Array.from({ length: 48 }, (_, i) => i)); // C4, m2
  const g = depthwiseToOihw(d);
  eq(g.shape, [8, 1, 2, 3], "grouped shape");
  eq(await oihwToDepthwise(g, 2).float32(), await d.float32(), "depthwise round trip");
});

Deno.test("floatChunks: misaligned chunks and float16 tensors decode exactly", async () => {
  const src = Float32Array.from({ length: 100 }, (_, i) => i / 3);
  const parts: number[] = [];
  for await (const a of floatChunks(chunked("x", [100], src, 3))) parts.push(...a);
  eq(parts, src, "float32");
  const h = Tensor.fromBytes("h", "float16", [2], new Uint8Array([0x00, 0x3c, 0x00, 0xc0])); // 1, -2
  const got: number[] = [];
  for await (const a of floatChunks(h)) got.push(...a);
  eq(got, [1, -2], "float16");
});
