// onnx_importer.cpp — reads an ONNX ModelProto into an ir::Graph.
//
// Imported nodes keep their ONNX op names and normalized attributes; passes/canonicalize turns
// them into the compiler's own ops. Shapes are computed here, so everything after the frontend
// works on static shapes. Constant nodes and initializers become constant Values.
#include "sdnn/frontend/onnx_importer.h"

#include <onnx/onnx_pb.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>

#include "const_eval.h"
#include "sdnn/ir/error.h"

namespace sdnn::frontend {
namespace {

using ir::Shape;
using ir::Value;

const char* const kSupported[] = {"Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
                                  "Div", "Dropout", "Erf", "Exp", "Flatten", "Gather", "Gelu", "Gemm",
                                  "GlobalAveragePool", "Identity", "LayerNormalization", "LeakyRelu", "MatMul",
                                  "MaxPool", "Mul", "Neg", "Pow", "ReduceMean", "Relu", "Reshape", "Shape",
                                  "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh",
                                  "Transpose", "Unsqueeze"};

std::string dtype_name(int t) {
  const std::string& n = onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(t));
  return n.empty() ? std::to_string(t) : n;
}

class Importer {
 public:
  Importer(std::string label, const ImportOptions& opts) : label_(std::move(label)), opts_(opts) {}

  std::unique_ptr<ir::Graph> run(const onnx::ModelProto& model) {
    g_ = std::make_unique<ir::Graph>();
    g_->meta()["model"] = label_;
    check_opset(model);
    const onnx::GraphProto& graph = model.graph();
    for (const auto& t : graph.initializer()) values_[t.name()] = import_tensor(t, t.name());
    import_inputs(graph);
    for (const auto& node : graph.node()) import_node(node);
    std::set<std::string> outputs_seen;
    for (const auto& out : graph.output()) {
      // model.so's outputs are bound by name: one name, one output.
      if (!outputs_seen.insert(out.name()).second)
        fail(label_, ": graph output '", out.name(), "' is listed twice; list each output once");
      Value* v = lookup(out.name(), "graph output");
      if (v->dtype != ir::DType::F32) fail(label_, ": graph output '", out.name(), "' is not float32");
      check_declared_output(out, *v);
      if (v->is_constant())
        fail(label_, ": unsupported: graph output '", out.name(),
             "' is a constant (known at compile time); only computed outputs are supported");
      g_->outputs().push_back(v);
    }
    if (g_->outputs().empty()) fail(label_, ": the graph has no outputs");
    return std::move(g_);
  }

 private:
  // ---- model-level checks -------------------------------------------------------------------
  // A graph output's declared type and shape, where given, must be what the graph computes:
  // callers size model.so's output buffers from one or the other. Symbolic and unset dims match
  // anything.
  void check_declared_output(const onnx::ValueInfoProto& out, const Value& v) {
    if (!out.type().has_tensor_type()) return;
    const auto& tt = out.type().tensor_type();
    if (tt.elem_type() != 0 && tt.elem_type() != onnx::TensorProto::FLOAT)
      fail(label_, ": graph output '", out.name(), "' is declared ", dtype_name(tt.elem_type()),
           " but the graph computes it as FLOAT");
    if (!tt.has_shape()) return;
    const auto& dims = tt.shape().dim();
    bool same = dims.size() == static_cast<int>(v.shape.size());
    for (int i = 0; same && i < dims.size(); ++i)
      same = !dims[i].has_dim_value() || dims[i].dim_value() == v.shape[static_cast<size_t>(i)];
    if (same) return;
    std::string declared;
    for (int i = 0; i < dims.size(); ++i)
      declared += (i ? "x" : "") + (dims[i].has_dim_value() ? std::to_string(dims[i].dim_value())
                                    : dims[i].has_dim_param() ? dims[i].dim_param() : std::string("?"));
    fail(label_, ": graph output '", out.name(), "' is declared with shape [", declared,
         "] but the graph computes [", ir::shape_to_string(v.shape), "]");
  }

  void check_opset(const onnx::ModelProto& model) {
    if (!model.has_graph()) fail(label_, ": not an ONNX model (no graph)");
    int64_t opset = -1;
    for (const auto& o : model.opset_import())
      if (o.domain().empty() || o.domain() == "ai.onnx") opset = o.version();
    if (opset < 0) {
      if (model.ir_version() <= 0) fail(label_, ": not an ONNX model (no ir_version or opset_import)");
      fail(label_, ": the model imports no opset of the default ONNX domain");
    }
    if (opset < kMinOpset || opset > kMaxOpset)
      fail(label_, ": unsupported opset ", opset, " (supported: ", kMinOpset, " to ", kMaxOpset, ")");
    opset_ = opset;
    g_->meta()["opset"] = std::to_string(opset);
  }

  // ---- tensors --------------------------------------------------------------------------------
  Value* import_tensor(const onnx::TensorProto& t, const std::string& name) {
    if (t.data_location() == onnx::TensorProto::EXTERNAL)
      fail(label_, ": tensor '", name, "' uses external data, which is not supported");
    Shape shape(t.dims().begin(), t.dims().end());
    for (int64_t d : shape)
      if (d < 0) fail(label_, ": tensor '", name, "' has a negative dimension");
    // No more elements than the tensor's data could hold (nothing is allocated for a shape its
    // data does not back, nor is its element count allowed to overflow).
    const int64_t held = std::max<int64_t>({static_cast<int64_t>(t.raw_data().size()), t.float_data_size(),
                                            t.int64_data_size(), t.int32_data_size(), t.double_data_size(),
                                            t.string_data_size()});
    const bool empty = std::find(shape.begin(), shape.end(), 0) != shape.end();
    int64_t n = empty ? 0 : 1;
    for (int64_t d : shape)
      if (!empty && (n > held / d || held == 0)) {
        fail(label_, ": tensor '", name, "' shape [", ir::shape_to_string(shape), "] holds more elements than its data (",
             held, " values or bytes)");
      } else if (!empty) {
        n *= d;
      }
    const std::string& raw = t.raw_data();
    switch (t.data_type()) {
      case onnx::TensorProto::FLOAT: {
        std::vector<float> data(n);
        if (!raw.empty()) {
          if (static_cast<int64_t>(raw.size()) != n * 4)
            fail(label_, ": tensor '", name, "' has ", raw.size(), " bytes of raw data, expected ", n * 4,
                 " for shape [", ir::shape_to_string(shape), "]");
          std::memcpy(data.data(), raw.data(), raw.size());
        } else {
          if (t.float_data_size() != n)
            fail(label_, ": tensor '", name, "' has ", t.float_data_size(), " values, expected ", n,
                 " for shape [", ir::shape_to_string(shape), "]");
          std::copy(t.float_data().begin(), t.float_data().end(), data.begin());
        }
        return g_->add_constant(name, shape, std::move(data));
      }
      case onnx::TensorProto::INT64: {
        std::vector<int64_t> data(n);
        if (!raw.empty()) {
          if (static_cast<int64_t>(raw.size()) != n * 8)
            fail(label_, ": tensor '", name, "' has ", raw.size(), " bytes of raw data, expected ", n * 8);
          std::memcpy(data.data(), raw.data(), raw.size());
        } else {
          if (t.int64_data_size() != n)
            fail(label_, ": tensor '", name, "' has ", t.int64_data_size(), " values, expected ", n);
          std::copy(t.int64_data().begin(), t.int64_data().end(), data.begin());
        }
        return g_->add_constant_i64(name, shape, std::move(data));
      }
      default:
        fail(label_, ": tensor '", name, "' has data type ", dtype_name(t.data_type()),
             "; only FLOAT (and INT64 for shapes) is supported");
    }
  }

