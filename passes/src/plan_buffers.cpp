// plan_buffers.cpp — where every activation lives at run time.
//
// Graph inputs and outputs live in the caller's tensors; everything else in the context's arena.
// A reshape aliases its input (both row-major), so reshape chains share one buffer ("alias
// group"); sizes are those of each value's layout (blocked layouts pad N, see ir::Layout). A graph output whose group would also hold a
// graph input or another output gets a `copy`. Arena offsets come from a linear scan over the
// node order: a group is live from its first definition to its last read, and takes the lowest
// 64-byte-aligned gap that fits among the groups live at that time (a node's output never
// shares memory with its inputs).
#include <algorithm>
#include <map>
#include <set>

#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Node;
using ir::Storage;
using ir::Value;

// True when `n` produces a value in the same memory as its input.
bool is_alias(const Node& n) { return n.op == "reshape"; }

Value* alias_root(Value* v) {
  while (v->producer && is_alias(*v->producer)) v = v->producer->inputs[0];
  return v;
}

class PlanBuffers : public Pass {
 public:
  const char* name() const override { return "plan-buffers"; }

  bool run(ir::Graph& g) override {
    materialize_outputs(g);
    auto vl_it = g.meta().find("vector_floats");
    if (vl_it == g.meta().end()) fail("plan-buffers: run choose-layout first (no vector width recorded)");
    const int64_t vl = std::stoll(vl_it->second);
    // Alias groups, keyed by root value.
    std::map<Value*, std::vector<Value*>> groups;
    std::vector<Value*> order;  // roots in definition order
    auto visit = [&](Value* v) {
      Value* r = alias_root(v);
      auto& members = groups[r];
      if (members.empty()) order.push_back(r);
      if (std::find(members.begin(), members.end(), v) == members.end()) members.push_back(v);
    };
    for (Value* in : g.inputs()) visit(in);
    std::map<const Node*, int> index;
    int i = 0;
    for (const auto& n : g.nodes()) {
      index[n.get()] = i++;
      for (Value* o : n->outputs) visit(o);
    }
    const int end_of_graph = i;

    struct Live {
      int64_t offset, size;
      int last_use;
    };
    std::vector<Live> live;
    int64_t arena = 0;
    for (Value* root : order) {
      const auto& members = groups[root];
      Storage st;
      for (Value* m : members) {
        for (size_t j = 0; j < g.inputs().size(); ++j)
          if (g.inputs()[j] == m) st = {Storage::Kind::Input, static_cast<int64_t>(j), 0};
        for (size_t j = 0; j < g.outputs().size(); ++j)
          if (g.outputs()[j] == m) st = {Storage::Kind::Output, static_cast<int64_t>(j), 0};
      }
      if (st.kind == Storage::Kind::None) {
        int def = root->producer ? index[root->producer] : -1;
        int last = def;
        for (Value* m : members)
          for (Node* u : g.users(m)) last = std::max(last, index[u]);
        if (std::any_of(members.begin(), members.end(), [&](Value* m) { return g.is_graph_output(m); }))
          last = end_of_graph;
        live.erase(std::remove_if(live.begin(), live.end(), [&](const Live& l) { return l.last_use < def; }),
                   live.end());
        std::sort(live.begin(), live.end(), [](const Live& a, const Live& b) { return a.offset < b.offset; });
        int64_t size = (root->storage_bytes(vl) + 63) / 64 * 64, at = 0;
        for (const Live& l : live) {
          if (at + size <= l.offset) break;
          at = std::max(at, l.offset + l.size);
        }
        live.push_back({at, size, last});
        arena = std::max(arena, at + size);
        st = {Storage::Kind::Arena, 0, at};
      }
      for (Value* m : members) m->storage = st;
    }
    g.meta()["arena_bytes"] = std::to_string(arena);
    return true;
  }

 private:
  // Gives each graph output a buffer of its own: inserts a copy when its alias group reaches a
  // graph input or an earlier graph output.
  void materialize_outputs(ir::Graph& g) {
    std::set<Value*> claimed;
    for (Value* in : g.inputs()) claimed.insert(in);
    for (Value*& out : g.outputs()) {
      std::vector<Value*> chain;
      for (Value* v = out;; v = v->producer->inputs[0]) {
        chain.push_back(v);
        if (!v->producer || !is_alias(*v->producer)) break;
      }
      bool conflict = std::any_of(chain.begin(), chain.end(), [&](Value* v) { return claimed.count(v) != 0; });
      if (conflict) {
        // The copy takes the output's name; the source keeps its own when the interface names
        // it (a graph input that is also an output keeps its name on both sides of the ABI).
        bool named_by_abi = std::find(g.inputs().begin(), g.inputs().end(), out) != g.inputs().end();
        Value* copy = g.add_value(out->name, out->dtype, out->shape);
        if (!named_by_abi) out->name += ".src";
        g.add_node("copy", copy->name + ".copy", {out}, {copy});
        out = copy;
        claimed.insert(copy);
      } else {
        claimed.insert(chain.begin(), chain.end());
      }
    }
  }
};

}  // namespace

std::unique_ptr<Pass> make_plan_buffers() { return std::make_unique<PlanBuffers>(); }

}  // namespace sdnn::passes
