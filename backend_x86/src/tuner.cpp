// tuner.cpp — candidate plans, cost model, timing and the on-disk cache (see tuner.h).
#include "sdnn/backend/tuner.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>

#include "sdnn/backend/aot_writer.h"
#include "sdnn/backend/jit.h"
#include "sdnn/backend/kernel_emitter.h"
#include "sdnn/ir/error.h"

namespace sdnn::backend {
namespace {

constexpr int kTunerVersion = 17;  // bump when candidates or timing change meaning (16: AVX2 candidates in AVX-512 models; 17: prefetch choices in full tuning)

// Sum over tiles of the distinct columns a tile uses: the B loads per column chunk.
int64_t b_loads(const SparseMatrix& a, int mb, const std::vector<int64_t>& order) {
  std::vector<int64_t> stamp(a.k, -1);
  int64_t total = 0;
  for (int64_t i = 0; i < a.m; ++i) {
    const int64_t row = order.empty() ? i : order[i];
    const int64_t tile = i / mb;
    for (int64_t p = a.row_ptr[row]; p < a.row_ptr[row + 1]; ++p)
      if (stamp[a.col[p]] != tile) {
        stamp[a.col[p]] = tile;
        ++total;
      }
  }
  return total;
}

// Estimated loads per column chunk of VL columns (the kernels are load-bound), VL the layout's:
// a ymm kernel on an AVX-512 layout runs two vectors' worth of them per chunk.
double cost(const KernelPlan& p, const SparseMatrix& a) {
  const double nnz = static_cast<double>(a.nnz());
  const double bcasts = p.embedded_broadcast || p.nb == 1 ? nnz * p.nb : nnz;
  const double loads = (bcasts + static_cast<double>(b_loads(a, p.mb, p.row_order)) * p.nb) / p.nb;
  const double split = static_cast<double>(p.num_k_blocks() - 1) * static_cast<double>(p.m) * 2.0;
  return (loads + split) * static_cast<double>(p.layout_floats() / vector_floats(p.isa));
}

// Whether ymm kernels are candidates for `base`: an AVX-512 plan (AVX2 code runs wherever it
// does) on blocked B and C (not a direct convolution, whose windows are laid out per vector).
bool avx2_candidates(const KernelPlan& base) {
  return base.isa == Isa::Avx512 && base.family == Family::Spmm && !base.direct() && base.c_plane == 0;
}

bool same_plan(const KernelPlan& x, const KernelPlan& y) {
  return x.isa == y.isa && x.layout_vl == y.layout_vl && x.mb == y.mb && x.nb == y.nb &&
         x.num_k_blocks() == y.num_k_blocks() &&
         (x.num_k_blocks() == 1 || x.k_block == y.k_block) && x.n_group == y.n_group &&
         x.embedded_broadcast == y.embedded_broadcast && x.prefetch == y.prefetch && x.row_order == y.row_order;
}

bool fits_registers(const KernelPlan& p) {
  const bool evex = p.isa == Isa::Avx512;
  const int reserved = p.nb + (evex && (p.nb == 1 || p.embedded_broadcast) ? 0 : 1);  // one set of B registers
  return p.mb * p.nb + reserved <= vector_registers(p.isa);
}

std::vector<KernelPlan> candidates(const KernelPlan& base, TuneLevel level) {
  const bool full = level == TuneLevel::Full, evex = base.isa == Isa::Avx512;
  // 31 x 1 (AVX-512): one set of B registers, every other register an accumulator.
  std::vector<int> mbs = evex ? (full ? std::vector<int>{8, 12, 16, 20, 24, 28, 30, 31} : std::vector<int>{16, 24, 28, 31})
                              : (full ? std::vector<int>{4, 6, 8, 10, 12, 13, 14} : std::vector<int>{8, 12, 14});
  std::vector<int64_t> kbs = {base.k_block, base.k};
  if (full)
    for (int64_t kb : {128, 256, 512})
      if (kb < base.k) kbs.push_back(kb);
  std::vector<std::vector<int64_t>> orders = {base.row_order};
  if (!base.row_order.empty()) orders.push_back({});
  // Column grouping: the default's (group_columns), and in full mode the others.
  std::vector<int> ngs = {base.n_group};
  if (full)
    for (int ng : {1, 2, 4})
      if (ng != base.n_group) ngs.push_back(ng);
  // The ISA within the target: ymm tiles of two vectors (one 16-float layout block) beside the
  // zmm ones; full tuning also tries 4 x 2 and 2 x 4.
  struct Shape {
    Isa isa;
    int mb, nb;
  };
  std::vector<Shape> shapes;
  for (int mb : mbs)
    for (int nb : full && evex ? std::vector<int>{1, 2} : std::vector<int>{1}) shapes.push_back({base.isa, mb, nb});
  if (avx2_candidates(base)) {
    shapes.push_back({Isa::Avx2, 6, 2});
    if (full) {
      shapes.push_back({Isa::Avx2, 4, 2});
      shapes.push_back({Isa::Avx2, 2, 4});
    }
  }
  std::vector<KernelPlan> out;
  for (const Shape& shape : shapes)
    for (int64_t kb : kbs)
      for (int ng : ngs)
        for (const auto& order : orders) {
          KernelPlan p = base;
          p.isa = shape.isa;
          p.layout_vl = shape.isa != base.isa ? vector_floats(base.isa) : 0;
          p.mb = static_cast<int>(std::min<int64_t>(shape.mb, base.m));
          p.nb = shape.nb;
          p.embedded_broadcast = shape.isa == Isa::Avx512 && shape.nb > 1;
          p.k_block = kb;
          p.n_group = ng;
          p.row_order = order;
          if (!fits_registers(p)) continue;
          if (std::none_of(out.begin(), out.end(), [&](const KernelPlan& q) { return same_plan(q, p); }))
            out.push_back(std::move(p));
        }
  return out;
}

// One candidate ready to run: its code and values, and a call over all columns (every k block).
class Candidate {
 public:
  Candidate(const KernelPlan& p, const SparseMatrix& a) : plan_(p), bin_(emit_kernel(p, a, "tune")), jit_(bin_.code) {}
  void call(const float* b, float* c, const float* bias, const float* residual) const {
    const int64_t tiles = plan_.num_tiles();
    for (int64_t kb = 0; kb < plan_.num_k_blocks(); ++kb) {
      sdnn_kernel_args args{b, c, bin_.values.data() + bin_.block_offsets[kb * tiles], bias, plan_.n, kb * tiles,
                            (kb + 1) * tiles, residual, 0};
      jit_.fn()(&args);
    }
  }
  const KernelPlan& plan() const { return plan_; }

