// conv_bench.cpp — sdnn_bench_conv: sparse 3x3 convolution, sdnnc's direct sparse convolution
// against oneDNN's dense convolution primitive, alternating in one process (issue 4's conv grid).
//
//   sdnn_bench_conv [--ic 32,64,128,256] [--oc 32,64,128,256] [--image 7,14,28,56]
//                   [--sparsity 0.9,0.95] [--budget 1.5] [--csv FILE] [--isa native|avx512|avx2]
//                   [--threads 1] [--peers sdnn,sdnn-kernel,onednn] ...   (--help lists every option)
//
// The defaults are the whole grid (4 x 4 x 4 x 2 = 128 points). The problem: y[OC][H][W] =
// conv3x3(x[IC][H][W], w[OC][IC][3][3]), batch 1, stride 1, pad 1, no bias, no activation; w unit
// Gaussian with exactly round(sparsity * OC*IC*9) of the smallest magnitudes set to zero, x unit
// Gaussian.
//
// The sdnn peers run the three plan steps a model compiled by sdnnc runs for this layer
// (passes/src/direct_conv.cpp, backend_x86/src/lower.cpp), through runtime_min's own code
// (sdnn_planes_run, sdnn_kernel_split_init, sdnn_pool_*: linked from the static runtime archive):
//   pad_planes  x -> planes [IC][R][Wq]: Wq = W + 2, R = max(H + 2, (G + 2*Wq + 2 + Wq-1)/Wq + 1)
//               with G = round_up(Ho*Wq, VL), so the reads of the grid's last vector stay inside;
//               x is NCHW (--input nchw, the default), ChannelBlocked [ceil(H*W/VL)][IC][VL]
//               (--input blocked: what a previous sparse conv's crop leaves), or a previous 3x3
//               direct conv's output grid [ceil(H*Wq/VL)][IC][VL] whose columns ox >= W are
//               garbage (--input grid: the direct-conv pass drops a crop whose only reader is
//               the next direct conv's pad_planes, which then reads the grid with in_row_stride
//               Wq; the test data puts NaN in the garbage columns, so reading one fails the check)
//   kernel      backend::default_plan(Spmm, isa, M = OC, K = IC*9, n = Ho*Wq) with
//               b_offsets[(c, ky, kx)] = c*R*Wq + ky*Wq + kx (lower.cpp's direct_offsets), emitted
//               by backend::emit_kernel and run through JitKernel with the runtime's contract (one
//               call per k block): grid [G/VL][OC][VL], columns ox >= Wo of every row garbage
//   crop        grid -> y ChannelBlocked [ceil(Ho*Wo/VL)][OC][VL] (pad columns written 0); not
//               with --input grid, where the layer stands for one in a chain of 3x3 direct convs
//               and leaves its grid for the next one's pad_planes
// With AVX-512 and an NCHW input, sdnnc's masked-direct pass replaces all three by one masked
// kernel (KernelPlan::mask_h / mask_w): b_offsets[(c, ky, kx)] = c*H*W + (ky-1)*W + kx-1 into x
// itself, n = round_up(H*W, VL), taps off the image masked lane by lane, y written
// ChannelBlocked directly (pad columns 0).
// Peers (--peers):
//   sdnn          what `sdnnc --tune=none` runs for the layer: the masked kernel (AVX-512, NCHW
//                 input), else sdnn-planes; the default plan with the rows tiled in the order the
//                 compiler's permute-rows pass picks (passes::choose_row_order, tile height
//                 backend::spmm_tile_height(isa), kept only if it saves B loads)
//   sdnn-planes   pad_planes + kernel + crop (no crop with --input grid), the same plan otherwise
//   sdnn-kernel   that kernel alone, on planes padded beforehand, writing the grid
//   sdnn-chain    the layer inside a chain of 3x3 direct convs, as a model runs it there: the
//                 kernel reads the planes the previous conv wrote and writes the next conv's
//                 zero-padded planes itself (plan c_plane, lower.cpp's planes_out), then
//                 zero_borders clears their pad columns and rows; no pad_planes, no crop — the
//                 counterpart of oneDNN keeping its activations in its own format (untimed reorders)
//   sdnn-pad      pad_planes alone; sdnn-crop: crop alone (opt-in, for the breakdown)
//   sdnn-noperm, sdnn-noperm-kernel   the default plan in the model's row order (opt-in)
//   sdnn-tuned, sdnn-tuned-kernel     the permuted plan after backend::tune_plan at sdnnc's
//                 default --tune=fast (tuned at set-up, no cache) (opt-in)
//   onednn        dnnl::convolution_forward, forward_inference, --onednn-alg auto (convolution_auto,
//                 the default) or direct, f32, pad 1, no bias, every memory format picked by the
//                 primitive (format_tag::any). Only execute() + stream wait is timed: the weights
//                 are reordered into the primitive's format once (constant in deployment), and the
//                 reorders of the input / output from / to NCHW are done outside the timed region
//                 and NOT counted (a network would keep its activations in the primitive's
//                 formats). oneDNN's ISA: --onednn-isa (default "match": capped at AVX2 when
//                 --isa avx2, uncapped otherwise).
//
// Protocol (DESIGN.md "Performance protocol", as bench/spmm_bench.cpp):
//   - OMP_NUM_THREADS = --threads is set before oneDNN's libgomp loads (re-exec of
//     /proc/self/exe when it differs).
//   - Weights, kernel code and values are one copy; every activation (x, planes, grid, y; the
//     oneDNN source and destination) rotates through as many copies as make one rotation larger
//     than --rotate-mib (default 4 MiB, 4x the 1 MiB L2), at least 2; consecutive calls, whichever
//     peer makes them, use the next copy.
//   - Every peer is first checked on copy 0 against a double-precision direct convolution: outputs
//     are prefilled with a sentinel, and max |y - ref| / sum |w x| over every output (the
//     sdnn peers' pad columns must be 0) must be <= --rtol. A peer that fails is reported FAILED
//     (stderr and CSV), is not timed, and the run exits with status 1.
//   - Warm-up gives a per-call estimate; a sample is `inner` back-to-back calls lasting about
//     max(--sample-us, slowest call); rounds of one sample per peer alternate the peers
//     round-robin (the first peer rotates) until every peer has --budget / peers seconds of
//     samples, at least --min-rounds rounds. Reported: median, p10, p90 of the per-call times.
//   - With --threads T > 1: the sdnn peers run each step as runtime_min's sdnn_run does (a
//     kernel step split by sdnn_kernel_split_init, pad / crop over contiguous unit ranges with
//     context.c's thread rule, on an sdnn_pool of T threads); every sample is preceded by a
//     settle (sleep until no helper thread spins, e.g. libgomp's after a oneDNN call) and one
//     untimed call.
//
// GFLOP/s: the sdnn kernel peers on nonzeros (2 * nnz * Ho*Wo), oneDNN on the dense count
// (2 * IC*9 * OC * Ho*Wo); gflops_eff is the dense count over the time for both, so they compare.
// speedup_vs_onednn = oneDNN's median / the peer's median.
#include <dlfcn.h>
#include <time.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <oneapi/dnnl/dnnl.hpp>

#include "sdnn/backend/jit.h"
#include "sdnn/backend/kernel_emitter.h"
#include "sdnn/backend/kernel_plan.h"
#include "sdnn/backend/tuner.h"
#include "sdnn/passes/permute_rows.h"
#include "sdnn_plan.h"

// runtime_min internals, linked statically from the runtime archive (as bench/spmm_bench.cpp and
// the runtime's unit tests do): the steps' code, the kernel work split and the thread pool.
extern "C" {
#include "partition.h"
#include "pool.h"
#include "window.h"
}

