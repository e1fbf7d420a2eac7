import { checkModel, formatCheck } from "../src/check.ts";
const r = await checkModel(Deno.args[0], Deno.args[1] as never);
console.log(formatCheck(r).split("\n").slice(0, 14).join("\n"));
