/**
 * Caffe conversions checked by real clients: OpenCV DNN runs the original caffemodels and what convpress writes;
 * ONNX Runtime runs the Caffe -> ONNX conversions. Outputs must agree within 1e-5 with the same top-1.
 */
import { assert, assertEquals, ortRun, python, readF32, relativeError, testNeeding } from "./helpers.ts";
import { LOCAL, readBytes, REAL, top1 } from "./caffe_helpers.ts";
import { ByteReader } from "../src/bytes/byte_reader.ts";
import { openFileInput } from "../src/bytes/inputs.ts";
import { MemorySink } from "../src/bytes/byte_sink.ts";
import { CaffeError } from "../src/errors.ts";
import { layerStream, type ModelStream } from "../src/model/types.ts";
import { caffeFormat } from "../formats/caffe/mod.ts";
import { writeCaffeTar } from "../formats/caffe/writer.ts";
import { onnxFormat } from "../formats/onnx/mod.ts";
import type { ReadOptions } from "../formats/registry.ts";

const dir = await Deno.makeTempDir({ prefix: "convpress-caffe-test-" });

async function open(path: string, options: ReadOptions = {}): Promise<ModelStream> {
  const reader = new ByteReader(await openFileInput(path), { name: path });
  return await caffeFormat.read({ path, reader, isDirectory: false }, options);
}

async function opencv(proto: string, model: string, input: string, shape: number[]): Promise<Float32Array> {
  const out = `${dir}/cv_${Math.random().toString(36).slice(2)}.f32`;
  await python([`${LOCAL}/opencv_forward.py`, proto, model, input, shape.join(","), out]);
  return await readF32(out);
}

const cases = [
  {
    name: "LeNet (current form)",
    model: `${REAL}/lenet/lenet_iter_10000.caffemodel`,
    proto: `${REAL}/lenet/mnist_deploy.prototxt`,
    input: `${LOCAL}/lenet_samples.f32`,
    shape: [10, 1, 28, 28],
  },
  {
    name: "LeNet (V1)",
    model: `${REAL}/lenet_v1/lenet_iter_10000`,
    proto: `${REAL}/lenet_v1/lenet.prototxt`,
    input: `${LOCAL}/lenet_samples.f32`,
    shape: [10, 1, 28, 28],
  },
  {
    name: "CIFAR-10 quick",
    model: `${REAL}/cifar10_quick/cifar10_quick_iter_5000.caffemodel`,
    proto: `${REAL}/cifar10_quick/cifar10_quick.prototxt`,
    input: `${LOCAL}/cifar10_dog.f32`,
    shape: [1, 3, 32, 32],
  },
  {
    name: "tiny (BatchNorm + Scale, ceil pooling)",
    model: `${LOCAL}/tiny_v2.caffemodel`,
    proto: `${LOCAL}/tiny.prototxt`,
    input: `${LOCAL}/tiny_input.f32`,
    shape: [1, 2, 5, 5],
  },
];

for (const c of cases) {
  testNeeding(`clients: ${c.name} -> ONNX in ONNX Runtime and -> Caffe in OpenCV match OpenCV on the original`, {
    paths: [c.model, c.proto, c.input],
    python: ["cv2"],
  }, async () => {
    const ref = await opencv(c.proto, c.model, c.input, c.shape);
    const x = await readF32(c.input);
    const n = c.shape[0];
    {
      const onnxPath = `${dir}/${c.name.replace(/\W+/g, "_")}.onnx`;
      await onnxFormat.write(await open(c.model, { prototxt: c.proto }), onnxPath, {});
      const y = await ortRun(onnxPath, x, c.shape);
      assert(relativeError(y, ref) <= 1e-5, `${c.name} ONNX: relative error ${relativeError(y, ref)}`);
      assertEquals(top1(y, n), top1(ref, n));
    }
    const cm = `${dir}/${c.name.replace(/\W+/g, "_")}.caffemodel`;
    await caffeFormat.write(await open(c.model, { prototxt: c.proto }), cm, { prototxtOut: `${cm}.prototxt` });
    const z = await opencv(`${cm}.prototxt`, cm, c.input, c.shape);
    assert(relativeError(z, ref) <= 1e-5, `${c.name} Caffe: relative error ${relativeError(z, ref)}`);
    assertEquals(top1(z, n), top1(ref, n));
  });
}

