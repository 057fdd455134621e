/* window.c — the windowed plan steps on NCHW activations: im2col into the blocked column layout,
 * depthwise convolution, max / average pooling, global average pooling (window.h).
 *
 * Baseline x86-64 (SSE2), written so gcc -O3 vectorizes the inner loops (and built with
 * -fno-tree-loop-distribute-patterns: short row copies must not become memcpy / memset calls).
 * No inner loop tests bounds per element: for a tap (ky, kx) the output columns whose input
 * column is inside the image form one interval, computed up front (tap_range), or the input is
 * first copied zero-padded so that every tap is inside.
 *
 *   DEPTHWISE  Padded path (whenever the rows fit a 16 KiB stack buffer, except 3x3 stride 2 with
 *              ow >= 7): the input rows of a chunk of output rows are copied zero-padded, then
 *              3x3 and 5x5 (dilation 1, stride_w 1 or 2) run one pass per output row with the
 *              weights in registers, whole 4-float vectors only (round_up(ow, 4) outputs, the
 *              extra ones spilling into the next row, which is written afterwards; the range's
 *              last row goes through a scratch); other kernels add one tap at a time (axpy).
 *              Direct path (wider rows, and 3x3 stride 2 where it measured faster): 3x3 rows whose
 *              three input rows are inside run the same one-pass kernel on their interior columns
 *              and a per-point loop on the few border ones; other rows add each tap over its
 *              column interval. Every output sums bias + taps in (ky, kx) order, in float, then the
 *              activation (min / max that keep NaN).
 *   MAXPOOL    -inf, then max over each tap's column interval (a NaN input never wins, as in ONNX
 *              Runtime); AVGPOOL the sum, then one division per output by the taps inside the
 *              image (the row's count times the column's; interior columns have all KW) or by
 *              KH*KW with count_include_pad.
 *   IM2COL     per column block, the VL columns are cut into runs within one output row; run by
 *              run (so the copy length, and its branches, stay fixed), each (channel, ky, kx) row
 *              gets the run's input taps by straight-line SSE moves (stride 1), even-lane
 *              shuffles (stride 2) or a strided loop, with zeros for taps outside the image; the
 *              pad columns of the last block are zeroed.
 *   GLOBAL_AVGPOOL  16 float partial sums per block of 1024, blocks added in double. */
#include "window.h"

#include "depthwise_simd.h"

#include <math.h>
#include <string.h>
#include <xmmintrin.h>

typedef struct {
  int64_t batch, c, h, w, oh, ow, kh, kw, sh, sw, pt, pl, dh, dw;
} geometry;

enum {
  MAX_VL = 16,
  DW_BUFFER_FLOATS = 4096, /* 16 KiB of stack for zero-padded depthwise input rows */
};

static geometry geometry_of(const sdnn_window_params* p) {
  const geometry g = {p->batch,   p->channels, p->in_h,       p->in_w,      p->out_h,
                      p->out_w,   p->kernel_h, p->kernel_w,   p->stride_h,  p->stride_w,
                      p->pad_top, p->pad_left, p->dilation_h, p->dilation_w};
  return g;
}

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* a / s for a >= 0 and s >= 1, without a division for the common strides. */
static inline int64_t div_pos(int64_t a, int64_t s) { return s == 1 ? a : s == 2 ? a >> 1 : a / s; }

/* [*lo, *hi): the i in [0, n) with 0 <= off + i * stride < size (an interval, maybe empty). */
static inline void tap_range(int64_t off, int64_t stride, int64_t size, int64_t n, int64_t* lo,
                             int64_t* hi) {
  int64_t l = 0, h = 0;
  if (off < size) { /* then size - 1 - off >= 0 */
    l = off >= 0 ? 0 : div_pos(-off + stride - 1, stride);
    h = min64(div_pos(size - 1 - off, stride) + 1, n);
    if (l > h) l = h;
  }
  *lo = l;
  *hi = h;
}

/* Keeps NaN as NaN (comparisons with NaN are false), like min(max(x, lo), hi) in ONNX. */
static inline float clampf(float x, float lo, float hi) {
  x = x < lo ? lo : x;
  return x > hi ? hi : x;
}

static void act_bounds(uint32_t act, float* lo, float* hi) {
  *lo = act == SDNN_ACT_NONE ? -INFINITY : 0.0f;
  *hi = act == SDNN_ACT_RELU6 ? 6.0f : INFINITY;
}

static void clamp_row(float* x, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) x[i] = clampf(x[i], lo, hi);
}

/* ---- depthwise ------------------------------------------------------------------------------ */

/* y[i] += a * x[i * stride], i < n. */
static void axpy(float* restrict y, const float* restrict x, float a, int64_t n, int64_t stride) {
  if (stride == 1)
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
  else if (stride == 2)
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[2 * i];
  else
    for (int64_t i = 0; i < n; ++i) y[i] += a * x[i * stride];
}

/* One output of one channel, any geometry, before the activation. */
static float dw_point(const geometry* g, const float* plane, const float* wts, float bias,
                      int64_t oy, int64_t ox) {
  float s = bias;
  for (int64_t ky = 0; ky < g->kh; ++ky) {
    const int64_t iy = oy * g->sh - g->pt + ky * g->dh;
    if (iy < 0 || iy >= g->h) continue;
    for (int64_t kx = 0; kx < g->kw; ++kx) {
      const int64_t ix = ox * g->sw - g->pl + kx * g->dw;
      if (ix >= 0 && ix < g->w) s += wts[ky * g->kw + kx] * plane[iy * g->w + ix];
    }
  }
  return s;
}

/* Output row oy of one channel, any geometry: bias, then one axpy per tap over its interval. */
static void dw_row_generic(float* restrict out, const geometry* g, const float* restrict plane,
                           const float* wts, float bias, float lo, float hi, int64_t oy) {
  for (int64_t ox = 0; ox < g->ow; ++ox) out[ox] = bias;
  for (int64_t ky = 0; ky < g->kh; ++ky) {
    const int64_t iy = oy * g->sh - g->pt + ky * g->dh;
    if (iy < 0 || iy >= g->h) continue;
    const float* row = plane + iy * g->w;
    for (int64_t kx = 0; kx < g->kw; ++kx) {
      const int64_t off = kx * g->dw - g->pl;
      int64_t a, b;
      tap_range(off, g->sw, g->w, g->ow, &a, &b);
      if (a < b) axpy(out + a, row + off + a * g->sw, wts[ky * g->kw + kx], b - a, g->sw);
    }
  }
  clamp_row(out, g->ow, lo, hi);
}

/* Rows of a K x K, dilation 1, stride S depthwise kernel in one pass: output row r (at
 * o + r * ldo) from input rows at base + r * step (row stride ld),
 * o[i] = act(bias + sum k[ky][kx] * base[ky * ld + S * i + kx]), the K*K weights loaded once.
 * Inlined with constant K and S, so gcc unrolls the taps and vectorizes over i. */