namespace {

namespace be = sdnn::backend;
using Clock = std::chrono::steady_clock;

constexpr int64_t kKernel = 3, kPad = 1;  // 3x3, stride 1, pad 1, dilation 1

// ---------------------------------------------------------------------------------------------
// Environment: OMP_NUM_THREADS fixed before libgomp loads, by re-executing ourselves.

constexpr const char* kReexecMarker = "SDNN_BENCH_REEXEC";

// --threads N (also =N) from argv: it must be in the environment before oneDNN's OpenMP loads.
// A value that is not a positive integer gives 1 here; CLI11 rejects it after the re-exec.
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

void ensure_benchmark_env(int argc, char** argv) {
  const std::string threads = std::to_string(requested_threads(argc, argv));
  const char* omp = std::getenv("OMP_NUM_THREADS");
  if (omp && threads == omp) return;
  if (std::getenv(kReexecMarker)) {
    std::fprintf(stderr, "sdnn_bench_conv: error: environment still wrong after re-exec\n");
    std::exit(2);
  }
  setenv(kReexecMarker, (std::string("OMP_NUM_THREADS=") + (omp ? omp : "(unset)")).c_str(), 1);
  setenv("OMP_NUM_THREADS", threads.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "sdnn_bench_conv: error: re-exec failed: %s\n", std::strerror(errno));
  std::exit(2);
}

// ---------------------------------------------------------------------------------------------
// Options and grid points.

struct Options {
  std::vector<int64_t> ic{32, 64, 128, 256}, oc{32, 64, 128, 256}, image{7, 14, 28, 56};
  std::vector<double> sparsity{0.9, 0.95};
  std::vector<std::string> peers{"sdnn", "sdnn-planes", "sdnn-chain", "sdnn-kernel", "onednn"};
  std::string isa = "native";
  std::string input = "nchw";
  std::string onednn_alg = "auto";
  std::string onednn_isa = "match";
  int threads = 1;
  double budget = 1.5;  // seconds of samples per point, over all peers
  int min_rounds = 10;
  double sample_us = 2000.0;
  double warmup_time = 0.02;
  int warmup_calls = 2;
  double rotate_mib = 4.0;
  double rtol = 1e-4;
  double max_point_s = 30.0;
  uint64_t seed = 1;
  std::string csv;
  bool list_points = false;
};

const std::vector<std::string> kPeerNames = {"sdnn",        "sdnn-kernel",       "sdnn-chain", "sdnn-pad",  "sdnn-crop", "sdnn-planes",
                                             "sdnn-noperm", "sdnn-noperm-kernel", "sdnn-tuned", "sdnn-tuned-kernel",
                                             "onednn"};

struct Point {
  int64_t ic = 0, oc = 0, image = 0;
  double sparsity = 0.0;
  std::string str() const {
    char buf[96];
    std::snprintf(buf, sizeof buf, "ic=%lld oc=%lld image=%lld sparsity=%.2f", (long long)ic, (long long)oc,
                  (long long)image, sparsity);
    return buf;
  }
};

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// The sdnn peers' input x: NCHW, ChannelBlocked, or a previous direct conv's output grid.
enum class Input { Nchw, Blocked, Grid };

Input parse_input(const std::string& s) {
  return s == "blocked" ? Input::Blocked : s == "grid" ? Input::Grid : Input::Nchw;
}

// The shapes of the three steps, as passes/src/direct_conv.cpp computes them for stride 1,
// dilation 1: padded planes of rows x wq, the kernel's output grid of ho x wq columns.
struct Geometry {
  int64_t ic = 0, oc = 0, h = 0, w = 0, ho = 0, wo = 0;
  int64_t vl = 0;
  int64_t wq = 0, rows = 0;      // one padded plane: rows x wq floats
  int64_t grid_cols = 0;         // round_up(ho * wq, vl): the kernel's n
  int64_t in_cols = 0, out_cols = 0;  // round_up(h * w, vl), round_up(ho * wo, vl)

