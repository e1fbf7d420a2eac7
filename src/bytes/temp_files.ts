/**
 * One registry of every temporary file and folder this process makes: output files written under a temporary name,
 * spool files and folders in the system temp folder, a TF.js output's shard folder, shards renamed into an output
 * folder before its `model.json` lands. {@link removeTemporaries} removes all of them; the CLI calls it on any error
 * and {@link installCleanupHandlers} on SIGINT, SIGTERM and SIGHUP and at exit, so nothing is left behind after any
 * ending but SIGKILL.
 *
 * A path is registered before it exists where its name is known (sink temporaries, renamed shards), and creation of
 * a system-named one (`Deno.makeTempDir`) runs inside a guard: a signal arriving meanwhile waits for the guard to
 * end, so the new path is registered before the process removes everything and exits.
 *
 * @module
 */

const entries = new Map<string, boolean>(); // path -> recursive
let guards = 0;
let exitCode: number | undefined;

/** Registers `path` (a file, or a folder when `recursive`) for removal on failure or signal. */
export function trackTemporary(path: string, recursive = false): void {
  entries.set(path, recursive);
}

/** Forgets `path`: it has been renamed into place, or removed. */
export function untrackTemporary(path: string): void {
  entries.delete(path);
}

/** The paths registered now (for tests). */
export function trackedTemporaries(): string[] {
  return [...entries.keys()];
}

/** Removes `path` and forgets it; never throws. */
export async function removeTemporary(path: string): Promise<void> {
  const recursive = entries.get(path) ?? false;
  await Deno.remove(path, { recursive }).catch(() => {});
  entries.delete(path);
}

/** Removes `path` and forgets it, synchronously; never throws. */
export function removeTemporarySync(path: string): void {
  try {
    Deno.removeSync(path, { recursive: entries.get(path) ?? false });
  } catch { /* gone */ }
  entries.delete(path);
}

/** Removes every registered temporary, synchronously (safe inside a signal handler). */
export function removeTemporaries(): void {
  // Files first, then folders: a renamed shard may sit in a folder the run created.
  const ordered = [...entries].sort((a, b) => Number(a[1]) - Number(b[1]) || b[0].length - a[0].length);
  for (const [p, recursive] of ordered) {
    try {
      Deno.removeSync(p, { recursive });
    } catch { /* gone */ }
  }
  entries.clear();
}

/**
 * Runs `make` (which creates or renames a registered path) so that a signal arriving meanwhile takes effect only
 * after it ends: the path then exists and is removed, instead of appearing after the clean-up ran.
 */
export function guardCreation<T>(make: () => Promise<T>): Promise<T> {
  return guarded(make, () => {});
}

async function guarded<T>(make: () => Promise<T>, register: (t: T) => void): Promise<T> {
  guards++;
  try {
    const t = await make();
    register(t);
    return t;
  } finally {
    guards--;
    if (guards === 0 && exitCode !== undefined) exitNow(exitCode);
  }
}

let folder: string | undefined;

/**
 * Makes temporaries in `dir` instead of the system temp folder (undefined: back to it). For tests that run the CLI
 * in their own process and check that nothing is left: unlike TMPDIR, this does not reach other code in the process.
 */
export function useTemporaryFolder(dir: string | undefined): void {
  folder = dir;
}

/** `Deno.makeTempDir`, registered (recursive) before any signal can end the process. */
export function makeTempDir(options: Deno.MakeTempOptions = {}): Promise<string> {
  return guarded(() => Deno.makeTempDir({ dir: folder, ...options }), (p) => trackTemporary(p, true));
}

/** `Deno.makeTempFile`, registered before any signal can end the process. */
export function makeTempFile(options: Deno.MakeTempOptions = {}): Promise<string> {
  return guarded(() => Deno.makeTempFile({ dir: folder, ...options }), (p) => trackTemporary(p));
}

/**
 * Creates folder `path` and any missing parents, registering the topmost folder it created (so a failed run removes
 * what it made and nothing else). Returns that folder, or undefined when `path` already existed.
 */
export async function makeOutputDir(path: string): Promise<string | undefined> {
  const parts = path.replace(/\/+$/, "").split("/");
  let top: string | undefined;
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join("/");
    if (!p) continue;
    try {
      await Deno.lstat(p);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      top = p;
      break;
    }
  }
  if (top === undefined) return undefined;
  trackUncommittedOutput(top, true);
  await Deno.mkdir(path, { recursive: true });
  return top;
}

const uncommitted = new Set<string>();

/**
 * Registers an output file or folder just renamed into place while the conversion that writes it may still fail
 * (the shards of a TF.js folder before its model.json, a caffemodel before its prototxt). {@link commitOutputs}
 * keeps them; {@link discardOutputs} (or a signal) removes them.
 */
export function trackUncommittedOutput(path: string, recursive = false): void {
  if (scopes === 0) return; // a writer called directly: its output is the caller's as soon as it is renamed
  uncommitted.add(path);
  trackTemporary(path, recursive);
}

let scopes = 0;

/**
 * Runs a conversion whose outputs land together: outputs renamed into place inside `write` are kept when it
 * succeeds and removed when it fails (or on a signal meanwhile).
 */
export async function withOutputs<T>(write: () => Promise<T>): Promise<T> {
  scopes++;
  try {
    const r = await write();
    commitOutputs();
    return r;
  } catch (e) {
    await discardOutputs();
    throw e;
  } finally {
    scopes--;
  }
}

/** Keeps every output registered by {@link trackUncommittedOutput}: the conversion succeeded. */
export function commitOutputs(): void {
  for (const p of uncommitted) untrackTemporary(p);
  uncommitted.clear();
}

/** Removes every output registered by {@link trackUncommittedOutput}: the conversion failed. */
export async function discardOutputs(): Promise<void> {
  for (const p of uncommitted) await removeTemporary(p);
  uncommitted.clear();
}

function exitNow(code: number): never {
  removeTemporaries();
  Deno.exit(code);
}

// At exit every temporary still registered goes, in library use too (a TF.js tar's spool whose model was never
// closed); signals are the CLI's to handle.
globalThis.addEventListener("unload", () => removeTemporaries());

let installed = false;

/** Removes every temporary on SIGINT (exit 130), SIGTERM (143) and SIGHUP (129), then exits. Idempotent. */
export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  const signals: [Deno.Signal, number][] = [["SIGINT", 130], ["SIGTERM", 143], ["SIGHUP", 129]];
  for (const [sig, code] of signals) {
    try {
      Deno.addSignalListener(sig, () => {
        if (guards > 0) exitCode = code;
        else exitNow(code);
      });
    } catch { /* signal unavailable on this platform */ }
  }
}
