import { assert, assertEquals, assertRejects } from "../../tests/helpers.ts";
import { type ClusteredForm, Tensor } from "./tensor.ts";

function form(centers: number[], indices: number[], slices = 2): ClusteredForm {
  return {
    kind: "clustered",
    centers: Float32Array.from(centers),
    repr: "fp16",
    async *indices() {
      const step = Math.ceil(indices.length / slices);
      for (let i = 0; i < indices.length; i += step) yield Uint32Array.from(indices.slice(i, i + step));
    },
  };
}

Deno.test("a clustered tensor reads as its centres, keeps its form through with(), and hands its codebook on", async () => {
  const t = Tensor.fromClustered("w", [2, 3], form([-1, 0.5, 2], [0, 1, 2, 2, 1, 0]));
  assertEquals(t.dtype, "float32");
  assertEquals(t.byteLength, 24);
  assertEquals(Array.from(await t.float32()), [-1, 0.5, 2, 2, 0.5, -1]);
  // Each read decodes again.
  assertEquals(Array.from(await t.float32()), [-1, 0.5, 2, 2, 0.5, -1]);
  const r = t.with({ name: "w2", shape: [6] });
  assert(r.encoded === t.encoded && r.codebook === t.encoded!.centers);
  const moved = Tensor.fromFloat32("wt", [3, 2], new Float32Array([-1, 2, 0.5, 0.5, 2, -1])).sameValuesAs(t);
  assertEquals(Array.from(moved.codebook!), [-1, 0.5, 2]);
  assertEquals(moved.encoded, undefined, "a moved tensor has a codebook, not the form");
  assertEquals(Tensor.fromFloat32("x", [1], new Float32Array(1)).codebook, undefined);
});

Deno.test("a clustered form whose indices run past the centres, or short, fails on read", async () => {
  await assertRejects(() => Tensor.fromClustered("w", [2], form([1], [0, 3])).float32());
  await assertRejects(() => Tensor.fromClustered("w", [3], form([1], [0, 0], 1)).float32());
});
