"""Writes one small named ONNX model for the lit tests: gen.py NAME OUT.onnx

Models are tiny and deterministic; bad ones are bad in exactly one way, named by NAME.
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def w(name, shape, keep_every=3, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape).astype(np.float32)
    flat = a.reshape(-1)
    flat[np.arange(flat.size) % keep_every != 0] = 0
    return numpy_helper.from_array(a, name)


def model(nodes, inputs, outputs, inits, opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def fin(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def mlp(opset=17, batch=4):
    # x -> Gemm(transB) + Relu -> MatMul + Add(bias first) + Relu -> Gemm -> y
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], name="fc1", transB=1),
        helper.make_node("Relu", ["h1"], ["a1"], name="relu1"),
        helper.make_node("MatMul", ["a1", "w2"], ["m2"], name="mm2"),
        helper.make_node("Add", ["b2", "m2"], ["h2"], name="add2"),
        helper.make_node("Relu", ["h2"], ["a2"], name="relu2"),
        helper.make_node("Gemm", ["a2", "w3"], ["y"], name="fc3", transB=1),
    ]
    inits = [w("w1", (32, 16)), numpy_helper.from_array(np.full(32, 0.1, np.float32), "b1"),
             w("w2", (32, 24), keep_every=10), numpy_helper.from_array(np.full(24, -0.1, np.float32), "b2"),
             w("w3", (8, 24), keep_every=1)]
    return model(nodes, [fin("x", [batch, 16])], [fin("y", None)], inits, opset)


def conv():
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["h"], name="conv1", kernel_shape=[1, 1]),
             helper.make_node("Relu", ["h"], ["y"], name="relu1")]
    inits = [w("w", (8, 6, 1, 1)), numpy_helper.from_array(np.zeros(8, np.float32), "b")]
    return model(nodes, [fin("x", [2, 6, 5, 3])], [fin("y", None)], inits)


def unsupported_op():
    nodes = [helper.make_node("Softsign", ["x"], ["y"], name="weird_node")]
    return model(nodes, [fin("x", [2, 3])], [fin("y", None)], [])


def bad_attr():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_s2", strides=[2, 2])]
    return model(nodes, [fin("x", [1, 4, 6, 6])], [fin("y", None)], [w("w", (4, 4, 1, 1))])


def conv3x3():
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv3", pads=[1, 1, 1, 1])]
    return model(nodes, [fin("x", [1, 4, 6, 6])], [fin("y", None)], [w("w", (4, 4, 3, 3))])


def double_input():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    return model(nodes, [fin("x", [2, 3], TensorProto.DOUBLE)], [fin("y", None)], [])


def shape_mismatch():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [fin("x", [4, 7])], [fin("y", None)], [w("w", (8, 6))])


def symbolic():
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    return model(nodes, [fin("x", ["batch", 16])], [fin("y", None)], [w("w", (8, 16))])


def old_opset():
    return mlp(opset=9)


MODELS = {
    "mlp": mlp, "mlp_batch1": lambda: mlp(batch=1), "conv": conv, "unsupported_op": unsupported_op,
    "bad_attr": bad_attr, "conv3x3": conv3x3, "double_input": double_input,
    "shape_mismatch": shape_mismatch, "symbolic": symbolic, "old_opset": old_opset,
}


def main():
    name, out = sys.argv[1], sys.argv[2]
    if name == "truncated":
        data = mlp().SerializeToString()
        open(out, "wb").write(data[: len(data) // 2])
        return
    if name == "not_onnx":
        open(out, "w").write("this is a text file, not a model\n")
        return
    onnx.save(MODELS[name](), out)


if __name__ == "__main__":
    main()
