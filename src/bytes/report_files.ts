/**
 * Report files written after a model (`compress --report-json/--report-html`): written atomically like any output,
 * and when one cannot be written the model written just before is removed too, so a failed command leaves nothing.
 *
 * @module
 */
import { openFileSink } from "./byte_sink.ts";

/** Writes `text()` to `path` (nothing when `path` is undefined); on failure removes `model` and re-throws. */
export async function writeReportFile(model: string, path: string | undefined, text: () => string): Promise<void> {
  if (path === undefined) return;
  try {
    const sink = await openFileSink(path);
    try {
      await sink.write(new TextEncoder().encode(text()));
      await sink.close();
    } catch (e) {
      await sink.abort();
      throw e;
    }
  } catch (e) {
    if (model !== "-") await Deno.remove(model, { recursive: true }).catch(() => {});
    throw e;
  }
}