static inline __attribute__((always_inline)) void dw_kxk(float* restrict o, int64_t ldo,
                                                         const float* restrict base, int64_t ld,
                                                         int64_t step, const float* restrict k,
                                                         float bias, float lo, float hi,
                                                         int64_t rows, int64_t n, const int K,
                                                         const int S) {
  for (int64_t r = 0; r < rows; ++r) {
    float* restrict out = o + r * ldo;
    const float* restrict in = base + r * step;
    for (int64_t i = 0; i < n; ++i) {
      float s = bias;
      for (int ky = 0; ky < K; ++ky)
        for (int kx = 0; kx < K; ++kx) s += k[ky * K + kx] * in[ky * ld + S * i + kx];
      out[i] = clampf(s, lo, hi);
    }
  }
}

typedef void (*dw_rows_fn)(float* restrict o, int64_t ldo, const float* restrict base, int64_t ld,
                           int64_t step, const float* restrict k, float bias, float lo, float hi,
                           int64_t rows, int64_t n);

/* Cloned per ISA (ifunc-dispatched by the loader on the CPU it runs on): the one-pass kernels are
 * the depthwise hot loop, and gcc vectorizes them 4, 8 or 16 floats wide. */
#define DW_KXK(K, S)                                                                            \
  __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))             \
  static void dw##K##x##K##_s##S(float* restrict o, int64_t ldo, const float* restrict base,    \
                                 int64_t ld, int64_t step, const float* restrict k, float bias, \
                                 float lo, float hi, int64_t rows, int64_t n) {                 \
    dw_kxk(o, ldo, base, ld, step, k, bias, lo, hi, rows, n, K, S);                             \
  }
DW_KXK(3, 1)
DW_KXK(3, 2)
DW_KXK(5, 1)
DW_KXK(5, 2)
#undef DW_KXK

/* The one-pass row kernel for the geometry, or NULL. */
static dw_rows_fn dw_one_pass(const geometry* g) {
  if (g->dh != 1 || g->dw != 1 || g->kh != g->kw || g->sw > 2) return NULL;
  if (g->kh == 3) return g->sw == 1 ? dw3x3_s1 : dw3x3_s2;
  if (g->kh == 5) return g->sw == 1 ? dw5x5_s1 : dw5x5_s2;
  return NULL;
}

/* Output row oy, in place (direct path), of a 3x3 / dilation 1 / stride_w 1 or 2 channel whose
 * three input rows are all in the image; [xa, xb) are the columns whose three input columns are
 * too: one pass there (`one_pass`), the per-point path on the border columns. */
static void dw3x3_row(float* restrict out, const geometry* g, const float* restrict plane,
                      dw_rows_fn one_pass, const float* wts, float bias, float lo, float hi,
                      int64_t oy, int64_t xa, int64_t xb) {
  for (int64_t ox = 0; ox < xa; ++ox)
    out[ox] = clampf(dw_point(g, plane, wts, bias, oy, ox), lo, hi);
  if (xa < xb)
    one_pass(out + xa, 0, plane + (oy * g->sh - g->pt) * g->w + xa * g->sw - g->pl, g->w, 0, wts,
             bias, lo, hi, 1, xb - xa);
  for (int64_t ox = xb; ox < g->ow; ++ox)
    out[ox] = clampf(dw_point(g, plane, wts, bias, oy, ox), lo, hi);
}

/* Rows [iy_first, iy_first + rows) of a plane, zero-padded, into buf (row stride wp): padded
 * column q holds input column q - pad_left, or 0 outside the image. */
static void pad_rows(float* restrict buf, const geometry* g, const float* restrict plane,
                     int64_t iy_first, int64_t rows, int64_t wp) {
  const int64_t qa = min64(g->pl, wp), qb = min64(wp, g->w + g->pl); /* inside: [qa, qb) */
  for (int64_t j = 0; j < rows; ++j) {
    float* d = buf + j * wp;
    const int64_t iy = iy_first + j;
    if (iy < 0 || iy >= g->h) {
      for (int64_t q = 0; q < wp; ++q) d[q] = 0.0f;
      continue;
    }
    const float* row = plane + iy * g->w;
    for (int64_t q = 0; q < qa; ++q) d[q] = 0.0f;
    for (int64_t q = qa; q < qb; ++q) d[q] = row[q - g->pl];
    for (int64_t q = qb; q < wp; ++q) d[q] = 0.0f;
  }
}

/* Output rows [oy0, oy1) (at out, row stride ow) from padded rows (output row oy's window at
 * buf + (oy - oy0) * sh * wp, its row ky another ky * dh * wp on; the buffer holds the columns of
 * round_up(ow, 4) outputs). A one-pass kernel computes whole vectors: round_up(ow, 4) outputs per
 * row, the extra ones spilling into the next output row, which is written afterwards; the last row
 * of the range (`last`: the caller's range ends there), and every row when ow < 4, get their
 * remainder through a scratch instead, so no write leaves the range and no scalar remainder loop
 * runs. */
static void dw_rows_padded(float* restrict out, const geometry* g, const float* restrict buf,
                           int64_t wp, int64_t rows, int last, dw_rows_fn one_pass,
                           const float* wts, float bias, float lo, float hi) {
  if (one_pass) {
    const int64_t ow4 = (g->ow + 3) & ~(int64_t)3, step = g->sh * wp;
    /* Spilling is confined to the next row when ow >= 4. */
    const int64_t spill_rows = g->ow == ow4 ? rows : g->ow < 4 ? 0 : last ? rows - 1 : rows;
    one_pass(out, g->ow, buf, wp, step, wts, bias, lo, hi, spill_rows, ow4);
    const int64_t body = g->ow & ~(int64_t)3;
    for (int64_t r = spill_rows; r < rows; ++r) {
      float* o = out + r * g->ow;
      const float* b = buf + r * step;
      float tail[4];
      one_pass(o, 0, b, wp, 0, wts, bias, lo, hi, 1, body);
      one_pass(tail, 0, b + body * g->sw, wp, 0, wts, bias, lo, hi, 1, 4);
      for (int64_t i = body; i < g->ow; ++i) o[i] = tail[i - body];
    }
    return;
  }
  for (int64_t r = 0; r < rows; ++r) {
    float* o = out + r * g->ow;
    const float* b = buf + r * g->sh * wp;
    for (int64_t ox = 0; ox < g->ow; ++ox) o[ox] = bias;
    for (int64_t ky = 0; ky < g->kh; ++ky)
      for (int64_t kx = 0; kx < g->kw; ++kx)
        axpy(o, b + ky * g->dh * wp + kx * g->dw, wts[ky * g->kw + kx], g->ow, g->sw);
    clamp_row(o, g->ow, lo, hi);
  }
}

