/**
 * Compressed TF.js from a clustered `.cvp` of the real LeNet (../shared/fixtures): `decode --to tfjs` stores each
 * clustered weight as tfjs uint8 where its centres allow it exactly, else float16 or float32, says so per weight on
 * stderr, and tfjs itself loads the result and predicts exactly what it predicts for the float decode.
 */
import { assert, assertEquals, runCli, SHARED_FIXTURES, testNeeding } from "./helpers.ts";
import { digits, LENET } from "./lenet_helpers.ts";
import { tfjsPredict } from "./tfjs_helpers.ts";

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  assert(r.code === 0, `convpress ${args.join(" ")}: ${r.stderr}`);
  return r.stderr;
}

async function shardBytes(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".bin")) n += (await Deno.stat(`${dir}/${e.name}`)).size;
  return n;
}

testNeeding(
  "clustered LeNet .cvp -> TF.js: per-weight uint8/float16/float32 with reasons; tfjs predicts as the float decode",
  { paths: [`${SHARED_FIXTURES}/caffe/lenet/lenet_iter_10000.caffemodel`] },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "convpress-ctfjs-" });
    try {
      const cvp = `${dir}/m.cvp`;
      await cli([
        "compress",
        `${LENET}/lenet_iter_10000.caffemodel`,
        "--prototxt",
        `${LENET}/mnist_deploy.prototxt`,
        "--bits",
        "4",
        "-o",
        cvp,
      ]);
      const notes = await cli(["decode", cvp, "--to", "tfjs", "-o", `${dir}/kept`]);
      // The float decode, to TF.js through ONNX: plain float32 weights.
      await cli(["decode", cvp, "-o", `${dir}/float.onnx`]);
      const plain = await cli(["convert", `${dir}/float.onnx`, "--to", "tfjs", "-o", `${dir}/float`]);
      assertEquals(plain.trim(), "", "a float model gets no notices");
      const lines = notes.trim().split("\n");
      for (const k of ["conv1/kernel", "conv2/kernel", "ip1/kernel", "ip2/kernel"]) {
        assert(lines.some((l) => l.includes(`'${k}'`) && /stored as uint8|widened to float(16|32): /.test(l)), notes);
      }
      assert(lines.at(-1)!.startsWith("tfjs: clustered weights: "), notes);
      const manifest = JSON.parse(await Deno.readTextFile(`${dir}/kept/model.json`)).weightsManifest[0].weights;
      for (const w of manifest) {
        if (!w.name.endsWith("kernel")) continue;
        const said = lines.find((l) => l.includes(`'${w.name}'`))!;
        assert(
          said.includes(w.quantization?.dtype ?? "float32"),
          `${w.name}: ${JSON.stringify(w.quantization)} vs ${said}`,
        );
      }
      const kept = await shardBytes(`${dir}/kept`), float = await shardBytes(`${dir}/float`);
      console.log(
        `LeNet --bits 4 TF.js weights: ${kept} B compressed, ${float} B float32; ${notes.trim().split("\n").at(-1)}`,
      );
      assert(kept <= float / 1.9, `compressed shards ${kept} B, float ${float} B`);
      const { x } = await digits();
      const batch = x.subarray(0, 200 * 784);
      const want = await tfjsPredict(`${dir}/float/model.json`, batch, [200, 28, 28, 1]);
      const got = await tfjsPredict(`${dir}/kept/model.json`, batch, [200, 28, 28, 1]);
      let diff = 0;
      for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
      assertEquals(diff, 0, "tfjs predictions differ");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
