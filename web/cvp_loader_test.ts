/**
 * The streaming `.cvp` loader, in Deno (tfjs wasm backend) and in Node (its bundled JavaScript, tfjs cpu backend),
 * against ONNX Runtime: the real LeNet (4-bit clusters) and SqueezeNet (8-bit, sparse layers), every kind of source,
 * the ops of fixtures/eval/make_onnx_ops.py, damaged files and ops it cannot run.
 */
import * as tf from "@tensorflow/tfjs";
import * as wasm from "@tensorflow/tfjs-backend-wasm";
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { CvpDecodeError } from "../formats/cvp/decoder.ts";
import {
  assert,
  assertEquals,
  assertRejects,
  missing,
  type Needs,
  PYTHON,
  removeOnExit,
  ROOT,
  runCli,
  SHARED,
  SHARED_FIXTURES,
} from "../tests/helpers.ts";
import { bundleLoader, LOADER_JS } from "./build.ts";
import { CvpLoadError, type CvpModel, type CvpProgress, type CvpSource, loadCvpModel } from "./cvp_loader.ts";
import { serveDemo } from "./serve.ts";
import { writeToBytes } from "../formats/cvp/testing.ts";
import { Tensor } from "../src/model/tensor.ts";
import { type Layer, layerStream } from "../src/model/types.ts";

const LENET = `${SHARED}/fixtures/caffe/lenet`;
const SQUEEZE = `${SHARED}/fixtures/caffe/squeezenet_dc`;
const NEED_LENET: Needs = { paths: [`${SHARED_FIXTURES}/caffe/lenet/lenet_iter_10000.caffemodel`] };
const NEED_SQUEEZE: Needs = { paths: [`${SHARED_FIXTURES}/caffe/squeezenet_dc/decompressed_SqueezeNet.caffemodel`] };
const NEED_ONNX: Needs = { python: ["onnx", "numpy"] };

/** `Deno.test` skipped, with the reason in its name, when `needs` are missing; tfjs's wasm backend and ONNX Runtime
 * keep resources across tests, so the sanitizers are off. */
