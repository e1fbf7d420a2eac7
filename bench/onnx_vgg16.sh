#!/usr/bin/env bash
# ONNX on the full VGG16 (553 MB): file -> file and stdin -> stdout conversions with wall time and peak RSS,
# against the reference `onnx` package loading and re-saving the same file, then ONNX Runtime and the onnx
# checker on the outputs. Usage: bench/onnx_vgg16.sh [FIXTURES_DIR]   (default /tmp/vgg16-fixtures)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fx=${1:-/tmp/vgg16-fixtures}
shared="$root/../shared"
[ -f "$fx/vgg16.onnx" ] || bash "$shared/tools/vgg16-fixtures.sh" "$fx"
out="$root/bench/out"
mkdir -p "$out"
deno=${DENO:-deno}
cp="$deno run --allow-read --allow-write $root/main.ts"
rss="$shared/tools/peak-rss.sh"

# Three alternating runs each, so page-cache and disk write-back effects hit both sides alike.
for i in 1 2 3; do
  echo "== run $i: convpress convert vgg16.onnx -> out.onnx (file to file)"
  $rss $cp convert "$fx/vgg16.onnx" -o "$out/vgg16_copy.onnx"
  echo "== run $i: onnx package: load + save"
  $rss /usr/bin/python3 -c "import onnx,sys; onnx.save(onnx.load(sys.argv[1]), sys.argv[2])" "$fx/vgg16.onnx" "$out/vgg16_py.onnx"
done
echo "== convpress convert - -> - (stdin to stdout)"
$rss $cp convert --from onnx --to onnx - -o - < "$fx/vgg16.onnx" > "$out/vgg16_pipe.onnx"
echo "== convpress convert --external-data"
$rss $cp convert "$fx/vgg16.onnx" -o "$out/vgg16_ext.onnx" --external-data
echo "== convpress inspect"
$cp inspect "$fx/vgg16.onnx" --json | /usr/bin/python3 -c "import json,sys; print('parameters', json.load(sys.stdin)['totals']['params'])"
for f in vgg16_copy vgg16_pipe vgg16_ext; do
  echo "== ONNX Runtime and onnx checker on $f.onnx"
  (cd "$out" && $deno run -A "$shared/tools/check_onnx.ts" "$out/$f.onnx" "$fx/input_nchw.f32" 2,3,224,224 "$fx/vgg16.logits.f32" 1e-5)
  /usr/bin/python3 -c "import onnx,sys; onnx.checker.check_model(sys.argv[1]); print('onnx.checker: ok')" "$out/$f.onnx"
done
echo "== the original file in ONNX Runtime, for comparison"
(cd "$out" && $deno run -A "$shared/tools/check_onnx.ts" "$fx/vgg16.onnx" "$fx/input_nchw.f32" 2,3,224,224 "$fx/vgg16.logits.f32" 1e-5)
echo "== ONNX Runtime: converted vs original, same input"
$deno run -A "$here/compare_onnx.ts" "$fx/vgg16.onnx" "$out/vgg16_copy.onnx" "$fx/input_nchw.f32" 2,3,224,224
$deno run -A "$here/compare_onnx.ts" "$fx/vgg16.onnx" "$out/vgg16_pipe.onnx" "$fx/input_nchw.f32" 2,3,224,224
rm -f "$out"/vgg16_*.onnx "$out"/vgg16_*.onnx.data
