/**
 * Mutation fuzzing of every format through the CLI (run in this process): seeded, bounded, a few thousand cases.
 * For every case: no internal error (exit 70), stderr is exactly one line when the run fails and empty when it
 * succeeds, no file is left behind (neither beside the output nor in the temp folder), and a damaged `.cvp` that is
 * accepted decodes to the very tensors of the original (every byte of it is covered by a CRC), with inspect and
 * decode agreeing on which files are valid.
 */
import { assert, rng, ROOT } from "./helpers.ts";
import { emptyDir, hasControl, listTree, runMain } from "./hardening_helpers.ts";
import { convert, openModel } from "../src/app/convert.ts";
import { joinCvp, splitCvp } from "./cvp_edit.ts";

/** Cases per format (four formats); the total is reported by the test. */
const PER_FORMAT = 650;

type Mutator = (r: () => number, b: Uint8Array) => Uint8Array;

const JSON_CHARS = '0123456789,:[]{}"-.aeln ';

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

const mutators: Record<string, Mutator> = {
  flip(r, b) {
    const o = b.slice();
    for (let i = 0, n = 1 + Math.floor(r() * 4); i < n; i++) o[Math.floor(r() * o.length)] ^= 1 << Math.floor(r() * 8);
    return o;
  },
  byte(r, b) {
    const o = b.slice();
    for (let i = 0, n = 1 + Math.floor(r() * 3); i < n; i++) o[Math.floor(r() * o.length)] = Math.floor(r() * 256);
    return o;
  },
  truncate(r, b) {
    return b.slice(0, Math.floor(r() * b.length));
  },
  cut(r, b) {
    const at = Math.floor(r() * b.length), n = 1 + Math.floor(r() * 64);
    return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + n)]);
  },
  insert(r, b) {
    const at = Math.floor(r() * b.length);
    const junk = Array.from({ length: 1 + Math.floor(r() * 32) }, () => Math.floor(r() * 256));
    return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
  },
  duplicate(r, b) {
    const at = Math.floor(r() * b.length), n = 1 + Math.floor(r() * 256);
    return Uint8Array.from([...b.subarray(0, at + n), ...b.subarray(at, at + n), ...b.subarray(at + n)]);
  },
  /** A valid rewrite: one record's metadata re-serialized with other spacing and key order, CRCs made right. */
  respace(r, b) {
    const recs = splitCvp(b);
    const i = Math.floor(r() * recs.length);
    const keys = Object.keys(recs[i].meta).reverse();
    const text = JSON.stringify(
      Object.fromEntries(keys.map((k) => [k, recs[i].meta[k]])),
      null,
      1 + Math.floor(r() * 3),
    );
    return joinCvp(recs, { rawMeta: { [i]: text } });
  },
  json(r, b) {
    const o = b.slice();
    for (let i = 0, n = 1 + Math.floor(r() * 3); i < n; i++) {
      o[Math.floor(r() * o.length)] = JSON_CHARS.charCodeAt(Math.floor(r() * JSON_CHARS.length));
    }
    return o;
  },
};

/** Every layer's name, op and parameter bytes, as one comparable string. */
async function tensorsOf(path: string): Promise<string> {
  const m = await openModel(path, { format: "cvp" });
  const parts: string[] = [];
  try {
    for await (const l of m.layers) {
      parts.push(`${l.name}|${l.op}|${JSON.stringify(l.inputs)}|${JSON.stringify(l.outputs)}`);
      for (const [role, t] of Object.entries(l.params)) {
        const b = await t.bytes();
        let h = 0;
        for (const x of b) h = (Math.imul(h, 31) + x) >>> 0;
        parts.push(`${role}:${t.name}:${t.dtype}:${t.shape}:${b.length}:${h}`);
      }
    }
  } finally {
    m.close?.();
  }
  return parts.join("\n");
}

