/**
 * The convpress command line: `deno task convpress ARGS`. The commands live in src/cli/ (one file each); this
 * entry point runs them and removes every temporary on SIGINT, SIGTERM and SIGHUP (src/bytes/temp_files.ts).
 *
 * @module
 */
import { installCleanupHandlers } from "./src/bytes/temp_files.ts";
import { main } from "./src/cli/main.ts";

export { main };

if (import.meta.main) {
  installCleanupHandlers();
  Deno.exit(await main(Deno.args));
}
