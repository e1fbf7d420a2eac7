import { assert, assertEquals, testNeeding } from "./helpers.ts";
import { parsePrototxt, printPrototxt, TextEnum, TextMessage } from "../formats/caffe/prototxt.ts";
import { netFromText } from "../formats/caffe/net.ts";
import { CaffeError } from "../src/errors.ts";
import { LOCAL, REAL } from "./caffe_helpers.ts";

function throws(fn: () => unknown): CaffeError {
  try {
    fn();
  } catch (e) {
    assert(e instanceof CaffeError, `expected a CaffeError, got ${e}`);
    return e;
  }
  throw new Error("expected an error");
}

async function prototxts(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await prototxts(p));
    else if (e.name.endsWith(".prototxt")) out.push(p);
  }
  return out.sort();
}

testNeeding(
  "prototxt: parse -> print -> parse is a fixed point for every fixture prototxt",
  { paths: [REAL] },
  async () => {
    const files = [...await prototxts(REAL), ...await prototxts(LOCAL)];
    assertEquals(files.length >= 6, true);
    for (const f of files) {
      const a = parsePrototxt(await Deno.readTextFile(f), f);
      const printed = printPrototxt(a);
      const b = parsePrototxt(printed, f);
      assertEquals(b, a, f);
      assertEquals(printPrototxt(b), printed, f);
      netFromText(a, f); // every fixture is a valid NetParameter
    }
  },
);

testNeeding("prototxt: V1 and current nets, deprecated inputs", { paths: [REAL] }, async () => {
  const v1 = netFromText(parsePrototxt(await Deno.readTextFile(`${REAL}/lenet_v1/lenet.prototxt`)));
  assertEquals(v1.v1, true);
  assertEquals(v1.inputs, [{ name: "data", shape: [64, 1, 28, 28] }]);
  assertEquals(v1.layers.map((l) => l.type), [
    "Convolution",
    "Pooling",
    "Convolution",
    "Pooling",
    "InnerProduct",
    "ReLU",
    "InnerProduct",
    "Softmax",
  ]);
  const v2 = netFromText(parsePrototxt(await Deno.readTextFile(`${REAL}/lenet/mnist_deploy.prototxt`)));
  assertEquals(v2.v1, false);
  assertEquals(v2.layers[0].msg.msg("input_param")?.msg("shape")?.nums("dim"), [1, 1, 28, 28]);
  const shaped = netFromText(parsePrototxt('input: "x" input_shape { dim: 2 dim: 3 }'));
  assertEquals(shaped.inputs, [{ name: "x", shape: [2, 3] }]);
});

Deno.test("prototxt: syntax forms", () => {
  const m = parsePrototxt(`
    # comment
    name: 'a\\'b' "c\\x41\\101\\n"  # adjacent strings concatenate
    layer < name: "l"; type: "Pooling", pooling_param: { pool: MAX kernel_size: 0x3 stride: 010 } >
    vals: [1, -2.5e1, .5f, inf, -inf]
    flag: true other: False
  `);
  assertEquals(m.str("name", ""), "a'bcAA\n");
  const l = m.msg("layer")!;
  assert(l.msg("pooling_param")!.get("pool") instanceof TextEnum);
  assertEquals(l.msg("pooling_param")!.str("pool", ""), "MAX");
  assertEquals(l.msg("pooling_param")!.num("kernel_size", 0), 3);
  assertEquals(l.msg("pooling_param")!.num("stride", 0), 8);
  assertEquals(m.nums("vals").map(String), ["1", "-25", "0.5", "Infinity", "-Infinity"]);
  assertEquals([m.bool("flag", false), m.bool("other", true)], [true, false]);
  const again = parsePrototxt(printPrototxt(m));
  assertEquals(again, m);
  const s = new TextMessage().add("s", 'q"\\\u00e9\t');
  assertEquals(parsePrototxt(printPrototxt(s)), s);
});

Deno.test("prototxt: errors give line:column", () => {
  const cases: [string, string][] = [
    ['name: "x"\nlayer {\n  name: "y"\n', "expected '}' before end of input at 4:1"],
    ['layer {\n  type "Conv"\n}', "expected ':' or '{' after field name 'type', found '\"Conv\"' at 2:8"],
    ['name: "abc', "unterminated string at 1:7"],
    ["a: 1\n  b: @", "unexpected character '@' at 2:6"],
    ["a: }", "expected a value for field 'a', found '}' at 1:4"],
    ["layer {} }", "expected a field name, found '}' at 1:10"],
  ];
  for (const [text, msg] of cases) {
    const e = throws(() => parsePrototxt(text, "t.prototxt"));
    assertEquals(e.code, "bad_format");
    assertEquals(e.message, `Cannot parse prototxt t.prototxt: ${msg}`);
  }
});

Deno.test("prototxt: layer and layers together are refused", () => {
  const e = throws(() =>
    netFromText(parsePrototxt('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }'))
  );
  assertEquals(e.message, "Caffe net has both 'layer' and 'layers' (V1) entries");
});