  void import_inputs(const onnx::GraphProto& graph) {
    std::set<std::string> bound, seen;
    for (const auto& in : graph.input()) {
      if (!seen.insert(in.name()).second) fail(label_, ": graph input '", in.name(), "' is declared twice");
      if (auto it = values_.find(in.name()); it != values_.end()) {  // an initializer listed as input (IR < 4 style)
        const auto& dims = in.type().tensor_type().shape().dim();
        bool conflict = in.type().tensor_type().has_shape() && dims.size() != static_cast<int>(it->second->shape.size());
        for (int i = 0; !conflict && in.type().tensor_type().has_shape() && i < dims.size(); ++i)
          conflict = dims[i].has_dim_value() && dims[i].dim_value() != it->second->shape[static_cast<size_t>(i)];
        if (conflict)
          fail(label_, ": graph input '", in.name(), "' is also an initializer, of another shape [",
               ir::shape_to_string(it->second->shape), "]");
        continue;
      }
      if (!in.type().has_tensor_type())
        fail(label_, ": graph input '", in.name(), "' is not a tensor");
      const auto& tt = in.type().tensor_type();
      if (tt.elem_type() != onnx::TensorProto::FLOAT && tt.elem_type() != onnx::TensorProto::INT64)
        fail(label_, ": graph input '", in.name(), "' has data type ", dtype_name(tt.elem_type()),
             "; only FLOAT (and INT64 for indices) is supported");
      input_dtype_ = tt.elem_type() == onnx::TensorProto::INT64 ? ir::DType::I64 : ir::DType::F32;
      auto given = opts_.input_shapes.find(in.name());
      if (!tt.has_shape()) {
        if (given == opts_.input_shapes.end())
          fail(label_, ": graph input '", in.name(), "' has no shape; give it with --input-shape ",
               in.name(), "=...");
        bound.insert(in.name());
        add_input(in.name(), given->second);
        continue;
      }
      Shape shape;
      const auto& dims = tt.shape().dim();
      if (given != opts_.input_shapes.end()) {
        bound.insert(in.name());
        if (static_cast<int>(given->second.size()) != dims.size())
          fail(label_, ": --input-shape ", in.name(), "=", ir::shape_to_string(given->second), " has rank ",
               given->second.size(), " but the model's input has rank ", dims.size());
      }
      for (int i = 0; i < dims.size(); ++i) {
        const auto& d = dims[i];
        int64_t fixed = d.has_dim_value() ? d.dim_value() : -1;
        if (d.has_dim_value() && d.dim_value() < 0)
          fail(label_, ": graph input '", in.name(), "' dim ", i, " is negative (", d.dim_value(), ")");
        if (given != opts_.input_shapes.end()) {
          int64_t want = given->second[i];
          if (fixed >= 0 && fixed != want)
            fail(label_, ": --input-shape ", in.name(), "=", ir::shape_to_string(given->second),
                 " conflicts with the model's dim ", i, " = ", fixed);
          shape.push_back(want);
        } else if (fixed >= 0) {
          shape.push_back(fixed);
        } else {
          std::string sym = d.has_dim_param() ? " ('" + d.dim_param() + "')" : "";
          fail(label_, ": graph input '", in.name(), "' dim ", i, sym,
               " is symbolic and unbound; bind it with --input-shape ", in.name(), "=...");
        }
      }
      add_input(in.name(), shape);
    }
    for (const auto& [name, shape] : opts_.input_shapes)
      if (!bound.count(name)) fail(label_, ": --input-shape names '", name, "', which is not a graph input");
    if (g_->inputs().empty()) fail(label_, ": the graph has no (non-constant) inputs");
  }

  void add_input(const std::string& name, const Shape& shape) {
    for (int64_t d : shape)
      if (d <= 0)
        fail(label_, ": unsupported empty tensor: graph input '", name, "' has a zero dim in [", ir::shape_to_string(shape), "]");
    Value* v = nullptr;
    try {
      v = g_->add_value(name, input_dtype_, shape);
    } catch (const Error& e) {
      fail(label_, ": graph input '", name, "': ", e.what());
    }
    g_->inputs().push_back(v);
    values_[name] = v;
  }

  Value* lookup(const std::string& name, const std::string& who) {
    auto it = values_.find(name);
    if (it == values_.end()) {
      const std::string at = who.rfind(label_ + ":", 0) == 0 ? who : str_cat(label_, ": ", who);  // a node's where has the file
      auto dropped = dropped_outputs_.find(name);
      if (dropped != dropped_outputs_.end())
        fail(at, " uses '", name, "', ", dropped->second, ": unsupported (only a node's first output is imported)");
      fail(at, " refers to undefined tensor '", name, "'");
    }
    return it->second;
  }

  // ---- nodes ----------------------------------------------------------------------------------
  struct Ctx {
    const onnx::NodeProto& proto;
    std::string where;  // "model.onnx: node 'n' (Op)"
    std::vector<Value*> in;
  };

  [[noreturn]] void node_fail(const Ctx& c, const std::string& what) { fail(c.where, ": ", what); }

  // Errors from below the importer (the graph refusing a shape, constant folding) get the file and
  // node in front, once.
  void import_node(const onnx::NodeProto& p) {
    try {
      import_node_checked(p);
    } catch (const Error& e) {
      if (std::string(e.what()).rfind(label_ + ":", 0) == 0) throw;
      const std::string name = p.name().empty() ? (p.output_size() ? p.output(0) : std::string("?")) : p.name();
      fail(label_, ": node '", name, "' (", p.op_type(), "): ", e.what());
    }
  }
  void import_node_checked(const onnx::NodeProto& p) {
    std::string name = p.name().empty() ? (p.output_size() ? p.output(0) : std::string("?")) : p.name();
    Ctx c{p, str_cat(label_, ": node '", name, "' (", p.op_type(), ")"), {}};
    for (const auto& o : p.output())
      if (!o.empty() && (values_.count(o) || dropped_outputs_.count(o)))
        node_fail(c, str_cat("output '", o, "' is already defined (by another node, a graph input or an initializer)"));
    if (!p.domain().empty() && p.domain() != "ai.onnx")
      node_fail(c, str_cat("unsupported operator domain '", p.domain(), "'; supported ops: ", supported_ops()));
    for (int i = 0; i < p.attribute_size(); ++i) {
      if (p.attribute(i).type() == onnx::AttributeProto::UNDEFINED)
        node_fail(c, str_cat("attribute '", p.attribute(i).name(), "' has no type (a damaged model?)"));
      for (int j = 0; j < i; ++j)
        if (p.attribute(i).name() == p.attribute(j).name())
          node_fail(c, str_cat("attribute '", p.attribute(i).name(), "' is given twice"));
    }
    // Ops newer than the oldest opset sdnnc reads (11) exist from their version on.
    static const std::unordered_map<std::string, int64_t> since = {{"LayerNormalization", 17}, {"Gelu", 20}};
    if (auto s = since.find(p.op_type()); s != since.end() && opset_ < s->second)
      node_fail(c, str_cat(p.op_type(), " is defined from opset ", s->second, "; the model imports opset ", opset_));
    for (const auto& i : p.input()) c.in.push_back(i.empty() ? nullptr : lookup(i, c.where));
    if (p.op_type() == "Shape") return shape_of(c);
    if (try_fold(c)) return;

    static const std::unordered_map<std::string, void (Importer::*)(Ctx&, const std::string&)> table = {
        {"Add", &Importer::add},         {"Constant", &Importer::constant}, {"Conv", &Importer::conv},
        {"Flatten", &Importer::flatten}, {"Gemm", &Importer::gemm},         {"Identity", &Importer::identity},
        {"MatMul", &Importer::matmul},   {"Relu", &Importer::relu},         {"Reshape", &Importer::reshape},
        {"Dropout", &Importer::identity}, {"Squeeze", &Importer::squeeze},  {"Unsqueeze", &Importer::squeeze},
        {"MaxPool", &Importer::pool},     {"AveragePool", &Importer::pool}, {"GlobalAveragePool", &Importer::global_pool},
        {"BatchNormalization", &Importer::batchnorm}, {"Clip", &Importer::clip},
        {"Sub", &Importer::add},          {"Mul", &Importer::add},          {"Div", &Importer::add},
        {"Pow", &Importer::add},          {"Erf", &Importer::unary},        {"Exp", &Importer::unary},
        {"Tanh", &Importer::unary},       {"Sigmoid", &Importer::unary},    {"Sqrt", &Importer::unary},
        {"Neg", &Importer::unary},        {"LeakyRelu", &Importer::unary},  {"Gelu", &Importer::unary},
        {"ReduceMean", &Importer::reduce_mean}, {"Softmax", &Importer::softmax},
        {"LayerNormalization", &Importer::layer_norm}, {"Transpose", &Importer::transpose},
        {"Slice", &Importer::slice},      {"Split", &Importer::split},      {"Concat", &Importer::concat},
        {"Gather", &Importer::gather},    {"Cast", &Importer::cast},
    };
    auto it = table.find(p.op_type());
    if (it == table.end() && can_fold(p.op_type())) {
      for (const Value* v : c.in)
        if (v && !v->is_constant())
          node_fail(c, str_cat("unsupported: ", p.op_type(), " of the non-constant tensor '", v->name,
                               "' (it is only evaluated at compile time, on constant inputs)"));
    }
    if (it == table.end())
      node_fail(c, str_cat("unsupported operator; supported ops: ", supported_ops()));
    // Constants are weights of the ops that take them (and operands of the foldable ops above),
    // never activations: an op that would compute from constants alone is not compiled.
    const bool any_input = std::any_of(c.in.begin(), c.in.end(), [](const Value* v) { return v != nullptr; });
    if (any_input && p.op_type() != "Identity" && p.op_type() != "Dropout" &&
        std::all_of(c.in.begin(), c.in.end(), [](const Value* v) { return !v || v->is_constant(); }))
      node_fail(c, str_cat("unsupported: every input is a constant, and sdnnc does not evaluate ", p.op_type(),
                           " at compile time; fold it into an initializer before compiling"));
    // Data must be float32; shape-like operands (Reshape's shape, Squeeze's axes, Dropout's
    // ratio and mode) may be anything.
    const bool aux_inputs = p.op_type() == "Reshape" || p.op_type() == "Squeeze" || p.op_type() == "Unsqueeze" ||
                            p.op_type() == "Dropout" || p.op_type() == "ReduceMean" || p.op_type() == "Slice" ||
                            p.op_type() == "Split" || p.op_type() == "Gather";
    // Reshape-like ops and Cast also move int64 activations (index inputs on their way to a
    // Gather or a Cast).
    const bool any_dtype = p.op_type() == "Reshape" || p.op_type() == "Squeeze" || p.op_type() == "Unsqueeze" ||
                           p.op_type() == "Identity" || p.op_type() == "Flatten" || p.op_type() == "Cast";
    for (size_t i = 0; i < c.in.size(); ++i) {
      const Value* v = c.in[i];
      if (v && v->dtype != ir::DType::F32 && !(aux_inputs && i > 0) && !(any_dtype && i == 0))
        node_fail(c, str_cat("input '", v->name, "' has data type ", ir::to_string(v->dtype),
                             "; only float32 is supported"));
    }
    (this->*(it->second))(c, name);
  }

