/**
 * The page's memory while it loads a `.cvp`: headless Chromium opens the demo page and loads the model from the local
 * server, while this script pauses the loader over the DevTools protocol at every tensor slice it stores
 * (`hand.put(...)` in web/cvp_loader.js) and at every tensor it hands to tfjs (`builder.finish(hand)`: the tensor in
 * hand is full and its encoded body still held, the peak of each tensor). At each pause it forces a full GC
 * (`HeapProfiler.collectGarbage`) and reads `Runtime.getHeapUsage`: the JS heap plus the ArrayBuffer backing stores,
 * where typed arrays and the tfjs cpu backend's tensors live. So each sample is what the page holds at that point of
 * decoding, not garbage waiting for the collector. A second pass samples at the same points without GC, for the
 * allocated peak.
 *
 * Usage: deno run -A bench/browser_heap.ts MODEL.cvp [--backend cpu|wasm] [--json OUT]
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { CDPSession, Page } from "puppeteer-core";
import { serveDemo } from "../web/serve.ts";
import { chromiumMissing, launchChromium } from "../web/chromium.ts";

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { backend: { type: "string", default: "cpu" }, json: { type: "string" } },
});
const cvp = positionals[0];
if (!cvp) {
  console.error("Usage: deno run -A bench/browser_heap.ts MODEL.cvp [--backend cpu|wasm] [--json OUT]");
  Deno.exit(2);
}
const missing = chromiumMissing();
if (missing) {
  console.error(missing);
  Deno.exit(1);
}
const abs = await Deno.realPath(cvp);
const dirName = abs.slice(0, abs.lastIndexOf("/"));
const file = abs.slice(abs.lastIndexOf("/") + 1);

interface Usage {
  usedSize: number;
  backingStorageSize: number;
}
const total = (u: Usage) => u.usedSize + u.backingStorageSize;

const stop = new AbortController();
const server = await serveDemo({ port: 0, models: dirName, signal: stop.signal });
const origin = `http://127.0.0.1:${server.addr.port}`;
const chromium = await launchChromium(["--js-flags=--expose-gc"]);

/** One pause of the loader: the heap there, how many tensors were done, and whether a full tensor was in hand. */
interface Sample {
  heap: number;
  done: number;
  atFinish: boolean;
}

interface Pass {
  baseline: number;
  final: number;
  samples: Sample[];
}

async function pass(gc: boolean): Promise<{ pass: Pass; report: Report }> {
  const page: Page = await chromium.browser.newPage();
  const cdp: CDPSession = await page.createCDPSession();
  await page.goto(`${origin}/?backend=${values.backend}`);
  await page.waitForFunction(() => (globalThis as unknown as Demo).cvpDemo.state === "idle", { timeout: 60_000 });
  let paused: string | undefined;
  // A full GC: HeapProfiler.collectGarbage does not run while the page is paused, so gc() (--expose-gc) is called on
  // the paused frame instead.
  const usage = async (collect: boolean) => {
    if (collect && paused) await cdp.send("Debugger.evaluateOnCallFrame", { callFrameId: paused, expression: "gc()" });
    else if (collect) await cdp.send("Runtime.evaluate", { expression: "gc()" });
    return total(await cdp.send("Runtime.getHeapUsage") as Usage);
  };
  const baseline = await usage(true);
  // Breakpoints on two lines of the bundled loader (found in the served file, so they follow rebuilds).
  const lines = (await (await fetch(`${origin}/cvp_loader.js`)).text()).split("\n");
  const at = (text: string) => {
    const n = lines.findIndex((l) => l.includes(text));
    if (n < 0) throw new Error(`'${text}' is not in web/cvp_loader.js`);
    return n;
  };
  await cdp.send("Debugger.enable");
  const finishLine = at("builder.finish(hand)");
  for (const line of [at("hand.put(ev.start, ev.data)"), finishLine]) {
    await cdp.send("Debugger.setBreakpointByUrl", { url: `${origin}/cvp_loader.js`, lineNumber: line });
  }
  const samples: Sample[] = [];
  let done = 0;
  cdp.on("Debugger.paused", async (ev) => {
    paused = ev.callFrames[0]?.callFrameId;
    try {
      const atFinish = ev.callFrames[0]?.location.lineNumber === finishLine;
      samples.push({ heap: await usage(gc), done, atFinish });
      if (atFinish) done++;
    } finally {
      paused = undefined;
      await cdp.send("Debugger.resume");
    }
  });
  await page.evaluate((url) => (globalThis as unknown as Demo).cvpDemo.load(url), `/models/${file}`);
  await cdp.send("Debugger.disable");
  const state = await page.evaluate(() => (globalThis as unknown as Demo).cvpDemo.state);
  if (state !== "ready") throw new Error(`the page did not load the model: ${state}`);
  const final = await usage(true);
  const report = await page.evaluate(() => {
    const r = (globalThis as unknown as Demo).cvpDemo.report;
    const sizes = r.layers.flatMap((l) => l.tensors.map((t) => t.shape.reduce((a, b) => a * b, 1)));
    return { name: r.name, bytes: r.bytes, params: r.params, sizes };
  });
  await page.close();
  return { pass: { baseline, final, samples }, report };
}

