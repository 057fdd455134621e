"""mutate_models.py — mutation fuzzing of sdnnc against ONNX Runtime.

Builds a set of small valid models (tests/lit/Inputs/gen.py and models/make_model.py at CI sizes),
then for each case takes one, applies one to three random mutations (an attribute's value, type or
presence, a node's inputs, op type, domain or place in the graph, an initializer's dims, type or
data, a graph input's shape or type, an output's name or declared shape, the opset; sometimes
damaged bytes; and, more often, changes that mostly keep the model valid, so that more cases get
compared: a conv's or pool's strides, pads and dilations, the input's batch and image size, a
unary activation, a weight's sparsity), compiles it for a random target and classifies what
happens:

  - sdnnc fails: it must exit 1 with one line on stderr, not an internal error, and leave no output
    file;
  - sdnnc compiles (symbolic input dims bound with --input-shape): ONNX Runtime must load the
    model too, and on one random input sdnn-run's outputs (1 or 2 threads) must match ONNX
    Runtime's (rtol 1e-3, atol 1e-4 of the largest output) in shape and value, and be finite
    where all of ONNX Runtime's are; when they do not, they must match ONNX Runtime's with its
    graph optimizations off (counted apart: its layer-norm fusion took a tensor added to the
    variance for the epsilon). ONNX Runtime failing at run time is not counted.

Anything else (a crash, a timeout, a mismatch, a model.so the loader refuses) is a finding: the
case's .onnx is kept under WORKDIR/findings and the script exits 1. The same seed gives the same
cases. CTest runs a short fixed-seed campaign; longer ones, by hand:

  .venv/bin/python tests/fuzz/mutate_models.py --sdnnc build/tools/sdnnc \\
      --sdnn-run build/tools/sdnn-run --workdir /tmp/fuzz --seed 7 --cases 2000
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import shutil
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEN = os.path.join(ROOT, "tests", "lit", "Inputs", "gen.py")
MAKE_MODEL = os.path.join(ROOT, "models", "make_model.py")

# (script, name, extra arguments): small models covering the importer's and the kernels' paths.
BASES = [
    (GEN, "mlp", []), (GEN, "conv", []), (GEN, "cnn", []), (GEN, "conv_dw_grid", []),
    (GEN, "grouped_conv", []), (GEN, "reduce_mean_0_2", []), (GEN, "layer_norm_eps_rank4", []),
    (MAKE_MODEL, "bert", ["--layers", "1", "--hidden", "32", "--heads", "2", "--ffn", "64", "--seq", "8"]),
    (MAKE_MODEL, "bert_gelu20", ["--layers", "1", "--hidden", "32", "--heads", "2", "--ffn", "64", "--seq", "8"]),
    (MAKE_MODEL, "bert_dynamic", ["--layers", "1", "--hidden", "32", "--heads", "2", "--ffn", "64", "--seq", "8",
                                  "--embedding", "--vocab", "50", "--mask", "input"]),
    (MAKE_MODEL, "mobilenet_v1", ["--width", "0.25", "--resolution", "32"]),
    (MAKE_MODEL, "mobilenet_v2", ["--width", "0.25", "--resolution", "32"]),
    (MAKE_MODEL, "resnet18", ["--width", "8", "--resolution", "32", "--layers", "1,1,1,1"]),
]
OPS = ["Relu", "Add", "Mul", "Conv", "MatMul", "Gemm", "Transpose", "Reshape", "Softmax", "Sigmoid", "Tanh",
       "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Flatten", "Concat", "Split", "Slice", "Gather",
       "Sub", "Div", "Pow", "Sqrt", "Erf", "ReduceMean", "LayerNormalization", "Identity", "Squeeze", "Unsqueeze",
       "Shape", "Cast", "BatchNormalization", "Hardmax", "Where", "Expand", "Pad", "Resize", "Einsum"]
INTS = [-(2**40), -3, -1, 0, 1, 2, 3, 5, 7, 16, 1000, 2**31, 2**62]
DTYPES = [TensorProto.INT64, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.UINT8, TensorProto.BFLOAT16,
          TensorProto.INT32, TensorProto.BOOL, TensorProto.STRING, 0, 999]
MUTATIONS = ["attr_value", "attr_drop", "attr_type", "attr_len", "attr_add", "input_drop", "input_rename",
             "input_extra", "op_type", "domain", "node_dup", "node_remove", "node_reverse", "init_dims",
             "init_dtype", "init_truncate", "init_remove", "in_shape", "in_dtype", "out_rename", "out_shape",
             "opset"]
# Mutations that mostly keep the model valid, so that more cases compile and get compared: a conv's
# or pool's strides / pads / dilations, the input's batch and image size, one unary activation for
# another, a weight's sparsity.
VALID_MUTATIONS = ["window", "in_size", "activation", "sparsity"]
UNARY = ["Relu", "Sigmoid", "Tanh", "Neg", "Identity", "Exp", "Erf"]


def names(g: onnx.GraphProto) -> list[str]:
    out = [i.name for i in g.input] + [t.name for t in g.initializer]
    for n in g.node:
        out += list(n.output)
    return out


def mutate(m: onnx.ModelProto, rng: random.Random) -> str:
    """Applies one random mutation to m in place; returns its name."""
    g = m.graph
    kind = rng.choice(MUTATIONS + VALID_MUTATIONS * 3)
    n = rng.choice(list(g.node)) if len(g.node) else None
    if kind in VALID_MUTATIONS:
        return mutate_valid(m, kind, rng)
    if kind.startswith("attr_") and n is not None and (n.attribute or kind == "attr_add"):
        if kind == "attr_add":
            n.attribute.append(rng.choice([
                helper.make_attribute("auto_pad", rng.choice(["SAME_UPPER", "SAME_LOWER", "VALID", "BOGUS"])),
                helper.make_attribute("dilations", [2, 2]), helper.make_attribute("group", rng.choice([0, 2, 4])),
                helper.make_attribute("transA", 1), helper.make_attribute("transB", 1),
                helper.make_attribute("alpha", 0.5), helper.make_attribute("beta", 2.0),
                helper.make_attribute("axis", rng.choice([-1, 0, 1, 2, 5])), helper.make_attribute("ceil_mode", 1),
                helper.make_attribute("keepdims", 0), helper.make_attribute("perm", [0, 2, 1]),
                helper.make_attribute("count_include_pad", 1), helper.make_attribute("bogus", 1)]))
            return kind
        a = rng.choice(list(n.attribute))
        if kind == "attr_value":
            if a.type == onnx.AttributeProto.INT:
                a.i = rng.choice(INTS)
            elif a.type == onnx.AttributeProto.INTS and len(a.ints):
                a.ints[rng.randrange(len(a.ints))] = rng.choice(INTS)
            elif a.type == onnx.AttributeProto.FLOAT:
                a.f = rng.choice([float("nan"), float("inf"), -1.0, 0.0, 1e30])
        elif kind == "attr_drop":
            n.attribute.remove(a)
        elif kind == "attr_type":
            n.attribute.remove(a)
            n.attribute.append(rng.choice([helper.make_attribute(a.name, 1.5), helper.make_attribute(a.name, "s"),
                                           helper.make_attribute(a.name, [1, 2, 3, 4, 5]),
                                           helper.make_attribute(a.name, 3)]))
        elif kind == "attr_len" and a.type == onnx.AttributeProto.INTS:
            if len(a.ints) and rng.random() < 0.5:
                del a.ints[-1]
            else:
                a.ints.append(1)
    elif kind == "input_drop" and n is not None and len(n.input):
        del n.input[-1]
    elif kind == "input_rename" and n is not None and len(n.input):
        n.input[rng.randrange(len(n.input))] = rng.choice(["nope", "", n.output[0] if n.output else "x"] + names(g))
    elif kind == "input_extra" and n is not None:
        n.input.append(rng.choice(names(g) + [""]))
    elif kind == "op_type" and n is not None:
        n.op_type = rng.choice(OPS)
    elif kind == "domain" and n is not None:
        n.domain = rng.choice(["com.microsoft", "bogus.domain", "ai.onnx.ml"])
    elif kind == "node_dup" and n is not None:
        g.node.insert(rng.randrange(len(g.node) + 1), copy.deepcopy(n))
    elif kind == "node_remove" and n is not None:
        g.node.remove(n)
    elif kind == "node_reverse":
        nodes = list(g.node)[::-1]
        del g.node[:]
        g.node.extend(nodes)
    elif kind.startswith("init_") and len(g.initializer):
        t = rng.choice(list(g.initializer))
        if kind == "init_dims":
            if len(t.dims) and rng.random() < 0.6:
                t.dims[rng.randrange(len(t.dims))] = rng.choice([0, 1, 2, 3, -1, 2**40])
            else:
                t.dims.append(1)
        elif kind == "init_dtype":
            t.data_type = rng.choice(DTYPES)
        elif kind == "init_truncate":
            if t.raw_data:
                t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)]
            elif len(t.float_data):
                del t.float_data[rng.randrange(len(t.float_data)):]
        elif kind == "init_remove":
            g.initializer.remove(t)
    elif kind in ("in_shape", "in_dtype") and len(g.input):
        i = rng.choice(list(g.input))
        if kind == "in_dtype":
            i.type.tensor_type.elem_type = rng.choice(DTYPES)
        elif len(i.type.tensor_type.shape.dim):
            dims = i.type.tensor_type.shape.dim
            d = dims[rng.randrange(len(dims))]
            r = rng.random()
            if r < 0.3:
                d.dim_param = "N"
            elif r < 0.5:
                d.ClearField("dim_value")
                d.ClearField("dim_param")
            else:
                d.dim_value = rng.choice([0, 1, 2, 3, 7, 1 << 40])
            if rng.random() < 0.2:
                del dims[-1]
    elif kind == "out_rename" and len(g.output):
        rng.choice(list(g.output)).name = rng.choice(["nope", ""] + names(g))
    elif kind == "out_shape" and len(g.output):
        dims = rng.choice(list(g.output)).type.tensor_type.shape.dim
        if len(dims):
            dims[rng.randrange(len(dims))].dim_value = rng.choice([0, 1, 5, 999])
    elif kind == "opset":
        m.opset_import[0].version = rng.choice([1, 6, 9, 10, 11, 12, 13, 18, 21, 30])
    return kind


def mutate_valid(m: onnx.ModelProto, kind: str, rng: random.Random) -> str:
    g = m.graph
    if kind == "window":
        nodes = [n for n in g.node if n.op_type in ("Conv", "MaxPool", "AveragePool")]
        if nodes:
            n = rng.choice(nodes)
            key = rng.choice(["strides", "pads", "dilations"])
            value = {"strides": [rng.randint(1, 3)] * 2, "pads": [rng.randint(0, 2) for _ in range(4)],
                     "dilations": [rng.randint(1, 2)] * 2}[key]
            for a in list(n.attribute):
                if a.name == key or (key == "pads" and a.name == "auto_pad"):
                    n.attribute.remove(a)
            if key == "dilations" and n.op_type == "AveragePool":
                return kind
            n.attribute.append(helper.make_attribute(key, value))
    elif kind == "in_size":
        dims = rng.choice(list(g.input)).type.tensor_type.shape.dim if len(g.input) else []
        if len(dims) == 4:
            dims[0].dim_value = rng.randint(1, 3)
            if rng.random() < 0.7:
                dims[2].dim_value, dims[3].dim_value = rng.randint(5, 40), rng.randint(5, 40)
        elif len(dims):
            dims[0].dim_value = rng.randint(1, 3)
    elif kind == "activation":
        nodes = [n for n in g.node if n.op_type in UNARY and len(n.input) == 1]
        if nodes:
            rng.choice(nodes).op_type = rng.choice(UNARY)
    elif kind == "sparsity":
        weights = [t for t in g.initializer if t.data_type == TensorProto.FLOAT and len(t.dims) >= 2]
        if weights:
            t = rng.choice(weights)
            try:
                a = numpy_helper.to_array(t).copy()
            except ValueError:  # an earlier mutation damaged it
                return kind
            keep = rng.choice([0.0, 0.01, 0.1, 0.5, 1.0])
            a[np.random.default_rng(rng.randrange(1 << 30)).random(a.shape) >= keep] = 0
            if keep == 1.0:
                a[a == 0] = 0.5
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float32), t.name))
    # Shapes declared inside or at the output may no longer hold: drop them (value_info is only a hint).
    del g.value_info[:]
    for o in g.output:
        o.type.tensor_type.ClearField("shape")
    return kind


def run(cmd: list[str], timeout: float = 120) -> tuple:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout)
        return p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        return "timeout", ""


def bind_symbolic(m: onnx.ModelProto, rng: random.Random) -> dict[str, list[int]]:
    """Shapes for the graph inputs with symbolic or unset dims (sdnnc's --input-shape): the same
    value for each dim name, 'seq' 4 / 8 / 16, others 1-3."""
    values: dict[str, int] = {}
    shapes = {}
    for i in m.graph.input:
        dims = i.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            continue
        shape = []
        for d in dims:
            if d.HasField("dim_value"):
                shape.append(d.dim_value)
            else:
                name = d.dim_param or f"?{len(values)}"
                values.setdefault(name, rng.choice([4, 8, 16]) if name == "seq" else rng.randint(1, 3))
                shape.append(values[name])
        shapes[i.name] = shape
    return shapes


def disagreement(names: list[str], ours: list[np.ndarray], ref: list) -> str:
    """'' when our outputs match the reference ones, else what differs first."""
    for name, y, r in zip(names, ours, ref):
        r = np.asarray(r, dtype=np.float64)
        if y.shape != r.shape:
            return f"output '{name}' has shape {y.shape}, ONNX Runtime's {r.shape}"
        # Where ONNX Runtime's output has infinities or NaNs (a damaged weight overflowed), ours may
        # have them elsewhere: its dense kernels multiply the pruned zeros (0 x inf = NaN), ours
        # skip them. Otherwise ours must be finite too, and close where both are.
        fin = np.isfinite(r)
        if fin.all() and not np.isfinite(y).all():
            return f"output '{name}' is not finite where ONNX Runtime's is"
        fin &= np.isfinite(y)
        scale = max(1.0, float(np.max(np.abs(r[fin]))) if fin.any() else 1.0)
        if not np.allclose(y[fin], r[fin], rtol=1e-3, atol=1e-4 * scale):
            return f"output '{name}' differs from ONNX Runtime's by {float(np.max(np.abs(y[fin] - r[fin]))):.3g}"
    return ""


def compare(args, path: str, so: str, threads: int, bound: dict[str, list[int]]) -> tuple[str, bool]:
    """sdnnc compiled the model: run it and ONNX Runtime on one random input (float inputs normal,
    integer ones in [0, 8): valid indices of any table the tests use). Returns ('', False) when they
    agree, ('', True) when ours disagrees with ONNX Runtime's optimized graph but agrees with its
    unoptimized one (its graph fusions can miss a mutation: a decomposed layer norm whose epsilon
    Add takes a tensor was fused as if it were the epsilon), else (what differs, False)."""
    import onnxruntime as ort
    ort.set_default_logger_severity(4)  # its warnings and errors about the mutated graphs are expected
    try:
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 (any load failure)
        return "sdnnc compiled a model ONNX Runtime rejects: " + str(e).splitlines()[0][-300:], False
    feeds, cmd = {}, [args.sdnn_run, so, "-t", str(threads)]
    rng = np.random.default_rng(0)
    for j, i in enumerate(sess.get_inputs()):
        shape = bound.get(i.name, i.shape)
        if any(not isinstance(d, int) or d <= 0 for d in shape) or i.type not in ("tensor(float)", "tensor(int64)"):
            return "", False  # compiled only
        if i.type == "tensor(float)":
            feeds[i.name] = rng.standard_normal(shape).astype(np.float32)
        else:
            feeds[i.name] = rng.integers(0, 8, size=shape).astype(np.int64)
        np.save(f"{so}.in{j}.npy", feeds[i.name])
        cmd += ["-i", f"{i.name}={so}.in{j}.npy"]
    try:
        ref = sess.run(None, feeds)
    except Exception:  # noqa: BLE001 (ONNX Runtime's own failure: not counted)
        return "", False
    names = [o.name for o in sess.get_outputs()]
    for j, name in enumerate(names):
        cmd += ["-o", f"{name}={so}.out{j}.npy"]
    rc, err = run(cmd)
    if rc != 0:
        return f"sdnn-run failed (exit {rc}): {err.strip()[:300]}", False
    ours = [np.load(f"{so}.out{j}.npy") for j in range(len(names))]
    problem = disagreement(names, ours, ref)
    if not problem:
        return "", False
    plain = ort.SessionOptions()
    plain.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        unoptimized = ort.InferenceSession(path, plain, providers=["CPUExecutionProvider"]).run(None, feeds)
    except Exception:  # noqa: BLE001
        return problem, False
    if not disagreement(names, ours, unoptimized):
        return "", True
    return problem, False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdnnc", required=True)
    ap.add_argument("--sdnn-run", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=100)
    args = ap.parse_args()

    # The script writes only base_*, case* and findings/ there (never deletes anything else).
    os.makedirs(os.path.join(args.workdir, "findings"), exist_ok=True)
    avx512 = "avx512f" in open("/proc/cpuinfo").read()
    bases = []
    for script, name, extra in BASES:
        path = os.path.join(args.workdir, f"base_{name}.onnx")
        subprocess.run([sys.executable, script, name, path] + extra, check=True, capture_output=True)
        bases.append((name, onnx.load(path)))

    rng = random.Random(args.seed)
    counts: dict[str, int] = {}
    findings = 0
    for case in range(args.cases):
        base, m = rng.choice(bases)
        m = copy.deepcopy(m)
        kinds = [mutate(m, rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        data = m.SerializeToString()
        if rng.random() < 0.08:  # damaged bytes: a protobuf that may not parse
            b = bytearray(data)
            for _ in range(rng.randrange(1, 8)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            if rng.random() < 0.3:
                b = b[: rng.randrange(len(b) + 1)]
            data = bytes(b)
            kinds.append("bytes")
        target, threads = rng.choice(["avx512", "avx2"]), rng.choice([1, 2])
        path = os.path.join(args.workdir, f"case{case}.onnx")
        so = path[:-5] + ".so"
        with open(path, "wb") as f:
            f.write(data)
        bound = bind_symbolic(m, rng)
        shapes = [f"--input-shape={k}={','.join(map(str, v))}" for k, v in bound.items()]
        rc, err = run([args.sdnnc, path, "-o", so, "--tune=none", "--target", target] + shapes)
        lines = [line for line in err.strip().splitlines() if line.strip()]
        problem, outcome = "", "rejected"
        if rc == "timeout":
            problem = "sdnnc timed out"
        elif rc not in (0, 1):
            problem = f"sdnnc exited {rc}"
        elif rc == 1:
            if os.path.exists(so):
                problem = "sdnnc failed but left an output file"
            elif len(lines) != 1 or not lines[0].startswith("sdnnc: error: "):
                problem = "sdnnc failed without a one-line error"
            elif "internal error" in lines[0]:
                problem = "internal error"
        else:
            outcome = "compiled"
            if target == "avx512" and not avx512:
                outcome = "compiled (not run: no AVX-512 here)"
            else:
                problem, ort_fusion = compare(args, path, so, threads, bound)
                if ort_fusion:
                    outcome = "compiled (ONNX Runtime's fused graph disagrees, its unfused one agrees)"
        counts[outcome] = counts.get(outcome, 0) + 1
        if problem:
            findings += 1
            kept = os.path.join(args.workdir, "findings", f"case{case}.onnx")
            shutil.copy(path, kept)
            print(f"FINDING case {case} ({base}; {', '.join(kinds)}; {target}, {threads} thread(s)): {problem}\n"
                  f"    {lines[0] if lines else ''}\n    kept: {kept}", flush=True)
        for f in os.listdir(args.workdir):
            if f.startswith(f"case{case}."):
                os.remove(os.path.join(args.workdir, f))
    print(f"mutate_models: seed {args.seed}, {args.cases} cases: {counts}, {findings} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