  int64_t plane_floats() const { return rows * wq; }
  int64_t planes_floats() const { return ic * plane_floats(); }
  int64_t grid_floats() const { return oc * grid_cols; }
  int64_t out_floats() const { return oc * out_cols; }
  int64_t x_floats(Input in) const {
    return in == Input::Nchw ? ic * h * w : in == Input::Blocked ? ic * in_cols : ic * round_up(h * wq, vl);
  }
  int64_t k() const { return ic * kKernel * kKernel; }
  double dense_flops() const { return 2.0 * static_cast<double>(k() * oc * ho * wo); }
};

Geometry geometry_of(const Point& p, int64_t vl) {
  Geometry g;
  g.ic = p.ic;
  g.oc = p.oc;
  g.h = g.w = p.image;
  g.ho = g.h + 2 * kPad - kKernel + 1;
  g.wo = g.w + 2 * kPad - kKernel + 1;
  g.vl = vl;
  const int64_t hp = g.h + 2 * kPad, wp = g.w + 2 * kPad;
  const int64_t dy_max = kKernel - 1, dx_max = kKernel - 1;
  g.wq = wp;
  g.grid_cols = round_up(g.ho * g.wq, vl);
  g.rows = std::max(hp, (g.grid_cols + dy_max * g.wq + dx_max + g.wq - 1) / g.wq + 1);
  g.in_cols = round_up(g.h * g.w, vl);
  g.out_cols = round_up(g.ho * g.wo, vl);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Data.

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using Floats = std::unique_ptr<float[], FreeDeleter>;

Floats alloc_floats(int64_t count) {
  const size_t bytes = static_cast<size_t>(round_up(std::max<int64_t>(count, 1) * 4, 64));
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::runtime_error("out of memory allocating " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, bytes);
  return Floats(static_cast<float*>(p));
}

// `copies` tensors of `floats` each, 64-byte aligned, one allocation.
class Rotation {
 public:
  Rotation() = default;
  Rotation(int copies, int64_t floats) : stride_(round_up(std::max<int64_t>(floats, 1), 16)), floats_(floats) {
    data_ = alloc_floats(stride_ * copies);
  }
  float* operator[](int i) const { return data_.get() + i * stride_; }
  int64_t floats() const { return floats_; }

 private:
  int64_t stride_ = 0, floats_ = 0;
  Floats data_;
};

struct Workload {
  Point pt;
  Geometry g;
  std::vector<float> w;  // [OC][IC*9] = OIHW, pruned entries 0 (the one copy of the weights)
  be::SparseMatrix csr;
  std::vector<float> x;  // [IC][H][W]
  std::vector<double> ref, scale;  // [OC][Ho*Wo]: sum w x and sum |w x|
  int copies = 0;

  int64_t nnz() const { return csr.nnz(); }
};

std::unique_ptr<Workload> make_workload(const Point& pt, const Geometry& g, const Options& opt) {
  auto wl = std::make_unique<Workload>();
  wl->pt = pt;
  wl->g = g;
  std::mt19937_64 rng(opt.seed ^ (static_cast<uint64_t>(pt.ic) << 40) ^ (static_cast<uint64_t>(pt.oc) << 20) ^
                      static_cast<uint64_t>(pt.image));
  std::normal_distribution<float> normal;

  // Weights: unit Gaussian, then exactly round(sparsity * size) smallest magnitudes set to zero.
  const int64_t size = g.oc * g.k();
  wl->w.resize(size);
  for (float& v : wl->w) v = normal(rng);
  const int64_t zeros = std::clamp<int64_t>(std::llround(pt.sparsity * static_cast<double>(size)), 0, size);
  if (zeros > 0) {
    std::vector<int64_t> order(size);
    std::iota(order.begin(), order.end(), 0);
    const float* w = wl->w.data();
    auto smaller = [w](int64_t a, int64_t b) {
      const float fa = std::fabs(w[a]), fb = std::fabs(w[b]);
      return fa < fb || (fa == fb && a < b);
    };
    if (zeros < size) std::nth_element(order.begin(), order.begin() + zeros, order.end(), smaller);
    for (int64_t i = 0; i < zeros; ++i) wl->w[order[i]] = 0.0f;
  }
  wl->csr = be::SparseMatrix::from_dense(wl->w.data(), g.oc, g.k());

  wl->x.resize(g.ic * g.h * g.w);
  for (float& v : wl->x) v = normal(rng);

  // Reference, in double, from the nonzeros: y[m][oy][ox] += w[m][c][ky][kx] x[c][oy+ky-1][ox+kx-1].
  const int64_t hw = g.ho * g.wo;
  wl->ref.assign(g.oc * hw, 0.0);
  wl->scale.assign(g.oc * hw, 0.0);
  for (int64_t m = 0; m < g.oc; ++m)
    for (int64_t e = wl->csr.row_ptr[m]; e < wl->csr.row_ptr[m + 1]; ++e) {
      const int64_t col = wl->csr.col[e], c = col / 9, ky = col % 9 / 3, kx = col % 3;
      const double v = wl->csr.val[e];
      for (int64_t oy = 0; oy < g.ho; ++oy) {
        const int64_t iy = oy + ky - kPad;
        if (iy < 0 || iy >= g.h) continue;
        const float* xrow = wl->x.data() + (c * g.h + iy) * g.w;
        double* ref = wl->ref.data() + m * hw + oy * g.wo;
        double* scale = wl->scale.data() + m * hw + oy * g.wo;
        for (int64_t ox = std::max<int64_t>(0, kPad - kx); ox < std::min(g.wo, g.w + kPad - kx); ++ox) {
          const double t = v * xrow[ox + kx - kPad];
          ref[ox] += t;
          scale[ox] += std::fabs(t);
        }
      }
    }

  // Copies: enough that one rotation of the largest peer's activations exceeds --rotate-mib.
  const double per_copy = 4.0 * static_cast<double>(g.x_floats(Input::Grid) + g.planes_floats() + g.grid_floats() +
                                                    g.out_floats() + g.oc * g.plane_floats());
  wl->copies = std::clamp(static_cast<int>(std::ceil(opt.rotate_mib * 1024 * 1024 / per_copy)), 2, 4096);
  return wl;
}

// |got - ref| / sum |w x| for output m, position p (inf for NaN).
double rel_err(const Workload& wl, int64_t m, int64_t p, float got) {
  const int64_t i = m * wl.g.ho * wl.g.wo + p;
  const double e = std::fabs(static_cast<double>(got) - wl.ref[i]) / std::max(wl.scale[i], 1e-30);
  return std::isnan(e) ? INFINITY : e;
}

constexpr float kSentinel = 12345.0f;  // prefilled before a check: an unwritten output fails it

// ---------------------------------------------------------------------------------------------
// The sdnn steps, run as runtime_min runs them (context.c): with one thread on the caller; with
// T > 1 a step that is worth splitting runs on the pool (thread 0 = the caller), the others on the
// caller alone.

// context.c's rule for a windowed step (threads_for with WINDOW_MIN_PER_THREAD = 2^13 units of
// sdnn_window_work): only threads that get at least that much work join.
int window_threads(const sdnn_step& step, int max_threads) {
  const int64_t work = sdnn_window_work(&step), units = sdnn_window_units(&step);
  int64_t t = std::min<int64_t>({work / (1 << 13), units, max_threads});
  return t < 1 ? 1 : static_cast<int>(t);
}

// pad_planes, crop or zero_borders: one sdnn_step of runtime_min, run by sdnn_planes_run /
// sdnn_zero_borders_run.
class PlanesStep {
 public:
  // cpu: the SDNN_CPU_* bits a model of this ISA carries (its required_cpu).
  PlanesStep(uint32_t op, const sdnn_window_params& params, sdnn_pool* pool, int max_threads, uint32_t cpu)
      : params_(params), pool_(pool), cpu_(cpu) {
    step_.op = op;
    step_.conv = &params_;
    units_ = sdnn_window_units(&step_);
    threads_ = pool ? window_threads(step_, max_threads) : 1;
    scratch_floats_ = round_up(sdnn_window_scratch_floats(&params_), 16);
    scratch_ = alloc_floats(scratch_floats_ * threads_);
  }
  PlanesStep(const PlanesStep&) = delete;
  PlanesStep& operator=(const PlanesStep&) = delete;

  void run(const float* src, float* dst) {
    if (threads_ == 1) return run_units(src, dst, scratch_.get(), 0, units_);
    Call call{this, src, dst};
    sdnn_pool_run(pool_, &PlanesStep::share, &call);
  }
  int threads() const { return threads_; }

 private:
  struct Call {
    PlanesStep* self;
    const float* src;
    float* dst;
  };
  static void share(void* arg, int t) {
    const Call* c = static_cast<const Call*>(arg);
    PlanesStep& s = *c->self;
    if (t >= s.threads_) return;
    s.run_units(c->src, c->dst, s.scratch_.get() + t * s.scratch_floats_, s.units_ * t / s.threads_,
                s.units_ * (t + 1) / s.threads_);
  }
  void run_units(const float* src, float* dst, float* scratch, int64_t begin, int64_t end) {
    if (step_.op == SDNN_STEP_ZERO_BORDERS) return sdnn_zero_borders_run(&step_, dst, begin, end);
    sdnn_planes_run(&step_, src, nullptr, dst, scratch, begin, end, cpu_);
  }

  sdnn_window_params params_;
  sdnn_step step_{};
  sdnn_pool* pool_;
  uint32_t cpu_;
  int64_t units_ = 0, scratch_floats_ = 0;
  int threads_ = 1;
  Floats scratch_;
};

// How a kernel variant's plan is chosen.
enum class Variant { Permuted, ModelOrder, Tuned };

// The generated direct-convolution kernel for one variant: planes -> grid.
class ConvKernel {
 public:
  // planes_out: the kernel writes the next 3x3 conv's zero-padded planes [OC][R][Wq] (lower.cpp's
  // planes_out: C row m at m * R*Wq, the caller passes the planes + pad_top*Wq + pad_left) instead
  // of the grid; the grid's columns ox >= Wo then land on pad columns, which zero_borders clears.
  // masked: the masked direct convolution (KernelPlan::mask_h / mask_w): reads x (NCHW) and
  // writes y (ChannelBlocked) itself, no pad_planes, no crop.
  ConvKernel(const Workload& wl, be::Isa isa, Variant variant, sdnn_pool* pool, int max_threads, bool planes_out = false,
             bool masked = false)
      : pool_(pool), masked_(masked) {
    const Geometry& g = wl.g;
    plan_ = be::default_plan(be::Family::Spmm, isa, g.oc, g.k(), masked ? g.h * g.w : g.ho * g.wq, false,
                             be::Activation::None);
    if (planes_out) plan_.c_plane = g.plane_floats();
    // lower.cpp's direct_offsets for stride 1, dilation 1: tap (c, ky, kx) of the column at n reads
    // planes + c*R*Wq + ky*Wq + kx + n; masked: x + c*H*W + (ky-1)*W + kx-1 + n.
    for (int64_t c = 0; c < g.ic; ++c)
      for (int64_t ky = 0; ky < kKernel; ++ky)
        for (int64_t kx = 0; kx < kKernel; ++kx)
          plan_.b_offsets.push_back(masked ? c * g.h * g.w + (ky - 1) * g.w + kx - 1
                                           : c * g.plane_floats() + ky * g.wq + kx);
    if (masked) {  // as lower.cpp
      plan_.mask_h = g.h;
      plan_.mask_w = g.w;
      be::fit_masked_k_block(plan_);
    }
    be::group_direct_columns(plan_, wl.csr.nnz());  // as lower.cpp: code prefetch, column groups
    if (variant != Variant::ModelOrder) {
      // As the compiler's permute-rows pass (tools/sdnnc_main.cpp: tile height spmm_tile_height).
      const sdnn::passes::ChosenOrder c =
          sdnn::passes::choose_row_order(wl.w.data(), g.oc, g.k(), be::spmm_tile_height(isa));
      loads_before_ = c.loads_before;
      loads_after_ = c.loads_after;
      plan_.row_order = c.order;
    }
    if (variant == Variant::Tuned) {
      be::TuneOptions topt;  // sdnnc's default --tune=fast, without the cache
      topt.level = be::TuneLevel::Fast;
      plan_ = be::tune_plan(plan_, wl.csr, topt, nullptr);
    }
    if (plan_.n != (masked ? g.out_cols : g.grid_cols)) throw std::runtime_error("plan n differs from the padded grid");
    if (plan_.b_extent(plan_.n) > (masked ? g.ic * g.h * g.w : g.planes_floats()))
      throw std::runtime_error("the kernel would read " + std::to_string(plan_.b_extent(plan_.n)) +
                               " floats of planes holding " + std::to_string(g.planes_floats()));
    be::KernelBinary bin = be::emit_kernel(plan_, wl.csr, be::kernel_symbol(0, plan_));
    code_bytes_ = static_cast<int64_t>(bin.code.size());
    values_ = alloc_floats(static_cast<int64_t>(bin.values.size()));
    std::copy(bin.values.begin(), bin.values.end(), values_.get());
    block_offsets_ = bin.block_offsets;
    jit_ = std::make_unique<be::JitKernel>(bin.code);
    tiles_ = plan_.num_tiles();
    k_blocks_ = plan_.num_k_blocks();
    if (static_cast<int64_t>(block_offsets_.size()) != tiles_ * k_blocks_ + 1)
      throw std::runtime_error("kernel block offsets do not match the plan");

    // The runtime's split of this kernel step (batch 1; a column range at n0 starts n0 floats into
    // the planes, n0 * OC into the grid). With one thread it is one task: every tile, every column.
    sdnn_kernel_step step{};
    step.fn = jit_->fn();
    step.values = values_.get();
    step.block_offsets = block_offsets_.data();
    step.num_tiles = tiles_;
    step.num_k_blocks = k_blocks_;
    step.n = plan_.n;
    step.n_align = plan_.column_align();
    step.batch = 1;
    step.split = SDNN_SPLIT_COLUMNS;  // sdnnc's default --thread-split=auto
    step.b_batch_stride = masked ? g.ic * g.h * g.w : g.planes_floats();
    c_col_scale_ = planes_out ? 1 : g.oc;
    step.c_batch_stride = planes_out ? g.oc * g.plane_floats() : masked ? g.out_floats() : g.grid_floats();
    step.b_col_scale = 1;
    step.c_col_scale = c_col_scale_;
    step.name = "bench";
    sdnn_kernel_split split;
    if (sdnn_kernel_split_init(&split, &step, pool ? max_threads : 1) != 0) throw std::bad_alloc();
    threads_ = split.num_threads;
    tasks_.assign(threads_, {});
    for (int t = 0; t < threads_; ++t)
      for (int64_t i = split.first[t]; i < split.first[t + 1]; ++i) tasks_[t].push_back(split.tasks[i]);
    sdnn_kernel_split_free(&split);
  }

  void run(const float* planes, float* grid) {
    if (threads_ == 1) return run_tasks(0, planes, grid);
    Call call{this, planes, grid};
    sdnn_pool_run(pool_, &ConvKernel::share, &call);
  }

  int64_t code_bytes() const { return code_bytes_; }
  std::string details() const {
    std::ostringstream os;
    os << "plan " << plan_.str() << " " << tiles_ << " tiles x " << k_blocks_ << " k blocks; code " << code_bytes_
       << " B; values " << (block_offsets_.back() * 4) << " B";
    if (loads_before_ >= 0)
      os << "; B loads per column chunk " << loads_before_ << " -> " << loads_after_
         << (plan_.row_order.empty() ? " (model order kept)" : " (rows permuted)");
    else
      os << "; model row order";
    if (threads_ > 1) os << "; runtime split over " << threads_ << " threads";
    return os.str();
  }

 private:
  struct Call {
    ConvKernel* self;
    const float* b;
    float* c;
  };
  static void share(void* arg, int t) {
    const Call* c = static_cast<const Call*>(arg);
    if (t < c->self->threads_) c->self->run_tasks(t, c->b, c->c);
  }
  // runtime_min's run_kernel_tasks (context.c) for one batch item.
  void run_tasks(int t, const float* planes, float* grid) const {
    const sdnn_kernel_fn fn = jit_->fn();
    for (const sdnn_kernel_task& task : tasks_[t]) {
      sdnn_kernel_args args{};
      args.b = planes + task.n0;
      args.c = grid + task.n0 * c_col_scale_;
      args.n = task.n1 - task.n0;
      args.col0 = task.n0;
      for (int64_t kb = 0; kb < k_blocks_; ++kb) {
        args.block_begin = kb * tiles_ + task.t0;
        args.block_end = kb * tiles_ + task.t1;
        args.values = values_.get() + block_offsets_[args.block_begin];
        fn(&args);
      }
    }
  }

  sdnn_pool* pool_;
  bool masked_ = false;
  be::KernelPlan plan_;
  std::unique_ptr<be::JitKernel> jit_;
  Floats values_;
  std::vector<int64_t> block_offsets_;
  std::vector<std::vector<sdnn_kernel_task>> tasks_;
  int threads_ = 1;
  int64_t tiles_ = 0, k_blocks_ = 0, c_col_scale_ = 0, code_bytes_ = 0;
  int64_t loads_before_ = -1, loads_after_ = -1;
};

// The sdnn peers' activations (shared by all sdnn peers of a point) and the two window steps.
struct SdnnData {
  Input input = Input::Nchw;
  Rotation x, planes, grid, out, next;  // next: the next conv's planes [OC][R][Wq] (sdnn-chain)
  int64_t wq = 0;
  std::unique_ptr<PlanesStep> pad, crop, zero;

  SdnnData(const Workload& wl, Input in, sdnn_pool* pool, int max_threads) : input(in) {
    const Geometry& g = wl.g;
    const uint32_t cpu = g.vl == 16 ? SDNN_CPU_AVX2 | SDNN_CPU_AVX512F : SDNN_CPU_AVX2;
    wq = g.wq;
    x = Rotation(wl.copies, g.x_floats(in));
    planes = Rotation(wl.copies, g.planes_floats());
    grid = Rotation(wl.copies, g.grid_floats());
    out = Rotation(wl.copies, g.out_floats());
    next = Rotation(wl.copies, g.oc * g.plane_floats());
    // Blocked and grid inputs: position p = iy * row + ix of channel c at (p / VL * IC + c) * VL + p % VL,
    // row = W (blocked, pad columns 0) or Wq (grid: columns ix >= W and the last block's tail NaN).
    const int64_t row = in == Input::Grid ? g.wq : g.w;
    for (int i = 0; i < wl.copies; ++i) {
      float* d = x[i];
      if (in == Input::Nchw) {
        std::copy(wl.x.begin(), wl.x.end(), d);
        continue;
      }
      if (in == Input::Grid) std::fill(d, d + g.x_floats(in), NAN);
      for (int64_t c = 0; c < g.ic; ++c)
        for (int64_t iy = 0; iy < g.h; ++iy)
          for (int64_t ix = 0; ix < g.w; ++ix) {
            const int64_t p = iy * row + ix;
            d[(p / g.vl * g.ic + c) * g.vl + p % g.vl] = wl.x[(c * g.h + iy) * g.w + ix];
          }
    }
    // lower.cpp's window fields for pad_planes (x -> [IC][R][Wq]) and crop (grid -> y).
    sdnn_window_params pp{};
    pp.batch = 1;
    pp.channels = g.ic;
    pp.in_h = g.h;
    pp.in_w = g.w;
    pp.out_h = g.rows;
    pp.out_w = g.wq;
    pp.stride_h = pp.stride_w = 1;
    pp.pad_top = pp.pad_left = kPad;
    pp.kernel_h = pp.kernel_w = kKernel;
    pp.dilation_h = pp.dilation_w = 1;
    pp.vl = in == Input::Nchw ? 0 : g.vl;
    pp.in_row_stride = in == Input::Grid ? g.wq : 0;
    pad = std::make_unique<PlanesStep>(SDNN_STEP_PAD_PLANES, pp, pool, max_threads, cpu);
    sdnn_window_params cp{};
    cp.batch = 1;
    cp.channels = g.oc;
    cp.in_h = g.ho;
    cp.in_w = g.wq;
    cp.out_h = g.ho;
    cp.out_w = g.wo;
    cp.vl = g.vl;
    cp.by_blocks = g.vl == 16;  // as sdnnc lowers a crop for AVX-512: gathered, block by block
    crop = std::make_unique<PlanesStep>(SDNN_STEP_CROP, cp, pool, max_threads, cpu);
    // lower.cpp's zero_borders after a planes-out kernel: the pads of the next conv's planes.
    sdnn_window_params zp{};
    zp.batch = 1;
    zp.channels = g.oc;
    zp.in_h = g.ho;
    zp.in_w = g.wo;
    zp.out_h = g.rows;
    zp.out_w = g.wq;
    zp.pad_top = zp.pad_left = kPad;
    zero = std::make_unique<PlanesStep>(SDNN_STEP_ZERO_BORDERS, zp, pool, max_threads, cpu);
  }
};

// ---------------------------------------------------------------------------------------------
// Peers. run(i) computes the peer's part of the layer for activation copy i.

class Peer {
 public:
  explicit Peer(std::string name) : name_(std::move(name)) {}
  virtual ~Peer() = default;
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  const std::string& name() const { return name_; }
  virtual void run(int copy) = 0;
  // Runs once on copy 0 (outputs prefilled with the sentinel) and returns the max error.
  virtual double check(const Workload& wl) = 0;
  virtual std::string details() const { return {}; }
  virtual int64_t code_bytes() const { return -1; }
  // Flops: Sparse counts 2 * nnz * Ho*Wo, Dense the dense count; None for pad / crop alone.
  enum class Flops { Sparse, Dense, None };
  virtual Flops flops() const = 0;

 private:
  std::string name_;
};

// Max error of blocked y [out_cols/VL][OC][VL] against the reference; pad columns must be 0.
double check_blocked_out(const Workload& wl, const float* y) {
  const Geometry& g = wl.g;
  double worst = 0.0;
  for (int64_t p = 0; p < g.out_cols; ++p)
    for (int64_t m = 0; m < g.oc; ++m) {
      const float got = y[(p / g.vl * g.oc + m) * g.vl + p % g.vl];
      const double e = p < g.ho * g.wo ? rel_err(wl, m, p, got) : (got == 0.0f ? 0.0 : INFINITY);
      worst = std::max(worst, e);
    }
  return worst;
}

// Steps of the layer a peer runs.
// kChainStage: the planes-out kernel + zero_borders (planes -> the next conv's planes).
// kMaskedStage: the masked kernel alone (x -> y).
enum Stage : unsigned { kPadStage = 1, kKernelStage = 2, kCropStage = 4, kChainStage = 8, kMaskedStage = 16 };

class SdnnPeer : public Peer {
 public:
  SdnnPeer(std::string name, unsigned stages, SdnnData* data, ConvKernel* kernel)
      : Peer(std::move(name)), stages_(stages), d_(data), kernel_(kernel) {}

  void run(int i) override {
    if (stages_ & kMaskedStage) return kernel_->run(d_->x[i], d_->out[i]);
    if (stages_ & kChainStage) {
      kernel_->run(d_->planes[i], d_->next[i] + kPad * d_->wq + kPad);
      d_->zero->run(nullptr, d_->next[i]);
      return;
    }
    if (stages_ & kPadStage) d_->pad->run(d_->x[i], d_->planes[i]);
    if (stages_ & kKernelStage) kernel_->run(d_->planes[i], d_->grid[i]);
    if (stages_ & kCropStage) d_->crop->run(d_->grid[i], d_->out[i]);
  }

  double check(const Workload& wl) override {
    const Geometry& g = wl.g;
    if (stages_ == kPadStage) return check_pad(wl);
    if (stages_ == kChainStage) return check_chain(wl);
    const bool compact = stages_ & (kCropStage | kMaskedStage);
    float* result = compact ? d_->out[0] : d_->grid[0];
    std::fill(result, result + (compact ? g.out_floats() : g.grid_floats()), kSentinel);
    if (stages_ & kPadStage) std::fill(d_->planes[0], d_->planes[0] + g.planes_floats(), kSentinel);
    run(0);
    if (compact) return check_blocked_out(wl, result);
    // The kernel's grid [G/VL][OC][VL]: column oy*Wq + ox for ox < Wo holds y[m][oy][ox].
    double worst = 0.0;
    for (int64_t oy = 0; oy < g.ho; ++oy)
      for (int64_t ox = 0; ox < g.wo; ++ox)
        for (int64_t m = 0; m < g.oc; ++m) {
          const int64_t n = oy * g.wq + ox;
          worst = std::max(worst, rel_err(wl, m, oy * g.wo + ox, result[(n / g.vl * g.oc + m) * g.vl + n % g.vl]));
        }
    return worst;
  }

  std::string details() const override {
    std::string s;
    if (stages_ & kMaskedStage) return std::string("masked kernel on NCHW x [") + kernel_->details() + "]";
    if (stages_ & kChainStage)
      return std::string("kernel writing the next conv's planes [") + kernel_->details() + "] + zero_borders (" +
             std::to_string(d_->zero->threads()) + " thread(s))";
    if (stages_ & kPadStage)
      s += std::string("pad_planes (") +
           (d_->input == Input::Nchw ? "NCHW" : d_->input == Input::Blocked ? "ChannelBlocked" : "grid") + " x; " +
           std::to_string(d_->pad->threads()) + " thread(s))";
    if (stages_ & kKernelStage) s += (s.empty() ? "" : " + ") + std::string("kernel [") + kernel_->details() + "]";
    if (stages_ & kCropStage)
      s += (s.empty() ? "" : " + ") + std::string("crop (") + std::to_string(d_->crop->threads()) + " thread(s))";
    return s;
  }
  int64_t code_bytes() const override {
    return stages_ & (kKernelStage | kChainStage | kMaskedStage) ? kernel_->code_bytes() : -1;
  }
  Flops flops() const override {
    return stages_ & (kKernelStage | kChainStage | kMaskedStage) ? Flops::Sparse : Flops::None;
  }

 private:
  // The next conv's planes: next[m][oy + 1][ox + 1] = y[m][oy][ox], every other float exactly 0.
  double check_chain(const Workload& wl) {
    const Geometry& g = wl.g;
    float* next = d_->next[0];
    std::fill(next, next + g.oc * g.plane_floats(), kSentinel);
    run(0);
    double worst = 0.0;
    for (int64_t m = 0; m < g.oc; ++m)
      for (int64_t r = 0; r < g.rows; ++r)
        for (int64_t q = 0; q < g.wq; ++q) {
          const int64_t oy = r - kPad, ox = q - kPad;
          const float got = next[(m * g.rows + r) * g.wq + q];
          const bool inside = oy >= 0 && oy < g.ho && ox >= 0 && ox < g.wo;
          worst = std::max(worst, inside ? rel_err(wl, m, oy * g.wo + ox, got) : got == 0.0f ? 0.0 : INFINITY);
        }
    return worst;
  }

  // pad_planes alone: planes[c][r][q] = x[c][r - 1][q - 1] inside the image, else exactly 0.
  double check_pad(const Workload& wl) {
    const Geometry& g = wl.g;
    float* planes = d_->planes[0];
    std::fill(planes, planes + g.planes_floats(), kSentinel);
    run(0);
    double worst = 0.0;
    for (int64_t c = 0; c < g.ic; ++c)
      for (int64_t r = 0; r < g.rows; ++r)
        for (int64_t q = 0; q < g.wq; ++q) {
          const int64_t iy = r - kPad, ix = q - kPad;
          const float want = iy >= 0 && iy < g.h && ix >= 0 && ix < g.w ? wl.x[(c * g.h + iy) * g.w + ix] : 0.0f;
          const float got = planes[(c * g.rows + r) * g.wq + q];
          worst = std::max(worst, got == want ? 0.0 : INFINITY);
        }
    return worst;
  }

  unsigned stages_;
  SdnnData* d_;
  ConvKernel* kernel_;
};

// oneDNN's name of a blocked memory format: dims outermost first (a = N/O, b = C/I, ...), capital
// when blocked, then the inner blocks, e.g. aBcd16b (= nChw16c).
std::string md_format(const dnnl::memory::desc& md) {
  const dnnl_memory_desc_t& d = md.data;
  if (d.format_kind != dnnl_blocked) return "(not blocked)";
  const auto& b = d.format_desc.blocking;
  std::vector<int> order(d.ndims);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return b.strides[x] > b.strides[y]; });
  std::vector<bool> blocked(d.ndims, false);
  for (int i = 0; i < b.inner_nblks; ++i) blocked[b.inner_idxs[i]] = true;
  std::string s;
  for (int i : order) s += static_cast<char>((blocked[i] ? 'A' : 'a') + i);
  for (int i = 0; i < b.inner_nblks; ++i) s += std::to_string(b.inner_blks[i]) + static_cast<char>('a' + b.inner_idxs[i]);
  return s;
}

