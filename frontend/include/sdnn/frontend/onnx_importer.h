// onnx_importer.h — ONNX model file -> ir::Graph.
//
// Validates as it imports: opset range, dtypes, supported ops and attribute values, constant
// weights, and binds symbolic input dims from --input-shape. Every error names the file, the ONNX
// node and op type (or the tensor) and what is wrong.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "sdnn/ir/graph.h"

namespace sdnn::frontend {

struct ImportOptions {
  // Full shapes of graph inputs by name (from --input-shape name=64x512); binds symbolic dims.
  std::map<std::string, ir::Shape> input_shapes;
};

// Opsets of the default domain this frontend accepts.
constexpr int kMinOpset = 11;
constexpr int kMaxOpset = 21;

std::unique_ptr<ir::Graph> import_onnx_file(const std::string& path, const ImportOptions& opts);
// Same from bytes already in memory; `label` names the model in messages.
std::unique_ptr<ir::Graph> import_onnx_bytes(const std::string& bytes, const std::string& label,
                                             const ImportOptions& opts);

// The ONNX op types the frontend accepts, comma-separated, for messages and --help.
std::string supported_ops();

}  // namespace sdnn::frontend
