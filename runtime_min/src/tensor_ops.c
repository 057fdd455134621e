/* tensor_ops.c — the ELEMENTWISE, REDUCE_MEAN, SOFTMAX and LAYERNORM steps (tensor_ops.h);
 * MATMUL is in tensor_matmul.c.
 *
 * ELEMENTWISE walks its rows with an odometer over the outer dims (offsets updated by adding
 * strides, one division per call), and picks one row kernel per step from the innermost strides:
 *   unary   contiguous (dst and a stride 1): the vmath kernels; a broadcast (a stride 0): f(a[0])
 *           once, then a fill; otherwise COPY is a strided loop and the other functions gather
 *           256-float chunks, run the vmath kernel on the chunk and scatter it.
 *   binary  dst stride 1 and (a, b) strides (1, 1), (1, 0) or (0, 1): vector loops written with
 *           gcc vector types (64-byte vectors), compiled three times — for AVX-512, AVX2 and
 *           baseline (then as 4 SSE registers) — and picked by `cpu`; (0, 0): one value, filled;
 *           otherwise one strided loop per function. POW is powf per element, except for a
 *           broadcast exponent of 1, 2 (x * x) or 0.5 (sqrt, with powf's +0 for -0 and +inf for
 *           -inf), which equal powf's correctly rounded results.
 * The vector loops load before they store at the same index, so dst == a or dst == b (same
 * strides) is safe.
 *
 * REDUCE_MEAN and SOFTMAX take a unit range in strips of up to STRIP outputs of one outer index:
 * a strip reads `STRIP` neighbouring columns of each row of the reduced / softmax axis (one
 * contiguous run), so an inner axis > 1 costs no strided gathers. REDUCE_MEAN sums in double
 * (eight accumulators when the reduced axis is contiguous). SOFTMAX: contiguous rows (inner == 1)
 * use vmath max / exp_sum / scale; strips keep per-column max and sums in float.
 *
 * LAYERNORM reads each token twice for the statistics (the sum of x - x[feature 0], so that a large
 * common offset does not cost the mean its precision; then the sum of squared centred values) and
 * once for the output. Blocked layout: the VL lanes of a column block are VL tokens,
 * so all three passes are vertical vector operations over the features (AVX-512 for VL = 16;
 * AVX2 for VL = 8 and as two halves for VL = 16 without AVX-512). Row-major: vector sums over
 * the row with masked tails. The portable variant accumulates in double. */
#include "tensor_ops.h"

#include <math.h>
#include <string.h>

#include "vmath.h"
#include "vmath_simd.h"

enum {
  CHUNK = 256, /* floats gathered per strided unary call */
  STRIP = 64,  /* outputs per REDUCE_MEAN / SOFTMAX strip */
};

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- ELEMENTWISE -------------------------------------------------------------------------- */

typedef enum {
  ROW_UNARY_CONTIGUOUS,
  ROW_UNARY_BROADCAST,
  ROW_UNARY_STRIDED,
  ROW_BINARY_VV, /* dst, a, b contiguous */
  ROW_BINARY_VS, /* dst, a contiguous; b one value */
  ROW_BINARY_SV, /* dst, b contiguous; a one value */
  ROW_BINARY_SS, /* a and b one value each */
  ROW_BINARY_STRIDED,
} row_kind;

typedef struct {
  uint32_t fn, cpu;
  row_kind kind;
  float alpha, beta;
  int64_t n;          /* floats per row */
  int64_t ds, as, bs; /* innermost strides */
} row_plan;

/* 64-byte gcc vectors: one zmm under AVX-512, two ymm under AVX2, four xmm in baseline code.
 * Loads and stores through memcpy are unaligned vector moves. */
typedef float vf __attribute__((vector_size(64)));
#define VF_FLOATS 16
#define VF_LOAD(p)               \
  __extension__({                \
    vf v_;                       \
    memcpy(&v_, (p), sizeof v_); \
    v_;                          \
  })
#define VF_STORE(p, v)           \
  __extension__({                \
    const vf w_ = (v);           \
    memcpy((p), &w_, sizeof w_); \
  })