class OnednnPeer : public Peer {
 public:
  OnednnPeer(const Workload& wl, dnnl::algorithm alg, const dnnl::engine& eng, dnnl::stream& strm)
      : Peer("onednn"), strm_(strm) {
    using dnnl::memory;
    using tag = memory::format_tag;
    const Geometry& g = wl.g;
    const memory::dims src{1, g.ic, g.h, g.w}, wei{g.oc, g.ic, kKernel, kKernel}, dst{1, g.oc, g.ho, g.wo};
    auto any = [](const memory::dims& d) { return memory::desc(d, memory::data_type::f32, tag::any); };
    dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_inference, alg, any(src), any(wei), any(dst),
                                         {1, 1}, {kPad, kPad}, {kPad, kPad});
    pd_ = dnnl::convolution_forward::primitive_desc(desc, eng);
    prim_ = dnnl::convolution_forward(pd_);

    // Weights: reordered into the primitive's format once (not timed).
    memory user_w({wei, memory::data_type::f32, tag::oihw}, eng, const_cast<float*>(wl.w.data()));
    weights_ = memory(pd_.weights_desc(), eng);
    dnnl::reorder(user_w, weights_).execute(strm_, user_w, weights_);
    // Input and output copies in the primitive's formats (the reorders are not timed).
    memory user_x({src, memory::data_type::f32, tag::nchw}, eng, const_cast<float*>(wl.x.data()));
    for (int i = 0; i < wl.copies; ++i) {
      memory s(pd_.src_desc(), eng), d(pd_.dst_desc(), eng);
      dnnl::reorder(user_x, s).execute(strm_, user_x, s);
      args_.push_back({{DNNL_ARG_SRC, s}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, d}});
    }
    strm_.wait();
    user_y_ = memory({dst, memory::data_type::f32, tag::nchw}, eng);
    details_ = std::string(pd_.impl_info_str()) + " alg " + (alg == dnnl::algorithm::convolution_auto ? "auto" : "direct") +
               "; src " + md_format(pd_.src_desc()) + " wei " + md_format(pd_.weights_desc()) + " dst " +
               md_format(pd_.dst_desc()) + " (src / dst reorders from / to NCHW not timed)";
  }

  void run(int i) override {
    prim_.execute(strm_, args_[i]);
    strm_.wait();
  }

  double check(const Workload& wl) override {
    const Geometry& g = wl.g;
    dnnl::memory& d = args_[0].at(DNNL_ARG_DST);
    float* raw = static_cast<float*>(d.get_data_handle());
    std::fill(raw, raw + pd_.dst_desc().get_size() / sizeof(float), kSentinel);
    run(0);
    dnnl::reorder(d, user_y_).execute(strm_, d, user_y_);
    strm_.wait();
    const float* y = static_cast<const float*>(user_y_.get_data_handle());
    double worst = 0.0;
    for (int64_t m = 0; m < g.oc; ++m)
      for (int64_t p = 0; p < g.ho * g.wo; ++p) worst = std::max(worst, rel_err(wl, m, p, y[m * g.ho * g.wo + p]));
    return worst;
  }

  std::string details() const override { return details_; }
  Flops flops() const override { return Flops::Dense; }

 private:
  dnnl::stream& strm_;
  dnnl::convolution_forward::primitive_desc pd_;
  dnnl::convolution_forward prim_;
  dnnl::memory weights_, user_y_;
  std::vector<std::unordered_map<int, dnnl::memory>> args_;
  std::string details_;
};

