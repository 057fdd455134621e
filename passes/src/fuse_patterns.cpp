// fuse_patterns.cpp — recognizes the multi-node patterns exporters write and replaces each by
// one compiler op, so the runtime runs one pass over the data instead of many.
//
//   layer norm (below opset 17), over the last axis, keepdims ReduceMeans:
//     m = reduce_mean(x); d = sub(x, m); v = reduce_mean(pow(d, 2)); s = sqrt(add(v, eps));
//     y = add(mul(div(d, s), gamma), beta)          ->  y = layernorm(x, gamma, beta) {epsilon}
//     (mul / add operands in either order; without the final add, beta is absent)
//   GELU, erf form:  mul(mul(x, add(erf(div(x, sqrt 2)), 1)), 0.5), or the 0.5 multiplied into x
//     first, or x * (1 / sqrt 2) instead of the division   ->  unary {fn = gelu}(x)
//   GELU, tanh form: 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3)))  ->  unary {fn = gelu_tanh}
//   attention, per head, as PyTorch writes it for [B, S, F] activations q, k, v:
//     qh = transpose(reshape(q, [B, S, H, D]), [0, 2, 1, 3]); kt = transpose(reshape(k, ...), [0, 2, 3, 1]);
//     vh = transpose(reshape(v, ...), [0, 2, 1, 3]);
//     p = softmax(binary(matmul(qh, kt), scale) [+ mask [B or 1, 1, 1, S]], axis = 3);
//     y = reshape(transpose(matmul(p, vh), [0, 2, 1, 3]), [B, S, F])
//                                    ->  y = attention(q, k, v[, mask]) {heads = H, scale}
// Matching starts at the pattern's distinctive node (reduce_mean, erf, tanh, softmax); the
// replacement takes over the pattern's final value (and so its name); interior nodes whose
// values nothing else reads are removed as dead. A constant all-zero mask is dropped.
#include <algorithm>
#include <cmath>
#include <set>

#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"

namespace sdnn::passes {
namespace {

using ir::Graph;
using ir::Node;
using ir::Value;

// The single node reading `v` (and v is no graph output), or nullptr.
Node* only_user(Graph& g, Value* v) {
  if (g.is_graph_output(v)) return nullptr;
  auto users = g.users(v);
  return users.size() == 1 ? users[0] : nullptr;
}

bool is_binary(const Node* n, const char* fn) {
  return n && n->op == "binary" && n->get_str("fn", "") == fn;
}
bool is_unary(const Node* n, const char* fn) { return n && n->op == "unary" && n->get_str("fn", "") == fn; }

// A float constant with one element close to `want` (relative tolerance for exporters' roundings).
bool is_scalar(const Value* v, double want) {
  if (!v || !v->f32 || v->numel() != 1) return false;
  const double x = (*v->f32)[0];
  return std::fabs(x - want) <= 1e-5 * std::fabs(want) + 1e-12;
}

// For a binary node with operand `known` on either side, the other operand (or nullptr).
Value* other(const Node* n, const Value* known) {
  if (n->inputs[0] == known) return n->inputs[1];
  if (n->inputs[1] == known) return n->inputs[0];
  return nullptr;
}

// For a binary node with a scalar constant ~ `c` on either side, the other operand.
Value* with_scalar(const Node* n, double c) {
  if (is_scalar(n->inputs[1], c)) return n->inputs[0];
  if (is_scalar(n->inputs[0], c)) return n->inputs[1];
  return nullptr;
}

bool reduces_last_axis(const Node* n) {
  if (!n || n->op != "reduce_mean" || n->get_int("keepdims", 1) == 0) return false;
  const auto axes = n->get_ints("axes");
  return axes.size() == 1 && axes[0] == static_cast<int64_t>(n->inputs[0]->shape.size()) - 1;
}

// A constant that broadcasts as a per-feature vector over [..., f]: returns it as [f] values.
bool feature_vector(const Value* c, int64_t f, std::vector<float>& out) {
  if (!c || !c->f32) return false;
  const int64_t last = c->shape.empty() ? 1 : c->shape.back();
  for (size_t i = 0; i + 1 < c->shape.size(); ++i)
    if (c->shape[i] != 1) return false;
  if (last != f && last != 1) return false;
  out.resize(f);
  for (int64_t i = 0; i < f; ++i) out[i] = (*c->f32)[last == 1 ? 0 : i];
  return true;
}

class FusePatterns : public Pass {
 public:
  const char* name() const override { return "fuse-patterns"; }

