/**
 * Command-line options shared by `eval` and `compress --calibration`, kept apart from the commands so that importing
 * them loads nothing else.
 *
 * @module
 */

/** The data options `eval` and `compress --calibration` share (node:util parseArgs form). */
export const DATA_OPTIONS = {
  labels: { type: "string" },
  limit: { type: "string" },
  preprocess: { type: "string" },
  scale: { type: "string" },
  mean: { type: "string" },
  std: { type: "string" },
  resize: { type: "string" },
  "resize-shorter": { type: "string" },
  crop: { type: "string" },
  "channel-order": { type: "string" },
} as const;
