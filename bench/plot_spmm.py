#!/usr/bin/env python3
"""plot_spmm.py -- plots and a summary of the SpMM grid (issue 4) from sdnn_bench_spmm CSV files.

    .venv/bin/python bench/plot_spmm.py build/spmm_grid_t1.csv build/spmm_grid_t2.csv \
        --out-dir build/spmm_grid [--markdown build/spmm_grid/summary.md]

Reads one or more CSV files written by `sdnn_bench_spmm --csv` (any mix of thread counts; rows
without a `threads` column count as one thread), keeps the rows whose status is `ok`, and
computes everything from their `median_us` (and `nnz`, `n`): nothing here is typed in by hand.
A problem is (m, k, n, sparsity, isa, threads). When several rows give the same problem and peer
(a sub-grid run again), the row from the file named last wins and a note says so.

Writes into --out-dir:
  spmm_speedup_cdf_t<T>.png        like SparseDNN's figure 4: for each peer, the fraction of grid
                                   problems on which the sdnn peer's speedup over it is <= x
  spmm_speedup_vs_sparsity_t<T>.png like figure 6: speedup over each peer against sparsity, the
                                   geometric mean over the shapes at that sparsity (all N, and
                                   one panel per N)
  spmm_threads_scaling.png          (when 1 and 2 threads are both present) CDF of each peer's
                                   2-thread over 1-thread speedup, N >= 512
  spmm_threads_speedup.csv / .md    per problem and peer: 1-thread and 2-thread median and speedup
and prints a Markdown summary (also written to --markdown FILE when given): the issue-4 targets
(geometric-mean speedup over libxsmm, break-even sparsity against dense oneDNN per N, speedup over
oneDNN at 95 %, GFLOP/s at 512x512x128 90 %, 2-thread speedup for N >= 512).
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

# Matplotlib only for the PNGs; the summary needs nothing beyond the standard library.
try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError:  # pragma: no cover - reported at run time
    plt = None

PEER_ORDER = ["sdnn-tuned", "sdnn", "sdnn-perm", "sdnn-dense", "sdnn-rm", "libxsmm", "dnnl", "openblas"]
PEER_LABEL = {
    "sdnn-tuned": "sdnn (permuted + --tune=fast)",
    "sdnn": "sdnn (default plan)",
    "sdnn-perm": "sdnn (permuted)",
    "sdnn-dense": "sdnn dense kernel",
    "sdnn-rm": "sdnn (row-major, packing timed)",
    "libxsmm": "libxsmm spmdm",
    "dnnl": "oneDNN sgemm (dense)",
    "openblas": "OpenBLAS sgemm (dense)",
}
COLORS = {
    "sdnn-tuned": "#1b9e77",
    "sdnn": "#66a61e",
    "sdnn-perm": "#a6761d",
    "sdnn-dense": "#666666",
    "sdnn-rm": "#e6ab02",
    "libxsmm": "#d95f02",
    "dnnl": "#7570b3",
    "openblas": "#e7298a",
}
TARGETS = {
    "libxsmm_geomean": 3.0,
    "breakeven_max": 0.70,
    "dnnl_at_95": 5.0,
    "gflops_512": 150.0,
    "threads_2_over_1": 1.8,
}


def geomean(values):
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt(v, digits=2, suffix=""):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}{suffix}"


def peer_sort_key(p):
    return (PEER_ORDER.index(p) if p in PEER_ORDER else len(PEER_ORDER), p)


class Grid:
    """All ok results: times[(problem, peer)] = median microseconds; problem = (m, k, n, sp, isa, T)."""

    def __init__(self):
        self.times = {}
        self.nnz = {}
        self.gflops_col = {}
        self.pct_core = {}
        self.plan = {}  # sdnn peers: "plan spmm avx512 28x1 ..." from the details column
        self.failed = []  # (problem, peer, reason)
        self.overridden = 0
        self.rows = 0

    def load(self, path):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"m", "k", "n", "sparsity", "nnz", "isa", "peer", "status", "median_us"}
            missing = need - set(reader.fieldnames or [])
            if missing:
                sys.exit(f"plot_spmm.py: {path}: not an sdnn_bench_spmm CSV (missing columns {sorted(missing)})")
            for row in reader:
                self.rows += 1
                threads = int(row["threads"]) if row.get("threads") else 1
                problem = (int(row["m"]), int(row["k"]), int(row["n"]), round(float(row["sparsity"]), 6),
                           row["isa"], threads)
                peer = row["peer"]
                key = (problem, peer)
                if row["status"] != "ok" or not row["median_us"]:
                    self.failed.append((problem, peer, row.get("failure", "")))
                    self.times.pop(key, None)
                    continue
                if key in self.times:
                    self.overridden += 1
                self.times[key] = float(row["median_us"])
                self.nnz[problem] = int(row["nnz"])
                if row.get("gflops_nz"):
                    self.gflops_col[key] = float(row["gflops_nz"])
                if row.get("pct_core"):
                    self.pct_core[key] = float(row["pct_core"])
                details = row.get("details") or ""
                if details.startswith("plan "):
                    self.plan[key] = details.split(";")[0]

    def problems(self, threads=None):
        out = sorted({p for (p, _) in self.times})
        return [p for p in out if threads is None or p[5] == threads]

    def peers(self):
        return sorted({peer for (_, peer) in self.times}, key=peer_sort_key)

    def thread_counts(self):
        return sorted({p[5] for p in self.problems()})

    def t(self, problem, peer):
        return self.times.get((problem, peer))

    def speedup(self, problem, ours, peer):
        """t_peer / t_ours: how many times faster `ours` is than `peer` on this problem."""
        a, b = self.t(problem, ours), self.t(problem, peer)
        if a is None or b is None or a <= 0:
            return None
        return b / a

    def gflops(self, problem, peer):
        t = self.t(problem, peer)
        if t is None:
            return None
        return 2.0 * self.nnz[problem] * problem[2] / (t * 1e-6) / 1e9


def speedups_by_peer(grid, ours, threads):
    """{peer: [(problem, speedup)]} over the problems of one thread count."""
    out = defaultdict(list)
    for problem in grid.problems(threads):
        for peer in grid.peers():
            if peer == ours:
                continue
            s = grid.speedup(problem, ours, peer)
            if s is not None:
                out[peer].append((problem, s))
    return out


# ---------------------------------------------------------------------------------------------
# Figures.


def ecdf(sorted_values):
    """Step points of the empirical CDF, starting from 0 at the smallest value."""
    xs = [sorted_values[0]] + list(sorted_values)
    ys = [0.0] + [(i + 1) / len(sorted_values) for i in range(len(sorted_values))]
    return xs, ys


def plot_cdf(grid, ours, threads, path):
    data = speedups_by_peer(grid, ours, threads)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for peer in sorted(data, key=peer_sort_key):
        values = sorted(s for _, s in data[peer])
        xs, ys = ecdf(values)
        ax.step(xs, ys, where="post", color=COLORS.get(peer), linewidth=1.8,
                label=f"vs {PEER_LABEL.get(peer, peer)} (geomean {geomean(values):.2f}x, {len(values)} problems)")
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"speedup of {ours} (t_peer / t_{ours}), log scale")
    ax.set_ylabel("fraction of grid problems with speedup <= x")
    ax.set_title(f"SpMM grid, {threads} thread(s): CDF of {ours}'s speedup over each peer")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_vs_sparsity(grid, ours, threads, path):
    data = speedups_by_peer(grid, ours, threads)
    ns = sorted({p[2] for p in grid.problems(threads)})
    panels = [("all N", None)] + [(f"N = {n}", n) for n in ns]
    cols = len(panels)
    fig, axes = plt.subplots(1, cols, figsize=(4.0 * cols, 4.6), sharey=True, squeeze=False)
    for ax, (title, n) in zip(axes[0], panels):
        for peer in sorted(data, key=peer_sort_key):
            by_sp = defaultdict(list)
            for problem, s in data[peer]:
                if n is None or problem[2] == n:
                    by_sp[problem[3]].append(s)
            if not by_sp:
                continue
            xs = sorted(by_sp)
            ys = [geomean(by_sp[x]) for x in xs]
            ax.plot(xs, ys, marker="o", color=COLORS.get(peer), label=f"vs {PEER_LABEL.get(peer, peer)}")
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xlabel("sparsity")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"speedup of {ours} (geomean over shapes)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle(f"SpMM grid, {threads} thread(s): {ours}'s speedup against sparsity")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=130)
    plt.close(fig)


def thread_pairs(grid, t_low=1, t_high=2):
    """[(problem_low, peer, t_low_us, t_high_us)] for every problem and peer measured at both."""
    out = []
    for problem in grid.problems(t_low):
        high = problem[:5] + (t_high,)
        for peer in grid.peers():
            a, b = grid.t(problem, peer), grid.t(high, peer)
            if a is not None and b is not None:
                out.append((problem, peer, a, b))
    return out


def plot_thread_scaling(pairs, path, n_min=512):
    if not any(problem[2] >= n_min for problem, _, _, _ in pairs):
        n_min = min(problem[2] for problem, _, _, _ in pairs)  # a sub-grid without N >= 512: all N
    by_peer = defaultdict(list)
    for problem, peer, a, b in pairs:
        if problem[2] >= n_min:
            by_peer[peer].append(a / b)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for peer in sorted(by_peer, key=peer_sort_key):
        values = sorted(by_peer[peer])
        xs, ys = ecdf(values)
        ax.step(xs, ys, where="post", color=COLORS.get(peer), linewidth=1.8,
                label=f"{PEER_LABEL.get(peer, peer)} (geomean {geomean(values):.2f}x, {len(values)} problems)")
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.axvline(2.0, color="gray", linewidth=0.8, linestyle=":")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("2-thread speedup over 1 thread (t_1 / t_2)")
    ax.set_ylabel(f"fraction of problems (N >= {n_min}) with speedup <= x")
    ax.set_title(f"SpMM grid: 2 threads over 1 thread, N >= {n_min}")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Summary.


def problem_text(p):
    return f"{p[0]}x{p[1]}x{p[2]} @{p[3]:g}"


def breakeven(grid, ours, peer, threads, n):
    """Lowest measured sparsity from which `ours` beats `peer` at every higher measured sparsity:
    (a) in the geometric mean over the shapes with this N, (b) on every shape. Returns the two
    sparsities (None when never) and the lowest sparsity measured."""
    by_sp = defaultdict(list)
    for problem in grid.problems(threads):
        if problem[2] != n:
            continue
        s = grid.speedup(problem, ours, peer)
        if s is not None:
            by_sp[problem[3]].append(s)
    if not by_sp:
        return None, None, None, {}
    sps = sorted(by_sp)

    def lowest_from(ok):
        first = None
        for sp in reversed(sps):
            if ok(by_sp[sp]):
                first = sp
            else:
                break
        return first

    geo = lowest_from(lambda v: geomean(v) > 1.0)
    every = lowest_from(lambda v: min(v) > 1.0)
    return geo, every, sps[0], {sp: geomean(v) for sp, v in by_sp.items()}


def breakeven_text(sp, lowest):
    if sp is None:
        return "never (slower at the highest sparsity measured)"
    if sp == lowest:
        return f"<= {sp:g} (faster at every sparsity measured)"
    return f"{sp:g}"


def met(value, target, higher=True):
    if value is None or not math.isfinite(value):
        return "n/a"
    return "yes" if (value >= target if higher else value <= target) else "**no**"


def summary(grid, ours, files):
    lines = []
    out = lines.append
    out(f"SpMM grid summary, computed by bench/plot_spmm.py from {', '.join(files)}: "
        f"{len(grid.times)} ok results, {len(grid.failed)} failed.")
    if grid.overridden:
        out(f"({grid.overridden} results appeared more than once; the file named last wins.)")
    out("")
    for threads in grid.thread_counts():
        probs = grid.problems(threads)
        data = speedups_by_peer(grid, ours, threads)
        out(f"### {threads} thread(s): {len(probs)} problems")
        out("")
        out(f"Speedup of `{ours}` (t_peer / t_{ours}) over each peer, across the grid:")
        out("")
        out("| peer | problems | geomean | min | median | max | faster on |")
        out("|---|---|---|---|---|---|---|")
        for peer in sorted(data, key=peer_sort_key):
            v = sorted(s for _, s in data[peer])
            med = v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])
            faster = sum(1 for s in v if s > 1.0)
            out(f"| {peer} | {len(v)} | {fmt(geomean(v), suffix='x')} | {fmt(v[0], suffix='x')} | {fmt(med, suffix='x')} | {fmt(v[-1], suffix='x')} | "
                f"{faster}/{len(v)} |")
        out("")

        # Targets (issue 4; stated for one thread).
        lib = [s for _, s in data.get("libxsmm", [])]
        g_lib = geomean(lib)
        out(f"Targets (issue 4, stated for one thread; this table: {threads} thread(s)):")
        out("")
        out("| target | measured | met |")
        out("|---|---|---|")
        out(f"| geomean speedup over libxsmm >= {TARGETS['libxsmm_geomean']:g}x | {fmt(g_lib, suffix='x')} over {len(lib)} "
            f"problems | {met(g_lib, TARGETS['libxsmm_geomean'])} |")
        for n in sorted({p[2] for p in probs}):
            geo, every, lowest, _ = breakeven(grid, ours, "dnnl", threads, n)
            if lowest is None:
                out(f"| break-even vs dense oneDNN <= {TARGETS['breakeven_max']:g}, N = {n} | n/a (no dnnl data) | n/a |")
                continue
            if geo is not None and geo <= TARGETS["breakeven_max"]:
                verdict = "yes"
            elif geo is not None and geo == lowest:
                verdict = f"n/a (nothing measured below {lowest:g})"
            else:
                verdict = "**no**"
            out(f"| break-even vs dense oneDNN <= {TARGETS['breakeven_max']:g}, N = {n} | geomean over shapes: "
                f"{breakeven_text(geo, lowest)}; every shape: {breakeven_text(every, lowest)} | {verdict} |")
        at95 = [s for p, s in data.get("dnnl", []) if abs(p[3] - 0.95) < 1e-9]
        g95 = geomean(at95)
        min95 = min(at95) if at95 else float("nan")
        out(f"| speedup over dense oneDNN at 95 % >= {TARGETS['dnnl_at_95']:g}x | geomean {fmt(g95, suffix='x')} "
            f"(min {fmt(min95, suffix='x')}) over {len(at95)} problems | {met(g95, TARGETS['dnnl_at_95'])} |")
        p512 = (512, 512, 128, 0.9, probs[0][4] if probs else "avx512", threads)
        p512 = next((p for p in probs if p[:4] == (512, 512, 128, 0.9)), p512)
        gf = grid.gflops(p512, ours)
        core = grid.pct_core.get((p512, ours))
        extra = f" ({fmt(core, 1)} % of the core's FMA peak measured in that run)" if core is not None else ""
        out(f"| 512x512x128 at 90 %: >= {TARGETS['gflops_512']:g} GFLOP/s on nonzeros | {fmt(gf, 1)} GFLOP/s"
            f"{extra} | {met(gf, TARGETS['gflops_512'])} |")
        out("")

        # Geomean speedup per sparsity (figure 6 in numbers).
        sps = sorted({p[3] for p in probs})
        out(f"Geometric-mean speedup of `{ours}` per sparsity (over all shapes):")
        out("")
        out("| peer | " + " | ".join(f"{sp:g}" for sp in sps) + " |")
        out("|---|" + "---|" * len(sps))
        for peer in sorted(data, key=peer_sort_key):
            cells = [fmt(geomean([s for p, s in data[peer] if p[3] == sp]), suffix="x") for sp in sps]
            out(f"| {peer} | " + " | ".join(cells) + " |")
        out("")

    if {1, 2} <= set(grid.thread_counts()):
        pairs = thread_pairs(grid)
        out("### 2 threads over 1 thread (t_1 / t_2, same problem and peer)")
        out("")
        out("| peer | N >= 512: problems | geomean | min | max | all N: geomean | N = 128: geomean |")
        out("|---|---|---|---|---|---|---|")
        by_peer = defaultdict(list)
        for problem, peer, a, b in pairs:
            by_peer[peer].append((problem, a / b))
        for peer in sorted(by_peer, key=peer_sort_key):
            big = [s for p, s in by_peer[peer] if p[2] >= 512]
            small = [s for p, s in by_peer[peer] if p[2] == 128]
            out(f"| {peer} | {len(big)} | {fmt(geomean(big), suffix='x')} | {fmt(min(big) if big else None, suffix='x')} | "
                f"{fmt(max(big) if big else None, suffix='x')} | {fmt(geomean([s for _, s in by_peer[peer]]), suffix='x')} | "
                f"{fmt(geomean(small), suffix='x')} |")
        changed = [p for p, _ in by_peer.get(ours, []) if same_plan_text(grid, p, ours).startswith("no")]
        if changed:
            out("")
            out(f"`{ours}` ran a different kernel plan with 1 and 2 threads on {len(changed)} of "
                f"{len(by_peer.get(ours, []))} problems (the tuner times candidates at set-up in each run; "
                "spmm_threads_speedup.csv lists them).")
        big_ours = [s for p, s in by_peer.get(ours, []) if p[2] >= 512]
        g = geomean(big_ours)
        out("")
        out(f"Target: `{ours}` 2-thread speedup >= {TARGETS['threads_2_over_1']:g}x on N >= 512: geomean {fmt(g, suffix='x')}, "
            f"min {fmt(min(big_ours) if big_ours else None, suffix='x')} over {len(big_ours)} problems; "
            f"met in the geomean: {met(g, TARGETS['threads_2_over_1'])}; on every problem: "
            f"{met(min(big_ours) if big_ours else float('nan'), TARGETS['threads_2_over_1'])}.")
        out("")
    if grid.failed:
        out("Failed results (not used):")
        out("")
        for problem, peer, why in grid.failed[:20]:
            out(f"- {problem_text(problem)} T={problem[5]} {peer}: {why}")
        if len(grid.failed) > 20:
            out(f"- ... and {len(grid.failed) - 20} more")
        out("")
    return "\n".join(lines)


def same_plan_text(grid, problem, peer):
    """sdnn peers: whether the 1- and 2-thread runs used the same kernel plan ("yes", or both plans);
    empty for the libraries. sdnn-tuned's plan is picked by timing at set-up, so it can differ."""
    p1 = grid.plan.get((problem, peer))
    p2 = grid.plan.get((problem[:5] + (2,), peer))
    if p1 is None or p2 is None:
        return ""
    return "yes" if p1 == p2 else f"no: {p1} / {p2}"