  bool run(Graph& g) override {
    changed_ = false;
    std::vector<Node*> work;
    for (const auto& n : g.nodes()) work.push_back(n.get());
    for (Node* n : work) {
      if (removed_.count(n)) continue;
      if (n->op == "reduce_mean") layer_norm(g, n);
      else if (is_unary(n, "erf")) gelu_erf(g, n);
      else if (is_unary(n, "tanh")) gelu_tanh(g, n);
      else if (n->op == "softmax") attention(g, n);
    }
    if (changed_) g.remove_dead();
    return changed_;
  }

 private:
  // Puts `op(inputs)` in place of `last`, taking over its output value.
  Node* replace(Graph& g, Node* last, const std::string& op, std::vector<Value*> inputs) {
    Value* out = last->outputs[0];
    Node* r = g.add_node(op, last->name, std::move(inputs), {out}, last);
    g.remove_node(last);
    removed_.insert(last);
    changed_ = true;
    return r;
  }

  void layer_norm(Graph& g, Node* m1) {
    if (!reduces_last_axis(m1)) return;
    Value* x = m1->inputs[0];
    const int64_t f = x->shape.back();
    Node* sub = only_user(g, m1->outputs[0]);
    if (!is_binary(sub, "sub") || sub->inputs[0] != x || sub->inputs[1] != m1->outputs[0]) return;
    Value* d = sub->outputs[0];
    if (g.is_graph_output(d)) return;
    Node *pw = nullptr, *dv = nullptr;
    for (Node* u : g.users(d)) {
      if ((is_binary(u, "pow") && u->inputs[0] == d && is_scalar(u->inputs[1], 2.0)) ||
          (is_binary(u, "mul") && u->inputs[0] == d && u->inputs[1] == d))
        pw = u;
      else if (is_binary(u, "div") && u->inputs[0] == d)
        dv = u;
      else
        return;
    }
    if (!pw || !dv) return;
    Node* m2 = only_user(g, pw->outputs[0]);
    if (!reduces_last_axis(m2)) return;
    Node* add_eps = only_user(g, m2->outputs[0]);
    if (!is_binary(add_eps, "add")) return;
    Value* eps = other(add_eps, m2->outputs[0]);
    if (!eps || !eps->f32 || eps->numel() != 1) return;
    Node* sq = only_user(g, add_eps->outputs[0]);
    if (!is_unary(sq, "sqrt") || dv->inputs[1] != sq->outputs[0]) return;
    // A constant of higher rank (epsilon [1, 1, 1, 1]) broadcasts the result past x's shape.
    if (dv->outputs[0]->shape != x->shape) return;
    // Optional scale and shift.
    Node* last = dv;
    std::vector<float> gamma(f, 1.0f), beta;
    Node* mul = only_user(g, dv->outputs[0]);
    if (is_binary(mul, "mul") && feature_vector(other(mul, dv->outputs[0]), f, gamma) &&
        mul->outputs[0]->shape == x->shape) {
      last = mul;
      Node* add = only_user(g, mul->outputs[0]);
      if (is_binary(add, "add") && feature_vector(other(add, mul->outputs[0]), f, beta) &&
          add->outputs[0]->shape == x->shape)
        last = add;
    } else {
      mul = nullptr;
    }
    std::vector<Value*> ins = {x, g.add_constant(last->name + ".gamma", {f}, std::move(gamma))};
    if (!beta.empty()) ins.push_back(g.add_constant(last->name + ".beta", {f}, std::move(beta)));
    Node* ln = replace(g, last, "layernorm", ins);
    ln->attrs["axis"] = static_cast<int64_t>(x->shape.size()) - 1;
    ln->attrs["epsilon"] = static_cast<double>((*eps->f32)[0]);
  }

