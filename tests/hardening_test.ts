/**
 * One test per item of the hardening issue (14), each with crafted input made here: confined paths, one-line errors
 * for every crash path and output-side failure, validated models, one `.cvp` validation for inspect and decode,
 * errors that name the input and cannot forge terminal lines, no output over an input, prototxt scale, reproducible
 * bytes, least privilege. Signals are in signal_test.ts, the fuzzing in fuzz_test.ts.
 */
import { assert, removeOnExit, ROOT, runCli } from "./helpers.ts";
import { hasControl, listTree, runMain } from "./hardening_helpers.ts";
import { joinCvp, splitCvp } from "./cvp_edit.ts";
import { convert } from "../src/app/convert.ts";
import { layerStream, type ModelStream } from "../src/model/types.ts";
import { Tensor } from "../src/model/tensor.ts";
import { writeOnnx } from "../formats/onnx/writer.ts";
import { MemorySink } from "../src/bytes/byte_sink.ts";
import { endTar, writeTarEntry } from "../src/bytes/tar.ts";
import { KIND } from "../formats/cvp/frame.ts";

const CAFFE = `${ROOT}/fixtures/caffe/tiny_v2.caffemodel`;
const PROTOTXT = `${ROOT}/fixtures/caffe/tiny.prototxt`;

async function work(): Promise<string> {
  const d = await Deno.makeTempDir({ prefix: "convpress-hardening-" });
  removeOnExit(d);
  return d;
}

