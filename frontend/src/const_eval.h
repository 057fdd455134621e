// const_eval.h — evaluates ONNX ops on constant inputs while importing (constant folding).
//
// Exporters compute shapes with chains like Shape -> Gather -> Unsqueeze -> Concat -> Reshape;
// once every input shape is bound they are constant, and the importer evaluates them here so the
// graph only keeps the ops that touch activations. Values are held as doubles (exact for int64
// shapes below 2^53, and one IEEE double op rounded to float equals the float op for + - * / and
// sqrt), typed float32 or int64 (bool as 0 / 1).
#pragma once

#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "sdnn/ir/graph.h"

namespace sdnn::frontend {

struct ConstTensor {
  bool is_float = true;
  ir::Shape shape;
  std::vector<double> v;

  static ConstTensor of(const ir::Value& value);  // value must be a constant
  int64_t numel() const { return static_cast<int64_t>(v.size()); }
};

// A folded value as int64: saturated at the int64 range, so INT64_MAX (what exporters write for
// an open slice end) survives the trip through double.
int64_t to_int64(double x);

// True when `op` is one the folder evaluates (given constant inputs).
bool can_fold(const std::string& op);

// Evaluates node `p` (opset `opset`) on `in` (nullptr for an absent optional input) into one
// tensor per output. Throws sdnn::Error with a message that does not repeat the node's location.
std::vector<ConstTensor> fold(const onnx::NodeProto& p, int64_t opset, const std::vector<const ConstTensor*>& in);

// Slice on a tensor of `shape` (ONNX semantics: negative starts / ends count from the end, clamped
// to the dim, axes default to 0..n-1, steps to 1), normalized to every dim: element i of the
// result along dim d is element start[d] + i * step[d] of the input, count[d] of them.
struct SliceGeometry {
  std::vector<int64_t> start, step;
  ir::Shape count;
};
SliceGeometry slice_geometry(const ir::Shape& shape, std::vector<int64_t> starts, std::vector<int64_t> ends,
                             std::vector<int64_t> axes, std::vector<int64_t> steps);

// The shape of an Unsqueeze / Squeeze result, shared with the importer's activation path.
ir::Shape unsqueeze_shape(const ir::Shape& in, std::vector<int64_t> axes);
ir::Shape squeeze_shape(const ir::Shape& in, std::vector<int64_t> axes);

}  // namespace sdnn::frontend
