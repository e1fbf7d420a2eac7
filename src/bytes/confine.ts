/**
 * Confinement of files a model refers to (TF.js weight shards, ONNX external data) to the model's folder. The
 * reference is resolved with `Deno.realPath`, so a symlink that leads out of the folder is refused as surely as
 * `../../etc/passwd` or an absolute path.
 *
 * @module
 */

/** Why a reference is refused, or the resolved path when it stays inside `dir`. */
export type Confined = { path: string } | { error: string; missing?: boolean };

const roots = new Map<string, Promise<string>>();

/**
 * Resolves `ref` (a relative path from a model file) against folder `dir` and checks that the real file lies inside
 * the real `dir`. Never throws: a missing file is `{ error, missing: true }`.
 */
export async function confinePath(dir: string, ref: unknown): Promise<Confined> {
  if (typeof ref !== "string" || ref === "") return { error: "is not a file name" };
  if (ref.includes("\0")) return { error: "holds a NUL byte" };
  if (ref.startsWith("/") || ref.startsWith("\\") || /^[A-Za-z]:/.test(ref)) return { error: "is an absolute path" };
  if (ref.split(/[\\/]/).includes("..")) return { error: "leads out of the model's folder" };
  let root = roots.get(dir);
  if (!root) roots.set(dir, root = Deno.realPath(dir));
  let real: string, realRoot: string;
  try {
    realRoot = await root;
  } catch (e) {
    roots.delete(dir);
    return { error: `the model's folder cannot be resolved (${(e as Error).message})` };
  }
  try {
    real = await Deno.realPath(`${dir}/${ref}`);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { error: "does not exist", missing: true };
    return { error: `cannot be resolved (${(e as Error).message})` };
  }
  const base = realRoot.endsWith("/") ? realRoot : realRoot + "/";
  if (!real.startsWith(base)) return { error: "resolves outside the model's folder (through a symbolic link)" };
  return { path: real };
}