/** Runs the CLI in this process with its own temp folder; asserts a one-line error with `code` and no leftovers. */
async function refused(args: string[], code: number, match: RegExp, watch: string[] = []): Promise<string> {
  const tmp = await Deno.makeTempDir({ prefix: "convpress-hardening-tmp-" });
  try {
    const before = watch.map((d) => listTree(d).join(","));
    const r = await runMain(args, tmp);
    const lines = r.stderr.split("\n");
    assert(r.code === code, `${args.join(" ")}: exit ${r.code}, expected ${code}: ${r.stderr}`);
    assert(lines.length === 1, `${args.join(" ")}: stderr is ${lines.length} lines: ${r.stderr}`);
    assert(match.test(lines[0]), `${args.join(" ")}: '${lines[0]}' does not match ${match}`);
    assert(listTree(tmp).length === 0, `${args.join(" ")}: left ${listTree(tmp)} in the temp folder`);
    watch.forEach((d, i) => {
      const now = listTree(d).join(",");
      assert(now === before[i], `${args.join(" ")}: ${d} changed from [${before[i]}] to [${now}]`);
    });
    return lines[0];
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** A one-FC model (n inputs, n outputs, seeded weights) as a stream, for outputs of a chosen size. */
function fcModel(n: number, name = "fc"): ModelStream {
  const w = new Float32Array(n * n).map((_, i) => Math.sin(i));
  const layers = [{
    name: "fc1",
    op: "FC" as const,
    attrs: {},
    inputs: ["data"],
    outputs: ["out"],
    params: {
      weight: Tensor.fromFloat32("fc1.weight", [n, n], w),
      bias: Tensor.fromFloat32("fc1.bias", [n], new Float32Array(n)),
    },
  }];
  async function* gen() {
    yield* layers;
  }
  return {
    header: {
      name,
      sourceFormat: "onnx",
      inputs: [{ name: "data", dtype: "float32", shape: [1, n] }],
      outputs: [{ name: "out", dtype: "float32", shape: [1, n] }],
      metadata: {},
    },
    layers: layerStream(gen()),
  };
}

async function tfjsModel(dir: string): Promise<string> {
  await convert(CAFFE, `${dir}/tfjs`, { to: "tfjs" });
  return `${dir}/tfjs`;
}

async function tarOf(files: [string, Uint8Array][]): Promise<Uint8Array> {
  const sink = new MemorySink();
  for (const [name, b] of files) await writeTarEntry(sink, name, b.length, [b]);
  await endTar(sink);
  return sink.bytes();
}

// ---- 1. paths stay in the model's folder ----------------------------------------------------------------------

Deno.test("1: TF.js weight paths, ONNX external data and tar entries cannot leave the model's folder", async () => {
  const d = await work();
  const model = await tfjsModel(d);
  const json = JSON.parse(await Deno.readTextFile(`${model}/model.json`));
  const shard = json.weightsManifest[0].paths[0];
  const secret = `${d}/secret.bin`;
  await Deno.writeFile(secret, await Deno.readFile(`${model}/${shard}`));
  const out = `${d}/out`;
  await Deno.mkdir(out);

  // ../ in the manifest, from a folder.
  json.weightsManifest[0].paths = [`../secret.bin`];
  await Deno.writeTextFile(`${model}/model.json`, JSON.stringify(json));
  await refused(["convert", model, "-o", `${out}/x.onnx`], 1, /shard '\.\.\/secret\.bin'.*leads out/, [out]);
  // An absolute path.
  json.weightsManifest[0].paths = [secret];
  await Deno.writeTextFile(`${model}/model.json`, JSON.stringify(json));
  await refused(["convert", model, "-o", `${out}/x.onnx`], 1, /absolute path/, [out]);
  // A symlink inside the folder that leads out of it.
  await Deno.symlink(secret, `${model}/link.bin`);
  json.weightsManifest[0].paths = ["link.bin"];
  await Deno.writeTextFile(`${model}/model.json`, JSON.stringify(json));
  await refused(["convert", model, "-o", `${out}/x.onnx`], 1, /'link\.bin'.*outside the model's folder/, [out]);

  // The same manifest in a tar on stdin, and a tar entry that climbs out.
  json.weightsManifest[0].paths = ["../../../../etc/passwd"];
  const tar = await tarOf([[shard, await Deno.readFile(secret)], [
    "model.json",
    new TextEncoder().encode(JSON.stringify(json)),
  ]]);
  let r = await runCli(["convert", "--from", "tfjs", "-", "-o", `${out}/x.onnx`], tar);
  assert(r.code === 1 && /etc\/passwd.*leads out/.test(r.stderr) && r.stderr.trim().split("\n").length === 1, r.stderr);
  const evil = await tarOf([["../evil.bin", new Uint8Array(4)], ["model.json", new TextEncoder().encode("{}")]]);
  r = await runCli(["convert", "--from", "tfjs", "-", "-o", `${out}/x.onnx`], evil);
  assert(r.code === 1 && /Tar entry '\.\.\/evil\.bin' leads out/.test(r.stderr), r.stderr);
  assert(listTree(out).length === 0, `left ${listTree(out)}`);

  // ONNX external data through a symlink out of the folder.
  const onnxDir = `${d}/onnx`;
  await Deno.mkdir(onnxDir);
  await convert(CAFFE, `${onnxDir}/m.onnx`, { to: "onnx", externalData: true, externalDataThreshold: 16 });
  const data = `${onnxDir}/m.onnx.data`;
  await Deno.rename(data, `${d}/outside.data`);
  await Deno.symlink(`${d}/outside.data`, data);
  await refused(["convert", `${onnxDir}/m.onnx`, "-o", `${out}/y.cvp`], 1, /external data 'm\.onnx\.data'.*outside/, [
    out,
  ]);
});

// ---- 2. crash paths become one-line errors ---------------------------------------------------------------------

async function sampleCvp(dir: string): Promise<string> {
  const p = `${dir}/m.cvp`;
  await convert(CAFFE, p, { to: "cvp" });
  return p;
}

Deno.test("2: damaged .cvp trailer and index, deep JSON, sparse records without gaps, deep prototxt: one line, exit 1", async () => {
  const d = await work();
  const cvp = await sampleCvp(d);
  const bytes = await Deno.readFile(cvp);
  const recs = splitCvp(bytes);
  assert(joinCvp(recs).every((b, i) => b === bytes[i]), "the record editor does not round-trip");
  const trailer = recs.length - 1;
  assert(recs[trailer].kind === KIND.trailer);

  // Trailer metadata damaged after its CRC was computed: a checksum error, not a SyntaxError.
  const text = JSON.stringify(recs[trailer].meta);
  const joined = joinCvp(recs);
  const at = new TextDecoder().decode(joined).lastIndexOf(text.slice(0, 20));
  const damaged = joined.slice();
  damaged[at + 2] ^= 0x20;
  await Deno.writeFile(`${d}/t.cvp`, damaged);
  for (const cmd of [["inspect", `${d}/t.cvp`], ["convert", `${d}/t.cvp`, "-o", `${d}/t.onnx`]]) {
    await refused(cmd, 1, /t\.cvp.*(CRC|checksum)/i);
  }
  // Trailer metadata that is not JSON, with a right CRC.
  await Deno.writeFile(`${d}/j.cvp`, joinCvp(recs, { rawMeta: { [trailer]: '{"layers": [' } }));
  await refused(["convert", `${d}/j.cvp`, "-o", `${d}/j.onnx`], 1, /j\.cvp.*bad metadata JSON/);
  // JSON nested 10,000 deep in a layer's attributes.
  const li = recs.findIndex((r) => r.kind === KIND.layer);
  const deep = JSON.stringify({ ...recs[li].meta, attrs: {} }).replace(
    '"attrs":{}',
    `"attrs":{"x":${"[".repeat(10000)}${"]".repeat(10000)}}`,
  );
  await Deno.writeFile(`${d}/deep.cvp`, joinCvp(recs, { rawMeta: { [li]: deep } }));
  await refused(["inspect", `${d}/deep.cvp`], 1, /deep\.cvp.*nests deeper than 64/);
  await refused(["convert", `${d}/deep.cvp`, "-o", `${d}/deep.onnx`], 1, /nests deeper/);
  // A sparse clustered record without its gap stream.
  const ti = recs.findIndex((r) => r.kind === KIND.tensor && (r.meta.shape as number[]).length === 4);
  const sparse = recs.map((r, i) =>
    i === ti
      ? {
        ...r,
        meta: {
          ...r.meta,
          encoding: "cluster-sparse",
          k: 2,
          repr: "fp16",
          gapBits: 4,
          entries: 1,
          symbols: { coding: "packed", bytes: 1 },
        },
      }
      : r
  );
  await Deno.writeFile(`${d}/sparse.cvp`, joinCvp(sparse));
  await refused(["inspect", `${d}/sparse.cvp`], 1, /sparse\.cvp.*bad symbol stream/);

  // A prototxt nested 5,000 braces deep.
  await Deno.writeTextFile(`${d}/deep.prototxt`, `name: "x"\n${"layer { ".repeat(5000)}${"} ".repeat(5000)}`);
  await refused(
    ["convert", CAFFE, "--prototxt", `${d}/deep.prototxt`, "-o", `${d}/p.onnx`],
    1,
    /deep\.prototxt.*nest deeper than 100/,
  );
});

/** Mounts a tmpfs at `dir` (`ro` for read-only); false when this process may not mount. */
async function mount(dir: string, options: string): Promise<boolean> {
  await Deno.mkdir(dir, { recursive: true });
  const r = await new Deno.Command("mount", { args: ["-t", "tmpfs", "-o", options, "tmpfs", dir], stderr: "null" })
    .output().catch(() => undefined);
  return r?.code === 0;
}

async function umount(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: [dir] }).output().catch(() => undefined);
}

const canMount = await (async () => {
  const d = await Deno.makeTempDir();
  const ok = await mount(`${d}/m`, "size=64k");
  if (ok) await umount(`${d}/m`);
  await Deno.remove(d, { recursive: true });
  return ok;
})();

Deno.test("2: output-side failures are one line naming the path and cause, exit 1, nothing left", async () => {
  const d = await work();
  const cvp = await sampleCvp(d);
  await refused(
    ["convert", cvp, "-o", `${d}/missing/x.onnx`],
    1,
    /Cannot write '.*missing\/x\.onnx': its folder .* does not exist/,
  );
  await Deno.mkdir(`${d}/dir.onnx`);
  await refused(
    ["convert", cvp, "-o", `${d}/dir.onnx`, "--to", "onnx"],
    1,
    /Cannot write '.*dir\.onnx': it is a folder/,
    [d],
  );
  await refused(
    ["convert", cvp, "-o", `${d}/x.caffemodel`, "--prototxt-out", `${d}/nope/x.prototxt`],
    1,
    /Cannot write '.*nope\/x\.prototxt': its folder/,
    [d],
  );
  await refused(
    ["compress", cvp, "-o", `${d}/c.cvp`, "--bits", "4", "--report-html", `${d}/nope/r.html`],
    1,
    /Cannot write '.*nope\/r\.html': its folder/,
    [d],
  );
  // A full disk on stdout.
  const sh = await new Deno.Command("sh", {
    args: [
      "-c",
      `"${Deno.execPath()}" run --allow-read --allow-write "${ROOT}/main.ts" convert "${cvp}" -o - --to onnx > /dev/full`,
    ],
    stderr: "piped",
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const err = new TextDecoder().decode(sh.stderr).trim();
  assert(sh.code === 1 && /Cannot write '-': no space left on the device/.test(err) && !err.includes("\n"), err);
});

Deno.test({
  name: `2: a read-only file system and a full disk (tmpfs) are one-line errors that leave nothing${
    canMount ? "" : " (skipped: mounting a tmpfs needs root)"
  }`,
  ignore: !canMount,
  fn: async () => {
    const d = await work();
    const cvp = await sampleCvp(d);
    const ro = `${d}/ro`, small = `${d}/small`;
    assert(await mount(ro, "ro,size=64k"));
    assert(await mount(small, "size=64k"));
    try {
      await refused(
        ["convert", cvp, "-o", `${ro}/x.onnx`],
        1,
        /Cannot write '.*ro\/x\.onnx': the file system is read-only/,
      );
      await refused(
        ["convert", cvp, "-o", `${ro}/tfjs`, "--to", "tfjs"],
        1,
        /Cannot write '.*ro\/tfjs': the file system is read-only/,
      );
      const big = `${d}/fc.onnx`; // 256 KB of weights: more than the 64 KB tmpfs holds
      await writeOnnx(fcModel(256), big);
      for (const to of ["onnx", "cvp", "caffe", "tfjs"]) {
        await refused(
          ["convert", big, "-o", `${small}/x.${to}`, "--to", to],
          1,
          /Cannot write .*no space left on the device/,
        );
        assert(listTree(small).length === 0, `${to}: left ${listTree(small)} on the full disk`);
      }
    } finally {
      await umount(ro);
      await umount(small);
    }
  },
});

// ---- 3. one registry of temporaries ----------------------------------------------------------------------------

Deno.test("3: every temporary is registered while it exists and removed after errors (stdin spools included)", async () => {
  const d = await work();
  const tmp = `${d}/tmp`;
  await Deno.mkdir(tmp);
  const model = await tfjsModel(d);
  const files: [string, Uint8Array][] = [];
  for (const f of listTree(model)) files.push([f, await Deno.readFile(`${model}/${f}`)]);
  // A tar on stdin spools into the temp folder; a conversion to stdout spools ONNX and TF.js there too. A model
  // that fails late (its only weight cut short) must leave none of them.
  const cut = files.map(([n, b]) => [n, n.endsWith(".bin") ? b.subarray(0, 8) : b] as [string, Uint8Array]);
  for (const to of ["onnx", "tfjs", "caffe"]) {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        `${ROOT}/main.ts`,
        "convert",
        "--from",
        "tfjs",
        "-",
        "-o",
        "-",
        "--to",
        to,
      ],
      stdin: "piped",
      stdout: "null",
      stderr: "piped",
      env: { DENO_NO_UPDATE_CHECK: "1", TMPDIR: tmp },
    }).spawn();
    const w = cmd.stdin.getWriter();
    await w.write(await tarOf(cut));
    await w.close();
    const out = await cmd.output();
    assert(out.code === 1, `${to}: exit ${out.code}: ${new TextDecoder().decode(out.stderr)}`);
    assert(listTree(tmp).length === 0, `${to}: left ${listTree(tmp)}`);
  }
  const { trackedTemporaries } = await import("../src/bytes/temp_files.ts");
  assert(trackedTemporaries().length === 0, `still tracked: ${trackedTemporaries()}`);
});

