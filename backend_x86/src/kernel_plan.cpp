// kernel_plan.cpp — plan defaults (tile shape, K blocking) and the CSR weight container.
#include "sdnn/backend/kernel_plan.h"

#include <algorithm>
#include <numeric>

#include "sdnn/ir/error.h"

namespace sdnn::backend {

const char* to_string(Isa isa) { return isa == Isa::Avx512 ? "avx512" : "avx2"; }
const char* to_string(Family f) { return f == Family::Spmm ? "spmm" : "dense"; }
const char* to_string(Activation a) {
  switch (a) {
    case Activation::None: return "none";
    case Activation::Relu: return "relu";
    case Activation::Relu6: return "relu6";
  }
  return "?";
}
int vector_floats(Isa isa) { return isa == Isa::Avx512 ? 16 : 8; }
int vector_registers(Isa isa) { return isa == Isa::Avx512 ? 32 : 16; }

std::string KernelPlan::str() const {
  std::string s = str_cat(to_string(family), " ", to_string(isa), " ", mb, "x", nb);
  if (num_k_blocks() > 1) s += str_cat(" kb=", k_block);
  if (n_group > 1) s += str_cat(" ng=", n_group);
  if (prefetch && family == Family::Spmm && !direct())
    s += str_cat(" pf=", (prefetch & kPrefetchB) ? "b" : "", (prefetch & kPrefetchC) ? "c" : "",
                 (prefetch & kPrefetchCode) ? "i" : "");
  else if ((prefetch & kPrefetchCode) && family == Family::Spmm)
    s += " pf=i";
  if (!row_order.empty()) s += " permuted";
  if (direct()) s += masked() ? str_cat(" direct masked ", mask_h, "x", mask_w) : std::string(" direct");
  if (c_plane > 0) s += " planes-out";
  std::string epi;
  if (bias) epi = "bias";
  if (residual) epi += (epi.empty() ? "" : "+") + std::string("residual");
  if (act != Activation::None) epi += (epi.empty() ? "" : "+") + std::string(to_string(act));
  if (!epi.empty()) s += " " + epi;
  return s;
}

int64_t KernelPlan::b_extent(int64_t cols) const {
  if (!direct()) return k * cols;
  if (masked()) return k / 9 * mask_h * mask_w;  // lanes outside the image are never read
  return *std::max_element(b_offsets.begin(), b_offsets.end()) + cols;
}

SparseMatrix SparseMatrix::from_dense(const float* w, int64_t m, int64_t k) {
  SparseMatrix s;
  s.m = m;
  s.k = k;
  s.row_ptr.reserve(m + 1);
  s.row_ptr.push_back(0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < k; ++c) {
      float v = w[r * k + c];
      if (v != 0.0f) {
        s.col.push_back(static_cast<int32_t>(c));
        s.val.push_back(v);
      }
    }
    s.row_ptr.push_back(static_cast<int64_t>(s.col.size()));
  }
  return s;
}

void fit_masked_k_block(KernelPlan& p) {
  if (!p.masked() || p.k < 9) return;
  const int64_t hw = p.mask_h * p.mask_w;
  const int64_t shared = hw % 16 == 0 ? std::gcd<int64_t>(hw / 16, 64) : 1;
  const int64_t now = p.k_block >= p.k || p.k_block <= 0 ? p.k / 9 : p.k_block / 9;
  const int64_t channels = std::max<int64_t>(1, std::min<int64_t>(now, 128 / shared));
  p.k_block = std::min(p.k, channels * 9);
}

// ymm: 14 accumulators + one B + one broadcast register fill the 16 (bench/RESULTS.md "AVX2
// plans": 1.03x the 12-row tiles on the 32-problem A/B, never slower).
int spmm_tile_height(Isa isa) { return isa == Isa::Avx512 ? 28 : 14; }

int64_t padded_columns(int64_t n, Isa isa) {
  const int64_t vl = vector_floats(isa);
  return (n + vl - 1) / vl * vl;
}

KernelPlan default_plan(Family family, Isa isa, int64_t m, int64_t k, int64_t n, bool bias, Activation act) {
  KernelPlan p;
  p.family = family;
  p.isa = isa;
  p.m = m;
  p.k = k;
  p.n = padded_columns(n, isa);
  p.bias = bias;
  p.act = act;
  // Sparse: tall, one-vector tiles, so each B load feeds as many FMAs as the pattern allows
  // (PITFALLS.md: 24-28 x 1 beat square tiles). Dense: every broadcast feeds nb FMAs and every B
  // load mb FMAs, which keeps the two load ports below the FMA rate.
  if (family == Family::Spmm) {
    p.mb = spmm_tile_height(isa);
    p.nb = 1;
    p.prefetch = kPrefetchB;  // + kPrefetchCode by pattern size (group_columns)
  } else {
    p.mb = isa == Isa::Avx512 ? 8 : 6;
    p.nb = isa == Isa::Avx512 ? 3 : 2;
  }
  p.mb = static_cast<int>(std::min<int64_t>(p.mb, std::max<int64_t>(m, 1)));
  // Split K so the B strip of one column chunk (k_block rows x NB*VL floats) stays in the 48 KiB
  // L1 while every tile of the range sweeps it.
  const int64_t strip_row = p.tile_cols() * 4, l1_budget = 32 * 1024;
  p.k_block = k;
  if (k * strip_row > 40 * 1024) p.k_block = std::max<int64_t>(64, l1_budget / strip_row / 64 * 64);
  return p;
}

