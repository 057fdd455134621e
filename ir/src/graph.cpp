// graph.cpp — Graph storage and editing: values, nodes in topological order, use replacement.
#include "sdnn/ir/graph.h"

#include <algorithm>
#include <set>

#include "sdnn/ir/error.h"

namespace sdnn::ir {

const char* to_string(DType d) {
  switch (d) {
    case DType::F32: return "f32";
    case DType::I64: return "i64";
  }
  return "?";
}

const char* to_string(Layout l) {
  switch (l) {
    case Layout::RowMajor: return "row";
    case Layout::FeatureBlocked: return "fb";
    case Layout::ChannelBlocked: return "cb";
  }
  return "?";
}

BlockedDims blocked_dims(const Shape& s, Layout l, int64_t vl) {
  BlockedDims d{1, 1, 1, 1};
  if (l == Layout::ChannelBlocked) {
    SDNN_CHECK(s.size() == 4);
    d = {s[0], s[1], s[2] * s[3], 0};
  } else {
    d.features = s.empty() ? 1 : s.back();
    d.columns = d.features ? num_elements(s) / d.features : 0;
  }
  d.padded_columns = (d.columns + vl - 1) / vl * vl;
  return d;
}

int64_t Value::storage_bytes(int64_t vl) const {
  if (layout == Layout::RowMajor) return bytes();
  BlockedDims d = blocked_dims(shape, layout, vl);
  return d.batch * d.features * d.padded_columns * static_cast<int64_t>(dtype_size(dtype));
}

std::string to_string(const Storage& s) {
  switch (s.kind) {
    case Storage::Kind::None: return "";
    case Storage::Kind::Arena: return str_cat("@arena+", s.offset);
    case Storage::Kind::Input: return str_cat("@input", s.index, s.offset ? str_cat("+", s.offset) : "");
    case Storage::Kind::Output: return str_cat("@output", s.index, s.offset ? str_cat("+", s.offset) : "");
  }
  return "";
}

size_t dtype_size(DType d) { return d == DType::F32 ? 4 : 8; }

std::string shape_to_string(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += 'x';
    out += std::to_string(s[i]);
  }
  return out;
}

int64_t num_elements(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string attr_to_string(const AttrValue& a) {
  struct V {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const {
      std::ostringstream os;
      os << v;
      return os.str();
    }
    std::string operator()(const std::string& v) const { return v; }
    // Long lists (row orders) show their first 8 entries and their length.
    std::string operator()(const std::vector<int64_t>& v) const {
      const size_t shown = v.size() > 16 ? 8 : v.size();
      std::string s = "[";
      for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + std::to_string(v[i]);
      if (shown < v.size()) s += ", ... (" + std::to_string(v.size()) + " values)";
      return s + "]";
    }
    std::string operator()(const std::vector<double>& v) const {
      std::ostringstream os;
      os << "[";
      for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
      os << "]";
      return os.str();
    }
  };
  return std::visit(V{}, a);
}

int64_t Node::get_int(const std::string& key, int64_t dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  fail(where(), ": attribute '", key, "' must be an integer");
}

double Node::get_float(const std::string& key, double dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  if (auto* v = std::get_if<double>(&it->second)) return *v;
  if (auto* v = std::get_if<int64_t>(&it->second)) return static_cast<double>(*v);
  fail(where(), ": attribute '", key, "' must be a float");
}

std::string Node::get_str(const std::string& key, const std::string& dflt) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return dflt;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  fail(where(), ": attribute '", key, "' must be a string");
}

std::vector<int64_t> Node::get_ints(const std::string& key) const {
  auto it = attrs.find(key);
  if (it == attrs.end()) return {};
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  fail(where(), ": attribute '", key, "' must be a list of integers");
}

std::string Node::where() const { return str_cat("node '", name, "' (", op, ")"); }

