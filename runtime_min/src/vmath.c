/* vmath.c — the unary elementwise functions and softmax row pieces over contiguous float arrays,
 * in three variants picked per call from the plan's CPU bits (vmath.h).
 *
 * AVX-512 runs whole 16-float vectors, then one masked vector for the tail; AVX2 whole 8-float
 * vectors, then one vmaskmov vector (masked-off lanes read as 0 and are never stored). The vector
 * functions themselves are the inline ones of vmath_simd.h. The portable variant calls libm:
 * expf / erff / tanhf / sqrtf directly (glibc's are within 1 ulp), and evaluates sigmoid and the
 * two GELUs in double in the forms that avoid cancellation (erfc for negative x; x / (1 + e^-2u)),
 * so every variant meets the same accuracy. */
#include "vmath.h"

#include <math.h>
#include <string.h>

#include "sdnn_plan.h"
#include "vmath_simd.h"

int sdnn_vmath_is_unary(uint32_t fn) {
  switch (fn) {
    case SDNN_FN_COPY:
    case SDNN_FN_RELU:
    case SDNN_FN_LEAKY_RELU:
    case SDNN_FN_SIGMOID:
    case SDNN_FN_TANH:
    case SDNN_FN_ERF:
    case SDNN_FN_SQRT:
    case SDNN_FN_EXP:
    case SDNN_FN_GELU:
    case SDNN_FN_GELU_TANH:
    case SDNN_FN_CLIP:
    case SDNN_FN_NEG:
      return 1;
    default:
      return 0;
  }
}

/* ---- AVX-512 ------------------------------------------------------------------------------ */

/* dst[i] = EXPR(x = src[i]) for i < n, in 16-float vectors and one masked tail vector. */
#define MAP_AVX512(EXPR)                                       \
  do {                                                         \
    int64_t i_ = 0;                                            \
    for (; i_ + 16 <= n; i_ += 16) {                           \
      const __m512 x = _mm512_loadu_ps(src + i_);              \
      _mm512_storeu_ps(dst + i_, (EXPR));                      \
    }                                                          \
    if (i_ < n) {                                              \
      const __mmask16 m_ = (__mmask16)((1u << (n - i_)) - 1u); \
      const __m512 x = _mm512_maskz_loadu_ps(m_, src + i_);    \
      _mm512_mask_storeu_ps(dst + i_, m_, (EXPR));             \
    }                                                          \
  } while (0)

static SDNN_TARGET_AVX512 __m512 neg_avx512(__m512 x) {
  return _mm512_castsi512_ps(
      _mm512_xor_epi32(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
}

static SDNN_TARGET_AVX512 void unary_avx512(uint32_t fn, float* dst, const float* src, int64_t n,
                                            float alpha, float beta) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 va = _mm512_set1_ps(alpha);
  const __m512 vb = _mm512_set1_ps(beta);
  switch (fn) {
    case SDNN_FN_RELU:
      MAP_AVX512(_mm512_max_ps(zero, x));
      break;
    case SDNN_FN_LEAKY_RELU:
      MAP_AVX512(_mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, va));
      break;
    case SDNN_FN_SIGMOID:
      MAP_AVX512(sdnn_sigmoid_avx512(x));
      break;
    case SDNN_FN_TANH:
      MAP_AVX512(sdnn_tanh_avx512(x));
      break;
    case SDNN_FN_ERF:
      MAP_AVX512(sdnn_erf_avx512(x));
      break;
    case SDNN_FN_SQRT:
      MAP_AVX512(_mm512_sqrt_ps(x));
      break;
    case SDNN_FN_EXP:
      MAP_AVX512(sdnn_exp_avx512(x));
      break;
    case SDNN_FN_GELU:
      MAP_AVX512(sdnn_gelu_avx512(x));
      break;
    case SDNN_FN_GELU_TANH:
      MAP_AVX512(sdnn_gelu_tanh_avx512(x));
      break;
    case SDNN_FN_CLIP:
      MAP_AVX512(_mm512_min_ps(vb, _mm512_max_ps(va, x)));
      break;
    case SDNN_FN_NEG:
      MAP_AVX512(neg_avx512(x));
      break;
    default:
      break;
  }
}

static SDNN_TARGET_AVX512 float max_avx512(const float* src, int64_t n) {
  __m512 acc = _mm512_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_max_ps(acc, _mm512_loadu_ps(src + i));
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    acc = _mm512_mask_max_ps(acc, m, acc, _mm512_maskz_loadu_ps(m, src + i));
  }
  return _mm512_reduce_max_ps(acc);
}

