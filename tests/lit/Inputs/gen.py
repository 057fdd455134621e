"""Writes one small named ONNX model for the lit tests: gen.py NAME OUT.onnx (or, for a few names, another bad file)

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
    # An auto_pad value ONNX does not define.
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_pad", auto_pad="SAME_MIDDLE")]
    return model(nodes, [fin("x", [1, 4, 6, 6])], [fin("y", None)], [w("w", (4, 4, 3, 3))])


def grouped_conv():
    # Two groups of 2 input / 2 output channels.
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="conv_g2", group=2)]
    return model(nodes, [fin("x", [1, 4, 6, 6])], [fin("y", None)], [w("w", (4, 2, 1, 1))])


def ceil_pool(op="AveragePool", **attrs):
    nodes = [helper.make_node(op, ["x"], ["y"], name="pool", kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1,
                              **attrs)]
    return model(nodes, [fin("x", [1, 4, 6, 6])], [fin("y", None)], [])


def double_input():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    return model(nodes, [fin("x", [2, 3], TensorProto.DOUBLE)], [fin("y", None)], [])


def shape_mismatch():
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")]
    return model(nodes, [fin("x", [4, 7])], [fin("y", None)], [w("w", (8, 6))])


def symbolic():
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    return model(nodes, [fin("x", ["batch", 16])], [fin("y", None)], [w("w", (8, 16))])


def shape_chain(opset=17):
    # What exporters write for x.view(x.size(0), -1) on x [batch, 4, 8] followed by a Linear:
    # Shape -> Gather(0) -> Unsqueeze -> Concat with [-1] -> Reshape, plus a Squeeze / Unsqueeze
    # pair on the activation and a constant-only Mul / Cast / Range side chain.
    i64 = lambda name, vals: numpy_helper.from_array(np.array(vals, np.int64), name)
    if opset >= 13:
        unsq = helper.make_node("Unsqueeze", ["b0", "ax0"], ["b1"], name="unsq_batch")
        unsq_act = helper.make_node("Unsqueeze", ["f", "ax1"], ["f1"], name="unsq_act")
        sq_act = helper.make_node("Squeeze", ["f1", "ax1"], ["f2"], name="sq_act")
        extra = [i64("ax0", [0]), i64("ax1", [1])]
    else:
        unsq = helper.make_node("Unsqueeze", ["b0"], ["b1"], name="unsq_batch", axes=[0])
        unsq_act = helper.make_node("Unsqueeze", ["f"], ["f1"], name="unsq_act", axes=[1])
        sq_act = helper.make_node("Squeeze", ["f1"], ["f2"], name="sq_act", axes=[1])
        extra = []
    nodes = [
        helper.make_node("Shape", ["x"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "zero"], ["b0"], name="gather_batch", axis=0),
        unsq,
        helper.make_node("Concat", ["b1", "minus1"], ["target"], name="concat_shape", axis=0),
        helper.make_node("Reshape", ["x", "target"], ["f"], name="flatten_view"),
        unsq_act, sq_act,
        helper.make_node("Range", ["r0", "r1", "r2"], ["rng"], name="range"),
        helper.make_node("Cast", ["rng"], ["rngf"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Mul", ["rngf", "half"], ["bias"], name="scale_bias"),
        helper.make_node("Gemm", ["f2", "w", "bias"], ["y"], name="fc", transB=1),
    ]
    inits = [i64("zero", 0), i64("minus1", [-1]), i64("r0", 0), i64("r1", 6), i64("r2", 1),
             numpy_helper.from_array(np.array(0.5, np.float32), "half"), w("w", (6, 32))] + extra
    return model(nodes, [fin("x", ["batch", 4, 8])], [fin("y", None)], inits, opset)


def cnn():
    # Conv 3x3 s2 (bias) -> BatchNormalization -> Clip(0, 6) -> depthwise 3x3 -> Relu -> MaxPool
    # -> GlobalAveragePool -> Flatten -> Gemm
    c = lambda v: numpy_helper.from_array(np.array(v, np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="stem", kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c1", "g", "be", "mu", "var"], ["n1"], name="bn"),
        helper.make_node("Clip", ["n1", "lo", "hi"], ["r1"], name="relu6"),
        helper.make_node("Conv", ["r1", "dw"], ["d"], name="dw", group=8, kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["d"], ["r2"], name="relu"),
        helper.make_node("MaxPool", ["r2"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p"], ["gp"], name="gap"),
        helper.make_node("Flatten", ["gp"], ["f"], name="flat"),
        helper.make_node("Gemm", ["f", "wf"], ["y"], name="fc", transB=1),
    ]
    inits = [w("w1", (8, 3, 3, 3)), numpy_helper.from_array(np.zeros(8, np.float32), "b1"),
             numpy_helper.from_array(np.ones(8, np.float32), "g"), numpy_helper.from_array(np.zeros(8, np.float32), "be"),
             numpy_helper.from_array(np.zeros(8, np.float32), "mu"), numpy_helper.from_array(np.ones(8, np.float32), "var"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"), numpy_helper.from_array(np.array(6, np.float32), "hi"),
             w("dw", (8, 1, 3, 3), keep_every=1), w("wf", (4, 8))]
    return model(nodes, [fin("x", [1, 3, 16, 16])], [fin("y", None)], inits)


def old_opset():
    return mlp(opset=9)


MODELS = {
    "mlp": mlp, "mlp_batch1": lambda: mlp(batch=1), "conv": conv, "unsupported_op": unsupported_op,
    "bad_attr": bad_attr, "grouped_conv": grouped_conv, "ceil_pool": lambda: ceil_pool(count_include_pad=1), "ceil_maxpool": lambda: ceil_pool("MaxPool"), "double_input": double_input,
    "shape_mismatch": shape_mismatch, "symbolic": symbolic, "old_opset": old_opset,
    "shape_chain": shape_chain, "cnn": cnn,
    "const_output": lambda: model(
        [helper.make_node("Relu", ["x"], ["y"], name="r"), helper.make_node("Shape", ["x"], ["s"], name="shape"),
         helper.make_node("Cast", ["s"], ["c"], name="cast", to=TensorProto.FLOAT)],
        [fin("x", [2, 3])], [fin("y", None), fin("c", None)], []), "shape_chain_opset11": lambda: shape_chain(11),
    "equal_activation": lambda: model(
        [helper.make_node("Equal", ["x", "x"], ["e"], name="same"),
         helper.make_node("Cast", ["e"], ["y"], name="to_float", to=TensorProto.FLOAT)],
        [fin("x", [5, 3])], [fin("y", None)], []),
    # Concat whose first input name is empty (an omitted input).
    "concat_missing_input": lambda: model(
        [helper.make_node("Concat", ["", "x"], ["y"], name="cc", axis=0)], [fin("x", [2, 3])], [fin("y", None)], []),
    # An attribute of the wrong type: alpha given as INT would read as 0.0.
    "attr_type": lambda: model(
        [helper.make_node("LeakyRelu", ["x"], ["y"], name="leaky", alpha=2)], [fin("x", [3])], [fin("y", None)], []),
    "reduce_scalar": lambda: model(
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean")], [fin("x", [])], [fin("y", None)], []),
    "dup_output": lambda: model(  # two nodes write 'y'
        [helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Sigmoid", ["x"], ["y"], name="r2")],
        [fin("x", [2, 3])], [fin("y", None)], []),
    "squeeze_axes_attr": lambda: model(  # axes became an input in opset 13
        [helper.make_node("Squeeze", ["x"], ["y"], name="sq", axes=[0])], [fin("x", [1, 3])], [fin("y", None)], []),
    "newline_name": lambda: model(
        [helper.make_node("Softsign", ["x"], ["y"], name="two\nlines")], [fin("x", [2, 3])], [fin("y", None)], []),
    "pool_kernel0": lambda: model(
        [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[0, 0])], [fin("x", [1, 2, 4, 4])],
        [fin("y", None)], []),
    "huge_input": lambda: model(  # 2^40 x 4: its element count would overflow products of shapes
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [fin("x", [1 << 40, 4])], [fin("y", None)], []),
    "reduce_mean_0_2": lambda: model(  # axes in two runs, dims dropped
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[0, 2], keepdims=0)], [fin("x", [2, 3, 4, 5])],
        [fin("y", None)], []),
    "output_twice": lambda: model(  # 'y' listed twice among the graph outputs
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [fin("x", [2, 3])], [fin("y", None), fin("y", None)], []),
    "relu_of_constant": lambda: model(  # y = Relu(b) + x: Relu computes from an initializer alone
        [helper.make_node("Relu", ["b"], ["rb"], name="rc"), helper.make_node("Add", ["x", "rb"], ["y"], name="a")],
        [fin("x", [2, 3])], [fin("y", None)], [numpy_helper.from_array(np.array([1, -2, 3], np.float32), "b")]),
    "attr_twice": lambda: model(  # Softmax with 'axis' given twice
        [helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=1)], [fin("x", [2, 3])], [fin("y", None)], []),
    "gelu_opset18": lambda: model(  # Gelu exists from opset 20
        [helper.make_node("Gelu", ["x"], ["y"], name="g")], [fin("x", [2, 3])], [fin("y", None)], [], opset=18),
    "autopad_and_pads": lambda: model(  # auto_pad SAME_UPPER with explicit pads
        [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[3, 3], auto_pad="SAME_UPPER",
                          pads=[1, 1, 1, 1])], [fin("x", [1, 2, 5, 5])], [fin("y", None)], []),
    "layernorm_neg_eps": lambda: model(  # LayerNormalization with epsilon -1
        [helper.make_node("LayerNormalization", ["x", "g"], ["y"], name="ln", epsilon=-1.0)], [fin("x", [2, 3])],
        [fin("y", None)], [numpy_helper.from_array(np.ones(3, np.float32), "g")]),
    "concat_no_axis": lambda: model(  # Concat's axis is required
        [helper.make_node("Concat", ["x", "x"], ["y"], name="cat")], [fin("x", [2, 3])], [fin("y", None)], []),
    "conv_kernel_shape_3": lambda: model(  # kernel_shape with three values for a 2-D conv
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[1, 1, 1])], [fin("x", [1, 6, 4, 4])],
        [fin("y", None)], [w("w", (8, 6, 1, 1))]),
    "pool_pad_ge_kernel": lambda: model(  # a 2x2 max pool padded by 2: windows with no input
        [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], pads=[2, 0, 0, 0])],
        [fin("x", [1, 2, 5, 5])], [fin("y", None)], []),
    "maxpool_count_include_pad": lambda: model(  # an AveragePool attribute on a MaxPool
        [helper.make_node("MaxPool", ["x"], ["y"], name="mp", kernel_shape=[2, 2], count_include_pad=1)],
        [fin("x", [1, 2, 5, 5])], [fin("y", None)], []),
    "folded_bad_attr": lambda: model(  # a Transpose of an initializer (folded) with an attribute it lacks
        [helper.make_node("Transpose", ["c"], ["ct"], name="t", perm=[1, 0], alpha=1.0),
         helper.make_node("Add", ["x", "ct"], ["y"], name="a")], [fin("x", [3, 2])], [fin("y", None)],
        [numpy_helper.from_array(np.ones((2, 3), np.float32), "c")]),
    "folded_extra_input": lambda: model(  # a Transpose of an initializer (folded) given a second input
        [helper.make_node("Transpose", ["c", "c"], ["ct"], name="t", perm=[1, 0]),
         helper.make_node("Add", ["x", "ct"], ["y"], name="a")], [fin("x", [3, 2])], [fin("y", None)],
        [numpy_helper.from_array(np.ones((2, 3), np.float32), "c")]),
    "keepdims_7": lambda: model(  # a 0 / 1 attribute with another value
        [helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1], keepdims=7)], [fin("x", [2, 3])],
        [fin("y", None)], []),
    "output_shape_wrong": lambda: model(  # declares y [2, 5, 1]; Relu of x [2, 3] computes [2, 3]
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [fin("x", [2, 3])], [fin("y", [2, 5, 1])], []),
    "output_dim_wrong": lambda: model(  # declares y [batch, 4]: the symbolic dim matches, 4 does not
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [fin("x", [2, 3])], [fin("y", ["batch", 4])], []),
    "output_shape_ok": lambda: model(  # declares y [batch, 3] and a second output [2, 3] exactly
        [helper.make_node("Relu", ["x"], ["y"], name="r"), helper.make_node("Neg", ["x"], ["z"], name="n")],
        [fin("x", [2, 3])], [fin("y", ["batch", 3]), fin("z", [2, 3])], []),
    "output_type_wrong": lambda: model(  # declares y INT64; the graph computes float
        [helper.make_node("Relu", ["x"], ["y"], name="r")], [fin("x", [2, 3])], [fin("y", [2, 3], TensorProto.INT64)],
        []),
    "input_is_output": lambda: model(  # graph input 'x' also a graph output; 'x.src' a computed one
        [helper.make_node("Relu", ["x"], ["x.src"], name="r")], [fin("x", [4, 16])],
        [fin("x.src", None), fin("x", None)], []),
    # A decomposed layer norm whose epsilon [1, 1, 1, 1] broadcasts the result to rank 4: valid
    # ONNX, but no layer norm over x's shape.
    "layer_norm_eps_rank4": lambda: model(
        [helper.make_node("ReduceMean", ["x"], ["m"], name="m1", axes=[-1]),
         helper.make_node("Sub", ["x", "m"], ["d"], name="s"), helper.make_node("Pow", ["d", "two"], ["p"], name="pw"),
         helper.make_node("ReduceMean", ["p"], ["v"], name="m2", axes=[-1]),
         helper.make_node("Add", ["v", "eps"], ["ve"], name="ae"), helper.make_node("Sqrt", ["ve"], ["sd"], name="sq"),
         helper.make_node("Div", ["d", "sd"], ["y"], name="dv")], [fin("x", [2, 5, 8])], [fin("y", None)],
        [numpy_helper.from_array(np.float32(2.0), "two"),
         numpy_helper.from_array(np.full((1, 1, 1, 1), 1e-3, np.float32), "eps")], opset=13),
    "conv_dw_grid": lambda: model(  # 1x1 -> 3x3 stride 1 (masked with AVX-512) -> 3x3 depthwise, 32 x 32
        [helper.make_node("Conv", ["x", "w1"], ["c1"], name="pw", kernel_shape=[1, 1]),
         helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         helper.make_node("Conv", ["c2", "w3"], ["y"], name="dw", kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=16)],
        [fin("x", [1, 8, 32, 32])], [fin("y", None)],
        [w("w1", [16, 8, 1, 1], 10), w("w2", [16, 16, 3, 3], 10, 1), w("w3", [16, 1, 3, 3], 1, 2)]),
    "conv_empty_weight": lambda: model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="c0")], [fin("x", [1, 4, 6, 6])], [fin("y", None)],
        [numpy_helper.from_array(np.zeros((4, 4, 0, 3), np.float32), "w")]),
}


def main():
    name, out = sys.argv[1], sys.argv[2]
    if name == "truncated":
        data = mlp().SerializeToString()
        open(out, "wb").write(data[: len(data) // 2])
        return
    if name == "conv_kernel_shape_empty":  # kernel_shape present with no values (make_node cannot write it)
        m = MODELS["conv_kernel_shape_3"]()
        del m.graph.node[0].attribute[:]
        m.graph.node[0].attribute.append(onnx.AttributeProto(name="kernel_shape", type=onnx.AttributeProto.INTS))
        onnx.save(m, out)
        return
    if name == "attr_untyped":  # Softmax's axis attribute with its type field cleared
        m = MODELS["attr_twice"]()
        m.graph.node[0].attribute[0].ClearField("type")
        onnx.save(m, out)
        return
    if name == "attr_twice":
        m = MODELS[name]()
        m.graph.node[0].attribute.append(helper.make_attribute("axis", 0))
        onnx.save(m, out)
        return
    if name == "bad_utf8_name":  # an unsupported op named b"bad\xff\xfe\xc3\xa9t\xe9": a valid 'é' among bad bytes
        m = model([helper.make_node("Hardmax", ["x"], ["y"], name="badQQ\u00e9tZ")], [fin("x", [2, 3])],
                  [fin("y", None)], [])
        data = m.SerializeToString().replace(b"QQ", b"\xff\xfe").replace(b"tZ", b"t\xe9")
        open(out, "wb").write(data)
        return
    if name == "not_onnx":
        open(out, "w").write("this is a text file, not a model\n")
        return
    if name == "npy_huge_header":  # not a model: an .npy whose header claims 2^30 x 16 floats, no data
        header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (1073741824, 16), }"
        header += b" " * (127 - 10 - len(header)) + b"\n"
        open(out, "wb").write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header)
        return
    onnx.save(MODELS[name](), out)


if __name__ == "__main__":
    main()
