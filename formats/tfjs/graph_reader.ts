/**
 * Maps a TF.js graph-model (GraphDef JSON nodes, NHWC) to canonical layers (NCHW). Const nodes become parameters,
 * read lazily from the weight shards; every other node becomes zero or more canonical layers.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Dim, ModelHeader, ValueInfo } from "../../src/model/types.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { CanonicalBuilder, type TfPadding } from "./builder.ts";
import type { AttrValueJson, GraphDefJson, ModelJson, NodeDefJson } from "./types.ts";

const dec = new TextDecoder();

/** Decodes a base64 bytes attribute. */
function b64(s: string): string {
  return dec.decode(Uint8Array.from(atob(s), (c) => c.charCodeAt(0)));
}

/** Reads node attributes in their JSON encodings. */
class Attrs {
  readonly #a: Record<string, AttrValueJson>;
  constructor(n: NodeDefJson) {
    this.#a = n.attr ?? {};
  }
  has(k: string): boolean {
    return k in this.#a;
  }
  str(k: string, def = ""): string {
    const v = this.#a[k]?.s;
    return v === undefined ? def : b64(v);
  }
  int(k: string, def = 0): number {
    const v = this.#a[k]?.i;
    return v === undefined ? def : Number(v);
  }
  float(k: string, def = 0): number {
    return this.#a[k]?.f ?? def;
  }
  bool(k: string, def = false): boolean {
    return this.#a[k]?.b ?? def;
  }
  ints(k: string, def: number[] = []): number[] {
    const l = this.#a[k]?.list?.i;
    return l ? l.map(Number) : def;
  }
  strs(k: string): string[] {
    return (this.#a[k]?.list?.s ?? []).map(b64);
  }
  shape(k: string): number[] | undefined {
    const s = this.#a[k]?.shape;
    if (!s || s.unknownRank) return undefined;
    return (s.dim ?? []).map((d) => Number(d.size ?? -1));
  }
}

/** A value's TF name without the `:0` suffix; `^ctrl` inputs are dropped by the caller. */
function valueName(input: string): string {
  return input.endsWith(":0") ? input.slice(0, -2) : input;
}

function padding(a: Attrs): TfPadding {
  const p = a.str("padding", "VALID").toUpperCase();
  if (p === "SAME") return "same";
  if (p === "VALID") return "valid";
  if (p === "EXPLICIT") {
    const e = a.ints("explicit_paddings");
    // NHWC pairs: [0,0, top,bottom, left,right, 0,0] -> [top, left, bottom, right]
    return [e[2], e[4], e[3], e[5]];
  }
  throw new TfjsError("unsupported", `Unknown TF padding '${p}'`);
}

function spatial(v: number[], def: number): number[] {
  return v.length === 4 ? [v[1], v[2]] : v.length === 2 ? v : [def, def];
}

/** Builds the header and canonical layers of a graph-model. `weight(name)` gives a Const node's lazy tensor. */
export async function readGraphModel(
  json: ModelJson,
  weight: (name: string) => Tensor | undefined,
  options: { inputShape?: number[]; name?: string } = {},
): Promise<{ header: ModelHeader; builder: CanonicalBuilder }> {
  const graph = json.modelTopology as GraphDefJson;
  const nodes = graph.node ?? [];
  const byName = new Map<string, NodeDefJson>();
  for (const n of nodes) byName.set(n.name, n);
  const consumers = new Map<string, number>();
  for (const n of nodes) {
    for (const i of n.input ?? []) {
      if (i.startsWith("^")) continue;
      const v = valueName(i);
      consumers.set(v, (consumers.get(v) ?? 0) + 1);
    }
  }

  // Outputs: the signature's, else nodes nothing consumes.
  const sig = json.signature ?? (json.userDefinedMetadata?.signature as ModelJson["signature"]);
  let outNames = Object.values(sig?.outputs ?? {}).map((t) => valueName(t.name));
  if (outNames.length === 0) {
    outNames = nodes.filter((n) => !consumers.has(n.name) && !["Const", "NoOp", "Placeholder"].includes(n.op)).map((
      n,
    ) => n.name);
  }

  // Topological order of what the outputs need (GraphDef does not promise one).
  const order: NodeDefJson[] = [];
  const state = new Map<string, number>();
  const visit = (name: string) => {
    const base = name.split(":")[0];
    const st = state.get(base);
    if (st === 2) return;
    if (st === 1) throw new TfjsError("unsupported", `TF.js graph has a cycle through node '${base}'`, { layer: base });
    const n = byName.get(base);
    if (!n) throw new TfjsError("bad_format", `TF.js graph refers to a missing node '${base}'`, { layer: base });
    state.set(base, 1);
    const stack: string[] = (n.input ?? []).filter((i) => !i.startsWith("^"));
    for (const i of stack) visit(i);
    state.set(base, 2);
    order.push(n);
  };
  for (const o of outNames) visit(o);

  // Inputs: Placeholders, NHWC -> NCHW.
  const inputs: ValueInfo[] = [];
  for (const n of order) {
    if (n.op !== "Placeholder") continue;
    const a = new Attrs(n);
    let s: Dim[] = (a.shape("shape") ?? []).map((d) => (d < 0 ? null : d));
    if (s.length === 4) s = [s[0], s[3], s[1], s[2]];
    if (options.inputShape && options.inputShape.length === s.length) {
      s = s.map((d, i) => (d === null ? options.inputShape![i] : d));
    }
    inputs.push({ name: n.name, dtype: "float32", shape: s });
  }
  const header: ModelHeader = {
    name: options.name ?? "model",
    sourceFormat: "tfjs",
    inputs,
    outputs: [],
    metadata: {},
  };
  if (json.generatedBy) header.metadata.generatedBy = String(json.generatedBy);
  if (json.convertedBy) header.metadata.convertedBy = String(json.convertedBy);
  const b = new CanonicalBuilder(header);

  const constOf = (input: string, node: string): Tensor => {
    const v = valueName(input);
    const n = byName.get(v);
    const t = n?.op === "Const" ? weight(v) : undefined;
    if (!t) {
      throw new TfjsError(
        "unsupported",
        `Cannot convert TF.js node '${node}': input '${v}' is not a constant in the weights manifest`,
        {
          layer: node,
        },
      );
    }
    return t;
  };
  const isConst = (input: string) => byName.get(valueName(input))?.op === "Const";
  const numbers = async (input: string, node: string) => await constOf(input, node).numbers();
  const vals = new Map<string, string>(); // TF value -> canonical value
  const act = (input: string, node: string): string => {
    const v = valueName(input);
    const c = vals.get(v);
    if (c === undefined) {
      throw new TfjsError("unsupported", `Cannot convert TF.js node '${node}': input '${v}' is not an activation`, {
        layer: node,
      });
    }
    return c;
  };

  for (const n of order) {
    if (n.op === "Const" || n.op === "NoOp") continue;
    if (n.op === "Placeholder") {
      vals.set(n.name, n.name);
      continue;
    }
    const ins = (n.input ?? []).filter((i) => !i.startsWith("^"));
    try {
      vals.set(n.name, await convertNode(n, ins));
    } catch (e) {
      if (e instanceof TfjsError && !e.layer) e.layer = n.name;
      throw e;
    }
  }
  header.outputs = outNames.map((o) => {
    const v = vals.get(o) ?? o;
    return { name: v, dtype: "float32", shape: b.shape(v) ?? [] };
  });
  return { header, builder: b };

  async function convertNode(n: NodeDefJson, ins: string[]): Promise<string> {
    const a = new Attrs(n);
    const name = n.name;
    const x = () => act(ins[0], name);
    const fmt = a.str("data_format", "NHWC");
    if (fmt !== "NHWC" && a.has("data_format")) {
      throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}' (${n.op}): data_format ${fmt}`, {
        layer: name,
      });
    }
    switch (n.op) {
      case "Conv2D":
      case "_FusedConv2D":
      case "DepthwiseConv2dNative":
      case "FusedDepthwiseConv2dNative": {
        const depthwise = n.op.includes("Depthwise");
        const fused = a.strs("fused_ops");
        let bias: Tensor | undefined;
        let rest = fused;
        if (fused[0] === "BiasAdd") {
          bias = constOf(ins[2], name);
          rest = fused.slice(1);
        }
        const convOut = rest.length ? `${name}/conv` : name;
        let v = b.conv(name, convOut, x(), constOf(ins[1], name), bias, {
          strides: spatial(a.ints("strides"), 1),
          dilations: spatial(a.ints("dilations"), 1),
          padding: padding(a),
          depthwise,
        });
        if (fused[0] === "FusedBatchNorm") {
          const [sc, of, me, va] = ins.slice(2, 6).map((i) => constOf(i, name));
          rest = fused.slice(1);
          v = b.add({
            name: b.unique(`${name}/bn`),
            op: "BatchNorm",
            attrs: { epsilon: a.float("epsilon", 1e-3) },
            inputs: [v],
            outputs: [rest.length ? `${name}/bn` : name],
            params: { scale: sc, bias: of, mean: me, var: va },
          });
        }
        return fusedActivation(rest, v, a, name);
      }
      case "MatMul":
      case "_FusedMatMul": {
        if (a.bool("transpose_a")) {
          throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}' (${n.op}): transpose_a`, {
            layer: name,
          });
        }
        const fused = a.strs("fused_ops");
        let bias: Tensor | undefined;
        let rest = fused;
        if (fused[0] === "BiasAdd") {
          bias = constOf(ins[2], name);
          rest = fused.slice(1);
        }
        const v = b.fc(
          name,
          rest.length ? `${name}/fc` : name,
          x(),
          constOf(ins[1], name),
          bias,
          a.bool("transpose_b"),
        );
        return fusedActivation(rest, v, a, name);
      }
      case "BiasAdd":
      case "BiasAddV1":
        return biasAdd(name, x(), constOf(ins[1], name));
      case "FusedBatchNorm":
      case "FusedBatchNormV2":
      case "FusedBatchNormV3": {
        const [sc, of, me, va] = ins.slice(1, 5).map((i) => constOf(i, name));
        return b.add({
          name: b.unique(name),
          op: "BatchNorm",
          attrs: { epsilon: a.float("epsilon", 1e-3) },
          inputs: [x()],
          outputs: [name],
          params: { scale: sc, bias: of, mean: me, var: va },
        });
      }
      case "Relu":
      case "Relu6":
      case "Sigmoid":
      case "Tanh":
      case "Softmax":
        return b.activation(n.op, name, x(), name);
      case "LeakyRelu":
        return b.activation("leakyrelu", name, x(), name, a.float("alpha", 0.2));
      case "MaxPool":
      case "AvgPool": {
        const k = spatial(a.ints("ksize"), 1), s = spatial(a.ints("strides"), 1);
        const pads = b.pads(x(), name, padding(a), k, s, [1, 1]);
        const attrs = { kernel: k, strides: s, pads, ceil: false } as Record<string, number[] | boolean>;
        if (n.op === "AvgPool") attrs.countIncludePad = false;
        return b.op(n.op === "MaxPool" ? "MaxPool" : "AvgPool", name, [x()], attrs);
      }
      case "Mean": {
        const axes = (await numbers(ins[1], name)).map((d) => (d < 0 ? d + 4 : d)).sort();
        if (b.rank(x()) !== 4 || axes.join() !== "1,2") {
          throw new TfjsError(
            "unsupported",
            `Cannot convert TF.js node '${name}' (Mean): only the mean over H and W of a 4-D tensor is supported`,
            {
              layer: name,
            },
          );
        }
        if (a.bool("keep_dims")) return b.op("GlobalAvgPool", name, [x()]);
        const g = b.op("GlobalAvgPool", `${name}/pool`, [x()], {}, `${name}/pool`);
        return b.flatten(name, name, g);
      }
      case "Reshape":
        return await reshape(name, x(), await numbers(ins[1], name));
      case "Squeeze": {
        const dims = a.ints("squeeze_dims", a.ints("axis"));
        const s = b.shape(x());
        if (
          s?.length === 4 && dims.map((d) => (d < 0 ? d + 4 : d)).sort().join() === "1,2" && s[2] === 1 && s[3] === 1
        ) {
          return b.flatten(name, name, x());
        }
        throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}' (Squeeze) of dims [${dims}]`, {
          layer: name,
        });
      }
      case "Pad":
      case "PadV2": {
        const p = await numbers(ins[1], name);
        if (p.length !== 8 || p[0] || p[1] || p[6] || p[7]) {
          throw new TfjsError(
            "unsupported",
            `Cannot convert TF.js node '${name}' (${n.op}): only spatial padding of a 4-D tensor`,
            {
              layer: name,
            },
          );
        }
        const value = n.op === "PadV2" ? (await numbers(ins[2], name))[0] : 0;
        return b.op("Pad", name, [x()], { pads: [p[2], p[4], p[3], p[5]], value });
      }
      case "Add":
      case "AddV2":
      case "Sub":
      case "Mul":
      case "Maximum": {
        const op = n.op === "AddV2" ? "Add" : n.op === "Maximum" ? "Max" : n.op as "Add" | "Sub" | "Mul";
        const c0 = isConst(ins[0]), c1 = isConst(ins[1]);
        if (!c0 && !c1) return b.op(op, name, [x(), act(ins[1], name)]);
        if (op !== "Max" && c1 && !c0) return b.scaleConst(name, name, x(), op, constOf(ins[1], name));
        if ((op === "Add" || op === "Mul") && c0 && !c1) {
          return b.scaleConst(name, name, act(ins[1], name), op, constOf(ins[0], name));
        }
        throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}' (${n.op}) of these constant operands`, {
          layer: name,
        });
      }
      case "AddN": {
        let v = act(ins[0], name);
        for (let i = 1; i < ins.length; i++) {
          v = b.op(
            "Add",
            i === ins.length - 1 ? name : `${name}/${i}`,
            [v, act(ins[i], name)],
            {},
            i === ins.length - 1 ? name : `${name}/${i}`,
          );
        }
        return v;
      }
      case "ConcatV2":
      case "Concat": {
        const axisIn = n.op === "ConcatV2" ? ins[ins.length - 1] : ins[0];
        const parts = n.op === "ConcatV2" ? ins.slice(0, -1) : ins.slice(1);
        const vs = parts.map((p) => act(p, name));
        const axis = CanonicalBuilder.axis((await numbers(axisIn, name))[0], b.rank(vs[0]));
        return b.op("Concat", name, vs, { axis });
      }
      case "Identity":
      case "StopGradient":
      case "Snapshot":
        return b.op("Identity", name, [x()]);
      default:
        throw new TfjsError(
          "unsupported",
          `Cannot convert TF.js node '${name}': op '${n.op}' has no canonical equivalent`,
          {
            layer: name,
          },
        );
    }
  }

  function fusedActivation(ops: string[], v: string, a: Attrs, name: string): string {
    if (ops.length === 0) return v;
    if (ops.length > 1) {
      throw new TfjsError("unsupported", `Cannot convert TF.js node '${name}': fused ops [${ops.join(", ")}]`, {
        layer: name,
      });
    }
    const kind = ops[0] === "LeakyRelu" ? "leakyrelu" : ops[0];
    return b.activation(kind, `${name}/act`, v, name, a.float("leakyrelu_alpha", 0.2));
  }

  function biasAdd(name: string, input: string, bias: Tensor): string {
    // Fold into the producing Conv/FC when it has no bias and nothing else reads its output.
    const prod = b.layers.findLast((l) => l.outputs.includes(input));
    const tfName = [...vals.entries()].find(([, c]) => c === input)?.[0] ?? input;
    if (
      prod && (prod.op === "Conv" || prod.op === "FC") && !prod.params.bias && (consumers.get(tfName) ?? 0) === 1 &&
      b.layers.at(-1) === prod
    ) {
      prod.params.bias = bias;
      b.layers.pop();
      return b.add({ ...prod, name: prod.name, outputs: [name] });
    }
    return b.scaleConst(name, name, input, "Add", bias);
  }

  async function reshape(name: string, input: string, spec: number[]): Promise<string> {
    const rank = b.rank(input);
    if (rank === 4 && spec.length === 2) return b.flatten(name, name, input);
    if (rank === 2 && spec.length === 2) return b.op("Reshape", name, [input], { shape: spec });
    // General case: reshape in NHWC order between transposes.
    let v = input;
    if (rank === 4) v = b.op("Transpose", `${name}/to_nhwc`, [v], { perm: [0, 2, 3, 1] }, `${name}/to_nhwc`);
    const last = spec.length === 4;
    v = b.op("Reshape", last ? `${name}/nhwc` : name, [v], { shape: spec }, last ? `${name}/nhwc` : name);
    if (last) v = b.op("Transpose", name, [v], { perm: [0, 3, 1, 2] });
    return await Promise.resolve(v);
  }
}
