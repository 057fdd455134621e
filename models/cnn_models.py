"""cnn_models — pruned CNNs written node for node as PyTorch's ONNX exporter (torch.onnx.export,
eval mode) writes torchvision-style MobileNet V1, MobileNet V2 and ResNet-18/50.

onnx.helper + numpy only, deterministic from `seed`. Sparse weights are magnitude-pruned one
tensor at a time ([Cout, Cin*kh*kw] as one matrix) to exactly the requested sparsity
(sdnn_models.prune via pruned_weight); first convs and depthwise convs stay dense.

BatchNorm. Every Conv is followed by a BatchNorm whose running statistics are calibrated, as
training would set them: while the graph is built, a numpy forward pass of one fixed standard-
normal image (its own seed) measures each conv's output; running_var = (its mean square) *
U(0.8, 1.25) per channel, running_mean = 0.1 N(0,1) * its RMS, gamma = 1 + 0.1 N(0,1),
beta = 0.1 N(0,1), epsilon 1e-5. This keeps activations O(1) at any depth, width and resolution
(ORT comparisons stay meaningful). The classifier is scaled so the calibration logits have RMS 1.
  bn="folded"   (default; what the exporter writes in eval mode): no BatchNormalization node;
                Conv(x, W * s, beta - mean * s) with s = gamma / sqrt(var + eps) per out channel
                (pruned zeros stay exactly zero).
  bn="unfolded" Conv(x, W) without bias -> BatchNormalization(., gamma, beta, mean, var,
                epsilon=1e-5, momentum=0.9, training_mode=0 from opset 14).
Both compute the same function for the same seed.

Every Conv carries dilations=[1,1], group, kernel_shape, pads (k//2 on all sides), strides.
ReLU6 is Clip(x, Constant 0.0, Constant 6.0) (min/max as 0-d f32 inputs, opset >= 11).
Head: GlobalAveragePool -> Flatten(axis=1) (head="flatten") or Reshape(., Constant [B, -1])
(head="reshape", allowzero=0 from opset 14) -> Gemm(., W [classes, C], b, alpha=1.0, beta=1.0,
transB=1). Input "x" [B, 3, R, R] f32, output "y" [B, classes].
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper

from sdnn_models import DEFAULT_OPSET, _GraphBuilder, bias_vector, pruned_weight

MIN_OPSET = 11
BN_EPS = 1e-5


def make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's _make_divisible: round to the nearest multiple of divisor, never below it
    and never more than 10% below v."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def _np_conv(x: np.ndarray, w: np.ndarray, stride: int, pad: int, group: int) -> np.ndarray:
    """Reference NCHW convolution (im2col + matmul), for calibration only."""
    n, c, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    ho = (h + 2 * pad - kh) // stride + 1
    wo = (wd + 2 * pad - kw) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    cols = np.empty((n, c, kh * kw, ho, wo), x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i * kw + j] = xp[:, :, i:i + stride * (ho - 1) + 1:stride,
                                        j:j + stride * (wo - 1) + 1:stride]
    cols = cols.reshape(n, group, cin_g * kh * kw, ho * wo)
    out = np.matmul(w.reshape(group, cout // group, cin_g * kh * kw)[None], cols)
    return out.reshape(n, cout, ho, wo)


def _np_maxpool(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    n, c, h, w = x.shape
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    out = np.full((n, c, ho, wo), -np.inf, x.dtype)
    for i in range(k):
        for j in range(k):
            out = np.maximum(out, xp[:, :, i:i + stride * (ho - 1) + 1:stride,
                                     j:j + stride * (wo - 1) + 1:stride])
    return out


class _CnnBuilder:
    """Writes the exporter's CNN nodes and tracks a calibration forward pass (numpy values of
    one image, keyed by value name) to set BatchNorm statistics."""

    def __init__(self, *, seed: int, opset: int, bn: str, batch: int, resolution: int,
                 head: str):
        if opset < MIN_OPSET:
            raise ValueError(f"opset must be >= {MIN_OPSET}, got {opset}")
        if bn not in ("folded", "unfolded"):
            raise ValueError(f"bn must be 'folded' or 'unfolded', got {bn!r}")
        if head not in ("flatten", "reshape"):
            raise ValueError(f"head must be 'flatten' or 'reshape', got {head!r}")
        if resolution < 1 or batch < 1:
            raise ValueError("resolution and batch must be >= 1")
        self.g = _GraphBuilder(constant_nodes=False)
        self.rng = np.random.default_rng(seed)
        self.opset, self.bn, self.batch, self.head = opset, bn, batch, head
        calib = np.random.default_rng([seed, 0xCA1B])
        self.val = {"x": calib.standard_normal((1, 3, resolution, resolution))
                    .astype(np.float32)}
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                   [batch, 3, resolution, resolution])

    def channels(self, x: str) -> int:
        return self.val[x].shape[1]

    def conv(self, x: str, cout: int, k: int, *, stride: int = 1, group: int = 1,
             sparsity: float = 0.0, act: str | None = "relu") -> str:
        """Conv(k x k, stride, pads k//2, group) + BatchNorm (folded or not) + act, where act is
        "relu" (Relu), "relu6" (Clip 0..6) or None. group == 1 weights are pruned to
        `sparsity`; grouped (depthwise) weights are dense."""
        g, rng = self.g, self.rng
        cin = self.channels(x)
        fan = cin // group * k * k
        if group == 1:
            w = pruned_weight(rng, cout, fan, sparsity)
        else:
            if sparsity:
                raise ValueError("grouped convs are not pruned")
            w = (rng.standard_normal((cout, fan)) / np.sqrt(fan)).astype(np.float32)
        w = w.reshape(cout, cin // group, k, k)
        y = _np_conv(self.val[x], w, stride, k // 2, group)
        ms = float(np.mean(np.square(y, dtype=np.float64))) or 1.0
        gamma = (1.0 + 0.1 * rng.standard_normal(cout)).astype(np.float32)
        beta = bias_vector(rng, cout)
        mean = (0.1 * np.sqrt(ms) * rng.standard_normal(cout)).astype(np.float32)
        var = (ms * rng.uniform(0.8, 1.25, cout)).astype(np.float32)
        scale = (gamma / np.sqrt(var + BN_EPS)).astype(np.float32)
        shift = (beta - mean * scale).astype(np.float32)
        attrs = dict(dilations=[1, 1], group=group, kernel_shape=[k, k], pads=[k // 2] * 4,
                     strides=[stride, stride])
        if self.bn == "folded":
            wf = (w * scale[:, None, None, None]).astype(np.float32)
            out = g.node("Conv", [x, g.const("W", wf), g.const("b", shift)], **attrs)
        else:
            out = g.node("Conv", [x, g.const("W", w)], **attrs)
            bn_attrs = dict(epsilon=BN_EPS, momentum=0.9)
            if self.opset >= 14:
                bn_attrs["training_mode"] = 0
            out = g.node("BatchNormalization",
                         [out, g.const("bn_scale", gamma), g.const("bn_B", beta),
                          g.const("bn_mean", mean), g.const("bn_var", var)], **bn_attrs)
        self.val[out] = y * scale[None, :, None, None] + shift[None, :, None, None]
        return self.act(out, act)

    def act(self, x: str, act: str | None) -> str:
        if act is None:
            return x
        g = self.g
        if act == "relu":
            out = g.node("Relu", [x])
            self.val[out] = np.maximum(self.val[x], 0)
        elif act == "relu6":
            lo = g.const("clip_min", np.array(0.0, np.float32), as_node=True)
            hi = g.const("clip_max", np.array(6.0, np.float32), as_node=True)
            out = g.node("Clip", [x, lo, hi])
            self.val[out] = np.clip(self.val[x], 0, 6)
        else:
            raise ValueError(f"activation must be relu or relu6, got {act!r}")
        return out

    def add(self, a: str, b: str) -> str:
        out = self.g.node("Add", [a, b])
        self.val[out] = self.val[a] + self.val[b]
        return out

    def maxpool(self, x: str) -> str:
        """MaxPool 3x3 stride 2 pad 1 as the exporter writes it (ceil_mode=0, no dilations)."""
        out = self.g.node("MaxPool", [x], ceil_mode=0, kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          strides=[2, 2])
        self.val[out] = _np_maxpool(self.val[x], 3, 2, 1)
        return out

    def classifier(self, x: str, num_classes: int, sparsity: float) -> str:
        g = self.g
        pooled = g.node("GlobalAveragePool", [x])
        feat = self.val[x].mean(axis=(2, 3))
        if self.head == "flatten":
            flat = g.node("Flatten", [pooled], axis=1)
        else:
            shape = g.const("shape", np.array([self.batch, -1], np.int64), as_node=True)
            flat = g.node("Reshape", [pooled, shape],
                          **({"allowzero": 0} if self.opset >= 14 else {}))
        w = pruned_weight(self.rng, num_classes, feat.shape[1], sparsity)
        rms = float(np.sqrt(np.mean(np.square(feat @ w.T, dtype=np.float64))))
        if rms > 0:
            w = (w / rms).astype(np.float32)
        b = bias_vector(self.rng, num_classes)
        out = g.node("Gemm", [flat, g.const("W", w), g.const("b", b)], alpha=1.0, beta=1.0,
                     transB=1)
        self.val[out] = feat @ w.T + b
        return out

    def model(self, out: str, num_classes: int, name: str, doc: str) -> onnx.ModelProto:
        return self.g.model(name, [self.input], out, [self.batch, num_classes], self.opset, doc)


# MobileNet V1: (pointwise output channels, depthwise stride) for the 13 separable blocks.
MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                       (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                 batch: int = 1, sparsity: float = 0.9, fc_sparsity: float | None = None,
                 bn: str = "folded", activation: str = "relu", head: str = "flatten",
                 seed: int = 0, opset: int = DEFAULT_OPSET,
                 name: str = "mobilenet_v1") -> onnx.ModelProto:
    """MobileNet V1 (width multiplier `width`, channels make_divisible(c * width, 8)):
      stem:  Conv 3x3 stride 2, 3 -> C0=32*width (dense) -> ACT
      13 blocks (MOBILENET_V1_BLOCKS), each:
             Conv 3x3 depthwise (group=C, stride 1 or 2, pads 1, dense) -> ACT
             -> Conv 1x1 C -> C' (pruned to `sparsity`) -> ACT
      head:  GlobalAveragePool -> Flatten(axis=1) | Reshape -> Gemm(transB=1) to num_classes
             (pruned to fc_sparsity, default = sparsity)
    ACT is Relu (activation="relu") or Clip(., 0.0, 6.0) ("relu6"). With bn="folded" each
    Conv has a bias and no BatchNormalization follows; bn="unfolded" puts
    BatchNormalization between each bias-less Conv and its ACT. So one folded block is exactly
      Conv(group=C, k 3x3, s) -> Relu -> Conv(group=1, k 1x1) -> Relu."""
    fc_sparsity = sparsity if fc_sparsity is None else fc_sparsity
    b = _CnnBuilder(seed=seed, opset=opset, bn=bn, batch=batch, resolution=resolution,
                    head=head)
    b.g.scope = "/stem/"
    x = b.conv("x", make_divisible(32 * width), 3, stride=2, act=activation)
    for i, (c, stride) in enumerate(MOBILENET_V1_BLOCKS):
        b.g.scope = f"/block.{i}/"
        cin = b.channels(x)
        x = b.conv(x, cin, 3, stride=stride, group=cin, act=activation)
        x = b.conv(x, make_divisible(c * width), 1, sparsity=sparsity, act=activation)
    b.g.scope = "/classifier/"
    y = b.classifier(x, num_classes, fc_sparsity)
    doc = (f"mobilenet_v1 width={width} resolution={resolution} classes={num_classes} "
           f"batch={batch} sparsity={sparsity} fc_sparsity={fc_sparsity} bn={bn} "
           f"activation={activation} head={head} seed={seed} opset={opset}")
    return b.model(y, num_classes, name, doc)


# MobileNet V2 inverted residual settings (torchvision): expansion t, channels c, repeats n,
# first stride s.
MOBILENET_V2_SETTINGS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                         (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def mobilenet_v2(*, width: float = 1.0, resolution: int = 224, num_classes: int = 1000,
                 batch: int = 1, sparsity: float = 0.9, fc_sparsity: float | None = None,
                 bn: str = "folded", head: str = "flatten",
                 settings: Sequence[Sequence[int]] = MOBILENET_V2_SETTINGS, seed: int = 0,
                 opset: int = DEFAULT_OPSET, name: str = "mobilenet_v2") -> onnx.ModelProto:
    """MobileNet V2 as torchvision builds it (channels make_divisible(c * width, 8), last
    conv make_divisible(1280 * max(1, width), 8)); R6 = Clip(., Constant 0.0, Constant 6.0):
      stem:  Conv 3x3 stride 2, 3 -> 32*width (dense) -> R6
      inverted residual blocks (settings t, c, n, s; stride s on the first of n), each
        t != 1: Conv 1x1 expand C -> C*t (pruned) -> R6
                -> Conv 3x3 depthwise (group=C*t, stride, pads 1, dense) -> R6
                -> Conv 1x1 project C*t -> C' (pruned, no activation)
        t == 1: the same without the expansion conv
        then, when stride 1 and C == C': Add(block input, projection) — identity FIRST
      last:  Conv 1x1 -> 1280 (pruned) -> R6
      head:  GlobalAveragePool -> Flatten(axis=1) | Reshape -> Gemm(transB=1) (fc_sparsity)
    Pruned convs use `sparsity`; fc_sparsity defaults to it. bn as in the module doc."""
    fc_sparsity = sparsity if fc_sparsity is None else fc_sparsity
    b = _CnnBuilder(seed=seed, opset=opset, bn=bn, batch=batch, resolution=resolution,
                    head=head)
    b.g.scope = "/stem/"
    x = b.conv("x", make_divisible(32 * width), 3, stride=2, act="relu6")
    block = 0
    for t, c, n, s in settings:
        cout = make_divisible(c * width)
        for i in range(n):
            b.g.scope = f"/block.{block}/"
            block += 1
            stride = s if i == 0 else 1
            cin = b.channels(x)
            hidden = int(round(cin * t))
            h = x
            if t != 1:
                h = b.conv(h, hidden, 1, sparsity=sparsity, act="relu6")
            h = b.conv(h, hidden, 3, stride=stride, group=hidden, act="relu6")
            h = b.conv(h, cout, 1, sparsity=sparsity, act=None)
            x = b.add(x, h) if stride == 1 and cin == cout else h
    b.g.scope = "/last/"
    x = b.conv(x, make_divisible(1280 * max(1.0, width)), 1, sparsity=sparsity, act="relu6")
    b.g.scope = "/classifier/"
    y = b.classifier(x, num_classes, fc_sparsity)
    doc = (f"mobilenet_v2 width={width} resolution={resolution} classes={num_classes} "
           f"batch={batch} sparsity={sparsity} fc_sparsity={fc_sparsity} bn={bn} head={head} "
           f"settings={[list(s) for s in settings]} seed={seed} opset={opset}")
    return b.model(y, num_classes, name, doc)


def resnet(*, block: str = "basic", layers: Sequence[int] = (2, 2, 2, 2), width: int = 64,
           resolution: int = 224, num_classes: int = 1000, batch: int = 1,
           sparsity: float = 0.9, sparsity_1x1: float = 0.9, fc_sparsity: float = 0.9,
           bn: str = "folded", head: str = "flatten", seed: int = 0, groups: int = 1,
           opset: int = DEFAULT_OPSET, name: str = "resnet") -> onnx.ModelProto:
    """torchvision ResNet (v1.5: stride on the 3x3 of a bottleneck). len(layers) stages with
    planes width * 2^i and layers[i] blocks; the first block of stage i > 0 has stride 2.
      stem:  Conv 7x7 stride 2 pads 3, 3 -> width (dense) -> Relu
             -> MaxPool(kernel 3x3, strides 2, pads 1, ceil_mode=0)
      basic block (block="basic", expansion 1):
             Conv 3x3 (stride s) -> Relu -> Conv 3x3 -> [Conv 1x1 downsample(stride s) of the
             block input] -> Add(branch, identity) -> Relu
      bottleneck (block="bottleneck", expansion 4):
             Conv 1x1 -> Relu -> Conv 3x3 (stride s) -> Relu -> Conv 1x1 (x4)
             -> [Conv 1x1 downsample] -> Add(branch, identity) -> Relu
      head:  GlobalAveragePool -> Flatten(axis=1) | Reshape -> Gemm(transB=1)
    The downsample conv exists when the stride is 2 or the channel count changes and is written
    after the branch (the exporter's order). Sparsity: 3x3 convs `sparsity`, 1x1 convs (bottleneck
    and downsample) `sparsity_1x1`, classifier `fc_sparsity`; the stem is dense. All
    pads are k // 2. bn as in the module doc (folded: Conv with bias, no BN node).
    groups > 1 (bottleneck only): the 3x3 conv is grouped, dense per group, as ResNeXt writes it
    (torchvision resnext50_32x4d: groups 32, width 4 per group)."""
    if block not in ("basic", "bottleneck"):
        raise ValueError(f"block must be 'basic' or 'bottleneck', got {block!r}")
    if groups != 1 and block != "bottleneck":
        raise ValueError("groups > 1 needs block='bottleneck'")
    expansion = 1 if block == "basic" else 4
    b = _CnnBuilder(seed=seed, opset=opset, bn=bn, batch=batch, resolution=resolution,
                    head=head)
    b.g.scope = "/stem/"
    x = b.maxpool(b.conv("x", width, 7, stride=2, act="relu"))
    for stage, blocks in enumerate(layers):
        planes = width * 2 ** stage
        for i in range(blocks):
            b.g.scope = f"/layer{stage + 1}.{i}/"
            stride = 2 if stage > 0 and i == 0 else 1
            cin = b.channels(x)
            if block == "basic":
                h = b.conv(x, planes, 3, stride=stride, sparsity=sparsity)
                h = b.conv(h, planes, 3, sparsity=sparsity, act=None)
            else:
                h = b.conv(x, planes, 1, sparsity=sparsity_1x1)
                h = b.conv(h, planes, 3, stride=stride, group=groups, sparsity=sparsity if groups == 1 else 0.0)
                h = b.conv(h, planes * expansion, 1, sparsity=sparsity_1x1, act=None)
            identity = x
            if stride != 1 or cin != planes * expansion:
                identity = b.conv(x, planes * expansion, 1, stride=stride,
                                  sparsity=sparsity_1x1, act=None)
            x = b.act(b.add(h, identity), "relu")
    b.g.scope = "/classifier/"
    y = b.classifier(x, num_classes, fc_sparsity)
    doc = (f"resnet block={block} layers={list(layers)} width={width} resolution={resolution} "
           f"classes={num_classes} batch={batch} sparsity={sparsity} "
           f"sparsity_1x1={sparsity_1x1} fc_sparsity={fc_sparsity} bn={bn} head={head} "
           f"groups={groups} seed={seed} opset={opset}")
    return b.model(y, num_classes, name, doc)


def resnet18(**kwargs) -> onnx.ModelProto:
    """resnet(block="basic", layers=(2, 2, 2, 2)); keyword arguments override."""
    return resnet(**{"block": "basic", "layers": (2, 2, 2, 2), "name": "resnet18", **kwargs})


def resnet50(**kwargs) -> onnx.ModelProto:
    """resnet(block="bottleneck", layers=(3, 4, 6, 3)); keyword arguments override."""
    return resnet(**{"block": "bottleneck", "layers": (3, 4, 6, 3), "name": "resnet50",
                     **kwargs})
