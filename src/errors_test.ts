import { assert, assertEquals } from "../tests/helpers.ts";
import { ConvpressError, errorLine, escapeText } from "./errors.ts";

Deno.test("escapeText: control characters become escapes, long text is cut", () => {
  assertEquals(escapeText("a\x1b[2K\rb\nc\u0085\u202e"), "a\\x1b[2K\\x0db\\x0ac\\x85\\u202e");
  assertEquals(escapeText("héllo wörld"), "héllo wörld");
  const cut = escapeText("x".repeat(500), 10);
  assertEquals(cut, "xxxxxxxxxx... (490 more characters)");
});

Deno.test("errorLine: names the input when the error names no file, cuts long quoted names, stays one line", () => {
  const e = new ConvpressError("bad_format", `Layer '${"n\n".repeat(5000)}' is bad`);
  const line = errorLine(e, "in.onnx");
  assert(line.startsWith("'in.onnx': Layer '"), line);
  assert(!line.includes("\n") && line.length < 400, `${line.length}: ${line.slice(0, 200)}`);
  assertEquals(errorLine(new ConvpressError("usage", "Bad flag"), "in.onnx"), "Bad flag");
  const long = `/data/${"deep/".repeat(40)}model.onnx`;
  assert(errorLine(new ConvpressError("io", `Cannot open '${long}': gone`, { file: long })).includes(long), "path cut");
  assertEquals(
    errorLine(new ConvpressError("io", "Cannot open 'in.onnx': gone", { file: "in.onnx" })),
    "Cannot open 'in.onnx': gone",
  );
  assertEquals(
    errorLine(new ConvpressError("checksum", "Record 3: CRC mismatch"), "-"),
    "stdin: Record 3: CRC mismatch",
  );
});
