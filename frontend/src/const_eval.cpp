// const_eval.cpp — see const_eval.h. numpy broadcasting, ONNX attribute defaults per opset.
#include "const_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>

#include "sdnn/ir/error.h"

namespace sdnn::frontend {
namespace {

using ir::Shape;

const onnx::AttributeProto* find_attr(const onnx::NodeProto& p, const char* key) {
  for (const auto& a : p.attribute())
    if (a.name() == key) return &a;
  return nullptr;
}
// An attribute whose type is set and is not `want` is an error (see the importer's attr()).
const onnx::AttributeProto* typed_attr(const onnx::NodeProto& p, const char* key, onnx::AttributeProto::AttributeType want) {
  const auto* a = find_attr(p, key);
  if (a && a->type() != onnx::AttributeProto::UNDEFINED && a->type() != want)
    fail("attribute '", key, "' is ", onnx::AttributeProto::AttributeType_Name(a->type()), ", expected ",
         onnx::AttributeProto::AttributeType_Name(want));
  return a;
}
int64_t attr_i(const onnx::NodeProto& p, const char* key, int64_t dflt) {
  const auto* a = typed_attr(p, key, onnx::AttributeProto::INT);
  return a ? a->i() : dflt;
}
std::vector<int64_t> attr_ints(const onnx::NodeProto& p, const char* key) {
  const auto* a = typed_attr(p, key, onnx::AttributeProto::INTS);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}

std::vector<int64_t> ints_of(const ConstTensor* t, const char* what) {
  if (!t) fail("missing input ", what);
  if (t->is_float) fail("input ", what, " must be an integer tensor");
  std::vector<int64_t> out;
  for (double x : t->v) out.push_back(to_int64(x));
  return out;
}

// A shape read from a constant tensor (ConstantOfShape, Expand): no negative dims, and few enough
// elements to hold at compile time.
Shape checked_shape(const std::vector<int64_t>& dims) {
  constexpr int64_t kMaxElements = int64_t{1} << 28;  // 1 GiB of floats
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0) fail("shape [", ir::shape_to_string(Shape(dims.begin(), dims.end())), "] has a negative dimension");
    if (d > 0 && n > kMaxElements / d) fail("shape [", ir::shape_to_string(Shape(dims.begin(), dims.end())), "] is too large to fold");
    n *= d;
  }
  return Shape(dims.begin(), dims.end());
}

int64_t norm_axis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank) fail("axis ", axis, " is out of range for rank ", rank);
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> strides_of(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (int64_t i = static_cast<int64_t>(s.size()) - 2; i >= 0; --i) st[i] = st[i + 1] * s[i + 1];
  return st;
}

Shape broadcast(const Shape& a, const Shape& b) {
  const size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i + a.size() >= r ? a[i + a.size() - r] : 1;
    int64_t db = i + b.size() >= r ? b[i + b.size() - r] : 1;
    if (da != db && da != 1 && db != 1)
      fail("shapes [", ir::shape_to_string(a), "] and [", ir::shape_to_string(b), "] cannot be broadcast");
    out[i] = std::max(da, db);
  }
  return out;
}

// Element of `t` read at the output index `idx` (of shape `out`) under broadcasting.
double at_broadcast(const ConstTensor& t, const Shape& out, const std::vector<int64_t>& idx) {
  const size_t off = out.size() - t.shape.size();
  int64_t flat = 0;
  for (size_t i = 0; i < t.shape.size(); ++i) flat = flat * t.shape[i] + (t.shape[i] == 1 ? 0 : idx[off + i]);
  return t.v[flat];
}

ConstTensor elementwise(const std::vector<const ConstTensor*>& in, bool is_float,
                        const std::function<double(const std::vector<double>&)>& f) {
  Shape out_shape;
  for (const ConstTensor* t : in) out_shape = broadcast(out_shape, t->shape);
  ConstTensor out;
  out.is_float = is_float;
  out.shape = out_shape;
  const int64_t n = ir::num_elements(out_shape);
  out.v.resize(n);
  std::vector<int64_t> idx(out_shape.size(), 0);
  std::vector<double> args(in.size());
  for (int64_t e = 0; e < n; ++e) {
    for (size_t j = 0; j < in.size(); ++j) args[j] = at_broadcast(*in[j], out_shape, idx);
    out.v[e] = f(args);
    for (int64_t d = static_cast<int64_t>(idx.size()) - 1; d >= 0 && ++idx[d] == out_shape[d]; --d) idx[d] = 0;
  }
  return out;
}

