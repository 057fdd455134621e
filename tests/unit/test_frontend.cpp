// test_frontend.cpp — the ONNX importer on valid and malformed models: every error names the
// problem (file, node and op type, tensor, shape).
#include <catch2/catch.hpp>

#include "onnx_builder.h"
#include "sdnn/frontend/onnx_importer.h"
#include "sdnn/ir/error.h"

using sdnn::frontend::import_onnx_bytes;
using sdnn::frontend::ImportOptions;
using sdnn::test::OnnxBuilder;
using Catch::Matchers::Contains;

namespace {

OnnxBuilder mlp(int opset = 17) {
  OnnxBuilder b(opset);
  b.input("x", {4, 8}).weight("w", {6, 8}, sdnn::test::pattern(48, 3)).weight("bias", {6}, std::vector<float>(6, 0.1f));
  auto& g = b.node("Gemm", "fc1", {"x", "w", "bias"}, {"y"});
  OnnxBuilder::attr_int(g, "transB", 1);
  b.node("Relu", "act", {"y"}, {"z"});
  b.output("z");
  return b;
}

std::string import_error(const std::string& bytes, const ImportOptions& o = {}) {
  try {
    import_onnx_bytes(bytes, "m.onnx", o);
  } catch (const sdnn::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("frontend: a valid Gemm + Relu model imports with shapes", "[frontend]") {
  auto g = import_onnx_bytes(mlp().bytes(), "m.onnx", {});
  REQUIRE(g->nodes().size() == 2);
  CHECK(g->nodes()[0]->op == "Gemm");
  CHECK(g->outputs()[0]->shape == sdnn::ir::Shape{4, 6});
}

TEST_CASE("frontend: malformed files", "[frontend]") {
  CHECK_THAT(import_error(""), Contains("not an ONNX model"));
  CHECK_THAT(import_error("this is not a protobuf at all, just text\n"), Contains("m.onnx"));
  std::string good = mlp().bytes();
  CHECK_THAT(import_error(good.substr(0, good.size() / 2)), Contains("not an ONNX model"));
  CHECK_THROWS_WITH(sdnn::frontend::import_onnx_file("/nonexistent/model.onnx", {}),
                    Contains("cannot open '/nonexistent/model.onnx'"));
}

TEST_CASE("frontend: opset range", "[frontend]") {
  CHECK_THAT(import_error(mlp(9).bytes()), Contains("unsupported opset 9 (supported: 11 to 21)"));
  CHECK_THAT(import_error(mlp(22).bytes()), Contains("opset 22"));
  CHECK_NOTHROW(import_onnx_bytes(mlp(11).bytes(), "m", {}));
  CHECK_NOTHROW(import_onnx_bytes(mlp(21).bytes(), "m", {}));
}

TEST_CASE("frontend: unsupported op names node, op type and the supported list", "[frontend]") {
  OnnxBuilder b;
  b.input("x", {2, 3});
  b.node("Softsign", "weird", {"x"}, {"y"});
  b.output("y");
  std::string e = import_error(b.bytes());
  CHECK_THAT(e, Contains("node 'weird' (Softsign)"));
  CHECK_THAT(e, Contains("unsupported operator"));
  CHECK_THAT(e, Contains("Gemm"));
}

TEST_CASE("frontend: unsupported attribute values", "[frontend]") {
  // transA=1 transposes an activation A first; a constant A is not supported.
  OnnxBuilder a;
  a.input("x", {8, 4}).weight("w", {8, 6}, sdnn::test::pattern(48, 2));
  OnnxBuilder::attr_int(a.node("Gemm", "g", {"x", "w"}, {"y"}), "transA", 1);
  a.output("y");
  CHECK(import_error(a.bytes()) == "(no error)");
  OnnxBuilder b;
  b.input("x", {8, 4}).weight("a", {8, 6}, sdnn::test::pattern(48, 2));
  OnnxBuilder::attr_int(b.node("Gemm", "g", {"a", "x"}, {"y"}), "transA", 1);
  b.output("y");
  CHECK_THAT(import_error(b.bytes()), Contains("node 'g' (Gemm): unsupported: transA=1 with a constant A 'a'"));
  // Both operands constant: not evaluated at compile time, rejected before any Gemm check.
  OnnxBuilder b2;
  b2.input("x", {6, 4}).weight("a", {8, 6}, sdnn::test::pattern(48, 2)).weight("w", {6, 4}, sdnn::test::pattern(24, 2));
  OnnxBuilder::attr_int(b2.node("Gemm", "g", {"a", "w"}, {"y"}), "transA", 1);
  b2.output("y");
  CHECK_THAT(import_error(b2.bytes()),
             Contains("node 'g' (Gemm): unsupported: every input is a constant, and sdnnc does not evaluate Gemm"));

  // Grouped convs import (as one conv with a block-diagonal weight); an unknown auto_pad does not.
  OnnxBuilder c;
  c.input("x", {1, 4, 5, 5}).weight("w", {2, 2, 1, 1}, sdnn::test::pattern(4, 2));
  OnnxBuilder::attr_int(c.node("Conv", "c1", {"x", "w"}, {"y"}), "group", 2);
  c.output("y");
  CHECK(import_error(c.bytes()) == "(no error)");
  OnnxBuilder d;
  d.input("x", {1, 4, 5, 5}).weight("w", {2, 4, 1, 1}, sdnn::test::pattern(8, 2));
  OnnxBuilder::attr_int(d.node("Conv", "c1", {"x", "w"}, {"y"}), "group", 3);
  d.output("y");
  CHECK_THAT(import_error(d.bytes()), Contains("node 'c1' (Conv): attribute group=3 does not divide"));
}

TEST_CASE("frontend: non-f32 tensors", "[frontend]") {
  OnnxBuilder b;
  b.input("x", {2, 3}, onnx::TensorProto::DOUBLE);
  b.node("Relu", "r", {"x"}, {"y"});
  b.output("y");
  CHECK_THAT(import_error(b.bytes()), Contains("graph input 'x' has data type DOUBLE"));
}

TEST_CASE("frontend: shape mismatch names both tensors and shapes", "[frontend]") {
  OnnxBuilder b;
  b.input("x", {4, 7}).weight("w", {8, 6}, sdnn::test::pattern(48, 2));
  b.node("MatMul", "mm", {"x", "w"}, {"y"});
  b.output("y");
  std::string e = import_error(b.bytes());
  CHECK_THAT(e, Contains("node 'mm' (MatMul): shape mismatch"));
  CHECK_THAT(e, Contains("[4x7]"));
  CHECK_THAT(e, Contains("[8x6]"));
}

TEST_CASE("frontend: symbolic dims are bound by --input-shape or named", "[frontend]") {
  OnnxBuilder b;
  b.input("x", {-1, 8}).weight("w", {8, 6}, sdnn::test::pattern(48, 2));
  b.node("MatMul", "mm", {"x", "w"}, {"y"});
  b.output("y");
  CHECK_THAT(import_error(b.bytes()), Contains("graph input 'x' dim 0 ('batch') is symbolic and unbound"));
  ImportOptions o;
  o.input_shapes["x"] = {5, 8};
  auto g = import_onnx_bytes(b.bytes(), "m", o);
  CHECK(g->outputs()[0]->shape == sdnn::ir::Shape{5, 6});
  o.input_shapes["x"] = {5, 9};
  CHECK_THAT(import_error(b.bytes(), o), Contains("conflicts with the model's dim 1 = 8"));
  ImportOptions bad;
  bad.input_shapes["nope"] = {1};
  bad.input_shapes["x"] = {5, 8};
  CHECK_THAT(import_error(b.bytes(), bad), Contains("'nope', which is not a graph input"));
}

TEST_CASE("frontend: Reshape with 0 and -1, Flatten, Constant", "[frontend]") {
  OnnxBuilder b;
  b.input("x", {2, 3, 4}).weight_i64("shape", {2}, {0, -1});
  b.node("Reshape", "r", {"x", "shape"}, {"y"});
  b.node("Flatten", "f", {"y"}, {"z"});
  b.output("z");
  auto g = import_onnx_bytes(b.bytes(), "m", {});
  CHECK(g->nodes()[0]->outputs[0]->shape == sdnn::ir::Shape{2, 12});
  CHECK(g->outputs()[0]->shape == sdnn::ir::Shape{2, 12});
}
