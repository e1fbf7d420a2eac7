/**
 * Tiny assertions for the TF.js tests (no @std: JSR is unreachable).
 *
 * @module
 */

/** Throws when `cond` is false. */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Throws unless `a` equals `b` (JSON equality). */
export function assertEquals(a: unknown, b: unknown, msg = ""): void {
  const ja = JSON.stringify(a), jb = JSON.stringify(b);
  if (ja !== jb) {
    let i = 0;
    while (i < ja.length && ja[i] === jb[i]) i++;
    const cut = (t: string) => (t.length > 300 ? `...${t.slice(Math.max(0, i - 100), i + 200)}...` : t);
    throw new Error(`${msg}${msg ? ": " : ""}${cut(ja)} !== ${cut(jb)}`);
  }
}

/** Runs `fn` and returns the error it throws (or fails). `match` is a RegExp the message must match. */
export async function assertRejects(fn: () => Promise<unknown>, match?: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    if (match && !match.test((e as Error).message)) {
      throw new Error(`error '${(e as Error).message}' does not match ${match}`);
    }
    return e as Error;
  }
  throw new Error("expected an error");
}
