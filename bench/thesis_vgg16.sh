#!/usr/bin/env bash
# The thesis recipe on the full VGG16, V1 caffemodel with its deploy prototxt (the acceptance run of the compression
# issue): ratio, wall time and peak RSS of `convpress compress`; the decoded ONNX checked by ONNX Runtime, the onnx
# checker and an independent PyTorch forward pass (bench/thesis_check.py); and the same stages in PyTorch/NumPy
# (bench/thesis_torch.py) measured in the same run. Usage: bench/thesis_vgg16.sh [FIXTURES_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fx=${1:-/tmp/vgg16-fixtures}
shared="$root/../shared"
[ -f "$fx/vgg16_v1.caffemodel" ] || bash "$shared/tools/vgg16-fixtures.sh" "$fx"
out="$root/bench/out"
mkdir -p "$out"
deno=${DENO:-deno}
cp="$deno run --allow-read --allow-write --v8-flags=--expose-gc $root/main.ts"
rss="$shared/tools/peak-rss.sh"
proto="$shared/fixtures/caffe/vgg16/VGG_ILSVRC_16_layers_deploy.prototxt"

echo "== convpress compress vgg16_v1.caffemodel --recipe recipes/vgg16-thesis.json"
$rss $cp compress "$fx/vgg16_v1.caffemodel" --prototxt "$proto" --recipe "$root/recipes/vgg16-thesis.json" \
  -o "$out/vgg16_thesis.cvp" --report-json "$out/vgg16_thesis.json" --report-html "$out/vgg16_thesis.html" | tail -4
ls -l "$out/vgg16_thesis.cvp"
/usr/bin/python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(f\"ratio {r['ratio']:.2f}x = {r['totals']['paramsBefore']*4:,} / {r['fileBytes']:,} bytes\")" "$out/vgg16_thesis.json"
echo "== decode to ONNX, run in ONNX Runtime, check independently"
$rss $cp decode "$out/vgg16_thesis.cvp" -o "$out/vgg16_thesis.onnx"
$deno run -A "$here/ort_run.ts" "$out/vgg16_thesis.onnx" "$fx/input_nchw.f32" 2,3,224,224 "$out/vgg16_thesis_ort.f32"
/usr/bin/python3 "$here/thesis_check.py" "$out/vgg16_thesis.onnx" "$fx/input_nchw.f32" 2,3,224,224 "$out/vgg16_thesis_ort.f32" 5 4
echo "== the same stages in PyTorch/NumPy (same file, same kept counts)"
$rss /usr/bin/python3 "$here/thesis_torch.py" "$fx/vgg16_v1.caffemodel" "$out/vgg16_thesis.json" "$out/vgg16_thesis_torch.npz"
ls -l "$out/vgg16_thesis_torch.npz"
