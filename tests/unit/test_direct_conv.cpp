// test_direct_conv.cpp — the generated direct sparse convolution kernel (KernelPlan::b_offsets,
// and c_plane output) against a double-precision convolution, on both ISAs.
//
// The test builds what the compiler's direct-conv pass and the runtime's pad_planes step build
// (zero-padded phase planes [C][Sh][Sw][R][Wq], R rows so the last grid vector's reads stay
// inside; see passes/src/direct_conv.cpp), gives the kernel B row k = (c, ky, kx) at plane
// (c, (ky*dh) % Sh, (kx*dw) % Sw) shifted by (ky*dh) / Sh rows and (kx*dw) / Sw columns, runs it
// over the Ho x Wq output grid as the runtime does (one call per k block; also split into column
// ranges), and checks the Ho x Wo real outputs. With c_plane the kernel writes the grid shifted by
// (pad_top, pad_left) into planes of another conv; the test checks those positions and that
// nothing outside the written span changed.
#include <catch2/catch.hpp>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "kernel_tester.h"
#include "sdnn/backend/jit.h"
#include "sdnn/backend/kernel_emitter.h"

namespace {

using sdnn::backend::Activation;
using sdnn::backend::Family;
using sdnn::backend::Isa;

struct Conv {
  int64_t c = 8, m = 8, h = 7, w = 7, k = 3, stride = 1, pad = 1, dilation = 1;
  double sparsity = 0.9;
  std::vector<int64_t> empty_filters;
  bool bias = true, relu = false;
  bool planes_out = false;  // write the grid into planes [M][R2][Wq] at (pad, pad)
  int col_parts = 1;
  bool planner = false;  // the compiler's prefetch and column groups (group_direct_columns)
};

// Runs the kernel and checks it; returns the kernel (empty when the ISA does not run here).
sdnn::backend::KernelBinary check(const Conv& cv, Isa isa) {
  if (!sdnn::test::isa_available(isa)) return {};
  const int64_t vl = sdnn::backend::vector_floats(isa);
  const int64_t span = cv.dilation * (cv.k - 1) + 1;
  const int64_t hp = cv.h + 2 * cv.pad, wp = cv.w + 2 * cv.pad;
  const int64_t ho = (hp - span) / cv.stride + 1, wo = (wp - span) / cv.stride + 1;
  const int64_t s = cv.stride, wq = (wp + s - 1) / s, hq = (hp + s - 1) / s;
  const int64_t dy_max = (cv.k - 1) * cv.dilation / s, dx_max = dy_max;
  const int64_t grid = (ho * wq + vl - 1) / vl * vl;
  const int64_t rows = std::max(hq, (grid + dy_max * wq + dx_max + wq - 1) / wq + 1);
  const int64_t plane = rows * wq, kk = cv.c * cv.k * cv.k;
  INFO("C=" << cv.c << " M=" << cv.m << " " << cv.h << "x" << cv.w << " k=" << cv.k << " s=" << s << " d="
            << cv.dilation << " pad=" << cv.pad << " planes_out=" << cv.planes_out << " isa="
            << sdnn::backend::to_string(isa));

  std::mt19937 rng(static_cast<uint32_t>(cv.c * 131 + cv.m * 7 + cv.h + s));
  std::normal_distribution<float> normal;
  std::vector<float> x(cv.c * cv.h * cv.w), wt(cv.m * kk), bias(cv.m);
  for (float& v : x) v = normal(rng);
  for (float& v : bias) v = 0.1f * normal(rng);
  for (float& v : wt) v = normal(rng);
  {  // magnitude-prune to the sparsity, then empty the requested filters
    std::vector<float> mags;
    for (float v : wt) mags.push_back(std::fabs(v));
    std::nth_element(mags.begin(), mags.begin() + static_cast<long>(cv.sparsity * mags.size()), mags.end());
    const float cut = mags[static_cast<size_t>(cv.sparsity * mags.size())];
    for (float& v : wt)
      if (std::fabs(v) < cut) v = 0.0f;
    for (int64_t f : cv.empty_filters) std::fill(wt.begin() + f * kk, wt.begin() + (f + 1) * kk, 0.0f);
  }

  // The planes: plane (c, py, px) row r column q = input (r*s + py - pad, q*s + px - pad).
  std::vector<float> planes(cv.c * s * s * plane + vl, 0.0f);
  for (int64_t c = 0; c < cv.c; ++c)
    for (int64_t py = 0; py < s; ++py)
      for (int64_t px = 0; px < s; ++px)
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t q = 0; q < wq; ++q) {
            const int64_t iy = r * s + py - cv.pad, ix = q * s + px - cv.pad;
            if (iy >= 0 && iy < cv.h && ix >= 0 && ix < cv.w)
              planes[((c * s + py) * s + px) * plane + r * wq + q] = x[(c * cv.h + iy) * cv.w + ix];
          }

