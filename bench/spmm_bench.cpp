// spmm_bench.cpp — sdnn_bench_spmm: SpMM, sdnnc's generated kernels against peers, 1 or more threads.
//
//   sdnn_bench_spmm [--m 512] [--k 512] [--n 128] [--sparsity 0.9] [--isa native|avx512|avx2]
//                   [--peers sdnn,sdnn-dense,libxsmm,dnnl,openblas[,sdnn-rm]] [--min-time 0.3 | --reps R]
//                   [--threads 1] [--csv FILE] [--threshold-sweep] ...   (--help lists every option)
//   sdnn_bench_spmm --grid spmm [--threads 1|2] [--m ...] [--k ...] [--n ...] [--sparsity ...]
//                   [--budget S] --csv FILE                  (the paper's SpMM grid, issue 4)
//
// C[M x N] = A[M x K] * B[K x N], A sparse (unit-Gaussian values, pruned by magnitude to the
// requested sparsity), B and C dense. Each peer gets B and C in the layout it is built for:
// the generated kernels the blocked layout of sdnn_plan.h ([N/VL][K][VL], N padded to VL, the
// layout a compiled model keeps between layers), the libraries row-major. Converting is not timed
// (a model packs once at its input), except in the opt-in sdnn-rm peer. Peers, in one process:
//   sdnn        the generated SpMM kernel (Family::Spmm, default plan for --isa), run in-process
//               through JitKernel with the runtime's calling contract (one call per k block)
//   sdnn-perm   sdnn with the rows tiled in the order the compiler's permute-rows pass picks
//   sdnn-tuned  sdnn-perm, then the plan sdnnc's default --tune=fast picks (timed at set-up)
//   sdnn-tuned-1t, libxsmm-1t  (opt-in) sdnn-tuned's plan / libxsmm on the calling thread alone,
//               whatever --threads is: with --threads 2 the ratio t_X-1t / t_X is the two-thread
//               speed-up measured in one run, the samples alternating (no drift between runs)
//   sdnn-dense  the generated dense kernel (Family::Dense) for the same A, zeros included; it is
//               what the sparse-or-dense decision compares the SpMM kernel against
//   sdnn-rm     (opt-in) sdnn on row-major B/C: packs B, runs the kernel, unpacks C, all timed
//   sdnn-compact (opt-in, one thread, AVX-512) DESIGN.md's compact variant: no generated code, a
//               loop per row over a (B offset, value) stream, K blocked by --compact-kb (class
//               CompactPeer; bench/RESULTS.md "Session 16")
//   libxsmm     libxsmm 1.17 libxsmm_spmdm_*: A handed over dense and converted to its CSR
//               slices once, outside the timed region; the timed call runs every compute block
//               (tid 0 of 1 with one thread). Layout 'N','N','N' = all row-major.
//   dnnl        oneDNN dnnl_sgemm (dense, row-major), OMP_NUM_THREADS = --threads
//   openblas    OpenBLAS cblas_sgemm (dense, row-major), OPENBLAS_NUM_THREADS = --threads
//
// Threads (--threads T, default 1): OpenBLAS and oneDNN's OpenMP take T from the environment the
// re-exec sets (below), so one process runs one thread count; run the grid once per T. The sdnn
// peers split each call as runtime_min splits a kernel step over T threads: the runtime's own
// sdnn_kernel_split_init (runtime_min/src/partition.c, linked statically) gives each thread its
// tasks (row-tile ranges balanced by nonzeros, or column ranges at multiples of the plan's
// column_align() when there are few tiles), and each thread calls the kernel once per k block, in
// order, on each of its tasks. libxsmm runs its compute blocks with tid 0..T-1 (contiguous chunks
// of blocks, as `omp for` schedule(static) in libxsmm's own samples). Both run on a persistent
// team (class Team): the calling thread is thread 0, as in runtime_min, plus T-1 std::threads
// that spin briefly between calls and then sleep, so thread start-up is never timed. No thread is
// bound to a CPU (see ensure_benchmark_env). --split columns replaces the runtime's split of the
// sdnn peers by plain column ranges (an experiment for the runtime's partition, not the default).
//
// Protocol (DESIGN.md "Performance protocol"):
//   - The environment is fixed before any library loads: OPENBLAS_L2_SIZE unset,
//     OPENBLAS_CORETYPE as --openblas-coretype asks (default SkylakeX on an AVX-512 CPU: see
//     requested_openblas_coretype), OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = --threads, and
//     with T > 1 OPENBLAS_THREAD_TIMEOUT=24 (see kOpenblasThreadTimeout). When it differs, main()
//     sets it and re-executes /proc/self/exe (OpenBLAS and libgomp read it at load time).
//   - Weights are one copy per peer (as deployed); B and C rotate through as many copies as
//     make the rotation exceed --rotate-mib (default 4 MiB, 4x the 1 MiB L2), at least 2, in
//     each layout. Consecutive calls, whichever peer makes them, use the next copy.
//   - With --evict-mib X every timed call is preceded (untimed) by a read of X MiB of a buffer of
//     the bench's own, one load per cache line: the call then finds its weights (generated code
//     and values, or a peer's A) in L3 instead of L2, as a layer does inside a model whose other
//     layers ran since (bench/RESULTS.md "Session 11"). Calls are then timed one by one.
//   - Every peer is first checked on copy 0 against a double-precision reference: C is prefilled
//     with a sentinel, and max |C - ref| / sum_k |A_ik B_kj| must be <= --rtol. A peer that
//     fails (or throws) is reported FAILED and not timed.
//   - Warm-up (--warmup-time, at least --warmup-calls calls per peer) gives a per-call estimate;
//     each peer's sample is then `inner` back-to-back calls (inner chosen so that every peer's
//     sample lasts about S = max(--sample-us, slowest call)), and rounds of one sample per peer
//     alternate the peers round-robin (the starting peer rotates every round, and every other
//     round runs the peers in reverse order, so no peer always follows the same one) until every peer
//     has about min(--min-time, --budget / peers) of samples (at least --min-rounds rounds), or
//     exactly --reps rounds.
//   - With T > 1 every sample (and every warm-up) is preceded by a settle: our team is told to
//     sleep, then the process sleeps in --settle-probe-us steps until a step passes with the
//     process using under 25 % of a core, i.e. until the previous peer's helper threads (libgomp's
//     and OpenBLAS's spin-wait after each call) have stopped spinning and cannot steal the core
//     the next peer needs; then one untimed call wakes the peer's own threads, and the sample
//     follows. The time each peer's threads kept spinning is reported.
//   - Reported: median per-call time over the samples (and p25/p75), GFLOP/s counted on nonzeros
//     (2*nnz*N), percent of the reference peak (--peak, 287) and of this core's FMA peak
//     (measured at the start; one core, whatever --threads is), the
//     dense-equivalent rate (2*M*K*N), each peer's rate relative to sdnn and sdnn's speedup over
//     it, and the generated code's bytes per nonzero.
#include <dirent.h>
#include <dlfcn.h>
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <optional>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <xbyak/xbyak.h>
#include <xbyak/xbyak_util.h>

// Peer libraries.
#include <cblas.h>
#include <libxsmm.h>
#include <libxsmm_spmdm.h>
#include <oneapi/dnnl/dnnl.h>

#include "sdnn/backend/jit.h"
#include "sdnn/backend/kernel_emitter.h"
#include "sdnn/backend/kernel_plan.h"
#include "sdnn/backend/tuner.h"
#include "sdnn/passes/permute_rows.h"
#include "sdnn_plan.h"

// runtime_min's work split, linked statically from the runtime archive (as its unit tests do):
// the benchmark's multi-thread sdnn peers use exactly the tasks a model.so would run.
extern "C" {
#include "partition.h"
}

namespace {

using sdnn::backend::Family;
using sdnn::backend::Isa;

// ---------------------------------------------------------------------------------------------
// Environment: fixed before OpenBLAS / libgomp are loaded, by re-executing ourselves.

constexpr const char* kReexecMarker = "SDNN_BENCH_REEXEC";

bool env_equals(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v && std::strcmp(v, value) == 0;
}

std::string env_text(const char* name) {
  const char* v = std::getenv(name);
  return std::string(name) + "=" + (v ? v : "(unset)");
}

// The OpenBLAS core the run asks for, from --openblas-coretype NAME|auto|detect (also =NAME):
//   auto (default)  SkylakeX when the CPU has AVX-512F, Haswell when it has AVX2+FMA, else detect.
//                   OpenBLAS 0.3.21 does not know this VM's CPUID (GenuineIntel family 6 model
//                   207) and its own detection falls back to the SSE3 Prescott kernels.
//   detect          OPENBLAS_CORETYPE unset: OpenBLAS's own detection.
//   NAME            OPENBLAS_CORETYPE=NAME.
// Returns the value for OPENBLAS_CORETYPE, empty for unset. Read from argv here because it must be
// in place before OpenBLAS loads; CLI11 also declares the option so that it is documented.
std::string requested_openblas_coretype(int argc, char** argv) {
  const std::string flag = "--openblas-coretype";
  std::string value = "auto";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == flag && i + 1 < argc) value = argv[++i];
    else if (arg.rfind(flag + "=", 0) == 0) value = arg.substr(flag.size() + 1);
  }
  if (value == "detect") return "";
  if (value != "auto") return value;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  return "";
}

// The thread count from --threads N (also =N), read from argv here for the same reason: OpenBLAS
// and libgomp size their thread pools from the environment when they load. A value that is not a
// positive integer gives 1 here; CLI11 rejects it after the re-exec.
int requested_threads(int argc, char** argv) {
  const std::string flag = "--threads";
  std::string value = "1";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == flag && i + 1 < argc) value = argv[++i];
    else if (arg.rfind(flag + "=", 0) == 0) value = arg.substr(flag.size() + 1);
  }
  char* end = nullptr;
  const long t = std::strtol(value.c_str(), &end, 10);
  return end != value.c_str() && *end == '\0' && t >= 1 && t <= 256 ? static_cast<int>(t) : 1;
}

// With more than one thread, OpenBLAS's idle server threads spin (sched_yield) for 2^28 TSC ticks
// after each call by default (about 75 ms measured here) before they sleep; the settle before each
// sample would have to wait that out every time. OPENBLAS_THREAD_TIMEOUT=24 (2^24 ticks, about
// 7 ms) keeps them awake between back-to-back calls; 20 (~0.5 ms) made OpenBLAS's 2-thread calls
// on 256x256x512 slower and more erratic (775-942 us against 561-563 us). libgomp's default spin
// (1-3 ms, measured the same way) is left alone.
constexpr const char* kOpenblasThreadTimeout = "24";