 private:
  KernelPlan plan_;
  KernelBinary bin_;
  JitKernel jit_;
};

// Median microseconds per call of each candidate, measured as a model runs them: B and C rotate
// through copies larger than the 1 MiB L2 (the weights stay one copy), and the candidates
// alternate call by call so drift in the machine's speed hits them all alike.
std::vector<double> time_candidates(const std::vector<std::unique_ptr<Candidate>>& cands, const KernelPlan& p,
                                    double budget_s) {
  const size_t b_size = static_cast<size_t>(p.b_extent(p.n));
  const size_t c_size = static_cast<size_t>(p.c_plane > 0 ? p.m * p.c_plane + p.n : p.m * p.n);
  const size_t copies = std::max<size_t>(2, (4u << 20) / std::max<size_t>(1, (b_size + c_size) * 4) + 1);
  std::vector<float> b(b_size * copies), c(c_size * copies), bias(p.m, 0.5f);
  std::vector<float> res(p.residual ? c_size * copies : 0, 0.25f);  // a residual in C's layout
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  for (float& x : b) x = normal(rng);
  for (const auto& cand : cands) cand->call(b.data(), c.data(), bias.data(), p.residual ? res.data() : nullptr);  // warm-up
  std::vector<std::vector<double>> times(cands.size());
  size_t copy = 0;
  const auto start = std::chrono::steady_clock::now();
  for (size_t round = 0; round < 2000; ++round) {
    for (size_t i = 0; i < cands.size(); ++i, copy = (copy + 1) % copies) {
      const auto t0 = std::chrono::steady_clock::now();
      cands[i]->call(b.data() + copy * b_size, c.data() + copy * c_size, bias.data(),
                     p.residual ? res.data() + copy * c_size : nullptr);
      times[i].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    if (round >= 9 && std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > budget_s) break;
  }
  std::vector<double> medians;
  for (auto& t : times) {
    std::nth_element(t.begin(), t.begin() + static_cast<long>(t.size() / 2), t.end());
    medians.push_back(t[t.size() / 2]);
  }
  return medians;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 1);
  return "unknown";
}

// FNV-1a over everything the timing depends on.
struct Hash {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* c = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ c[i]) * 1099511628211ull;
  }
  template <typename T>
  void pod(const T& v) { bytes(&v, sizeof v); }
  template <typename T>
  void vec(const std::vector<T>& v) { pod(v.size()); bytes(v.data(), v.size() * sizeof(T)); }
};

