import { assert, assertEquals } from "../tests/helpers.ts";
import { FORMAT_FLAGS, FORMAT_NAMES, formatFromExtension, FORMATS, getFormat, isFormatName } from "./registry.ts";
import { ConvpressError } from "../src/errors.ts";

Deno.test("registry: every line loads the module of its name", async () => {
  for (const f of FORMATS) assertEquals((await f.load()).name, f.name);
  assertEquals([...FORMAT_NAMES], ["onnx", "caffe", "tfjs", "cvp"]);
});

Deno.test("registry: extensions give the format hint", () => {
  const cases: [string, string | undefined][] = [
    ["a/VGG16.ONNX", "onnx"],
    ["m.caffemodel", "caffe"],
    ["deploy.prototxt", "caffe"],
    ["x/model.json", "tfjs"],
    ["model.tar", "tfjs"],
    ["out_dir/", "tfjs"],
    ["small.cvp", "cvp"],
    ["weights.bin", undefined],
  ];
  for (const [path, want] of cases) assertEquals(formatFromExtension(path), want, path);
  assert(isFormatName("cvp") && !isFormatName("pb"));
});

Deno.test("registry: flags are unique and set their options; bad values are usage errors", async () => {
  const names = FORMAT_FLAGS.map((f) => f.name);
  assertEquals(new Set(names).size, names.length, names.join(","));
  const o: Record<string, unknown> = {};
  FORMAT_FLAGS.find((f) => f.name === "shard-size")!.apply(o, "1024");
  FORMAT_FLAGS.find((f) => f.name === "external-data")!.apply(o, true);
  assertEquals(o, { shardSize: 1024, externalData: true });
  let err: unknown;
  try {
    FORMAT_FLAGS.find((f) => f.name === "quantize")!.apply(o, "int4");
  } catch (e) {
    err = e;
  }
  assert(err instanceof ConvpressError && err.code === "usage", String(err));
  let unknown: unknown;
  await getFormat("pb").catch((e) => unknown = e);
  assert(unknown instanceof ConvpressError && unknown.code === "usage", String(unknown));
});
