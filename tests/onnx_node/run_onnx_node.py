"""run_onnx_node.py — ONNX's own backend node tests for the ops sdnnc accepts, through sdnnc and
sdnn-run.

The cases come from the installed onnx package: onnx.backend.test.loader.load_model_tests(
kind="node"), which depending on the onnx version gives each case's model and data in memory or
points at files it ships; when it has neither, they are generated into the work directory with
`python -m onnx.backend.test.cmd_tools generate-data -t OP -o DIR` (never into the source tree).
Only single-node cases of the selected ops are used.

sdnnc specializes weights at compile time, so the inputs an op needs constant (Gemm B and C,
MatMul B) become initializers holding the case's data, one model per data set. Each case then:
  * compiles with sdnnc. A rejection is SKIPPED when sdnnc's message says "unsupported" or the
    case lies outside the documented subset (non-f32 tensors, Gemm transA=1, a C that is not a
    bias); any other rejection, or a crash, is FAILED.
  * runs with sdnn-run and compares every output with the expected one: np.allclose with
    rtol 1e-3, atol 1e-5. A wrong output or a crash is FAILED.
Prints PASSED / SKIPPED (reason) / FAILED per case and closes with
`onnx_node: N passed, N failed, N skipped`; exits non-zero on a failure or when nothing passed.

  run_onnx_node.py --sdnnc build/tools/sdnnc --sdnn-run build/tools/sdnn-run \
                   --workdir build/tests/onnx_node/work [--op Gemm --op MatMul ...]
"""
from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys

import numpy as np
import onnx
from onnx import defs
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.test import loader

OPS = ("Gemm", "MatMul", "Relu", "Add", "Conv", "BatchNormalization", "Clip", "MaxPool", "AveragePool",
       "GlobalAveragePool", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Dropout",
       "Sub", "Mul", "Div", "Pow", "Erf", "Exp", "Tanh", "Sigmoid", "Sqrt", "Neg", "LeakyRelu", "Gelu",
       "ReduceMean", "Softmax", "LayerNormalization", "Transpose", "Slice", "Split", "Concat", "Gather")
# Input positions sdnnc needs as constants (weights, and shape / axes / bound operands).
CONST_INPUTS = {"Gemm": (1, 2), "MatMul": (1,), "Conv": (1, 2), "BatchNormalization": (1, 2, 3, 4),
                "Clip": (1, 2), "Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Dropout": (1, 2),
                "ReduceMean": (1,), "LayerNormalization": (1, 2), "Slice": (1, 2, 3, 4), "Split": (1,),
                "Gather": (1,)}
# Node case names start with test_<prefix>; the prefix is the lower-case op name unless listed.
NAME_PREFIX = {"BatchNormalization": "test_batchnorm", "ReduceMean": "test_reduce_mean",
               "LayerNormalization": "test_layer_normalization"}
MAX_OPSET = 21  # the newest opset sdnnc's frontend accepts
RTOL, ATOL = 1e-3, 1e-5
TIMEOUT_S = 120


