/**
 * Checks made before a command reads anything: no output may be one of the inputs (same device and inode, so a
 * symlink or `./a.onnx` for `a.onnx` is caught too), a TF.js folder is not converted in place, and every output's
 * folder exists, so a run never fails late on a path it could have refused at once.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";

/** Paths a command reads and writes. `-` and undefined entries are skipped. */
export interface CommandPaths {
  inputs: (string | undefined)[];
  outputs: (string | undefined)[];
  /** Outputs that are folders the writer creates (a TF.js output folder): their parent need not exist either. */
  folders?: (string | undefined)[];
}

interface Identity {
  path: string;
  dev: number;
  ino: number;
}

async function identity(path: string): Promise<Identity | undefined> {
  try {
    const st = await Deno.stat(path);
    if (st.ino === null) return undefined;
    return { path, dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

function parentOf(path: string): string {
  const p = path.replace(/\/+$/, "");
  const i = p.lastIndexOf("/");
  return i < 0 ? "." : i === 0 ? "/" : p.slice(0, i);
}

/** The paths a path stands for: itself, plus its folder when it is a TF.js `model.json`. */
function expand(path: string): string[] {
  return /(^|\/)model\.json$/.test(path) ? [path, parentOf(path)] : [path];
}

/** Refuses outputs that resolve to an input, and outputs whose folder does not exist. */
export async function checkCommandPaths(paths: CommandPaths): Promise<void> {
  const ins: Identity[] = [];
  for (const p of paths.inputs) {
    if (p === undefined || p === "-") continue;
    for (const q of expand(p)) {
      const id = await identity(q);
      if (id) ins.push(id);
    }
  }
  const folders = new Set(paths.folders?.filter((p) => p !== undefined));
  for (const out of paths.outputs) {
    if (out === undefined) continue;
    if (out === "-") {
      // stdout redirected into an input file (`>> a.onnx`) would read what it writes.
      const st = await Deno.stat("/dev/stdout").catch(() => undefined);
      const same = st?.isFile && st.ino !== null && ins.find((i) => i.dev === st.dev && i.ino === st.ino);
      if (same) {
        throw new ConvpressError("usage", `Standard output is the input file '${same.path}': write elsewhere`, {
          file: "-",
        });
      }
      continue;
    }
    for (const q of expand(out)) {
      const id = await identity(q);
      const same = id && ins.find((i) => i.dev === id.dev && i.ino === id.ino);
      if (same) {
        const what = q === out ? `the input '${same.path}'` : `the folder of the input '${same.path}'`;
        throw new ConvpressError(
          "usage",
          `Output '${out}' is ${what}: converting in place would destroy the input; write elsewhere`,
          { file: out },
        );
      }
    }
    if (folders.has(out)) continue;
    const dir = parentOf(out);
    let st: Deno.FileInfo | undefined;
    try {
      st = await Deno.stat(dir);
    } catch {
      st = undefined;
    }
    if (!st) {
      throw new ConvpressError("io", `Cannot write '${out}': its folder '${dir}' does not exist`, { file: out });
    }
    if (!st.isDirectory) {
      throw new ConvpressError("io", `Cannot write '${out}': '${dir}' is not a folder`, { file: out });
    }
  }
}
