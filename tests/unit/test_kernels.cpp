// test_kernels.cpp — generated SpMM and dense kernels against the naive reference, on both ISAs,
// over the edge cases named in each section; plus determinism / position independence of the bytes.
#include <catch2/catch.hpp>

#include <cstring>

#include "kernel_tester.h"

using sdnn::backend::Family;
using sdnn::backend::Isa;
using sdnn::test::KernelTester;

namespace {
const Isa kIsas[] = {Isa::Avx512, Isa::Avx2};
}

TEST_CASE("spmm: shapes around the tile", "[spmm]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(5).k(9).n(16).Test();            // m_lt_mb
      KernelTester().isa(isa).m(29).k(33).n(16).Test();          // m_gt_mb, one row in the last tile
      KernelTester().isa(isa).m(64).k(64).n(40).Test();          // n not a multiple of the vector
      KernelTester().isa(isa).m(17).k(23).n(3).Test();           // n smaller than one vector
      KernelTester().isa(isa).m(17).k(23).n(1).Test();           // n = 1
      KernelTester().isa(isa).m(40).k(50).n(37).Test();          // n = 2 vectors + a partial one
      KernelTester().isa(isa).m(40).k(50).n(300).Test();         // many chunks
      KernelTester().isa(isa).m(1).k(1).n(1).sparsity(0.0).Test();
    }
  }
}

TEST_CASE("spmm: patterns", "[spmm]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(48).k(40).n(24).empty_rows(true).Test();
      KernelTester().isa(isa).m(20).k(30).n(24).sparsity(1.0).Test();  // all-zero matrix
      KernelTester().isa(isa).m(20).k(30).n(24).sparsity(1.0).bias(true).relu(true).Test();
      KernelTester().isa(isa).m(33).k(70).n(20).dense_rows(true).Test();
      for (double s : {0.5, 0.7, 0.9, 0.95, 0.99})
        KernelTester().isa(isa).m(96).k(128).n(48).sparsity(s).seed(static_cast<uint32_t>(s * 100)).Test();
      // Long rows: the values register is rebased many times inside one block.
      KernelTester().isa(isa).m(30).k(600).n(16).sparsity(0.3).Test();
    }
  }
}

TEST_CASE("spmm: split-K boundaries and epilogue", "[spmm]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(40).k(64).n(20).k_block(16).Test();             // k multiple of the block
      KernelTester().isa(isa).m(40).k(65).n(20).k_block(16).Test();             // one-column last block
      KernelTester().isa(isa).m(40).k(63).n(20).k_block(16).bias(true).relu(true).Test();
      KernelTester().isa(isa).m(40).k(50).n(33).k_block(1).bias(true).Test();   // k_block = 1
      KernelTester().isa(isa).m(40).k(20).n(9).k_block(20).bias(true).relu(true).Test();
    }
  }
}

TEST_CASE("spmm: tile shapes", "[spmm]") {
  KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(8).nb(3).Test();
  KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(4).nb(4).bias(true).relu(true).Test();
  KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(1).nb(1).Test();
  KernelTester().isa(Isa::Avx2).m(50).k(40).n(70).mb(6).nb(2).bias(true).relu(true).Test();
  KernelTester().isa(Isa::Avx2).m(50).k(40).n(70).mb(14).nb(1).Test();
  // 14 rows fill all 16 ymm registers (14 accumulators, B, broadcast): every epilogue, K blocks,
  // groups, prefetch and a thread-like split still fit.
  KernelTester().isa(Isa::Avx2).m(60).k(300).n(150).mb(14).k_block(64).n_group(4).bias(true).relu6(true)
      .prefetch(sdnn::backend::kPrefetchB | sdnn::backend::kPrefetchC).split(2, 3).Test();
  KernelTester().isa(Isa::Avx2).m(29).k(90).n(40).mb(14).k_block(32).bias(true).relu(true).shuffle_rows(true).Test();
  CHECK_THROWS(KernelTester().isa(Isa::Avx2).m(50).k(40).n(70).mb(15).nb(1).Test());  // register budget
  CHECK_THROWS(KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(10).nb(3).Test());
}

