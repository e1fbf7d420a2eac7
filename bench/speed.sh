#!/usr/bin/env bash
# Speed against peers (issue 13), each pair run alternately RUNS times (default 3) in this one script, wall time and
# peak RSS from /usr/bin/time; medians and the median of the pairwise ratios go to bench/results/speed.md and into
# bench/RESULTS.md between the speed markers.
#   eval SqueezeNet (500 ImageNet images)  vs ONNX Runtime on the whole model, same preprocessed .npy, batch 16
#   eval SqueezeNet from the JPEG folder  vs the same ONNX Runtime run (decoding counted on convpress's side only)
#   eval VGG16 (16 inputs, batch 16)       vs ONNX Runtime on the whole model
#   compress thesis recipe / cluster8      vs bench/thesis_torch.py (PyTorch, whole model in memory)
#   compress --calibration (16 images)     against its budget (30 s, 400 MB)
#   convert ONNX -> ONNX file to file      vs cat vgg16.onnx > copy
# Usage: bash bench/speed.sh [RUNS]   (CLUSTER8_PEER=1 adds the 20-minute PyTorch cluster8 peer; CALIBRATION_RUNS=N
# runs the calibration row N times, default 1; CONVERT_PAIRS=N convert pairs per run, default 4)  Needs /tmp/vgg16-fixtures, ../shared/fixtures, /usr/bin/python3 (cv2, torch).
# The load average at the start and the end goes into the table's notes: on a shared machine the figures are not final.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}
FX=${VGG16_FIXTURES:-/tmp/vgg16-fixtures}
SH=../shared/fixtures
OUT=bench/out/speed
mkdir -p "$OUT"
SQ=$SH/caffe/squeezenet_dc
IMG=$SH/imagenet
VGGP=$SH/caffe/vgg16/VGG_ILSVRC_16_layers_deploy.prototxt
CP="deno run --allow-read --allow-write --allow-env --allow-sys --allow-ffi --v8-flags=--expose-gc main.ts"
TIMES=$OUT/times.tsv
: >"$TIMES"
uptime >"$OUT/load.txt"

# timed NAME SIDE CMD...: one run; appends "NAME SIDE wall_s peak_kb" to $TIMES.
timed() {
  local name=$1 side=$2
  shift 2
  /usr/bin/time -f '%e %M' -o "$OUT/time.txt" "$@" >"$OUT/$name.$side.out" 2>"$OUT/$name.$side.err" || {
    echo "FAILED: $*" >&2
    cat "$OUT/$name.$side.err" >&2
    exit 1
  }
  echo "$name $side $(tail -1 "$OUT/time.txt")" >>"$TIMES"
  echo "  $name $side: $(tail -1 "$OUT/time.txt") (s, KB)"
}


echo "== inputs"
# SqueezeNet as ONNX for ONNX Runtime; the 500 images preprocessed by OpenCV (the reference eval must match).
$CP convert "$SQ/decompressed_SqueezeNet.caffemodel" --prototxt "$SQ/SqueezeNet_deploy.prototxt" -o "$OUT/squeezenet.onnx" 2>/dev/null
/usr/bin/python3 - "$IMG" "$OUT" "$FX" <<'PY'
import os, sys, cv2, numpy as np
img, out, fx = sys.argv[1:4]
files = sorted(os.listdir(img + "/images"))
labels = dict(l.split() for l in open(img + "/labels.txt") if l.strip())
blob = cv2.dnn.blobFromImages([cv2.imread(f"{img}/images/{f}") for f in files], 1.0, (227, 227), (104, 117, 123))
np.save(out + "/imagenet500.npy", blob.astype("<f4"))
open(out + "/imagenet500.labels", "w").write("\n".join(labels[f] for f in files) + "\n")
x = np.fromfile(fx + "/input_nchw.f32", dtype="<f4").reshape(2, 3, 224, 224)
np.save(out + "/vgg16_16.npy", np.concatenate([x * (1 - 0.1 * i) + 0.05 * i for i in range(8)]).astype("<f4"))
PY
echo "== OpenCV DNN top-1 on the 500 images (reference)"
/usr/bin/python3 bench/squeezenet_opencv.py "$SQ/SqueezeNet_deploy.prototxt" "$SQ/decompressed_SqueezeNet.caffemodel" \
  "$IMG/images" "$IMG/labels.txt" | tee "$OUT/opencv.txt"

