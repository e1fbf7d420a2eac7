import { assertEquals } from "../../tests/helpers.ts";
import { Serial } from "./serial.ts";

Deno.test("Serial: jobs run one at a time in the order asked, a failing one does not stop the next", async () => {
  const s = new Serial();
  const log: string[] = [];
  const job = (name: string, fail = false) => async () => {
    log.push(`${name}+`);
    await new Promise((r) => setTimeout(r, 5));
    log.push(`${name}-`);
    if (fail) throw new Error(name);
    return name;
  };
  const [a, b, c] = await Promise.allSettled([s.run(job("a")), s.run(job("b", true)), s.run(job("c"))]);
  assertEquals(log, ["a+", "a-", "b+", "b-", "c+", "c-"]);
  assertEquals([a.status, b.status, c.status], ["fulfilled", "rejected", "fulfilled"]);
});
