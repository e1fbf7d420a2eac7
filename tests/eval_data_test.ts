/**
 * Data loaders and preprocessing: checked against numpy/OpenCV-made files (fixtures/caffe/make_inputs.py decodes the
 * same PNGs with OpenCV), plus hand-built IDX/CIFAR/.npy bytes and their truncation errors.
 */
import { ConvpressError } from "../src/errors.ts";
import { decodeBlobProto } from "../src/data/blobproto.ts";
import { cifarDataset } from "../src/data/cifar.ts";
import { idxDataset, parseIdx } from "../src/data/idx.ts";
import { decodeImage, imageFolderDataset } from "../src/data/images.ts";
import { parseLabels } from "../src/data/labels.ts";
import { decodeNpy } from "../src/data/npy.ts";
import { openDataset } from "../src/data/open_dataset.ts";
import { makePreprocessor, resizeBilinear } from "../src/data/preprocess.ts";
import type { Sample } from "../src/data/types.ts";
import { PYTHON, ROOT, SHARED, SHARED_FIXTURES, testNeeding } from "./helpers.ts";

function assert(c: unknown, msg = "assertion failed"): asserts c {
  if (!c) throw new Error(msg);
}
function close(a: Float32Array, b: Float32Array, tol: number, what: string) {
  assert(a.length === b.length, `${what}: ${a.length} values against ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    if (Math.abs(a[i] - b[i]) > tol) throw new Error(`${what}: value ${i} is ${a[i]}, want ${b[i]}`);
  }
}
async function throwsCode(f: () => unknown, code: string, what: RegExp) {
  try {
    await f();
  } catch (e) {
    assert(e instanceof ConvpressError, `not a ConvpressError: ${e}`);
    assert(e.code === code, `code ${e.code}, want ${code}: ${e.message}`);
    assert(what.test(e.message), `message '${e.message}' does not match ${what}`);
    return;
  }
  throw new Error("no error");
}
async function all(ds: { samples(): AsyncIterable<Sample> }): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of ds.samples()) out.push(s);
  return out;
}
const f32 = async (p: string) => new Float32Array((await Deno.readFile(p)).buffer);

testNeeding("PNG decoding matches OpenCV: LeNet digits /256 and the CIFAR dog minus the mean image", {
  paths: [`${SHARED_FIXTURES}/caffe`],
  python: ["cv2"],
}, async () => {
  const fx = `${SHARED}/fixtures/caffe`;
  const ds = await imageFolderDataset(`${fx}/lenet/samples`);
  const samples = await all(ds);
  assert(samples.length === 10);
  const want = await f32(`${ROOT}/fixtures/caffe/lenet_samples.f32`);
  const pre = makePreprocessor({ scale: 1 / 256 }, [1, 28, 28], true);
  const got = new Float32Array(10 * 784);
  samples.forEach((s, i) => got.set(pre(s), i * 784));
  close(got, want, 1e-7, "lenet samples");
  const mean = decodeBlobProto(await Deno.readFile(`${fx}/cifar10_quick/mean.binaryproto`));
  assert(mean.shape.join(",") === "1,3,32,32", `mean shape ${mean.shape}`);
  const dog = await decodeImage(await Deno.readFile(`${fx}/cifar10_quick/dog4.png`), "dog4.png");
  const p2 = makePreprocessor({ mean: { data: mean.data, shape: [3, 32, 32] } }, [3, 32, 32], true);
  close(p2({ ...dog, id: "dog" }), await f32(`${ROOT}/fixtures/caffe/cifar10_dog.f32`), 1e-4, "cifar dog");
});

testNeeding("bilinear resize matches OpenCV INTER_LINEAR", { python: ["cv2"] }, async () => {
  const dir = await Deno.makeTempDir();
  const script = `import numpy as np, cv2, sys
x = (np.arange(3*13*17) % 251).astype(np.float32).reshape(3, 13, 17)
np.save(sys.argv[1] + "/x.npy", x)
np.save(sys.argv[1] + "/y.npy", np.stack([cv2.resize(c, (24, 9), interpolation=cv2.INTER_LINEAR) for c in x]))`;
  const r = await new Deno.Command(PYTHON, { args: ["-c", script, dir] }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const x = decodeNpy(await Deno.readFile(`${dir}/x.npy`));
  const y = decodeNpy(await Deno.readFile(`${dir}/y.npy`));
  close(resizeBilinear(x.data, 3, 13, 17, 9, 24), y.data, 1e-3, "resize");
  await Deno.remove(dir, { recursive: true });
});

Deno.test(".npy from numpy: dtypes, versions, truncation", async () => {
  const dir = await Deno.makeTempDir();
  const script = `import numpy as np, sys
d = sys.argv[1]
np.save(d + "/f4.npy", np.arange(24, dtype="<f4").reshape(2, 3, 4) / 3)
np.save(d + "/u1.npy", np.arange(6, dtype=np.uint8).reshape(2, 3))
np.save(d + "/f8be.npy", np.arange(4, dtype=">f8").reshape(2, 2) - 1.5)
np.lib.format.write_array(open(d + "/v2.npy", "wb"), np.ones((2, 2), "<f4"), version=(2, 0))`;
  const r = await new Deno.Command(PYTHON, { args: ["-c", script, dir] }).output();
  assert(r.success, new TextDecoder().decode(r.stderr));
  const a = decodeNpy(await Deno.readFile(`${dir}/f4.npy`));
  assert(a.shape.join(",") === "2,3,4");
  close(a.data, Float32Array.from({ length: 24 }, (_, i) => Math.fround(i / 3)), 0, "f4");
  close(decodeNpy(await Deno.readFile(`${dir}/u1.npy`)).data, Float32Array.from([0, 1, 2, 3, 4, 5]), 0, "u1");
  close(decodeNpy(await Deno.readFile(`${dir}/f8be.npy`)).data, Float32Array.from([-1.5, -0.5, 0.5, 1.5]), 0, "f8");
  close(decodeNpy(await Deno.readFile(`${dir}/v2.npy`)).data, new Float32Array(4).fill(1), 0, "v2");
  const ds = await openDataset(`${dir}/f4.npy`);
  const s = await all(ds);
  assert(s.length === 2 && s[1].shape.join(",") === "3,4" && s[1].data[0] === 4, "npy samples");
  const bytes = await Deno.readFile(`${dir}/f4.npy`);
  for (let cut = 0; cut < bytes.length; cut++) {
    await throwsCode(
      () => decodeNpy(bytes.subarray(0, cut)),
      cut < 10 ? "bad_format" : cut < 128 ? "bad_format" : "unexpected_eof",
      /npy/,
    );
  }
  await Deno.remove(dir, { recursive: true });
});

function idxBytes(dims: number[], data: number[]): Uint8Array {
  const b = new Uint8Array(4 + 4 * dims.length + data.length);
  b.set([0, 0, 8, dims.length]);
  const dv = new DataView(b.buffer);
  dims.forEach((d, i) => dv.setUint32(4 + 4 * i, d, false));
  b.set(data, 4 + 4 * dims.length);
  return b;
}

Deno.test("MNIST IDX: images with labels, gzip, sibling labels file, truncation", async () => {
  const img = idxBytes([2, 2, 3], [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 255]);
  const lab = idxBytes([2], [7, 3]);
  const ds = idxDataset(parseIdx(img), parseIdx(lab), "x");
  const s = await all(ds);
  assert(s.length === 2 && s[1].label === 3 && s[1].data[5] === 255 && s[0].shape.join(",") === "1,2,3");
  const dir = await Deno.makeTempDir();
  const gz = new Uint8Array(
    await new Response(new Blob([img as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
  );
  await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte.gz`, gz);
  await Deno.writeFile(`${dir}/t10k-labels-idx1-ubyte.gz`, lab);
  const s2 = await all(await openDataset(`${dir}/t10k-images-idx3-ubyte.gz`));
  assert(s2.length === 2 && s2[0].label === 7 && s2[1].data[0] === 10, "gzipped IDX with sibling labels");
  for (let cut = 0; cut < img.length; cut++) {
    await throwsCode(() => parseIdx(img.subarray(0, cut)), cut < 4 ? "bad_format" : "unexpected_eof", /IDX/);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("CIFAR batches: CIFAR-10 and CIFAR-100 records, bad sizes", async () => {
  const rec = new Uint8Array(3073 * 2);
  rec[0] = 4;
  rec[1] = 200; // R of pixel (0,0)
  rec[3073] = 9;
  rec[3073 + 1 + 1024] = 77; // G of pixel (0,0)
  const s = await all(cifarDataset(rec, "b"));
  assert(s.length === 2 && s[0].label === 4 && s[0].data[0] === 200 && s[1].label === 9 && s[1].data[1024] === 77);
  const r100 = new Uint8Array(3074);
  r100[0] = 3;
  r100[1] = 42;
  assert((await all(cifarDataset(r100, "c")))[0].label === 42, "CIFAR-100 fine label");
  await throwsCode(() => cifarDataset(rec.subarray(0, 3000), "b"), "bad_format", /3073/);
});

testNeeding("labels files: sequences, NAME LABEL, class names; folders map to classes", {
  paths: [`${SHARED_FIXTURES}/caffe`],
}, async () => {
  const a = parseLabels("3\n1\n4\n");
  assert(a.kind === "sequence" && a.labels.join() === "3,1,4");
  const b = parseLabels("img_1.png 1\nimg_2.png 7\n");
  assert(b.kind === "byName" && b.labels.get("img_2.png") === 7);
  const c = parseLabels("n01 tench, Tinca tinca\nn02 goldfish\n");
  assert(c.kind === "classes" && c.keys.join() === "n01,n02");
  assert(parseLabels("0 0 1 2\n").kind === "sequence");
  const dir = await Deno.makeTempDir();
  const png = await Deno.readFile(`${SHARED}/fixtures/caffe/lenet/samples/img_7_0.png`);
  for (const k of ["n02", "n01"]) {
    await Deno.mkdir(`${dir}/${k}`);
    await Deno.writeFile(`${dir}/${k}/a.png`, png);
  }
  await Deno.writeTextFile(`${dir}/../eval_classes.txt`, "n01 tench\nn02 goldfish\n");
  const ds = await openDataset(dir, `${dir}/../eval_classes.txt`);
  const s = await all(ds);
  assert(s.map((x) => x.label).join() === "0,1", "labels from folder names through the class list");
  await Deno.remove(`${dir}/../eval_classes.txt`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("preprocessing presets", () => {
  const px = Float32Array.from([10, 20, 30, 40, 50, 60]); // R plane, G plane, B plane of a 1x2 image
  const s = { data: px, shape: [3, 1, 2], id: "x" };
  const caffe = makePreprocessor({ preset: "caffe" }, [3, 1, 2], true)(s);
  close(
    caffe,
    Float32Array.from([50 - 103.939, 60 - 103.939, 30 - 116.779, 40 - 116.779, 10 - 123.68, 20 - 123.68]),
    1e-4,
    "caffe",
  );
  const torch = makePreprocessor({ preset: "torch" }, [3, 1, 2], true)(s);
  close(torch.subarray(0, 1), Float32Array.from([(10 / 255 - 0.485) / 0.229]), 1e-5, "torch");
  const tf = makePreprocessor({ preset: "tf" }, [3, 1, 2], true)(s);
  close(tf.subarray(0, 1), Float32Array.from([10 / 127.5 - 1]), 1e-6, "tf");
  const tf01 = makePreprocessor({ preset: "tf01" }, [3, 1, 2], true)(s);
  close(tf01.subarray(5), Float32Array.from([60 / 255]), 1e-6, "tf01");
  const scaled = makePreprocessor({ mean: [1, 2, 3], scale: 0.5 }, [3, 1, 2], true)(s);
  close(scaled, Float32Array.from([4.5, 9.5, 14, 19, 23.5, 28.5]), 1e-6, "mean+scale");
  assert(px[0] === 10, "the sample is not modified");
});