/* d[i] = a[i] OP b[i], a[i] OP b[0] or a[0] OP b[i] for i < n (kind VV, VS or SV). */
#define BINARY_LOOPS(OP)                                                                    \
  do {                                                                                      \
    int64_t i_ = 0;                                                                         \
    if (kind == ROW_BINARY_VV) {                                                            \
      for (; i_ + VF_FLOATS <= n; i_ += VF_FLOATS)                                          \
        VF_STORE(d + i_, VF_LOAD(a + i_) OP VF_LOAD(b + i_));                               \
      for (; i_ < n; ++i_) d[i_] = a[i_] OP b[i_];                                          \
    } else if (kind == ROW_BINARY_VS) {                                                     \
      const float s_ = b[0];                                                                \
      for (; i_ + VF_FLOATS <= n; i_ += VF_FLOATS) VF_STORE(d + i_, VF_LOAD(a + i_) OP s_); \
      for (; i_ < n; ++i_) d[i_] = a[i_] OP s_;                                             \
    } else {                                                                                \
      const float s_ = a[0];                                                                \
      for (; i_ + VF_FLOATS <= n; i_ += VF_FLOATS) VF_STORE(d + i_, s_ OP VF_LOAD(b + i_)); \
      for (; i_ < n; ++i_) d[i_] = s_ OP b[i_];                                             \
    }                                                                                       \
  } while (0)

/* The four arithmetic functions on one row, for kinds VV / VS / SV (d may equal a or b). */
static inline __attribute__((always_inline)) void arith_row_body(uint32_t fn, row_kind kind,
                                                                 float* d, const float* a,
                                                                 const float* b, int64_t n) {
  switch (fn) {
    case SDNN_FN_ADD:
      BINARY_LOOPS(+);
      break;
    case SDNN_FN_SUB:
      BINARY_LOOPS(-);
      break;
    case SDNN_FN_MUL:
      BINARY_LOOPS(*);
      break;
    case SDNN_FN_DIV:
      BINARY_LOOPS(/);
      break;
    default:
      break;
  }
}

static SDNN_TARGET_AVX512 void arith_row_avx512(uint32_t fn, row_kind kind, float* d,
                                                const float* a, const float* b, int64_t n) {
  arith_row_body(fn, kind, d, a, b, n);
}

static SDNN_TARGET_AVX2 void arith_row_avx2(uint32_t fn, row_kind kind, float* d, const float* a,
                                            const float* b, int64_t n) {
  arith_row_body(fn, kind, d, a, b, n);
}

static void arith_row_baseline(uint32_t fn, row_kind kind, float* d, const float* a, const float* b,
                               int64_t n) {
  arith_row_body(fn, kind, d, a, b, n);
}

static float arith1(uint32_t fn, float a, float b) {
  switch (fn) {
    case SDNN_FN_ADD:
      return a + b;
    case SDNN_FN_SUB:
      return a - b;
    case SDNN_FN_MUL:
      return a * b;
    case SDNN_FN_DIV:
      return a / b;
    default:
      return powf(a, b);
  }
}

/* powf(x, 0.5) through sqrt: sqrt(-0) is -0 and sqrt(-inf) NaN, where powf gives +0 and +inf. */
static inline float pow_half(float x) { return x == -INFINITY ? INFINITY : sqrtf(x) + 0.0f; }

/* d[i * ds] = powf(a[i * as], b[i * bs]) for i < n. */
static void pow_row(float* d, int64_t ds, const float* a, int64_t as, const float* b, int64_t bs,
                    int64_t n) {
  if (bs == 0 && b[0] == 2.0f) {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = a[i * as] * a[i * as];
  } else if (bs == 0 && b[0] == 0.5f) {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = pow_half(a[i * as]);
  } else if (bs == 0 && b[0] == 1.0f) {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = a[i * as];
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = powf(a[i * as], b[i * bs]);
  }
}

/* The strided binary loop, one per function so each is a tight loop. */
#define STRIDED_LOOP(OP) \
  for (int64_t i_ = 0; i_ < n; ++i_) d[i_ * ds] = a[i_ * as] OP b[i_ * bs]

static void binary_strided(uint32_t fn, float* d, int64_t ds, const float* a, int64_t as,
                           const float* b, int64_t bs, int64_t n) {
  switch (fn) {
    case SDNN_FN_ADD:
      STRIDED_LOOP(+);
      break;
    case SDNN_FN_SUB:
      STRIDED_LOOP(-);
      break;
    case SDNN_FN_MUL:
      STRIDED_LOOP(*);
      break;
    case SDNN_FN_DIV:
      STRIDED_LOOP(/);
      break;
    default:
      pow_row(d, ds, a, as, b, bs, n);
      break;
  }
}

