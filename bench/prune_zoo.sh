#!/bin/bash
# bench/prune_zoo.sh [FLAGS...]: compress --prune flops=0.5 (or FLAGS) on the torchvision exports of
# fixtures/zoo/export_torchvision.py (seeded random weights, in $CONVPRESS_ZOO_CACHE/torch), decode each .cvp to
# ONNX and run it in ONNX Runtime: prints the MAC fraction the report gives and the output shape.
set -e
cache=${CONVPRESS_ZOO_CACHE:-/tmp/convpress-zoo-cache}/torch
out=${OUT:-/tmp/convpress-prune-zoo}
mkdir -p $out
D="npx -y deno@2.9.6"
flags=("$@"); [ ${#flags[@]} -eq 0 ] && flags=(--prune flops=0.5)
/usr/bin/python3 fixtures/zoo/export_torchvision.py $cache squeezenet1_1 resnet18 mobilenet_v2 googlenet
for m in squeezenet1_1 resnet18 mobilenet_v2 googlenet; do
  $D task -q convpress compress $cache/$m.onnx -o $out/$m.cvp "${flags[@]}" > $out/$m.report.txt 2> $out/$m.stderr.txt
  $D task -q convpress decode $out/$m.cvp -o $out/$m.pruned.onnx
  echo "$m $(grep -o 'MACs [0-9.]*% of before' $out/$m.report.txt) $(grep -c '^not pruned' $out/$m.report.txt) layers not pruned;" \
    "$(grep -h warning $out/$m.stderr.txt || true) $($D run -A bench/ort_shape.ts $cache/$m.onnx $out/$m.pruned.onnx)"
done