// ---- 4. invalid models are refused where the stream is built ---------------------------------------------------

Deno.test("4: invalid attributes and graphs are refused naming the layer and attribute", async () => {
  const d = await work();
  const proto = await Deno.readTextFile(PROTOTXT);
  const cases: [string, string, RegExp][] = [
    ["kernel_size: 3 }", "kernel_size: 3 stride: 0 }", /'conv1' \(Conv\): attribute strides \[0,0\]/],
    ["kernel_size: 3 }", "kernel_size: 3 stride: 1000000 }", /attribute strides \[1000000,1000000\]/],
    ["kernel_size: 3 }", "kernel_size: 3 dilation: 0 }", /attribute dilations \[0,0\]/],
    ["kernel_size: 3 }", "kernel_size: 3 group: 2 }", /'conv1' \(Conv\): attribute group 2/],
    ["dim: 5 dim: 5", "dim: -5 dim: 5", /input 'data' has dimension -5/],
    ["dim: 5 dim: 5", "dim: 2.5 dim: 5", /input 'data' has dimension 2\.5/],
    ["dim: 5 dim: 5", "dim: nan dim: 5", /input 'data' has dimension/],
    [
      'type: "Softmax"',
      'type: "Softmax" softmax_param { axis: 5 }',
      /'prob' \(Softmax\): attribute axis 5 is out of range/,
    ],
  ];
  for (const [from, to, match] of cases) {
    assert(proto.includes(from), from);
    await Deno.writeTextFile(`${d}/bad.prototxt`, proto.replace(from, to));
    await refused(["convert", CAFFE, "--prototxt", `${d}/bad.prototxt`, "-o", `${d}/x.onnx`], 1, match, [d]);
  }
  // ONNX graphs with a cycle and with a duplicate output, written without validation by the ONNX writer itself.
  const relu = (name: string, input: string, output: string) => ({
    name,
    op: "Relu" as const,
    attrs: {},
    inputs: [input],
    outputs: [output],
    params: {},
  });
  const graph = (layers: ReturnType<typeof relu>[], outputs: string[]): ModelStream => ({
    header: {
      name: "g",
      sourceFormat: "onnx",
      inputs: [{ name: "data", dtype: "float32", shape: [1, 4] }],
      outputs: outputs.map((name) => ({ name, dtype: "float32", shape: [1, 4] })),
      metadata: {},
    },
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  });
  await writeOnnx(graph([relu("a", "y", "x"), relu("b", "x", "y")], ["y"]), `${d}/cycle.onnx`);
  await refused(
    ["convert", `${d}/cycle.onnx`, "-o", `${d}/c.cvp`],
    1,
    /Layer 'a' \(Relu\): input 'y' is not defined before/,
  );
  await writeOnnx(graph([relu("a", "data", "x")], ["x", "x"]), `${d}/dup.onnx`);
  await refused(["convert", `${d}/dup.onnx`, "-o", `${d}/c.cvp`], 1, /graph output 'x' is listed twice/);
  await writeOnnx(graph([relu("a", "data", "x"), relu("b", "data", "x")], ["x"]), `${d}/twice.onnx`);
  await refused(["convert", `${d}/twice.onnx`, "-o", `${d}/c.cvp`], 1, /output 'x' is already the output of layer 'a'/);
  // A TF.js quantization min given as a string (the weights would become NaN).
  const model = await tfjsModel(d);
  const json = JSON.parse(await Deno.readTextFile(`${model}/model.json`));
  const w = json.weightsManifest[0].weights[0];
  w.quantization = { dtype: "uint8", scale: 0.1, min: "0.5", original_dtype: "float32" };
  await Deno.writeTextFile(`${model}/model.json`, JSON.stringify(json));
  await refused(["convert", model, "-o", `${d}/q.onnx`], 1, /quantization min "0\.5": it must be a finite number/);
});

