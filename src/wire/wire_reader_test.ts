import { assert, assertEquals } from "../../tests/helpers.ts";
import { WireReader } from "./wire_reader.ts";
import { WireWriter } from "./wire_writer.ts";
import { ConvpressError } from "../errors.ts";

Deno.test("WireWriter and WireReader agree on every type, with fork/join", () => {
  const w = new WireWriter(4);
  w.tag(1, 0).uint(300).tag(2, 0).int(-5).tag(3, 5).float(1.5).tag(4, 1).double(-2.25).tag(5, 2).string("héllo");
  w.tag(6, 2).fork().tag(1, 0).uint(7).tag(2, 2).bytes(new Uint8Array([1, 2, 3])).join();
  const r = new WireReader(w.finish());
  const seen: unknown[] = [];
  while (!r.done) {
    const [f, wt] = r.tag();
    if (f === 1) seen.push(r.uint());
    else if (f === 2) seen.push(r.int());
    else if (f === 3) seen.push(r.float());
    else if (f === 4) seen.push(r.double());
    else if (f === 5) seen.push(r.string());
    else if (f === 6) {
      const s = r.sub();
      while (!s.done) {
        const [g, gwt] = s.tag();
        if (g === 1) seen.push(s.uint());
        else if (g === 2) seen.push([...s.bytes()]);
        else s.skip(gwt);
      }
    } else r.skip(wt);
  }
  assertEquals(seen, [300, -5, 1.5, -2.25, "héllo", 7, [1, 2, 3]]);
});

Deno.test("WireReader reads packed and unpacked repeated fields alike", () => {
  const packed = new WireWriter().tag(1, 2).fork().uint(1).uint(300).uint(5).join().finish();
  const unpacked = new WireWriter().tag(1, 0).uint(1).tag(1, 0).uint(300).tag(1, 0).uint(5).finish();
  for (const b of [packed, unpacked]) {
    const r = new WireReader(b);
    const out: number[] = [];
    while (!r.done) {
      const [, wt] = r.tag();
      r.repeatedInt(wt, out);
    }
    assertEquals(out, [1, 300, 5]);
  }
});

Deno.test("WireReader errors name the absolute byte offset", () => {
  const bad = [
    new Uint8Array([0x0a, 0x05, 1, 2]), // length past the end
    new Uint8Array([0x0b]), // wire type 3 (group)
    new Uint8Array([0x00]), // field 0
    new Uint8Array([0x08, 0x80]), // cut varint
  ];
  for (const b of bad) {
    const r = new WireReader(b, 1000);
    let err: unknown;
    try {
      while (!r.done) {
        const [, wt] = r.tag();
        r.skip(wt);
      }
    } catch (e) {
      err = e;
    }
    assert(err instanceof ConvpressError, `no error for ${[...b]}`);
    assert(/at byte 100\d/.test(err.message), err.message);
  }
});
