/**
 * The relative error convpress reports and tests against: `||a - b|| / ||b||` (L2), with `b` the reference.
 *
 * @module
 */

/** `sqrt(num / den)` from a squared error and a squared reference norm: 0 when both are 0, Infinity when only `den` is. */
export function relativeErrorOf(num: number, den: number): number {
  return den > 0 ? Math.sqrt(num / den) : num > 0 ? Infinity : 0;
}

/** `||a - b|| / ||b||`; Infinity when the lengths differ. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return relativeErrorOf(num, den);
}