static void fill(float* d, int64_t ds, float v, int64_t n) {
  if (ds == 1) {
    for (int64_t i = 0; i < n; ++i) d[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = v;
  }
}

static void unary_strided(const row_plan* r, float* d, const float* a) {
  const int64_t n = r->n, ds = r->ds, as = r->as;
  if (r->fn == SDNN_FN_COPY) {
    for (int64_t i = 0; i < n; ++i) d[i * ds] = a[i * as];
    return;
  }
  float buf[CHUNK];
  for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
    const int64_t m = min64(CHUNK, n - i0);
    for (int64_t i = 0; i < m; ++i) buf[i] = a[(i0 + i) * as];
    sdnn_vmath_unary(r->fn, buf, buf, m, r->alpha, r->beta, r->cpu);
    for (int64_t i = 0; i < m; ++i) d[(i0 + i) * ds] = buf[i];
  }
}

static void run_row(const row_plan* r, float* d, const float* a, const float* b) {
  switch (r->kind) {
    case ROW_UNARY_CONTIGUOUS:
      sdnn_vmath_unary(r->fn, d, a, r->n, r->alpha, r->beta, r->cpu);
      break;
    case ROW_UNARY_BROADCAST: {
      float v;
      sdnn_vmath_unary(r->fn, &v, a, 1, r->alpha, r->beta, r->cpu);
      fill(d, r->ds, v, r->n);
      break;
    }
    case ROW_UNARY_STRIDED:
      unary_strided(r, d, a);
      break;
    case ROW_BINARY_VV:
    case ROW_BINARY_VS:
    case ROW_BINARY_SV:
      if (r->fn == SDNN_FN_POW)
        pow_row(d, 1, a, r->as, b, r->bs, r->n);
      else if (r->cpu & SDNN_CPU_AVX512F)
        arith_row_avx512(r->fn, r->kind, d, a, b, r->n);
      else if (r->cpu & SDNN_CPU_AVX2)
        arith_row_avx2(r->fn, r->kind, d, a, b, r->n);
      else
        arith_row_baseline(r->fn, r->kind, d, a, b, r->n);
      break;
    case ROW_BINARY_SS:
      fill(d, r->ds, arith1(r->fn, a[0], b[0]), r->n);
      break;
    case ROW_BINARY_STRIDED:
      binary_strided(r->fn, d, r->ds, a, r->as, b, r->bs, r->n);
      break;
  }
}

static row_plan plan_rows(const sdnn_elementwise_params* p, uint32_t cpu) {
  const int last = (int)p->rank - 1;
  row_plan r;
  r.fn = p->fn;
  r.cpu = cpu;
  r.alpha = p->alpha;
  r.beta = p->beta;
  r.n = p->dims[last];
  r.ds = p->dst_strides[last];
  r.as = p->src0_strides[last];
  r.bs = p->src1_strides[last];
  if (sdnn_vmath_is_unary(p->fn)) {
    r.bs = 0;
    if (r.n > 1 && r.as == 0)
      r.kind = ROW_UNARY_BROADCAST;
    else if (r.n == 1 || (r.ds == 1 && r.as == 1))
      r.kind = ROW_UNARY_CONTIGUOUS;
    else
      r.kind = ROW_UNARY_STRIDED;
  } else if (r.n == 1) {
    r.kind = ROW_BINARY_SS;
  } else if (r.as == 0 && r.bs == 0) {
    r.kind = ROW_BINARY_SS;
  } else if (r.ds == 1 && r.as == 1 && r.bs == 1) {
    r.kind = ROW_BINARY_VV;
  } else if (r.ds == 1 && r.as == 1 && r.bs == 0) {
    r.kind = ROW_BINARY_VS;
  } else if (r.ds == 1 && r.as == 0 && r.bs == 1) {
    r.kind = ROW_BINARY_SV;
  } else {
    r.kind = ROW_BINARY_STRIDED;
  }
  return r;
}

int64_t sdnn_elementwise_units(const sdnn_elementwise_params* p) {
  int64_t units = 1;
  for (uint32_t d = 0; d + 1 < p->rank; ++d) units *= p->dims[d];
  return units;
}

