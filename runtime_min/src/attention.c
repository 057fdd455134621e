/* attention.c — SDNN_STEP_ATTENTION (see attention.h for the layout and the split).
 *
 * One unit (sequence b, head h, query block i of nq <= VL queries):
 *   1. stage:   qs[d][lane] = Q of query lane, feature h*D + d (0 for lanes past nq)
 *   2. scores:  sc[j][lane] = scale * sum_d K[j][h*D + d] * qs[d][lane] + mask[j], j < S
 *               (16 or 8 keys at a time when they fill one column block: one K pointer, the
 *               keys' values broadcast from consecutive floats; else one key at a time)
 *   3. softmax: per lane, the max over j, sc = exp(sc - max) in place, the sum's reciprocal
 *   4. values:  os[d][lane] = inv[lane] * sum_j V[j][h*D + d] * sc[j][lane] (16 / 8 features at
 *               a time, each key's V values broadcast)
 *   5. store:   os to the queries' columns of dst (masked vector stores when the block is one
 *               column block of dst, else lane by lane)
 * Scratch: sc [S][VL], qs and os [D][VL], and the S per-key offsets (int64). */
#include "attention.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "vmath_simd.h"

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int64_t sdnn_attention_units(const sdnn_attention_params* p) {
  return p->batch * p->heads * ceil_div(p->seq, p->vl);
}


/* Shared by the ISA variants: where things are for one unit. */
typedef struct {
  int64_t vl, seq, features, head_dim, nq;
  int64_t first_col; /* column of the block's first query */
  float scale;
  const float* mask; /* [S] of this sequence, or NULL */
  float *sc, *qs, *os;
  int64_t* key_off; /* [S]: offset of key j's feature h*D in K / V */
} unit_ctx;

static int64_t col_offset(int64_t col, int64_t features, int64_t vl) {
  return (col / vl) * features * vl + col % vl;
}

static void stage_queries(const unit_ctx* u, const float* q, int64_t feature0) {
  const int64_t vl = u->vl;
  memset(u->qs, 0, (size_t)(u->head_dim * vl) * sizeof(float));
  for (int64_t lane = 0; lane < u->nq; ++lane) {
    const float* src = q + col_offset(u->first_col + lane, u->features, vl) + feature0 * vl;
    for (int64_t d = 0; d < u->head_dim; ++d) u->qs[d * vl + lane] = src[d * vl];
  }
}

static void store_outputs(const unit_ctx* u, float* dst, int64_t feature0) {
  const int64_t vl = u->vl;
  for (int64_t lane = 0; lane < u->nq; ++lane) {
    float* out = dst + col_offset(u->first_col + lane, u->features, vl) + feature0 * vl;
    for (int64_t d = 0; d < u->head_dim; ++d) out[d * vl] = u->os[d * vl + lane];
  }
}

/* ---- portable C (any VL) ------------------------------------------------------------------ */

static void unit_portable(const unit_ctx* u, const float* k, const float* v) {
  const int64_t vl = u->vl, s = u->seq, dh = u->head_dim;
  for (int64_t j = 0; j < s; ++j) {
    const float* kj = k + u->key_off[j];
    float* row = u->sc + j * vl;
    for (int64_t lane = 0; lane < vl; ++lane) row[lane] = 0.0f;
    for (int64_t d = 0; d < dh; ++d)
      for (int64_t lane = 0; lane < vl; ++lane) row[lane] += kj[d * vl] * u->qs[d * vl + lane];
    const float add = u->mask ? u->mask[j] : 0.0f;
    for (int64_t lane = 0; lane < vl; ++lane) row[lane] = row[lane] * u->scale + add;
  }
  for (int64_t lane = 0; lane < vl; ++lane) {
    float mx = u->sc[lane];
    for (int64_t j = 1; j < s; ++j) mx = u->sc[j * vl + lane] > mx ? u->sc[j * vl + lane] : mx;
    float sum = 0.0f;
    for (int64_t j = 0; j < s; ++j) {
      const float e = expf(u->sc[j * vl + lane] - mx);
      u->sc[j * vl + lane] = e;
      sum += e;
    }
    const float inv = 1.0f / sum;
    for (int64_t d = 0; d < dh; ++d) {
      float acc = 0.0f;
      for (int64_t j = 0; j < s; ++j) acc += v[u->key_off[j] + d * vl] * u->sc[j * vl + lane];
      u->os[d * vl + lane] = acc * inv;
    }
  }
}