function test(name: string, needs: Needs, fn: () => Promise<void>): void {
  const why = missing(needs);
  Deno.test({
    name: why ? `${name} [skipped: ${why}]` : name,
    ignore: why !== undefined,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}

let ready: Promise<void> | undefined;
/** tfjs with the wasm backend, its .wasm files from node_modules. */
function tfWasm(): Promise<void> {
  ready ??= (async () => {
    wasm.setWasmPaths(new URL("./", import.meta.resolve("@tensorflow/tfjs-backend-wasm")).href);
    assert(await tf.setBackend("wasm"), "the tfjs wasm backend starts");
    await tf.ready();
  })();
  return ready;
}

const dir = Deno.makeTempDirSync({ prefix: "convpress-loader-" });
removeOnExit(dir);

const made = new Map<string, Promise<void>>();
/** Compresses a real Caffe model to `dir/name.cvp` and decodes it to `dir/name.onnx` (once). */
function model(name: "lenet" | "squeezenet"): Promise<void> {
  if (!made.has(name)) {
    made.set(
      name,
      (async () => {
        const [src, proto, bits] = name === "lenet"
          ? [`${LENET}/lenet_iter_10000.caffemodel`, `${LENET}/mnist_deploy.prototxt`, "4"]
          : [`${SQUEEZE}/decompressed_SqueezeNet.caffemodel`, `${SQUEEZE}/SqueezeNet_deploy.prototxt`, "8"];
        const c = await runCli(["compress", src, "--prototxt", proto, "--bits", bits, "-o", `${dir}/${name}.cvp`]);
        assert(c.code === 0, c.stderr);
        const d = await runCli(["decode", `${dir}/${name}.cvp`, "-o", `${dir}/${name}.onnx`]);
        assert(d.code === 0, d.stderr);
      })(),
    );
  }
  return made.get(name)!;
}

// deno-lint-ignore no-explicit-any
type Ort = any; // onnxruntime-node's namespace, loaded only here
/** Every graph output of an ONNX model in ONNX Runtime. */
async function ortAll(path: string, input: Float32Array, shape: number[]): Promise<Record<string, Float32Array>> {
  const ort: Ort = await import("onnxruntime-node");
  const s = await ort.InferenceSession.create(path);
  try {
    const r = await s.run({ [s.inputNames[0]]: new ort.Tensor("float32", input, shape) });
    return Object.fromEntries(s.outputNames.map((n: string) => [n, Float32Array.from(r[n].data as Float32Array)]));
  } finally {
    await s.release?.();
  }
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assertEquals(a.length, b.length, "lengths");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Runs every output of a loaded model on one NCHW input. */
async function runAll(m: CvpModel, x: Float32Array, shape: number[]): Promise<Record<string, Float32Array>> {
  const input = tf.tensor(x, shape);
  const y = m.model.execute({ [m.inputs[0].node]: input }, m.outputs.map((o) => o.node));
  const ys = Array.isArray(y) ? y : [y]; // one output comes back bare
  const out: Record<string, Float32Array> = {};
  for (const [i, o] of m.outputs.entries()) out[o.name] = (await ys[i].data()) as Float32Array;
  tf.dispose([input, ...ys]);
  return out;
}

/** The nine MNIST sample digits of the fixtures as one [9, 1, 28, 28] batch (pixel / 256) and their labels. */
async function digits(): Promise<{ x: Float32Array; labels: number[] }> {
  const files = [...Deno.readDirSync(`${LENET}/samples`)].map((e) => e.name).filter((n) => n.endsWith(".png")).sort();
  const x = new Float32Array(files.length * 784);
  const labels: number[] = [];
  for (const [k, f] of files.entries()) {
    const png = PNG.sync.read(Buffer.from(await Deno.readFile(`${LENET}/samples/${f}`)));
    for (let i = 0; i < 784; i++) x[k * 784 + i] = png.data[4 * i] / 256;
    labels.push(Number(f.split("_")[1]));
  }
  return { x, labels };
}

Deno.test("cvp_loader.js is the bundle of cvp_loader.ts and the decoder (deno task build-web)", async () => {
  const fresh = await bundleLoader();
  const committed = await Deno.readTextFile(LOADER_JS);
  assert(fresh === committed, "web/cvp_loader.js is out of date: run `deno task build-web`");
});

test(
  "loader: LeNet from bytes, a Blob, a Response, a chunked stream and a URL matches ONNX Runtime on real digits",
  NEED_LENET,
  async () => {
    await tfWasm();
    await model("lenet");
    const bytes = await Deno.readFile(`${dir}/lenet.cvp`);
    const { x, labels } = await digits();
    const shape = [labels.length, 1, 28, 28];
    const want = (await ortAll(`${dir}/lenet.onnx`, x, shape)).loss;
    const stop = new AbortController();
    const server = await serveDemo({ port: 0, models: dir, signal: stop.signal });
    const chunked = () => {
      let at = 0;
      return new ReadableStream<Uint8Array>({
        pull(c) {
          if (at >= bytes.length) return c.close();
          c.enqueue(bytes.slice(at, at += 997));
        },
      });
    };
    const sources: [string, () => CvpSource, boolean][] = [
      ["bytes", () => bytes, true],
      ["ArrayBuffer", () => bytes.slice().buffer, true],
      ["Blob", () => new Blob([bytes]), true],
      ["Response", () => new Response(bytes), false],
      ["stream of 997-byte chunks", chunked, false],
      ["URL", () => `http://127.0.0.1:${server.addr.port}/models/lenet.cvp`, true],
    ];
    try {
      for (const [what, source, sized] of sources) {
        const progress: CvpProgress[] = [];
        const before = tf.memory().numTensors;
        const m = await loadCvpModel(source(), { tf, onProgress: (p) => progress.push(p) });
        const got = (await runAll(m, x, shape)).loss;
        assert(maxDiff(got, want) <= 1e-4, `${what}: differs from ONNX Runtime by ${maxDiff(got, want)}`);
        for (let i = 0; i < labels.length; i++) {
          const row = Array.from(got.subarray(10 * i, 10 * i + 10));
          assertEquals(row.indexOf(Math.max(...row)), labels[i], `${what}: digit ${i}`);
        }
        // Progress: bytes only grow, to the file's size; one event per layer and per tensor; "done" last.
        assertEquals(m.bytes, bytes.length, `${what}: bytes`);
        for (let i = 1; i < progress.length; i++) assert(progress[i].bytes >= progress[i - 1].bytes, "bytes grow");
        assertEquals(progress.at(-1)!.phase, "done");
        assertEquals(progress.at(-1)!.bytes, bytes.length);
        assertEquals(progress.at(-1)!.totalBytes, sized ? bytes.length : undefined, `${what}: totalBytes`);
        assertEquals(progress.filter((p) => p.phase === "layer").length, m.layers.length);
        assertEquals(progress.filter((p) => p.phase === "tensor").length, 8);
        // The report: LeNet's layers, clustered weights, and the tensors' bytes add up to the file minus framing.
        assertEquals(m.layers.map((l) => l.op).join(), "Conv,MaxPool,Conv,MaxPool,FC,Relu,FC,Softmax");
        assertEquals(m.layers.map((l) => l.params).reduce((a, b) => a + b, 0), 431080);
        assertEquals(m.layers[0].outputShape, [null, 20, 24, 24]);
        assertEquals(m.layers[4].tensors.map((t) => t.encoding).join(), "cluster,f16");
        const body = m.layers.reduce((a, l) => a + l.bytes, 0);
        assert(body > 0.9 * bytes.length && body < bytes.length, `tensor bytes ${body} of ${bytes.length}`);
        // The model holds its weights in tfjs: 8 parameter tensors plus a few small constants, freed by dispose().
        assert(tf.memory().numTensors - before >= 8, "weights are tfjs tensors");
        m.model.dispose();
        assertEquals(tf.memory().numTensors, before, `${what}: dispose frees every tensor`);
      }
    } finally {
      stop.abort();
      await server.finished;
    }
  },
);

test(
  "loader: SqueezeNet (8-bit clusters, sparse layers, Concat, ceil pooling, padded 1x1 conv) matches ONNX Runtime",
  NEED_SQUEEZE,
  async () => {
    await tfWasm();
    await model("squeezenet");
    const m = await loadCvpModel(await Deno.readFile(`${dir}/squeezenet.cvp`), { tf });
    const shape = [1, 3, 227, 227];
    const x = new Float32Array(3 * 227 * 227).map((_, i) => 100 * Math.sin(i * 0.013) + 20 * Math.cos(i * 0.7));
    const got = (await runAll(m, x, shape)).pool_final;
    const want = (await ortAll(`${dir}/squeezenet.onnx`, x, shape)).pool_final;
    assert(maxDiff(got, want) <= 1e-4, `differs from ONNX Runtime by ${maxDiff(got, want)}`);
    const encodings = new Set(m.layers.flatMap((l) => l.tensors.map((t) => t.encoding)));
    assert(encodings.has("cluster") && encodings.has("cluster-sparse"), [...encodings].join());
    assertEquals(m.outputs[0].shape, [null, 1000, 1, 1]);
    m.model.dispose();
  },
);

test(
  "loader: the ops of make_onnx_ops.py (grouped, depthwise, padded pooling, BatchNorm, LRN, ...) match ONNX Runtime",
  NEED_ONNX,
  async () => {
    await tfWasm();
    const d = `${dir}/ops`;
    const out = await new Deno.Command(PYTHON, { args: [`${ROOT}/fixtures/eval/make_onnx_ops.py`, d] }).output();
    assert(out.code === 0, new TextDecoder().decode(out.stderr));
    for (const name of ["spatial", "channels"]) {
      const c = await runCli(["convert", `${d}/${name}.onnx`, "-o", `${d}/${name}.cvp`]);
      assert(c.code === 0, c.stderr);
      const b = await Deno.readFile(`${d}/${name}.in.f32`);
      const x = new Float32Array(b.buffer, b.byteOffset, b.length / 4);
      const shape = [2, 4, 11, 11];
      const m = await loadCvpModel(await Deno.readFile(`${d}/${name}.cvp`), { tf });
      const got = await runAll(m, x, shape);
      const want = await ortAll(`${d}/${name}.onnx`, x, shape);
      assert(Object.keys(want).length >= 8, "outputs");
      for (const [k, v] of Object.entries(want)) {
        assert(got[k], `${name}: output ${k}`);
        const diff = maxDiff(got[k], v);
        assert(diff <= 1e-4, `${name}: output ${k} differs from ONNX Runtime by ${diff}`);
      }
      m.model.dispose();
    }
  },
);

test(
  "loader: a damaged .cvp is refused with the decoder's error, and the tensors made so far are freed",
  NEED_LENET,
  async () => {
    await tfWasm();
    await model("lenet");
    const bytes = await Deno.readFile(`${dir}/lenet.cvp`);
    const before = tf.memory().numTensors;
    const bad = bytes.slice();
    bad[Math.floor(bytes.length * 0.6)] ^= 0x10; // inside ip1's weights
    const e = await assertRejects(() => loadCvpModel(bad, { tf }));
    assert(e instanceof CvpDecodeError, String(e));
    assertEquals((e as CvpDecodeError).kind, "checksum");
    assert(/^Record \d+ \(tensor 'ip1\.weight'\) at byte \d+: body CRC mismatch$/.test(e.message), e.message);
    assertEquals(tf.memory().numTensors, before, "no tensor left behind");
    const cut = await assertRejects(() => loadCvpModel(bytes.slice(0, 5000), { tf }));
    assertEquals((cut as CvpDecodeError).kind, "truncated");
    assertEquals(tf.memory().numTensors, before, "no tensor left behind");
    const none = await assertRejects(() => loadCvpModel(bytes, {}));
    assert(none instanceof CvpLoadError && none.code === "no_tfjs", String(none));
  },
);

test(
  "loader: an op TF.js cannot run is an unsupported_op error naming the layer",
  NEED_ONNX,
  async () => {
    await tfWasm();
    const d = `${dir}/small`;
    await Deno.mkdir(d, { recursive: true });
    const out = await new Deno.Command(PYTHON, { args: [`${ROOT}/fixtures/onnx/make_small.py`, d] }).output();
    assert(out.code === 0, new TextDecoder().decode(out.stderr));
    const c = await runCli(["convert", `${d}/small_cnn.onnx`, "-o", `${d}/small_cnn.cvp`]);
    assert(c.code === 0, c.stderr);
    const before = tf.memory().numTensors;
    const e = await assertRejects(() => loadCvpModel(Deno.readFileSync(`${d}/small_cnn.cvp`), { tf }));
    assert(e instanceof CvpLoadError && e.code === "unsupported_op", String(e));
    assertEquals(e.message, "Layer 'erf2': op 'Passthrough' has no TF.js graph op in the loader");
    assertEquals(tf.memory().numTensors, before, "no tensor left behind");
    // From a stream, the error cancels it: the rest of the file is not downloaded.
    const bytes = Deno.readFileSync(`${d}/small_cnn.cvp`);
    let at = 0, cancelled = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (at >= bytes.length) return c.close();
        c.enqueue(bytes.slice(at, at += 64));
      },
      cancel() {
        cancelled = true;
      },
    }, { highWaterMark: 0 });
    await assertRejects(() => loadCvpModel(stream, { tf }));
    assert(cancelled, "the stream is cancelled");
    assert(at < bytes.length, `read ${at} of ${bytes.length} bytes`);
  },
);