  void need_inputs(const Ctx& c, int lo, int hi) {
    int n = static_cast<int>(c.in.size());
    if (n < lo || n > hi)
      node_fail(c, str_cat("expects ", lo, lo == hi ? "" : str_cat(" to ", hi), hi == 1 ? " input" : " inputs", ", got ", n));
    for (int i = 0; i < lo; ++i)
      if (!c.in[i]) node_fail(c, str_cat("input ", i, " is required"));
    if (c.proto.output_size() < 1) node_fail(c, "has no output");
  }

  // Only the first output is imported (others, like Dropout's mask, are rejected if used).
  ir::Node* emit(const Ctx& c, const std::string& name, const std::string& op, std::vector<Value*> inputs, Shape shape,
                 ir::DType dtype = ir::DType::F32) {
    Value* out = g_->add_value(c.proto.output(0), dtype, std::move(shape));
    values_[c.proto.output(0)] = out;
    for (int i = 1; i < c.proto.output_size(); ++i)
      if (!c.proto.output(i).empty())
        dropped_outputs_[c.proto.output(i)] =
            str_cat("output ", i, " of ", c.where.rfind(label_ + ": ", 0) == 0 ? c.where.substr(label_.size() + 2) : c.where);
    return g_->add_node(op, name, std::move(inputs), {out});
  }

  // The attribute `key` of the node, or null; one whose type is set and is not `want` is an error
  // (an INT alpha read as a float would silently be 0). UNDEFINED (very old exporters) passes.
  const onnx::AttributeProto* attr(const Ctx& c, const char* key, onnx::AttributeProto::AttributeType want) {
    for (const auto& a : c.proto.attribute())
      if (a.name() == key) {
        check_attr_type(c, a, want);
        return &a;
      }
    return nullptr;
  }
  void check_attr_type(const Ctx& c, const onnx::AttributeProto& a, onnx::AttributeProto::AttributeType want) {
    if (a.type() != onnx::AttributeProto::UNDEFINED && a.type() != want)
      node_fail(c, str_cat("attribute '", a.name(), "' is ", onnx::AttributeProto::AttributeType_Name(a.type()),
                           ", expected ", onnx::AttributeProto::AttributeType_Name(want)));
  }
  int64_t attr_int(const Ctx& c, const char* key, int64_t dflt) {
    const auto* a = attr(c, key, onnx::AttributeProto::INT);
    return a ? a->i() : dflt;
  }
  // A 0 / 1 attribute (keepdims, transB, ceil_mode ...): any other value is an error (runtimes
  // disagree on what keepdims=7 means).
  bool attr_flag(const Ctx& c, const char* key, bool dflt) {
    const int64_t v = attr_int(c, key, dflt ? 1 : 0);
    if (v != 0 && v != 1) node_fail(c, str_cat("attribute ", key, "=", v, " must be 0 or 1"));
    return v != 0;
  }
  double attr_float(const Ctx& c, const char* key, double dflt) {
    const auto* a = attr(c, key, onnx::AttributeProto::FLOAT);
    return a ? a->f() : dflt;
  }
  // A normalization's epsilon: finite and >= 0 (a negative one takes the square root of a
  // negative variance; ONNX Runtime refuses it).
  double attr_epsilon(const Ctx& c) {
    const double eps = attr_float(c, "epsilon", 1e-5);
    if (!(eps >= 0.0 && std::isfinite(eps))) node_fail(c, str_cat("attribute epsilon=", eps, " must be finite and >= 0"));
    return eps;
  }
  std::vector<int64_t> attr_ints(const Ctx& c, const char* key) {
    const auto* a = attr(c, key, onnx::AttributeProto::INTS);
    return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
  }
  void reject_unknown_attrs(const Ctx& c, std::initializer_list<const char*> known) {
    for (const auto& a : c.proto.attribute()) {
      bool ok = false;
      for (const char* k : known) ok |= a.name() == k;
      if (!ok) node_fail(c, str_cat("unsupported attribute '", a.name(), "'"));
    }
  }

  static std::string shp(const Shape& s) { return "[" + ir::shape_to_string(s) + "]"; }
  // An INTS attribute's values as written: "[2, 0, 1, 1]".
  static std::string ints(const std::vector<int64_t>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
    return out + "]";
  }

  void constant(Ctx& c, const std::string&) {
    need_inputs(c, 0, 0);
    if (c.proto.attribute_size() != 1) node_fail(c, "expects exactly one value attribute");
    const auto& a = c.proto.attribute(0);
    const std::string& out = c.proto.output(0);
    if (a.name() == "value") {
      check_attr_type(c, a, onnx::AttributeProto::TENSOR);
      values_[out] = import_tensor(a.t(), out);
    } else if (a.name() == "value_float") {
      check_attr_type(c, a, onnx::AttributeProto::FLOAT);
      values_[out] = g_->add_constant(out, {}, {a.f()});
    } else if (a.name() == "value_floats") {
      check_attr_type(c, a, onnx::AttributeProto::FLOATS);
      values_[out] = g_->add_constant(out, {a.floats_size()}, {a.floats().begin(), a.floats().end()});
    } else if (a.name() == "value_int") {
      check_attr_type(c, a, onnx::AttributeProto::INT);
      values_[out] = g_->add_constant_i64(out, {}, {a.i()});
    } else if (a.name() == "value_ints") {
      check_attr_type(c, a, onnx::AttributeProto::INTS);
      values_[out] = g_->add_constant_i64(out, {a.ints_size()}, {a.ints().begin(), a.ints().end()});
    } else {
      node_fail(c, str_cat("unsupported attribute '", a.name(), "'"));
    }
  }

  // ---- constant folding ------------------------------------------------------------------------
  // Shape of any value: every shape is static once the inputs are bound.
  void shape_of(Ctx& c) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {"start", "end"});
    const ir::Shape& s = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(s.size());
    int64_t start = attr_int(c, "start", 0), end = attr_int(c, "end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, start, r);
    std::vector<int64_t> dims(s.begin() + start, s.begin() + end);
    values_[c.proto.output(0)] = g_->add_constant_i64(c.proto.output(0), {static_cast<int64_t>(dims.size())}, dims);
  }

  // Evaluates the node now when every input it has is a constant; returns whether it did.
  bool try_fold(Ctx& c) {
    if (!can_fold(c.proto.op_type())) return false;
    // The attributes each foldable op defines (opsets 11-21); others are refused as by the ops
    // compiled below.
    static const std::unordered_map<std::string, std::vector<std::string>> known = {
        {"Cast", {"to", "saturate"}}, {"Concat", {"axis"}}, {"ConstantOfShape", {"value"}},
        {"Flatten", {"axis"}},        {"Gather", {"axis"}}, {"Reshape", {"allowzero"}},
        {"Squeeze", {"axes"}},        {"Unsqueeze", {"axes"}}, {"Transpose", {"perm"}}};
    const auto k = known.find(c.proto.op_type());
    for (const auto& a : c.proto.attribute())
      if (k == known.end() || std::find(k->second.begin(), k->second.end(), a.name()) == k->second.end())
        node_fail(c, str_cat("unsupported attribute '", a.name(), "'"));
    // ... and their input counts (Concat: any number).
    static const std::unordered_map<std::string, std::pair<int, int>> arity = {
        {"Add", {2, 2}},   {"Sub", {2, 2}},     {"Mul", {2, 2}},       {"Div", {2, 2}},       {"Pow", {2, 2}},
        {"Equal", {2, 2}}, {"Less", {2, 2}},    {"Greater", {2, 2}},   {"Not", {1, 1}},       {"Neg", {1, 1}},
        {"Sqrt", {1, 1}},  {"Identity", {1, 1}}, {"Cast", {1, 1}},     {"Flatten", {1, 1}},   {"Transpose", {1, 1}},
        {"ConstantOfShape", {1, 1}}, {"Gather", {2, 2}}, {"Expand", {2, 2}}, {"Reshape", {2, 2}},
        {"Where", {3, 3}}, {"Range", {3, 3}},   {"Slice", {3, 5}},     {"Squeeze", {1, 2}},   {"Unsqueeze", {1, 2}}};
    if (const auto n = arity.find(c.proto.op_type()); n != arity.end())
      need_inputs(c, n->second.first, n->second.second);
    std::vector<ConstTensor> in;
    in.reserve(c.in.size());
    for (Value* v : c.in) {
      if (v && !v->is_constant()) return false;
      in.push_back(v ? ConstTensor::of(*v) : ConstTensor{});
    }
    std::vector<const ConstTensor*> ptrs;
    for (size_t i = 0; i < in.size(); ++i) ptrs.push_back(c.in[i] ? &in[i] : nullptr);
    std::vector<ConstTensor> out;
    try {
      out = fold(c.proto, opset_, ptrs);
    } catch (const Error& e) {
      if (std::string(e.what()).rfind(label_ + ":", 0) == 0) throw;
      node_fail(c, e.what());
    } catch (const std::exception& e) {
      node_fail(c, str_cat("cannot evaluate the constant inputs: ", e.what()));
    }
    if (static_cast<int>(out.size()) > c.proto.output_size()) out.resize(c.proto.output_size());
    for (size_t i = 0; i < out.size(); ++i) {
      const std::string& name = c.proto.output(static_cast<int>(i));
      if (out[i].is_float) {
        values_[name] = g_->add_constant(name, out[i].shape, std::vector<float>(out[i].v.begin(), out[i].v.end()));
      } else {
        std::vector<int64_t> v;
        for (double x : out[i].v) v.push_back(to_int64(x));
        values_[name] = g_->add_constant_i64(name, out[i].shape, v);
      }
    }
    return true;
  }

