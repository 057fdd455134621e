// kernel_tester.cpp — see kernel_tester.h.
#include "kernel_tester.h"

#include <xbyak/xbyak_util.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>

namespace sdnn::test {

using backend::Isa;

bool cpu_has_avx512f() { return Xbyak::util::Cpu().has(Xbyak::util::Cpu::tAVX512F); }
bool cpu_has_avx2() {
  Xbyak::util::Cpu cpu;
  return cpu.has(Xbyak::util::Cpu::tAVX2) && cpu.has(Xbyak::util::Cpu::tFMA);
}

bool isa_available(Isa isa) {
  bool ok = isa == Isa::Avx512 ? cpu_has_avx512f() : cpu_has_avx2();
  if (!ok) WARN("skipped: this CPU cannot run " << backend::to_string(isa) << " code");
  return ok;
}

std::vector<std::pair<int64_t, int64_t>> code_prefetches(const std::vector<uint8_t>& code) {
  std::vector<std::pair<int64_t, int64_t>> at_target;
  for (size_t i = 0; i + 7 <= code.size(); ++i)
    if (code[i] == 0x0f && code[i + 1] == 0x18 && code[i + 2] == 0x15) {
      int32_t disp;
      std::memcpy(&disp, &code[i + 3], 4);
      at_target.emplace_back(static_cast<int64_t>(i), static_cast<int64_t>(i) + 7 + disp);
    }
  return at_target;
}

void check_code_prefetch_coverage(const backend::KernelBinary& bin) {
  constexpr int64_t stride = backend::kCodePrefetchStride;
  const std::vector<size_t>& start = bin.block_code;
  INFO(bin.plan.str() << ", " << start.size() << " blocks");
  REQUIRE(start.size() >= 3);
  std::vector<int64_t> first(start.size(), -1), last(start.size(), -1);
  for (auto [pos, target] : code_prefetches(bin.code)) {
    if (pos < static_cast<int64_t>(start.front()) || pos >= static_cast<int64_t>(start.back())) continue;
    size_t j = 0;
    while (static_cast<int64_t>(start[j + 1]) <= pos) ++j;  // the block holding it
    const int64_t next = static_cast<int64_t>(start[j + 1]);
    CHECK(target >= next);
    CHECK((target - next) % stride == 0);
    if (first[j] < 0) first[j] = target;
    last[j] = std::max(last[j], target);
  }
  for (size_t j = 0; j + 1 < start.size(); ++j) {
    INFO("block " << j);
    CHECK(first[j] == static_cast<int64_t>(start[j + 1]));
    if (j + 2 < start.size()) {  // the next block's whole code, within one stride
      CHECK(last[j] + stride >= static_cast<int64_t>(start[j + 2]));
      CHECK(last[j] < static_cast<int64_t>(start[j + 2]) + 2 * stride);
    }
  }
}

backend::KernelPlan KernelTester::plan() const {
  const backend::Activation act = relu6_ ? backend::Activation::Relu6
                                  : relu_  ? backend::Activation::Relu
                                           : backend::Activation::None;
  backend::KernelPlan p = backend::default_plan(family_, isa_, m_, k_, n_, bias_, act);
  if (mb_) p.mb = mb_;
  if (nb_) p.nb = nb_;
  if (k_block_) p.k_block = k_block_;
  if (n_group_) p.n_group = n_group_;
  if (prefetch_ >= 0) p.prefetch = prefetch_;
  if (layout_vl_) {
    p.layout_vl = layout_vl_;
    p.n = (n_ + layout_vl_ - 1) / layout_vl_ * layout_vl_;
  }
  p.residual = residual_;
  if (shuffle_rows_) {
    p.row_order.resize(m_);
    std::iota(p.row_order.begin(), p.row_order.end(), 0);
    std::shuffle(p.row_order.begin(), p.row_order.end(), std::mt19937(seed_ + 3));
  }
  return p;
}

std::vector<float> KernelTester::weights() const {
  std::mt19937 rng(seed_);
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> uni;
  std::vector<float> w(m_ * k_);
  for (int64_t r = 0; r < m_; ++r)
    for (int64_t c = 0; c < k_; ++c) {
      bool keep = uni(rng) >= sparsity_;
      if (empty_rows_ && r % 3 == 1) keep = false;
      if (dense_rows_ && r % 4 == 2) keep = true;
      w[r * k_ + c] = keep ? normal(rng) : 0.0f;
    }
  return w;
}

void KernelTester::Test() const {
  // Planning and emission need no particular CPU, so an invalid plan is rejected (and a valid
  // one emitted) on every machine; only running the kernel needs the ISA.
  const backend::KernelPlan p = plan();
  const std::vector<float> w = weights();
  const backend::SparseMatrix a = backend::SparseMatrix::from_dense(w.data(), m_, k_);
  const backend::KernelBinary bin = backend::emit_kernel(p, a, "test_kernel");
  INFO("plan " << p.str() << " m=" << m_ << " k=" << k_ << " n=" << n_ << " sparsity=" << sparsity_
               << " parts=" << parts_ << "x" << col_parts_);
  REQUIRE(bin.block_offsets.size() == static_cast<size_t>(p.num_k_blocks() * p.num_tiles() + 1));
  REQUIRE(bin.block_offsets.back() == static_cast<int64_t>(bin.values.size()));
  if (!isa_available(isa_)) return;

  // Blocked layout: element (row, col) of a [rows x N] operand at (col / VL * rows + row) * VL + col % VL.
  const int64_t vl = p.layout_floats(), np = p.n;
  auto at = [vl](int64_t rows, int64_t row, int64_t col) { return (col / vl * rows + row) * vl + col % vl; };
  std::mt19937 rng(seed_ + 7);
  std::normal_distribution<float> normal;
  std::vector<float> b(k_ * np, 0.0f), bias(m_);
  for (int64_t kk = 0; kk < k_; ++kk)
    for (int64_t j = 0; j < n_; ++j) b[at(k_, kk, j)] = normal(rng);
  for (float& x : bias) x = normal(rng);
  if (nan_in_b_) b[at(k_, k_ / 2, n_ / 2)] = std::numeric_limits<float>::quiet_NaN();
  const float sentinel = 12345.0f;
  const int64_t guard = 64;
  std::vector<float> c(m_ * np + guard, sentinel), res(residual_ ? m_ * np : 0, 0.0f);
  for (int64_t r = 0; residual_ && r < m_; ++r)
    for (int64_t j = 0; j < n_; ++j) res[at(m_, r, j)] = normal(rng);

  backend::JitKernel jit(bin.code);
  const int64_t tiles = p.num_tiles(), chunk = p.column_align();
  for (int part = 0; part < parts_; ++part) {
    const int64_t t0 = tiles * part / parts_, t1 = tiles * (part + 1) / parts_;
    if (t0 == t1) continue;
    // Column ranges at multiples of the column alignment; the last takes the remainder.
    const int64_t units = (np + chunk - 1) / chunk;
    for (int cp = 0; cp < col_parts_; ++cp) {
      const int64_t u0 = units * cp / col_parts_, u1 = units * (cp + 1) / col_parts_;
      const int64_t n0 = u0 * chunk, n1 = std::min(np, u1 * chunk);
      if (n0 >= n1) continue;
      for (int64_t kb = 0; kb < p.num_k_blocks(); ++kb) {
        sdnn_kernel_args args{};
        args.b = b.data() + n0 * k_;
        args.c = c.data() + n0 * m_;
        args.values = bin.values.data() + bin.block_offsets[kb * tiles + t0];
        args.bias = bias.data();
        args.n = n1 - n0;
        args.block_begin = kb * tiles + t0;
        args.block_end = kb * tiles + t1;
        args.residual = residual_ ? res.data() + n0 * m_ : nullptr;
        jit.fn()(&args);
      }
    }
  }
  for (int64_t r = 0; r < m_; ++r) {
    for (int64_t j = 0; j < n_; ++j) {
      double ref = bias_ ? bias[r] : 0.0;
      // Sparse kernels never read B for a zero weight; dense ones multiply it (0 * NaN = NaN).
      for (int64_t kk = 0; kk < k_; ++kk)
        if (w[r * k_ + kk] != 0.0f || family_ == backend::Family::Dense)
          ref += static_cast<double>(w[r * k_ + kk]) * b[at(k_, kk, j)];
      if (residual_) ref += res[at(m_, r, j)];
      if (relu_ || relu6_) ref = std::max(ref, 0.0);  // (a < b) ? b : a keeps a NaN a
      if (relu6_) ref = std::min(ref, 6.0);
      const float got = c[at(m_, r, j)];
      if (std::isnan(ref) != std::isnan(got)) FAIL("C[" << r << "][" << j << "] = " << got << ", expected " << ref);
      if (std::isnan(ref)) continue;
      if (std::fabs(got - ref) > 1e-4 + 1e-4 * std::fabs(ref)) {
        FAIL("C[" << r << "][" << j << "] = " << got << ", expected " << ref);
      }
    }
  }
  for (int64_t i = m_ * np; i < m_ * np + guard; ++i)
    if (c[i] != sentinel) FAIL("the kernel wrote past the end of C (float " << i - m_ * np << " after it)");
  SUCCEED();
}

}  // namespace sdnn::test
