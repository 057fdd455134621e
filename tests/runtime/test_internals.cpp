// test_internals.cpp — runtime_min's pure helpers, linked statically: the kernel work split
// (partition.c) over a grid of shapes and thread counts, the pack / unpack ops against the blocked
// layout formula (ops.c), and the SDNN_CPU_DISABLE list parser.
//
// Split invariants (partition.h): tasks stay in bounds, are pairwise disjoint and their areas sum
// to the whole step (together: an exact cover), column cuts sit on n_align multiples, thread
// ownership ranges are consistent; plus balance and "small steps stay on one thread".
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

extern "C" {
#include "cpu.h"
#include "ops.h"
#include "partition.h"
}

namespace {

struct StepShape {
  int64_t tiles, k_blocks, n, n_align, batch;
  uint32_t split = SDNN_SPLIT_ROWS;  // sdnn_kernel_split_policy
};

// Nonzeros per block: uneven, some blocks empty.
std::vector<int64_t> make_offsets(const StepShape& s, uint32_t seed) {
  std::vector<int64_t> offsets(static_cast<size_t>(s.tiles * s.k_blocks + 1), 0);
  for (size_t i = 1; i < offsets.size(); ++i) {
    const uint32_t h = (static_cast<uint32_t>(i) * 2654435761u) ^ seed;
    offsets[i] = offsets[i - 1] + (h % 5 == 0 ? 0 : h % 400);
  }
  return offsets;
}

sdnn_kernel_step make_step(const StepShape& s, const std::vector<int64_t>& offsets) {
  sdnn_kernel_step step{};
  step.block_offsets = offsets.data();
  step.num_tiles = s.tiles;
  step.num_k_blocks = s.k_blocks;
  step.n = s.n;
  step.n_align = s.n_align;
  step.batch = s.batch;
  step.split = s.split;
  return step;
}

int64_t tile_weight(const sdnn_kernel_step& k, int64_t t) {
  int64_t w = SDNN_TILE_OVERHEAD;
  for (int64_t kb = 0; kb < k.num_k_blocks; ++kb)
    w += k.block_offsets[kb * k.num_tiles + t + 1] - k.block_offsets[kb * k.num_tiles + t];
  return w;
}

// Work of each thread: sum over its tasks of batch items x columns x tile weights.
std::vector<double> thread_work(const sdnn_kernel_step& k, const sdnn_kernel_split& split) {
  std::vector<double> work(static_cast<size_t>(split.num_threads), 0.0);
  for (int thread = 0; thread < split.num_threads; ++thread)
    for (int64_t i = split.first[thread]; i < split.first[thread + 1]; ++i) {
      const sdnn_kernel_task& t = split.tasks[i];
      int64_t weight = 0;
      for (int64_t tile = t.t0; tile < t.t1; ++tile) weight += tile_weight(k, tile);
      work[thread] += static_cast<double>(t.b1 - t.b0) * static_cast<double>(t.n1 - t.n0) * weight;
    }
  return work;
}

bool overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1) { return a0 < b1 && b0 < a1; }

// First violated invariant of the split, or "" when it is valid.
std::string split_violation(const StepShape& s, int max_threads, const sdnn_kernel_split& split) {
  if (split.num_threads < 1 || split.num_threads > max_threads) return "thread count";
  if (split.first[0] != 0) return "first[0] != 0";
  for (int t = 0; t < split.num_threads; ++t) {
    if (split.first[t] > split.first[t + 1]) return "first[] decreases";
    if (split.first[t + 1] - split.first[t] > 5) return "more than 5 tasks for a thread (5 * threads allocated)";
  }
  const int64_t num_tasks = split.first[split.num_threads];
  double area = 0;
  for (int64_t i = 0; i < num_tasks; ++i) {
    const sdnn_kernel_task& t = split.tasks[i];
    if (t.b0 < 0 || t.b0 >= t.b1 || t.b1 > s.batch || t.n0 < 0 || t.n0 >= t.n1 || t.n1 > s.n ||
        t.t0 < 0 || t.t0 >= t.t1 || t.t1 > s.tiles)
      return "task " + std::to_string(i) + " out of bounds or empty";
    if (t.n0 % s.n_align != 0 || (t.n1 % s.n_align != 0 && t.n1 != s.n))
      return "task " + std::to_string(i) + " cuts columns off n_align";
    area += static_cast<double>(t.b1 - t.b0) * static_cast<double>(t.n1 - t.n0) *
            static_cast<double>(t.t1 - t.t0);
    for (int64_t j = 0; j < i; ++j) {
      const sdnn_kernel_task& u = split.tasks[j];
      if (overlap(t.b0, t.b1, u.b0, u.b1) && overlap(t.n0, t.n1, u.n0, u.n1) &&
          overlap(t.t0, t.t1, u.t0, u.t1))
        return "tasks " + std::to_string(j) + " and " + std::to_string(i) + " overlap";
    }
  }
  const bool empty = s.tiles == 0 || s.n == 0 || s.batch == 0 || s.k_blocks == 0;
  const double expected = empty ? 0.0 : static_cast<double>(s.batch * s.n * s.tiles);
  if (area != expected) return "tasks do not cover the step";
  return "";
}