testNeeding(
  "clients: LeNet labels are predicted (sanity of the reference itself)",
  { paths: [REAL], python: ["cv2"] },
  async () => {
    const ref = await opencv(cases[0].proto, cases[0].model, cases[0].input, cases[0].shape);
    const labels = (await Deno.readTextFile(`${LOCAL}/lenet_labels.txt`)).trim().split(" ").map(Number);
    assertEquals(top1(ref, 10), labels);
  },
);

testNeeding("clients: V1 caffemodel without a prototxt (train net, logits) matches OpenCV's ip2 blob", {
  paths: [REAL],
  python: ["cv2"],
}, async () => {
  const model = `${REAL}/lenet_v1/lenet_iter_10000`;
  const out = `${dir}/v1_noproto.caffemodel`;
  await caffeFormat.write(await open(model), out, {});
  const z = await opencv(`${dir}/v1_noproto.prototxt`, out, `${LOCAL}/lenet_samples.f32`, [10, 1, 28, 28]);
  const refPath = `${dir}/ip2.f32`;
  await python([
    "-c",
    `import numpy as np, cv2
net = cv2.dnn.readNetFromCaffe("${REAL}/lenet_v1/lenet.prototxt", "${model}")
net.setInput(np.fromfile("${LOCAL}/lenet_samples.f32", dtype="<f4").reshape(10, 1, 28, 28))
net.forward("ip2").astype("<f4").tofile("${refPath}")`,
  ]);
  const ref = await readF32(refPath);
  assert(relativeError(z, ref) <= 1e-5, `relative error ${relativeError(z, ref)}`);
});

testNeeding(
  "clients: writing to stdout gives a tar that tar itself unpacks and OpenCV runs",
  { python: ["cv2"] },
  async () => {
    const sink = new MemorySink();
    await writeCaffeTar(await open(`${LOCAL}/tiny_v1.caffemodel`), {}, sink);
    const tarPath = `${dir}/out.tar`;
    await Deno.writeFile(tarPath, sink.bytes());
    const listing = await python([
      "-c",
      `import tarfile; t = tarfile.open("${tarPath}"); print(" ".join(m.name for m in t.getmembers())); t.extractall("${dir}/untar")`,
    ]);
    assertEquals(listing.trim(), "model.caffemodel deploy.prototxt");
    const z = await opencv(`${dir}/untar/deploy.prototxt`, `${dir}/untar/model.caffemodel`, `${LOCAL}/tiny_input.f32`, [
      1,
      2,
      5,
      5,
    ]);
    const ref = await opencv(`${dir}/untar/deploy.prototxt`, `${LOCAL}/tiny_v1.caffemodel`, `${LOCAL}/tiny_input.f32`, [
      1,
      2,
      5,
      5,
    ]);
    assert(relativeError(z, ref) <= 1e-6, `relative error ${relativeError(z, ref)}`);
  },
);

Deno.test("clients: an op Caffe cannot express is an unsupported error naming op, layer and format", async () => {
  const m = await readBytes(await Deno.readFile(`${LOCAL}/tiny_v2.caffemodel`));
  const header = m.header;
  async function* layers() {
    yield {
      name: "t1",
      op: "Selu" as const,
      attrs: { alpha: 1.6732632, gamma: 1.0507009 },
      inputs: ["data"],
      outputs: ["t"],
      params: {},
    };
  }
  const out = `${dir}/bad.caffemodel`;
  let err: unknown;
  try {
    await caffeFormat.write({ header, layers: layerStream(layers()) }, out, {});
  } catch (e) {
    err = e;
  }
  assert(err instanceof CaffeError, String(err));
  assertEquals(err.code, "unsupported");
  assertEquals(err.message, "Cannot write Selu layer 't1' to Caffe: Caffe has no such layer");
  assertEquals(err.layer, "t1");
  // No partial output is left behind.
  const left = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.includes("bad."));
  assertEquals(left, []);
});