/* Output rows [r0, r1) of channel `channel` of one batch item.
 *
 * Padded path: the input rows of a chunk of output rows are copied zero-padded into a stack buffer
 * and every output is an interior one (one pass for 3x3 / 5x5, stride 1 / 2; per-tap axpy
 * otherwise). Direct path, for rows too wide for the buffer and for 3x3 stride 2 on wide images
 * (measured faster there: the input is read once, without the copy): border columns and rows
 * by tap intervals, the interior of 3x3 rows in one pass. */
static void depthwise_rows(const geometry* g, const sdnn_window_params* p, const float* in,
                           float* out, int64_t channel, int64_t r0, int64_t r1) {
  const float* wts = p->weights + channel * g->kh * g->kw;
  const float bias = p->bias ? p->bias[channel] : 0.0f;
  float lo, hi;
  act_bounds(p->act, &lo, &hi);

  const dw_rows_fn one_pass = dw_one_pass(g);
  const int64_t span_h = (g->kh - 1) * g->dh + 1; /* input rows of one output row */
  const int64_t ow4 = (g->ow + 3) & ~(int64_t)3;
  const int64_t wp = (ow4 - 1) * g->sw + (g->kw - 1) * g->dw + 1; /* padded columns read */
  const int wide_3x3_s2 = one_pass == dw3x3_s2 && g->ow >= 7;
  if (wp <= DW_BUFFER_FLOATS / span_h && !wide_3x3_s2) {
    float buf[DW_BUFFER_FLOATS];
    const int64_t chunk = (DW_BUFFER_FLOATS / wp - span_h) / g->sh + 1; /* output rows per fill */
    for (int64_t oy0 = r0; oy0 < r1; oy0 += chunk) {
      const int64_t oy1 = min64(r1, oy0 + chunk);
      pad_rows(buf, g, in, oy0 * g->sh - g->pt, (oy1 - oy0 - 1) * g->sh + span_h, wp);
      dw_rows_padded(out + oy0 * g->ow, g, buf, wp, oy1 - oy0, oy1 == r1, one_pass, wts, bias, lo,
                     hi);
    }
    return;
  }

  const int fast = one_pass == dw3x3_s1 || one_pass == dw3x3_s2;
  int64_t xa = 0, xb = 0;
  if (fast) tap_range(-g->pl, g->sw, g->w - 2, g->ow, &xa, &xb);
  for (int64_t oy = r0; oy < r1; ++oy) {
    const int64_t iy0 = oy * g->sh - g->pt;
    if (fast && iy0 >= 0 && iy0 + 2 < g->h)
      dw3x3_row(out + oy * g->ow, g, in, one_pass, wts, bias, lo, hi, oy, xa, xb);
    else
      dw_row_generic(out + oy * g->ow, g, in, wts, bias, lo, hi, oy);
  }
}

/* ---- pools ---------------------------------------------------------------------------------- */

/* y[i] = max(y[i], x[i * stride]); a NaN x never replaces y. */
static void vmax(float* restrict y, const float* restrict x, int64_t n, int64_t stride) {
  if (stride == 1)
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > y[i] ? x[i] : y[i];
  else if (stride == 2)
    for (int64_t i = 0; i < n; ++i) y[i] = x[2 * i] > y[i] ? x[2 * i] : y[i];
  else
    for (int64_t i = 0; i < n; ++i) y[i] = x[i * stride] > y[i] ? x[i * stride] : y[i];
}

static void vadd(float* restrict y, const float* restrict x, int64_t n, int64_t stride) {
  if (stride == 1)
    for (int64_t i = 0; i < n; ++i) y[i] += x[i];
  else if (stride == 2)
    for (int64_t i = 0; i < n; ++i) y[i] += x[2 * i];
  else
    for (int64_t i = 0; i < n; ++i) y[i] += x[i * stride];
}

/* Output row oy of one plane: the max (or sum) over the taps inside the image. Returns how many
 * kernel rows are inside the image. */
static int64_t pool_row(float* restrict out, const geometry* g, const float* restrict plane,
                        int64_t oy, int is_max) {
  const float init = is_max ? -INFINITY : 0.0f;
  for (int64_t ox = 0; ox < g->ow; ++ox) out[ox] = init;
  int64_t rows = 0;
  for (int64_t ky = 0; ky < g->kh; ++ky) {
    const int64_t iy = oy * g->sh - g->pt + ky * g->dh;
    if (iy < 0 || iy >= g->h) continue;
    ++rows;
    const float* row = plane + iy * g->w;
    for (int64_t kx = 0; kx < g->kw; ++kx) {
      const int64_t off = kx * g->dw - g->pl;
      int64_t a, b;
      tap_range(off, g->sw, g->w, g->ow, &a, &b);
      if (a >= b) continue;
      if (is_max)
        vmax(out + a, row + off + a * g->sw, b - a, g->sw);
      else
        vadd(out + a, row + off + a * g->sw, b - a, g->sw);
    }
  }
  return rows;
}

static void divide_row(float* x, int64_t n, float d) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / d;
}

/* Divides outputs [from, to) of a row by their taps inside the image: `rows` kernel rows times
 * each column's kernel columns (an output with none keeps its sum, 0). */
static void avg_border(float* out, const geometry* g, int64_t rows, int64_t from, int64_t to) {
  for (int64_t ox = from; ox < to; ++ox) {
    int64_t a, b;
    tap_range(ox * g->sw - g->pl, g->dw, g->w, g->kw, &a, &b);
    if (a < b) out[ox] = out[ox] / (float)(rows * (b - a));
  }
}

static void pool_rows(const geometry* g, const sdnn_window_params* p, int is_max, const float* in,
                      float* out, int64_t r0, int64_t r1) {
  /* Columns whose KW taps are all inside the image. */
  int64_t xa = 0, xb = 0;
  if (!is_max && !p->count_include_pad)
    tap_range(-g->pl, g->sw, g->w - (g->kw - 1) * g->dw, g->ow, &xa, &xb);
  for (int64_t oy = r0; oy < r1; ++oy) {
    float* o = out + oy * g->ow;
    const int64_t rows = pool_row(o, g, in, oy, is_max);
    if (is_max) continue;
    if (p->count_include_pad) {
      divide_row(o, g->ow, (float)(g->kh * g->kw));
      continue;
    }
    if (rows == 0) continue; /* no tap inside the image: the sums are 0 */
    avg_border(o, g, rows, 0, xa);
    if (xa < xb) divide_row(o + xa, xb - xa, (float)(rows * g->kw));
    avg_border(o, g, rows, xb, g->ow);
  }
}

/* ---- global average pool -------------------------------------------------------------------- */

/* Mean of n floats: 16 float partial sums (vectorized) over blocks of 1024, each block's total
 * added in double, so the rounding error stays that of a 64-term float sum whatever n is. */
