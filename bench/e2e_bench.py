"""e2e_bench.py — end-to-end latency of whole models: sdnnc's model.so against ONNX Runtime,
OpenVINO and PyTorch on the same ONNX file, batch 1, in one process, alternating.

For each model: generate it (models/make_model.py configurations), compile it with sdnnc, check
that every peer's output matches ONNX Runtime's (rtol 1e-3, atol 1e-4; a mismatch aborts), then
time rounds in which every peer runs `--iters` inferences back to back, the peers taking turns
round by round (so drifting clock speeds or noisy neighbours hit all of them alike); before its
block a peer waits `--settle-ms` (the other peers' idle threads stop spinning) and makes
untimed calls, at least `--warmup` of them and for at least `--warmup-ms` (the other peers' weights
have just gone through the caches, and this VM's cores run slower for the first 10-30 ms after a
pause: the first calls after 50 ms idle took 1.5-1.8x the steady time, all peers). Reports the
median and 10th/90th percentile latency per peer and each peer's median / sdnnc's.

The peers run the dense model (the sparse weights are plain initializers), in float32:
  onnxruntime  CPU execution provider, all graph optimizations, sequential execution, intra-op
               threads = --threads.
  openvino     the CPU plugin reading the ONNX file; PERFORMANCE_HINT LATENCY, INFERENCE_NUM_THREADS
               = --threads, INFERENCE_PRECISION_HINT f32 (its default on CPUs with AVX512_BF16 is
               bf16, which changes the outputs by 1e-2; --openvino-precision bf16 measures it, and
               the output check then uses --bf16-atol).
  torch        the ONNX graph converted to a torch.nn.Module by onnx2torch, traced, frozen and
               passed through torch.jit.optimize_for_inference (its fastest path here: 1.3-1.4x
               eager, and torch.compile was slower still), torch.set_num_threads(--threads).
sdnnc's context has --threads threads. Inputs: one fixed random tensor per model (the models are
data-independent in cost).

  .venv/bin/python bench/e2e_bench.py --sdnnc build/tools/sdnnc [--model bert|mobilenet_v1|...]
      [--threads 1 2] [--peers onnxruntime openvino torch] [--rounds 15] [--iters 5]
      [--workdir /tmp/sdnn_e2e] [--markdown]
"""
from __future__ import annotations

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time
import warnings

import numpy as np
import onnx

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(REPO, "models"))
import sdnn_models as M  # noqa: E402

# name -> (make_model.py configuration, extra generator options, description)
MODELS = {
    "bert": ("bert", [], "BERT-base encoder, 12 layers, seq 128, 95% sparse, opset 14"),
    "mobilenet_v1": ("mobilenet_v1", [], "MobileNet V1 1.0/224, 90% sparse pointwise convs"),
    "bert_l2": ("bert", ["--layers", "2"], "BERT-base encoder, 2 layers (quick check)"),
    "resnet18": ("resnet18", [], "ResNet-18 224, 90% sparse 3x3 / 1x1 convs and classifier"),
    "resnet50": ("resnet50", [], "ResNet-50 224, 90% sparse 3x3 / 1x1 convs and classifier"),
}


class SdnnModel:
    """model.so through its C ABI (runtime_min/include/sdnn.h) with ctypes."""

    def __init__(self, path: str, threads: int):
        self.lib = ctypes.CDLL(os.path.abspath(path))
        L = self.lib
        L.sdnn_model_load.argtypes = [ctypes.POINTER(ctypes.c_void_p)]
        L.sdnn_context_create.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p)]
        L.sdnn_run.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_void_p)]
        L.sdnn_context_free.argtypes = [ctypes.c_void_p]
        L.sdnn_model_free.argtypes = [ctypes.c_void_p]
        self.model = ctypes.c_void_p()
        if L.sdnn_model_load(ctypes.byref(self.model)) != 0:
            raise RuntimeError(f"sdnn_model_load failed for {path}")
        self.ctx = ctypes.c_void_p()
        if L.sdnn_context_create(self.model, threads, ctypes.byref(self.ctx)) != 0:
            raise RuntimeError("sdnn_context_create failed")

    def bind(self, inputs: list[np.ndarray], outputs: list[np.ndarray]) -> None:
        self._keep = (inputs, outputs)
        self.ins = (ctypes.c_void_p * len(inputs))(*[a.ctypes.data for a in inputs])
        self.outs = (ctypes.c_void_p * len(outputs))(*[a.ctypes.data for a in outputs])

    def run(self) -> None:
        if self.lib.sdnn_run(self.ctx, self.ins, self.outs) != 0:
            raise RuntimeError("sdnn_run failed")

    def close(self) -> None:
        self.lib.sdnn_context_free(self.ctx)
        self.lib.sdnn_model_free(self.model)


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * (len(xs) - 1) + 0.5))]


