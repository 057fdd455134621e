// choose_layout.cpp — physical layouts of activations, and the few transposes between them.
//
// fc kernels read and write feature-major activations (logical [..., F] stored [F][N], N the
// product of the leading dims), so a chain of fc / relu / add stays feature-major end to end;
// conv1x1 works on NCHW (row-major); reshape and graph inputs / outputs are row-major. Where a
// consumer needs another layout than its input has, a `layout` node {to = fm | row} is inserted
// (one per value and layout, shared by all consumers); a graph output that ends feature-major
// gets one at the end, which takes over the output's name.
#include <map>

#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Layout;
using ir::Node;
using ir::Value;

class ChooseLayout : public Pass {
 public:
  const char* name() const override { return "choose-layout"; }

  bool run(ir::Graph& g) override {
    changed_ = false;
    std::vector<Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (Node* n : work) {
      if (n->op == "fc") {
        require(g, n, 0, Layout::FeatureMajor);
        n->outputs[0]->layout = Layout::FeatureMajor;
      } else if (n->op == "conv1x1" || n->op == "reshape" || n->op == "copy") {
        require(g, n, 0, Layout::RowMajor);
        n->outputs[0]->layout = Layout::RowMajor;
      } else if (n->op == "relu") {
        n->outputs[0]->layout = n->inputs[0]->layout;
      } else if (n->op == "add") {
        require(g, n, 1, n->inputs[0]->layout);
        n->outputs[0]->layout = n->inputs[0]->layout;
      } else {
        fail(n->where(), ": choose-layout does not know op '", n->op, "'");
      }
      if (n->outputs[0]->layout != Layout::RowMajor) changed_ = true;
    }
    for (Value*& out : g.outputs()) {
      if (out->layout == Layout::RowMajor) continue;
      // The converted value becomes the graph output and keeps its name.
      Value* row = g.add_value(out->name, out->dtype, out->shape);
      out->name += ".fm";
      g.add_node("layout", out->name + ".to_row", {out}, {row})->attrs["to"] = std::string("row");
      out = row;
      changed_ = true;
    }
    return changed_;
  }

 private:
  void require(ir::Graph& g, Node* n, size_t i, Layout want) {
    Value* v = n->inputs[i];
    if (v->is_constant() || v->layout == want) return;
    auto key = std::make_pair(v, want);
    auto it = converted_.find(key);
    if (it == converted_.end()) {
      std::string suffix = want == Layout::FeatureMajor ? ".fm" : ".row";
      Value* c = g.add_value(v->name + suffix, v->dtype, v->shape);
      c->layout = want;
      g.add_node("layout", v->name + suffix, {v}, {c}, n)->attrs["to"] = std::string(ir::to_string(want));
      it = converted_.emplace(key, c).first;
      changed_ = true;
    }
    n->inputs[i] = it->second;
  }

  std::map<std::pair<Value*, Layout>, Value*> converted_;
  bool changed_ = false;
};

}  // namespace

std::unique_ptr<Pass> make_choose_layout() { return std::make_unique<ChooseLayout>(); }

}  // namespace sdnn::passes