// ---------------------------------------------------------------------------------------------
// Measurement.

struct PeerResult {
  std::string name, details, failure;
  bool ok = false;
  Peer::Flops flops = Peer::Flops::None;
  double max_err = NAN;
  int64_t code_bytes = -1;
  int inner = 0;
  std::vector<double> samples_us;
  double median_us = NAN, p10_us = NAN, p90_us = NAN;
};

struct PointResult {
  Point pt;
  Geometry g;
  int64_t nnz = 0;
  int copies = 0, rounds = 0;
  bool truncated = false;
  double setup_s = 0, timing_s = 0;
  std::vector<PeerResult> peers;

  const PeerResult* find(const std::string& name) const {
    for (const auto& p : peers)
      if (p.name == name && p.ok) return &p;
    return nullptr;
  }
  double speedup(const PeerResult& r) const {  // oneDNN's median over this peer's; none for pad / crop alone
    const PeerResult* d = find("onednn");
    return d && r.ok && r.flops != Peer::Flops::None ? d->median_us / r.median_us : NAN;
  }
  double gflops(const PeerResult& r) const {
    if (!r.ok || r.flops == Peer::Flops::None) return NAN;
    const double flops = r.flops == Peer::Flops::Dense ? g.dense_flops() : 2.0 * nnz * g.ho * g.wo;
    return flops / (r.median_us * 1e3);
  }
  double gflops_eff(const PeerResult& r) const {
    return r.ok && r.flops != Peer::Flops::None ? g.dense_flops() / (r.median_us * 1e3) : NAN;
  }
};

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos)), hi = static_cast<size_t>(std::ceil(pos));
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// T > 1: sleeps in 500 us steps until one passes with the process using under 25 % of a core,
// i.e. no helper thread (libgomp's spin after a oneDNN call, the pool's) competes with the next
// sample; at most 250 ms.
void settle() {
  const auto start = Clock::now();
  for (;;) {
    const double c0 = process_cpu_seconds();
    const auto t0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    if (process_cpu_seconds() - c0 < 0.25 * wall) return;
    if (std::chrono::duration<double>(Clock::now() - start).count() > 0.25) return;
  }
}

