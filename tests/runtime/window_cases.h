/* window_cases.h — the windowed and clip steps under test (IM2COL, DEPTHWISE, MAXPOOL, AVGPOOL,
 * GLOBAL_AVGPOOL, CLIP): one table of shapes shared by the "window" plan file (model_window.c,
 * one step per case, input i -> output i), the ABI tests (test_window.cpp) and the direct tests of
 * the ops with forced thread splits (test_window_internals.cpp). Valid C and C++ (no designated
 * initializers).
 *
 * Edge shapes on purpose: 1x1 and 7x7 images, odd sizes, non-square kernels and strides,
 * asymmetric pads (pad_top / pad_left are in the params; the output size implies bottom / right),
 * windows wider than the image, dilation 2, strides 1, 2 and 3, kernels 1x1 to 7x7, channel
 * counts off multiples of 8 and 16, batch 2, and a few cases big enough for the executor to split
 * them over several threads. */
#ifndef SDNN_TEST_WINDOW_CASES_H
#define SDNN_TEST_WINDOW_CASES_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "sdnn_plan.h"
#include "test_model.h"

typedef struct {
  int64_t batch, c, h, w;
  int64_t kh, kw, sh, sw;
  int64_t pt, pl, pb, pr; /* pads: top, left, bottom, right */
  int64_t dh, dw;
} tw_geometry;

typedef struct {
  const char* name;
  uint32_t op; /* sdnn_step_op */
  tw_geometry g;
  int64_t vl;           /* IM2COL */
  uint32_t act;         /* DEPTHWISE */
  uint32_t include_pad; /* AVGPOOL count_include_pad */
  int bias;             /* DEPTHWISE: has a bias */
  float lo, hi;         /* CLIP */
  int in_place;         /* CLIP: COPY x -> y, then CLIP y -> y */
  float scale, shift;   /* input = scale * uniform[-1, 1] + shift */
} tw_case;

