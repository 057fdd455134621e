// test_ir_passes.cpp — IR printer / verifier and each pass's guarantees.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "onnx_builder.h"
#include "sdnn/frontend/onnx_importer.h"
#include "sdnn/ir/error.h"
#include "sdnn/passes/pass.h"
#include "sdnn/passes/permute_rows.h"

using sdnn::ir::Graph;
using sdnn::ir::Layout;
using sdnn::ir::Storage;
using sdnn::test::OnnxBuilder;
using Catch::Matchers::Contains;

namespace {

std::unique_ptr<Graph> import(const OnnxBuilder& b) { return sdnn::frontend::import_onnx_bytes(b.bytes(), "t", {}); }

std::unique_ptr<Graph> run_until(const OnnxBuilder& b, const std::string& stop, double threshold = 0.5) {
  auto g = import(b);
  sdnn::passes::PipelineOptions o;
  o.sparse_threshold = threshold;
  sdnn::passes::run_pipeline(*g, o, [&](const std::string& name, bool) { return name != stop; });
  return g;
}

int count_op(const Graph& g, const std::string& op) {
  return static_cast<int>(std::count_if(g.nodes().begin(), g.nodes().end(), [&](const auto& n) { return n->op == op; }));
}

// x[4x8] -> MatMul w1 [8x16] -> Add(b1 first) -> Relu -> Gemm(transB) w2 [5x16] -> y
OnnxBuilder two_layer() {
  OnnxBuilder b;
  b.input("x", {4, 8})
      .weight("w1", {8, 16}, sdnn::test::pattern(128, 5))
      .weight("b1", {16}, std::vector<float>(16, 0.25f))
      .weight("w2", {5, 16}, sdnn::test::pattern(80, 2))
      .weight("b2", {5}, std::vector<float>(5, -0.5f));
  b.node("MatMul", "mm1", {"x", "w1"}, {"h0"});
  b.node("Add", "add1", {"b1", "h0"}, {"h1"});
  b.node("Relu", "relu1", {"h1"}, {"h2"});
  auto& g = b.node("Gemm", "fc2", {"h2", "w2", "b2"}, {"y"});
  OnnxBuilder::attr_int(g, "transB", 1);
  b.output("y");
  return b;
}

}  // namespace

TEST_CASE("canonicalize: MatMul + Add (bias first) and Gemm become fc with bias", "[passes]") {
  auto g = run_until(two_layer(), "canonicalize");
  CHECK(count_op(*g, "fc") == 2);
  CHECK(count_op(*g, "Add") == 0);
  for (const auto& n : g->nodes())
    if (n->op == "fc") CHECK(n->inputs.size() == 3);
  // The first fc's weight is W^T: [16 x 8].
  CHECK(g->nodes()[0]->inputs[1]->shape == sdnn::ir::Shape{16, 8});
}

TEST_CASE("canonicalize: Gemm alpha / beta / transB=0 are folded into weights and bias", "[passes]") {
  OnnxBuilder b;
  b.input("x", {1, 2}).weight("w", {2, 3}, {1, 2, 3, 4, 5, 6}).weight("c", {3}, {1, 1, 1});
  auto& n = b.node("Gemm", "g", {"x", "w", "c"}, {"y"});
  auto* a = n.add_attribute();
  a->set_name("alpha");
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(2.0f);
  auto* be = n.add_attribute();
  be->set_name("beta");
  be->set_type(onnx::AttributeProto::FLOAT);
  be->set_f(3.0f);
  b.output("y");
  auto g = run_until(b, "canonicalize");
  const auto& fc = *g->nodes()[0];
  REQUIRE(fc.op == "fc");
  CHECK(*fc.inputs[1]->f32 == std::vector<float>{2, 8, 4, 10, 6, 12});
  CHECK(*fc.inputs[2]->f32 == std::vector<float>{3, 3, 3});
}