double round_like(double x, bool is_float) { return is_float ? static_cast<double>(static_cast<float>(x)) : x; }

ConstTensor binary(const std::string& op, const ConstTensor& a, const ConstTensor& b) {
  if (op == "Equal" || op == "Less" || op == "Greater")
    return elementwise({&a, &b}, false, [&](const std::vector<double>& x) {
      return op == "Equal" ? double(x[0] == x[1]) : op == "Less" ? double(x[0] < x[1]) : double(x[0] > x[1]);
    });
  if (a.is_float != b.is_float) fail("operands have different data types");
  const bool fl = a.is_float;
  return elementwise({&a, &b}, fl, [&](const std::vector<double>& x) {
    double r;
    if (op == "Add") r = x[0] + x[1];
    else if (op == "Sub") r = x[0] - x[1];
    else if (op == "Mul") r = x[0] * x[1];
    else if (op == "Div") {
      if (!fl && x[1] == 0) fail("integer division by zero");
      r = fl ? x[0] / x[1] : std::trunc(x[0] / x[1]);
    } else {
      r = std::pow(x[0], x[1]);  // Pow
    }
    return round_like(r, fl);
  });
}

ConstTensor reshape_to(const ConstTensor& t, const Shape& s) {
  if (ir::num_elements(s) != t.numel()) fail("cannot reshape [", ir::shape_to_string(t.shape), "] to [", ir::shape_to_string(s), "]");
  ConstTensor out = t;
  out.shape = s;
  return out;
}

ConstTensor transpose(const ConstTensor& t, std::vector<int64_t> perm) {
  const int64_t r = static_cast<int64_t>(t.shape.size());
  if (perm.empty())
    for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
  if (static_cast<int64_t>(perm.size()) != r) fail("perm has ", perm.size(), " entries for rank ", r);
  Shape out_shape(r);
  for (int64_t i = 0; i < r; ++i) out_shape[i] = t.shape[norm_axis(perm[i], r)];
  const auto in_st = strides_of(t.shape);
  ConstTensor out;
  out.is_float = t.is_float;
  out.shape = out_shape;
  out.v.resize(t.v.size());
  std::vector<int64_t> idx(r, 0);
  for (size_t e = 0; e < out.v.size(); ++e) {
    int64_t src = 0;
    for (int64_t i = 0; i < r; ++i) src += idx[i] * in_st[norm_axis(perm[i], r)];
    out.v[e] = t.v[src];
    for (int64_t d = r - 1; d >= 0 && ++idx[d] == out_shape[d]; --d) idx[d] = 0;
  }
  return out;
}

ConstTensor gather(const ConstTensor& data, const ConstTensor& indices, int64_t axis) {
  const int64_t r = static_cast<int64_t>(data.shape.size());
  if (r == 0) fail("Gather on a scalar");
  axis = norm_axis(axis, r);
  Shape out_shape(data.shape.begin(), data.shape.begin() + axis);
  out_shape.insert(out_shape.end(), indices.shape.begin(), indices.shape.end());
  out_shape.insert(out_shape.end(), data.shape.begin() + axis + 1, data.shape.end());
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= data.shape[i];
  for (int64_t i = axis + 1; i < r; ++i) inner *= data.shape[i];
  const int64_t dim = data.shape[axis];
  ConstTensor out;
  out.is_float = data.is_float;
  out.shape = out_shape;
  for (int64_t o = 0; o < outer; ++o)
    for (double xi : indices.v) {
      int64_t i = to_int64(xi);
      if (i < -dim || i >= dim) fail("index ", i, " is out of range for a dimension of ", dim);
      if (i < 0) i += dim;
      for (int64_t j = 0; j < inner; ++j) out.v.push_back(data.v[(o * dim + i) * inner + j]);
    }
  return out;
}

ConstTensor concat(const std::vector<const ConstTensor*>& in, int64_t axis) {
  if (in.empty()) fail("Concat of nothing");
  for (const ConstTensor* t : in)
    if (!t) fail("an input is missing");
  const int64_t r = static_cast<int64_t>(in[0]->shape.size());
  axis = norm_axis(axis, r);
  Shape out_shape = in[0]->shape;
  out_shape[axis] = 0;
  for (const ConstTensor* t : in) {
    if (static_cast<int64_t>(t->shape.size()) != r || t->is_float != in[0]->is_float)
      fail("Concat inputs differ in rank or data type");
    for (int64_t i = 0; i < r; ++i)
      if (i != axis && t->shape[i] != in[0]->shape[i]) fail("Concat inputs differ in dim ", i);
    out_shape[axis] += t->shape[axis];
  }
  int64_t outer = 1;
  for (int64_t i = 0; i < axis; ++i) outer *= out_shape[i];
  ConstTensor out;
  out.is_float = in[0]->is_float;
  out.shape = out_shape;
  for (int64_t o = 0; o < outer; ++o)
    for (const ConstTensor* t : in) {
      const int64_t chunk = t->numel() / std::max<int64_t>(outer, 1);
      out.v.insert(out.v.end(), t->v.begin() + o * chunk, t->v.begin() + (o + 1) * chunk);
    }
  return out;
}

}  // namespace