// ---- 5. inspect and decode share one .cvp validation -----------------------------------------------------------

Deno.test("5: inspect refuses every structurally wrong .cvp that decode refuses", async () => {
  const d = await work();
  const recs = splitCvp(await Deno.readFile(await sampleCvp(d)));
  const ti = recs.findIndex((r) => r.kind === KIND.tensor);
  const trailer = recs.length - 1;
  const bad: [string, Uint8Array, RegExp][] = [
    ["footer offset 0", joinCvp(recs, { footerOffset: 0 }), /footer|index/i],
    ["data after the footer", joinCvp(recs, { trailing: new Uint8Array([1, 2, 3]) }), /footer|truncated|damaged/i],
    ["a wrong index entry", joinCvp(recs, { indexEntry: { at: 1, value: 13 } }), /index entry 1 does not match/],
    [
      "an unknown encoding",
      joinCvp(recs.map((r, i) => i === ti ? { ...r, meta: { ...r.meta, encoding: "zip" } } : r)),
      /unknown encoding 'zip'/,
    ],
    [
      "wrong counts",
      joinCvp(recs.map((r, i) => i === trailer ? { ...r, meta: { ...r.meta, layers: 99 } } : r)),
      /counts 99 layers/,
    ],
  ];
  for (const [what, bytes, match] of bad) {
    await Deno.writeFile(`${d}/bad.cvp`, bytes);
    const a = await refused(["inspect", `${d}/bad.cvp`], 1, match);
    const b = await refused(["convert", `${d}/bad.cvp`, "-o", `${d}/bad.onnx`], 1, match);
    assert(a.replace(/^convpress: /, "") !== "" && b !== "", what);
  }
});