PEER_LABELS = {"sdnnc": "sdnnc", "onnxruntime": "ONNX Runtime", "openvino": "OpenVINO", "torch": "PyTorch"}


def load_peer_modules(peers: list[str]) -> dict:
    """Imports the peers' Python packages up front, so a missing one fails before any compile."""
    mods = {}
    missing = []
    for p in peers:
        try:
            if p == "openvino":
                import openvino
                mods[p] = openvino
            elif p == "torch":
                import torch
                import onnx2torch
                mods[p] = (torch, onnx2torch)
        except ImportError as e:
            missing.append(f"{p} ({e})")
    if missing:
        raise SystemExit("e2e_bench.py: cannot import " + ", ".join(missing) + ": install the benchmark peers with "
                         "`SDNN_WITH_BENCH=1 bash tools/setup.sh`, or leave them out with --peers")
    return mods


def make_openvino(ov, onnx_path: str, feeds: dict, threads: int, precision: str):
    core = ov.Core()
    compiled = core.compile_model(onnx_path, "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": threads,
        "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    names = [o for o in compiled.outputs]

    def run():
        return request.infer(feeds)

    def outputs():
        res = request.infer(feeds)
        return [np.asarray(res[o]) for o in names]
    return run, outputs


def make_torch(mods, model: onnx.ModelProto, feeds: dict, threads: int):
    torch, onnx2torch = mods
    torch.set_num_threads(threads)
    module = onnx2torch.convert(model).eval()
    args = tuple(torch.from_numpy(np.ascontiguousarray(feeds[i.name])) for i in model.graph.input
                 if i.name in feeds)
    with torch.no_grad(), warnings.catch_warnings():
        # onnx2torch's Reshape reads its shape input as Python values: the trace fixes them, as
        # wanted for one input shape (the outputs are checked against ONNX Runtime's).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(module, args, check_trace=False)
        fn = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))

    def run():
        torch.set_num_threads(threads)
        with torch.inference_mode():
            return fn(*args)

    def outputs():
        out = run()
        out = out if isinstance(out, (list, tuple)) else [out]
        return [o.numpy() for o in out]
    return run, outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sdnnc", required=True)
    ap.add_argument("--model", action="append", choices=sorted(MODELS))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--peers", nargs="+", choices=["onnxruntime", "openvino", "torch"],
                    default=["onnxruntime", "openvino", "torch"],
                    help="engines timed beside sdnnc (ONNX Runtime is always the output reference)")
    ap.add_argument("--openvino-precision", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--bf16-atol", type=float, default=0.1,
                    help="output tolerance for OpenVINO with --openvino-precision bf16")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--iters", type=int, default=5, help="inferences per peer per round")
    ap.add_argument("--settle-ms", type=float, default=50, help="pause before each peer's block of a round")
    ap.add_argument("--warmup", type=int, default=2,
                    help="untimed calls after the pause (the other peers' weights have left the caches)")
    ap.add_argument("--warmup-ms", type=float, default=40,
                    help="... and untimed calls until this long after the pause (clocks back up to speed)")
    ap.add_argument("--workdir", default="/tmp/sdnn_e2e")
    ap.add_argument("--sdnnc-arg", action="append", default=[], help="extra sdnnc argument")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table at the end")
    args = ap.parse_args()
    import onnxruntime as ort
    mods = load_peer_modules(args.peers)
    peer_names = ["sdnnc"] + list(dict.fromkeys(args.peers))

    os.makedirs(args.workdir, exist_ok=True)
    rows = []
    for name in args.model or ["bert", "mobilenet_v1"]:
        config, extra, desc = MODELS[name]
        onnx_path = os.path.join(args.workdir, f"{name}.onnx")
        so_path = os.path.join(args.workdir, f"{name}.so")
        if not os.path.exists(onnx_path):
            subprocess.run([sys.executable, os.path.join(REPO, "models", "make_model.py"), config, onnx_path] + extra,
                           check=True, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        subprocess.run([args.sdnnc, onnx_path, "-o", so_path] + args.sdnnc_arg, check=True)
        compile_s = time.monotonic() - t0
        model = onnx.load(onnx_path)
        feeds = M.random_inputs(model, seed=1)
        so_mb = os.path.getsize(so_path) / 2**20
        print(f"{name}: {desc}; compiled in {compile_s:.1f} s, model.so {so_mb:.1f} MiB", flush=True)

        for threads in args.threads:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            sess = ort.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
            ref = sess.run(None, feeds)
            sd = SdnnModel(so_path, threads)
            ins = [np.ascontiguousarray(feeds[i.name], dtype=np.float32) for i in model.graph.input
                   if i.name in feeds]
            outs = [np.empty_like(r, dtype=np.float32) for r in ref]
            sd.bind(ins, outs)
            sd.run()
            peers = {"sdnnc": sd.run}
            checks = {"sdnnc": (lambda: outs, 1e-4)}
            if "onnxruntime" in peer_names:
                peers["onnxruntime"] = lambda: sess.run(None, feeds)
            if "openvino" in peer_names:
                run, got = make_openvino(mods["openvino"], onnx_path, feeds, threads, args.openvino_precision)
                peers["openvino"] = run
                checks["openvino"] = (got, args.bf16_atol if args.openvino_precision == "bf16" else 1e-4)
            if "torch" in peer_names:
                run, got = make_torch(mods["torch"], model, feeds, threads)
                peers["torch"] = run
                checks["torch"] = (got, 1e-4)
            errs = {}
            for p, (got, atol) in checks.items():
                res = got()
                if len(res) != len(ref):
                    print(f"  {p}: {len(res)} outputs, ONNX Runtime {len(ref)}", file=sys.stderr)
                    return 1
                for o, r in zip(res, ref):
                    o = np.asarray(o, dtype=np.float32).reshape(r.shape)
                    if not np.allclose(o, r, rtol=1e-3, atol=atol):
                        print(f"  MISMATCH {p} vs ONNX Runtime: max abs {np.max(np.abs(o - r)):.3g}", file=sys.stderr)
                        return 1
                errs[p] = max(float(np.max(np.abs(np.asarray(o, dtype=np.float32).reshape(r.shape) - r)))
                              for o, r in zip(res, ref))
            for f in peers.values():  # warm-up
                for _ in range(2):
                    f()
            times = {p: [] for p in peers}
            for r in range(args.rounds):
                order = list(peers) if r % 2 == 0 else list(reversed(peers))
                for p in order:
                    # The other peers' worker threads may still be spinning (ONNX Runtime's spin
                    # after a run, OpenMP's and runtime_min's pools briefly too) and would take this
                    # peer's second core: let them settle; the untimed calls wake this peer's own
                    # and bring the clocks back up.
                    time.sleep(args.settle_ms / 1e3)
                    start, calls = time.perf_counter(), 0
                    while calls < args.warmup or (time.perf_counter() - start) * 1e3 < args.warmup_ms:
                        peers[p]()
                        calls += 1
                    for _ in range(args.iters):
                        t = time.perf_counter()
                        peers[p]()
                        times[p].append((time.perf_counter() - t) * 1e3)
            med = {p: statistics.median(v) for p, v in times.items()}
            for p, v in times.items():
                print(f"  {threads} thread(s) {p:12s} median {med[p]:8.2f} ms  p10 {percentile(v, 0.1):8.2f}  "
                      f"p90 {percentile(v, 0.9):8.2f}  ({len(v)} runs)", flush=True)
            ratios = ", ".join(f"{PEER_LABELS[p]} / sdnnc = {med[p] / med['sdnnc']:.2f}x" for p in peers if p != "sdnnc")
            diffs = ", ".join(f"{PEER_LABELS[p]} {e:.2g}" for p, e in errs.items())
            print(f"  {threads} thread(s) {ratios}  (max abs diff from ONNX Runtime: {diffs})", flush=True)
            rows.append((name, threads, med, compile_s))
            sd.close()
            del peers, checks
    if args.markdown:
        others = [p for p in peer_names if p != "sdnnc"]
        print("\n| model | threads | sdnnc ms | " + " | ".join(f"{PEER_LABELS[p]} ms (x)" for p in others)
              + " | compile s |")
        print("|---|---|---|" + "---|" * len(others) + "---|")
        for name, th, med, c in rows:
            cells = " | ".join(f"{med[p]:.2f} ({med[p] / med['sdnnc']:.2f}x)" for p in others)
            print(f"| {name} | {th} | {med['sdnnc']:.2f} | {cells} | {c:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