TEST_CASE("fuse-epilogue: relu folds into the producing fc, output names survive", "[passes]") {
  auto g = run_until(two_layer(), "fuse-epilogue");
  CHECK(count_op(*g, "relu") == 0);
  CHECK(g->nodes()[0]->get_str("epilogue", "") == "relu");
  CHECK(g->outputs()[0]->name == "y");
}

TEST_CASE("fuse-epilogue: a relu whose input is also a graph output stays", "[passes]") {
  OnnxBuilder b;
  b.input("x", {2, 4}).weight("w", {4, 3}, sdnn::test::pattern(12, 2));
  b.node("MatMul", "mm", {"x", "w"}, {"h"});
  b.node("Relu", "r", {"h"}, {"y"});
  b.output("h").output("y");
  auto g = run_until(b, "fuse-epilogue");
  CHECK(count_op(*g, "relu") == 1);
}

TEST_CASE("choose-kernels: threshold on the fraction of zeros", "[passes]") {
  auto g = run_until(two_layer(), "choose-kernels", 0.7);
  // w1 keeps 1 of 5 (80% zeros) -> sparse; w2 keeps 1 of 2 (50%) -> dense.
  CHECK(g->nodes()[0]->get_str("kernel", "") == "sparse");
  CHECK(g->nodes()[1]->get_str("kernel", "") == "dense");
}

TEST_CASE("choose-layout: an fc chain is feature-major with one transpose in and one out", "[passes]") {
  auto g = run_until(two_layer(), "choose-layout");
  CHECK(count_op(*g, "layout") == 2);
  for (const auto& n : g->nodes())
    if (n->op == "fc") CHECK(n->outputs[0]->layout == Layout::FeatureBlocked);
  CHECK(g->outputs()[0]->layout == Layout::RowMajor);
  CHECK(g->outputs()[0]->name == "y");
}

TEST_CASE("plan-buffers: inputs/outputs bound to the caller, arena ranges of live values disjoint", "[passes]") {
  auto g = run_until(two_layer(), "plan-buffers");
  CHECK(g->inputs()[0]->storage.kind == Storage::Kind::Input);
  CHECK(g->outputs()[0]->storage.kind == Storage::Kind::Output);
  // Every node's output must not overlap any of its inputs in the arena.
  for (const auto& n : g->nodes()) {
    const auto* out = n->outputs[0];
    for (const auto* in : n->inputs) {
      if (!in || in->is_constant() || in->storage.kind != Storage::Kind::Arena || out->storage.kind != Storage::Kind::Arena)
        continue;
      if (in->storage.offset == out->storage.offset) continue;  // an alias (reshape) is allowed
      bool disjoint = in->storage.offset + in->bytes() <= out->storage.offset ||
                      out->storage.offset + out->bytes() <= in->storage.offset;
      CHECK(disjoint);
    }
  }
  CHECK(std::stoll(g->meta().at("arena_bytes")) > 0);
}

TEST_CASE("plan-buffers: an output that is a graph input gets a copy", "[passes]") {
  OnnxBuilder b;
  b.input("x", {2, 4});
  b.node("Identity", "id", {"x"}, {"y"});
  b.output("y");
  auto g = run_until(b, "plan-buffers");
  CHECK(count_op(*g, "copy") == 1);
  CHECK(g->outputs()[0]->name == "y");
}

TEST_CASE("printer: stable numbering, sorted attributes, constants summarized", "[ir]") {
  auto g = run_until(two_layer(), "fuse-epilogue");
  std::string text = sdnn::ir::print(*g);
  CHECK_THAT(text, Contains("input %0 \"x\" : f32[4x8] row"));
  CHECK_THAT(text, Contains("= constant \"w1\" : f32[16x8] row {nnz = "));
  CHECK_THAT(text, Contains("fc(%0, %1, %2) {epilogue = relu}"));
  CHECK(text == sdnn::ir::print(*g));
}

