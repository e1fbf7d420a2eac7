/**
 * Helpers of the hardening tests: the CLI run in this process (fast enough for thousands of fuzz cases), with its
 * stdout and stderr captured and the temp folder pointed at a folder the test watches, plus file listings.
 *
 * @module
 */
import { main } from "../main.ts";
import { useTemporaryFolder } from "../src/bytes/temp_files.ts";

/** What one in-process CLI run printed and returned. */
export interface InProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `convpress ARGS` in this process with console output captured. `tmp` becomes the temp folder of the run (for
 * convpress's own temporaries only: other tests in the process keep theirs), so spool files and folders land where
 * the caller can check that none is left.
 */
export async function runMain(args: string[], tmp?: string): Promise<InProcessResult> {
  const out: string[] = [], err: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => out.push(a.map(String).join(" "));
  console.error = (...a: unknown[]) => err.push(a.map(String).join(" "));
  if (tmp) useTemporaryFolder(tmp);
  try {
    const code = await main(args);
    return { code, stdout: out.join("\n"), stderr: err.join("\n") };
  } finally {
    console.log = log;
    console.error = error;
    if (tmp) useTemporaryFolder(undefined);
  }
}

/** Every file and folder under `dir`, as paths relative to it, sorted. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of Deno.readDirSync(d)) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(r);
      if (e.isDirectory) walk(`${d}/${e.name}`, r);
    }
  };
  try {
    walk(dir, "");
  } catch { /* missing: empty */ }
  return out.sort();
}

/** Removes everything inside `dir`. */
export function emptyDir(dir: string): void {
  for (const e of Deno.readDirSync(dir)) Deno.removeSync(`${dir}/${e.name}`, { recursive: true });
}

/** True when `s` holds a C0 or C1 control character or DEL (newlines too, unless `newlines` allows them). */
export function hasControl(s: string, newlines = false): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 10 && newlines) continue;
    if (c < 0x20 || (c >= 0x7f && c < 0xa0)) return true;
  }
  return false;
}
