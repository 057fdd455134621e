// rewrite.cpp — graph-editing helpers shared by the passes.
#include "rewrite.h"

#include <cmath>

#include "sdnn/ir/error.h"

namespace sdnn::passes {

void move_output(ir::Node* n, ir::Value* v) {
  SDNN_CHECK(n->outputs.size() == 1);
  n->outputs[0]->producer = nullptr;
  n->outputs[0] = v;
  v->producer = n;
}

std::string epilogue_activation(const ir::Node& n) {
  if (n.op == "relu") return "relu";
  if (n.op != "clip" || n.get_float("min", -1.0) != 0.0) return "";
  const double hi = n.get_float("max", 0.0);
  if (hi == 6.0) return "relu6";
  if (std::isinf(hi) && hi > 0) return "relu";
  return "";
}

bool absorb_activation(ir::Graph& g, ir::Node* n) {
  ir::Value* z = n->outputs[0];
  const auto readers = g.users(z);
  if (readers.size() != 1 || g.is_graph_output(z)) return false;
  const std::string act = epilogue_activation(*readers[0]);
  if (act.empty()) return false;
  ir::Value* a = readers[0]->outputs[0];
  g.remove_node(readers[0]);
  move_output(n, a);
  n->attrs["epilogue"] = act;
  return true;
}

bool bypass(ir::Graph& g, ir::Node* n) {
  ir::Value* x = n->inputs[0];
  ir::Value* y = n->outputs[0];
  if (!g.is_graph_output(y)) {
    g.replace_uses(y, x);
    g.remove_node(n);
    return true;
  }
  ir::Node* p = x->producer;
  if (p && p->outputs.size() == 1 && !g.is_graph_output(x) && g.users(x).size() == 1 && x->shape == y->shape) {
    g.remove_node(n);
    move_output(p, y);
    return true;
  }
  return false;
}

}  // namespace sdnn::passes
