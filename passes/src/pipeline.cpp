// pipeline.cpp — the one list of passes, in order.
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {

std::vector<std::unique_ptr<Pass>> build_pipeline(const PipelineOptions& opts) {
  std::vector<std::unique_ptr<Pass>> p;
  p.push_back(make_canonicalize());
  p.push_back(make_fuse_patterns());
  p.push_back(make_fuse_epilogue());
  p.push_back(make_choose_kernels(opts.sparse_threshold));
  p.push_back(make_fuse_residual());
  if (opts.direct_conv) p.push_back(make_direct_conv(opts.vector_floats));
  if (opts.tile_height > 0) p.push_back(make_permute_rows(opts.tile_height));
  const bool masked = opts.direct_conv && opts.masked_conv;
  p.push_back(make_choose_layout(opts.vector_floats, masked));
  if (masked) p.push_back(make_masked_direct(opts.vector_floats));
  p.push_back(make_plan_buffers());
  return p;
}

std::vector<std::string> pipeline_pass_names(const PipelineOptions& opts) {
  std::vector<std::string> names;
  for (const auto& p : build_pipeline(opts)) names.push_back(p->name());
  return names;
}

void run_pipeline(ir::Graph& g, const PipelineOptions& opts,
                  const std::function<bool(const std::string&, bool)>& after) {
  for (const auto& pass : build_pipeline(opts)) {
    bool changed = pass->run(g);
    ir::verify(g, pass->name());
    if (after && !after(pass->name(), changed)) return;
  }
}

}  // namespace sdnn::passes