  sdnn::backend::KernelPlan p = sdnn::backend::default_plan(
      Family::Spmm, isa, cv.m, kk, ho * wq, cv.bias, cv.relu ? Activation::Relu : Activation::None);
  for (int64_t c = 0; c < cv.c; ++c)
    for (int64_t ky = 0; ky < cv.k; ++ky)
      for (int64_t kx = 0; kx < cv.k; ++kx) {
        const int64_t py = ky * cv.dilation % s, dy = ky * cv.dilation / s;
        const int64_t px = kx * cv.dilation % s, dx = kx * cv.dilation / s;
        p.b_offsets.push_back(((c * s + py) * s + px) * plane + dy * wq + dx);
      }
  // planes_out: C as planes of R2 rows (room for the shifted grid) at offset pad * wq + pad.
  const int64_t rows2 = (cv.pad * wq + cv.pad + p.n + wq - 1) / wq + 1, shift = cv.pad * wq + cv.pad;
  if (cv.planes_out) p.c_plane = rows2 * wq;
  const sdnn::backend::SparseMatrix a = sdnn::backend::SparseMatrix::from_dense(wt.data(), cv.m, kk);
  if (cv.planner) sdnn::backend::group_direct_columns(p, a.nnz());
  const sdnn::backend::KernelBinary bin = sdnn::backend::emit_kernel(p, a, "direct_conv_test");
  const sdnn::backend::JitKernel jit(bin.code);

  const float kSentinel = -12345.0f;
  const int64_t c_floats = cv.planes_out ? cv.m * p.c_plane + vl : cv.m * p.n + vl;
  std::vector<float> out(c_floats, kSentinel);
  float* c_base = out.data() + (cv.planes_out ? shift : 0);
  const int64_t c_scale = cv.planes_out ? 1 : cv.m;  // floats from column n0 to n0 + 1
  const int64_t tiles = p.num_tiles(), align = p.column_align();
  for (int part = 0; part < cv.col_parts; ++part) {
    const int64_t chunks = (p.n + align - 1) / align;  // as the runtime: the last one may be short
    const int64_t n0 = chunks * part / cv.col_parts * align, n1 = std::min(chunks * (part + 1) / cv.col_parts * align, p.n);
    if (n1 <= n0) continue;
    for (int64_t kb = 0; kb < p.num_k_blocks(); ++kb) {
      const sdnn_kernel_args args{planes.data() + n0, c_base + n0 * c_scale, bin.values.data() + bin.block_offsets[kb * tiles],
                                  bias.data(), n1 - n0, kb * tiles, (kb + 1) * tiles, nullptr, 0};
      jit.fn()(&args);
    }
  }