TEST_CASE("verifier: catches a use before definition", "[ir]") {
  Graph g;
  auto* x = g.add_value("x", sdnn::ir::DType::F32, {2, 2});
  auto* y = g.add_value("y", sdnn::ir::DType::F32, {2, 2});
  auto* z = g.add_value("z", sdnn::ir::DType::F32, {2, 2});
  g.inputs().push_back(x);
  g.add_node("relu", "r1", {y}, {z});
  g.add_node("relu", "r0", {x}, {y});
  g.outputs().push_back(z);
  CHECK_THROWS_WITH(sdnn::ir::verify(g, "test"), Contains("not defined before it"));
}

TEST_CASE("verifier: catches an inconsistent shape", "[ir]") {
  Graph g;
  auto* x = g.add_value("x", sdnn::ir::DType::F32, {2, 3});
  auto* y = g.add_value("y", sdnn::ir::DType::F32, {3, 2});
  g.inputs().push_back(x);
  g.add_node("relu", "r", {x}, {y});
  g.outputs().push_back(y);
  CHECK_THROWS_WITH(sdnn::ir::verify(g, "test"), Contains("output shape 3x2 but its inputs give 2x3"));
}

TEST_CASE("permute-rows: orders are permutations and group rows that share columns", "[passes]") {
  // 8 rows, 2 column classes interleaved: rows 0,2,4,6 use columns 0-3, rows 1,3,5,7 columns 4-7.
  const int64_t m = 8, k = 8;
  std::vector<float> w(m * k, 0.0f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < 4; ++c) w[r * k + (r % 2) * 4 + c] = 1.0f + static_cast<float>(r);
  const int64_t identity = sdnn::passes::tile_loads(w.data(), m, k, 4, {});
  CHECK(identity == 16);  // both tiles touch all 8 columns
  for (auto method : {sdnn::passes::RowOrder::Greedy, sdnn::passes::RowOrder::TileGreedy}) {
    auto order = sdnn::passes::row_order(w.data(), m, k, 4, method);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int64_t i = 0; i < m; ++i) CHECK(sorted[i] == i);
    CHECK(sdnn::passes::tile_loads(w.data(), m, k, 4, order) == 8);  // each tile one column class
  }
}

TEST_CASE("permute-rows: an order is kept only when it saves at least the minimum of the loads", "[passes]") {
  // 16 rows of 16 columns: rows of class c (r % 4) use columns 4c..4c+3, plus one column of their
  // own (r), so the best order (classes together) saves loads in proportion to the shared part.
  const int64_t m = 16, k = 16;
  std::vector<float> w(m * k, 0.0f);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t c = 0; c < 4; ++c) w[r * k + (r % 4) * 4 + c] = 1.0f;
    w[r * k + r] = 2.0f;
  }
  const auto any = sdnn::passes::choose_row_order(w.data(), m, k, 4, 0.0);
  REQUIRE_FALSE(any.order.empty());
  REQUIRE(any.loads_after < any.loads_before);
  const double saving = 1.0 - static_cast<double>(any.loads_after) / static_cast<double>(any.loads_before);
  // Asked for more than that saving: the model order stays, and the best order is still reported.
  const auto strict = sdnn::passes::choose_row_order(w.data(), m, k, 4, saving + 0.01);
  CHECK(strict.order.empty());
  CHECK(strict.loads_after == strict.loads_before);
  CHECK(strict.best_loads == any.loads_after);
  const auto loose = sdnn::passes::choose_row_order(w.data(), m, k, 4, saving - 0.01);
  CHECK(loose.order == any.order);
}

TEST_CASE("permute-rows: recorded on sparse layers only, kept only when it saves loads", "[passes]") {
  auto g = run_until(two_layer(), "permute-rows", 0.7);
  const auto& fc1 = *g->nodes()[0];
  const auto& fc2 = *g->nodes()[1];
  CHECK(fc1.has("tile_loads"));
  CHECK_FALSE(fc2.has("tile_loads"));  // dense
  CHECK_FALSE(fc2.has("row_order"));
}