testNeeding(
  "clients: TF 'SAME' stride-2 convolution and max pooling (more padding at the end) -> Caffe in OpenCV match tfjs",
  {
    python: ["cv2"],
  },
  async () => {
    const { convert } = await import("../mod.ts");
    const { ROOT } = await import("./helpers.ts");
    const { randomInput, tfjsPredict } = await import("./tfjs_helpers.ts");
    const json = `${ROOT}/fixtures/tfjs/seq/model.json`;
    const [n, c, h, w] = [1, 3, 12, 10];
    const x = randomInput(n * c * h * w, 11, -1, 1);
    const nhwc = new Float32Array(x.length);
    for (let k = 0; k < c; k++) {
      for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) nhwc[(y * w + z) * c + k] = x[(k * h + y) * w + z];
    }
    const ref = await tfjsPredict(json, nhwc, [n, h, w, c]);
    await convert(json, `${dir}/seq.caffemodel`, {
      to: "caffe",
      prototxtOut: `${dir}/seq.prototxt`,
      inputShape: [n, c, h, w],
    });
    const proto = await Deno.readTextFile(`${dir}/seq.prototxt`);
    assert(
      proto.includes('type: "Concat"') && proto.includes("slice_point"),
      "asymmetric pads written as rows and crops",
    );
    await Deno.writeFile(`${dir}/seq_in.f32`, new Uint8Array(x.buffer));
    const got = await opencv(`${dir}/seq.prototxt`, `${dir}/seq.caffemodel`, `${dir}/seq_in.f32`, [n, c, h, w]);
    assertEquals(got.length, ref.length);
    const e = relativeError(got, ref);
    assert(e < 1e-5, `relative error ${e.toExponential(2)}`);
  },
);

testNeeding(
  "clients: Pad (reflect, edge, a constant value, a crop; spatial and channel axes) -> Caffe in OpenCV matches eval",
  {
    python: ["cv2"],
  },
  async () => {
    const { writeModel } = await import("../mod.ts");
    const { LayerExecutor } = await import("../src/eval/executor.ts");
    const shape = [1, 3, 5, 6];
    const x = Float32Array.from({ length: 90 }, (_, i) => Math.sin(i * 1.3) + i / 50);
    const pad = (name: string, input: string, pads: number[], mode: string, value = 0) => ({
      name,
      op: "Pad" as const,
      attrs: { pads, mode, value },
      inputs: [input],
      outputs: [name],
      params: {},
    });
    const layers = [
      pad("reflect", "x", [0, 0, 2, 1, 0, 0, 1, 2], "reflect"),
      pad("edge", "reflect", [0, 1, 0, 1, 0, 2, 1, 0], "edge"),
      pad("const", "edge", [0, 1, -1, 0, 0, 0, 2, -2], "constant", 0.5),
    ];
    const header = {
      name: "pads",
      sourceFormat: "onnx" as const,
      inputs: [{ name: "x", dtype: "float32", shape }],
      outputs: [{ name: "const", dtype: "float32", shape: [] }],
      metadata: {},
    };
    const ex = await LayerExecutor.create({ keep: ["const"] });
    let want: Float32Array;
    try {
      ex.setInput("x", x, shape);
      for (const l of layers) await ex.run(l);
      want = (await ex.read("const")).data;
    } finally {
      ex.dispose();
    }
    await writeModel({ header, layers: ReadableStream.from(layers) }, `${dir}/pads.caffemodel`, "caffe", {
      prototxtOut: `${dir}/pads.prototxt`,
    } as never);
    await Deno.writeFile(`${dir}/pads_in.f32`, new Uint8Array(x.buffer));
    // The blob by name: the last layer of the prototxt is a Silence of what the final crop drops.
    const { ROOT } = await import("./helpers.ts");
    await python([
      `${ROOT}/fixtures/zoo/run_opencv.py`,
      `${dir}/pads.prototxt`,
      `${dir}/pads.caffemodel`,
      `${dir}/pads_in.f32`,
      shape.join(","),
      `${dir}/pads_out`,
      "const",
    ]);
    const got = await readF32(`${dir}/pads_out.0.f32`);
    assertEquals(got.length, want.length);
    const e = relativeError(got, want);
    assert(e < 1e-6, `relative error ${e.toExponential(2)}`);
  },
);

/** A one-layer canonical model of a linear Resize of `x` by `scales` (given as output sizes when `bySizes`). */
function resizeModel(coordinate: string, shape: number[], scales: number[], bySizes = false) {
  const sizes = [shape[2] * scales[0], shape[3] * scales[1]];
  const layers = [{
    name: "up",
    op: "Resize" as const,
    attrs: {
      mode: "linear",
      coordinate,
      nearest: "floor",
      scales: bySizes ? null : scales,
      sizes: bySizes ? sizes : null,
    },
    inputs: ["x"],
    outputs: ["up"],
    params: {},
  }];
  const header = {
    name: "resize",
    sourceFormat: "onnx" as const,
    inputs: [{ name: "x", dtype: "float32", shape }],
    outputs: [{
      name: "up",
      dtype: "float32",
      shape: [shape[0], shape[1], shape[2] * scales[0], shape[3] * scales[1]],
    }],
    metadata: {},
  };
  return { header, layers };
}