/* ---- AVX-512 (VL = 16) and AVX2 (VL = 8) ---------------------------------------------------
 * One body, instantiated per ISA with these macros: VEC (vector type), W (lanes), LOAD / STORE,
 * ZERO, SET1, FMA(a, b, c) = a * b + c, MUL, SUB, MAX, EXP. */
#define ATTENTION_BODY(NAME)                                                                      \
  static void NAME(const unit_ctx* u, const float* k, const float* v) {                          \
    const int64_t s = u->seq, dh = u->head_dim;                                                   \
    const VEC scale = SET1(u->scale);                                                             \
    /* scores: a full column block of W keys shares one K pointer */                              \
    int64_t j = 0;                                                                                \
    while (j < s) {                                                                               \
      const int aligned = j + W <= s && u->key_off[j] + W - 1 == u->key_off[j + W - 1];           \
      if (aligned) {                                                                              \
        const float* kb = k + u->key_off[j];                                                      \
        VEC acc[W];                                                                               \
        for (int r = 0; r < W; ++r) acc[r] = ZERO();                                              \
        for (int64_t d = 0; d < dh; ++d) {                                                        \
          const VEC qv = LOAD(u->qs + d * W);                                                     \
          for (int r = 0; r < W; ++r) acc[r] = FMA(SET1(kb[d * W + r]), qv, acc[r]);              \
        }                                                                                         \
        for (int r = 0; r < W; ++r)                                                               \
          STORE(u->sc + (j + r) * W, FMA(acc[r], scale, SET1(u->mask ? u->mask[j + r] : 0.0f)));  \
        j += W;                                                                                   \
      } else {                                                                                    \
        const float* kj = k + u->key_off[j];                                                      \
        VEC acc = ZERO();                                                                         \
        for (int64_t d = 0; d < dh; ++d) acc = FMA(SET1(kj[d * W]), LOAD(u->qs + d * W), acc);   \
        STORE(u->sc + j * W, FMA(acc, scale, SET1(u->mask ? u->mask[j] : 0.0f)));                 \
        j += 1;                                                                                   \
      }                                                                                           \
    }                                                                                             \
    /* softmax over keys, lane by lane in parallel */                                             \
    VEC mx = LOAD(u->sc);                                                                         \
    for (int64_t i = 1; i < s; ++i) mx = MAX(mx, LOAD(u->sc + i * W));                           \
    VEC sum = ZERO();                                                                             \
    for (int64_t i = 0; i < s; ++i) {                                                             \
      const VEC e = EXP(SUB(LOAD(u->sc + i * W), mx));                                            \
      STORE(u->sc + i * W, e);                                                                    \
      sum = ADD(sum, e);                                                                          \
    }                                                                                             \
    const VEC inv = DIV(SET1(1.0f), sum);                                                         \
    /* values: W features at a time */                                                            \
    int64_t d0 = 0;                                                                               \
    for (; d0 + W <= dh; d0 += W) {                                                               \
      VEC acc[W];                                                                                 \
      for (int r = 0; r < W; ++r) acc[r] = ZERO();                                                \
      for (int64_t i = 0; i < s; ++i) {                                                           \
        const VEC pv = LOAD(u->sc + i * W);                                                       \
        const float* vb = v + u->key_off[i] + d0 * W;                                             \
        for (int r = 0; r < W; ++r) acc[r] = FMA(SET1(vb[r * W]), pv, acc[r]);                    \
      }                                                                                           \
      for (int r = 0; r < W; ++r) STORE(u->os + (d0 + r) * W, MUL(acc[r], inv));                  \
    }                                                                                             \
    for (; d0 < dh; ++d0) {                                                                       \
      VEC acc = ZERO();                                                                           \
      for (int64_t i = 0; i < s; ++i) acc = FMA(SET1(v[u->key_off[i] + d0 * W]), LOAD(u->sc + i * W), acc); \
      STORE(u->os + d0 * W, MUL(acc, inv));                                                       \
    }                                                                                             \
  }

