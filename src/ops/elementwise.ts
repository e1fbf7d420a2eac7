/**
 * Element-wise ops: activations, unary math, and binary ops with numpy broadcasting between activations or with a
 * constant operand (the `const` parameter; `constFirst` puts it on the left, which matters for Sub, Div and Pow).
 *
 * @module
 */
import type { Dim, Layer } from "../model/types.ts";
import type { Shape } from "../model/shapes.ts";
import type { Tf, TfTensor } from "./op_def.ts";
import { keepLayout, toNchw } from "./act.ts";
import { type Act, bool, defineOp, float, floats, type KernelContext, type OpDef, str } from "./op_def.ts";
import { broadcastShapes } from "./window.ts";

type NoAttrs = Record<string, never>;

/** An element-wise op of one input that keeps the layout. */
function unary(doc: string, f: (tf: Tf, t: TfTensor) => TfTensor): OpDef<NoAttrs> {
  return {
    doc,
    attrs: {},
    elementwise: true,
    kernel: (k, [x]) => [keepLayout(k.tf, x, (t) => f(k.tf, t))],
  };
}

/** An element-wise op with attributes. */
function unaryWith<A>(doc: string, attrs: OpDef<A>["attrs"], f: (tf: Tf, t: TfTensor, a: A) => TfTensor): OpDef<A> {
  return {
    doc,
    attrs,
    elementwise: true,
    kernel: (k, [x]) => [keepLayout(k.tf, x, (t) => f(k.tf, t, k.a))],
  };
}

export const Relu: OpDef<NoAttrs> = unary("max(x, 0)", (tf, t) => tf.relu(t));
export const Sigmoid: OpDef<NoAttrs> = unary("1 / (1 + exp(-x))", (tf, t) => tf.sigmoid(t));
export const Tanh: OpDef<NoAttrs> = unary("tanh(x)", (tf, t) => tf.tanh(t));
export const Identity: OpDef<NoAttrs> = unary("x", (tf, t) => tf.clone(t));
export const Abs: OpDef<NoAttrs> = unary("|x|", (tf, t) => tf.abs(t));
export const Neg: OpDef<NoAttrs> = unary("-x", (tf, t) => tf.neg(t));
export const Exp: OpDef<NoAttrs> = unary("exp(x)", (tf, t) => tf.exp(t));
export const Log: OpDef<NoAttrs> = unary("ln(x)", (tf, t) => tf.log(t));
export const Sqrt: OpDef<NoAttrs> = unary("sqrt(x)", (tf, t) => tf.sqrt(t));
export const Rsqrt: OpDef<NoAttrs> = unary("1 / sqrt(x)", (tf, t) => tf.rsqrt(t));
export const Reciprocal: OpDef<NoAttrs> = unary("1 / x", (tf, t) => tf.reciprocal(t));
export const Floor: OpDef<NoAttrs> = unary("floor(x)", (tf, t) => tf.floor(t));
export const Softplus: OpDef<NoAttrs> = unary("ln(1 + exp(x))", (tf, t) => tf.softplus(t));
export const Swish: OpDef<NoAttrs> = unary("x * sigmoid(x) (SiLU)", (tf, t) => tf.mul(t, tf.sigmoid(t)));
export const HardSwish: OpDef<NoAttrs> = unary(
  "x * clip(x / 6 + 0.5, 0, 1)",
  (tf, t) => tf.mul(t, hardSigmoid(tf, t, 1 / 6, 0.5)),
);

function hardSigmoid(tf: Tf, t: TfTensor, alpha: number, beta: number): TfTensor {
  return tf.clipByValue(tf.add(tf.mul(t, alpha), beta), 0, 1);
}

/** Attributes of Dropout. */
export interface DropoutAttrs {
  ratio: number;
}
export const Dropout: OpDef<DropoutAttrs> = unaryWith<DropoutAttrs>(
  "identity at inference",
  { ratio: float(0.5) },
  (tf, t) => tf.clone(t),
);

/** Attributes of LeakyRelu and Elu. */
export interface AlphaAttrs {
  alpha: number;
}
export const LeakyRelu: OpDef<AlphaAttrs> = unaryWith<AlphaAttrs>(
  "x < 0 ? alpha * x : x",
  { alpha: float(0.01) },
  (tf, t, a) => tf.leakyRelu(t, a.alpha),
);
export const Elu: OpDef<AlphaAttrs> = unaryWith<AlphaAttrs>(
  "x < 0 ? alpha * (exp(x) - 1) : x",
  { alpha: float(1) },
  (tf, t, a) => a.alpha === 1 ? tf.elu(t) : tf.where(tf.less(t, 0), tf.mul(tf.sub(tf.exp(t), 1), a.alpha), t),
);

