/**
 * The demo page in a real browser: Debian's Chromium, headless, loads web/index.html from a local server, fetches a
 * real compressed `.cvp` (LeNet at 4 bits; Deep Compression's SqueezeNet at 8 bits) and a real image (an MNIST digit,
 * an ImageNet JPEG), and runs it with tfjs's wasm backend. Its outputs must match ONNX Runtime on the decoded ONNX
 * within 1e-4 (same input: the one the page computed), its top-5 must be ONNX Runtime's, the network log must show the
 * `.cvp` and nothing else of the model (no float shards, no model.json), and nothing but the local server.
 * A screenshot goes to a temp folder (and to $CONVPRESS_BROWSER_SCREENSHOT when set).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { PNG } from "pngjs";
import { serveDemo } from "../web/serve.ts";
import { assert, assertEquals, missing, ortRun, removeOnExit, runCli, SHARED, SHARED_FIXTURES } from "./helpers.ts";
import { chromiumMissing, launchChromium } from "../web/chromium.ts";

const CAFFE = `${SHARED}/fixtures/caffe`;
const LENET = `${CAFFE}/lenet`;
const SQUEEZE = `${CAFFE}/squeezenet_dc`;
const IMAGENET = `${SHARED}/fixtures/imagenet`;
const DIGIT = "img_7_0.png"; // label 7
const PHOTO = "n02391049_zebra.JPEG"; // class 340, zebra

const skip = chromiumMissing() ??
  missing({
    paths: [
      `${SHARED_FIXTURES}/caffe/lenet/lenet_iter_10000.caffemodel`,
      `${SHARED_FIXTURES}/caffe/lenet/samples/${DIGIT}`,
      `${SHARED_FIXTURES}/caffe/squeezenet_dc/decompressed_SqueezeNet.caffemodel`,
      `${SHARED_FIXTURES}/imagenet/images/${PHOTO}`,
    ],
  });

interface PageResult {
  state: string;
  error?: string;
  backend: string;
  report: { name: string; bytes: number; params: number; layers: { op: string; tensors: { encoding: string }[] }[] };
  result: {
    input: number[];
    inputShape: number[];
    output: number[];
    outputShape: number[];
    top5: { index: number; label: string }[];
  };
}

function top5(v: ArrayLike<number>): number[] {
  return Array.from({ length: v.length }, (_, i) => i).sort((a, b) => v[b] - v[a]).slice(0, 5);
}

Deno.test({
  name: "browser: the demo page runs LeNet and SqueezeNet .cvp files as ONNX Runtime does, fetching the .cvp alone" +
    (skip ? ` [skipped: ${skip}]` : ""),
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "convpress-browser-" });
    removeOnExit(dir);
    // The models, compressed from the real Caffe files, and their float decode for ONNX Runtime.
    const make = async (name: string, model: string, prototxt: string, bits: string) => {
      const c = await runCli(["compress", model, "--prototxt", prototxt, "--bits", bits, "-o", `${dir}/${name}.cvp`]);
      assert(c.code === 0, c.stderr);
      const d = await runCli(["decode", `${dir}/${name}.cvp`, "-o", `${dir}/${name}.onnx`]);
      assert(d.code === 0, d.stderr);
    };
    await make("lenet", `${LENET}/lenet_iter_10000.caffemodel`, `${LENET}/mnist_deploy.prototxt`, "4");
    await make(
      "squeezenet",
      `${SQUEEZE}/decompressed_SqueezeNet.caffemodel`,
      `${SQUEEZE}/SqueezeNet_deploy.prototxt`,
      "8",
    );
    await Deno.copyFile(`${LENET}/samples/${DIGIT}`, `${dir}/${DIGIT}`);
    await Deno.copyFile(`${IMAGENET}/images/${PHOTO}`, `${dir}/${PHOTO}`);
    await Deno.copyFile(`${IMAGENET}/class_names.txt`, `${dir}/class_names.txt`);

    const stop = new AbortController();
    const server = await serveDemo({ port: 0, models: dir, signal: stop.signal });
    const origin = `http://127.0.0.1:${server.addr.port}`;
    const chromium = await launchChromium();
    try {
      const run = async (query: string) => {
        const page = await chromium.browser.newPage();
        const requests: string[] = [];
        page.on("request", (r) => requests.push(r.url()));
        const errors: string[] = [];
        page.on("pageerror", (e) => errors.push(String(e)));
        await page.goto(`${origin}/?${query}`);
        await page.waitForFunction(
          () => ["done", "error"].includes((globalThis as unknown as { cvpDemo: PageResult }).cvpDemo.state),
          { timeout: 90_000, polling: 200 },
        );
        const res = await page.evaluate(() => {
          const s = (globalThis as unknown as { cvpDemo: PageResult }).cvpDemo;
          return JSON.parse(JSON.stringify({ ...s, model: undefined }));
        }) as PageResult;
        assertEquals(res.error, undefined, `the page failed: ${res.error} ${errors.join("; ")}`);
        return { page, res, requests };
      };

      const check = async (
        name: string,
        res: PageResult,
        requests: string[],
        image: string,
      ): Promise<void> => {
        assertEquals(res.backend, "wasm");
        // ONNX Runtime on the float decode, with the very input the page made from the image.
        const x = Float32Array.from(res.result.input);
        const want = await ortRun(`${dir}/${name}.onnx`, x, res.result.inputShape);
        assertEquals(res.result.output.length, want.length, "output size");
        let maxDiff = 0;
        for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(res.result.output[i] - want[i]));
        assert(maxDiff <= 1e-4, `${name}: the page's output differs from ONNX Runtime's by ${maxDiff}`);
        console.log(`${name}: max |page - ONNX Runtime| = ${maxDiff.toExponential(2)} over ${want.length} outputs`);
        assertEquals(res.result.top5.map((t) => t.index), top5(want), `${name}: top-5`);
        // The page's report: every layer, clustered tensors among them, the file's size.
        const cvp = await Deno.stat(`${dir}/${name}.cvp`);
        assertEquals(res.report.bytes, cvp.size, "bytes read");
        assert(res.report.layers.some((l) => l.tensors.some((t) => t.encoding.startsWith("cluster"))), "clustered");
        // The network: only the local server; of the model, the .cvp alone, fetched once.
        for (const u of requests) assert(u.startsWith(`${origin}/`), `a request left the local server: ${u}`);
        const models = requests.filter((u) => u.startsWith(`${origin}/models/`)).map((u) => new URL(u).pathname);
        const expected = [`/models/${name}.cvp`, `/models/${image}`];
        if (name === "squeezenet") expected.push("/models/class_names.txt");
        assertEquals(models.sort(), expected.sort(), "model files fetched");
        assert(!requests.some((u) => /\.(bin|onnx)$|model\.json$/.test(u)), "no float shards or model.json");
      };

      await t.step("LeNet on an MNIST digit", async () => {
        const { page, res, requests } = await run(`model=/models/lenet.cvp&image=/models/${DIGIT}&preprocess=mnist`);
        // The page's input is the PNG's pixels / 256 (28x28, so no resampling).
        const png = PNG.sync.read(Buffer.from(await Deno.readFile(`${dir}/${DIGIT}`)));
        assertEquals(res.result.inputShape, [1, 1, 28, 28]);
        for (let i = 0; i < 784; i++) {
          assert(Math.abs(res.result.input[i] - png.data[4 * i] / 256) < 1e-7, `pixel ${i} of the digit`);
        }
        await check("lenet", res, requests, DIGIT);
        assertEquals(res.result.top5[0].index, 7, "LeNet reads the 7");
        await page.close();
      });

      await t.step("LeNet picked through the page's file inputs", async () => {
        const page = await chromium.browser.newPage();
        const requests: string[] = [];
        page.on("request", (r) => requests.push(r.url()));
        await page.goto(`${origin}/`);
        const ready = (s: string) =>
          page.waitForFunction((want) => (globalThis as unknown as { cvpDemo: PageResult }).cvpDemo.state === want, {
            timeout: 60_000,
          }, s);
        await ready("idle");
        const model = await page.$("#modelFile");
        await model!.uploadFile(`${dir}/lenet.cvp`);
        await ready("ready");
        const image = await page.$("#imageFile");
        await image!.uploadFile(`${dir}/${DIGIT}`);
        await ready("done");
        const res = await page.evaluate(() => {
          const s = (globalThis as unknown as { cvpDemo: PageResult }).cvpDemo;
          return JSON.parse(JSON.stringify({ ...s, model: undefined }));
        }) as PageResult;
        const want = await ortRun(`${dir}/lenet.onnx`, Float32Array.from(res.result.input), res.result.inputShape);
        for (let i = 0; i < want.length; i++) assert(Math.abs(res.result.output[i] - want[i]) <= 1e-4, `output ${i}`);
        assertEquals(res.result.top5[0].index, 7);
        // The files came from the inputs: nothing of the model over the network.
        assert(!requests.some((u) => u.includes("/models/")), `fetched: ${requests.join(", ")}`);
        const rows = await page.$$eval("#layers tbody tr", (trs) => trs.length);
        assertEquals(rows, 8, "a report row per layer");
        await page.close();
      });

      await t.step("SqueezeNet on an ImageNet photo", async () => {
        const { page, res, requests } = await run(
          `model=/models/squeezenet.cvp&image=/models/${PHOTO}&labels=/models/class_names.txt&preprocess=caffe`,
        );
        assertEquals(res.result.inputShape, [1, 3, 227, 227]);
        await check("squeezenet", res, requests, PHOTO);
        assertEquals(res.result.top5[0].index, 340, "SqueezeNet sees the zebra");
        const shot = `${dir}/browser.png`;
        await page.screenshot({ path: shot, fullPage: true });
        const png = PNG.sync.read(Buffer.from(await Deno.readFile(shot)));
        assert(png.width >= 800 && png.height >= 600, "screenshot size");
        const extra = Deno.env.get("CONVPRESS_BROWSER_SCREENSHOT");
        if (extra) await Deno.copyFile(shot, extra);
        await page.close();
      });
    } finally {
      await chromium.close();
      stop.abort();
      await server.finished;
    }
  },
});
