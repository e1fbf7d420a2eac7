/**
 * Folders of JPEG and PNG images. Decoding is done by `sharp` (libvips with libjpeg-turbo and libpng; its native
 * binaries come as npm packages, `@img/sharp-linux-x64` and friends, so nothing is fetched outside the registry).
 * It decodes as OpenCV and Caffe do (the same libjpeg-turbo decoder), about 10x faster than JavaScript, and off the
 * main thread (libuv's pool), so a folder is read ahead while the model computes. Where sharp cannot load, the pure
 * JavaScript `jpeg-js` and `pngjs` take over (slower, and jpeg-js's pixels differ slightly from libjpeg's).
 *
 * Labels come from sub-folder names (`DATA/cat/1.jpg`), sorted, or matched against a class-names labels file; for a
 * flat folder, from a `NAME LABEL` / per-line labels file, or from a synset-keyed class list (`synset_words.txt`)
 * when files are named `nXXXXXXXX_*.JPEG`. Symbolic links to images and folders are followed. Files are read in
 * sorted path order.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ConvpressError } from "../errors.ts";
import { labelFor, type Labels } from "./labels.ts";
import { makePixelPreprocessor, type Pixels8, planar, type PreprocessOptions } from "./preprocess.ts";
import type { Dataset, Sample } from "./types.ts";

const IMAGE = /\.(jpe?g|png)$/i;
/** Images decoded ahead of the consumer. */
const READ_AHEAD = 16;

type Sharp = typeof import("sharp");
let sharpLoading: Promise<Sharp | undefined> | undefined;

/** sharp, or undefined when its native binding cannot start (then the JavaScript decoders are used). */
export function loadSharp(): Promise<Sharp | undefined> {
  sharpLoading ??= (async () => {
    try {
      if (Deno.env.get("CONVPRESS_IMAGE_DECODER") === "js") return undefined;
    } catch {
      // No env permission: use sharp.
    }
    try {
      const m = await import("sharp");
      return ((m as { default?: Sharp }).default ?? m) as Sharp;
    } catch {
      return undefined;
    }
  })();
  return sharpLoading;
}

/** Which decoder {@link decodeImage} uses: "sharp" or "jpeg-js/pngjs". */
export async function imageDecoder(): Promise<string> {
  return (await loadSharp()) ? "sharp" : "jpeg-js/pngjs";
}

/** Decodes a JPEG or PNG to planar pixels: [3, H, W] RGB (alpha dropped) or [1, H, W] for gray images. */
export async function decodeImage(
  bytes: Uint8Array,
  file: string,
): Promise<{ data: Float32Array; shape: number[]; bytes: true }> {
  return planar(await decodePixels(bytes, file));
}

/** Decodes a JPEG or PNG to its 8-bit interleaved pixels, as the decoder gives them. */
export async function decodePixels(bytes: Uint8Array, file: string): Promise<Pixels8> {
  if (!(bytes[0] === 0x89 && bytes[1] === 0x50) && !(bytes[0] === 0xff && bytes[1] === 0xd8)) {
    throw new ConvpressError("bad_format", `Cannot decode image '${file}': neither a PNG nor a JPEG signature`, {
      file,
      offset: 0,
    });
  }
  const sharp = await loadSharp();
  if (sharp) {
    try {
      const { data, info } = await sharp(bytes, { failOn: "error", ignoreIcc: true }).raw().toBuffer({
        resolveWithObject: true,
      });
      const px = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return { px, width: info.width, height: info.height, channels: info.channels };
    } catch (e) {
      throw new ConvpressError("bad_format", `Cannot decode image '${file}': ${(e as Error).message}`, {
        file,
        cause: e,
      });
    }
  }
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) {
      const { PNG } = await import("pngjs");
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      // colorType 0 and 4 are gray (with or without alpha); pngjs expands them to RGBA.
      const colorType = (png as unknown as { colorType?: number }).colorType;
      return {
        px: png.data,
        width: png.width,
        height: png.height,
        channels: 4,
        gray: colorType === 0 || colorType === 4,
      };
    }
    const jpeg = (await import("jpeg-js")).default;
    const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
    return { px: img.data, width: img.width, height: img.height, channels: 4 };
  } catch (e) {
    throw new ConvpressError("bad_format", `Cannot decode image '${file}': ${(e as Error).message}`, {
      file,
      cause: e,
    });
  }
}