void check_split_invariants(const StepShape& s, int max_threads) {
  const std::vector<int64_t> offsets = make_offsets(s, 7u);
  const sdnn_kernel_step step = make_step(s, offsets);
  sdnn_kernel_split split;
  REQUIRE(sdnn_kernel_split_init(&split, &step, max_threads) == 0);
  const std::string violation = split_violation(s, max_threads, split);
  sdnn_kernel_split_free(&split);
  if (!violation.empty())
    FAIL(violation << " (tiles " << s.tiles << ", k_blocks " << s.k_blocks << ", n " << s.n
                   << ", n_align " << s.n_align << ", batch " << s.batch << ", max_threads "
                   << max_threads << ")");
}

double imbalance(const StepShape& s, int threads, int* used) {
  const std::vector<int64_t> offsets = make_offsets(s, 11u);
  const sdnn_kernel_step step = make_step(s, offsets);
  sdnn_kernel_split split;
  REQUIRE(sdnn_kernel_split_init(&split, &step, threads) == 0);
  const std::vector<double> work = thread_work(step, split);
  *used = split.num_threads;
  sdnn_kernel_split_free(&split);
  double total = 0, worst = 0;
  for (double w : work) {
    total += w;
    worst = std::max(worst, w);
  }
  return worst / (total / static_cast<double>(work.size()));
}

// Whether every thread got all tiles (a pure column split).
bool column_split(const StepShape& s, int threads) {
  const std::vector<int64_t> offsets = make_offsets(s, 11u);
  const sdnn_kernel_step step = make_step(s, offsets);
  sdnn_kernel_split split;
  REQUIRE(sdnn_kernel_split_init(&split, &step, threads) == 0);
  bool all = split.num_threads == threads;
  for (int64_t i = 0; i < split.first[split.num_threads]; ++i)
    all = all && split.tasks[i].t0 == 0 && split.tasks[i].t1 == s.tiles;
  sdnn_kernel_split_free(&split);
  return all;
}

// Whether the split is by columns with boundary units cut by tiles: every task runs all tiles
// or part of them on at most one n_align unit of one batch item, some task the latter, and the
// threads' columns (batch-major positions) follow each other, overlapping in at most one unit.
bool column_cut_split(const StepShape& s, int threads) {
  const std::vector<int64_t> offsets = make_offsets(s, 11u);
  const sdnn_kernel_step step = make_step(s, offsets);
  sdnn_kernel_split split;
  REQUIRE(sdnn_kernel_split_init(&split, &step, threads) == 0);
  bool shape = split.num_threads == threads, cut = false;
  int64_t previous_end = 0;
  for (int thread = 0; thread < split.num_threads; ++thread) {
    int64_t begin = INT64_MAX, end = 0;
    for (int64_t i = split.first[thread]; i < split.first[thread + 1]; ++i) {
      const sdnn_kernel_task& t = split.tasks[i];
      begin = std::min(begin, t.b0 * s.n + t.n0);
      end = std::max(end, (t.b1 - 1) * s.n + t.n1);
      if (t.t0 == 0 && t.t1 == s.tiles) continue;
      cut = true;
      shape = shape && t.b1 - t.b0 == 1 && t.n1 - t.n0 <= s.n_align;
    }
    shape = shape && begin >= previous_end - s.n_align;
    previous_end = end;
  }
  sdnn_kernel_split_free(&split);
  return shape && cut;
}

}  // namespace