  int64_t bad = 0;
  for (int64_t m = 0; m < cv.m; ++m)
    for (int64_t oy = 0; oy < ho; ++oy)
      for (int64_t ox = 0; ox < wo; ++ox) {
        double ref = cv.bias ? bias[m] : 0.0;
        for (int64_t c = 0; c < cv.c; ++c)
          for (int64_t ky = 0; ky < cv.k; ++ky)
            for (int64_t kx = 0; kx < cv.k; ++kx) {
              const int64_t iy = oy * s - cv.pad + ky * cv.dilation, ix = ox * s - cv.pad + kx * cv.dilation;
              if (iy >= 0 && iy < cv.h && ix >= 0 && ix < cv.w)
                ref += double(wt[m * kk + (c * cv.k + ky) * cv.k + kx]) * x[(c * cv.h + iy) * cv.w + ix];
            }
        if (cv.relu) ref = std::max(ref, 0.0);
        const int64_t n = oy * wq + ox;
        const float got = cv.planes_out ? c_base[m * p.c_plane + n] : c_base[(n / vl) * cv.m * vl + m * vl + n % vl];
        if (std::fabs(got - ref) > 1e-4 + 1e-4 * std::fabs(ref) && bad++ < 5)
          UNSCOPED_INFO("m=" << m << " oy=" << oy << " ox=" << ox << ": got " << got << ", want " << ref);
      }
  CHECK(bad == 0);
  // Nothing written outside C's span: the planes' rows before the shift, the guard after.
  if (cv.planes_out)
    for (int64_t m = 0; m < cv.m; ++m) {
      const float* pl = out.data() + m * p.c_plane;
      for (int64_t i = 0; i < shift; ++i) CHECK(pl[i] == kSentinel);
      for (int64_t i = shift + p.n; i < p.c_plane; ++i) CHECK(pl[i] == kSentinel);
    }
  for (int64_t i = c_floats - vl; i < c_floats; ++i) CHECK(out[i] == kSentinel);
  return bin;
}

void check_both(const Conv& cv) {
  check(cv, Isa::Avx512);
  check(cv, Isa::Avx2);
}

}  // namespace

TEST_CASE("direct conv: image sizes 1x1, 7x7, odd 9x11, 56x56", "[direct-conv]") {
  Conv cv;
  cv.h = cv.w = 1;
  check_both(cv);
  cv.h = cv.w = 7;
  check_both(cv);
  cv.h = 9;
  cv.w = 11;
  check_both(cv);
  cv.h = cv.w = 56;
  cv.c = cv.m = 32;
  cv.sparsity = 0.95;
  check_both(cv);
}

TEST_CASE("direct conv: stride 2, dilation 2, 5x5, no padding", "[direct-conv]") {
  Conv cv;
  cv.h = 13;
  cv.w = 10;
  cv.stride = 2;
  check_both(cv);
  cv.stride = 1;
  cv.dilation = 2;
  cv.pad = 2;
  check_both(cv);
  cv.dilation = 1;
  cv.k = 5;
  cv.pad = 0;
  check_both(cv);
  cv.stride = 2;
  cv.pad = 2;
  check_both(cv);
}

TEST_CASE("direct conv: channel counts off the vector width, empty filters, dense-ish weights", "[direct-conv]") {
  Conv cv;
  cv.c = 3;
  cv.m = 13;
  cv.h = cv.w = 12;
  check_both(cv);
  cv.c = 17;
  cv.m = 30;
  cv.empty_filters = {0, 7, 29};
  cv.relu = true;
  check_both(cv);
  cv.sparsity = 0.5;
  cv.bias = false;
  check_both(cv);
  cv.sparsity = 1.0;  // every filter empty: bias (or 0) only
  cv.bias = true;
  check_both(cv);
}

TEST_CASE("direct conv: column ranges as threads split them, and C written as the next conv's planes", "[direct-conv]") {
  Conv cv;
  cv.c = 16;
  cv.m = 24;
  cv.h = cv.w = 20;
  cv.col_parts = 3;
  check_both(cv);
  cv.planes_out = true;
  check_both(cv);
  cv.col_parts = 1;
  cv.relu = true;
  cv.stride = 2;
  check_both(cv);
}

