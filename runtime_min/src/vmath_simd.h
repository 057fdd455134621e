/* vmath_simd.h — float vector math as static inline AVX-512 / AVX2 functions: exp, erf, erfc,
 * tanh, sigmoid, GELU (erf and tanh forms), for the runtime's tensor steps (vmath.c, the softmax
 * and attention code).
 *
 * The runtime is compiled for baseline x86-64, so every function here carries its ISA as a target
 * attribute: call the *_avx512 ones only from functions declared SDNN_TARGET_AVX512 and the
 * *_avx2 ones from SDNN_TARGET_AVX2 (or SDNN_TARGET_AVX512) functions, which gcc / clang then
 * inline; and only on a CPU the plan requires (the loader checked CPUID).
 *
 * Accuracy, as the largest relative error against the exact function of the float input measured
 * by tests/runtime/test_tensor_ops.cpp: exp 8.4e-8, tanh 1.4e-7, erf 1.7e-7, sigmoid 1.8e-7,
 * gelu_tanh 2.0e-7, gelu 4.3e-7 (gelu down to results of 1e-30, the others down to FLT_MIN).
 * Special values: NaN in, NaN out; exp(-inf) = 0, exp(+inf) = +inf, erf / tanh (+-inf) = +-1,
 * sigmoid(-inf) = 0, gelu(-inf) = -0, gelu(+inf) = +inf. Results below 2^-126 may lose precision
 * (or flush to zero for exp arguments below -104).
 *
 *   exp(a + b)  n = round((a + b) / ln 2), r = a - n ln2_hi + b - n ln2_lo (FMA, two-part ln 2),
 *               e^r = 1 + r + r^2 P(r) (degree-6 fit on |r| <= ln2 / 2, error 1e-8), times 2^n
 *               (AVX-512: vscalefps, exact over / underflow; AVX2: two factors 2^(n/2)). The a + b
 *               form ("hilo") lets callers pass an argument more precise than one float, so that
 *               exp(-z^2) or exp(-2u) of a large argument keeps its relative accuracy.
 *   erf         |x| < 0.75: x P(x^2) (odd, degree 11); else 1 - erfc(|x|) with the sign of x.
 *   erfc(z>=0)  t exp(-z^2 + R(t)), t = 1 / (1 + z / 2), R the degree-9 Chebyshev fit of
 *               Numerical Recipes' erfcc (relative error 1.2e-7 for every z >= 0); z^2 goes in
 *               as an exact hi + lo pair.
 *   tanh        |x| < 0.625: |x| + |x|^3 Q(x^2) (degree 11, no cancellation at 0); else
 *               1 - 2 / (e^{2|x|} + 1); then the sign of x (tanh(-0) = -0).
 *   sigmoid     e = e^{-|x|}: 1 / (1 + e) for x >= 0, e / (1 + e) below (no overflow, tiny results
 *               stay relative-accurate).
 *   gelu        0.5 x (1 + erf(x / sqrt 2)) for |x| < 1.06; beyond, x - 0.5 x erfc(z) (x > 0) or
 *               0.5 x erfc(|z|) (x < 0), z^2 = x^2 / 2 as an exact hi + lo pair: no cancellation
 *               for negative x, relative accuracy down to gelu(-12) ~ 1e-32.
 *   gelu_tanh   0.5 x (1 + tanh(u)) = x / (1 + e^{-2u}), u = sqrt(2/pi) (x + 0.044715 x^3) with 2u
 *               computed in double-float (hi + lo): x / (1 + e) for x >= 0, x e / (1 + e) below,
 *               e = e^{-2|u|}.
 *
 * NaN handling relies on the operand order of vmaxps / vminps, which return their second operand
 * when either is NaN: max(c, x) and min(c, x) keep a NaN x. */
#ifndef SDNN_RUNTIME_VMATH_SIMD_H
#define SDNN_RUNTIME_VMATH_SIMD_H

