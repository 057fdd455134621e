// onnx_builder.h — builds small ONNX models in memory for the frontend and pass unit tests.
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

namespace sdnn::test {

class OnnxBuilder {
 public:
  explicit OnnxBuilder(int opset = 17) {
    model_.set_ir_version(8);
    auto* o = model_.add_opset_import();
    o->set_domain("");
    o->set_version(opset);
    model_.mutable_graph()->set_name("g");
  }

  // dims: positive values are fixed; -1 is a symbolic dim named `sym`.
  OnnxBuilder& input(const std::string& name, std::vector<int64_t> dims, int elem = onnx::TensorProto::FLOAT,
                     const std::string& sym = "batch") {
    value_info(model_.mutable_graph()->add_input(), name, dims, elem, sym);
    return *this;
  }
  OnnxBuilder& output(const std::string& name) {
    value_info(model_.mutable_graph()->add_output(), name, {}, onnx::TensorProto::FLOAT, "");
    return *this;
  }
  OnnxBuilder& weight(const std::string& name, std::vector<int64_t> dims, const std::vector<float>& data) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t->add_dims(d);
    for (float v : data) t->add_float_data(v);
    return *this;
  }
  OnnxBuilder& weight_i64(const std::string& name, std::vector<int64_t> dims, const std::vector<int64_t>& data) {
    auto* t = model_.mutable_graph()->add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t->add_dims(d);
    for (int64_t v : data) t->add_int64_data(v);
    return *this;
  }
  onnx::NodeProto& node(const std::string& op, const std::string& name, std::vector<std::string> ins,
                        std::vector<std::string> outs) {
    auto* n = model_.mutable_graph()->add_node();
    n->set_op_type(op);
    n->set_name(name);
    for (auto& i : ins) n->add_input(i);
    for (auto& o : outs) n->add_output(o);
    return *n;
  }
  static void attr_int(onnx::NodeProto& n, const std::string& key, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr_ints(onnx::NodeProto& n, const std::string& key, std::vector<int64_t> v) {
    auto* a = n.add_attribute();
    a->set_name(key);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }
  std::string bytes() const { return model_.SerializeAsString(); }

 private:
  static void value_info(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<int64_t>& dims,
                         int elem, const std::string& sym) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    if (dims.empty()) return;
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dim = shape->add_dim();
      if (d >= 0) dim->set_dim_value(d);
      else dim->set_dim_param(sym);
    }
  }
  onnx::ModelProto model_;
};

// n values, every `stride`-th nonzero.
inline std::vector<float> pattern(size_t n, int stride, float scale = 0.5f) {
  std::vector<float> v(n, 0.0f);
  for (size_t i = 0; i < n; i += stride) v[i] = scale * static_cast<float>((i % 11) + 1);
  return v;
}

}  // namespace sdnn::test
