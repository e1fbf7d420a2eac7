/**
 * What the commands share: the {@link Command} shape, flag parsing with usage errors that point at the command's
 * help, the read flags (`--from`, `--input-shape` and each format's read flags) and the write flags (each format's,
 * from the registry), turned into the library's option objects.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConvpressError } from "../errors.ts";
import {
  FORMAT_FLAGS,
  FORMAT_NAMES,
  type FormatFlag,
  type FormatName,
  isFormatName,
  type ReadOptions,
  type WriteOptions,
} from "../../formats/registry.ts";

/** One flag in `node:util` parseArgs form. */
export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
}

/** The parsed flag values. */
export type FlagValues = Record<string, string | boolean | undefined>;

/** A command: its help text, its flags, and what it does with them. */
export interface Command {
  /** The full `--help` text. */
  help: string;
  /** Its flags (`--help` is added). */
  options: Record<string, FlagSpec>;
  /** Runs with the parsed flags and positionals; returns the exit code. Errors are thrown. */
  run(values: FlagValues, positionals: string[]): Promise<number>;
}

/** A usage error; with `command`, it points at that command's help. */
export function usage(msg: string, command?: string): ConvpressError {
  return new ConvpressError("usage", command ? `${msg} (see convpress ${command} --help)` : msg);
}

/** Parses `args` by `command`'s options; an unknown flag or a missing value is a usage error. */
export function parseFlags(
  name: string,
  command: Command,
  args: string[],
): { values: FlagValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...command.options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as FlagValues, positionals };
  } catch (e) {
    throw usage((e as Error).message.split("\n")[0], name);
  }
}

/** A string flag's value (undefined when absent). */
export function str(v: FlagValues, name: string): string | undefined {
  const x = v[name];
  return typeof x === "string" ? x : undefined;
}

/** `--from`/`--to`: a registered format name. */
export function formatArg(v: string | undefined, flag: string): FormatName | undefined {
  if (v === undefined) return undefined;
  if (!isFormatName(v)) throw usage(`Unknown format '${v}' for ${flag}: expected one of ${FORMAT_NAMES.join(", ")}`);
  return v;
}

/** Numbers separated by commas (`--scale`, `--std`, `--resize`); `command` names the help to point at. */
export function numberList(v: string, flag: string, command: string): number[] {
  const xs = v.split(",").map((s) => Number(s.trim()));
  if (!xs.length || xs.some((x) => !Number.isFinite(x))) {
    throw usage(`${flag} wants numbers separated by commas`, command);
  }
  return xs;
}

/** A positive integer (`--limit`, `--batch`); `def` when absent. */
export function positiveInt(v: string | undefined, flag: string, command: string, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw usage(`${flag} wants a positive integer, got '${v}'`, command);
  return n;
}

/** `--input-shape N,C,H,W`: positive integers. */
export function intList(v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(",").map(Number);
  if (out.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw usage(`Invalid ${flag} '${v}': expected N,C,H,W`);
  return out;
}

function flagsOf(side: FormatFlag["side"]): readonly FormatFlag[] {
  return FORMAT_FLAGS.filter((f) => f.side === side);
}

function specs(flags: readonly FormatFlag[]): Record<string, FlagSpec> {
  return Object.fromEntries(flags.map((f) => [f.name, { type: f.type }]));
}

/** The flags of commands that read a model: `--from`, `--input-shape` and every format's read flags. */
export const READ_FLAGS: Record<string, FlagSpec> = {
  from: { type: "string" },
  "input-shape": { type: "string" },
  ...specs(flagsOf("read")),
};

/** Every format's write flags. */
export const WRITE_FLAGS: Record<string, FlagSpec> = specs(flagsOf("write"));

/** Help lines for the formats' flags of one side, aligned as the commands' help. */
export function formatFlagHelp(side: FormatFlag["side"]): string {
  return flagsOf(side).map((f) => `      ${`--${f.name}${f.arg ? " " + f.arg : ""}`.padEnd(19)}  ${f.help}`).join("\n");
}

function applyFlags(side: FormatFlag["side"], v: FlagValues, into: Record<string, unknown>): void {
  for (const f of flagsOf(side)) {
    const x = v[f.name];
    if (x !== undefined) f.apply(into, x);
  }
}

/** The read options (and `format`) the read flags give; `defaultFormat` when `--from` is absent. */
export function readOptionsFrom(v: FlagValues, defaultFormat?: FormatName): ReadOptions & { format?: FormatName } {
  const o: ReadOptions & { format?: FormatName } = {
    format: formatArg(str(v, "from"), "--from") ?? defaultFormat,
    inputShape: intList(str(v, "input-shape"), "--input-shape"),
  };
  applyFlags("read", v, o as Record<string, unknown>);
  return o;
}

/** The write options the write flags give. */
export function writeOptionsFrom(v: FlagValues): WriteOptions {
  const o: WriteOptions = {};
  applyFlags("write", v, o as Record<string, unknown>);
  return o;
}
