// canonicalize.cpp — ONNX ops -> the compiler's own ops.
//
//   Gemm(A, B, C)            -> fc(A, W = alpha * op(B)^T as [N x K], bias = beta * C)
//   MatMul(X, B) [+ Add b]   -> fc(X, W = B^T, bias = b)  (bias in either Add operand order)
//   Conv 1x1 (stride 1, no pads) -> conv1x1(X, W as [M x C], b)
//   Conv KxK                 -> conv1x1(im2col(X), W as [M x C*KH*KW], b)   (columns built by the runtime)
//   Conv depthwise           -> depthwise(X, W as [C x KH*KW], b)
//   BatchNormalization       -> folded into the producing conv1x1 / depthwise / fc (weights and bias
//                               scaled) when it alone reads it, otherwise a 1x1 depthwise (scale, shift)
//   Clip -> clip {min, max}; MaxPool / AveragePool / GlobalAveragePool -> maxpool / avgpool / gap
//   Relu -> relu, Add of two same-shape activations -> add
//   other Add / Sub / Mul / Div / Pow -> binary {fn}, with numpy broadcasting, constants allowed
//   Erf / Exp / Tanh / Sigmoid / Sqrt / Neg / LeakyRelu / Gelu -> unary {fn[, alpha]}
//   ReduceMean -> reduce_mean {axes, keepdims}; Softmax -> softmax {axis, coerced};
//   LayerNormalization -> layernorm {axis, epsilon}; Transpose -> transpose {perm};
//   MatMul of two activations (or with a batched constant right operand) -> matmul
//   Slice / Split -> slice {starts, steps, counts}; Concat -> concat {axis};
//   Gather with constant indices -> gather {axis, indices}; Gather of a constant table by int64
//   index inputs -> embedding(table, indices); Cast int64 -> float -> cast
//   Identity, Flatten / Reshape that keep the shape -> removed; other Flatten / Reshape -> reshape
// A weight's layout is always [out features x in features] (the SpMM's A) after this pass.
#include <algorithm>
#include <cmath>
#include <map>

#include "rewrite.h"
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::Value;

// [rows x cols] -> [cols x rows], scaled; in 64 x 64 tiles, so both sides stay in cache.
std::vector<float> transposed(const std::vector<float>& w, int64_t rows, int64_t cols, float scale) {
  std::vector<float> t(w.size());
  constexpr int64_t kTile = 64;
  for (int64_t r0 = 0; r0 < rows; r0 += kTile)
    for (int64_t c0 = 0; c0 < cols; c0 += kTile)
      for (int64_t r = r0; r < std::min(rows, r0 + kTile); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + kTile); ++c) t[c * rows + r] = scale * w[r * cols + c];
  return t;
}

// A constant that broadcasts as a per-feature vector of length m over [..., m] (shape [m],
// [1, m], [1, 1, m], a scalar or [1]); returns it expanded to m values, or nothing.
bool as_feature_bias(const Value& c, int64_t m, float scale, std::vector<float>& out) {
  if (!c.f32) return false;
  int64_t last = c.shape.empty() ? 1 : c.shape.back();
  for (size_t i = 0; i + 1 < c.shape.size(); ++i)
    if (c.shape[i] != 1) return false;
  if (last != m && last != 1) return false;
  out.resize(m);
  for (int64_t i = 0; i < m; ++i) out[i] = scale * (*c.f32)[last == 1 ? 0 : i];
  return true;
}

class Canonicalize : public Pass {
 public:
  const char* name() const override { return "canonicalize"; }

  bool run(Graph& g) override {
    std::vector<Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (Node* n : work) rewrite(g, n);
    // Bias adds after the fc nodes exist (in either operand order).
    for (Node* n : snapshot(g))
      if (n->op == "Add") fold_bias_add(g, n);
    for (Node* n : snapshot(g)) {
      if (n->op == "Add") lower_add(n);
    }
    for (Node* n : snapshot(g))
      if (n->op == "identity") {
        if (!bypass(g, n)) n->op = "copy";
      }
    g.remove_dead();
    return true;
  }

 private:
  static std::vector<Node*> snapshot(Graph& g) {
    std::vector<Node*> v;
    for (const auto& n : g.nodes()) v.push_back(n.get());
    return v;
  }

