// verifier.cpp — structural checks of a Graph and shape inference of the compiler's own ops.
//
// Run after the frontend and after every pass: a pass that breaks topological order, leaves a
// dangling value or produces a shape its op cannot have is caught here, with the pass named.
#include <algorithm>
#include <cctype>
#include <set>

#include "sdnn/ir/error.h"
#include "sdnn/ir/graph.h"

namespace sdnn::ir {
namespace {

const Value& in(const Node& n, size_t i) {
  if (i >= n.inputs.size() || !n.inputs[i]) fail(n.where(), ": missing input ", i);
  return *n.inputs[i];
}

// Output height and width of a windowed op (attrs kernel, strides, pads [t, l, b, r], dilations).
std::pair<int64_t, int64_t> window_out(const Node& n, const Shape& x) {
  const auto k = n.get_ints("kernel"), st = n.get_ints("strides"), p = n.get_ints("pads"), d = n.get_ints("dilations");
  if (x.size() != 4 || k.size() != 2 || st.size() != 2 || p.size() != 4 || d.size() != 2)
    fail(n.where(), ": needs an NCHW input and kernel / strides / pads / dilations attributes");
  // A max pool reading a direct convolution's grid ({width}): the first `width` columns are data.
  const int64_t width = n.has("width") ? n.get_int("width", 0) : x[3];
  if (width < 1 || width > x[3]) fail(n.where(), ": width ", width, " is not within the input's ", x[3], " columns");
  int64_t out[2];
  for (int i = 0; i < 2; ++i) {
    const int64_t span = d[i] * (k[i] - 1) + 1, padded = (i ? width : x[2]) + p[i] + p[i + 2];
    if (padded < span || st[i] < 1) fail(n.where(), ": window larger than the padded input");
    out[i] = (padded - span) / st[i] + 1;
  }
  return {out[0], out[1]};
}

}  // namespace

bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out) {
  const size_t r = std::max(a.size(), b.size());
  out.assign(r, 1);
  for (size_t i = 0; i < r; ++i) {
    const int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    const int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1) return false;
    out[i] = da == 1 ? db : da;
  }
  return true;
}