std::string cache_key(const KernelPlan& base, const SparseMatrix& a, TuneLevel level) {
  Hash h;
  h.pod(kTunerVersion);
  h.pod(static_cast<int>(level));
  h.pod(static_cast<int>(base.isa));
  const std::string cpu = cpu_model();
  h.bytes(cpu.data(), cpu.size());
  for (int64_t v : {base.m, base.k, base.n, base.k_block}) h.pod(v);
  h.pod(base.n_group);  // the planner's column groups and prefetch, which fast tuning keeps
  h.pod(base.prefetch);
  h.pod(base.bias);
  h.pod(static_cast<int>(base.act));
  h.vec(a.row_ptr);
  h.vec(a.col);
  h.vec(base.row_order);
  h.vec(base.b_offsets);
  h.pod(base.c_plane);
  h.pod(base.mask_h);
  h.pod(base.mask_w);
  h.pod(base.c_cols);
  h.pod(base.residual);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h.h));
  return buf;
}

void make_dirs(const std::string& dir) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = dir.find('/', pos + 1);
    mkdir(dir.substr(0, pos).c_str(), 0755);
  }
}

// Cache line: "mb nb k_block n_group embedded prefetch permuted isa us" (isa: avx512 or avx2).
bool read_cache(const std::string& path, const KernelPlan& base, KernelPlan& out, double& us) {
  std::ifstream f(path);
  int mb, nb, ng, emb, pf, perm;
  int64_t kb;
  std::string isa;
  if (!(f >> mb >> nb >> kb >> ng >> emb >> pf >> perm >> isa >> us)) return false;
  out = base;
  if (isa == to_string(Isa::Avx2) && avx2_candidates(base)) {
    out.isa = Isa::Avx2;
    out.layout_vl = vector_floats(base.isa);
  } else if (isa != to_string(base.isa)) {
    return false;
  }
  out.mb = mb;
  out.nb = nb;
  out.k_block = kb;
  out.n_group = ng;
  out.embedded_broadcast = emb != 0;
  out.prefetch = pf;
  if (!perm) out.row_order.clear();
  return mb > 0 && mb <= base.m && nb > 0 && kb >= 1 && ng >= 1 && (emb == 0 || emb == 1) && pf >= 0 && pf <= 7 &&
         (perm == 0 || perm == 1) && fits_registers(out) &&
         (out.layout_vl == 0 || nb % (out.layout_vl / vector_floats(out.isa)) == 0);  // else a corrupt file: a miss
}

