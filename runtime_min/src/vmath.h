/* vmath.h — float math over contiguous arrays for the tensor steps (tensor_ops.c): the unary
 * functions of SDNN_STEP_ELEMENTWISE, and the row pieces of softmax.
 *
 * Every function takes `cpu`, the plan's SDNN_CPU_* bits, and runs the AVX-512 code when
 * SDNN_CPU_AVX512F is set, else the AVX2 + FMA code when SDNN_CPU_AVX2 is set, else portable C
 * (libm, intermediate results in double where float would lose accuracy). The vector code is in
 * vmath_simd.h (see there for the algorithms and accuracy); the three variants agree to a few
 * ulp, not bit for bit. A caller must pass the same `cpu` for every part of a step that should be
 * consistent (the plan's required_cpu). dst may equal src exactly, but must not partly overlap it.
 */
#ifndef SDNN_RUNTIME_VMATH_H
#define SDNN_RUNTIME_VMATH_H

#include <stdint.h>

/* 1 for the sdnn_elementwise_fn values that read only `a` (COPY, RELU, LEAKY_RELU, SIGMOID, TANH,
 * ERF, SQRT, EXP, GELU, GELU_TANH, CLIP, NEG), 0 for the binary ones and unknown values. */
int sdnn_vmath_is_unary(uint32_t fn);

/* dst[i] = fn(src[i]) for i < n, fn unary (sdnn_vmath_is_unary); alpha / beta as in
 * sdnn_elementwise_params (LEAKY_RELU: alpha; CLIP: [alpha, beta]). */
void sdnn_vmath_unary(uint32_t fn, float* dst, const float* src, int64_t n, float alpha, float beta,
                      uint32_t cpu);

/* max of src[0..n), n >= 1 (NaN entries may or may not win; a NaN row still ends NaN in softmax,
 * through exp_sum). */
float sdnn_vmath_max(const float* src, int64_t n, uint32_t cpu);

/* dst[i] = exp(src[i] - shift) for i < n; returns the sum of the dst values. */
float sdnn_vmath_exp_sum(float* dst, const float* src, int64_t n, float shift, uint32_t cpu);

/* dst[i] = src[i] * s for i < n. */
void sdnn_vmath_scale(float* dst, const float* src, int64_t n, float s, uint32_t cpu);

#endif /* SDNN_RUNTIME_VMATH_H */