#include <immintrin.h>
#include <stdint.h>

#define SDNN_TARGET_AVX512 __attribute__((target("avx512f,avx2,fma")))
#define SDNN_TARGET_AVX2 __attribute__((target("avx2,fma")))

/* exp: argument clamp (below: the result rounds to 0; above: to +inf), 1 / ln 2, ln 2 in two
 * parts (hi has 16 significant bits), and e^r = 1 + r + r^2 (C2 + C3 r + ... + C6 r^4). */
#define SDNN_VM_EXP_LO (-104.0f)
#define SDNN_VM_EXP_HI 89.0f
#define SDNN_VM_LOG2E 1.44269502f
#define SDNN_VM_LN2_HI 0.693145752f
#define SDNN_VM_LN2_LO 1.42860677e-6f
#define SDNN_VM_EXP_C2 0.5f
#define SDNN_VM_EXP_C3 0.166665658f
#define SDNN_VM_EXP_C4 0.0416663401f
#define SDNN_VM_EXP_C5 0.00836492516f
#define SDNN_VM_EXP_C6 0.00139441725f

/* erf(x) / x = E0 + E1 x^2 + ... + E5 x^10 on |x| < SDNN_VM_ERF_SMALL (error 1.5e-9). */
#define SDNN_VM_ERF_SMALL 0.75f
#define SDNN_VM_ERF_E0 1.12837911f
#define SDNN_VM_ERF_E1 (-0.37612620f)
#define SDNN_VM_ERF_E2 0.112833932f
#define SDNN_VM_ERF_E3 (-0.0268354435f)
#define SDNN_VM_ERF_E4 0.00511599751f
#define SDNN_VM_ERF_E5 (-0.000676119991f)
/* erfc(z) = t exp(-z^2 + R0 + R1 t + ... + R9 t^9), t = 1 / (1 + z / 2) (Numerical Recipes). */
#define SDNN_VM_ERFC_R0 (-1.26551223f)
#define SDNN_VM_ERFC_R1 1.00002368f
#define SDNN_VM_ERFC_R2 0.37409196f
#define SDNN_VM_ERFC_R3 0.09678418f
#define SDNN_VM_ERFC_R4 (-0.18628806f)
#define SDNN_VM_ERFC_R5 0.27886807f
#define SDNN_VM_ERFC_R6 (-1.13520398f)
#define SDNN_VM_ERFC_R7 1.48851587f
#define SDNN_VM_ERFC_R8 (-0.82215223f)
#define SDNN_VM_ERFC_R9 0.17087277f
/* erfc(z) for z above this is below 2^-149: the argument clamp of erf. */
#define SDNN_VM_ERFC_ZMAX 10.0f

/* tanh(x) = x + x^3 (T0 + T1 x^2 + ... + T4 x^8) on |x| < SDNN_VM_TANH_SMALL (rel. error 2e-8). */
#define SDNN_VM_TANH_SMALL 0.625f
#define SDNN_VM_TANH_T0 (-0.333333284f)
#define SDNN_VM_TANH_T1 0.133327946f
#define SDNN_VM_TANH_T2 (-0.0538541228f)
#define SDNN_VM_TANH_T3 0.0210102629f
#define SDNN_VM_TANH_T4 (-0.00611339835f)

/* GELU: arguments are clamped to [-GELU_XMAX, GELU_XMAX] where the result no longer depends on
 * the exp / erfc term (it is 0 or exactly x); 1 / sqrt 2; gelu_tanh's 2u = A x + B x^3 with
 * A = 2 sqrt(2 / pi) and B = 0.044715 A, each as a float pair hi + lo. */
#define SDNN_VM_GELU_XMAX 20.0f
#define SDNN_VM_SQRT1_2 0.707106769f
#define SDNN_VM_GELU_SMALL 1.06066012f /* SDNN_VM_ERF_SMALL * sqrt 2 */
#define SDNN_VM_GT_A_HI 1.59576917f
#define SDNN_VM_GT_A_LO (-4.53406805e-8f)
#define SDNN_VM_GT_B_HI 0.0713548139f
#define SDNN_VM_GT_B_LO 2.39883247e-9f