void sdnn_elementwise_run(const sdnn_elementwise_params* p, float* dst, const float* src0,
                          const float* src1, int64_t unit_begin, int64_t unit_end, uint32_t cpu) {
  if (unit_begin >= unit_end) return;
  const float* a = p->src0_const ? p->src0_const : src0;
  const int binary = !sdnn_vmath_is_unary(p->fn);
  const float* b = binary ? (p->src1_const ? p->src1_const : src1) : NULL;
  const row_plan r = plan_rows(p, cpu);
  const int outer = (int)p->rank - 1;

  /* Odometer over the outer dims, starting at unit_begin. */
  int64_t index[SDNN_MAX_RANK];
  int64_t od = 0, oa = 0, ob = 0;
  int64_t rest = unit_begin;
  for (int d = outer - 1; d >= 0; --d) {
    index[d] = rest % p->dims[d];
    rest /= p->dims[d];
    od += index[d] * p->dst_strides[d];
    oa += index[d] * p->src0_strides[d];
    ob += index[d] * p->src1_strides[d];
  }
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    run_row(&r, dst + od, a + oa, binary ? b + ob : NULL);
    for (int d = outer - 1; d >= 0; --d) {
      od += p->dst_strides[d];
      oa += p->src0_strides[d];
      ob += p->src1_strides[d];
      if (++index[d] < p->dims[d]) break;
      od -= p->dims[d] * p->dst_strides[d];
      oa -= p->dims[d] * p->src0_strides[d];
      ob -= p->dims[d] * p->src1_strides[d];
      index[d] = 0;
    }
  }
}

/* ---- REDUCE_MEAN -------------------------------------------------------------------------- */