#define VEC __m512
#define W 16
#define LOAD _mm512_load_ps
#define STORE _mm512_store_ps
#define ZERO _mm512_setzero_ps
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps
#define MUL _mm512_mul_ps
#define DIV _mm512_div_ps
#define MAX _mm512_max_ps
#define EXP sdnn_exp_avx512
__attribute__((target("avx512f,avx2,fma"))) ATTENTION_BODY(unit_avx512)
#undef VEC
#undef W
#undef LOAD
#undef STORE
#undef ZERO
#undef SET1
#undef FMA
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef MAX
#undef EXP

#define VEC __m256
#define W 8
#define LOAD _mm256_load_ps
#define STORE _mm256_store_ps
#define ZERO _mm256_setzero_ps
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
#define SUB _mm256_sub_ps
#define MUL _mm256_mul_ps
#define DIV _mm256_div_ps
#define MAX _mm256_max_ps
#define EXP sdnn_exp_avx2
__attribute__((target("avx2,fma"))) ATTENTION_BODY(unit_avx2)
#undef VEC
#undef W
#undef LOAD
#undef STORE
#undef ZERO
#undef SET1
#undef FMA
#undef ADD
#undef SUB
#undef MUL
#undef DIV
#undef MAX
#undef EXP

void sdnn_attention_run(const sdnn_attention_params* p, float* dst, const float* q, const float* k,
                        const float* v, const float* mask, float* scratch, int64_t unit_begin,
                        int64_t unit_end, uint32_t cpu) {
  const int64_t vl = p->vl, s = p->seq, dh = p->head_dim, features = p->heads * dh;
  const int64_t blocks = ceil_div(s, vl);
  if (p->mask_const) mask = p->mask_const;
  void (*unit)(const unit_ctx*, const float*, const float*) = unit_portable;
  if (vl == 16 && (cpu & SDNN_CPU_AVX512F)) unit = unit_avx512;
  if (vl == 8 && (cpu & SDNN_CPU_AVX2)) unit = unit_avx2;
  unit_ctx u = {.vl = vl, .seq = s, .features = features, .head_dim = dh, .scale = p->scale};
  u.sc = scratch;
  u.qs = u.sc + s * vl;
  u.os = u.qs + dh * vl;
  u.key_off = (int64_t*)(void*)(u.os + dh * vl);
  int64_t keys_for = -1; /* (b, h) whose key offsets are in key_off */
  for (int64_t unit_index = unit_begin; unit_index < unit_end; ++unit_index) {
    const int64_t b = unit_index / (p->heads * blocks);
    const int64_t h = unit_index / blocks % p->heads;
    const int64_t i = unit_index % blocks;
    const int64_t feature0 = h * dh;
    if (keys_for != b * p->heads + h) {
      for (int64_t j = 0; j < s; ++j) u.key_off[j] = col_offset(b * s + j, features, vl) + feature0 * vl;
      keys_for = b * p->heads + h;
    }
    u.first_col = b * s + i * vl;
    u.nq = s - i * vl < vl ? s - i * vl : vl;
    u.mask = p->has_mask ? mask + (p->mask_batch == 1 ? 0 : b) * s : NULL;
    stage_queries(&u, q, feature0);
    unit(&u, k, v);
    store_outputs(&u, dst, feature0);
  }
}