/** Image paths under `root`, relative, sorted; symbolic links to files and folders are followed (each folder once). */
async function listImages(root: string, rel = "", seen = new Set<string>()): Promise<string[]> {
  const out: string[] = [];
  const dir = rel ? `${root}/${rel}` : root;
  const real = await Deno.realPath(dir).catch(() => dir);
  if (seen.has(real)) return out;
  seen.add(real);
  for await (const e of Deno.readDir(dir)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    let isDir = e.isDirectory, isFile = e.isFile;
    if (e.isSymlink) {
      const st = await Deno.stat(`${root}/${p}`).catch(() => undefined); // a dangling link is skipped
      isDir = st?.isDirectory ?? false;
      isFile = st?.isFile ?? false;
    }
    if (isDir) out.push(...await listImages(root, p, seen));
    else if (isFile && IMAGE.test(e.name)) out.push(p);
  }
  return out.sort();
}

const SYNSET = /^n\d{8}$/;
const SYNSET_FILE = /^(n\d{8})[_.]/;

/**
 * Labels of a flat folder from a class-names file: by the synset a file name starts with (`n01440764_tench.JPEG`)
 * when the file's lines start with synsets; otherwise an error, never a silent "0 labelled".
 */
function flatClassLabels(root: string, files: string[], labels: Labels & { kind: "classes" }, path: string) {
  const bySynset = new Map(labels.keys.map((k, i) => [k, i]));
  const named = files.filter((f) => SYNSET_FILE.test(f.split("/").pop()!));
  if (labels.keys.every((k) => SYNSET.test(k)) && named.length === files.length) {
    const out = new Map<string, number>();
    for (const f of files) {
      const syn = f.split("/").pop()!.match(SYNSET_FILE)![1];
      const i = bySynset.get(syn);
      if (i === undefined) {
        throw new ConvpressError(
          "bad_format",
          `Image '${root}/${f}' has synset ${syn}, which labels file '${path}' lacks`,
          {
            file: `${root}/${f}`,
          },
        );
      }
      out.set(f, i);
    }
    return out;
  }
  const why = named.length
    ? `its lines do not start with synsets (nXXXXXXXX), so the synset-named images cannot be matched to them`
    : `a class-names file labels sub-folders, and the images are not named by synset (nXXXXXXXX_...)`;
  throw new ConvpressError(
    "usage",
    `Labels file '${path}' names ${labels.classes.length} classes, but folder '${root}' is flat and ${why}: give a ` +
      `class list whose lines start with the synset (synset_words.txt), "FILE LABEL" lines, or one label per image`,
    { file: path },
  );
}