/* Sum of x[0..n) in double, eight interleaved accumulators (vectorizes as cvtps2pd + addpd). */
static double sum_f64(const float* x, int64_t n) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += (double)x[i + j];
  for (; i < n; ++i) s[0] += (double)x[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

int64_t sdnn_reduce_mean_units(const int64_t dims[3]) { return dims[0] * dims[2]; }

void sdnn_reduce_mean_run(const int64_t dims[3], float* dst, const float* src, int64_t unit_begin,
                          int64_t unit_end) {
  const int64_t reduced = dims[1], inner = dims[2];
  const double count = (double)reduced;
  int64_t u = unit_begin;
  while (u < unit_end) {
    const int64_t o = u / inner, i = u % inner;
    const float* s = src + o * reduced * inner + i;
    if (inner == 1) {
      dst[u] = (float)(sum_f64(s, reduced) / count);
      ++u;
      continue;
    }
    const int64_t w = min64(min64(STRIP, inner - i), unit_end - u);
    double acc[STRIP];
    for (int64_t j = 0; j < w; ++j) acc[j] = 0.0;
    for (int64_t r = 0; r < reduced; ++r) {
      const float* row = s + r * inner;
      for (int64_t j = 0; j < w; ++j) acc[j] += (double)row[j];
    }
    for (int64_t j = 0; j < w; ++j) dst[u + j] = (float)(acc[j] / count);
    u += w;
  }
}

/* ---- SOFTMAX ------------------------------------------------------------------------------ */

int64_t sdnn_softmax_units(const int64_t dims[3]) { return dims[0] * dims[2]; }

/* Softmax of `w` neighbouring columns over `axis` rows `inner` floats apart. */
static void softmax_strip(float* d, const float* s, int64_t axis, int64_t inner, int64_t w,
                          uint32_t cpu) {
  float mx[STRIP], sum[STRIP];
  for (int64_t j = 0; j < w; ++j) mx[j] = s[j];
  for (int64_t r = 1; r < axis; ++r) {
    const float* row = s + r * inner;
    for (int64_t j = 0; j < w; ++j) mx[j] = row[j] > mx[j] ? row[j] : mx[j];
  }
  for (int64_t j = 0; j < w; ++j) sum[j] = 0.0f;
  for (int64_t r = 0; r < axis; ++r) {
    const float* row = s + r * inner;
    float* out = d + r * inner;
    for (int64_t j = 0; j < w; ++j) out[j] = row[j] - mx[j];
    sdnn_vmath_unary(SDNN_FN_EXP, out, out, w, 0.0f, 0.0f, cpu);
    for (int64_t j = 0; j < w; ++j) sum[j] += out[j];
  }
  for (int64_t j = 0; j < w; ++j) sum[j] = 1.0f / sum[j];
  for (int64_t r = 0; r < axis; ++r) {
    float* out = d + r * inner;
    for (int64_t j = 0; j < w; ++j) out[j] *= sum[j];
  }
}

void sdnn_softmax_run(const int64_t dims[3], float* dst, const float* src, int64_t unit_begin,
                      int64_t unit_end, uint32_t cpu) {
  const int64_t axis = dims[1], inner = dims[2];
  int64_t u = unit_begin;
  while (u < unit_end) {
    const int64_t o = u / inner, i = u % inner;
    const int64_t offset = o * axis * inner + i;
    if (inner == 1) {
      const float m = sdnn_vmath_max(src + offset, axis, cpu);
      const float sum = sdnn_vmath_exp_sum(dst + offset, src + offset, axis, m, cpu);
      sdnn_vmath_scale(dst + offset, dst + offset, axis, 1.0f / sum, cpu);
      ++u;
      continue;
    }
    const int64_t w = min64(min64(STRIP, inner - i), unit_end - u);
    softmax_strip(dst + offset, src + offset, axis, inner, w, cpu);
    u += w;
  }
}

/* ---- LAYERNORM ---------------------------------------------------------------------------- */

int64_t sdnn_layernorm_units(const sdnn_norm_params* p) {
  return p->blocked ? (p->tokens + p->vl - 1) / p->vl : p->tokens;
}

/* 1 / sqrt(var + eps), var the biased variance from the centred sum of squares. */
static float inv_std(double centred_squares, int64_t features, float epsilon) {
  return (float)(1.0 / sqrt(centred_squares / (double)features + (double)epsilon));
}

static SDNN_TARGET_AVX512 void layernorm_rows_avx512(const sdnn_norm_params* p, float* dst,
                                                     const float* src, int64_t t0, int64_t t1) {
  const int64_t f = p->features;
  const int64_t full = f & ~(int64_t)15;
  const __mmask16 tail = (__mmask16)((1u << (f - full)) - 1u);
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = src + t * f;
    float* y = dst + t * f;
    const __m512 shift = _mm512_set1_ps(x[0]);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= f; i += 32) {
      s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i), shift));
      s1 = _mm512_add_ps(s1, _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), shift));
    }
    for (; i < full; i += 16) s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i), shift));
    if (tail)
      s1 = _mm512_add_ps(s1,
                         _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full), shift));
    const float mean = x[0] + _mm512_reduce_add_ps(_mm512_add_ps(s0, s1)) / (float)f;
    const __m512 vmean = _mm512_set1_ps(mean);
    s0 = _mm512_setzero_ps();
    s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= f; i += 32) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vmean);
      const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vmean);
      s0 = _mm512_fmadd_ps(d0, d0, s0);
      s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    for (; i < full; i += 16) {
      const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i), vmean);
      s0 = _mm512_fmadd_ps(d0, d0, s0);
    }
    if (tail) {
      const __m512 d1 = _mm512_maskz_sub_ps(tail, _mm512_maskz_loadu_ps(tail, x + full), vmean);
      s1 = _mm512_fmadd_ps(d1, d1, s1);
    }
    const __m512 vr =
        _mm512_set1_ps(inv_std(_mm512_reduce_add_ps(_mm512_add_ps(s0, s1)), f, p->epsilon));
    for (i = 0; i < f; i += 16) {
      const __mmask16 m = i < full ? (__mmask16)0xffff : tail;
      const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean), vr);
      const __m512 g = _mm512_maskz_loadu_ps(m, p->gamma + i);
      const __m512 out = p->beta ? _mm512_fmadd_ps(v, g, _mm512_maskz_loadu_ps(m, p->beta + i))
                                 : _mm512_mul_ps(v, g);
      _mm512_mask_storeu_ps(y + i, m, out);
    }
  }
}

