/**
 * A synchronous protobuf wire reader over bytes in memory, for small messages (nodes, layer parameters, shapes).
 * It knows nothing of messages. Every read is bounds-checked and errors carry the absolute byte offset
 * (`base` + position), so a message read out of a large file still reports where in the file it broke.
 *
 * @module
 */
import { WireError } from "../errors.ts";
import { decodeVarint, varintResult, varintSigned, varintUnsigned } from "./varint.ts";

/** Protobuf wire types. Groups (3, 4) are not used by any supported format and are rejected. */
export const WireType = Object.freeze({ Varint: 0, Bit64: 1, LengthDelimited: 2, Bit32: 5 });

/** Reads protobuf wire data from `buf[start..end)`. */
export class WireReader {
  readonly buf: Uint8Array;
  pos: number;
  readonly end: number;
  /** Absolute offset of `buf[0]` in the original input, for error messages. */
  readonly base: number;
  /** File name for error messages. */
  readonly file?: string;
  #view: DataView;

  constructor(buf: Uint8Array, base = 0, start = 0, end = buf.length, file?: string) {
    this.buf = buf;
    this.pos = start;
    this.end = end;
    this.base = base;
    this.file = file;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  /** True when every byte has been read. */
  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Absolute offset of the next byte. */
  get offset(): number {
    return this.base + this.pos;
  }

  #fail(code: "unexpected_eof" | "bad_wire", msg: string, at = this.pos): never {
    throw new WireError(code, `${msg} at byte ${this.base + at}`, { file: this.file, offset: this.base + at });
  }

  #need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      this.#fail("unexpected_eof", `Unexpected end of ${what} (needed ${n - (this.end - this.pos)} more bytes)`);
    }
  }

  #varint(): void {
    const p = decodeVarint(this.buf, this.pos, this.end);
    if (p === -1) this.#fail("unexpected_eof", "Unexpected end of message inside a varint");
    if (p === -2) this.#fail("bad_wire", "Varint longer than 10 bytes");
    this.pos = p;
  }

  /** Reads a field key. Returns [field number, wire type]. */
  tag(): [number, number] {
    const at = this.pos;
    this.#varint();
    const v = varintUnsigned();
    const field = Math.floor(v / 8), wt = v & 7;
    if (field === 0 || field > 0x1fffffff) this.#fail("bad_wire", `Invalid field number ${field}`, at);
    if (wt !== 0 && wt !== 1 && wt !== 2 && wt !== 5) {
      this.#fail("bad_wire", `Invalid wire type ${wt} for field ${field}`, at);
    }
    return [field, wt];
  }

  /** An unsigned varint up to 2^53 - 1 (lengths, uint32, uint64, enums, bools). */
  uint(): number {
    const at = this.pos;
    this.#varint();
    const v = varintUnsigned();
    if (v < 0) this.#fail("bad_wire", "Varint exceeds 2^53", at);
    return v;
  }

  /** A signed int32 or int64 (two's complement varint). */
  int(): number {
    const at = this.pos;
    this.#varint();
    const v = varintSigned();
    if (Number.isNaN(v)) this.#fail("bad_wire", "Integer outside the safe range", at);
    return v;
  }

  /** An int32: the low 32 bits as signed. */
  int32(): number {
    this.#varint();
    return varintResult.lo | 0;
  }

  bool(): boolean {
    return this.uint() !== 0;
  }

  float(): number {
    this.#need(4, "float");
    const v = this.#view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  double(): number {
    this.#need(8, "double");
    const v = this.#view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  fixed32(): number {
    this.#need(4, "fixed32");
    const v = this.#view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** The payload of a length-delimited field, as a view (not a copy). */
  bytes(): Uint8Array {
    const at = this.pos;
    const n = this.uint();
    if (n > this.end - this.pos) {
      this.#fail(
        "unexpected_eof",
        `Length ${n} runs past the end of the enclosing message (${this.end - this.pos} bytes left)`,
        at,
      );
    }
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  string(): string {
    return decoder.decode(this.bytes());
  }

  /** A reader over the next length-delimited payload (an embedded message). */
  sub(): WireReader {
    const at = this.pos;
    const n = this.uint();
    if (n > this.end - this.pos) {
      this.#fail("unexpected_eof", `Message length ${n} runs past the end of its parent`, at);
    }
    const r = new WireReader(this.buf, this.base, this.pos, this.pos + n, this.file);
    this.pos += n;
    return r;
  }

  /** Skips a field's value of wire type `wt`. */
  skip(wt: number): void {
    switch (wt) {
      case 0:
        this.#varint();
        return;
      case 1:
        this.#need(8, "fixed64");
        this.pos += 8;
        return;
      case 2:
        this.bytes();
        return;
      case 5:
        this.#need(4, "fixed32");
        this.pos += 4;
        return;
      default:
        this.#fail("bad_wire", `Cannot skip wire type ${wt}`);
    }
  }

  /** Reads one or many (packed) varint values of a repeated field into `out`. */
  repeatedInt(wt: number, out: number[]): void {
    if (wt === 2) {
      const r = this.sub();
      while (!r.done) out.push(r.int());
    } else if (wt === 0) out.push(this.int());
    else this.#fail("bad_wire", `Wire type ${wt} is not valid for a repeated integer`);
  }

  /** Reads one or many (packed) float values of a repeated field into `out`. */
  repeatedFloat(wt: number, out: number[]): void {
    if (wt === 2) {
      const r = this.sub();
      while (!r.done) out.push(r.float());
    } else if (wt === 5) out.push(this.float());
    else this.#fail("bad_wire", `Wire type ${wt} is not valid for a repeated float`);
  }

  /** Reads one or many (packed) double values of a repeated field into `out`. */
  repeatedDouble(wt: number, out: number[]): void {
    if (wt === 2) {
      const r = this.sub();
      while (!r.done) out.push(r.double());
    } else if (wt === 1) out.push(this.double());
    else this.#fail("bad_wire", `Wire type ${wt} is not valid for a repeated double`);
  }

  /** Throws `bad_wire` unless the field has wire type `expected`. */
  expect(field: number, wt: number, expected: number, what: string): void {
    if (wt !== expected) this.#fail("bad_wire", `Field ${field} (${what}) has wire type ${wt}, expected ${expected}`);
  }
}

const decoder = new TextDecoder("utf-8");
