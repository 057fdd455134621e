/* ops.h — the runtime's own data-movement and elementwise loops (non-kernel plan steps).
 * Each works on a sub-range so the executor can split a step over threads.
 *
 * Blocked layout (sdnn_plan.h), per batch item: [ceil(N/VL)][F][VL], column n of feature f at
 * (n / VL) * F * VL + f * VL + n % VL; pad columns (n >= N in the last block) are written as 0 by
 * the packs and ignored by the unpacks. The pack / unpack functions take one batch item and a
 * range of column blocks [block_begin, block_end). */
#ifndef SDNN_RUNTIME_OPS_H
#define SDNN_RUNTIME_OPS_H

#include <stdint.h>

/* Row-major [N][F] (tokens x features) <-> blocked. */
void sdnn_pack_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                    int64_t block_begin, int64_t block_end);
void sdnn_unpack_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                      int64_t block_begin, int64_t block_end);

/* Channel-major [F][N] (NCHW: F = C, N = H*W) <-> blocked. */
void sdnn_pack_channels(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                        int64_t block_begin, int64_t block_end);
void sdnn_unpack_channels(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                          int64_t block_begin, int64_t block_end);
/* The same by features: rows [feature_begin, feature_end) of [F][N], every block. */
void sdnn_unpack_channel_rows(float* dst, const float* src, int64_t n, int64_t f, int64_t vl,
                              int64_t feature_begin, int64_t feature_end);

/* Elementwise over [begin, end). dst may equal a source exactly, but must not partly overlap it. */
void sdnn_copy_range(float* dst, const float* src, int64_t begin, int64_t end);
void sdnn_relu_range(float* dst, const float* src, int64_t begin, int64_t end);
void sdnn_add_range(float* dst, const float* a, const float* b, int64_t begin, int64_t end);
/* dst = min(max(src, lo), hi); NaN stays NaN; lo > hi gives hi. */
void sdnn_clip_range(float* dst, const float* src, float lo, float hi, int64_t begin, int64_t end);

#endif /* SDNN_RUNTIME_OPS_H */
