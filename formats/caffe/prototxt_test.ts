import { MAX_PROTOTXT_FIELDS, parsePrototxt, PrototxtParser, TextMessage } from "./prototxt.ts";
import { CaffeError } from "../../src/errors.ts";
import { assert, assertEquals, rng, testNeeding } from "../../tests/helpers.ts";
import { LOCAL, REAL } from "../../tests/caffe_helpers.ts";

/** Every piece of the accepted syntax, with tokens that a split can cut in two. */
const SYNTAX = `# a comment { not a field
name: "net" 'work' # adjacent strings are one value
 "continued on the next line"
input: ["data", 'label']
input_dim: 0x10 input_dim: 010 input_dim: -3 input_dim: +4
layer {
  name: "conv\\x41\\101\\n\\"q\\"" type: "Convolution"; bottom: "data", top: "c"
  convolution_param < num_output: 12 weight_filler { std: 1e-2 mean: .5f value: -inf } >
  param: { lr_mult: 1.5e+3 decay_mult: nan }
  include { phase: TEST } exclude: { stage: "x" }
  flag: true other: False shape { dim: [1, 2, 3] }
}
layer{name:"r"type:"ReLU"bottom:"c"top:"c"}
layers { name: "ünïcode ✓" type: RELU }
`;

/** Chunks of `text` at seeded random cut points: sizes from 1 character to about `max`. */
function splits(text: string, seed: number, max: number): string[] {
  const r = rng(seed);
  const out: string[] = [];
  for (let i = 0; i < text.length;) {
    const n = 1 + Math.floor(r() * r() * max);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

/** Parses the chunks incrementally, collecting the fields as they come out. */
function parseChunks(chunks: string[], file?: string): TextMessage {
  const m = new TextMessage();
  const p = new PrototxtParser(file);
  for (const c of chunks) {
    p.push(c);
    for (const [name, v] of p.fields()) m.add(name, v);
  }
  p.end();
  for (const [name, v] of p.fields()) m.add(name, v);
  return m;
}

/** The error message, or "" when the text parses. */
function errorOf(fn: () => unknown): string {
  try {
    fn();
    return "";
  } catch (e) {
    assert(e instanceof CaffeError, `expected a CaffeError, got ${e}`);
    assertEquals(e.code, "bad_format");
    return e.message;
  }
}

Deno.test("prototxt stream: every syntax form gives the same tree whole and in random splits", () => {
  const whole = parsePrototxt(SYNTAX, "s.prototxt");
  assertEquals(whole.size, 10);
  assertEquals(whole.str("name", ""), "network" + "continued on the next line");
  assertEquals(whole.msgs("layer")[0].str("name", ""), 'convAA\n"q"');
  for (let seed = 1; seed <= 300; seed++) {
    assertEquals(parseChunks(splits(SYNTAX, seed, seed % 3 === 0 ? 4 : 40)), whole, `seed ${seed}`);
  }
  // One character at a time.
  assertEquals(parseChunks([...SYNTAX]), whole);
});

testNeeding(
  "prototxt stream: every fixture prototxt gives the same tree whole and in random splits",
  { paths: [REAL] },
  async () => {
    const files: string[] = [];
    const walk = async (dir: string) => {
      for await (const e of Deno.readDir(dir)) {
        if (e.isDirectory) await walk(`${dir}/${e.name}`);
        else if (e.name.endsWith(".prototxt")) files.push(`${dir}/${e.name}`);
      }
    };
    await walk(REAL);
    await walk(LOCAL);
    assert(files.length >= 6, `${files.length} fixture prototxts`);
    for (const f of files) {
      const text = await Deno.readTextFile(f);
      const whole = parsePrototxt(text, f);
      for (let seed = 1; seed <= 5; seed++) assertEquals(parseChunks(splits(text, seed, 300), f), whole, f);
    }
  },
);

Deno.test("prototxt stream: a top-level field comes out as soon as the text after it is in", () => {
  const p = new PrototxtParser();
  p.push('name: "a"\nlayer {\n  name: "b"\n');
  assertEquals([...p.fields()].map(([n]) => n), ["name"]);
  p.push("}\nla");
  // The layer is complete, but a ';' could still follow it: it waits for the next token.
  assertEquals([...p.fields()].map(([n]) => n), []);
  p.push('yer { name: "c" }\n');
  assertEquals([...p.fields()].map(([n, v]) => `${n}:${(v as TextMessage).str("name", "")}`), ["layer:b"]);
  p.end();
  assertEquals([...p.fields()].map(([n, v]) => `${n}:${(v as TextMessage).str("name", "")}`), ["layer:c"]);
  assertEquals([...p.fields()], []);
});

Deno.test("prototxt stream: truncation at every offset gives the whole-text error, with line and column", () => {
  const text = 'name: "x"\nlayer {\n  name: "y" # c\n  p { v: [1, 2] s: "a\\n" }\n}\n';
  // Exact messages for a few cuts.
  const at = (n: number) => errorOf(() => parsePrototxt(text.slice(0, n), "t.prototxt"));
  assertEquals(
    at(text.indexOf("layer {") + 7),
    "Cannot parse prototxt t.prototxt: expected '}' before end of input at 2:8",
  );
  assertEquals(at(text.indexOf('"y"') + 2), "Cannot parse prototxt t.prototxt: unterminated string at 3:9");
  assertEquals(
    at(text.indexOf("[1,") + 3),
    "Cannot parse prototxt t.prototxt: expected a value for field 'v', found end of input at 4:13",
  );
  let errors = 0;
  for (let n = 0; n <= text.length; n++) {
    const cut = text.slice(0, n);
    const want = errorOf(() => parsePrototxt(cut, "t.prototxt"));
    if (want) errors++;
    for (let seed = 1; seed <= 8; seed++) {
      assertEquals(errorOf(() => parseChunks(splits(cut, seed * 1000 + n, 6), "t.prototxt")), want, `cut ${n}`);
    }
    assertEquals(errorOf(() => parseChunks([...cut], "t.prototxt")), want, `cut ${n}, by character`);
  }
  assert(errors > 30, `${errors} truncations refused`);
});

Deno.test("prototxt stream: syntax errors, deep nesting and the field limit are the whole-text errors", () => {
  const cases = [
    'name: "x"\nlayer {\n  name: "y"\n',
    'layer {\n  type "Conv"\n}',
    "a: 1\n  b: @",
    "a: }",
    "layer {} }",
    'a: "x" "y\n',
    "a: [1 2]",
    "a [1]",
    `name: "x"\n${"layer { ".repeat(101)}${"} ".repeat(101)}`,
    'name: "x"\n' + "layer {\n".repeat(60) + "}\n".repeat(60) + "layer {\n".repeat(101),
  ];
  for (const text of cases) {
    const want = errorOf(() => parsePrototxt(text, "e.prototxt"));
    assert(want.startsWith("Cannot parse prototxt e.prototxt: "), want);
    for (let seed = 1; seed <= 20; seed++) {
      assertEquals(errorOf(() => parseChunks(splits(text, seed, 16), "e.prototxt")), want, text);
    }
  }
  const many = 'name: "x"\n' + "input_dim: 1\n".repeat(MAX_PROTOTXT_FIELDS);
  const limit = errorOf(() => parsePrototxt(many, "m.prototxt"));
  assertEquals(limit, "Cannot parse prototxt m.prototxt: more than 1,000,000 fields (the parser's limit) at 1000001:1");
  assertEquals(errorOf(() => parseChunks(splits(many, 7, 1 << 17), "m.prototxt")), limit);
});

Deno.test("prototxt stream: one long top-level field in 1-character chunks gives the whole-text tree", () => {
  // A single top-level message of 20,000 fields: retries wait until the unread text has doubled, so the message is
  // re-read about 20 times, not once per character.
  const text = `net {\n${'  layer { name: "n" }\n'.repeat(20_000)}}\n`;
  const whole = parsePrototxt(text);
  assertEquals(parseChunks([...text]), whole);
});