// Returns when the environment is right; otherwise re-executes the binary with it corrected:
// OPENBLAS_L2_SIZE unset, OPENBLAS_CORETYPE as requested, --threads OpenBLAS / OpenMP threads,
// and with more than one thread OPENBLAS_THREAD_TIMEOUT as above. No thread is bound to a CPU:
// with OMP_PROC_BIND set, libgomp binds the main thread to one core when it loads, OpenBLAS then
// counts one usable CPU and runs single-threaded (tried here).
void ensure_benchmark_env(int argc, char** argv) {
  const std::string coretype = requested_openblas_coretype(argc, argv);
  const std::string threads = std::to_string(requested_threads(argc, argv));
  const bool ready = !std::getenv("OPENBLAS_L2_SIZE") &&
                     (coretype.empty() ? !std::getenv("OPENBLAS_CORETYPE")
                                       : env_equals("OPENBLAS_CORETYPE", coretype.c_str())) &&
                     env_equals("OPENBLAS_NUM_THREADS", threads.c_str()) &&
                     env_equals("OMP_NUM_THREADS", threads.c_str()) &&
                     (threads == "1" || env_equals("OPENBLAS_THREAD_TIMEOUT", kOpenblasThreadTimeout));
  if (ready) return;
  if (std::getenv(kReexecMarker)) {
    std::fprintf(stderr, "sdnn_bench_spmm: error: environment still wrong after re-exec\n");
    std::exit(2);
  }
  // Remember what was changed, for the report header.
  std::string was = env_text("OPENBLAS_CORETYPE") + " " + env_text("OPENBLAS_L2_SIZE") + " " +
                    env_text("OPENBLAS_NUM_THREADS") + " " + env_text("OMP_NUM_THREADS") + " " +
                    env_text("OPENBLAS_THREAD_TIMEOUT");
  if (coretype.empty()) unsetenv("OPENBLAS_CORETYPE");
  else setenv("OPENBLAS_CORETYPE", coretype.c_str(), 1);
  unsetenv("OPENBLAS_L2_SIZE");
  setenv("OPENBLAS_NUM_THREADS", threads.c_str(), 1);
  setenv("OMP_NUM_THREADS", threads.c_str(), 1);
  if (threads != "1") setenv("OPENBLAS_THREAD_TIMEOUT", kOpenblasThreadTimeout, 1);
  setenv(kReexecMarker, was.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "sdnn_bench_spmm: error: re-exec failed: %s\n", std::strerror(errno));
  std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// Options.

struct Options {
  std::vector<int64_t> m{512}, k{512}, n{128};
  std::vector<std::string> shapes;  // MxKxN, overrides --m/--k/--n
  std::vector<double> sparsity{0.9};
  std::string isa = "native";
  std::vector<std::string> peers{"sdnn", "sdnn-perm", "sdnn-tuned", "sdnn-dense", "libxsmm", "dnnl", "openblas"};
  int reps = 0;  // rounds; 0 = from --min-time
  int min_rounds = 15;
  double min_time = 0.3;
  double warmup_time = 0.05;
  double sample_us = 200.0;
  double rotate_mib = 4.0;
  double evict_mib = 0.0;  // 0: no eviction between calls
  double rtol = 1e-4;
  double peak = 287.0;    // reference peak (DESIGN.md: one Zen 5 core, zmm FMA)
  double core_peak = 0.0; // this core's FMA peak for --isa, measured at the start of the run
  int pin = -1;
  uint64_t seed = 1;
  std::string csv;
  std::string openblas_coretype = "auto";  // applied before the re-exec: requested_openblas_coretype()
  bool threshold_sweep = false;
  // Threads per call (applied to OpenBLAS / OpenMP before the re-exec: requested_threads()).
  int threads = 1;
  std::string grid;          // "spmm": the issue-4 grid (axes and defaults: apply_grid_defaults)
  double budget = 0.0;       // seconds of samples per problem over all peers; 0 = no cap
  int warmup_calls = 4;      // at least this many warm-up calls per peer
  double settle_probe_us = 500.0;  // T > 1: quiet-check interval before each sample
  double settle_max_ms = 250.0;    // T > 1: give up waiting for quiet after this long
  double spin_us = 200.0;          // T > 1: our team's workers spin this long, then sleep
  std::string split = "runtime";   // T > 1, sdnn peers: runtime (runtime_min's split) | columns
  double max_problem_s = 0.0;      // stop the rounds of a problem after this long (0: never)
  bool list_problems = false;      // print the problems and exit
  std::string sdnn_plan;           // overrides of the "sdnn" peer's default plan (apply_plan_override)
  std::string sdnn_alt_plan;       // the same for the "sdnn-alt" peer
  std::string sdnn_alt_split;      // --split of the "sdnn-alt" peer ("": --split)
};

// --sdnn-plan "mb=28,nb=1,ng=4,kb=128,emb=1": each key given replaces that field of the sdnn
// peer's default plan (mb tile rows, nb vectors, ng column chunks per group, kb K block, emb
// embedded broadcasts), for exploring plans by hand; the kernel emitter validates the result.
std::string g_sdnn_plan;
// --sdnn-alt-plan: the same overrides for the opt-in "sdnn-alt" peer, so two plans of one pattern
// alternate in one run.
std::string g_sdnn_alt_plan;
// --sdnn-alt-split: the sdnn-alt peer's --split, so two thread splits alternate in one run.
std::string g_sdnn_alt_split;

void apply_plan_override(sdnn::backend::KernelPlan& p, const std::string& spec) {
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos) throw std::runtime_error("--sdnn-plan: expected key=value, got '" + item + "'");
    const std::string key = item.substr(0, eq);
    const int64_t v = std::stoll(item.substr(eq + 1));
    if (key == "mb") p.mb = static_cast<int>(v);
    else if (key == "nb") p.nb = static_cast<int>(v);
    else if (key == "ng") p.n_group = static_cast<int>(v);
    else if (key == "kb") p.k_block = v;
    else if (key == "emb") p.embedded_broadcast = v != 0;
    else if (key == "pf") p.prefetch = static_cast<int>(v);  // 1 B, 2 C, 3 both
    else throw std::runtime_error("--sdnn-plan: unknown key '" + key + "' (mb, nb, ng, kb, emb, pf)");
  }
}

// The core's FP32 FMA throughput for the ISA, measured now: 12 independent accumulator chains
// (enough to cover the FMA latency on two pipes), register operands only, best of 5 runs.
class FmaPeakProbe : public Xbyak::CodeGenerator {
 public:
  explicit FmaPeakProbe(bool zmm) {
    Xbyak::Label loop;
    // Zero operands: garbage left in the registers could be denormal and take microcode assists.
    for (int i = 0; i < 16; ++i) vxorps(Xbyak::Ymm(i), Xbyak::Ymm(i), Xbyak::Ymm(i));
    if (zmm) {
      vpxord(Xbyak::Zmm(30), Xbyak::Zmm(30), Xbyak::Zmm(30));
      vpxord(Xbyak::Zmm(31), Xbyak::Zmm(31), Xbyak::Zmm(31));
    }
    mov(rax, rdi);
    L(loop);
    for (int u = 0; u < 4; ++u)
      for (int i = 0; i < 12; ++i) {
        if (zmm) vfmadd231ps(Xbyak::Zmm(i), Xbyak::Zmm(30), Xbyak::Zmm(31));
        else vfmadd231ps(Xbyak::Ymm(i), Xbyak::Ymm(14), Xbyak::Ymm(15));
      }
    dec(rax);
    jnz(loop);
    vzeroupper();
    ret();
  }
};

double measure_fma_peak(bool zmm) {
  FmaPeakProbe probe(zmm);
  auto fn = probe.getCode<void (*)(long)>();
  const long iters = 2000000;  // 96 M FMAs, tens of ms
  double best = 0.0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    fn(iters);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, iters * 48.0 * (zmm ? 32 : 16) / s / 1e9);
  }
  return best;
}

const std::vector<std::string> kPeerNames = {"sdnn",    "sdnn-alt",   "sdnn-perm",    "sdnn-tuned", "sdnn-tuned-1t",
                                             "sdnn-dense", "sdnn-rm", "sdnn-compact", "libxsmm",    "libxsmm-1t",
                                             "dnnl",       "openblas"};

struct Problem {
  int64_t m = 0, k = 0, n = 0;
  double sparsity = 0.0;
  std::string shape() const {
    return std::to_string(m) + "x" + std::to_string(k) + "x" + std::to_string(n);
  }
};

// ---------------------------------------------------------------------------------------------
// Data: A (one copy), B and C copies for rotation, the double-precision reference for copy 0.

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using AlignedFloats = std::unique_ptr<float[], FreeDeleter>;

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

AlignedFloats alloc_floats(int64_t count) {
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(count, 1) * 4, 64));
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::runtime_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, bytes);
  return AlignedFloats(static_cast<float*>(p));
}

// The activation layouts: row-major [rows][N], and the generated kernels' blocked layout
// (sdnn_plan.h): N padded to VL and cut into blocks of VL columns, each block [rows][VL].
enum class Layout { RowMajor, Blocked };

// Rotating copies of B [K x N] and C [M x N] in one layout.
struct Activations {
  Layout layout = Layout::RowMajor;
  int64_t k = 0, m = 0, n = 0, vl = 1;
  int64_t cols = 0;  // stored columns (N, or N padded to VL)
  int64_t b_stride = 0, c_stride = 0;  // floats between copies (64-byte multiples)
  AlignedFloats b_all, c_all;

  const float* b(int i) const { return b_all.get() + i * b_stride; }
  float* c(int i) const { return c_all.get() + i * c_stride; }
  int64_t c_floats() const { return m * cols; }
  double bytes_per_copy() const { return 4.0 * static_cast<double>((k + m) * cols); }
  // Element (row, col) of a [rows x N] operand in this layout.
  int64_t at(int64_t rows, int64_t row, int64_t col) const {
    return layout == Layout::RowMajor ? row * n + col : (col / vl * rows + row) * vl + col % vl;
  }
};

void pack_blocked(const float* src, int64_t rows, int64_t n, int64_t vl, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += vl) {
    const int64_t w = std::min(vl, n - j0);
    float* block = dst + j0 * rows;
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(block + r * vl, src + r * n + j0, w * sizeof(float));
      std::fill(block + r * vl + w, block + (r + 1) * vl, 0.0f);
    }
  }
}

void unpack_blocked(const float* src, int64_t rows, int64_t n, int64_t vl, float* dst) {
  for (int64_t j0 = 0; j0 < n; j0 += vl) {
    const int64_t w = std::min(vl, n - j0);
    const float* block = src + j0 * rows;
    for (int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * n + j0, block + r * vl, w * sizeof(float));
  }
}

Activations make_activations(Layout layout, const Problem& pb, int64_t vl, int copies, const float* b0) {
  Activations act;
  act.layout = layout;
  act.k = pb.k;
  act.m = pb.m;
  act.n = pb.n;
  act.vl = layout == Layout::Blocked ? vl : 1;
  act.cols = round_up(pb.n, act.vl);
  act.b_stride = round_up(pb.k * act.cols, 16);
  act.c_stride = round_up(pb.m * act.cols, 16);
  act.b_all = alloc_floats(act.b_stride * copies);
  act.c_all = alloc_floats(act.c_stride * copies);
  for (int i = 0; i < copies; ++i) {
    float* b = act.b_all.get() + i * act.b_stride;
    if (layout == Layout::RowMajor) std::memcpy(b, b0, pb.k * pb.n * sizeof(float));
    else pack_blocked(b0, pb.k, pb.n, act.vl, b);
  }
  return act;
}

struct Workload {
  Problem pb;
  AlignedFloats a;  // M x K row-major, pruned entries are 0 (the one copy of the weights)
  sdnn::backend::SparseMatrix csr;
  int copies = 0;
  Activations row_major, blocked;
  std::vector<double> ref, scale;  // copy 0: sum_k A_ik B_kj and sum_k |A_ik B_kj|, row-major
  // The plan sdnn-tuned's tuning picked, reused by sdnn-tuned-1t so both run the same kernel.
  mutable std::optional<sdnn::backend::KernelPlan> tuned_plan;

  int64_t nnz() const { return csr.nnz(); }
  const Activations& act(Layout l) const { return l == Layout::RowMajor ? row_major : blocked; }
};