std::vector<Shape> infer_shapes(const Node& n) {
  const std::string& op = n.op;
  if (op == "fc") {
    const Shape& x = in(n, 0).shape;
    const Shape& w = in(n, 1).shape;
    if (w.size() != 2 || x.empty() || x.back() != w[1])
      fail(n.where(), ": input ", shape_to_string(x), " does not match weight ", shape_to_string(w));
    if (n.inputs.size() > 2 && n.inputs[2] && n.inputs[2]->shape != Shape{w[0]})
      fail(n.where(), ": bias shape ", shape_to_string(n.inputs[2]->shape), " is not [", w[0], "]");
    Shape y = x;
    y.back() = w[0];
    if (n.inputs.size() > 3 && n.inputs[3] && n.inputs[3]->shape != y)
      fail(n.where(), ": residual ", shape_to_string(n.inputs[3]->shape), " is not the output's ", shape_to_string(y));
    return {y};
  }
  if (op == "conv1x1") {
    const Shape& x = in(n, 0).shape;
    const Shape& w = in(n, 1).shape;
    if (x.size() != 4 || w.size() != 2 || x[1] != w[1])
      fail(n.where(), ": input ", shape_to_string(x), " does not match weight ", shape_to_string(w));
    if (n.inputs.size() > 2 && n.inputs[2] && n.inputs[2]->shape != Shape{w[0]})
      fail(n.where(), ": bias shape ", shape_to_string(n.inputs[2]->shape), " is not [", w[0], "]");
    const Shape y = {x[0], w[0], x[2], x[3]};
    if (n.inputs.size() > 3 && n.inputs[3] && n.inputs[3]->shape != y)
      fail(n.where(), ": residual ", shape_to_string(n.inputs[3]->shape), " is not the output's ", shape_to_string(y));
    return {y};
  }
  if (op == "relu" || op == "copy" || op == "layout" || op == "clip") return {in(n, 0).shape};
  if (op == "im2col" || op == "depthwise" || op == "maxpool" || op == "avgpool") {
    const Shape& x = in(n, 0).shape;
    auto [h, w] = window_out(n, x);
    if (op == "im2col") {
      const auto k = n.get_ints("kernel");
      return {{x[0], x[1] * k[0] * k[1], h, w}};
    }
    if (op == "depthwise") {
      const Shape& wt = in(n, 1).shape;
      const auto k = n.get_ints("kernel");
      if (wt.size() != 2 || wt[0] != x[1] || wt[1] != k[0] * k[1])
        fail(n.where(), ": weight ", shape_to_string(wt), " does not match ", x[1], " channels of ", k[0], "x", k[1]);
    }
    return {{x[0], x[1], h, w}};
  }
  if (op == "gap") {
    const Shape& x = in(n, 0).shape;
    if (x.size() != 4) fail(n.where(), ": needs an NCHW input");
    return {{x[0], x[1], 1, 1}};
  }
  if (op == "add") {
    if (in(n, 0).shape != in(n, 1).shape)
      fail(n.where(), ": operand shapes ", shape_to_string(in(n, 0).shape), " and ",
           shape_to_string(in(n, 1).shape), " differ");
    return {in(n, 0).shape};
  }
  if (op == "unary" || op == "softmax" || op == "layernorm") return {in(n, 0).shape};
  if (op == "binary") {
    Shape y;
    if (!broadcast_shapes(in(n, 0).shape, in(n, 1).shape, y))
      fail(n.where(), ": operand shapes ", shape_to_string(in(n, 0).shape), " and ",
           shape_to_string(in(n, 1).shape), " do not broadcast");
    return {y};
  }
  if (op == "reduce_mean") {
    const Shape& x = in(n, 0).shape;
    const auto axes = n.get_ints("axes");
    const bool keep = n.get_int("keepdims", 1) != 0;
    Shape y;
    for (size_t i = 0; i < x.size(); ++i) {
      bool reduced = false;
      for (int64_t a : axes) reduced |= a == static_cast<int64_t>(i);
      if (!reduced) y.push_back(x[i]);
      else if (keep) y.push_back(1);
    }
    return {y};
  }
  if (op == "transpose") {
    const Shape& x = in(n, 0).shape;
    const auto perm = n.get_ints("perm");
    if (perm.size() != x.size()) fail(n.where(), ": perm does not match the rank");
    Shape y;
    for (int64_t p : perm) {
      if (p < 0 || p >= static_cast<int64_t>(x.size())) fail(n.where(), ": perm out of range");
      y.push_back(x[p]);
    }
    return {y};
  }
  if (op == "matmul") {
    const Shape &a = in(n, 0).shape, &b = in(n, 1).shape;
    if (a.size() < 2 || b.size() < 2 || a.back() != b[b.size() - 2])
      fail(n.where(), ": operands ", shape_to_string(a), " and ", shape_to_string(b), " do not multiply");
    Shape y;
    if (!broadcast_shapes(Shape(a.begin(), a.end() - 2), Shape(b.begin(), b.end() - 2), y))
      fail(n.where(), ": batch dims of ", shape_to_string(a), " and ", shape_to_string(b), " do not broadcast");
    y.push_back(a[a.size() - 2]);
    y.push_back(b.back());
    return {y};
  }
  if (op == "cast") return {in(n, 0).shape};
  if (op == "embedding") {
    const Shape& t = in(n, 0).shape;
    Shape y = in(n, 1).shape;
    if (t.size() != 2 || in(n, 1).dtype != DType::I64) fail(n.where(), ": needs a 2-D table and int64 indices");
    y.push_back(t[1]);
    return {y};
  }
  if (op == "pad_planes") {
    // [B, C, H, W] -> [B, C * Sh * Sw, rows, ceil((W + pl + pr) / Sw)], rows >= the padded height's
    Shape x = in(n, 0).shape;
    const auto st = n.get_ints("strides"), p = n.get_ints("pads");
    const Shape& y = n.outputs[0]->shape;
    if (n.has("width") && x.size() == 4) {  // a grid input: only `width` of its columns are data
      if (n.get_int("width", 0) > x[3] || n.get_int("width", 0) < 1) fail(n.where(), ": width exceeds the input");
      x[3] = n.get_int("width", 0);
    }
    if (x.size() != 4 || st.size() != 2 || p.size() != 4 || y.size() != 4 || y[0] != x[0] ||
        y[1] != x[1] * st[0] * st[1] || y[3] != (x[3] + p[1] + p[3] + st[1] - 1) / st[1] ||
        y[2] < (x[2] + p[0] + p[2] + st[0] - 1) / st[0])
      fail(n.where(), ": planes ", shape_to_string(y), " do not fit input ", shape_to_string(x));
    return {y};
  }
  if (op == "conv_direct") {
    const Shape& x = in(n, 0).shape;
    const Shape& w = in(n, 1).shape;
    const auto k = n.get_ints("kernel_shape"), st = n.get_ints("strides");
    const int64_t c = n.get_int("in_channels", 0);
    const Shape& y = n.outputs[0]->shape;
    if (x.size() != 4 || w.size() != 2 || k.size() != 2 || st.size() != 2 || w[1] != c * k[0] * k[1] ||
        x[1] != c * st[0] * st[1] || y.size() != 4 || y[0] != x[0] || y[1] != w[0] || y[3] != x[3])
      fail(n.where(), ": weight ", shape_to_string(w), " / output ", shape_to_string(y), " do not match planes ",
           shape_to_string(x));
    if (n.has("masked") && (k != std::vector<int64_t>{3, 3} || st != std::vector<int64_t>{1, 1} || y[2] != x[2] ||
                            n.get_ints("masked") != std::vector<int64_t>{x[2], x[3]}))
      fail(n.where(), ": a masked direct convolution is 3x3, stride 1, over its input's ", x[2], "x", x[3], " image");
    return {y};
  }
  if (op == "crop") {
    const Shape& x = in(n, 0).shape;
    const Shape& y = n.outputs[0]->shape;
    // Output (y, x) is input (y * sh, x * sw); without strides the rows are all kept.
    const auto st = n.has("strides") ? n.get_ints("strides") : std::vector<int64_t>{1, 1};
    if (st.size() != 2 || st[0] < 1 || st[1] < 1)
      fail(n.where(), ": a crop's strides must be two positive integers");
    if (x.size() != 4 || y.size() != 4 || x[0] != y[0] || x[1] != y[1] || y[2] < 1 || y[3] < 1 ||
        (n.has("strides") ? (y[2] - 1) * st[0] >= x[2] : x[2] != y[2]) || (y[3] - 1) * st[1] >= x[3])
      fail(n.where(), ": cannot crop ", shape_to_string(x), " to ", shape_to_string(y));
    if (n.inputs.size() > 2 || (n.inputs.size() == 2 && in(n, 1).shape != y))
      fail(n.where(), ": a crop's residual must have the output's shape ", shape_to_string(y));
    return {y};
  }
  if (op == "slice") {
    const Shape& x = in(n, 0).shape;
    const auto st = n.get_ints("starts"), step = n.get_ints("steps"), cnt = n.get_ints("counts");
    if (st.size() != x.size() || step.size() != x.size() || cnt.size() != x.size())
      fail(n.where(), ": starts / steps / counts do not match the rank");
    for (size_t d = 0; d < x.size(); ++d)
      if (st[d] < 0 || st[d] >= x[d] || step[d] == 0 || cnt[d] < 1 || st[d] + (cnt[d] - 1) * step[d] < 0 ||
          st[d] + (cnt[d] - 1) * step[d] >= x[d])
        fail(n.where(), ": slice of dim ", d, " leaves the input");
    return {Shape(cnt.begin(), cnt.end())};
  }
  if (op == "concat") {
    const int64_t axis = n.get_int("axis", 0);
    Shape y = in(n, 0).shape;
    if (axis < 0 || axis >= static_cast<int64_t>(y.size())) fail(n.where(), ": axis out of range");
    y[axis] = 0;
    for (size_t i = 0; i < n.inputs.size(); ++i) {
      Shape s = in(n, i).shape;
      if (s.size() != y.size()) fail(n.where(), ": inputs differ in rank");
      y[axis] += s[axis];
      s[axis] = y[axis];
      if (s != y) fail(n.where(), ": input ", i, " does not concatenate");
    }
    return {y};
  }
  if (op == "gather") {
    const Shape& x = in(n, 0).shape;
    const int64_t axis = n.get_int("axis", 0);
    if (axis < 0 || axis >= static_cast<int64_t>(x.size())) fail(n.where(), ": axis out of range");
    for (int64_t i : n.get_ints("indices"))
      if (i < 0 || i >= x[axis]) fail(n.where(), ": index ", i, " out of range");
    // The indices' own shape sits between the outer and inner dims: check the element count.
    const Shape& y = n.outputs[0]->shape;
    if (num_elements(y) != num_elements(x) / x[axis] * static_cast<int64_t>(n.get_ints("indices").size()))
      fail(n.where(), ": output ", shape_to_string(y), " does not match the indices");
    return {y};
  }
  if (op == "attention") {
    // q, k, v [B, S, F]; mask [Bm, 1, 1, S] (optional).
    const Shape& q = in(n, 0).shape;
    if (q.size() != 3 || in(n, 1).shape != q || in(n, 2).shape != q)
      fail(n.where(), ": q, k, v must be [B, S, F] of one shape");
    const int64_t heads = n.get_int("heads", 0);
    if (heads < 1 || q[2] % heads) fail(n.where(), ": heads does not divide the features");
    if (n.inputs.size() > 3 && n.inputs[3]) {
      const Shape& m = n.inputs[3]->shape;
      if (m.size() != 4 || (m[0] != 1 && m[0] != q[0]) || m[1] != 1 || m[2] != 1 || m[3] != q[1])
        fail(n.where(), ": mask ", shape_to_string(m), " is not [B or 1, 1, 1, S]");
    }
    return {q};
  }
  if (op == "reshape") {
    Shape y = n.get_ints("shape");
    if (num_elements(y) != in(n, 0).numel())
      fail(n.where(), ": cannot reshape ", shape_to_string(in(n, 0).shape), " to ", shape_to_string(y));
    return {y};
  }
  fail(n.where(), ": no shape inference for op '", op, "'");
}

