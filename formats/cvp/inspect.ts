/**
 * `convpress inspect model.cvp`: per-tensor encoding, bits per weight, bytes and compression ratio, read by walking
 * the records (bodies are skipped, not read).
 *
 * @module
 */
import { ByteReader } from "../../src/bytes/byte_reader.ts";
import { openFileInput } from "../../src/bytes/inputs.ts";
import { CvpError, escapeText } from "../../src/errors.ts";
import { numel } from "../../src/model/tensor.ts";
import { FOOTER_SIZE, KIND, PREAMBLE_SIZE } from "./frame.ts";
import { readCvp } from "./reader.ts";
import type { RecordHead } from "./records.ts";

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

/**
 * Inspects a `.cvp` file. The file is read by the model reader ({@link readCvp}), so inspect makes every structural
 * check `decode` makes (record order and kinds, descriptions, encodings, body lengths, counts, index, footer); large
 * tensor bodies are skipped, not read.
 */
export async function inspectCvp(path: string): Promise<CvpInspection> {
  let input;
  try {
    input = await openFileInput(path);
  } catch (e) {
    throw new CvpError("io", `Cannot open '${path}': ${(e as Error).message}`, { file: path, cause: e });
  }
  const r = new ByteReader(input, { name: path });
  try {
    const records: RecordHead[] = [];
    const model = await readCvp({ path, isDirectory: false, reader: r }, {}, (h) => records.push(h));
    for await (const _ of model.layers) { /* the reader checks as it goes */ }
    const fileBytes = r.size ?? r.position;
    const h = records[0];
    const rows: CvpTensorRow[] = [];
    let layer = "", layers = 0, overhead = PREAMBLE_SIZE + FOOTER_SIZE, params = 0;
    for (let i = 0; i < records.length; i++) {
      const rec = records[i];
      const size = (i + 1 < records.length ? records[i + 1].offset : fileBytes - FOOTER_SIZE) - rec.offset;
      if (rec.kind === KIND.tensor) {
        const m = rec.meta;
        const shape = m.shape as number[];
        const n = numel(shape);
        params += n;
        rows.push({
          layer,
          tensor: String(m.name),
          encoding: describeEncoding(m),
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
      }
    }
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
  } finally {
    r.close();
  }
}

function describeEncoding(m: Record<string, unknown>): string {
  const coding = (s: unknown) => String((s as { coding?: unknown } | undefined)?.coding);
  let encoding = String(m.encoding);
  if (m.encoding === "cluster") encoding += ` k=${m.k} ${m.repr} ${coding(m.indices)}`;
  if (m.encoding === "cluster-sparse") {
    encoding += ` k=${m.k} ${m.repr} gap${m.gapBits} ${coding(m.gaps)}/${coding(m.symbols)}`;
  }
  return encoding;
}

/** A text table of an inspection, for the CLI. */
export function formatInspection(ins: CvpInspection): string {
  const lines = [
    `${escapeText(ins.path)}: .cvp v${ins.version}, model '${escapeText(ins.name)}' (from ${
      escapeText(ins.sourceFormat)
    }), ${ins.layers} layers, ` +
    `${ins.params} parameters`,
  ];
  const head = ["layer", "tensor", "encoding", "shape", "bits/w", "bytes", "ratio"];
  const rows = ins.tensors.map((t) => [
    escapeText(t.layer),
    escapeText(t.tensor),
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
