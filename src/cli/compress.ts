/**
 * `convpress compress IN -o OUT.cvp`: a recipe's stages over the streaming layers, and the per-layer report.
 *
 * @module
 */
import { terminalProgress } from "../progress.ts";
import { writeReportFile } from "../bytes/report_files.ts";
import { checkCompressPaths } from "./path_guards.ts";
import { DATA_OPTIONS } from "./data_options.ts";
import { ConvpressError } from "../errors.ts";
import { type Command, formatArg, positiveInt, READ_FLAGS, readOptionsFrom, str, usage } from "./flags.ts";

/** `compress`. */
export const compressCommand: Command = {
  help: `Usage: convpress compress IN -o OUT.cvp [--recipe FILE] [--fold-bn] [--gap] [--prune ...] [--svd ...]
         [--channel-scales keep|affine] [--bits ...]

Compresses a model by the thesis method, stage by stage as the layers stream, and prints a per-layer report.
Flags build a recipe in the thesis order (GAP -> prune -> TSVD -> cluster, after the BatchNorm fold); --recipe reads one from JSON
(see recipes/); flags given with --recipe override its stages (and merge cluster widths). The output is .cvp unless --to or the extension says otherwise.

Options:
  -o, --output PATH        output path, or - for stdout (required)
      --recipe FILE        a recipe JSON (recipes/vgg16-thesis.json, recipes/cluster8.json, ...)
      --fold-bn            fold each BatchNorm or Scale into the Conv or FC before it (the same function,
                           fewer parameters; a size target then spends those bytes on the weights)
      --gap                global average pooling before the first FC, with its weights folded
      --prune SPEC         flops=F | params=F (global target, order-deciding scheme) | keep=F (every layer),
                           plus criterion=l1|l2|mean_activation|apoz (the last two need --calibration)
      --svd SPEC           rank=K | energy=E | bytes=B: truncated SVD of FC layers
      --channel-scales M   keep|affine: move each Conv/FC output channel's scale (max |w|) into the BatchNorm
                           or Scale after it, so one codebook fits every channel (the same function; keep: no
                           bytes more; affine: the BatchNorm becomes a Scale, two vectors fewer, no Keras layer)
      --bits SPEC          N | conv=N,fc=M,LAYER=N,fire9/*=N: k-means clustering with 2^N centres stored as
                           fp16, per layer kind, layer name or pattern (exact names, then patterns, then kinds)
      --target-size BYTES  choose each layer's width so the .cvp file fits in BYTES (entropy coding included),
                           by each layer's measured error and bytes (with --calibration weighed by its gain to
                           the model's output, one probe pass per layer); prints the choice; a target not
                           reached is a warning (an error with --strict)
      --max-drop P         with --calibration: the smallest file whose top-1 agreement with the
                           original on the calibration data drops at most P points (bisection over sizes,
                           below --target-size when given)
      --recipe-out FILE    write the recipe that reproduces the choice of --target-size or --max-drop
      --strict             fail (exit 3) when a size or pruning target is not reached
      --weights f32|f16    how tensors no stage encoded (biases) are stored (default f16; f32 is lossless)
      --calibration PATH   calibration data (as eval --data: mnist, IDX, CIFAR, .npy, image folder): data-aware
                           clustering (Hessian-weighted k-means, error feedback over input columns, centre refit,
                           bias correction), activation criteria, prune order by measured sensitivity,
                           least-squares reconstruction of the layers after pruned ones and refit of the GAP fold
      --limit N            calibration samples (default 128; LeNet 64-512, VGG16 2-8 without --batch)
      --batch N            clustering statistics from N samples at a time, one pass over the model per batch
                           (memory of one batch; the statistics come from the original layers)
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
    "fold-bn": { type: "boolean" },
    gap: { type: "boolean" },
    prune: { type: "string" },
    svd: { type: "string" },
    "channel-scales": { type: "string" },
    bits: { type: "string" },
    "report-json": { type: "string" },
    "report-html": { type: "string" },
    calibration: { type: "string" },
    "target-size": { type: "string" },
    "recipe-out": { type: "string" },
    "max-drop": { type: "string" },
    strict: { type: "boolean" },
    weights: { type: "string" },
    batch: { type: "string" },
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
    const { combineRecipes, recipeFromFlags, loadRecipe, stageFlagsGiven } = await import("../compress/recipe.ts");
    const flags = stageFlagsGiven(v);
    const targetArg = str(v, "target-size");
    const target = targetArg === undefined ? undefined : positiveInt(targetArg, "--target-size", "compress", 1);
    const dropArg = str(v, "max-drop");
    const maxDrop = dropArg === undefined ? undefined : Number(dropArg);
    if (maxDrop !== undefined && !(maxDrop >= 0 && maxDrop < 100)) {
      throw usage(`Invalid --max-drop '${dropArg}': expected points of top-1 agreement (0 to 100)`, "compress");
    }
    if (maxDrop !== undefined && !str(v, "calibration")) throw usage("--max-drop needs --calibration DATA", "compress");
    if (!recipeFile && !flags && target === undefined && maxDrop === undefined) {
      throw usage("compress needs --recipe FILE, stage flags or --target-size (see convpress compress --help)");
    }
    if (str(v, "recipe-out") && target === undefined && maxDrop === undefined) {
      throw usage("--recipe-out needs --target-size or --max-drop", "compress");
    }
    const { compress } = await import("../compress/compress.ts");
    const { formatReport, reportHtml } = await import("../compress/report.ts");
    let recipe = recipeFile ? await loadRecipe(recipeFile) : recipeFromFlags(v);
    if (recipeFile && flags) recipe = combineRecipes(recipe, recipeFromFlags(v));
    const weights = str(v, "weights");
    if (weights !== undefined && weights !== "f32" && weights !== "f16") {
      throw usage(`Invalid --weights '${weights}': expected f32 or f16`, "compress");
    }
    if (weights) recipe = { ...recipe, weights };
    const { calibrationFromFlags, formatCalibration } = await import("./calibrate_flags.ts");
    const calibration = calibrationFromFlags(v as Record<string, string | undefined>);
    const progress = terminalProgress("compress");
    const options = { ...readOptionsFrom(v), to: formatArg(str(v, "to"), "--to"), progress, calibration };
    let report;
    let extra = "";
    let warning: string | undefined;
    try {
      if (target !== undefined || maxDrop !== undefined) {
        const { compressToTarget, formatTarget } = await import("../compress/targets.ts");
        const r = await compressToTarget(input, output, recipe, options, { size: target, maxDrop });
        report = r;
        extra = "\n" + formatTarget(r.target);
        const out = str(v, "recipe-out");
        if (out) await Deno.writeTextFile(out, JSON.stringify(r.target.recipe, null, 2) + "\n");
        warning = r.target.warning;
      } else report = await compress(input, output, recipe, options);
    } finally {
      progress.end();
    }
    if (report.pruneWarning) warning = warning ? `${report.pruneWarning}; ${warning}` : report.pruneWarning;
    let text = formatReport(report) + extra;
    if ((recipe.weights ?? "f16") === "f16") {
      text +=
        "\nunclustered tensors (biases, layers no stage encoded) are stored as f16; --weights f32 keeps them exact";
    }
    if (report.calibration) text += "\n" + formatCalibration(report.calibration);
    if (warning && warning !== report.pruneWarning) text += `\nwarning: ${warning}`;
    if (output === "-") console.error(text);
    else console.log(text);
    await writeReportFile(output, str(v, "report-json"), () => JSON.stringify(report, null, 2) + "\n");
    await writeReportFile(output, str(v, "report-html"), () => reportHtml(report));
    if (warning) {
      if (v.strict) throw new ConvpressError("unsupported", warning);
      console.error(`convpress: warning: ${warning}`);
    }
    return 0;
  },
};
