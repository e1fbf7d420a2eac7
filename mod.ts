/**
 * convpress: read, convert and compress convolutional networks (Caffe, ONNX, TensorFlow.js, `.cvp`), layer by
 * layer. This module only re-exports.
 *
 * @module
 */
export * from "./src/errors.ts";
export * from "./src/model/types.ts";
export * from "./src/model/ops.ts";
export { DTYPE_SIZE, numel, Tensor, toFloat32 } from "./src/model/tensor.ts";
export type { DType } from "./src/model/tensor.ts";
export * from "./src/model/shapes.ts";
export { ByteReader } from "./src/bytes/byte_reader.ts";
export type { ByteInput, ByteReaderOptions } from "./src/bytes/byte_reader.ts";
export * from "./src/bytes/inputs.ts";
export * from "./src/bytes/byte_sink.ts";
export * from "./src/app/convert.ts";
export * from "./src/app/inspect.ts";
export type { ProgressFn } from "./src/progress.ts";
export type {
  FormatEntry,
  FormatFlag,
  FormatModule,
  ModelSource,
  ReadOptions,
  WriteOptions,
} from "./formats/registry.ts";
export { allFormats, FORMAT_NAMES, FORMATS, getFormat, isFormatName } from "./formats/registry.ts";
export { vgg16Stream } from "./src/model/vgg16.ts";
export { compress } from "./src/compress/compress.ts";
export type { CompressOptions } from "./src/compress/compress.ts";
export { loadRecipe, recipeFromFlags, validateRecipe } from "./src/compress/recipe.ts";
export type { Recipe, StageSpec } from "./src/compress/recipe.ts";
export { createStage, STAGES } from "./src/compress/stages.ts";
export type { StageContext, StageModule } from "./src/compress/stage.ts";
export { buildReport, formatReport, reportHtml } from "./src/compress/report.ts";
export type { CompressReport } from "./src/compress/report.ts";
export { gapStage } from "./src/compress/gap.ts";
export { analyzePruning, planPruning, pruneStage } from "./src/compress/prune.ts";
export { tsvdStage } from "./src/compress/tsvd.ts";
export { clusterStage } from "./src/compress/cluster.ts";
export { kmeans1d } from "./src/compress/kmeans1d.ts";