TEST_CASE("kernel split covers the step exactly once, on n_align boundaries", "[partition]") {
  for (int64_t tiles : {0, 1, 2, 3, 5, 9, 17, 64, 200})
    for (int64_t k_blocks : {1, 3})
      for (int64_t n : {1, 7, 16, 100, 3136})
        for (int64_t n_align : {1, 8, 16, 64})
          for (int64_t batch : {1, 2, 5})
            for (int threads : {1, 2, 3, 4, 7, 16, 64})
              for (uint32_t policy : {SDNN_SPLIT_ROWS, SDNN_SPLIT_COLUMNS})
                check_split_invariants({tiles, k_blocks, n, n_align, batch, policy}, threads);
  check_split_invariants({4, 0, 100, 8, 1}, 4);
  check_split_invariants({4, 2, 0, 8, 1}, 4);
  check_split_invariants({4, 2, 100, 8, 0}, 4);
  check_split_invariants({3, 1, 1 << 20, 16, 1}, 1024);
}

TEST_CASE("kernel split balances nonzeros", "[partition]") {
  int used = 0;
  SECTION("many tiles: row-tile split") {
    CHECK(imbalance({256, 2, 512, 16, 1}, 4, &used) < 1.10);
    CHECK(used == 4);
  }
  SECTION("a tile a thread boundary falls inside is cut by columns") {
    // 37 tiles over 2 threads (M = 1024, 28-row tiles): whole tiles leave up to half a tile over.
    for (int threads : {2, 3})
      for (int64_t batch : {1, 2}) {
        CHECK(imbalance({37, 2, 512, 64, batch}, threads, &used) < 1.01);
        CHECK(used == threads);
        CHECK(imbalance({75, 2, 2048, 64, batch, SDNN_SPLIT_COLUMNS}, threads, &used) < 1.01);  // rows there too
      }
  }
  SECTION("a few tiles per thread: SDNN_SPLIT_COLUMNS splits columns between the threads") {
    const uint32_t cols = SDNN_SPLIT_COLUMNS;
    CHECK(imbalance({10, 2, 512, 32, 1, cols}, 2, &used) < 1.10);
    CHECK(used == 2);
    CHECK(column_split({10, 2, 512, 32, 1, cols}, 2));
    CHECK(!column_split({10, 2, 512, 32, 1}, 2));        // SDNN_SPLIT_ROWS: row tiles
    CHECK(!column_split({10, 2, 40, 32, 1, cols}, 2));   // two column units, not balanced: row tiles
    CHECK(column_split({37, 2, 512, 32, 1, cols}, 2));   // 18.5 tiles per thread, 256 columns each
    CHECK(!column_split({37, 2, 128, 32, 1, cols}, 2));  // the same with 64 columns each: rows
    CHECK(column_split({37, 2, 128, 32, 4, cols}, 2));   // ... unless a batch makes them 256
    CHECK(!column_split({50, 2, 512, 32, 1, cols}, 2));  // many tiles: row tiles
    CHECK(imbalance({10, 2, 200, 32, 3, cols}, 2, &used) < 1.10);  // a batch: items and columns
    CHECK(used == 2);
    CHECK(column_split({10, 2, 200, 32, 3, cols}, 2));
  }
  SECTION("SDNN_SPLIT_COLUMNS, column units that do not divide evenly: the boundary unit is cut by tiles") {
    // MobileNet V1's 14 x 14 1x1 convs: 19 tiles, 208 columns in units of 32 (6.5 units). Whole
    // units give 112 / 96 columns; a row split would make each thread read half its B from the
    // other core.
    const uint32_t cols = SDNN_SPLIT_COLUMNS;
    for (int threads : {2, 3, 4})
      for (int64_t batch : {1, 3}) {
        INFO("threads " << threads << " batch " << batch);
        // 3 threads, batch 3: one batch item each, a pure column split
        CHECK((column_cut_split({19, 2, 208, 32, batch, cols}, threads) ||
               (threads == 3 && batch == 3 && column_split({19, 2, 208, 32, batch, cols}, threads))));
        CHECK(imbalance({19, 2, 208, 32, batch, cols}, threads, &used) < 1.035);  // half a tile of a unit
        CHECK(used == threads);
        check_split_invariants({19, 2, 208, 32, batch, cols}, threads);
      }
    CHECK(imbalance({19, 2, 208, 32, 1, cols}, 2, &used) < 1.01);
    CHECK(!column_cut_split({19, 2, 208, 32, 1}, 2));  // SDNN_SPLIT_ROWS: row tiles
  }
  SECTION("fewer tiles than threads: columns are split too") {
    CHECK(imbalance({3, 2, 3136, 16, 1}, 4, &used) < 1.10);
    CHECK(used == 4);
    CHECK(imbalance({5, 1, 1024, 16, 1}, 8, &used) < 1.10);
    CHECK(used == 8);
  }
  SECTION("one tile, a batch: batch items and columns are split") {
    CHECK(imbalance({1, 1, 784, 16, 6}, 3, &used) < 1.10);
    CHECK(used == 3);
  }
}

