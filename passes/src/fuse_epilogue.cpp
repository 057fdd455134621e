// fuse_epilogue.cpp — folds an activation into the epilogue of the fc / conv1x1 / depthwise
// producing its input, so the kernel applies it to its accumulators before the one store.
//
//   %y = fc(%x, %w, %b) ; %z = relu(%y)   ->   %z = fc(%x, %w, %b) {epilogue = relu}
// relu, clip(0, 6) (ReLU6) and clip(0, +inf) fold; only when the producer's output has no other
// reader and is not a graph output.
#include <cmath>

#include "rewrite.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

class FuseEpilogue : public Pass {
 public:
  const char* name() const override { return "fuse-epilogue"; }

  bool run(ir::Graph& g) override {
    bool changed = false;
    std::vector<ir::Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (ir::Node* n : work) {
      const std::string act = epilogue_activation(*n);
      if (act.empty()) continue;
      ir::Value* x = n->inputs[0];
      ir::Node* p = x->producer;
      if (!p || (p->op != "fc" && p->op != "conv1x1" && p->op != "depthwise") || p->has("epilogue")) continue;
      if (g.users(x).size() != 1 || g.is_graph_output(x)) continue;
      ir::Value* out = n->outputs[0];
      g.remove_node(n);
      move_output(p, out);
      p->attrs["epilogue"] = act;
      changed = true;
    }
    if (changed) g.remove_dead();
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_epilogue() { return std::make_unique<FuseEpilogue>(); }

}  // namespace sdnn::passes