namespace {

// x[4x8] -> MatMul w1 [8x16] -> Add b1 -> Relu -> MatMul w2 [16x5] -> y (and h, the relu's
// output, a graph output too when `expose_hidden`). Output feature m of the first layer uses
// inputs 2c and 2c+1 with c = m % 4: in tiles of 4 rows the model order loads all 8 columns per
// tile, the order that groups rows by class 2.
OnnxBuilder mlp_with_classes(bool expose_hidden) {
  std::vector<float> w1(8 * 16, 0.0f), b1(16), w2(16 * 5);
  for (int k = 0; k < 8; ++k)
    for (int m = 0; m < 16; ++m)
      if (k / 2 == m % 4) w1[k * 16 + m] = 1.0f + static_cast<float>(k * 16 + m) / 64.0f;
  for (int m = 0; m < 16; ++m) b1[m] = 0.125f * static_cast<float>(m);
  for (int i = 0; i < 16 * 5; ++i) w2[i] = static_cast<float>(i % 7) - 3.0f;
  OnnxBuilder b;
  b.input("x", {4, 8}).weight("w1", {8, 16}, w1).weight("b1", {16}, b1).weight("w2", {16, 5}, w2);
  b.node("MatMul", "mm1", {"x", "w1"}, {"h0"});
  b.node("Add", "add1", {"h0", "b1"}, {"h1"});
  b.node("Relu", "relu1", {"h1"}, {"h"});
  b.node("MatMul", "mm2", {"h", "w2"}, {"y"});
  b.output("y");
  if (expose_hidden) b.output("h");
  return b;
}

std::unique_ptr<Graph> permuted(const OnnxBuilder& b) {
  auto g = import(b);
  sdnn::passes::PipelineOptions o;
  o.sparse_threshold = 0.5;
  o.tile_height = 4;
  sdnn::passes::run_pipeline(*g, o, [&](const std::string& name, bool) { return name != "permute-rows"; });
  return g;
}

}  // namespace

TEST_CASE("permute-rows: the consumer's weight columns undo the order", "[passes]") {
  auto g = permuted(mlp_with_classes(false));
  REQUIRE(count_op(*g, "fc") == 2);
  const auto& fc1 = *g->nodes()[0];
  const auto& fc2 = *g->nodes()[1];
  REQUIRE(fc1.has("rows_permuted"));
  CHECK_FALSE(fc1.has("row_order"));  // the kernel writes its rows in tile order
  CHECK(fc1.get_str("tile_loads", "") == "32 -> 8");
  CHECK(fc2.get_str("columns_permuted_for", "") == fc1.name);
  const std::vector<int64_t> order = fc1.get_ints("rows_permuted");
  REQUIRE(order.size() == 16);
  std::vector<int64_t> sorted = order;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 16; ++i) CHECK(sorted[i] == i);
  // Row i of the layer is the model's row order[i] (weight [out x in] and bias); column j of the
  // consumer is the model's column order[j].
  const std::vector<float>& w1 = *fc1.inputs[1]->f32;
  const std::vector<float>& b1 = *fc1.inputs[2]->f32;
  const std::vector<float>& w2 = *fc2.inputs[1]->f32;
  REQUIRE(w1.size() == 16 * 8);
  REQUIRE(w2.size() == 5 * 16);
  for (int64_t i = 0; i < 16; ++i) {
    const int64_t m = order[i];
    CHECK(b1[i] == 0.125f * static_cast<float>(m));
    for (int64_t k = 0; k < 8; ++k)
      CHECK(w1[i * 8 + k] == (k / 2 == m % 4 ? 1.0f + static_cast<float>(k * 16 + m) / 64.0f : 0.0f));
    for (int64_t r = 0; r < 5; ++r) CHECK(w2[r * 16 + i] == static_cast<float>((m * 5 + r) % 7) - 3.0f);
  }
  // The model-order constants are gone (nothing refers to them).
  for (const auto& v : g->values()) CHECK(v->name != "w1");
}

