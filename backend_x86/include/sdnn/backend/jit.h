// jit.h — runs emitted kernel bytes in-process (unit tests, and the autotuner's timing).
#pragma once

#include <cstdint>
#include <vector>

#include "sdnn_plan.h"

namespace sdnn::backend {

class JitKernel {
 public:
  explicit JitKernel(const std::vector<uint8_t>& code);
  ~JitKernel();
  JitKernel(const JitKernel&) = delete;
  JitKernel& operator=(const JitKernel&) = delete;
  sdnn_kernel_fn fn() const { return reinterpret_cast<sdnn_kernel_fn>(mem_); }

 private:
  void* mem_ = nullptr;
  size_t size_ = 0;
};

}  // namespace sdnn::backend
