/* tensor_matmul.c — the MATMUL step (tensor_ops.h): batched row-major C = A * B, register-blocked
 * with intrinsics, no packing.
 *
 * A unit range is cut into runs of units of one batch item, i.e. one contiguous range of rows of
 * that item's C. For each run:
 *
 *   for k0 in steps of KC (the B panel stays in L1):       first block stores, later ones add to C
 *     for n0 in steps of NR columns (one B panel, KC x NR)
 *       for i0 in steps of MR rows:   tile C[i0.., n0..] (+)= A[i0.., k0..] * B[k0.., n0..]
 *
 *   AVX-512  MR x NR = 8 x 32: 16 zmm accumulators, per k two B loads and 8 broadcasts of A
 *            (vbroadcastss) feeding 16 FMAs.
 *   AVX2     MR x NR = 6 x 16: 12 ymm accumulators, per k two B loads and 6 broadcasts.
 *   portable row by row: c_row += A[i][k] * B[k][:] (auto-vectorized).
 *
 * Partial tiles use the same code: a tile function exists for every row count 1..MR and vector
 * count 1..2 (a table of instances of one always-inline template), and the last vector of a
 * tile's columns is masked (AVX-512 k-mask, AVX2 vmaskmov), so any m, n, k >= 1 works with no
 * scalar tail. Each C element is one FMA chain over k in order, reset at k = 0 and resumed from C
 * at each K block, whatever the tile it falls in: results do not depend on the unit split. */
#include "tensor_ops.h"
#include "vmath_simd.h"

enum {
  KC = 256, /* K block */
  MR_AVX512 = 8,
  NR_AVX512 = 32,
  MR_AVX2 = 6,
  NR_AVX2 = 16,
};

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Operands of one tile call: C[mr x cols] = (C +) A[mr x kc] * B[kc x cols] (C added when
 * `accumulate`), with mr and the column shape fixed by the tile function and the lanes of its last,
 * partial vector in the mask argument. */
typedef struct {
  const float* a;
  const float* b;
  float* c;
  int64_t lda, ldb, ldc, kc;
  int accumulate;
} tile_args;

/* ---- AVX-512 ------------------------------------------------------------------------------ */

/* The accumulators are named variables (cR0, cR1 for row R), not an array: gcc keeps an array of
 * vectors in memory. Rows R >= mr and the second vector when nv == 1 are dead code. */
#define ROWS_AVX512(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)