SliceGeometry slice_geometry(const ir::Shape& shape, std::vector<int64_t> starts, std::vector<int64_t> ends,
                             std::vector<int64_t> axes, std::vector<int64_t> steps) {
  const int64_t r = static_cast<int64_t>(shape.size());
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
    fail("starts, ends, axes and steps differ in length");
  SliceGeometry g{std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 1), Shape(shape.begin(), shape.end())};
  std::vector<bool> seen(r, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t a = norm_axis(axes[i], r), dim = shape[a], st = steps[i];
    if (seen[a]) fail("axis ", axes[i], " is sliced twice");
    seen[a] = true;
    if (st == 0) fail("slice step 0");
    int64_t s = starts[i] < 0 ? starts[i] + dim : starts[i];
    int64_t e = ends[i] < 0 ? ends[i] + dim : ends[i];
    if (st > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
    } else {
      s = std::clamp<int64_t>(s, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
    }
    g.start[a] = s;
    g.step[a] = st;
    g.count[a] = st > 0 ? std::max<int64_t>(0, (e - s + st - 1) / st) : std::max<int64_t>(0, (s - e - st - 1) / -st);
  }
  return g;
}

namespace {

ConstTensor slice(const ConstTensor& t, std::vector<int64_t> starts, std::vector<int64_t> ends,
                  std::vector<int64_t> axes, std::vector<int64_t> steps) {
  const int64_t r = static_cast<int64_t>(t.shape.size());
  const SliceGeometry geo = slice_geometry(t.shape, starts, ends, axes, steps);
  const std::vector<int64_t>&lo = geo.start, &step = geo.step, &count = geo.count;
  const auto in_st = strides_of(t.shape);
  ConstTensor out;
  out.is_float = t.is_float;
  out.shape = Shape(count.begin(), count.end());
  const int64_t n = ir::num_elements(out.shape);
  std::vector<int64_t> idx(r, 0);
  for (int64_t e = 0; e < n; ++e) {
    int64_t src = 0;
    for (int64_t i = 0; i < r; ++i) src += (lo[i] + idx[i] * step[i]) * in_st[i];
    out.v.push_back(t.v[src]);
    for (int64_t d = r - 1; d >= 0 && ++idx[d] == count[d]; --d) idx[d] = 0;
  }
  return out;
}

ConstTensor from_onnx_tensor(const onnx::TensorProto& t) {
  ConstTensor out;
  out.shape = Shape(t.dims().begin(), t.dims().end());
  const int64_t n = ir::num_elements(out.shape);
  const std::string& raw = t.raw_data();
  const int64_t elem = t.data_type() == onnx::TensorProto::INT64 ? 8 : 4;
  if (!raw.empty() && static_cast<int64_t>(raw.size()) != n * elem) fail("value tensor has ", raw.size(), " bytes of raw data, expected ", n * elem);
  if (raw.empty()) {
    const int64_t have = t.data_type() == onnx::TensorProto::FLOAT ? t.float_data_size()
                         : t.data_type() == onnx::TensorProto::INT64 ? t.int64_data_size()
                                                                     : t.int32_data_size();
    if (have != n) fail("value tensor has ", have, " values, expected ", n);
  }
  if (t.data_type() == onnx::TensorProto::FLOAT) {
    out.is_float = true;
    for (int64_t i = 0; i < n; ++i) {
      float x = 0;
      if (!raw.empty()) std::memcpy(&x, raw.data() + 4 * i, 4);
      else x = t.float_data(static_cast<int>(i));
      out.v.push_back(x);
    }
  } else if (t.data_type() == onnx::TensorProto::INT64 || t.data_type() == onnx::TensorProto::INT32) {
    out.is_float = false;
    const size_t sz = t.data_type() == onnx::TensorProto::INT64 ? 8 : 4;
    for (int64_t i = 0; i < n; ++i) {
      int64_t x = 0;
      if (!raw.empty()) {
        if (sz == 8) std::memcpy(&x, raw.data() + 8 * i, 8);
        else {
          int32_t y;
          std::memcpy(&y, raw.data() + 4 * i, 4);
          x = y;
        }
      } else {
        x = sz == 8 ? t.int64_data(static_cast<int>(i)) : t.int32_data(static_cast<int>(i));
      }
      out.v.push_back(static_cast<double>(x));
    }
  } else {
    fail("a value tensor of data type ", t.data_type(), " is not supported");
  }
  if (static_cast<int64_t>(out.v.size()) != n) fail("value tensor has the wrong number of elements");
  return out;
}

const std::set<std::string> kFoldable = {"Add", "Cast", "Concat", "ConstantOfShape", "Div", "Equal", "Expand",
                                         "Flatten", "Gather", "Greater", "Identity", "Less", "Mul", "Neg",
                                         "Not", "Pow", "Range", "Reshape", "Slice", "Sqrt", "Squeeze", "Sub",
                                         "Transpose", "Unsqueeze", "Where"};

}  // namespace