std::unique_ptr<Workload> make_workload(const Problem& pb, const Options& opt, Isa isa) {
  auto w = std::make_unique<Workload>();
  w->pb = pb;
  const int64_t mk = pb.m * pb.k;
  std::mt19937_64 rng(opt.seed ^ (static_cast<uint64_t>(pb.m) << 40) ^ (static_cast<uint64_t>(pb.k) << 20) ^
                      static_cast<uint64_t>(pb.n));
  std::normal_distribution<float> normal;

  // A: unit Gaussian, then exactly round(sparsity * M * K) smallest magnitudes set to zero.
  w->a = alloc_floats(mk);
  float* a = w->a.get();
  for (int64_t i = 0; i < mk; ++i) a[i] = normal(rng);
  const int64_t zeros = std::clamp<int64_t>(std::llround(pb.sparsity * static_cast<double>(mk)), 0, mk);
  if (zeros > 0) {
    std::vector<int64_t> order(mk);
    std::iota(order.begin(), order.end(), 0);
    auto smaller = [a](int64_t x, int64_t y) {
      const float ax = std::fabs(a[x]), ay = std::fabs(a[y]);
      return ax < ay || (ax == ay && x < y);
    };
    if (zeros < mk) std::nth_element(order.begin(), order.begin() + zeros, order.end(), smaller);
    for (int64_t i = 0; i < zeros; ++i) a[order[i]] = 0.0f;
  }
  w->csr = sdnn::backend::SparseMatrix::from_dense(a, pb.m, pb.k);

  // B (same values in every copy and layout); enough copies that the rotation of each layout
  // exceeds the requested size (and the L2). The blocked layout is never smaller.
  std::vector<float> b0(pb.k * pb.n);
  for (float& x : b0) x = normal(rng);
  const double per_copy = 4.0 * static_cast<double>((pb.k + pb.m) * pb.n);
  w->copies = std::max(2, static_cast<int>(std::ceil(opt.rotate_mib * 1024.0 * 1024.0 / per_copy)));
  w->row_major = make_activations(Layout::RowMajor, pb, 1, w->copies, b0.data());
  w->blocked = make_activations(Layout::Blocked, pb, sdnn::backend::vector_floats(isa), w->copies, b0.data());

  // Reference for copy 0, from the CSR form (only nonzeros contribute).
  const int64_t mn = pb.m * pb.n;
  w->ref.assign(mn, 0.0);
  w->scale.assign(mn, 0.0);
  const auto& s = w->csr;
  for (int64_t r = 0; r < pb.m; ++r) {
    double* ref = &w->ref[r * pb.n];
    double* scale = &w->scale[r * pb.n];
    for (int64_t e = s.row_ptr[r]; e < s.row_ptr[r + 1]; ++e) {
      const double v = s.val[e];
      const float* brow = b0.data() + static_cast<int64_t>(s.col[e]) * pb.n;
      for (int64_t j = 0; j < pb.n; ++j) {
        const double t = v * brow[j];
        ref[j] += t;
        scale[j] += std::fabs(t);
      }
    }
  }
  return w;
}

// ---------------------------------------------------------------------------------------------
// Team: the threads of a multi-thread peer call. The calling thread is member 0 (as runtime_min's
// pool: "thread 0 is the caller"), members 1..T-1 are persistent std::threads. run(job, arg)
// publishes a job by bumping a generation counter, runs job(arg, 0) itself and spins until every
// worker has finished its share. Workers spin (pause) on the counter for --spin-us after their
// last job, then sleep on a condition variable; park() makes them sleep at once (before a settle,
// so that our spinning never counts against another peer). Lost wake-ups cannot happen: a worker
// announces itself in `sleepers_` before re-checking the counter under the mutex, and run()
// bumps the counter before reading `sleepers_` (both sequentially consistent).

using Clock = std::chrono::steady_clock;

class Team {
 public:
  using Job = void (*)(void* arg, int member);

