"""bert_models — pruned BERT encoders written node for node as PyTorch's ONNX exporter
(torch.onnx.export, TorchScript exporter) writes HuggingFace's BertModel encoder in eval mode.

onnx.helper + numpy only, deterministic from `seed`. Every layer's six weight matrices (Q, K, V,
attention output, FFN1, FFN2) are magnitude-pruned one matrix at a time to exactly `sparsity`
(sdnn_models.prune, via pruned_weight, which also scales each matrix so unit-variance inputs give
about unit-variance outputs). LayerNorm gammas are 1 + 0.1 N(0,1), betas and biases 0.1 N(0,1).

Builder: bert(...). Named configurations (models/make_model.py): bert (opset 14: decomposed
LayerNorm, erf GELU), bert_ln17 (opset 17: LayerNormalization op), bert_gelu20 (opset 20:
LayerNormalization and Gelu ops), bert_dynamic (dim_params "batch" and "seq", Reshape targets
built by Shape -> Gather -> Unsqueeze -> Concat).

Conventions shared with sdnn_models: the float input is "x" [B, S, hidden] (or int64
"input_ids" [B, S] with embedding=True), the output is "y" [B, S, hidden]; weights are
initializers; scalars, shape vectors and axes are Constant nodes (as the exporter writes them).
"""
from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper

from sdnn_models import INT_RANGE_KEY, Dim, _GraphBuilder, bias_vector, pruned_weight

BERT_OPSET = 14  # below 17: the exporter writes the decomposed LayerNorm
MIN_OPSET = 11
FLOAT_MIN = float(np.finfo(np.float32).min)  # HF: (1 - mask) * torch.finfo(float32).min
MASKS = ("none", "zeros", "const", "input", "input_int")
LAYERNORMS = ("auto", "decomposed", "op")
GELUS = ("auto", "erf", "tanh", "op")


class _Ops:
    """The opset-dependent spellings the exporter uses, on top of a _GraphBuilder."""

    def __init__(self, g: _GraphBuilder, opset: int):
        self.g = g
        self.opset = opset

    def scalar(self, stem: str, value: float) -> str:
        """A 0-d f32 Constant node (a Python float in the model, after scalar type analysis)."""
        return self.g.const(stem, np.array(value, dtype=np.float32), as_node=True)

    def ints(self, stem: str, values) -> str:
        """A 1-D (or 0-d for an int) int64 Constant node."""
        return self.g.const(stem, np.array(values, dtype=np.int64), as_node=True)

    def unsqueeze(self, x: str, axes: list[int]) -> str:
        if self.opset >= 13:
            return self.g.node("Unsqueeze", [x, self.ints("axes", axes)])
        return self.g.node("Unsqueeze", [x], axes=axes)

    def reduce_mean(self, x: str, axes: list[int]) -> str:
        if self.opset >= 18:
            return self.g.node("ReduceMean", [x, self.ints("axes", axes)], keepdims=1)
        return self.g.node("ReduceMean", [x], axes=axes)

    def reshape(self, x: str, shape: str) -> str:
        if self.opset >= 14:
            return self.g.node("Reshape", [x, shape], allowzero=0)
        return self.g.node("Reshape", [x, shape])

    def size(self, x: str, dim: int) -> str:
        """x.size(dim) traced with a dynamic shape: Shape(x) -> Gather(Constant dim (0-d),
        axis=0), a 0-d int64. Every call writes its own Shape node, as the exporter does."""
        return self.g.node("Gather", [self.g.node("Shape", [x]), self.ints("dim", dim)], axis=0)

    def shape_list(self, parts: list) -> str:
        """A Python list of traced sizes (0-d int64 values, given as str) and ints turned into a
        shape tensor: Unsqueeze(axes [0]) each traced size, Constant [n] each int, then
        Concat(axis=0) of all in order."""
        inputs = [self.unsqueeze(p, [0]) if isinstance(p, str) else self.ints("dim", [p])
                  for p in parts]
        return self.g.node("Concat", inputs, axis=0)


def _linear(o: _Ops, x: str, w: np.ndarray, b: np.ndarray) -> str:
    """nn.Linear on a 3-D input: MatMul(x, W^T) then Add(bias, product) — the bias is the FIRST
    Add operand. w is [out, in] (PyTorch's layout); the initializer is W^T [in, out]."""
    mm = o.g.node("MatMul", [x, o.g.const("W", np.ascontiguousarray(w.T))])
    return o.g.node("Add", [o.g.const("b", b), mm])


