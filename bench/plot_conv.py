#!/usr/bin/env python3
"""plot_conv.py -- plots and a summary of the sparse 3x3 convolution grid (issue 4) from sdnn_bench_conv CSV files.

    .venv/bin/python bench/plot_conv.py build/conv_grid_t1.csv --out-dir build/conv_grid \
        [--markdown build/conv_grid/summary.md]

Reads one or more CSV files written by `sdnn_bench_conv --csv`, keeps the rows whose status is
`ok`, and computes everything from their `median_us` (speedup = oneDNN's median / the peer's, on
the same grid point of the same run): nothing is typed in by hand. A point is (ic, oc, image,
sparsity, isa, threads, input); when several rows give the same point and peer (a sub-grid run
again), the row from the file named last wins and the summary says how many were replaced.

Writes into --out-dir, one set per (isa, threads, input) found:
  conv_speedup_cdf_<tag>.png          like SparseDNN's figure 4: for each sdnn peer and sparsity,
                                      the fraction of grid points on which its speedup over
                                      oneDNN's dense convolution is <= x
  conv_speedup_vs_sparsity_<tag>.png  like figure 6: the geometric-mean speedup over oneDNN
                                      against sparsity, over all points and per image size,
                                      with every point drawn faintly
and prints a Markdown summary (also to --markdown FILE): the issue-4 targets (geometric-mean
speedup >= 3.5x at 90 % and >= 5x at 95 %, one thread), min / max with the point, per image size,
what pad_planes + crop cost, and the commands that reproduce the grid and the plots.
"""
import argparse
import csv
import math
import os
import sys
from collections import defaultdict

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
except ImportError:  # pragma: no cover - reported at run time
    plt = None

TARGETS = {0.9: 3.5, 0.95: 5.0}  # issue 4: geometric-mean speedup over oneDNN dense, one thread
PEER_ORDER = ["sdnn", "sdnn-planes", "sdnn-chain", "sdnn-kernel", "sdnn-tuned", "sdnn-tuned-kernel", "sdnn-noperm", "sdnn-noperm-kernel",
              "sdnn-pad", "sdnn-crop", "onednn"]
PEER_LABEL = {
    "sdnn": "sdnn (as sdnnc runs it: masked kernel on NCHW x with AVX-512)",
    "sdnn-planes": "sdnn pad_planes + kernel [+ crop]",
    "sdnn-kernel": "sdnn kernel alone",
    "sdnn-chain": "sdnn in a conv chain (kernel to next planes + zero_borders)",
    "sdnn-tuned": "sdnn tuned (pad + kernel + crop)",
    "sdnn-tuned-kernel": "sdnn tuned kernel alone",
    "sdnn-noperm": "sdnn model row order (pad + kernel + crop)",
    "sdnn-noperm-kernel": "sdnn model row order, kernel alone",
}
COLORS = {
    "sdnn": "#1b9e77",
    "sdnn-planes": "#1f78b4",
    "sdnn-kernel": "#d95f02",
    "sdnn-chain": "#a6761d",
    "sdnn-tuned": "#7570b3",
    "sdnn-tuned-kernel": "#e7298a",
    "sdnn-noperm": "#66a61e",
    "sdnn-noperm-kernel": "#e6ab02",
}
# Peers whose speedup over oneDNN is plotted (pad / crop alone are parts, not a convolution).
CONV_PEERS = [p for p in PEER_ORDER if p not in ("sdnn-pad", "sdnn-crop", "onednn")]

GRID_COMMAND = ("build/bench/sdnn_bench_conv --threads 1 --csv build/conv_grid_t1.csv "
                "| tee build/conv_grid_t1.log")
PLOT_COMMAND = ("{python} bench/plot_conv.py build/conv_grid_t1.csv --out-dir build/conv_grid "
                "--markdown build/conv_grid/summary.md")


def geomean(values):
    values = [v for v in values if v > 0 and math.isfinite(v)]
    if not values:
        return float("nan")
    return math.exp(sum(math.log(v) for v in values) / len(values))


def fmt(v, digits=2, suffix=""):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.{digits}f}{suffix}"


def peer_key(p):
    return (PEER_ORDER.index(p) if p in PEER_ORDER else len(PEER_ORDER), p)


def point_text(p):
    return f"{p[0]}->{p[1]} ch, {p[2]}x{p[2]}, {p[3]:g}"