  Team(int size, double spin_us) : spin_s_(spin_us * 1e-6) {
    for (int i = 1; i < size; ++i) workers_.push_back(std::make_unique<Worker>());
    for (size_t i = 0; i < workers_.size(); ++i) {
      workers_[i]->thread = std::thread([this, i] { loop(static_cast<int>(i) + 1, *workers_[i]); });
      pthread_setname_np(workers_[i]->thread.native_handle(), ("bench-team-" + std::to_string(i + 1)).c_str());
    }
  }
  ~Team() {
    stop_.store(true);
    gen_.fetch_add(1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    for (auto& w : workers_) w->thread.join();
  }
  Team(const Team&) = delete;
  Team& operator=(const Team&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void run(Job job, void* arg) {
    job_ = job;
    arg_ = arg;
    park_.store(false, std::memory_order_relaxed);
    const uint32_t g = gen_.fetch_add(1) + 1;
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      cv_.notify_all();
    }
    job(arg, 0);
    for (auto& w : workers_)
      while (w->done.load(std::memory_order_acquire) != g) _mm_pause();
  }

  // Workers go to sleep now instead of spinning for --spin-us.
  void park() { park_.store(true); }

 private:
  struct alignas(64) Worker {
    std::thread thread;
    std::atomic<uint32_t> done{0};
  };

  void loop(int member, Worker& self) {
    uint32_t seen = 0;
    for (;;) {
      uint32_t g;
      auto spin_start = Clock::now();
      int spins = 0;
      while ((g = gen_.load(std::memory_order_acquire)) == seen) {
        _mm_pause();
        if (++spins % 64 != 0) continue;
        if (!park_.load(std::memory_order_relaxed) &&
            std::chrono::duration<double>(Clock::now() - spin_start).count() < spin_s_)
          continue;
        sleepers_.fetch_add(1);
        {
          std::unique_lock<std::mutex> lock(mu_);
          cv_.wait(lock, [&] { return gen_.load() != seen; });
        }
        sleepers_.fetch_sub(1);
        spin_start = Clock::now();
        spins = 0;
      }
      seen = g;
      if (stop_.load()) return;
      job_(arg_, member);
      self.done.store(g, std::memory_order_release);
    }
  }

  const double spin_s_;
  std::vector<std::unique_ptr<Worker>> workers_;
  Job job_ = nullptr;  // written before the generation bump that publishes it
  void* arg_ = nullptr;
  alignas(64) std::atomic<uint32_t> gen_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<bool> park_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

// CPU time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// T > 1: waits until no helper thread of any library spins any more: sleeps in probe steps until
// one step passes with the process using under 25 % of one core (the caller sleeps, so only other
// threads count; a spinning thread shows as ~100 %; a quiet step measures 30-80 us of CPU per
// 600 us here, the sleeping caller's own wake-up in this VM), at most max_ms. Returns the milliseconds waited; *quiet tells whether it got there.
double settle(Team* team, double probe_us, double max_ms, bool* quiet) {
  if (team) team->park();
  const auto start = Clock::now();
  const auto probe = std::chrono::nanoseconds(static_cast<int64_t>(probe_us * 1e3));
  for (;;) {
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(probe);
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    const double busy = process_cpu_seconds() - c0;
    const double waited_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (busy < 0.25 * wall) {
      *quiet = true;
      return waited_ms;
    }
    if (waited_ms >= max_ms) {
      *quiet = false;
      return waited_ms;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Peers. run(b, c) computes C = A * B for one B/C copy in the peer's layout; everything else is
// set up beforehand.

class Peer {
 public:
  explicit Peer(std::string name) : name_(std::move(name)) {}
  virtual ~Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  const std::string& name() const { return name_; }
  virtual Layout layout() const { return Layout::RowMajor; }
  virtual void run(const float* b, float* c) = 0;
  virtual std::string details() const { return {}; }
  virtual int64_t code_bytes() const { return -1; }

 private:
  std::string name_;
};

// A generated kernel, driven exactly as runtime_min drives one step: with one thread, one call per
// k block over all row tiles of that block and all (padded) columns, values at the block's offset,
// B and C blocked. With a team of T > 1 threads, runtime_min's sdnn_kernel_split_init splits the
// step into tasks (row-tile ranges x column ranges) and each member runs its own tasks as
// runtime_min's run_kernel_tasks does: per task, one call per k block in increasing order, on the
// task's tiles and columns (a column range at n0 starts n0 * K floats into B and n0 * M into C).
// With `row_major` (the sdnn-rm peer) B is packed into a scratch buffer first and C unpacked from
// one afterwards, inside the timed call (on the calling thread).
class SdnnPeer : public Peer {
 public:
  SdnnPeer(const std::string& name, Family family, Isa isa, bool row_major, bool permute, bool tune,
           const Workload& w, Team* team, const std::string& split)
      : Peer(name), row_major_(row_major), team_(team) {
    const Problem& pb = w.pb;
    plan_ = sdnn::backend::default_plan(family, isa, pb.m, pb.k, pb.n, false, sdnn::backend::Activation::None);
    sdnn::backend::group_columns(plan_, w.csr.nnz());  // as the compiler's lowering
    if (permute) {
      // sdnn-tuned as the compiler's permute-rows pass (an order only when it saves enough B
      // loads); sdnn-perm always the order with the fewest B loads per chunk, to measure it.
      sdnn::passes::ChosenOrder c = sdnn::passes::choose_row_order(
          w.a.get(), pb.m, pb.k, plan_.mb, name == "sdnn-perm" ? 0.0 : sdnn::passes::kMinLoadSaving);
      loads_before_ = c.loads_before;
      loads_after_ = c.loads_after;
      plan_.row_order = std::move(c.order);
    }
    if (tune && w.tuned_plan) {
      plan_ = *w.tuned_plan;  // the other sdnn-tuned peer of this point tuned it already
    } else if (tune) {
      // As sdnnc's default --tune=fast, without the cache (the tuner times one thread).
      sdnn::backend::TuneOptions topt;
      topt.level = sdnn::backend::TuneLevel::Fast;
      plan_ = sdnn::backend::tune_plan(plan_, w.csr, topt, nullptr);
      w.tuned_plan = plan_;
    }
    if (name == "sdnn" && !g_sdnn_plan.empty()) apply_plan_override(plan_, g_sdnn_plan);
    if (name == "sdnn-alt") apply_plan_override(plan_, g_sdnn_alt_plan);
    sdnn::backend::KernelBinary bin = sdnn::backend::emit_kernel(plan_, w.csr, sdnn::backend::kernel_symbol(0, plan_));
    code_bytes_ = static_cast<int64_t>(bin.code.size());
    num_values_ = static_cast<int64_t>(bin.values.size());
    values_ = alloc_floats(num_values_);
    std::copy(bin.values.begin(), bin.values.end(), values_.get());
    block_offsets_ = bin.block_offsets;
    jit_ = std::make_unique<sdnn::backend::JitKernel>(bin.code);
    fn_ = jit_->fn();
    tiles_ = plan_.num_tiles();
    k_blocks_ = plan_.num_k_blocks();
    m_ = pb.m;
    k_ = pb.k;
    n_ = pb.n;
    vl_ = sdnn::backend::vector_floats(isa);
    if (plan_.n != round_up(n_, vl_)) throw std::runtime_error("plan N is not N padded to the vector width");
    if (static_cast<int64_t>(block_offsets_.size()) != tiles_ * k_blocks_ + 1)
      throw std::runtime_error("kernel block offsets do not match the plan");
    if (row_major_) {
      b_scratch_ = alloc_floats(k_ * plan_.n);
      c_scratch_ = alloc_floats(m_ * plan_.n);
    }
    if (team_ && team_->size() > 1) {
      if (split == "columns") split_columns();
      else split_for_team(split == "runtime-rows" ? SDNN_SPLIT_ROWS : SDNN_SPLIT_COLUMNS, split == "runtime-whole-tiles");
    }
  }
  Layout layout() const override { return row_major_ ? Layout::RowMajor : Layout::Blocked; }
  void run(const float* b, float* c) override {
    if (!row_major_) return kernel(b, c);
    pack_blocked(b, k_, n_, vl_, b_scratch_.get());
    kernel(b_scratch_.get(), c_scratch_.get());
    unpack_blocked(c_scratch_.get(), m_, n_, vl_, c);
  }
  std::string details() const override {
    std::ostringstream os;
    os << "plan " << plan_.str() << ", " << tiles_ << " tiles x " << k_blocks_ << " k blocks, code "
       << code_bytes_ << " B, values " << num_values_ * 4 << " B"
       << (row_major_ ? ", row-major B/C packed/unpacked in the call" : ", blocked B/C");
    if (loads_before_ >= 0)
      os << ", rows permuted: B loads per column chunk " << loads_before_ << " -> " << loads_after_
         << (plan_.row_order.empty() ? " (model order kept)" : "");
    if (!split_text_.empty()) os << ", " << split_text_;
    return os.str();
  }
  int64_t code_bytes() const override { return code_bytes_; }

 private:
  struct Task {
    int64_t n0, n1, t0, t1;
  };
  struct Call {
    SdnnPeer* self;
    const float* b;
    float* c;
  };

  // The tasks runtime_min gives each of the team's threads for this kernel step (batch 1). With
  // whole_tiles (--split runtime-whole-tiles, for A/B runs), a row tile the runtime cut by columns
  // between two threads goes whole to the one holding more of its columns: the tile-granular split
  // runtime_min made before it cut boundary tiles (session 9).
  void split_for_team(uint32_t policy, bool whole_tiles = false) {
    sdnn_kernel_step step{};
    step.split = policy;
    step.fn = fn_;
    step.values = values_.get();
    step.bias = nullptr;
    step.block_offsets = block_offsets_.data();
    step.num_tiles = tiles_;
    step.num_k_blocks = k_blocks_;
    step.n = plan_.n;
    step.n_align = plan_.column_align();
    step.batch = 1;
    step.b_batch_stride = k_ * plan_.n;
    step.c_batch_stride = m_ * plan_.n;
    step.b_col_scale = k_;
    step.c_col_scale = m_;
    step.name = "bench";
    sdnn_kernel_split split;
    if (sdnn_kernel_split_init(&split, &step, team_->size()) != 0) throw std::bad_alloc();
    tasks_.assign(team_->size(), {});
    std::ostringstream os;
    os << "runtime split (" << (policy == SDNN_SPLIT_ROWS ? "rows" : "auto") << ") over " << split.num_threads << " of " << team_->size() << " threads:";
    for (int t = 0; t < split.num_threads; ++t) {
      os << (t ? " |" : "");
      for (int64_t i = split.first[t]; i < split.first[t + 1]; ++i) {
        const sdnn_kernel_task& task = split.tasks[i];
        if (task.b0 != 0 || task.b1 != 1) {
          sdnn_kernel_split_free(&split);
          throw std::runtime_error("unexpected batch range in the runtime's split");
        }
        tasks_[t].push_back({task.n0, task.n1, task.t0, task.t1});
        int64_t nz = 0;
        for (int64_t kb = 0; kb < k_blocks_; ++kb)
          nz += block_offsets_[kb * tiles_ + task.t1] - block_offsets_[kb * tiles_ + task.t0];
        os << " tiles [" << task.t0 << "," << task.t1 << ") cols [" << task.n0 << "," << task.n1 << ") " << nz
           << " nz";
      }
    }
    split_threads_ = split.num_threads;
    if (whole_tiles) {
      // Only a cut row split is undone: every task of several tiles spans all columns, and each
      // tile run on part of the columns is run by exactly two tasks, [0, c) and [c, n). Other
      // splits (few tiles: tiles shared out by columns on purpose) stay as they are.
      std::map<int64_t, std::vector<std::pair<int, Task>>> parts;  // tile -> (thread, task)
      bool cut_split = true;
      for (int t = 0; t < split.num_threads; ++t)
        for (const Task& task : tasks_[t]) {
          const bool partial = task.n0 > 0 || task.n1 < plan_.n;
          if (partial && task.t1 > task.t0 + 1) cut_split = false;
          if (partial && task.t1 == task.t0 + 1) parts[task.t0].push_back({t, task});
        }
      for (const auto& [tile, pieces] : parts) {
        const bool pair = pieces.size() == 2 &&
                          ((pieces[0].second.n0 == 0 && pieces[0].second.n1 == pieces[1].second.n0 &&
                            pieces[1].second.n1 == plan_.n) ||
                           (pieces[1].second.n0 == 0 && pieces[1].second.n1 == pieces[0].second.n0 &&
                            pieces[0].second.n1 == plan_.n));
        cut_split = cut_split && pair;
      }
      if (!cut_split || parts.empty()) {
        os << " (--split runtime-whole-tiles: no cut tile, split unchanged)";
      } else {
        // The wider piece of each cut tile becomes the whole tile; the narrower one goes.
        std::map<int64_t, int> owner;
        for (const auto& [tile, pieces] : parts) {
          const Task& a = pieces[0].second;
          const Task& b = pieces[1].second;
          owner[tile] = a.n1 - a.n0 >= b.n1 - b.n0 ? pieces[0].first : pieces[1].first;
        }
        for (int t = 0; t < split.num_threads; ++t) {
          std::vector<Task> kept;
          for (Task task : tasks_[t]) {
            auto it = owner.find(task.t0);
            if (task.t1 == task.t0 + 1 && it != owner.end()) {
              if (it->second != t) continue;
              task.n0 = 0;
              task.n1 = plan_.n;
            }
            kept.push_back(task);
          }
          tasks_[t] = kept;
        }
        os << " -> boundary tiles whole (--split runtime-whole-tiles)";
      }
    }
    if (split_threads_ == 1) os << " (too little work to split: runs on the calling thread alone)";
    sdnn_kernel_split_free(&split);
    split_text_ = os.str();
  }

  // --split columns (an experiment, not what runtime_min does): every thread runs all row tiles on
  // its own contiguous range of column chunks (cut at multiples of column_align()), so each reads
  // only its part of B but all of the weights and code.
  void split_columns() {
    const int threads = team_->size();
    const int64_t align = plan_.column_align();
    const int64_t units = (plan_.n + align - 1) / align;
    tasks_.assign(threads, {});
    std::ostringstream os;
    os << "column split (--split columns, not the runtime's) over";
    split_threads_ = 0;  // the non-empty ranges go to members 0, 1, ... (fewer chunks than threads)
    for (int t = 0; t < threads; ++t) {
      const int64_t n0 = std::min(plan_.n, units * t / threads * align);
      const int64_t n1 = std::min(plan_.n, units * (t + 1) / threads * align);
      if (n1 <= n0) continue;
      os << (split_threads_ ? " |" : "") << " cols [" << n0 << "," << n1 << ")";
      tasks_[split_threads_++].push_back({n0, n1, 0, tiles_});
    }
    os << " (" << split_threads_ << " threads)";
    split_text_ = os.str();
  }

  static void member_share(void* arg, int member) {
    const Call* call = static_cast<const Call*>(arg);
    call->self->run_tasks(member, call->b, call->c);
  }

  void run_tasks(int member, const float* b, float* c) const {
    for (const Task& task : tasks_[member]) {
      sdnn_kernel_args args{};
      args.b = b + task.n0 * k_;
      args.c = c + task.n0 * m_;
      args.bias = nullptr;
      args.n = task.n1 - task.n0;
      for (int64_t kb = 0; kb < k_blocks_; ++kb) {
        args.block_begin = kb * tiles_ + task.t0;
        args.block_end = kb * tiles_ + task.t1;
        args.values = values_.get() + block_offsets_[args.block_begin];
        fn_(&args);
      }
    }
  }

  void kernel(const float* b, float* c) {
    if (split_threads_ > 1) {
      Call call{this, b, c};
      team_->run(&SdnnPeer::member_share, &call);
      return;
    }
    if (split_threads_ == 1) return run_tasks(0, b, c);  // as the runtime: no wake-up, no barrier
    sdnn_kernel_args args{};
    args.b = b;
    args.c = c;
    args.bias = nullptr;
    args.n = plan_.n;
    for (int64_t kb = 0; kb < k_blocks_; ++kb) {
      args.block_begin = kb * tiles_;
      args.block_end = (kb + 1) * tiles_;
      args.values = values_.get() + block_offsets_[args.block_begin];
      fn_(&args);
    }
  }

  bool row_major_;
  Team* team_;
  sdnn::backend::KernelPlan plan_;
  std::unique_ptr<sdnn::backend::JitKernel> jit_;
  sdnn_kernel_fn fn_ = nullptr;
  AlignedFloats values_, b_scratch_, c_scratch_;
  std::vector<int64_t> block_offsets_;
  std::vector<std::vector<Task>> tasks_;  // per team member; empty: one thread, no team
  std::string split_text_;
  int split_threads_ = 0;  // threads the runtime's split uses; 0: no team (one thread)
  int64_t loads_before_ = -1, loads_after_ = -1;  // sdnn-perm: tile_loads in model / chosen order
  int64_t code_bytes_ = 0, num_values_ = 0, tiles_ = 0, k_blocks_ = 0, m_ = 0, k_ = 0, n_ = 0, vl_ = 0;
};

int checked_int(int64_t v, const char* what) {
  if (v > INT_MAX) throw std::runtime_error(std::string(what) + " exceeds int range");
  return static_cast<int>(v);
}

// libxsmm_spmdm: A converted to CSR slices here (not timed); run() is the compute phase only.
// alpha is ignored by libxsmm 1.17 (documented in its header); beta = 0 overwrites C. With a team
// of T threads the handle has max_threads T (one scratch area per thread) and member t runs the
// compute blocks [t*ceil(B/T), (t+1)*ceil(B/T)) with tid t of T, as `#pragma omp for` (static
// schedule) does in libxsmm's spmdm sample.
class LibxsmmPeer : public Peer {
 public:
  LibxsmmPeer(const Workload& w, Team* team, const std::string& name = "libxsmm") : Peer(name), team_(team) {
    const int m = checked_int(w.pb.m, "M"), n = checked_int(w.pb.n, "N"), k = checked_int(w.pb.k, "K");
    threads_ = team_ ? team_->size() : 1;
    libxsmm_spmdm_init(m, n, k, threads_, &handle_, &slices_);
    const int slice_blocks = libxsmm_spmdm_get_num_createSparseSlice_blocks(&handle_);
    for (int i = 0; i < slice_blocks; ++i)
      libxsmm_spmdm_createSparseSlice_fp32_thread(&handle_, 'N', w.a.get(), slices_, i, /*tid=*/0, /*nthreads=*/1);
    compute_blocks_ = libxsmm_spmdm_get_num_compute_blocks(&handle_);
  }
  ~LibxsmmPeer() override { libxsmm_spmdm_destroy(&handle_); }
  void run(const float* b, float* c) override {
    if (threads_ == 1) return blocks(0, b, c);
    Call call{this, b, c};
    team_->run(&LibxsmmPeer::member_share, &call);
  }
  std::string details() const override {
    std::ostringstream os;
    os << "spmdm blocks bm=" << handle_.bm << " bn=" << handle_.bn << " bk=" << handle_.bk << " (" << handle_.mb
       << "x" << handle_.nb << "x" << handle_.kb << "), " << compute_blocks_ << " compute blocks, ";
    if (threads_ == 1) {
      os << "one thread";
    } else {
      const int chunk = (compute_blocks_ + threads_ - 1) / threads_;
      os << threads_ << " threads (blocks per thread:";
      for (int t = 0; t < threads_; ++t)
        os << ' ' << std::max(0, std::min(compute_blocks_, (t + 1) * chunk) - std::min(compute_blocks_, t * chunk));
      os << ')';
    }
    return os.str();
  }

 private:
  struct Call {
    LibxsmmPeer* self;
    const float* b;
    float* c;
  };
  static void member_share(void* arg, int member) {
    const Call* call = static_cast<const Call*>(arg);
    call->self->blocks(member, call->b, call->c);
  }
  void blocks(int tid, const float* b, float* c) {
    const int chunk = (compute_blocks_ + threads_ - 1) / threads_;
    const int end = std::min(compute_blocks_, (tid + 1) * chunk);
    for (int i = tid * chunk; i < end; ++i)
      libxsmm_spmdm_compute_fp32_thread(&handle_, 'N', 'N', &alpha_, slices_, b, 'N', &beta_, c, i, tid, threads_);
  }

  Team* team_;
  int threads_ = 1;
  libxsmm_spmdm_handle handle_{};
  libxsmm_CSR_sparseslice* slices_ = nullptr;
  int compute_blocks_ = 0;
  float alpha_ = 1.0f, beta_ = 0.0f;
};

class DnnlPeer : public Peer {
 public:
  explicit DnnlPeer(const Workload& w) : Peer("dnnl"), a_(w.a.get()), m_(w.pb.m), k_(w.pb.k), n_(w.pb.n) {}
  void run(const float* b, float* c) override {
    const dnnl_status_t st = dnnl_sgemm('N', 'N', m_, n_, k_, 1.0f, a_, k_, b, n_, 0.0f, c, n_);
    if (st != dnnl_success) throw std::runtime_error("dnnl_sgemm returned status " + std::to_string(st));
  }
  std::string details() const override { return "dnnl_sgemm row-major N,N (dense A), OpenMP threads from OMP_NUM_THREADS"; }

 private:
  const float* a_;
  int64_t m_, k_, n_;
};

class OpenblasPeer : public Peer {
 public:
  explicit OpenblasPeer(const Workload& w)
      : Peer("openblas"),
        a_(w.a.get()),
        m_(checked_int(w.pb.m, "M")),
        k_(checked_int(w.pb.k, "K")),
        n_(checked_int(w.pb.n, "N")) {}
  void run(const float* b, float* c) override {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m_, n_, k_, 1.0f, a_, k_, b, n_, 0.0f, c, n_);
  }
  std::string details() const override {
    return "cblas_sgemm row-major N,N (dense A), " + std::to_string(openblas_get_num_threads()) + " OpenBLAS thread(s)";
  }

 private:
  const float* a_;
  int m_, k_, n_;
};

// sdnn-compact (opt-in, one thread, AVX-512): the "compact variant" DESIGN.md allows beside the
// unrolled kernels — no generated code, a short loop per output row over a stream of (B row offset,
// value) pairs. Each row's accumulators span up to 128 columns (8 zmm, the last one masked), so a
// nonzero is one broadcast and up to 8 FMAs with B operands from memory: one 512-bit load per FMA,
// where the generated kernel shares each B load among the rows of a 28-row tile but needs about 10
// bytes of code per FMA. K is blocked (--compact-kb rows) so a block of B stays in L1D; C is
// reloaded per K block. Row-major B and C, like the library peers. Two accumulator sets take
// alternate nonzeros (the FMA latency would otherwise bound a row with 8 vectors).
class CompactPeer : public Peer {
 public:
  CompactPeer(const Workload& w, int64_t kb) : Peer("sdnn-compact"), m_(w.pb.m), k_(w.pb.k), n_(w.pb.n), kb_(kb) {
    if (!__builtin_cpu_supports("avx512f")) throw std::runtime_error("sdnn-compact needs AVX-512");
    if (kb_ < 1) throw std::runtime_error("--compact-kb must be positive");
    if (k_ * n_ > INT32_MAX) throw std::runtime_error("sdnn-compact: K x N beyond its 32-bit offsets");
    // Stream order: K block, then row; per (block, row) a count, then that many offsets / values.
    const auto& s = w.csr;
    for (int64_t k0 = 0; k0 < k_; k0 += kb_) {
      for (int64_t r = 0; r < m_; ++r) {
        int32_t count = 0;
        for (int64_t e = s.row_ptr[r]; e < s.row_ptr[r + 1]; ++e) {
          if (s.col[e] < k0 || s.col[e] >= k0 + kb_) continue;
          off_.push_back(static_cast<int32_t>(s.col[e] * n_));
          val_.push_back(s.val[e]);
          ++count;
        }
        count_.push_back(count);
      }
    }
  }
  void run(const float* b, float* c) override {
    for (int64_t n0 = 0; n0 < n_; n0 += 128) {
      const int64_t w = std::min<int64_t>(128, n_ - n0);
      const int nv = static_cast<int>((w + 15) / 16);
      const __mmask16 tail = static_cast<__mmask16>((1u << (w - 16 * (nv - 1))) - 1);
      if (tail == 0xffff) {
        dispatch<false>(nv, b + n0, c + n0, tail);
      } else {
        dispatch<true>(nv, b + n0, c + n0, tail);
      }
    }
  }
  std::string details() const override {
    return "compact offset-stream loop, rows x 128-column chunks, k block " + std::to_string(kb_) + ", stream " +
           std::to_string(off_.size() * 8 + count_.size() * 4) + " B (4-byte offset + value per nonzero)";
  }

 private:
  template <bool MASKED>
  void dispatch(int nv, const float* b, float* c, __mmask16 tail) const {
    switch (nv) {
      case 1: chunk<1, MASKED>(b, c, tail); break;
      case 2: chunk<2, MASKED>(b, c, tail); break;
      case 3: chunk<3, MASKED>(b, c, tail); break;
      case 4: chunk<4, MASKED>(b, c, tail); break;
      case 5: chunk<5, MASKED>(b, c, tail); break;
      case 6: chunk<6, MASKED>(b, c, tail); break;
      case 7: chunk<7, MASKED>(b, c, tail); break;
      default: chunk<8, MASKED>(b, c, tail); break;
    }
  }
  // Vector j of a row: plain loads and stores but for a masked last vector.
  template <int NV, bool MASKED>
  __attribute__((target("avx512f"), always_inline)) static inline __m512 load(const float* p, int j, __mmask16 tail) {
    if (MASKED && j == NV - 1) return _mm512_maskz_loadu_ps(tail, p + 16 * j);
    return _mm512_loadu_ps(p + 16 * j);
  }
  template <int NV, bool MASKED>
  __attribute__((target("avx512f"))) void chunk(const float* b, float* c, __mmask16 tail) const {
    const int32_t* off = off_.data();
    const float* val = val_.data();
    const int32_t* count = count_.data();
    for (int64_t k0 = 0; k0 < k_; k0 += kb_) {
      for (int64_t r = 0; r < m_; ++r) {
        float* crow = c + r * n_;
        __m512 acc[NV], alt[NV];
        for (int j = 0; j < NV; ++j) {
          acc[j] = k0 == 0 ? _mm512_setzero_ps() : load<NV, MASKED>(crow, j, tail);
          alt[j] = _mm512_setzero_ps();
        }
        int32_t e = 0;
        const int32_t n = *count++;
        for (; e + 2 <= n; e += 2) {
          const float* p = b + off[e];
          const float* q = b + off[e + 1];
          const __m512 x = _mm512_set1_ps(val[e]), y = _mm512_set1_ps(val[e + 1]);
          for (int j = 0; j < NV; ++j) {
            acc[j] = _mm512_fmadd_ps(x, load<NV, MASKED>(p, j, tail), acc[j]);
            alt[j] = _mm512_fmadd_ps(y, load<NV, MASKED>(q, j, tail), alt[j]);
          }
        }
        if (e < n) {
          const float* p = b + off[e];
          const __m512 x = _mm512_set1_ps(val[e]);
          for (int j = 0; j < NV; ++j) acc[j] = _mm512_fmadd_ps(x, load<NV, MASKED>(p, j, tail), acc[j]);
        }
        off += n;
        val += n;
        for (int j = 0; j < NV; ++j) {
          const __m512 sum = _mm512_add_ps(acc[j], alt[j]);
          if (MASKED && j == NV - 1) {
            _mm512_mask_storeu_ps(crow + 16 * j, tail, sum);
          } else {
            _mm512_storeu_ps(crow + 16 * j, sum);
          }
        }
      }
    }
  }

  int64_t m_, k_, n_, kb_;
  std::vector<int32_t> off_;
  std::vector<float> val_;
  std::vector<int32_t> count_;
};

int64_t g_compact_kb = 64;

// `team` is null with one thread.
std::unique_ptr<Peer> make_peer(const std::string& name, Isa isa, const Workload& w, Team* team,
                                const std::string& split) {
  if (name == "sdnn") return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, false, false, false, w, team, split);
  if (name == "sdnn-alt")
    return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, false, false, false, w, team,
                                      g_sdnn_alt_split.empty() ? split : g_sdnn_alt_split);
  if (name == "sdnn-perm")
    return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, false, true, false, w, team, split);
  if (name == "sdnn-tuned")
    return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, false, true, true, w, team, split);
  if (name == "sdnn-tuned-1t")  // the same plan on the calling thread alone
    return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, false, true, true, w, nullptr, split);
  if (name == "sdnn-dense")
    return std::make_unique<SdnnPeer>(name, Family::Dense, isa, false, false, false, w, team, split);
  if (name == "sdnn-rm") return std::make_unique<SdnnPeer>(name, Family::Spmm, isa, true, false, false, w, team, split);
  if (name == "libxsmm") return std::make_unique<LibxsmmPeer>(w, team);
  if (name == "libxsmm-1t") return std::make_unique<LibxsmmPeer>(w, nullptr, name);
  if (name == "dnnl") return std::make_unique<DnnlPeer>(w);
  if (name == "sdnn-compact") {
    if (team) throw std::runtime_error("sdnn-compact runs on one thread only (--threads 1)");
    return std::make_unique<CompactPeer>(w, g_compact_kb);
  }
  if (name == "openblas") return std::make_unique<OpenblasPeer>(w);
  throw std::runtime_error("unknown peer " + name);
}

