import { convert, openModel } from "../mod.ts";
import { ShapeTracker } from "../src/model/shapes.ts";
const [src, out] = Deno.args;
const m = await openModel(src);
const t = new ShapeTracker(m.header);
for await (const l of m.layers) { const { ins, outs } = t.add(l); console.log(l.name, l.op, JSON.stringify(l.attrs), JSON.stringify(ins), "->", JSON.stringify(outs)); }
if (out) await convert(src, out, { to: "tfjs" });