class Grid:
    """times[(point, peer)] = median us; point = (ic, oc, image, sparsity, isa, threads, input)."""

    def __init__(self):
        self.times = {}
        self.gflops_eff = {}
        self.failed = []
        self.replaced = 0

    def load(self, path):
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            need = {"ic", "oc", "image", "sparsity", "isa", "threads", "input", "peer", "status", "median_us"}
            missing = need - set(reader.fieldnames or [])
            if missing:
                sys.exit(f"plot_conv.py: {path}: not an sdnn_bench_conv CSV (missing columns {sorted(missing)})")
            for row in reader:
                point = (int(row["ic"]), int(row["oc"]), int(row["image"]), round(float(row["sparsity"]), 6),
                         row["isa"], int(row["threads"]), row["input"])
                key = (point, row["peer"])
                if key in self.times:
                    self.replaced += 1
                if row["status"] != "ok" or not row["median_us"]:
                    self.failed.append((point, row["peer"], row.get("details", "")))
                    self.times.pop(key, None)
                    continue
                self.times[key] = float(row["median_us"])
                if row.get("gflops_eff"):
                    self.gflops_eff[key] = float(row["gflops_eff"])

    def configs(self):
        """(isa, threads, input) triples present, as the tag of their files."""
        return sorted({p[4:] for p, _ in self.times})

    def points(self, config):
        return sorted({p for p, _ in self.times if p[4:] == config})

    def peers(self, config):
        return sorted({peer for p, peer in self.times if p[4:] == config}, key=peer_key)

    def speedup(self, point, peer):
        a, b = self.times.get((point, "onednn")), self.times.get((point, peer))
        return a / b if a and b else None

    def speedups(self, config, peer, sparsity=None, image=None):
        """[(point, speedup)] of `peer` over oneDNN."""
        out = []
        for p in self.points(config):
            if (sparsity is not None and p[3] != sparsity) or (image is not None and p[2] != image):
                continue
            s = self.speedup(p, peer)
            if s is not None:
                out.append((p, s))
        return out


def tag_of(config):
    isa, threads, layout = config
    return f"{isa}_t{threads}_{layout}"


def config_text(config):
    isa, threads, layout = config
    return f"{isa}, {threads} thread(s), sdnn input {layout}"


def ecdf(values):
    """Steps of the empirical CDF, starting at 0 at the smallest value."""
    xs = sorted(values)
    return [xs[0]] + xs, [0.0] + [(i + 1) / len(xs) for i in range(len(xs))]