  void rewrite(Graph& g, Node* n) {
    if (n->op == "Gemm") return gemm(g, n);
    if (n->op == "MatMul") return matmul(g, n);
    if (n->op == "Conv") return conv(g, n);
    if (n->op == "BatchNormalization") return batchnorm(g, n);
    if (n->op == "Clip") {
      n->op = "clip";
      return;
    }
    if (n->op == "MaxPool" || n->op == "AveragePool" || n->op == "GlobalAveragePool") {
      n->op = n->op == "MaxPool" ? "maxpool" : n->op == "AveragePool" ? "avgpool" : "gap";
      return;
    }
    if (n->op == "Relu") {
      n->op = "relu";
      return;
    }
    static const std::map<std::string, std::string> binary = {
        {"Sub", "sub"}, {"Mul", "mul"}, {"Div", "div"}, {"Pow", "pow"}};
    if (auto it = binary.find(n->op); it != binary.end()) {
      n->op = "binary";
      n->attrs["fn"] = it->second;
      return;
    }
    static const std::map<std::string, std::string> unary = {
        {"Erf", "erf"},   {"Exp", "exp"}, {"Tanh", "tanh"},           {"Sigmoid", "sigmoid"},
        {"Sqrt", "sqrt"}, {"Neg", "neg"}, {"LeakyRelu", "leaky_relu"}, {"Gelu", "gelu"}};
    if (auto it = unary.find(n->op); it != unary.end()) {
      std::string fn = it->second;
      if (fn == "gelu" && n->get_str("approximate", "none") == "tanh") fn = "gelu_tanh";
      auto attrs = n->attrs;
      n->attrs.clear();
      if (fn == "leaky_relu") n->attrs["alpha"] = attrs.at("alpha");
      n->op = "unary";
      n->attrs["fn"] = fn;
      return;
    }
    if (n->op == "Embedding" || n->op == "Cast") {
      n->op = n->op == "Embedding" ? "embedding" : "cast";
      return;
    }
    if (n->op == "Slice" || n->op == "Concat" || n->op == "Gather") {
      n->op = n->op == "Slice" ? "slice" : n->op == "Concat" ? "concat" : "gather";
      return;
    }
    if (n->op == "ReduceMean" || n->op == "Softmax" || n->op == "LayerNormalization" || n->op == "Transpose") {
      n->op = n->op == "ReduceMean" ? "reduce_mean"
              : n->op == "Softmax"  ? "softmax"
              : n->op == "Transpose" ? "transpose"
                                     : "layernorm";
      if (n->op == "transpose" && is_identity_perm(n->get_ints("perm"))) {
        n->attrs.clear();
        n->op = "identity";
      }
      return;
    }
    if (n->op == "Identity") {
      n->op = "identity";
      return;
    }
    if (n->op == "Flatten" || n->op == "Reshape") {
      if (n->outputs[0]->shape == n->inputs[0]->shape) {
        n->inputs.resize(1);
        n->attrs.clear();
        n->op = "identity";
        return;
      }
      n->inputs.resize(1);
      n->attrs.clear();
      n->attrs["shape"] = n->outputs[0]->shape;
      n->op = "reshape";
    }
  }

  void gemm(Graph& g, Node* n) {
    Value *a = n->inputs[0], *b = n->inputs[1], *c = n->inputs.size() > 2 ? n->inputs[2] : nullptr;
    float alpha = static_cast<float>(n->get_float("alpha", 1.0));
    float beta = static_cast<float>(n->get_float("beta", 1.0));
    bool trans_b = n->get_int("transB", 0) != 0;
    int64_t k = a->shape[1];
    int64_t m = trans_b ? b->shape[0] : b->shape[1];  // output features
    std::vector<float> w = trans_b ? *b->f32 : transposed(*b->f32, k, m, 1.0f);
    if (alpha != 1.0f)
      for (float& x : w) x *= alpha;
    Value* wv = g.add_constant(b->name, {m, k}, std::move(w));
    Value* bias = nullptr;
    if (c && beta != 0.0f) {
      std::vector<float> bv;
      // Gemm's C is [M x N] broadcastable; the frontend has checked rows are equal.
      Value row = *c;
      if (row.shape.size() == 2) row.shape = {row.shape[1]};
      SDNN_CHECK(as_feature_bias(row, m, beta, bv));
      bias = g.add_constant(c->name, {m}, std::move(bv));
    }
    n->op = "fc";
    n->attrs.clear();
    n->inputs = {a, wv};
    if (bias) n->inputs.push_back(bias);
  }

  static bool is_identity_perm(const std::vector<int64_t>& perm) {
    for (size_t i = 0; i < perm.size(); ++i)
      if (perm[i] != static_cast<int64_t>(i)) return false;
    return true;
  }

  void matmul(Graph& g, Node* n) {
    Value *x = n->inputs[0], *b = n->inputs[1];
    if (!b->is_constant() || b->shape.size() != 2) {
      n->op = "matmul";  // batched, between activations or with a batched constant
      return;
    }
    int64_t k = b->shape[0], m = b->shape[1];
    Value* wv = g.add_constant(b->name, {m, k}, transposed(*b->f32, k, m, 1.0f));
    n->op = "fc";  // also for a 1-D X: [K] x [K x M] -> [M], an fc over one row
    n->attrs.clear();
    n->inputs = {x, wv};
  }

