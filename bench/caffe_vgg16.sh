#!/usr/bin/env bash
# Full-size VGG16 Caffe conversions with peak RSS, each checked by a real client (ONNX Runtime, OpenCV DNN).
# Needs /tmp/vgg16-fixtures (../shared/tools/vgg16-fixtures.sh). Usage (from the project root): bash bench/caffe_vgg16.sh
set -euo pipefail
V=${VGG:-/tmp/vgg16-fixtures}
O=${OUT:-/tmp/convpress-caffe-bench}
T=../shared/tools
P=fixtures/caffe/vgg16_logits.prototxt
mkdir -p "$O"
cp="deno run --allow-read --allow-write main.ts convert"
run() { echo "\$ $*"; "$T/peak-rss.sh" "$@"; }
for f in v1 v2; do
  run $cp "$V/vgg16_$f.caffemodel" -o "$O/vgg16_$f.onnx" --prototxt $P
  deno run -A $T/check_onnx.ts "$O/vgg16_$f.onnx" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" 1e-5
  run bash -c "cat $V/vgg16_$f.caffemodel | $cp - -o - --from caffe --to onnx --prototxt $P > $O/vgg16_${f}_stdin.onnx"
  deno run -A $T/check_onnx.ts "$O/vgg16_${f}_stdin.onnx" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" 1e-5
  rm -f "$O/vgg16_$f.onnx" "$O/vgg16_${f}_stdin.onnx"
done
run $cp "$V/vgg16.onnx" -o "$O/vgg16.caffemodel" --prototxt-out "$O/vgg16.prototxt"
/usr/bin/python3 $T/check_caffe_opencv.py "$O/vgg16.prototxt" "$O/vgg16.caffemodel" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" "" 1e-5
run bash -c "cat $V/vgg16.onnx | $cp - -o - --from onnx --to caffe > $O/vgg16.tar"
(cd "$O" && rm -rf untar && mkdir untar && tar -xf vgg16.tar -C untar && ls untar)
/usr/bin/python3 $T/check_caffe_opencv.py "$O/untar/deploy.prototxt" "$O/untar/model.caffemodel" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" "" 1e-5
run $cp "$V/vgg16_v1.caffemodel" -o "$O/vgg16_cc.caffemodel" --prototxt $P
/usr/bin/python3 $T/check_caffe_opencv.py "$O/vgg16_cc.prototxt" "$O/vgg16_cc.caffemodel" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" "" 1e-5
rm -rf "$O"
