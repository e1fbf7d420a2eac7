/**
 * Progress reporting. Library code calls a {@link ProgressFn}; the CLI passes one that draws a bar on stderr only
 * when stderr is a terminal, so pipes and logs stay clean.
 *
 * @module
 */
import { escapeText } from "./errors.ts";

/** Called with layers done and the total when known (0 when not), and a short label (the layer's name). */
export type ProgressFn = (done: number, total: number, label?: string) => void;

/** A progress bar on stderr, or a no-op when stderr is not a terminal. Call `.end()` when done. */
export function terminalProgress(title: string): ProgressFn & { end(): void } {
  const enabled = Deno.stderr.isTerminal();
  let last = 0;
  const enc = new TextEncoder();
  const fn = ((done: number, total: number, label = "") => {
    if (!enabled) return;
    const now = Date.now();
    if (now - last < 100 && done < total) return;
    last = now;
    const width = 30;
    const frac = total > 0 ? Math.min(1, done / total) : 0;
    const bar = total > 0 ? "#".repeat(Math.round(frac * width)).padEnd(width, ".") : "";
    const pct = total > 0 ? `[${bar}] ${(frac * 100).toFixed(0).padStart(3)}%` : `${done} layers`;
    const line = `\r${title} ${pct} ${escapeText(label, 60)}`.slice(0, 110);
    Deno.stderr.writeSync(enc.encode(line.padEnd(110)));
  }) as ProgressFn & { end(): void };
  fn.end = () => {
    if (enabled && last > 0) Deno.stderr.writeSync(enc.encode("\r" + " ".repeat(110) + "\r"));
  };
  return fn;
}
