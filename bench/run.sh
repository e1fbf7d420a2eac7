#!/usr/bin/env bash
# Runs every whole-process benchmark (bench/*_vgg16.sh) on the full VGG16; results go to stdout. Needs the VGG16
# fixtures (made by ../shared/tools/vgg16-fixtures.sh on first use, about 2.3 GB in /tmp/vgg16-fixtures).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for s in "$here"/*_vgg16.sh; do
  echo "#### $(basename "$s")"
  bash "$s" "$@"
done
# Speed against peers (ONNX Runtime, PyTorch, cat); writes bench/results/speed.md and its block in bench/RESULTS.md.
echo "#### speed.sh"
bash "$here/speed.sh"