  // From the node computing (1 + f(...)): finds x * that * 0.5 in the two nestings exporters
  // write; returns the last node of the product, or nullptr.
  Node* half_x_product(Graph& g, Node* one_plus, Value* x) {
    Node* m1 = only_user(g, one_plus->outputs[0]);
    if (!is_binary(m1, "mul")) return nullptr;
    Value* y = other(m1, one_plus->outputs[0]);
    if (y == x) {
      Node* m2 = only_user(g, m1->outputs[0]);
      return is_binary(m2, "mul") && with_scalar(m2, 0.5) == m1->outputs[0] ? m2 : nullptr;
    }
    Node* half = y ? y->producer : nullptr;
    return is_binary(half, "mul") && with_scalar(half, 0.5) == x ? m1 : nullptr;
  }

  void gelu_erf(Graph& g, Node* erf) {
    Node* scale = erf->inputs[0]->producer;
    Value* x = nullptr;
    if (is_binary(scale, "div") && is_scalar(scale->inputs[1], std::sqrt(2.0))) x = scale->inputs[0];
    if (is_binary(scale, "mul")) x = with_scalar(scale, std::sqrt(0.5));
    if (!x || x->is_constant() || g.users(erf->inputs[0]).size() != 1) return;
    Node* one_plus = only_user(g, erf->outputs[0]);
    if (!is_binary(one_plus, "add") || with_scalar(one_plus, 1.0) != erf->outputs[0]) return;
    Node* last = half_x_product(g, one_plus, x);
    if (!last || last->outputs[0]->shape != x->shape) return;
    replace(g, last, "unary", {x})->attrs["fn"] = std::string("gelu");
  }

  // x * x * x as mul(x, mul(x, x)), mul(mul(x, x), x) or pow(x, 3); the x, or nullptr.
  static Value* cube_of(const Node* n) {
    if (is_binary(n, "pow") && is_scalar(n->inputs[1], 3.0)) return n->inputs[0];
    if (!is_binary(n, "mul")) return nullptr;
    for (int side = 0; side < 2; ++side) {
      const Node* sq = n->inputs[side]->producer;
      Value* x = n->inputs[1 - side];
      if (is_binary(sq, "mul") && sq->inputs[0] == x && sq->inputs[1] == x) return x;
    }
    return nullptr;
  }

  void gelu_tanh(Graph& g, Node* th) {
    Node* outer = th->inputs[0]->producer;  // sqrt(2 / pi) * inner
    if (!is_binary(outer, "mul")) return;
    Value* inner = with_scalar(outer, std::sqrt(2.0 / M_PI));
    Node* add = inner ? inner->producer : nullptr;
    if (!is_binary(add, "add") && !(add && add->op == "add")) return;  // x + k: two activations
    Value* x = nullptr;
    for (int side = 0; side < 2 && !x; ++side) {
      Node* k = add->inputs[1 - side]->producer;  // 0.044715 * cube
      if (!is_binary(k, "mul")) continue;
      Value* cube = with_scalar(k, 0.044715);
      if (cube && cube->producer && cube_of(cube->producer) == add->inputs[side]) x = add->inputs[side];
    }
    if (!x || x->is_constant()) return;
    Node* one_plus = only_user(g, th->outputs[0]);
    if (!is_binary(one_plus, "add") || with_scalar(one_plus, 1.0) != th->outputs[0]) return;
    Node* last = half_x_product(g, one_plus, x);
    if (!last || last->outputs[0]->shape != x->shape) return;
    replace(g, last, "unary", {x})->attrs["fn"] = std::string("gelu_tanh");
  }

