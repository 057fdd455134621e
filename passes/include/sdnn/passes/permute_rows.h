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
// empty when none saves at least `min_saving` of the model order's loads. Reports the tile loads
// before and after (after = before when the model order is kept).
//
// The default minimum, 20 %, is for a layer whose order its kernel undoes: it writes a permuted
// tile's rows of C at their original, scattered places, which measured 3 % slower with one
// thread and 9 % with two than the model order on the SpMM grid's magnitude-pruned random
// patterns, whose best orders save 0.1-10 % of the loads (bench/RESULTS.md); only a pattern with
// much more shared structure gains (and --tune=fast / full still times it against model order).
// A layer whose consumer undoes the order pays nothing for it: kMinAbsorbedSaving.
constexpr double kMinLoadSaving = 0.20;
// When the consumer undoes the order (its weight columns permuted, the kernel's rows of C written
// in tile order), the order costs nothing at run time: any saving of at least this is kept.
constexpr double kMinAbsorbedSaving = 0.01;
struct ChosenOrder {
  std::vector<int64_t> order;  // empty: keep 0..m-1
  int64_t loads_before = 0, loads_after = 0;
  int64_t best_loads = 0;      // the best order's loads, kept or not
};
ChosenOrder choose_row_order(const float* w, int64_t m, int64_t k, int64_t tile_height,
                             double min_saving = kMinLoadSaving);

// Sum over tiles of tile_height rows (taken in `order`, or 0..m-1 when empty) of the number of
// distinct columns with a nonzero in the tile: the B loads per column chunk of the SpMM kernel.
int64_t tile_loads(const float* w, int64_t m, int64_t k, int64_t tile_height, const std::vector<int64_t>& order);

}  // namespace sdnn::passes
