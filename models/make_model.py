"""make_model.py — writes one of the generated, pruned example models as an ONNX file.

  python models/make_model.py --list                       # names, what they are, their options
  python models/make_model.py NAME OUT.onnx [--key value ...] [--run] [--runs N]
                              [--threads N] [--bind dim=size,...]

NAME is one of MODELS below; OUT.onnx "-" builds and checks the model without writing it.
--key value sets any keyword of the builder (dashes or underscores; bools as 1/0/true/false, a
bare --key means true; sequences comma-separated, MobileNet V2 settings as "t,c,n,s;t,c,n,s").
The default options build the full-size (bench) model; examples of CI-sized ones:

  make_model.py bert /tmp/bert.onnx --layers 2 --hidden 64 --heads 4 --ffn 256 --seq 16 \\
      --sparsity 0.9
  make_model.py bert_dynamic /tmp/bd.onnx --layers 1 --hidden 64 --heads 4 --ffn 256 --seq 16
  make_model.py mobilenet_v1 /tmp/mnv1.onnx --width 0.25 --resolution 32
  make_model.py resnet50 /tmp/r50.onnx --width 8 --resolution 32 --layers 1,1,1,1

Every model passes onnx.checker (full check) before it is written. The summary lists inputs,
output, node counts per op type and the pruned weights' sparsity. --run also runs the model once
(plus --runs timed runs, default 3) on ONNX Runtime's CPU provider with --threads intra-op
threads (default 1) on sdnn_models.random_inputs, binding symbolic dims from --bind or the
model's "sdnn.default_bind" metadata, and prints the output shape and median time.
"""
from __future__ import annotations

import collections
import inspect
import os
import sys
import time

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import bert_models  # noqa: E402
import cnn_models  # noqa: E402
import sdnn_models  # noqa: E402

# name -> (builder, fixed defaults (overridable), description)
MODELS = {
    "bert": (bert_models.bert, {},
             "BERT encoder, opset 14: decomposed LayerNorm, erf GELU (BERT-base, 12 layers, "
             "seq 128, 95% sparse)"),
    "bert_ln17": (bert_models.bert, {"opset": 17, "name": "bert_ln17"},
                  "BERT encoder, opset 17: LayerNormalization op, erf GELU"),
    "bert_gelu20": (bert_models.bert, {"opset": 20, "name": "bert_gelu20"},
                    "BERT encoder, opset 20: LayerNormalization and Gelu ops"),
    "bert_dynamic": (bert_models.bert, {"dynamic": True, "name": "bert_dynamic"},
                     "BERT encoder with dim_params batch and seq; Reshape targets from "
                     "Shape->Gather->Unsqueeze->Concat (bind with --input-shape)"),
    "mobilenet_v1": (cnn_models.mobilenet_v1, {},
                     "MobileNet V1 1.0/224, BN folded, 90%-sparse pointwise convs and classifier"),
    "mobilenet_v2": (cnn_models.mobilenet_v2, {},
                     "MobileNet V2 1.0/224, ReLU6 as Clip, 90%-sparse 1x1 convs and classifier"),
    "resnet18": (cnn_models.resnet, {"block": "basic", "layers": (2, 2, 2, 2),
                                     "name": "resnet18"},
                 "ResNet-18 (basic blocks), 90%-sparse 3x3 and 1x1 convs and classifier"),
    "resnet50": (cnn_models.resnet, {"block": "bottleneck", "layers": (3, 4, 6, 3),
                                     "name": "resnet50"},
                 "ResNet-50 (bottleneck blocks), 90%-sparse 3x3 and 1x1 convs and classifier"),
}
TOOL_FLAGS = {"run": False, "runs": 3, "threads": 1, "bind": ""}


def _options(name: str) -> dict:
    """The builder's keyword options with this name's defaults."""
    builder, fixed, _ = MODELS[name]
    opts = {p.name: p.default for p in inspect.signature(builder).parameters.values()
            if p.default is not inspect.Parameter.empty}
    opts.update(fixed)
    return opts


def _coerce(key: str, text: str, default):
    try:
        if isinstance(default, bool):
            low = text.lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return low in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None:
            return float(text)
        if isinstance(default, (tuple, list)):
            if default and isinstance(default[0], (tuple, list)):
                return tuple(tuple(int(v) for v in part.split(",")) for part in text.split(";"))
            return tuple(int(v) for v in text.split(","))
        return text
    except ValueError:
        raise SystemExit(f"--{key}: cannot read {text!r} as {type(default).__name__}")


