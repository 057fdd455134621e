/* tensor_ops.h — executors of the tensor plan steps (sdnn_plan.h, "tensor steps"): ELEMENTWISE,
 * REDUCE_MEAN, SOFTMAX, MATMUL and LAYERNORM. (ATTENTION is elsewhere.)
 *
 * Like the windowed ops (window.h), each step is cut into units; the executor gives each thread a
 * contiguous range [unit_begin, unit_end) of sdnn_*_units(...) units, in any order. Units never
 * share output memory, and a unit's result does not depend on how the units were split (the
 * outputs are bitwise identical for any split at the same `cpu`), so threads need no
 * synchronization within a step.
 *
 *   ELEMENTWISE  one innermost row, all of dims[rank-1]: units = dims[0] * ... * dims[rank-2]
 *                (1 for rank 1), rows in row-major order of the outer index.
 *   REDUCE_MEAN  one output element (o, i) of dst [outer][inner]: units = outer * inner, o major.
 *                A range is worked in strips of up to 64 neighbouring outputs of one o, so an
 *                inner axis is read with contiguous vector loads.
 *   SOFTMAX      one softmax vector (o, i) of [outer][axis][inner] (the `axis` values at stride
 *                inner): units = outer * inner, o major; strips as for REDUCE_MEAN.
 *   MATMUL       one (batch item, block of 16 rows of M): units = batch items * ceil(m / 16),
 *                batch-item major (sdnn_plan.h).
 *   LAYERNORM    one token (row-major) or one column block of VL tokens (blocked):
 *                units = tokens or ceil(tokens / vl) (sdnn_plan.h).
 *
 * `cpu` holds the plan's SDNN_CPU_* bits and selects the AVX-512, AVX2 or portable code (as in
 * vmath.h); results of the variants differ by rounding only. Parameters must have passed the
 * plan check (sizes >= 1, rank / vl in range, operands of the right sizes). Aliasing: ELEMENTWISE
 * dst may be a source with identical strides (in place), SOFTMAX and LAYERNORM may run in place
 * (dst == src); REDUCE_MEAN and MATMUL outputs must not overlap their inputs. */
#ifndef SDNN_RUNTIME_TENSOR_OPS_H
#define SDNN_RUNTIME_TENSOR_OPS_H

#include <stdint.h>

#include "sdnn_plan.h"

/* Rows of M per MATMUL unit. */
#define SDNN_MATMUL_UNIT_ROWS 16

/* y = fn(a[, b]) over the index space of p (sdnn_elementwise_params). src0 / src1 are the step's
 * operands, replaced by p->src0_const / p->src1_const when those are non-NULL; src1 is not read
 * by unary functions. */
int64_t sdnn_elementwise_units(const sdnn_elementwise_params* p);
void sdnn_elementwise_run(const sdnn_elementwise_params* p, float* dst, const float* src0,
                          const float* src1, int64_t unit_begin, int64_t unit_end, uint32_t cpu);

/* dims = {outer, reduced, inner}: dst[o][i] = mean over r of src[o][r][i], summed in double. */
int64_t sdnn_reduce_mean_units(const int64_t dims[3]);
void sdnn_reduce_mean_run(const int64_t dims[3], float* dst, const float* src, int64_t unit_begin,
                          int64_t unit_end);

/* dims = {outer, axis, inner}: softmax over the middle axis, max subtracted first. As in ONNX
 * Runtime, a vector whose maximum is +-inf (all -inf, or any +inf) or that holds a NaN gives NaN;
 * entries of -3.4e38 (masks) next to finite ones give exactly 0. */
int64_t sdnn_softmax_units(const int64_t dims[3]);
void sdnn_softmax_run(const int64_t dims[3], float* dst, const float* src, int64_t unit_begin,
                      int64_t unit_end, uint32_t cpu);

/* Batched row-major dst = a * b (sdnn_matmul_params); b is p->b_const when non-NULL. */
int64_t sdnn_matmul_units(const sdnn_matmul_params* p);
void sdnn_matmul_run(const sdnn_matmul_params* p, float* dst, const float* a, const float* b,
                     int64_t unit_begin, int64_t unit_end, uint32_t cpu);

/* Layer normalization (sdnn_norm_params), mean then variance of the centred values. */
int64_t sdnn_layernorm_units(const sdnn_norm_params* p);
void sdnn_layernorm_run(const sdnn_norm_params* p, float* dst, const float* src, int64_t unit_begin,
                        int64_t unit_end, uint32_t cpu);

#endif /* SDNN_RUNTIME_TENSOR_OPS_H */
