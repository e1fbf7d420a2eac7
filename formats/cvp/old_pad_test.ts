/**
 * Files written before canonical op set 2 (no `canonicalOps` in the header): their rank-4 Pad stored
 * [top, left, bottom, right], which the reader converts to today's per-axis pads. `testdata/old_pad/old_pad.cvp` was
 * written by the code of commit b5670d2 (testdata/old_pad/README.md has the commands).
 */
import { openModel } from "../../mod.ts";
import { runModel } from "../../src/eval/run_model.ts";
import { collectLayers, type Layer, type ModelHeader } from "../../src/model/types.ts";
import { assert } from "../../tests/helpers.ts";
import { joinCvp, splitCvp } from "../../tests/cvp_edit.ts";
import { readAll, writeToBytes } from "./testing.ts";
import { KIND } from "./frame.ts";

const OLD = new URL("./testdata/old_pad/old_pad.cvp", import.meta.url).pathname;

/** The model of make_pad_onnx.py computed directly: pad [1,2,3,4] by top 1, left 2, bottom 2, right 1 with 0.5, relu. */
function expected(x: Float32Array): Float32Array {
  const out = new Float32Array(2 * 6 * 7).fill(0.5);
  for (let c = 0; c < 2; c++) {
    for (let h = 0; h < 3; h++) {
      for (let w = 0; w < 4; w++) out[(c * 6 + h + 1) * 7 + w + 2] = Math.max(0, x[(c * 3 + h) * 4 + w]);
    }
  }
  return out;
}

Deno.test("a .cvp from before canonical op set 2: the rank-4 Pad's [t, l, b, r] becomes per-axis pads", async () => {
  const model = await openModel(OLD);
  const layers = await collectLayers(model.layers);
  model.close?.();
  const pad = layers.find((l) => l.op === "Pad")!;
  assert(JSON.stringify(pad.attrs.pads) === "[0,0,1,2,0,0,2,1]", `pads ${JSON.stringify(pad.attrs.pads)}`);
  const x = Float32Array.from({ length: 24 }, (_, i) => (i % 5) - 2.2 + i / 10);
  const y = await runModel(await openModel(OLD), x, [1, 2, 3, 4]);
  const want = expected(x);
  assert(y.length === want.length, `${y.length} values`);
  y.forEach((v, i) => assert(Math.abs(v - want[i]) < 1e-6, `value ${i}: ${v}, expected ${want[i]}`));
});

const pad2: Layer = {
  name: "pad2",
  op: "Pad",
  attrs: { pads: [1, 0, 0, 2], mode: "constant", value: 0 },
  inputs: ["v"],
  outputs: ["p"],
  params: {},
};
/** The header: input `v` of `shape`, or (undefined) an input of another name, so `v` has no known shape. */
const header = (shape: number[] | undefined): ModelHeader => ({
  name: "pad2",
  sourceFormat: "onnx",
  inputs: [{ name: shape ? "v" : "u", dtype: "float32", shape: shape ?? [1] }],
  outputs: [{ name: "p", dtype: "float32", shape: [] }],
  metadata: {},
});

async function written(shape: number[] | undefined, dropMarker: boolean): Promise<Uint8Array> {
  const bytes = await writeToBytes({ header: header(shape), layers: ReadableStream.from([structuredClone(pad2)]) });
  if (!dropMarker) return bytes;
  const recs = splitCvp(bytes);
  const h = recs.find((r) => r.kind === KIND.header)!;
  assert(h.meta.canonicalOps === 2, "the writer records canonicalOps");
  delete h.meta.canonicalOps;
  return joinCvp(recs);
}

Deno.test("four Pad pads are per-axis in files of canonical op set 2, and on a rank-2 input in older files", async () => {
  for (const drop of [false, true]) {
    const got = (await readAll(await written([3, 4], drop))).layers[0].layer;
    assert(JSON.stringify(got.attrs.pads) === "[1,0,0,2]", `pads ${JSON.stringify(got.attrs.pads)} (drop ${drop})`);
  }
  // A rank-4 input with the marker: four pads stay as written (the registry then refuses them as too few).
  const kept = (await readAll(await written([1, 2, 3, 4], false))).layers[0].layer;
  assert(JSON.stringify(kept.attrs.pads) === "[1,0,0,2]", "kept");
  const old = (await readAll(await written([1, 2, 3, 4], true))).layers[0].layer;
  assert(JSON.stringify(old.attrs.pads) === "[0,0,1,0,0,0,0,2]", `old ${JSON.stringify(old.attrs.pads)}`);
});

Deno.test("an older file with four Pad pads on an input of unknown rank is refused, not guessed", async () => {
  const bytes = await written(undefined, true);
  let err: Error | undefined;
  try {
    await readAll(bytes);
  } catch (e) {
    err = e as Error;
  }
  assert(err && /Pad layer 'pad2'.*unknown rank/.test(err.message), `error: ${err?.message}`);
});