Deno.test("fuzz: thousands of damaged models in all four formats end cleanly or decode exactly", async () => {
  const base = await Deno.makeTempDir({ prefix: "convpress-fuzz-" });
  try {
    const seeds = `${base}/seeds`, inDir = `${base}/in`, outDir = `${base}/out`, tmp = `${base}/tmp`;
    for (const d of [seeds, inDir, outDir, tmp]) await Deno.mkdir(d);
    // The seed models, all made from the tiny Caffe fixture by convpress itself.
    const caffe = `${ROOT}/fixtures/caffe/tiny_v2.caffemodel`;
    await convert(caffe, `${seeds}/m.onnx`, { to: "onnx" });
    await convert(caffe, `${seeds}/m.cvp`, { to: "cvp" });
    await convert(caffe, `${seeds}/tfjs`, { to: "tfjs" });
    const original = await tensorsOf(`${seeds}/m.cvp`);
    const shard = listTree(`${seeds}/tfjs`).find((f) => f.endsWith(".bin"))!;
    const cases: { format: string; bytes: Uint8Array; mutators: string[]; file?: string }[] = [
      {
        format: "onnx",
        bytes: await Deno.readFile(`${seeds}/m.onnx`),
        mutators: ["flip", "byte", "truncate", "cut", "insert", "duplicate"],
      },
      {
        format: "caffe",
        bytes: await Deno.readFile(caffe),
        mutators: ["flip", "byte", "truncate", "cut", "insert", "duplicate"],
      },
      {
        format: "cvp",
        bytes: await Deno.readFile(`${seeds}/m.cvp`),
        mutators: ["flip", "byte", "truncate", "cut", "insert", "duplicate", "respace"],
      },
      {
        format: "tfjs",
        bytes: await Deno.readFile(`${seeds}/tfjs/model.json`),
        mutators: ["json", "json", "cut", "truncate"],
        file: "model.json",
      },
      {
        format: "tfjs",
        bytes: await Deno.readFile(`${seeds}/tfjs/${shard}`),
        mutators: ["truncate", "insert", "cut"],
        file: shard,
      },
    ];
    // Targets each seed converts to when undamaged (the tiny ONNX's Scale comes back as a pass-through Mul, which
    // Caffe and TF.js cannot express; the TF.js one has a Pad, which Caffe has not).
    const targets: Record<string, string[]> = {
      onnx: ["onnx", "cvp", "inspect"],
      caffe: ["onnx", "caffe", "tfjs", "cvp", "inspect"],
      tfjs: ["onnx", "tfjs", "cvp", "inspect"],
    };
    const counts = { cases: 0, clean: 0, accepted: 0, crashes: 0, cvpAccepted: 0, named: 0 };
    const unnamed: string[] = [];
    const r = rng(20261202);
    for (const c of cases) {
      const n = c.format === "tfjs" ? PER_FORMAT / 2 : PER_FORMAT;
      for (let i = 0; i < n; i++) {
        const how = pick(r, c.mutators);
        const bytes = mutators[how](r, c.bytes);
        let input: string;
        if (c.format === "tfjs") {
          emptyDir(inDir);
          await Deno.mkdir(`${inDir}/m`);
          for (const f of listTree(`${seeds}/tfjs`)) await Deno.copyFile(`${seeds}/tfjs/${f}`, `${inDir}/m/${f}`);
          await Deno.writeFile(`${inDir}/m/${c.file}`, bytes);
          input = `${inDir}/m`;
        } else {
          input = `${inDir}/m.${c.format === "caffe" ? "caffemodel" : c.format}`;
          await Deno.writeFile(input, bytes);
        }
        const runs: string[][] = c.format === "cvp"
          ? [["inspect", input], ["convert", input, "-o", `${outDir}/out.cvp`, "--to", "cvp"]]
          : [(() => {
            const t = pick(r, targets[c.format]);
            return t === "inspect" ? ["inspect", input] : ["convert", input, "-o", `${outDir}/out.${t}`, "--to", t];
          })()];
        const codes: number[] = [];
        for (const args of runs) {
          counts.cases++;
          const res = await runMain(args, tmp);
          const what = `${c.format} case ${i} (${how}, ${args.join(" ")})`;
          codes.push(res.code);
          if (res.code === 70) counts.crashes++;
          assert(res.code !== 70, `${what}: internal error\n${res.stderr}`);
          const lines = res.stderr === "" ? [] : res.stderr.split("\n");
          if (res.code === 0) {
            counts.accepted++;
            assert(lines.length === 0, `${what}: succeeded but printed ${res.stderr}`);
          } else {
            counts.clean++;
            assert(
              lines.length === 1 && lines[0].startsWith("convpress: "),
              `${what}: stderr is not one line: ${res.stderr}`,
            );
            assert(!hasControl(lines[0]), `${what}: raw control characters in ${lines[0]}`);
            // Every error names the file it concerns: the input, or for what the target cannot express, the output.
            if (lines[0].includes(input)) counts.named++;
            else if (!(args[0] === "convert" && res.code === 3 && lines[0].includes(args[3]))) unnamed.push(lines[0]);
            assert(listTree(outDir).length === 0, `${what}: left ${listTree(outDir)}`);
          }
          assert(listTree(tmp).length === 0, `${what}: left in the temp folder: ${listTree(tmp)}`);
          const stray = listTree(outDir).filter((f) =>
            f.endsWith(".tmp") || f.includes(".convpress-") || f.includes(".part")
          );
          assert(stray.length === 0, `${what}: left temporaries ${stray}`);
          if (c.format === "cvp" && args[0] === "convert" && res.code === 0) {
            counts.cvpAccepted++;
            const got = await tensorsOf(input);
            assert(got === original, `${what}: an accepted damaged .cvp decodes to other tensors`);
          }
          emptyDir(outDir);
        }
        if (c.format === "cvp") {
          assert(
            (codes[0] === 0) === (codes[1] === 0),
            `cvp case ${i} (${how}): inspect exit ${codes[0]}, decode exit ${codes[1]}`,
          );
        }
      }
    }
    console.log(
      `fuzz: ${counts.cases} runs, ${counts.clean} clean errors (${counts.named} naming the input), ${counts.accepted} accepted ` +
        `(${counts.cvpAccepted} accepted .cvp mutations, every one decoded to the original tensors), ${counts.crashes} crashes`,
    );
    assert(counts.cvpAccepted > 0, "no valid rewrite of the .cvp was decoded");
    assert(unnamed.length === 0, `${unnamed.length} errors do not name the input:\n${unnamed.slice(0, 5).join("\n")}`);
    assert(
      counts.cases >= 2500 && counts.clean > counts.cases / 3,
      `too few cases or refusals: ${JSON.stringify(counts)}`,
    );
  } finally {
    await Deno.remove(base, { recursive: true }).catch(() => {});
  }
});