static inline __attribute__((always_inline)) SDNN_TARGET_AVX512 void tile_avx512(
    const int mr, const int nv, const int full, const tile_args* t, __mmask16 mask) {
  const float* a = t->a;
  const float* b = t->b;
  float* c = t->c;
  const int64_t lda = t->lda, ldb = t->ldb, ldc = t->ldc, kc = t->kc;
  const __mmask16 m0 = nv == 2 ? (__mmask16)0xffff : mask;
  if (full) mask = (__mmask16)0xffff;
#define DECLARE(R) __m512 c##R##0 = _mm512_setzero_ps(), c##R##1 = _mm512_setzero_ps();
#define LOAD_C(R)                                                         \
  if (R < mr) {                                                           \
    c##R##0 = _mm512_maskz_loadu_ps(m0, c + R * ldc);                     \
    if (nv == 2) c##R##1 = _mm512_maskz_loadu_ps(mask, c + R * ldc + 16); \
  }
#define FMA_ROW(R)                                           \
  if (R < mr) {                                              \
    const __m512 av = _mm512_set1_ps(a[R * lda + k]);        \
    c##R##0 = _mm512_fmadd_ps(av, b0, c##R##0);              \
    if (nv == 2) c##R##1 = _mm512_fmadd_ps(av, b1, c##R##1); \
  }
#define STORE_C(R)                                                       \
  if (R < mr) {                                                          \
    _mm512_mask_storeu_ps(c + R * ldc, m0, c##R##0);                     \
    if (nv == 2) _mm512_mask_storeu_ps(c + R * ldc + 16, mask, c##R##1); \
  }
  ROWS_AVX512(DECLARE)
  if (t->accumulate) {
    ROWS_AVX512(LOAD_C)
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    const __m512 b0 = nv == 2 ? _mm512_loadu_ps(bk) : _mm512_maskz_loadu_ps(mask, bk);
    const __m512 b1 = nv == 1 ? _mm512_setzero_ps()
                      : full  ? _mm512_loadu_ps(bk + 16)
                              : _mm512_maskz_loadu_ps(mask, bk + 16);
    ROWS_AVX512(FMA_ROW)
  }
  ROWS_AVX512(STORE_C)
#undef DECLARE
#undef LOAD_C
#undef FMA_ROW
#undef STORE_C
}

typedef void (*tile_avx512_fn)(const tile_args* t, __mmask16 mask);

/* Instances: rows MR, column shape S = 0 (one masked vector), 1 (a full and a masked vector) or
 * 2 (two full vectors, no mask). */
#define TILE_AVX512(MR, S)                                                                    \
  static SDNN_TARGET_AVX512 void tile_avx512_##MR##_##S(const tile_args* t, __mmask16 mask) { \
    tile_avx512(MR, S == 0 ? 1 : 2, S == 2, t, mask);                                         \
  }
/* clang-format off */
#define TILE_AVX512_ROWS(S) \
  TILE_AVX512(1, S) TILE_AVX512(2, S) TILE_AVX512(3, S) TILE_AVX512(4, S) \
  TILE_AVX512(5, S) TILE_AVX512(6, S) TILE_AVX512(7, S) TILE_AVX512(8, S)
TILE_AVX512_ROWS(0)
TILE_AVX512_ROWS(1)
TILE_AVX512_ROWS(2)
#define TILE_AVX512_TABLE(S) \
  {tile_avx512_1_##S, tile_avx512_2_##S, tile_avx512_3_##S, tile_avx512_4_##S, \
   tile_avx512_5_##S, tile_avx512_6_##S, tile_avx512_7_##S, tile_avx512_8_##S}
static const tile_avx512_fn tiles_avx512[3][MR_AVX512] = {
    TILE_AVX512_TABLE(0), TILE_AVX512_TABLE(1), TILE_AVX512_TABLE(2)};
/* clang-format on */

static void gemm_avx512(const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                        int64_t ldc, int64_t rows, int64_t n, int64_t k) {
  tile_args t;
  t.lda = lda;
  t.ldb = ldb;
  t.ldc = ldc;
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    t.kc = min64(KC, k - k0);
    t.accumulate = k0 > 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR_AVX512) {
      const int64_t cols = min64(NR_AVX512, n - n0);
      const int shape = cols == 32 ? 2 : cols > 16 ? 1 : 0;
      const __mmask16 mask = (__mmask16)((1u << (cols - 16 * (shape > 0))) - 1u);
      t.b = b + k0 * ldb + n0;
      for (int64_t i0 = 0; i0 < rows; i0 += MR_AVX512) {
        const int mr = (int)min64(MR_AVX512, rows - i0);
        t.a = a + i0 * lda + k0;
        t.c = c + i0 * ldc + n0;
        tiles_avx512[shape][mr - 1](&t, mask);
      }
    }
  }
}

/* ---- AVX2 --------------------------------------------------------------------------------- */

#define ROWS_AVX2(X) X(0) X(1) X(2) X(3) X(4) X(5)