// ---------------------------------------------------------------------------------------------
// Measurement.

struct PeerResult {
  std::string name;
  bool ok = false;
  std::string failure;  // why it was not timed
  std::string details;
  int64_t code_bytes = -1;
  double max_err = NAN;  // max |C - ref| / sum |A B|
  int inner = 0;
  std::vector<double> samples_us;  // per-call time of each sample
  double median_us = NAN, p25_us = NAN, p75_us = NAN, min_us = NAN;
  // T > 1: the settles that followed this peer's samples (its helper threads' spin-down).
  double settle_ms_sum = 0.0, settle_ms_max = 0.0;
  int settles = 0, settle_timeouts = 0;
};

struct ProblemResult {
  Problem pb;
  int64_t nnz = 0;
  int copies = 0;
  double rotation_bytes = 0, rotation_bytes_blocked = 0;
  int rounds = 0;
  int threads = 1;
  bool truncated = false;  // fewer rounds than planned: --max-problem-s reached
  double setup_s = 0, timing_s = 0;  // wall time: workload + peers + checks, then warm-up + rounds
  std::vector<PeerResult> peers;
  const PeerResult* find(const std::string& name) const {
    for (const auto& p : peers)
      if (p.name == name && p.ok) return &p;
    return nullptr;
  }
};

// --evict-mib's buffer and its read (one load per 64-byte line; the sum keeps the loads).
std::vector<float> g_evict;
float g_evict_sink = 0.0f;
void evict_caches() {
  float sum = 0.0f;
  for (size_t i = 0; i < g_evict.size(); i += 16) sum += g_evict[i];
  g_evict_sink += sum;
}