def _parse(argv: list[str]) -> tuple[str, str, dict, dict]:
    if len(argv) < 2 or argv[0].startswith("--") or argv[1].startswith("--"):
        raise SystemExit("usage: make_model.py NAME OUT.onnx [--key value ...] (or --list)")
    name, out, rest = argv[0], argv[1], argv[2:]
    if name not in MODELS:
        raise SystemExit(f"unknown model {name!r}; one of: {', '.join(MODELS)}")
    opts = _options(name)
    kwargs, tool = {}, dict(TOOL_FLAGS)
    i = 0
    while i < len(rest):
        if not rest[i].startswith("--"):
            raise SystemExit(f"expected --key, got {rest[i]!r}")
        key = rest[i][2:].replace("-", "_")
        if i + 1 < len(rest) and not rest[i + 1].startswith("--"):
            text, i = rest[i + 1], i + 2
        else:
            text, i = "true", i + 1
        if key in tool:
            tool[key] = _coerce(key, text, TOOL_FLAGS[key])
        elif key in opts:
            kwargs[key] = _coerce(key, text, opts[key])
        else:
            raise SystemExit(f"{name} has no option --{key}; options: {', '.join(opts)}")
    return name, out, kwargs, tool


def _dims(vi) -> list:
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def summary(model: onnx.ModelProto) -> str:
    g = model.graph
    ops = collections.Counter(n.op_type for n in g.node)
    lines = [f"{g.name}: opset {model.opset_import[0].version}, {len(g.node)} nodes "
             f"({len(g.node) - ops['Constant']} without Constant), {len(g.initializer)} "
             f"initializers"]
    for vi in g.input:
        dtype = onnx.TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
        lines.append(f"  input  {vi.name} {dtype} {_dims(vi)}")
    for vi in g.output:
        lines.append(f"  output {vi.name} {_dims(vi)}")
    lines.append("  ops: " + ", ".join(f"{op} {n}" for op, n in sorted(ops.items())))
    sparse, total, nnz = [], 0, 0
    for t in g.initializer:
        if t.name.startswith("W") and len(t.dims) >= 2:
            a = numpy_helper.to_array(t)
            z = float(np.count_nonzero(a == 0)) / a.size
            if z > 0:
                sparse.append(z)
                total += a.size
                nnz += int(np.count_nonzero(a))
    if sparse:
        lines.append(f"  pruned weights: {len(sparse)} tensors, sparsity {min(sparse):.4f}.."
                     f"{max(sparse):.4f}, {nnz} nonzeros of {total}")
    return "\n".join(lines)


def run(model: onnx.ModelProto, bind_text: str, runs: int, threads: int) -> str:
    import onnxruntime

    props = {p.key: p.value for p in model.metadata_props}
    bind_text = bind_text or props.get("sdnn.default_bind", "")
    bind = {k: int(v) for k, v in (kv.split("=") for kv in bind_text.split(",") if kv)}
    feeds = sdnn_models.random_inputs(model, seed=1, bind=bind)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    t0 = time.perf_counter()
    y = session.run(None, feeds)[0]
    first = time.perf_counter() - t0
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        session.run(None, feeds)
        times.append(time.perf_counter() - t0)
    med = f", median of {runs} runs {np.median(times) * 1e3:.1f} ms" if times else ""
    return (f"  onnxruntime ({threads} thread{'s' if threads > 1 else ''}): y {list(y.shape)} "
            f"finite={bool(np.isfinite(y).all())} std={float(y.std()):.4g}; first run "
            f"{first * 1e3:.1f} ms{med}" + (f" [bind {bind}]" if bind else ""))


def _show(v) -> str:
    if isinstance(v, (tuple, list)):
        return ";".join(_show(p) for p in v) if v and isinstance(v[0], (tuple, list)) \
            else ",".join(map(str, v))
    return str(v)


def list_models() -> str:
    lines = []
    for name, (builder, _, desc) in MODELS.items():
        opts = " ".join(f"--{k} {_show(v)}" for k, v in _options(name).items())
        lines.append(f"{name}: {desc}\n    builder {builder.__module__}.{builder.__name__}; "
                     f"defaults: {opts}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] == "--list":
        print(list_models())
        return 0
    name, out, kwargs, tool = _parse(argv)
    builder, fixed, _ = MODELS[name]
    t0 = time.perf_counter()
    try:
        model = builder(**{**fixed, **kwargs})
    except ValueError as e:
        raise SystemExit(f"{name}: {e}")
    built = time.perf_counter() - t0
    print(summary(model))
    print(f"  built and checked in {built:.1f} s")
    if out != "-":
        onnx.save(model, out)
        print(f"  wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB)")
    if tool["run"]:
        print(run(model, tool["bind"], tool["runs"], tool["threads"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