def load_cases(op: str, data_root: str) -> list[tuple[str, onnx.ModelProto, list]]:
    """(name, model, data_sets) for the single-node cases of `op`; a data set is a pair
    (inputs, outputs) of numpy lists in graph order."""
    try:
        cases = loader.load_model_tests(kind="node")
    except (ValueError, OSError):
        cases = []
    if not cases:
        out_dir = os.path.join(data_root, op)
        print(f"onnx_node: the onnx package ships no node data; generating {op}'s into {out_dir}",
              flush=True)
        # generate-data -t expects DIR/node to exist already.
        os.makedirs(os.path.join(out_dir, "node"), exist_ok=True)
        subprocess.run([sys.executable, "-m", "onnx.backend.test.cmd_tools", "generate-data",
                        "-t", op, "-o", out_dir], check=True, stdout=subprocess.DEVNULL,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
        cases = loader.load_model_tests(data_dir=out_dir, kind="node")

    selected = []
    for case in sorted(cases, key=lambda c: c.name):
        # Node cases are named test_<op>...; the prefix spares loading every other model.
        if not case.name.startswith(NAME_PREFIX.get(op, f"test_{op.lower()}")):
            continue
        if case.model is not None:
            model, data_sets = case.model, list(case.data_sets)
        elif case.model_dir is not None:
            model = onnx.load(os.path.join(case.model_dir, "model.onnx"))
            data_sets = None
        else:
            continue  # a case that needs a download (model tests), never a node case
        if len(model.graph.node) != 1 or model.graph.node[0].op_type != op:
            continue
        if not all(vi.type.HasField("tensor_type") for vi in list(model.graph.input) + list(model.graph.output)):
            continue  # sequence / optional cases: sdnnc's ABI exchanges tensors only
        if data_sets is None:
            data_sets = [(_read_tensors(d, "input"), _read_tensors(d, "output"))
                         for d in sorted(glob.glob(os.path.join(case.model_dir,
                                                                "test_data_set_*")))]
        selected.append((case.name, model, data_sets))
    return selected


def _read_tensors(data_dir: str, prefix: str) -> list[np.ndarray]:
    paths = glob.glob(os.path.join(data_dir, f"{prefix}_*.pb"))
    paths.sort(key=lambda p: int(re.search(r"_(\d+)\.pb$", p).group(1)))
    return [numpy_helper.to_array(onnx.load_tensor(p)) for p in paths]


def _dims(vi: onnx.ValueInfoProto) -> list[int]:
    return [d.dim_value for d in vi.type.tensor_type.shape.dim]


def outside_subset(model: onnx.ModelProto, const_names: set[str]) -> str | None:
    """Why the case lies outside sdnnc's documented subset, or None."""
    node = model.graph.node[0]
    values = list(model.graph.input) + list(model.graph.output)
    for vi in values:
        if vi.type.tensor_type.elem_type != TensorProto.FLOAT:
            name = TensorProto.DataType.Name(vi.type.tensor_type.elem_type)
            return f"non-f32 tensor {vi.name} ({name})"
    shapes = {vi.name: _dims(vi) for vi in values}
    shapes.update({t.name: list(t.dims) for t in model.graph.initializer})
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Gemm":
        if attrs.get("transA", 0):
            return "Gemm transA=1"
        if len(node.input) > 2 and node.input[2]:
            c = shapes[node.input[2]]
            if len(c) == 2 and c[0] != 1:
                return f"Gemm C of shape {c} varies along M (not a bias)"
    return None


def at_supported_opset(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """ONNX regenerates node cases at the newest opset. When the op's definition at the case's
    opset has the same attributes, inputs and outputs as the one in force at MAX_OPSET (newer
    opsets often only add data types), the case is run at MAX_OPSET; returns the model and a
    note saying so, or the model unchanged and None."""
    default = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
    if not default or default[0].version <= MAX_OPSET:
        return model, None
    op = model.graph.node[0].op_type
    try:
        new, old = defs.get_schema(op, default[0].version), defs.get_schema(op, MAX_OPSET)
    except Exception:  # the op did not exist at MAX_OPSET
        return model, None
    signature = lambda sc: (sorted(sc.attributes), [i.name for i in sc.inputs], [o.name for o in sc.outputs])
    if new.since_version != old.since_version and signature(new) != signature(old):
        return model, None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    for o in out.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = MAX_OPSET
    return out, (f"run at opset {MAX_OPSET}: {op}'s definition at opset {default[0].version} has the "
                 f"same attributes, inputs and outputs")


def specialize(model: onnx.ModelProto, inputs: list[np.ndarray]
               ) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[str]]:
    """Turns the inputs the op needs constant into initializers with this data set's values.
    Returns the new model, the remaining runtime inputs by name, and the names made constant."""
    node = model.graph.node[0]
    wanted = {node.input[i] for i in CONST_INPUTS.get(node.op_type, ())
              if i < len(node.input) and node.input[i]}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    del out.graph.input[:]
    feeds, consts = {}, []
    for vi, value in zip(model.graph.input, inputs):
        if vi.name in wanted:
            out.graph.initializer.append(numpy_helper.from_array(value, vi.name))
            consts.append(vi.name)
        else:
            out.graph.input.append(vi)
            feeds[vi.name] = value
    return out, feeds, consts


def run(cmd: list[str]) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return None


def error_line(proc: subprocess.CompletedProcess, tool: str) -> str | None:
    """The tool's `TOOL: error: ...` message, or None when it did not print one (a crash)."""
    for line in proc.stderr.splitlines():
        if line.startswith(f"{tool}: error:"):
            return line[len(f"{tool}: error:"):].strip()
    return None


def describe_exit(proc: subprocess.CompletedProcess | None) -> str:
    if proc is None:
        return f"timed out after {TIMEOUT_S}s"
    how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
           else f"exit {proc.returncode}")
    tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
    return f"{how}: {tail}" if tail else how


