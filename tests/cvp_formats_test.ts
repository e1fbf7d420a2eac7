/**
 * Every format -> `.cvp` (float32, lossless) -> every format gives identical tensors: each Conv and FC parameter,
 * read back in the canonical layout, has the same shape and the same bytes as in the source.
 */
import { assertEquals, ROOT, SHARED, SHARED_FIXTURES, smallOnnx, testNeeding } from "./helpers.ts";
import { convert, openModel } from "../src/app/convert.ts";
import type { FormatName } from "../src/model/types.ts";

interface Source {
  name: string;
  path: string;
  prototxt?: string;
}

async function canonicalTensors(path: string, prototxt?: string): Promise<string[]> {
  const m = await openModel(path, { prototxt });
  const out: string[] = [];
  for await (const l of m.layers) {
    if (l.op !== "Conv" && l.op !== "FC") continue;
    for (const role of ["weight", "bias"]) {
      const t = l.params[role];
      if (!t) continue;
      const f = await t.float32();
      let h = 0x811c9dc5; // FNV-1a over the float bits: equal bytes, equal hash
      const u = new Uint32Array(f.buffer, f.byteOffset, f.length);
      for (let i = 0; i < u.length; i++) h = Math.imul(h ^ u[i], 16777619) >>> 0;
      out.push(`${l.op}.${role} [${t.shape.join(",")}] ${h.toString(16)}`);
    }
  }
  m.close?.();
  return out;
}

const sources = async (): Promise<Source[]> => [
  { name: "onnx", path: `${await smallOnnx()}/small_plain.onnx` },
  {
    name: "caffe",
    path: `${SHARED}/fixtures/caffe/lenet/lenet_iter_10000.caffemodel`,
    prototxt: `${SHARED}/fixtures/caffe/lenet/mnist_deploy.prototxt`,
  },
  { name: "tfjs", path: `${ROOT}/fixtures/tfjs/seq/model.json` },
];

const TARGETS: FormatName[] = ["onnx", "caffe", "tfjs", "cvp"];
const EXT: Record<FormatName, string> = { onnx: ".onnx", caffe: ".caffemodel", tfjs: "_tfjs", cvp: "_2.cvp" };

for (const name of ["onnx", "caffe", "tfjs"]) {
  testNeeding(
    `${name} -> .cvp -> every format: identical tensors`,
    name === "caffe" ? { paths: [`${SHARED_FIXTURES}/caffe/lenet`] } : name === "onnx" ? { python: ["onnx"] } : {},
    async () => {
      const src = (await sources()).find((s) => s.name === name)!;
      const expected = await canonicalTensors(src.path, src.prototxt);
      const dir = await Deno.makeTempDir();
      const cvp = `${dir}/model.cvp`;
      await convert(src.path, cvp, { prototxt: src.prototxt, to: "cvp" });
      assertEquals(await canonicalTensors(cvp), expected, "cvp");
      for (const to of TARGETS) {
        const out = `${dir}/out${EXT[to]}`;
        await convert(cvp, out, { to, prototxtOut: `${dir}/out.prototxt` });
        const back = to === "caffe" ? await canonicalTensors(out, `${dir}/out.prototxt`) : await canonicalTensors(out);
        assertEquals(back, expected, `${name} -> cvp -> ${to}`);
      }
      await Deno.remove(dir, { recursive: true });
    },
  );
}
