// choose_kernels.cpp — sparse or dense kernel per weight.
//
// Each fc / conv1x1 gets attrs {kernel = sparse | dense, sparsity = fraction of zeros}. The
// threshold is a parameter (sdnnc --sparse-threshold); its default was chosen by measuring the
// generated sparse kernel against the generated dense one (bench/RESULTS.md).
#include <algorithm>
#include <cmath>

#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

class ChooseKernels : public Pass {
 public:
  explicit ChooseKernels(double threshold) : threshold_(threshold) {}
  const char* name() const override { return "choose-kernels"; }

  bool run(ir::Graph& g) override {
    bool changed = false;
    for (const auto& n : g.nodes()) {
      if (n->op != "fc" && n->op != "conv1x1") continue;
      const auto& w = *n->inputs[1]->f32;
      int64_t zeros = std::count(w.begin(), w.end(), 0.0f);
      double sparsity = w.empty() ? 1.0 : static_cast<double>(zeros) / static_cast<double>(w.size());
      n->attrs["sparsity"] = std::round(sparsity * 1e4) / 1e4;
      n->attrs["kernel"] = std::string(sparsity >= threshold_ ? "sparse" : "dense");
      changed = true;
    }
    return changed;
  }

 private:
  double threshold_;
};

}  // namespace

std::unique_ptr<Pass> make_choose_kernels(double threshold) { return std::make_unique<ChooseKernels>(threshold); }

}  // namespace sdnn::passes