/* ---- AVX-512 ------------------------------------------------------------------------------ */

#define SDNN_V512(c) _mm512_set1_ps(c)

static inline SDNN_TARGET_AVX512 __m512 sdnn_abs_avx512(__m512 x) {
  return _mm512_castsi512_ps(
      _mm512_and_epi32(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}

/* |m| with the sign bit of s (m >= 0 or NaN). */
static inline SDNN_TARGET_AVX512 __m512 sdnn_copysign_avx512(__m512 m, __m512 s) {
  const __m512i sign =
      _mm512_and_epi32(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000u));
  return _mm512_castsi512_ps(_mm512_or_epi32(_mm512_castps_si512(m), sign));
}

/* e^r - 1 - r over the reduced range, as r^2 P(r) + r (before adding 1). */
static inline SDNN_TARGET_AVX512 __m512 sdnn_expm1_reduced_avx512(__m512 r) {
  __m512 p = SDNN_V512(SDNN_VM_EXP_C6);
  p = _mm512_fmadd_ps(p, r, SDNN_V512(SDNN_VM_EXP_C5));
  p = _mm512_fmadd_ps(p, r, SDNN_V512(SDNN_VM_EXP_C4));
  p = _mm512_fmadd_ps(p, r, SDNN_V512(SDNN_VM_EXP_C3));
  p = _mm512_fmadd_ps(p, r, SDNN_V512(SDNN_VM_EXP_C2));
  return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
}

/* e^x. */
static inline SDNN_TARGET_AVX512 __m512 sdnn_exp_avx512(__m512 x) {
  x = _mm512_min_ps(SDNN_V512(SDNN_VM_EXP_HI), _mm512_max_ps(SDNN_V512(SDNN_VM_EXP_LO), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, SDNN_V512(SDNN_VM_LOG2E)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, SDNN_V512(SDNN_VM_LN2_HI), x);
  r = _mm512_fnmadd_ps(n, SDNN_V512(SDNN_VM_LN2_LO), r);
  const __m512 p = _mm512_add_ps(sdnn_expm1_reduced_avx512(r), SDNN_V512(1.0f));
  return _mm512_scalef_ps(p, n);
}

/* e^(a + b) for a float a and a correction b with |b| <= 2 (a + b need not be a float). */
static inline SDNN_TARGET_AVX512 __m512 sdnn_exp_hilo_avx512(__m512 a, __m512 b) {
  a = _mm512_min_ps(SDNN_V512(SDNN_VM_EXP_HI), _mm512_max_ps(SDNN_V512(SDNN_VM_EXP_LO), a));
  const __m512 n =
      _mm512_roundscale_ps(_mm512_mul_ps(_mm512_add_ps(a, b), SDNN_V512(SDNN_VM_LOG2E)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, SDNN_V512(SDNN_VM_LN2_HI), a);
  r = _mm512_add_ps(r, b);
  r = _mm512_fnmadd_ps(n, SDNN_V512(SDNN_VM_LN2_LO), r);
  const __m512 p = _mm512_add_ps(sdnn_expm1_reduced_avx512(r), SDNN_V512(1.0f));
  return _mm512_scalef_ps(p, n);
}

/* erfc(z) for z in [0, ~14] (or NaN), z^2 = z2_hi + z2_lo (the exact square of the caller's
 * unrounded z; z itself only needs float accuracy). */
static inline SDNN_TARGET_AVX512 __m512 sdnn_erfc_pos_avx512(__m512 z, __m512 z2_hi, __m512 z2_lo) {
  const __m512 t =
      _mm512_div_ps(SDNN_V512(1.0f), _mm512_fmadd_ps(z, SDNN_V512(0.5f), SDNN_V512(1.0f)));
  __m512 p = SDNN_V512(SDNN_VM_ERFC_R9);
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R8));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R7));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R6));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R5));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R4));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R3));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R2));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R1));
  p = _mm512_fmadd_ps(p, t, SDNN_V512(SDNN_VM_ERFC_R0));
  const __m512 zero = _mm512_setzero_ps();
  return _mm512_mul_ps(t,
                       sdnn_exp_hilo_avx512(_mm512_sub_ps(zero, z2_hi), _mm512_sub_ps(p, z2_lo)));
}