namespace {

// A one-k-block step whose tiles have exactly these nonzero counts.
struct WeightedStep {
  std::vector<int64_t> offsets;
  StepShape shape;
  WeightedStep(const std::vector<int64_t>& nnz, int64_t n, int64_t n_align, int64_t batch, uint32_t policy)
      : shape{static_cast<int64_t>(nnz.size()), 1, n, n_align, batch, policy} {
    offsets.push_back(0);
    for (int64_t w : nnz) offsets.push_back(offsets.back() + w);
  }
};

struct SplitResult {
  std::string violation;
  double imbalance = 0;  // heaviest thread / mean over the threads used
  bool cut = false;      // some task runs one tile on part of the columns next to whole tiles
};

SplitResult split_weighted(const WeightedStep& w, int threads) {
  const sdnn_kernel_step step = make_step(w.shape, w.offsets);
  sdnn_kernel_split split;
  REQUIRE(sdnn_kernel_split_init(&split, &step, threads) == 0);
  SplitResult r;
  r.violation = split_violation(w.shape, threads, split);
  const std::vector<double> work = thread_work(step, split);
  double total = 0, worst = 0;
  for (double x : work) {
    total += x;
    worst = std::max(worst, x);
  }
  r.imbalance = worst / (total / static_cast<double>(work.size()));
  for (int64_t i = 0; i < split.first[split.num_threads]; ++i)
    r.cut = r.cut || (split.tasks[i].t1 == split.tasks[i].t0 + 1 && split.tasks[i].n1 - split.tasks[i].n0 < w.shape.n);
  sdnn_kernel_split_free(&split);
  return r;
}

}  // namespace

TEST_CASE("cut row splits: exact cover, never worse than whole tiles", "[partition]") {
  SECTION("one huge tile: two cuts in it, threads left empty") {
    for (int threads : {2, 3, 4, 8, 16, 64})
      for (int64_t batch : {1, 3}) {
        std::vector<int64_t> nnz(static_cast<size_t>(2 * threads), 10);
        nnz[static_cast<size_t>(threads)] = 1000000;
        const SplitResult r = split_weighted(WeightedStep(nnz, 3136, 16, batch, SDNN_SPLIT_ROWS), threads);
        INFO("threads " << threads << " batch " << batch);
        CHECK(r.violation.empty());
        CHECK(r.cut);
        // The huge tile is shared out to within a 16-column unit at each end of a share (196
        // units of it in all).
        CHECK(r.imbalance < 1.02 + threads / 196.0);
      }
  }
  SECTION("uniform tiles: cuts land on tile boundaries") {
    for (int threads : {2, 3, 4, 8}) {
      const SplitResult r =
          split_weighted(WeightedStep(std::vector<int64_t>(static_cast<size_t>(2 * threads), 500), 512, 64, 1,
                                      SDNN_SPLIT_ROWS), threads);
      CHECK(r.violation.empty());
      CHECK(!r.cut);
      CHECK(r.imbalance < 1.0001);
    }
  }
  SECTION("a narrow last column unit is costed by its columns") {
    // n = 80 in units of 64: the second unit holds 16 columns. Counting units, a cut looked
    // better than the whole-tile split (1.56 against 1.21).
    const SplitResult r = split_weighted(
        WeightedStep({923, 647, 3298, 1088, 675, 1034, 1492, 1591}, 80, 64, 1, SDNN_SPLIT_ROWS), 4);
    CHECK(r.violation.empty());
    CHECK(r.imbalance < 1.22);
  }
  SECTION("37 uneven tiles over 3 threads: the cut is taken and balances within 1 %") {
    std::vector<int64_t> nnz;
    for (int64_t t = 0; t < 37; ++t) nnz.push_back(1300 + t * 7919 % 400);
    for (int64_t batch : {1, 2}) {
      const SplitResult r = split_weighted(WeightedStep(nnz, 512, 64, batch, SDNN_SPLIT_ROWS), 3);
      CHECK(r.violation.empty());
      CHECK(r.cut);
      CHECK(r.imbalance < 1.01);
    }
  }
}

