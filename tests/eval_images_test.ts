/**
 * Image folders as an ImageNet user has them: the real images decoded by sharp and resized exactly as OpenCV DNN's
 * blobFromImage does (bit for bit), the shorter-side resize + centre crop against OpenCV, symlinked images and
 * folders, and synset-named flat folders with a class list (mapped by synset, or refused with a clear error).
 */
import { ConvpressError } from "../src/errors.ts";
import { decodeNpy } from "../src/data/npy.ts";
import { openDataset } from "../src/data/open_dataset.ts";
import { modelInputs } from "../src/data/model_inputs.ts";
import { makePreprocessor, type PreprocessOptions } from "../src/data/preprocess.ts";
import type { Sample } from "../src/data/types.ts";
import { assert, PYTHON, removeOnExit, runCli, SHARED } from "./helpers.ts";

const IMG = `${SHARED}/fixtures/imagenet`;
const SQ = `${SHARED}/fixtures/caffe/squeezenet_dc`;
const have = async (p: string) => await Deno.stat(p).then(() => true, () => false);
const cv2 = (await new Deno.Command(PYTHON, { args: ["-c", "import cv2"], stderr: "null" }).output().catch(() => ({
  success: false,
}))).success;
const noImages = !(await have(`${IMG}/images`)) || !cv2;
// Small images are upscaled (rows clamped at the edges), large ones downscaled; a few of each.
const FILES = [
  "n01440764_tench.JPEG",
  "n01630670_common_newt.JPEG",
  "n03584829_iron.JPEG",
  "n04254120_soap_dispenser.JPEG",
  "n03617480_kimono.JPEG",
  "n01532829_house_finch.JPEG",
];

async function samples(path: string, labels?: string): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of (await openDataset(path, labels)).samples()) out.push(s);
  return out;
}

async function tempDir(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "convpress-images-" });
  removeOnExit(d);
  return d;
}

/** A folder of symlinks to FILES (what `ln -s` into a folder gives). */
async function linkedFolder(): Promise<string> {
  const d = await tempDir();
  for (const f of FILES) await Deno.symlink(`${IMG}/images/${f}`, `${d}/${f}`);
  return d;
}

Deno.test({
  name: "ImageNet JPEGs: sharp + the 8-bit resize equal OpenCV's blobFromImage bit for bit; shorter-side resize too",
  ignore: noImages,
  async fn() {
    const dir = await linkedFolder();
    const out = await tempDir();
    const script = `import cv2, numpy as np, sys
d, out, files = sys.argv[1], sys.argv[2], sys.argv[3:]
ims = [cv2.imread(d + "/" + f) for f in files]
np.save(out + "/blob.npy", cv2.dnn.blobFromImages(ims, 1.0, (227, 227), (104, 117, 123)).astype("<f4"))
def short(im, s=256, c=227):
    h, w = im.shape[:2]
    nh, nw = (s, s * w // h) if h <= w else (s * h // w, s)
    r = cv2.resize(im, (nw, nh))
    t, l = (nh - c) // 2, (nw - c) // 2
    return r[t:t + c, l:l + c]
np.save(out + "/short.npy", np.stack([short(im).transpose(2, 0, 1) for im in ims]).astype("<f4"))`;
    const r = await new Deno.Command(PYTHON, { args: ["-c", script, dir, out, ...FILES.toSorted()] }).output();
    assert(r.success, new TextDecoder().decode(r.stderr));
    const got = await samples(dir);
    assert(got.length === FILES.length, `${got.length} images listed through symlinks`);
    const check = (name: string, want: Float32Array, prep: (s: Sample) => Float32Array) => {
      const per = 3 * 227 * 227;
      got.forEach((s, i) => {
        const x = prep(s);
        for (let j = 0; j < per; j++) {
          if (x[j] !== want[i * per + j]) {
            throw new Error(`${name}: ${s.id} value ${j} is ${x[j]}, OpenCV ${want[i * per + j]}`);
          }
        }
      });
    };
    // On the main thread (makePreprocessor on planar samples), and as eval and calibration get them: prepared on
    // the image folder's Worker from the interleaved pixels.
    const viaWorker = async (name: string, want: Float32Array, opts: PreprocessOptions) => {
      const ids = got.map((s) => s.id);
      const prepared = new Map<string, Float32Array>();
      for await (const s of modelInputs(await openDataset(dir), opts, [3, 227, 227])) prepared.set(s.id, s.data);
      assert(prepared.size === ids.length, `${prepared.size} inputs from the worker`);
      check(name, want, (s) => prepared.get(s.id)!);
    };
    const direct: PreprocessOptions = { preset: "caffe", mean: [104, 117, 123] };
    const blob = decodeNpy(await Deno.readFile(`${out}/blob.npy`));
    check("direct resize", blob.data, makePreprocessor(direct, [3, 227, 227], true));
    await viaWorker("direct resize, worker", blob.data, direct);
    const shorter: PreprocessOptions = { mean: [0], order: "bgr", resizeShorter: 256, crop: [227, 227] };
    const short = decodeNpy(await Deno.readFile(`${out}/short.npy`));
    check("resize-shorter 256, crop 227", short.data, makePreprocessor(shorter, [3, 227, 227], true));
    await viaWorker("resize-shorter 256, crop 227, worker", short.data, shorter);
  },
});