// Runs `calls` calls, each on the next B/C copy: back to back, or with --evict-mib each after an
// untimed eviction; returns seconds.
double timed_calls(Peer& peer, const Workload& w, int64_t calls, int& cursor) {
  const Activations& act = w.act(peer.layout());
  if (!g_evict.empty()) {
    double total = 0.0;
    for (int64_t i = 0; i < calls; ++i) {
      evict_caches();
      const auto t0 = Clock::now();
      peer.run(act.b(cursor), act.c(cursor));
      total += std::chrono::duration<double>(Clock::now() - t0).count();
      if (++cursor == w.copies) cursor = 0;
    }
    return total;
  }
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < calls; ++i) {
    peer.run(act.b(cursor), act.c(cursor));
    if (++cursor == w.copies) cursor = 0;
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Runs the peer once on copy 0 and returns max |C - ref| / sum_k |A_ik B_kj| (inf for NaN).
double check_peer(Peer& peer, const Workload& w) {
  const Activations& act = w.act(peer.layout());
  float* c = act.c(0);
  std::fill(c, c + act.c_floats(), 12345.0f);  // sentinel: entries left unwritten fail the check
  peer.run(act.b(0), c);
  double worst = 0.0;
  for (int64_t r = 0; r < w.pb.m; ++r)
    for (int64_t j = 0; j < w.pb.n; ++j) {
      const int64_t i = r * w.pb.n + j;
      const double got = c[act.at(w.pb.m, r, j)];
      const double err = std::fabs(got - w.ref[i]) / std::max(w.scale[i], 1e-30);
      if (std::isnan(err)) return INFINITY;
      worst = std::max(worst, err);
    }
  return worst;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

// `team` is null with one thread.
ProblemResult measure(const Problem& pb, const Options& opt, Isa isa, Team* team) {
  const auto setup_start = Clock::now();
  std::unique_ptr<Workload> w = make_workload(pb, opt, isa);
  ProblemResult res;
  res.pb = pb;
  res.threads = opt.threads;
  res.nnz = w->nnz();
  res.copies = w->copies;
  res.rotation_bytes = w->copies * w->row_major.bytes_per_copy();
  res.rotation_bytes_blocked = w->copies * w->blocked.bytes_per_copy();

  // Set up and check every peer; failures are reported, not timed.
  std::vector<std::unique_ptr<Peer>> peers;
  for (const std::string& name : opt.peers) {
    PeerResult r;
    r.name = name;
    std::unique_ptr<Peer> peer;
    try {
      peer = make_peer(name, isa, *w, team, opt.split);
      r.details = peer->details();
      r.code_bytes = peer->code_bytes();
      r.max_err = check_peer(*peer, *w);
      r.ok = r.max_err <= opt.rtol;
      if (!r.ok) {
        std::ostringstream os;
        os << "max rel error " << r.max_err << " > " << opt.rtol;
        r.failure = os.str();
      }
    } catch (const std::exception& e) {
      r.ok = false;
      r.failure = e.what();
    }
    if (!r.ok) peer.reset();
    res.peers.push_back(std::move(r));
    peers.push_back(std::move(peer));
  }
  const auto timing_start = Clock::now();
  res.setup_s = std::chrono::duration<double>(timing_start - setup_start).count();

  // T > 1: before peer i runs, wait until the previous peer's helper threads sleep (the wait is
  // booked to that peer), then wake peer i's threads with one untimed call.
  const bool multi = opt.threads > 1;
  int cursor = 0;
  size_t previous = SIZE_MAX;
  auto prepare = [&](size_t i) {
    if (!multi) return;
    bool quiet = true;
    const double ms = settle(team, opt.settle_probe_us, opt.settle_max_ms, &quiet);
    if (previous != SIZE_MAX) {
      PeerResult& p = res.peers[previous];
      p.settle_ms_sum += ms;
      p.settle_ms_max = std::max(p.settle_ms_max, ms);
      ++p.settles;
      p.settle_timeouts += quiet ? 0 : 1;
    }
    timed_calls(*peers[i], *w, 1, cursor);
  };

  // Warm-up and per-call estimates.
  std::vector<size_t> live;
  std::vector<double> est(peers.size(), 0.0);
  for (size_t i = 0; i < peers.size(); ++i) {
    if (!peers[i]) continue;
    live.push_back(i);
    prepare(i);
    std::vector<double> t;
    double total = 0.0;
    while (total < opt.warmup_time || static_cast<int>(t.size()) < std::max(opt.warmup_calls, 1)) {
      t.push_back(timed_calls(*peers[i], *w, 1, cursor));
      total += t.back();
    }
    est[i] = quantile(std::vector<double>(t.begin() + t.size() / 2, t.end()), 0.5);
    previous = i;
  }
  if (live.empty()) return res;

  // Samples of about S seconds each for every peer; rounds alternate the peers. Each peer gets
  // about min(--min-time, --budget / peers) seconds of samples, in at least --min-rounds rounds.
  double slowest = 0.0;
  for (size_t i : live) slowest = std::max(slowest, est[i]);
  const double sample_s = std::max(opt.sample_us * 1e-6, slowest);
  for (size_t i : live)
    res.peers[i].inner = static_cast<int>(std::max<long long>(1, std::llround(sample_s / std::max(est[i], 1e-9))));
  double per_peer_s = opt.min_time;
  if (opt.budget > 0) per_peer_s = std::min(per_peer_s, opt.budget / static_cast<double>(live.size()));
  res.rounds = opt.reps > 0 ? opt.reps : std::max(opt.min_rounds, static_cast<int>(std::ceil(per_peer_s / sample_s)));
  for (size_t i : live) res.peers[i].samples_us.reserve(res.rounds);
  const int planned_rounds = res.rounds;
  for (int round = 0; round < planned_rounds; ++round) {
    for (size_t j = 0; j < live.size(); ++j) {
      // Rotating alone keeps each peer's predecessor fixed (sdnn after sdnn-tuned, sdnn-tuned after
      // openblas, ...), and what ran just before shows in the caches: identical kernels measured
      // 0.96x apart over the grid (RESULTS.md). Odd rounds go in reverse.
      const size_t pos = (j + round) % live.size();
      const size_t i = live[round % 2 ? live.size() - 1 - pos : pos];
      PeerResult& r = res.peers[i];
      prepare(i);
      const double s = timed_calls(*peers[i], *w, r.inner, cursor);
      r.samples_us.push_back(s * 1e6 / r.inner);
      previous = i;
    }
    // --max-problem-s: stop after a whole round once the time is used up (and --min-rounds done),
    // e.g. when other work on the machine makes every call far slower than its warm-up estimate.
    if (opt.max_problem_s > 0 && round + 1 >= opt.min_rounds && round + 1 < planned_rounds &&
        std::chrono::duration<double>(Clock::now() - timing_start).count() > opt.max_problem_s) {
      res.rounds = round + 1;
      res.truncated = true;
      break;
    }
  }
  if (multi) {  // the last peer's spin-down, so every peer has one settle per sample
    bool quiet = true;
    const double ms = settle(team, opt.settle_probe_us, opt.settle_max_ms, &quiet);
    PeerResult& p = res.peers[previous];
    p.settle_ms_sum += ms;
    p.settle_ms_max = std::max(p.settle_ms_max, ms);
    ++p.settles;
    p.settle_timeouts += quiet ? 0 : 1;
  }
  for (size_t i : live) {
    PeerResult& r = res.peers[i];
    r.median_us = quantile(r.samples_us, 0.5);
    r.p25_us = quantile(r.samples_us, 0.25);
    r.p75_us = quantile(r.samples_us, 0.75);
    r.min_us = quantile(r.samples_us, 0.0);
  }
  res.timing_s = std::chrono::duration<double>(Clock::now() - timing_start).count();
  return res;
}

// ---------------------------------------------------------------------------------------------
// Reporting.

struct Derived {
  double gflops_nz = NAN, pct_peak = NAN, pct_core = NAN, gflops_dense = NAN, vs_sdnn = NAN, sdnn_speedup = NAN,
         code_per_nz = NAN, spread_pct = NAN;
};

Derived derive(const ProblemResult& res, const PeerResult& r, const Options& opt) {
  Derived d;
  const Problem& pb = res.pb;
  if (r.code_bytes >= 0 && res.nnz > 0) d.code_per_nz = static_cast<double>(r.code_bytes) / res.nnz;
  if (!r.ok) return d;
  const double t = r.median_us * 1e-6;
  d.gflops_nz = 2.0 * res.nnz * pb.n / t * 1e-9;
  d.pct_peak = 100.0 * d.gflops_nz / opt.peak;
  d.pct_core = 100.0 * d.gflops_nz / opt.core_peak;
  d.gflops_dense = 2.0 * pb.m * pb.k * pb.n / t * 1e-9;
  d.spread_pct = 100.0 * (r.p75_us - r.p25_us) / r.median_us;
  if (const PeerResult* s = res.find("sdnn")) {
    d.vs_sdnn = s->median_us / r.median_us;       // this peer's rate relative to sdnn's
    d.sdnn_speedup = r.median_us / s->median_us;  // how much faster sdnn is than this peer
  }
  return d;
}

std::string fmt(double v, int precision) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

// T > 1: how long the peer's helper threads kept the process busy after its samples.
std::string settle_text(const PeerResult& r) {
  if (r.settles == 0) return {};
  std::ostringstream os;
  os << "spin-down after its samples: mean " << fmt(r.settle_ms_sum / r.settles, 2) << " ms, max "
     << fmt(r.settle_ms_max, 2) << " ms over " << r.settles << " settles";
  if (r.settle_timeouts) os << ", " << r.settle_timeouts << " not quiet after --settle-max-ms";
  return os.str();
}

void print_problem(const ProblemResult& res, const Options& opt, size_t index, size_t count, double elapsed_s) {
  const Problem& pb = res.pb;
  std::printf("\n== [%zu/%zu] M=%lld K=%lld N=%lld sparsity=%.2f threads=%d nnz=%lld (actual sparsity %.4f)\n",
              index + 1, count, (long long)pb.m, (long long)pb.k, (long long)pb.n, pb.sparsity, res.threads,
              (long long)res.nnz, 1.0 - static_cast<double>(res.nnz) / static_cast<double>(pb.m * pb.k));
  std::printf("   rotation: %d copies of B+C, %.2f MiB row-major, %.2f MiB blocked; %d rounds, round-robin (odd rounds reversed)%s\n",
              res.copies, res.rotation_bytes / (1024.0 * 1024.0), res.rotation_bytes_blocked / (1024.0 * 1024.0),
              res.rounds, res.threads > 1 ? ", settle + one untimed call before each sample" : "");
  if (res.truncated)
    std::printf("   WARNING: rounds cut short by --max-problem-s (calls far slower than their warm-up: other load?)\n");
  std::printf("   wall: set-up %.2f s, timing %.2f s; run so far %.1f s\n", res.setup_s, res.timing_s, elapsed_s);
  for (const auto& r : res.peers) {
    if (!r.details.empty()) std::printf("   %-10s %s\n", r.name.c_str(), r.details.c_str());
    const std::string st = settle_text(r);
    if (!st.empty()) std::printf("   %-10s %s\n", "", st.c_str());
  }
  std::printf("%-10s %6s %6s %6s %5s %9s %10s %7s %8s %6s %6s %9s %8s %7s %9s %7s  %s\n", "peer", "M", "K", "N",
              "sp", "nnz", "median_us", "iqr%", "GF/s_nz", "%ref", "%core", "GF/s_dns", "vs_sdnn", "sdnn_x", "code_B/nz",
              "inner", "check");
  for (const auto& r : res.peers) {
    const Derived d = derive(res, r, opt);
    std::string check;
    if (r.ok) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "ok (err %.1e)", r.max_err);
      check = buf;
    } else {
      check = "FAILED: " + r.failure;
    }
    std::printf("%-10s %6lld %6lld %6lld %5.2f %9lld %10s %7s %8s %6s %6s %9s %8s %7s %9s %7s  %s\n", r.name.c_str(),
                (long long)pb.m, (long long)pb.k, (long long)pb.n, pb.sparsity, (long long)res.nnz,
                fmt(r.ok ? r.median_us : NAN, 2).c_str(), fmt(d.spread_pct, 1).c_str(), fmt(d.gflops_nz, 1).c_str(),
                fmt(d.pct_peak, 1).c_str(), fmt(d.pct_core, 1).c_str(), fmt(d.gflops_dense, 1).c_str(),
                fmt(d.vs_sdnn, 3).c_str(),
                fmt(d.sdnn_speedup, 2).c_str(), fmt(d.code_per_nz, 2).c_str(),
                r.ok ? std::to_string(r.inner).c_str() : "-", check.c_str());
  }
  std::fflush(stdout);
}

// CSV numbers: empty when not measured.
std::string csv_num(double v, int precision) { return std::isnan(v) ? std::string() : fmt(v, precision); }