  // The `axes` of Squeeze / Unsqueeze / ReduceMean: a constant input from opset `since`, an
  // attribute before.
  std::vector<int64_t> axes_operand(const Ctx& c, int64_t since) {
    std::vector<int64_t> axes;
    if (opset_ >= since) {
      if (attr(c, "axes", onnx::AttributeProto::INTS))
        node_fail(c, str_cat("attribute 'axes' is not in opset ", opset_, " (an input from opset ", since, ")"));
      if (c.in.size() > 1 && c.in[1]) {
        if (!c.in[1]->i64) node_fail(c, "axes must be a constant int64 tensor");
        axes.assign(c.in[1]->i64->begin(), c.in[1]->i64->end());
      }
    } else {
      if (c.in.size() > 1) node_fail(c, str_cat("expects 1 input below opset ", since));
      axes = attr_ints(c, "axes");
    }
    return axes;
  }

  // Squeeze / Unsqueeze of an activation: a reshape to the shape they give.
  void squeeze(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 2);
    reject_unknown_attrs(c, {"axes"});
    std::vector<int64_t> axes = axes_operand(c, 13);
    const bool un = c.proto.op_type() == "Unsqueeze";
    if (un && axes.empty()) node_fail(c, "Unsqueeze needs axes");
    ir::Shape out;
    try {
      out = un ? unsqueeze_shape(c.in[0]->shape, axes) : squeeze_shape(c.in[0]->shape, axes);
    } catch (const Error& e) {
      if (std::string(e.what()).rfind(label_ + ":", 0) == 0) throw;
      node_fail(c, e.what());
    }
    emit(c, name, "Reshape", {c.in[0]}, out, c.in[0]->dtype);
  }

  void identity(Ctx& c, const std::string& name) {
    if (c.proto.op_type() == "Dropout") {
      // Inference: Dropout passes its input through; its mask output must not be used.
      need_inputs(c, 1, 3);
      emit(c, name, "Identity", {c.in[0]}, c.in[0]->shape, c.in[0]->dtype);
      return;
    }
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {});
    emit(c, name, "Identity", {c.in[0]}, c.in[0]->shape, c.in[0]->dtype);
  }

  void relu(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {});
    emit(c, name, "Relu", {c.in[0]}, c.in[0]->shape);
  }

  // Add / Sub / Mul / Div / Pow with numpy broadcasting (constant operands on either side).
  void add(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 2);
    reject_unknown_attrs(c, {});
    if (c.in[0]->is_constant() && c.in[1]->is_constant())
      node_fail(c, "both operands are constants but the node was not folded");
    const Shape &a = c.in[0]->shape, &b = c.in[1]->shape;
    Shape out;
    if (!ir::broadcast_shapes(a, b, out)) node_fail(c, str_cat("shapes ", shp(a), " and ", shp(b), " cannot be broadcast"));
    emit(c, name, c.proto.op_type(), {c.in[0], c.in[1]}, out);
  }

  // Elementwise functions of one activation.
  void unary(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    const std::string& op = c.proto.op_type();
    if (op == "LeakyRelu") {
      reject_unknown_attrs(c, {"alpha"});
    } else if (op == "Gelu") {
      reject_unknown_attrs(c, {"approximate"});
    } else {
      reject_unknown_attrs(c, {});
    }
    ir::Node* n = emit(c, name, op, {c.in[0]}, c.in[0]->shape);
    if (op == "LeakyRelu") n->attrs["alpha"] = attr_float(c, "alpha", 0.01);
    if (op == "Gelu") {
      const auto* a = attr(c, "approximate", onnx::AttributeProto::STRING);
      const std::string mode = a ? a->s() : "none";
      if (mode != "none" && mode != "tanh") node_fail(c, str_cat("unsupported attribute value approximate=", mode));
      n->attrs["approximate"] = mode;
    }
  }

  int64_t axis_in(const Ctx& c, int64_t axis, int64_t rank) {
    if (axis < -rank || axis >= rank) node_fail(c, str_cat("axis ", axis, " is out of range for rank ", rank));
    return axis < 0 ? axis + rank : axis;
  }

  void reduce_mean(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 2);
    reject_unknown_attrs(c, {"axes", "keepdims", "noop_with_empty_axes"});
    const Shape& x = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(x.size());
    if (r == 0) node_fail(c, str_cat("input '", c.in[0]->name, "' is a scalar (rank 0): nothing to reduce"));
    if (opset_ >= 18 && attr(c, "axes", onnx::AttributeProto::INTS)) node_fail(c, "unsupported attribute 'axes' (an input from opset 18)");
    std::vector<int64_t> axes = axes_operand(c, 18);
    if (axes.empty()) {
      if (attr_flag(c, "noop_with_empty_axes", false)) {
        emit(c, name, "Identity", {c.in[0]}, x);
        return;
      }
      for (int64_t i = 0; i < r; ++i) axes.push_back(i);
    }
    for (int64_t& a : axes) a = axis_in(c, a, r);
    std::sort(axes.begin(), axes.end());
    if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) node_fail(c, "axes has a repeated axis");
    const bool keep = attr_flag(c, "keepdims", true);
    Shape out;
    for (int64_t i = 0; i < r; ++i) {
      const bool reduced = std::binary_search(axes.begin(), axes.end(), i);
      if (!reduced) out.push_back(x[i]);
      else if (keep) out.push_back(1);
    }
    // Axes in separate runs ({0, 2}) reduce one run at a time, keeping dims (a mean of equal-sized
    // means is the mean), then reshape to the output if keepdims=0.
    std::vector<std::vector<int64_t>> runs;
    for (int64_t a : axes) {
      if (runs.empty() || runs.back().back() + 1 != a) runs.emplace_back();
      runs.back().push_back(a);
    }
    if (runs.size() == 1) {
      ir::Node* n = emit(c, name, "ReduceMean", {c.in[0]}, out);
      n->attrs["axes"] = axes;
      n->attrs["keepdims"] = static_cast<int64_t>(keep);
      return;
    }
    Value* v = c.in[0];
    Shape kept = x;
    for (size_t k = 0; k < runs.size(); ++k) {
      for (int64_t a : runs[k]) kept[static_cast<size_t>(a)] = 1;
      ir::Node* n;
      if (k + 1 == runs.size() && keep) {
        n = emit(c, name, "ReduceMean", {v}, kept);
      } else {
        const std::string part = str_cat(c.proto.output(0), ".mean", k);
        n = g_->add_node("ReduceMean", str_cat(name, ".mean", k), {v}, {g_->add_value(part, ir::DType::F32, kept)});
      }
      n->attrs["axes"] = runs[k];
      n->attrs["keepdims"] = int64_t{1};
      v = n->outputs[0];
    }
    if (!keep) emit(c, name, "Reshape", {v}, out);
  }

  void softmax(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {"axis"});
    const int64_t r = static_cast<int64_t>(c.in[0]->shape.size());
    if (r == 0) node_fail(c, "input must have rank >= 1");
    // Below opset 13 the input is coerced to 2-D at `axis` (default 1) and the softmax runs over
    // all dims from axis on; from 13 it runs over the one axis (default -1).
    const bool coerced = opset_ < 13;
    ir::Node* n = emit(c, name, "Softmax", {c.in[0]}, c.in[0]->shape);
    n->attrs["axis"] = axis_in(c, attr_int(c, "axis", coerced ? 1 : -1), r);
    n->attrs["coerced"] = static_cast<int64_t>(coerced);
  }

  void layer_norm(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 3);
    reject_unknown_attrs(c, {"axis", "epsilon", "stash_type"});
    const Shape& x = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(x.size());
    const int64_t axis = axis_in(c, attr_int(c, "axis", -1), r);
    Shape norm(x.begin() + axis, x.end());
    for (size_t i = 1; i < c.in.size(); ++i) {
      const Value* v = c.in[i];
      if (!v) continue;
      if (!v->f32) node_fail(c, str_cat("input '", v->name, "' must be a float constant"));
      if (v->numel() != ir::num_elements(norm) && v->numel() != 1)
        node_fail(c, str_cat("input '", v->name, "' of shape ", shp(v->shape), " does not broadcast to the normalized shape ", shp(norm)));
    }
    std::vector<Value*> ins = {c.in[0], c.in[1]};
    if (c.in.size() > 2 && c.in[2]) ins.push_back(c.in[2]);
    ir::Node* n = emit(c, name, "LayerNormalization", ins, x);
    n->attrs["axis"] = axis;
    const double eps = attr_epsilon(c);
    n->attrs["epsilon"] = eps;
    const bool mean_out = c.proto.output_size() > 1 && !c.proto.output(1).empty();
    const bool inv_out = c.proto.output_size() > 2 && !c.proto.output(2).empty();
    if (!mean_out && !inv_out) return;
    // The optional Mean and InvStdDev outputs ([d0 .. d(axis-1), 1 ...]) from ordinary ops:
    // mean = ReduceMean(x), inv = 1 / sqrt(ReduceMean((x - mean)^2) + epsilon).
    std::vector<int64_t> axes;
    Shape stat = x;
    for (int64_t i = axis; i < r; ++i) {
      axes.push_back(i);
      stat[i] = 1;
    }
    auto node = [&](const std::string& op, std::vector<Value*> in, const Shape& shape, const std::string& out) {
      Value* v = g_->add_value(out.empty() ? str_cat(name, ".", op, g_->values().size()) : out, ir::DType::F32, shape);
      if (!out.empty()) values_[out] = v;
      g_->add_node(op, str_cat(name, ".", op), std::move(in), {v});
      return v;
    };
    Value* mean = node("ReduceMean", {c.in[0]}, stat, mean_out ? c.proto.output(1) : "");
    mean->producer->attrs["axes"] = axes;
    mean->producer->attrs["keepdims"] = int64_t{1};
    if (!inv_out) return;
    Value* d = node("Sub", {c.in[0], mean}, x, "");
    Value* sq = node("Mul", {d, d}, x, "");
    Value* var = node("ReduceMean", {sq}, stat, "");
    var->producer->attrs["axes"] = axes;
    var->producer->attrs["keepdims"] = int64_t{1};
    Value* e = node("Add", {var, g_->add_constant(name + ".epsilon", {}, {static_cast<float>(eps)})}, stat, "");
    Value* sd = node("Sqrt", {e}, stat, "");
    node("Div", {g_->add_constant(name + ".one", {}, {1.0f}), sd}, stat, c.proto.output(2));
  }

  void transpose(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {"perm"});
    const Shape& x = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(x.size());
    std::vector<int64_t> perm = attr_ints(c, "perm");
    if (perm.empty())
      for (int64_t i = r - 1; i >= 0; --i) perm.push_back(i);
    if (static_cast<int64_t>(perm.size()) != r) node_fail(c, str_cat("perm has ", perm.size(), " entries for rank ", r));
    std::vector<bool> seen(r, false);
    Shape out;
    for (int64_t p : perm) {
      if (p < 0 || p >= r || seen[p]) node_fail(c, "perm is not a permutation");
      seen[p] = true;
      out.push_back(x[p]);
    }
    emit(c, name, "Transpose", {c.in[0]}, out)->attrs["perm"] = perm;
  }

  std::vector<int64_t> const_ints(const Ctx& c, size_t i, const char* what) {
    if (c.in.size() <= i || !c.in[i]) return {};
    if (!c.in[i]->i64) node_fail(c, str_cat(what, " must be a constant int64 tensor"));
    return {c.in[i]->i64->begin(), c.in[i]->i64->end()};
  }

  // Slice of an activation (steps of either sign): node attrs starts / steps per dim, the output
  // shape. A negative step walks its axis backwards from `starts` (clamped to the last element).
  void slice(Ctx& c, const std::string& name) {
    need_inputs(c, 3, 5);
    reject_unknown_attrs(c, {});
    SliceGeometry g;
    try {
      g = slice_geometry(c.in[0]->shape, const_ints(c, 1, "starts"), const_ints(c, 2, "ends"),
                         const_ints(c, 3, "axes"), const_ints(c, 4, "steps"));
    } catch (const Error& e) {
      if (std::string(e.what()).rfind(label_ + ":", 0) == 0) throw;
      node_fail(c, e.what());
    }
    for (int64_t n : g.count)
      if (n == 0) node_fail(c, str_cat("unsupported empty tensor: the slice of ", shp(c.in[0]->shape), " is empty"));
    ir::Node* n = emit(c, name, "Slice", {c.in[0]}, g.count);
    n->attrs["starts"] = g.start;
    n->attrs["steps"] = g.step;
    n->attrs["counts"] = g.count;
  }

  // Split of an activation: one Slice per output.
  void split(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 2);
    reject_unknown_attrs(c, {"axis", "split", "num_outputs"});
    const Shape& x = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(x.size());
    const int64_t axis = axis_in(c, attr_int(c, "axis", 0), r);
    const int64_t outs = c.proto.output_size();
    std::vector<int64_t> sizes = opset_ >= 13 ? const_ints(c, 1, "split") : attr_ints(c, "split");
    if (sizes.empty()) {
      const int64_t parts = attr(c, "num_outputs", onnx::AttributeProto::INT) ? attr_int(c, "num_outputs", outs) : outs;
      if (parts != outs || parts < 1) node_fail(c, str_cat("num_outputs ", parts, " but ", outs, " outputs"));
      // Before opset 18 an implicit split is into equal parts; from 18 the last may be smaller.
      if (opset_ < 18 && x[axis] % parts)
        node_fail(c, str_cat("dim ", x[axis], " does not split into ", parts, " equal parts"));
      const int64_t each = (x[axis] + parts - 1) / parts;  // the last part may be smaller
      for (int64_t i = 0, left = x[axis]; i < parts; ++i, left -= each) sizes.push_back(std::min(each, left));
    }
    if (static_cast<int64_t>(sizes.size()) != outs) node_fail(c, str_cat("split has ", sizes.size(), " sizes for ", outs, " outputs"));
    int64_t at = 0;
    for (int64_t i = 0; i < outs; ++i) {
      if (sizes[i] <= 0) node_fail(c, str_cat("unsupported empty tensor: split size ", sizes[i]));
      Shape out = x;
      out[axis] = sizes[i];
      std::vector<int64_t> starts(r, 0), steps(r, 1);
      starts[axis] = at;
      at += sizes[i];
      const std::string& oname = c.proto.output(static_cast<int>(i));
      Value* v = g_->add_value(oname, ir::DType::F32, out);
      values_[oname] = v;
      ir::Node* n = g_->add_node("Slice", str_cat(name, ":", i), {c.in[0]}, {v});
      n->attrs["starts"] = starts;
      n->attrs["steps"] = steps;
      n->attrs["counts"] = out;
    }
    if (at != x[axis]) node_fail(c, str_cat("split sizes sum to ", at, ", not the dim ", x[axis]));
  }

  void concat(Ctx& c, const std::string& name) {
    if (c.in.empty()) node_fail(c, "expects at least 1 input");
    for (const Value* v : c.in)
      if (!v) node_fail(c, "an input is missing");
    reject_unknown_attrs(c, {"axis"});
    if (!attr(c, "axis", onnx::AttributeProto::INT)) node_fail(c, "the required attribute 'axis' is missing");
    const Shape& first = c.in[0]->shape;
    const int64_t r = static_cast<int64_t>(first.size());
    const int64_t axis = axis_in(c, attr_int(c, "axis", 0), r);
    Shape out = first;
    out[axis] = 0;
    for (const Value* v : c.in) {
      if (!v) node_fail(c, "an input is missing");
      if (v->dtype != ir::DType::F32) node_fail(c, str_cat("input '", v->name, "' is not float32"));
      bool ok = static_cast<int64_t>(v->shape.size()) == r;
      for (int64_t d = 0; ok && d < r; ++d) ok = d == axis || v->shape[d] == first[d];
      if (!ok) node_fail(c, str_cat("input '", v->name, "' ", shp(v->shape), " does not concatenate with ", shp(first)));
      out[axis] += v->shape[axis];
    }
    emit(c, name, "Concat", c.in, out)->attrs["axis"] = axis;
  }

  // Rows of a constant table picked by computed int64 indices (embedding lookup): axis 0 only.
  void embedding(Ctx& c, const std::string& name) {
    Value *table = c.in[0], *idx = c.in[1];
    if (!table->f32 || table->shape.size() != 2)
      node_fail(c, str_cat("unsupported: Gather of the constant '", table->name, "' ", shp(table->shape),
                           " with computed indices (only a 2-D float32 table)"));
    if (idx->dtype != ir::DType::I64) node_fail(c, str_cat("indices '", idx->name, "' must be int64"));
    if (attr_int(c, "axis", 0) != 0) node_fail(c, "unsupported attribute value: computed indices need axis=0");
    Shape out = idx->shape;
    out.push_back(table->shape[1]);
    emit(c, name, "Embedding", {table, idx}, out);
  }

  void cast(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {"to", "saturate"});
    const int64_t to = attr_int(c, "to", 0);
    if (to != onnx::TensorProto::FLOAT)
      node_fail(c, str_cat("unsupported: Cast of an activation to ", dtype_name(static_cast<int>(to)), " (only to FLOAT)"));
    emit(c, name, c.in[0]->dtype == ir::DType::F32 ? "Identity" : "Cast", {c.in[0]}, c.in[0]->shape);
  }

  // Gather from an activation with constant indices.
  void gather(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 2);
    reject_unknown_attrs(c, {"axis"});
    Value *x = c.in[0], *idx = c.in[1];
    if (x->is_constant()) return embedding(c, name);
    if (!idx->i64) node_fail(c, str_cat("indices '", idx->name, "' must be a constant int64 tensor"));
    const int64_t r = static_cast<int64_t>(x->shape.size());
    const int64_t axis = axis_in(c, attr_int(c, "axis", 0), r);
    std::vector<int64_t> indices;
    for (int64_t i : *idx->i64) {
      if (i < -x->shape[axis] || i >= x->shape[axis])
        node_fail(c, str_cat("index ", i, " is out of range for dim ", x->shape[axis]));
      indices.push_back(i < 0 ? i + x->shape[axis] : i);
    }
    if (indices.empty()) node_fail(c, "unsupported empty tensor: no indices");
    Shape out(x->shape.begin(), x->shape.begin() + axis);
    out.insert(out.end(), idx->shape.begin(), idx->shape.end());
    out.insert(out.end(), x->shape.begin() + axis + 1, x->shape.end());
    ir::Node* n = emit(c, name, "Gather", {x}, out);
    n->attrs["axis"] = axis;
    n->attrs["indices"] = indices;
  }

  // MatMul of two activations (numpy matmul: batch dims broadcast, both operands rank >= 2).
  void matmul_activations(Ctx& c, const std::string& name) {
    Value *a = c.in[0], *b = c.in[1];
    if (a->is_constant())
      node_fail(c, str_cat("unsupported: MatMul with a constant left operand '", a->name, "' and a computed right one"));
    if (a->shape.size() < 2 || b->shape.size() < 2)
      node_fail(c, str_cat("unsupported: MatMul of '", a->name, "' ", shp(a->shape), " and '", b->name, "' ",
                           shp(b->shape), " with a 1-D operand"));
    const int64_t m = a->shape[a->shape.size() - 2], k = a->shape.back();
    const int64_t k2 = b->shape[b->shape.size() - 2], n = b->shape.back();
    if (k != k2) node_fail(c, str_cat("shape mismatch: '", a->name, "' is ", shp(a->shape), " but '", b->name, "' is ", shp(b->shape)));
    const Shape ab(a->shape.begin(), a->shape.end() - 2), bb(b->shape.begin(), b->shape.end() - 2);
    Shape out;
    if (!ir::broadcast_shapes(ab, bb, out))
      node_fail(c, str_cat("batch dims of ", shp(a->shape), " and ", shp(b->shape), " cannot be broadcast"));
    if (out.size() > 4) node_fail(c, "unsupported: more than 4 batch dims");
    out.push_back(m);
    out.push_back(n);
    emit(c, name, "MatMul", {a, b}, out);
  }

  // A 1-D operand, as numpy: a left one is the row [1, K], a right one the column [K, 1]; the MatMul
  // of those, then a Reshape that drops the added dim.
  void matmul_vector(Ctx& c, const std::string& name) {
    Value *a = c.in[0], *b = c.in[1];
    if (a->shape.size() == 1 && b->shape.size() == 1)
      node_fail(c, str_cat("unsupported: MatMul of two 1-D operands '", a->name, "' and '", b->name, "' (a 0-D result)"));
    const auto promoted = [&](Value* v, Shape shape) -> Value* {
      if (v->is_constant()) return g_->add_constant(str_cat(v->name, ":2d"), shape, *v->f32);
      Value* r = g_->add_value(str_cat(v->name, ":2d"), v->dtype, shape);
      g_->add_node("Reshape", str_cat(name, ":", v->name, ":2d"), {v}, {r});
      return r;
    };
    const bool row = a->shape.size() == 1;
    Ctx inner{c.proto, c.where, {row ? promoted(a, {1, a->shape[0]}) : a, row ? b : promoted(b, {b->shape[0], 1})}};
    if (row && inner.in[1]->shape.size() < 2)
      node_fail(c, str_cat("shape mismatch: '", a->name, "' is ", shp(a->shape), " but '", b->name, "' is ", shp(b->shape)));
    matmul(inner, name);
    Value* prod = values_.at(c.proto.output(0));
    Shape out = prod->shape;
    out.erase(out.end() - (row ? 2 : 1));
    prod->name += ":2d";
    emit(c, str_cat(name, ":1d"), "Reshape", {prod}, out);
  }

  void gemm(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 3);
    reject_unknown_attrs(c, {"alpha", "beta", "transA", "transB"});
    int64_t trans_b = attr_flag(c, "transB", false) ? 1 : 0;
    Value *a = c.in[0], *b = c.in[1], *bias = c.in.size() > 2 ? c.in[2] : nullptr;
    if (a->shape.size() != 2) node_fail(c, str_cat("input A '", a->name, "' must be 2-D, got ", shp(a->shape)));
    if (attr_flag(c, "transA", false)) {  // A^T: a Transpose of the activation first
      if (a->is_constant()) node_fail(c, str_cat("unsupported: transA=1 with a constant A '", a->name, "'"));
      Value* at = g_->add_value(str_cat(c.proto.output(0), ":A^T"), ir::DType::F32, {a->shape[1], a->shape[0]});
      g_->add_node("Transpose", str_cat(name, ":transA"), {a}, {at})->attrs["perm"] = std::vector<int64_t>{1, 0};
      a = at;
    }
    if (!b->is_constant())
      node_fail(c, str_cat("weight B '", b->name, "' must be a constant (initializer or Constant node)"));
    if (b->shape.size() != 2) node_fail(c, str_cat("unsupported weight B '", b->name, "' of shape ", shp(b->shape), ": only 2-D weights"));
    if (b->numel() == 0) node_fail(c, str_cat("weight B '", b->name, "' ", shp(b->shape), " has an empty dimension"));
    int64_t k = trans_b ? b->shape[1] : b->shape[0];
    int64_t n = trans_b ? b->shape[0] : b->shape[1];
    if (a->shape[1] != k)
      node_fail(c, str_cat("shape mismatch: A '", a->name, "' is ", shp(a->shape), " but B '", b->name, "' is ",
                           shp(b->shape), (trans_b ? " (transB=1)" : ""), ", K differs"));
    if (bias) {
      if (!bias->is_constant()) node_fail(c, str_cat("bias C '", bias->name, "' must be a constant"));
      const Shape& s = bias->shape;
      int64_t rows = s.size() == 2 ? s[0] : 1, cols = s.empty() ? 1 : s.back();
      if (s.size() > 2 || (cols != 1 && cols != n) || (rows != 1 && rows != a->shape[0]))
        node_fail(c, str_cat("bias C '", bias->name, "' of shape ", shp(s), " does not broadcast to [",
                             a->shape[0], "x", n, "]"));
      bool per_column = true;  // every row of C the same: the kernel's bias
      const auto& d = *bias->f32;
      for (int64_t r = 1; r < rows && per_column; ++r)
        for (int64_t j = 0; j < cols; ++j) per_column = per_column && d[r * cols + j] == d[j];
      if (!per_column) {
        // A C that varies across rows: Gemm without C, then an Add of the constant beta * C.
        const double beta = attr_float(c, "beta", 1.0);
        std::vector<float> scaled(d.begin(), d.end());
        for (float& v : scaled) v = static_cast<float>(v * beta);
        Value* prod = g_->add_value(str_cat(c.proto.output(0), ":AB"), ir::DType::F32, {a->shape[0], n});
        ir::Node* node = g_->add_node("Gemm", name, {a, b, nullptr}, {prod});
        node->attrs["alpha"] = attr_float(c, "alpha", 1.0);
        node->attrs["beta"] = 1.0;
        node->attrs["transB"] = trans_b;
        Value* cst = g_->add_constant(str_cat(bias->name, ":beta"), bias->shape, std::move(scaled));
        emit(c, str_cat(name, ":C"), "Add", {prod, cst}, {a->shape[0], n});
        return;
      }
    }
    ir::Node* node = emit(c, name, "Gemm", {a, b, bias}, {a->shape[0], n});
    node->attrs["alpha"] = attr_float(c, "alpha", 1.0);
    node->attrs["beta"] = attr_float(c, "beta", 1.0);
    node->attrs["transB"] = trans_b;
  }

  void matmul(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 2);
    reject_unknown_attrs(c, {});
    Value *a = c.in[0], *b = c.in[1];
    if (a->shape.size() == 1 || b->shape.size() == 1) return matmul_vector(c, name);
    if (!b->is_constant() || b->shape.size() > 2) return matmul_activations(c, name);
    if (b->shape.size() != 2) node_fail(c, str_cat("unsupported weight '", b->name, "' of shape ", shp(b->shape), ": only 2-D weights"));
    if (b->numel() == 0) node_fail(c, str_cat("weight '", b->name, "' ", shp(b->shape), " has an empty dimension"));
    if (a->shape.empty() || a->shape.back() != b->shape[0])
      node_fail(c, str_cat("shape mismatch: '", a->name, "' is ", shp(a->shape), " but weight '", b->name,
                           "' is ", shp(b->shape)));
    Shape out = a->shape;
    out.back() = b->shape[1];
    emit(c, name, "MatMul", {a, b}, out);
  }

  // Window geometry of Conv / MaxPool / AveragePool on an NCHW input: kernel, strides, pads
  // [top, left, bottom, right] (auto_pad resolved), dilations, and the output height / width.
  struct Window {
    std::vector<int64_t> kernel, strides, pads, dilations;
    int64_t out_h, out_w;
    bool ceil_pads = false;  // ceil_mode added bottom / right padding (see window())
  };

  // ceil_mode=1 (pools): out = ceil((padded - span) / stride) + 1, less one when the last window
  // would start in the bottom / right padding; the windows that then reach past the padded input
  // get that much more bottom / right padding, which no pool reads (MaxPool: padding never wins;
  // AveragePool without count_include_pad: divides by the taps inside the image), so the IR keeps
  // the floor formula.
  // Strides, dilations and pads far beyond any image (they would overflow the window arithmetic).
  static constexpr int64_t kMaxWindowAttr = int64_t{1} << 20;
  Window window(const Ctx& c, const Shape& x, std::vector<int64_t> kernel, bool allow_ceil = false) {
    Window wnd;
    for (int64_t k : kernel)
      if (k < 1) node_fail(c, str_cat("unsupported kernel_shape value ", k));
    wnd.kernel = kernel;
    auto two = [&](const char* key, int64_t dflt) {
      std::vector<int64_t> v = attr_ints(c, key);
      if (v.empty()) v = {dflt, dflt};
      if (v.size() != 2) node_fail(c, str_cat("attribute ", key, " must have 2 values (2-D only)"));
      for (int64_t e : v)
        if (e < 1 || e > kMaxWindowAttr) node_fail(c, str_cat("unsupported attribute value ", key, " = ", e));
      return v;
    };
    wnd.strides = two("strides", 1);
    wnd.dilations = two("dilations", 1);
    wnd.pads = attr_ints(c, "pads");
    if (wnd.pads.empty()) wnd.pads = {0, 0, 0, 0};
    if (wnd.pads.size() != 4) node_fail(c, "attribute pads must have 4 values (2-D only)");
    for (int64_t p : wnd.pads) {
      if (p < 0) node_fail(c, "negative pads are not supported");
      if (p > kMaxWindowAttr) node_fail(c, str_cat("unsupported attribute value pads = ", p));
    }
    const bool ceil_mode = attr_flag(c, "ceil_mode", false);
    if (ceil_mode && !allow_ceil) node_fail(c, "unsupported attribute value ceil_mode=1");
    const auto* ap = attr(c, "auto_pad", onnx::AttributeProto::STRING);
    const std::string auto_pad = ap ? ap->s() : "NOTSET";
    if (auto_pad != "NOTSET" && attr(c, "pads", onnx::AttributeProto::INTS))
      node_fail(c, str_cat("attributes auto_pad=", auto_pad, " and pads exclude each other"));
    int64_t out[2];
    for (int i = 0; i < 2; ++i) {
      const int64_t in = x[2 + i], k = wnd.kernel[i], st = wnd.strides[i], d = wnd.dilations[i];
      const int64_t span = d * (k - 1) + 1;
      if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
        out[i] = (in + st - 1) / st;
        const int64_t total = std::max<int64_t>(0, (out[i] - 1) * st + span - in);
        const int64_t small = total / 2, big = total - small;
        wnd.pads[i] = auto_pad == "SAME_UPPER" ? small : big;
        wnd.pads[i + 2] = auto_pad == "SAME_UPPER" ? big : small;
      } else if (auto_pad == "VALID" || auto_pad == "NOTSET") {
        if (auto_pad == "VALID") wnd.pads[i] = wnd.pads[i + 2] = 0;
        const int64_t padded = in + wnd.pads[i] + wnd.pads[i + 2];
        if (padded < span)
          node_fail(c, str_cat("the window (", span, ") is larger than the padded input (", padded, ")"));
        out[i] = (padded - span) / st + 1;
        if (ceil_mode && (padded - span) % st != 0 && out[i] * st < in + wnd.pads[i]) {
          wnd.pads[i + 2] += (out[i] * st + span) - padded;  // one more window, reaching past the end
          out[i] += 1;
          wnd.ceil_pads = true;
        }
      } else {
        node_fail(c, str_cat("unsupported attribute value auto_pad=", auto_pad));
      }
    }
    wnd.out_h = out[0];
    wnd.out_w = out[1];
    return wnd;
  }

  void set_window(ir::Node* n, const Window& w) {
    n->attrs["kernel"] = w.kernel;
    n->attrs["strides"] = w.strides;
    n->attrs["pads"] = w.pads;
    n->attrs["dilations"] = w.dilations;
  }

  void conv(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 3);
    reject_unknown_attrs(c, {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"});
    Value *x = c.in[0], *w = c.in[1], *bias = c.in.size() > 2 ? c.in[2] : nullptr;
    if (x->shape.size() != 4) node_fail(c, str_cat("unsupported rank: input '", x->name, "' is ", shp(x->shape), "; only 2-D NCHW (4-D) images"));
    if (!w->is_constant()) node_fail(c, str_cat("weight '", w->name, "' must be a constant"));
    if (w->shape.size() != 4) node_fail(c, str_cat("weight '", w->name, "' must be 4-D, got ", shp(w->shape)));
    for (int64_t d : w->shape)
      if (d < 1) node_fail(c, str_cat("weight '", w->name, "' ", shp(w->shape), " has an empty dimension"));
    int64_t group = attr_int(c, "group", 1);
    if (group < 1 || x->shape[1] % group || w->shape[0] % group)
      node_fail(c, str_cat("attribute group=", group, " does not divide the ", x->shape[1], " input and ",
                           w->shape[0], " output channels"));
    if (x->shape[1] != w->shape[1] * group)
      node_fail(c, str_cat("shape mismatch: input '", x->name, "' has ", x->shape[1], " channels but weight '",
                           w->name, "' ", shp(w->shape), " with group=", group, " expects ", w->shape[1] * group));
    if (group != 1 && !(group == x->shape[1] && w->shape[0] == group)) {
      // Grouped (ResNeXt, depthwise with a channel multiplier): one conv whose weight is block
      // diagonal, [Cout, Cin, KH, KW] with the zeros of the other groups; the sparse kernels skip
      // zeros for free, so the groups cost no more than separate convs.
      const int64_t cout = w->shape[0], cin = x->shape[1], per_in = w->shape[1], per_out = cout / group;
      const int64_t taps = w->shape[2] * w->shape[3];
      if (cout * cin * taps > (int64_t{1} << 28))
        node_fail(c, str_cat("unsupported: grouped weight '", w->name, "' expands to ", cout, "x", cin, "x", taps,
                             " values (more than 2^28)"));
      std::vector<float> full(static_cast<size_t>(cout * cin * taps), 0.0f);
      const auto& src = *w->f32;
      for (int64_t o = 0; o < cout; ++o)
        for (int64_t i = 0; i < per_in; ++i)
          std::copy_n(src.begin() + (o * per_in + i) * taps, taps,
                      full.begin() + (o * cin + o / per_out * per_in + i) * taps);
      w = g_->add_constant(str_cat(w->name, ":groups"), {cout, cin, w->shape[2], w->shape[3]}, std::move(full));
      group = 1;
    }
    auto ks = attr_ints(c, "kernel_shape");
    if (attr(c, "kernel_shape", onnx::AttributeProto::INTS) && (ks.size() != 2 || ks[0] != w->shape[2] || ks[1] != w->shape[3]))
      node_fail(c, str_cat("kernel_shape ", ints(ks), " does not match the weight ", shp(w->shape)));
    if (bias) {
      if (!bias->is_constant()) node_fail(c, str_cat("bias '", bias->name, "' must be a constant"));
      if (bias->shape != Shape{w->shape[0]})
        node_fail(c, str_cat("bias '", bias->name, "' has shape ", shp(bias->shape), ", expected [", w->shape[0], "]"));
    }
    const Window wnd = window(c, x->shape, {w->shape[2], w->shape[3]});
    ir::Node* n = emit(c, name, "Conv", {x, w, bias}, {x->shape[0], w->shape[0], wnd.out_h, wnd.out_w});
    set_window(n, wnd);
    n->attrs["group"] = group;
  }

  void pool(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    const std::string& op = c.proto.op_type();
    if (op == "MaxPool")
      reject_unknown_attrs(c, {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"});
    else if (opset_ >= 19)  // AveragePool's dilations came with opset 19
      reject_unknown_attrs(c, {"auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"});
    else
      reject_unknown_attrs(c, {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads", "strides"});
    if (c.proto.output_size() > 1 && !c.proto.output(1).empty()) node_fail(c, "the Indices output is not supported");
    const Value* x = c.in[0];
    if (x->shape.size() != 4) node_fail(c, str_cat("unsupported rank: input '", x->name, "' is ", shp(x->shape), "; only 2-D NCHW (4-D) images"));
    std::vector<int64_t> ks = attr_ints(c, "kernel_shape");
    if (ks.size() != 2) node_fail(c, "kernel_shape must have 2 values (2-D only)");
    const Window wnd = window(c, x->shape, ks, /*allow_ceil=*/true);
    // A pad as wide as the window leaves windows with no input (ONNX Runtime refuses it too).
    for (int i = 0; i < 2; ++i)
      if (wnd.pads[i] >= ks[i] || wnd.pads[i + 2] >= ks[i])
        node_fail(c, str_cat("pads ", ints(wnd.pads), " must be smaller than kernel_shape ", ints(ks)));
    const int64_t include_pad = attr_flag(c, "count_include_pad", false) ? 1 : 0;
    if (op == "AveragePool" && include_pad && wnd.ceil_pads)
      node_fail(c, "unsupported: ceil_mode=1 with count_include_pad=1 where a window reaches past the padding");
    ir::Node* n = emit(c, name, op, {c.in[0]}, {x->shape[0], x->shape[1], wnd.out_h, wnd.out_w});
    set_window(n, wnd);
    if (op == "AveragePool") n->attrs["count_include_pad"] = include_pad;
  }

  void global_pool(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {});
    const Value* x = c.in[0];
    if (x->shape.size() != 4) node_fail(c, str_cat("unsupported rank: input '", x->name, "' is ", shp(x->shape), "; only 2-D NCHW (4-D) images"));
    emit(c, name, "GlobalAveragePool", {c.in[0]}, {x->shape[0], x->shape[1], 1, 1});
  }

  void batchnorm(Ctx& c, const std::string& name) {
    need_inputs(c, 5, 5);
    reject_unknown_attrs(c, {"epsilon", "momentum", "training_mode", "spatial"});
    if (attr_flag(c, "training_mode", false)) node_fail(c, "unsupported attribute value training_mode=1");
    if (c.proto.output_size() > 1) node_fail(c, "training outputs (running mean / variance) are not supported");
    const Value* x = c.in[0];
    if (x->shape.size() < 2) node_fail(c, str_cat("input '", x->name, "' must have a channel axis"));
    for (int i = 1; i < 5; ++i) {
      if (!c.in[i]->f32) node_fail(c, str_cat("input '", c.in[i]->name, "' must be a float constant"));
      if (c.in[i]->shape != Shape{x->shape[1]})
        node_fail(c, str_cat("input '", c.in[i]->name, "' has shape ", shp(c.in[i]->shape), ", expected [", x->shape[1], "]"));
    }
    ir::Node* n = emit(c, name, "BatchNormalization", {c.in[0], c.in[1], c.in[2], c.in[3], c.in[4]}, x->shape);
    n->attrs["epsilon"] = attr_epsilon(c);
  }

  void clip(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 3);
    reject_unknown_attrs(c, {"min", "max"});
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    if (opset_ < 11) {
      lo = attr_float(c, "min", lo);
      hi = attr_float(c, "max", hi);
    } else {
      for (int i = 1; i < 3; ++i) {
        if (static_cast<int>(c.in.size()) <= i || !c.in[i]) continue;
        if (!c.in[i]->f32 || c.in[i]->numel() != 1) node_fail(c, str_cat("bound '", c.in[i]->name, "' must be a constant scalar"));
        (i == 1 ? lo : hi) = (*c.in[i]->f32)[0];
      }
    }
    if (std::isnan(lo) || std::isnan(hi)) node_fail(c, "a NaN bound is not supported");
    ir::Node* n = emit(c, name, "Clip", {c.in[0]}, c.in[0]->shape);
    n->attrs["min"] = lo;
    n->attrs["max"] = hi;
  }

  void flatten(Ctx& c, const std::string& name) {
    need_inputs(c, 1, 1);
    reject_unknown_attrs(c, {"axis"});
    const Shape& s = c.in[0]->shape;
    int64_t r = static_cast<int64_t>(s.size()), axis = attr_int(c, "axis", 1);
    if (axis < -r || axis > r) node_fail(c, str_cat("axis ", axis, " is out of range for rank ", r));
    if (axis < 0) axis += r;
    int64_t outer = 1, inner = 1;
    for (int64_t i = 0; i < r; ++i) (i < axis ? outer : inner) *= s[i];
    emit(c, name, "Flatten", {c.in[0]}, {outer, inner}, c.in[0]->dtype);
  }

  void reshape(Ctx& c, const std::string& name) {
    need_inputs(c, 2, 2);
    reject_unknown_attrs(c, {"allowzero"});
    if (opset_ < 14 && attr(c, "allowzero", onnx::AttributeProto::INT))
      node_fail(c, str_cat("attribute 'allowzero' is defined from opset 14; the model imports opset ", opset_));
    Value* x = c.in[0];
    Value* sv = c.in[1];
    if (!sv->i64 || sv->shape.size() != 1)
      node_fail(c, str_cat("shape input '", sv->name, "' must be a constant 1-D int64 tensor"));
    bool allow_zero = attr_flag(c, "allowzero", false);
    Shape out(sv->i64->begin(), sv->i64->end());
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < out.size(); ++i) {
      if (out[i] == 0 && !allow_zero) {
        if (i >= x->shape.size()) node_fail(c, "shape has a 0 beyond the input's rank");
        out[i] = x->shape[i];
      }
      if (out[i] == -1) {
        if (infer >= 0) node_fail(c, "shape has more than one -1");
        infer = static_cast<int64_t>(i);
      } else if (out[i] < 0) {
        node_fail(c, str_cat("shape has a negative dim ", out[i]));
      } else {
        known *= out[i];
      }
    }
    if (infer >= 0) {
      if (known == 0 || x->numel() % known) node_fail(c, str_cat("cannot reshape ", shp(x->shape), " to ", shp(out)));
      out[infer] = x->numel() / known;
    }
    if (ir::num_elements(out) != x->numel()) node_fail(c, str_cat("cannot reshape ", shp(x->shape), " to ", shp(out)));
    emit(c, name, "Reshape", {x}, out, x->dtype);
  }

  std::string label_;
  const ImportOptions& opts_;
  std::unique_ptr<ir::Graph> g_;
  std::unordered_map<std::string, Value*> values_;
  std::unordered_map<std::string, std::string> dropped_outputs_;  // later outputs of imported nodes
  int64_t opset_ = 0;
  ir::DType input_dtype_ = ir::DType::F32;  // of the graph input being imported
};

}  // namespace

std::string supported_ops() {
  std::string s;
  for (const char* op : kSupported) s += (s.empty() ? "" : ", ") + std::string(op);
  s += "; on constant inputs only (folded at compile time) also ConstantOfShape, Equal, Expand, Greater, Less, "
       "Not, Range, Where";
  return s;
}

std::unique_ptr<ir::Graph> import_onnx_bytes(const std::string& bytes, const std::string& label,
                                             const ImportOptions& opts) {
  onnx::ModelProto model;
  if (bytes.empty()) fail(label, ": not an ONNX model (the file is empty)");
  if (!model.ParseFromString(bytes))
    fail(label, ": not an ONNX model (protobuf parse failed: the file is truncated or of another format)");
  return Importer(label, opts).run(model);
}

std::unique_ptr<ir::Graph> import_onnx_file(const std::string& path, const ImportOptions& opts) {
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail("cannot read '", path, "': it is a directory");
  if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    fail("cannot read '", path, "': not a regular file (a device, pipe or socket)");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot open '", path, "': ", std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail("cannot read '", path, "': ", std::strerror(errno));
  return import_onnx_bytes(ss.str(), path, opts);
}

}  // namespace sdnn::frontend
