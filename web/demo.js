// The demo page: load a .cvp with the streaming loader, show its per-layer report, run it on an image, show the
// top-5. Plain JavaScript (no build step); `tf` is the global of the tfjs scripts served from node_modules.
//
// Query parameters (used by tests/browser_test.ts, handy by hand too):
//   model=URL       fetch this .cvp (streaming) at start
//   image=URL       and this image, then run
//   labels=URL      class names, one per line (a leading "N " index is dropped)
//   preprocess=...  auto | caffe | mnist | unit | torch
//   backend=...     wasm (default) | webgl | cpu
//   run=0           load only (the heap measurement of bench/browser_heap.ts)
import { loadCvpModel } from "./cvp_loader.js";

/* global tf */
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** What the page did, for people reading the page and for tests reading `window.cvpDemo`. */
const state = {
  state: "idle",
  error: undefined,
  backend: undefined,
  model: undefined,
  report: undefined,
  result: undefined,
  progress: [],
  labels: undefined,
};
globalThis.cvpDemo = state;
/** Loads a .cvp from a URL (for scripts driving the page, such as bench/browser_heap.ts). */
state.load = (url) => loadModel(url, url.slice(url.lastIndexOf("/") + 1));

function setStatus(s, text) {
  state.state = s;
  const el = $("status");
  el.dataset.state = s;
  el.textContent = text;
}

const fmtInt = (n) => n.toLocaleString("en-US");
function fmtBytes(n) {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(2)} MB`;
}
const fmtShape = (s) => s.map((d) => (d === null ? "N" : d)).join("x");

async function setBackend(name) {
  if (name === "wasm") tf.wasm.setWasmPaths("/vendor/tfjs-backend-wasm/");
  if (!(await tf.setBackend(name))) throw new Error(`tfjs backend '${name}' could not start`);
  await tf.ready();
  state.backend = tf.getBackend();
}

function showReport(m) {
  const rows = m.layers.map((l, i) => {
    const enc = l.tensors.map((t) => `${t.role}: ${t.encoding}`).join(", ");
    return `<tr><td class="n">${i + 1}</td><td>${esc(l.name)}</td><td>${l.op}</td><td>${fmtShape(l.outputShape)}</td>` +
      `<td class="n">${fmtInt(l.params)}</td><td>${enc}</td><td class="n">${
        l.bytes ? fmtBytes(l.bytes) : ""
      }</td></tr>`;
  });
  const params = m.layers.reduce((a, l) => a + l.params, 0);
  const body = m.layers.reduce((a, l) => a + l.bytes, 0);
  $("report").innerHTML = `<table id="layers"><thead><tr><th class="n">#</th><th>layer</th><th>op</th>` +
    `<th>output</th><th class="n">params</th><th>encoding</th><th class="n">bytes</th></tr></thead>` +
    `<tbody>${rows.join("")}</tbody><tfoot><tr><td></td><td>total</td><td>${m.layers.length} layers</td><td></td>` +
    `<td class="n">${fmtInt(params)}</td><td></td><td class="n">${fmtBytes(body)}</td></tr></tfoot></table>`;
  $("summary").textContent = `${m.header.name} (${m.header.sourceFormat}): input ${
    m.inputs.map((i) => `${i.name} ${fmtShape(i.shape)}`).join(", ")
  }; ${fmtInt(params)} parameters, ${fmtBytes(params * 4)} as float32, ${fmtBytes(m.bytes)} file (${
    (params * 4 / m.bytes).toFixed(1)
  }x)`;
  state.report = {
    name: m.header.name,
    bytes: m.bytes,
    params,
    layers: m.layers,
    inputs: m.inputs,
    outputs: m.outputs,
  };
}

async function loadModel(source, label) {
  try {
    setStatus("loading", `Loading ${label}…`);
    state.result = undefined;
    state.progress = [];
    if (state.model) state.model.model.dispose();
    state.model = undefined;
    const t0 = performance.now();
    const m = await loadCvpModel(source, {
      onProgress: (p) => {
        state.progress.push({ phase: p.phase, bytes: p.bytes, layers: p.layers, tensors: p.tensors });
        $("progress").max = p.totalBytes ?? 1;
        $("progress").value = p.totalBytes ? p.bytes : 0;
        $("progressText").textContent = `${fmtBytes(p.bytes)}${p.totalBytes ? ` of ${fmtBytes(p.totalBytes)}` : ""}` +
          `, ${p.layers} layers, ${p.tensors} tensors${p.layer ? ` (${p.layer})` : ""}`;
      },
    });
    state.model = m;
    state.loadMs = performance.now() - t0;
    showReport(m);
    const c = m.inputs[0].shape;
    $("preview").width = c[3] ?? 28;
    $("preview").height = c[2] ?? 28;
    setStatus("ready", `Loaded ${label} in ${state.loadMs.toFixed(0)} ms: pick or drop an image`);
  } catch (e) {
    fail(e);
  }
}

function fail(e) {
  state.error = String(e && e.message ? e.message : e);
  setStatus("error", `Error: ${state.error}`);
  console.error(e);
}

