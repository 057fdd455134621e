/* runtime.h — private types of runtime_min: what a model and a context hold. */
#ifndef SDNN_RUNTIME_RUNTIME_H
#define SDNN_RUNTIME_RUNTIME_H

#include <stdatomic.h>

#include "partition.h"
#include "plan_check.h"
#include "pool.h"
#include "sdnn_plan.h"

/* Immutable after sdnn_model_load; shared by all contexts. */
struct sdnn_model {
  const sdnn_plan* plan;
};

/* Per step, fixed at context creation: how many threads work on it (1 = the caller alone, no
 * wake-up, no barrier) and, for kernel steps, which thread does what. */
typedef struct {
  int num_threads;
  sdnn_kernel_split split;
} sdnn_step_schedule;

/* A step with its buffers resolved for the current sdnn_run. */
typedef struct {
  const sdnn_step* step;
  const sdnn_step_schedule* schedule;
  const float* src0;
  const float* src1;
  const float* src2;
  const float* src3;
  float* dst;
} sdnn_bound_step;

struct sdnn_context {
  const sdnn_plan* plan;
  int num_threads;
  void* arena;                  /* plan->arena_bytes, 64-byte aligned */
  float* scratch;               /* num_threads * scratch_floats, 64-byte aligned, or NULL */
  size_t scratch_floats;        /* per thread: plan->scratch_bytes rounded up to 64 bytes */
  sdnn_step_schedule* schedule; /* plan->num_steps entries */
  sdnn_pool* pool;              /* NULL when num_threads == 1 */
  atomic_int running;           /* detects two sdnn_run calls on one context at once */
  sdnn_bound_step current;      /* the step the pool is running */
  double* step_ns;              /* SDNN_PROFILE: nanoseconds per step summed over runs, else NULL */
  uint64_t runs;                /* SDNN_PROFILE: sdnn_run calls */
  double* busy_ns;              /* SDNN_PROFILE: per step and thread, the time in its share (split
                                 * steps; PROFILE_STRIDE doubles per slot so threads share no line) */
};

#endif /* SDNN_RUNTIME_RUNTIME_H */
