/**
 * Serves the demo page (`web/`) and the tfjs scripts it uses, straight from `node_modules` (no CDN, no build step):
 * `deno task serve [--port 8000] [--models DIR]`. `--models DIR` also serves DIR's files under `/models/`, so a page
 * can be opened on `/?model=/models/x.cvp`.
 *
 * @module
 */
import { parseArgs } from "node:util";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  json: "application/json",
  wasm: "application/wasm",
  png: "image/png",
  jpeg: "image/jpeg",
  jpg: "image/jpeg",
  txt: "text/plain; charset=utf-8",
  cvp: "application/octet-stream",
};

/** Options of {@link serveDemo}. */
export interface ServeOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Served under `/models/`. */
  models?: string;
  /** Stops the server. */
  signal?: AbortSignal;
  /** Called once listening. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** URL prefix -> folder. */
function mounts(models?: string): [string, string][] {
  const m: [string, string][] = [
    ["/vendor/tfjs/", `${ROOT}/node_modules/@tensorflow/tfjs/dist/`],
    ["/vendor/tfjs-backend-wasm/", `${ROOT}/node_modules/@tensorflow/tfjs-backend-wasm/dist/`],
  ];
  if (models) m.push(["/models/", `${models.replace(/\/$/, "")}/`]);
  m.push(["/", `${ROOT}/web/`]);
  return m;
}

/** Answers one request from the mounted folders (GET and HEAD; no listing, nothing outside them). */
async function handle(req: Request, table: [string, string][]): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") return new Response("Method not allowed", { status: 405 });
  let path = decodeURIComponent(new URL(req.url).pathname);
  if (path === "/") path = "/index.html";
  if (path.split("/").includes("..")) return new Response("Bad path", { status: 400 });
  const hit = table.find(([prefix]) => path.startsWith(prefix));
  if (!hit) return new Response("Not found", { status: 404 });
  const file = hit[1] + path.slice(hit[0].length);
  try {
    const st = await Deno.stat(file);
    if (!st.isFile) return new Response("Not found", { status: 404 });
    const headers = {
      "content-type": TYPES[file.slice(file.lastIndexOf(".") + 1).toLowerCase()] ?? "application/octet-stream",
      "content-length": String(st.size),
      "cache-control": "no-store",
    };
    if (req.method === "HEAD") return new Response(null, { headers });
    const f = await Deno.open(file, { read: true });
    return new Response(f.readable, { headers });
  } catch {
    return new Response("Not found", { status: 404 });
  }
}

/** Starts the demo server; resolves once it listens. */
export function serveDemo(options: ServeOptions = {}): Promise<Deno.HttpServer<Deno.NetAddr>> {
  const table = mounts(options.models);
  return new Promise((resolve) => {
    const server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 8000,
      signal: options.signal,
      onListen: (addr) => {
        options.onListen?.(addr);
        // onListen may run inside Deno.serve itself, before `server` is assigned.
        queueMicrotask(() => resolve(server));
      },
    }, (req) => handle(req, table));
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { port: { type: "string", default: "8000" }, models: { type: "string" } },
  });
  await serveDemo({
    port: Number(values.port),
    models: values.models,
    onListen: (a) => console.log(`convpress demo on http://${a.hostname}:${a.port}/`),
  });
}
