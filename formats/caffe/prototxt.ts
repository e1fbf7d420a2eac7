/**
 * Protobuf text format ("prototxt") for Caffe's NetParameter: a parser into an ordered field tree and a printer
 * back to text. The tree needs no schema: values keep their token kind (string, number, bool, enum identifier,
 * nested message), so printing what was parsed gives text that parses to the same tree.
 *
 * Accepted syntax (protobuf text format): `#` comments anywhere between tokens; `name: value`; `name { ... }`,
 * `name: { ... }` and `name < ... >` for messages; optional `;` or `,` after a field; repeated fields by repetition
 * or as a list `name: [a, b]`; strings in double or single quotes with C escapes, adjacent strings concatenated;
 * decimal, hex and octal integers, floats with an optional `f` suffix, `inf`, `nan`; `true`/`false`; enums as bare
 * identifiers. Errors name the line and column.
 *
 * @module
 */
import { CaffeError } from "../../src/errors.ts";

/** An enum value written as a bare identifier (`pool: MAX`, `type: CONVOLUTION`). */
export class TextEnum {
  constructor(readonly name: string) {}
}

/** A field value. */
export type TextValue = string | number | boolean | TextEnum | TextMessage;

/** A message: fields in the order they were written. Repeated fields appear once per value. */
export class TextMessage {
  // Two parallel arrays rather than one [name, value] pair per field: a net of a million layers holds five million
  // fields, and a pair costs about 64 bytes more than two array slots.
  #names: string[] = [];
  #values: TextValue[] = [];

  /** The fields in the order they were written, as [name, value] pairs (a fresh array). */
  get fields(): [string, TextValue][] {
    return this.#names.map((n, i) => [n, this.#values[i]]);
  }