TEST_CASE("spmm and dense: column chunk groups", "[spmm][dense]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      for (Family f : {Family::Spmm, Family::Dense}) {
        KernelTester().family(f).isa(isa).m(40).k(50).n(128).n_group(4).bias(true).Test();  // groups only
        KernelTester().family(f).isa(isa).m(40).k(50).n(150).n_group(4).relu(true).Test();  // groups, chunks, vectors
        KernelTester().family(f).isa(isa).m(40).k(50).n(20).n_group(4).Test();              // fewer columns than a group
        KernelTester().family(f).isa(isa).m(60).k(70).n(300).n_group(3).nb(2).mb(6).k_block(16).split(2, 3).Test();
      }
    }
  }
}

TEST_CASE("spmm: default column groups and code prefetch by pattern size", "[spmm]") {
  using sdnn::backend::Activation;
  auto plan = [](Isa isa, int64_t m, int64_t k, int64_t n, double density) {
    sdnn::backend::KernelPlan p = sdnn::backend::default_plan(Family::Spmm, isa, m, k, n, false, Activation::None);
    sdnn::backend::group_columns(p, static_cast<int64_t>(density * static_cast<double>(m * k)));
    return p;
  };
  // Small patterns: K blocks of 256, 2 zmm / 4 ymm chunks (32 KiB of B strips).
  auto p = plan(Isa::Avx512, 512, 512, 128, 0.1);
  CHECK(p.n_group == 2);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx2, 512, 512, 128, 0.1);
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx512, 256, 200, 128, 0.1);  // K below a block: one k block
  CHECK(p.n_group == 2);
  CHECK(p.k_block == 200);
  p = plan(Isa::Avx2, 256, 512, 16, 0.1);  // two ymm chunks only
  CHECK(p.n_group == 2);
  p = plan(Isa::Avx512, 256, 512, 16, 0.1);  // one chunk: nothing to group
  CHECK(p.n_group == 1);
  CHECK(p.k_block == 512);
  // Big patterns: L2-resident groups of 16.
  p = plan(Isa::Avx512, 2048, 2048, 2048, 0.3);
  CHECK(p.n_group == 16);
  CHECK(p.k_block == 256);
  // Big but at most 15 % dense: the small patterns' plan (B strips in L1), at any size.
  p = plan(Isa::Avx512, 1024, 1024, 512, 0.1);
  CHECK(p.n_group == 2);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx512, 2048, 2048, 2048, 0.15);
  CHECK(p.n_group == 2);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx512, 2048, 2048, 2048, 0.2);  // above 15 %: L2-resident groups
  CHECK(p.n_group == 16);
  p = plan(Isa::Avx512, 512, 2048, 64, 0.1);  // 4 chunks: one L2-resident group over all columns
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 512);
  p = plan(Isa::Avx2, 512, 2048, 32, 0.1);  // 4 ymm chunks: their 256-row strips fit L1
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx2, 1024, 1024, 512, 0.1);
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 256);
  CHECK(p.mb == 14);
  // ymm above 15 % density: 8 chunks of 128-row K blocks (small and big patterns); not with
  // fewer than 8 chunks, K below 256, zmm, or 16-chunk groups.
  p = plan(Isa::Avx2, 512, 512, 128, 0.3);
  CHECK(p.n_group == 8);
  CHECK(p.k_block == 128);
  p = plan(Isa::Avx2, 256, 256, 128, 0.3);
  CHECK(p.n_group == 8);
  CHECK(p.k_block == 128);
  p = plan(Isa::Avx2, 512, 512, 48, 0.3);  // 6 chunks
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx2, 256, 200, 128, 0.3);
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 200);
  p = plan(Isa::Avx512, 512, 512, 128, 0.3);
  CHECK(p.n_group == 4);
  CHECK(p.k_block == 256);
  p = plan(Isa::Avx2, 1024, 2048, 512, 0.3);
  CHECK(p.n_group == 16);
  CHECK(p.k_block == 256);
  // Code prefetch from 192 KiB of code and values (about 16K nonzeros) on; B prefetch always.
  using sdnn::backend::kPrefetchB;
  using sdnn::backend::kPrefetchCode;
  CHECK(plan(Isa::Avx512, 512, 512, 128, 0.1).prefetch == (kPrefetchB | kPrefetchCode));  // 26K nonzeros
  CHECK(plan(Isa::Avx2, 256, 256, 128, 0.3).prefetch == (kPrefetchB | kPrefetchCode));    // 19.7K
  CHECK(plan(Isa::Avx512, 256, 512, 128, 0.1).prefetch == kPrefetchB);                    // 13K
  CHECK(plan(Isa::Avx512, 512, 512, 128, 0.05).prefetch == kPrefetchB);
  // Direct convolutions and dense plans are never grouped here.
  sdnn::backend::KernelPlan d = sdnn::backend::default_plan(Family::Dense, Isa::Avx512, 512, 512, 128, false,
                                                            Activation::None);
  sdnn::backend::group_columns(d, 512 * 512);
  CHECK(d.n_group == 1);
  CHECK(d.prefetch == 0);
}