void write_csv(std::ofstream& out, const ProblemResult& res, const Options& opt, const char* isa) {
  const Problem& pb = res.pb;
  for (const auto& r : res.peers) {
    const Derived d = derive(res, r, opt);
    auto text = [](std::string t) {
      std::replace(t.begin(), t.end(), ',', ';');
      return t;
    };
    const double med = r.ok ? r.median_us : NAN, p25 = r.ok ? r.p25_us : NAN, p75 = r.ok ? r.p75_us : NAN,
                 mn = r.ok ? r.min_us : NAN;
    std::string details = r.details;
    const std::string st = settle_text(r);
    if (!st.empty()) details += (details.empty() ? "" : "; ") + st;
    out << pb.m << ',' << pb.k << ',' << pb.n << ',' << pb.sparsity << ',' << res.nnz << ',' << isa << ','
        << res.threads << ',' << r.name << ',' << (r.ok ? "ok" : "FAILED") << ',' << csv_num(med, 3) << ',' << csv_num(p25, 3) << ','
        << csv_num(p75, 3) << ',' << csv_num(mn, 3) << ',' << csv_num(d.gflops_nz, 2) << ','
        << csv_num(d.pct_peak, 2) << ',' << csv_num(d.pct_core, 2) << ',' << csv_num(d.gflops_dense, 2) << ',' << csv_num(d.vs_sdnn, 4) << ','
        << csv_num(d.sdnn_speedup, 4) << ',' << (r.code_bytes >= 0 ? std::to_string(r.code_bytes) : "") << ','
        << csv_num(d.code_per_nz, 3) << ',' << res.rounds << ',' << (r.ok ? std::to_string(r.inner) : "") << ','
        << res.copies << ',' << r.max_err << ',' << text(details) << ',' << text(r.failure) << '\n';
  }
  out.flush();
}

const char* kCsvHeader =
    "m,k,n,sparsity,nnz,isa,threads,peer,status,median_us,p25_us,p75_us,min_us,gflops_nz,pct_peak,pct_core,gflops_dense,"
    "vs_sdnn,sdnn_speedup,code_bytes,code_bytes_per_nnz,rounds,inner,copies,max_rel_err,details,failure\n";

// For one shape: sparse vs dense generated kernel per sparsity, and where sparse starts to win.
void print_sweep_summary(const std::vector<ProblemResult>& results) {
  std::vector<std::string> shapes;
  for (const auto& r : results)
    if (std::find(shapes.begin(), shapes.end(), r.pb.shape()) == shapes.end()) shapes.push_back(r.pb.shape());
  std::printf("\n== threshold sweep: generated sparse (sdnn) vs generated dense (sdnn-dense)\n");
  for (const std::string& shape : shapes) {
    std::printf("\n%s\n%8s %12s %12s %14s  %s\n", shape.c_str(), "sparsity", "sdnn_us", "dense_us",
                "dense/sparse", "faster");
    std::vector<std::pair<double, double>> ratio;  // (sparsity, t_sparse / t_dense)
    for (const auto& r : results) {
      if (r.pb.shape() != shape) continue;
      const PeerResult* s = r.find("sdnn");
      const PeerResult* d = r.find("sdnn-dense");
      const double ts = s ? s->median_us : NAN, td = d ? d->median_us : NAN;
      std::printf("%8.2f %12s %12s %14s  %s\n", r.pb.sparsity, fmt(ts, 2).c_str(), fmt(td, 2).c_str(),
                  fmt(td / ts, 3).c_str(), std::isnan(ts / td) ? "?" : ts < td ? "sparse" : "dense");
      if (!std::isnan(ts / td)) ratio.emplace_back(r.pb.sparsity, ts / td);
    }
    std::sort(ratio.begin(), ratio.end());
    if (ratio.empty()) {
      std::printf("  no result: both sdnn and sdnn-dense must run and pass\n");
      continue;
    }
    // First sparsity from which sparse is faster at every measured higher sparsity.
    size_t first = ratio.size();
    while (first > 0 && ratio[first - 1].second < 1.0) --first;
    if (first == ratio.size()) {
      std::printf("  sparse never faster up to sparsity %.2f\n", ratio.back().first);
    } else if (first == 0) {
      std::printf("  sparse faster at every measured sparsity (from %.2f)\n", ratio.front().first);
    } else {
      const auto [s0, r0] = ratio[first - 1];
      const auto [s1, r1] = ratio[first];
      const double cross = s0 + (r0 - 1.0) / (r0 - r1) * (s1 - s0);  // linear in the time ratio
      std::printf("  sparse faster from sparsity %.2f on (crossover about %.3f by interpolation)\n", s1, cross);
    }
  }
  std::fflush(stdout);
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string line;
  std::getline(in, line);
  return line;
}

std::vector<Problem> problems_from(const Options& opt) {
  std::vector<Problem> out;
  if (opt.threshold_sweep) {
    const int64_t shapes[2][3] = {{512, 512, 128}, {1024, 1024, 256}};
    for (const auto& s : shapes)
      for (int i = 0; i <= 9; ++i) out.push_back({s[0], s[1], s[2], i / 10.0});
    return out;
  }
  std::vector<std::array<int64_t, 3>> shapes;
  if (!opt.shapes.empty()) {
    for (const std::string& s : opt.shapes) {
      std::array<int64_t, 3> v{};
      char x1 = 0, x2 = 0;
      std::istringstream is(s);
      if (!(is >> v[0] >> x1 >> v[1] >> x2 >> v[2]) || x1 != 'x' || x2 != 'x' || !is.eof())
        throw std::runtime_error("bad --shape '" + s + "' (want MxKxN)");
      shapes.push_back(v);
    }
  } else {
    for (int64_t m : opt.m)
      for (int64_t k : opt.k)
        for (int64_t n : opt.n) shapes.push_back({m, k, n});
  }
  for (const auto& s : shapes)
    for (double sp : opt.sparsity) out.push_back({s[0], s[1], s[2], sp});
  for (const auto& p : out)
    if (p.m <= 0 || p.k <= 0 || p.n <= 0 || !(p.sparsity >= 0.0 && p.sparsity < 1.0))
      throw std::runtime_error("bad problem " + p.shape() + " sparsity " + std::to_string(p.sparsity) +
                               " (dims > 0, 0 <= sparsity < 1)");
  return out;
}

