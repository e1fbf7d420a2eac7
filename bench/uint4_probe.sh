#!/usr/bin/env bash
# Does ONNX Runtime run 4-bit UINT4 indices (opset 21, IR 10), and does the onnx checker accept them? Builds a tiny
# model (UINT4 initializer -> Cast(int32) -> Gather over a 16-entry codebook -> Add) and tries both.
# Usage: DENO="npx -y deno@2.9.6" bash bench/uint4_probe.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"; rm -f "$here/.uint4_probe.ts"' EXIT
/usr/bin/python3 - "$dir/u4.onnx" <<'PY'
import onnx, sys
from onnx import helper, TensorProto
q = TensorProto(); q.name = "q"; q.data_type = 21; q.dims.extend([4, 5])  # 21 = UINT4, low nibble first
q.raw_data = bytes([0x21, 0x43, 0x65, 0x87, 0xa9, 0xcb, 0xed, 0x0f, 0x21, 0x43])
cb = helper.make_tensor("cb", TensorProto.FLOAT, [16], [i / 2 for i in range(16)])
nodes = [helper.make_node("Cast", ["q"], ["i"], to=TensorProto.INT32), helper.make_node("Gather", ["cb", "i"], ["w"]),
         helper.make_node("Add", ["x", "w"], ["y"])]
g = helper.make_graph(nodes, "u4", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 5])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 5])], initializer=[q, cb])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
m.ir_version = 10
open(sys.argv[1], "wb").write(m.SerializeToString())
try:
    onnx.checker.check_model(m)
    print(f"onnx {onnx.__version__} checker: accepted")
except Exception as e:
    print(f"onnx {onnx.__version__} checker: rejected: {str(e).splitlines()[0]}")
PY
cat > "$here/.uint4_probe.ts" <<TS
import * as ort from "onnxruntime-node";
const s = await ort.InferenceSession.create("$dir/u4.onnx");
const r = await s.run({ x: new ort.Tensor("float32", new Float32Array(20), [4, 5]) });
console.log("ONNX Runtime: ran it, y =", Array.from(r.y.data as Float32Array).join(","));
TS
${DENO:-deno} run -A "$here/.uint4_probe.ts" || echo "ONNX Runtime: failed"