void write_cache(const std::string& dir, const std::string& path, const KernelPlan& p, double us) {
  make_dirs(dir);
  const std::string tmp = path + ".tmp." + std::to_string(getpid()) + "." + std::to_string(gettid());
  const TempPath guard(tmp);  // gone if the compile is interrupted meanwhile
  {
    std::ofstream f(tmp);
    f << p.mb << ' ' << p.nb << ' ' << p.k_block << ' ' << p.n_group << ' ' << p.embedded_broadcast << ' '
      << p.prefetch << ' ' << !p.row_order.empty() << ' ' << to_string(p.isa) << ' ' << us << '\n';
    if (!f) {
      std::remove(tmp.c_str());
      return;  // an unwritable cache only costs time
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

}  // namespace

TuneLevel parse_tune_level(const std::string& s) {
  if (s == "none") return TuneLevel::None;
  if (s == "fast") return TuneLevel::Fast;
  if (s == "full") return TuneLevel::Full;
  fail("unknown --tune '", s, "' (expected none, fast or full)");
}

const char* to_string(TuneLevel l) { return l == TuneLevel::None ? "none" : l == TuneLevel::Fast ? "fast" : "full"; }

std::string default_tune_cache_dir() {
  if (const char* d = std::getenv("SDNN_TUNE_CACHE"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/sdnnc/tune";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/sdnnc/tune";
  return "";
}

KernelPlan tune_plan(const KernelPlan& base, const SparseMatrix& a, const TuneOptions& opts, TuneRecord* record) {
  TuneRecord rec;
  if (opts.level == TuneLevel::None || base.family != Family::Spmm) {
    if (record) *record = rec;
    return base;
  }
  const std::string path = opts.cache_dir.empty() ? "" : opts.cache_dir + "/" + cache_key(base, a, opts.level);
  KernelPlan best = base;
  if (!path.empty() && read_cache(path, base, best, rec.us)) {
    rec.from_cache = true;
    if (record) *record = rec;
    return best;
  }
  std::vector<KernelPlan> cands = candidates(base, opts.level);
  std::stable_sort(cands.begin(), cands.end(),
                   [&](const KernelPlan& x, const KernelPlan& y) { return cost(x, a) < cost(y, a); });
  const size_t keep = opts.level == TuneLevel::Full ? 8 : 3;
  // The ISA is searched whatever the cost model says (it cannot rank ymm against zmm kernels on
  // an unknown core): the best-ranked plan of each ISA runs.
  std::vector<KernelPlan> other_isa;
  for (const KernelPlan& p : cands)
    if (p.isa != base.isa) {
      other_isa.push_back(p);
      break;
    }
  if (cands.size() > keep) cands.resize(keep);
  for (KernelPlan& p : other_isa)
    if (std::none_of(cands.begin(), cands.end(), [&](const KernelPlan& q) { return same_plan(p, q); }))
      cands.push_back(std::move(p));
  if (std::none_of(cands.begin(), cands.end(), [&](const KernelPlan& p) { return same_plan(p, base); }))
    cands.push_back(base);
  // The cost model ranks a permuted order first whenever it saves B loads, but the kernel pays
  // for scattering a permuted tile's rows of C (bench/RESULTS.md "Row permutation"): a permuted
  // default always runs against the same plan in model order.
  if (!base.row_order.empty()) {
    KernelPlan model_order = base;
    model_order.row_order.clear();
    if (std::none_of(cands.begin(), cands.end(), [&](const KernelPlan& p) { return same_plan(p, model_order); }))
      cands.push_back(std::move(model_order));
  }
  // The cost model does not see column grouping: a grouped default of a big pattern also runs
  // with the other group sizes of 4 to 32 chunks, which win depending on how the code and values
  // sit in L2 (probes at N = 2048, 70-80 %: 8 or 32 chunks 0.90-1.08x the default's 4 or 16,
  // depending on the shape). A small grouped default (2 or 4 chunks, K blocks of at most 256)
  // runs against one chunk per block with the ungrouped default's K blocks.
  if (base.n_group > 1) {
    std::vector<KernelPlan> others;
    if (big_pattern(base, static_cast<int64_t>(a.val.size()))) {
      for (int ng : {4, 8, 16, 32}) {
        others.push_back(base);
        others.back().n_group = ng;
      }
    } else {
      others.push_back(base);
      others.back().n_group = 1;
      others.back().k_block =
          default_plan(base.family, base.isa, base.m, base.k, base.n, base.bias, base.act).k_block;
    }
    for (KernelPlan& other : others)
      if (other.n >= int64_t{other.n_group} * other.tile_cols() &&
          std::none_of(cands.begin(), cands.end(), [&](const KernelPlan& p) { return same_plan(p, other); }))
        cands.push_back(std::move(other));
  }
  // Nor does it see prefetch: full tuning runs the default's tile with each other choice (plain
  // SpMM: none, B, B + code, B + C + code; direct convolutions: with and without code prefetch).
  if (opts.level == TuneLevel::Full) {
    const std::vector<int> choices =
        base.direct() ? std::vector<int>{0, kPrefetchCode}
                      : std::vector<int>{0, kPrefetchB, kPrefetchB | kPrefetchCode, kPrefetchB | kPrefetchC | kPrefetchCode};
    for (int pf : choices) {
      KernelPlan other = base;
      other.prefetch = pf;
      if (std::none_of(cands.begin(), cands.end(), [&](const KernelPlan& p) { return same_plan(p, other); }))
        cands.push_back(std::move(other));
    }
  }
  // The default plan stays unless a candidate beats it clearly: timings move by a few percent
  // from run to run, and a plan switch on noise would make compiles irreproducible for nothing.
  const double budget = opts.level == TuneLevel::Full ? 0.3 : 0.1, margin = 0.97;
  std::vector<std::unique_ptr<Candidate>> built;
  // A candidate the emitter rejects (e.g. a wider group whose next-group prefetch leaves the
  // displacement range on a huge layer) is dropped; the default must build.
  for (const KernelPlan& p : cands) {
    try {
      built.push_back(std::make_unique<Candidate>(p, a));
    } catch (const Error&) {
      if (same_plan(p, base)) throw;
    }
  }
  const std::vector<double> us = time_candidates(built, base, budget);
  rec.candidates = static_cast<int>(built.size());
  size_t base_index = 0;
  for (size_t i = 0; i < built.size(); ++i)
    if (same_plan(built[i]->plan(), base)) base_index = i;
  size_t pick = base_index;
  for (size_t i = 0; i < built.size(); ++i)
    if (us[i] < us[pick] && us[i] < margin * us[base_index]) pick = i;
  best = built[pick]->plan();
  const double best_us = us[pick];
  rec.us = best_us;
  if (!path.empty()) write_cache(opts.cache_dir, path, best, best_us);
  if (record) *record = rec;
  return best;
}

}  // namespace sdnn::backend
