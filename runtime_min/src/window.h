/* window.h — the windowed plan steps on NCHW activations (sdnn_plan.h, sdnn_window_params):
 * IM2COL, DEPTHWISE, MAXPOOL, AVGPOOL and GLOBAL_AVGPOOL.
 *
 * The executor splits a windowed step into equal-cost units and gives each thread a contiguous
 * range of them:
 *   IM2COL          (batch item, column block, channel), in that order: one unit writes the
 *                   KH*KW rows of one channel in one VL-column block, KH*KW*VL floats, and a
 *                   thread's range is one contiguous slab of the blocked output;
 *   DEPTHWISE, MAXPOOL, AVGPOOL
 *                   (batch item, channel, output row): one unit is one output row, Wo*KH*KW taps;
 *   GLOBAL_AVGPOOL  (batch item, channel): one unit is one H*W plane.
 * Units never share output memory, so threads need no synchronization within a step.
 *
 * The parameters must have passed the plan check (all sizes, strides, dilations and kernel sizes
 * in [1, 2^31), pads in [0, 2^31), operands disjoint). Input reads never leave the input tensor,
 * whatever out_h / out_w say; a window entirely in the padding gives -inf (MAXPOOL), 0 (AVGPOOL)
 * or act(bias) (DEPTHWISE). DEPTHWISE uses 16 KiB of the calling thread's stack. */
#ifndef SDNN_RUNTIME_WINDOW_H
#define SDNN_RUNTIME_WINDOW_H

#include <stdint.h>

#include "sdnn_plan.h"

/* DEPTHWISE_BLOCKED: with conv->by_blocks (AVX-512 models) units are (batch item, output column
 * block), every channel inside (depthwise_simd.h: shifted windows for same-size stride 1,
 * gathered windows otherwise). Without, units are (batch item, channel): each channel's rows go
 * through the row-streamed SIMD code (depthwise_simd.h: wide rows, dilation 1, stride_w 1 or 2, when `cpu` has
 * AVX2 or AVX-512), or are copied out of the blocked input into a plane in scratch, computed by
 * the DEPTHWISE row code and copied back. Either way no pack / unpack pass over the whole tensor is
 * needed around a depthwise conv between two conv1x1 kernels. */
void sdnn_depthwise_blocked_run(const sdnn_step* step, const float* src, float* dst, float* scratch,
                                int64_t unit_begin, int64_t unit_end, uint32_t cpu);

/* PAD_PLANES and CROP (sdnn_plan.h): from / to the blocked layout the units are rows with all
 * their channels, so the blocked side is walked block by block: PAD_PLANES (batch item, row phase,
 * plane row), CROP (batch item, row; with conv->by_blocks (batch item, output column block)).
 * PAD_PLANES from NCHW: (batch item, plane row), or (batch item, channel) for planes narrower
 * than 32 floats. `scratch` holds sdnn_window_scratch_floats(conv)
 * floats; cpu: the plan's required_cpu (stride-2 phases are split with AVX2 / AVX-512 permutes). */
void sdnn_planes_run(const sdnn_step* step, const float* src, const float* res, float* dst, float* scratch,
                     int64_t unit_begin, int64_t unit_end, uint32_t cpu);

/* ZERO_BORDERS: units (batch item, plane row), every channel, so a thread clears the pads next to
 * the rows a column split of the kernel before it wrote; planes narrower than 32 floats by
 * (batch item, channel). */
void sdnn_zero_borders_run(const sdnn_step* step, float* dst, int64_t unit_begin, int64_t unit_end);

/* Units of the step's work split (>= 1 for a valid step). */
int64_t sdnn_window_units(const sdnn_step* step);

/* Cost of the whole step in "elementwise float operations" (taps, or floats moved), to decide how
 * many threads are worth waking. */
int64_t sdnn_window_work(const sdnn_step* step);

/* Runs units [unit_begin, unit_end) of a windowed step: src is the step's src0, dst its dst;
 * cpu: the plan's required_cpu (SDNN_CPU_AVX512F lets a 3-wide, stride-2 max pool run AVX-512
 * code). */
void sdnn_window_run(const sdnn_step* step, const float* src, float* dst, int64_t unit_begin,
                     int64_t unit_end, uint32_t cpu);

#endif /* SDNN_RUNTIME_WINDOW_H */
