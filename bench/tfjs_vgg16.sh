#!/usr/bin/env bash
# Full-size VGG16 TF.js conversions with peak RSS, each checked by a real client (tfjs for TF.js output with
# channels-last input, ONNX Runtime for ONNX output with channels-first input).
# Needs /tmp/vgg16-fixtures (../shared/tools/vgg16-fixtures.sh). Usage (from the project root): bash bench/tfjs_vgg16.sh
set -euo pipefail
V=${VGG:-/tmp/vgg16-fixtures}
O=${OUT:-/tmp/convpress-tfjs-bench}
T=../shared/tools
P=fixtures/caffe/vgg16_logits.prototxt
rm -rf "$O" && mkdir -p "$O"
cp="deno run --allow-read --allow-write main.ts convert"
run() { echo "\$ $*"; "$T/peak-rss.sh" "$@"; }
tfjs_check() { deno run -A $T/check_tfjs.ts "$1" "$V/input_nhwc.f32" 2,224,224,3 "$V/vgg16.logits.f32" "${2:-1e-5}"; }
onnx_check() { deno run -A $T/check_onnx.ts "$1" "$V/input_nchw.f32" 2,3,224,224 "$V/vgg16.logits.f32" 1e-5; }

# ONNX -> TF.js: a plain stack, so a layers-model; conv kernels OIHW->HWIO, fc6 transposed in blocks with its
# input index permuted (c,h,w)->(h,w,c), fc7/fc8 transposed.
run $cp "$V/vgg16.onnx" -o "$O/from_onnx" --to tfjs
tfjs_check "$O/from_onnx"
# ONNX -> TF.js graph-model: MatMul transpose_b keeps FC weights [out, in] (fc6 permuted row by row).
run $cp "$V/vgg16.onnx" -o "$O/from_onnx_graph" --to tfjs --tfjs-kind graph-model
tfjs_check "$O/from_onnx_graph"
rm -rf "$O/from_onnx_graph"
# Caffe V1 -> TF.js (deploy prototxt without the final Softmax, to compare logits).
run $cp "$V/vgg16_v1.caffemodel" -o "$O/from_caffe" --to tfjs --prototxt $P
tfjs_check "$O/from_caffe"
rm -rf "$O/from_caffe"
# TF.js (saved by tfjs itself) -> ONNX: HWIO->OIHW, Dense [in,out] -> FC [out,in] in blocks, fc6 permuted.
run $cp "$V/tfjs/vgg16" -o "$O/from_tfjs.onnx" --to onnx
onnx_check "$O/from_tfjs.onnx"
rm -f "$O/from_tfjs.onnx"
# TF.js -> TF.js round trip: kernels pass through in TF.js layout (no transposes).
run $cp "$V/tfjs/vgg16" -o "$O/roundtrip" --to tfjs
tfjs_check "$O/roundtrip"
cmp <(cat "$V"/tfjs/vgg16/group1-shard{1..132}of132.bin) <(cat "$O"/roundtrip/group1-shard{1..132}of132.bin) && echo "round trip: weight bytes identical"
rm -rf "$O/roundtrip"
# Pipes: a tar of the TF.js folder on stdin -> ONNX on stdout; ONNX on stdin -> a TF.js tar on stdout.
run bash -c "tar -cf - -C $V/tfjs/vgg16 . | $cp - --from tfjs --to onnx -o - > $O/stdin.onnx"
onnx_check "$O/stdin.onnx"
rm -f "$O/stdin.onnx"
run bash -c "cat $V/vgg16.onnx | $cp - --from onnx --to tfjs -o - > $O/vgg16.tar"
mkdir -p "$O/untar" && tar -xf "$O/vgg16.tar" -C "$O/untar" && tar -tf "$O/vgg16.tar" | tail -1
tfjs_check "$O/untar"
rm -rf "$O/untar" "$O/vgg16.tar"
# Quantized weights (float16, uint8): sizes and accuracy against the float32 logits.
for q in float16 uint8; do
  run $cp "$V/vgg16.onnx" -o "$O/q_$q" --to tfjs --quantize $q
  du -sb "$O/q_$q" | cut -f1
  tfjs_check "$O/q_$q" 1 || true
  rm -rf "$O/q_$q"
done
rm -rf "$O"