struct Context {
  const Options& opt;
  be::Isa isa;
  sdnn_pool* pool;  // null with one thread
  dnnl::engine& eng;
  dnnl::stream& strm;
  dnnl::algorithm alg;
};

PointResult measure(const Point& pt, const Context& ctx) {
  const Options& opt = ctx.opt;
  const auto setup_start = Clock::now();
  PointResult res;
  res.pt = pt;
  res.g = geometry_of(pt, be::vector_floats(ctx.isa));
  const std::unique_ptr<Workload> wl = make_workload(pt, res.g, opt);
  res.nnz = wl->nnz();
  res.copies = wl->copies;

  // Kernels per variant (built once, shared by that variant's peers), the shared sdnn data.
  std::unique_ptr<SdnnData> data;
  std::unique_ptr<ConvKernel> kernels[3], chain_kernel, masked_kernel;
  auto kernel_for = [&](Variant v) {
    auto& k = kernels[static_cast<int>(v)];
    if (!k) k = std::make_unique<ConvKernel>(*wl, ctx.isa, v, ctx.pool, opt.threads);
    return k.get();
  };
  auto make_peer = [&](const std::string& name) -> std::unique_ptr<Peer> {
    if (name == "onednn") return std::make_unique<OnednnPeer>(*wl, ctx.alg, ctx.eng, ctx.strm);
    const Input in = parse_input(opt.input);
    if (!data) data = std::make_unique<SdnnData>(*wl, in, ctx.pool, opt.threads);
    const bool kernel_only = name.size() > 7 && name.compare(name.size() - 7, 7, "-kernel") == 0;
    const unsigned stages = kernel_only          ? kKernelStage
                            : in == Input::Grid ? kPadStage | kKernelStage
                                                : kPadStage | kKernelStage | kCropStage;
    if (name == "sdnn-pad") return std::make_unique<SdnnPeer>(name, kPadStage, data.get(), nullptr);
    if (name == "sdnn-crop") return std::make_unique<SdnnPeer>(name, kCropStage, data.get(), nullptr);
    if (name == "sdnn" && in == Input::Nchw && ctx.isa == be::Isa::Avx512) {  // sdnnc's masked-direct pass
      masked_kernel = std::make_unique<ConvKernel>(*wl, ctx.isa, Variant::Permuted, ctx.pool, opt.threads, false, true);
      return std::make_unique<SdnnPeer>(name, kMaskedStage, data.get(), masked_kernel.get());
    }
    if (name == "sdnn-chain") {
      chain_kernel = std::make_unique<ConvKernel>(*wl, ctx.isa, Variant::Permuted, ctx.pool, opt.threads, true);
      return std::make_unique<SdnnPeer>(name, kChainStage, data.get(), chain_kernel.get());
    }
    const Variant v = name.rfind("sdnn-noperm", 0) == 0  ? Variant::ModelOrder
                      : name.rfind("sdnn-tuned", 0) == 0 ? Variant::Tuned
                                                         : Variant::Permuted;
    return std::make_unique<SdnnPeer>(name, stages, data.get(), kernel_for(v));
  };

  std::vector<std::unique_ptr<Peer>> peers;
  for (const std::string& name : opt.peers) {
    PeerResult r;
    r.name = name;
    std::unique_ptr<Peer> peer;
    try {
      peer = make_peer(name);
      r.details = peer->details();
      r.code_bytes = peer->code_bytes();
      r.flops = peer->flops();
      peers.push_back(std::move(peer));
    } catch (const std::exception& e) {
      r.failure = std::string("set-up: ") + e.what();
      peers.push_back(nullptr);
    }
    res.peers.push_back(std::move(r));
  }
  // Every copy's planes, grid and y hold their step's output, so a peer that starts later in the
  // chain (sdnn-kernel, sdnn-crop) reads valid data; then every peer is checked on copy 0 (the
  // checks run in peer order, crop after the kernel that feeds it was primed here).
  if (data) {
    ConvKernel* k = kernels[0] ? kernels[0].get() : kernels[1] ? kernels[1].get() : kernels[2].get();
    for (int i = 0; i < wl->copies; ++i) {
      data->pad->run(data->x[i], data->planes[i]);
      if (k) k->run(data->planes[i], data->grid[i]);
      data->crop->run(data->grid[i], data->out[i]);
    }
  }
  for (size_t i = 0; i < peers.size(); ++i) {
    PeerResult& r = res.peers[i];
    if (!peers[i]) continue;
    try {
      r.max_err = peers[i]->check(*wl);
      r.ok = r.max_err <= opt.rtol;
      if (!r.ok) {
        std::ostringstream os;
        os << "wrong result: max rel error " << r.max_err << " > --rtol " << opt.rtol;
        r.failure = os.str();
      }
    } catch (const std::exception& e) {
      r.failure = std::string("check: ") + e.what();
    }
    if (!r.ok) peers[i].reset();
  }
  const auto timing_start = Clock::now();
  res.setup_s = std::chrono::duration<double>(timing_start - setup_start).count();

  const bool multi = opt.threads > 1;
  int cursor = 0;
  auto timed_calls = [&](Peer& p, int64_t calls) {
    const auto t0 = Clock::now();
    for (int64_t c = 0; c < calls; ++c) {
      p.run(cursor);
      if (++cursor == wl->copies) cursor = 0;
    }
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  auto prepare = [&](Peer& p) {
    if (!multi) return;
    settle();
    timed_calls(p, 1);
  };

  // Warm-up and per-call estimates (median of the second half of the warm-up calls).
  std::vector<size_t> live;
  std::vector<double> est(peers.size(), 0.0);
  for (size_t i = 0; i < peers.size(); ++i) {
    if (!peers[i]) continue;
    live.push_back(i);
    prepare(*peers[i]);
    std::vector<double> t;
    double total = 0.0;
    while (total < opt.warmup_time || static_cast<int>(t.size()) < std::max(opt.warmup_calls, 1)) {
      t.push_back(timed_calls(*peers[i], 1));
      total += t.back();
    }
    est[i] = quantile(std::vector<double>(t.begin() + static_cast<long>(t.size() / 2), t.end()), 0.5);
  }
  if (live.empty()) return res;

  double slowest = 0.0;
  for (size_t i : live) slowest = std::max(slowest, est[i]);
  const double sample_s = std::max(opt.sample_us * 1e-6, slowest);
  for (size_t i : live)
    res.peers[i].inner = static_cast<int>(std::max<long long>(1, std::llround(sample_s / std::max(est[i], 1e-9))));
  const double per_peer_s = opt.budget / static_cast<double>(live.size());
  res.rounds = std::max(opt.min_rounds, static_cast<int>(std::ceil(per_peer_s / sample_s)));
  const int planned = res.rounds;
  for (int round = 0; round < planned; ++round) {
    for (size_t j = 0; j < live.size(); ++j) {
      const size_t i = live[(j + round) % live.size()];
      PeerResult& r = res.peers[i];
      prepare(*peers[i]);
      r.samples_us.push_back(timed_calls(*peers[i], r.inner) * 1e6 / r.inner);
    }
    if (opt.max_point_s > 0 && round + 1 >= opt.min_rounds && round + 1 < planned &&
        std::chrono::duration<double>(Clock::now() - timing_start).count() > opt.max_point_s) {
      res.rounds = round + 1;
      res.truncated = true;
      break;
    }
  }
  for (size_t i : live) {
    PeerResult& r = res.peers[i];
    r.median_us = quantile(r.samples_us, 0.5);
    r.p10_us = quantile(r.samples_us, 0.1);
    r.p90_us = quantile(r.samples_us, 0.9);
  }
  res.timing_s = std::chrono::duration<double>(Clock::now() - timing_start).count();
  return res;
}

// ---------------------------------------------------------------------------------------------
// Reporting.

std::string fmt(double v, int precision) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", precision, v);
  return buf;
}