int64_t to_int64(double x) {
  if (x >= 9223372036854775807.0) return INT64_MAX;
  if (x <= -9223372036854775808.0) return INT64_MIN;
  return static_cast<int64_t>(x);
}

ConstTensor ConstTensor::of(const ir::Value& value) {
  ConstTensor t;
  t.shape = value.shape;
  if (value.f32) {
    t.is_float = true;
    t.v.assign(value.f32->begin(), value.f32->end());
  } else {
    SDNN_CHECK(value.i64 != nullptr);
    t.is_float = false;
    for (int64_t x : *value.i64) t.v.push_back(static_cast<double>(x));
  }
  return t;
}

bool can_fold(const std::string& op) { return kFoldable.count(op) != 0; }

Shape unsqueeze_shape(const Shape& in, std::vector<int64_t> axes) {
  const int64_t r = static_cast<int64_t>(in.size() + axes.size());
  for (int64_t& a : axes) a = norm_axis(a, r);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) fail("repeated axis");
  Shape out;
  size_t next = 0;
  for (int64_t i = 0; i < r; ++i) {
    if (std::binary_search(axes.begin(), axes.end(), i)) out.push_back(1);
    else out.push_back(in[next++]);
  }
  return out;
}

Shape squeeze_shape(const Shape& in, std::vector<int64_t> axes) {
  const int64_t r = static_cast<int64_t>(in.size());
  for (int64_t& a : axes) a = norm_axis(a, r);
  Shape out;
  for (int64_t i = 0; i < r; ++i) {
    const bool listed = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (listed && in[i] != 1) fail("cannot squeeze dim ", i, " of size ", in[i]);
    if ((axes.empty() && in[i] == 1) || listed) continue;
    out.push_back(in[i]);
  }
  return out;
}

