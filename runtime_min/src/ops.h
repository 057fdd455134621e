/* ops.h — the runtime's own data-movement and elementwise loops (non-kernel plan steps).
 * Each works on a sub-range so the executor can split a step over threads. */
#ifndef SDNN_RUNTIME_OPS_H
#define SDNN_RUNTIME_OPS_H

#include <stdint.h>

/* Rows per unit of work of sdnn_transpose_rows; also the transpose's cache block edge. */
enum { SDNN_TRANSPOSE_BLOCK = 16 };

/* dst[j][i] = src[i][j] for i in [row_begin, row_end), j in [0, cols); src is rows x cols, dst is
 * cols x rows, both dense. dst and src must not overlap. */
void sdnn_transpose_rows(float* dst, const float* src, int64_t rows, int64_t cols,
                         int64_t row_begin, int64_t row_end);

/* Elementwise over [begin, end). dst may equal a source exactly, but must not partly overlap it. */
void sdnn_copy_range(float* dst, const float* src, int64_t begin, int64_t end);
void sdnn_relu_range(float* dst, const float* src, int64_t begin, int64_t end);
void sdnn_add_range(float* dst, const float* a, const float* b, int64_t begin, int64_t end);

#endif /* SDNN_RUNTIME_OPS_H */
