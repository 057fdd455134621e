/* plan_check.h — the load-time consistency check of a plan (plan_check.c). Kept apart from
 * runtime.h so C++ unit tests can call it. */
#ifndef SDNN_RUNTIME_PLAN_CHECK_H
#define SDNN_RUNTIME_PLAN_CHECK_H

#include "sdnn_plan.h"

/* 1 when the plan is internally consistent (buffer references, extents, kernel tables, window
 * parameters), else 0. */
int sdnn_plan_is_valid(const sdnn_plan* plan);

#endif /* SDNN_RUNTIME_PLAN_CHECK_H */
