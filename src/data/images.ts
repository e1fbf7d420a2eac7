/**
 * Folders of JPEG and PNG images, decoded by `jpeg-js` and `pngjs` (pure JavaScript, loaded only when an image is
 * read). Labels come from sub-folder names (`DATA/cat/1.jpg`), sorted, or matched against a class-names labels file,
 * or from a `NAME LABEL` / per-line labels file for a flat folder. Files are read in sorted path order.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { ConvpressError } from "../errors.ts";
import { labelFor, type Labels } from "./labels.ts";
import type { Dataset, Sample } from "./types.ts";

const IMAGE = /\.(jpe?g|png)$/i;

/** Decodes a JPEG or PNG to planar pixels: [3, H, W] RGB (alpha dropped) or [1, H, W] for gray PNGs. */
export async function decodeImage(bytes: Uint8Array, file: string): Promise<{ data: Float32Array; shape: number[] }> {
  let rgba: Uint8Array, w: number, h: number, gray = false;
  try {
    if (bytes[0] === 0x89 && bytes[1] === 0x50) {
      const { PNG } = await import("pngjs");
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      rgba = png.data;
      w = png.width;
      h = png.height;
      // colorType 0 and 4 are gray (with or without alpha); pngjs expands them to RGBA.
      gray = (png as unknown as { colorType?: number }).colorType === 0 ||
        (png as unknown as { colorType?: number }).colorType === 4;
    } else if (bytes[0] === 0xff && bytes[1] === 0xd8) {
      const jpeg = (await import("jpeg-js")).default;
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
      rgba = img.data;
      w = img.width;
      h = img.height;
    } else throw new Error("neither a PNG nor a JPEG signature");
  } catch (e) {
    throw new ConvpressError("bad_format", `Cannot decode image '${file}': ${(e as Error).message}`, {
      file,
      cause: e,
    });
  }
  const c = gray ? 1 : 3;
  const data = new Float32Array(c * h * w);
  for (let i = 0; i < h * w; i++) for (let k = 0; k < c; k++) data[k * h * w + i] = rgba[i * 4 + k];
  return { data, shape: [c, h, w] };
}

async function listImages(root: string, rel = ""): Promise<string[]> {
  const out: string[] = [];
  const dir = rel ? `${root}/${rel}` : root;
  for await (const e of Deno.readDir(dir)) {
    const p = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listImages(root, p));
    else if (e.isFile && IMAGE.test(e.name)) out.push(p);
  }
  return out.sort();
}

/** An image folder as a data set. */
export async function imageFolderDataset(root: string, labels?: Labels): Promise<Dataset> {
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
  return {
    kind: "image folder",
    pixels: true,
    size: files.length,
    classes,
    async *samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < files.length; i++) {
        const f = files[i];
        const img = await decodeImage(await Deno.readFile(`${root}/${f}`), `${root}/${f}`);
        const label = byFolder ? byFolder.get(f.split("/")[0]) : labelFor(labels, i, f);
        yield { ...img, label, id: f };
      }
    },
  };
}
