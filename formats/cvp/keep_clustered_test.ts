import { assert, assertEquals, rng } from "../../tests/helpers.ts";
import { clusteredTensor, floats, smallModel } from "../../tests/clustered_helpers.ts";
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { memoryInput } from "../../src/bytes/inputs.ts";
import { readCvp } from "./reader.ts";
import { readAll, sameBytes, writeToBytes } from "./testing.ts";

Deno.test(".cvp -> .cvp keeps clustered tensors clustered: same values, about the same size", async () => {
  const r = rng(21);
  const make = (name: string, shape: number[]) =>
    name.endsWith("bias") ? floats(name, shape, r) : clusteredTensor(name, shape, 16, r, {
      zeros: name === "c2.weight" ? 0.7 : undefined,
      hint: name === "c2.weight" ? { encoding: "cluster-sparse" } : { encoding: "cluster", coding: "huffman" },
    });
  const first = await writeToBytes(smallModel(make, r));
  const reread = await readCvp({
    path: "a.cvp",
    reader: new ByteReader(memoryInput(first), { name: "a.cvp" }),
    isDirectory: false,
  });
  const second = await writeToBytes(reread);
  assert(second.length <= first.length + 64, `${first.length} B -> ${second.length} B`);
  const a = await readAll(first), b = await readAll(second);
  assertEquals(a.layers.length, b.layers.length);
  for (let i = 0; i < a.layers.length; i++) {
    for (const [role, v] of Object.entries(a.layers[i].values)) {
      assert(sameBytes(v, b.layers[i].values[role]), `${a.layers[i].layer.name}.${role} changed`);
    }
    for (const t of Object.values(b.layers[i].layer.params)) {
      if (t.name.endsWith("weight")) assert(t.encoded, `${t.name} is no longer clustered`);
    }
  }
});
