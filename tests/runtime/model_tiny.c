/* model_tiny.c — a one-step plan (y = copy of x, 4 floats) built in variants for the load checks:
 *   TINY_REQUIRED_CPU   required_cpu bits (default 0)
 *   TINY_PLAN_VERSION   plan version (default SDNN_PLAN_VERSION; anything else must fail)
 *   TINY_WRITES_INPUT   1: the step writes the input, which the plan check must reject */
#include "sdnn_plan.h"

#ifndef TINY_REQUIRED_CPU
#define TINY_REQUIRED_CPU 0u
#endif
#ifndef TINY_PLAN_VERSION
#define TINY_PLAN_VERSION SDNN_PLAN_VERSION
#endif
#ifndef TINY_WRITES_INPUT
#define TINY_WRITES_INPUT 0
#endif

static const int64_t dims[] = {4};
static const sdnn_tensor_info inputs[] = {{"x", 1, dims, SDNN_F32}};
static const sdnn_tensor_info outputs[] = {{"y", 1, dims, SDNN_F32}};

static const sdnn_step steps[] = {
    {.op = SDNN_STEP_COPY,
     .src0 = {SDNN_BUF_INPUT, 0, 0},
     .dst = {TINY_WRITES_INPUT ? SDNN_BUF_INPUT : SDNN_BUF_OUTPUT, 0, 0},
     .dims = {4}},
};

const sdnn_plan sdnn_plan_data = {
    .magic = SDNN_PLAN_MAGIC,
    .version = TINY_PLAN_VERSION,
    .required_cpu = TINY_REQUIRED_CPU,
    .num_inputs = 1,
    .num_outputs = 1,
    .num_steps = 1,
    .arena_bytes = 0,
    .inputs = inputs,
    .outputs = outputs,
    .steps = steps,
    .producer = "tests/runtime model_tiny.c",
};
