// test_window.cpp — the windowed steps (im2col, depthwise, max / average / global average pool)
// and clip through the C ABI: the "window" model (model_window.c, one step per case of
// window_cases.h) against the double-precision reference on 1, 2 and 3 threads, outputs
// pre-filled with a sentinel so unwritten elements (im2col pad columns included) show; and the
// variants with one corrupt step, which must fail to load.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "model_library.hpp"
#include "window_reference.hpp"

using sdnn_test::load_status;
using sdnn_test::ModelLibrary;
using sdnn_test::window_input;
using sdnn_test::window_mismatch;
using sdnn_test::window_reference;
using sdnn_test::WindowExpected;

TEST_CASE("window model exposes one input and one output per case", "[window]") {
  ModelLibrary lib(SDNN_TEST_MODEL_WINDOW);
  sdnn_model* model = lib.load_model();
  REQUIRE(lib.num_inputs(model) == static_cast<size_t>(TW_NUM_CASES));
  REQUIRE(lib.num_outputs(model) == static_cast<size_t>(TW_NUM_CASES));
  for (int i = 0; i < TW_NUM_CASES; ++i) {
    CHECK(std::string(lib.input(model, i)->name) == tw_cases[i].name);
    CHECK(lib.output(model, i)->dims[0] == tw_out_floats(&tw_cases[i]));
  }
  lib.free_model(model);
}

TEST_CASE("window steps match the reference on 1, 2 and 3 threads", "[window]") {
  ModelLibrary lib(SDNN_TEST_MODEL_WINDOW);
  sdnn_model* model = lib.load_model();
  const float sentinel = -777.0f;

  for (uint32_t variant = 1; variant <= 2; ++variant) {
    std::vector<std::vector<float>> x(TW_NUM_CASES);
    std::vector<WindowExpected> want(TW_NUM_CASES);
    std::vector<const float*> inputs(TW_NUM_CASES);
    for (int i = 0; i < TW_NUM_CASES; ++i) {
      x[i] = window_input(i, variant);
      want[i] = window_reference(i, x[i]);
      inputs[i] = x[i].data();
    }
    for (int threads : {1, 2, 3}) {
      sdnn_context* context = nullptr;
      REQUIRE(lib.create_context(model, threads, &context) == SDNN_OK);
      std::vector<std::vector<float>> y(TW_NUM_CASES);
      std::vector<float*> outputs(TW_NUM_CASES);
      for (int i = 0; i < TW_NUM_CASES; ++i) {
        y[i].assign(want[i].value.size(), sentinel);
        outputs[i] = y[i].data();
      }
      REQUIRE(lib.run(context, inputs.data(), outputs.data()) == SDNN_OK);
      for (int i = 0; i < TW_NUM_CASES; ++i) {
        INFO("case " << tw_cases[i].name << ", threads " << threads << ", variant " << variant);
        CHECK(window_mismatch(y[i], want[i]) == "");
      }
      lib.free_context(context);
    }
  }
  lib.free_model(model);
}

TEST_CASE("window plans with bad parameters fail to load", "[window][load]") {
  CHECK(load_status(SDNN_TEST_MODEL_WINDOW) == SDNN_OK);
  for (const char* path :
       {SDNN_TEST_MODEL_WINDOW_BAD1, SDNN_TEST_MODEL_WINDOW_BAD2, SDNN_TEST_MODEL_WINDOW_BAD3,
        SDNN_TEST_MODEL_WINDOW_BAD4, SDNN_TEST_MODEL_WINDOW_BAD5, SDNN_TEST_MODEL_WINDOW_BAD6}) {
    INFO(path);
    CHECK(load_status(path) == SDNN_ERR_INTERNAL);
  }
}