Value* Graph::add_value(std::string name, DType dtype, Shape shape) {
  // Shapes past what a plan can hold (the runtime's dims are below 2^31, its buffers far below
  // 2^40 elements) are refused here, before any product of them can overflow int64.
  constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1, kMaxElements = int64_t{1} << 40;
  int64_t elements = 1;
  for (int64_t d : shape) {
    if (d > kMaxDim) fail("tensor '", name, "' shape [", shape_to_string(shape), "] has a dimension above 2^31 - 1");
    if (d > 0 && elements > kMaxElements / d)
      fail("tensor '", name, "' shape [", shape_to_string(shape), "] has more than 2^40 elements");
    if (d > 0) elements *= d;
  }
  auto v = std::make_unique<Value>();
  v->name = std::move(name);
  v->dtype = dtype;
  v->shape = std::move(shape);
  values_.push_back(std::move(v));
  return values_.back().get();
}

Value* Graph::add_constant(std::string name, Shape shape, std::vector<float> data) {
  SDNN_CHECK(static_cast<int64_t>(data.size()) == num_elements(shape));
  Value* v = add_value(std::move(name), DType::F32, std::move(shape));
  v->f32 = std::make_shared<const std::vector<float>>(std::move(data));
  return v;
}

Value* Graph::add_constant_i64(std::string name, Shape shape, std::vector<int64_t> data) {
  SDNN_CHECK(static_cast<int64_t>(data.size()) == num_elements(shape));
  Value* v = add_value(std::move(name), DType::I64, std::move(shape));
  v->i64 = std::make_shared<const std::vector<int64_t>>(std::move(data));
  return v;
}

Node* Graph::add_node(std::string op, std::string name, std::vector<Value*> inputs,
                      std::vector<Value*> outputs, const Node* before) {
  auto n = std::make_unique<Node>();
  n->op = std::move(op);
  n->name = std::move(name);
  n->inputs = std::move(inputs);
  n->outputs = std::move(outputs);
  for (Value* o : n->outputs) o->producer = n.get();
  Node* raw = n.get();
  if (before) {
    auto it = std::find_if(nodes_.begin(), nodes_.end(),
                           [&](const std::unique_ptr<Node>& p) { return p.get() == before; });
    SDNN_CHECK(it != nodes_.end());
    nodes_.insert(it, std::move(n));
  } else {
    nodes_.push_back(std::move(n));
  }
  return raw;
}

void Graph::remove_node(Node* n) {
  for (Value* o : n->outputs)
    if (o->producer == n) o->producer = nullptr;
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const std::unique_ptr<Node>& p) { return p.get() == n; });
  SDNN_CHECK(it != nodes_.end());
  nodes_.erase(it);
}

void Graph::replace_uses(Value* from, Value* to) {
  for (auto& n : nodes_)
    for (Value*& in : n->inputs)
      if (in == from) in = to;
  for (Value*& o : outputs_)
    if (o == from) o = to;
}

std::vector<Node*> Graph::users(const Value* v) const {
  std::vector<Node*> out;
  for (auto& n : nodes_)
    if (std::find(n->inputs.begin(), n->inputs.end(), v) != n->inputs.end()) out.push_back(n.get());
  return out;
}

bool Graph::is_graph_output(const Value* v) const {
  return std::find(outputs_.begin(), outputs_.end(), v) != outputs_.end();
}

bool Graph::is_graph_input(const Value* v) const {
  return std::find(inputs_.begin(), inputs_.end(), v) != inputs_.end();
}

bool Graph::remove_dead() {
  bool changed = false;
  // Walk backwards so a chain of dead nodes goes in one sweep.
  std::set<const Value*> used(outputs_.begin(), outputs_.end());
  for (auto it = nodes_.rbegin(); it != nodes_.rend();) {
    Node* n = it->get();
    bool live = std::any_of(n->outputs.begin(), n->outputs.end(),
                            [&](const Value* o) { return used.count(o) != 0; });
    if (!live) {
      for (Value* o : n->outputs) o->producer = nullptr;
      it = decltype(it)(nodes_.erase(std::next(it).base()));
      changed = true;
      continue;
    }
    for (Value* in : n->inputs) used.insert(in);
    ++it;
  }
  for (Value* in : inputs_) used.insert(in);
  size_t before = values_.size();
  values_.erase(std::remove_if(values_.begin(), values_.end(),
                               [&](const std::unique_ptr<Value>& v) {
                                 return used.count(v.get()) == 0 && v->producer == nullptr;
                               }),
                values_.end());
  return changed || values_.size() != before;
}

}  // namespace sdnn::ir