TEST_CASE("permute-rows: a layer whose output is also read elsewhere keeps the order in its kernel", "[passes]") {
  auto g = permuted(mlp_with_classes(true));
  const auto& fc1 = *g->nodes()[0];
  CHECK_FALSE(fc1.has("rows_permuted"));
  REQUIRE(fc1.has("row_order"));  // saves 75 % of the loads: worth the scattered rows
  CHECK_FALSE(g->nodes()[1]->has("columns_permuted_for"));
}

namespace {

// x [1,3,8,8] -> Conv 3x3 pad 1 (no bias) -> BatchNormalization -> Clip(0, 6) -> depthwise 3x3
// stride 2 -> BatchNormalization (standalone: the depthwise output is also a graph output)
OnnxBuilder conv_bn() {
  OnnxBuilder b;
  b.input("x", {1, 3, 8, 8})
      .weight("w", {4, 3, 3, 3}, sdnn::test::pattern(108, 3))
      .weight("g", {4}, {1, 2, 3, 4})
      .weight("be", {4}, {0.5f, 0, 0, -1})
      .weight("mu", {4}, {1, 0, 0, 0})
      .weight("var", {4}, {3, 1, 1, 1})
      .weight("dw", {4, 1, 3, 3}, sdnn::test::pattern(36, 2))
      .weight("lo", {}, {0})
      .weight("hi", {}, {6});
  auto& c = b.node("Conv", "conv", {"x", "w"}, {"c"});
  OnnxBuilder::attr_ints(c, "pads", {1, 1, 1, 1});
  b.node("BatchNormalization", "bn1", {"c", "g", "be", "mu", "var"}, {"n"});
  b.node("Clip", "relu6", {"n", "lo", "hi"}, {"r"});
  auto& d = b.node("Conv", "dw", {"r", "dw"}, {"d"});
  OnnxBuilder::attr_int(d, "group", 4);
  OnnxBuilder::attr_ints(d, "pads", {1, 1, 1, 1});
  OnnxBuilder::attr_ints(d, "strides", {2, 2});
  b.node("BatchNormalization", "bn2", {"d", "g", "be", "mu", "var"}, {"y"});
  b.output("d").output("y");
  return b;
}

}  // namespace

TEST_CASE("canonicalize: KxK Conv becomes im2col + conv1x1, BatchNormalization folds into it", "[passes]") {
  auto g = run_until(conv_bn(), "fuse-epilogue");
  REQUIRE(count_op(*g, "im2col") == 1);
  CHECK(count_op(*g, "BatchNormalization") == 0);
  const sdnn::ir::Node* conv = nullptr;
  for (const auto& n : g->nodes())
    if (n->op == "conv1x1") conv = n.get();
  REQUIRE(conv != nullptr);
  CHECK(conv->inputs[0]->shape == sdnn::ir::Shape{1, 27, 8, 8});
  CHECK(conv->get_str("epilogue", "") == "relu6");
  // Channel 0: s = 1 / sqrt(3 + 1e-5), t = 0.5 - 1 * s; weights scaled by s, bias = t.
  const double s0 = 1.0 / std::sqrt(3.0 + 1e-5);
  CHECK((*conv->inputs[2]->f32)[0] == Approx(0.5 - s0).epsilon(1e-6));
  CHECK((*conv->inputs[1]->f32)[0] == Approx(0.5 * 1 * s0).epsilon(1e-6));  // pattern(108, 3)[0] = 0.5
}

TEST_CASE("canonicalize: depthwise Conv, and a BatchNormalization that cannot fold becomes a 1x1 depthwise", "[passes]") {
  auto g = run_until(conv_bn(), "canonicalize");
  CHECK(count_op(*g, "depthwise") == 2);
  const auto& last = *g->nodes().back();
  CHECK(last.op == "depthwise");
  CHECK(last.get_ints("kernel") == std::vector<int64_t>{1, 1});
  CHECK(last.outputs[0]->shape == sdnn::ir::Shape{1, 4, 4, 4});
}
