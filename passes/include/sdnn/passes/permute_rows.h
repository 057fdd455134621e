// permute_rows.h — row orders for sparse weights (passes/src/permute_rows.cpp explains them).
// Exposed for the benchmarks and tests; the pipeline uses them through make_permute_rows().
#pragma once

#include <cstdint>
#include <vector>

namespace sdnn::passes {

enum class RowOrder { Identity, Greedy, TileGreedy };

// The rows of the row-major [m x k] matrix w in the order `method` gives for tiles of
// tile_height rows.
std::vector<int64_t> row_order(const float* w, int64_t m, int64_t k, int64_t tile_height, RowOrder method);

// The order permute-rows uses: of the orders above, the one with the fewest tile loads, or
// empty when none beats the model's order. Reports the tile loads before and after.
struct ChosenOrder {
  std::vector<int64_t> order;  // empty: keep 0..m-1
  int64_t loads_before = 0, loads_after = 0;
};
ChosenOrder choose_row_order(const float* w, int64_t m, int64_t k, int64_t tile_height);

// Sum over tiles of tile_height rows (taken in `order`, or 0..m-1 when empty) of the number of
// distinct columns with a nonzero in the tile: the B loads per column chunk of the SpMM kernel.
int64_t tile_loads(const float* w, int64_t m, int64_t k, int64_t tile_height, const std::vector<int64_t>& order);

}  // namespace sdnn::passes