std::string csv_num(double v, int precision) { return std::isnan(v) ? std::string() : fmt(v, precision); }

std::string sci(double v) {
  if (std::isnan(v)) return {};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

void print_point(const PointResult& res, size_t index, size_t count, double elapsed_s) {
  const Geometry& g = res.g;
  std::printf("\n== [%zu/%zu] %s nnz=%lld (actual sparsity %.4f)\n", index + 1, count, res.pt.str().c_str(),
              (long long)res.nnz, 1.0 - static_cast<double>(res.nnz) / static_cast<double>(g.oc * g.k()));
  std::printf("   planes %lld x [%lld x %lld], grid %lld columns (Ho*Wq = %lld), y %lld columns; %d copies; %d rounds%s; "
              "set-up %.2f s, timing %.2f s, run so far %.1f s\n",
              (long long)g.ic, (long long)g.rows, (long long)g.wq, (long long)g.grid_cols, (long long)(g.ho * g.wq),
              (long long)g.out_cols, res.copies, res.rounds, res.truncated ? " (cut short by --max-point-s)" : "",
              res.setup_s, res.timing_s, elapsed_s);
  for (const auto& r : res.peers)
    if (!r.details.empty()) std::printf("   %-18s %s\n", r.name.c_str(), r.details.c_str());
  std::printf("   %-18s %10s %10s %10s %8s %9s %9s %9s  %s\n", "peer", "median_us", "p10_us", "p90_us", "GF/s",
              "GF/s_eff", "x_onednn", "inner", "check");
  for (const auto& r : res.peers) {
    char check[160];
    if (r.ok) std::snprintf(check, sizeof check, "ok (max rel err %.1e)", r.max_err);
    else std::snprintf(check, sizeof check, "FAILED: %s", r.failure.c_str());
    std::printf("   %-18s %10s %10s %10s %8s %9s %9s %9s  %s\n", r.name.c_str(), fmt(r.median_us, 2).c_str(),
                fmt(r.p10_us, 2).c_str(), fmt(r.p90_us, 2).c_str(), fmt(res.gflops(r), 1).c_str(),
                fmt(res.gflops_eff(r), 1).c_str(), fmt(res.speedup(r), 2).c_str(),
                r.ok ? std::to_string(r.inner).c_str() : "-", check);
  }
  std::fflush(stdout);
}

constexpr const char* kCsvHeader =
    "ic,oc,image,sparsity,nnz,isa,threads,input,peer,status,median_us,p10_us,p90_us,gflops,gflops_eff,"
    "speedup_vs_onednn,max_rel_err,samples,inner,code_bytes,details\n";

void write_csv(std::ofstream& out, const PointResult& res, const Options& opt) {
  for (const auto& r : res.peers) {
    std::string details = r.ok ? r.details : r.failure + (r.details.empty() ? "" : "; " + r.details);
    std::replace(details.begin(), details.end(), ',', ';');
    std::replace(details.begin(), details.end(), '\n', ' ');
    out << res.pt.ic << ',' << res.pt.oc << ',' << res.pt.image << ',' << res.pt.sparsity << ',' << res.nnz << ','
        << opt.isa << ',' << opt.threads << ',' << opt.input << ',' << r.name << ',' << (r.ok ? "ok" : "FAILED") << ','
        << csv_num(r.median_us, 3) << ',' << csv_num(r.p10_us, 3) << ',' << csv_num(r.p90_us, 3) << ','
        << csv_num(res.gflops(r), 2) << ',' << csv_num(res.gflops_eff(r), 2) << ',' << csv_num(res.speedup(r), 4)
        << ',' << sci(r.max_err) << ',' << r.samples_us.size() << ',' << r.inner << ','
        << (r.code_bytes >= 0 ? std::to_string(r.code_bytes) : std::string()) << ',' << details << '\n';
  }
  out.flush();
}

double geomean(const std::vector<double>& v) {
  if (v.empty()) return NAN;
  double s = 0.0;
  for (double x : v) s += std::log(x);
  return std::exp(s / static_cast<double>(v.size()));
}

// The summary: per sdnn peer with a kernel and per sparsity, the geometric mean, min and max of
// its speedup over oneDNN; the targets of issue 4 (reported, not asserted); and how much of the
// sdnn pipeline's time pad_planes + crop (pad_planes alone with --input grid) take.
void print_summary(const std::vector<PointResult>& results, const Options& opt) {
  std::printf("\n== summary: speedup over oneDNN's dense convolution (t_onednn / t_peer), %d thread(s), isa %s, "
              "input %s\n",
              opt.threads, opt.isa.c_str(), opt.input.c_str());
  std::printf("   %-18s %8s %6s %9s %9s %-40s %9s %-40s  %s\n", "peer", "sparsity", "points", "geomean", "min", "(at)",
              "max", "(at)", "issue-4 target");
  for (const std::string& peer : opt.peers) {
    if (peer == "onednn" || peer == "sdnn-pad" || peer == "sdnn-crop") continue;
    for (double sp : opt.sparsity) {
      std::vector<double> s;
      double lo = INFINITY, hi = -INFINITY;
      std::string lo_at, hi_at;
      for (const auto& res : results) {
        if (res.pt.sparsity != sp) continue;
        for (const auto& r : res.peers) {
          const double x = r.name == peer ? res.speedup(r) : NAN;
          if (std::isnan(x)) continue;
          s.push_back(x);
          if (x < lo) lo = x, lo_at = res.pt.str();
          if (x > hi) hi = x, hi_at = res.pt.str();
        }
      }
      if (s.empty()) continue;
      const double gm = geomean(s);
      const double target = std::fabs(sp - 0.9) < 1e-9 ? 3.5 : std::fabs(sp - 0.95) < 1e-9 ? 5.0 : NAN;
      const std::string t =
          std::isnan(target) ? "-" : ">= " + fmt(target, 1) + "x geomean: " + (gm >= target ? "met" : "NOT met");
      std::printf("   %-18s %8.2f %6zu %8.2fx %8.2fx %-40s %8.2fx %-40s  %s\n", peer.c_str(), sp, s.size(), gm, lo,
                  ("(" + lo_at + ")").c_str(), hi, ("(" + hi_at + ")").c_str(), t.c_str());
    }
  }
  // pad_planes + crop as a share of the sdnn pipeline: 1 - t_kernel / t_sdnn.
  for (double sp : opt.sparsity) {
    std::vector<double> share;
    double worst = -1;
    std::string at;
    for (const auto& res : results) {
      const PeerResult *full = res.find("sdnn-planes"), *kern = res.find("sdnn-kernel");
      if (res.pt.sparsity != sp || !full || !kern) continue;
      const double f = 1.0 - kern->median_us / full->median_us;
      share.push_back(f);
      if (f > worst) worst = f, at = res.pt.str();
    }
    if (share.empty()) continue;
    const double mean = std::accumulate(share.begin(), share.end(), 0.0) / static_cast<double>(share.size());
    std::printf("   %s at sparsity %.2f: mean %.1f %% of sdnn-planes' time (1 - t_sdnn-kernel / t_sdnn-planes), max %.1f %% (%s)\n",
                opt.input == "grid" ? "pad_planes" : "pad_planes + crop", sp, 100.0 * mean, 100.0 * worst, at.c_str());
  }
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

// omp_get_max_threads() of the libgomp oneDNN loaded, looked up at run time; -1 when not found.
int openmp_max_threads() {
  using Fn = int (*)();
  auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "omp_get_max_threads"));
  return fn ? fn() : -1;
}

