import { assert, assertEquals } from "../../tests/helpers.ts";
import {
  makeOutputDir,
  makeTempDir,
  makeTempFile,
  removeTemporaries,
  trackedTemporaries,
  trackUncommittedOutput,
  useTemporaryFolder,
  withOutputs,
} from "./temp_files.ts";

const exists = (p: string) => Deno.stat(p).then(() => true, () => false);

Deno.test("temporaries: made in the chosen folder, registered, all removed at once", async () => {
  const root = await Deno.makeTempDir();
  useTemporaryFolder(root);
  try {
    const dir = await makeTempDir({ prefix: "t-" });
    const file = await makeTempFile({ prefix: "f-" });
    await Deno.writeTextFile(`${dir}/inner`, "x");
    assert(dir.startsWith(root) && file.startsWith(root));
    assertEquals(trackedTemporaries().sort(), [dir, file].sort());
    removeTemporaries();
    assert(!(await exists(dir)) && !(await exists(file)));
    assertEquals(trackedTemporaries(), []);
  } finally {
    useTemporaryFolder(undefined);
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("outputs: kept when the conversion succeeds, removed with the folders it made when it fails", async () => {
  const root = await Deno.makeTempDir();
  try {
    await withOutputs(async () => {
      await makeOutputDir(`${root}/a/b`);
      await Deno.writeTextFile(`${root}/a/b/x`, "x");
      trackUncommittedOutput(`${root}/a/b/x`);
    });
    assert(await exists(`${root}/a/b/x`));
    assertEquals(trackedTemporaries(), []);
    const failed = await withOutputs(async () => {
      await makeOutputDir(`${root}/c/d`);
      await Deno.writeTextFile(`${root}/c/d/y`, "y");
      trackUncommittedOutput(`${root}/c/d/y`);
      throw new Error("late failure");
    }).catch((e) => e);
    assert(failed instanceof Error && !(await exists(`${root}/c`)), "the failed output's folder is still there");
    // Outside a conversion a renamed file belongs to the caller at once.
    trackUncommittedOutput(`${root}/a/b/x`);
    assertEquals(trackedTemporaries(), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
