// graph.h — the sdnnc IR: a Graph owns Values and Nodes, nodes kept in topological order.
//
// A Value has a logical shape (ONNX semantics), a dtype, a physical layout and optional constant
// data. Nodes carry an op name and attributes; imported nodes keep their ONNX op names (Gemm,
// MatMul, ...), passes rewrite them into the compiler's own lower-case ops (fc, conv1x1, relu,
// add, reshape, layout, copy). Attributes also hold what passes decide (epilogue, kernel choice,
// buffer offsets), so the text dump shows every decision.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

namespace sdnn::ir {

enum class DType { F32, I64 };

// Physical layout of an activation. The blocked layouts are the SpMM's B / C: the N axis is cut
// into blocks of VL columns (VL = floats per vector of the target, a pipeline parameter), each
// block stored feature-major, so one column chunk of all features is contiguous; N is padded to
// a multiple of VL.
//   RowMajor:        the logical shape, C order (NCHW for 4-D images).
//   FeatureBlocked:  logical [..., F], N = product of the leading dims: [ceil(N/VL)][F][VL].
//   ChannelBlocked:  logical [B, C, H, W], per image N = H*W: [B][ceil(N/VL)][C][VL].
enum class Layout { RowMajor, FeatureBlocked, ChannelBlocked };

const char* to_string(DType d);
const char* to_string(Layout l);
size_t dtype_size(DType d);

using Shape = std::vector<int64_t>;
std::string shape_to_string(const Shape& s);  // "64x512", "" for a scalar
int64_t num_elements(const Shape& s);

// The blocked view of a logical shape: `batch` independent [F x N] matrices, N padded to VL.
struct BlockedDims {
  int64_t batch, features, columns, padded_columns;
};
BlockedDims blocked_dims(const Shape& s, Layout l, int64_t vl);

struct Node;

// Where a value lives at run time (set by passes/plan_buffers): the context's arena at a byte
// offset, or the caller's input / output tensor.
struct Storage {
  enum class Kind { None, Arena, Input, Output };
  Kind kind = Kind::None;
  int64_t index = 0;   // input / output index
  int64_t offset = 0;  // bytes into the arena (or into the input / output)
};
std::string to_string(const Storage& s);

struct Value {
  std::string name;  // ONNX tensor name (may be empty for values passes create)
  DType dtype = DType::F32;
  Shape shape;
  Layout layout = Layout::RowMajor;
  // Constant data (initializers, Constant nodes, folded values); exactly one is used per dtype.
  std::shared_ptr<const std::vector<float>> f32;
  std::shared_ptr<const std::vector<int64_t>> i64;
  Node* producer = nullptr;
  Storage storage;

  bool is_constant() const { return f32 || i64; }
  int64_t numel() const { return num_elements(shape); }
  int64_t bytes() const { return numel() * static_cast<int64_t>(dtype_size(dtype)); }
  // Bytes in memory in its layout (blocked layouts pad N to a multiple of vl).
  int64_t storage_bytes(int64_t vl) const;
};

using AttrValue = std::variant<int64_t, double, std::string, std::vector<int64_t>, std::vector<double>>;
std::string attr_to_string(const AttrValue& a);

struct Node {
  std::string op;
  std::string name;  // ONNX node name (or a name a pass gives), used in diagnostics
  std::vector<Value*> inputs;  // an optional input that is absent is nullptr
  std::vector<Value*> outputs;
  std::map<std::string, AttrValue> attrs;

  bool has(const std::string& key) const { return attrs.count(key) != 0; }
  int64_t get_int(const std::string& key, int64_t dflt) const;
  double get_float(const std::string& key, double dflt) const;
  std::string get_str(const std::string& key, const std::string& dflt) const;
  std::vector<int64_t> get_ints(const std::string& key) const;
  // "node 'name' (Op)" for diagnostics.
  std::string where() const;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Value* add_value(std::string name, DType dtype, Shape shape);
  Value* add_constant(std::string name, Shape shape, std::vector<float> data);
  Value* add_constant_i64(std::string name, Shape shape, std::vector<int64_t> data);
  // Appends a node (or inserts it before `before` when given) and sets producers of its outputs.
  Node* add_node(std::string op, std::string name, std::vector<Value*> inputs,
                 std::vector<Value*> outputs, const Node* before = nullptr);
  void remove_node(Node* n);
  // Replaces every use of `from` (node inputs and graph outputs) by `to`.
  void replace_uses(Value* from, Value* to);
  std::vector<Node*> users(const Value* v) const;
  bool is_graph_output(const Value* v) const;
  bool is_graph_input(const Value* v) const;
  // Drops nodes whose outputs are all unused and values nothing refers to.
  bool remove_dead();

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }
  std::vector<Value*>& inputs() { return inputs_; }
  std::vector<Value*>& outputs() { return outputs_; }
  const std::vector<Value*>& inputs() const { return inputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  // Graph-level facts (model file name, opset) for diagnostics and the dump.
  std::map<std::string, std::string>& meta() { return meta_; }
  const std::map<std::string, std::string>& meta() const { return meta_; }

 private:
  std::vector<std::unique_ptr<Value>> values_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Value*> inputs_, outputs_;
  std::map<std::string, std::string> meta_;
};

// Text dump: values numbered in print order, attributes sorted, constants as dtype/shape/layout/nnz.
std::string print(const Graph& g);

// Structural checks (topological order, producers, shapes of known ops). Throws sdnn::Error
// naming the node and `stage` (e.g. the pass just run).
void verify(const Graph& g, const std::string& stage);

// numpy broadcasting of two shapes into `out`; false when they do not broadcast.
bool broadcast_shapes(const Shape& a, const Shape& b, Shape& out);

// Shape inference for one node of the compiler's own ops; returns the output shapes.
// Throws sdnn::Error naming the node on inconsistent input shapes.
std::vector<Shape> infer_shapes(const Node& n);

}  // namespace sdnn::ir