static float plane_mean(const float* x, int64_t n) {
  double total = 0.0;
  for (int64_t start = 0; start < n; start += 1024) {
    const int64_t end = min64(n, start + 1024);
    float acc[16] = {0};
    int64_t i = start;
    for (; i + 16 <= end; i += 16)
      for (int j = 0; j < 16; ++j) acc[j] += x[i + j];
    float s = 0.0f;
    for (int j = 0; j < 16; ++j) s += acc[j];
    for (; i < end; ++i) s += x[i];
    total += s;
  }
  return (float)(total / (double)n);
}

/* ---- im2col --------------------------------------------------------------------------------- */

/* The im2col copies are at most VL <= 16 floats: straight-line SSE moves by powers of two (a loop
 * would be turned into a memcpy / memset call, which costs more than the move itself). */
static inline void zero_floats(float* d, int64_t n) {
  const __m128 z = _mm_setzero_ps();
  if (n & 16) {
    _mm_storeu_ps(d, z);
    _mm_storeu_ps(d + 4, z);
    _mm_storeu_ps(d + 8, z);
    _mm_storeu_ps(d + 12, z);
    d += 16;
  }
  if (n & 8) {
    _mm_storeu_ps(d, z);
    _mm_storeu_ps(d + 4, z);
    d += 8;
  }
  if (n & 4) {
    _mm_storeu_ps(d, z);
    d += 4;
  }
  if (n & 2) {
    _mm_storel_pi((__m64*)d, z);
    d += 2;
  }
  if (n & 1) _mm_store_ss(d, z);
}

/* d[i] = s[i], i < n <= 31. */
static inline void copy_contiguous(float* restrict d, const float* restrict s, int64_t n) {
  if (n & 16) {
    _mm_storeu_ps(d, _mm_loadu_ps(s));
    _mm_storeu_ps(d + 4, _mm_loadu_ps(s + 4));
    _mm_storeu_ps(d + 8, _mm_loadu_ps(s + 8));
    _mm_storeu_ps(d + 12, _mm_loadu_ps(s + 12));
    d += 16;
    s += 16;
  }
  if (n & 8) {
    _mm_storeu_ps(d, _mm_loadu_ps(s));
    _mm_storeu_ps(d + 4, _mm_loadu_ps(s + 4));
    d += 8;
    s += 8;
  }
  if (n & 4) {
    _mm_storeu_ps(d, _mm_loadu_ps(s));
    d += 4;
    s += 4;
  }
  if (n & 2) {
    _mm_storel_pi((__m64*)d, _mm_loadl_pi(_mm_setzero_ps(), (const __m64*)s));
    d += 2;
    s += 2;
  }
  if (n & 1) _mm_store_ss(d, _mm_load_ss(s));
}

/* d[i] = s[i * stride], i < n <= 31; s[0, readable) may be read. */
static inline void copy_taps(float* restrict d, const float* restrict s, int64_t n, int64_t stride,
                             int64_t readable) {
  if (stride == 1) {
    copy_contiguous(d, s, n);
    return;
  }
  int64_t i = 0;
  if (stride == 2) /* even lanes of two loads; the odd lane after the last tap must be readable */
    for (; i + 4 <= n && 2 * i + 8 <= readable; i += 4) {
      const __m128 lo = _mm_loadu_ps(s + 2 * i), hi = _mm_loadu_ps(s + 2 * i + 4);
      _mm_storeu_ps(d + i, _mm_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)));
    }
  for (; i < n; ++i) d[i] = s[i * stride];
}

/* Columns [col, col + len) of a column block, all in one output row; for tap (ky, kx) they read
 * input row iy0 + ky * dh, columns ix0 + kx * dw + i * sw. */
typedef struct {
  int64_t col, len;
  int64_t iy0, ix0;
  int64_t ky_lo, ky_hi; /* taps whose input row is inside the image */
  int64_t kx_lo, kx_hi; /* taps whose len input columns are all inside the image */
} column_run;

/* A run's row for a tap whose row is inside but some columns are not: zeros, copy, zeros. */
static void im2col_run_partial(float* d, const geometry* g, const float* row, const column_run* run,
                               int64_t kx) {
  const int64_t off = run->ix0 + kx * g->dw;
  int64_t a, b;
  tap_range(off, g->sw, g->w, run->len, &a, &b);
  zero_floats(d, a);
  if (a < b) {
    const int64_t ix = off + a * g->sw;
    copy_taps(d + a, row + ix, b - a, g->sw, g->w - ix);
  }
  zero_floats(d + b, run->len - b);
}

/* Channels [c0, c1) of column block `block` of one batch item; `out` is the block's base. */
static void im2col_block(const geometry* g, int64_t vl, const float* in, float* out, int64_t block,
                         int64_t c0, int64_t c1) {
  column_run runs[MAX_VL];
  const int64_t n0 = block * vl, n_end = min64(n0 + vl, g->oh * g->ow);
  int64_t num_runs = 0;
  for (int64_t n = n0; n < n_end;) {
    const int64_t oy = n / g->ow, ox = n - oy * g->ow;
    column_run* run = &runs[num_runs++];
    run->col = n - n0;
    run->len = min64(g->ow - ox, n_end - n);
    run->iy0 = oy * g->sh - g->pt;
    run->ix0 = ox * g->sw - g->pl;
    tap_range(run->iy0, g->dh, g->h, g->kh, &run->ky_lo, &run->ky_hi);
    tap_range(run->ix0, g->dw, g->w - (run->len - 1) * g->sw, g->kw, &run->kx_lo, &run->kx_hi);
    n += run->len;
  }
  /* Run by run, so the copy length (and its branches) stays the same over all rows. */
  const int64_t rows = (c1 - c0) * g->kh * g->kw;
  float* const first = out + c0 * g->kh * g->kw * vl;
  for (int64_t r = 0; r < num_runs; ++r) {
    const column_run* run = &runs[r];
    float* d = first + run->col;
    for (int64_t c = c0; c < c1; ++c) {
      const float* plane = in + c * g->h * g->w;
      for (int64_t ky = 0; ky < g->kh; ++ky) {
        if (ky < run->ky_lo || ky >= run->ky_hi) {
          for (int64_t kx = 0; kx < g->kw; ++kx, d += vl) zero_floats(d, run->len);
          continue;
        }
        const float* row = plane + (run->iy0 + ky * g->dh) * g->w;
        for (int64_t kx = 0; kx < g->kw; ++kx, d += vl) {
          if (kx >= run->kx_lo && kx < run->kx_hi) {
            const int64_t ix = run->ix0 + kx * g->dw;
            copy_taps(d, row + ix, run->len, g->sw, g->w - ix);
          } else {
            im2col_run_partial(d, g, row, run, kx);
          }
        }
      }
    }
  }
  const int64_t valid = n_end - n0; /* pad columns of the last block */
  if (valid < vl)
    for (int64_t row = 0; row < rows; ++row) zero_floats(first + row * vl + valid, vl - valid);
}

