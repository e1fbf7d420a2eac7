/**
 * The convpress command line: `deno task convpress ARGS`. The commands live in src/cli/ (one file each); this
 * entry point runs them and turns Ctrl-C into a clean exit.
 *
 * @module
 */
import { removeTemporaryFiles } from "./src/bytes/byte_sink.ts";
import { main } from "./src/cli/main.ts";

export { main };

if (import.meta.main) {
  try {
    Deno.addSignalListener("SIGINT", () => {
      removeTemporaryFiles();
      Deno.exit(130);
    });
  } catch { /* signals unavailable (Windows) */ }
  Deno.exit(await main(Deno.args));
}
