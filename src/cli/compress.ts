/**
 * `convpress compress IN -o OUT.cvp`: a recipe's stages over the streaming layers, and the per-layer report.
 *
 * @module
 */
import { terminalProgress } from "../progress.ts";
import { writeReportFile } from "../bytes/report_files.ts";
import { checkCompressPaths } from "./path_guards.ts";
import { DATA_OPTIONS } from "./data_options.ts";
import { type Command, formatArg, READ_FLAGS, readOptionsFrom, str, usage } from "./flags.ts";

/** `compress`. */
export const compressCommand: Command = {
  help: `Usage: convpress compress IN -o OUT.cvp [--recipe FILE] [--gap] [--prune ...] [--svd ...] [--bits ...]

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
  options: {
    output: { type: "string", short: "o" },
    to: { type: "string" },
    recipe: { type: "string" },
    gap: { type: "boolean" },
    prune: { type: "string" },
    svd: { type: "string" },
    bits: { type: "string" },
    "report-json": { type: "string" },
    "report-html": { type: "string" },
    calibration: { type: "string" },
    ...DATA_OPTIONS,
    ...READ_FLAGS,
  },
  async run(v, positionals) {
    if (positionals.length !== 1) throw usage("compress takes exactly one input", "compress");
    const input = positionals[0];
    const output = str(v, "output");
    if (!output) throw usage(`compress needs -o OUT (- for stdout)`);
    await checkCompressPaths(input, output, v);
    const recipeFile = str(v, "recipe");
    const { recipeFromFlags, loadRecipe, stageFlagsGiven } = await import("../compress/recipe.ts");
    const flags = stageFlagsGiven(v);
    if (recipeFile && flags) {
      throw usage("Give either --recipe or stage flags (--gap, --prune, --svd, --bits), not both");
    }
    if (!recipeFile && !flags) {
      throw usage("compress needs --recipe FILE or stage flags (see convpress compress --help)");
    }
    const { compress } = await import("../compress/compress.ts");
    const { formatReport, reportHtml } = await import("../compress/report.ts");
    const recipe = recipeFile ? await loadRecipe(recipeFile) : recipeFromFlags(v);
    const { calibrationFromFlags, formatCalibration } = await import("./calibrate_flags.ts");
    const calibration = calibrationFromFlags(v as Record<string, string | undefined>);
    const progress = terminalProgress("compress");
    let report;
    try {
      report = await compress(input, output, recipe, {
        ...readOptionsFrom(v),
        to: formatArg(str(v, "to"), "--to"),
        progress,
        calibration,
      });
    } finally {
      progress.end();
    }
    let text = formatReport(report);
    if (report.calibration) text += "\n" + formatCalibration(report.calibration);
    if (output === "-") console.error(text);
    else console.log(text);
    await writeReportFile(output, str(v, "report-json"), () => JSON.stringify(report, null, 2) + "\n");
    await writeReportFile(output, str(v, "report-html"), () => reportHtml(report));
    return 0;
  },
};
