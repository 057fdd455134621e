// choose_layout.cpp — physical layouts of activations, and the few conversions between them.
//
// Sparse and dense kernels read and write blocked activations (ir::Layout): fc uses
// FeatureBlocked ([..., F] as [N/VL][F][VL]), conv1x1 ChannelBlocked (NCHW as, per image,
// [HW/VL][C][VL]); im2col reads NCHW and writes its columns ChannelBlocked. relu / clip / add /
// unary (and binary ops with a scalar or per-feature constant) keep their input's layout, so a
// chain of fc / relu / add stays blocked end to end; layernorm over the features of a
// FeatureBlocked input stays blocked; attention reads and writes FeatureBlocked (its mask
// row-major), so a whole transformer encoder runs blocked between one pack and one unpack; a
// depthwise conv of a ChannelBlocked input stays ChannelBlocked (MobileNet's blocks need no pack);
// the direct convolution's planes are row-major and its grid ChannelBlocked, and a crop of the grid
// whose only reader wants NCHW (a stem conv before its max pool) writes NCHW itself; with AVX-512
// a conv1x1 whose output only feeds a 3x3 conv masked-direct will mask writes it NCHW; matmul, transpose, softmax, reduce_mean, reshape,
// copy, other depthwise convs, pools and graph inputs / outputs are row-major (NCHW). Where a consumer needs
// another layout than its input has, a `layout` node {to = fb | cb | row} is inserted (one per
// value and layout, shared by all consumers); a graph output that ends blocked gets one at the
// end, which takes over the output's name. The vector width is recorded in the graph's meta
// ("vector_floats") for plan-buffers and the backend.
#include <map>

#include "rewrite.h"
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Layout;
using ir::Node;
using ir::Value;

class ChooseLayout : public Pass {
 public:
  ChooseLayout(int64_t vl, bool masked_conv) : vl_(vl), masked_conv_(masked_conv) {}
  const char* name() const override { return "choose-layout"; }

  bool run(ir::Graph& g) override {
    changed_ = false;
    g.meta()["vector_floats"] = std::to_string(vl_);
    std::vector<Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (Node* n : work) {
      Layout out;
      if (n->op == "fc" || n->op == "conv1x1") {
        out = require(g, n, 0, n->op == "fc" ? Layout::FeatureBlocked : Layout::ChannelBlocked);
        if (n->inputs.size() > 3 && n->inputs[3]) require(g, n, 3, out);  // the residual: C's layout
        else if (n->op == "conv1x1" && writes_masked_input(g, n)) out = Layout::RowMajor;
      } else if (n->op == "pad_planes") {
        // Reads NCHW or ChannelBlocked, writes the planes row-major.
        if (n->inputs[0]->layout == Layout::FeatureBlocked) require(g, n, 0, Layout::RowMajor);
        out = Layout::RowMajor;
      } else if (n->op == "maxpool" && n->has("width")) {
        require(g, n, 0, Layout::ChannelBlocked);  // a direct convolution's grid (direct-conv)
        out = Layout::RowMajor;
      } else if (n->op == "depthwise" && n->has("width")) {
        out = require(g, n, 0, Layout::ChannelBlocked);  // the same, read by the shifted-window code
      } else if (n->op == "conv_direct" || n->op == "crop") {
        require(g, n, 0, n->op == "crop" ? Layout::ChannelBlocked : Layout::RowMajor);
        if (n->op == "crop" && n->inputs.size() > 1) require(g, n, 1, Layout::ChannelBlocked);  // residual
        // conv_direct {planes_out} writes the next conv's planes (row-major), else its grid blocked
        out = n->has("planes_out") ? Layout::RowMajor : Layout::ChannelBlocked;
      } else if (n->op == "depthwise" && n->inputs[0]->layout == Layout::ChannelBlocked) {
        out = Layout::ChannelBlocked;  // per channel plane, staged through the thread's scratch
      } else if (n->op == "reshape" || n->op == "copy" || n->op == "depthwise" || n->op == "maxpool" ||
                 n->op == "avgpool" || n->op == "gap") {
        out = require(g, n, 0, Layout::RowMajor);
      } else if (n->op == "im2col") {
        require(g, n, 0, Layout::RowMajor);
        out = Layout::ChannelBlocked;  // the runtime writes the columns blocked
      } else if (n->op == "relu" || n->op == "clip" || n->op == "unary") {
        out = n->inputs[0]->layout;
      } else if (n->op == "add") {
        out = require(g, n, 1, n->inputs[0]->layout);
      } else if (n->op == "binary") {
        out = binary_layout(g, n);
      } else if (n->op == "layernorm") {
        // Over the last axis, a FeatureBlocked input is normalized in place of layout.
        const bool last = n->get_int("axis", -1) == static_cast<int64_t>(n->inputs[0]->shape.size()) - 1;
        out = require(g, n, 0, last && n->inputs[0]->layout == Layout::FeatureBlocked ? Layout::FeatureBlocked
                                                                                      : Layout::RowMajor);
      } else if (n->op == "attention") {
        for (size_t i = 0; i < 3; ++i) require(g, n, i, Layout::FeatureBlocked);
        if (n->inputs.size() > 3) require(g, n, 3, Layout::RowMajor);
        out = Layout::FeatureBlocked;
      } else if (n->op == "matmul" || n->op == "transpose" || n->op == "softmax" || n->op == "reduce_mean" ||
                 n->op == "slice" || n->op == "concat" || n->op == "gather" || n->op == "cast" ||
                 n->op == "embedding") {
        for (size_t i = 0; i < n->inputs.size(); ++i) require(g, n, i, Layout::RowMajor);
        out = Layout::RowMajor;
      } else {
        fail(n->where(), ": choose-layout does not know op '", n->op, "'");
      }
      n->outputs[0]->layout = out;
      if (out != Layout::RowMajor) changed_ = true;
    }
    for (Value*& out : g.outputs()) {
      if (out->layout == Layout::RowMajor) continue;
      // The converted value becomes the graph output and keeps its name.
      Value* row = g.add_value(out->name, out->dtype, out->shape);
      out->name += std::string(".") + ir::to_string(out->layout);
      g.add_node("layout", row->name + ".to_row", {out}, {row})->attrs["to"] = std::string("row");
      out = row;
      changed_ = true;
    }
    crop_to_rows(g);
    return changed_;
  }

