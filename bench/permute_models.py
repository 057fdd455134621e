"""permute_models.py — what permute-rows does to whole models: the same ONNX file compiled twice
with sdnnc, once as is and once with --no-permute, both timed in one process, alternating.

For each model (bench/e2e_bench.py's list): compile both, count from --dump-ir what the pass did
(layers whose order the consumer undoes: `rows_permuted`; layers whose kernel scatters its rows:
`row_order`), check the two .so give the same outputs (rtol 1e-4, atol 1e-5: only the order of
float additions differs), then time them as bench/ab_models.py does (`--rounds` rounds of
`--warmup` untimed and `--iters` timed inferences each, alternating). Reports the medians and
no-permute / permuted (above 1: the permutation is faster).

  .venv/bin/python bench/permute_models.py --sdnnc build/tools/sdnnc [--model bert|mobilenet_v1|...]
      [--threads 1] [--rounds 10] [--iters 5] [--sdnnc-arg=--tune=none] [--workdir /tmp/sdnn_e2e]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab_models import compare, model_path  # noqa: E402
from e2e_bench import MODELS  # noqa: E402


def permute_counts(sdnnc: str, onnx_path: str, extra: list[str]) -> tuple[int, int]:
    dump = subprocess.run([sdnnc, onnx_path, "--emit=ir", "-o", os.devnull, "--dump-ir=after:permute-rows"] + extra,
                          check=True, capture_output=True, text=True).stderr
    return dump.count("rows_permuted = ["), dump.count("row_order = [")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdnnc", required=True)
    ap.add_argument("--model", action="append", choices=sorted(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--workdir", default="/tmp/sdnn_e2e")
    ap.add_argument("--sdnnc-arg", action="append", default=[], help="extra sdnnc argument (both compiles)")
    args = ap.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    for name in args.model or ["bert", "mobilenet_v1"]:
        onnx_path = model_path(name, args.workdir)
        absorbed, in_kernel = permute_counts(args.sdnnc, onnx_path, args.sdnnc_arg)
        print(f"{name}: {MODELS[name][2]}; permute-rows: {absorbed} layer(s) undone in the consumer, "
              f"{in_kernel} in the kernel (sdnnc {' '.join(args.sdnnc_arg) or '(defaults)'})", flush=True)
        res = compare(args.sdnnc, name, onnx_path, [("no-permute", ["--no-permute"]), ("permuted", [])],
                      args.sdnnc_arg, args.workdir, [args.threads], args.rounds, args.iters, args.warmup, exact=False)
        if res is None:
            return 1
        med, diffs = res[0][args.threads], res[1]
        print(f"  no-permute / permuted = {med['no-permute'] / med['permuted']:.3f}x  (outputs differ by at most "
              f"{diffs['permuted']:.2g})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
