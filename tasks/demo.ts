/**
 * `deno task demo [MODEL]`: the main job on a built-in default. Without MODEL it generates a VGG16 (138 M
 * parameters, 553 MB) with seeded weights through convpress's own ONNX writer, streams it through `convert`, and
 * prints the per-layer `inspect` table with the sizes. Memory stays at one layer throughout.
 *
 * @module
 */
import { convert, openModel } from "../src/convert.ts";
import { fmtBytes, formatInspection, inspectModel } from "../src/inspect.ts";
import { vgg16Stream } from "../src/model/vgg16.ts";
import { writeOnnx } from "../formats/onnx/writer.ts";

const work = await Deno.makeTempDir({ prefix: "convpress-demo-" });
try {
  let input = Deno.args[0];
  if (!input) {
    input = `${work}/vgg16.onnx`;
    const t0 = performance.now();
    await writeOnnx(vgg16Stream(1), input);
    console.log(
      `generated ${input}: ${fmtBytes((await Deno.stat(input)).size)} in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s`,
    );
  }
  const out = `${work}/converted.onnx`;
  const t1 = performance.now();
  await convert(input, out, { to: "onnx" });
  const secs = (performance.now() - t1) / 1000;
  const x = await inspectModel(await openModel(out));
  console.log(formatInspection(x));
  const inBytes = (await Deno.stat(input)).size, outBytes = (await Deno.stat(out)).size;
  console.log(
    `\nconvert ${input} -> ${out}: ${fmtBytes(inBytes)} -> ${fmtBytes(outBytes)} in ${secs.toFixed(1)} s` +
      `; float32 parameter bytes ${x.totals.bytes.toLocaleString("en-US")}` +
      `; ratio ${(x.totals.params * 4 / outBytes).toFixed(2)}x (format conversion only: compression stages come next)`,
  );
} finally {
  await Deno.remove(work, { recursive: true });
}
