/* ops.c — pack / unpack between the ABI's row-major tensors and the blocked activation layout,
 * copy, ReLU, add and clip, for the plan executor.
 *
 * Baseline x86-64 only (SSE2): this code runs before anyone knows which ISA the model needs, and on
 * any machine the .so is loaded on. Packing rows is a transpose of each VL x F slab to F x VL
 * (and unpacking the reverse): it walks 16x16 blocks, each moved as 4x4 SSE register transposes.
 * Channel packs move VL-float runs. The elementwise loops are written to auto-vectorize at -O3. */
#include "ops.h"

#include <string.h>
#include <xmmintrin.h>

enum { TRANSPOSE_BLOCK = 16 };

static void transpose_4x4(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  __m128 r0 = _mm_loadu_ps(src);
  __m128 r1 = _mm_loadu_ps(src + ld_src);
  __m128 r2 = _mm_loadu_ps(src + 2 * ld_src);
  __m128 r3 = _mm_loadu_ps(src + 3 * ld_src);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + ld_dst, r1);
  _mm_storeu_ps(dst + 2 * ld_dst, r2);
  _mm_storeu_ps(dst + 3 * ld_dst, r3);
}

/* dst[j * ld_dst + i] = src[i * ld_src + j] for i in [i0, i1), j in [j0, j1). */
static void transpose_block(float* dst, int64_t ld_dst, const float* src, int64_t ld_src,
                            int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4)
      transpose_4x4(src + i * ld_src + j, ld_src, dst + j * ld_dst + i, ld_dst);
    for (; j < j1; ++j)
      for (int64_t r = 0; r < 4; ++r) dst[j * ld_dst + i + r] = src[(i + r) * ld_src + j];
  }
  for (; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) dst[j * ld_dst + i] = src[i * ld_src + j];
}

/* dst[j * ld_dst + i] = src[i * ld_src + j] for i < rows, j < cols; dst and src disjoint. */
static void transpose(float* dst, int64_t ld_dst, const float* src, int64_t ld_src, int64_t rows,
                      int64_t cols) {
  for (int64_t i0 = 0; i0 < rows; i0 += TRANSPOSE_BLOCK) {
    const int64_t i1 = i0 + TRANSPOSE_BLOCK < rows ? i0 + TRANSPOSE_BLOCK : rows;
    for (int64_t j0 = 0; j0 < cols; j0 += TRANSPOSE_BLOCK) {
      const int64_t j1 = j0 + TRANSPOSE_BLOCK < cols ? j0 + TRANSPOSE_BLOCK : cols;
      transpose_block(dst, ld_dst, src, ld_src, i0, i1, j0, j1);
    }
  }
}

/* Real (non-pad) columns of column block `block`. */
static int64_t block_columns(int64_t n, int64_t vl, int64_t block) {
  const int64_t rest = n - block * vl;
  return rest < vl ? rest : vl;
}

void sdnn_pack_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                    int64_t block_begin, int64_t block_end) {
  for (int64_t block = block_begin; block < block_end; ++block) {
    const int64_t columns = block_columns(n, vl, block);
    float* out = dst + block * f * vl;
    transpose(out, vl, src + block * vl * f, f, columns, f);
    if (columns < vl)
      for (int64_t feature = 0; feature < f; ++feature)
        memset(out + feature * vl + columns, 0, (size_t)(vl - columns) * sizeof(float));
  }
}

void sdnn_unpack_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                      int64_t block_begin, int64_t block_end) {
  for (int64_t block = block_begin; block < block_end; ++block)
    transpose(dst + block * vl * f, f, src + block * f * vl, vl, f, block_columns(n, vl, block));
}

void sdnn_pack_channels(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                        int64_t block_begin, int64_t block_end) {
  for (int64_t block = block_begin; block < block_end; ++block) {
    const int64_t columns = block_columns(n, vl, block);
    for (int64_t feature = 0; feature < f; ++feature) {
      float* out = dst + (block * f + feature) * vl;
      memcpy(out, src + feature * n + block * vl, (size_t)columns * sizeof(float));
      if (columns < vl) memset(out + columns, 0, (size_t)(vl - columns) * sizeof(float));
    }
  }
}

