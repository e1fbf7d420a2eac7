/**
 * Channel groups for pruning, as Torch-Pruning's dependency graph: which output channels of which layers must be
 * removed together, found from the topology alone (no weight is read here).
 *
 * Every Conv/FC output opens a *channel space* (one channel per output row). A value carries a list of segments,
 * each a whole space, in channel order:
 * - channel-wise layers (ReLU, pooling, BatchNorm, Scale, GAP...) and Flatten pass their input's segments on;
 * - Concat along the channel axis joins its inputs' segments (the offsets of a segment shift with what precedes it);
 * - an elementwise Add ties its inputs channel by channel: their spaces become one (union-find), so the producers
 *   feeding a residual Add are pruned as one group;
 * - a depthwise Conv (groups == input channels == output channels) passes its input's segments on: its channels
 *   are its producer's, and it is pruned with them.
 * Values read by several layers need nothing special: every reader is a consumer whose input columns follow the
 * space. A space reaching anything else (a graph output, a grouped conv, Reshape, Mul with another activation...)
 * is blocked, with the reason, and so is the whole group it belongs to.
 *
 * @module
 */

/** A whole channel space inside a value: `len` channels at the next offset. */
export interface Segment {
  space: number;
  len: number;
}

/** The channels a value carries: its segments, and how many columns each channel becomes after a Flatten. */
export interface ValueChannels {
  segs: Segment[];
  hw: number;
}

/** Union-find over channel spaces, with a block reason per group. */
export class ChannelSpaces {
  #parent: number[] = [];
  #len: number[] = [];
  #blocked: (string | undefined)[] = [];

  /** A new space of `len` channels, blocked with `reason` when given. */
  add(len: number, reason?: string): number {
    const id = this.#parent.length;
    this.#parent.push(id);
    this.#len.push(len);
    this.#blocked.push(reason);
    return id;
  }

  get count(): number {
    return this.#parent.length;
  }

  /** The group (root space) of `s`. */
  find(s: number): number {
    let r = s;
    while (this.#parent[r] !== r) r = this.#parent[r];
    while (this.#parent[s] !== r) [s, this.#parent[s]] = [this.#parent[s], r];
    return r;
  }

  /** Channels of `s`'s group. */
  len(s: number): number {
    return this.#len[this.find(s)];
  }

  /** Ties two spaces channel by channel (same length); the lower id stays the root. */
  union(a: number, b: number): void {
    let ra = this.find(a), rb = this.find(b);
    if (ra === rb) return;
    if (rb < ra) [ra, rb] = [rb, ra];
    this.#parent[rb] = ra;
    this.#blocked[ra] ??= this.#blocked[rb];
  }

  block(s: number, reason: string): void {
    const r = this.find(s);
    this.#blocked[r] ??= reason;
  }

  blockAll(segs: readonly Segment[], reason: string): void {
    for (const s of segs) this.block(s.space, reason);
  }

  blocked(s: number): string | undefined {
    return this.#blocked[this.find(s)];
  }
}

/** Total channels of a segment list. */
export function channelsOf(segs: readonly Segment[]): number {
  return segs.reduce((s, g) => s + g.len, 0);
}

/** True when two segment lists have the same boundaries (so an Add can tie them segment by segment). */
export function sameBoundaries(a: readonly Segment[], b: readonly Segment[]): boolean {
  return a.length === b.length && a.every((s, i) => s.len === b[i].len);
}

/**
 * Kept channel indices of a value, in its own channel order, from the kept indices of each group (absent: all
 * kept); undefined when nothing is removed.
 */
export function keptIndices(
  v: ValueChannels,
  spaces: ChannelSpaces,
  keep: ReadonlyMap<number, readonly number[]>,
): number[] | undefined {
  const out: number[] = [];
  let offset = 0, pruned = false;
  for (const s of v.segs) {
    const k = keep.get(spaces.find(s.space));
    if (k) {
      pruned = true;
      for (const i of k) out.push(offset + i);
    } else for (let i = 0; i < s.len; i++) out.push(offset + i);
    offset += s.len;
  }
  return pruned ? out : undefined;
}
