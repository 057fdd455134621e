/* ops.c — transpose, copy, ReLU and add for the plan executor.
 *
 * Baseline x86-64 only (SSE2): this code runs before anyone knows which ISA the model needs, and on
 * any machine the .so is loaded on. The elementwise loops are written to auto-vectorize at -O3; the
 * transpose walks 16x16 blocks (one cache line per block row at 64-byte aligned bases), each moved
 * as 4x4 SSE register transposes. */
#include "ops.h"

#include <string.h>
#include <xmmintrin.h>

static void transpose_4x4(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m128 r0 = _mm_loadu_ps(src);
  __m128 r1 = _mm_loadu_ps(src + src_stride);
  __m128 r2 = _mm_loadu_ps(src + 2 * src_stride);
  __m128 r3 = _mm_loadu_ps(src + 3 * src_stride);
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(dst, r0);
  _mm_storeu_ps(dst + dst_stride, r1);
  _mm_storeu_ps(dst + 2 * dst_stride, r2);
  _mm_storeu_ps(dst + 3 * dst_stride, r3);
}

/* One block: rows [i0, i1) x cols [j0, j1), at most SDNN_TRANSPOSE_BLOCK on each side. */
static void transpose_block(float* dst, const float* src, int64_t rows, int64_t cols, int64_t i0,
                            int64_t i1, int64_t j0, int64_t j1) {
  int64_t i = i0;
  for (; i + 4 <= i1; i += 4) {
    int64_t j = j0;
    for (; j + 4 <= j1; j += 4) transpose_4x4(src + i * cols + j, cols, dst + j * rows + i, rows);
    for (; j < j1; ++j)
      for (int64_t r = 0; r < 4; ++r) dst[j * rows + i + r] = src[(i + r) * cols + j];
  }
  for (; i < i1; ++i)
    for (int64_t j = j0; j < j1; ++j) dst[j * rows + i] = src[i * cols + j];
}

void sdnn_transpose_rows(float* dst, const float* src, int64_t rows, int64_t cols,
                         int64_t row_begin, int64_t row_end) {
  for (int64_t i0 = row_begin; i0 < row_end; i0 += SDNN_TRANSPOSE_BLOCK) {
    const int64_t i1 = i0 + SDNN_TRANSPOSE_BLOCK < row_end ? i0 + SDNN_TRANSPOSE_BLOCK : row_end;
    for (int64_t j0 = 0; j0 < cols; j0 += SDNN_TRANSPOSE_BLOCK) {
      const int64_t j1 = j0 + SDNN_TRANSPOSE_BLOCK < cols ? j0 + SDNN_TRANSPOSE_BLOCK : cols;
      transpose_block(dst, src, rows, cols, i0, i1, j0, j1);
    }
  }
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
