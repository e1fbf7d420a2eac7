#!/usr/bin/env bash
# VGG16 eval benchmark: the original ONNX against a converted copy (.cvp, float32), side by side on a batch of 4,
# under /work/shared/tools/peak-rss.sh. Needs /tmp/vgg16-fixtures (../shared/tools/vgg16-fixtures.sh).
# Usage: bash bench/eval_vgg16.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
FX=${VGG16_FIXTURES:-/tmp/vgg16-fixtures}
OUT=${1:-bench/out/eval}
mkdir -p "$OUT"
PEAK=../shared/tools/peak-rss.sh
# A batch of 4: the fixture's input and three variants of it (negated, halved, shifted), as one .npy.
/usr/bin/python3 - "$FX/input_nchw.f32" "$OUT/batch4.npy" <<'PY'
import sys, numpy as np
x = np.fromfile(sys.argv[1], dtype="<f4").reshape(-1, 3, 224, 224)[:1]
np.save(sys.argv[2], np.concatenate([x, -x, x * 0.5, np.roll(x, 7, axis=3)]).astype("<f4"))
PY
if [ ! -s "$OUT/vgg16_copy.cvp" ]; then
  deno run -A main.ts convert "$FX/vgg16.onnx" -o "$OUT/vgg16_copy.cvp"
fi
echo "# eval of the original against itself read from ONNX, batch 4 (wasm)"
$PEAK deno run -A fixtures/eval/eval_main.ts "$FX/vgg16.onnx" --reference "$FX/vgg16.onnx" --data "$OUT/batch4.npy" \
  --batch 4 --json
echo "# eval of the .cvp copy against the original ONNX, batch 4 (wasm)"
$PEAK deno run -A fixtures/eval/eval_main.ts "$OUT/vgg16_copy.cvp" --reference "$FX/vgg16.onnx" --data "$OUT/batch4.npy" \
  --batch 4
