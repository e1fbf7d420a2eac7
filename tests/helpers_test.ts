import { assertEquals, missing, ROOT } from "./helpers.ts";

Deno.test("missing: names the first missing path as the tests name it, or the Python module", () => {
  assertEquals(missing({ paths: ["deno.json", `${ROOT}/README.md`] }), undefined);
  assertEquals(
    missing({ paths: ["deno.json", "../no-such-shared/fixtures/x"] }),
    "../no-such-shared/fixtures/x is missing",
  );
  assertEquals(missing({ paths: [`${ROOT}/../no-such-shared/y`] }), "../no-such-shared/y is missing");
  assertEquals(missing({ paths: ["fixtures/none.bin"] }), "fixtures/none.bin is missing");
  assertEquals(
    missing({ python: ["convpress_no_such_module"] }),
    "/usr/bin/python3 cannot import convpress_no_such_module",
  );
});