def plot_cdf(grid, config, path):
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    styles = ["-", "--", ":", "-."]
    sps = sorted({p[3] for p in grid.points(config)})
    for peer in [p for p in CONV_PEERS if p in grid.peers(config)]:
        for i, sp in enumerate(sps):
            vals = [s for _, s in grid.speedups(config, peer, sparsity=sp)]
            if not vals:
                continue
            xs, ys = ecdf(vals)
            ax.step(xs, ys, where="post", color=COLORS.get(peer), linestyle=styles[i % len(styles)], linewidth=1.8,
                    label=f"{PEER_LABEL.get(peer, peer)}, sparsity {sp:g} (geomean {geomean(vals):.2f}x)")
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    for sp, target in TARGETS.items():
        if sp in sps:
            ax.axvline(target, color="gray", linewidth=0.8, linestyle=":")
            ax.text(target, 0.98, f"target {target:g}x @ {sp:g} ", fontsize=7, rotation=90, ha="right", va="top",
                    color="gray")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("speedup over oneDNN dense convolution (t_onednn / t_sdnn), log scale")
    ax.set_ylabel("fraction of grid points with speedup <= x")
    ax.set_title(f"Sparse 3x3 conv grid ({config_text(config)}): CDF of speedup", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def plot_vs_sparsity(grid, config, path):
    points = grid.points(config)
    images = sorted({p[2] for p in points})
    panels = [("all points", None)] + [(f"image {i}x{i}", i) for i in images]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 4.4), sharey=True, squeeze=False)
    peers = [p for p in CONV_PEERS if p in grid.peers(config)]
    for ax, (title, image) in zip(axes[0], panels):
        for peer in peers:
            pts = grid.speedups(config, peer, image=image)
            if not pts:
                continue
            ax.scatter([p[3] for p, _ in pts], [s for _, s in pts], s=8, alpha=0.25, color=COLORS.get(peer))
            sps = sorted({p[3] for p, _ in pts})
            ys = [geomean([s for p, s in pts if p[3] == sp]) for sp in sps]
            ax.plot(sps, ys, marker="o", color=COLORS.get(peer), label=PEER_LABEL.get(peer, peer))
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        for sp, target in TARGETS.items():
            ax.scatter([sp], [target], marker="_", s=300, color="black", zorder=3)
        ax.set_yscale("log", base=2)
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.set_xlabel("sparsity")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("speedup over oneDNN dense (geomean line, points faint)")
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Sparse 3x3 conv grid ({config_text(config)}): speedup vs sparsity "
                 "(black ticks: issue-4 targets)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def summary(grid, files, python):
    lines = []
    out = lines.append
    out("## Sparse 3x3 convolution grid (issue 4)")
    out("")
    out("From " + ", ".join(f"`{f}`" for f in files) + " (computed by bench/plot_conv.py from the `median_us` columns; "
        "speedup = t_onednn / t_peer on the same point of the same run).")
    if grid.replaced:
        out(f"{grid.replaced} row(s) were given again by a later file; the later one is used.")
    out("")
    out("Commands (one thread; the full grid is the default of every axis):")
    out("")
    out("    cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSDNN_BUILD_BENCH=ON && cmake --build build "
        "--target sdnn_bench_conv")
    out("    " + GRID_COMMAND)
    out("    " + PLOT_COMMAND.format(python=python))
    out("")
    for config in grid.configs():
        peers = [p for p in CONV_PEERS if p in grid.peers(config)]
        sps = sorted({p[3] for p in grid.points(config)})
        out(f"### {config_text(config)}: {len(grid.points(config))} points")
        out("")
        out("| peer | sparsity | points | geomean speedup | min (point) | max (point) | issue-4 target |")
        out("|---|---|---|---|---|---|---|")
        for peer in peers:
            for sp in sps:
                pts = grid.speedups(config, peer, sparsity=sp)
                if not pts:
                    continue
                g = geomean([s for _, s in pts])
                lo = min(pts, key=lambda x: x[1])
                hi = max(pts, key=lambda x: x[1])
                target = TARGETS.get(sp)
                verdict = "-" if target is None else f">= {target:g}x: " + ("met" if g >= target else "**not met**")
                out(f"| {peer} | {sp:g} | {len(pts)} | {fmt(g, suffix='x')} | {fmt(lo[1], suffix='x')} "
                    f"({point_text(lo[0])}) | {fmt(hi[1], suffix='x')} ({point_text(hi[0])}) | {verdict} |")
        out("")
        images = sorted({p[2] for p in grid.points(config)})
        out("Geometric-mean speedup per image size and sparsity:")
        out("")
        cols = [(im, sp) for im in images for sp in sps]
        out("| peer | " + " | ".join(f"{im}x{im} @ {sp:g}" for im, sp in cols) + " |")
        out("|---|" + "---|" * len(cols))
        for peer in peers:
            cells = [fmt(geomean([s for _, s in grid.speedups(config, peer, sparsity=sp, image=im)]), suffix="x")
                     for im, sp in cols]
            out(f"| {peer} | " + " | ".join(cells) + " |")
        out("")
        # pad_planes + crop: the sdnn pipeline's time outside the kernel.
        shares = defaultdict(list)
        for p in grid.points(config):
            full, kern = grid.times.get((p, "sdnn-planes")), grid.times.get((p, "sdnn-kernel"))
            if full and kern:
                shares[p[2]].append(1.0 - kern / full)
        if shares:
            steps = "pad_planes" if config[2] == "grid" else "pad_planes + crop"
            out(f"{steps} as a share of `sdnn-planes`' time (1 - t_sdnn-kernel / t_sdnn-planes), mean per image size: " +
                ", ".join(f"{im}x{im}: {100 * sum(v) / len(v):.0f} %" for im, v in sorted(shares.items())) + ".")
            out("")
        eff = defaultdict(list)
        for (p, peer), g in grid.gflops_eff.items():
            if p[4:] == config:
                eff[peer].append(g)
        if eff:
            out("Effective GFLOP/s (dense count 2*IC*9*OC*H*W over the time), median over the points: " +
                ", ".join(f"{peer} {sorted(v)[len(v) // 2]:.0f}" for peer, v in sorted(eff.items(),
                                                                                          key=lambda x: peer_key(x[0])))
                + ".")
            out("")
    if grid.failed:
        out(f"**{len(grid.failed)} failed result(s)** (not used):")
        out("")
        for point, peer, why in grid.failed[:20]:
            out(f"- {point_text(point)} ({config_text(point[4:])}) {peer}: {why}")
        out("")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("csv", nargs="+", help="CSV files from sdnn_bench_conv --csv")
    ap.add_argument("--out-dir", default=".", help="where the PNGs go (default: .)")
    ap.add_argument("--markdown", help="also write the summary to this file")
    ap.add_argument("--no-plots", action="store_true", help="summary only")
    args = ap.parse_args()

    grid = Grid()
    for path in args.csv:
        grid.load(path)
    if not grid.times:
        sys.exit("plot_conv.py: no ok results in " + ", ".join(args.csv))
    os.makedirs(args.out_dir, exist_ok=True)
    written = []
    if not args.no_plots:
        if plt is None:
            sys.exit("plot_conv.py: matplotlib is missing (.venv/bin/pip install matplotlib), or pass --no-plots")
        for config in grid.configs():
            if "onednn" not in grid.peers(config):
                continue
            p = os.path.join(args.out_dir, f"conv_speedup_cdf_{tag_of(config)}.png")
            plot_cdf(grid, config, p)
            written.append(p)
            p = os.path.join(args.out_dir, f"conv_speedup_vs_sparsity_{tag_of(config)}.png")
            plot_vs_sparsity(grid, config, p)
            written.append(p)
    python = os.path.relpath(sys.executable) if ".venv" in sys.executable else ".venv/bin/python"
    text = summary(grid, args.csv, python)
    print(text)
    if args.markdown:
        os.makedirs(os.path.dirname(os.path.abspath(args.markdown)), exist_ok=True)
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
        written.append(args.markdown)
    print("wrote: " + (", ".join(written) if written else "nothing"), file=sys.stderr)


if __name__ == "__main__":
    main()
