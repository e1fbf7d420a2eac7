#!/bin/bash
# bench/try_model.sh squeezenet|lenet|cifar10|nsfw_mobilenet|nsfw_inception NAME COMPRESS-ARGS...: compresses a fixture model to $OUT/NAME.cvp
# (default /tmp/convpress-try), decodes it to ONNX and prints bytes, ratio, top-1 and agreement with the original
# in ONNX Runtime on the samples NOT used for calibration (ImageNet 100..499, MNIST and CIFAR-10 500..4999; the
# calibration commands below take the first 100 / 500 with --limit; nsfwjs: the ImageNet photos 100..499 at /255,
# after `deno run -A bench/extract_nsfw.ts` wrote the TF.js models to $NSFW, default /tmp/convpress-nsfw).
set -e
model=$1; name=$2; shift 2
F=../shared/fixtures
out=${OUT:-/tmp/convpress-try}
mkdir -p $out
D="npx -y deno@2.9.6"
case $model in
  squeezenet) src=(
    $F/caffe/squeezenet_dc/decompressed_SqueezeNet.caffemodel --prototxt $F/caffe/squeezenet_dc/SqueezeNet_deploy.prototxt)
    data=imagenet; skip=100; f32=4993696 ;;
  lenet) src=($F/caffe/lenet/lenet_iter_10000.caffemodel --prototxt $F/caffe/lenet/mnist_deploy.prototxt)
    data=mnist; skip=500; f32=1724320 ;;
  cifar10) src=($F/caffe/cifar10_quick/cifar10_quick_iter_5000.caffemodel --prototxt $F/caffe/cifar10_quick/cifar10_quick.prototxt)
    data=cifar10; skip=500; f32=582312 ;;
  nsfw_mobilenet) src=(${NSFW:-/tmp/convpress-nsfw}/mobilenet_v2/model.json)
    data=imagenet224; skip=100; f32=10477844 ;;
  nsfw_inception) src=(${NSFW:-/tmp/convpress-nsfw}/inception_v3/model.json)
    data=imagenet299; skip=100; f32=89443476 ;;
esac
[ -f $out/$model.onnx ] || $D task -q convpress convert "${src[@]}" -o $out/$model.onnx
$D task -q convpress compress "${src[@]}" -o $out/$name.cvp "$@" > $out/$name.report.txt
$D task -q convpress decode $out/$name.cvp -o $out/$name.onnx
bytes=$(stat -c %s $out/$name.cvp)
echo "$model $name bytes $bytes ratio $(python3 -c "print(round($f32/$bytes,2))") $($D run -A bench/accuracy.ts --data $data --skip $skip --ref $out/$model.onnx $out/$name.onnx | tail -1 | cut -d' ' -f2-)"