// ---- masked direct 3x3 convolution (KernelPlan::mask_h / mask_w) ----------------------------
//
// B is the compact NCHW image itself, placed against inaccessible pages on either side (the
// first run ends it at a guard page, the second starts it at one), so a tap that read a lane off
// the image would fault instead of passing; C is blocked [N/16][M][16] and its pad columns must
// come out 0. Column ranges are called with col0 as the runtime's tasks give it.
namespace {

struct Guarded {  // floats [n] with no accessible byte right before (at_start) or after them
  Guarded(int64_t n, bool at_start) {
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_bytes = (static_cast<size_t>(n) * 4 + page - 1) / page * page;
    total = data_bytes + 2 * page;
    base = static_cast<char*>(mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    REQUIRE(base != MAP_FAILED);
    REQUIRE(mprotect(base, page, PROT_NONE) == 0);
    REQUIRE(mprotect(base + page + data_bytes, page, PROT_NONE) == 0);
    p = reinterpret_cast<float*>(at_start ? base + page : base + page + data_bytes - static_cast<size_t>(n) * 4);
  }
  ~Guarded() { munmap(base, total); }
  Guarded(const Guarded&) = delete;
  Guarded& operator=(const Guarded&) = delete;
  char* base = nullptr;
  size_t data_bytes = 0, total = 0;
  float* p = nullptr;
};

struct Masked {
  int64_t c = 8, m = 8, h = 7, w = 7;
  double sparsity = 0.9;
  bool bias = true, residual = false;
  Activation act = Activation::None;
  int col_parts = 1;
  int64_t k_block = 0;  // 0: the default plan's
  bool planes = false;  // C as NCHW planes [M][H*W] (c_plane), ending at a guard page
  int n_group = 0;      // 0: the default plan's (what --tune=full may pick: 2 or 4)
  bool shuffle_rows = false;  // tiles of rows in a pseudo-random order (plan.row_order)
  bool planner = false;  // the compiler's prefetch and column groups (group_direct_columns)
};

// Runs the kernel and checks it; returns the kernel (empty without AVX-512).
sdnn::backend::KernelBinary check_masked(const Masked& cv) {
  if (!sdnn::test::isa_available(Isa::Avx512)) return {};
  const int64_t vl = 16, hw = cv.h * cv.w, kk = cv.c * 9;
  INFO("masked C=" << cv.c << " M=" << cv.m << " " << cv.h << "x" << cv.w << " parts=" << cv.col_parts
                   << " residual=" << cv.residual << " act=" << sdnn::backend::to_string(cv.act));
  std::mt19937 rng(static_cast<uint32_t>(cv.c * 31 + cv.m * 5 + cv.h * 3 + cv.w));
  std::normal_distribution<float> normal;
  std::vector<float> x(cv.c * hw), wt(cv.m * kk), bias(cv.m);
  for (float& v : x) v = normal(rng);
  for (float& v : bias) v = 0.5f + 0.1f * normal(rng);  // nonzero, so pad columns test the zeroing
  for (float& v : wt) v = normal(rng);
  {
    std::vector<float> mags;
    for (float v : wt) mags.push_back(std::fabs(v));
    std::nth_element(mags.begin(), mags.begin() + static_cast<long>(cv.sparsity * (mags.size() - 1)), mags.end());
    const float cut = mags[static_cast<size_t>(cv.sparsity * (mags.size() - 1))];
    for (float& v : wt)
      if (std::fabs(v) < cut) v = 0.0f;
  }
  sdnn::backend::KernelPlan p =
      sdnn::backend::default_plan(Family::Spmm, Isa::Avx512, cv.m, kk, hw, cv.bias, cv.act);
  p.mask_h = cv.h;
  p.mask_w = cv.w;
  p.prefetch = 0;
  p.residual = cv.residual;
  if (cv.planes) p.c_plane = hw;
  if (cv.k_block) p.k_block = cv.k_block;
  if (cv.n_group) p.n_group = cv.n_group;
  if (cv.shuffle_rows) {
    p.row_order.resize(static_cast<size_t>(cv.m));
    for (int64_t r = 0; r < cv.m; ++r) p.row_order[static_cast<size_t>(r)] = r;
    std::shuffle(p.row_order.begin(), p.row_order.end(), rng);
  }
  for (int64_t c = 0; c < cv.c; ++c)
    for (int64_t ky = 0; ky < 3; ++ky)
      for (int64_t kx = 0; kx < 3; ++kx) p.b_offsets.push_back(c * hw + (ky - 1) * cv.w + (kx - 1));
  const sdnn::backend::SparseMatrix a = sdnn::backend::SparseMatrix::from_dense(wt.data(), cv.m, kk);
  if (cv.planner) sdnn::backend::group_direct_columns(p, a.nnz());
  const sdnn::backend::KernelBinary bin = sdnn::backend::emit_kernel(p, a, "masked_conv_test");
  const sdnn::backend::JitKernel jit(bin.code);

  // C's layout: blocked [N/16][M][16] (pad columns 0 in the residual: the layout's invariant), or
  // planes [M][H*W]; the residual is laid out as C, against a guard page too.
  auto at = [&](int64_t m, int64_t n) { return cv.planes ? m * hw + n : (n / vl) * cv.m * vl + m * vl + n % vl; };
  const int64_t c_floats = cv.planes ? cv.m * hw : cv.m * p.n;
  Guarded res(c_floats, false);
  std::fill(res.p, res.p + c_floats, 0.0f);
  for (int64_t n = 0; n < hw; ++n)
    for (int64_t m = 0; m < cv.m; ++m) res.p[at(m, n)] = normal(rng);

  for (bool at_start : {false, true}) {
    Guarded xb(cv.c * hw, at_start);
    std::copy(x.begin(), x.end(), xb.p);
    const float kSentinel = -12345.0f;
    Guarded out_mem(c_floats + (cv.planes ? 0 : vl), false);
    float* out = out_mem.p;
    std::fill(out, out + c_floats + (cv.planes ? 0 : vl), kSentinel);
    const int64_t c_scale = cv.planes ? 1 : cv.m;
    const int64_t tiles = p.num_tiles(), align = p.column_align(), chunks = (p.n + align - 1) / align;
    for (int part = 0; part < cv.col_parts; ++part) {  // as the runtime: the last chunk may be short
      const int64_t n0 = chunks * part / cv.col_parts * align, n1 = std::min(chunks * (part + 1) / cv.col_parts * align, p.n);
      if (n1 <= n0) continue;
      for (int64_t kb = 0; kb < p.num_k_blocks(); ++kb) {
        const sdnn_kernel_args args{xb.p + n0, out + n0 * c_scale, bin.values.data() + bin.block_offsets[kb * tiles],
                                    bias.data(), n1 - n0, kb * tiles, (kb + 1) * tiles,
                                    cv.residual ? res.p + n0 * c_scale : nullptr, n0};
        jit.fn()(&args);
      }
    }
    int64_t bad = 0;
    for (int64_t m = 0; m < cv.m; ++m)
      for (int64_t n = 0; n < p.n; ++n) {
        const int64_t oy = n / cv.w, ox = n % cv.w;
        double ref = 0.0;
        if (n < hw) {
          ref = cv.bias ? bias[m] : 0.0;
          for (int64_t c = 0; c < cv.c; ++c)
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                const int64_t iy = oy - 1 + ky, ix = ox - 1 + kx;
                if (iy >= 0 && iy < cv.h && ix >= 0 && ix < cv.w)
                  ref += double(wt[m * kk + c * 9 + ky * 3 + kx]) * x[(c * cv.h + iy) * cv.w + ix];
              }
          if (cv.residual) ref += res.p[at(m, n)];
          if (cv.act != Activation::None) ref = std::max(ref, 0.0);
          if (cv.act == Activation::Relu6) ref = std::min(ref, 6.0);
        }
        if (cv.planes && n >= hw) continue;  // planes have no pad columns
        const float got = out[at(m, n)];
        if (!(std::fabs(got - ref) <= 1e-4 + 1e-4 * std::fabs(ref)) && bad++ < 5)
          UNSCOPED_INFO("at_start=" << at_start << " m=" << m << " n=" << n << " (" << oy << ", " << ox
                                    << "): got " << got << ", want " << ref);
      }
    CHECK(bad == 0);
    if (!cv.planes)
      for (int64_t i = cv.m * p.n; i < cv.m * p.n + vl; ++i) CHECK(out[i] == kSentinel);
  }
  return bin;
}

}  // namespace

