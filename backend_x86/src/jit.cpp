// jit.cpp — copies kernel bytes into fresh pages and makes them executable (W^X: never both).
#include "sdnn/backend/jit.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "sdnn/ir/error.h"

namespace sdnn::backend {

JitKernel::JitKernel(const std::vector<uint8_t>& code) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  size_ = (code.size() + page - 1) / page * page;
  if (size_ == 0) size_ = page;
  mem_ = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem_ == MAP_FAILED) fail("jit: mmap of ", size_, " bytes failed: ", std::strerror(errno));
  std::memcpy(mem_, code.data(), code.size());
  if (mprotect(mem_, size_, PROT_READ | PROT_EXEC) != 0) {
    munmap(mem_, size_);
    fail("jit: mprotect failed: ", std::strerror(errno));
  }
}

JitKernel::~JitKernel() { munmap(mem_, size_); }

}  // namespace sdnn::backend