void verify(const Graph& g, const std::string& stage) {
  auto bad = [&](const std::string& what) { fail("IR verification failed after ", stage, ": ", what); };
  std::set<const Value*> defined(g.inputs().begin(), g.inputs().end());
  std::set<const Node*> seen;
  for (const auto& np : g.nodes()) {
    const Node& n = *np;
    for (const Value* v : n.inputs) {
      if (!v) continue;
      if (!v->is_constant() && !defined.count(v))
        bad(str_cat(n.where(), " uses a value '", v->name, "' that is not defined before it"));
    }
    for (const Value* v : n.outputs) {
      if (v->producer != &n) bad(str_cat(n.where(), " output '", v->name, "' has another producer"));
      if (!defined.insert(v).second) bad(str_cat("value '", v->name, "' is defined twice"));
    }
    // Compiler ops are lower-case; imported ONNX ops keep the shapes the frontend gave them.
    if (!n.op.empty() && std::islower(static_cast<unsigned char>(n.op[0]))) {
      std::vector<Shape> shapes = infer_shapes(n);
      for (size_t i = 0; i < shapes.size() && i < n.outputs.size(); ++i)
        if (shapes[i] != n.outputs[i]->shape)
          bad(str_cat(n.where(), " output shape ", shape_to_string(n.outputs[i]->shape),
                      " but its inputs give ", shape_to_string(shapes[i])));
    }
    seen.insert(&n);
  }
  for (const Value* v : g.outputs())
    if (!defined.count(v) && !v->is_constant()) bad(str_cat("graph output '", v->name, "' is never defined"));
}

}  // namespace sdnn::ir