// ---- 6. errors name the input and cannot forge terminal lines --------------------------------------------------

Deno.test("6: errors name the input file (`-` for a tar), read failures do not say Cannot write, names are escaped and cut", async () => {
  const d = await work();
  const cvp = await sampleCvp(d);
  const b = await Deno.readFile(cvp);
  b[b.length - 40] ^= 1; // inside the index body: a CRC error while reading
  await Deno.writeFile(`${d}/crc.cvp`, b);
  const line = await refused(["convert", `${d}/crc.cvp`, "-o", `${d}/crc.onnx`], 1, /crc\.cvp/);
  assert(!/Cannot write/.test(line), line);
  // A damaged tensor body read while the ONNX writer runs: a read error, not "Cannot write".
  const recs = splitCvp(await Deno.readFile(cvp));
  const ti = recs.findIndex((r) => r.kind === KIND.tensor);
  const joined = joinCvp(recs);
  const body = recs[ti].body;
  const at = joined.findIndex((_, i) => body.length > 8 && body.every((x, k) => joined[i + k] === x));
  joined[at + 3] ^= 0xff;
  await Deno.writeFile(`${d}/body.cvp`, joined);
  const l2 = await refused(["convert", `${d}/body.cvp`, "-o", `${d}/body.onnx`], 1, /body\.cvp.*body CRC mismatch/);
  assert(!/Cannot write/.test(l2), l2);
  // Tar errors name `-`, not the spool folder.
  const tar = await tarOf([["model.json", new TextEncoder().encode('{"modelTopology": 1')]]);
  const r = await runCli(["convert", "--from", "tfjs", "-", "-o", `${d}/t.onnx`], tar);
  assert(r.code === 1 && /-:model\.json|stdin|'-'/.test(r.stderr) && !/convpress-tfjs-/.test(r.stderr), r.stderr);
  // A layer name with ANSI escapes and newlines, and a 14 KB binary name.
  const recs2 = splitCvp(await Deno.readFile(cvp));
  const li = recs2.findIndex((x) => x.kind === KIND.layer);
  const evil = "a\x1b[2K\rconvpress: all good\nb" + "\u0007\u009b";
  const bin = Array.from({ length: 14000 }, (_, i) => String.fromCharCode(i % 31 === 0 ? 10 : 65 + (i % 26))).join("");
  for (const name of [evil, bin]) {
    const edited = recs2.map((x, i) => (i === li ? { ...x, meta: { ...x.meta, name, inputs: ["nope"] } } : x));
    await Deno.writeFile(`${d}/evil.cvp`, joinCvp(edited));
    const l = await refused(["convert", `${d}/evil.cvp`, "-o", `${d}/evil.onnx`], 1, /evil\.cvp/);
    assert(!hasControl(l), `raw control characters: ${JSON.stringify(l)}`);
    assert(l.length < 600, `${l.length} characters`);
  }
  // A valid model whose layer is named so: inspect's tables and compress's report print it escaped.
  await Deno.writeFile(
    `${d}/named.cvp`,
    joinCvp(recs2.map((x, i) => (i === li ? { ...x, meta: { ...x.meta, name: evil } } : x))),
  );
  await convert(`${d}/named.cvp`, `${d}/named.onnx`, { to: "onnx" });
  for (
    const args of [["inspect", `${d}/named.cvp`], ["inspect", `${d}/named.onnx`], [
      "compress",
      `${d}/named.cvp`,
      "-o",
      `${d}/c.cvp`,
      "--bits",
      "4",
    ]]
  ) {
    const out = await runMain(args);
    assert(out.code === 0, `${args.join(" ")}: ${out.stderr}`);
    assert(out.stdout.includes("\\x1b[2K"), `${args.join(" ")}: the name is not shown escaped`);
    assert(!hasControl(out.stdout + out.stderr, true), `${args.join(" ")} printed raw control characters`);
  }
});

