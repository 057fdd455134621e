// kernel_emitter.h — generated x86 kernels (SpMM with the pattern baked in, dense GEMM).
//
// The result of emission is plain data: position-independent, deterministic code bytes (only
// RIP-relative references), the values stream in the exact order the code consumes it, and the
// per-block value offsets the runtime needs (runtime_min/include/sdnn_plan.h describes the
// calling contract: one sdnn_kernel_args pointer, blocks k-block-major).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sdnn/backend/kernel_plan.h"

namespace sdnn::backend {

struct KernelBinary {
  std::string symbol;                 // sdnn_k<i>_<family>_f32_<mb>x<nb>__<isa>
  KernelPlan plan;
  std::vector<uint8_t> code;
  std::vector<float> values;          // consumption ("Z") order
  std::vector<int64_t> block_offsets; // num_k_blocks * num_tiles + 1, in floats
  std::vector<size_t> block_code;     // byte offset in `code` of each block, first phase (tests)
  int64_t nnz = 0;
};

// Emits the kernel for `plan` and the weights `a` (m x k). For Family::Dense every entry of
// the tile is stored (zeros included). Throws sdnn::Error when the plan is invalid.
KernelBinary emit_kernel(const KernelPlan& plan, const SparseMatrix& a, const std::string& symbol);

// Kernel symbol name per STYLE.md.
std::string kernel_symbol(int index, const KernelPlan& plan);

}  // namespace sdnn::backend
