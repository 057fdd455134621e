// permute_rows.cpp — orders the rows of each sparse weight so rows that share nonzero columns
// fall into the same output tile, where they share the loads of B (SparseDNN, Algorithm 1).
//
// The permutation is undone in one of two ways:
//   - in the consumer (the paper's network-level way): when the layer's output reaches exactly
//     one fc / conv1x1 as its input, through nothing but elementwise unary ops (relu, clip,
//     unary), and is not a graph output, the layer's weight rows and bias are physically
//     permuted and the consumer's weight columns permuted the same way. The kernel then writes
//     its rows in tile order (contiguous), the activation in between holds the features in that
//     order, and the consumer's result is unchanged. Recorded as {rows_permuted = [...]} on the
//     layer and {columns_permuted_for = <layer>} on the consumer; any saving is kept
//     (kMinAbsorbedSaving).
//   - in the kernel otherwise: it tiles rows in this order but reads each row's bias and writes
//     each row of C at its original index ({row_order = [...]}, the plan says "permuted"), so the
//     permutation never leaves the layer; the scattered rows of C cost more than small savings
//     bring, so an order is kept only if it saves at least kMinLoadSaving (permute_rows.h).
// Both record {tile_loads = before -> after} on each sparse fc / conv1x1 / direct conv, the cost
// the pass minimizes: the sum over tiles of the distinct columns the tile uses (one B load per
// column per column chunk). A consumer's own row order does not depend on its column order
// (permuting columns keeps each tile's count of distinct columns), so all orders are chosen
// first, in parallel, and the weights rewritten afterwards.
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

// The fc / conv1x1 that reads `layer`'s output as its input through unary elementwise ops only,
// each value on the way read by that one node and not a graph output; null when there is none.
ir::Node* sole_linear_consumer(const ir::Graph& g, const ir::Node* layer) {
  const ir::Value* v = layer->outputs[0];
  for (int hops = 0; hops < 8; ++hops) {
    if (g.is_graph_output(v)) return nullptr;
    const std::vector<ir::Node*> users = g.users(v);
    if (users.size() != 1) return nullptr;
    ir::Node* u = users[0];
    const bool elementwise = u->op == "relu" || u->op == "unary" || u->op == "clip";
    if (elementwise) {
      for (size_t i = 1; i < u->inputs.size(); ++i)  // clip's bounds: scalars only
        if (u->inputs[i] && (u->inputs[i] == v || u->inputs[i]->numel() != 1)) return nullptr;
      if (u->inputs.empty() || u->inputs[0] != v || u->outputs.size() != 1) return nullptr;
      v = u->outputs[0];
      continue;
    }
    // Same op as the layer: fc reads features in the last axis, conv1x1 in axis 1, so only then
    // are the consumer's columns the layer's rows (fc -> conv1x1 was silently wrong).
    if ((u->op != "fc" && u->op != "conv1x1") || u->op != layer->op || u->inputs.size() < 2 || u->inputs[0] != v)
      return nullptr;
    for (size_t i = 1; i < u->inputs.size(); ++i)
      if (u->inputs[i] == v) return nullptr;
    const ir::Value* w = u->inputs[1];
    if (!w || !w->f32 || w->shape.size() != 2 || w->shape[1] != layer->inputs[1]->shape[0]) return nullptr;
    return u;
  }
  return nullptr;
}

// Whether the layer's rows can move physically: a plain weight and bias, no residual operand
// (its rows would have to move too).
bool rows_can_move(const ir::Node* n) {
  if (n->inputs.size() > 3 && n->inputs[3]) return false;
  if (n->inputs.size() > 2 && n->inputs[2] && (!n->inputs[2]->f32 || n->inputs[2]->numel() != n->inputs[1]->shape[0]))
    return false;
  return n->inputs[1]->f32 && n->inputs[1]->shape.size() == 2;
}

// New constants (the old ones may be shared): rows of the layer's weight and bias in `order`,
// columns of the consumer's weight in the same order.
void absorb(ir::Graph& g, ir::Node* layer, ir::Node* consumer, const std::vector<int64_t>& order) {
  const ir::Value* w = layer->inputs[1];
  const int64_t m = w->shape[0], k = w->shape[1];
  std::vector<float> rows(static_cast<size_t>(m * k));
  for (int64_t i = 0; i < m; ++i)
    std::copy_n(w->f32->data() + order[i] * k, k, rows.data() + i * k);
  layer->inputs[1] = g.add_constant(w->name + ".rows_permuted", w->shape, std::move(rows));
  if (layer->inputs.size() > 2 && layer->inputs[2]) {
    const ir::Value* b = layer->inputs[2];
    std::vector<float> bias(static_cast<size_t>(m));
    for (int64_t i = 0; i < m; ++i) bias[i] = (*b->f32)[order[i]];
    layer->inputs[2] = g.add_constant(b->name + ".rows_permuted", b->shape, std::move(bias));
  }
  const ir::Value* w2 = consumer->inputs[1];
  const int64_t m2 = w2->shape[0];
  std::vector<float> cols(static_cast<size_t>(m2 * m));
  for (int64_t r = 0; r < m2; ++r)
    for (int64_t j = 0; j < m; ++j) cols[r * m + j] = (*w2->f32)[r * m + order[j]];
  consumer->inputs[1] = g.add_constant(w2->name + ".columns_permuted", w2->shape, std::move(cols));
  layer->attrs["rows_permuted"] = order;
  consumer->attrs["columns_permuted_for"] = layer->name;
}

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
    // Where the order can be undone in the consumer (fc / conv1x1 layers only); a consumer takes
    // at most one producer's order (it has one input).
    std::vector<ir::Node*> consumer(work.size(), nullptr);
    for (size_t i = 0; i < work.size(); ++i)
      if (work[i]->op != "conv_direct" && rows_can_move(work[i])) consumer[i] = sole_linear_consumer(g, work[i]);
    std::atomic<size_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto worker = [&] {
      for (size_t i; !failed && (i = next++) < work.size();) {
        try {
          const ir::Value* w = work[i]->inputs[1];
          const bool absorbable = consumer[i] != nullptr;
          chosen[i] = choose_row_order(w->f32->data(), w->shape[0], w->shape[1], tile_,
                                       absorbable ? kMinAbsorbedSaving : kMinLoadSaving);
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
    bool absorbed = false;
    for (size_t i = 0; i < work.size(); ++i) {
      work[i]->attrs["tile_loads"] = str_cat(chosen[i].loads_before, " -> ", chosen[i].loads_after,
                                             chosen[i].order.empty() && chosen[i].best_loads < chosen[i].loads_before
                                                 ? str_cat(" (best order ", chosen[i].best_loads, " not used)")
                                                 : std::string());
      if (chosen[i].order.empty()) continue;
      if (consumer[i]) {
        absorb(g, work[i], consumer[i], chosen[i].order);
        absorbed = true;
      } else {
        work[i]->attrs["row_order"] = chosen[i].order;
      }
    }
    if (absorbed) g.remove_dead();  // the weights in model order
    return !work.empty();
  }

 private:
  int64_t tile_;
};

}  // namespace

std::unique_ptr<Pass> make_permute_rows(int64_t tile_height) { return std::make_unique<PermuteRows>(tile_height); }

}  // namespace sdnn::passes
