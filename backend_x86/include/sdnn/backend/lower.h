// lower.h — ir::Graph (after the pass pipeline) -> LoweredModel: generated kernels, their
// weights, and the step list of the runtime plan. Pure data; aot_writer.h turns it into model.so.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sdnn/backend/kernel_emitter.h"
#include "sdnn/backend/tuner.h"
#include "sdnn/ir/graph.h"

namespace sdnn::backend {

struct LowerOptions {
  Isa isa = Isa::Avx512;
  int threads = 0;  // kernels emitted in parallel (0: one per core)
  TuneOptions tune;
  bool progress = false;  // report tuning progress on stderr
};

// The ISA the build machine supports best; throws if it has neither AVX2+FMA nor AVX-512F.
Isa detect_native_isa();
// "native" | "avx512" | "avx2" -> Isa.
Isa parse_target(const std::string& target);

struct LoweredKernel {
  KernelBinary bin;
  std::vector<float> bias;  // empty when the kernel has no bias epilogue
  int64_t batch = 1, b_batch_stride = 0, c_batch_stride = 0;
  std::string layer;        // ONNX node name, for diagnostics and reports
  std::string op;           // fc | conv1x1
  TuneRecord tune;
};

// sdnn_window_params of an im2col / depthwise / pool step, with the depthwise weights.
struct WindowStep {
  int64_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
  int64_t dilation_h = 1, dilation_w = 1, vl = 0;
  uint32_t act = 0, count_include_pad = 0;
  std::vector<float> weights, bias;  // DEPTHWISE: [C][KH][KW], [C] (bias may be empty)
};

struct LoweredStep {
  uint32_t op = 0;  // sdnn_step_op
  ir::Storage src0, src1, dst;
  int64_t dims[4] = {0, 0, 0, 0};
  int kernel = -1;  // index into LoweredModel::kernels for SDNN_STEP_KERNEL
  bool has_window = false;
  WindowStep window;
  float alpha = 0, beta = 0;  // CLIP bounds
};

struct LoweredModel {
  struct Io {
    std::string name;
    ir::Shape shape;
  };
  std::vector<LoweredKernel> kernels;
  std::vector<LoweredStep> steps;
  std::vector<Io> inputs, outputs;
  int64_t arena_bytes = 0;
  uint32_t required_cpu = 0;  // SDNN_CPU_* bits
  std::string producer;       // "sdnnc <version> <isa>"
};

// Emits every kernel and builds the steps. Records each kernel's plan on its node
// (attrs "plan" and "symbol") so --dump-ir shows it.
LoweredModel lower(ir::Graph& g, const LowerOptions& opts);

}  // namespace sdnn::backend