TEST_CASE("masked direct conv: images 1x1 to 56x56, rows wider than a vector, pad columns zeroed",
          "[direct-conv][masked]") {
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 1}, {1, 5}, {5, 1}, {2, 2}, {3, 3}, {4, 4}, {7, 7}, {5, 17}, {9, 11}, {14, 14}, {17, 16}, {56, 56}}) {
    Masked cv;
    cv.h = h;
    cv.w = w;
    check_masked(cv);
  }
}

TEST_CASE("masked direct conv: epilogues, channel counts, K blocks, column ranges with col0", "[direct-conv][masked]") {
  Masked cv;
  cv.c = 3;
  cv.m = 13;
  cv.h = cv.w = 12;
  cv.act = Activation::Relu;
  check_masked(cv);
  cv.bias = false;
  cv.residual = true;
  cv.act = Activation::Relu6;
  check_masked(cv);
  cv.c = 80;  // K = 720: split into K blocks
  cv.m = 40;
  cv.h = cv.w = 14;
  cv.bias = true;
  cv.k_block = 144;
  cv.col_parts = 3;
  check_masked(cv);
  cv.sparsity = 0.0;
  cv.c = 5;
  cv.k_block = 0;
  cv.h = 10;
  cv.w = 23;
  cv.col_parts = 4;
  check_masked(cv);
}

