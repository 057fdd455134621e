// printer.cpp — stable text dump of a Graph (--dump-ir and the lit tests).
//
//   graph "mlp.onnx" {
//     input %0 "x" : f32[64x512] row
//     %1 = constant "w" : f32[512x512] row {nnz = 26214}
//     %2 = fc(%0, %1) {epilogue = relu} : f32[64x512] fm
//     return %2
//   }
//
// Values are numbered in print order; a constant is printed right before its first user.
#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "sdnn/ir/graph.h"

namespace sdnn::ir {
namespace {

std::string type_of(const Value& v) {
  std::string s = std::string(to_string(v.dtype)) + "[" + shape_to_string(v.shape) + "] " + to_string(v.layout);
  if (v.storage.kind != Storage::Kind::None) s += " " + to_string(v.storage);
  return s;
}

int64_t count_nonzeros(const Value& v) {
  if (v.f32) return std::count_if(v.f32->begin(), v.f32->end(), [](float x) { return x != 0.0f; });
  return std::count_if(v.i64->begin(), v.i64->end(), [](int64_t x) { return x != 0; });
}

}  // namespace

std::string print(const Graph& g) {
  std::ostringstream os;
  std::unordered_map<const Value*, int> ids;
  auto id = [&](const Value* v) -> std::string {
    if (!v) return "none";
    auto it = ids.find(v);
    if (it == ids.end()) return "%?";
    return "%" + std::to_string(it->second);
  };
  auto number = [&](const Value* v) { ids.emplace(v, static_cast<int>(ids.size())); };

  auto it = g.meta().find("model");
  os << "graph \"" << (it == g.meta().end() ? "" : it->second) << "\" {\n";
  for (const Value* in : g.inputs()) {
    number(in);
    os << "  input " << id(in) << " \"" << in->name << "\" : " << type_of(*in) << "\n";
  }
  for (const auto& n : g.nodes()) {
    for (const Value* in : n->inputs) {
      if (!in || !in->is_constant() || ids.count(in)) continue;
      number(in);
      os << "  " << id(in) << " = constant \"" << in->name << "\" : " << type_of(*in);
      if (in->i64 && in->numel() <= 8) {
        os << " {value = " << attr_to_string(*in->i64) << "}";
      } else {
        os << " {nnz = " << count_nonzeros(*in) << "}";
      }
      os << "\n";
    }
    for (const Value* out : n->outputs) number(out);
    os << "  ";
    for (size_t i = 0; i < n->outputs.size(); ++i) os << (i ? ", " : "") << id(n->outputs[i]);
    os << " = " << n->op << "(";
    for (size_t i = 0; i < n->inputs.size(); ++i) os << (i ? ", " : "") << id(n->inputs[i]);
    os << ")";
    if (!n->attrs.empty()) {
      os << " {";
      bool first = true;
      for (const auto& [key, val] : n->attrs) {  // std::map: sorted
        os << (first ? "" : ", ") << key << " = " << attr_to_string(val);
        first = false;
      }
      os << "}";
    }
    os << " :";
    for (size_t i = 0; i < n->outputs.size(); ++i) os << (i ? ", " : " ") << type_of(*n->outputs[i]);
    os << "\n";
  }
  os << "  return";
  for (size_t i = 0; i < g.outputs().size(); ++i) os << (i ? ", " : " ") << id(g.outputs()[i]);
  os << "\n}\n";
  return os.str();
}

}  // namespace sdnn::ir
