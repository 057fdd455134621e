// fuse_residual.cpp — a residual Add after a sparse fc / conv1x1 kernel becomes the kernel's
// residual epilogue (and an activation after it the kernel's activation):
//
//   %y = fc(%x, %w, %b) {kernel = sparse}; %z = add(%y, %r); %a = relu(%z)
//     ->   %a = fc(%x, %w, %b, %r) {kernel = sparse, epilogue = relu}
//
// so the kernel adds R to its accumulators after the bias, before the activation, and stores once
// (BERT's attention output and FFN, ResNet-50's bottleneck ends). Runs after choose-kernels: the
// dense kernel has no residual epilogue. Only when %y has no other reader and is no graph output,
// the producer has no activation yet (relu(conv) + r is not relu(conv + r)), and %r is defined
// before the kernel (it becomes the kernel's input). choose-layout gives %r the kernel's output
// layout. The bias slot (input 2) is absent (nullptr) when the layer has no bias. KxK convs (which
// direct-conv turns into grid-writing kernels) keep their add.
#include <cmath>
#include <map>

#include "rewrite.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Node;
using ir::Value;


class FuseResidual : public Pass {
 public:
  const char* name() const override { return "fuse-residual"; }

  bool run(ir::Graph& g) override {
    bool changed = false;
    std::map<const Node*, size_t> position;
    size_t i = 0;
    for (const auto& n : g.nodes()) position[n.get()] = i++;
    std::vector<Node*> adds;
    for (const auto& n : g.nodes())
      if (n->op == "add") adds.push_back(n.get());
    for (Node* add : adds) {
      for (int side = 0; side < 2; ++side) {
        Value* y = add->inputs[side];
        Value* r = add->inputs[1 - side];
        Node* p = y->producer;
        if (!p || (p->op != "fc" && p->op != "conv1x1") || p->get_str("kernel", "") != "sparse") continue;
        if (p->has("epilogue") || p->inputs.size() > 3 || g.users(y).size() != 1 || g.is_graph_output(y)) continue;
        // A KxK conv (im2col-fed) becomes a direct convolution, whose grid output has no residual
        // epilogue: leave its add alone.
        const Node* im = p->inputs[0]->producer;
        if (p->op == "conv1x1" && im && im->op == "im2col" && im->get_ints("kernel") != std::vector<int64_t>{1, 1})
          continue;
        if (r == y || r->shape != y->shape || r->is_constant()) continue;
        if (r->producer && position[r->producer] >= position[p]) continue;  // not defined before the kernel
        p->inputs.resize(4, nullptr);
        p->inputs[3] = r;
        Value* z = add->outputs[0];
        g.remove_node(add);
        move_output(p, z);
        absorb_activation(g, p);  // an activation reading only the sum joins the epilogue too
        changed = true;
        break;
      }
    }
    if (changed) g.remove_dead();
    return changed;
  }
};

}  // namespace

std::unique_ptr<Pass> make_fuse_residual() { return std::make_unique<FuseResidual>(); }

}  // namespace sdnn::passes
