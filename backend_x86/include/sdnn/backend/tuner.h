// tuner.h — picks each sparse kernel's plan by timing emitted candidates on the build machine.
//
// Candidates vary the tile height, the K blocking and the row order (the one permute-rows chose,
// or the model's), and the ISA within the target: an AVX-512 plan on blocked B and C also has
// AVX2 candidates (6 x 2 ymm tiles on the 16-float layout, plan.layout_vl; full adds 4 x 2 and
// 2 x 4), the best-ranked of which always runs, whatever the cost model says of it;
// --tune=full adds two-vector tiles, column-chunk groups and the software prefetch choices. A cost model (loads
// per column chunk: one broadcast per nonzero plus one B load per column a tile uses, plus the C
// reloads split-K costs) ranks them and only the best few are emitted and timed: JIT, in
// process, B and C rotating through copies larger than the L2 as in a running model, the
// candidates alternating call by call, medians compared; the default plan is kept unless a
// candidate is at least 3 % faster. Results are cached on disk, keyed by the sparsity pattern,
// the problem, the ISA and the CPU model, so recompiling a model is quick.
#pragma once

#include <string>

#include "sdnn/backend/kernel_plan.h"

namespace sdnn::backend {

enum class TuneLevel { None, Fast, Full };
TuneLevel parse_tune_level(const std::string& s);  // none | fast | full
const char* to_string(TuneLevel l);

struct TuneOptions {
  TuneLevel level = TuneLevel::None;
  std::string cache_dir;  // empty: no cache
};

// What tuning did for one kernel (for the compile report).
struct TuneRecord {
  int candidates = 0;     // plans timed (0 when the result came from the cache)
  double us = 0;          // median time of the chosen plan per call over all columns
  bool from_cache = false;
};

// $SDNN_TUNE_CACHE, else $XDG_CACHE_HOME/sdnnc/tune, else ~/.cache/sdnnc/tune.
std::string default_tune_cache_dir();

// The fastest of the candidates derived from `base` for weights `a`; `base` itself when the
// level is None. Only Family::Spmm plans are tuned.
KernelPlan tune_plan(const KernelPlan& base, const SparseMatrix& a, const TuneOptions& opts, TuneRecord* record);

}  // namespace sdnn::backend