  /** The i-th field value as a [name, value] pair. */
  at(i: number): [string, TextValue] {
    return [this.#names[i], this.#values[i]];
  }

  /** Number of field values. */
  get size(): number {
    return this.#names.length;
  }

  /** Appends a field value; returns this. */
  add(name: string, value: TextValue): this {
    this.#names.push(name);
    this.#values.push(value);
    return this;
  }

  /** True when the field is present. */
  has(name: string): boolean {
    return this.#names.includes(name);
  }

  /** The last value of a field (protobuf's last-one-wins for scalars). */
  get(name: string): TextValue | undefined {
    const i = this.#names.lastIndexOf(name);
    return i < 0 ? undefined : this.#values[i];
  }

  /** Every value of a field, in order. */
  all(name: string): TextValue[] {
    const out: TextValue[] = [];
    for (let i = 0; i < this.#names.length; i++) if (this.#names[i] === name) out.push(this.#values[i]);
    return out;
  }

  /** A nested message, or undefined. */
  msg(name: string): TextMessage | undefined {
    const v = this.get(name);
    return v instanceof TextMessage ? v : undefined;
  }

  /** Every nested message of a repeated message field. */
  msgs(name: string): TextMessage[] {
    return this.all(name).filter((v): v is TextMessage => v instanceof TextMessage);
  }

  /** A number field (booleans read as 0/1), or `def`. */
  num(name: string, def: number): number {
    const v = this.get(name);
    if (typeof v === "number") return v;
    if (typeof v === "boolean") return v ? 1 : 0;
    return def;
  }

  /** Every value of a repeated number field. */
  nums(name: string): number[] {
    return this.all(name).filter((v): v is number => typeof v === "number");
  }

  /** A string field, or `def`. Enum identifiers read as their names. */
  str(name: string, def: string): string {
    const v = this.get(name);
    if (typeof v === "string") return v;
    if (v instanceof TextEnum) return v.name;
    return def;
  }

  /** Every value of a repeated string field. */
  strs(name: string): string[] {
    return this.all(name).filter((v): v is string => typeof v === "string");
  }

  /** A bool field (also `1`/`0`), or `def`. */
  bool(name: string, def: boolean): boolean {
    const v = this.get(name);
    if (typeof v === "boolean") return v;
    if (typeof v === "number") return v !== 0;
    if (v instanceof TextEnum) return v.name === "True" || v.name === "t";
    return def;
  }

  /** An enum field as its name, whether written as an identifier or a number (`names` maps numbers to names). */
  enumName(name: string, names: readonly string[], def: string): string {
    const v = this.get(name);
    if (v instanceof TextEnum) return v.name;
    if (typeof v === "number") return names[v] ?? String(v);
    if (typeof v === "string") return v;
    return def;
  }
}

interface Token {
  kind: "ident" | "number" | "string" | "punct" | "eof";
  text: string;
  value?: string | number;
  /** Offset in the text; line and column are worked out only for an error message. */
  pos: number;
}

/** Deepest message nesting accepted (Caffe nets nest four or five levels). */
export const MAX_PROTOTXT_DEPTH = 100;
/**
 * Most field values accepted in one prototxt: about 50 times the largest published Caffe nets (ResNet-152's deploy
 * prototxt has about 20,000), and a bound on memory (200,000 simple layers open in about 500 MB).
 */
export const MAX_PROTOTXT_FIELDS = 1_000_000;

const PUNCT = new Set(["{", "}", "<", ">", ":", ";", ",", "[", "]"]);
const NUMBER = /[-+]?(0[xX][0-9a-fA-F]+|(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?[fF]?|inf(inity)?|nan)/iy;
const IDENT = /[A-Za-z_][A-Za-z0-9_.]*/y;
/** Field names and enum identifiers repeat on every layer: one string each, not one per occurrence. */
const interned = new Map<string, string>();

function intern(s: string): string {
  let v = interned.get(s);
  if (v === undefined) {
    if (interned.size > 4096) interned.clear();
    interned.set(s, v = s);
  }
  return v;
}

/** Thrown inside the parser when a chunked input has not yet delivered the text a decision needs. */
const NEED_MORE = Symbol("need more text");

class Lexer {
  /** Text not yet discarded; it starts at absolute offset `#base` of the input. */
  #s: string;
  /** Index in `#s`. */
  #i = 0;
  /** Index in `#s` where the lexer may not look past: the end of input, or just after the last newline so far. */
  #end: number;
  #final: boolean;
  #base = 0;
  /** Line number and absolute offset of the line start at `#base`. */
  #line = 1;
  #lineStart = 0;
  #file?: string;

  constructor(s: string, file?: string, final = true) {
    this.#s = s;
    this.#file = file;
    this.#final = final;
    this.#end = this.#visibleEnd();
  }

  /**
   * No token spans a newline, so text up to the last newline lexes the same as the whole input would; only a
   * lookahead past it (the next token, an adjacent string, the end of input) has to wait for more text.
   */
  #visibleEnd(): number {
    return this.#final ? this.#s.length : this.#s.lastIndexOf("\n") + 1;
  }

  /** Appends text (chunked input); `final` says it is the last. */
  push(text: string, final: boolean): void {
    if (text) this.#s += text;
    this.#final = final;
    // From the new text only: scanning the whole buffer would flatten it on every chunk.
    const nl = text.lastIndexOf("\n");
    if (final) this.#end = this.#s.length;
    else if (nl >= 0) this.#end = this.#s.length - text.length + nl + 1;
  }

  /** Absolute offset of the next character. */
  get position(): number {
    return this.#base + this.#i;
  }

  /** Moves back to an absolute offset not yet discarded. */
  rewind(pos: number): void {
    this.#i = pos - this.#base;
  }

  /** Drops the text before the current position once it is long (it has been parsed), keeping line numbering. */
  discard(): void {
    const s = this.#s, n = this.#i;
    if (n < 1 << 16) return;
    for (let k = s.indexOf("\n"); k >= 0 && k < n; k = s.indexOf("\n", k + 1)) {
      this.#line++;
      this.#lineStart = this.#base + k + 1;
    }
    this.#s = s.slice(n);
    this.#base += n;
    this.#i = 0;
    this.#end -= n;
  }

  /** Characters held (not yet discarded). */
  get held(): number {
    return this.#s.length;
  }

  /** Characters held from the current position on. */
  get unparsed(): number {
    return this.#s.length - this.#i;
  }

  fail(msg: string, pos = this.position): never {
    let line = this.#line, lineStart = this.#lineStart;
    const s = this.#s, local = pos - this.#base;
    for (let k = 0; k < local && k < s.length; k++) {
      if (s.charCodeAt(k) === 10) {
        line++;
        lineStart = this.#base + k + 1;
      }
    }
    throw new CaffeError(
      "bad_format",
      `Cannot parse prototxt${this.#file ? ` ${this.#file}` : ""}: ${msg} at ${line}:${pos - lineStart + 1}`,
      { file: this.#file },
    );
  }

  #skipSpace(): void {
    const s = this.#s, end = this.#end;
    while (this.#i < end) {
      const c = s.charCodeAt(this.#i);
      if (c === 35) { // '#'
        const nl = s.indexOf("\n", this.#i);
        this.#i = nl < 0 || nl > end ? end : nl;
      } else if (c === 32 || (c >= 9 && c <= 13)) this.#i++;
      else break;
    }
  }

  next(): Token {
    this.#skipSpace();
    const i = this.#i, pos = this.#base + i;
    if (i >= this.#end) {
      if (!this.#final) throw NEED_MORE;
      return { kind: "eof", text: "end of input", pos };
    }
    const c = this.#s[i];
    if (PUNCT.has(c)) {
      this.#i++;
      return { kind: "punct", text: c, pos };
    }
    if (c === '"' || c === "'") {
      let value = "";
      // Adjacent string literals are one value.
      while (this.#i < this.#end && (this.#s[this.#i] === '"' || this.#s[this.#i] === "'")) {
        value += this.#string(this.#s[this.#i]);
        this.#skipSpace();
      }
      // Whether another literal follows is not known yet.
      if (this.#i >= this.#end && !this.#final) throw NEED_MORE;
      return { kind: "string", text: "string", value, pos };
    }
    if (/[0-9.+-]/.test(c)) {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(this.#s);
      if (!m) this.fail(`unexpected character '${c}'`);
      this.#i += m[0].length;
      return { kind: "number", text: m[0], value: parseNumber(m[0]), pos };
    }
    IDENT.lastIndex = i;
    const m = IDENT.exec(this.#s);
    if (m) {
      this.#i += m[0].length;
      return { kind: "ident", text: intern(m[0]), pos };
    }
    this.fail(`unexpected character '${c}'`);
  }

  #string(q: string): string {
    const start = this.position;
    const s = this.#s, end = this.#end;
    this.#i++;
    // Fast path: no escapes before the closing quote.
    const qc = q.charCodeAt(0);
    let close = this.#i;
    for (let c; close < end && (c = s.charCodeAt(close)) !== qc && c !== 92 && c !== 10;) close++;
    if (close < end && s.charCodeAt(close) === qc) {
      const v = s.slice(this.#i, close);
      this.#i = close + 1;
      return v;
    }
    const bytes: number[] = [];
    const enc = new TextEncoder();
    while (true) {
      if (this.#i >= end || s[this.#i] === "\n") this.fail("unterminated string", start);
      const c = s[this.#i++];
      if (c === q) break;
      if (c !== "\\") {
        bytes.push(...enc.encode(c));
        continue;
      }
      const e = s[this.#i++];
      const simple: Record<string, number> = {
        n: 10,
        t: 9,
        r: 13,
        a: 7,
        b: 8,
        f: 12,
        v: 11,
        "\\": 92,
        "'": 39,
        '"': 34,
        "?": 63,
      };
      if (e in simple) bytes.push(simple[e]);
      else if (e === "x" || e === "X") {
        let h = "";
        while (h.length < 2 && /[0-9a-fA-F]/.test(s[this.#i] ?? "")) h += s[this.#i++];
        if (!h) this.fail("bad \\x escape");
        bytes.push(parseInt(h, 16));
      } else if (/[0-7]/.test(e)) {
        let o = e;
        while (o.length < 3 && /[0-7]/.test(s[this.#i] ?? "")) o += s[this.#i++];
        bytes.push(parseInt(o, 8) & 0xff);
      } else this.fail(`bad escape '\\${e}'`);
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}

function parseNumber(t: string): number {
  let s = t.toLowerCase();
  let sign = 1;
  if (s[0] === "-" || s[0] === "+") {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s.startsWith("inf")) return sign * Infinity;
  if (s === "nan") return NaN;
  if (s.startsWith("0x")) return sign * parseInt(s.slice(2), 16);
  if (/^0[0-7]+$/.test(s)) return sign * parseInt(s, 8);
  if (s.endsWith("f") && !s.startsWith("0x")) s = s.slice(0, -1);
  return sign * Number(s);
}

const enums = new Map<string, TextEnum>();

/** One immutable TextEnum per identifier: `type: CONVOLUTION` on every layer shares it. */
function enumValue(name: string): TextEnum {
  let e = enums.get(name);
  if (!e) {
    if (enums.size > 4096) enums.clear();
    enums.set(name, e = new TextEnum(name));
  }
  return e;
}

function describeToken(t: Token): string {
  if (t.kind === "eof") return "end of input";
  if (t.kind === "string") return `'${JSON.stringify(t.value)}'`;
  return `'${t.text}'`;
}

class Parser {
  #lex: Lexer;
  #tok!: Token;

  constructor(lex: Lexer) {
    this.#lex = lex;
  }

  #take(): Token {
    const t = this.#tok;
    this.#tok = this.#lex.next();
    return t;
  }

  #isPunct(p: string): boolean {
    return this.#tok.kind === "punct" && this.#tok.text === p;
  }

  #failAt(t: Token, msg: string): never {
    this.#lex.fail(msg, t.pos);
  }

  #depth = 0;
  #fields = 0;

  /**
   * Parses the next top-level field into `m` (several values for a list); false at the end of input. Throws
   * {@link NEED_MORE} when a chunked input has not delivered enough text: the caller rewinds to `start()` and
   * retries, the field and depth counts restored.
   */
  top(m: TextMessage): boolean {
    this.#depth = 1;
    this.#tok = this.#lex.next();
    if (this.#tok.kind === "eof") return false;
    this.#field(m);
    return true;
  }

  /** Field count, saved before a top-level field so a retry counts it once. */
  get fieldCount(): number {
    return this.#fields;
  }

  set fieldCount(n: number) {
    this.#fields = n;
  }

  /** Where the token after the last field starts: the next `top()` reads from there. */
  get next(): number {
    return this.#tok.pos;
  }

  #message(close: string): TextMessage {
    if (++this.#depth > MAX_PROTOTXT_DEPTH) {
      this.#failAt(this.#tok, `messages nest deeper than ${MAX_PROTOTXT_DEPTH} levels`);
    }
    const m = new TextMessage();
    while (true) {
      const t = this.#tok;
      if (t.kind === "eof") this.#failAt(t, `expected '${close}' before end of input`);
      if (this.#isPunct(close)) {
        this.#take();
        this.#depth--;
        return m;
      }
      this.#field(m);
    }
  }

  /** One field (the current token is its name) into `m`, with its optional `;` or `,`. */
  #field(m: TextMessage): void {
    const t = this.#tok;
    if (++this.#fields > MAX_PROTOTXT_FIELDS) {
      this.#failAt(t, `more than ${MAX_PROTOTXT_FIELDS.toLocaleString("en-US")} fields (the parser's limit)`);
    }
    if (t.kind !== "ident") this.#failAt(t, `expected a field name, found ${describeToken(t)}`);
    this.#take();
    const name = t.text;
    let colon = false;
    if (this.#isPunct(":")) {
      this.#take();
      colon = true;
    }
    if (this.#isPunct("[")) {
      if (!colon) this.#failAt(this.#tok, `expected ':' before '[' in field '${name}'`);
      this.#take();
      while (!this.#isPunct("]")) {
        m.add(name, this.#value(name, true));
        if (this.#isPunct(",")) this.#take();
        else if (!this.#isPunct("]")) this.#failAt(this.#tok, `expected ',' or ']' in list '${name}'`);
      }
      this.#take();
    } else m.add(name, this.#value(name, colon));
    if (this.#isPunct(";") || this.#isPunct(",")) this.#take();
  }

  #value(name: string, colon: boolean): TextValue {
    const t = this.#tok;
    if (t.kind === "punct" && (t.text === "{" || t.text === "<")) {
      this.#take();
      return this.#message(t.text === "{" ? "}" : ">");
    }
    if (!colon) this.#failAt(t, `expected ':' or '{' after field name '${name}', found ${describeToken(t)}`);
    this.#take();
    if (t.kind === "string") return t.value as string;
    if (t.kind === "number") return t.value as number;
    if (t.kind === "ident") {
      if (t.text === "true" || t.text === "True") return true;
      if (t.text === "false" || t.text === "False") return false;
      if (/^(inf|infinity|nan)$/i.test(t.text)) return parseNumber(t.text);
      return enumValue(t.text);
    }
    this.#failAt(t, `expected a value for field '${name}', found ${describeToken(t)}`);
  }
}
/**
 * Incremental prototxt parsing: text goes in as chunks (split anywhere, even inside a token), the top-level fields
 * come out one at a time as each one completes, so a net's layers can be handled and dropped one by one. The result
 * and every error (message, line and column) are the same as parsing the whole text at once; the limits
 * ({@link MAX_PROTOTXT_DEPTH}, {@link MAX_PROTOTXT_FIELDS}) count over the whole input.
 *
 * ```ts
 * const p = new PrototxtParser("net.prototxt");
 * for (const chunk of chunks) {
 *   p.push(chunk);
 *   for (const [name, value] of p.fields()) use(name, value);
 * }
 * p.end();
 * for (const [name, value] of p.fields()) use(name, value);
 * ```
 */
export class PrototxtParser {
  #lex: Lexer;
  #parser: Parser;
  #ended: boolean;
  #done = false;
  /** After a field needed more text: characters to hold before trying again (keeps retries linear overall). */
  #wait = 0;

  /** `text`, when given, is the whole input (no `push`/`end` needed). */
  constructor(file?: string, text?: string) {
    this.#ended = text !== undefined;
    this.#lex = new Lexer(text ?? "", file, this.#ended);
    this.#parser = new Parser(this.#lex);
  }

  /** Appends a chunk of text. */
  push(text: string): void {
    if (this.#ended) throw new Error("PrototxtParser.push after end");
    this.#lex.push(text, false);
  }

  /** Marks the end of the input: the last field completes, or a truncation error names where the input ends. */
  end(): void {
    this.#ended = true;
    this.#lex.push("", true);
  }

  /**
   * The top-level fields complete so far, as [name, value] pairs in file order (a list field gives one pair per
   * value). Stops early when the rest needs more text; after {@link end} it runs to the end of input.
   */
  *fields(): Generator<[string, TextValue]> {
    const lex = this.#lex, parser = this.#parser;
    while (!this.#done && (this.#ended || lex.held >= this.#wait)) {
      const start = lex.position, count = parser.fieldCount;
      const m = new TextMessage();
      try {
        if (!parser.top(m)) {
          this.#done = true;
          return;
        }
      } catch (e) {
        if (e !== NEED_MORE) throw e;
        lex.rewind(start);
        parser.fieldCount = count;
        // Retry once the unparsed text has doubled: a long field is re-read a bounded number of times.
        this.#wait = lex.held + Math.max(lex.unparsed, 1);
        return;
      }
      this.#wait = 0;
      lex.rewind(parser.next);
      lex.discard();
      for (let i = 0; i < m.size; i++) yield m.at(i);
    }
  }
}

/** Parses protobuf text format into a {@link TextMessage}. Errors are CaffeError `bad_format` with line:column. */
export function parsePrototxt(text: string, file?: string): TextMessage {
  const m = new TextMessage();
  for (const [name, value] of new PrototxtParser(file, text).fields()) m.add(name, value);
  return m;
}

/** The top-level fields of a whole prototxt text one at a time ({@link PrototxtParser} over one chunk). */
export function prototxtFields(text: string, file?: string): Generator<[string, TextValue]> {
  return new PrototxtParser(file, text).fields();
}

/** Shortest decimal that reads back as the same float32 (binary floats print as `0.1`, not `0.10000000149`). */
export function shortFloat32(v: number): number {
  if (!Number.isFinite(v)) return v;
  const f = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return s;
  }
  return f;
}

function printValue(v: TextValue): string {
  if (typeof v === "string") return quote(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return String(v);
  }
  if (v instanceof TextEnum) return v.name;
  throw new Error("printValue on a message");
}

function quote(s: string): string {
  let out = '"';
  for (const b of new TextEncoder().encode(s)) {
    if (b === 34) out += '\\"';
    else if (b === 92) out += "\\\\";
    else if (b === 10) out += "\\n";
    else if (b === 9) out += "\\t";
    else if (b === 13) out += "\\r";
    else if (b < 32 || b === 127) out += "\\" + b.toString(8).padStart(3, "0");
    else out += String.fromCharCode(b);
  }
  // Non-ASCII bytes were emitted one by one as Latin-1 characters; turn them back into UTF-8 text.
  return decodeLatin1AsUtf8(out) + '"';
}

function decodeLatin1AsUtf8(s: string): string {
  const bytes = new Uint8Array([...s].map((c) => c.charCodeAt(0)));
  return new TextDecoder().decode(bytes);
}

/** Prints a message as protobuf text format, two spaces per level, one field per line. */
export function printPrototxt(m: TextMessage, indent = ""): string {
  let out = "";
  for (const [name, v] of m.fields) {
    if (v instanceof TextMessage) out += `${indent}${name} {\n${printPrototxt(v, indent + "  ")}${indent}}\n`;
    else out += `${indent}${name}: ${printValue(v)}\n`;
  }
  return out;
}
