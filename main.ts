/**
 * The convpress command line. It parses flags, calls the library and maps errors to exit codes:
 * 0 success, 1 bad or unreadable input, 2 usage, 3 unsupported model feature, 70 internal error.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConvpressError } from "./src/errors.ts";
import { removeTemporaryFiles } from "./src/bytes/byte_sink.ts";
import { convert, detectFormat, formatFromExtension, openModel, openSource } from "./src/convert.ts";
import { formatInspection, inspectModel } from "./src/inspect.ts";
import { terminalProgress } from "./src/progress.ts";
import { FORMAT_NAMES } from "./formats/registry.ts";
import { DATA_OPTIONS } from "./src/cli/data_options.ts";
import type { FormatName } from "./src/model/types.ts";

const VERSION = "0.1.0";

const HELP: Record<string, string> = {
  main: `convpress ${VERSION}: convert and compress convolutional networks (Caffe, ONNX, TF.js, .cvp), layer by layer

Usage: convpress <command> [options]

Commands:
  convert IN -o OUT    convert between formats (IN or OUT may be - for stdin/stdout)
  compress IN -o OUT   compress by a recipe (GAP, pruning, truncated SVD, clustering) into .cvp
  decode IN.cvp -o OUT restore a float model from .cvp (same as convert --from cvp)
  inspect IN           per-layer table: op, shapes, parameters, bytes, MACs
  eval MODEL --data D  accuracy, or agreement with a reference model, by streaming inference

Run 'convpress <command> --help' for a command's options.
Exit codes: 0 ok, 1 bad input, 2 usage, 3 unsupported model feature, 70 internal error.`,
  convert: `Usage: convpress convert IN -o OUT [options]

Reads IN (a file, a TF.js folder or model.json, or - for stdin) and writes OUT (- for stdout) in another format.
Formats are detected from content, with the extension as a hint.

Options:
  -o, --output PATH        output path, or - for stdout (required)
      --from FORMAT        input format: ${FORMAT_NAMES.join("|")}
      --to FORMAT          output format (default: from the output extension, or the input's format)
      --prototxt PATH      Caffe: deploy prototxt whose structure and input shape win
      --prototxt-out PATH  Caffe output: where to write the deploy prototxt
      --input-shape N,C,H,W  input shape when the model does not state it
      --external-data      ONNX output: store tensors in OUT.data
      --tfjs-kind KIND     TF.js output: layers-model, graph-model or auto (default)
      --shard-size BYTES   TF.js output: weight shard size (default 4194304)
      --quantize TYPE      TF.js output: float16, uint8 or uint16
      --weights f32|f16    .cvp output: how to store weights (default f32, lossless)
  -h, --help               this help

Examples:
  convpress convert vgg16.onnx -o vgg16.caffemodel --prototxt-out vgg16.prototxt
  cat model.onnx | convpress convert --from onnx --to onnx - -o - > copy.onnx`,
  compress: `Usage: convpress compress IN -o OUT.cvp [--recipe FILE] [--gap] [--prune ...] [--svd ...] [--bits ...]

Compresses a model by the thesis method, stage by stage as the layers stream, and prints a per-layer report.
Flags build a recipe in the thesis order (GAP -> prune -> TSVD -> cluster); --recipe reads one from JSON
(see recipes/). The output is .cvp unless --to or the extension says otherwise.

Options:
  -o, --output PATH        output path, or - for stdout (required)
      --recipe FILE        a recipe JSON (recipes/vgg16-thesis.json, recipes/cluster8.json, ...)
      --gap                global average pooling before the first FC, with its weights folded
      --prune SPEC         flops=F | params=F (global target, order-deciding scheme) | keep=F (every layer),
                           plus criterion=l1|l2|mean_activation|apoz (the last two need --calibration)
      --svd SPEC           rank=K | energy=E | bytes=B: truncated SVD of FC layers
      --bits SPEC          N | conv=N,fc=M: k-means clustering with 2^N centres stored as fp16
      --calibration PATH   calibration data (as eval --data: mnist, IDX, CIFAR, .npy, image folder): activation
                           criteria, prune order by measured sensitivity, least-squares reconstruction of the
                           layers after pruned ones and refit of the GAP-folded FC
      --limit N            calibration samples, run as one batch (default 128; LeNet 64-512, VGG16 2-8)
      --preprocess P       calibration preprocessing: caffe|torch|tf|tf01|none; also --scale S, --mean M,
                           --std S, --resize H,W, --channel-order rgb|bgr, --labels PATH (as eval)
      --report-json FILE   write the report as JSON
      --report-html FILE   write the report as an HTML page with a per-layer bar chart
      --from FORMAT        input format; --prototxt PATH for Caffe inputs; --input-shape N,C,H,W
      --to FORMAT          output format (default cvp)
  -h, --help               this help

Example:
  convpress compress VGG_ILSVRC_16_layers.caffemodel --prototxt deploy.prototxt --recipe recipes/vgg16-thesis.json -o vgg16.cvp`,
  decode: `Usage: convpress decode IN.cvp -o OUT [--to FORMAT]

Restores a float model from a .cvp file in any format (see 'convert --help' for output options).`,
  inspect: `Usage: convpress inspect IN [--from FORMAT] [--json]

Prints each layer's op, output shape, parameter count, bytes and multiply-accumulates, and the totals.

Options:
      --from FORMAT   input format (default: detected)
      --prototxt PATH Caffe: deploy prototxt
      --json          print JSON instead of a table
  -h, --help          this help`,
};

const OPTIONS = {
  output: { type: "string", short: "o" },
  from: { type: "string" },
  to: { type: "string" },
  prototxt: { type: "string" },
  "prototxt-out": { type: "string" },
  "input-shape": { type: "string" },
  "external-data": { type: "boolean" },
  "tfjs-kind": { type: "string" },
  "shard-size": { type: "string" },
  quantize: { type: "string" },
  weights: { type: "string" },
  json: { type: "boolean" },
  recipe: { type: "string" },
  gap: { type: "boolean" },
  prune: { type: "string" },
  svd: { type: "string" },
  bits: { type: "string" },
  "report-json": { type: "string" },
  "report-html": { type: "string" },
  calibration: { type: "string" },
  "target-size": { type: "string" },
  batch: { type: "string" },
  "recipe-out": { type: "string" },
  strict: { type: "boolean" },
  "plain-cluster": { type: "boolean" },
  ...DATA_OPTIONS,
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
} as const;

function usage(msg: string): ConvpressError {
  return new ConvpressError("usage", msg);
}

function formatArg(v: string | undefined, flag: string): FormatName | undefined {
  if (v === undefined) return undefined;
  if (!(FORMAT_NAMES as readonly string[]).includes(v)) {
    throw usage(`Unknown format '${v}' for ${flag}: expected one of ${FORMAT_NAMES.join(", ")}`);
  }
  return v as FormatName;
}

function choice<T extends string>(v: string | undefined, flag: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v)) {
    throw usage(`Invalid ${flag} '${v}': expected ${allowed.join(", ")}`);
  }
  return v as T;
}

function intList(v: string | undefined, flag: string): number[] | undefined {
  if (v === undefined) return undefined;
  const out = v.split(",").map(Number);
  if (out.some((n) => !Number.isSafeInteger(n) || n <= 0)) throw usage(`Invalid ${flag} '${v}': expected N,C,H,W`);
  return out;
}

/** The detected format of a file, or undefined. */
async function sniff(path: string): Promise<FormatName | undefined> {
  const src = await openSource(path);
  try {
    return (await detectFormat(src)).name;
  } catch {
    return undefined;
  } finally {
    src.reader?.close();
  }
}