/* erf(x) / x as a polynomial in x^2, for |x| < SDNN_VM_ERF_SMALL. */
static inline SDNN_TARGET_AVX512 __m512 sdnn_erf_small_avx512(__m512 x) {
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 p = SDNN_V512(SDNN_VM_ERF_E5);
  p = _mm512_fmadd_ps(p, x2, SDNN_V512(SDNN_VM_ERF_E4));
  p = _mm512_fmadd_ps(p, x2, SDNN_V512(SDNN_VM_ERF_E3));
  p = _mm512_fmadd_ps(p, x2, SDNN_V512(SDNN_VM_ERF_E2));
  p = _mm512_fmadd_ps(p, x2, SDNN_V512(SDNN_VM_ERF_E1));
  p = _mm512_fmadd_ps(p, x2, SDNN_V512(SDNN_VM_ERF_E0));
  return _mm512_mul_ps(x, p);
}

static inline SDNN_TARGET_AVX512 __m512 sdnn_erf_avx512(__m512 x) {
  const __m512 ax = sdnn_abs_avx512(x);
  const __m512 z = _mm512_min_ps(SDNN_V512(SDNN_VM_ERFC_ZMAX), ax);
  const __m512 z2 = _mm512_mul_ps(z, z);
  const __m512 z2_lo = _mm512_fmsub_ps(z, z, z2);
  const __m512 big = _mm512_sub_ps(SDNN_V512(1.0f), sdnn_erfc_pos_avx512(z, z2, z2_lo));
  const __mmask16 small = _mm512_cmp_ps_mask(ax, SDNN_V512(SDNN_VM_ERF_SMALL), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(small, sdnn_copysign_avx512(big, x), sdnn_erf_small_avx512(x));
}

static inline SDNN_TARGET_AVX512 __m512 sdnn_tanh_avx512(__m512 x) {
  const __m512 ax = sdnn_abs_avx512(x);
  const __m512 x2 = _mm512_mul_ps(x, x);
  __m512 q = SDNN_V512(SDNN_VM_TANH_T4);
  q = _mm512_fmadd_ps(q, x2, SDNN_V512(SDNN_VM_TANH_T3));
  q = _mm512_fmadd_ps(q, x2, SDNN_V512(SDNN_VM_TANH_T2));
  q = _mm512_fmadd_ps(q, x2, SDNN_V512(SDNN_VM_TANH_T1));
  q = _mm512_fmadd_ps(q, x2, SDNN_V512(SDNN_VM_TANH_T0));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(ax, x2), q, ax);
  const __m512 e = sdnn_exp_avx512(_mm512_add_ps(ax, ax));
  const __m512 big = _mm512_sub_ps(
      SDNN_V512(1.0f), _mm512_div_ps(SDNN_V512(2.0f), _mm512_add_ps(e, SDNN_V512(1.0f))));
  const __mmask16 is_small = _mm512_cmp_ps_mask(ax, SDNN_V512(SDNN_VM_TANH_SMALL), _CMP_LT_OQ);
  return sdnn_copysign_avx512(_mm512_mask_blend_ps(is_small, big, small), x);
}

static inline SDNN_TARGET_AVX512 __m512 sdnn_sigmoid_avx512(__m512 x) {
  const __m512 e = sdnn_exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), sdnn_abs_avx512(x)));
  const __mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 num = _mm512_mask_blend_ps(nonneg, e, SDNN_V512(1.0f));
  return _mm512_div_ps(num, _mm512_add_ps(e, SDNN_V512(1.0f)));
}