/** The image as the model's NCHW float input, by the chosen preprocessing. */
function preprocess(img) {
  const [, c, h, w] = state.model.inputs[0].shape;
  const cv = $("preview");
  cv.width = w;
  cv.height = h;
  const ctx = cv.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingEnabled = true;
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(img, 0, 0, w, h);
  const px = ctx.getImageData(0, 0, w, h).data;
  let mode = $("preprocess").value;
  if (mode === "auto") mode = c === 1 ? "mnist" : "caffe";
  const x = new Float32Array(c * h * w);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    const r = px[4 * i], g = px[4 * i + 1], b = px[4 * i + 2];
    if (c === 1) {
      const v = (r + g + b) / 3;
      x[i] = mode === "mnist" ? v / 256 : mode === "caffe" ? v - 117 : v / 255;
    } else if (mode === "caffe") {
      x[i] = b - 104;
      x[plane + i] = g - 117;
      x[2 * plane + i] = r - 123;
    } else if (mode === "torch") {
      x[i] = (r / 255 - 0.485) / 0.229;
      x[plane + i] = (g / 255 - 0.456) / 0.224;
      x[2 * plane + i] = (b / 255 - 0.406) / 0.225;
    } else {
      const d = mode === "mnist" ? 256 : 255;
      x[i] = r / d;
      x[plane + i] = g / d;
      x[2 * plane + i] = b / d;
    }
  }
  return { x, shape: [1, c, h, w], mode };
}

async function runImage(url, label) {
  if (!state.model) return fail(new Error("Load a .cvp first"));
  try {
    setStatus("running", `Running on ${label}…`);
    const img = new Image();
    img.src = url;
    await img.decode();
    const { x, shape, mode } = preprocess(img);
    const m = state.model;
    const t0 = performance.now();
    const input = tf.tensor(x, shape);
    const y = await m.model.executeAsync({ [m.inputs[0].node]: input }, m.outputs[0].node);
    const out = await y.data();
    const ms = performance.now() - t0;
    input.dispose();
    y.dispose();
    const order = Array.from(out.keys()).sort((a, b) => out[b] - out[a]).slice(0, 5);
    const top5 = order.map((i) => ({ index: i, score: out[i], label: state.labels?.[i] ?? String(i) }));
    const max = Math.max(...top5.map((t) => Math.abs(t.score))) || 1;
    $("top5").innerHTML = top5.map((t) =>
      `<li><span class="bar" style="width:${(60 * Math.abs(t.score) / max).toFixed(0)}px"></span>` +
      `${esc(t.label)} <small>(${t.index}; ${t.score.toPrecision(4)})</small></li>`
    ).join("");
    $("timing").textContent = `${state.backend} backend, ${ms.toFixed(0)} ms, preprocess ${mode}`;
    state.result = {
      image: label,
      preprocess: mode,
      inputShape: shape,
      input: Array.from(x),
      outputShape: y.shape,
      output: Array.from(out),
      top5,
      ms,
    };
    setStatus("done", `Top-1: ${top5[0].label} (${m.header.name} on ${label})`);
  } catch (e) {
    fail(e);
  }
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[ch]);
}

async function loadLabels(url) {
  const text = await (await fetch(url)).text();
  state.labels = text.split("\n").filter((l) => l.trim()).map((l) => l.replace(/^\d+\s+/, ""));
}

function dropZone(el, onFile) {
  el.addEventListener("dragover", (e) => {
    e.preventDefault();
    el.classList.add("over");
  });
  el.addEventListener("dragleave", () => el.classList.remove("over"));
  el.addEventListener("drop", (e) => {
    e.preventDefault();
    el.classList.remove("over");
    const f = e.dataTransfer?.files?.[0];
    if (f) onFile(f);
  });
}

const onModelFile = (f) => loadModel(f, f.name);
const onImageFile = (f) => runImage(URL.createObjectURL(f), f.name);
$("modelFile").addEventListener("change", (e) => e.target.files[0] && onModelFile(e.target.files[0]));
$("imageFile").addEventListener("change", (e) => e.target.files[0] && onImageFile(e.target.files[0]));
dropZone($("modelDrop"), onModelFile);
dropZone($("imageDrop"), onImageFile);
$("backend").addEventListener("change", (e) => setBackend(e.target.value).catch(fail));

(async () => {
  try {
    if (params.get("preprocess")) $("preprocess").value = params.get("preprocess");
    const backend = params.get("backend") ?? "wasm";
    $("backend").value = backend;
    await setBackend(backend);
    if (params.get("labels")) await loadLabels(params.get("labels"));
    const model = params.get("model");
    if (!model) return setStatus("idle", `tfjs ${tf.version.tfjs}, ${state.backend} backend: pick or drop a .cvp`);
    await loadModel(model, model.slice(model.lastIndexOf("/") + 1));
    const image = params.get("image");
    if (image && state.model && params.get("run") !== "0") {
      await runImage(image, image.slice(image.lastIndexOf("/") + 1));
    }
  } catch (e) {
    fail(e);
  }
})();
