#!/usr/bin/env bash
# Compressed ONNX (`decode --keep-clustered`) against the float decode, on VGG16 (thesis recipe) and SqueezeNet
# (cluster8): file sizes, index payload, ONNX Runtime's peak RSS loading and running each file, and the largest output
# difference. Usage: bench/compressed_onnx.sh [VGG16_FIXTURES_DIR]   (results: bench/results/compressed_onnx.md)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
fx=${1:-/tmp/vgg16-fixtures}
shared="$root/../shared"
out="$root/bench/out"
mkdir -p "$out"
deno=${DENO:-deno}
cp="$deno run --allow-read --allow-write --allow-env --allow-sys --allow-ffi --v8-flags=--expose-gc $root/main.ts"
rss="$shared/tools/peak-rss.sh"

sizes() { # MODEL.onnx: checker, index bytes, codebook bytes, ceil(log2 k)-bit ideal
  /usr/bin/python3 - "$1" <<'PY'
import onnx, sys, math
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m)
inits = {t.name: t for t in m.graph.initializer}
index = codebooks = 0
ideal = 0.0
for name, t in inits.items():
    if name.endswith("__cvp_q"):
        index += len(t.raw_data)
        base = name[:-2]
        shape = numpy_helper.to_array(inits[base + "_shape"]).tolist() if base + "_shape" in inits else list(t.dims)
        k = inits[base + "_codebook"].dims[0] if base + "_codebook" in inits else 256
        ideal += math.prod(shape) * max(1, math.ceil(math.log2(k))) / 8
    if name.endswith(("__cvp_codebook", "__cvp_scale", "__cvp_zp")): codebooks += len(t.raw_data)
import os
size = os.path.getsize(sys.argv[1])
print(f"checker ok; index payload {index:,} B + codebooks {codebooks:,} B; file {size:,} B = "
      f"{size / (index + codebooks):.3f}x of them, {size / (ideal + codebooks):.3f}x of ceil(log2 k)-bit packing")
PY
}

maxdiff() {
  /usr/bin/python3 -c "import numpy as np,sys; a=np.fromfile(sys.argv[1],np.float32); b=np.fromfile(sys.argv[2],np.float32); print(f'max |diff| {np.abs(a-b).max():.3g} over {a.size} outputs (max |y| {np.abs(a).max():.3g})')" "$1" "$2"
}

run() { # NAME CVP INPUT SHAPE
  local name=$1 cvp=$2 input=$3 shape=$4
  echo "== $name: decode, float and --keep-clustered"
  $rss $cp decode "$cvp" -o "$out/$name.onnx"
  $rss $cp decode "$cvp" --keep-clustered -o "$out/${name}_kept.onnx"
  ls -l "$cvp" "$out/$name.onnx" "$out/${name}_kept.onnx"
  sizes "$out/${name}_kept.onnx"
  echo "== $name: ONNX Runtime loads and runs each"
  for level in all disabled; do
    $deno run -A "$here/ort_peak.ts" "$out/$name.onnx" "$input" "$shape" "$out/${name}_float.f32" $level
    $deno run -A "$here/ort_peak.ts" "$out/${name}_kept.onnx" "$input" "$shape" "$out/${name}_kept.f32" $level
    maxdiff "$out/${name}_float.f32" "$out/${name}_kept.f32"
  done
}

sq="$shared/fixtures/caffe/squeezenet_dc"
echo "== compress SqueezeNet with recipes/cluster8.json"
$cp compress "$sq/decompressed_SqueezeNet.caffemodel" --prototxt "$sq/SqueezeNet_deploy.prototxt" \
  --recipe "$root/recipes/cluster8.json" -o "$out/squeezenet_c8.cvp" | tail -1
/usr/bin/python3 -c "import numpy as np; np.random.default_rng(1).uniform(-128,128,(1,3,227,227)).astype(np.float32).tofile('$out/squeezenet_input.f32')"
run squeezenet_c8 "$out/squeezenet_c8.cvp" "$out/squeezenet_input.f32" 1,3,227,227

[ -f "$fx/vgg16_v1.caffemodel" ] || bash "$shared/tools/vgg16-fixtures.sh" "$fx"
echo "== compress VGG16 with recipes/vgg16-thesis.json"
$rss $cp compress "$fx/vgg16_v1.caffemodel" --prototxt "$shared/fixtures/caffe/vgg16/VGG_ILSVRC_16_layers_deploy.prototxt" \
  --recipe "$root/recipes/vgg16-thesis.json" -o "$out/vgg16_thesis.cvp" | tail -1
run vgg16_thesis "$out/vgg16_thesis.cvp" "$fx/input_nchw.f32" 2,3,224,224
