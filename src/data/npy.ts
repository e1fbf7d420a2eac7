/**
 * NumPy `.npy` arrays (format versions 1-3): each slice along the first axis is a sample.
 *
 * Layout: magic `\x93NUMPY`, major and minor version bytes, header length (uint16 LE for v1, uint32 LE for v2/3),
 * an ASCII/UTF-8 Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, C, H, W), }`, then the
 * data, C order.
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";
import type { Dataset, Sample } from "./types.ts";

/** A decoded `.npy` header. */
export interface NpyHeader {
  descr: string;
  shape: number[];
  /** Byte offset of the data. */
  offset: number;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** True when `b` starts with the `.npy` magic. */
export function isNpy(b: Uint8Array): boolean {
  return b.length >= 6 && MAGIC.every((m, i) => b[i] === m);
}

/** Parses the header of a `.npy` file. */
export function parseNpyHeader(b: Uint8Array, file = "npy"): NpyHeader {
  const bad = (msg: string) => new ConvpressError("bad_format", `Cannot read .npy file '${file}': ${msg}`, { file });
  if (!isNpy(b)) throw bad("no \\x93NUMPY magic");
  if (b.length < 10) throw bad("header cut short");
  const major = b[6];
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const wide = major >= 2;
  if (wide && b.length < 12) throw bad("header cut short");
  const len = wide ? dv.getUint32(8, true) : dv.getUint16(8, true);
  const start = wide ? 12 : 10;
  if (start + len > b.length) throw bad(`header of ${len} bytes runs past the end of the file`);
  const text = new TextDecoder().decode(b.subarray(start, start + len));
  const descr = /'descr'\s*:\s*'([^']+)'/.exec(text)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(text)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(text)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw bad(`header is not a .npy dict: ${text.trim()}`);
  if (fortran === "True") throw bad("Fortran-order arrays are not supported");
  const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isSafeInteger(d) || d < 0)) throw bad(`bad shape (${shapeText})`);
  return { descr, shape, offset: start + len };
}

const READERS: Record<string, [number, (dv: DataView, o: number, le: boolean) => number]> = {
  f4: [4, (dv, o, le) => dv.getFloat32(o, le)],
  f8: [8, (dv, o, le) => dv.getFloat64(o, le)],
  u1: [1, (dv, o) => dv.getUint8(o)],
  i1: [1, (dv, o) => dv.getInt8(o)],
  u2: [2, (dv, o, le) => dv.getUint16(o, le)],
  i2: [2, (dv, o, le) => dv.getInt16(o, le)],
  i4: [4, (dv, o, le) => dv.getInt32(o, le)],
  u4: [4, (dv, o, le) => dv.getUint32(o, le)],
  i8: [8, (dv, o, le) => Number(dv.getBigInt64(o, le))],
  b1: [1, (dv, o) => dv.getUint8(o)],
};

/** Decodes a whole `.npy` file to float32 with its shape. */
export function decodeNpy(b: Uint8Array, file = "npy"): { data: Float32Array; shape: number[] } {
  const h = parseNpyHeader(b, file);
  const order = h.descr[0];
  const r = READERS[h.descr.slice(1)];
  if (!r || !"<>|=".includes(order)) {
    throw new ConvpressError("unsupported", `Cannot read .npy file '${file}': dtype '${h.descr}'`, { file });
  }
  const [size, get] = r;
  const n = h.shape.reduce((p, d) => p * d, 1);
  if (h.offset + n * size > b.length) {
    throw new ConvpressError(
      "unexpected_eof",
      `Cannot read .npy file '${file}': shape (${h.shape.join(",")}) needs ${n * size} bytes of data, the file has ${
        b.length - h.offset
      }`,
      { file, offset: b.length },
    );
  }
  const dv = new DataView(b.buffer, b.byteOffset + h.offset, n * size);
  const le = order !== ">";
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = get(dv, i * size, le);
  return { data, shape: h.shape };
}

/** A `.npy` file as a data set: samples along the first axis, labels from `labels` (in order). */
export function npyDataset(b: Uint8Array, file: string, labels?: number[]): Dataset {
  const { data, shape } = decodeNpy(b, file);
  if (shape.length < 2) {
    throw new ConvpressError("bad_format", `.npy file '${file}' of shape (${shape}) has no sample axis`, { file });
  }
  const per = shape.slice(1).reduce((p, d) => p * d, 1);
  return {
    kind: ".npy",
    pixels: false,
    size: shape[0],
    async *samples(): AsyncGenerator<Sample> {
      for (let i = 0; i < shape[0]; i++) {
        yield {
          data: data.slice(i * per, (i + 1) * per),
          shape: shape.slice(1),
          label: labels?.[i],
          id: `${file}[${i}]`,
        };
      }
    },
  };
}