/** Attributes of Selu. */
export interface SeluAttrs {
  alpha: number;
  gamma: number;
}
export const Selu: OpDef<SeluAttrs> = unaryWith<SeluAttrs>(
  "gamma * (x < 0 ? alpha * (exp(x) - 1) : x)",
  { alpha: float(1.6732632423543772), gamma: float(1.0507009873554805) },
  (tf, t, a) => tf.mul(tf.where(tf.less(t, 0), tf.mul(tf.sub(tf.exp(t), 1), a.alpha), t), a.gamma),
);

/** Attributes of HardSigmoid. */
export interface HardSigmoidAttrs {
  alpha: number;
  beta: number;
}
export const HardSigmoid: OpDef<HardSigmoidAttrs> = unaryWith<HardSigmoidAttrs>(
  "clip(alpha * x + beta, 0, 1)",
  { alpha: float(0.2), beta: float(0.5) },
  (tf, t, a) => hardSigmoid(tf, t, a.alpha, a.beta),
);

/** Attributes of Clip. */
export interface ClipAttrs {
  min: number;
  max: number;
}
export const Clip: OpDef<ClipAttrs> = unaryWith<ClipAttrs>(
  "min(max(x, min), max) (Relu6 is Clip 0..6)",
  { min: float(-Infinity), max: float(Infinity) },
  (tf, t, a) => {
    let y = t;
    if (a.min !== -Infinity) y = tf.maximum(y, a.min);
    if (a.max !== Infinity) y = tf.minimum(y, a.max);
    return y;
  },
);

/** Attributes of Cast. */
export interface CastAttrs {
  to: string;
}
const CAST_TARGETS = ["float32", "float16", "float64", "int32", "int64", "int8", "uint8", "int16", "bool"] as const;
export const Cast: OpDef<CastAttrs> = unaryWith<CastAttrs>(
  "convert to dtype `to` (eval keeps float32 values rounded as the target would hold them)",
  { to: str("float32", CAST_TARGETS) },
  (tf, t, a) => {
    if (a.to === "bool") return tf.cast(tf.notEqual(t, 0), "float32");
    if (a.to.startsWith("float")) return tf.clone(t);
    // Float to integer truncates toward zero (ONNX, TF).
    return tf.cast(tf.cast(t, "int32"), "float32");
  },
);

/** PRelu: x < 0 ? slope * x : x, the slope broadcast against NCHW (usually [C, 1, 1] or [C]). */
export const PRelu: OpDef<NoAttrs> = defineOp<NoAttrs>({
  doc: "x < 0 ? slope * x : x; slope broadcasts against the NCHW input ([C,1,1] per channel, [1] shared)",
  params: ["slope"],
  attrs: {},
  elementwise: true,
  kernel(k, [x]) {
    const s = k.params.slope;
    if (!s) throw k.fail("needs a slope");
    return [broadcastWith(k, x, s, false, (tf, a, b) => tf.add(tf.relu(a), tf.mul(b, tf.minimum(a, 0))))];
  },
});

/** Attributes of the binary ops. */
export interface BinaryAttrs {
  /** The constant operand (param `const`) is the left one. */
  constFirst: boolean;
  /** Add only: a coefficient per activation input (Caffe Eltwise SUM). */
  coeffs: number[] | null;
}

/**
 * Runs `f(x, c)` with constant `c` broadcast in NCHW semantics. The layout is kept when the constant is a scalar or
 * rank 4 (transposed to match); otherwise the activation goes to NCHW first.
 */
function broadcastWith(
  k: KernelContext<unknown>,
  x: Act,
  c: { data: Float32Array; shape: readonly number[] },
  constFirst: boolean,
  f: (tf: Tf, a: TfTensor, b: TfTensor) => TfTensor,
): Act {
  const { tf } = k;
  const nhwc = x.t.rank === 4 && x.nhwc && (c.data.length === 1 || c.shape.length === 4);
  const t = tf.tidy(() => {
    const xt = nhwc ? x.t : toNchw(tf, x);
    let ct = tf.tensor(c.data, [...c.shape]);
    if (nhwc && c.shape.length === 4) ct = tf.transpose(ct, [0, 2, 3, 1]);
    const y = constFirst ? f(tf, ct, xt) : f(tf, xt, ct);
    return y === x.t ? tf.clone(y) : y;
  });
  return { t, nhwc };
}

