"""permute_models.py — what permute-rows does to whole models: the same ONNX file compiled twice
with sdnnc, once as is and once with --no-permute, both timed in one process, alternating.

For each model (bench/e2e_bench.py's list): compile both, count from --dump-ir what the pass did
(layers whose order the consumer undoes: `rows_permuted`; layers whose kernel scatters its rows:
`row_order`), check the two .so give the same outputs (rtol 1e-4, atol 1e-5: only the order of
float additions differs), then time `--rounds` rounds in which each .so runs `--warmup` untimed
and `--iters` timed inferences, the order alternating round by round. Reports the medians and
no-permute / permuted (above 1: the permutation is faster).

  .venv/bin/python bench/permute_models.py --sdnnc build/tools/sdnnc [--model bert|mobilenet_v1|...]
      [--threads 1] [--rounds 10] [--iters 5] [--sdnnc-arg=--tune=none] [--workdir /tmp/sdnn_e2e]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import onnx

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from e2e_bench import MODELS, REPO, M, SdnnModel, percentile  # noqa: E402


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
        config, gen_extra, desc = MODELS[name]
        onnx_path = os.path.join(args.workdir, f"{name}.onnx")
        if not os.path.exists(onnx_path):
            subprocess.run([sys.executable, os.path.join(REPO, "models", "make_model.py"), config, onnx_path] + gen_extra,
                           check=True, stdout=subprocess.DEVNULL)
        sos = {}
        for variant, flags in (("permuted", []), ("no-permute", ["--no-permute"])):
            sos[variant] = os.path.join(args.workdir, f"{name}.{variant}.so")
            subprocess.run([args.sdnnc, onnx_path, "-o", sos[variant]] + args.sdnnc_arg + flags, check=True)
        absorbed, in_kernel = permute_counts(args.sdnnc, onnx_path, args.sdnnc_arg)
        print(f"{name}: {desc}; permute-rows: {absorbed} layer(s) undone in the consumer, "
              f"{in_kernel} in the kernel (sdnnc {' '.join(args.sdnnc_arg) or '(defaults)'})", flush=True)

        model = onnx.load(onnx_path)
        feeds = M.random_inputs(model, seed=1)
        ins = [np.ascontiguousarray(feeds[i.name], dtype=np.float32) for i in model.graph.input if i.name in feeds]
        runners, outs = {}, {}
        for variant, path in sos.items():
            sd = SdnnModel(path, args.threads)
            outs[variant] = [np.zeros(tuple(d.dim_value for d in o.type.tensor_type.shape.dim), dtype=np.float32)
                             for o in model.graph.output]
            sd.bind(ins, outs[variant])
            sd.run()
            runners[variant] = sd
        diff = max(float(np.max(np.abs(a - b))) for a, b in zip(outs["permuted"], outs["no-permute"]))
        if not all(np.allclose(a, b, rtol=1e-4, atol=1e-5) for a, b in zip(outs["permuted"], outs["no-permute"])):
            print(f"  MISMATCH between the permuted and the unpermuted model: max abs {diff:.3g}", file=sys.stderr)
            return 1
        times = {v: [] for v in runners}
        for r in range(args.rounds):
            order = list(runners) if r % 2 == 0 else list(reversed(runners))
            for v in order:
                for _ in range(args.warmup):
                    runners[v].run()
                for _ in range(args.iters):
                    t = time.perf_counter()
                    runners[v].run()
                    times[v].append((time.perf_counter() - t) * 1e3)
        med = {v: statistics.median(t) for v, t in times.items()}
        for v, t in times.items():
            print(f"  {args.threads} thread(s) {v:10s} median {med[v]:8.2f} ms  p10 {percentile(t, 0.1):8.2f}  "
                  f"p90 {percentile(t, 0.9):8.2f}  ({len(t)} runs)", flush=True)
        print(f"  no-permute / permuted = {med['no-permute'] / med['permuted']:.3f}x  (outputs differ by at most "
              f"{diff:.2g})", flush=True)
        for sd in runners.values():
            sd.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