/* ---- dispatch ------------------------------------------------------------------------------- */

static int64_t column_blocks(const sdnn_window_params* p) {
  return (p->out_h * p->out_w + p->vl - 1) / p->vl;
}

/* Planes at least this wide (floats) are split between threads by bands of rows, narrower ones by
 * planes: the threads' row bands of a narrow plane share cache lines, which both then write (7 x 7
 * planes: ZERO_BORDERS 3x slower by rows than by planes). */
enum { BAND_MIN_WIDTH = 32 };

/* PAD_PLANES runs by plane rows (units (item, row phase, row), every channel) from a blocked
 * input, and from an NCHW one with few channels (an image); from other NCHW inputs by row bands
 * walked channel by channel (units (item, plane row), every phase) when the planes are at least
 * BAND_MIN_WIDTH wide, else by channels (item, channel). A thread's share is then a band of rows,
 * as the column split of the direct conv reading the planes is (by channels, each thread read
 * half its input from the other core's cache: bench/RESULTS.md "Session 15"). */
static int pad_by_rows(const sdnn_window_params* p) { return p->vl != 0 || p->channels < 8; }
static int pad_by_bands(const sdnn_window_params* p) { return p->out_w >= BAND_MIN_WIDTH; }

/* ZERO_BORDERS splits by plane rows (units (item, plane row), every channel) when the planes are at
 * least BAND_MIN_WIDTH wide, else by planes (item, channel). */
static int zero_by_rows(const sdnn_window_params* p) { return p->out_w >= BAND_MIN_WIDTH; }

int64_t sdnn_window_units(const sdnn_step* step) {
  const sdnn_window_params* p = step->conv;
  switch (step->op) {
    case SDNN_STEP_IM2COL:
      return p->batch * column_blocks(p) * p->channels;
    case SDNN_STEP_DEPTHWISE_BLOCKED:
      return p->by_blocks ? p->batch * column_blocks(p) : p->batch * p->channels;
    case SDNN_STEP_GLOBAL_AVGPOOL:
      return p->batch * p->channels;
    case SDNN_STEP_ZERO_BORDERS:
      return zero_by_rows(p) ? p->batch * p->out_h : p->batch * p->channels;
    case SDNN_STEP_PAD_PLANES: /* blocked or an NCHW image of few channels: (item, row phase, row);
                                * by_blocks (item, input column block); other NCHW: (item, plane
                                * row) or, narrow planes, (item, channel) */
      if (p->by_blocks)
        return p->batch * ((p->in_h * (p->in_row_stride ? p->in_row_stride : p->in_w) + p->vl - 1) / p->vl);
      if (pad_by_rows(p)) return p->batch * p->stride_h * p->out_h;
      return pad_by_bands(p) ? p->batch * p->out_h : p->batch * p->channels;
    case SDNN_STEP_CROP:
      return p->by_blocks ? p->batch * column_blocks(p) : p->batch * p->out_h;
    default:
      return p->batch * p->channels * p->out_h;
  }
}

int64_t sdnn_window_work(const sdnn_step* step) {
  const sdnn_window_params* p = step->conv;
  double work;
  switch (step->op) {
    case SDNN_STEP_IM2COL: /* floats written, counted twice (read + write), as packs */
      work = 2.0 * (double)sdnn_window_units(step) * (double)p->kernel_h * (double)p->kernel_w *
             (double)p->vl;
      break;
    case SDNN_STEP_GLOBAL_AVGPOOL:
      work = (double)p->batch * (double)p->channels * (double)p->in_h * (double)p->in_w;
      break;
    case SDNN_STEP_PAD_PLANES: /* floats written */
      work = (double)p->batch * (double)p->channels * (double)p->stride_h * (double)p->stride_w *
             (double)p->out_h * (double)p->out_w;
      break;
    case SDNN_STEP_CROP:
      work = (double)p->batch * (double)p->channels * (double)p->out_h * (double)p->out_w;
      break;
    case SDNN_STEP_ZERO_BORDERS: /* floats written */
      work = (double)p->batch * (double)p->channels *
             (double)((p->out_h - p->in_h) * p->out_w + p->in_h * (p->out_w - p->in_w));
      break;
    case SDNN_STEP_DEPTHWISE_BLOCKED: /* taps */
      work = (double)p->batch * (double)p->channels * (double)p->out_h * (double)p->out_w *
             (double)p->kernel_h * (double)p->kernel_w;
      break;
    default: /* taps */
      work = (double)sdnn_window_units(step) * (double)p->out_w * (double)p->kernel_h *
             (double)p->kernel_w;
      break;
  }
  return work < 4e18 ? (int64_t)work : (int64_t)4e18;
}

void sdnn_depthwise_blocked_run(const sdnn_step* step, const float* src, float* dst, float* scratch,
                                int64_t unit_begin, int64_t unit_end, uint32_t cpu) {
  const sdnn_window_params* p = step->conv;
  const geometry g = geometry_of(p);
  /* in_row_stride: a direct convolution's grid (by_blocks 1, plan_check), rows that far apart */
  const int64_t vl = p->vl, in_n = g.h * (p->in_row_stride ? p->in_row_stride : g.w), out_n = g.oh * g.ow,
                c_vl = g.c * vl;
  const int64_t in_blocks = (in_n + vl - 1) / vl, out_blocks = (out_n + vl - 1) / vl;
  float lo, hi;
  act_bounds(p->act, &lo, &hi);
  if (p->by_blocks == 3) { /* units: (item, output block), every channel group of each tile in
                            * turn (split by channel groups instead, 28 x 28 images ran 0.6x with
                            * two threads, 14 x 14 0.95-1.04x, 7 x 7 1.15x: bench/RESULTS.md) */
    for (int64_t u = unit_begin; u < unit_end;) {
      const int64_t item = u / out_blocks, b0 = u - item * out_blocks;
      const int64_t b1 = min64(out_blocks, b0 + (unit_end - u));
      sdnn_depthwise_tiles_avx2(p, src + item * in_blocks * c_vl, dst + item * out_blocks * c_vl, scratch, b0, b1,
                                lo, hi);
      u += b1 - b0;
    }
    return;
  }
  if (p->by_blocks) { /* units: (batch item, output column block), every channel */
    for (int64_t u = unit_begin; u < unit_end;) {
      const int64_t item = u / out_blocks, b0 = u - item * out_blocks;
      const int64_t b1 = min64(out_blocks, b0 + (unit_end - u));
      if (p->by_blocks == 1)
        sdnn_depthwise_blocks_avx512(p, src + item * in_blocks * c_vl, dst + item * out_blocks * c_vl, b0, b1, lo,
                                     hi);
      else
        sdnn_depthwise_blocks_gather_avx512(p, src + item * in_blocks * c_vl, dst + item * out_blocks * c_vl, b0,
                                            b1, lo, hi);
      u += b1 - b0;
    }
    return;
  }
  /* by channels (no grid here: in_n is the image's), staged through the scratch's two planes */
  float* plane = scratch;
  float* out = scratch + in_blocks * vl;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const int64_t item = u / g.c, c = u - item * g.c;
    const float* in_item = src + item * in_blocks * c_vl;
    float* out_item = dst + item * out_blocks * c_vl;
    if (!sdnn_depthwise_rows_simd(p, in_item, out_item, scratch, c, 0, g.oh, lo, hi, cpu)) {
      sdnn_blocked_copy(plane, (float*)in_item + c * vl, 0, in_n, c_vl, vl, 0);
      depthwise_rows(&g, p, plane, out, c, 0, g.oh);
      sdnn_blocked_copy(out, out_item + c * vl, 0, out_n, c_vl, vl, 1);
    }
    float* last = out_item + (out_n / vl) * c_vl + c * vl; /* the pad columns of the last block */
    for (int64_t i = out_n % vl; i < vl && out_blocks * vl > out_n; ++i) last[i] = 0.0f;
  }
}

