// error.h — the one exception type of the compiler and the always-on invariant check.
//
// Every user-facing failure (bad model, unsupported op, bad option) is an sdnn::Error whose
// message already says where (file, ONNX node and op type, pass) and what. tools/ catch it once
// and print "sdnnc: error: <message>". SDNN_CHECK guards internal invariants in every build type.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace sdnn {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// Builds a message from stream-able pieces: fail("node '", name, "': ", detail).
template <typename... Ts>
std::string str_cat(const Ts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <typename... Ts>
[[noreturn]] void fail(const Ts&... parts) {
  throw Error(str_cat(parts...));
}

}  // namespace sdnn

#define SDNN_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond))                                                                           \
      ::sdnn::fail("internal error: check failed: ", #cond, " at ", __FILE__, ":", __LINE__); \
  } while (0)
