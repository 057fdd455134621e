// pass.h — the interface every graph pass implements, and the linear pipeline that runs them.
//
// A pass is one file: a class with name() and run(Graph&) -> changed, built from explicit
// parameters (never globals). The pipeline is a plain list; the driver gets a hook after each
// pass for --dump-ir and --stop-after.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sdnn/ir/graph.h"

namespace sdnn::passes {

class Pass {
 public:
  virtual ~Pass() = default;
  virtual const char* name() const = 0;
  virtual bool run(ir::Graph& g) = 0;  // returns whether the graph changed
};

struct PipelineOptions {
  // A weight whose fraction of zeros is at least this uses the sparse kernel, otherwise the dense
  // one. Default from bench/RESULTS.md (sparse vs dense generated kernels on this CPU).
  double sparse_threshold = 0.6;
  // Floats per vector of the target (16 for AVX-512, 8 for AVX2): the column block of the
  // blocked activation layouts. Told by the driver, never read from the backend.
  int64_t vector_floats = 16;
  // Rows per output tile of the target's sparse kernel, for permute-rows; 0 turns the pass off
  // (sdnnc --no-permute). Told by the driver, never read from the backend.
  int64_t tile_height = 28;
  // KxK convolutions with sparse weights run as direct sparse convolutions (false: im2col + SpMM,
  // sdnnc --no-direct-conv).
  bool direct_conv = true;
  // With direct_conv and AVX-512: 3x3 stride-1 direct convs on NCHW activations run masked (no
  // pad_planes, no crop), and sparse 1x1 convs feeding them write NCHW (sdnnc --no-masked-conv).
  bool masked_conv = true;
};

std::unique_ptr<Pass> make_canonicalize();
std::unique_ptr<Pass> make_fuse_patterns();
std::unique_ptr<Pass> make_fuse_epilogue();
std::unique_ptr<Pass> make_choose_kernels(double sparse_threshold);
std::unique_ptr<Pass> make_fuse_residual();
std::unique_ptr<Pass> make_direct_conv(int64_t vector_floats);
std::unique_ptr<Pass> make_permute_rows(int64_t tile_height);
// masked_conv: a sparse conv1x1 that only feeds a conv masked-direct will mask writes NCHW.
std::unique_ptr<Pass> make_choose_layout(int64_t vector_floats, bool masked_conv);
std::unique_ptr<Pass> make_masked_direct(int64_t vector_floats);
std::unique_ptr<Pass> make_plan_buffers();

// The pipeline in order. Names: canonicalize, fuse-patterns, fuse-epilogue, choose-kernels, fuse-residual, direct-conv, permute-rows,
// choose-layout, masked-direct (with direct-conv), plan-buffers.
std::vector<std::unique_ptr<Pass>> build_pipeline(const PipelineOptions& opts);
std::vector<std::string> pipeline_pass_names(const PipelineOptions& opts);

// Runs the pipeline, verifying the graph after each pass. `after(pass_name, changed)` is called
// after each pass; returning false stops the pipeline (for --stop-after).
void run_pipeline(ir::Graph& g, const PipelineOptions& opts,
                  const std::function<bool(const std::string&, bool)>& after);

}  // namespace sdnn::passes
