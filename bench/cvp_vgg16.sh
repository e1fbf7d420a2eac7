#!/usr/bin/env bash
# VGG16 ONNX -> .cvp (f32 and f16) -> ONNX: sizes, peak RSS, ONNX Runtime logits. Needs /tmp/vgg16-fixtures.
# Usage: bash bench/cvp_vgg16.sh [OUTDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
FIX=/tmp/vgg16-fixtures
OUT=${1:-bench/out/cvp}
mkdir -p "$OUT"
RSS=/work/shared/tools/peak-rss.sh
CP="deno run -A main.ts"
check() { deno run -A /work/shared/tools/check_onnx.ts "$1" $FIX/input_nchw.f32 2,3,224,224 $FIX/vgg16.logits.f32 "$2"; }
echo "== ONNX -> cvp (f32)";  $RSS $CP convert $FIX/vgg16.onnx -o "$OUT/vgg16.cvp"
echo "== cvp -> ONNX";        $RSS $CP decode "$OUT/vgg16.cvp" --to onnx -o "$OUT/back.onnx"
echo "== ONNX -> ONNX (direct, for comparison)"; $CP convert $FIX/vgg16.onnx -o "$OUT/direct.onnx"
cmp "$OUT/direct.onnx" "$OUT/back.onnx" && echo "back.onnx is byte-identical to the direct ONNX -> ONNX conversion"
echo "== ONNX Runtime, original";  check $FIX/vgg16.onnx 1e-5
echo "== ONNX Runtime, via cvp";   check "$OUT/back.onnx" 1e-5
echo "== ONNX -> cvp (--weights f16)"; $RSS $CP convert $FIX/vgg16.onnx -o "$OUT/vgg16_f16.cvp" --weights f16
echo "== cvp f16 -> ONNX";           $RSS $CP decode "$OUT/vgg16_f16.cvp" --to onnx -o "$OUT/back16.onnx"
echo "== ONNX Runtime, via cvp f16"; check "$OUT/back16.onnx" 1e-2
echo "== reference decoder (decoder.ts) over the f32 file, streaming"
$RSS deno run -A --no-config - "$OUT/vgg16.cvp" <<'TS'
import { decodeCvp } from "./formats/cvp/decoder.ts";
const f = await Deno.open(Deno.args[0]);
let n = 0;
for await (const ev of decodeCvp(f.readable)) if (ev.type === "tensor") n += ev.data.length;
console.log(`decoded ${n} values, every CRC checked`);
TS
ls -l $FIX/vgg16.onnx "$OUT"/*.cvp
