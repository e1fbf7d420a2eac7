/**
 * Compressed ONNX on real trained models: LeNet (4-bit clustering) and SqueezeNet (8-bit, the cluster8 recipe) from
 * ../shared/fixtures, compressed to `.cvp`, then decoded with `--keep-clustered`. ONNX Runtime runs the file as it is
 * and gives the float decode's outputs; the `onnx` checker accepts it; the file is at most 1.25x its index payload
 * plus codebooks.
 */
import {
  assert,
  assertEquals,
  ortRun,
  python,
  rng,
  ROOT,
  runCli,
  SHARED,
  SHARED_FIXTURES,
  testNeeding,
} from "./helpers.ts";
import { digits, LENET } from "./lenet_helpers.ts";

const SQUEEZENET = `${SHARED}/fixtures/caffe/squeezenet_dc`;

/** Bytes of the file's index tensors and codebooks (and affine scales), and the check's verdict, by the onnx package. */
async function payload(onnx: string): Promise<{ index: number; codebooks: number; ideal: number; ops: string[] }> {
  const script = `
import onnx, sys, json, math
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m)
inits = {t.name: t for t in m.graph.initializer}
index = codebooks = 0
ideal = 0.0
for name, t in inits.items():
    if name.endswith("__cvp_q"):
        index += len(t.raw_data)
        base = name[:-2]
        shape = numpy_helper.to_array(inits[base + "_shape"]).tolist() if base + "_shape" in inits else list(t.dims)
        k = inits[base + "_codebook"].dims[0] if base + "_codebook" in inits else 256
        ideal += math.prod(shape) * max(1, math.ceil(math.log2(k))) / 8
    if name.endswith(("__cvp_codebook", "__cvp_scale", "__cvp_zp")): codebooks += len(t.raw_data)
print(json.dumps({"index": index, "codebooks": codebooks, "ideal": ideal, "ops": sorted({n.op_type for n in m.graph.node})}))
`;
  return JSON.parse(await python(["-c", script, onnx]));
}

async function cli(args: string[]): Promise<void> {
  const r = await runCli(args);
  assert(r.code === 0, `convpress ${args.join(" ")}: ${r.stderr}`);
}

/** Compresses with `args`, decodes float and kept; returns the paths. */
async function build(dir: string, model: string[], args: string[]) {
  const cvp = `${dir}/m.cvp`, float = `${dir}/float.onnx`, kept = `${dir}/kept.onnx`;
  await cli(["compress", ...model, ...args, "-o", cvp]);
  await cli(["decode", cvp, "-o", float]);
  await cli(["decode", cvp, "--keep-clustered", "-o", kept]);
  return { cvp, float, kept };
}

async function check(
  name: string,
  paths: { cvp: string; float: string; kept: string },
  x: Float32Array,
  shape: number[],
) {
  const want = await ortRun(paths.float, x, shape);
  const got = await ortRun(paths.kept, x, shape);
  let diff = 0;
  for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
  const p = await payload(paths.kept);
  const size = (await Deno.stat(paths.kept)).size;
  const ratio = size / (p.index + p.codebooks);
  console.log(
    `${name}: .cvp ${(await Deno.stat(paths.cvp)).size} B, compressed ONNX ${size} B, float ONNX ${
      (await Deno.stat(paths.float)).size
    } B; index ${p.index} B + codebooks ${p.codebooks} B -> ${ratio.toFixed(3)}x (${
      (size / (p.ideal + p.codebooks)).toFixed(3)
    }x of ceil(log2 k)-bit packing); max |diff| ${diff} over ${want.length} outputs`,
  );
  assert(diff <= 1e-6, `max |diff| ${diff}`);
  assert(p.ops.includes("Gather") && p.ops.includes("Cast"), p.ops.join(","));
  assert(ratio <= 1.25, `compressed ONNX is ${ratio}x its index payload plus codebooks`);
  assert(size * 3 < (await Deno.stat(paths.float)).size, "compressed ONNX is not much smaller than float ONNX");
}

testNeeding(
  "compressed ONNX of the real LeNet (--bits 4): ONNX Runtime equals the float decode, checker ok, <= 1.25x",
  { paths: [`${SHARED_FIXTURES}/caffe/lenet/lenet_iter_10000.caffemodel`], python: ["onnx"] },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "convpress-conn-" });
    try {
      const paths = await build(dir, [
        `${LENET}/lenet_iter_10000.caffemodel`,
        "--prototxt",
        `${LENET}/mnist_deploy.prototxt`,
      ], ["--bits", "4"]);
      const { x } = await digits();
      await check("LeNet --bits 4", paths, x.subarray(0, 500 * 784), [500, 1, 28, 28]);
      // 4-bit indices go two to a byte: the index payload is half a byte per weight.
      const p = await payload(paths.kept);
      assertEquals(p.index, Math.ceil(500 / 2) + Math.ceil(25000 / 2) + Math.ceil(400000 / 2) + Math.ceil(5000 / 2));
      // convert --to onnx from the clustered .cvp is the same file.
      await cli(["convert", paths.cvp, "--to", "onnx", "--keep-clustered", "-o", `${dir}/conv.onnx`]);
      assertEquals(await Deno.readFile(`${dir}/conv.onnx`), await Deno.readFile(paths.kept));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testNeeding(
  "compressed ONNX of the real SqueezeNet (cluster8): ONNX Runtime equals the float decode, checker ok, <= 1.25x",
  { paths: [`${SHARED_FIXTURES}/caffe/squeezenet_dc/decompressed_SqueezeNet.caffemodel`], python: ["onnx"] },
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "convpress-conn-" });
    try {
      const paths = await build(dir, [
        `${SQUEEZENET}/decompressed_SqueezeNet.caffemodel`,
        "--prototxt",
        `${SQUEEZENET}/SqueezeNet_deploy.prototxt`,
      ], ["--recipe", `${ROOT}/recipes/cluster8.json`]);
      const r = rng(3);
      const x = Float32Array.from({ length: 3 * 227 * 227 }, () => (r() - 0.5) * 255);
      await check("SqueezeNet cluster8", paths, x, [1, 3, 227, 227]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);
