/**
 * `convpress inspect model.cvp`: per-tensor encoding, bits per weight, bytes and compression ratio, read by walking
 * the records (bodies are skipped, not read).
 *
 * @module
 */
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { openFileInput } from "../../src/bytes/inputs.ts";
import { CvpError } from "../../src/errors.ts";
import { numel } from "../../src/model/tensor.ts";
import { FOOTER_SIZE, KIND, PREAMBLE_SIZE } from "./frame.ts";
import { RecordReader } from "./records.ts";

/** One tensor of an inspected `.cvp`. */
export interface CvpTensorRow {
  layer: string;
  tensor: string;
  /** `raw`, `f16`, `bf16`, `cluster`, `cluster-sparse`, with the index coding and centre count for clustered ones. */
  encoding: string;
  shape: number[];
  dtype: string;
  /** Bits per element of the whole record (frame, metadata, CRCs and body). */
  bitsPerWeight: number;
  /** Bytes of the whole record. */
  bytes: number;
  /** float32 bytes of the tensor divided by `bytes`. */
  ratio: number;
}

/** The result of {@link inspectCvp}. */
export interface CvpInspection {
  path: string;
  version: number;
  name: string;
  sourceFormat: string;
  fileBytes: number;
  layers: number;
  /** Elements of every parameter tensor. */
  params: number;
  /** Bytes of every record that is not a tensor (header, layers, trailer, index), preamble and footer. */
  overheadBytes: number;
  /** `params * 4 / fileBytes`: the project's compression ratio. */
  ratio: number;
  tensors: CvpTensorRow[];
}

/** Inspects a `.cvp` file. */
export async function inspectCvp(path: string): Promise<CvpInspection> {
  const r = new ByteReader(await openFileInput(path), { name: path });
  try {
    const rr = new RecordReader(r, path);
    await rr.preamble();
    const h = await rr.next();
    if (h.kind !== KIND.header) throw rr.error("bad_format", h, "the first record is not the header");
    await rr.skipBody(h);
    const rows: CvpTensorRow[] = [];
    let layer = "", layers = 0, overhead = PREAMBLE_SIZE + FOOTER_SIZE, params = 0;
    for (;;) {
      const rec = await rr.next();
      await rr.skipBody(rec);
      const size = r.position - rec.offset;
      if (rec.kind === KIND.tensor) {
        const m = rec.meta;
        const shape = (m.shape as number[]) ?? [];
        const n = numel(shape);
        params += n;
        let encoding = String(m.encoding);
        if (m.encoding === "cluster") encoding += ` k=${m.k} ${m.repr} ${(m.indices as { coding: string }).coding}`;
        if (m.encoding === "cluster-sparse") {
          const g = m.gaps as { coding: string }, s = m.symbols as { coding: string };
          encoding += ` k=${m.k} ${m.repr} gap${m.gapBits} ${g.coding}/${s.coding}`;
        }
        rows.push({
          layer,
          tensor: String(m.name),
          encoding,
          shape,
          dtype: String(m.dtype),
          bitsPerWeight: n ? (size * 8) / n : 0,
          bytes: size,
          ratio: size ? (n * 4) / size : 0,
        });
      } else {
        overhead += size;
        if (rec.kind === KIND.layer) {
          layer = String(rec.meta.name);
          layers++;
        }
        if (rec.kind === KIND.index) break;
      }
    }
    const fileBytes = r.size ?? r.position + FOOTER_SIZE;
    return {
      path,
      version: 1,
      name: String(h.meta.name),
      sourceFormat: String(h.meta.sourceFormat),
      fileBytes,
      layers,
      params,
      overheadBytes: overhead,
      ratio: fileBytes ? (params * 4) / fileBytes : 0,
      tensors: rows,
    };
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new CvpError("io", `Cannot open ${path}: ${e.message}`, { file: path });
    }
    throw e;
  } finally {
    r.close();
  }
}

/** A text table of an inspection, for the CLI. */
export function formatInspection(ins: CvpInspection): string {
  const lines = [
    `${ins.path}: .cvp v${ins.version}, model '${ins.name}' (from ${ins.sourceFormat}), ${ins.layers} layers, ` +
    `${ins.params} parameters`,
  ];
  const head = ["layer", "tensor", "encoding", "shape", "bits/w", "bytes", "ratio"];
  const rows = ins.tensors.map((t) => [
    t.layer,
    t.tensor,
    t.encoding,
    `[${t.shape.join(",")}]`,
    t.bitsPerWeight.toFixed(2),
    String(t.bytes),
    t.ratio.toFixed(2) + "x",
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i >= 4 ? c.padStart(width[i]) : c.padEnd(width[i]))).join("  ");
  lines.push(fmt(head), ...rows.map(fmt));
  lines.push(
    `total: ${ins.fileBytes} bytes (${ins.overheadBytes} of topology, index and framing), ` +
      `${((ins.fileBytes * 8) / Math.max(1, ins.params)).toFixed(2)} bits per weight, ratio ${ins.ratio.toFixed(2)}x`,
  );
  return lines.join("\n");
}
