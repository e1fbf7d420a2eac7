/**
 * Symbol streams: a sequence of integers below an alphabet size `A`, stored either bit-packed at `ceil(log2 A)`
 * bits ("packed") or Huffman-coded ("huffman"), whichever is smaller (packed on a tie). Clustered tensors store their
 * cluster indices, and sparse clustered tensors their gaps, as symbol streams.
 *
 * @module
 */
import { bitsFor, packBits, packedLength, unpackBits } from "./bitpack.ts";
import { codeLengths, HuffmanDecoder, huffmanEncode, huffmanLength, symbolCounts } from "./huffman.ts";

/** How a symbol stream is coded. */
export type SymbolCoding = "packed" | "huffman";

/** An encoded symbol stream. */
export interface EncodedSymbols {
  coding: SymbolCoding;
  bytes: Uint8Array;
}

/** How a symbol stream will be coded and its length in bytes, found without building it. */
export interface SymbolPlan {
  coding: SymbolCoding;
  bytes: number;
  /** Huffman code lengths (when `coding` is "huffman"). */
  lengths?: Uint8Array;
  alphabet: number;
}

/** Plans the coding of `symbols` (each < `alphabet`): Huffman only when it is strictly smaller than packing. */
export function planSymbols(symbols: ArrayLike<number>, alphabet: number, force?: SymbolCoding): SymbolPlan {
  const bits = bitsFor(alphabet);
  const plain = packedLength(symbols.length, bits);
  if (force !== "packed" && bits > 0 && symbols.length > 0) {
    const freq = symbolCounts(symbols, alphabet);
    const lengths = codeLengths(freq);
    const huff = huffmanLength(freq, lengths);
    if (force === "huffman" || huff < plain) return { coding: "huffman", bytes: huff, lengths, alphabet };
  }
  return { coding: "packed", bytes: plain, alphabet };
}

/** Builds the stream `plan` describes, after `reserve` zero bytes (room for a caller's header). */
export function encodePlanned(symbols: ArrayLike<number>, plan: SymbolPlan, reserve = 0): Uint8Array {
  return plan.coding === "huffman"
    ? huffmanEncode(symbols, plan.alphabet, plan.lengths, reserve)
    : packBits(symbols, bitsFor(plan.alphabet), reserve);
}

/** Encodes `symbols` (each < `alphabet`), choosing Huffman only when it is strictly smaller than packing. */
export function encodeSymbols(
  symbols: ArrayLike<number>,
  alphabet: number,
  force?: SymbolCoding,
): EncodedSymbols {
  const plan = planSymbols(symbols, alphabet, force);
  return { coding: plan.coding, bytes: encodePlanned(symbols, plan) };
}

/** Decodes a symbol stream in slices: call `next(n, out)` repeatedly; `finish()` checks nothing is left over. */
export class SymbolReader {
  readonly #coding: SymbolCoding;
  readonly #bytes: Uint8Array;
  readonly #bits: number;
  readonly #alphabet: number;
  readonly #total: number;
  #pos = 0;
  #huff: HuffmanDecoder | undefined;

  constructor(coding: SymbolCoding, bytes: Uint8Array, alphabet: number, count: number) {
    this.#coding = coding;
    this.#bytes = bytes;
    this.#bits = bitsFor(alphabet);
    this.#alphabet = alphabet;
    this.#total = count;
    if (coding === "packed") {
      const need = packedLength(count, this.#bits);
      if (bytes.length !== need) {
        throw new RangeError(
          `Packed stream holds ${bytes.length} bytes, ${count} symbols of ${this.#bits} bits need ${need}`,
        );
      }
    } else if (coding === "huffman") {
      this.#huff = new HuffmanDecoder(bytes, alphabet);
    } else throw new RangeError(`Unknown symbol coding '${coding}'`);
  }

  /** Decodes the next `n` symbols into `out`. */
  next(n: number, out: Uint8Array | Uint16Array | Uint32Array): void {
    if (this.#pos + n > this.#total) throw new RangeError(`Read past the ${this.#total} symbols of the stream`);
    if (this.#huff) this.#huff.decode(n, out);
    else {
      unpackBits(this.#bytes, this.#bits, this.#pos, n, out);
      for (let i = 0; i < n; i++) {
        if (out[i] >= this.#alphabet) {
          throw new RangeError(`Symbol ${out[i]} at ${this.#pos + i} is not below ${this.#alphabet}`);
        }
      }
    }
    this.#pos += n;
  }

  /** Throws when a Huffman stream has whole bytes left after its last symbol. */
  finish(): void {
    if (this.#huff && this.#huff.trailingBytes !== 0) {
      throw new RangeError(`Huffman stream has ${this.#huff.trailingBytes} bytes after its last symbol`);
    }
  }
}
