/**
 * Labels files. Three forms, told apart by their lines (blank lines and `#` comments ignored):
 * - one integer per line: the labels of the samples, in order;
 * - `NAME LABEL` per line (the last token an integer): a label for each file name (with or without folders);
 * - anything else: class names, one per line, index = line number; the first token is the key that folder names
 *   match (so a `synset_words.txt` line `n01440764 tench, Tinca tinca` names folder `n01440764`).
 *
 * @module
 */
import { ConvpressError } from "../errors.ts";

/** A parsed labels file. */
export type Labels =
  | { kind: "sequence"; labels: number[] }
  | { kind: "byName"; labels: Map<string, number> }
  | { kind: "classes"; classes: string[]; keys: string[] };

const INT = /^-?\d+$/;

/** Parses the text of a labels file. */
export function parseLabels(text: string, file = "labels"): Labels {
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
  if (!lines.length) throw new ConvpressError("bad_format", `Labels file '${file}' is empty`, { file });
  if (lines.every((l) => INT.test(l))) return { kind: "sequence", labels: lines.map(Number) };
  const split = lines.map((l) => l.split(/\s+/));
  if (split.every((t) => t.length === 2 && INT.test(t[1]))) {
    return { kind: "byName", labels: new Map(split.map((t) => [t[0], Number(t[1])])) };
  }
  // One line of space-separated integers (fixtures/caffe/lenet_labels.txt) is a sequence too.
  if (lines.length === 1 && split[0].every((t) => INT.test(t))) {
    return { kind: "sequence", labels: split[0].map(Number) };
  }
  return { kind: "classes", classes: lines, keys: split.map((t) => t[0]) };
}

/** Reads and parses a labels file. */
export async function readLabels(path: string): Promise<Labels> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConvpressError("io", `Cannot read labels file '${path}': ${(e as Error).message}`, { file: path });
  }
  return parseLabels(text, path);
}

/** The label of the `index`-th sample with file name `name` under `labels`, or undefined. */
export function labelFor(labels: Labels | undefined, index: number, name: string): number | undefined {
  if (!labels) return undefined;
  if (labels.kind === "sequence") return labels.labels[index];
  if (labels.kind === "byName") {
    const base = name.split("/").pop()!;
    return labels.labels.get(name) ?? labels.labels.get(base);
  }
  return undefined;
}
