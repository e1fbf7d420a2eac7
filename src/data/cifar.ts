/**
 * CIFAR binary batches (`data_batch_1.bin` ... `test_batch.bin`).
 *
 * Layout: records of 1 label byte + 3072 pixel bytes (CIFAR-10), or 2 label bytes (coarse, fine) + 3072 (CIFAR-100,
 * whose fine label is used). Pixels are 32x32 planes in R, G, B order, rows first.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Dataset, Sample } from "./types.ts";

const PIXELS = 3 * 32 * 32;

/** The record size of a CIFAR batch of `length` bytes: 3073 (CIFAR-10) or 3074 (CIFAR-100), or undefined. */
export function cifarRecordSize(length: number): number | undefined {
  if (length > 0 && length % (PIXELS + 1) === 0) return PIXELS + 1;
  if (length > 0 && length % (PIXELS + 2) === 0) return PIXELS + 2;
  return undefined;
}

/** A CIFAR batch as a data set of [3, 32, 32] RGB pixels with labels. */
export function cifarDataset(b: Uint8Array, file: string, classes?: string[]): Dataset {
  const rec = cifarRecordSize(b.length);
  if (!rec) {
    throw new ConvpressError(
      "bad_format",
      `Cannot read CIFAR batch '${file}': ${b.length} bytes is not a whole number of 3073- or 3074-byte records`,
      { file, offset: b.length - (b.length % (PIXELS + 1)) },
    );
  }
  const n = b.length / rec;
  const lab = rec - PIXELS;
  return {
    kind: "CIFAR batch",
    pixels: true,
    size: n,
    classes,
    async *samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < n; i++) {
        const o = i * rec;
        yield {
          data: Float32Array.from(b.subarray(o + lab, o + rec)),
          shape: [3, 32, 32],
          label: b[o + lab - 1],
          id: `${file}[${i}]`,
        };
      }
    },
  };
}
