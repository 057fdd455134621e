// test_const_eval.cpp — compile-time evaluation of ONNX ops on constants (frontend/src/const_eval).
#include <catch2/catch.hpp>

#include "const_eval.h"
#include "sdnn/ir/error.h"

using sdnn::frontend::ConstTensor;
using sdnn::frontend::fold;

namespace {

ConstTensor ints(sdnn::ir::Shape s, std::vector<double> v) { return ConstTensor{false, std::move(s), std::move(v)}; }
ConstTensor floats(sdnn::ir::Shape s, std::vector<double> v) { return ConstTensor{true, std::move(s), std::move(v)}; }

onnx::NodeProto node(const std::string& op, std::vector<std::pair<std::string, int64_t>> attrs = {}) {
  onnx::NodeProto p;
  p.set_op_type(op);
  for (auto& [k, v] : attrs) {
    auto* a = p.add_attribute();
    a->set_name(k);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  return p;
}

ConstTensor one(const onnx::NodeProto& p, std::vector<const ConstTensor*> in, int64_t opset = 17) {
  auto out = fold(p, opset, in);
  REQUIRE(out.size() == 1);
  return out[0];
}

}  // namespace

TEST_CASE("const_eval: Gather along an inner axis and with negative indices", "[frontend]") {
  ConstTensor data = ints({2, 3}, {0, 1, 2, 10, 11, 12});
  ConstTensor idx = ints({2}, {-1, 0});
  ConstTensor r = one(node("Gather", {{"axis", 1}}), {&data, &idx});
  CHECK(r.shape == sdnn::ir::Shape{2, 2});
  CHECK(r.v == std::vector<double>{2, 0, 12, 10});
  ConstTensor bad = ints({}, {3});
  CHECK_THROWS_WITH(fold(node("Gather", {{"axis", 1}}), 17, {&data, &bad}), Catch::Matchers::Contains("out of range"));
}

TEST_CASE("const_eval: Slice with negative steps, clamped ends and axes", "[frontend]") {
  ConstTensor data = ints({6}, {0, 1, 2, 3, 4, 5});
  ConstTensor starts = ints({1}, {-1}), ends = ints({1}, {-100}), axes = ints({1}, {0}), steps = ints({1}, {-2});
  ConstTensor r = one(node("Slice"), {&data, &starts, &ends, &axes, &steps});
  CHECK(r.v == std::vector<double>{5, 3, 1});
  ConstTensor s2 = ints({1}, {1}), e2 = ints({1}, {1000});
  CHECK(one(node("Slice"), {&data, &s2, &e2}).v == std::vector<double>{1, 2, 3, 4, 5});
}

TEST_CASE("const_eval: broadcasting arithmetic, Where, Expand, Concat", "[frontend]") {
  ConstTensor a = floats({2, 1}, {1, 2}), b = floats({3}, {10, 20, 30});
  ConstTensor sum = one(node("Add"), {&a, &b});
  CHECK(sum.shape == sdnn::ir::Shape{2, 3});
  CHECK(sum.v == std::vector<double>{11, 21, 31, 12, 22, 32});
  ConstTensor i7 = ints({}, {7}), i2 = ints({}, {-2});
  CHECK(one(node("Div"), {&i7, &i2}).v == std::vector<double>{-3});  // truncation, as int64 division
  ConstTensor cond = ints({3}, {1, 0, 1});
  ConstTensor x = floats({3}, {1, 2, 3}), y = floats({1}, {-1});
  CHECK(one(node("Where"), {&cond, &x, &y}).v == std::vector<double>{1, -1, 3});
  ConstTensor shape = ints({2}, {2, 3});
  CHECK(one(node("Expand"), {&b, &shape}).v == std::vector<double>{10, 20, 30, 10, 20, 30});
  ConstTensor c1 = ints({1}, {4}), c2 = ints({2}, {-1, 8});
  CHECK(one(node("Concat", {{"axis", 0}}), {&c1, &c2}).v == std::vector<double>{4, -1, 8});
  CHECK_THROWS_WITH(fold(node("Add"), 17, {&a, &shape}), Catch::Matchers::Contains("different data types"));
}

TEST_CASE("const_eval: Range, Cast, Unsqueeze by opset, Transpose", "[frontend]") {
  ConstTensor s = ints({}, {1}), l = ints({}, {8}), d = ints({}, {3});
  ConstTensor r = one(node("Range"), {&s, &l, &d});
  CHECK(r.v == std::vector<double>{1, 4, 7});
  ConstTensor f = one(node("Cast", {{"to", onnx::TensorProto::FLOAT}}), {&r});
  CHECK(f.is_float);
  ConstTensor axes = ints({1}, {0});
  CHECK(one(node("Unsqueeze"), {&r, &axes}).shape == sdnn::ir::Shape{1, 3});
  auto p11 = node("Unsqueeze");
  auto* a = p11.add_attribute();
  a->set_name("axes");
  a->set_type(onnx::AttributeProto::INTS);
  a->add_ints(-1);
  CHECK(one(p11, {&r}, 11).shape == sdnn::ir::Shape{3, 1});
  ConstTensor m = ints({2, 3}, {0, 1, 2, 3, 4, 5});
  ConstTensor t = one(node("Transpose"), {&m});
  CHECK(t.shape == sdnn::ir::Shape{3, 2});
  CHECK(t.v == std::vector<double>{0, 3, 1, 4, 2, 5});
}

TEST_CASE("const_eval: INT64_MAX slice ends (as exporters write x[:, a:]) keep their meaning", "[frontend]") {
  ConstTensor data = ints({6}, {0, 1, 2, 3, 4, 5});
  ConstTensor starts = ints({1}, {2}), ends = ints({1}, {9223372036854775807.0}), axes = ints({1}, {0});
  CHECK(one(node("Slice"), {&data, &starts, &ends, &axes}).v == std::vector<double>{2, 3, 4, 5});
  CHECK(sdnn::frontend::to_int64(9223372036854775807.0) == INT64_MAX);
  CHECK(sdnn::frontend::to_int64(-1e30) == INT64_MIN);
}

TEST_CASE("const_eval: malformed constant operands are errors, not crashes", "[frontend]") {
  ConstTensor data = ints({2, 3}, {0, 1, 2, 3, 4, 5});
  ConstTensor shape = ints({3}, {0, 0, 0});
  CHECK_THROWS_WITH(fold(node("Reshape"), 17, {&data, &shape}), Catch::Matchers::Contains("beyond the input's rank"));
  CHECK_THROWS_WITH(fold(node("Flatten", {{"axis", 5}}), 17, {&data}), Catch::Matchers::Contains("out of range"));
}