// ---- 7. no output over an input --------------------------------------------------------------------------------

Deno.test("7: an output that is an input (same device and inode) is refused and the input stays intact", async () => {
  const d = await work();
  const onnx = `${d}/a.onnx`;
  await convert(CAFFE, onnx, { to: "onnx" });
  const before = await Deno.readFile(onnx);
  await refused(["convert", onnx, "-o", onnx], 2, /Output '.*a\.onnx' is the input/);
  await Deno.symlink(onnx, `${d}/alias.onnx`);
  await refused(["convert", onnx, "-o", `${d}/alias.onnx`], 2, /is the input/);
  assert((await Deno.readFile(onnx)).every((x, i) => x === before[i]), "the input changed");
  await Deno.copyFile(PROTOTXT, `${d}/p.prototxt`);
  await refused(
    ["convert", CAFFE, "--prototxt", `${d}/p.prototxt`, "-o", `${d}/b.caffemodel`, "--prototxt-out", `${d}/p.prototxt`],
    2,
    /Output '.*p\.prototxt' is the input/,
  );
  // The deploy prototxt written beside a caffemodel by default would land on the input prototxt.
  await refused(
    ["convert", CAFFE, "--prototxt", `${d}/p.prototxt`, "-o", `${d}/p.caffemodel`],
    2,
    /'.*p\.prototxt' is the input/,
  );
  assert((await Deno.readTextFile(`${d}/p.prototxt`)) === (await Deno.readTextFile(PROTOTXT)), "the prototxt changed");
  const model = await tfjsModel(d);
  const files = listTree(model);
  await refused(["convert", model, "-o", model, "--to", "tfjs"], 2, /is the input/);
  await refused(["convert", `${model}/model.json`, "-o", `${model}/model.json`, "--to", "tfjs"], 2, /is the input/);
  assert(listTree(model).join() === files.join(), "the TF.js folder changed");
  // Another model written over an existing TF.js folder leaves none of the old model's shards behind.
  const out = `${d}/over`;
  await convert(CAFFE, out, { to: "tfjs", shardSize: 64 });
  assert(listTree(out).filter((f) => f.endsWith(".bin")).length > 3, `${listTree(out)}`);
  const r = await runMain(["convert", CAFFE, "-o", out, "--to", "tfjs"]);
  assert(r.code === 0, r.stderr);
  assert(listTree(out).join() === "group1-shard1of1.bin,model.json", `stale shards: ${listTree(out)}`);
});