TEST_CASE("spmm: software prefetch of the next group changes no result", "[spmm]") {
  using sdnn::backend::kPrefetchB;
  using sdnn::backend::kPrefetchC;
  using sdnn::backend::kPrefetchCode;
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      for (int pf : {0, kPrefetchB, kPrefetchC, kPrefetchB | kPrefetchC, kPrefetchCode, kPrefetchB | kPrefetchC | kPrefetchCode}) {
        KernelTester().isa(isa).m(70).k(90).n(150).prefetch(pf).bias(true).Test();  // chunks and vectors
        KernelTester().isa(isa).m(70).k(90).n(300).n_group(4).k_block(32).prefetch(pf).relu(true).split(2, 3).Test();
        KernelTester().isa(isa).m(30).k(50).n(100).nb(2).mb(6).n_group(2).prefetch(pf).shuffle_rows(true).Test();
        KernelTester().isa(isa).m(9).k(3).n(8).prefetch(pf).Test();  // fewer rows than tiles need
        // Long K: the AVX-512 body rebases the B register past row 127 (also for the second
        // vector of 2-vector tiles, in K blocks starting past row 128, and under the prefetches).
        KernelTester().isa(isa).m(70).k(600).n(300).nb(2).mb(6).n_group(4).k_block(256).prefetch(pf).Test();
        KernelTester().isa(isa).m(40).k(1100).n(64).n_group(2).k_block(512).prefetch(pf).split(2, 2).Test();
      }
      // The prefetches are really emitted (and only for the sparse family).
      KernelTester t;
      t.isa(isa).m(70).k(90).n(150);
      auto w = t.weights();
      auto a = sdnn::backend::SparseMatrix::from_dense(w.data(), 70, 90);
      auto with = t.prefetch(kPrefetchB | kPrefetchC).plan(), without = t.prefetch(0).plan();
      CHECK(sdnn::backend::emit_kernel(with, a, "k").code.size() > sdnn::backend::emit_kernel(without, a, "k").code.size());
      CHECK(with.str().find(" pf=bc") != std::string::npos);
      CHECK(without.str().find(" pf") == std::string::npos);
      // Code prefetch: each block's body carries rip-relative prefetcht1 (0f 18 15 disp32) of the
      // next block's code: the first at its start, then every 256 bytes, covering it to its end
      // (within one stride); the last block has none, and none without the bit.
      auto code_pf = t.prefetch(kPrefetchCode).plan();
      CHECK(code_pf.str().find(" pf=i") != std::string::npos);
      CHECK(sdnn::test::code_prefetches(sdnn::backend::emit_kernel(without, a, "k").code).empty());
      for (int nb : {1, 2}) {
        auto plan = t.prefetch(kPrefetchCode).plan();
        plan.nb = nb;
        plan.mb = nb == 1 ? plan.mb : 6;
        plan.embedded_broadcast = nb > 1;
        INFO("nb " << nb);
        sdnn::test::check_code_prefetch_coverage(sdnn::backend::emit_kernel(plan, a, "k"));
      }
    }
  }
}

TEST_CASE("spmm: split across tile and column ranges like a multi-thread context", "[spmm]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(200).k(64).n(100).split(3, 1).Test();
      KernelTester().isa(isa).m(200).k(64).n(100).split(2, 3).k_block(24).bias(true).Test();
      KernelTester().isa(isa).m(20).k(64).n(100).split(5, 2).relu(true).Test();
    }
  }
}

