// test_runtime.cpp — runtime_min through its C ABI, on hand-made model .so files (no compiler).
//
// Each model .so is runtime_min + one plan file (model_*.c), loaded with dlopen + dlsym as a
// deployment would. Checked: results against a double-precision reference for several thread
// counts (including more threads than row tiles), context reuse, argument validation, the CPU
// check with its SDNN_CPU_DISABLE mask, plan validation, concurrent contexts on one model, idle
// workers sleeping and being joined, and two models in one process.
#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "model_library.hpp"
#include "reference.hpp"
#include "sdnn.h"

namespace {

using sdnn_test::load_status;
using sdnn_test::ModelLibrary;
using sdnn_test::conv_reference;
using sdnn_test::first_mismatch;
using sdnn_test::make_input;
using sdnn_test::mlp_reference;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

struct MlpBuffers {
  std::vector<float> x;
  std::vector<float> y = std::vector<float>(x.size(), kNaN);
  std::vector<float> x_copy = std::vector<float>(x.size(), kNaN);
  explicit MlpBuffers(uint32_t variant) : x(make_input(TM_MLP_TOKENS * TM_MLP_FEATURES, variant)) {}
};

void run_and_check_mlp(ModelLibrary& lib, sdnn_context* context, uint32_t variant) {
  MlpBuffers buffers(variant);
  const float* inputs[] = {buffers.x.data()};
  float* outputs[] = {buffers.y.data(), buffers.x_copy.data()};
  REQUIRE(lib.run(context, inputs, outputs) == SDNN_OK);
  CHECK(first_mismatch(buffers.y, mlp_reference(buffers.x)) == -1);
  CHECK(first_mismatch(buffers.x_copy, buffers.x) == -1);
}

void run_and_check_conv(ModelLibrary& lib, sdnn_context* context, uint32_t variant) {
  std::vector<float> img = make_input(TM_CONV_BATCH * TM_CONV_IN * TM_CONV_HW, variant);
  std::vector<float> out(static_cast<size_t>(TM_CONV_BATCH) * TM_CONV_OUT * TM_CONV_HW, kNaN);
  const float* inputs[] = {img.data()};
  float* outputs[] = {out.data()};
  REQUIRE(lib.run(context, inputs, outputs) == SDNN_OK);
  CHECK(first_mismatch(out, conv_reference(img)) == -1);
}

std::vector<int64_t> dims_of(const sdnn_tensor_info* info) {
  return std::vector<int64_t>(info->dims, info->dims + info->rank);
}

// Sets SDNN_CPU_DISABLE for one scope.
class CpuDisable {
 public:
  explicit CpuDisable(const char* list) { setenv("SDNN_CPU_DISABLE", list, 1); }
  ~CpuDisable() { unsetenv("SDNN_CPU_DISABLE"); }
};

size_t process_threads() {
  const std::filesystem::directory_iterator tasks("/proc/self/task");
  return static_cast<size_t>(std::distance(begin(tasks), end(tasks)));
}

// The thread count once it settles at `want` (or after 2 s): a joined thread's /proc entry can
// outlive pthread_join by a moment on a loaded machine (the kernel releases the task after the
// join's futex wake-up), so counting right after a free can still see it.
size_t process_threads_settled(size_t want) {
  size_t n = process_threads();
  for (int i = 0; i < 200 && n != want; ++i) {
    usleep(10 * 1000);
    n = process_threads();
  }
  return n;
}

double process_cpu_seconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

}  // namespace

TEST_CASE("model info reports the plan's tensors", "[info]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  sdnn_model* model = lib.load_model();
  REQUIRE(lib.num_inputs(model) == 1);
  REQUIRE(lib.num_outputs(model) == 2);
  const std::vector<int64_t> dims = {TM_MLP_TOKENS, TM_MLP_FEATURES};
  CHECK(std::string(lib.input(model, 0)->name) == "x");
  CHECK(dims_of(lib.input(model, 0)) == dims);
  CHECK(std::string(lib.output(model, 0)->name) == "y");
  CHECK(std::string(lib.output(model, 1)->name) == "x_copy");
  CHECK(dims_of(lib.output(model, 1)) == dims);
  CHECK(lib.input(model, 1) == nullptr);
  CHECK(lib.output(model, 2) == nullptr);
  lib.free_model(model);
}

TEST_CASE("mlp model matches the reference for any thread count", "[run]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  sdnn_model* model = lib.load_model();
  // 10 row tiles: 12 threads is more threads than tiles.
  for (int threads : {1, 2, 3, 12}) {
    DYNAMIC_SECTION("threads " << threads) {
      sdnn_context* context = nullptr;
      REQUIRE(lib.create_context(model, threads, &context) == SDNN_OK);
      for (uint32_t variant = 1; variant <= 3; ++variant) run_and_check_mlp(lib, context, variant);
      lib.free_context(context);
    }
  }
  lib.free_model(model);
}