// ---- 8. prototxt scale ----------------------------------------------------------------------------------------

Deno.test("8: a 20,000-layer prototxt costs well under 1 KB per layer; the parser's limits are clear errors", async () => {
  const d = await work();
  const n = 20000;
  let text = 'name: "big"\ninput: "data"\ninput_shape { dim: 1 dim: 2 dim: 5 dim: 5 }\n';
  for (let i = 0, prev = "data"; i < n; i++, prev = `r${i - 1}`) {
    text += `layer {\n  name: "relu${i}"\n  type: "ReLU"\n  bottom: "${prev}"\n  top: "r${i}"\n}\n`;
  }
  await Deno.writeTextFile(`${d}/big.prototxt`, text);
  // Heap held by the open model stream (prototxt parsed, every layer built and planned), measured in a fresh process.
  const script = `${d}/measure.ts`;
  await Deno.writeTextFile(
    script,
    `import { openModel } from "${ROOT}/src/app/convert.ts";
const gc = (globalThis as unknown as { gc: () => void }).gc;
gc(); const before = Deno.memoryUsage().heapUsed;
const m = await openModel("${CAFFE}", { prototxt: "${d}/big.prototxt" });
gc(); const after = Deno.memoryUsage().heapUsed;
console.log(JSON.stringify({ perLayer: (after - before) / ${n}, layers: m.header.plan?.length }));`,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--config", `${ROOT}/deno.json`, "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  }).output();
  const res = JSON.parse(new TextDecoder().decode(out.stdout));
  console.log(`prototxt: ${Math.round(res.perLayer)} bytes of heap per layer held by the open model (${n} layers)`);
  assert(res.layers >= n && res.perLayer < 1024, JSON.stringify(res));
  await Deno.writeTextFile(`${d}/many.prototxt`, 'name: "x"\n' + "input_dim: 1\n".repeat(1_000_001));
  await refused(
    ["convert", CAFFE, "--prototxt", `${d}/many.prototxt`, "-o", `${d}/x.onnx`],
    1,
    /many\.prototxt: more than 1,000,000 fields \(the parser's limit\)/,
  );
  await Deno.writeTextFile(`${d}/deep.prototxt`, "layer { ".repeat(101) + "}".repeat(101));
  await refused(
    ["convert", CAFFE, "--prototxt", `${d}/deep.prototxt`, "-o", `${d}/x.onnx`],
    1,
    /nest deeper than 100 levels/,
  );
});