TEST_CASE("dense: register-blocked GEMM", "[dense]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().family(Family::Dense).isa(isa).m(64).k(64).n(64).sparsity(0.0).Test();
      KernelTester().family(Family::Dense).isa(isa).m(7).k(5).n(3).sparsity(0.0).Test();
      KernelTester().family(Family::Dense).isa(isa).m(37).k(29).n(41).sparsity(0.2).bias(true).relu(true).Test();
      KernelTester().family(Family::Dense).isa(isa).m(37).k(29).n(41).k_block(8).bias(true).Test();
      KernelTester().family(Family::Dense).isa(isa).m(50).k(30).n(70).split(3, 2).Test();
    }
  }
}

TEST_CASE("kernels: the same plan emits identical bytes twice", "[spmm][aot]") {
  for (Isa isa : kIsas) {
    for (Family f : {Family::Spmm, Family::Dense}) {
      KernelTester t;
      t.family(f).isa(isa).m(60).k(70).n(50).bias(true).relu(true).k_block(32);
      auto w = t.weights();
      auto a = sdnn::backend::SparseMatrix::from_dense(w.data(), 60, 70);
      auto x = sdnn::backend::emit_kernel(t.plan(), a, "k");
      auto y = sdnn::backend::emit_kernel(t.plan(), a, "k");
      CHECK(x.code == y.code);
      CHECK(x.values == y.values);
      CHECK(!x.code.empty());
    }
  }
}

TEST_CASE("spmm: AVX-512 multi-vector tiles with embedded broadcasts", "[spmm]") {
  KernelTester t;
  t.isa(Isa::Avx512).m(50).k(40).n(70).mb(15).nb(2).bias(true).relu(true);
  auto p = t.plan();
  p.embedded_broadcast = true;
  // The tester builds its own plan; check the register budget admits 15x2 (one set of B
  // registers) only with embedded broadcasts, and that 14x2 / 13x2 with a broadcast register run.
  CHECK_NOTHROW(KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(13).nb(2).Test());
  CHECK_NOTHROW(KernelTester().isa(Isa::Avx512).m(50).k(40).n(70).mb(14).nb(2).bias(true).Test());
  CHECK_NOTHROW(KernelTester().isa(Isa::Avx512).m(70).k(40).n(70).mb(31).nb(1).relu(true).Test());
  auto w = t.weights();
  auto a = sdnn::backend::SparseMatrix::from_dense(w.data(), 50, 40);
  CHECK_NOTHROW(sdnn::backend::emit_kernel(p, a, "k"));
  p.embedded_broadcast = false;
  CHECK_THROWS(sdnn::backend::emit_kernel(p, a, "k"));
}

TEST_CASE("spmm and dense: rows tiled in a permuted order still land in their own rows", "[spmm][dense]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(61).k(40).n(37).shuffle_rows(true).bias(true).relu(true).Test();
      KernelTester().isa(isa).m(61).k(40).n(37).shuffle_rows(true).k_block(16).bias(true).split(2, 2).Test();
      KernelTester().family(Family::Dense).isa(isa).m(30).k(20).n(20).shuffle_rows(true).bias(true).Test();
    }
  }
  auto p = KernelTester().m(5).k(5).n(16).plan();
  p.row_order = {0, 1, 2, 2, 4};
  std::vector<float> w(25, 1.0f);
  auto a = sdnn::backend::SparseMatrix::from_dense(w.data(), 5, 5);
  CHECK_THROWS_WITH(sdnn::backend::emit_kernel(p, a, "k"), Catch::Matchers::Contains("not a permutation"));
}

