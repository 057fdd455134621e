// kernel_tester.h — fluent tester for generated kernels against a naive double reference.
//
//   KernelTester().isa(Isa::Avx2).m(30).k(17).n(9).sparsity(0.9).k_block(8).Test();
// Builds random weights with the requested fraction of exact zeros (optionally empty rows or
// dense rows), emits the kernel, runs it in-process through the sdnn_kernel_args contract
// (k blocks in order, optionally split into tile ranges and column ranges as the runtime does),
// and compares every output with the reference. B and C are in the blocked layout the kernels
// use ([N/VL][rows][VL], N padded to VL); a guard region after C must stay untouched.
#pragma once

#include <catch2/catch.hpp>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "sdnn/backend/jit.h"
#include "sdnn/backend/kernel_emitter.h"

namespace sdnn::test {

bool cpu_has_avx512f();
bool cpu_has_avx2();
// True when the ISA runs here; otherwise WARNs (Catch2 v2 has no SKIP) and returns false.
bool isa_available(backend::Isa isa);

// The rip-relative prefetcht1 (0f 18 15 disp32) in generated code: (instruction offset, target).
std::vector<std::pair<int64_t, int64_t>> code_prefetches(const std::vector<uint8_t>& code);
// A kernel with kPrefetchCode: each block's body (first phase, KernelBinary::block_code)
// prefetches the next block's code, the first at its start, then every kCodePrefetchStride bytes,
// covering it to its end (within one stride); the last block prefetches none. Needs >= 3 blocks.
void check_code_prefetch_coverage(const backend::KernelBinary& bin);

class KernelTester {
 public:
  KernelTester& family(backend::Family f) { family_ = f; return *this; }
  KernelTester& isa(backend::Isa i) { isa_ = i; return *this; }
  KernelTester& m(int64_t v) { m_ = v; return *this; }
  KernelTester& k(int64_t v) { k_ = v; return *this; }
  KernelTester& n(int64_t v) { n_ = v; return *this; }
  KernelTester& mb(int v) { mb_ = v; return *this; }
  KernelTester& nb(int v) { nb_ = v; return *this; }
  KernelTester& k_block(int64_t v) { k_block_ = v; return *this; }
  KernelTester& n_group(int v) { n_group_ = v; return *this; }
  // Software prefetch mask (backend::kPrefetchB / kPrefetchC / kPrefetchCode); -1: the default plan's.
  KernelTester& prefetch(int v) { prefetch_ = v; return *this; }
  // Tile rows in a pseudo-random order (a permutation of 0..m-1 from the seed).
  KernelTester& shuffle_rows(bool b) { shuffle_rows_ = b; return *this; }
  KernelTester& sparsity(double s) { sparsity_ = s; return *this; }
  KernelTester& empty_rows(bool b) { empty_rows_ = b; return *this; }
  KernelTester& dense_rows(bool b) { dense_rows_ = b; return *this; }
  KernelTester& bias(bool b) { bias_ = b; return *this; }
  KernelTester& relu(bool b) { relu_ = b; return *this; }
  KernelTester& relu6(bool b) { relu6_ = b; return *this; }
  // B[k / 2][n / 2] = NaN: the rows that multiply it by a stored weight (every row for the dense
  // family, which also multiplies the zeros) must come out NaN in that column, through the bias
  // and the activation; all other outputs as usual.
  KernelTester& nan_in_b(bool b) { nan_in_b_ = b; return *this; }
  // Run as `parts` tile ranges x `col_parts` column ranges (as a multi-thread context would).
  KernelTester& split(int parts, int col_parts) { parts_ = parts; col_parts_ = col_parts; return *this; }
  KernelTester& seed(uint32_t s) { seed_ = s; return *this; }
  // plan.layout_vl: B and C in blocks of this many columns (16 with AVX2: the layout of an
  // AVX-512 model, each ymm half a block); 0: the ISA's vector width.
  KernelTester& layout_vl(int v) { layout_vl_ = v; return *this; }
  // A residual epilogue: C = act(A B + bias + R), R in C's layout (sdnn_kernel_args.residual).
  KernelTester& residual(bool b) { residual_ = b; return *this; }

  backend::KernelPlan plan() const;
  std::vector<float> weights() const;
  void Test() const;

 private:
  backend::Family family_ = backend::Family::Spmm;
  backend::Isa isa_ = backend::Isa::Avx512;
  int64_t m_ = 16, k_ = 16, n_ = 16;
  int mb_ = 0, nb_ = 0;  // 0: the default plan's
  int64_t k_block_ = 0;  // 0: the default plan's
  int n_group_ = 0;      // 0: the default plan's
  int prefetch_ = -1;    // -1: the default plan's
  bool shuffle_rows_ = false;
  double sparsity_ = 0.9;
  bool empty_rows_ = false, dense_rows_ = false, bias_ = false, relu_ = false, relu6_ = false, nan_in_b_ = false;
  int parts_ = 1, col_parts_ = 1;
  uint32_t seed_ = 1;
  int layout_vl_ = 0;
  bool residual_ = false;
};

}  // namespace sdnn::test