namespace {
constexpr int64_t kBigBytes = 512 * 1024, kHugeBytes = 1536 * 1024, kCodePrefetchBytes = 192 * 1024;

// Above 15 % density a tile's K block holds enough FMAs that its accumulator reload matters less.
bool dense_ish(const KernelPlan& p, int64_t nnz) { return nnz * 100 > 15 * p.m * p.k; }

// ymm groups of 4 chunks x 256 rows of a pattern above 15 % density: 8 chunks x 128 rows (the
// same 32 KiB of B strips in L1), so each block's code is fetched from L2 once per 8 column
// passes instead of 4 (bench/RESULTS.md "AVX2 plans": 1.04-1.21x at 70-80 %, 0.98-1.01x at 90 %,
// hence dense patterns only).
void denser_groups(KernelPlan& p, int64_t nnz, int64_t chunks) {
  if (p.n_group == 4 && p.k_block >= 256 && p.isa == Isa::Avx2 && p.nb == 1 && dense_ish(p, nnz) && chunks >= 8) {
    p.n_group = 8;
    p.k_block = 128;
  }
}
}  // namespace

// Code and values (about 12 B per nonzero) beyond kBigBytes at a density of at least 8 %, and
// either above 15 % or with fewer than 8 column chunks. Sparser patterns with more columns run
// the small-pattern plan at any size: with their code prefetched (kPrefetchCode) the L1-resident
// B strips win (bench/RESULTS.md "Big patterns up to 85 % sparse": 1.02-1.25x on all 30 big
// problems at 90 %; at 80 % the L2-resident groups stay ahead). With 4 chunks (N = 64 with zmm:
// ResNet-50's last stage) one group still covers all columns, so two threads split the rows and
// each streams half the code; 2-chunk groups let them split the columns and each stream all of
// it (1.6x slower layers there).
bool big_pattern(const KernelPlan& p, int64_t nnz) {
  const int64_t chunks = p.n / p.tile_cols();
  return nnz * 12 > kBigBytes && nnz * 100 >= 8 * p.m * p.k && (dense_ish(p, nnz) || chunks < 8);
}

void group_columns(KernelPlan& p, int64_t nnz) {
  if (p.family != Family::Spmm || p.direct()) return;
  const int64_t bytes = nnz * 12;
  // Code prefetch where code and values pass 192 KiB: smaller patterns' code mostly stays in L2
  // between calls, and the prefetches cost them 1-3 % (bench/RESULTS.md "Session 10: code
  // prefetch": 1.01-1.18x above, 0.97-1.00x below).
  if (bytes > kCodePrefetchBytes) p.prefetch |= kPrefetchCode;
  const int64_t chunks = p.n / p.tile_cols();
  if (big_pattern(p, nnz)) {
    int group = bytes > kHugeBytes ? 16 : 4;
    while (group > chunks) group /= 2;
    if (group < 4) return;  // fewer columns than a useful group
    p.n_group = group;
    // K blocks of about 1500-3000 nonzeros per tile: fewer, longer blocks where the pattern is
    // sparse (each k block costs the tile a reload and a store of its accumulators), except
    // where the group's B strips of 256 rows fit the L1 (4 ymm chunks: 32 KiB), which beats the
    // longer blocks (bench/RESULTS.md "AVX2 plans": 1.14-1.27x at 90 %).
    const bool l1_strips = int64_t{256} * group * p.tile_cols() * 4 <= 32 * 1024;
    p.k_block = std::min<int64_t>(p.k, dense_ish(p, nnz) || l1_strips ? 256 : 512);
    denser_groups(p, nnz, chunks);
    return;
  }
  // Everything else: K blocks of at most kSmallKBlock rows and as many chunks per group as keep
  // the group's B strips within kL1Strips, so each block's code runs G times from L1i while its
  // B stays in L1 (2 chunks with zmm, 4 with ymm).
  constexpr int64_t kSmallKBlock = 256, kL1Strips = 32 * 1024;
  const int64_t kb = std::min<int64_t>(p.k, kSmallKBlock);
  int group = static_cast<int>(std::max<int64_t>(1, kL1Strips / (kb * p.tile_cols() * 4)));
  group = std::min(group, 4);
  while (group > chunks) group /= 2;
  if (group < 2) return;
  p.n_group = group;
  p.k_block = std::min(p.k_block, kb);
  denser_groups(p, nnz, chunks);
}

void group_direct_columns(KernelPlan& p, int64_t nnz) {
  SDNN_CHECK(p.direct() && p.family == Family::Spmm);
  constexpr int64_t kDirectGroupBytes = 1024 * 1024, kMaxPrefetchPasses = 64;
  const int64_t chunks = p.n / p.tile_cols();
  if (nnz * 12 > kDirectGroupBytes || 2 * nnz >= p.m * p.k) {
    int group = 4;
    while (group > chunks) group /= 2;
    if (group >= 2) p.n_group = group;
  }
  const int64_t passes = (chunks + p.n_group - 1) / p.n_group;
  p.prefetch = passes <= kMaxPrefetchPasses ? kPrefetchCode : 0;
}

}  // namespace sdnn::backend