/* d[0, n) = 0 for any n. */
static void zero_run(float* d, int64_t n) {
  if (n > 31)
    memset(d, 0, (size_t)n * sizeof(float));
  else
    zero_floats(d, n);
}

/* Zero-padded phase row: d[x] = line[x * s + f - pad] where that is in [0, w), else 0 (stride 2
 * with vector permutes as `cpu` allows). */
static void phase_row(float* restrict d, const float* restrict line, int64_t cols, int64_t s, int64_t f,
                      int64_t pad, int64_t w, uint32_t cpu) {
  const int64_t first = pad - f; /* inside: x * s >= first and x * s < first + w */
  int64_t x0 = first <= 0 ? 0 : s == 1 ? first : (first + s - 1) / s;
  int64_t x1 = first + w <= 0 ? 0 : s == 1 ? first + w : (first + w + s - 1) / s;
  x0 = min64(x0, cols);
  x1 = min64(x1, cols);
  if (x1 < x0) x1 = x0;
  zero_run(d, x0);
  const float* src = line + (x0 * s - first);
  if (s == 1 && x1 - x0 <= 31) {
    copy_contiguous(d + x0, src, x1 - x0);
  } else if (s == 1) {
    memcpy(d + x0, src, (size_t)(x1 - x0) * sizeof(float));
  } else {
    int64_t x = s == 2 ? sdnn_even_floats(d + x0, src, x1 - x0, w - (x0 * s - first), cpu) : 0;
    for (; x < x1 - x0; ++x) d[x0 + x] = src[x * s];
  }
  zero_run(d + x1, cols - x1);
}

/* Zeroes the rows x cols plane d outside its data rectangle: rows [top, top + h), columns
 * [left, left + w) (which lies inside the plane; h or w 0: all of it). */
static void zero_outside(float* d, int64_t rows, int64_t cols, int64_t top, int64_t left, int64_t h, int64_t w) {
  const int64_t plane = rows * cols, gap = cols - w; /* right pad of row r and left pad of row r + 1: adjacent */
  if (h <= 0 || w <= 0) { /* no image: all pad */
    zero_run(d, plane);
    return;
  }
  zero_run(d, top * cols + left); /* the top rows, then row top's left pad */
  float* g = d + top * cols + left + w;
  if (gap == 2) { /* pad 1 on both sides: one 8-byte store a row (a call per row cost more) */
    const uint64_t zero = 0;
    for (int64_t r = 0; r + 1 < h; ++r, g += cols) memcpy(g, &zero, sizeof zero);
  } else {
    for (int64_t r = 0; r + 1 < h; ++r, g += cols) zero_run(g, gap);
  }
  zero_run(g, d + plane - g); /* the last row's right pad and the rows below */
}

/* ceil(a / 2) for any sign of a. */
static inline int64_t half_up(int64_t a) { return a >= 0 ? (a + 1) / 2 : -((-a) / 2); }

/* Zeroes, in each of the item's `planes` consecutive rows x cols planes at d, the pads of rows
 * [ra, rb): the elements outside the data rectangle (rows [top, top + h), columns [left, left + w)
 * of every plane when phases is 1; with phases 4 (stride 2) plane j = (channel, py, px) holds
 * input rows y with 2 r + py = y + top, so its data rows are [half_up(top - py),
 * half_up(top + h - py)), and likewise its columns). By rows rather than by planes, so a thread
 * zeroes the pads next to the rows it wrote (a split by planes made each thread write into half
 * the rows the other had just written: bench/RESULTS.md "Session 15"). */
static void zero_plane_rows(const sdnn_window_params* p, float* d, int64_t planes, int64_t phases, int64_t ra,
                            int64_t rb) {
  const int64_t rows = p->out_h, cols = p->out_w;
  for (int64_t j = 0; j < planes; ++j) {
    int64_t r0 = p->pad_top, r1 = p->pad_top + p->in_h, c0 = p->pad_left, c1 = p->pad_left + p->in_w;
    if (phases == 4) {
      const int64_t py = j / 2 % 2, px = j % 2;
      r0 = half_up(p->pad_top - py);
      r1 = half_up(p->pad_top + p->in_h - py);
      c0 = half_up(p->pad_left - px);
      c1 = half_up(p->pad_left + p->in_w - px);
    }
    r0 = r0 < 0 ? 0 : r0;
    c0 = c0 < 0 ? 0 : c0;
    r1 = min64(r1, rows);
    c1 = min64(c1, cols);
    /* the data rows inside [ra, rb), relative to ra (none: every row of the range is pad) */
    const int64_t top = r0 > ra ? r0 - ra : 0, bottom = min64(r1, rb) - ra;
    const int64_t h = r1 <= r0 || c1 <= c0 ? 0 : bottom - top;
    zero_outside(d + j * rows * cols + ra * cols, rb - ra, cols, top, c0, h, c1 - c0);
  }
}

/* The pads of units [u0, u1) of (batch item, plane row), every plane of the item (channels x
 * phases). */
static void zero_border_units(const sdnn_window_params* p, float* dst, int64_t phases, int64_t u0, int64_t u1) {
  const int64_t rows = p->out_h, planes = p->channels * phases;
  for (int64_t u = u0; u < u1;) {
    const int64_t item = u / rows, ra = u - item * rows, rb = min64(rows, ra + (u1 - u));
    zero_plane_rows(p, dst + item * planes * rows * p->out_w, planes, phases, ra, rb);
    u += rb - ra;
  }
}

