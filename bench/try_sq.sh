#!/bin/bash
# bench/try_sq.sh NAME COMPRESS-ARGS...: compresses SqueezeNet, decodes to ONNX, prints bytes and accuracy on images 100..499.
set -e
name=$1; shift
F=../shared/fixtures
out=${OUT:-/tmp/h11}
npx -y deno@2.9.6 task -q convpress compress $F/caffe/squeezenet_dc/decompressed_SqueezeNet.caffemodel \
  --prototxt $F/caffe/squeezenet_dc/SqueezeNet_deploy.prototxt -o $out/$name.cvp "$@" > $out/$name.report.txt
npx -y deno@2.9.6 task -q convpress decode $out/$name.cvp -o $out/$name.onnx
bytes=$(stat -c %s $out/$name.cvp)
echo "$name bytes $bytes ratio $(python3 -c "print(round(4993696/$bytes,2))") $(npx -y deno@2.9.6 run -A bench/accuracy.ts --data imagenet --skip 100 --ref $out/sq.onnx $out/$name.onnx | tail -1 | cut -d' ' -f2-)"