def _layer_norm(o: _Ops, x: str, gamma: np.ndarray, beta: np.ndarray, eps: float,
                style: str) -> str:
    """style "op": LayerNormalization(x, gamma, beta, axis=-1, epsilon) (opset >= 17).
    style "decomposed" (the exporter below opset 17):
      m = ReduceMean(x, axes=[-1]); d = Sub(x, m); p = Pow(d, 2.0); v = ReduceMean(p, axes=[-1]);
      e = Add(v, eps); s = Sqrt(e); n = Div(d, s); Mul(n, gamma); Add(., beta)
    (ReduceMean keepdims defaults to 1; from opset 18 its axes are a Constant input)."""
    g = o.g
    if style == "op":
        return g.node("LayerNormalization", [x, g.const("ln_gamma", gamma),
                                             g.const("ln_beta", beta)],
                      axis=-1, epsilon=eps)
    mean = o.reduce_mean(x, [-1])
    centered = g.node("Sub", [x, mean])
    sq = g.node("Pow", [centered, o.scalar("two", 2.0)])
    var = o.reduce_mean(sq, [-1])
    std = g.node("Sqrt", [g.node("Add", [var, o.scalar("eps", eps)])])
    normed = g.node("Div", [centered, std])
    scaled = g.node("Mul", [normed, g.const("ln_gamma", gamma)])
    return g.node("Add", [scaled, g.const("ln_beta", beta)])


def _gelu(o: _Ops, x: str, style: str) -> str:
    """style "erf" (approximate='none' below opset 20):
         Div(x, 1.4142135) -> Erf -> Add(., 1.0) -> Mul(x, .) -> Mul(., 0.5)
       style "tanh" (approximate='tanh'):
         Mul(x, x) -> Mul(x, .) -> Mul(0.044715, .) -> Add(x, .) -> Mul(0.7978846, .) -> Tanh
         -> Add(1.0, .) -> Mul(x, .) -> Mul(0.5, .)
       style "op": Gelu(x, approximate="none") (opset >= 20)."""
    g = o.g
    if style == "op":
        return g.node("Gelu", [x], approximate="none")
    if style == "tanh":
        cube = g.node("Mul", [x, g.node("Mul", [x, x])])
        inner = g.node("Add", [x, g.node("Mul", [o.scalar("kappa", 0.044715), cube])])
        inner = g.node("Mul", [o.scalar("beta", math.sqrt(2 / math.pi)), inner])
        one_plus = g.node("Add", [o.scalar("one", 1.0), g.node("Tanh", [inner])])
        return g.node("Mul", [o.scalar("half", 0.5), g.node("Mul", [x, one_plus])])
    erf = g.node("Erf", [g.node("Div", [x, o.scalar("sqrt2", 1.4142135623730951)])])
    one_plus = g.node("Add", [erf, o.scalar("one", 1.0)])
    return g.node("Mul", [g.node("Mul", [x, one_plus]), o.scalar("half", 0.5)])


def _extended_mask(o: _Ops, mask: str, ref: str, batch: int, seq: int, b_dim: Dim, s_dim: Dim,
                   dynamic: bool) -> tuple[str | None, list]:
    """The additive attention mask [B, 1, 1, S] added to every layer's scores, and the graph
    inputs it needs. See bert() for the modes. `ref` is a [B, S, ...] tensor to take the
    dynamic batch and seq sizes from; b_dim / s_dim are the graph inputs' dims."""
    g = o.g
    if mask == "none":
        return None, []
    if mask == "zeros" and not dynamic:
        # HF with no mask input builds torch.ones([B, S]); the static export folds the whole
        # extended-mask computation into this constant.
        return g.const("mask", np.zeros((batch, 1, 1, seq), np.float32)), []
    if mask == "const":
        m = np.zeros((batch, 1, 1, seq), np.float32)
        m[..., seq - max(1, seq // 4):] = FLOAT_MIN  # the last quarter are padding positions
        return g.const("mask", m), []
    if mask == "input":
        vi = helper.make_tensor_value_info("attention_mask", TensorProto.FLOAT,
                                           [b_dim, 1, 1, s_dim])
        return "attention_mask", [vi]
    if mask == "input_int":
        vi = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [b_dim, s_dim])
        ones = "attention_mask"
    else:  # "zeros", dynamic: attention_mask = torch.ones((batch, seq))
        shape = o.shape_list([o.size(ref, 0), o.size(ref, 1)])
        ones = g.node("ConstantOfShape", [shape],
                      value=helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]))
        vi = None
    # extended = mask[:, None, None, :].to(float32); (1.0 - extended) * finfo(float32).min
    ext = o.unsqueeze(o.unsqueeze(ones, [1]), [2])
    if mask == "input_int":
        ext = g.node("Cast", [ext], to=TensorProto.FLOAT)
    inv = g.node("Sub", [o.scalar("one", 1.0), ext])
    return g.node("Mul", [inv, o.scalar("min", FLOAT_MIN)]), [vi] if vi else []