  void conv(Graph& g, Node* n) {
    Value *x = n->inputs[0], *w = n->inputs[1], *b = n->inputs.size() > 2 ? n->inputs[2] : nullptr;
    const int64_t m = w->shape[0], taps = w->shape[1] * w->shape[2] * w->shape[3];
    const bool depthwise = n->get_int("group", 1) != 1;
    const bool pointwise = w->shape[2] == 1 && w->shape[3] == 1 && n->get_ints("strides") == std::vector<int64_t>{1, 1} &&
                           n->get_ints("pads") == std::vector<int64_t>{0, 0, 0, 0};
    Value* wv = g.add_constant(w->name, {m, taps}, *w->f32);
    auto window = n->attrs;
    window.erase("group");
    n->attrs.clear();
    if (depthwise) {
      n->op = "depthwise";
      n->attrs = window;
    } else if (pointwise) {
      n->op = "conv1x1";
    } else {
      // The columns of the SpMM: [B, C*KH*KW, Ho, Wo], produced blocked by the runtime.
      const ir::Shape& y = n->outputs[0]->shape;
      Value* cols = g.add_value(x->name + ".im2col", ir::DType::F32, {x->shape[0], taps, y[2], y[3]});
      Node* im = g.add_node("im2col", n->name + ".im2col", {x}, {cols}, n);
      im->attrs = window;
      x = cols;
      n->op = "conv1x1";
    }
    n->inputs = {x, wv};
    if (b) n->inputs.push_back(b);
  }

  // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * s + t per channel (axis 1).
  void batchnorm(Graph& g, Node* n) {
    Value* x = n->inputs[0];
    const auto &gamma = *n->inputs[1]->f32, &beta = *n->inputs[2]->f32, &mean = *n->inputs[3]->f32,
               &var = *n->inputs[4]->f32;
    const double eps = n->get_float("epsilon", 1e-5);
    const int64_t ch = x->shape[1];
    std::vector<float> s(ch), t(ch);
    for (int64_t c = 0; c < ch; ++c) {
      s[c] = static_cast<float>(gamma[c] / std::sqrt(static_cast<double>(var[c]) + eps));
      t[c] = static_cast<float>(beta[c] - static_cast<double>(mean[c]) * s[c]);
    }
    Node* p = x->producer;
    const bool foldable = p && (p->op == "conv1x1" || p->op == "depthwise" || (p->op == "fc" && x->shape.size() == 2)) &&
                          g.users(x).size() == 1 && !g.is_graph_output(x);
    Value* y = n->outputs[0];
    if (foldable) {
      const Value* w = p->inputs[1];
      const int64_t cols = w->shape[1];
      std::vector<float> wf = *w->f32;
      for (int64_t c = 0; c < ch; ++c)
        for (int64_t j = 0; j < cols; ++j) wf[c * cols + j] *= s[c];
      std::vector<float> bf(ch, 0.0f);
      if (p->inputs.size() > 2 && p->inputs[2]) bf = *p->inputs[2]->f32;
      for (int64_t c = 0; c < ch; ++c) bf[c] = bf[c] * s[c] + t[c];
      p->inputs.resize(3);
      p->inputs[1] = g.add_constant(w->name, w->shape, std::move(wf));
      p->inputs[2] = g.add_constant(n->name + ".bias", {ch}, std::move(bf));
      g.remove_node(n);
      move_output(p, y);
      return;
    }
    if (x->shape.size() != 4)
      fail(n->where(), ": BatchNormalization on a rank-", x->shape.size(),
           " tensor that is not the only output of a Conv / Gemm / MatMul is not supported");
    // Standalone: a 1x1 depthwise convolution with weights s and bias t.
    n->op = "depthwise";
    n->attrs.clear();
    n->attrs["kernel"] = std::vector<int64_t>{1, 1};
    n->attrs["strides"] = std::vector<int64_t>{1, 1};
    n->attrs["pads"] = std::vector<int64_t>{0, 0, 0, 0};
    n->attrs["dilations"] = std::vector<int64_t>{1, 1};
    n->inputs = {x, g.add_constant(n->name + ".scale", {ch, 1}, std::move(s)),
                 g.add_constant(n->name + ".shift", {ch}, std::move(t))};
  }

  void fold_bias_add(Graph& g, Node* add) {
    for (int side = 0; side < 2; ++side) {
      Value* act = add->inputs[side];
      Value* cst = add->inputs[1 - side];
      Node* p = act->producer;
      if (!cst->is_constant() || !p || p->op != "fc" || p->inputs.size() > 2) continue;
      if (g.users(act).size() != 1 || g.is_graph_output(act)) continue;
      if (add->outputs[0]->shape != act->shape) continue;  // the constant must not widen the result
      std::vector<float> bias;
      int64_t m = act->shape.back();
      if (!as_feature_bias(*cst, m, 1.0f, bias)) continue;
      p->inputs.push_back(g.add_constant(cst->name, {m}, std::move(bias)));
      Value* out = add->outputs[0];
      g.remove_node(add);
      move_output(p, out);
      return;
    }
  }

  // Two same-shape activations: `add` (any layout); anything else broadcasts: binary {fn = add}.
  void lower_add(Node* n) {
    Value *a = n->inputs[0], *b = n->inputs[1];
    if (!a->is_constant() && !b->is_constant() && a->shape == b->shape) {
      n->op = "add";
      return;
    }
    n->op = "binary";
    n->attrs["fn"] = std::string("add");
  }
};

}  // namespace

std::unique_ptr<Pass> make_canonicalize() { return std::make_unique<Canonicalize>(); }

}  // namespace sdnn::passes
