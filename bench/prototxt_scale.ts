/**
 * Prototxt scale benchmark (issue 14, item 8): writes a deploy prototxt of N ReLU layers (`name`, `input_shape`
 * 1x3x8x8, then N `layer { name type bottom top }` blocks), converts `fixtures/caffe/tiny_v2.caffemodel` with it to
 * `.cvp` (and, with `--inspect`, inspects it) under ../shared/tools/peak-rss.sh, and prints wall time, peak RSS, the
 * peak above a 1-layer run per layer, and the output's SHA-256 (the same bytes must come out before and after a
 * change).
 *
 * ```
 * deno run --allow-read --allow-write --allow-run bench/prototxt_scale.ts [LAYERS=100000] [--inspect]
 * ```
 * Files go to bench/out/prototxt_scale/.
 *
 * @module
 */
const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const args = Deno.args.filter((a) => !a.startsWith("--"));
const n = Number(args[0] ?? 100_000);
const inspect = Deno.args.includes("--inspect");
const out = `${root}/bench/out/prototxt_scale`;
await Deno.mkdir(out, { recursive: true });

/** Writes the prototxt of `layers` ReLU layers; returns its path. */
async function writePrototxt(layers: number): Promise<string> {
  const path = `${out}/relu_${layers}.prototxt`;
  const parts = ['name: "big"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'];
  for (let i = 0, prev = "data"; i < layers; prev = `r${i}`, i++) {
    parts.push(`layer {\n  name: "relu${i}"\n  type: "ReLU"\n  bottom: "${prev}"\n  top: "r${i}"\n}\n`);
  }
  await Deno.writeTextFile(path, parts.join(""));
  return path;
}

interface Run {
  wall: number;
  kb: number;
  sha?: string;
}

/** Runs one CLI command under peak-rss.sh with the flags `deno task convpress` uses. */
async function run(cli: string[], output?: string): Promise<Run> {
  const cmd = [
    `${root}/../shared/tools/peak-rss.sh`,
    Deno.execPath(),
    "run",
    "--allow-read",
    "--allow-write",
    "--v8-flags=--expose-gc",
    `${root}/main.ts`,
    ...cli,
  ];
  console.log(`$ ${cmd.join(" ")}`);
  const res = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "null",
    stderr: "piped",
    cwd: root,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const err = new TextDecoder().decode(res.stderr);
  const m = /wall ([\d.]+) s, peak RSS (\d+) KB/.exec(err);
  if (!res.success || !m) throw new Error(`failed: ${err}`);
  let sha: string | undefined;
  if (output) {
    const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(output));
    sha = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  }
  return { wall: Number(m[1]), kb: Number(m[2]), sha };
}

const model = `${root}/fixtures/caffe/tiny_v2.caffemodel`;
const results: Record<string, Run> = {};
// Unmeasured warm-up: the first run in a fresh checkout also type-checks and caches the modules.
await run(["convert", model, "--prototxt", await writePrototxt(1), "-o", `${out}/warmup.cvp`]);
for (const layers of [1, n]) {
  const proto = await writePrototxt(layers);
  const cvp = `${out}/relu_${layers}.cvp`;
  results[`convert ${layers}`] = await run(["convert", model, "--prototxt", proto, "-o", cvp], cvp);
  if (inspect) results[`inspect ${layers}`] = await run(["inspect", model, "--prototxt", proto]);
}
const text = (await Deno.stat(`${out}/relu_${n}.prototxt`)).size;
console.log(`prototxt: ${n} layers, ${text} bytes (${(text / n).toFixed(1)} bytes per layer)`);
for (const what of inspect ? ["convert", "inspect"] : ["convert"]) {
  const base = results[`${what} 1`], big = results[`${what} ${n}`];
  const perLayer = ((big.kb - base.kb) * 1024) / (n - 1);
  console.log(
    `${what}: 1 layer ${base.wall} s ${(base.kb / 1024).toFixed(0)} MB; ${n} layers ${big.wall} s ` +
      `${(big.kb / 1024).toFixed(0)} MB; ${perLayer.toFixed(0)} bytes of peak RSS per layer above 1 layer` +
      (big.sha ? `; sha256 ${big.sha}` : ""),
  );
}