/* With many features, blocks are taken 8 at a time, feature by feature inside: each feature's
 * row then gets 8 consecutive vectors (whole cache lines in a row) before the next feature's
 * (cold buffers, alternating: 256 x 56 x 56 1.03-1.14 against 1.44-1.61 ms block by block,
 * 512 x 28 x 28 0.20 against 0.35 ms, 1024 x 14 x 14 0.11 against 0.16 ms). With fewer features a
 * block's rows are few and block by block stays. */
void sdnn_unpack_channels(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                          int64_t block_begin, int64_t block_end) {
  const int64_t step = f >= 128 ? 8 : 1;
  for (int64_t group = block_begin; group < block_end; group += step) {
    const int64_t group_end = group + step < block_end ? group + step : block_end;
    for (int64_t feature = 0; feature < f; ++feature)
      for (int64_t block = group; block < group_end; ++block)
        memcpy(dst + feature * n + block * vl, src + (block * f + feature) * vl,
               (size_t)block_columns(n, vl, block) * sizeof(float));
  }
}

void sdnn_unpack_channel_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                              int64_t feature_begin, int64_t feature_end) {
  const int64_t blocks = (n + vl - 1) / vl;
  for (int64_t feature = feature_begin; feature < feature_end; ++feature)
    for (int64_t block = 0; block < blocks; ++block)
      memcpy(dst + feature * n + block * vl, src + (block * f + feature) * vl,
             (size_t)block_columns(n, vl, block) * sizeof(float));
}

void sdnn_copy_range(float* dst, const float* src, int64_t begin, int64_t end) {
  if (dst == src || end <= begin) return;
  memcpy(dst + begin, src + begin, (size_t)(end - begin) * sizeof(float));
}

/* Each op has an in-place and a disjoint (restrict) loop, so both vectorize without run-time
 * alias checks. x < 0 ? 0 : x keeps NaN as NaN (as ONNX Relu does), unlike fmaxf. */
static void relu_in_place(float* x, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) x[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static void relu_disjoint(float* restrict dst, const float* restrict src, int64_t begin,
                          int64_t end) {
  for (int64_t i = begin; i < end; ++i) dst[i] = src[i] < 0.0f ? 0.0f : src[i];
}

void sdnn_relu_range(float* dst, const float* src, int64_t begin, int64_t end) {
  if (dst == src)
    relu_in_place(dst, begin, end);
  else
    relu_disjoint(dst, src, begin, end);
}

static void add_in_place(float* restrict acc, const float* other, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) acc[i] += other[i];
}

static void add_disjoint(float* restrict dst, const float* a, const float* b, int64_t begin,
                         int64_t end) {
  for (int64_t i = begin; i < end; ++i) dst[i] = a[i] + b[i];
}

void sdnn_add_range(float* dst, const float* a, const float* b, int64_t begin, int64_t end) {
  if (dst == a && dst != b)
    add_in_place(dst, b, begin, end);
  else if (dst == b && dst != a)
    add_in_place(dst, a, begin, end);
  else if (dst == a) /* dst = dst + dst */
    for (int64_t i = begin; i < end; ++i) dst[i] += dst[i];
  else
    add_disjoint(dst, a, b, begin, end);
}

/* x < lo ? lo : x, then > hi ? hi : x: maxps / minps operand orders that keep a NaN x. */
static void clip_in_place(float* x, float lo, float hi, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = x[i] < lo ? lo : x[i];
    x[i] = v > hi ? hi : v;
  }
}

static void clip_disjoint(float* restrict dst, const float* restrict src, float lo, float hi,
                          int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    const float v = src[i] < lo ? lo : src[i];
    dst[i] = v > hi ? hi : v;
  }
}

void sdnn_clip_range(float* dst, const float* src, float lo, float hi, int64_t begin, int64_t end) {
  if (dst == src)
    clip_in_place(dst, lo, hi, begin, end);
  else
    clip_disjoint(dst, src, lo, hi, begin, end);
}