std::vector<ConstTensor> fold(const onnx::NodeProto& p, int64_t opset, const std::vector<const ConstTensor*>& in) {
  const std::string& op = p.op_type();
  auto input = [&](size_t i) -> const ConstTensor& {
    if (i >= in.size() || !in[i]) fail("input ", i, " is required");
    return *in[i];
  };
  auto opt = [&](size_t i) -> const ConstTensor* { return i < in.size() ? in[i] : nullptr; };
  if (op == "Identity") return {input(0)};
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" || op == "Equal" || op == "Less" ||
      op == "Greater")
    return {binary(op, input(0), input(1))};
  if (op == "Neg" || op == "Sqrt" || op == "Not") {
    const ConstTensor& a = input(0);
    return {elementwise({&a}, op == "Not" ? false : a.is_float, [&](const std::vector<double>& x) {
      if (op == "Neg") return -x[0];
      if (op == "Not") return double(x[0] == 0);
      return round_like(std::sqrt(x[0]), true);
    })};
  }
  if (op == "Where") {
    const ConstTensor &c = input(0), &a = input(1), &b = input(2);
    return {elementwise({&c, &a, &b}, a.is_float, [](const std::vector<double>& x) { return x[0] != 0 ? x[1] : x[2]; })};
  }
  if (op == "Cast") {
    const int64_t to = attr_i(p, "to", 1);
    ConstTensor t = input(0);
    if (to == onnx::TensorProto::FLOAT || to == onnx::TensorProto::DOUBLE) {
      t.is_float = true;
      for (double& x : t.v) x = round_like(x, true);
    } else if (to == onnx::TensorProto::INT64 || to == onnx::TensorProto::INT32 || to == onnx::TensorProto::BOOL) {
      t.is_float = false;
      for (double& x : t.v) x = to == onnx::TensorProto::BOOL ? double(x != 0) : std::trunc(x);
    } else {
      fail("Cast to data type ", to, " is not supported");
    }
    return {t};
  }
  if (op == "Reshape") {
    const ConstTensor& t = input(0);
    std::vector<int64_t> s = ints_of(opt(1), "shape");
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == 0 && attr_i(p, "allowzero", 0) == 0) {
        if (i >= t.shape.size()) fail("shape has a 0 beyond the input's rank");
        s[i] = t.shape[i];
      }
      if (s[i] == -1) infer = static_cast<int64_t>(i);
      else known *= s[i];
    }
    if (infer >= 0) s[infer] = known ? t.numel() / known : 0;
    return {reshape_to(t, Shape(s.begin(), s.end()))};
  }
  if (op == "Flatten") {
    const ConstTensor& t = input(0);
    const int64_t r = static_cast<int64_t>(t.shape.size());
    int64_t axis = attr_i(p, "axis", 1);
    if (axis < -r || axis > r) fail("axis ", axis, " is out of range for rank ", r);
    if (axis < 0) axis += r;
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= t.shape[i];
    return {reshape_to(t, {outer, outer ? t.numel() / outer : 0})};
  }
  if (op == "Unsqueeze" || op == "Squeeze") {
    const ConstTensor& t = input(0);
    std::vector<int64_t> axes = opset >= 13 ? (opt(1) ? ints_of(opt(1), "axes") : std::vector<int64_t>{}) : attr_ints(p, "axes");
    return {reshape_to(t, op == "Unsqueeze" ? unsqueeze_shape(t.shape, axes) : squeeze_shape(t.shape, axes))};
  }
  if (op == "Transpose") return {transpose(input(0), attr_ints(p, "perm"))};
  if (op == "Gather") return {gather(input(0), input(1), attr_i(p, "axis", 0))};
  if (op == "Concat") {
    if (!find_attr(p, "axis")) fail("the required attribute 'axis' is missing");
    return {concat(in, attr_i(p, "axis", 0))};
  }
  if (op == "Slice") {
    if (opset < 10) return {slice(input(0), attr_ints(p, "starts"), attr_ints(p, "ends"), attr_ints(p, "axes"), {})};
    return {slice(input(0), ints_of(opt(1), "starts"), ints_of(opt(2), "ends"),
                  opt(3) ? ints_of(opt(3), "axes") : std::vector<int64_t>{},
                  opt(4) ? ints_of(opt(4), "steps") : std::vector<int64_t>{})};
  }
  if (op == "Range") {
    const ConstTensor &s = input(0), &l = input(1), &d = input(2);
    for (const ConstTensor* t : {&s, &l, &d})
      if (t->numel() != 1) fail("Range start, limit and delta must be scalars");
    if (d.v.at(0) == 0) fail("Range with delta 0");
    ConstTensor out;
    out.is_float = s.is_float;
    const int64_t n = std::max<int64_t>(0, to_int64(std::ceil((l.v.at(0) - s.v.at(0)) / d.v.at(0))));
    if (n > (int64_t{1} << 31)) fail("Range of ", n, " elements is too large");
    for (int64_t i = 0; i < n; ++i) out.v.push_back(round_like(s.v[0] + static_cast<double>(i) * d.v[0], s.is_float));
    out.shape = {n};
    return {out};
  }
  if (op == "ConstantOfShape") {
    std::vector<int64_t> s = ints_of(opt(0), "shape");
    ConstTensor out;
    out.shape = checked_shape(s);
    double value = 0;
    out.is_float = true;
    if (const auto* a = typed_attr(p, "value", onnx::AttributeProto::TENSOR)) {
      ConstTensor v = from_onnx_tensor(a->t());
      if (v.numel() != 1) fail("ConstantOfShape value must hold one element");
      value = v.v[0];
      out.is_float = v.is_float;
    }
    out.v.assign(static_cast<size_t>(ir::num_elements(out.shape)), value);
    return {out};
  }
  if (op == "Expand") {
    const ConstTensor& t = input(0);
    std::vector<int64_t> s = ints_of(opt(1), "shape");
    ConstTensor target;
    target.shape = checked_shape(s);
    target.v.assign(static_cast<size_t>(ir::num_elements(target.shape)), 0);
    return {elementwise({&t, &target}, t.is_float, [](const std::vector<double>& x) { return x[0]; })};
  }
  fail("constant folding of ", op, " is not implemented");
}

}  // namespace sdnn::frontend
