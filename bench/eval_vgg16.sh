#!/usr/bin/env bash
# VGG16 eval benchmark (issue 7): the original ONNX evaluated side by side with its compressed .cvp (thesis recipe)
# and with itself, on a batch of 4, each run under /work/shared/tools/peak-rss.sh; budget: peak RSS <= 600 MB.
# Then ONNX Runtime cross-checks the relative logit error eval reports for the compressed model.
# Needs /tmp/vgg16-fixtures (../shared/tools/vgg16-fixtures.sh) and /usr/bin/python3 with numpy.
# Usage: bash bench/eval_vgg16.sh [OUT_DIR]      (CVP=path to reuse or place the compressed model)
set -euo pipefail
cd "$(dirname "$0")/.."
FX=${VGG16_FIXTURES:-/tmp/vgg16-fixtures}
OUT=${1:-bench/out/eval}
CVP=${CVP:-/tmp/vgg16_thesis.cvp}
mkdir -p "$OUT"
PEAK=../shared/tools/peak-rss.sh
# 600 MB = 600,000,000 bytes = 585,937 KB (the stricter reading of the budget).
BUDGET_KB=585937
# A batch of 4: the fixture's 2 images, then the same 2 in reverse order halved and shifted by 0.1; as .npy (what
# eval reads) and as raw float32 (what bench/compare_onnx.ts reads).
/usr/bin/python3 - "$FX/input_nchw.f32" "$OUT/batch4" <<'PY'
import sys, numpy as np
x = np.fromfile(sys.argv[1], dtype="<f4").reshape(2, 3, 224, 224)
b = np.concatenate([x, x[::-1] * 0.5 + 0.1]).astype("<f4")
np.save(sys.argv[2] + ".npy", b)
b.tofile(sys.argv[2] + ".f32")
PY
if [ ! -s "$CVP" ]; then
  deno task convpress compress "$FX/vgg16.onnx" -o "$CVP" --recipe recipes/vgg16-thesis.json >/dev/null
fi
ls -l "$FX/vgg16.onnx" "$CVP"

fail=0
# measure NAME ARGS...: runs `convpress eval ARGS --json` under peak-rss.sh, prints a summary and the figures.
measure() {
  local name=$1
  shift
  echo "# $name"
  echo "  deno task convpress eval $* --json"
  $PEAK deno task convpress eval "$@" --json >"$OUT/$name.json" 2>"$OUT/$name.err" || {
    cat "$OUT/$name.err"
    exit 1
  }
  /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
ls = r.get("layers", [])
cmp = [l for l in ls if "note" not in l]
out = {k: r[k] for k in ("count", "agreement_top1", "agreement_top5", "relative_error") if k in r}
if "layers" in r:
    out["layers_compared"] = len(cmp)
    out["layers_shape_differs"] = len(ls) - len(cmp)
print("  " + json.dumps(out))' "$OUT/$name.json"
  local fig
  fig=$(grep -E '^wall .* peak RSS' "$OUT/$name.err")
  echo "  $fig"
  local kb
  kb=$(echo "$fig" | sed -E 's/.*peak RSS ([0-9]+) KB.*/\1/')
  if [ "$kb" -gt "$BUDGET_KB" ]; then
    echo "  OVER BUDGET: $kb KB > $BUDGET_KB KB"
    fail=1
  fi
}

B="--data $OUT/batch4.npy --batch 4"
# shellcheck disable=SC2086 # $B is a list of arguments
measure onnx_vs_cvp "$FX/vgg16.onnx" --reference "$CVP" $B
# shellcheck disable=SC2086
measure cvp_vs_onnx "$CVP" --reference "$FX/vgg16.onnx" $B
# shellcheck disable=SC2086
measure onnx_vs_onnx "$FX/vgg16.onnx" --reference "$FX/vgg16.onnx" $B
# shellcheck disable=SC2086
measure onnx_alone "$FX/vgg16.onnx" $B

echo "# ONNX Runtime: the compressed model converted to ONNX against the original, same batch"
echo "  (its relative error must equal cvp_vs_onnx's relative_error above)"
deno task convpress convert "$CVP" -o "$OUT/vgg16_thesis.onnx" 2>/dev/null
deno run -A bench/compare_onnx.ts "$FX/vgg16.onnx" "$OUT/vgg16_thesis.onnx" "$OUT/batch4.f32" 4,3,224,224
exit $fail