static inline SDNN_TARGET_AVX512 __m512 sdnn_gelu_avx512(__m512 x) {
  const __m512 half = SDNN_V512(0.5f);
  const __m512 xc =
      _mm512_min_ps(SDNN_V512(SDNN_VM_GELU_XMAX), _mm512_max_ps(SDNN_V512(-SDNN_VM_GELU_XMAX), x));
  /* |x| < 1.06: 0.5 x (1 + erf(x / sqrt 2)) */
  const __m512 z = _mm512_mul_ps(xc, SDNN_V512(SDNN_VM_SQRT1_2));
  const __m512 small = _mm512_mul_ps(_mm512_mul_ps(half, x),
                                     _mm512_add_ps(SDNN_V512(1.0f), sdnn_erf_small_avx512(z)));
  /* beyond: erfc(|z|) with |z|^2 = xc^2 / 2 exactly */
  const __m512 x2 = _mm512_mul_ps(xc, xc);
  const __m512 x2_lo = _mm512_fmsub_ps(xc, xc, x2);
  const __m512 ec =
      sdnn_erfc_pos_avx512(sdnn_abs_avx512(z), _mm512_mul_ps(half, x2), _mm512_mul_ps(half, x2_lo));
  const __m512 hxe = _mm512_mul_ps(_mm512_mul_ps(half, xc), ec);
  const __mmask16 nonneg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 big = _mm512_mask_blend_ps(nonneg, hxe, _mm512_sub_ps(x, hxe));
  const __mmask16 is_small =
      _mm512_cmp_ps_mask(sdnn_abs_avx512(x), SDNN_V512(SDNN_VM_GELU_SMALL), _CMP_LT_OQ);
  return _mm512_mask_blend_ps(is_small, big, small);
}

static inline SDNN_TARGET_AVX512 __m512 sdnn_gelu_tanh_avx512(__m512 x) {
  const __m512 ax = _mm512_min_ps(SDNN_V512(SDNN_VM_GELU_XMAX), sdnn_abs_avx512(x));
  /* w = A ax + B ax^3 = w_hi + w_lo */
  const __m512 x2 = _mm512_mul_ps(ax, ax);
  const __m512 x2_lo = _mm512_fmsub_ps(ax, ax, x2);
  const __m512 x3 = _mm512_mul_ps(x2, ax);
  const __m512 x3_lo = _mm512_fmadd_ps(x2_lo, ax, _mm512_fmsub_ps(x2, ax, x3));
  const __m512 p1 = _mm512_mul_ps(SDNN_V512(SDNN_VM_GT_A_HI), ax);
  const __m512 p1_lo = _mm512_fmadd_ps(SDNN_V512(SDNN_VM_GT_A_LO), ax,
                                       _mm512_fmsub_ps(SDNN_V512(SDNN_VM_GT_A_HI), ax, p1));
  const __m512 p2 = _mm512_mul_ps(SDNN_V512(SDNN_VM_GT_B_HI), x3);
  __m512 p2_lo = _mm512_fmsub_ps(SDNN_V512(SDNN_VM_GT_B_HI), x3, p2);
  p2_lo = _mm512_fmadd_ps(SDNN_V512(SDNN_VM_GT_B_HI), x3_lo, p2_lo);
  p2_lo = _mm512_fmadd_ps(SDNN_V512(SDNN_VM_GT_B_LO), x3, p2_lo);
  const __m512 s = _mm512_add_ps(p1, p2); /* two-sum */
  const __m512 bb = _mm512_sub_ps(s, p1);
  const __m512 s_lo = _mm512_add_ps(_mm512_sub_ps(p1, _mm512_sub_ps(s, bb)), _mm512_sub_ps(p2, bb));
  const __m512 w_lo = _mm512_add_ps(s_lo, _mm512_add_ps(p1_lo, p2_lo));
  const __m512 zero = _mm512_setzero_ps();
  const __m512 e = sdnn_exp_hilo_avx512(_mm512_sub_ps(zero, s), _mm512_sub_ps(zero, w_lo));
  const __m512 xc = _mm512_max_ps(SDNN_V512(-SDNN_VM_GELU_XMAX), x);
  const __mmask16 nonneg = _mm512_cmp_ps_mask(x, zero, _CMP_GE_OQ);
  const __m512 num = _mm512_mask_blend_ps(nonneg, _mm512_mul_ps(xc, e), x);
  return _mm512_div_ps(num, _mm512_add_ps(e, SDNN_V512(1.0f)));
}