static inline __attribute__((always_inline)) SDNN_TARGET_AVX2 void tile_avx2(
    const int mr, const int nv, const int full, const tile_args* t, __m256i mask) {
  const float* a = t->a;
  const float* b = t->b;
  float* c = t->c;
  const int64_t lda = t->lda, ldb = t->ldb, ldc = t->ldc, kc = t->kc;
#define DECLARE(R) __m256 c##R##0 = _mm256_setzero_ps(), c##R##1 = _mm256_setzero_ps();
#define LOAD_C(R)                                                                              \
  if (R < mr) {                                                                                \
    if (nv == 2) {                                                                             \
      c##R##0 = _mm256_loadu_ps(c + R * ldc);                                                  \
      c##R##1 =                                                                                \
          full ? _mm256_loadu_ps(c + R * ldc + 8) : _mm256_maskload_ps(c + R * ldc + 8, mask); \
    } else {                                                                                   \
      c##R##0 = _mm256_maskload_ps(c + R * ldc, mask);                                         \
    }                                                                                          \
  }
#define FMA_ROW(R)                                           \
  if (R < mr) {                                              \
    const __m256 av = _mm256_broadcast_ss(a + R * lda + k);  \
    c##R##0 = _mm256_fmadd_ps(av, b0, c##R##0);              \
    if (nv == 2) c##R##1 = _mm256_fmadd_ps(av, b1, c##R##1); \
  }
#define STORE_C(R)                                           \
  if (R < mr) {                                              \
    if (nv == 2) {                                           \
      _mm256_storeu_ps(c + R * ldc, c##R##0);                \
      if (full)                                              \
        _mm256_storeu_ps(c + R * ldc + 8, c##R##1);          \
      else                                                   \
        _mm256_maskstore_ps(c + R * ldc + 8, mask, c##R##1); \
    } else {                                                 \
      _mm256_maskstore_ps(c + R * ldc, mask, c##R##0);       \
    }                                                        \
  }
  ROWS_AVX2(DECLARE)
  if (t->accumulate) {
    ROWS_AVX2(LOAD_C)
  }
  for (int64_t k = 0; k < kc; ++k) {
    const float* bk = b + k * ldb;
    const __m256 b0 = nv == 2 ? _mm256_loadu_ps(bk) : _mm256_maskload_ps(bk, mask);
    const __m256 b1 = nv == 1 ? _mm256_setzero_ps()
                      : full  ? _mm256_loadu_ps(bk + 8)
                              : _mm256_maskload_ps(bk + 8, mask);
    ROWS_AVX2(FMA_ROW)
  }
  ROWS_AVX2(STORE_C)
#undef DECLARE
#undef LOAD_C
#undef FMA_ROW
#undef STORE_C
}

typedef void (*tile_avx2_fn)(const tile_args* t, __m256i mask);

#define TILE_AVX2(MR, S)                                                                \
  static SDNN_TARGET_AVX2 void tile_avx2_##MR##_##S(const tile_args* t, __m256i mask) { \
    tile_avx2(MR, S == 0 ? 1 : 2, S == 2, t, mask);                                     \
  }
/* clang-format off */
#define TILE_AVX2_ROWS(S) \
  TILE_AVX2(1, S) TILE_AVX2(2, S) TILE_AVX2(3, S) TILE_AVX2(4, S) TILE_AVX2(5, S) TILE_AVX2(6, S)
TILE_AVX2_ROWS(0)
TILE_AVX2_ROWS(1)
TILE_AVX2_ROWS(2)
#define TILE_AVX2_TABLE(S) \
  {tile_avx2_1_##S, tile_avx2_2_##S, tile_avx2_3_##S, tile_avx2_4_##S, tile_avx2_5_##S, \
   tile_avx2_6_##S}
static const tile_avx2_fn tiles_avx2[3][MR_AVX2] = {
    TILE_AVX2_TABLE(0), TILE_AVX2_TABLE(1), TILE_AVX2_TABLE(2)};
/* clang-format on */

static SDNN_TARGET_AVX2 void gemm_avx2(const float* a, int64_t lda, const float* b, int64_t ldb,
                                       float* c, int64_t ldc, int64_t rows, int64_t n, int64_t k) {
  tile_args t;
  t.lda = lda;
  t.ldb = ldb;
  t.ldc = ldc;
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    t.kc = min64(KC, k - k0);
    t.accumulate = k0 > 0;
    for (int64_t n0 = 0; n0 < n; n0 += NR_AVX2) {
      const int64_t cols = min64(NR_AVX2, n - n0);
      const int shape = cols == 16 ? 2 : cols > 8 ? 1 : 0;
      const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(cols - 8 * (shape > 0))),
                                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
      t.b = b + k0 * ldb + n0;
      for (int64_t i0 = 0; i0 < rows; i0 += MR_AVX2) {
        const int mr = (int)min64(MR_AVX2, rows - i0);
        t.a = a + i0 * lda + k0;
        t.c = c + i0 * ldc + n0;
        tiles_avx2[shape][mr - 1](&t, mask);
      }
    }
  }
}

/* ---- portable ----------------------------------------------------------------------------- */

static void gemm_scalar(const float* a, int64_t lda, const float* b, int64_t ldb, float* restrict c,
                        int64_t ldc, int64_t rows, int64_t n, int64_t k) {
  for (int64_t i = 0; i < rows; ++i) {
    float* restrict crow = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) crow[j] = 0.0f;
    for (int64_t kk = 0; kk < k; ++kk) {
      const float aik = a[i * lda + kk];
      const float* restrict brow = b + kk * ldb;
      for (int64_t j = 0; j < n; ++j) crow[j] += aik * brow[j];
    }
  }
}

/* ---- the step ----------------------------------------------------------------------------- */

static int64_t batch_items(const sdnn_matmul_params* p) {
  int64_t items = 1;
  for (uint32_t d = 0; d < p->batch_rank; ++d) items *= p->batch_dims[d];
  return items;
}

int64_t sdnn_matmul_units(const sdnn_matmul_params* p) {
  return batch_items(p) * ((p->m + SDNN_MATMUL_UNIT_ROWS - 1) / SDNN_MATMUL_UNIT_ROWS);
}

void sdnn_matmul_run(const sdnn_matmul_params* p, float* dst, const float* a, const float* b,
                     int64_t unit_begin, int64_t unit_end, uint32_t cpu) {
  if (p->b_const) b = p->b_const;
  const int64_t blocks = (p->m + SDNN_MATMUL_UNIT_ROWS - 1) / SDNN_MATMUL_UNIT_ROWS;
  int64_t u = unit_begin;
  while (u < unit_end) {
    const int64_t item = u / blocks;
    const int64_t run_end = min64(unit_end, (item + 1) * blocks);
    const int64_t row0 = (u - item * blocks) * SDNN_MATMUL_UNIT_ROWS;
    const int64_t row1 = min64(p->m, (run_end - item * blocks) * SDNN_MATMUL_UNIT_ROWS);
    int64_t ao = 0, bo = 0, co = 0, rest = item;
    for (int d = (int)p->batch_rank - 1; d >= 0; --d) {
      const int64_t i = rest % p->batch_dims[d];
      rest /= p->batch_dims[d];
      ao += i * p->a_batch_strides[d];
      bo += i * p->b_batch_strides[d];
      co += i * p->c_batch_strides[d];
    }
    const float* ai = a + ao + row0 * p->lda;
    float* ci = dst + co + row0 * p->ldc;
    if (cpu & SDNN_CPU_AVX512F)
      gemm_avx512(ai, p->lda, b + bo, p->ldb, ci, p->ldc, row1 - row0, p->n, p->k);
    else if (cpu & SDNN_CPU_AVX2)
      gemm_avx2(ai, p->lda, b + bo, p->ldb, ci, p->ldc, row1 - row0, p->n, p->k);
    else
      gemm_scalar(ai, p->lda, b + bo, p->ldb, ci, p->ldc, row1 - row0, p->n, p->k);
    u = run_end;
  }
}