const resizeCases = [
  { coordinate: "half_pixel", shape: [1, 3, 5, 6], scales: [2, 2] },
  { coordinate: "half_pixel", shape: [1, 1, 4, 7], scales: [3, 3] },
  { coordinate: "half_pixel", shape: [2, 3, 5, 4], scales: [2, 3] },
  { coordinate: "pytorch_half_pixel", shape: [1, 2, 3, 5], scales: [3, 1] },
  { coordinate: "asymmetric", shape: [1, 3, 5, 6], scales: [2, 2] },
  { coordinate: "asymmetric", shape: [1, 1, 6, 5], scales: [3, 3] },
  { coordinate: "asymmetric", shape: [1, 4, 4, 5], scales: [3, 2] },
  { coordinate: "tf_half_pixel_for_nn", shape: [1, 2, 4, 5], scales: [2, 3], bySizes: true },
  { coordinate: "half_pixel", shape: [1, 3, 1, 4], scales: [3, 2], bySizes: true },
];

for (const rc of resizeCases) {
  testNeeding(
    `clients: bilinear Resize ${rc.coordinate}${rc.bySizes ? " (sizes)" : ""} x${
      rc.scales.join("x")
    } of [${rc.shape}] -> Caffe in OpenCV and ONNX in ONNX Runtime match eval`,
    { python: ["cv2"] },
    async () => {
      const { writeModel } = await import("../mod.ts");
      const { LayerExecutor } = await import("../src/eval/executor.ts");
      const { ROOT } = await import("./helpers.ts");
      const { shape, scales } = rc;
      const size = shape.reduce((a, b) => a * b);
      const x = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 1.7) * 3 + i / 40);
      const { header, layers } = resizeModel(rc.coordinate, shape, scales, rc.bySizes);
      const ex = await LayerExecutor.create({ keep: ["up"] });
      let want: Float32Array;
      try {
        ex.setInput("x", x, shape);
        for (const l of layers) await ex.run(l);
        want = (await ex.read("up")).data;
      } finally {
        ex.dispose();
      }
      assertEquals(want.length, size * scales[0] * scales[1]);
      const base = `${dir}/resize_${rc.coordinate}_${scales.join("x")}_${shape.join("x")}`;
      await writeModel({ header, layers: ReadableStream.from(layers) }, `${base}.caffemodel`, "caffe", {
        prototxtOut: `${base}.prototxt`,
      } as never);
      const proto = await Deno.readTextFile(`${base}.prototxt`);
      assert(proto.includes('type: "Deconvolution"') && !proto.includes("interp"), "a Deconvolution, no Interp");
      await Deno.writeFile(`${base}_in.f32`, new Uint8Array(x.buffer));
      await python([
        `${ROOT}/fixtures/zoo/run_opencv.py`,
        `${base}.prototxt`,
        `${base}.caffemodel`,
        `${base}_in.f32`,
        shape.join(","),
        `${base}_out`,
        "up",
      ]);
      const got = await readF32(`${base}_out.0.f32`);
      assertEquals(got.length, want.length);
      const e = relativeError(got, want);
      assert(e < 1e-5, `OpenCV: relative error ${e.toExponential(2)}`);
      if (Deno.env.get("RESIZE_REPORT")) console.log(`OpenCV relative error ${e.toExponential(2)}`);
      await writeModel({ header, layers: ReadableStream.from(layers) }, `${base}.onnx`, "onnx", {});
      const ort = await ortRun(`${base}.onnx`, x, shape);
      const eo = relativeError(ort, want);
      assert(eo < 1e-5, `ONNX Runtime: relative error ${eo.toExponential(2)}`);
      if (Deno.env.get("RESIZE_REPORT")) console.log(`ONNX Runtime relative error ${eo.toExponential(2)}`);
      // Read back: the Caffe reader gives the pad, the Deconvolution and its crop as layers, to ONNX as they are.
      await onnxFormat.write(
        await open(`${base}.caffemodel`, { prototxt: `${base}.prototxt` }),
        `${base}_back.onnx`,
        {},
      );
      const back = await ortRun(`${base}_back.onnx`, x, shape);
      const eb = relativeError(back, want);
      assert(eb < 1e-5, `Caffe -> ONNX in ONNX Runtime: relative error ${eb.toExponential(2)}`);
      if (Deno.env.get("RESIZE_REPORT")) console.log(`Caffe -> ONNX relative error ${eb.toExponential(2)}`);
    },
  );
}

