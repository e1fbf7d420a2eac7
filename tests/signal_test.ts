/**
 * SIGINT and SIGTERM at seeded random points of a conversion to each format, to a file and to stdout (and from a
 * TF.js tar on stdin), leave no file behind: not the output, not its temporaries, not the spool files and folders in
 * the temp folder.
 */
import { assert, removeOnExit, rng, ROOT } from "./helpers.ts";
import { listTree } from "./hardening_helpers.ts";
import { type Layer, layerStream, type ModelStream } from "../src/model/types.ts";
import { Tensor } from "../src/model/tensor.ts";
import { writeOnnx } from "../formats/onnx/writer.ts";
import { convert } from "../src/app/convert.ts";

/** A chain of `count` FC layers of n x n (seeded weights), big enough to take a moment to convert. */
function chain(n: number, count: number): ModelStream {
  const layers: Layer[] = [];
  let x = "data";
  for (let i = 1; i <= count; i++) {
    const w = new Float32Array(n * n);
    for (let k = 0; k < w.length; k++) w[k] = Math.sin(k * i) * 0.01;
    layers.push({
      name: `fc${i}`,
      op: "FC",
      attrs: {},
      inputs: [x],
      outputs: [`fc${i}`],
      params: {
        weight: Tensor.fromFloat32(`fc${i}.weight`, [n, n], w),
        bias: Tensor.fromFloat32(`fc${i}.bias`, [n], new Float32Array(n)),
      },
    });
    layers.push({ name: `relu${i}`, op: "Relu", attrs: {}, inputs: [`fc${i}`], outputs: [`relu${i}`], params: {} });
    x = `relu${i}`;
  }
  return {
    header: {
      name: "chain",
      sourceFormat: "onnx",
      inputs: [{ name: "data", dtype: "float32", shape: [1, n] }],
      outputs: [{ name: x, dtype: "float32", shape: [1, n] }],
      metadata: {},
    },
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("signals: SIGINT and SIGTERM during conversions to every format, to files and to stdout, leave nothing", async () => {
  const base = await Deno.makeTempDir({ prefix: "convpress-signal-" });
  removeOnExit(base);
  const input = `${base}/chain.onnx`;
  await writeOnnx(chain(1536, 8), input); // 75 MB
  const r = rng(1402);
  // A TF.js tar of the same model, for conversions that read stdin (its shards spool to the temp folder).
  const tar = `${base}/chain.tar`;
  await convert(input, tar, { to: "tfjs" });
  const targets: { to: string; stdout: boolean; stdin?: boolean }[] = [];
  for (const to of ["onnx", "caffe", "tfjs", "cvp"]) targets.push({ to, stdout: false }, { to, stdout: true });
  targets.push({ to: "cvp", stdout: false, stdin: true }, { to: "onnx", stdout: true, stdin: true });
  let interrupted = 0, finished = 0;
  const outcomes: string[] = [];
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    for (const t of targets) {
      const out = `${base}/out`, tmp = `${base}/tmp`;
      await Deno.mkdir(out);
      await Deno.mkdir(tmp);
      const output = t.stdout ? "-" : `${out}/m.${t.to}`;
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          `${ROOT}/main.ts`,
          "convert",
          ...(t.stdin ? ["--from", "tfjs", "-"] : [input]),
          "-o",
          output,
          "--to",
          t.to,
        ],
        stdin: t.stdin ? "piped" : "null",
        stdout: t.stdout ? "piped" : "null",
        stderr: "piped",
        env: { DENO_NO_UPDATE_CHECK: "1", TMPDIR: tmp },
      }).spawn();
      let started = false;
      const fed = t.stdin
        ? (async () => {
          const f = await Deno.open(tar);
          await f.readable.pipeTo(child.stdin).catch(() => {}); // the child may end before it has read all
        })()
        : Promise.resolve();
      const drained = t.stdout
        ? (async () => {
          for await (const _ of child.stdout) started = true;
        })()
        : Promise.resolve();
      const status = child.status;
      let done = false;
      status.then(() => done = true);
      // Wait until the conversion is writing (its temporaries exist, or stdout has bytes), then a random moment more.
      for (let i = 0; i < 600 && !done && !started && listTree(out).length + listTree(tmp).length === 0; i++) {
        await sleep(10);
      }
      // A random moment within the first 100 ms of writing: with up to 300 ms, half of these 75 MB conversions had
      // finished first on an idle 2-core machine (9-10 of 20); with 100 ms, 16-18 of 20 are interrupted. Each outcome
      // is checked either way.
      await sleep(Math.floor(r() * 100));
      const what = `${signal} ${t.stdin ? "stdin tar -> " : ""}${t.to}${t.stdout ? " to stdout" : ""}`;
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      const st = await status;
      await drained;
      await fed;
      const err = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
      if (st.success) {
        finished++;
        outcomes.push(`${what}: finished first`);
      } else {
        interrupted++;
        const expected = signal === "SIGINT" ? 130 : 143;
        assert(st.code === expected || st.signal === signal, `${what}: exit ${st.code} (${st.signal}): ${err}`);
        assert(listTree(out).length === 0, `${what}: left ${listTree(out)}`);
      }
      assert(listTree(tmp).length === 0, `${what}: left in the temp folder ${listTree(tmp)}`);
      await Deno.remove(out, { recursive: true });
      await Deno.remove(tmp, { recursive: true });
    }
  }
  console.log(`signals: ${interrupted} conversions interrupted, ${finished} finished before the signal`, outcomes);
  assert(interrupted >= targets.length, `only ${interrupted} of ${2 * targets.length} conversions were interrupted`);
});
