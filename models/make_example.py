"""make_example.py — the bundled example for tools/quickstart.sh: a pruned 3-layer MLP.

  python models/make_example.py generate DIR   # DIR/mlp.onnx, DIR/input.npy, DIR/reference.npy
  python models/make_example.py compare DIR    # summarizes DIR/output.npy (written by sdnn-run)
                                               # and its max abs difference to DIR/reference.npy

The model is 512 -> 512 -> 256 -> 10 (Gemm with transB=1, as PyTorch exports Linear; Relu between
layers), every weight matrix magnitude-pruned to 90%, batch 4. reference.npy is ONNX Runtime's
output for input.npy.
"""
import argparse
import os
import sys

import numpy as np
import onnx

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdnn_models  # noqa: E402

WIDTHS = [512, 512, 256, 10]
BATCH = 4
SPARSITY = 0.9
# compare fails above this max abs difference (the golden tests hold sdnnc to much less).
TOLERANCE = 1e-4


def generate(out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    model = sdnn_models.mlp(WIDTHS, style="gemm", batch=BATCH, sparsity=SPARSITY, seed=2024,
                            name="example_mlp")
    inputs = sdnn_models.random_inputs(model, seed=7)
    reference = sdnn_models.onnxruntime_outputs(model, inputs)["y"]
    onnx.save(model, os.path.join(out_dir, "mlp.onnx"))
    np.save(os.path.join(out_dir, "input.npy"), inputs["x"])
    np.save(os.path.join(out_dir, "reference.npy"), reference)
    nnz = sum(int(np.count_nonzero(onnx.numpy_helper.to_array(t)))
              for t in model.graph.initializer if t.name.startswith("W"))
    print(f"wrote {out_dir}/mlp.onnx: MLP {'-'.join(map(str, WIDTHS))}, "
          f"{SPARSITY:.0%} pruned ({nnz} nonzero weights), input x {inputs['x'].shape}")


def compare(out_dir: str) -> int:
    output = np.load(os.path.join(out_dir, "output.npy"))
    reference = np.load(os.path.join(out_dir, "reference.npy"))
    if output.shape != reference.shape:
        print(f"output shape {output.shape} != ONNX Runtime's {reference.shape}")
        return 1
    diff = float(np.max(np.abs(output.astype(np.float64) - reference)))
    np.set_printoptions(precision=4, suppress=True)
    print(f"sdnn-run output y {output.shape}, first row:\n  {output[0]}")
    print(f"argmax per row: sdnnc {output.argmax(axis=1).tolist()}, "
          f"ONNX Runtime {reference.argmax(axis=1).tolist()}")
    print(f"max abs difference vs ONNX Runtime: {diff:.3g}")
    if diff > TOLERANCE:
        print(f"FAIL: difference above {TOLERANCE}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["generate", "compare"])
    parser.add_argument("dir", help="directory holding the example's files")
    args = parser.parse_args()
    if args.command == "generate":
        generate(args.dir)
        return 0
    return compare(args.dir)


if __name__ == "__main__":
    sys.exit(main())