static SDNN_TARGET_AVX512 float exp_sum_avx512(float* dst, const float* src, int64_t n,
                                               float shift) {
  const __m512 vs = _mm512_set1_ps(shift);
  __m512 acc = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 e = sdnn_exp_avx512(_mm512_sub_ps(_mm512_loadu_ps(src + i), vs));
    _mm512_storeu_ps(dst + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    const __m512 e = sdnn_exp_avx512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, src + i), vs));
    _mm512_mask_storeu_ps(dst + i, m, e);
    acc = _mm512_mask_add_ps(acc, m, acc, e);
  }
  return _mm512_reduce_add_ps(acc);
}

static SDNN_TARGET_AVX512 void scale_avx512(float* dst, const float* src, int64_t n, float s) {
  const __m512 vs = _mm512_set1_ps(s);
  MAP_AVX512(_mm512_mul_ps(x, vs));
}

/* ---- AVX2 --------------------------------------------------------------------------------- */

static SDNN_TARGET_AVX2 __m256i tail_mask_avx2(int64_t count) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)count),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

#define MAP_AVX2(EXPR)                                   \
  do {                                                   \
    int64_t i_ = 0;                                      \
    for (; i_ + 8 <= n; i_ += 8) {                       \
      const __m256 x = _mm256_loadu_ps(src + i_);        \
      _mm256_storeu_ps(dst + i_, (EXPR));                \
    }                                                    \
    if (i_ < n) {                                        \
      const __m256i m_ = tail_mask_avx2(n - i_);         \
      const __m256 x = _mm256_maskload_ps(src + i_, m_); \
      _mm256_maskstore_ps(dst + i_, m_, (EXPR));         \
    }                                                    \
  } while (0)

static SDNN_TARGET_AVX2 __m256 neg_avx2(__m256 x) {
  return _mm256_xor_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
}

static SDNN_TARGET_AVX2 void unary_avx2(uint32_t fn, float* dst, const float* src, int64_t n,
                                        float alpha, float beta) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256 vb = _mm256_set1_ps(beta);
  switch (fn) {
    case SDNN_FN_RELU:
      MAP_AVX2(_mm256_max_ps(zero, x));
      break;
    case SDNN_FN_LEAKY_RELU:
      MAP_AVX2(_mm256_blendv_ps(x, _mm256_mul_ps(x, va), _mm256_cmp_ps(x, zero, _CMP_LT_OQ)));
      break;
    case SDNN_FN_SIGMOID:
      MAP_AVX2(sdnn_sigmoid_avx2(x));
      break;
    case SDNN_FN_TANH:
      MAP_AVX2(sdnn_tanh_avx2(x));
      break;
    case SDNN_FN_ERF:
      MAP_AVX2(sdnn_erf_avx2(x));
      break;
    case SDNN_FN_SQRT:
      MAP_AVX2(_mm256_sqrt_ps(x));
      break;
    case SDNN_FN_EXP:
      MAP_AVX2(sdnn_exp_avx2(x));
      break;
    case SDNN_FN_GELU:
      MAP_AVX2(sdnn_gelu_avx2(x));
      break;
    case SDNN_FN_GELU_TANH:
      MAP_AVX2(sdnn_gelu_tanh_avx2(x));
      break;
    case SDNN_FN_CLIP:
      MAP_AVX2(_mm256_min_ps(vb, _mm256_max_ps(va, x)));
      break;
    case SDNN_FN_NEG:
      MAP_AVX2(neg_avx2(x));
      break;
    default:
      break;
  }
}

static SDNN_TARGET_AVX2 float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static SDNN_TARGET_AVX2 float max_avx2(const float* src, int64_t n) {
  __m256 acc = _mm256_set1_ps(-INFINITY);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(src + i));
  float out[8];
  _mm256_storeu_ps(out, acc);
  float m = out[0];
  for (int j = 1; j < 8; ++j) m = out[j] > m ? out[j] : m;
  for (; i < n; ++i) m = src[i] > m ? src[i] : m;
  return m;
}

static SDNN_TARGET_AVX2 float exp_sum_avx2(float* dst, const float* src, int64_t n, float shift) {
  const __m256 vs = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = sdnn_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(src + i), vs));
    _mm256_storeu_ps(dst + i, e);
    acc = _mm256_add_ps(acc, e);
  }
  if (i < n) {
    const __m256i m = tail_mask_avx2(n - i);
    const __m256 e = _mm256_and_ps(sdnn_exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(src + i, m), vs)),
                                   _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(dst + i, m, e);
    acc = _mm256_add_ps(acc, e);
  }
  return hsum_avx2(acc);
}

static SDNN_TARGET_AVX2 void scale_avx2(float* dst, const float* src, int64_t n, float s) {
  const __m256 vs = _mm256_set1_ps(s);
  MAP_AVX2(_mm256_mul_ps(x, vs));
}

