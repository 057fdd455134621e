"""sdnn_models — generators for the pruned ONNX models that sdnnc's tests and examples use.

Everything is built with onnx.helper and numpy only, from fixed seeds, so a model is fully
determined by its builder arguments. Weight matrices are magnitude-pruned one matrix at a time to
an exact sparsity, then scaled so each layer's outputs stay O(1) whatever the depth and sparsity
(this keeps absolute tolerances meaningful when comparing with ONNX Runtime).

Builders:
  mlp(...)           fully connected layers with Relu between them, written as Gemm (several
                     attribute variants) or MatMul + Add (bias first or second), for a 2-D
                     [batch, K] input or an N-D [..., K] input; dims may be symbolic.
  conv1x1_stack(...) 1x1 Convs in NCHW with optional bias, Relu between, optional residual Add.
  conv_flatten_gemm(...), reshape_mlp(...)
                     the shape ops (Flatten, Reshape with a constant shape, Identity) between
                     layers.
Helpers: prune(), random_inputs() and onnxruntime_outputs() (the reference; imports onnxruntime
only when called).

Bigger models written exactly as PyTorch's ONNX exporter writes them live beside this module and
reuse its helpers (one pruning function, prune()): bert_models.py (BERT encoders) and
cnn_models.py (MobileNet V1/V2, ResNet-18/50); models/make_model.py writes any of them.
"""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

DEFAULT_OPSET = 17
Dim = Union[int, str]

# How an mlp() writes each fully connected layer (all compute y = x W^T + b up to scaling):
#   gemm                Gemm, B = W [out, in], transB=1 (what PyTorch exports for Linear)
#   gemm_transb0        Gemm, B = W^T [in, out], transB=0
#   gemm_alpha_beta     Gemm, transB=1, alpha=0.5 and beta=2.0, C of shape [1, out]
#   matmul_bias_first   MatMul(x, W^T) then Add(b, xW) (PyTorch's operand order)
#   matmul_bias_second  MatMul(x, W^T) then Add(xW, b)
MLP_STYLES = ("gemm", "gemm_transb0", "gemm_alpha_beta", "matmul_bias_first",
              "matmul_bias_second")


def prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """Returns a copy of w with exactly round(sparsity * w.size) of its smallest-magnitude entries
    set to zero (ties broken by position, so the result is deterministic)."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    out = np.array(w, copy=True)
    num_zero = int(round(sparsity * out.size))
    if num_zero == 0:
        return out
    # The same entries as zeroing the first num_zero of a stable argsort of |w|, in O(size):
    # everything below the num_zero-th smallest magnitude t, then the first entries equal to t
    # (by position) until num_zero are zero.
    mag = np.abs(out).ravel()
    t = np.partition(mag, num_zero - 1)[num_zero - 1]
    below = mag < t
    ties = np.flatnonzero(mag == t)[:num_zero - int(np.count_nonzero(below))]
    flat = out.reshape(-1)
    flat[below] = 0
    flat[ties] = 0
    return out


def pruned_weight(rng: np.random.Generator, out_features: int, in_features: int,
                  sparsity: float) -> np.ndarray:
    """A [out_features, in_features] f32 matrix, magnitude-pruned to `sparsity` and scaled so
    that a unit-variance input gives outputs of about unit variance."""
    w = prune(rng.standard_normal((out_features, in_features)), sparsity)
    row_energy = float(np.mean(np.sum(w * w, axis=1)))
    if row_energy > 0:
        w *= 1.0 / np.sqrt(row_energy)
    return w.astype(np.float32)


def bias_vector(rng: np.random.Generator, n: int) -> np.ndarray:
    return (0.1 * rng.standard_normal(n)).astype(np.float32)


def sparsity_of(w: np.ndarray) -> float:
    return float(np.count_nonzero(w == 0)) / w.size


class _GraphBuilder:
    """Collects nodes and constants; constants become initializers or Constant nodes."""

    def __init__(self, constant_nodes: bool):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.constant_nodes = constant_nodes
        self.scope = ""  # prefix of node names (e.g. "/layer.0/"), not of value names
        self._count = 0

    def fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def const(self, stem: str, value: np.ndarray, as_node: bool | None = None) -> str:
        """A constant: an initializer, or a Constant node when as_node (default: the builder's
        constant_nodes setting)."""
        name = self.fresh(stem)
        tensor = numpy_helper.from_array(value, name)
        if self.constant_nodes if as_node is None else as_node:
            self.nodes.append(helper.make_node("Constant", [], [name], value=tensor,
                                               name=self.fresh(self.scope + "Constant")))
        else:
            self.initializers.append(tensor)
        return name

    def node(self, op: str, inputs: Sequence[str], stem: str | None = None, **attrs) -> str:
        out = self.fresh(stem or op.lower())
        self.nodes.append(helper.make_node(op, list(inputs), [out],
                                           name=self.fresh(self.scope + op), **attrs))
        return out

    def model(self, name: str, inputs: Sequence[onnx.ValueInfoProto], output: str,
              output_shape: Sequence[Dim], opset: int, doc: str,
              metadata: dict[str, str] | None = None) -> onnx.ModelProto:
        # The last node produces the output; name it "y" so every model has the same output.
        assert self.nodes[-1].output[0] == output
        self.nodes[-1].output[0] = "y"
        graph = helper.make_graph(
            self.nodes, name, list(inputs),
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(output_shape))],
            initializer=self.initializers, doc_string=doc)
        opset_id = helper.make_opsetid("", opset)
        model = helper.make_model(graph, opset_imports=[opset_id],
                                  ir_version=helper.find_min_ir_version_for([opset_id]),
                                  producer_name="sdnn_models")
        if metadata:
            helper.set_model_props(model, metadata)
        onnx.checker.check_model(model, full_check=True)
        return model


def _per_layer(value, num_layers: int, what: str) -> list:
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ValueError(f"{what}: expected {num_layers} values, got {len(value)}")
        return list(value)
    return [value] * num_layers


def mlp(widths: Sequence[int], *, style: str = "gemm", batch: Union[Dim, Sequence[Dim]] = 1,
        sparsity: Union[float, Sequence[float]] = 0.9, seed: int = 0,
        opset: int = DEFAULT_OPSET, constant_nodes: bool = False,
        name: str = "mlp") -> onnx.ModelProto:
    """An MLP widths[0] -> widths[1] -> ... -> widths[-1] with Relu between layers (not after the
    last). Input "x" is [batch, widths[0]], or [*batch, widths[0]] when batch is a sequence (N-D,
    MatMul styles only); a str dim is symbolic (dim_param). sparsity is one value or one per
    layer (0.0 = dense). constant_nodes=True writes weights as Constant nodes, not initializers."""
    if style not in MLP_STYLES:
        raise ValueError(f"style must be one of {MLP_STYLES}, got {style!r}")
    num_layers = len(widths) - 1
    if num_layers < 1:
        raise ValueError("an MLP needs at least two widths")
    lead = list(batch) if isinstance(batch, (list, tuple)) else [batch]
    if len(lead) != 1 and style.startswith("gemm"):
        raise ValueError("Gemm styles take a 2-D input; use a MatMul style for N-D inputs")
    sparsities = _per_layer(sparsity, num_layers, "sparsity")
    rng = np.random.default_rng(seed)
    g = _GraphBuilder(constant_nodes)

    act = "x"
    for layer in range(num_layers):
        k, n = widths[layer], widths[layer + 1]
        w = pruned_weight(rng, n, k, sparsities[layer])
        b = bias_vector(rng, n)
        if style == "gemm":
            act = g.node("Gemm", [act, g.const("W", w), g.const("b", b)], transB=1)
        elif style == "gemm_transb0":
            act = g.node("Gemm", [act, g.const("W", np.ascontiguousarray(w.T)),
                                  g.const("b", b)])
        elif style == "gemm_alpha_beta":
            # alpha * x W^T + beta * C == x W^T + b with C = b / beta, W scaled by 1 / alpha.
            alpha, beta = 0.5, 2.0
            act = g.node("Gemm", [act, g.const("W", (w / alpha).astype(np.float32)),
                                  g.const("C", (b / beta).reshape(1, n).astype(np.float32))],
                         transB=1, alpha=alpha, beta=beta)
        else:
            mm = g.node("MatMul", [act, g.const("W", np.ascontiguousarray(w.T))])
            bias = g.const("b", b)
            act = g.node("Add", [bias, mm] if style == "matmul_bias_first" else [mm, bias])
        if layer + 1 < num_layers:
            act = g.node("Relu", [act])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, lead + [widths[0]])
    doc = (f"mlp widths={list(widths)} style={style} batch={lead} "
           f"sparsity={sparsities} seed={seed}")
    return g.model(name, [x], act, lead + [widths[-1]], opset, doc)


def conv1x1_stack(channels: Sequence[int], *, batch: Dim = 1, height: int = 7, width: int = 5,
                  bias: Union[bool, Sequence[bool]] = True,
                  sparsity: Union[float, Sequence[float]] = 0.9, residual: bool = False,
                  seed: int = 0, opset: int = DEFAULT_OPSET,
                  name: str = "conv1x1_stack") -> onnx.ModelProto:
    """1x1 Convs (stride 1, no pads, group 1) on an NCHW input "x" [batch, channels[0], H, W],
    Relu between them. residual=True adds the input to the last Conv's output (an Add of two
    same-shape activations; needs channels[0] == channels[-1])."""
    num_layers = len(channels) - 1
    if num_layers < 1:
        raise ValueError("a conv stack needs at least two channel counts")
    if residual and channels[0] != channels[-1]:
        raise ValueError("residual needs channels[0] == channels[-1]")
    biases = _per_layer(bias, num_layers, "bias")
    sparsities = _per_layer(sparsity, num_layers, "sparsity")
    rng = np.random.default_rng(seed)
    g = _GraphBuilder(constant_nodes=False)

    act = "x"
    for layer in range(num_layers):
        cin, cout = channels[layer], channels[layer + 1]
        w = pruned_weight(rng, cout, cin, sparsities[layer]).reshape(cout, cin, 1, 1)
        inputs = [act, g.const("W", w)]
        if biases[layer]:
            inputs.append(g.const("b", bias_vector(rng, cout)))
        act = g.node("Conv", inputs, kernel_shape=[1, 1])
        if layer + 1 < num_layers:
            act = g.node("Relu", [act])
    if residual:
        act = g.node("Add", [act, "x"])

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                      [batch, channels[0], height, width])
    doc = (f"conv1x1_stack channels={list(channels)} batch={batch} hw={height}x{width} "
           f"bias={biases} sparsity={sparsities} residual={residual} seed={seed}")
    return g.model(name, [x], act, [batch, channels[-1], height, width], opset, doc)


def conv_flatten_gemm(channels: int, height: int, width: int, out_features: int, *,
                      batch: int = 1, sparsity: float = 0.9, seed: int = 0,
                      opset: int = DEFAULT_OPSET,
                      name: str = "conv_flatten_gemm") -> onnx.ModelProto:
    """x [batch, channels, H, W] -> 1x1 Conv + bias -> Relu -> Flatten(axis=1) -> Gemm
    (transB=1) -> y [batch, out_features]."""
    rng = np.random.default_rng(seed)
    g = _GraphBuilder(constant_nodes=False)
    w = pruned_weight(rng, channels, channels, sparsity).reshape(channels, channels, 1, 1)
    act = g.node("Conv", ["x", g.const("W", w), g.const("b", bias_vector(rng, channels))],
                 kernel_shape=[1, 1])
    act = g.node("Relu", [act])
    act = g.node("Flatten", [act], axis=1)
    k = channels * height * width
    act = g.node("Gemm", [act, g.const("W", pruned_weight(rng, out_features, k, sparsity)),
                          g.const("b", bias_vector(rng, out_features))], transB=1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, height, width])
    doc = (f"conv_flatten_gemm c={channels} hw={height}x{width} out={out_features} "
           f"batch={batch} sparsity={sparsity} seed={seed}")
    return g.model(name, [x], act, [batch, out_features], opset, doc)


def reshape_mlp(in_shape: Sequence[int], hidden: int, out_features: int, *, batch: int = 1,
                sparsity: float = 0.9, seed: int = 0, opset: int = DEFAULT_OPSET,
                name: str = "reshape_mlp") -> onnx.ModelProto:
    """x [batch, *in_shape] -> Reshape to [-1, prod(in_shape)] (shape from a Constant node) ->
    Identity -> Gemm -> Relu -> Gemm -> y [batch, out_features]."""
    rng = np.random.default_rng(seed)
    g = _GraphBuilder(constant_nodes=False)
    k = int(np.prod(in_shape))
    shape = g.fresh("shape")
    g.nodes.append(helper.make_node(
        "Constant", [], [shape], name=g.fresh("Constant"),
        value=numpy_helper.from_array(np.array([-1, k], dtype=np.int64), shape)))
    act = g.node("Reshape", ["x", shape])
    act = g.node("Identity", [act])
    act = g.node("Gemm", [act, g.const("W", pruned_weight(rng, hidden, k, sparsity)),
                          g.const("b", bias_vector(rng, hidden))], transB=1)
    act = g.node("Relu", [act])
    act = g.node("Gemm", [act, g.const("W", pruned_weight(rng, out_features, hidden, sparsity)),
                          g.const("b", bias_vector(rng, out_features))], transB=1)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch] + list(in_shape))
    doc = (f"reshape_mlp in={list(in_shape)} hidden={hidden} out={out_features} batch={batch} "
           f"sparsity={sparsity} seed={seed}")
    return g.model(name, [x], act, [batch, out_features], opset, doc)


def input_shapes(model: onnx.ModelProto, bind: dict[str, int] | None = None
                 ) -> dict[str, tuple[int, ...]]:
    """The concrete shape of each graph input (initializers excluded), with symbolic dims taken
    from `bind` ({dim_param: size}); raises KeyError naming an unbound dim."""
    bind = bind or {}
    inits = {t.name for t in model.graph.initializer}
    shapes = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        dims = []
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value"):
                dims.append(d.dim_value)
            elif d.dim_param in bind:
                dims.append(bind[d.dim_param])
            else:
                raise KeyError(f"input {vi.name}: symbolic dim {d.dim_param!r} is not bound")
        shapes[vi.name] = tuple(dims)
    return shapes


# metadata_props key prefix giving an integer input's value range "LO,HI" (HI exclusive), e.g.
# "sdnn.int_range.input_ids" = "0,30522"; integer inputs without one get values in [0, 2).
INT_RANGE_KEY = "sdnn.int_range."


def random_inputs(model: onnx.ModelProto, seed: int = 1, bind: dict[str, int] | None = None
                  ) -> dict[str, np.ndarray]:
    """Data for every graph input (see input_shapes for `bind`): standard-normal f32 for float
    inputs; for int64/int32 inputs (token ids, integer masks) uniform integers in the range the
    model's metadata gives (INT_RANGE_KEY), else in [0, 2)."""
    rng = np.random.default_rng(seed)
    props = {p.key: p.value for p in model.metadata_props}
    types = {vi.name: vi.type.tensor_type.elem_type for vi in model.graph.input}
    out = {}
    for name, shape in input_shapes(model, bind).items():
        if types[name] in (TensorProto.INT64, TensorProto.INT32):
            lo, hi = (int(v) for v in props.get(INT_RANGE_KEY + name, "0,2").split(","))
            dtype = np.int64 if types[name] == TensorProto.INT64 else np.int32
            out[name] = rng.integers(lo, hi, size=shape).astype(dtype)
        else:
            out[name] = rng.standard_normal(shape).astype(np.float32)
    return out


def onnxruntime_outputs(model: onnx.ModelProto, inputs: dict[str, np.ndarray]
                        ) -> dict[str, np.ndarray]:
    """Runs the model on ONNX Runtime's CPU execution provider, one thread."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs)))
