import { assert, assertEquals } from "../../tests/helpers.ts";
import { applyStages, progressStage } from "./convert.ts";
import type { Layer, ModelStream } from "../model/types.ts";

function fakeModel(names: string[], onClose: () => void): ModelStream {
  const layers: Layer[] = names.map((name) =>
    ({
      name,
      op: "Relu",
      attrs: {},
      inputs: ["x"],
      outputs: [name],
      params: {},
    }) as unknown as Layer
  );
  return {
    header: { name: "m", sourceFormat: "onnx", inputs: [], outputs: [], metadata: {} },
    layers: ReadableStream.from(layers),
    close: onClose,
  } as ModelStream;
}

Deno.test("applyStages keeps the source's close; progressStage counts layers", async () => {
  let closed = 0;
  const seen: [number, number, string | undefined][] = [];
  const m = fakeModel(["a", "b", "c"], () => closed++);
  const out = applyStages(m, [progressStage(m.header, (d, t, l) => seen.push([d, t, l]))]);
  const names: string[] = [];
  for await (const l of out.layers) names.push(l.name);
  assertEquals(names, ["a", "b", "c"]);
  assertEquals(seen, [[1, 0, "a"], [2, 0, "b"], [3, 0, "c"]]);
  assert(out.close !== undefined, "close dropped");
  out.close!();
  assertEquals(closed, 1);
});