TEST_CASE("spmm and dense: a NaN in B stays NaN through the bias and ReLU / ReLU6 epilogue", "[spmm][dense]") {
  // As the unfused Relu and Clip steps and ONNX Runtime: max(0, NaN) and min(6, NaN) are NaN.
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      KernelTester().isa(isa).m(40).k(64).n(37).sparsity(0.5).bias(true).relu(true).nan_in_b(true).Test();
      KernelTester().isa(isa).m(40).k(64).n(37).sparsity(0.5).k_block(16).relu6(true).nan_in_b(true).Test();
      KernelTester().isa(isa).m(30).k(32).n(40).sparsity(0.7).nb(2).mb(6).relu(true).nan_in_b(true).Test();
      KernelTester().family(Family::Dense).isa(isa).m(30).k(64).n(20).sparsity(0.0).bias(true).relu6(true)
          .nan_in_b(true).Test();
    }
  }
}

TEST_CASE("spmm and dense: ReLU6 epilogue clamps to [0, 6]", "[spmm][dense]") {
  for (Isa isa : kIsas) {
    SECTION(std::string(sdnn::backend::to_string(isa))) {
      // Dense rows make sums large enough that both bounds are hit.
      KernelTester().isa(isa).m(40).k(64).n(37).sparsity(0.3).bias(true).relu6(true).Test();
      KernelTester().isa(isa).m(40).k(64).n(37).sparsity(0.5).k_block(16).relu6(true).Test();
      KernelTester().family(Family::Dense).isa(isa).m(30).k(64).n(20).sparsity(0.0).bias(true).relu6(true).Test();
    }
  }
}

// The tuner's ISA candidates inside an AVX-512 model: ymm kernels on the model's 16-float blocked
// layout (plan.layout_vl = 16, each ymm half of a layout block). Tiles of 2 and 4 ymm, groups,
// K blocks, every prefetch, permuted rows, thread-like splits, each epilogue with a residual and
// NaN propagation, N off the layout's vector width; and the plans the emitter must refuse.
TEST_CASE("spmm: AVX2 kernels on the AVX-512 layout (the tuner's ISA candidates)", "[spmm]") {
  using sdnn::backend::kPrefetchB;
  using sdnn::backend::kPrefetchC;
  using sdnn::backend::kPrefetchCode;
  auto t = [] { return KernelTester().isa(Isa::Avx2).layout_vl(16); };
  t().m(50).k(40).n(70).mb(6).nb(2).Test();
  t().m(50).k(40).n(9).mb(6).nb(2).bias(true).relu(true).Test();                    // N below one block
  t().m(29).k(33).n(16).mb(2).nb(4).bias(true).Test();                              // 4 ymm: two blocks a chunk
  t().m(40).k(50).n(150).mb(2).nb(4).n_group(2).relu6(true).Test();                 // groups, then one block
  t().m(60).k(300).n(150).mb(6).nb(2).k_block(64).n_group(4).bias(true).relu6(true)
      .prefetch(kPrefetchB | kPrefetchC).split(2, 3).Test();
  t().m(96).k(700).n(64).mb(6).nb(2).k_block(128).n_group(2).prefetch(kPrefetchB | kPrefetchCode).Test();
  t().m(61).k(40).n(37).mb(6).nb(2).shuffle_rows(true).k_block(16).bias(true).split(2, 2).Test();
  t().m(40).k(64).n(37).mb(6).nb(2).sparsity(0.5).bias(true).relu(true).nan_in_b(true).Test();
  t().m(40).k(64).n(48).mb(6).nb(2).bias(true).residual(true).relu(true).k_block(16).Test();
  t().m(30).k(600).n(16).mb(6).nb(2).sparsity(0.3).residual(true).Test();          // values rebased
  // The same plans on the ISA's own layout still run (and residuals on every ISA).
  for (Isa isa : kIsas)
    KernelTester().isa(isa).m(40).k(64).n(48).bias(true).residual(true).relu6(true).k_block(16).split(2, 2).Test();
  // Refused: an odd nb (a chunk would end inside a layout block), AVX-512 vectors, dense plans.
  CHECK_THROWS_WITH(t().m(50).k(40).n(70).mb(14).nb(1).Test(), Catch::Matchers::Contains("even nb"));
  CHECK_THROWS_WITH(KernelTester().isa(Isa::Avx512).layout_vl(16).m(50).k(40).n(70).Test(),
                    Catch::Matchers::Contains("needs AVX2"));
  CHECK_THROWS(t().family(Family::Dense).m(50).k(40).n(70).mb(6).nb(2).Test());
}
