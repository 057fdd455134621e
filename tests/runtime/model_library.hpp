// model_library.hpp — the C ABI entry points of one model .so loaded with dlopen + dlsym, as a
// deployment would use them, for the Catch2 tests of tests/runtime.
#ifndef SDNN_TEST_MODEL_LIBRARY_HPP
#define SDNN_TEST_MODEL_LIBRARY_HPP

#include <dlfcn.h>

#include <catch2/catch.hpp>

#include "sdnn.h"

namespace sdnn_test {

// The ABI entry points of one loaded model .so.
class ModelLibrary {
 public:
  explicit ModelLibrary(const char* path, int flags = RTLD_NOW | RTLD_LOCAL)
      : handle_(dlopen(path, flags)) {
    if (!handle_) FAIL("dlopen " << path << ": " << dlerror());
    load = symbol<decltype(&sdnn_model_load)>("sdnn_model_load");
    free_model = symbol<decltype(&sdnn_model_free)>("sdnn_model_free");
    num_inputs = symbol<decltype(&sdnn_model_num_inputs)>("sdnn_model_num_inputs");
    num_outputs = symbol<decltype(&sdnn_model_num_outputs)>("sdnn_model_num_outputs");
    input = symbol<decltype(&sdnn_model_input)>("sdnn_model_input");
    output = symbol<decltype(&sdnn_model_output)>("sdnn_model_output");
    create_context = symbol<decltype(&sdnn_context_create)>("sdnn_context_create");
    free_context = symbol<decltype(&sdnn_context_free)>("sdnn_context_free");
    run = symbol<decltype(&sdnn_run)>("sdnn_run");
    status_string = symbol<decltype(&sdnn_status_string)>("sdnn_status_string");
  }
  ~ModelLibrary() { dlclose(handle_); }
  ModelLibrary(const ModelLibrary&) = delete;
  ModelLibrary& operator=(const ModelLibrary&) = delete;

  decltype(&sdnn_model_load) load;
  decltype(&sdnn_model_free) free_model;
  decltype(&sdnn_model_num_inputs) num_inputs;
  decltype(&sdnn_model_num_outputs) num_outputs;
  decltype(&sdnn_model_input) input;
  decltype(&sdnn_model_output) output;
  decltype(&sdnn_context_create) create_context;
  decltype(&sdnn_context_free) free_context;
  decltype(&sdnn_run) run;
  decltype(&sdnn_status_string) status_string;

  sdnn_model* load_model() {
    sdnn_model* model = nullptr;
    REQUIRE(load(&model) == SDNN_OK);
    REQUIRE(model != nullptr);
    return model;
  }

 private:
  template <typename Fn>
  Fn symbol(const char* name) {
    void* address = dlsym(handle_, name);
    if (!address) FAIL("dlsym " << name << ": " << dlerror());
    return reinterpret_cast<Fn>(address);
  }
  void* handle_;
};

// The status of sdnn_model_load on the model at `path` (the model is freed again).
inline sdnn_status load_status(const char* path) {
  ModelLibrary lib(path);
  sdnn_model* model = nullptr;
  const sdnn_status status = lib.load(&model);
  if (status == SDNN_OK)
    lib.free_model(model);
  else
    CHECK(model == nullptr);
  return status;
}

}  // namespace sdnn_test

#endif  // SDNN_TEST_MODEL_LIBRARY_HPP