def _embeddings(o: _Ops, rng: np.random.Generator, batch: Dim, seq: Dim, hidden: int,
                vocab: int, max_positions: int, dynamic: bool, eps: float,
                ln_style: str) -> str:
    """BertEmbeddings on int64 "input_ids" [B, S] (token type 0 everywhere, positions 0..S-1):
      static:  Gather(word_table [V, H], input_ids) -> Add(., token_type_emb [B, S, H] const)
               -> Add(., position_emb [1, S, H] const) -> LayerNorm
               (the exporter folds the constant-index Gathers into those constants)
      dynamic: seq = Gather(Shape(input_ids), 1); batch = Gather(Shape(input_ids), 0);
               tt = Slice(token_type_ids buffer [1, P], [0], Unsqueeze(seq), [1], [1])
               tt = Expand(tt, Concat(Unsqueeze(batch), Unsqueeze(seq)));
               pos = Slice(position_ids buffer [1, P], [0], Unsqueeze(seq), [1], [1]);
               Gather(word_table, input_ids) -> Add(., Gather(type_table, tt))
               -> Add(., Gather(pos_table, pos)) -> LayerNorm"""
    g = o.g
    word = (rng.standard_normal((vocab, hidden)) * 0.5).astype(np.float32)
    types = (rng.standard_normal((2, hidden)) * 0.5).astype(np.float32)
    pos = (rng.standard_normal((max_positions, hidden)) * 0.5).astype(np.float32)
    gamma = (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
    beta = bias_vector(rng, hidden)
    emb = g.node("Gather", [g.const("word_embeddings", word), "input_ids"])
    if not dynamic:
        tt = np.broadcast_to(types[0], (batch, seq, hidden)).astype(np.float32)
        emb = g.node("Add", [emb, g.const("token_type_embeddings", tt)])
        emb = g.node("Add", [emb, g.const("position_embeddings",
                                          np.ascontiguousarray(pos[None, :seq]))])
    else:
        seq_len = o.size("input_ids", 1)
        batch_len = o.size("input_ids", 0)

        def buffer_prefix(stem, values):
            return g.node("Slice", [o.ints(stem, values), o.ints("starts", [0]),
                                    o.unsqueeze(seq_len, [0]), o.ints("axes", [1]),
                                    o.ints("steps", [1])])
        tt_ids = buffer_prefix("token_type_ids", np.zeros((1, max_positions), np.int64))
        tt_ids = g.node("Expand", [tt_ids, o.shape_list([batch_len, seq_len])])
        emb = g.node("Add", [emb, g.node("Gather", [g.const("token_type_table", types),
                                                    tt_ids])])
        pos_ids = buffer_prefix("position_ids", np.arange(max_positions)[None, :])
        emb = g.node("Add", [emb, g.node("Gather", [g.const("position_table", pos),
                                                    pos_ids])])
    return _layer_norm(o, emb, gamma, beta, eps, ln_style)


def bert(*, layers: int = 12, hidden: int = 768, heads: int = 12, ffn: int = 3072,
         seq: int = 128, batch: int = 1, sparsity: float = 0.95, layernorm: str = "auto",
         gelu: str = "auto", mask: str = "zeros", embedding: bool = False, vocab: int = 30522,
         max_positions: int = 512, dynamic: bool = False, eps: float = 1e-12, seed: int = 0,
         opset: int = BERT_OPSET, name: str = "bert") -> onnx.ModelProto:
    """A BERT encoder of `layers` layers: "x" [batch, seq, hidden] f32 -> "y" [batch, seq,
    hidden] (with dynamic=True both are ["batch", "seq", hidden]; with embedding=True the input
    is int64 "input_ids" [batch, seq] and the embedding front below comes first).

    Options: layernorm "decomposed" | "op" | "auto" (op from opset 17, as the exporter);
    gelu "erf" | "tanh" | "op" | "auto" (op from opset 20, else erf); mask:
      none       no mask Add
      zeros      static: Add of a constant [B,1,1,S] of zeros (what a static export without a
                 mask input folds to); dynamic: the unfolded chain
                 Shape/Gather/Unsqueeze/Concat -> ConstantOfShape(1.0) -> Unsqueeze(axes [1]) ->
                 Unsqueeze(axes [2]) -> Sub(1.0, .) -> Mul(., -3.4028235e38)
      const      constant [B,1,1,S]: 0, and -3.4028235e38 on the last max(1, S//4) positions
      input      f32 graph input "attention_mask" [B,1,1,S], added as is
      input_int  int64 graph input "attention_mask" [B,S] (values 0/1) -> Unsqueeze(axes [1]) ->
                 Unsqueeze(axes [2]) -> Cast(to=FLOAT) -> Sub(1.0, .) -> Mul(., -3.4028235e38)
    The extended mask is computed once and added in every layer.

    One layer, exactly in this order (H = heads, D = hidden / H; x is the layer input;
    "Linear(t)" = MatMul(t, W^T [in, out] initializer) -> Add(bias, product), bias FIRST):
      q = Linear(x)
      k = Linear(x) -> Reshape(., SHAPE4) -> Transpose(perm [0,2,3,1])      # K^T [B,H,D,S]
      v = Linear(x) -> Reshape(., SHAPE4) -> Transpose(perm [0,2,1,3])      # [B,H,S,D]
      q = Reshape(q, SHAPE4) -> Transpose(perm [0,2,1,3])                   # [B,H,S,D]
      p = MatMul(q, k) -> Div(., sqrt(D) 0-d Constant) [-> Add(., mask)]
          -> Softmax(axis=-1; axis=3 below opset 13)
      c = MatMul(p, v) -> Transpose(perm [0,2,1,3]) -> Reshape(., SHAPE3)   # [B,S,hidden]
      a = LayerNorm(Add(Linear(c), x))                                       # residual first
      f = Linear(a) -> GELU -> Linear(.)
      out = LayerNorm(Add(f, a))
    Reshape has allowzero=0 from opset 14. Static: SHAPE4 = Constant [B,S,H,D], SHAPE3 =
    Constant [B,S,hidden]. Dynamic (for q, k, v from their Linear output t; for the context
    from the transposed c): Shape(t) -> Gather(Constant 0 (0-d), axis=0) and Shape(t) ->
    Gather(Constant 1, axis=0) (two Shape nodes), each -> Unsqueeze(axes [0]), then
    Concat(axis=0)(u0, u1, Constant [H], Constant [D]) (SHAPE4) or (u0, u1, Constant [hidden])
    (SHAPE3). These fold to constants once x's shape is bound.
    LayerNorm and GELU spellings: see _layer_norm and _gelu."""
    if opset < MIN_OPSET:
        raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
    if hidden % heads:
        raise ValueError(f"hidden {hidden} is not a multiple of heads {heads}")
    if mask not in MASKS:
        raise ValueError(f"mask must be one of {MASKS}, got {mask!r}")
    if dynamic and mask == "const":
        raise ValueError("mask='const' needs static shapes")
    if layernorm not in LAYERNORMS or gelu not in GELUS:
        raise ValueError(f"layernorm must be one of {LAYERNORMS}, gelu one of {GELUS}")
    if embedding and seq > max_positions:
        raise ValueError(f"seq {seq} exceeds max_positions {max_positions}")
    ln_style = layernorm if layernorm != "auto" else ("op" if opset >= 17 else "decomposed")
    gelu_style = gelu if gelu != "auto" else ("op" if opset >= 20 else "erf")
    if ln_style == "op" and opset < 17:
        raise ValueError("the LayerNormalization op needs opset >= 17")
    if gelu_style == "op" and opset < 20:
        raise ValueError("the Gelu op needs opset >= 20")
    if layers < 1:
        raise ValueError("layers must be >= 1")

    d = hidden // heads
    rng = np.random.default_rng(seed)
    g = _GraphBuilder(constant_nodes=False)
    o = _Ops(g, opset)
    b_dim: Dim = "batch" if dynamic else batch
    s_dim: Dim = "seq" if dynamic else seq

    inputs = []
    metadata = {}
    if embedding:
        inputs.append(helper.make_tensor_value_info("input_ids", TensorProto.INT64,
                                                    [b_dim, s_dim]))
        metadata[INT_RANGE_KEY + "input_ids"] = f"0,{vocab}"
        g.scope = "/embeddings/"
        x = _embeddings(o, rng, batch, seq, hidden, vocab, max_positions, dynamic, eps,
                        ln_style)
        ref = "input_ids"
    else:
        inputs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                    [b_dim, s_dim, hidden]))
        x = ref = "x"
    g.scope = "/mask/"
    mask_value, mask_inputs = _extended_mask(o, mask, ref, batch, seq, b_dim, s_dim,
                                             dynamic)
    inputs += mask_inputs
    if mask == "input_int":
        metadata[INT_RANGE_KEY + "attention_mask"] = "0,2"
    if dynamic:
        metadata["sdnn.default_bind"] = f"batch={batch},seq={seq}"

    def shape4(t: str) -> str:
        if dynamic:
            return o.shape_list([o.size(t, 0), o.size(t, 1), heads, d])
        return o.ints("shape", [batch, seq, heads, d])

    def shape3(t: str) -> str:
        if dynamic:
            return o.shape_list([o.size(t, 0), o.size(t, 1), hidden])
        return o.ints("shape", [batch, seq, hidden])

    softmax_axis = -1 if opset >= 13 else 3
    for layer in range(layers):
        g.scope = f"/encoder/layer.{layer}/"
        wq, bq = pruned_weight(rng, hidden, hidden, sparsity), bias_vector(rng, hidden)
        wk, bk = pruned_weight(rng, hidden, hidden, sparsity), bias_vector(rng, hidden)
        wv, bv = pruned_weight(rng, hidden, hidden, sparsity), bias_vector(rng, hidden)
        wo, bo = pruned_weight(rng, hidden, hidden, sparsity), bias_vector(rng, hidden)
        g1 = (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        be1 = bias_vector(rng, hidden)
        w1, b1 = pruned_weight(rng, ffn, hidden, sparsity), bias_vector(rng, ffn)
        w2, b2 = pruned_weight(rng, hidden, ffn, sparsity), bias_vector(rng, hidden)
        g2 = (1.0 + 0.1 * rng.standard_normal(hidden)).astype(np.float32)
        be2 = bias_vector(rng, hidden)

        q = _linear(o, x, wq, bq)
        k = _linear(o, x, wk, bk)
        k = g.node("Transpose", [o.reshape(k, shape4(k))], perm=[0, 2, 3, 1])
        v = _linear(o, x, wv, bv)
        v = g.node("Transpose", [o.reshape(v, shape4(v))], perm=[0, 2, 1, 3])
        q = g.node("Transpose", [o.reshape(q, shape4(q))], perm=[0, 2, 1, 3])
        scores = g.node("MatMul", [q, k])
        scores = g.node("Div", [scores, o.scalar("sqrt_d", math.sqrt(d))])
        if mask_value is not None:
            scores = g.node("Add", [scores, mask_value])
        probs = g.node("Softmax", [scores], axis=softmax_axis)
        ctx = g.node("Transpose", [g.node("MatMul", [probs, v])], perm=[0, 2, 1, 3])
        ctx = o.reshape(ctx, shape3(ctx))
        attn = g.node("Add", [_linear(o, ctx, wo, bo), x])
        attn = _layer_norm(o, attn, g1, be1, eps, ln_style)
        f = _gelu(o, _linear(o, attn, w1, b1), gelu_style)
        f = g.node("Add", [_linear(o, f, w2, b2), attn])
        x = _layer_norm(o, f, g2, be2, eps, ln_style)

    doc = (f"bert layers={layers} hidden={hidden} heads={heads} ffn={ffn} seq={seq} "
           f"batch={batch} sparsity={sparsity} layernorm={ln_style} gelu={gelu_style} "
           f"mask={mask} embedding={embedding} vocab={vocab} dynamic={dynamic} eps={eps} "
           f"seed={seed} opset={opset}")
    return g.model(name, inputs, x, [b_dim, s_dim, hidden], opset, doc, metadata)