/* One column block of 16 tokens: x and y [features][16]. */
static SDNN_TARGET_AVX512 void layernorm_block16_avx512(const sdnn_norm_params* p, float* y,
                                                        const float* x) {
  const int64_t f = p->features;
  const __m512 shift = _mm512_loadu_ps(x);
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 4 <= f; i += 4) {
    s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i * 16), shift));
    s1 = _mm512_add_ps(s1, _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 16), shift));
    s2 = _mm512_add_ps(s2, _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 32), shift));
    s3 = _mm512_add_ps(s3, _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 48), shift));
  }
  for (; i < f; ++i) s0 = _mm512_add_ps(s0, _mm512_sub_ps(_mm512_loadu_ps(x + i * 16), shift));
  const __m512 count = _mm512_set1_ps((float)f);
  const __m512 mean = _mm512_add_ps(
      shift, _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)), count));
  s0 = s1 = s2 = s3 = _mm512_setzero_ps();
  for (i = 0; i + 4 <= f; i += 4) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i * 16), mean);
    const __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 16), mean);
    const __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 32), mean);
    const __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(x + i * 16 + 48), mean);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
    s1 = _mm512_fmadd_ps(d1, d1, s1);
    s2 = _mm512_fmadd_ps(d2, d2, s2);
    s3 = _mm512_fmadd_ps(d3, d3, s3);
  }
  for (; i < f; ++i) {
    const __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(x + i * 16), mean);
    s0 = _mm512_fmadd_ps(d0, d0, s0);
  }
  const __m512 var =
      _mm512_div_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)), count);
  const __m512 rstd = _mm512_div_ps(_mm512_set1_ps(1.0f),
                                    _mm512_sqrt_ps(_mm512_add_ps(var, _mm512_set1_ps(p->epsilon))));
  for (i = 0; i < f; ++i) {
    const __m512 v = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x + i * 16), mean), rstd);
    const __m512 g = _mm512_set1_ps(p->gamma[i]);
    _mm512_storeu_ps(y + i * 16, p->beta ? _mm512_fmadd_ps(v, g, _mm512_set1_ps(p->beta[i]))
                                         : _mm512_mul_ps(v, g));
  }
}

static SDNN_TARGET_AVX2 float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

static SDNN_TARGET_AVX2 void layernorm_rows_avx2(const sdnn_norm_params* p, float* dst,
                                                 const float* src, int64_t t0, int64_t t1) {
  const int64_t f = p->features;
  const int64_t full = f & ~(int64_t)7;
  const __m256i tail = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(f - full)),
                                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 tail_ps = _mm256_castsi256_ps(tail);
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = src + t * f;
    float* y = dst + t * f;
    const __m256 shift = _mm256_set1_ps(x[0]);
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= f; i += 16) {
      s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
      s1 = _mm256_add_ps(s1, _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), shift));
    }
    for (; i < full; i += 8) s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i), shift));
    if (full < f)
      s1 = _mm256_add_ps(
          s1, _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + full, tail), shift), tail_ps));
    const float mean = x[0] + hsum_avx2(_mm256_add_ps(s0, s1)) / (float)f;
    const __m256 vmean = _mm256_set1_ps(mean);
    s0 = _mm256_setzero_ps();
    s1 = _mm256_setzero_ps();
    for (i = 0; i + 16 <= f; i += 16) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
      const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmean);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    for (; i < full; i += 8) {
      const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vmean);
      s0 = _mm256_fmadd_ps(d0, d0, s0);
    }
    if (full < f) {
      const __m256 d1 =
          _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + full, tail), vmean), tail_ps);
      s1 = _mm256_fmadd_ps(d1, d1, s1);
    }
    const __m256 vr = _mm256_set1_ps(inv_std(hsum_avx2(_mm256_add_ps(s0, s1)), f, p->epsilon));
    for (i = 0; i < full; i += 8) {
      const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmean), vr);
      const __m256 g = _mm256_loadu_ps(p->gamma + i);
      _mm256_storeu_ps(y + i, p->beta ? _mm256_fmadd_ps(v, g, _mm256_loadu_ps(p->beta + i))
                                      : _mm256_mul_ps(v, g));
    }
    if (full < f) {
      const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_maskload_ps(x + full, tail), vmean), vr);
      const __m256 g = _mm256_maskload_ps(p->gamma + full, tail);
      _mm256_maskstore_ps(y + full, tail,
                          p->beta ? _mm256_fmadd_ps(v, g, _mm256_maskload_ps(p->beta + full, tail))
                                  : _mm256_mul_ps(v, g));
    }
  }
}