/* ---- AVX2 + FMA --------------------------------------------------------------------------- */

#define SDNN_V256(c) _mm256_set1_ps(c)

static inline SDNN_TARGET_AVX2 __m256 sdnn_abs_avx2(__m256 x) {
  return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_copysign_avx2(__m256 m, __m256 s) {
  return _mm256_or_ps(m,
                      _mm256_and_ps(s, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u))));
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_expm1_reduced_avx2(__m256 r) {
  __m256 p = SDNN_V256(SDNN_VM_EXP_C6);
  p = _mm256_fmadd_ps(p, r, SDNN_V256(SDNN_VM_EXP_C5));
  p = _mm256_fmadd_ps(p, r, SDNN_V256(SDNN_VM_EXP_C4));
  p = _mm256_fmadd_ps(p, r, SDNN_V256(SDNN_VM_EXP_C3));
  p = _mm256_fmadd_ps(p, r, SDNN_V256(SDNN_VM_EXP_C2));
  return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
}

/* p 2^n for integral n in [-160, 130]: two factors 2^(n>>1) and 2^(n - (n>>1)), each a normal
 * float, so the product over- or underflows (to a subnormal or 0) exactly once. */
static inline SDNN_TARGET_AVX2 __m256 sdnn_scale2_avx2(__m256 p, __m256 n) {
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  return _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_exp_avx2(__m256 x) {
  x = _mm256_min_ps(SDNN_V256(SDNN_VM_EXP_HI), _mm256_max_ps(SDNN_V256(SDNN_VM_EXP_LO), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, SDNN_V256(SDNN_VM_LOG2E)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, SDNN_V256(SDNN_VM_LN2_HI), x);
  r = _mm256_fnmadd_ps(n, SDNN_V256(SDNN_VM_LN2_LO), r);
  const __m256 p = _mm256_add_ps(sdnn_expm1_reduced_avx2(r), SDNN_V256(1.0f));
  return sdnn_scale2_avx2(p, n);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_exp_hilo_avx2(__m256 a, __m256 b) {
  a = _mm256_min_ps(SDNN_V256(SDNN_VM_EXP_HI), _mm256_max_ps(SDNN_V256(SDNN_VM_EXP_LO), a));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(_mm256_add_ps(a, b), SDNN_V256(SDNN_VM_LOG2E)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, SDNN_V256(SDNN_VM_LN2_HI), a);
  r = _mm256_add_ps(r, b);
  r = _mm256_fnmadd_ps(n, SDNN_V256(SDNN_VM_LN2_LO), r);
  const __m256 p = _mm256_add_ps(sdnn_expm1_reduced_avx2(r), SDNN_V256(1.0f));
  return sdnn_scale2_avx2(p, n);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_erfc_pos_avx2(__m256 z, __m256 z2_hi, __m256 z2_lo) {
  const __m256 t =
      _mm256_div_ps(SDNN_V256(1.0f), _mm256_fmadd_ps(z, SDNN_V256(0.5f), SDNN_V256(1.0f)));
  __m256 p = SDNN_V256(SDNN_VM_ERFC_R9);
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R8));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R7));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R6));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R5));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R4));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R3));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R2));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R1));
  p = _mm256_fmadd_ps(p, t, SDNN_V256(SDNN_VM_ERFC_R0));
  const __m256 zero = _mm256_setzero_ps();
  return _mm256_mul_ps(t, sdnn_exp_hilo_avx2(_mm256_sub_ps(zero, z2_hi), _mm256_sub_ps(p, z2_lo)));
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_erf_small_avx2(__m256 x) {
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 p = SDNN_V256(SDNN_VM_ERF_E5);
  p = _mm256_fmadd_ps(p, x2, SDNN_V256(SDNN_VM_ERF_E4));
  p = _mm256_fmadd_ps(p, x2, SDNN_V256(SDNN_VM_ERF_E3));
  p = _mm256_fmadd_ps(p, x2, SDNN_V256(SDNN_VM_ERF_E2));
  p = _mm256_fmadd_ps(p, x2, SDNN_V256(SDNN_VM_ERF_E1));
  p = _mm256_fmadd_ps(p, x2, SDNN_V256(SDNN_VM_ERF_E0));
  return _mm256_mul_ps(x, p);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_erf_avx2(__m256 x) {
  const __m256 ax = sdnn_abs_avx2(x);
  const __m256 z = _mm256_min_ps(SDNN_V256(SDNN_VM_ERFC_ZMAX), ax);
  const __m256 z2 = _mm256_mul_ps(z, z);
  const __m256 z2_lo = _mm256_fmsub_ps(z, z, z2);
  const __m256 big = _mm256_sub_ps(SDNN_V256(1.0f), sdnn_erfc_pos_avx2(z, z2, z2_lo));
  const __m256 small = _mm256_cmp_ps(ax, SDNN_V256(SDNN_VM_ERF_SMALL), _CMP_LT_OQ);
  return _mm256_blendv_ps(sdnn_copysign_avx2(big, x), sdnn_erf_small_avx2(x), small);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_tanh_avx2(__m256 x) {
  const __m256 ax = sdnn_abs_avx2(x);
  const __m256 x2 = _mm256_mul_ps(x, x);
  __m256 q = SDNN_V256(SDNN_VM_TANH_T4);
  q = _mm256_fmadd_ps(q, x2, SDNN_V256(SDNN_VM_TANH_T3));
  q = _mm256_fmadd_ps(q, x2, SDNN_V256(SDNN_VM_TANH_T2));
  q = _mm256_fmadd_ps(q, x2, SDNN_V256(SDNN_VM_TANH_T1));
  q = _mm256_fmadd_ps(q, x2, SDNN_V256(SDNN_VM_TANH_T0));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(ax, x2), q, ax);
  const __m256 e = sdnn_exp_avx2(_mm256_add_ps(ax, ax));
  const __m256 big = _mm256_sub_ps(
      SDNN_V256(1.0f), _mm256_div_ps(SDNN_V256(2.0f), _mm256_add_ps(e, SDNN_V256(1.0f))));
  const __m256 is_small = _mm256_cmp_ps(ax, SDNN_V256(SDNN_VM_TANH_SMALL), _CMP_LT_OQ);
  return sdnn_copysign_avx2(_mm256_blendv_ps(big, small, is_small), x);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_sigmoid_avx2(__m256 x) {
  const __m256 e = sdnn_exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), sdnn_abs_avx2(x)));
  const __m256 nonneg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  const __m256 num = _mm256_blendv_ps(e, SDNN_V256(1.0f), nonneg);
  return _mm256_div_ps(num, _mm256_add_ps(e, SDNN_V256(1.0f)));
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_gelu_avx2(__m256 x) {
  const __m256 half = SDNN_V256(0.5f);
  const __m256 xc =
      _mm256_min_ps(SDNN_V256(SDNN_VM_GELU_XMAX), _mm256_max_ps(SDNN_V256(-SDNN_VM_GELU_XMAX), x));
  const __m256 z = _mm256_mul_ps(xc, SDNN_V256(SDNN_VM_SQRT1_2));
  const __m256 small =
      _mm256_mul_ps(_mm256_mul_ps(half, x), _mm256_add_ps(SDNN_V256(1.0f), sdnn_erf_small_avx2(z)));
  const __m256 x2 = _mm256_mul_ps(xc, xc);
  const __m256 x2_lo = _mm256_fmsub_ps(xc, xc, x2);
  const __m256 ec =
      sdnn_erfc_pos_avx2(sdnn_abs_avx2(z), _mm256_mul_ps(half, x2), _mm256_mul_ps(half, x2_lo));
  const __m256 hxe = _mm256_mul_ps(_mm256_mul_ps(half, xc), ec);
  const __m256 nonneg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GE_OQ);
  const __m256 big = _mm256_blendv_ps(hxe, _mm256_sub_ps(x, hxe), nonneg);
  const __m256 is_small =
      _mm256_cmp_ps(sdnn_abs_avx2(x), SDNN_V256(SDNN_VM_GELU_SMALL), _CMP_LT_OQ);
  return _mm256_blendv_ps(big, small, is_small);
}