TEST_CASE("batched conv model matches the reference for any thread count", "[run]") {
  ModelLibrary lib(SDNN_TEST_MODEL_CONV);
  sdnn_model* model = lib.load_model();
  // 5 row tiles: 8 threads is more threads than tiles.
  for (int threads : {1, 2, 3, 8}) {
    DYNAMIC_SECTION("threads " << threads) {
      sdnn_context* context = nullptr;
      REQUIRE(lib.create_context(model, threads, &context) == SDNN_OK);
      for (uint32_t variant = 1; variant <= 3; ++variant) run_and_check_conv(lib, context, variant);
      lib.free_context(context);
    }
  }
  lib.free_model(model);
}

TEST_CASE("the maximum thread count works", "[run]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  sdnn_model* model = lib.load_model();
  sdnn_context* context = nullptr;
  REQUIRE(lib.create_context(model, 1024, &context) == SDNN_OK);
  run_and_check_mlp(lib, context, 7);
  lib.free_context(context);
  lib.free_model(model);
}

TEST_CASE("null pointers and bad thread counts are invalid arguments", "[args]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  CHECK(lib.load(nullptr) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(lib.num_inputs(nullptr) == 0);
  CHECK(lib.num_outputs(nullptr) == 0);
  CHECK(lib.input(nullptr, 0) == nullptr);
  CHECK(lib.output(nullptr, 0) == nullptr);
  lib.free_model(nullptr);
  lib.free_context(nullptr);

  sdnn_model* model = lib.load_model();
  sdnn_context* context = reinterpret_cast<sdnn_context*>(&model);  // must be reset to NULL
  CHECK(lib.create_context(nullptr, 1, &context) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(context == nullptr);
  CHECK(lib.create_context(model, 1, nullptr) == SDNN_ERR_INVALID_ARGUMENT);
  for (int threads : {0, -1, 1025, 100000, std::numeric_limits<int>::min()}) {
    INFO("threads " << threads);
    CHECK(lib.create_context(model, threads, &context) == SDNN_ERR_INVALID_ARGUMENT);
    CHECK(context == nullptr);
  }

  REQUIRE(lib.create_context(model, 2, &context) == SDNN_OK);
  MlpBuffers buffers(1);
  const float* inputs[] = {buffers.x.data()};
  float* outputs[] = {buffers.y.data(), buffers.x_copy.data()};
  const float* null_input[] = {nullptr};
  float* null_output[] = {buffers.y.data(), nullptr};
  CHECK(lib.run(nullptr, inputs, outputs) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(lib.run(context, nullptr, outputs) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(lib.run(context, inputs, nullptr) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(lib.run(context, null_input, outputs) == SDNN_ERR_INVALID_ARGUMENT);
  CHECK(lib.run(context, inputs, null_output) == SDNN_ERR_INVALID_ARGUMENT);
  // The context still works after rejected calls.
  run_and_check_mlp(lib, context, 2);
  lib.free_context(context);
  lib.free_model(model);
}

TEST_CASE("status strings", "[args]") {
  ModelLibrary lib(SDNN_TEST_MODEL_TINY);
  std::vector<std::string> seen;
  for (sdnn_status s : {SDNN_OK, SDNN_ERR_INVALID_ARGUMENT, SDNN_ERR_UNSUPPORTED_CPU,
                        SDNN_ERR_OUT_OF_MEMORY, SDNN_ERR_INTERNAL}) {
    const char* text = lib.status_string(s);
    REQUIRE(text != nullptr);
    CHECK(std::find(seen.begin(), seen.end(), text) == seen.end());
    seen.push_back(text);
  }
  CHECK(std::string(lib.status_string(static_cast<sdnn_status>(99))) == "unknown status");
}

TEST_CASE("SDNN_CPU_DISABLE masks CPU features at load time", "[cpu]") {
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool has_avx512 = has_avx2 && __builtin_cpu_supports("avx512f");
  if (!has_avx512) WARN("no AVX-512F here: only the failing loads are meaningful");

  unsetenv("SDNN_CPU_DISABLE");
  CHECK(load_status(SDNN_TEST_MODEL_TINY) == SDNN_OK);
  CHECK(load_status(SDNN_TEST_MODEL_AVX2) == (has_avx2 ? SDNN_OK : SDNN_ERR_UNSUPPORTED_CPU));
  CHECK(load_status(SDNN_TEST_MODEL_AVX512) == (has_avx512 ? SDNN_OK : SDNN_ERR_UNSUPPORTED_CPU));
  CHECK(load_status(SDNN_TEST_MODEL_FUTURE_CPU) == SDNN_ERR_UNSUPPORTED_CPU);

  SECTION("avx512f") {
    CpuDisable disable("avx512f");
    CHECK(load_status(SDNN_TEST_MODEL_AVX512) == SDNN_ERR_UNSUPPORTED_CPU);
    CHECK(load_status(SDNN_TEST_MODEL_AVX2) == (has_avx2 ? SDNN_OK : SDNN_ERR_UNSUPPORTED_CPU));
    CHECK(load_status(SDNN_TEST_MODEL_TINY) == SDNN_OK);
  }
  SECTION("avx2 also disables avx512f") {
    CpuDisable disable("avx2");
    CHECK(load_status(SDNN_TEST_MODEL_AVX2) == SDNN_ERR_UNSUPPORTED_CPU);
    CHECK(load_status(SDNN_TEST_MODEL_AVX512) == SDNN_ERR_UNSUPPORTED_CPU);
    CHECK(load_status(SDNN_TEST_MODEL_TINY) == SDNN_OK);
  }
  SECTION("list with blanks, case and unknown names") {
    CpuDisable disable(" sse9 , AVX512F ,");
    CHECK(load_status(SDNN_TEST_MODEL_AVX512) == SDNN_ERR_UNSUPPORTED_CPU);
    CHECK(load_status(SDNN_TEST_MODEL_AVX2) == (has_avx2 ? SDNN_OK : SDNN_ERR_UNSUPPORTED_CPU));
  }
}

TEST_CASE("inconsistent plans fail to load with an internal error", "[load]") {
  CHECK(load_status(SDNN_TEST_MODEL_BAD_VERSION) == SDNN_ERR_INTERNAL);
  CHECK(load_status(SDNN_TEST_MODEL_WRITES_INPUT) == SDNN_ERR_INTERNAL);
  CHECK(load_status(SDNN_TEST_MODEL_BAD_SPLIT) == SDNN_ERR_INTERNAL);
}

TEST_CASE("two contexts on one model run concurrently", "[threads]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  sdnn_model* model = lib.load_model();
  sdnn_context* contexts[2] = {nullptr, nullptr};
  REQUIRE(lib.create_context(model, 2, &contexts[0]) == SDNN_OK);
  REQUIRE(lib.create_context(model, 1, &contexts[1]) == SDNN_OK);

  // Catch2 assertions are not thread-safe: workers only record failures.
  int failures[2] = {0, 0};
  auto stream = [&](int which) {
    for (uint32_t iteration = 0; iteration < 20; ++iteration) {
      MlpBuffers buffers(100 * which + iteration);
      const float* inputs[] = {buffers.x.data()};
      float* outputs[] = {buffers.y.data(), buffers.x_copy.data()};
      if (lib.run(contexts[which], inputs, outputs) != SDNN_OK ||
          first_mismatch(buffers.y, mlp_reference(buffers.x)) != -1 ||
          first_mismatch(buffers.x_copy, buffers.x) != -1)
        ++failures[which];
    }
  };
  std::thread first(stream, 0), second(stream, 1);
  first.join();
  second.join();
  CHECK(failures[0] == 0);
  CHECK(failures[1] == 0);
  lib.free_context(contexts[0]);
  lib.free_context(contexts[1]);
  lib.free_model(model);
}

TEST_CASE("idle workers sleep and are joined on free", "[threads]") {
  ModelLibrary lib(SDNN_TEST_MODEL_MLP);
  sdnn_model* model = lib.load_model();
  sdnn_context* context = nullptr;
  // Baseline after a first context: tools such as TSan start a helper thread at the first
  // pthread_create.
  const size_t threads_at_start = process_threads();
  REQUIRE(lib.create_context(model, 3, &context) == SDNN_OK);
  lib.free_context(context);
  const size_t threads_before = process_threads_settled(threads_at_start);
  REQUIRE(lib.create_context(model, 3, &context) == SDNN_OK);
  CHECK(process_threads() == threads_before + 2);
  run_and_check_mlp(lib, context, 8);

  // Workers spin for microseconds after a step, then sleep: an idle context costs no CPU.
  const double cpu_before = process_cpu_seconds();
  usleep(300 * 1000);
  CHECK(process_cpu_seconds() - cpu_before < 0.05);

  lib.free_context(context);
  CHECK(process_threads_settled(threads_before) == threads_before);
  lib.free_model(model);
}

TEST_CASE("each model .so runs its own plan when another is globally visible", "[load]") {
  // mlp's symbols enter the global scope; conv, loaded afterwards, must still bind its own plan.
  ModelLibrary global(SDNN_TEST_MODEL_MLP, RTLD_NOW | RTLD_GLOBAL);
  ModelLibrary conv(SDNN_TEST_MODEL_CONV);
  sdnn_model* model = conv.load_model();
  REQUIRE(conv.num_inputs(model) == 1);
  CHECK(std::string(conv.input(model, 0)->name) == "img");
  sdnn_context* context = nullptr;
  REQUIRE(conv.create_context(model, 2, &context) == SDNN_OK);
  run_and_check_conv(conv, context, 4);
  conv.free_context(context);
  conv.free_model(model);
}
