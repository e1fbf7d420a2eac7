/**
 * Checks that imports run one way: down the layers of {@link LAYERS}, the one place the layer order is declared.
 * `deno task check` runs it (`deno run --allow-read tools/check_layers.ts`); it prints each import that points up
 * (or sideways between two format folders) and exits 1, or prints nothing and exits 0.
 *
 * A file belongs to the layer with the longest path prefix that matches it; a source file in no layer is an error
 * too, so a new folder has to be placed. Tests (`*_test.ts`, `tests/`, `fixtures/`, `testdata/`) may import anything and are not checked.
 *
 * @module
 */

/** One layer: the paths (a folder ends in `/`) it holds, and whether its folders must not import each other. */
export interface Layer {
  name: string;
  paths: string[];
  /** When true, a file in `<path>/<a>/` may not import a file in `<path>/<b>/` (formats stay apart). */
  apart?: boolean;
}

/** The layers, lowest first. A file may import its own layer and those before it, never one after it. */
export const LAYERS: readonly Layer[] = [
  { name: "base", paths: ["src/errors.ts", "src/progress.ts", "src/memory.ts"] },
  { name: "bytes", paths: ["src/bytes/"] },
  { name: "wire", paths: ["src/wire/"] },
  { name: "model", paths: ["src/model/", "src/ops/"] },
  { name: "data and numerics", paths: ["src/data/", "src/linalg/"] },
  { name: "formats", paths: ["formats/"], apart: true },
  { name: "format registry", paths: ["formats/registry.ts"] },
  { name: "application", paths: ["src/app/", "src/eval/", "src/compress/"] },
  { name: "entry points", paths: ["src/cli/", "main.ts", "mod.ts", "tasks/", "bench/", "web/", "tools/"] },
];

/** One import that breaks the order. */
export interface Violation {
  file: string;
  target: string;
  message: string;
}

const SOURCE = /\.(ts|tsx|js|mjs)$/;
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)["'](\.{1,2}\/[^"']+)["']/gm;

function isTest(path: string): boolean {
  return /(^|\/)(tests|fixtures|testdata)\//.test(path) || /_test\.(ts|tsx|js|mjs)$/.test(path);
}

/** The layer index and matched path of `file` (relative, `/`-separated), or undefined. */
export function layerOf(file: string, layers: readonly Layer[] = LAYERS): { index: number; path: string } | undefined {
  let best: { index: number; path: string } | undefined;
  layers.forEach((l, index) => {
    for (const p of l.paths) {
      const hit = p.endsWith("/") ? file.startsWith(p) : file === p;
      if (hit && (!best || p.length > best.path.length)) best = { index, path: p };
    }
  });
  return best;
}

function normalize(parts: string[]): string {
  const out: string[] = [];
  for (const p of parts) {
    if (p === "" || p === ".") continue;
    if (p === "..") out.pop();
    else out.push(p);
  }
  return out.join("/");
}

/** The relative imports of a source text, resolved against `file`'s folder. */
export function importsOf(file: string, text: string): string[] {
  const dir = file.split("/").slice(0, -1);
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT)) out.push(normalize([...dir, ...m[1].split("/")]));
  return out;
}

/** Checks `files` (relative path -> source text) against `layers`. */
export function checkSources(files: Map<string, string>, layers: readonly Layer[] = LAYERS): Violation[] {
  const bad: Violation[] = [];
  for (const [file, text] of files) {
    if (isTest(file)) continue;
    const from = layerOf(file, layers);
    if (!from) {
      bad.push({
        file,
        target: "",
        message: `${file} is in no layer: add its folder to LAYERS in tools/check_layers.ts`,
      });
      continue;
    }
    for (const target of importsOf(file, text)) {
      if (isTest(target)) {
        bad.push({ file, target, message: `${file} imports the test file ${target}` });
        continue;
      }
      const to = layerOf(target, layers);
      if (!to) continue; // outside the checked tree (e.g. ../shared); deno check reports missing files
      if (to.index > from.index) {
        bad.push({
          file,
          target,
          message: `${file} (${layers[from.index].name}) imports ${target} (${
            layers[to.index].name
          }), a layer above it`,
        });
      } else if (to.index === from.index && layers[to.index].apart && from.path === to.path) {
        const folder = (f: string) => f.slice(from.path.length).split("/")[0];
        if (folder(file) !== folder(target)) {
          bad.push({ file, target, message: `${file} imports ${target}: the folders of ${from.path} stay apart` });
        }
      }
    }
  }
  return bad;
}

async function walk(root: string, rel: string, out: Map<string, string>): Promise<void> {
  for await (const e of Deno.readDir(rel ? `${root}/${rel}` : root)) {
    const path = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory) {
      if (e.name.startsWith(".") || e.name === "node_modules" || path === "bench/out") continue;
      await walk(root, path, out);
    } else if (e.isFile && SOURCE.test(e.name)) {
      out.set(path, await Deno.readTextFile(`${root}/${path}`));
    }
  }
}

/** Checks every source file under `root`. */
export async function checkLayers(root: string, layers: readonly Layer[] = LAYERS): Promise<Violation[]> {
  const files = new Map<string, string>();
  await walk(root, "", files);
  return checkSources(files, layers);
}

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const bad = await checkLayers(root);
  for (const v of bad) console.error(v.message);
  if (bad.length) {
    console.error(`${bad.length} import(s) break the layer order (tools/check_layers.ts)`);
    Deno.exit(1);
  }
}
