// permute_rows.cpp — orders the rows of each sparse weight so rows that share nonzero columns
// fall into the same output tile, where they share the loads of B (SparseDNN, Algorithm 1).
//
// The kernel tiles rows in this order but reads each row's bias and writes each row of C at its
// original index, so the permutation never leaves the layer: no consumer changes. The pass
// records {row_order = [...], tile_loads = before -> after} on each sparse fc / conv1x1, where
// tile_loads is the cost it minimizes: the sum over tiles of the distinct columns the tile uses
// (one B load per column per column chunk). An order is kept only if it lowers that sum by at
// least kMinLoadSaving (permute_rows.h: scattered rows of C cost more than small savings bring).
//
// Orders tried (the one with the fewest tile loads wins):
//   greedy: the paper's — start from the row with most nonzeros, then repeatedly take the
//           remaining row whose columns overlap most with the previous row's;
//   tile:   the same, but overlap is counted against the union of the current tile's columns,
//           and each tile starts from the densest remaining row.
#include <algorithm>
#include <atomic>
#include <exception>
#include <cstdint>
#include <numeric>
#include <thread>

#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"
#include "sdnn/passes/permute_rows.h"

namespace sdnn::passes {
namespace {

// Column sets as bitsets, so an overlap is a few AND + popcount.
struct Bits {
  int64_t words;
  std::vector<uint64_t> data;  // rows x words
  Bits(int64_t rows, int64_t cols) : words((cols + 63) / 64), data(rows * ((cols + 63) / 64), 0) {}
  uint64_t* row(int64_t r) { return data.data() + r * words; }
  const uint64_t* row(int64_t r) const { return data.data() + r * words; }
};

Bits column_sets(const float* w, int64_t m, int64_t k) {
  Bits bits(m, k);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; ++c)
      if (w[r * k + c] != 0.0f) bits.row(r)[c / 64] |= uint64_t{1} << (c % 64);
  return bits;
}

// The pattern both ways: columns of each row (CSR) and rows of each column (CSC).
struct Pattern {
  std::vector<int64_t> row_ptr, col_ptr;
  std::vector<int32_t> cols, rows;
};

Pattern pattern_of(const float* w, int64_t m, int64_t k) {
  Pattern p;
  p.row_ptr.assign(m + 1, 0);
  p.col_ptr.assign(k + 1, 0);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; ++c)
      if (w[r * k + c] != 0.0f) {
        p.cols.push_back(static_cast<int32_t>(c));
        ++p.col_ptr[c + 1];
      }
  for (int64_t r = 0, at = 0; r < m; ++r) {
    for (int64_t c = 0; c < k; ++c) at += w[r * k + c] != 0.0f;
    p.row_ptr[r + 1] = at;
  }
  for (int64_t c = 0; c < k; ++c) p.col_ptr[c + 1] += p.col_ptr[c];
  p.rows.resize(p.cols.size());
  std::vector<int64_t> fill(p.col_ptr.begin(), p.col_ptr.end() - 1);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t i = p.row_ptr[r]; i < p.row_ptr[r + 1]; ++i) p.rows[fill[p.cols[i]]++] = static_cast<int32_t>(r);
  return p;
}

// Greedy order. overlap[r] counts the columns row r shares with the reference set: the previous
// row (paper) or the union of the current tile's rows (tile-aware); it is updated through the
// columns' row lists, so each pick costs O(m) for the argmax plus the rows of the new columns.
std::vector<int64_t> greedy(const Pattern& p, int64_t m, int64_t k, int64_t tile, bool tile_aware) {
  std::vector<int64_t> order;
  order.reserve(m);
  std::vector<bool> used(m, false), in_ref(k, false);
  std::vector<int64_t> overlap(m, 0);
  std::vector<int32_t> ref_cols;  // columns with in_ref set
  auto nnz = [&](int64_t r) { return p.row_ptr[r + 1] - p.row_ptr[r]; };
  auto clear_ref = [&] {
    for (int32_t c : ref_cols) {
      in_ref[c] = false;
      for (int64_t i = p.col_ptr[c]; i < p.col_ptr[c + 1]; ++i) --overlap[p.rows[i]];
    }
    ref_cols.clear();
  };
  for (int64_t i = 0; i < m; ++i) {
    const bool fresh = i == 0 || (tile_aware && i % tile == 0);  // pick the densest row
    if (fresh) clear_ref();
    int64_t pick = -1;
    for (int64_t r = 0; r < m; ++r) {
      if (used[r]) continue;
      if (pick < 0 || (fresh ? nnz(r) > nnz(pick)
                             : overlap[r] > overlap[pick] || (overlap[r] == overlap[pick] && nnz(r) > nnz(pick))))
        pick = r;
    }
    used[pick] = true;
    order.push_back(pick);
    if (!tile_aware) clear_ref();
    for (int64_t j = p.row_ptr[pick]; j < p.row_ptr[pick + 1]; ++j) {
      const int32_t c = p.cols[j];
      if (in_ref[c]) continue;
      in_ref[c] = true;
      ref_cols.push_back(c);
      for (int64_t q = p.col_ptr[c]; q < p.col_ptr[c + 1]; ++q) ++overlap[p.rows[q]];
    }
  }
  return order;
}

}  // namespace