 private:
  // AVX-512: a sparse 1x1 conv (no residual) whose output only pads the planes of a 3x3 conv that
  // masked-direct will run masked writes its output NCHW (C planes, the last vector of each under
  // a store mask): the masked conv reads it as it is, and neither pad_planes nor crop runs.
  bool writes_masked_input(const ir::Graph& g, const Node* n) const {
    if (!masked_conv_ || vl_ != 16 || g.is_graph_output(n->outputs[0]) || n->get_str("kernel", "") != "sparse") return false;
    const auto users = g.users(n->outputs[0]);
    return users.size() == 1 && users[0]->op == "pad_planes" && maskable_conv(g, users[0]) != nullptr;
  }

  // %y = crop(%g) : cb; %r = layout(%y) {to = row}, %y read by nothing else -> %r = crop(%g) : row
  // (the runtime's crop writes NCHW rows as well as blocks; not with a residual, which is laid
  // out as the crop's output).
  void crop_to_rows(ir::Graph& g) {
    std::vector<Node*> work;
    for (const auto& n : g.nodes())
      if (n->op == "layout" && n->get_str("to", "") == "row") work.push_back(n.get());
    for (Node* to_row : work) {
      Value* y = to_row->inputs[0];
      Node* crop = y->producer;
      if (!crop || crop->op != "crop" || crop->inputs.size() != 1 || g.users(y).size() != 1 ||
          g.is_graph_output(y))
        continue;
      Value* r = to_row->outputs[0];
      g.remove_node(to_row);
      crop->outputs[0] = r;
      r->producer = crop;
      changed_ = true;
    }
    g.remove_dead();
  }

  // A binary op keeps a blocked layout when its operands are two same-shape activations of that
  // layout, or an activation and a constant scalar or per-feature vector (a FeatureBlocked
  // activation); everything else broadcasts row-major.
  Layout binary_layout(ir::Graph& g, Node* n) {
    Value *a = n->inputs[0], *b = n->inputs[1];
    const ir::Shape& y = n->outputs[0]->shape;
    if (!a->is_constant() && !b->is_constant() && a->shape == y && b->shape == y)
      return require(g, n, 1, a->layout);
    for (int side = 0; side < 2; ++side) {
      Value *act = n->inputs[side], *cst = n->inputs[1 - side];
      if (act->is_constant() || !cst->is_constant() || act->shape != y) continue;
      if (cst->numel() == 1) return act->layout;
      bool per_feature = act->layout == Layout::FeatureBlocked && !cst->shape.empty() &&
                         cst->shape.back() == y.back() && cst->numel() == y.back();
      if (per_feature) return Layout::FeatureBlocked;
    }
    for (size_t i = 0; i < 2; ++i) require(g, n, i, Layout::RowMajor);
    return Layout::RowMajor;
  }

  Layout require(ir::Graph& g, Node* n, size_t i, Layout want) {
    Value* v = n->inputs[i];
    if (v->is_constant() || v->layout == want) return want;
    n->inputs[i] = convert(g, v, want, n);
    return want;
  }

  // v in layout `want`, converted once before `before`; between two blocked layouts the data
  // goes through row-major (pack and unpack steps are the only conversions the runtime has).
  Value* convert(ir::Graph& g, Value* v, Layout want, Node* before) {
    if (v->layout != Layout::RowMajor && want != Layout::RowMajor) v = convert(g, v, Layout::RowMajor, before);
    auto key = std::make_pair(v, want);
    auto it = converted_.find(key);
    if (it == converted_.end()) {
      std::string suffix = std::string(".") + ir::to_string(want);
      Value* c = g.add_value(v->name + suffix, v->dtype, v->shape);
      c->layout = want;
      g.add_node("layout", v->name + suffix, {v}, {c}, before)->attrs["to"] = std::string(ir::to_string(want));
      it = converted_.emplace(key, c).first;
      changed_ = true;
    }
    return it->second;
  }

  int64_t vl_;
  bool masked_conv_;
  std::map<std::pair<Value*, Layout>, Value*> converted_;
  bool changed_ = false;
};

}  // namespace

std::unique_ptr<Pass> make_choose_layout(int64_t vector_floats, bool masked_conv) {
  return std::make_unique<ChooseLayout>(vector_floats, masked_conv);
}

}  // namespace sdnn::passes