TEST_CASE("masked direct conv: plans the tuner may pick (column groups, K blocks splitting a channel, row order)",
          "[direct-conv][masked]") {
  Masked cv;
  cv.c = 40;
  cv.m = 45;
  cv.h = 9;
  cv.w = 13;
  for (int ng : {2, 4})
    for (int64_t kb : {int64_t{0}, int64_t{128}})
      for (bool planes : {false, true}) {
        cv.n_group = ng;
        cv.k_block = kb;  // 128 rows: K blocks end inside a channel's nine taps
        cv.planes = planes;
        cv.shuffle_rows = ng == 4;
        cv.col_parts = ng == 2 ? 2 : 1;
        check_masked(cv);
      }
}

TEST_CASE("direct conv: the compiler's code prefetch and column groups (group_direct_columns)", "[direct-conv]") {
  using sdnn::backend::kPrefetchCode;
  // The rule: beyond 1 MiB of code and values (about 12 B per nonzero), or at half density and
  // more, groups of up to 4 column chunks, as many as N has; code prefetch (no B or C prefetch)
  // for at most 64 column passes.
  sdnn::backend::KernelPlan p = sdnn::backend::default_plan(Family::Spmm, Isa::Avx512, 64, 576, 64, true, Activation::Relu);
  p.b_offsets.assign(576, 0);
  sdnn::backend::group_direct_columns(p, 3000);
  CHECK(p.prefetch == kPrefetchCode);
  CHECK(p.n_group == 1);
  for (auto [n, want] : {std::pair{64, 4}, {48, 2}, {32, 2}, {16, 1}, {208, 4}, {4096, 4}}) {
    p.n = n;
    p.n_group = 1;
    sdnn::backend::group_direct_columns(p, 90000);
    CHECK(p.n_group == want);
    CHECK(p.prefetch == (n <= 64 * 16 * want ? kPrefetchCode : 0));
  }
  p.n = 64;  // half dense or more (a stem conv): groups at any size
  p.n_group = 1;
  sdnn::backend::group_direct_columns(p, 64 * 576 / 2);
  CHECK(p.n_group == 4);
  p.n_group = 1;
  sdnn::backend::group_direct_columns(p, 64 * 576 / 2 - 1);
  CHECK(p.n_group == 1);
  for (int64_t n : {1024, 1040}) {  // 64 passes of one chunk: prefetch; 65: none
    p.n = n;
    p.n_group = 1;
    sdnn::backend::group_direct_columns(p, 3000);
    CHECK(p.n_group == 1);
    CHECK(p.prefetch == (n == 1024 ? kPrefetchCode : 0));
  }
  // Patterns big enough for groups (320 x 320 channels, 92160 nonzeros) through the kernel, with
  // the code prefetches covering each next block (direct B loads are 8-10 byte disp32 ones).
  Masked mk;
  mk.c = mk.m = 320;
  mk.planner = true;
  for (int64_t hw : {7, 14}) {  // 4 chunks: one group; 13 chunks: 3 groups and a single chunk
    mk.h = mk.w = hw;
    mk.col_parts = hw == 14 ? 2 : 1;
    const sdnn::backend::KernelBinary bin = check_masked(mk);
    if (bin.code.empty()) continue;
    CHECK(bin.plan.n_group == 4);
    CHECK(bin.plan.prefetch == kPrefetchCode);
    sdnn::test::check_code_prefetch_coverage(bin);
  }
  Conv cv;
  cv.c = cv.m = 320;
  cv.planner = true;
  for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
    const sdnn::backend::KernelBinary bin = check(cv, isa);  // grid 7 x 9: 4 zmm / 8 ymm chunks
    if (bin.code.empty()) continue;
    CHECK(bin.plan.n_group == 4);
    sdnn::test::check_code_prefetch_coverage(bin);
  }
  cv.c = cv.m = 32;  // small: code prefetch, no groups
  cv.planes_out = true;
  for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
    const sdnn::backend::KernelBinary bin = check(cv, isa);
    if (bin.code.empty()) continue;
    CHECK(bin.plan.n_group == 1);
    CHECK(bin.plan.prefetch == kPrefetchCode);
  }
}