// clang-format off
/*   name                 op                         batch c  h   w  kh kw sh sw pt pl pb pr dh dw  vl act cip bias lo hi inpl scale shift */
static const tw_case tw_cases[] = {
    {"im2col_7x7_k3_vl16", SDNN_STEP_IM2COL, {1, 5, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_1x1_k1_vl8", SDNN_STEP_IM2COL, {2, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 8, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_1x1_k3_p1_vl16", SDNN_STEP_IM2COL, {1, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_odd_s2_asym_vl8", SDNN_STEP_IM2COL, {2, 13, 11, 9, 3, 3, 2, 2, 1, 0, 0, 1, 1, 1}, 8, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_k5_d2_asym_vl16", SDNN_STEP_IM2COL, {1, 6, 13, 15, 5, 5, 1, 1, 2, 2, 3, 1, 2, 2}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_k7_s2_p3_vl16", SDNN_STEP_IM2COL, {1, 3, 23, 17, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_k1_s3_vl8", SDNN_STEP_IM2COL, {1, 4, 10, 10, 1, 1, 3, 3, 0, 0, 0, 0, 1, 1}, 8, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_k3_s3_p2_vl16", SDNN_STEP_IM2COL, {2, 3, 8, 10, 3, 3, 3, 3, 2, 1, 1, 2, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_1x5_s1x2_vl16", SDNN_STEP_IM2COL, {1, 2, 5, 40, 1, 5, 1, 2, 0, 2, 0, 2, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_3x1_2x2img_p2_vl8", SDNN_STEP_IM2COL, {1, 2, 2, 2, 3, 1, 1, 1, 2, 0, 2, 0, 1, 1}, 8, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_w1_16runs_vl16", SDNN_STEP_IM2COL, {1, 3, 20, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_big_vl16", SDNN_STEP_IM2COL, {2, 17, 30, 30, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 16, 0, 0, 0, 0, 0, 0, 1, 0},
    {"im2col_big_s2_vl8", SDNN_STEP_IM2COL, {1, 16, 33, 33, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 8, 0, 0, 0, 0, 0, 0, 1, 0},

    {"dw3x3_s1_p1_relu", SDNN_STEP_DEPTHWISE, {2, 13, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_s2_p1_relu6", SDNN_STEP_DEPTHWISE, {1, 17, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU6, 0, 1, 0, 0, 0, 4, 0},
    {"dw3x3_s2_same_nobias", SDNN_STEP_DEPTHWISE, {2, 5, 8, 7, 3, 3, 2, 2, 0, 0, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 0, 0, 0, 0, 1, 0},
    {"dw3x3_1x1img_p1", SDNN_STEP_DEPTHWISE, {1, 3, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_p0_relu6", SDNN_STEP_DEPTHWISE, {1, 7, 6, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1}, 0, SDNN_ACT_RELU6, 0, 1, 0, 0, 0, 5, 1},
    {"dw3x3_p2_asym", SDNN_STEP_DEPTHWISE, {1, 3, 7, 7, 3, 3, 1, 1, 2, 0, 0, 2, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_w2_p1", SDNN_STEP_DEPTHWISE, {1, 2, 5, 2, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_s2x1", SDNN_STEP_DEPTHWISE, {1, 3, 9, 8, 3, 3, 2, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_s3_p1", SDNN_STEP_DEPTHWISE, {1, 3, 10, 10, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw5x5_s1_p2", SDNN_STEP_DEPTHWISE, {1, 9, 7, 7, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw5x5_s2_p2", SDNN_STEP_DEPTHWISE, {2, 8, 15, 13, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw7x7_d2_asym", SDNN_STEP_DEPTHWISE, {1, 4, 16, 13, 7, 7, 1, 1, 5, 6, 7, 6, 2, 2}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_d2_p2", SDNN_STEP_DEPTHWISE, {1, 5, 9, 10, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, 0, SDNN_ACT_RELU, 0, 0, 0, 0, 0, 1, 0},
    {"dw1x1_relu6", SDNN_STEP_DEPTHWISE, {1, 5, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, SDNN_ACT_RELU6, 0, 1, 0, 0, 0, 9, 2},
    {"dw3x3_s2_ow6", SDNN_STEP_DEPTHWISE, {1, 5, 9, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw3x3_chunks", SDNN_STEP_DEPTHWISE, {1, 1, 60, 200, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw5x5_s2_chunks", SDNN_STEP_DEPTHWISE, {1, 1, 80, 150, 5, 5, 2, 2, 2, 2, 2, 2, 1, 1}, 0, SDNN_ACT_RELU6, 0, 1, 0, 0, 0, 4, 0},
    {"dw3x3_wide_direct", SDNN_STEP_DEPTHWISE, {1, 2, 4, 2100, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw5x5_wide_direct", SDNN_STEP_DEPTHWISE, {1, 1, 6, 1000, 5, 5, 1, 2, 2, 1, 2, 3, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},
    {"dw_big_s1", SDNN_STEP_DEPTHWISE, {2, 24, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU, 0, 1, 0, 0, 0, 1, 0},
    {"dw_big_s2", SDNN_STEP_DEPTHWISE, {1, 40, 29, 29, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_RELU6, 0, 1, 0, 0, 0, 3, 0},
    {"dw_one_plane", SDNN_STEP_DEPTHWISE, {1, 1, 64, 48, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, SDNN_ACT_NONE, 0, 1, 0, 0, 0, 1, 0},

    {"max3x3_s2_p1", SDNN_STEP_MAXPOOL, {2, 5, 13, 13, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max2x2_s2", SDNN_STEP_MAXPOOL, {1, 3, 8, 9, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max3x3_s1_p1", SDNN_STEP_MAXPOOL, {1, 4, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max3x3_d2_p2", SDNN_STEP_MAXPOOL, {1, 3, 9, 9, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max7x7_global", SDNN_STEP_MAXPOOL, {2, 3, 7, 7, 7, 7, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max2x2_s3_asym", SDNN_STEP_MAXPOOL, {1, 2, 10, 8, 2, 2, 3, 3, 0, 1, 1, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max3x3_1x1img_p1", SDNN_STEP_MAXPOOL, {1, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max5x3_s2x1", SDNN_STEP_MAXPOOL, {1, 3, 11, 6, 5, 3, 2, 1, 2, 1, 2, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"max_big", SDNN_STEP_MAXPOOL, {1, 16, 56, 56, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    /* 3-wide stride-2 pools (the AVX-512 path with SDNN_CPU_AVX512F): no pads and a 40-wide row
     * (two 16-output vectors and a partial one), a ResNet stem's 112x112, a left pad of 2 with
     * rows of 2 taps at stride 1, a row narrower than one vector. */
    {"max3x3_s2_p0_w40", SDNN_STEP_MAXPOOL, {1, 3, 9, 40, 3, 3, 2, 2, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max3x3_s2_stem112", SDNN_STEP_MAXPOOL, {1, 2, 112, 112, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max2x3_s1x2_p2_asym", SDNN_STEP_MAXPOOL, {1, 2, 7, 37, 2, 3, 1, 2, 2, 2, 0, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},
    {"max3x3_s2_w5", SDNN_STEP_MAXPOOL, {2, 3, 5, 5, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, -1.5f},

    {"avg3x3_s1_p1", SDNN_STEP_AVGPOOL, {1, 4, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg3x3_s1_p1_incl", SDNN_STEP_AVGPOOL, {1, 4, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 1, 0, 0, 0, 0, 1, 0},
    {"avg2x2_s2", SDNN_STEP_AVGPOOL, {2, 3, 9, 11, 2, 2, 2, 2, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg5x5_s3_asym", SDNN_STEP_AVGPOOL, {1, 2, 13, 11, 5, 5, 3, 3, 2, 1, 2, 2, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg5x5_s3_asym_incl", SDNN_STEP_AVGPOOL, {1, 2, 13, 11, 5, 5, 3, 3, 2, 1, 2, 2, 1, 1}, 0, 0, 1, 0, 0, 0, 0, 1, 0},
    {"avg3x3_d2_p2", SDNN_STEP_AVGPOOL, {1, 2, 8, 8, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg7x7_global", SDNN_STEP_AVGPOOL, {1, 5, 7, 7, 7, 7, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg3x3_1x1img_p1", SDNN_STEP_AVGPOOL, {2, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"avg3x3_1x1img_p1_incl", SDNN_STEP_AVGPOOL, {2, 2, 1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 1, 0, 0, 0, 0, 1, 0},
    {"avg_big", SDNN_STEP_AVGPOOL, {2, 12, 28, 28, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},

    {"gap_7x7", SDNN_STEP_GLOBAL_AVGPOOL, {2, 19, 7, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0.25f},
    {"gap_1x1", SDNN_STEP_GLOBAL_AVGPOOL, {1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"gap_13x17", SDNN_STEP_GLOBAL_AVGPOOL, {2, 3, 13, 17, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},
    {"gap_big", SDNN_STEP_GLOBAL_AVGPOOL, {2, 64, 14, 14, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0, 0, 0, 1, 0},

    /* CLIP: batch * c * h * w floats */
    {"clip_small", SDNN_STEP_CLIP, {1, 1, 1, 37, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, -0.5f, 0.25f, 0, 1, 0},
    {"clip_big_in_place", SDNN_STEP_CLIP, {1, 1, 1, 100003, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0.0f, 6.0f, 1, 8, 0},
    {"clip_big", SDNN_STEP_CLIP, {1, 1, 1, 65536, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, -0.75f, 0.5f, 0, 1, 0},
    {"clip_lo_above_hi", SDNN_STEP_CLIP, {1, 1, 1, 19, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1}, 0, 0, 0, 0, 0.5f, -0.5f, 0, 1, 0},
};
// clang-format on

#define TW_NUM_CASES ((int)(sizeof tw_cases / sizeof tw_cases[0]))
#define TW_NUM_IN_PLACE 1 /* cases with in_place set: each adds a COPY step */

static inline int64_t tw_out_h(const tw_case* k) {
  const tw_geometry* g = &k->g;
  return (g->h + g->pt + g->pb - g->dh * (g->kh - 1) - 1) / g->sh + 1;
}

static inline int64_t tw_out_w(const tw_case* k) {
  const tw_geometry* g = &k->g;
  return (g->w + g->pl + g->pr - g->dw * (g->kw - 1) - 1) / g->sw + 1;
}

static inline int64_t tw_in_floats(const tw_case* k) {
  return k->g.batch * k->g.c * k->g.h * k->g.w;
}

static inline int64_t tw_out_floats(const tw_case* k) {
  const tw_geometry* g = &k->g;
  const int64_t columns = tw_out_h(k) * tw_out_w(k);
  switch (k->op) {
    case SDNN_STEP_IM2COL:
      return g->batch * TM_PADDED(columns, k->vl) * g->c * g->kh * g->kw;
    case SDNN_STEP_GLOBAL_AVGPOOL:
      return g->batch * g->c;
    case SDNN_STEP_CLIP:
      return tw_in_floats(k);
    default:
      return g->batch * g->c * columns;
  }
}

static inline int64_t tw_weight_floats(const tw_case* k) {
  return k->op == SDNN_STEP_DEPTHWISE ? k->g.c * k->g.kh * k->g.kw : 0;
}

/* Depthwise weight i ([C][KH][KW]) and bias of case `index`. */
static inline float tw_weight(int index, int64_t i) {
  return tm_uniform(tm_hash(7000u + (uint32_t)index, (uint32_t)i));
}

static inline float tw_bias(int index, int64_t channel) {
  return tm_uniform(tm_hash(9000u + (uint32_t)index, (uint32_t)channel));
}

static inline float tw_input(const tw_case* k, uint32_t variant, int64_t i) {
  return k->scale * tm_input(variant, i) + k->shift;
}

/* The step's parameters; `weights` / `bias` are the case's arrays (DEPTHWISE) or NULL. */
static inline sdnn_window_params tw_params(const tw_case* k, const float* weights,
                                           const float* bias) {
  sdnn_window_params p;
  memset(&p, 0, sizeof p); /* fields the case does not set (by_blocks, residual, ...) are 0 */
  p.batch = k->g.batch;
  p.channels = k->g.c;
  p.in_h = k->g.h;
  p.in_w = k->g.w;
  p.out_h = tw_out_h(k);
  p.out_w = tw_out_w(k);
  p.kernel_h = k->g.kh;
  p.kernel_w = k->g.kw;
  p.stride_h = k->g.sh;
  p.stride_w = k->g.sw;
  p.pad_top = k->g.pt;
  p.pad_left = k->g.pl;
  p.dilation_h = k->g.dh;
  p.dilation_w = k->g.dw;
  p.vl = k->vl;
  p.weights = weights;
  p.bias = k->bias ? bias : NULL;
  p.act = k->act;
  p.count_include_pad = k->include_pad;
  return p;
}

#endif /* SDNN_TEST_WINDOW_CASES_H */
