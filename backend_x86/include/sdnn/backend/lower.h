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
  // How the runtime shares a kernel step between threads (sdnn_kernel_step.split):
  // false: row tiles (SDNN_SPLIT_ROWS); true: steps with few row tiles per thread split their
  // columns instead (SDNN_SPLIT_COLUMNS).
  bool column_split = true;
};

// "auto" | "rows" -> LowerOptions::column_split.
bool parse_thread_split(const std::string& s);

// The ISA the build machine supports best; throws if it has neither AVX2+FMA nor AVX-512F.
Isa detect_native_isa();
// "native" | "avx512" | "avx2" -> Isa.
Isa parse_target(const std::string& target);

struct LoweredKernel {
  KernelBinary bin;
  std::vector<float> bias;  // empty when the kernel has no bias epilogue
  int64_t batch = 1, b_batch_stride = 0, c_batch_stride = 0;
  int64_t b_col_scale = 0;  // floats from B's column n0 to n0 + 1 (K blocked, 1 for planes)
  int64_t c_col_scale = 0;  // the same for C (M blocked, 1 for planes)
  int64_t c_offset = 0;     // floats from the output value's start to C's column 0
  std::string layer;        // ONNX node name, for diagnostics and reports
  std::string op;           // fc | conv1x1 | conv_direct
  uint32_t split = 0;       // sdnn_kernel_split_policy
  TuneRecord tune;
};

// sdnn_window_params of an im2col / depthwise / pool step, with the depthwise weights.
struct WindowStep {
  int64_t batch = 0, channels = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_top = 0, pad_left = 0;
  int64_t dilation_h = 1, dilation_w = 1, vl = 0, in_row_stride = 0;
  uint32_t act = 0, count_include_pad = 0, by_blocks = 0, residual = 0, dst_nchw = 0;
  std::vector<float> weights, bias;  // DEPTHWISE: [C][KH][KW], [C] (bias may be empty)
};

// The parameters of the tensor steps (sdnn_plan.h), with the constants they point to.
struct ElementwiseStep {
  uint32_t fn = 0;  // sdnn_elementwise_fn
  float alpha = 0, beta = 0;
  std::vector<int64_t> dims, dst_strides, src0_strides, src1_strides;
  std::vector<float> src0_const, src1_const;  // used when has_src*_const
  bool has_src0_const = false, has_src1_const = false;
};

struct MatmulStep {
  int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  std::vector<int64_t> batch_dims, a_batch_strides, b_batch_strides, c_batch_strides;
  std::vector<float> b_const;  // non-empty: B is this constant
};

struct NormStep {
  int64_t tokens = 0, features = 0, vl = 0;
  bool blocked = false;
  float epsilon = 0;
  std::vector<float> gamma, beta;  // beta may be empty
};

struct AttentionStep {
  int64_t batch = 0, seq = 0, heads = 0, head_dim = 0, vl = 0, mask_batch = 0;
  bool has_mask = false;
  float scale = 1;
  std::vector<float> mask_const;  // non-empty: the mask is this constant
};

// GATHER_ROWS: the table rows are picked from.
struct TableStep {
  std::vector<float> table;
};

struct LoweredStep {
  uint32_t op = 0;  // sdnn_step_op
  ir::Storage src0, src1, dst, src2, src3;
  int64_t dims[4] = {0, 0, 0, 0};
  int kernel = -1;  // index into LoweredModel::kernels for SDNN_STEP_KERNEL
  bool has_window = false;
  WindowStep window;
  float alpha = 0, beta = 0;  // CLIP bounds
  // Tensor steps: exactly one is used, chosen by op.
  ElementwiseStep elementwise;
  MatmulStep matmul;
  NormStep norm;
  AttentionStep attention;
  TableStep table;
};

struct LoweredModel {
  struct Io {
    std::string name;
    ir::Shape shape;
    bool i64 = false;
  };
  std::vector<LoweredKernel> kernels;
  std::vector<LoweredStep> steps;
  std::vector<Io> inputs, outputs;
  int64_t arena_bytes = 0;
  int64_t scratch_bytes = 0;  // per thread
  uint32_t required_cpu = 0;  // SDNN_CPU_* bits
  std::string producer;       // "sdnnc <version> <isa>"
};

// Emits every kernel and builds the steps. Records each kernel's plan on its node
// (attrs "plan" and "symbol") so --dump-ir shows it.
LoweredModel lower(ir::Graph& g, const LowerOptions& opts);

}  // namespace sdnn::backend
