/**
 * Real TF.js models from npm, checked by real clients: graph-models of @vladmandic/human@3.3.6 (float32 and
 * float16-quantized weights) and nsfwjs@4.4.0's MobileNetV2 layers-model (uint8-quantized, extracted from its
 * `.min.js` wrappers). Each converts to ONNX and runs in ONNX Runtime with the same outputs as in tfjs, and
 * round-trips TF.js -> TF.js predicting the same in tfjs.
 */
import { assert } from "./tfjs_assert.ts";
import { ortRun, removeOnExit } from "./helpers.ts";
import {
  convertModel,
  extractNsfwModel,
  nhwcToNchw,
  npmPackage,
  randomInput,
  relErr,
  tfjsPredict,
} from "./tfjs_helpers.ts";

interface Case {
  name: string;
  json: () => Promise<string>;
  shape: number[]; // NHWC
}

const human = () => npmPackage("@vladmandic/human@3.3.6");

const cases: Case[] = [
  // float16-quantized weights; _FusedConv2D, MaxPool, Reshape (flatten), _FusedMatMul, Sigmoid
  {
    name: "human antispoof (float16)",
    json: async () => `${await human()}/models/antispoof.json`,
    shape: [1, 128, 128, 3],
  },
  // float32; depthwise convs, _FusedConv2D with BiasAdd/Relu, AddV2 residuals, Mean, Softmax
  { name: "human emotion (float32)", json: async () => `${await human()}/models/emotion.json`, shape: [1, 64, 64, 1] },
  // float32; batch norms folded to Mul/Add by constants, _FusedMatMul after a flatten, Softmax
  {
    name: "human liveness (float32)",
    json: async () => `${await human()}/models/liveness.json`,
    shape: [1, 32, 32, 3],
  },
  {
    name: "nsfwjs MobileNetV2 layers-model (uint8)",
    json: async () => {
      const dir = await Deno.makeTempDir({ prefix: "convpress-nsfw-" });
      removeOnExit(dir);
      return await extractNsfwModel(await npmPackage("nsfwjs@4.4.0"), "mobilenet_v2", dir);
    },
    shape: [1, 224, 224, 3],
  },
];

for (const c of cases) {
  Deno.test(
    `${c.name}: TF.js -> ONNX runs in ONNX Runtime like tfjs`,
    async () => {
      const json = await c.json();
      const n = c.shape.reduce((a, b) => a * b, 1);
      const x = randomInput(n, 7);
      const ref = await tfjsPredict(json, x, c.shape);
      const dir = await Deno.makeTempDir({ prefix: "convpress-tfjs-real-" });
      try {
        await convertModel("tfjs", json, "onnx", `${dir}/m.onnx`);
        const [b, h, w, ch] = c.shape;
        const got = await ortRun(`${dir}/m.onnx`, nhwcToNchw(x, c.shape), [b, ch, h, w]);
        const err = relErr(got, ref);
        console.log(`${c.name}: ONNX Runtime vs tfjs relative error ${err.toExponential(2)}`);
        assert(err <= 1e-4, `relative error ${err}`);
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  );

  Deno.test(`${c.name}: TF.js -> TF.js round trip predicts the same in tfjs`, async () => {
    const json = await c.json();
    const n = c.shape.reduce((a, b) => a * b, 1);
    const x = randomInput(n, 11);
    const ref = await tfjsPredict(json, x, c.shape);
    const dir = await Deno.makeTempDir({ prefix: "convpress-tfjs-real-" });
    try {
      await convertModel("tfjs", json, "tfjs", `${dir}/out`);
      const got = await tfjsPredict(`${dir}/out/model.json`, x, c.shape);
      const err = relErr(got, ref);
      console.log(`${c.name}: round trip vs original relative error ${err.toExponential(2)}`);
      assert(err <= 1e-6, `relative error ${err}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
