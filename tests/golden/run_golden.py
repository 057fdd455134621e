"""run_golden.py — golden tests: generated pruned models, compiled by sdnnc, run by sdnn-run,
compared with ONNX Runtime.

For every case of the selected groups: generate the model (models/sdnn_models.py), compute ONNX
Runtime's output (CPU EP) for a random input, then for each target ISA (avx512 — skipped with a
reason when the CPU lacks avx512f — and avx2) compile with `sdnnc --target ISA`, run the .so with
`sdnn-run --threads 1` and with 2 threads by `sdnn-abi-run` (a plain C program using the ABI
through dlopen, raw float32 files), and require
  * each output to match ONNX Runtime: np.allclose(out, ref, rtol, atol) with the case's
    tolerances (1e-4 / 1e-5; whole CNNs 1e-3 / 1e-4 as their issue asks);
  * the 2-thread output to equal the 1-thread one within 1e-6 (max abs diff reported).
Prints one PASS/FAIL/SKIP line per case and ISA and exits non-zero on any failure.

  run_golden.py --sdnnc build/tools/sdnnc --sdnn-run build/tools/sdnn-run \
                --workdir build/tests/golden/work [--group NAME ...] [--case SUBSTRING] [--list]

The case list is a representative slice of the cross product layers x op style x batch x
sparsity (each layer count meets each batch size, sparsities rotate), sized to run in a few
minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import onnx

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.join(REPO, "models"))
import bert_models as BERT  # noqa: E402
import cnn_models as CNN  # noqa: E402
import sdnn_models as M  # noqa: E402

RTOL, ATOL = 1e-4, 1e-5
THREAD_TOL = 1e-6
COMPILE_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120


@dataclass
class Case:
    name: str
    build: Callable[[], onnx.ModelProto]
    bind: dict[str, int] = field(default_factory=dict)  # symbolic dim -> size (--input-shape)
    tol: tuple[float, float] = (RTOL, ATOL)  # against ONNX Runtime


SPARSITIES = (0.7, 0.9, 0.95, 0.99)
BATCHES = (1, 7, 64)
WIDTHS = {2: [200, 300, 10], 3: [512, 512, 256, 10], 4: [256, 384, 192, 64, 10]}


def _mlp_grid(style: str, shift: int) -> list[Case]:
    """Every layer count (2, 3, 4) with every batch (1, 7, 64); the sparsity rotates through
    SPARSITIES so each one appears with several shapes."""
    cases = []
    for i, layers in enumerate(sorted(WIDTHS)):
        for j, batch in enumerate(BATCHES):
            sp = SPARSITIES[(i + j + shift) % len(SPARSITIES)]
            cases.append(Case(
                f"{style}_l{layers}_b{batch}_s{round(sp * 100)}",
                lambda layers=layers, batch=batch, sp=sp, seed=10 * i + j: M.mlp(
                    WIDTHS[layers], style=style, batch=batch, sparsity=sp, seed=seed)))
    return cases


def _shape_chain_mlp(opset: int) -> onnx.ModelProto:
    """x [batch, 4, 16] viewed as [batch, 64] the way exporters write x.view(x.size(0), -1)
    (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), then two pruned Linear layers; the
    second layer's bias comes from a constant Range -> Cast -> Mul chain."""
    from onnx import TensorProto, helper, numpy_helper
    i64 = lambda name, v: numpy_helper.from_array(np.array(v, np.int64), name)
    rng = np.random.default_rng(91)
    w1 = M.prune(rng.standard_normal((96, 64)).astype(np.float32) * 0.3, 0.9)
    w2 = M.prune(rng.standard_normal((10, 96)).astype(np.float32) * 0.3, 0.9)
    if opset >= 13:
        unsq = [helper.make_node("Unsqueeze", ["b0", "ax0"], ["b1"])]
        extra = [i64("ax0", [0])]
    else:
        unsq = [helper.make_node("Unsqueeze", ["b0"], ["b1"], axes=[0])]
        extra = []
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b0"], axis=0)] + unsq + [
             helper.make_node("Concat", ["b1", "minus1"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["f"]),
             helper.make_node("Gemm", ["f", "w1", "b1v"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["a"]),
             helper.make_node("Range", ["r0", "r1", "r2"], ["r"]),
             helper.make_node("Cast", ["r"], ["rf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["rf", "tenth"], ["b2"]),
             helper.make_node("Gemm", ["a", "w2", "b2"], ["y"], transB=1)]
    inits = [i64("zero", 0), i64("minus1", [-1]), i64("r0", 0), i64("r1", 10), i64("r2", 1),
             numpy_helper.from_array(np.array(0.1, np.float32), "tenth"),
             numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
             numpy_helper.from_array(np.linspace(-0.5, 0.5, 96).astype(np.float32), "b1v")] + extra
    g = helper.make_graph(nodes, "shape_chain", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, ["batch", 4, 16])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


CNN_TOL = (1e-3, 1e-4)  # issue 3: whole CNNs against ONNX Runtime


def _conv_chain(shape: tuple[int, int, int, int], layers: list[dict], seed: int,
                sparsity: float = 0.9) -> onnx.ModelProto:
    """x [B, C, H, W] through Conv layers given as dicts: out (channels), k (kernel), s (stride),
    p (pads [t, l, b, r]), d (dilation), g (group; g = C = out: a depthwise conv, dense), relu,
    bias, empty (output channels whose filters are all zero). Weights unit-Gaussian,
    magnitude-pruned per layer to `sparsity` (the sparse kernels: KxK layers run as direct sparse
    convolutions)."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits, x, c = [], [], "x", shape[1]
    for i, l in enumerate(layers):
        k, m, grp = l.get("k", 3), l["out"], l.get("g", 1)
        sp = 0.0 if grp > 1 else sparsity
        w = M.prune(rng.standard_normal((m, c // grp, k, k)).astype(np.float32) /
                    np.sqrt(c // grp * k * k * (1 - sp)), sp)
        for e in l.get("empty", []):
            w[e] = 0.0
        ins = [x, f"w{i}"]
        inits.append(numpy_helper.from_array(w.astype(np.float32), f"w{i}"))
        if l.get("bias", True):
            inits.append(numpy_helper.from_array((0.1 * rng.standard_normal(m)).astype(np.float32), f"b{i}"))
            ins.append(f"b{i}")
        y = f"c{i}"
        nodes.append(helper.make_node("Conv", ins, [y], name=f"conv{i}", kernel_shape=[k, k],
                                      strides=[l.get("s", 1)] * 2, pads=l.get("p", [k // 2] * 4),
                                      dilations=[l.get("d", 1)] * 2, group=grp))
        if l.get("relu", True):
            nodes.append(helper.make_node("Relu", [y], [f"r{i}"], name=f"relu{i}"))
            y = f"r{i}"
        x, c = y, m
    nodes.append(helper.make_node("Identity", [x], ["y"], name="out"))
    g = helper.make_graph(nodes, "conv_chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m

def _axis_mix(first: str, channels: int = 64, seed: int = 121) -> onnx.ModelProto:
    """x [1, C, 2, C] through two sparse layers that read different axes, a Relu between them:
    first="matmul": MatMul over the last axis, then a 1x1 Conv over axis 1; first="conv": the
    reverse. A row permutation of the first layer must not be undone in the second (it reads the
    permuted features along another axis) — compiled with permutation on, it once was."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    c = channels

    def sparse(shape: tuple[int, ...], name: str) -> onnx.TensorProto:
        w = M.prune(rng.standard_normal(shape).astype(np.float32) / np.sqrt(c * 0.1), 0.9)
        return numpy_helper.from_array(w.astype(np.float32), name)

    mm = lambda a, w, y: helper.make_node("MatMul", [a, w], [y], name=f"mm_{y}")
    conv = lambda a, w, y: helper.make_node("Conv", [a, w], [y], name=f"conv_{y}", kernel_shape=[1, 1])
    shapes = {"matmul": (c, c), "conv": (c, c, 1, 1)}
    second = "conv" if first == "matmul" else "matmul"
    ops = {"matmul": mm, "conv": conv}
    nodes = [ops[first]("x", "w0", "h"), helper.make_node("Relu", ["h"], ["a"], name="relu"),
             ops[second]("a", "w1", "y")]
    g = helper.make_graph(nodes, f"axis_mix_{first}",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 2, c])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [sparse(shapes[first], "w0"), sparse(shapes[second], "w1")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


GROUPS: dict[str, list[Case]] = {
    # Direct sparse convolutions (KxK, sparse weights): edge shapes of the issue.
    "sparse_conv": [
        Case("c3_13_20_7x7_s1_s2", lambda: _conv_chain((1, 3, 7, 7), [{"out": 13}, {"out": 20, "s": 2}], 111),
             tol=CNN_TOL),
        Case("c16_24_1x1_image", lambda: _conv_chain((1, 16, 1, 1), [{"out": 24}, {"out": 8, "relu": False}], 112),
             tol=CNN_TOL),
        Case("c10_17_9x11_k5_s2_empty_filters_b2",
             lambda: _conv_chain((2, 10, 9, 11), [{"out": 17, "k": 5, "s": 2, "empty": [0, 5, 16]},
                                                  {"out": 9, "bias": False}], 113), tol=CNN_TOL),
        Case("c8_8_12x12_dilation2_asym_pads",
             lambda: _conv_chain((1, 8, 12, 12), [{"out": 8, "d": 2, "p": [2, 1, 2, 3]},
                                                  {"out": 12, "k": 1, "p": [0, 0, 0, 0]},
                                                  {"out": 5, "s": 2, "p": [0, 1, 1, 0]}], 114), tol=CNN_TOL),
        Case("c32_32_56x56_s95", lambda: _conv_chain((1, 32, 56, 56), [{"out": 32}, {"out": 32}], 115, 0.95),
             tol=CNN_TOL),
        # Masked direct convs (AVX-512: a 3x3 stride-1 conv on an NCHW input reads it unpadded and
        # writes its output compact): to NCHW planes (the graph output), and ChannelBlocked for a
        # 1x1 conv with two batch items, rows of 13 across vector boundaries.
        Case("c16_24_14x14_masked_to_nchw", lambda: _conv_chain((1, 16, 14, 14), [{"out": 24}], 117), tol=CNN_TOL),
        Case("c5_7_6_9x13_b2_masked_to_blocked",
             lambda: _conv_chain((2, 5, 9, 13), [{"out": 7, "bias": False}, {"out": 6, "k": 1, "p": [0, 0, 0, 0]}],
                                 118), tol=CNN_TOL),
        # A bottleneck (1x1, 3x3, 1x1): the first 1x1 conv writes NCHW planes (last vector of each
        # 14x14 / 7x7 plane under a store mask) that the masked 3x3 conv reads.
        Case("c16_24_24_16_14x14_bottleneck_masked",
             lambda: _conv_chain((1, 16, 14, 14), [{"out": 24, "k": 1, "p": [0, 0, 0, 0]}, {"out": 24},
                                                   {"out": 16, "k": 1, "p": [0, 0, 0, 0]}], 119), tol=CNN_TOL),
        Case("c32_40_40_7x7_b2_bottleneck_masked",
             lambda: _conv_chain((2, 32, 7, 7), [{"out": 40, "k": 1, "p": [0, 0, 0, 0]}, {"out": 40},
                                                 {"out": 8, "k": 1, "p": [0, 0, 0, 0], "relu": False}], 120),
             tol=CNN_TOL),
        # Strided 1x1 convs reading a conv1x1's blocked output subsample it block to block (a
        # strided crop): odd sizes, rows of 7 and 5 outputs across vector boundaries, stride 3, two
        # batch items, output NCHW at the end.
        Case("c16_24_9x13_b2_1x1_s2_s3_subsample",
             lambda: _conv_chain((2, 16, 9, 13), [{"out": 24, "k": 1, "p": [0, 0, 0, 0]},
                                                  {"out": 20, "k": 1, "s": 2, "p": [0, 0, 0, 0]},
                                                  {"out": 12, "k": 1, "s": 3, "p": [0, 0, 0, 0], "relu": False}],
                                 121), tol=CNN_TOL),
        # A 3x3 depthwise conv after a stride-2 direct conv reads the conv's 32 x 33 grid itself
        # (AVX-512; rows of two vectors; 10 channels: the code's groups of 4 and 2 left over) with
        # two batch items; then a 20 x 20 one whose rows are not whole vectors keeps the crop.
        Case("c3_10_64x64_b2_s2_depthwise_grid",
             lambda: _conv_chain((2, 3, 64, 64), [{"out": 10, "s": 2}, {"out": 10, "g": 10},
                                                  {"out": 12, "k": 1, "p": [0, 0, 0, 0], "relu": False}],
                                 122), tol=CNN_TOL),
        Case("c3_10_40x40_s2_depthwise_crop",
             lambda: _conv_chain((1, 3, 40, 40), [{"out": 10, "s": 2}, {"out": 10, "g": 10, "relu": False}],
                                 123), tol=CNN_TOL),
        # A 7 x 7 output of three batch items unpacked to NCHW: 4 column blocks, so two threads
        # split the unpack by features, the second thread's range starting inside item 1.
        Case("c48_64_7x7_b3_1x1_unpack_by_features",
             lambda: _conv_chain((3, 48, 7, 7), [{"out": 64, "k": 1, "p": [0, 0, 0, 0], "relu": False}], 124),
             tol=CNN_TOL),
        Case("c64_64_7x7_s2_from_blocked",
             lambda: _conv_chain((1, 48, 14, 14), [{"out": 64, "k": 1, "p": [0, 0, 0, 0]}, {"out": 64, "s": 2},
                                                   {"out": 64}], 116), tol=CNN_TOL),
    ],
    # BERT encoders as PyTorch exports them (models/bert_models.py): the layer norm, GELU and
    # attention patterns fuse; sequence lengths that are no multiple of the vector width and
    # batch 2 put two sequences in one column block.
    "bert": [
        Case("bert_base_l2_s128_p95_opset14", lambda: BERT.bert(layers=2, seq=128, sparsity=0.95, seed=101),
             tol=CNN_TOL),
        Case("bert_base_l1_b2_s20_p90_ln17_maskconst",
             lambda: BERT.bert(layers=1, seq=20, batch=2, sparsity=0.9, opset=17, mask="const", seed=102),
             tol=CNN_TOL),
        Case("bert_h256_l2_s9_gelutanh_maskinput_opset13",
             lambda: BERT.bert(layers=2, hidden=256, heads=4, ffn=512, seq=9, sparsity=0.9, gelu="tanh",
                               mask="input", opset=13, seed=103), tol=CNN_TOL),
        Case("bert_h128_l1_s16_gelu20_nomask_opset11",
             lambda: BERT.bert(layers=1, hidden=128, heads=2, ffn=256, seq=16, sparsity=0.8, mask="none",
                               opset=11, seed=104), tol=CNN_TOL),
        Case("bert_h192_l1_s24_op20",
             lambda: BERT.bert(layers=1, hidden=192, heads=3, ffn=384, seq=24, sparsity=0.95, opset=20,
                               seed=105), tol=CNN_TOL),
        Case("bert_embeddings_int_mask_h128_l1_b2_s12",
             lambda: BERT.bert(layers=1, hidden=128, heads=2, ffn=256, seq=12, batch=2, sparsity=0.9, embedding=True,
                               vocab=500, mask="input_int", seed=107), tol=CNN_TOL),
        Case("bert_dynamic_h256_l1_bound1x24",
             lambda: BERT.bert(layers=1, hidden=256, heads=4, ffn=1024, seq=24, sparsity=0.95, dynamic=True,
                               seed=106), {"batch": 1, "seq": 24}, tol=CNN_TOL),
    ],
    "cnn": [
        Case("mobilenet_v1_w025_r32", lambda: CNN.mobilenet_v1(width=0.25, resolution=32, num_classes=10),
             tol=CNN_TOL),
        Case("mobilenet_v1_unfolded_relu6_reshape_b2_opset11",
             lambda: CNN.mobilenet_v1(width=0.25, resolution=32, num_classes=10, batch=2, bn="unfolded",
                                      activation="relu6", head="reshape", opset=11), tol=CNN_TOL),
        Case("mobilenet_v2_w025_r32", lambda: CNN.mobilenet_v2(width=0.25, resolution=32, num_classes=10),
             tol=CNN_TOL),
        # Rows of 24 and more outputs take the SIMD depthwise path (row-streamed, stride 2 split
        # into column phases); the r32 models above take the plane path.
        Case("mobilenet_v1_w025_r112_b2", lambda: CNN.mobilenet_v1(width=0.25, resolution=112, num_classes=10,
                                                                    batch=2), tol=CNN_TOL),
        Case("mobilenet_v2_w025_r100_relu6", lambda: CNN.mobilenet_v2(width=0.25, resolution=100, num_classes=10),
             tol=CNN_TOL),
        Case("resnet18_w8_r32", lambda: CNN.resnet18(width=8, resolution=32, num_classes=10), tol=CNN_TOL),
        # Residual adds folded into the crops of 28x28 .. 4x4 grids, two batch items.
        Case("resnet18_w8_r112_b2_l2111", lambda: CNN.resnet(width=8, resolution=112, num_classes=10, batch=2,
                                                             layers=(2, 1, 1, 1)), tol=CNN_TOL),
        # ResNeXt-style grouped 3x3 convs (4 groups): block-diagonal weights on the sparse kernels.
        Case("resnext_w16_r32_l1111_g4", lambda: CNN.resnet50(width=16, resolution=32, num_classes=10,
                                                               layers=(1, 1, 1, 1), groups=4), tol=CNN_TOL),
        Case("resnet50_w8_r32_l1111_unfolded_b2",
             lambda: CNN.resnet50(width=8, resolution=32, num_classes=10, layers=(1, 1, 1, 1), bn="unfolded",
                                  batch=2), tol=CNN_TOL),
    ],
    "mlp_gemm": _mlp_grid("gemm", 0),
    "mlp_matmul": _mlp_grid("matmul_bias_first", 2),
    "mlp_variants": [
        Case("gemm_transb0_l3_b7_s90",
             lambda: M.mlp(WIDTHS[3], style="gemm_transb0", batch=7, sparsity=0.9, seed=31)),
        Case("gemm_alpha_beta_l2_b64_s95",
             lambda: M.mlp(WIDTHS[2], style="gemm_alpha_beta", batch=64, sparsity=0.95,
                           seed=32)),
        Case("matmul_bias_second_l4_b1_s70",
             lambda: M.mlp(WIDTHS[4], style="matmul_bias_second", batch=1, sparsity=0.7,
                           seed=33)),
        Case("matmul_bias_second_l2_b7_s99",
             lambda: M.mlp(WIDTHS[2], style="matmul_bias_second", batch=7, sparsity=0.99,
                           seed=34)),
        # Big patterns (over half a MiB of code and values, density >= 8 %) run grouped column
        # chunks (group_columns: here 1.9 MB, 13 chunks: 8 chunks per block, K blocks of 256);
        # 200 columns end in a partial group, single chunks and vectors.
        Case("matmul_grouped_l2_b200_s80",
             lambda: M.mlp([768, 1024, 10], style="matmul_bias_first", batch=200, sparsity=0.8, seed=37)),
        Case("gemm_constant_nodes_opset11_l3_b7_s90",
             lambda: M.mlp(WIDTHS[3], style="gemm", batch=7, sparsity=0.9, seed=35, opset=11,
                           constant_nodes=True)),
        Case("matmul_opset21_l2_b64_s95",
             lambda: M.mlp(WIDTHS[2], style="matmul_bias_first", batch=64, sparsity=0.95,
                           seed=36, opset=21)),
    ],
    "mlp_dense_layer": [
        Case("gemm_s90_s0_s95_b7",
             lambda: M.mlp([256, 256, 256, 10], style="gemm", batch=7,
                           sparsity=[0.9, 0.0, 0.95], seed=41)),
        Case("matmul_s0_s99_b64",
             lambda: M.mlp([128, 256, 10], style="matmul_bias_second", batch=64,
                           sparsity=[0.0, 0.99], seed=42)),
    ],
    "nd_matmul": [
        Case("matmul_2x7x256_s90",
             lambda: M.mlp([256, 256, 10], style="matmul_bias_first", batch=[2, 7],
                           sparsity=0.9, seed=51)),
        Case("matmul_3x5x4x64_s95",
             lambda: M.mlp([64, 128, 32], style="matmul_bias_second", batch=[3, 5, 4],
                           sparsity=0.95, seed=52)),
        Case("matmul_1x9x512_l3_s70",
             lambda: M.mlp([512, 384, 256, 16], style="matmul_bias_first", batch=[1, 9],
                           sparsity=0.7, seed=53)),
    ],
    "conv1x1": [
        Case("c32_64_32_b1_7x5_s90",
             lambda: M.conv1x1_stack([32, 64, 32], batch=1, height=7, width=5, sparsity=0.9,
                                     seed=61)),
        Case("c16_48_64_24_b2_7x5_mixedbias_s95",
             lambda: M.conv1x1_stack([16, 48, 64, 24], batch=2, height=7, width=5,
                                     bias=[True, False, True], sparsity=0.95, seed=62)),
        Case("c64_64_64_b1_14x14_nobias_residual_s70",
             lambda: M.conv1x1_stack([64, 64, 64], batch=1, height=14, width=14, bias=False,
                                     sparsity=0.7, residual=True, seed=63)),
        Case("c32_96_32_b2_9x3_s99",
             lambda: M.conv1x1_stack([32, 96, 32], batch=2, height=9, width=3, sparsity=0.99,
                                     seed=64)),
    ],
    "symbolic_batch": [
        Case("gemm_batch_bound7_s90",
             lambda: M.mlp(WIDTHS[3], style="gemm", batch="batch", sparsity=0.9, seed=71),
             {"batch": 7}),
        Case("matmul_batch_bound64_s95",
             lambda: M.mlp(WIDTHS[2], style="matmul_bias_first", batch="batch",
                           sparsity=0.95, seed=72),
             {"batch": 64}),
        Case("gemm_batch_bound1_s99",
             lambda: M.mlp(WIDTHS[2], style="gemm", batch="batch", sparsity=0.99, seed=73),
             {"batch": 1}),
        Case("matmul_batch_seq_bound2x5_s90",
             lambda: M.mlp([128, 256, 10], style="matmul_bias_second", batch=["batch", "seq"],
                           sparsity=0.9, seed=74),
             {"batch": 2, "seq": 5}),
        Case("shape_chain_view_opset17_bound5", lambda: _shape_chain_mlp(17), {"batch": 5}),
        Case("shape_chain_view_opset11_bound1", lambda: _shape_chain_mlp(11), {"batch": 1}),
        Case("conv_batch_bound2_s90",
             lambda: M.conv1x1_stack([32, 64, 16], batch="batch", height=7, width=5,
                                     sparsity=0.9, seed=75),
             {"batch": 2}),
    ],
    "shape_ops": [
        # Sparse layers over different axes of one 4-D tensor (permute-rows must stop between them).
        Case("matmul4d_relu_conv1x1_s90", lambda: _axis_mix("matmul")),
        Case("conv1x1_relu_matmul4d_s90", lambda: _axis_mix("conv")),
        Case("conv_flatten_gemm_b2_s90",
             lambda: M.conv_flatten_gemm(16, 7, 5, 10, batch=2, sparsity=0.9, seed=81)),
        Case("reshape_identity_mlp_b3_s95",
             lambda: M.reshape_mlp([4, 32], 64, 10, batch=3, sparsity=0.95, seed=82)),
    ],
}


def cpu_flags() -> set[str]:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def target_skips() -> dict[str, str]:
    """Target -> reason it cannot run on this CPU."""
    flags = cpu_flags()
    skips = {}
    if "avx512f" not in flags:
        skips["avx512"] = "CPU lacks avx512f (/proc/cpuinfo)"
    if not {"avx2", "fma"} <= flags:
        skips["avx2"] = "CPU lacks avx2/fma (/proc/cpuinfo)"
    return skips


class ToolError(Exception):
    pass


def run_tool(cmd: list[str], timeout: int) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ToolError(f"timed out after {timeout}s: {' '.join(cmd)}")
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
               else f"exit {proc.returncode}")
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise ToolError("".join([f"{how}: {' '.join(cmd)}"] + [f"\n      {t}" for t in tail]))


def remove_stale(*paths: str) -> None:
    """Removes files left by an earlier run, so a tool that writes nothing cannot pass."""
    for path in paths:
        if os.path.exists(path):
            os.remove(path)


def max_abs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def check_target(args, case_dir: str, target: str, compile_args: list[str],
                 inputs: dict[str, str], refs: dict[str, np.ndarray],
                 tol: tuple[float, float]) -> tuple[bool, str]:
    """Compiles for `target`, runs with 1 and 2 threads, compares. Returns (ok, detail)."""
    model_path = os.path.join(case_dir, "model.onnx")
    so_path = os.path.join(case_dir, f"model_{target}.so")
    remove_stale(so_path)
    run_tool([args.sdnnc, model_path, "-o", so_path, "--target", target] + compile_args,
             COMPILE_TIMEOUT_S)

    outs: dict[int, dict[str, np.ndarray]] = {}
    for threads in (1, 2):
        # 1 thread through sdnn-run (.npy), 2 threads through the C ABI runner (raw float32).
        ext = "npy" if threads == 1 else "bin"
        out_paths = {name: os.path.join(case_dir, f"out_{target}_t{threads}_{name}.{ext}")
                     for name in refs}
        remove_stale(*out_paths.values())
        if threads == 1:
            cmd = [args.sdnn_run, so_path, "--threads", str(threads)]
            cmd += [a for name, path in inputs.items() for a in ("--input", f"{name}={path}")]
            cmd += [a for name, path in out_paths.items() for a in ("--output", f"{name}={path}")]
        else:
            cmd = [args.abi_run, so_path, str(threads)]
            cmd += [path[:-4] + ".bin" for path in inputs.values()] + ["--"] + list(out_paths.values())
        run_tool(cmd, RUN_TIMEOUT_S)
        for path in out_paths.values():
            if not os.path.exists(path):
                raise ToolError(f"{os.path.basename(cmd[0])} succeeded but wrote no {path}")
        if threads == 1:
            outs[threads] = {name: np.load(path) for name, path in out_paths.items()}
        else:
            outs[threads] = {name: np.fromfile(path, dtype=np.float32).reshape(refs[name].shape)
                             if os.path.getsize(path) == refs[name].size * 4
                             else np.fromfile(path, dtype=np.float32)
                             for name, path in out_paths.items()}

    problems, errs, tdiffs = [], [], []
    for name, ref in refs.items():
        for threads, got in ((t, outs[t][name]) for t in (1, 2)):
            if got.shape != ref.shape or got.dtype != np.float32:
                problems.append(f"{name} (t{threads}) is {got.dtype}{list(got.shape)}, "
                                f"expected float32{list(ref.shape)}")
                continue
            errs.append(max_abs(got, ref))
            rtol, atol = tol
            if not np.allclose(got, ref, rtol=rtol, atol=atol):
                bad = ~np.isclose(got, ref, rtol=rtol, atol=atol)
                idx = tuple(int(i) for i in np.argwhere(bad)[0])
                problems.append(f"{name} (t{threads}) differs from ONNX Runtime at "
                                f"{np.count_nonzero(bad)}/{ref.size} elements, first {idx}: "
                                f"{got[idx]} vs {ref[idx]}")
        if outs[1][name].shape == outs[2][name].shape:
            tdiffs.append(max_abs(outs[2][name], outs[1][name]))
            if tdiffs[-1] > THREAD_TOL:
                problems.append(f"{name}: 2 threads differ from 1 thread by {tdiffs[-1]:.3g}")
    detail = (f"max_err={max(errs, default=float('nan')):.3g} "
              f"threads2_vs_1={max(tdiffs, default=float('nan')):.3g}")
    if problems:
        detail += "\n      " + "\n      ".join(problems)
    return not problems, detail


def run_case(args, group: str, case: Case, skips: dict[str, str]) -> tuple[int, int, int]:
    """Runs one case on every target; returns (passed, failed, skipped) counts."""
    label = f"{group}/{case.name}"
    case_dir = os.path.join(args.workdir, group, case.name)
    os.makedirs(case_dir, exist_ok=True)
    try:
        model = case.build()
        onnx.save(model, os.path.join(case_dir, "model.onnx"))
        feeds = M.random_inputs(model, seed=1, bind=case.bind)
        refs = M.onnxruntime_outputs(model, feeds)
    except Exception as e:  # a broken generator is a failure of this case, not of the run
        print(f"FAIL {label}: could not generate the model or its reference: {e}", flush=True)
        return 0, 1, 0
    inputs = {}
    for name, value in feeds.items():
        inputs[name] = os.path.join(case_dir, f"in_{name}.npy")
        np.save(inputs[name], value)
        raw = value.astype(np.int64) if np.issubdtype(value.dtype, np.integer) else value.astype(np.float32)
        np.ascontiguousarray(raw).tofile(inputs[name][:-4] + ".bin")  # the ABI's f32 / int64
    # Bind the symbolic dims of each input that has any: --input-shape NAME=DxD...
    compile_args = []
    for vi in model.graph.input:
        if any(d.HasField("dim_param") for d in vi.type.tensor_type.shape.dim):
            shape = "x".join(map(str, feeds[vi.name].shape))
            compile_args += ["--input-shape", f"{vi.name}={shape}"]

    passed = failed = skipped = 0
    for target in ("avx512", "avx2"):
        if target in skips:
            print(f"SKIP {label} [{target}]: {skips[target]}", flush=True)
            skipped += 1
            continue
        start = time.monotonic()
        try:
            ok, detail = check_target(args, case_dir, target, compile_args, inputs, refs, case.tol)
        except ToolError as e:
            ok, detail = False, str(e)
        secs = time.monotonic() - start
        print(f"{'PASS' if ok else 'FAIL'} {label} [{target}] ({secs:.1f}s) {detail}",
              flush=True)
        passed += ok
        failed += not ok
    return passed, failed, skipped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdnnc", help="path to the sdnnc binary")
    parser.add_argument("--sdnn-run", dest="sdnn_run", help="path to the sdnn-run binary")
    parser.add_argument("--abi-run", dest="abi_run", help="path to the sdnn-abi-run binary (C)")
    parser.add_argument("--workdir", help="scratch directory (models, .so, .npy files)")
    parser.add_argument("--group", action="append", choices=sorted(GROUPS),
                        help="case group to run (repeatable; default: all)")
    parser.add_argument("--case", default="", help="only cases whose name contains this")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    args = parser.parse_args()

    groups = args.group or list(GROUPS)
    selected = [(g, c) for g in groups for c in GROUPS[g] if args.case in c.name]
    if args.list:
        for g, c in selected:
            print(f"{g}/{c.name}")
        return 0
    if not (args.sdnnc and args.sdnn_run and args.abi_run and args.workdir):
        parser.error("--sdnnc, --sdnn-run, --abi-run and --workdir are required unless --list")
    if not selected:
        print("golden: no case selected", file=sys.stderr)
        return 1

    skips = target_skips()
    for target, reason in skips.items():
        print(f"note: target {target} skipped on this machine: {reason}")
    totals = [0, 0, 0]
    for group, case in selected:
        for i, n in enumerate(run_case(args, group, case, skips)):
            totals[i] += n
    passed, failed, skipped = totals
    print(f"golden {'+'.join(groups)}: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    sys.exit(main())
