"""Checks the ONNX decoded from a compressed .cvp, independently of convpress:
  - it contains GlobalAveragePool and the factorized FCs (pairs of Gemm, n -> k -> m);
  - every clustered weight holds at most 2^bits distinct values, each exactly representable in IEEE fp16;
  - a forward pass computed here with PyTorch from the decoded tensors matches ONNX Runtime's output (<= 1e-4).
Usage: /usr/bin/python3 thesis_check.py DECODED.onnx INPUT.f32 N,C,H,W ORT_OUT.f32 CONV_BITS FC_BITS
"""
import sys
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

path, inp, shape, ort_out, conv_bits, fc_bits = sys.argv[1:7]
m = onnx.load(path)
onnx.checker.check_model(m)
w = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in m.graph.initializer}
ops = [n.op_type for n in m.graph.node]
assert "GlobalAveragePool" in ops, "no GlobalAveragePool"
gemms = [n for n in m.graph.node if n.op_type == "Gemm"]
svd = [n for n in gemms if n.name.endswith("_svd")]
print(f"nodes: {len(ops)}; GlobalAveragePool: {ops.count('GlobalAveragePool')}; Gemm: {len(gemms)}, of which {len(svd)} factorized pairs")
assert svd, "no factorized FC"

worst = {}
for n in m.graph.node:
    if n.op_type not in ("Conv", "Gemm"):
        continue
    bits = int(conv_bits if n.op_type == "Conv" else fc_bits)
    v = np.unique(w[n.input[1]])
    ok16 = np.all(v.astype(np.float16).astype(np.float32) == v)
    assert len(v) <= 2 ** bits, f"{n.name}: {len(v)} distinct values > 2^{bits}"
    assert ok16, f"{n.name}: a value is not exactly representable in fp16"
    worst[n.op_type] = max(worst.get(n.op_type, 0), len(v))
print(f"clustered weights: at most {worst.get('Conv')} distinct values per Conv (2^{conv_bits} allowed), "
      f"{worst.get('Gemm')} per Gemm (2^{fc_bits} allowed), all exact in fp16")

def attrs(n):
    return {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}

x = torch.from_numpy(np.fromfile(inp, dtype="<f4").reshape([int(d) for d in shape.split(",")]).copy()).double()
env = {m.graph.input[0].name: x}
T = lambda name: torch.from_numpy(w[name]).double()
for n in m.graph.node:
    a = attrs(n)
    i = env.get(n.input[0]) if n.input else None
    if n.op_type == "Conv":
        p = a.get("pads", [0, 0, 0, 0])
        i = F.pad(i, (p[1], p[3], p[0], p[2]))
        y = F.conv2d(i, T(n.input[1]), T(n.input[2]) if len(n.input) > 2 else None, stride=a.get("strides", [1, 1]),
                     dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
    elif n.op_type == "Relu":
        y = torch.relu(i)
    elif n.op_type == "MaxPool":
        p = a.get("pads", [0, 0, 0, 0])
        assert p[0] == p[2] and p[1] == p[3]
        y = F.max_pool2d(i, a["kernel_shape"], a.get("strides", [1, 1]), (p[0], p[1]), ceil_mode=bool(a.get("ceil_mode", 0)))
    elif n.op_type == "GlobalAveragePool":
        y = i.mean(dim=(2, 3), keepdim=True)
    elif n.op_type == "Flatten":
        y = i.reshape(i.shape[0], -1)
    elif n.op_type == "Gemm":
        assert a.get("transB") == 1
        y = i @ T(n.input[1]).T + (T(n.input[2]) if len(n.input) > 2 else 0)
    elif n.op_type == "Softmax":
        y = torch.softmax(i, dim=a.get("axis", -1))
    elif n.op_type in ("Dropout", "Identity"):
        y = i
    else:
        raise SystemExit(f"unexpected op {n.op_type}")
    env[n.output[0]] = y
ref = env[m.graph.output[0].name].numpy().astype(np.float32).ravel()
got = np.fromfile(ort_out, dtype="<f4")
rel = float(np.linalg.norm(got - ref) / np.linalg.norm(ref))
print(f"PyTorch forward from the decoded tensors vs ONNX Runtime: relative error {rel:.2e}")
assert rel <= 1e-4
print("ok")