  // v = transpose(reshape(t [B, S, F] -> [B, S, H, D]), perm): returns t, or nullptr.
  static Value* head_split(const Value* v, const std::vector<int64_t>& perm, int64_t heads) {
    const Node* tr = v->producer;
    if (!tr || tr->op != "transpose" || tr->get_ints("perm") != perm) return nullptr;
    const Node* rs = tr->inputs[0]->producer;
    if (!rs || rs->op != "reshape") return nullptr;
    Value* t = rs->inputs[0];
    const ir::Shape& s4 = tr->inputs[0]->shape;
    if (t->is_constant() || t->shape.size() != 3 || s4.size() != 4 || s4[0] != t->shape[0] || s4[1] != t->shape[1] ||
        s4[2] != heads || s4[2] * s4[3] != t->shape[2])
      return nullptr;
    return t;
  }

  void attention(Graph& g, Node* sm) {
    const ir::Shape& s = sm->inputs[0]->shape;
    if (s.size() != 4 || sm->get_int("axis", -1) != 3 || s[2] != s[3]) return;
    const int64_t batch = s[0], heads = s[1], seq = s[3];
    Value* t = sm->inputs[0];
    Value* mask = nullptr;
    Node* p = t->producer;
    if (is_binary(p, "add") && g.users(t).size() == 1) {
      // scores + mask, the mask [B or 1, 1, 1, S] on either side
      for (int side = 0; side < 2; ++side) {
        Value* m = p->inputs[side];
        const ir::Shape& ms = m->shape;
        if (p->inputs[1 - side]->shape == s && ms.size() == 4 && (ms[0] == 1 || ms[0] == batch) && ms[1] == 1 &&
            ms[2] == 1 && ms[3] == seq) {
          mask = m;
          t = p->inputs[1 - side];
          break;
        }
      }
      if (!mask) return;
      p = t->producer;
    }
    double scale = 1.0;
    if ((is_binary(p, "div") || is_binary(p, "mul")) && p->inputs[0]->shape == s && p->inputs[1]->f32 &&
        p->inputs[1]->numel() == 1 && g.users(t).size() == 1) {
      const double c = (*p->inputs[1]->f32)[0];
      scale = p->get_str("fn", "") == "div" ? 1.0 / c : c;
      t = p->inputs[0];
      p = t->producer;
    }
    if (!p || p->op != "matmul") return;
    Value* q = head_split(p->inputs[0], {0, 2, 1, 3}, heads);
    Value* k = head_split(p->inputs[1], {0, 2, 3, 1}, heads);
    if (!q || !k || q->shape[1] != seq || k->shape != q->shape) return;
    Node* pv = only_user(g, sm->outputs[0]);
    if (!pv || pv->op != "matmul" || pv->inputs[0] != sm->outputs[0]) return;
    Value* v = head_split(pv->inputs[1], {0, 2, 1, 3}, heads);
    if (!v || v->shape != q->shape) return;
    Node* back = only_user(g, pv->outputs[0]);
    if (!back || back->op != "transpose" || back->get_ints("perm") != std::vector<int64_t>{0, 2, 1, 3}) return;
    Node* merge = only_user(g, back->outputs[0]);
    if (!merge || merge->op != "reshape" || merge->outputs[0]->shape != q->shape) return;
    std::vector<Value*> ins = {q, k, v};
    if (mask && !(mask->f32 && std::all_of(mask->f32->begin(), mask->f32->end(), [](float m) { return m == 0.0f; })))
      ins.push_back(mask);
    Node* at = replace(g, merge, "attention", ins);
    at->attrs["heads"] = heads;
    at->attrs["scale"] = scale;
  }

  std::set<const Node*> removed_;
  bool changed_ = false;
};

}  // namespace

std::unique_ptr<Pass> make_fuse_patterns() { return std::make_unique<FusePatterns>(); }

}  // namespace sdnn::passes