EV="$CP eval"
for i in $(seq "$RUNS"); do
  echo "== run $i"
  timed sq_npy convpress $EV "$OUT/squeezenet.onnx" --data "$OUT/imagenet500.npy" --labels "$OUT/imagenet500.labels" --batch 16 --json
  timed sq_npy ort deno run -A bench/ort_eval.ts "$OUT/squeezenet.onnx" "$OUT/imagenet500.npy" 16 "$OUT/imagenet500.labels"
  timed sq_jpeg convpress $EV "$SQ/decompressed_SqueezeNet.caffemodel" --prototxt "$SQ/SqueezeNet_deploy.prototxt" \
    --data "$IMG/images" --labels "$IMG/labels.txt" --preprocess caffe --mean 104,117,123 --batch 16 --json
  timed sq_jpeg ort deno run -A bench/ort_eval.ts "$OUT/squeezenet.onnx" "$OUT/imagenet500.npy" 16 "$OUT/imagenet500.labels"
  timed vgg_eval convpress $EV "$FX/vgg16.onnx" --data "$OUT/vgg16_16.npy" --batch 16 --json
  timed vgg_eval ort deno run -A bench/ort_eval.ts "$FX/vgg16.onnx" "$OUT/vgg16_16.npy" 16
  timed thesis convpress $CP compress "$FX/vgg16_v1.caffemodel" --prototxt "$VGGP" --recipe recipes/vgg16-thesis.json \
    -o "$OUT/thesis.cvp" --report-json "$OUT/thesis.json"
  timed thesis torch /usr/bin/python3 bench/thesis_torch.py "$FX/vgg16_v1.caffemodel" "$OUT/thesis.json" "$OUT/thesis_torch.npz"
  timed cluster8 convpress $CP compress "$FX/vgg16_v1.caffemodel" --prototxt "$VGGP" --recipe recipes/cluster8.json \
    -o "$OUT/cluster8.cvp"
  # Lloyd's k-means with 256 centres over all 138M weights takes about 20 minutes in PyTorch here: opt-in.
  if [ "${CLUSTER8_PEER:-0}" = 1 ]; then
    timed cluster8 torch /usr/bin/python3 bench/thesis_torch.py "$FX/vgg16_v1.caffemodel" --cluster8 "$OUT/cluster8_torch.npz"
  fi
  # A second's run, and the kernel's time in it varies by 3x (one pair ranged 0.5x-4.7x on a quiet machine), so several
  # per run. convpress writes a temporary file and renames it over the output (a failed run leaves the old file
  # whole), so it needs fresh pages while the old output still holds its own; `cat > copy` truncates the old output
  # first and writes into freed ones. The second peer replaces its output the way convpress does.
  for _ in $(seq "${CONVERT_PAIRS:-4}"); do
    timed convert convpress $CP convert "$FX/vgg16.onnx" -o "$OUT/copy.onnx"
    timed convert cat sh -c "cat '$FX/vgg16.onnx' > '$OUT/copy_cat.onnx'"
    timed convert catmv sh -c "cat '$FX/vgg16.onnx' > '$OUT/copy_mv.tmp' && mv '$OUT/copy_mv.tmp' '$OUT/copy_mv.onnx'"
  done
done
echo "== compress --calibration, 16 ImageNet images (budget: 30 s, 400 MB)"
mkdir -p "$OUT/calib16"
for f in $(ls "$IMG/images" | sed -n 1,16p); do ln -sf "$(realpath "$IMG/images/$f")" "$OUT/calib16/$f"; done
for i in $(seq "${CALIBRATION_RUNS:-1}"); do
  timed calibration convpress $CP compress "$FX/vgg16_v1.caffemodel" --prototxt "$VGGP" --recipe recipes/vgg16-thesis.json \
    --calibration "$OUT/calib16" --preprocess caffe --resize 224,224 -o "$OUT/thesis_calib.cvp"
done
rm -f "$OUT/copy.onnx" "$OUT/copy_cat.onnx" "$OUT/copy_mv.onnx"

uptime >>"$OUT/load.txt"
echo "== summary"
/usr/bin/python3 bench/speed_summary.py "$TIMES" "$OUT" bench/results/speed.md bench/RESULTS.md
cat bench/results/speed.md