// ---- 9. reproducible outputs ----------------------------------------------------------------------------------

Deno.test("9: the same input gives the same bytes: a TF.js tar on stdin, a Caffe tar on stdout (mtime 0)", async () => {
  const d = await work();
  const model = await tfjsModel(d);
  const files: [string, Uint8Array][] = [];
  for (const f of listTree(model)) files.push([f, await Deno.readFile(`${model}/${f}`)]);
  const tar = await tarOf(files);
  const runs: Awaited<ReturnType<typeof runCli>>[] = [];
  for (let i = 0; i < 2; i++) {
    runs.push(await runCli(["convert", "--from", "tfjs", "-", "-o", "-", "--to", "onnx"], tar));
  }
  assert(runs.every((r) => r.code === 0), runs.map((r) => r.stderr).join());
  assert(runs[0].stdout.length > 0 && runs[0].stdout.every((x, i) => x === runs[1].stdout[i]), "two runs differ");
  assert(
    !new TextDecoder().decode(runs[0].stdout).includes("convpress-tfjs-"),
    "the model is named after the spool folder",
  );
  const caffe: Awaited<ReturnType<typeof runCli>>[] = [];
  for (let i = 0; i < 2; i++) {
    caffe.push(await runCli(["convert", CAFFE, "-o", "-", "--to", "caffe"]));
    if (i === 0) await new Promise((r) => setTimeout(r, 1100));
  }
  assert(caffe[0].code === 0 && caffe[0].stdout.every((x, i) => x === caffe[1].stdout[i]), "two Caffe tars differ");
  const mtime = new TextDecoder().decode(caffe[0].stdout.subarray(136, 147));
  assert(/^0+$/.test(mtime), `mtime ${mtime}`);
});

// ---- 10. least privilege and no network ------------------------------------------------------------------------

Deno.test("10: the CLI task grants only read and write, with the update check off, and convert, compress, eval work", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`)).tasks as Record<string, string>;
  const cli = tasks.convpress;
  assert(cli.startsWith("DENO_NO_UPDATE_CHECK=1 "), cli);
  assert(!/--allow-(env|sys|ffi|net|run|all)|-A\b/.test(cli) && /--allow-read --allow-write/.test(cli), cli);
  for (const [name, t] of Object.entries(tasks)) assert(t.includes("DENO_NO_UPDATE_CHECK=1"), `task ${name}: ${t}`);
  const d = await work();
  // runCli uses exactly the task's permissions.
  let r = await runCli(["convert", CAFFE, "-o", `${d}/a.onnx`]);
  assert(r.code === 0, r.stderr);
  r = await runCli(["compress", CAFFE, "-o", `${d}/a.cvp`, "--bits", "4", "--report-json", `${d}/r.json`]);
  assert(r.code === 0 && listTree(d).includes("r.json"), r.stderr);
  // eval on a .npy of random inputs for the tiny model (1x2x5x5), against itself as the reference.
  const x = new Float32Array(4 * 2 * 5 * 5).map((_, i) => Math.cos(i));
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 5, 5), }";
  const pad = 64 - ((10 + header.length + 1) % 64);
  const h = new TextEncoder().encode(header + " ".repeat(pad) + "\n");
  const npy = new Uint8Array(10 + h.length + x.byteLength);
  npy.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length & 0xff, h.length >> 8]);
  npy.set(h, 10);
  npy.set(new Uint8Array(x.buffer), 10 + h.length);
  await Deno.writeFile(`${d}/x.npy`, npy);
  r = await runCli([
    "eval",
    `${d}/a.cvp`,
    "--reference",
    CAFFE,
    "--data",
    `${d}/x.npy`,
    "--preprocess",
    "none",
  ]);
  assert(r.code === 0, `eval: ${r.stderr}`);
});