function binaryInfer(a: BinaryAttrs, ins: Shape[], l: Layer): Shape[] {
  const c = l.params.const;
  const shapes: Shape[] = c ? (a.constFirst ? [[...c.shape], ...ins] : [...ins, [...c.shape]]) : ins;
  if (shapes.some((s) => !s)) return [undefined];
  let out: Dim[] | undefined = shapes[0];
  for (const s of shapes.slice(1)) out = out && broadcastShapes(out, s!);
  return [out];
}

function binary(doc: string, f: (tf: Tf, a: TfTensor, b: TfTensor) => TfTensor, variadic = false): OpDef<BinaryAttrs> {
  return {
    doc,
    params: ["const"],
    attrs: { constFirst: bool(false), coeffs: floats(null) },
    validate(a, l) {
      const n = l.inputs.length + (l.params.const ? 1 : 0);
      if (n < 2) return "needs two operands";
      if (n > 2 && !variadic) return `takes two operands, has ${n}`;
      if (a.coeffs && a.coeffs.length !== l.inputs.length) return `has ${a.coeffs.length} coefficients`;
      return undefined;
    },
    infer: binaryInfer,
    kernel(k, ins) {
      const { tf, a } = k;
      const c = k.params.const;
      const term = (t: TfTensor, i: number) => (a.coeffs && a.coeffs[i] !== 1 ? tf.mul(t, a.coeffs[i]) : t);
      const keep = ins.every((x) => x.t.rank === 4 && x.nhwc);
      let acc: Act;
      if (ins.length === 1) acc = ins[0];
      else {
        const t = tf.tidy(() => {
          const ts = ins.map((x) => (keep ? x.t : toNchw(tf, x)));
          let y = term(ts[0], 0);
          for (let i = 1; i < ts.length; i++) y = f(tf, y, term(ts[i], i));
          return y;
        });
        acc = { t, nhwc: keep };
      }
      if (!c) return [acc];
      const out = broadcastWith(k, acc, c, a.constFirst, f);
      if (acc !== ins[0]) acc.t.dispose();
      return [out];
    },
  };
}

export const Add: OpDef<BinaryAttrs> = binary(
  "a + b, broadcast (n-ary with optional coeffs)",
  (tf, a, b) => tf.add(a, b),
  true,
);
export const Sub: OpDef<BinaryAttrs> = binary("a - b, broadcast", (tf, a, b) => tf.sub(a, b));
export const Mul: OpDef<BinaryAttrs> = binary("a * b, broadcast (n-ary)", (tf, a, b) => tf.mul(a, b), true);
export const Div: OpDef<BinaryAttrs> = binary("a / b, broadcast", (tf, a, b) => tf.div(a, b));
export const Pow: OpDef<BinaryAttrs> = binary("a ^ b, broadcast", (tf, a, b) => tf.pow(a, b));
export const Max: OpDef<BinaryAttrs> = binary("max(a, b), broadcast (n-ary)", (tf, a, b) => tf.maximum(a, b), true);
export const Min: OpDef<BinaryAttrs> = binary("min(a, b), broadcast (n-ary)", (tf, a, b) => tf.minimum(a, b), true);
export const FloorDiv: OpDef<BinaryAttrs> = binary(
  "floor(a / b), broadcast (TF FloorDiv; integers are held as float32 values)",
  (tf, a, b) => tf.floor(tf.div(a, b)),
);
export const FloorMod: OpDef<BinaryAttrs> = binary(
  "a - floor(a / b) * b, broadcast (TF FloorMod: the sign of b; integers are held as float32 values)",
  (tf, a, b) => tf.sub(a, tf.mul(tf.floor(tf.div(a, b)), b)),
);
export const SquaredDifference: OpDef<BinaryAttrs> = binary(
  "(a - b)^2, broadcast",
  (tf, a, b) => tf.squaredDifference(a, b),
);
export const Equal: OpDef<BinaryAttrs> = binary(
  "a == b as 1 or 0 (float32 values; ONNX and TF hold bool)",
  (tf, a, b) => tf.cast(tf.equal(a, b), "float32"),
);
export const Less: OpDef<BinaryAttrs> = binary(
  "a < b as 1 or 0 (float32 values; ONNX and TF hold bool)",
  (tf, a, b) => tf.cast(tf.less(a, b), "float32"),
);
export const Greater: OpDef<BinaryAttrs> = binary(
  "a > b as 1 or 0 (float32 values; ONNX and TF hold bool)",
  (tf, a, b) => tf.cast(tf.greater(a, b), "float32"),
);