TEST_CASE("masked direct conv: C as NCHW planes, stores and reads of C under the image mask", "[direct-conv][masked]") {
  Masked cv;
  cv.planes = true;
  for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 5}, {7, 7}, {9, 11}, {17, 16}}) {
    cv.h = h;
    cv.w = w;
    check_masked(cv);
  }
  cv.c = 80;  // K blocks: the later ones read C back; with a residual and column ranges
  cv.m = 40;
  cv.h = cv.w = 14;
  cv.k_block = 144;
  cv.col_parts = 3;
  cv.residual = true;
  cv.act = Activation::Relu;
  check_masked(cv);
}

TEST_CASE("masked direct conv: the emitter rejects plans it cannot mask", "[direct-conv][masked]") {
  sdnn::backend::KernelPlan p = sdnn::backend::default_plan(Family::Spmm, Isa::Avx512, 8, 18, 49, false, Activation::None);
  p.mask_h = p.mask_w = 7;
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t t = 0; t < 9; ++t) p.b_offsets.push_back(c * 49 + (t / 3 - 1) * 7 + (t % 3 - 1));
  std::vector<float> wt(8 * 18, 1.0f);
  const auto a = sdnn::backend::SparseMatrix::from_dense(wt.data(), 8, 18);
  CHECK_NOTHROW(sdnn::backend::emit_kernel(p, a, "ok"));
  auto q = p;
  q.nb = 2;
  CHECK_THROWS_WITH(sdnn::backend::emit_kernel(q, a, "nb2"), Catch::Contains("masked direct convolution"));
  q = p;
  q.isa = Isa::Avx2;
  q.n = 56;
  q.mb = 12;
  CHECK_THROWS_WITH(sdnn::backend::emit_kernel(q, a, "avx2"), Catch::Contains("masked direct convolution"));
  q = p;
  q.b_offsets[0] = -9;  // above the row above the image
  CHECK_THROWS_WITH(sdnn::backend::emit_kernel(q, a, "low"), Catch::Contains("displacement range"));
}