/* 8 tokens of a column block: lane j of x[i * vl + j], i < features (vl = 8 or 16). */
static SDNN_TARGET_AVX2 void layernorm_lanes8_avx2(const sdnn_norm_params* p, float* y,
                                                   const float* x, int64_t vl) {
  const int64_t f = p->features;
  const __m256 shift = _mm256_loadu_ps(x);
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 2 <= f; i += 2) {
    s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i * vl), shift));
    s1 = _mm256_add_ps(s1, _mm256_sub_ps(_mm256_loadu_ps(x + (i + 1) * vl), shift));
  }
  if (i < f) s0 = _mm256_add_ps(s0, _mm256_sub_ps(_mm256_loadu_ps(x + i * vl), shift));
  const __m256 count = _mm256_set1_ps((float)f);
  const __m256 mean = _mm256_add_ps(shift, _mm256_div_ps(_mm256_add_ps(s0, s1), count));
  s0 = s1 = _mm256_setzero_ps();
  for (i = 0; i + 2 <= f; i += 2) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i * vl), mean);
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + (i + 1) * vl), mean);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
    s1 = _mm256_fmadd_ps(d1, d1, s1);
  }
  if (i < f) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i * vl), mean);
    s0 = _mm256_fmadd_ps(d0, d0, s0);
  }
  const __m256 var = _mm256_div_ps(_mm256_add_ps(s0, s1), count);
  const __m256 rstd = _mm256_div_ps(_mm256_set1_ps(1.0f),
                                    _mm256_sqrt_ps(_mm256_add_ps(var, _mm256_set1_ps(p->epsilon))));
  for (i = 0; i < f; ++i) {
    const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i * vl), mean), rstd);
    const __m256 g = _mm256_set1_ps(p->gamma[i]);
    _mm256_storeu_ps(y + i * vl, p->beta ? _mm256_fmadd_ps(v, g, _mm256_set1_ps(p->beta[i]))
                                         : _mm256_mul_ps(v, g));
  }
}

static void layernorm_rows_scalar(const sdnn_norm_params* p, float* dst, const float* src,
                                  int64_t t0, int64_t t1) {
  const int64_t f = p->features;
  for (int64_t t = t0; t < t1; ++t) {
    const float* x = src + t * f;
    float* y = dst + t * f;
    const double mean = sum_f64(x, f) / (double)f;
    double squares = 0.0;
    for (int64_t i = 0; i < f; ++i) squares += ((double)x[i] - mean) * ((double)x[i] - mean);
    const double r = 1.0 / sqrt(squares / (double)f + (double)p->epsilon);
    for (int64_t i = 0; i < f; ++i) {
      const double v = ((double)x[i] - mean) * r * (double)p->gamma[i];
      y[i] = (float)(p->beta ? v + (double)p->beta[i] : v);
    }
  }
}

/* One column block: vl tokens, lane j at x[i * vl + j]. */
static void layernorm_block_scalar(const sdnn_norm_params* p, float* y, const float* x) {
  const int64_t f = p->features, vl = p->vl;
  for (int64_t j = 0; j < vl; ++j) {
    double sum = 0.0;
    for (int64_t i = 0; i < f; ++i) sum += (double)x[i * vl + j];
    const double mean = sum / (double)f;
    double squares = 0.0;
    for (int64_t i = 0; i < f; ++i) {
      const double d = (double)x[i * vl + j] - mean;
      squares += d * d;
    }
    const double r = 1.0 / sqrt(squares / (double)f + (double)p->epsilon);
    for (int64_t i = 0; i < f; ++i) {
      const double v = ((double)x[i * vl + j] - mean) * r * (double)p->gamma[i];
      y[i * vl + j] = (float)(p->beta ? v + (double)p->beta[i] : v);
    }
  }
}

void sdnn_layernorm_run(const sdnn_norm_params* p, float* dst, const float* src, int64_t unit_begin,
                        int64_t unit_end, uint32_t cpu) {
  if (unit_begin >= unit_end) return;
  if (!p->blocked) {
    if (cpu & SDNN_CPU_AVX512F)
      layernorm_rows_avx512(p, dst, src, unit_begin, unit_end);
    else if (cpu & SDNN_CPU_AVX2)
      layernorm_rows_avx2(p, dst, src, unit_begin, unit_end);
    else
      layernorm_rows_scalar(p, dst, src, unit_begin, unit_end);
    return;
  }
  const int64_t vl = p->vl, block_floats = p->features * vl;
  for (int64_t blk = unit_begin; blk < unit_end; ++blk) {
    const float* x = src + blk * block_floats;
    float* y = dst + blk * block_floats;
    if ((cpu & SDNN_CPU_AVX512F) && vl == 16) {
      layernorm_block16_avx512(p, y, x);
    } else if (cpu & (SDNN_CPU_AVX512F | SDNN_CPU_AVX2)) {
      for (int64_t h = 0; h < vl; h += 8) layernorm_lanes8_avx2(p, y + h, x + h, vl);
    } else {
      layernorm_block_scalar(p, y, x);
    }
  }
}