// Every thread of this process with the CPUs it may run on: "name[cpus] ...", from /proc.
std::string thread_placement() {
  std::ostringstream os;
  const std::string dir = "/proc/self/task";
  std::vector<long> tids;
  if (auto* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') tids.push_back(std::strtol(e->d_name, nullptr, 10));
    closedir(d);
  }
  std::sort(tids.begin(), tids.end());
  for (long tid : tids) {
    std::ifstream status(dir + "/" + std::to_string(tid) + "/status");
    std::string line, name, cpus;
    while (std::getline(status, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(line.find_first_not_of(" \t", 5));
      if (line.rfind("Cpus_allowed_list:", 0) == 0) cpus = line.substr(line.find_first_not_of(" \t", 18));
    }
    os << (os.tellp() > 0 ? " " : "") << name << "[" << cpus << "]";
  }
  return os.str();
}

// --grid spmm: the issue-4 SpMM grid. Every axis the command line names explicitly replaces the
// grid's (so --m 256,512 runs a sub-grid); so does every protocol option given explicitly.
// Protocol defaults chosen so that the 192 problems run in about 10 minutes with one thread and
// 15 with two here (estimate: bench/RESULTS.md, "SpMM grid (issue 4)"): samples of >= 2 ms (with
// two threads every sample costs a settle of ~1 ms, so fewer, longer samples), each peer 0.3 s of
// samples per problem (--budget 1.5 s for all five peers), but never fewer than 10 alternating
// rounds (the big problems: 10 rounds of one call per peer), warm-up of at least 2 calls, and at
// most 30 s of rounds per problem once the 10 are done.
void apply_grid_defaults(const CLI::App& app, Options& opt) {
  if (opt.grid != "spmm") throw std::runtime_error("unknown --grid '" + opt.grid + "' (known: spmm)");
  if (opt.threshold_sweep) throw std::runtime_error("--grid and --threshold-sweep exclude each other");
  auto unset = [&](const char* name) { return app.count(name) == 0; };
  if (unset("--m")) opt.m = {256, 512, 1024, 2048};
  if (unset("--k")) opt.k = {256, 512, 1024, 2048};
  if (unset("--n")) opt.n = {128, 512, 2048};
  if (unset("--sparsity")) opt.sparsity = {0.7, 0.8, 0.9, 0.95};
  if (unset("--peers")) opt.peers = {"sdnn-tuned", "sdnn", "libxsmm", "dnnl", "openblas"};
  if (unset("--min-time")) opt.min_time = 0.3;
  if (unset("--budget")) opt.budget = 1.5;
  if (unset("--min-rounds")) opt.min_rounds = 10;
  if (unset("--sample-us")) opt.sample_us = 2000.0;
  if (unset("--warmup-time")) opt.warmup_time = 0.02;
  if (unset("--warmup-calls")) opt.warmup_calls = 2;
  if (unset("--max-problem-s")) opt.max_problem_s = 30.0;
}

// omp_get_max_threads() of the libgomp oneDNN loaded (looked up at run time: the benchmark does
// not link OpenMP itself); -1 when not found.
int openmp_max_threads() {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn ? fn() : -1;
}

int run(int argc, char** argv) {
  Options opt;
  CLI::App app{"sdnn_bench_spmm: C = A (sparse MxK) * B (KxN), sdnnc's generated kernels vs libxsmm spmdm,\n"
               "oneDNN sgemm and OpenBLAS sgemm, alternating in one process (bench/RESULTS.md)."};
  app.add_option("--m", opt.m, "rows of A (list: cross product with --k, --n, --sparsity)")->delimiter(',');
  app.add_option("--k", opt.k, "columns of A = rows of B (list)")->delimiter(',');
  app.add_option("--n", opt.n, "columns of B and C (list)")->delimiter(',');
  app.add_option("--shape", opt.shapes, "MxKxN shapes (list), instead of the --m/--k/--n product")->delimiter(',');
  app.add_option("--sparsity", opt.sparsity, "fraction of zeros in A, by magnitude (list)")->delimiter(',');
  app.add_option("--isa", opt.isa, "ISA of the generated kernels")
      ->check(CLI::IsMember({"native", "avx512", "avx2"}))
      ->capture_default_str();
  app.add_option("--peers", opt.peers, "peers to run (sdnn,sdnn-perm,sdnn-tuned,sdnn-dense,sdnn-rm,libxsmm,dnnl,openblas)")
      ->delimiter(',')
      ->check(CLI::IsMember(kPeerNames));
  app.add_option("--reps", opt.reps, "rounds (samples per peer); 0 = enough for --min-time")->capture_default_str();
  app.add_option("--min-time", opt.min_time, "seconds of samples per peer and problem")->capture_default_str();
  app.add_option("--min-rounds", opt.min_rounds, "at least this many rounds with --min-time")->capture_default_str();
  app.add_option("--warmup-time", opt.warmup_time, "warm-up seconds per peer and problem")->capture_default_str();
  app.add_option("--sample-us", opt.sample_us, "target duration of one sample (calls batched up to it)")
      ->capture_default_str();
  app.add_option("--rotate-mib", opt.rotate_mib, "B+C rotation at least this many MiB (L2 is 1 MiB)")
      ->capture_default_str();
  app.add_option("--evict-mib", opt.evict_mib,
                 "before every timed call read this many MiB of another buffer (untimed), so weights and "
                 "generated code come from L3 as inside a model (0: off)")
      ->check(CLI::Range(0.0, 4096.0))
      ->capture_default_str();
  app.add_option("--rtol", opt.rtol, "bound on max |C - ref| / sum_k |A_ik B_kj|")->capture_default_str();
  app.add_option("--peak", opt.peak, "reference GFLOP/s for the %ref column (the issue's one-core FMA peak)")
      ->capture_default_str();
  app.add_option("--pin", opt.pin, "pin the process to this CPU (default: not pinned)");
  app.add_option("--seed", opt.seed, "random seed")->capture_default_str();
  app.add_option("--openblas-coretype", opt.openblas_coretype,
                 "OPENBLAS_CORETYPE: auto (SkylakeX with AVX-512, Haswell with AVX2), detect (unset), or a name")
      ->capture_default_str();
  app.add_option("--csv", opt.csv, "also write one CSV row per (problem, peer) to FILE");
  app.add_flag("--threshold-sweep", opt.threshold_sweep,
               "sdnn vs sdnn-dense at sparsity 0.0..0.9 for 512x512x128 and 1024x1024x256");
  app.add_option("--grid", opt.grid,
                 "spmm: the issue-4 grid, M,K {256,512,1024,2048} x sparsity {0.7,0.8,0.9,0.95} x N {128,512,2048},\n"
                 "peers sdnn-tuned,sdnn,libxsmm,dnnl,openblas; --m/--k/--n/--sparsity/--peers given explicitly\n"
                 "select a sub-grid. Grid protocol defaults: --min-time 0.3 --budget 1.5 --min-rounds 10\n"
                 "--sample-us 2000 --warmup-time 0.02 --warmup-calls 2 --max-problem-s 30");
  app.add_option("--threads", opt.threads,
                 "threads per call: sdnn peers split as runtime_min does, libxsmm tids 0..T-1,\n"
                 "OMP_NUM_THREADS = OPENBLAS_NUM_THREADS = T (set before the libraries load)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--budget", opt.budget,
                 "seconds of samples per problem over all peers (caps --min-time per peer; --min-rounds still\n"
                 "holds); 0 = no cap")
      ->capture_default_str();
  app.add_option("--warmup-calls", opt.warmup_calls, "at least this many warm-up calls per peer and problem")
      ->capture_default_str();
  app.add_option("--settle-probe-us", opt.settle_probe_us,
                 "threads > 1: interval of the quiet check before each sample")
      ->capture_default_str();
  app.add_option("--settle-max-ms", opt.settle_max_ms, "threads > 1: longest wait for quiet before a sample")
      ->capture_default_str();
  app.add_option("--split", opt.split,
                 "threads > 1, sdnn peers: runtime (runtime_min's sdnn_kernel_split_init with sdnnc's default\n"
                 "--thread-split=auto, the default), runtime-rows (the same with --thread-split=rows), columns\n"
                 "(an experiment: every thread all row tiles on its own column range, for every shape) or\n"
                 "runtime-whole-tiles (runtime, with a row tile it cut between two threads given whole to one)")
      ->check(CLI::IsMember({"runtime", "runtime-rows", "columns", "runtime-whole-tiles"}))
      ->capture_default_str();
  app.add_option("--sdnn-alt-split", opt.sdnn_alt_split, "--split for the sdnn-alt peer alone (default: --split)")
      ->check(CLI::IsMember({"runtime", "runtime-rows", "columns", "runtime-whole-tiles"}));
  app.add_flag("--list-problems", opt.list_problems, "print the problems (M K N sparsity) and exit");
  app.add_option("--sdnn-plan", opt.sdnn_plan,
                 "override fields of the sdnn peer's default plan, e.g. mb=28,nb=1,ng=4,kb=128,emb=1,pf=1");
  app.add_option("--sdnn-alt-plan", opt.sdnn_alt_plan,
                 "the same for the opt-in sdnn-alt peer (--peers sdnn,sdnn-alt,...): two plans in one run");
  app.add_option("--compact-kb", g_compact_kb, "rows of B per K block of the opt-in sdnn-compact peer")
      ->capture_default_str();
  app.add_option("--max-problem-s", opt.max_problem_s,
                 "stop a problem's rounds after this many seconds of timing, once --min-rounds are done\n"
                 "(0 = never; the grid's default is 30)")
      ->capture_default_str();
  app.add_option("--spin-us", opt.spin_us, "threads > 1: the sdnn/libxsmm team's workers spin this long, then sleep")
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!opt.grid.empty()) apply_grid_defaults(app, opt);
  g_sdnn_plan = opt.sdnn_plan;
  g_sdnn_alt_plan = opt.sdnn_alt_plan;
  g_evict.assign(static_cast<size_t>(opt.evict_mib * 1024 * 1024 / sizeof(float)), 1.0f);
  g_sdnn_alt_split = opt.sdnn_alt_split;
  if (opt.threads != requested_threads(argc, argv))
    throw std::runtime_error("--threads: the value read before the re-exec differs (give it once, as an integer)");
  if (opt.threads > 1 && opt.pin >= 0)
    throw std::runtime_error("--pin pins every thread to one CPU: not with --threads > 1");
  if (opt.threshold_sweep && app.count("--peers") == 0) opt.peers = {"sdnn", "sdnn-dense"};
  if (opt.threshold_sweep && (app.count("--m") || app.count("--k") || app.count("--n") || app.count("--shape") ||
                              app.count("--sparsity")))
    throw std::runtime_error("--threshold-sweep has fixed problems; drop --m/--k/--n/--shape/--sparsity");

  Xbyak::util::Cpu cpu;
  const bool has512 = cpu.has(Xbyak::util::Cpu::tAVX512F);
  const bool has2 = cpu.has(Xbyak::util::Cpu::tAVX2) && cpu.has(Xbyak::util::Cpu::tFMA);
  if (opt.isa == "native") opt.isa = has512 ? "avx512" : "avx2";
  const Isa isa = opt.isa == "avx512" ? Isa::Avx512 : Isa::Avx2;
  if ((isa == Isa::Avx512 && !has512) || (isa == Isa::Avx2 && !has2))
    throw std::runtime_error("this CPU cannot run " + opt.isa + " code");

  if (opt.pin >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(opt.pin, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0)
      throw std::runtime_error("cannot pin to CPU " + std::to_string(opt.pin) + ": " + std::strerror(errno));
  }

  const std::vector<Problem> problems = problems_from(opt);
  if (opt.list_problems) {
    for (const Problem& pb : problems)
      std::printf("%lld %lld %lld %g\n", (long long)pb.m, (long long)pb.k, (long long)pb.n, pb.sparsity);
    std::printf("%zu problems, peers %s, %d thread(s)\n", problems.size(),
                [&] {
                  std::string p;
                  for (const auto& n : opt.peers) p += (p.empty() ? "" : ",") + n;
                  return p;
                }()
                    .c_str(),
                opt.threads);
    return 0;
  }
  // The environment as the libraries read it at load time (libxsmm_init puts OMP_PROC_BIND=TRUE
  // into the environment when it is unset; libgomp has read its settings before that).
  const std::string env_line = env_text("OPENBLAS_NUM_THREADS") + " " + env_text("OMP_NUM_THREADS") + " " +
                               env_text("OPENBLAS_CORETYPE") + " " + env_text("OPENBLAS_L2_SIZE") + " " +
                               env_text("OPENBLAS_THREAD_TIMEOUT") + " " + env_text("OMP_PROC_BIND") + " " +
                               env_text("OMP_PLACES");
  libxsmm_init();

  const char* changed = std::getenv(kReexecMarker);
  const dnnl_version_t* dv = dnnl_version();
  opt.core_peak = measure_fma_peak(isa == Isa::Avx512);
  std::unique_ptr<Team> team;
  if (opt.threads > 1) team = std::make_unique<Team>(opt.threads, opt.spin_us);
  std::printf("sdnn_bench_spmm: %d thread(s)%s; generated kernels for %s; %%ref of %.1f GFLOP/s (--peak), %%core of "
              "%.1f GFLOP/s (one core's FP32 FMA peak for the ISA, measured now)\n",
              opt.threads, opt.grid.empty() ? "" : (", grid " + opt.grid).c_str(), opt.isa.c_str(), opt.peak,
              opt.core_peak);
  std::printf("cpu: %s; %s\n", cpu_model().c_str(),
              opt.pin >= 0 ? ("pinned to CPU " + std::to_string(opt.pin)).c_str() : "not pinned");
  std::printf("env: %s\n", env_line.c_str());
  if (changed) std::printf("     (re-executed with this environment; it was: %s)\n", changed);
  std::printf("openblas: core %s, %d thread(s), %s\n", openblas_get_corename(), openblas_get_num_threads(),
              openblas_get_config());
  std::printf("onednn: %d.%d.%d (%s), OpenMP max threads %d\n", dv->major, dv->minor, dv->patch, dv->hash,
              openmp_max_threads());
  if (team)
    std::printf("threads: sdnn peers split %s, libxsmm tids 0..%d; team = caller + %d std::thread(s), spin %.0f us "
                "then sleep; settle before each sample (probe %.0f us, max %.0f ms)\n",
                opt.split == "columns"        ? "by column ranges (--split columns, NOT the runtime's split)"
                : opt.split == "runtime-rows" ? "by runtime_min's sdnn_kernel_split_init, policy rows"
                : opt.split == "runtime-whole-tiles"
                    ? "by runtime_min's sdnn_kernel_split_init, policy auto, cut tiles given whole to one thread"
                    : "by runtime_min's sdnn_kernel_split_init, policy auto",
                opt.threads - 1, opt.threads - 1, opt.spin_us, opt.settle_probe_us, opt.settle_max_ms);
  if (team && !opt.sdnn_alt_split.empty())
    std::printf("threads: the sdnn-alt peer splits by --sdnn-alt-split %s\n", opt.sdnn_alt_split.c_str());
  if (team)
    std::printf("threads at start (name[allowed CPUs]; OpenMP's start with the first dnnl call): %s\n",
                thread_placement().c_str());
  std::printf("libxsmm: %s, target %s\n", LIBXSMM_VERSION, libxsmm_get_target_arch());
  std::printf("protocol: rotation >= %.1f MiB%s, warm-up %.3f s (>= %d calls), samples ~%.0f us, %s, rtol %.1e, "
              "seed %llu\n",
              opt.rotate_mib, opt.evict_mib > 0 ? (", " + fmt(opt.evict_mib, 1) + " MiB read before every timed call").c_str() : "",
              opt.warmup_time, opt.warmup_calls, opt.sample_us,
              opt.reps > 0 ? (std::to_string(opt.reps) + " rounds").c_str()
                           : ("min-time " + fmt(opt.min_time, 3) + " s per peer" +
                              (opt.budget > 0 ? ", budget " + fmt(opt.budget, 2) + " s per problem" : std::string()) +
                              ", >= " + std::to_string(opt.min_rounds) + " rounds")
                                 .c_str(),
              opt.rtol, (unsigned long long)opt.seed);
  std::printf("problems: %zu\n", problems.size());
  std::printf("loadavg at start: %s\n", loadavg().c_str());
  std::fflush(stdout);

  std::ofstream csv;
  if (!opt.csv.empty()) {
    csv.open(opt.csv);
    if (!csv) throw std::runtime_error("cannot write " + opt.csv);
    csv << kCsvHeader;
  }

  std::vector<ProblemResult> results;
  bool any_failed = false;
  const auto run_start = Clock::now();
  for (size_t i = 0; i < problems.size(); ++i) {
    results.push_back(measure(problems[i], opt, isa, team.get()));
    print_problem(results.back(), opt, i, problems.size(),
                  std::chrono::duration<double>(Clock::now() - run_start).count());
    if (csv.is_open()) write_csv(csv, results.back(), opt, opt.isa.c_str());
    for (const auto& r : results.back().peers) any_failed |= !r.ok;
  }
  if (opt.threshold_sweep) print_sweep_summary(results);
  if (team) std::printf("\nthreads at end (name[allowed CPUs]): %s\n", thread_placement().c_str());
  std::printf("\nloadavg at end: %s; total wall time %.1f s\n", loadavg().c_str(),
              std::chrono::duration<double>(Clock::now() - run_start).count());
  libxsmm_finalize();
  return any_failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_benchmark_env(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdnn_bench_spmm: error: %s\n", e.what());
    return 2;
  }
}
