import { assert, assertEquals, assertRejects } from "../../tests/helpers.ts";
import { kernelCopy, kernelCopyAvailable } from "./kernel_copy.ts";
import { openFileSink } from "./byte_sink.ts";
import { openFileInput } from "./inputs.ts";
import { MemorySink } from "./byte_sink.ts";
import { Tensor } from "../model/tensor.ts";

const noKernelCopy = !kernelCopyAvailable();
const why = "copy_file_range needs --allow-ffi on Linux with glibc";

function pattern(n: number, seed = 7): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

Deno.test({
  name: "kernelCopy: a range of one file lands at an offset of another, the rest of it untouched",
  ignore: noKernelCopy,
  fn() {
    const dir = Deno.makeTempDirSync();
    try {
      const src = pattern(3 << 20);
      Deno.writeFileSync(`${dir}/a`, src);
      Deno.writeFileSync(`${dir}/b`, new Uint8Array(100).fill(9));
      const n = kernelCopy(`${dir}/a`, 12345, `${dir}/b`, 50, 2_000_001);
      assertEquals(n, 2_000_001);
      const b = Deno.readFileSync(`${dir}/b`);
      assertEquals(b.length, 50 + 2_000_001);
      assert(b.subarray(0, 50).every((v) => v === 9));
      assertEquals(b.subarray(50), src.subarray(12345, 12345 + 2_000_001));
      // A source that is not there copies nothing (the caller writes the bytes itself).
      assertEquals(kernelCopy(`${dir}/missing`, 0, `${dir}/b`, 0, 10), 0);
      // Past the end of the source: what there is, and no more.
      assertEquals(kernelCopy(`${dir}/a`, (3 << 20) - 10, `${dir}/b`, 0, 100), 10);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
if (noKernelCopy) Deno.test({ name: `kernelCopy (skipped: ${why})`, ignore: true, fn() {} });

Deno.test("Tensor.writeTo: a file tensor written to a file output equals its bytes, between buffered writes", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    const src = pattern(1 << 20, 3);
    Deno.writeFileSync(`${dir}/in`, src);
    const input = await openFileInput(`${dir}/in`);
    const t = Tensor.fromFile("w", "float32", [1000, 100], input, 4096, 400_000);
    const sink = await openFileSink(`${dir}/out`);
    await sink.write(new Uint8Array([1, 2, 3]));
    assertEquals(await t.writeTo(sink), 400_000);
    assertEquals(sink.position, 400_003);
    await sink.write(new Uint8Array([4, 5]));
    // A range the kernel cannot copy (a source that is gone) is refused whole, and the sink is where it was.
    if (sink.copyRange && !noKernelCopy) assertEquals(await sink.copyRange(`${dir}/gone`, 0, 10), false);
    assertEquals(sink.position, 400_005);
    await sink.write(new Uint8Array([6]));
    await sink.close();
    input.close();
    const out = Deno.readFileSync(`${dir}/out`);
    assertEquals(out.length, 400_006);
    assertEquals([...out.subarray(0, 3)], [1, 2, 3]);
    assertEquals(out.subarray(3, 400_003), src.subarray(4096, 404_096));
    assertEquals([...out.subarray(400_003)], [4, 5, 6]);
    // The same tensor into a sink without kernel copies streams the same bytes.
    const input2 = await openFileInput(`${dir}/in`);
    const mem = new MemorySink();
    await Tensor.fromFile("w", "float32", [1000, 100], input2, 4096, 400_000).writeTo(mem);
    input2.close();
    assertEquals(mem.bytes(), src.subarray(4096, 404_096));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("Tensor.writeTo: a file tensor past the end of its file is an unexpected end, not a short output", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/in`, pattern(1000));
    const input = await openFileInput(`${dir}/in`);
    const t = Tensor.fromFile("conv1.weight", "float32", [500], input, 0, 2000);
    const sink = await openFileSink(`${dir}/out`);
    const e = await assertRejects(() => t.writeTo(sink));
    assert(String(e).includes("conv1.weight"), String(e));
    await sink.abort();
    input.close();
    assertEquals([...Deno.readDirSync(dir)].map((f) => f.name), ["in"]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("openFileSink: closing over an existing file replaces it; a symlink there is replaced, not followed", async () => {
  const dir = Deno.makeTempDirSync();
  try {
    Deno.writeFileSync(`${dir}/out`, pattern(5000));
    let sink = await openFileSink(`${dir}/out`);
    await sink.write(new Uint8Array([1, 2]));
    await sink.close();
    assertEquals([...Deno.readFileSync(`${dir}/out`)], [1, 2]);
    Deno.writeFileSync(`${dir}/target`, new Uint8Array([7]));
    Deno.symlinkSync(`${dir}/target`, `${dir}/link`);
    sink = await openFileSink(`${dir}/link`);
    await sink.write(new Uint8Array([3]));
    await sink.close();
    assert(!Deno.lstatSync(`${dir}/link`).isSymlink);
    assertEquals([...Deno.readFileSync(`${dir}/link`)], [3]);
    assertEquals([...Deno.readFileSync(`${dir}/target`)], [7]);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
