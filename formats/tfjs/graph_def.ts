/**
 * The GraphDef side of the TF.js writer: collects the nodes of a graph-model, running each layer through the table
 * of ./graph_ops.ts. It runs for every kind: for a layers-model it records no nodes but still refuses what TF.js
 * cannot express at all (such as average-pool pads no TF op takes), so both kinds fail alike.
 *
 * @module
 */
import { TfjsError } from "../../src/errors.ts";
import type { Dim, Layer, ValueInfo } from "../../src/model/types.ts";
import { inferShapes } from "../../src/model/shapes.ts";
import type { Tensor } from "../../src/model/tensor.ts";
import { type Blocker, type EmitContext, type FlatInfo, toNhwcShape } from "./emit_context.ts";
import { GRAPH_OPS, type GraphEmitter } from "./graph_ops.ts";
import type { AttrValueJson, NodeDefJson } from "./types.ts";

/** Collects GraphDef nodes; the {@link GraphEmitter} the table entries write through. */
export class GraphDefEmitter implements GraphEmitter {
  readonly ctx: EmitContext;
  readonly nodes: NodeDefJson[] = [];
  /** Canonical value -> the node (`name` or `name:i`) producing it. */
  readonly #producers = new Map<string, string>();
  /** Set when the graph could not be built for want of shapes; an error if a graph-model is chosen. */
  unknownShape?: Blocker;
  #layer?: Layer;
  #outShapes?: (Dim[] | undefined)[];
  /** Flattened NHWC maps -> their canonical-order node; and the ones the layer being emitted reads so. */
  readonly #canonical = new Map<string, string>();
  readonly #canonicalNow = new Map<string, string>();

  constructor(ctx: EmitContext) {
    this.ctx = ctx;
  }

  /** Runs `l` (unique name `name`) through {@link GRAPH_OPS}. */
  async emit(l: Layer, name: string): Promise<void> {
    const entry = GRAPH_OPS[l.op];
    if (!entry) this.fail(l.name, `op '${l.op}' cannot be expressed in TF.js by convpress`);
    this.#layer = l;
    this.#outShapes = undefined;
    try {
      await entry!(this, l, name);
    } finally {
      this.#canonicalNow.clear();
    }
  }

  /**
   * Makes the next {@link emit} read the flattened NHWC map `v` (held in TF's h, w, c order, for an FC) in the
   * canonical c, h, w order: a Reshape to [N, H, W, C], a Transpose to NCHW and a Reshape back, made once per value.
   */
  async readCanonical(v: string, f: FlatInfo): Promise<string> {
    let node = this.#canonical.get(v);
    if (node === undefined) {
      const base = this.ctx.uniqueName(`${v}_chw`);
      const I32 = { type: "DT_INT32" };
      const s1 = await this.smallConst(`${base}/nhwc_shape`, [4], [-1, f.h, f.w, f.c]);
      const r1 = this.node("Reshape", this.unique(`${base}_nhwc`), [this.g(v), s1], { Tshape: I32 });
      const p = await this.smallConst(`${base}/perm`, [4], [0, 3, 1, 2]);
      const t = this.node("Transpose", this.unique(`${base}_nchw`), [r1, p], { Tperm: I32 });
      const s2 = await this.smallConst(`${base}/flat_shape`, [2], [-1, f.c * f.h * f.w]);
      node = this.node("Reshape", base, [t, s2], { Tshape: I32 });
      this.#canonical.set(v, node);
    }
    this.#canonicalNow.set(v, node);
    return node;
  }

  node(op: string, name: string, input: string[], attr: Record<string, AttrValueJson> = {}): string {
    this.ctx.reserveName(name);
    if (this.ctx.graphLive) this.nodes.push({ name, op, input, attr: { T: { type: "DT_FLOAT" }, ...attr } });
    return name;
  }

  g(v: string): string {
    const o = this.#canonicalNow.get(v);
    if (o !== undefined) return o;
    const n = this.#producers.get(v);
    if (n === undefined && this.unknownShape) return "?"; // the graph side is abandoned (see abandon())
    if (n === undefined) throw new TfjsError("bad_format", `TF.js writer: value '${v}' has no producer`);
    return n;
  }

  /** True when some node produces canonical value `v`. */
  has(v: string): boolean {
    return this.#producers.has(v);
  }

  out(v: string, node: string): void {
    this.#producers.set(v, node);
  }

  async smallConst(
    base: string,
    shape: number[],
    values: number[],
    dtype: "int32" | "float32" = "int32",
  ): Promise<string> {
    const name = this.ctx.uniqueName(base);
    if (!this.ctx.graphLive) return name;
    this.#constNode(name, dtype === "int32" ? "DT_INT32" : "DT_FLOAT", shape);
    await this.ctx.smallConst(name, shape, values, dtype);
    return name;
  }

  async weight(name: string, t: Tensor): Promise<string> {
    const n = this.ctx.uniqueName(name);
    await this.ctx.graphWeight(n, t);
    if (this.ctx.graphLive) this.#constNode(n, "DT_FLOAT", [...t.shape]);
    return n;
  }

  async param(name: string, make: () => Tensor): Promise<string> {
    const shape = await this.ctx.param(name, make);
    if (this.ctx.graphLive) this.#constNode(name, "DT_FLOAT", [...shape]);
    return name;
  }

  shape(v: string): Dim[] | undefined {
    const l = this.#layer;
    const i = l ? l.outputs.indexOf(v) : -1;
    if (i < 0) return this.ctx.shape(v);
    this.#outShapes ??= inferShapes(l!, l!.inputs.map((x) => this.ctx.shape(x)));
    return this.#outShapes[i];
  }

  unique(base: string): string {
    return this.ctx.uniqueName(base);
  }

  fail(layer: string, why: string): never {
    return this.ctx.failTfjs(layer, why);
  }

  abandon(layer: string, what: string): void {
    this.unknownShape ??= { layer, what };
    if (this.ctx.kind === "graph-model") this.fail(layer, this.unknownShape.what);
  }

  /** Declares a model input as a Placeholder (NCHW -> NHWC). */
  declareInput(i: ValueInfo, node: string): void {
    if (this.ctx.graphLive) {
      this.nodes.push({
        name: node,
        op: "Placeholder",
        attr: { dtype: { type: "DT_FLOAT" }, shape: placeholderShape(toNhwcShape(i.shape)) },
      });
    }
    this.#producers.set(i.name, node);
  }

  /** Puts the header's shape on Placeholder `node` (learned after the input was declared). */
  updateInput(node: string, nhwc: readonly (number | string | null)[]): void {
    const n = this.nodes.find((x) => x.name === node);
    if (n) n.attr!.shape = placeholderShape(nhwc);
  }

  #constNode(name: string, dtype: "DT_FLOAT" | "DT_INT32", shape: number[]): void {
    this.nodes.push({
      name,
      op: "Const",
      attr: {
        dtype: { type: dtype },
        value: { tensor: { dtype, tensorShape: { dim: shape.map((s) => ({ size: String(s) })) } } },
      },
    });
  }
}

function placeholderShape(nhwc: readonly (number | string | null)[]): AttrValueJson {
  return { shape: { dim: nhwc.map((d) => ({ size: String(typeof d === "number" ? d : -1) })) } };
}