interface Report {
  name: string;
  bytes: number;
  params: number;
  /** Values of each tensor, in file order. */
  sizes: number[];
}
interface Demo {
  cvpDemo: {
    state: string;
    load(url: string): Promise<void>;
    progress: { bytes: number; tensors: number }[];
    report: { name: string; bytes: number; params: number; layers: { tensors: { shape: number[] }[] }[] };
  };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
/** The most a pass held beyond baseline + the float32 bytes of the tensors done, and where. */
function excess(p: Pass, sizes: number[]) {
  const before = sizes.map((_, i) => 4 * sizes.slice(0, i).reduce((a, b) => a + b, 0));
  let max = { bytes: -Infinity, tensor: 0, inHand: 0 };
  for (const s of p.samples) {
    const e = s.heap - p.baseline - before[s.done];
    if (e > max.bytes) max = { bytes: e, tensor: s.done, inHand: 4 * sizes[s.done] };
  }
  return max;
}
try {
  const live = await pass(true);
  const raw = await pass(false);
  const r = live.report;
  const model = 4 * r.params, largest = 4 * Math.max(...r.sizes);
  const peak = (p: Pass) => Math.max(...p.samples.map((s) => s.heap));
  const e = excess(live.pass, r.sizes), eRaw = excess(raw.pass, r.sizes);
  const lines = [
    `${file}: ${r.name}, ${mb(r.bytes)} file, ${r.params.toLocaleString("en-US")} parameters (${
      mb(model)
    } as float32) in ${r.sizes.length} tensors, the largest ${Math.max(...r.sizes).toLocaleString("en-US")} values (${
      mb(largest)
    })`,
    `backend ${values.backend}; page heap = JS heap + ArrayBuffer backing stores (Runtime.getHeapUsage), ` +
    `${live.pass.samples.length} pauses (every 64 Ki-value slice stored, every tensor handed to tfjs)`,
    `held (full GC at each pause): before loading ${mb(live.pass.baseline)}, peak ${mb(peak(live.pass))}, ` +
    `model built ${mb(live.pass.final)} (+${mb(live.pass.final - live.pass.baseline)})`,
    `  most held beyond the tensors done: ${mb(e.bytes)}, while tensor ${e.tensor + 1} of ${r.sizes.length} ` +
    `(${mb(e.inHand)} as float32) was in hand`,
    `allocated (no GC): peak ${mb(peak(raw.pass))}; most beyond the tensors done ${mb(eRaw.bytes)} ` +
    `(tensor ${eRaw.tensor + 1} in hand, ${mb(eRaw.inHand)}), garbage the collector had not reclaimed yet included`,
  ];
  console.log(lines.join("\n"));
  if (values.json) {
    await Deno.writeTextFile(
      values.json,
      JSON.stringify({ file, backend: values.backend, report: r, held: live.pass, allocated: raw.pass }, null, 2),
    );
  }
} finally {
  await chromium.close();
  stop.abort();
  await server.finished;
}
