/* depthwise_simd.h — one channel of a depthwise convolution with AVX-512 or AVX2 code, for the
 * DEPTHWISE_BLOCKED step (window.h).
 *
 * Row streaming, everything in L1: the kernel_h input rows an output row needs sit zero-padded in
 * a ring of slots, each split into stride_w column phases (phase f holds padded columns f,
 * f + stride_w, ...), so every tap of every output is an in-bounds, unit-stride vector load:
 * output (oy, ox..ox+W) of tap (ky, kx) reads phase kx % stride_w of padded row
 * oy * stride_h + ky at column ox + kx / stride_w. A row enters the ring once, copied straight
 * from the blocked input (runs of up to VL floats; stride 2 deinterleaved with vector permutes);
 * each output row is computed into a row buffer (bias + taps in (ky, kx) order with fused
 * multiply-adds, four vectors at a time, then min(max(., lo), hi), NaN staying NaN) and copied
 * straight into the blocked output. */
#ifndef SDNN_RUNTIME_DEPTHWISE_SIMD_H
#define SDNN_RUNTIME_DEPTHWISE_SIMD_H

#include <stdint.h>

#include "sdnn_plan.h"

/* n floats of one channel from position pos of a blocked [blocks][C][VL] tensor (channel base
 * src = tensor + c * VL, c_vl = C * VL) into d, or from d into it (to_blocked). */
void sdnn_blocked_copy(float* d, float* src, int64_t pos, int64_t n, int64_t c_vl, int64_t vl,
                       int to_blocked);

/* Output rows [oy0, oy1) of channel `channel` of one batch item: in_item / out_item are the
 * item's blocked [blocks][C][VL] input and output (VL = p->vl); only those rows' positions of the
 * output are written. Returns 1, or 0 (having done nothing) when the geometry (dilation != 1,
 * stride_w > 2, more than 64 taps, out_w < 24) or the CPU bits rule the SIMD code out. `scratch`
 * holds sdnn_depthwise_blocked_scratch_floats(p) floats. */
int sdnn_depthwise_rows_simd(const sdnn_window_params* p, const float* in_item, float* out_item,
                             float* scratch, int64_t channel, int64_t oy0, int64_t oy1, float lo,
                             float hi, uint32_t cpu);

/* DEPTHWISE_BLOCKED with conv->by_blocks (AVX-512, VL = 16, stride 1, dilation 1, output size =
 * input size, at most 49 taps): output column blocks [block_begin, block_end) of one batch item,
 * every channel, pad columns written 0. See depthwise_simd.c. */
void sdnn_depthwise_blocks_avx512(const sdnn_window_params* p, const float* in_item, float* out_item,
                                  int64_t block_begin, int64_t block_end, float lo, float hi);

/* DEPTHWISE_BLOCKED with conv->by_blocks == 2 (AVX-512, VL = 16, any stride / dilation / size, at
 * most 49 taps, input offsets below 2^31 floats): the same, each tap's inputs gathered. */
void sdnn_depthwise_blocks_gather_avx512(const sdnn_window_params* p, const float* in_item,
                                         float* out_item, int64_t block_begin, int64_t block_end,
                                         float lo, float hi);

/* DEPTHWISE_BLOCKED with conv->by_blocks == 3 (AVX2, VL = 8, any stride / dilation / pads, at
 * most 49 taps, input rows in_row_stride positions apart, or in_w): output column blocks
 * [block_begin, block_end) of one batch item, every channel, pad positions written 0, tile by
 * tile (rows of output), each tile's channel groups of 8 in turn, through channel-transposed tiles
 * in `scratch` (sdnn_depthwise_blocked_scratch_floats(p) floats). See depthwise_simd.c. */
void sdnn_depthwise_tiles_avx2(const sdnn_window_params* p, const float* in_item, float* out_item, float* scratch,
                               int64_t block_begin, int64_t block_end, float lo, float hi);

/* CROP with conv->by_blocks (AVX-512, VL = 16): output column blocks [block_begin, block_end) of
 * one batch item, every channel, each lane gathered from the grid, plus res_item's element when
 * res_item is not NULL (laid out as out_item), clamped to [lo, hi] (pad lanes written 0). With
 * conv->dst_nchw out_item is NCHW [C][out_h * out_w] and only the real lanes are stored. */
void sdnn_crop_blocks_avx512(const sdnn_window_params* p, const float* in_item, const float* res_item,
                             float* out_item, int64_t block_begin, int64_t block_end, float lo, float hi);

/* CROP with conv->by_blocks and VL = 8 (AVX2): the same with 8-lane blocks. */
void sdnn_crop_blocks_avx2(const sdnn_window_params* p, const float* in_item, const float* res_item, float* out_item,
                           int64_t block_begin, int64_t block_end, float lo, float hi);

/* PAD_PLANES with conv->by_blocks (AVX-512, VL = 16, stride 1, ChannelBlocked input of row stride
 * in_row_stride or in_w): input column blocks [block_begin, block_end) of one batch item, every
 * channel: each block row's image positions stored into the channel's plane under a lane mask (one
 * masked store per image row the block touches). The planes' pads are not written here. */
void sdnn_pad_blocks_avx512(const sdnn_window_params* p, const float* in_item, float* out_item, int64_t block_begin,
                            int64_t block_end);

/* PAD_PLANES with conv->by_blocks and VL = 8 (AVX2, stride 1 or 2): the same with 8-lane blocks. */
void sdnn_pad_blocks_avx2(const sdnn_window_params* p, const float* in_item, float* out_item, int64_t block_begin,
                          int64_t block_end);

/* MAXPOOL rows [oy0, oy1) of one NCHW plane with AVX-512, for kernel_w 3, stride_w 2,
 * dilation_w 1 (any kernel_h, stride_h, dilation_h, pads): a ResNet stem's 3x3 stride-2 pool. */
void sdnn_maxpool_rows_s2_avx512(const sdnn_window_params* p, const float* in, float* out, int64_t oy0,
                                 int64_t oy1);

/* The same pool with AVX2 (8 outputs a vector). */
void sdnn_maxpool_rows_s2_avx2(const sdnn_window_params* p, const float* in, float* out, int64_t oy0, int64_t oy1);

/* d[x] = row[2 x] for x below n with AVX-512 or AVX2 permutes, as `cpu` (SDNN_CPU_* bits) allows,
 * reading at most `readable` floats of row: returns how many it did (a multiple of the vector
 * width; 0 without either ISA), the caller does the rest. */
int64_t sdnn_even_floats(float* d, const float* row, int64_t n, int64_t readable, uint32_t cpu);

/* The same pool reading channel `channel` of one batch item's ChannelBlocked input in_item (VL
 * 16, rows p->in_row_stride positions apart, or p->in_w), writing that channel's NCHW plane out. */
void sdnn_maxpool_blocked_rows_s2_avx512(const sdnn_window_params* p, const float* in_item, float* out,
                                         int64_t channel, int64_t oy0, int64_t oy1);

/* The same with AVX2 on a ChannelBlocked input of VL 8. */
void sdnn_maxpool_blocked_rows_s2_avx2(const sdnn_window_params* p, const float* in_item, float* out, int64_t channel,
                                       int64_t oy0, int64_t oy1);

#endif /* SDNN_RUNTIME_DEPTHWISE_SIMD_H */
