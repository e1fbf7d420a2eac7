import * as ort from "onnxruntime-node";
const [a, b, shapeS] = Deno.args;
const shape = shapeS.split(",").map(Number);
const n = shape.reduce((x, y) => x * y, 1);
const x = new Float32Array(n);
let s = 1;
for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; x[i] = s / 2147483648; }
async function run(p: string) {
  const sess = await ort.InferenceSession.create(p);
  const r = await sess.run({ [sess.inputNames[0]]: new ort.Tensor("float32", x, shape) });
  return r[sess.outputNames[0]].data as Float32Array;
}
const ya = await run(a), yb = await run(b);
let d = 0, m = 0;
for (let i = 0; i < ya.length; i++) { d = Math.max(d, Math.abs(ya[i] - yb[i])); m = Math.max(m, Math.abs(ya[i])); }
console.log(`outputs ${ya.length}, max |diff| ${d}, max |y| ${m}`);