int run(int argc, char** argv) {
  Options opt;
  CLI::App app{"sdnn_bench_conv: sparse 3x3 convolution (stride 1, pad 1, batch 1), sdnnc's direct sparse\n"
               "convolution (pad_planes + generated kernel + crop) vs oneDNN's dense convolution primitive,\n"
               "alternating in one process. Defaults: the issue-4 grid (128 points)."};
  app.add_option("--ic", opt.ic, "input channels (list)")->delimiter(',');
  app.add_option("--oc", opt.oc, "output channels (list)")->delimiter(',');
  app.add_option("--image", opt.image, "image height = width (list)")->delimiter(',');
  app.add_option("--sparsity", opt.sparsity, "fraction of zero weights, by magnitude (list)")->delimiter(',');
  app.add_option("--peers", opt.peers,
                 "peers: sdnn, sdnn-kernel, sdnn-pad, sdnn-crop, sdnn-noperm[-kernel], sdnn-tuned[-kernel], onednn")
      ->delimiter(',')
      ->check(CLI::IsMember(kPeerNames))
      ->capture_default_str();
  app.add_option("--isa", opt.isa, "ISA of the generated kernels")
      ->check(CLI::IsMember({"native", "avx512", "avx2"}))
      ->capture_default_str();
  app.add_option("--input", opt.input,
                 "the sdnn peers' input x: nchw, blocked (ChannelBlocked), or grid (a previous direct conv's\n"
                 "output grid; then no crop either: a layer inside a chain of direct convs)")
      ->check(CLI::IsMember({"nchw", "blocked", "grid"}))
      ->capture_default_str();
  app.add_option("--onednn-alg", opt.onednn_alg, "oneDNN algorithm: auto (convolution_auto) or direct")
      ->check(CLI::IsMember({"auto", "direct"}))
      ->capture_default_str();
  app.add_option("--onednn-isa", opt.onednn_isa,
                 "cap oneDNN's ISA: match (avx2 with --isa avx2, else uncapped), native (uncapped), avx2, "
                 "avx512_core")
      ->check(CLI::IsMember({"match", "native", "avx2", "avx512_core"}))
      ->capture_default_str();
  app.add_option("--threads", opt.threads,
                 "threads: sdnn steps split as runtime_min does on its pool; OMP_NUM_THREADS for oneDNN "
                 "(set before it loads)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--budget", opt.budget, "seconds of samples per grid point, over all peers")->capture_default_str();
  app.add_option("--min-rounds", opt.min_rounds, "at least this many alternating rounds per point")
      ->capture_default_str();
  app.add_option("--sample-us", opt.sample_us, "target duration of one sample (calls batched up to it)")
      ->capture_default_str();
  app.add_option("--warmup-time", opt.warmup_time, "warm-up seconds per peer and point")->capture_default_str();
  app.add_option("--warmup-calls", opt.warmup_calls, "at least this many warm-up calls per peer and point")
      ->capture_default_str();
  app.add_option("--rotate-mib", opt.rotate_mib, "activation rotation at least this many MiB (L2 is 1 MiB)")
      ->capture_default_str();
  app.add_option("--rtol", opt.rtol, "bound on max |y - ref| / sum |w x|")->capture_default_str();
  app.add_option("--max-point-s", opt.max_point_s,
                 "stop a point's rounds after this many seconds once --min-rounds are done (0: never)")
      ->capture_default_str();
  app.add_option("--seed", opt.seed, "random seed")->capture_default_str();
  app.add_option("--csv", opt.csv, "write one CSV row per (point, peer) to FILE");
  app.add_flag("--list-points", opt.list_points, "print the grid points and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (opt.threads != requested_threads(argc, argv))
    throw std::runtime_error("--threads: the value read before the re-exec differs (give it once, as an integer)");
  for (int64_t v : opt.ic)
    if (v <= 0) throw std::runtime_error("--ic must be positive");
  for (int64_t v : opt.oc)
    if (v <= 0) throw std::runtime_error("--oc must be positive");
  for (int64_t v : opt.image)
    if (v <= 0) throw std::runtime_error("--image must be positive");
  for (double s : opt.sparsity)
    if (!(s >= 0.0 && s < 1.0)) throw std::runtime_error("--sparsity must be in [0, 1)");

  __builtin_cpu_init();
  const bool has512 = __builtin_cpu_supports("avx512f");
  const bool has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (opt.isa == "native") opt.isa = has512 ? "avx512" : "avx2";
  const be::Isa isa = opt.isa == "avx512" ? be::Isa::Avx512 : be::Isa::Avx2;
  if ((isa == be::Isa::Avx512 && !has512) || (isa == be::Isa::Avx2 && !has2))
    throw std::runtime_error("this CPU cannot run " + opt.isa + " code");

  std::vector<Point> points;
  for (int64_t ic : opt.ic)
    for (int64_t oc : opt.oc)
      for (int64_t image : opt.image)
        for (double sp : opt.sparsity) points.push_back({ic, oc, image, sp});
  if (opt.list_points) {
    for (const Point& p : points) std::printf("%s\n", p.str().c_str());
    std::printf("%zu points\n", points.size());
    return 0;
  }

  // oneDNN's ISA cap must be set before its first primitive.
  std::string onednn_isa = opt.onednn_isa == "match" ? (isa == be::Isa::Avx2 ? "avx2" : "native") : opt.onednn_isa;
  if (onednn_isa != "native")
    dnnl::set_max_cpu_isa(onednn_isa == "avx2" ? dnnl::cpu_isa::avx2 : dnnl::cpu_isa::avx512_core);
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const dnnl_version_t* dv = dnnl_version();

  sdnn_pool* pool = nullptr;
  if (opt.threads > 1 && !(pool = sdnn_pool_create(opt.threads)))
    throw std::runtime_error("cannot create runtime_min's thread pool");
  const Context ctx{opt, isa, pool, eng, strm,
                    opt.onednn_alg == "direct" ? dnnl::algorithm::convolution_direct : dnnl::algorithm::convolution_auto};

  const char* changed = std::getenv(kReexecMarker);
  std::printf("sdnn_bench_conv: %d thread(s); generated kernels for %s; sdnn input %s; %zu points; peers", opt.threads,
              opt.isa.c_str(), opt.input.c_str(), points.size());
  for (const auto& p : opt.peers) std::printf(" %s", p.c_str());
  std::printf("\ncpu: %s; loadavg at start: %s\n", cpu_model().c_str(), loadavg().c_str());
  std::printf("env: OMP_NUM_THREADS=%s%s%s\n", std::getenv("OMP_NUM_THREADS"),
              changed ? " (re-executed with it; it was: " : "", changed ? (std::string(changed) + ")").c_str() : "");
  std::printf("onednn: %d.%d.%d (%s), OpenMP max threads %d, ISA cap %s, algorithm %s\n", dv->major, dv->minor,
              dv->patch, dv->hash, openmp_max_threads(), onednn_isa.c_str(), opt.onednn_alg.c_str());
  std::printf("protocol: rotation >= %.1f MiB, warm-up %.3f s (>= %d calls), samples ~%.0f us, budget %.2f s per "
              "point, >= %d rounds, rtol %.1e, seed %llu\n",
              opt.rotate_mib, opt.warmup_time, opt.warmup_calls, opt.sample_us, opt.budget, opt.min_rounds, opt.rtol,
              (unsigned long long)opt.seed);
  std::fflush(stdout);

  std::ofstream csv;
  if (!opt.csv.empty()) {
    csv.open(opt.csv);
    if (!csv) throw std::runtime_error("cannot write " + opt.csv);
    csv << kCsvHeader;
  }
  std::vector<PointResult> results;
  std::vector<std::string> failures;
  const auto start = Clock::now();
  for (size_t i = 0; i < points.size(); ++i) {
    results.push_back(measure(points[i], ctx));
    print_point(results.back(), i, points.size(), std::chrono::duration<double>(Clock::now() - start).count());
    if (csv.is_open()) write_csv(csv, results.back(), opt);
    for (const auto& r : results.back().peers)
      if (!r.ok) {
        failures.push_back(points[i].str() + " " + r.name + ": " + r.failure);
        std::fprintf(stderr, "sdnn_bench_conv: FAILED %s\n", failures.back().c_str());
      }
  }
  print_summary(results, opt);
  std::printf("\nloadavg at end: %s; total wall time %.1f s\n", loadavg().c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
  sdnn_pool_destroy(pool);
  if (!failures.empty()) {
    std::fprintf(stderr, "sdnn_bench_conv: %zu peer result(s) FAILED:\n", failures.size());
    for (const auto& f : failures) std::fprintf(stderr, "  %s\n", f.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_benchmark_env(argc, argv);
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sdnn_bench_conv: error: %s\n", e.what());
    return 2;
  }
}