async function run(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (!command || command === "--help" || command === "-h" || command === "help") {
    console.log(HELP.main);
    return 0;
  }
  if (command === "--version" || command === "-V") {
    console.log(`convpress ${VERSION}`);
    return 0;
  }
  if (command === "eval") {
    const { evalCommand } = await import("./src/cli/eval_command.ts");
    return await evalCommand(rest);
  }
  if (!HELP[command] || command === "main") throw usage(`Unknown command '${command}' (see convpress --help)`);
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    throw usage(`${(e as Error).message.split("\n")[0]} (see convpress ${command} --help)`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    console.log(HELP[command]);
    return 0;
  }
  if (positionals.length !== 1) throw usage(`${command} takes exactly one input (see convpress ${command} --help)`);
  const input = positionals[0];
  const readOptions = {
    format: formatArg(v.from, "--from") ?? (command === "decode" ? "cvp" as const : undefined),
    prototxt: v.prototxt,
    inputShape: intList(v["input-shape"], "--input-shape"),
  };

  if (command === "inspect") {
    if (input !== "-" && (readOptions.format ?? await sniff(input)) === "cvp") {
      // A .cvp shows how each tensor is stored: encoding, bits per weight, bytes, ratio.
      const cvp = await import("./formats/cvp/mod.ts");
      const x = await cvp.inspectCvp(input);
      console.log(v.json ? JSON.stringify(x, null, 2) : cvp.formatInspection(x));
      return 0;
    }
    const model = await openModel(input, readOptions);
    const x = await inspectModel(model);
    console.log(v.json ? JSON.stringify(x, null, 2) : formatInspection(x));
    return 0;
  }

  const output = v.output;
  if (command === "compress") {
    if (!output) throw usage(`compress needs -o OUT (- for stdout)`);
    const flags = v.gap || v.prune || v.svd || v.bits;
    const target = v["target-size"] === undefined ? undefined : Number(v["target-size"]);
    if (target !== undefined && !(Number.isSafeInteger(target) && target > 0)) {
      throw usage(`Invalid --target-size '${v["target-size"]}': expected a number of bytes`);
    }
    if (!v.recipe && !flags && target === undefined) {
      throw usage("compress needs --recipe FILE, stage flags or --target-size (see convpress compress --help)");
    }
    const { combineRecipes, loadRecipe, recipeFromFlags } = await import("./src/compress/recipe.ts");
    const { compress } = await import("./src/compress/compress.ts");
    const { formatReport, reportHtml } = await import("./src/compress/report.ts");
    let recipe = v.recipe ? await loadRecipe(v.recipe) : recipeFromFlags(v);
    if (v.recipe && flags) recipe = combineRecipes(recipe, recipeFromFlags(v));
    const weights = choice(v.weights, "--weights", ["f32", "f16"] as const);
    if (weights) recipe.weights = weights;
    const { calibrationFromFlags, formatCalibration } = await import("./src/compress/calibrate_flags.ts");
    const calibration = calibrationFromFlags(v);
    if (calibration && v["plain-cluster"]) calibration.cluster = false;
    const progress = terminalProgress("compress");
    const options = { ...readOptions, to: formatArg(v.to, "--to"), progress, calibration };
    let report;
    let targetText = "";
    try {
      if (target !== undefined) {
        const { compressToTarget, formatTarget } = await import("./src/compress/targets.ts");
        const r = await compressToTarget(input, output, recipe, options, { size: target });
        report = r;
        targetText = "\n" + formatTarget(r.target);
        if (v["recipe-out"]) {
          await Deno.writeTextFile(v["recipe-out"], JSON.stringify(r.target.recipe, null, 2) + "\n");
        }
        if (r.target.warning) {
          if (v.strict) throw new ConvpressError("usage", r.target.warning);
          console.error(`convpress: warning: ${r.target.warning}`);
        }
      } else report = await compress(input, output, recipe, options);
    } finally {
      progress.end();
    }
    let text = formatReport(report) + targetText;
    if (report.calibration) text += "\n" + formatCalibration(report.calibration);
    if (output === "-") console.error(text);
    else console.log(text);
    if (v["report-json"]) await Deno.writeTextFile(v["report-json"], JSON.stringify(report, null, 2) + "\n");
    if (v["report-html"]) await Deno.writeTextFile(v["report-html"], reportHtml(report));
    return 0;
  }

  // convert / decode
  if (!output) throw usage(`${command} needs -o OUT (- for stdout)`);
  const to = formatArg(v.to, "--to") ?? formatFromExtension(output);
  const shard = v["shard-size"] === undefined ? undefined : Number(v["shard-size"]);
  if (shard !== undefined && (!Number.isSafeInteger(shard) || shard <= 0)) {
    throw usage(`Invalid --shard-size '${v["shard-size"]}'`);
  }
  const progress = terminalProgress(command);
  try {
    await convert(input, output, {
      ...readOptions,
      to,
      externalData: v["external-data"],
      prototxtOut: v["prototxt-out"],
      tfjsKind: choice(v["tfjs-kind"], "--tfjs-kind", ["layers-model", "graph-model", "auto"] as const),
      shardSize: shard,
      quantize: choice(v.quantize, "--quantize", ["float16", "uint8", "uint16"] as const),
      weights: choice(v.weights, "--weights", ["f32", "f16"] as const),
      progress,
    });
  } finally {
    progress.end();
  }
  return 0;
}

/** Runs the CLI with `args` and returns the exit code; errors are printed on stderr. */
export async function main(args: string[]): Promise<number> {
  try {
    return await run(args);
  } catch (e) {
    removeTemporaryFiles();
    if (e instanceof ConvpressError) {
      console.error(`convpress: ${e.message}`);
      return e.exitCode;
    }
    if (e instanceof Error && e.name === "BrokenPipe") return 0;
    console.error(`convpress: internal error: ${e instanceof Error ? e.stack : String(e)}`);
    return 70;
  }
}

if (import.meta.main) {
  try {
    Deno.addSignalListener("SIGINT", () => {
      removeTemporaryFiles();
      Deno.exit(130);
    });
  } catch { /* signals unavailable (Windows) */ }
  Deno.exit(await main(Deno.args));
}