def write_thread_tables(grid, out_dir):
    pairs = thread_pairs(grid)
    if not pairs:
        return []
    csv_path = os.path.join(out_dir, "spmm_threads_speedup.csv")
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["m", "k", "n", "sparsity", "isa", "peer", "median_us_t1", "median_us_t2", "speedup_t2_over_t1",
                    "same_plan"])
        for problem, peer, a, b in pairs:
            w.writerow([problem[0], problem[1], problem[2], problem[3], problem[4], peer, f"{a:.3f}", f"{b:.3f}",
                        f"{a / b:.4f}", same_plan_text(grid, problem, peer)])
    peers = sorted({peer for _, peer, _, _ in pairs}, key=peer_sort_key)
    table = defaultdict(dict)
    for problem, peer, a, b in pairs:
        table[problem][peer] = a / b
    md_path = os.path.join(out_dir, "spmm_threads_speedup.md")
    with open(md_path, "w") as f:
        f.write("2-thread speedup over 1 thread (t_1 / t_2) per problem, computed by bench/plot_spmm.py\n\n")
        f.write("| M x K x N | sparsity | " + " | ".join(peers) + " |\n")
        f.write("|---|---|" + "---|" * len(peers) + "\n")
        for problem in sorted(table):
            cells = [fmt(table[problem].get(peer)) for peer in peers]
            f.write(f"| {problem[0]}x{problem[1]}x{problem[2]} | {problem[3]:g} | " + " | ".join(cells) + " |\n")
    return [csv_path, md_path]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="CSV files from sdnn_bench_spmm --csv (e.g. the 1- and 2-thread runs)")
    ap.add_argument("--out-dir", default=".", help="where the PNGs and tables go (default: .)")
    ap.add_argument("--sdnn", default="sdnn-tuned", help="the sdnn peer whose speedups are reported (default sdnn-tuned)")
    ap.add_argument("--markdown", help="also write the summary to this file")
    ap.add_argument("--no-plots", action="store_true", help="summary and tables only")
    args = ap.parse_args()

    grid = Grid()
    for path in args.csv:
        grid.load(path)
    if not grid.times:
        sys.exit("plot_spmm.py: no ok results in " + ", ".join(args.csv))
    if args.sdnn not in grid.peers():
        sys.exit(f"plot_spmm.py: peer {args.sdnn} has no ok results (peers: {', '.join(grid.peers())})")
    os.makedirs(args.out_dir, exist_ok=True)

    written = []
    if not args.no_plots:
        if plt is None:
            sys.exit("plot_spmm.py: matplotlib is missing: .venv/bin/pip install matplotlib "
                     "(tools/setup.sh installs it with SDNN_WITH_BENCH=1), or pass --no-plots")
        for threads in grid.thread_counts():
            p = os.path.join(args.out_dir, f"spmm_speedup_cdf_t{threads}.png")
            plot_cdf(grid, args.sdnn, threads, p)
            written.append(p)
            p = os.path.join(args.out_dir, f"spmm_speedup_vs_sparsity_t{threads}.png")
            plot_vs_sparsity(grid, args.sdnn, threads, p)
            written.append(p)
        if {1, 2} <= set(grid.thread_counts()):
            pairs = thread_pairs(grid)
            if pairs:
                p = os.path.join(args.out_dir, "spmm_threads_scaling.png")
                plot_thread_scaling(pairs, p)
                written.append(p)
    written += write_thread_tables(grid, args.out_dir)

    text = summary(grid, args.sdnn, args.csv)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
        written.append(args.markdown)
    print("wrote: " + (", ".join(written) if written else "nothing"), file=sys.stderr)


if __name__ == "__main__":
    main()