void sdnn_planes_run(const sdnn_step* step, const float* src, const float* res, float* dst, float* scratch,
                     int64_t unit_begin, int64_t unit_end, uint32_t cpu) {
  const sdnn_window_params* p = step->conv;
  const int64_t c = p->channels, vl = p->vl;
  float* row = scratch;
  if (step->op == SDNN_STEP_CROP) {
    /* unit (item, output row y): input row y * stride_h, columns x * stride_w for x < out_w, of
     * every channel */
    const int64_t in_n = p->in_h * p->in_w, out_n = p->out_h * p->out_w;
    const int64_t in_item = (in_n + vl - 1) / vl * c * vl, out_blocks = (out_n + vl - 1) / vl;
    const int64_t out_item = out_blocks * c * vl;
    float lo, hi;
    act_bounds(p->act, &lo, &hi);
    if (!p->residual) res = NULL;
    if (p->by_blocks) { /* AVX-512 (VL 16) or AVX2 (VL 8): unit (item, output column block) */
      for (int64_t u = unit_begin; u < unit_end;) {
        const int64_t item = u / out_blocks, b0 = u - item * out_blocks;
        const int64_t b1 = min64(out_blocks, b0 + (unit_end - u));
        float* out = dst + item * (p->dst_nchw ? c * out_n : out_item);
        if (vl == 8)
          sdnn_crop_blocks_avx2(p, src + item * in_item, res ? res + item * out_item : NULL, out, b0, b1, lo, hi);
        else
          sdnn_crop_blocks_avx512(p, src + item * in_item, res ? res + item * out_item : NULL, out, b0, b1, lo, hi);
        u += b1 - b0;
      }
      return;
    }
    float* res_row = row + sdnn_window_scratch_floats(p) / 2;
    const int64_t sw = p->stride_w, span = (p->out_w - 1) * sw + 1; /* input columns an output row spans */
    for (int64_t u = unit_begin; u < unit_end; ++u) {
      const int64_t item = u / p->out_h, y = u - item * p->out_h, at = y * p->stride_h * p->in_w;
      float* in = (float*)src + item * in_item;
      if (p->dst_nchw) { /* row y of every channel plane */
        float* out = dst + (item * c * p->out_h + y) * p->out_w;
        for (int64_t ch = 0; ch < c; ++ch) {
          if (sw == 1) {
            sdnn_blocked_copy(out + ch * out_n, in + ch * vl, at, p->out_w, c * vl, vl, 0);
            continue;
          }
          sdnn_blocked_copy(row, in + ch * vl, at, span, c * vl, vl, 0);
          for (int64_t x = 0; x < p->out_w; ++x) out[ch * out_n + x] = row[x * sw];
        }
        continue;
      }
      float* out = dst + item * out_item;
      for (int64_t ch = 0; ch < c; ++ch) {
        sdnn_blocked_copy(row, in + ch * vl, at, span, c * vl, vl, 0);
        for (int64_t x = 1; sw > 1 && x < p->out_w; ++x) row[x] = row[x * sw]; /* x * sw >= x: in place */
        if (res) {
          sdnn_blocked_copy(res_row, (float*)res + item * out_item + ch * vl, y * p->out_w, p->out_w, c * vl, vl, 0);
          for (int64_t x = 0; x < p->out_w; ++x) row[x] += res_row[x];
          clamp_row(row, p->out_w, lo, hi);
        }
        sdnn_blocked_copy(row, out + ch * vl, y * p->out_w, p->out_w, c * vl, vl, 1);
      }
      if (y + 1 == p->out_h && out_blocks * vl > out_n) { /* pad columns of the last block */
        float* last = out + (out_n / vl) * c * vl;
        for (int64_t ch = 0; ch < c; ++ch) zero_run(last + ch * vl + out_n % vl, vl - out_n % vl);
      }
    }
    return;
  }
  /* PAD_PLANES */
  const int64_t sh = p->stride_h, sw = p->stride_w, h = p->in_h, w = p->in_w;
  const int64_t rows = p->out_h, cols = p->out_w, plane = rows * cols;
  if (!pad_by_rows(p)) { /* NCHW input: units (item, plane row) = row bands, or (item, channel) of
              * narrow planes; for each channel of the range, its band of rows of its Sh * Sw planes
              * zeroed at once, then its input rows copied in (a channel's band is contiguous;
              * per-row units over every channel measured 0.67x) */
    const int bands = pad_by_bands(p);
    const int64_t per_item = bands ? rows : c;
    for (int64_t u = unit_begin; u < unit_end;) {
      const int64_t item = u / per_item, u0 = u - item * per_item, u1 = min64(per_item, u0 + (unit_end - u));
      u += u1 - u0;
      const int64_t ra = bands ? u0 : 0, rb = bands ? u1 : rows, c0 = bands ? 0 : u0, c1 = bands ? c : u1;
      /* input rows whose padded row pr = iy + pad_top lies in plane rows [ra, rb): pr / sh */
      const int64_t iy0 = ra * sh - p->pad_top < 0 ? 0 : ra * sh - p->pad_top;
      const int64_t iy1 = min64(h, rb * sh - p->pad_top);
      for (int64_t ch = c0; ch < c1; ++ch) {
        const float* in = src + (item * c + ch) * h * w;
        float* out = dst + (item * c + ch) * sh * sw * plane;
        for (int64_t j = 0; j < sh * sw; ++j)
          memset(out + j * plane + ra * cols, 0, (size_t)((rb - ra) * cols) * sizeof(float));
        for (int64_t iy = iy0; iy < iy1; ++iy) {
          const int64_t pr = iy + p->pad_top; /* padded row: phase pr % sh, row pr / sh */
          const int64_t py = pr % sh, r = pr / sh;
          for (int64_t px = 0; px < sw; ++px) {
            float* d = out + (py * sw + px) * plane + r * cols;
            const int64_t first = p->pad_left - px; /* inside: x * sw >= first, x * sw < first + w */
            int64_t x0 = first <= 0 ? 0 : sw == 1 ? first : (first + sw - 1) / sw;
            int64_t x1 = first + w <= 0 ? 0 : sw == 1 ? first + w : (first + w + sw - 1) / sw;
            x0 = min64(x0, cols);
            x1 = min64(x1, cols);
            const float* line = in + iy * w + (x0 * sw - first);
            if (sw == 1 && x1 - x0 <= 31)
              copy_contiguous(d + x0, line, x1 - x0); /* straight-line moves: small images */
            else if (sw == 1)
              memcpy(d + x0, line, (size_t)(x1 - x0) * sizeof(float));
            else
              for (int64_t x = sw == 2 ? sdnn_even_floats(d + x0, line, x1 - x0, w - (x0 * sw - first), cpu) : 0;
                   x < x1 - x0; ++x)
                d[x0 + x] = line[x * sw];
          }
        }
      }
    }
    return;
  }
  if (p->by_blocks) { /* AVX-512 or AVX2 (VL 8), stride 1 or 2: unit (item, input column block),
                       * every channel; this range's share of the planes (by the same proportion)
                       * gets its pads zeroed */
    const int64_t in_blocks = (h * (p->in_row_stride ? p->in_row_stride : w) + vl - 1) / vl;
    const int64_t phases = sh * sw; /* planes per channel: 1 or 4 */
    for (int64_t u = unit_begin; u < unit_end;) {
      const int64_t item = u / in_blocks, b0 = u - item * in_blocks;
      const int64_t b1 = min64(in_blocks, b0 + (unit_end - u));
      if (vl == 8)
        sdnn_pad_blocks_avx2(p, src + item * in_blocks * c * vl, dst + item * c * phases * plane, b0, b1);
      else
        sdnn_pad_blocks_avx512(p, src + item * in_blocks * c * vl, dst + item * c * phases * plane, b0, b1);
      u += b1 - b0;
    }
    /* plane rows in the same proportion as the blocks: rows * b / in_blocks of each item (in 128
     * bits: plan_check bounds each factor, not their product) */
    const int64_t item0 = unit_begin / in_blocks, item1 = unit_end / in_blocks;
    const int64_t b0 = unit_begin - item0 * in_blocks, b1 = unit_end - item1 * in_blocks;
    zero_border_units(p, dst, phases, item0 * rows + (int64_t)((__int128)rows * b0 / in_blocks),
                      item1 * rows + (int64_t)((__int128)rows * b1 / in_blocks));
    return;
  }
  /* blocked input or an NCHW image: unit (item, row phase py, plane row r), every channel and column
   * phase */
  const int64_t row_stride = vl && p->in_row_stride ? p->in_row_stride : w;
  const int64_t in_item = vl ? (h * row_stride + vl - 1) / vl * c * vl : c * h * w;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const int64_t item = u / (sh * rows), py = u / rows % sh, r = u % rows;
    const int64_t iy = r * sh + py - p->pad_top;
    const float* in = src + item * in_item;
    float* out = dst + item * c * sh * sw * plane + r * cols;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* line = NULL;
      if (iy >= 0 && iy < h) {
        if (vl) {
          sdnn_blocked_copy(row, (float*)in + ch * vl, iy * row_stride, w, c * vl, vl, 0);
          line = row;
        } else {
          line = in + (ch * h + iy) * w;
        }
      }
      for (int64_t px = 0; px < sw; ++px) {
        float* d = out + ((ch * sh + py) * sw + px) * plane;
        if (line)
          phase_row(d, line, cols, sw, px, p->pad_left, w, cpu);
        else
          zero_run(d, cols);
      }
    }
  }
}

