import { assert, assertEquals } from "../../tests/helpers.ts";
import { ConvpressError } from "../errors.ts";
import { recipeFromFlags, STAGE_FLAGS, stageFlagsGiven, validateRecipe } from "./recipe.ts";
import { kindOf, STAGES } from "./stages.ts";

function usageError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    assert(e instanceof ConvpressError && e.code === "usage", String(e));
    return e.message;
  }
  throw new Error("expected a usage error");
}

Deno.test("stages: the registry drives the flags and the thesis order of a recipe from flags", () => {
  assertEquals(STAGES.map((s) => s.kind), ["fold", "gap", "prune", "tsvd", "channelScales", "cluster"]);
  assertEquals(Object.keys(STAGE_FLAGS), ["fold-bn", "gap", "prune", "svd", "channel-scales", "bits"]);
  const r = recipeFromFlags({ bits: "conv=5,fc=4", gap: true, svd: "256", prune: "flops=0.5" });
  assertEquals(r.stages.map(kindOf), ["gap", "prune", "tsvd", "cluster"]);
  assertEquals(r.stages[3], { cluster: { bits: { conv: 5, fc: 4 } } });
  const s = recipeFromFlags({ bits: "4", "channel-scales": "affine", "fold-bn": true });
  assertEquals(s.stages, [{ fold: {} }, { channelScales: { batchNorm: "affine" } }, { cluster: { bits: 4 } }]);
  assertEquals(r.stages[2], { tsvd: { rank: 256 } });
  assert(stageFlagsGiven({ gap: true }) && !stageFlagsGiven({ gap: false, recipe: "x.json" }));
});

Deno.test("stages: each stage's validate speaks for it in recipe errors", () => {
  const bad: [unknown, RegExp][] = [
    [
      { stages: [{ squash: {} }] },
      /stage 1 must be one of \{"fold"\|"gap"\|"prune"\|"tsvd"\|"channelScales"\|"cluster"/,
    ],
    [{ stages: [{ channelScales: { batchNorm: "x" } }] }, /stage 1 \(channelScales\).*keep.*affine/],
    [{ stages: [{ cluster: { bits: 17 } }] }, /stage 1 \(cluster\) needs bits from 1 to 16/],
    [{ stages: [{ gap: {} }, { prune: {} }] }, /stage 2 \(prune\) needs keep, flops or params/],
    [{ stages: [{ prune: { flops: 2 } }] }, /stage 1 \(prune\): fractions must be between 0 and 1/],
    [{ stages: [{ tsvd: {} }] }, /stage 1 \(tsvd\) needs rank, energy or bytes/],
  ];
  for (const [r, re] of bad) {
    const msg = usageError(() => validateRecipe(r, "r.json"));
    assert(re.test(msg), msg);
  }
  assert(/--prune/.test(usageError(() => recipeFromFlags({ prune: "flops" }))));
});