Deno.test({
  name: "a broken JPEG among good ones: eval's worker names the file, exit 1, no stack",
  ignore: !(await have(`${IMG}/images`)) || !(await have(`${SQ}/decompressed_SqueezeNet.caffemodel`)),
  async fn() {
    const dir = await linkedFolder();
    const bytes = await Deno.readFile(`${IMG}/images/${FILES[0]}`);
    await Deno.writeFile(`${dir}/n09999999_broken.JPEG`, bytes.subarray(0, 600)); // a JPEG cut short
    const model = [`${SQ}/decompressed_SqueezeNet.caffemodel`, "--prototxt", `${SQ}/SqueezeNet_deploy.prototxt`];
    const r = await runCli(["eval", ...model, "--data", dir, "--preprocess", "caffe", "--batch", "2"]);
    const err = r.stderr;
    assert(r.code === 1, `exit ${r.code}: ${err}`);
    assert(/n09999999_broken\.JPEG/.test(err) && !/\n\s+at /.test(err), err);
  },
});

Deno.test({
  name: "flat synset-named folder: a synset class list labels it; class names without synsets are refused",
  ignore: !(await have(`${IMG}/images`)),
  async fn() {
    const dir = await linkedFolder();
    const lists = await tempDir();
    // A synset_words.txt of three classes, in synset order, as Caffe ships it.
    await Deno.writeTextFile(
      `${lists}/synset_words.txt`,
      ["n01440764 tench", "n01532829 house finch", "n01630670 common newt", "n03584829 iron", "n03617480 kimono"]
        .concat(["n04254120 soap dispenser"]).join("\n") + "\n",
    );
    const s = await samples(dir, `${lists}/synset_words.txt`);
    const byId = new Map(s.map((x) => [x.id, x.label]));
    assert(byId.get("n01440764_tench.JPEG") === 0 && byId.get("n04254120_soap_dispenser.JPEG") === 5, "by synset");
    await Deno.writeTextFile(`${lists}/names.txt`, "tench, Tinca tinca\ngoldfish\n");
    try {
      await samples(dir, `${lists}/names.txt`);
      throw new Error("a class-name list without synsets was accepted for a flat folder");
    } catch (e) {
      assert(e instanceof ConvpressError && e.code === "usage", `${e}`);
      assert(/do not start with synsets/.test(e.message) && /synset_words\.txt/.test(e.message), e.message);
    }
    await Deno.writeTextFile(`${lists}/short.txt`, "n01440764 tench\n");
    try {
      await samples(dir, `${lists}/short.txt`);
      throw new Error("an image whose synset is not listed was accepted");
    } catch (e) {
      assert(e instanceof ConvpressError && /lacks/.test(e.message), `${e}`);
    }
  },
});

Deno.test({
  name: "symlinked sub-folders are followed, each folder once",
  ignore: !(await have(`${IMG}/images`)),
  async fn() {
    const src = await linkedFolder();
    const d = await tempDir();
    await Deno.symlink(src, `${d}/n01440764`);
    await Deno.mkdir(`${d}/n01532829`);
    await Deno.symlink(`${IMG}/images/${FILES[0]}`, `${d}/n01532829/a.JPEG`);
    await Deno.symlink(d, `${d}/n01532829/loop`); // a cycle: listed once
    const s = await samples(d);
    assert(s.length === FILES.length + 1, `${s.length} samples`);
    assert(s.filter((x) => x.label === 0).length === FILES.length, "folder labels through a link");
  },
});

Deno.test({
  name: "eval of SqueezeNet on 24 real images: top-1 equals OpenCV DNN's (ONNX Runtime engine, from JPEGs)",
  ignore: noImages || !(await have(`${SQ}/decompressed_SqueezeNet.caffemodel`)),
  async fn() {
    const dir = await tempDir();
    const files = [...Deno.readDirSync(`${IMG}/images`)].map((e) => e.name).sort().slice(0, 24);
    for (const f of files) await Deno.symlink(`${IMG}/images/${f}`, `${dir}/${f}`);
    const cv = await new Deno.Command(PYTHON, {
      args: [
        new URL("../bench/squeezenet_opencv.py", import.meta.url).pathname,
        `${SQ}/SqueezeNet_deploy.prototxt`,
        `${SQ}/decompressed_SqueezeNet.caffemodel`,
        dir,
        `${IMG}/labels.txt`,
      ],
    }).output();
    assert(cv.success, new TextDecoder().decode(cv.stderr));
    const want = new TextDecoder().decode(cv.stdout).match(/top-1 (\d+)\//)![1];
    const r = await runCli([
      "eval",
      `${SQ}/decompressed_SqueezeNet.caffemodel`,
      "--prototxt",
      `${SQ}/SqueezeNet_deploy.prototxt`,
      "--data",
      dir,
      "--labels",
      `${IMG}/labels.txt`,
      "--preprocess",
      "caffe",
      "--mean",
      "104,117,123",
      "--batch",
      "5",
      "--json",
    ]);
    assert(r.code === 0, r.stderr);
    const got = JSON.parse(new TextDecoder().decode(r.stdout));
    assert(got.count === 24, `${got.count} samples`);
    assert(String(Math.round(got.top1 * 24)) === want, `eval top-1 ${got.top1 * 24}/24, OpenCV ${want}/24`);
  },
});

Deno.test("eval --help names the caffe preset's mean and the 104/117/123 alternative", async () => {
  const r = await runCli(["eval", "--help"]);
  const help = new TextDecoder().decode(r.stdout);
  assert(r.code === 0 && /103\.939,116\.779,123\.68/.test(help) && /104,117,123/.test(help), help);
  assert(/--resize-shorter/.test(help) && /--crop/.test(help), "shorter-side resize and crop documented");
});
