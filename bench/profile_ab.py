"""profile_ab.py — per-step A/B of compiled models: SDNN_PROFILE runs of two or more model.so,
alternating, with the median of each step's time over the rounds.

A whole-model A/B (bench/ab_models.py) says whether a change is faster; this says where. Each round
runs every variant once through `sdnn-run --iters N` with SDNN_PROFILE=1 (the runtime then prints
the mean time of every step when the context is freed), in an order reversed every other round so
the VM's drift hits every variant alike. The variants must be compiles of the same model (same
steps, same order; the kernel plans may differ). Prints the median total per run and, for every
step above --min-us in some variant, the medians and first / variant (above 1: the variant is
faster), with the variants' kernel plans.

  .venv/bin/python bench/profile_ab.py --sdnn-run build/tools/sdnn-run --input x.npy \\
      --rounds 4 old=/tmp/old/resnet50.so new=/tmp/new/resnet50.so [--threads 2]

The input is one .npy for a single-input model (`sdnn-run --info` lists the inputs).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

STEP = re.compile(r"\s*(\d+) (\S+)\s+([\d.]+) us\s+[\d.]+%\s*(.*)")
TOTAL = re.compile(r"([\d.]+) us per run")


def profile(sdnn_run: str, so: str, npy: str, iters: int, threads: int) -> tuple[float, dict]:
    """One SDNN_PROFILE run: (us per run, {step: (kind, us, detail)})."""
    proc = subprocess.run([sdnn_run, so, "-i", npy, "-n", str(iters), "-t", str(threads)],
                          env=dict(os.environ, SDNN_PROFILE="1"), capture_output=True, text=True)
    total = TOTAL.search(proc.stderr)
    if proc.returncode != 0 or not total:
        sys.exit(f"profile_ab.py: {so}: sdnn-run failed ({proc.returncode}):\n{proc.stderr}")
    steps = {}
    for line in proc.stderr.splitlines()[1:]:
        m = STEP.match(line)
        if m:
            steps[int(m.group(1))] = (m.group(2), float(m.group(3)), m.group(4))
    return float(total.group(1)), steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sdnn-run", required=True, help="the sdnn-run binary")
    ap.add_argument("--input", required=True, help=".npy input of the model")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=20, help="inferences per sdnn-run (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-us", type=float, default=100.0, help="list steps at least this long in some variant")
    ap.add_argument("variants", nargs="+", metavar="NAME=MODEL.so")
    args = ap.parse_args()
    variants = []
    for v in args.variants:
        name, sep, so = v.partition("=")
        if not sep or not os.path.isfile(so):
            sys.exit(f"profile_ab.py: '{v}': expected NAME=MODEL.so of an existing file")
        variants.append((name, so))
    if len(variants) < 2:
        sys.exit("profile_ab.py: give at least two variants")

    runs = {name: [] for name, _ in variants}
    for r in range(args.rounds):
        for name, so in (variants if r % 2 == 0 else variants[::-1]):
            runs[name].append(profile(args.sdnn_run, so, args.input, args.iters, args.threads))
    names = [name for name, _ in variants]
    steps = sorted(runs[names[0]][0][1])
    for name in names[1:]:
        if sorted(runs[name][0][1]) != steps or any(runs[name][0][1][i][0] != runs[names[0]][0][1][i][0] for i in steps):
            sys.exit(f"profile_ab.py: {name} does not have {names[0]}'s steps (compiles of different models?)")

    def med(name: str, i: int | None) -> float:
        return statistics.median(t if i is None else s[i][1] for t, s in runs[name])

    print(f"{args.threads} thread(s), {args.rounds} rounds x {args.iters} inferences; medians in us; "
          f"{names[0]} / variant above 1: the variant is faster")
    print("total per run  " + "  ".join(f"{n} {med(n, None):.0f}" for n in names) + "  " +
          "  ".join(f"{med(names[0], None) / med(n, None):.3f}x" for n in names[1:]))
    print(f"{'step':>4} {'kind':<16}" + "".join(f"{n:>10}" for n in names) + "  ratios  plans")
    for i in steps:
        vals = [med(n, i) for n in names]
        if max(vals) < args.min_us:
            continue
        ratios = " ".join(f"{vals[0] / v:.2f}" for v in vals[1:])
        plans = " | ".join(runs[n][0][1][i][2] for n in names if runs[n][0][1][i][2])
        print(f"{i:>4} {runs[names[0]][0][1][i][0]:<16}" + "".join(f"{v:>10.1f}" for v in vals) + f"  {ratios}  {plans}")


if __name__ == "__main__":
    main()
