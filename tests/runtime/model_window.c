/* model_window.c — hand-made plan "window": one step per case of window_cases.h, reading input i
 * and writing output i (both flat, rank 1); an in-place clip case is COPY x -> y, then CLIP
 * y -> y. The parameters and depthwise weights are filled in by a constructor, before any
 * sdnn_model_load, from the same formulas the tests use.
 *
 * WINDOW_BAD=n builds a variant with one corrupt step, which sdnn_model_load must refuse:
 *   1 depthwise stride_w 0        2 depthwise weights NULL      3 im2col VL 4
 *   4 clip bound NaN              5 maxpool with a ReLU act     6 avgpool dilation_h -1 */
#include <math.h>
#include <stdlib.h>

#include "window_cases.h"

#ifndef WINDOW_BAD
#define WINDOW_BAD 0
#endif

enum {
  NUM_CASES = TW_NUM_CASES,
  NUM_STEPS = TW_NUM_CASES + TW_NUM_IN_PLACE,
  MAX_WEIGHTS = 1 << 14,
  MAX_BIASES = 1 << 10,
};

static float weights[MAX_WEIGHTS];
static float biases[MAX_BIASES];
static sdnn_window_params params[NUM_CASES];
static sdnn_step steps[NUM_STEPS];
static int64_t in_dims[NUM_CASES], out_dims[NUM_CASES];
static sdnn_tensor_info inputs[NUM_CASES], outputs[NUM_CASES];

static int first_case(uint32_t op) {
  for (int i = 0; i < NUM_CASES; ++i)
    if (tw_cases[i].op == op) return i;
  abort();
}

__attribute__((constructor)) static void build_plan(void) {
  int64_t used_weights = 0, used_biases = 0;
  int s = 0;
  for (int i = 0; i < NUM_CASES; ++i) {
    const tw_case* k = &tw_cases[i];
    in_dims[i] = tw_in_floats(k);
    out_dims[i] = tw_out_floats(k);
    inputs[i] = (sdnn_tensor_info){k->name, 1, &in_dims[i], SDNN_F32};
    outputs[i] = (sdnn_tensor_info){k->name, 1, &out_dims[i], SDNN_F32};

    float* w = NULL;
    float* b = NULL;
    if (k->op == SDNN_STEP_DEPTHWISE) {
      const int64_t count = tw_weight_floats(k);
      if (used_weights + count > MAX_WEIGHTS || used_biases + k->g.c > MAX_BIASES) abort();
      w = weights + used_weights;
      b = biases + used_biases;
      for (int64_t j = 0; j < count; ++j) w[j] = tw_weight(i, j);
      for (int64_t c = 0; c < k->g.c; ++c) b[c] = tw_bias(i, c);
      used_weights += count;
      used_biases += k->g.c;
    }
    params[i] = tw_params(k, w, b);

    const sdnn_buf_ref x = {SDNN_BUF_INPUT, (uint32_t)i, 0};
    const sdnn_buf_ref y = {SDNN_BUF_OUTPUT, (uint32_t)i, 0};
    sdnn_step step = {.op = k->op, .src0 = x, .dst = y};
    if (k->op == SDNN_STEP_CLIP) {
      step.dims[0] = out_dims[i];
      step.alpha = k->lo;
      step.beta = k->hi;
      if (k->in_place) {
        steps[s++] = (sdnn_step){.op = SDNN_STEP_COPY, .src0 = x, .dst = y, .dims = {out_dims[i]}};
        step.src0 = y;
      }
    } else {
      step.conv = &params[i];
    }
    if (s >= NUM_STEPS) abort();
    steps[s++] = step;
  }
  if (s != NUM_STEPS) abort(); /* TW_NUM_IN_PLACE is wrong */

  switch (WINDOW_BAD) {
    case 1:
      params[first_case(SDNN_STEP_DEPTHWISE)].stride_w = 0;
      break;
    case 2:
      params[first_case(SDNN_STEP_DEPTHWISE)].weights = NULL;
      break;
    case 3:
      params[first_case(SDNN_STEP_IM2COL)].vl = 4;
      break;
    case 4:
      for (int j = 0; j < NUM_STEPS; ++j)
        if (steps[j].op == SDNN_STEP_CLIP) {
          steps[j].alpha = NAN;
          break;
        }
      break;
    case 5:
      params[first_case(SDNN_STEP_MAXPOOL)].act = SDNN_ACT_RELU;
      break;
    case 6:
      params[first_case(SDNN_STEP_AVGPOOL)].dilation_h = -1;
      break;
  }
}

const sdnn_plan sdnn_plan_data = {
    .magic = SDNN_PLAN_MAGIC,
    .version = SDNN_PLAN_VERSION,
    .required_cpu = 0,
    .num_inputs = NUM_CASES,
    .num_outputs = NUM_CASES,
    .num_steps = NUM_STEPS,
    .arena_bytes = 0,
    .inputs = inputs,
    .outputs = outputs,
    .steps = steps,
    .producer = "tests/runtime model_window.c",
};
