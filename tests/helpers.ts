/**
 * Test helpers: run the CLI in a subprocess, run models in ONNX Runtime (the reference client), make the small
 * ONNX fixtures with the reference `onnx` package, and compare arrays.
 *
 * @module
 */
import { type Layer, layerStream, type ModelHeader, type ModelStream } from "../src/model/types.ts";

/** The repository root. */
export const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** The shared fixtures folder (real trained models). */
export const SHARED = `${ROOT}/../shared`;
/** Debian's Python, which has numpy, onnx and OpenCV. */
export const PYTHON = "/usr/bin/python3";

/** What a test needs that a bare clone may lack: paths (files or folders) and Python modules. */
export interface Needs {
  /** Paths that must exist, absolute or relative to the project root (`../shared/fixtures/...`). */
  paths?: string[];
  /** Modules Debian's Python must import (`cv2`, `onnx`). */
  python?: string[];
}

const pythonHas = new Map<string, boolean>();

/** Why a test cannot run here (the first missing path or Python module, one line), or undefined when it can. */
export function missing(needs: Needs): string | undefined {
  for (const p of needs.paths ?? []) {
    const abs = p.startsWith("/") ? p : `${ROOT}/${p}`;
    try {
      Deno.statSync(abs);
    } catch {
      const parent = ROOT.slice(0, ROOT.lastIndexOf("/"));
      const norm = abs.replace(`${ROOT}/../`, `${parent}/`);
      const shown = norm.startsWith(`${ROOT}/`)
        ? norm.slice(ROOT.length + 1)
        : norm.startsWith(`${parent}/`)
        ? `../${norm.slice(parent.length + 1)}`
        : norm;
      return `${shown} is missing`;
    }
  }
  for (const m of needs.python ?? []) {
    if (!pythonHas.has(m)) {
      let ok = false;
      try {
        ok = new Deno.Command(PYTHON, { args: ["-c", `import ${m}`], stdout: "null", stderr: "null" }).outputSync()
          .success;
      } catch { /* no python */ }
      pythonHas.set(m, ok);
    }
    if (!pythonHas.get(m)) return `${PYTHON} cannot import ${m}`;
  }
  return undefined;
}

/**
 * `Deno.test`, skipped with Deno's `ignore` when something in `needs` is missing; the one-line reason is then part
 * of the test's name, so the run says what to install or fetch.
 */
export function testNeeding(name: string, needs: Needs, fn: (t: Deno.TestContext) => void | Promise<void>): void {
  const why = missing(needs);
  Deno.test(why ? `${name} [skipped: ${why}]` : name, { ignore: why !== undefined }, fn);
}

/** The shared fixtures folder as the tests name it in {@link Needs}. */
export const SHARED_FIXTURES = "../shared/fixtures";

/** Result of a subprocess. */
export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs `convpress ARGS` in a subprocess, optionally feeding `stdin` bytes or a file. */
export async function runCli(args: string[], stdin?: Uint8Array | string): Promise<RunResult> {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      // The permissions of `deno task convpress`: the CLI needs nothing else.
      "--allow-read",
      "--allow-write",
      `${ROOT}/main.ts`,
      ...args,
    ],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
    env: { DENO_NO_UPDATE_CHECK: "1" },
  });
  const child = cmd.spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    const bytes = typeof stdin === "string" ? await Deno.readFile(stdin) : stdin;
    await w.write(bytes).catch(() => {});
    await w.close().catch(() => {});
  }
  const out = await child.output();
  return { code: out.code, stdout: out.stdout, stderr: new TextDecoder().decode(out.stderr) };
}

/** Runs a Python script with Debian's interpreter; throws with its stderr on failure. */
export async function python(args: string[]): Promise<string> {
  const out = await new Deno.Command(PYTHON, { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) throw new Error(`python ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

/** Removes `dir` when the test process exits. */
export function removeOnExit(dir: string): void {
  globalThis.addEventListener("unload", () => {
    try {
      Deno.removeSync(dir, { recursive: true });
    } catch { /* gone */ }
  });
}

let smallDir: Promise<string> | undefined;

/** Makes (once per process) the small ONNX fixtures of fixtures/onnx/make_small.py; returns their folder. */
export function smallOnnx(): Promise<string> {
  smallDir ??= (async () => {
    const dir = await Deno.makeTempDir({ prefix: "convpress-small-" });
    removeOnExit(dir);
    await python([`${ROOT}/fixtures/onnx/make_small.py`, dir]);
    return dir;
  })();
  return smallDir;
}

/** A model stream over layers in memory. */
export function streamOf(header: ModelHeader, layers: Layer[]): ModelStream {
  return {
    header,
    layers: layerStream((async function* () {
      yield* layers;
    })()),
  };
}

/** Writes layers in memory as an ONNX file in a new temporary folder; returns its path. */
export async function onnxFile(header: ModelHeader, layers: Layer[]): Promise<string> {
  const { writeOnnx } = await import("../formats/onnx/writer.ts");
  const path = `${await Deno.makeTempDir()}/m.onnx`;
  await writeOnnx(streamOf(header, layers), path);
  return path;
}

// deno-lint-ignore no-explicit-any
type Ort = any; // onnxruntime-node's namespace; loaded lazily so tests that do not need it never import it

let ortModule: Promise<Ort> | undefined;

/** Runs an ONNX model in ONNX Runtime with one float32 input; returns the first output. */
export async function ortRun(model: string | Uint8Array, input: Float32Array, shape: number[]): Promise<Float32Array> {
  ortModule ??= import("onnxruntime-node");
  const ort = await ortModule;
  const session = await ort.InferenceSession.create(model);
  try {
    const x = new ort.Tensor("float32", input, shape);
    const res = await session.run({ [session.inputNames[0]]: x });
    return Float32Array.from(res[session.outputNames[0]].data as Float32Array);
  } finally {
    await session.release?.();
  }
}

export { relativeError } from "../src/linalg/relative_error.ts";

/** Reads a little-endian float32 file. */
export async function readF32(path: string): Promise<Float32Array> {
  const b = await Deno.readFile(path);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}

/** A deterministic pseudo-random generator (mulberry32). */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Asserts a condition with a message (no @std/assert: JSR is unreachable). */
export function assert(cond: unknown, msg = "assertion failed"): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Asserts deep equality through JSON. */
export function assertEquals<T>(actual: T, expected: T, msg = ""): void {
  const a = JSON.stringify(actual), e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${msg ? msg + ": " : ""}expected ${e.slice(0, 500)}\n     got ${a.slice(0, 500)}`);
}

/** Asserts that `fn` rejects; returns the error. */
export async function assertRejects(fn: () => Promise<unknown>, msg = "expected a rejection"): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error(msg);
}