// ---- NCHW output of a plain SpMM / dense kernel (KernelPlan::c_cols) --------------------------
//
// A 1x1 conv feeding a masked 3x3 conv writes C as planes [M][cols] packed cols apart: the last
// vector of each plane is stored under a mask, and later k blocks read it back under the same
// mask. C ends at a guard page (the last plane's last vector would fault if stored or read whole)
// and every float between the planes is checked.
namespace {

void check_nchw_out(sdnn::backend::Family family, int64_t m, int64_t k, int64_t cols, int64_t k_block, int col_parts,
                    bool bias, Activation act) {
  if (!sdnn::test::isa_available(Isa::Avx512)) return;
  const int64_t vl = 16, n = (cols + vl - 1) / vl * vl;
  INFO("nchw out " << sdnn::backend::to_string(family) << " M=" << m << " K=" << k << " cols=" << cols
                   << " k_block=" << k_block << " parts=" << col_parts);
  std::mt19937 rng(static_cast<uint32_t>(m * 7 + k * 3 + cols));
  std::normal_distribution<float> normal;
  std::vector<float> wt(m * k), bias_v(m), b(n * k, 0.0f);
  for (float& v : wt) v = std::fabs(v = normal(rng)) < 1.2f ? 0.0f : v;
  for (float& v : bias_v) v = normal(rng);
  for (int64_t c = 0; c < cols; ++c)  // blocked B [N/16][K][16], pad columns 0
    for (int64_t kk = 0; kk < k; ++kk) b[(c / vl) * k * vl + kk * vl + c % vl] = normal(rng);
  sdnn::backend::KernelPlan p = sdnn::backend::default_plan(family, Isa::Avx512, m, k, cols, bias, act);
  p.nb = 1;
  p.c_plane = cols;
  p.c_cols = cols;
  if (k_block) p.k_block = k_block;
  const auto a = sdnn::backend::SparseMatrix::from_dense(wt.data(), m, k);
  const sdnn::backend::KernelBinary bin = sdnn::backend::emit_kernel(p, a, "nchw_out_test");
  const sdnn::backend::JitKernel jit(bin.code);
  Guarded out(m * cols, false);
  const float kSentinel = -12345.0f;
  std::fill(out.p, out.p + m * cols, kSentinel);
  const int64_t tiles = p.num_tiles(), align = p.column_align(), chunks = n / align;
  for (int part = 0; part < col_parts; ++part) {
    const int64_t n0 = chunks * part / col_parts * align, n1 = chunks * (part + 1) / col_parts * align;
    if (n1 <= n0) continue;
    for (int64_t kb = 0; kb < p.num_k_blocks(); ++kb) {
      const sdnn_kernel_args args{b.data() + n0 * k, out.p + n0, bin.values.data() + bin.block_offsets[kb * tiles],
                                  bias_v.data(), n1 - n0, kb * tiles, (kb + 1) * tiles, nullptr, n0};
      jit.fn()(&args);
    }
  }
  int64_t bad = 0;
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      double ref = bias ? bias_v[r] : 0.0;
      for (int64_t kk = 0; kk < k; ++kk) ref += double(wt[r * k + kk]) * b[(c / vl) * k * vl + kk * vl + c % vl];
      if (act != Activation::None) ref = std::max(ref, 0.0);
      const float got = out.p[r * cols + c];
      if (!(std::fabs(got - ref) <= 1e-4 + 1e-4 * std::fabs(ref)) && bad++ < 5)
        UNSCOPED_INFO("row " << r << " col " << c << ": got " << got << ", want " << ref);
    }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("NCHW planes out of sparse and dense kernels: partial last vectors stored and reread under a mask",
          "[direct-conv][masked]") {
  using sdnn::backend::Family;
  for (Family f : {Family::Spmm, Family::Dense}) {
    check_nchw_out(f, 24, 32, 49, 0, 1, true, Activation::Relu);        // 7x7
    check_nchw_out(f, 13, 16, 1, 0, 1, false, Activation::None);        // 1x1 image
    check_nchw_out(f, 40, 96, 196, 32, 3, true, Activation::None);     // 14x14, K blocks, column ranges
    check_nchw_out(f, 8, 16, 64, 0, 2, true, Activation::Relu);        // 8x8: no partial vector
  }
}

TEST_CASE("masked direct conv: K blocks of whole channels, fewer where NCHW planes alias L1 sets", "[direct-conv][masked]") {
  auto kb = [](int64_t c, int64_t h, int64_t w) {
    sdnn::backend::KernelPlan p =
        sdnn::backend::default_plan(Family::Spmm, Isa::Avx512, 64, c * 9, h * w, false, Activation::None);
    p.mask_h = h;
    p.mask_w = w;
    sdnn::backend::fit_masked_k_block(p);
    return p.num_k_blocks() == 1 ? int64_t{0} : p.k_block;
  };
  CHECK(kb(64, 56, 56) == 32 * 9);    // 196 lines a plane: gcd with 64 sets is 4 -> 32 channels
  CHECK(kb(32, 56, 56) == 0);         // 32 channels fit one block
  CHECK(kb(64, 112, 112) == 8 * 9);   // 784 lines: gcd 16 -> 8 channels
  CHECK(kb(64, 28, 28) == 0);         // 49 lines: no shared factor, and 576 rows fit one block
  CHECK(kb(256, 14, 14) == 56 * 9);   // not a whole number of lines: the L1 strip rule's 512 rows, rounded to channels
  CHECK(kb(256, 7, 7) == 56 * 9);
}