static inline SDNN_TARGET_AVX2 __m256 sdnn_gelu_tanh_avx2(__m256 x) {
  const __m256 ax = _mm256_min_ps(SDNN_V256(SDNN_VM_GELU_XMAX), sdnn_abs_avx2(x));
  const __m256 x2 = _mm256_mul_ps(ax, ax);
  const __m256 x2_lo = _mm256_fmsub_ps(ax, ax, x2);
  const __m256 x3 = _mm256_mul_ps(x2, ax);
  const __m256 x3_lo = _mm256_fmadd_ps(x2_lo, ax, _mm256_fmsub_ps(x2, ax, x3));
  const __m256 p1 = _mm256_mul_ps(SDNN_V256(SDNN_VM_GT_A_HI), ax);
  const __m256 p1_lo = _mm256_fmadd_ps(SDNN_V256(SDNN_VM_GT_A_LO), ax,
                                       _mm256_fmsub_ps(SDNN_V256(SDNN_VM_GT_A_HI), ax, p1));
  const __m256 p2 = _mm256_mul_ps(SDNN_V256(SDNN_VM_GT_B_HI), x3);
  __m256 p2_lo = _mm256_fmsub_ps(SDNN_V256(SDNN_VM_GT_B_HI), x3, p2);
  p2_lo = _mm256_fmadd_ps(SDNN_V256(SDNN_VM_GT_B_HI), x3_lo, p2_lo);
  p2_lo = _mm256_fmadd_ps(SDNN_V256(SDNN_VM_GT_B_LO), x3, p2_lo);
  const __m256 s = _mm256_add_ps(p1, p2);
  const __m256 bb = _mm256_sub_ps(s, p1);
  const __m256 s_lo = _mm256_add_ps(_mm256_sub_ps(p1, _mm256_sub_ps(s, bb)), _mm256_sub_ps(p2, bb));
  const __m256 w_lo = _mm256_add_ps(s_lo, _mm256_add_ps(p1_lo, p2_lo));
  const __m256 zero = _mm256_setzero_ps();
  const __m256 e = sdnn_exp_hilo_avx2(_mm256_sub_ps(zero, s), _mm256_sub_ps(zero, w_lo));
  const __m256 xc = _mm256_max_ps(SDNN_V256(-SDNN_VM_GELU_XMAX), x);
  const __m256 nonneg = _mm256_cmp_ps(x, zero, _CMP_GE_OQ);
  const __m256 num = _mm256_blendv_ps(_mm256_mul_ps(xc, e), x, nonneg);
  return _mm256_div_ps(num, _mm256_add_ps(e, SDNN_V256(1.0f)));
}

#endif /* SDNN_RUNTIME_VMATH_SIMD_H */