const NODE_SCRIPT = `
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { createRequire } from "node:module";
const [loaderUrl, tfjsDir, cvp, input] = process.argv.slice(2);
const tf = createRequire(tfjsDir + "/")("@tensorflow/tfjs");
await tf.setBackend("cpu");
const { loadCvpModel } = await import(loaderUrl);
const m = await loadCvpModel(Readable.toWeb(createReadStream(cvp)), { tf });
const buf = (await import("node:fs")).readFileSync(input);
const x = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
const y = m.model.execute({ [m.inputs[0].node]: tf.tensor(x, [x.length / 784, 1, 28, 28]) }, m.outputs[0].node);
console.log(JSON.stringify({ out: Array.from(await y.data()), layers: m.layers.length, bytes: m.bytes }));
`;

test(
  "loader: its bundled JavaScript runs LeNet in Node.js (tfjs cpu backend) as ONNX Runtime does",
  NEED_LENET,
  async () => {
    await model("lenet");
    const { x, labels } = await digits();
    await Deno.writeFile(`${dir}/digits.f32`, new Uint8Array(x.buffer));
    await Deno.writeTextFile(`${dir}/node_check.mjs`, NODE_SCRIPT);
    const run = await new Deno.Command("node", {
      args: [
        `${dir}/node_check.mjs`,
        new URL(`file://${LOADER_JS}`).href,
        `${ROOT}/node_modules/@tensorflow/tfjs`,
        `${dir}/lenet.cvp`,
        `${dir}/digits.f32`,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(run.code === 0, new TextDecoder().decode(run.stderr));
    const res = JSON.parse(new TextDecoder().decode(run.stdout).trim().split("\n").at(-1)!);
    const want = (await ortAll(`${dir}/lenet.onnx`, x, [labels.length, 1, 28, 28])).loss;
    assert(maxDiff(res.out, want) <= 1e-4, `Node differs from ONNX Runtime by ${maxDiff(res.out, want)}`);
    assertEquals(res.layers, 8);
    assertEquals(res.bytes, (await Deno.stat(`${dir}/lenet.cvp`)).size);
  },
);

test("loader: Caffe's Eltwise with coefficients, a per-channel Scale and a Softmax over the channels", {}, async () => {
  await tfWasm();
  const layers: Layer[] = [
    { name: "relu", op: "Relu", attrs: {}, inputs: ["data"], outputs: ["r"], params: {} },
    { name: "sig", op: "Sigmoid", attrs: {}, inputs: ["data"], outputs: ["s"], params: {} },
    { name: "sum", op: "Add", attrs: { coeffs: [0.5, -2] }, inputs: ["r", "s"], outputs: ["sum"], params: {} },
    {
      name: "scale",
      op: "Scale",
      attrs: { axis: 1 },
      inputs: ["sum"],
      outputs: ["sc"],
      params: {
        scale: Tensor.fromFloat32("scale.scale", [2], Float32Array.of(3, -1)),
        bias: Tensor.fromFloat32("scale.bias", [2], Float32Array.of(0.25, 1)),
      },
    },
    { name: "prob", op: "Softmax", attrs: { axis: 1 }, inputs: ["sc"], outputs: ["prob"], params: {} },
  ];
  const bytes = await writeToBytes({
    header: {
      name: "eltwise",
      sourceFormat: "caffe",
      inputs: [{ name: "data", dtype: "float32", shape: [1, 2, 2, 3] }],
      outputs: [{ name: "prob", dtype: "float32", shape: [1, 2, 2, 3] }],
      metadata: {},
    },
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  });
  const m = await loadCvpModel(bytes, { tf });
  const x = Float32Array.from({ length: 12 }, (_, i) => (i - 5.5) / 2);
  const got = (await runAll(m, x, [1, 2, 2, 3])).prob;
  // By hand, in NCHW: channel c of position p is x[c * 6 + p].
  const want = new Float32Array(12);
  for (let p = 0; p < 6; p++) {
    const v = [0, 1].map((c) => {
      const a = x[c * 6 + p];
      const sum = 0.5 * Math.max(a, 0) - 2 / (1 + Math.exp(-a));
      return sum * [3, -1][c] + [0.25, 1][c];
    });
    const e = v.map((u) => Math.exp(u - Math.max(...v)));
    for (const c of [0, 1]) want[c * 6 + p] = e[c] / (e[0] + e[1]);
  }
  assert(maxDiff(got, want) <= 1e-6, `differs from the hand computation by ${maxDiff(got, want)}`);
  m.model.dispose();
});
