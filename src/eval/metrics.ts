/**
 * Accuracy and fidelity measures over logits: top-k hits, top-k agreement, relative error.
 *
 * @module
 */
import { relativeErrorOf } from "../linalg/relative_error.ts";

/** Indices of the `k` largest values of row `r` of a [rows, cols] matrix, largest first. */
export function topK(data: Float32Array, cols: number, r: number, k: number): number[] {
  const row = data.subarray(r * cols, (r + 1) * cols);
  const idx: number[] = [];
  for (let i = 0; i < cols; i++) {
    let pos = idx.length;
    while (pos > 0 && row[idx[pos - 1]] < row[i]) pos--;
    if (pos < k) {
      idx.splice(pos, 0, i);
      if (idx.length > k) idx.pop();
    }
  }
  return idx;
}

/** Running counts for top-1/top-5 accuracy and agreement, and summed squared errors. */
export class EvalTally {
  count = 0;
  labelled = 0;
  top1 = 0;
  top5 = 0;
  agree1 = 0;
  agree5 = 0;
  #errNum = 0;
  #errDen = 0;

  /** Adds a batch of logits [n, cols], with labels (-1 or undefined for none) and an optional reference batch. */
  add(logits: Float32Array, cols: number, labels?: (number | undefined)[], reference?: Float32Array): void {
    const n = logits.length / cols;
    for (let r = 0; r < n; r++) {
      this.count++;
      const top = topK(logits, cols, r, 5);
      const label = labels?.[r];
      if (label !== undefined && label >= 0) {
        this.labelled++;
        if (top[0] === label) this.top1++;
        if (top.includes(label)) this.top5++;
      }
      if (reference) {
        const ref1 = topK(reference, cols, r, 1)[0];
        if (top[0] === ref1) this.agree1++;
        if (top.includes(ref1)) this.agree5++;
      }
    }
    if (reference) {
      for (let i = 0; i < logits.length; i++) {
        this.#errNum += (logits[i] - reference[i]) ** 2;
        this.#errDen += reference[i] ** 2;
      }
    }
  }

  /** ||candidate - reference|| / ||reference|| over everything added. */
  get relativeError(): number {
    return relativeErrorOf(this.#errNum, this.#errDen);
  }
}

export { relativeError } from "../linalg/relative_error.ts";
