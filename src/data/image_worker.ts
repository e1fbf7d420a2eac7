/**
 * The Worker behind {@link preparedOnWorker}: reads, decodes and preprocesses the images of a folder, in order, off
 * the thread that runs the model, and posts each model input back as a transferred Float32Array. Backpressure is by
 * credit: it never runs more than the credit the consumer granted ahead of what the consumer has taken.
 *
 * Messages in: `{ type: "start", root, files, opts, input }`, then `{ type: "credit", n }`.
 * Messages out: `{ type: "input", i, data }` in file order, or `{ type: "error", code, message, file }` once.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import { ConvpressError } from "../errors.ts";
import { decodePixels } from "./images.ts";
import { makePixelPreprocessor, type Pixels8, type PreprocessOptions } from "./preprocess.ts";

interface Start {
  type: "start";
  root: string;
  files: string[];
  opts: PreprocessOptions;
  input: number[];
}

/** Decodes run this many images ahead of the one being posted (sharp decodes on libuv's threads). */
const IN_FLIGHT = 4;

let job: Start | undefined;
let prep: ((p: Pixels8, id: string) => Float32Array) | undefined;
let credit = 0;
let posted = 0;
let pumping = false;
let failed = false;

self.onmessage = (e: MessageEvent) => {
  const m = e.data;
  if (m.type === "start") {
    job = m as Start;
    try {
      prep = makePixelPreprocessor(job.opts, job.input);
    } catch (err) {
      fail(err, job.root);
      return;
    }
  } else if (m.type === "credit") credit += m.n;
  pump();
};

function fail(err: unknown, file: string) {
  failed = true;
  const c = err instanceof ConvpressError ? err : undefined;
  self.postMessage({
    type: "error",
    code: c?.code ?? "bad_format",
    message: (err as Error)?.message ?? String(err),
    file: c?.file ?? file,
  });
}

async function pump() {
  if (pumping || !job || !prep || failed) return;
  pumping = true;
  const { root, files } = job;
  const inflight: { i: number; p: Promise<Float32Array> }[] = [];
  const start = (i: number) => {
    const path = `${root}/${files[i]}`;
    const p = Deno.readFile(path).then((b) => decodePixels(b, path)).then((px) => prep!(px, files[i]));
    p.catch(() => {}); // awaited in order below
    inflight.push({ i, p });
  };
  let queued = posted;
  try {
    while (posted < files.length && credit > 0) {
      // Never more started than the credit allows, so nothing is in flight when the credit runs out.
      while (queued < files.length && queued - posted < Math.min(IN_FLIGHT, credit)) start(queued++);
      const { i, p } = inflight.shift()!;
      let data: Float32Array;
      try {
        data = await p;
      } catch (err) {
        fail(err, `${root}/${files[i]}`);
        return;
      }
      self.postMessage({ type: "input", i, data }, [data.buffer as ArrayBuffer]);
      posted++;
      credit--;
    }
  } finally {
    pumping = false;
  }
  if (!failed && posted < files.length && credit > 0) pump();
}
