import { assert, assertEquals } from "../../tests/helpers.ts";
import { confinePath } from "./confine.ts";

Deno.test("confinePath: inside the folder resolves, everything that leaves it is refused", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/m/sub`, { recursive: true });
    await Deno.writeTextFile(`${root}/m/sub/w.bin`, "w");
    await Deno.writeTextFile(`${root}/outside.bin`, "o");
    await Deno.symlink(`${root}/outside.bin`, `${root}/m/link.bin`);
    await Deno.symlink(`${root}/m/sub/w.bin`, `${root}/m/inner-link.bin`);
    const ok = await confinePath(`${root}/m`, "sub/w.bin");
    assert("path" in ok && ok.path.endsWith("/m/sub/w.bin"), JSON.stringify(ok));
    assert("path" in await confinePath(`${root}/m`, "inner-link.bin"), "a symlink that stays inside is fine");
    const refuse = async (ref: unknown, why: RegExp) => {
      const r = await confinePath(`${root}/m`, ref);
      assert("error" in r && why.test(r.error), `${ref}: ${JSON.stringify(r)}`);
    };
    await refuse("../outside.bin", /leads out/);
    await refuse(`${root}/outside.bin`, /absolute/);
    await refuse("link.bin", /outside the model's folder/);
    await refuse("nope.bin", /does not exist/);
    await refuse(42, /not a file name/);
    assertEquals((await confinePath(`${root}/m`, "nope.bin") as { missing?: boolean }).missing, true);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