/* ---- portable ----------------------------------------------------------------------------- */

/* The limit of both GELUs at -inf is -0; below this the double formulas would give -inf * 0. */
#define GELU_ZERO_BELOW (-40.0f)

static float sigmoid_scalar(float x) {
  const double e = exp(-fabs((double)x));
  return (float)((x >= 0.0f ? 1.0 : e) / (1.0 + e));
}

static float gelu_scalar(float x) {
  if (x < GELU_ZERO_BELOW) return -0.0f;
  return (float)(0.5 * (double)x * erfc(-(double)x * 0.70710678118654752440));
}

static float gelu_tanh_scalar(float x) {
  if (x < GELU_ZERO_BELOW) return -0.0f;
  const double d = (double)x;
  const double two_u = 1.5957691216057307 * (d + 0.044715 * d * d * d);
  const double e = exp(-fabs(two_u));
  return (float)((x >= 0.0f ? d : d * e) / (1.0 + e));
}

static void unary_scalar(uint32_t fn, float* dst, const float* src, int64_t n, float alpha,
                         float beta) {
  switch (fn) {
    case SDNN_FN_RELU:
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] < 0.0f ? 0.0f : src[i];
      break;
    case SDNN_FN_LEAKY_RELU:
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i] < 0.0f ? alpha * src[i] : src[i];
      break;
    case SDNN_FN_SIGMOID:
      for (int64_t i = 0; i < n; ++i) dst[i] = sigmoid_scalar(src[i]);
      break;
    case SDNN_FN_TANH:
      for (int64_t i = 0; i < n; ++i) dst[i] = tanhf(src[i]);
      break;
    case SDNN_FN_ERF:
      for (int64_t i = 0; i < n; ++i) dst[i] = erff(src[i]);
      break;
    case SDNN_FN_SQRT:
      for (int64_t i = 0; i < n; ++i) dst[i] = sqrtf(src[i]);
      break;
    case SDNN_FN_EXP:
      for (int64_t i = 0; i < n; ++i) dst[i] = expf(src[i]);
      break;
    case SDNN_FN_GELU:
      for (int64_t i = 0; i < n; ++i) dst[i] = gelu_scalar(src[i]);
      break;
    case SDNN_FN_GELU_TANH:
      for (int64_t i = 0; i < n; ++i) dst[i] = gelu_tanh_scalar(src[i]);
      break;
    case SDNN_FN_CLIP:
      for (int64_t i = 0; i < n; ++i) {
        const float v = src[i] < alpha ? alpha : src[i];
        dst[i] = v > beta ? beta : v;
      }
      break;
    case SDNN_FN_NEG:
      for (int64_t i = 0; i < n; ++i) dst[i] = -src[i];
      break;
    default:
      break;
  }
}

/* ---- dispatch ----------------------------------------------------------------------------- */

void sdnn_vmath_unary(uint32_t fn, float* dst, const float* src, int64_t n, float alpha, float beta,
                      uint32_t cpu) {
  if (n <= 0) return;
  if (fn == SDNN_FN_COPY) {
    if (dst != src) memmove(dst, src, (size_t)n * sizeof(float));
  } else if (cpu & SDNN_CPU_AVX512F) {
    unary_avx512(fn, dst, src, n, alpha, beta);
  } else if (cpu & SDNN_CPU_AVX2) {
    unary_avx2(fn, dst, src, n, alpha, beta);
  } else {
    unary_scalar(fn, dst, src, n, alpha, beta);
  }
}

float sdnn_vmath_max(const float* src, int64_t n, uint32_t cpu) {
  if (cpu & SDNN_CPU_AVX512F) return max_avx512(src, n);
  if (cpu & SDNN_CPU_AVX2) return max_avx2(src, n);
  float m = src[0];
  for (int64_t i = 1; i < n; ++i) m = src[i] > m ? src[i] : m;
  return m;
}

float sdnn_vmath_exp_sum(float* dst, const float* src, int64_t n, float shift, uint32_t cpu) {
  if (n <= 0) return 0.0f;
  if (cpu & SDNN_CPU_AVX512F) return exp_sum_avx512(dst, src, n, shift);
  if (cpu & SDNN_CPU_AVX2) return exp_sum_avx2(dst, src, n, shift);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = expf(src[i] - shift);
    sum += dst[i];
  }
  return (float)sum;
}

void sdnn_vmath_scale(float* dst, const float* src, int64_t n, float s, uint32_t cpu) {
  if (n <= 0) return;
  if (cpu & SDNN_CPU_AVX512F) {
    scale_avx512(dst, src, n, s);
  } else if (cpu & SDNN_CPU_AVX2) {
    scale_avx2(dst, src, n, s);
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i] * s;
  }
}
