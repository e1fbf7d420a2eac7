/**
 * convpress's version, read from deno.json (the one place it is written).
 *
 * @module
 */
import config from "../../deno.json" with { type: "json" };

/** The version in deno.json. */
export const VERSION: string = config.version;
