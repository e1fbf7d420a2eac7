import { openModel } from "../mod.ts";
import { collectLayers } from "../src/model/types.ts";
for (const p of Deno.args) {
  try {
    const m = await openModel(p);
    const ls = await collectLayers(m.layers);
    const pass = ls.filter((l) => l.op === "Passthrough").map((l) => String(l.attrs.onnxOp ?? l.attrs.type));
    const counts: Record<string, number> = {};
    for (const x of pass) counts[x] = (counts[x] ?? 0) + 1;
    console.log(p.split("/").pop(), ls.length, "layers; passthrough:", JSON.stringify(counts));
    m.close?.();
  } catch (e) {
    console.log(p.split("/").pop(), "ERROR", (e as Error).message.slice(0, 200));
  }
}