def run_case(args, name: str, model: onnx.ModelProto, inputs: list[np.ndarray],
             expected: list[np.ndarray]) -> tuple[str, str]:
    """Returns (status, detail) with status PASSED, SKIPPED or FAILED."""
    case_dir = os.path.join(args.workdir, name)
    os.makedirs(case_dir, exist_ok=True)
    model, opset_note = at_supported_opset(model)
    if opset_note:
        print(f"  {name}: {opset_note}")
    spec, feeds, consts = specialize(model, inputs)
    if consts:
        print(f"  {name}: inputs {', '.join(consts)} turned into initializers "
              f"(sdnnc specializes weights at compile time)")
    model_path = os.path.join(case_dir, "model.onnx")
    so_path = os.path.join(case_dir, "model.so")
    onnx.save(spec, model_path)
    for stale in glob.glob(os.path.join(case_dir, "*.so")) + glob.glob(
            os.path.join(case_dir, "out_*.npy")):
        os.remove(stale)  # a tool that writes nothing must not pass on an earlier run's files

    proc = run([args.sdnnc, model_path, "-o", so_path])
    if proc is None or proc.returncode != 0:
        message = error_line(proc, "sdnnc") if proc is not None and proc.returncode > 0 else None
        if message is None:
            return "FAILED", f"sdnnc crashed or hung: {describe_exit(proc)}"
        message = message.removeprefix(f"{model_path}: ")
        if "unsupported" in message.lower() or outside_subset(spec, set(consts)) is not None:
            return "SKIPPED", message
        return "FAILED", f"sdnnc rejected a case within the supported subset: {message}"

    cmd = [args.sdnn_run, so_path]
    for in_name, value in feeds.items():
        path = os.path.join(case_dir, f"in_{in_name}.npy")
        np.save(path, value)
        cmd += ["--input", f"{in_name}={path}"]
    out_paths = []
    for i, vi in enumerate(spec.graph.output):
        out_paths.append(os.path.join(case_dir, f"out_{i}.npy"))
        cmd += ["--output", f"{vi.name}={out_paths[-1]}"]
    proc = run(cmd)
    if proc is None or proc.returncode != 0:
        return "FAILED", f"sdnn-run failed: {describe_exit(proc)}"

    errs = []
    for vi, path, want in zip(spec.graph.output, out_paths, expected):
        if not os.path.exists(path):
            return "FAILED", f"sdnn-run succeeded but wrote no {path}"
        got = np.load(path)
        if got.shape != want.shape:
            return "FAILED", f"output {vi.name} has shape {got.shape}, expected {want.shape}"
        errs.append(float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0)
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
            return "FAILED", f"output {vi.name} differs: max abs error {errs[-1]:.3g}"
    return "PASSED", f"max abs error {max(errs, default=0.0):.3g}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdnnc", required=True, help="path to the sdnnc binary")
    parser.add_argument("--sdnn-run", dest="sdnn_run", required=True,
                        help="path to the sdnn-run binary")
    parser.add_argument("--workdir", required=True, help="scratch directory")
    parser.add_argument("--op", action="append", choices=OPS,
                        help="op whose node tests to run (repeatable; default: all of them)")
    args = parser.parse_args()

    counts = {"PASSED": 0, "FAILED": 0, "SKIPPED": 0}
    print(f"onnx_node: onnx {onnx.__version__}, comparing at rtol {RTOL}, atol {ATOL}")
    for op in args.op or OPS:
        for case_name, model, data_sets in load_cases(op, os.path.join(args.workdir, "data")):
            for i, (inputs, expected) in enumerate(data_sets):
                name = case_name if len(data_sets) == 1 else f"{case_name}_{i}"
                status, detail = run_case(args, name, model, inputs, expected)
                counts[status] += 1
                print(f"{status} {name} ({op}): {detail}", flush=True)
    print(f"onnx_node: {counts['PASSED']} passed, {counts['FAILED']} failed, "
          f"{counts['SKIPPED']} skipped")
    return 1 if counts["FAILED"] or not counts["PASSED"] else 0


if __name__ == "__main__":
    sys.exit(main())
