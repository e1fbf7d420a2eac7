/**
 * The one mapping from errors to exit codes and stderr lines: a {@link ConvpressError} prints its message on one
 * line and exits with its code (1 bad input, 2 usage, 3 unsupported); a broken pipe is a quiet 0; anything else is
 * a bug, printed with its stack, exit 70.
 *
 * @module
 */
import { ConvpressError, errorLine } from "../errors.ts";

/** Exit code of an internal error (a bug). */
export const INTERNAL_ERROR = 70;

/**
 * Prints `e` as the CLI does and returns the exit code for it. The line names `input` when the error names no file,
 * with control characters escaped and long names cut (errorLine).
 */
export function reportError(e: unknown, input?: string): number {
  if (e instanceof ConvpressError) {
    console.error(`convpress: ${errorLine(e, input)}`);
    return e.exitCode;
  }
  if (e instanceof Error && e.name === "BrokenPipe") return 0;
  console.error(`convpress: internal error: ${e instanceof Error ? e.stack : String(e)}`);
  return INTERNAL_ERROR;
}