TEST_CASE("small kernel steps stay on one thread", "[partition]") {
  int used = 0;
  imbalance({2, 1, 16, 16, 1}, 8, &used);
  CHECK(used == 1);
}

TEST_CASE("SDNN_CPU_DISABLE list parsing", "[cpu]") {
  const uint32_t all = SDNN_CPU_AVX2 | SDNN_CPU_AVX512F | SDNN_CPU_AVX512BW;
  CHECK(sdnn_cpu_mask_features(all, nullptr) == all);
  CHECK(sdnn_cpu_mask_features(all, "") == all);
  CHECK(sdnn_cpu_mask_features(all, "avx512f") == SDNN_CPU_AVX2);
  CHECK(sdnn_cpu_mask_features(all, "avx2") == 0);
  CHECK(sdnn_cpu_mask_features(all, " Avx512F , sse4 ") == SDNN_CPU_AVX2);
  CHECK(sdnn_cpu_mask_features(all, "avx512,avx2x") == all);
  CHECK(sdnn_cpu_mask_features(all, ",,avx2,") == 0);
  CHECK(sdnn_cpu_mask_features(SDNN_CPU_AVX2, "avx512f") == SDNN_CPU_AVX2);
}

namespace {

// Offset of (column, feature) in the blocked layout [ceil(N/VL)][F][VL].
int64_t blocked_index(int64_t column, int64_t feature, int64_t f, int64_t vl) {
  return (column / vl) * f * vl + feature * vl + column % vl;
}

using PackFn = void (*)(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t);

// Packs `plain` (row-major [N][F] when rows, else [F][N]) block by block in two halves, checks
// every blocked element including the zero padding, unpacks in two halves and checks the round
// trip.
void check_pack_unpack(PackFn pack, PackFn unpack, bool rows, int64_t n, int64_t f, int64_t vl) {
  INFO((rows ? "rows" : "channels") << " n " << n << " f " << f << " vl " << vl);
  const int64_t blocks = (n + vl - 1) / vl;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> plain(static_cast<size_t>(n * f));
  for (size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<float>(i) + 0.5f;
  const auto plain_at = [&](int64_t column, int64_t feature) {
    return plain[static_cast<size_t>(rows ? column * f + feature : feature * n + column)];
  };

  std::vector<float> blocked(static_cast<size_t>(blocks * f * vl), nan);
  pack(blocked.data(), plain.data(), n, f, vl, 0, blocks / 2);
  pack(blocked.data(), plain.data(), n, f, vl, blocks / 2, blocks);
  bool packed_ok = true;
  for (int64_t column = 0; column < blocks * vl; ++column)
    for (int64_t feature = 0; feature < f; ++feature) {
      const float got = blocked[static_cast<size_t>(blocked_index(column, feature, f, vl))];
      const float want = column < n ? plain_at(column, feature) : 0.0f;
      packed_ok = packed_ok && got == want;
    }
  CHECK(packed_ok);

  std::vector<float> back(plain.size(), nan);
  unpack(back.data(), blocked.data(), n, f, vl, 0, blocks / 2);
  unpack(back.data(), blocked.data(), n, f, vl, blocks / 2, blocks);
  CHECK(back == plain);
  if (rows) return;
  std::vector<float> by_features(plain.size(), nan);  // the feature split of small images
  sdnn_unpack_channel_rows(by_features.data(), blocked.data(), n, f, vl, f / 3, f);
  sdnn_unpack_channel_rows(by_features.data(), blocked.data(), n, f, vl, 0, f / 3);
  CHECK(by_features == plain);
}

}  // namespace

TEST_CASE("pack and unpack follow the blocked layout, with zero padding", "[ops]") {
  for (int64_t vl : {1, 4, 8, 16})
    for (int64_t n : {1, 3, 8, 16, 17, 37})
      for (int64_t f : {1, 5, 16, 33}) {
        check_pack_unpack(sdnn_pack_rows, sdnn_unpack_rows, true, n, f, vl);
        check_pack_unpack(sdnn_pack_channels, sdnn_unpack_channels, false, n, f, vl);
      }
  // Unpacking many features goes 8 blocks at a time: ranges that split a group, a short last one.
  for (int64_t n : {16 * 8, 16 * 13 + 5, 49})
    check_pack_unpack(sdnn_pack_channels, sdnn_unpack_channels, false, n, 130, 16);
}