Deno.test("clients: bilinear Resize with aligned corners or a non-integer factor is refused for Caffe", async () => {
  const { writeModel } = await import("../mod.ts");
  for (
    const [coordinate, scales, why] of [
      [
        "align_corners",
        [2, 2],
        "linear resize with align_corners coordinates (its source step (n - 1) / (n * f - 1) is not 1 / f: no fixed-stride Deconvolution)",
      ],
      ["half_pixel", [1.5, 2], "linear resize by 1.5x2 (only integer factors are a Deconvolution)"],
    ] as const
  ) {
    const m = resizeModel(coordinate, [1, 2, 4, 4], [...scales]);
    const out = `${dir}/bad_resize.caffemodel`;
    let err: unknown;
    try {
      await writeModel({ ...m, layers: ReadableStream.from(m.layers) }, out, "caffe", {} as never);
    } catch (e) {
      err = e;
    }
    assert(err instanceof CaffeError, String(err));
    assertEquals(err.code, "unsupported");
    assertEquals(err.message, `Cannot write Resize layer 'up' to Caffe: ${why}`);
    assertEquals(err.layer, "up");
  }
});

for (const half of [true, false]) {
  testNeeding(
    `clients: a TF.js ResizeBilinear (half_pixel_centers ${half}) x2 x3 -> Caffe in OpenCV matches tfjs`,
    { python: ["cv2"] },
    async () => {
      const { convert } = await import("../mod.ts");
      const { ROOT } = await import("./helpers.ts");
      const { randomInput, tfjsPredict } = await import("./tfjs_helpers.ts");
      const [n, h, w, c] = [1, 5, 4, 3];
      const [oh, ow] = [h * 2, w * 3];
      const tdir = `${dir}/tf_resize_${half}`;
      await Deno.mkdir(tdir, { recursive: true });
      const dims = (d: number[]) => ({ dim: d.map((v) => ({ size: String(v) })) });
      const model = {
        format: "graph-model",
        generatedBy: "2.15.0",
        convertedBy: "TensorFlow.js Converter v4.22.0",
        modelTopology: {
          node: [
            {
              name: "x",
              op: "Placeholder",
              attr: { dtype: { type: "DT_FLOAT" }, shape: { shape: dims([n, h, w, c]) } },
            },
            {
              name: "size",
              op: "Const",
              attr: { dtype: { type: "DT_INT32" }, value: { tensor: { dtype: "DT_INT32" } } },
            },
            {
              name: "up",
              op: "ResizeBilinear",
              input: ["x", "size"],
              attr: { T: { type: "DT_FLOAT" }, align_corners: { b: false }, half_pixel_centers: { b: half } },
            },
          ],
          versions: { producer: 1395 },
        },
        weightsManifest: [{ paths: ["w.bin"], weights: [{ name: "size", shape: [2], dtype: "int32" }] }],
      };
      await Deno.writeTextFile(`${tdir}/model.json`, JSON.stringify(model));
      await Deno.writeFile(`${tdir}/w.bin`, new Uint8Array(Int32Array.of(oh, ow).buffer));
      const x = randomInput(n * h * w * c, 5, -2, 2);
      const nhwc = await tfjsPredict(`${tdir}/model.json`, x, [n, h, w, c]);
      assertEquals(nhwc.length, n * oh * ow * c);
      const ref = new Float32Array(nhwc.length);
      for (let k = 0; k < c; k++) {
        for (let y = 0; y < oh; y++) {
          for (let z = 0; z < ow; z++) ref[(k * oh + y) * ow + z] = nhwc[(y * ow + z) * c + k];
        }
      }
      const nchw = new Float32Array(x.length);
      for (let k = 0; k < c; k++) {
        for (let y = 0; y < h; y++) for (let z = 0; z < w; z++) nchw[(k * h + y) * w + z] = x[(y * w + z) * c + k];
      }
      await convert(`${tdir}/model.json`, `${tdir}/up.caffemodel`, { to: "caffe", prototxtOut: `${tdir}/up.prototxt` });
      await Deno.writeFile(`${tdir}/in.f32`, new Uint8Array(nchw.buffer));
      await python([
        `${ROOT}/fixtures/zoo/run_opencv.py`,
        `${tdir}/up.prototxt`,
        `${tdir}/up.caffemodel`,
        `${tdir}/in.f32`,
        [n, c, h, w].join(","),
        `${tdir}/out`,
      ]);
      const got = await readF32(`${tdir}/out.0.f32`);
      assertEquals(got.length, ref.length);
      const e = relativeError(got, ref);
      assert(e < 1e-5, `relative error ${e.toExponential(2)}`);
      if (Deno.env.get("RESIZE_REPORT")) console.log(`tfjs vs OpenCV relative error ${e.toExponential(2)}`);
    },
  );
}