int64_t tile_loads(const float* w, int64_t m, int64_t k, int64_t tile_height, const std::vector<int64_t>& order) {
  Bits bits = column_sets(w, m, k);
  std::vector<uint64_t> u(bits.words);
  int64_t total = 0;
  for (int64_t t0 = 0; t0 < m; t0 += tile_height) {
    std::fill(u.begin(), u.end(), 0);
    for (int64_t i = t0; i < std::min(m, t0 + tile_height); ++i) {
      const uint64_t* row = bits.row(order.empty() ? i : order[i]);
      for (int64_t j = 0; j < bits.words; ++j) u[j] |= row[j];
    }
    for (uint64_t x : u) total += __builtin_popcountll(x);
  }
  return total;
}

std::vector<int64_t> row_order(const float* w, int64_t m, int64_t k, int64_t tile_height, RowOrder method) {
  SDNN_CHECK(tile_height > 0);
  if (method == RowOrder::Identity) {
    std::vector<int64_t> id(m);
    std::iota(id.begin(), id.end(), 0);
    return id;
  }
  return greedy(pattern_of(w, m, k), m, k, tile_height, method == RowOrder::TileGreedy);
}

ChosenOrder choose_row_order(const float* w, int64_t m, int64_t k, int64_t tile_height, double min_saving) {
  ChosenOrder c;
  c.loads_before = c.loads_after = c.best_loads = tile_loads(w, m, k, tile_height, {});
  for (RowOrder method : {RowOrder::Greedy, RowOrder::TileGreedy}) {
    std::vector<int64_t> order = row_order(w, m, k, tile_height, method);
    const int64_t loads = tile_loads(w, m, k, tile_height, order);
    if (loads < c.loads_after) {
      c.loads_after = loads;
      c.order = std::move(order);
    }
  }
  c.best_loads = c.loads_after;
  if (static_cast<double>(c.loads_before - c.loads_after) < min_saving * static_cast<double>(c.loads_before)) {
    c.order.clear();  // not worth the scattered rows of C
    c.loads_after = c.loads_before;
  }
  return c;
}

namespace {

class PermuteRows : public Pass {
 public:
  explicit PermuteRows(int64_t tile_height) : tile_(tile_height) {}
  const char* name() const override { return "permute-rows"; }

  // The layers are independent: their orders are computed on all cores (each result depends
  // only on its weights, so the output does not depend on the thread count).
  bool run(ir::Graph& g) override {
    std::vector<ir::Node*> work;
    for (const auto& n : g.nodes())
      if ((n->op == "fc" || n->op == "conv1x1" || n->op == "conv_direct") && n->get_str("kernel", "") == "sparse")
        work.push_back(n.get());
    std::vector<ChosenOrder> chosen(work.size());
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto worker = [&] {
      for (size_t i; !failed && (i = next++) < work.size();) {
        try {
          const ir::Value* w = work[i]->inputs[1];
          chosen[i] = choose_row_order(w->f32->data(), w->shape[0], w->shape[1], tile_);
        } catch (...) {
          if (!failed.exchange(true)) error = std::current_exception();
        }
      }
    };
    const size_t threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), work.size());
    std::vector<std::thread> pool;
    for (size_t t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    for (size_t i = 0; i < work.size(); ++i) {
      work[i]->attrs["tile_loads"] = str_cat(chosen[i].loads_before, " -> ", chosen[i].loads_after,
                                             chosen[i].order.empty() && chosen[i].best_loads < chosen[i].loads_before
                                                 ? str_cat(" (best order ", chosen[i].best_loads, " not used)")
                                                 : std::string());
      if (!chosen[i].order.empty()) work[i]->attrs["row_order"] = chosen[i].order;
    }
    return !work.empty();
  }

 private:
  int64_t tile_;
};

}  // namespace

std::unique_ptr<Pass> make_permute_rows(int64_t tile_height) { return std::make_unique<PermuteRows>(tile_height); }

}  // namespace sdnn::passes