/** An image folder as a data set. */
export async function imageFolderDataset(root: string, labels?: Labels, labelsPath = "labels"): Promise<Dataset> {
  const files = await listImages(root);
  if (!files.length) {
    throw new ConvpressError("bad_format", `Folder '${root}' holds no JPEG or PNG images`, { file: root });
  }
  const folders = [...new Set(files.filter((f) => f.includes("/")).map((f) => f.split("/")[0]))].sort();
  let classes: string[] | undefined;
  let byFolder: Map<string, number> | undefined;
  if (folders.length && files.every((f) => f.includes("/"))) {
    if (labels?.kind === "classes") {
      classes = labels.classes;
      byFolder = new Map(labels.keys.map((k, i) => [k, i]));
      const unknown = folders.filter((f) => !byFolder!.has(f));
      if (unknown.length) {
        throw new ConvpressError("bad_format", `Folders ${unknown.join(", ")} are not in the labels file`, {
          file: root,
        });
      }
    } else if (folders.every((f) => /^\d+$/.test(f))) {
      byFolder = new Map(folders.map((f) => [f, Number(f)]));
    } else {
      classes = folders;
      byFolder = new Map(folders.map((f, i) => [f, i]));
    }
  }
  const byFile = !byFolder && labels?.kind === "classes" ? flatClassLabels(root, files, labels, labelsPath) : undefined;
  if (byFile) classes = labels!.kind === "classes" ? labels!.classes : undefined;
  const labelOf = (i: number) => {
    const f = files[i];
    return byFolder ? byFolder.get(f.split("/")[0]) : byFile ? byFile.get(f) : labelFor(labels, i, f);
  };
  return {
    kind: "image folder",
    pixels: true,
    size: files.length,
    classes,
    async *samples(): AsyncGenerator<Sample> {
      // Reads and decodes run READ_AHEAD images ahead (sharp decodes off the main thread), so they overlap the
      // model's arithmetic in the consumer.
      const decode = async (f: string) => decodeImage(await Deno.readFile(`${root}/${f}`), `${root}/${f}`);
      const queue: Promise<{ data: Float32Array; shape: number[]; bytes: true }>[] = [];
      let next = 0;
      const fill = () => {
        while (next < files.length && queue.length < READ_AHEAD) {
          const p = decode(files[next++]);
          p.catch(() => {}); // awaited in order below
          queue.push(p);
        }
      };
      for (let i = 0; i < files.length; i++) {
        fill();
        const img = await queue.shift()!;
        yield { ...img, label: labelOf(i), id: files[i] };
      }
    },
    prepared(opts: PreprocessOptions, input: number[], limit: number): AsyncIterable<Sample> {
      return preparedOnWorker(root, files.slice(0, limit), opts, input, labelOf);
    },
  };
}

/** Model inputs queued from the Worker ahead of the consumer (each about 0.6 MB for a 224x224 input). */
const PREPARED_AHEAD = 32;

/**
 * The images `files` of `root`, read, decoded and preprocessed on a Worker (./image_worker.ts) while the caller
 * computes: in a process that runs the model on the main thread (ONNX Runtime's `run` blocks it), this work would
 * otherwise wait for each batch. Where no Worker can start, the same work runs here.
 */
export async function* preparedOnWorker(
  root: string,
  files: string[],
  opts: PreprocessOptions,
  input: number[],
  labelOf: (i: number) => number | undefined,
): AsyncGenerator<Sample> {
  let worker: Worker | undefined;
  try {
    worker = new Worker(new URL("./image_worker.ts", import.meta.url).href, { type: "module" });
  } catch {
    worker = undefined;
  }
  if (!worker) {
    const prep = makePixelPreprocessor(opts, input);
    for (let i = 0; i < files.length; i++) {
      const path = `${root}/${files[i]}`;
      const px = await decodePixels(await Deno.readFile(path), path);
      yield { data: prep(px, files[i]), shape: input, label: labelOf(i), id: files[i] };
    }
    return;
  }
  const ready: Float32Array[] = [];
  let failure: ConvpressError | undefined;
  let wake: (() => void) | undefined;
  worker.onmessage = (e: MessageEvent) => {
    const m = e.data;
    if (m.type === "input") ready.push(m.data);
    else failure = new ConvpressError(m.code, m.message, { file: m.file });
    wake?.();
  };
  worker.onerror = (e: ErrorEvent) => {
    e.preventDefault();
    failure = new ConvpressError("io", `Image decoding worker failed: ${e.message}`, { file: root });
    wake?.();
  };
  try {
    worker.postMessage({ type: "start", root, files, opts, input });
    worker.postMessage({ type: "credit", n: PREPARED_AHEAD });
    for (let i = 0; i < files.length; i++) {
      while (!ready.length && !failure) await new Promise<void>((r) => wake = r);
      if (failure) throw failure;
      worker.postMessage({ type: "credit", n: 1 });
      yield { data: ready.shift()!, shape: input, label: labelOf(i), id: files[i] };
    }
  } finally {
    worker.terminate();
  }
}