void sdnn_zero_borders_run(const sdnn_step* step, float* dst, int64_t unit_begin, int64_t unit_end) {
  const sdnn_window_params* p = step->conv;
  if (zero_by_rows(p)) {
    zero_border_units(p, dst, 1, unit_begin, unit_end);
    return;
  }
  const int64_t plane = p->out_h * p->out_w;
  for (int64_t u = unit_begin; u < unit_end; ++u)
    zero_outside(dst + u * plane, p->out_h, p->out_w, p->pad_top, p->pad_left, p->in_h, p->in_w);
}

void sdnn_window_run(const sdnn_step* step, const float* src, float* dst, int64_t unit_begin,
                     int64_t unit_end, uint32_t cpu) {
  const sdnn_window_params* p = step->conv;
  const geometry g = geometry_of(p);
  const int64_t in_plane = g.h * g.w;
  int64_t u = unit_begin;
  switch (step->op) {
    case SDNN_STEP_IM2COL: {
      const int64_t blocks = column_blocks(p), block_floats = g.c * g.kh * g.kw * p->vl;
      while (u < unit_end) {
        const int64_t item_block = u / g.c, c0 = u - item_block * g.c;
        const int64_t c1 = min64(g.c, c0 + (unit_end - u));
        const int64_t item = item_block / blocks, block = item_block - item * blocks;
        im2col_block(&g, p->vl, src + item * g.c * in_plane, dst + item_block * block_floats, block,
                     c0, c1);
        u += c1 - c0;
      }
      break;
    }
    case SDNN_STEP_GLOBAL_AVGPOOL:
      for (; u < unit_end; ++u) dst[u] = plane_mean(src + u * in_plane, in_plane);
      break;
    default: {
      const int64_t out_plane = g.oh * g.ow;
      if (step->op == SDNN_STEP_MAXPOOL && p->vl) {
        /* Of a ChannelBlocked grid (plan_check: AVX-512 or AVX2, 3 wide, stride 2). Units (batch item,
         * output row, channel): consecutive units read adjacent lines of the grid (channel-major
         * units would stride C lines, which no prefetcher follows). */
        const int64_t rs = p->in_row_stride ? p->in_row_stride : g.w;
        const int64_t in_item = (g.h * rs + p->vl - 1) / p->vl * g.c * p->vl, per_item = g.oh * g.c;
        for (; u < unit_end; ++u) {
          const int64_t item = u / per_item, oy = (u - item * per_item) / g.c, ch = u - item * per_item - oy * g.c;
          if (p->vl == 8)
            sdnn_maxpool_blocked_rows_s2_avx2(p, src + item * in_item, dst + (item * g.c + ch) * out_plane, ch, oy,
                                              oy + 1);
          else
            sdnn_maxpool_blocked_rows_s2_avx512(p, src + item * in_item, dst + (item * g.c + ch) * out_plane, ch, oy,
                                                oy + 1);
        }
        break;
      }
      while (u < unit_end) {
        const int64_t plane = u / g.oh, r0 = u - plane * g.oh;
        const int64_t r1 = min64(g.oh, r0 + (unit_end - u));
        const float* in = src + plane * in_plane;
        float* out = dst + plane * out_plane;
        if (step->op == SDNN_STEP_DEPTHWISE)
          depthwise_rows(&g, p, in, out, plane % g.c, r0, r1);
        else if (step->op == SDNN_STEP_MAXPOOL && (cpu & SDNN_CPU_AVX512F) && g.kw == 3 && g.sw == 2 && g.dw == 1)
          sdnn_maxpool_rows_s2_avx512(p, in, out, r0, r1);
        else if (step->op == SDNN_STEP_MAXPOOL && (cpu & SDNN_CPU_AVX2) && g.kw == 3 && g.sw == 2 && g.dw == 1)
          sdnn_maxpool_rows_s2_avx2(p, in, out, r0, r1);
        else
          pool_rows(&g, p, step->op == SDNN_STEP_MAXPOOL, in, out, r0, r1);
        u += r1 - r0;
      }
      break;
    }
  }
}
