"""A small ONNX model with one spatial Pad (asymmetric, constant 0.5) and a Relu after it, made by the reference
`onnx` package. Usage: /usr/bin/python3 make_pad_onnx.py OUT.onnx (see README.md beside this file)."""
import sys
import onnx
from onnx import helper, TensorProto
import numpy as np
from onnx import numpy_helper

x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 6, 7])
pads = numpy_helper.from_array(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads")
value = numpy_helper.from_array(np.array(0.5, np.float32), "value")
nodes = [helper.make_node("Pad", ["x", "pads", "value"], ["p"], name="pad", mode="constant"),
         helper.make_node("Relu", ["p"], ["y"], name="relu")]
graph = helper.make_graph(nodes, "old_pad", [x], [y], [pads, value])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_pad_onnx.py")
model.ir_version = 8
onnx.checker.check_model(model, full_check=True)
onnx.save(model, sys.argv[1])
