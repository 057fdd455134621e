/* depthwise_simd.c — see depthwise_simd.h. One body, instantiated for AVX-512 (16 lanes) and
 * AVX2 (8 lanes) through ISA macros; the 3x3 case is a separate instantiation with the tap count
 * known, so its nine weights live in registers. */
#include "depthwise_simd.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

typedef struct {
  int64_t rows, phase_cols, stride_w, stride_h, kh, kw, oh, ow;
} layout;

/* d[x] = row[2 x], x < n, with vector permutes: returns how many it did (a multiple of the
 * width); `readable` floats may be read from row. */
__attribute__((target("avx512f,avx2,fma"))) static int64_t even_avx512(float* d, const float* row,
                                                                      int64_t n, int64_t readable) {
  const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  int64_t x = 0;
  for (; x + 16 <= n && 2 * x + 32 <= readable; x += 16)
    _mm512_storeu_ps(d + x, _mm512_permutex2var_ps(_mm512_loadu_ps(row + 2 * x), idx,
                                                   _mm512_loadu_ps(row + 2 * x + 16)));
  return x;
}

__attribute__((target("avx2,fma"))) static int64_t even_avx2(float* d, const float* row, int64_t n,
                                                              int64_t readable) {
  int64_t x = 0;
  for (; x + 8 <= n && 2 * x + 16 <= readable; x += 8) {
    const __m256 a = _mm256_loadu_ps(row + 2 * x), b = _mm256_loadu_ps(row + 2 * x + 8);
    const __m256 ev = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); /* a0 a2 b0 b2 a4 a6 b4 b6 */
    _mm256_storeu_ps(d + x, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(ev), 0xD8)));
  }
  return x;
}

/* d[0, n) = s[0, n), n <= 16, without a libc call (the runs are short and many). */
static inline void copy_run(float* restrict d, const float* restrict s, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) memcpy(d + i, s + i, 4 * sizeof(float));
  for (; i < n; ++i) d[i] = s[i];
}

void sdnn_blocked_copy(float* d, float* src, int64_t pos, int64_t n, int64_t c_vl, int64_t vl,
                       int to_blocked) {
  if (n <= 0) return;
  const int64_t block = pos / vl; /* one division; later runs start at lane 0 of the next block */
  float* base = src + block * c_vl;
  int64_t lane = pos - block * vl;
  while (n > 0) {
    const int64_t len = vl - lane < n ? vl - lane : n;
    if (to_blocked)
      copy_run(base + lane, d, len);
    else
      copy_run(d, base + lane, len);
    d += len;
    n -= len;
    base += c_vl;
    lane = 0;
  }
}

/* Prefetches the cache lines of a run like blocked_segment's: one channel's floats sit VL to a
 * line, C lines apart, a stride the hardware prefetchers do not follow. */
static void prefetch_segment(const float* src, int64_t pos, int64_t n, int64_t c_vl, int64_t vl,
                             int write) {
  for (int64_t block = pos / vl, last = (pos + n - 1) / vl; block <= last; ++block) {
    if (write)
      __builtin_prefetch(src + block * c_vl, 1, 3);
    else
      __builtin_prefetch(src + block * c_vl, 0, 3);
  }
}

/* Padded row r (input row r - pad_top) of one channel into its ring slot, one phase per
 * stride_w column phase (phase f, column x = padded column x * s + f = input column
 * x * s + f - pad_left). */
static void stage_row(const sdnn_window_params* p, const layout* l, const float* in_channel,
                      int64_t r, float* slot, float* tmp, int avx512) {
  const int64_t h = p->in_h, w = p->in_w, s = l->stride_w, pc = l->phase_cols;
  const int64_t iy = r - p->pad_top;
  const int64_t ring = l->kh * pc; /* floats between the phases of one slot */
  if (iy < 0 || iy >= h) {
    for (int64_t f = 0; f < s; ++f) memset(slot + f * ring, 0, (size_t)pc * sizeof(float));
    return;
  }
  const int64_t c_vl = p->channels * p->vl;
  if (s == 1) {
    const int64_t x0 = p->pad_left < pc ? p->pad_left : pc;
    const int64_t x1 = x0 + w < pc ? x0 + w : pc;
    memset(slot, 0, (size_t)x0 * sizeof(float));
    sdnn_blocked_copy(slot + x0, (float*)in_channel, iy * w, x1 - x0, c_vl, p->vl, 0);
    memset(slot + x1, 0, (size_t)(pc - x1) * sizeof(float));
    return;
  }
  sdnn_blocked_copy(tmp, (float*)in_channel, iy * w, w, c_vl, p->vl, 0);
  for (int64_t f = 0; f < s; ++f) {
    float* d = slot + f * ring;
    const int64_t first = p->pad_left - f; /* inside: x * s >= first and x * s < first + w */
    int64_t x0 = first <= 0 ? 0 : (first + s - 1) / s;
    int64_t x1 = first + w <= 0 ? 0 : (first + w + s - 1) / s;
    if (x0 > pc) x0 = pc;
    if (x1 > pc) x1 = pc;
    if (x1 < x0) x1 = x0;
    memset(d, 0, (size_t)x0 * sizeof(float));
    const float* src = tmp + (x0 * s - first);
    const int64_t readable = w - (x0 * s - first);
    int64_t x = s == 2 ? (avx512 ? even_avx512 : even_avx2)(d + x0, src, x1 - x0, readable) : 0;
    for (; x0 + x < x1; ++x) d[x0 + x] = src[x * s];
    memset(d + x1, 0, (size_t)(pc - x1) * sizeof(float));
  }
}

/* One output row: rows[f * kh + ky] is padded row oy * stride_h + ky, phase f; tap (ky, kx) reads
 * rows[(kx % s) * kh + ky] + kx / s + ox. Four output vectors at a time, so four independent FMA
 * chains hide the FMA latency. */
#define DW_ROW(NAME, KH, KW)                                                                      \
  static void NAME(const layout* l, const float* const* rows, const float* wts, float bias,      \
                   float lo, float hi, float* o) {                                               \
    const int64_t kh = (KH) ? (KH) : l->kh, kw = (KW) ? (KW) : l->kw, s = l->stride_w;            \
    const int64_t ow = l->ow, taps = kh * kw;                                                     \
    const float* tap[64];                                                                         \
    VEC wv[64];                                                                                   \
    for (int64_t ky = 0; ky < kh; ++ky)                                                           \
      for (int64_t kx = 0; kx < kw; ++kx) {                                                       \
        tap[ky * kw + kx] = rows[(kx % s) * kh + ky] + kx / s;                                    \
        wv[ky * kw + kx] = SET1(wts[ky * kw + kx]);                                               \
      }                                                                                           \
    const VEC vlo = SET1(lo), vhi = SET1(hi), vb = SET1(bias);                                    \
    int64_t ox = 0;                                                                               \
    for (; ox + 4 * W <= ow; ox += 4 * W) {                                                       \
      VEC a0 = vb, a1 = vb, a2 = vb, a3 = vb;                                                     \
      for (int64_t t = 0; t < taps; ++t) {                                                        \
        const float* b = tap[t] + ox;                                                             \
        a0 = FMA(wv[t], LOADU(b), a0);                                                            \
        a1 = FMA(wv[t], LOADU(b + W), a1);                                                        \
        a2 = FMA(wv[t], LOADU(b + 2 * W), a2);                                                    \
        a3 = FMA(wv[t], LOADU(b + 3 * W), a3);                                                    \
      }                                                                                           \
      STOREU(o + ox, MIN(vhi, MAX(vlo, a0)));                                                     \
      STOREU(o + ox + W, MIN(vhi, MAX(vlo, a1)));                                                 \
      STOREU(o + ox + 2 * W, MIN(vhi, MAX(vlo, a2)));                                             \
      STOREU(o + ox + 3 * W, MIN(vhi, MAX(vlo, a3)));                                             \
    }                                                                                             \
    for (; ox < ow; ox += W) {                                                                    \
      VEC acc = vb;                                                                               \
      for (int64_t t = 0; t < taps; ++t) acc = FMA(wv[t], LOADU(tap[t] + ox), acc);               \
      STOREU(o + ox, MIN(vhi, MAX(vlo, acc))); /* o has room for whole vectors */                 \
    }                                                                                             \
  }

/* ---- AVX-512 ---- */
#define VEC __m512
#define W 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define LOADU _mm512_loadu_ps
#define STOREU _mm512_storeu_ps
#define MIN _mm512_min_ps
#define MAX _mm512_max_ps
__attribute__((target("avx512f,avx2,fma"))) DW_ROW(dw3x3_avx512, 3, 3)
__attribute__((target("avx512f,avx2,fma"))) DW_ROW(dw_any_avx512, 0, 0)
#undef VEC
#undef W
#undef SET1
#undef FMA
#undef LOADU
#undef STOREU
#undef MIN
#undef MAX

/* ---- AVX2 ---- */
#define VEC __m256
#define W 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define LOADU _mm256_loadu_ps
#define STOREU _mm256_storeu_ps
#define MIN _mm256_min_ps
#define MAX _mm256_max_ps
__attribute__((target("avx2,fma"))) DW_ROW(dw3x3_avx2, 3, 3)
__attribute__((target("avx2,fma"))) DW_ROW(dw_any_avx2, 0, 0)
#undef VEC
#undef W
#undef SET1
#undef FMA
#undef LOADU
#undef STOREU
#undef MIN
#undef MAX

int sdnn_depthwise_rows_simd(const sdnn_window_params* p, const float* in_item, float* out_item,
                             float* scratch, int64_t channel, int64_t oy0, int64_t oy1, float lo,
                             float hi, uint32_t cpu) {
  const int avx512 = (cpu & SDNN_CPU_AVX512F) != 0, avx2 = (cpu & SDNN_CPU_AVX2) != 0;
  /* Narrow rows (below about two vectors) go faster through the plane path of window.c, whose
   * per-row overhead is lower (measured at 14x14 and 7x7). */
  if ((!avx512 && !avx2) || p->dilation_h != 1 || p->dilation_w != 1 || p->stride_w > 2 ||
      p->kernel_h * p->kernel_w > 64 || p->out_w < 24)
    return 0;
  const layout l = {
      .rows = (p->out_h - 1) * p->stride_h + p->kernel_h,
      .phase_cols = sdnn_round_up(p->out_w, 16) + p->kernel_w + 16,
      .stride_w = p->stride_w,
      .stride_h = p->stride_h,
      .kh = p->kernel_h,
      .kw = p->kernel_w,
      .oh = p->out_h,
      .ow = p->out_w,
  };
  const int64_t pc = l.phase_cols, kh = l.kh, s = l.stride_w, vl = p->vl;
  const int64_t c_vl = p->channels * vl;
  /* scratch: the ring of kh slots x s phases, one output row, one gathered input row */
  float* ring = scratch;
  float* row_out = ring + kh * pc * s;
  float* tmp = row_out + pc;
  const float* in_channel = in_item + channel * vl;
  float* out_channel = out_item + channel * vl;
  const float* wts = p->weights + channel * p->kernel_h * p->kernel_w;
  const float bias = p->bias ? p->bias[channel] : 0.0f;
  void (*row_fn)(const layout*, const float* const*, const float*, float, float, float, float*) =
      p->kernel_h == 3 && p->kernel_w == 3 ? (avx512 ? dw3x3_avx512 : dw3x3_avx2)
                                           : (avx512 ? dw_any_avx512 : dw_any_avx2);
  int64_t staged = oy0 * l.stride_h; /* padded rows below `staged` are in their slots */
  const float* rows[128];
  for (int64_t oy = oy0; oy < oy1; ++oy) {
    const int64_t r0 = oy * l.stride_h;
    for (; staged < r0 + kh; ++staged)
      if (staged >= r0) stage_row(p, &l, in_channel, staged, ring + (staged % kh) * pc, tmp, avx512);
    for (int64_t f = 0; f < s; ++f)
      for (int64_t ky = 0; ky < kh; ++ky) rows[f * kh + ky] = ring + f * kh * pc + ((r0 + ky) % kh) * pc;
    /* the input rows the next output row stages, and the next output row */
    const int64_t next0 = (oy + 1) * l.stride_h - p->pad_top;
    for (int64_t iy = next0 + kh - l.stride_h; iy < next0 + kh; ++iy)
      if (iy >= 0 && iy < p->in_h) prefetch_segment(in_channel, iy * p->in_w, p->in_w, c_vl, vl, 0);
    if (oy + 1 < oy1) prefetch_segment(out_channel, (oy + 1) * l.ow, l.ow, c_vl, vl, 1);
    row_fn(&l, rows, wts, bias, lo, hi, row_out);
    sdnn_blocked_copy(row_out, out_channel, oy * l.ow, l.ow, c_vl, vl, 1);
  }
  return 1;
}

/* Row and column of the 16 positions p0 .. p0 + 15 of a grid `w` wide, in integers: the block's
 * first row by one scalar division, then at most ceil(16 / w) carries into the next row. */
__attribute__((target("avx512f,avx2,fma"))) static inline void lane_rows(int64_t p0, int64_t w,
                                                                         __m512i* oy, __m512i* ox) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const int64_t row = p0 / w;
  __m512i y = _mm512_set1_epi32((int)row);
  __m512i x = _mm512_add_epi32(_mm512_set1_epi32((int)(p0 - row * w)), lane);
  const __m512i vw = _mm512_set1_epi32((int)w), one = _mm512_set1_epi32(1);
  for (int64_t carried = 0; carried < 16; carried += w) {
    const __mmask16 over = _mm512_cmpge_epi32_mask(x, vw);
    if (!over) break;
    x = _mm512_mask_sub_epi32(x, over, x, vw);
    y = _mm512_mask_add_epi32(y, over, y, one);
  }
  *oy = y;
  *ox = x;
}

/* ---- AVX-512 3x3, pads 1, stride 1, "same" geometry: three taps per input row ---------------
 * Row dy of output block b's taps reads the window starting at s = p0 + dy * W + dx; with
 * F = floor((p0 + dy * W) / 16) and sh = p0 + dy * W - 16 F (the same for every channel), the
 * row's three windows come from blocks F - 1, F, F + 1 when sh == 0 (dx = -1 takes F - 1's last
 * lane, dx = 0 is block F itself) and from blocks F, F + 1 otherwise: two or three loads and at
 * most three two-source permutes per row instead of two loads per tap. DW3_GROUP channels go at a
 * time with their accumulators in registers (independent FMA chains). Lanes outside the image
 * are masked to 0, so clamped source blocks are harmless. With conv->in_row_stride R > W the
 * input is a direct convolution's grid (R positions a row, the first W data): W is a multiple of
 * 16, so block b lies in one row and p0 + dy * W becomes q0 + dy * R, q0 = p0's grid position. */
enum { DW3_GROUP = 4 };

typedef struct {
  __m512i idx[3][3];
  int64_t off[3][3]; /* source blocks of row ky, floats from the channel's base */
  __mmask16 mask[3][3];
  int aligned[3], live[3];
} dw3_block;

__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void dw3_channels(
    const dw3_block* k, const float* in, const float* wts, const float* bias, float* out, int g, int masked,
    __m512 vlo, __m512 vhi, __mmask16 real) {
  __m512 acc[DW3_GROUP];
  for (int j = 0; j < g; ++j) acc[j] = _mm512_set1_ps(bias ? bias[j] : 0.0f);
  for (int ky = 0; ky < 3; ++ky) {
    if (!k->live[ky]) continue;
    for (int j = 0; j < g; ++j) {
      const float* src = in + j * 16;
      const float* wj = wts + j * 9 + ky * 3;
      const __m512 r0 = _mm512_loadu_ps(src + k->off[ky][0]), r1 = _mm512_loadu_ps(src + k->off[ky][1]);
      if (!masked && k->aligned[ky]) {
        const __m512 r2 = _mm512_loadu_ps(src + k->off[ky][2]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[0]), _mm512_permutex2var_ps(r0, k->idx[ky][0], r1), acc[j]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[1]), r1, acc[j]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[2]), _mm512_permutex2var_ps(r1, k->idx[ky][2], r2), acc[j]);
      } else if (!masked) {
        for (int kx = 0; kx < 3; ++kx)
          acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[kx]), _mm512_permutex2var_ps(r0, k->idx[ky][kx], r1), acc[j]);
      } else if (k->aligned[ky]) {
        const __m512 r2 = _mm512_loadu_ps(src + k->off[ky][2]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[0]),
                                 _mm512_maskz_permutex2var_ps(k->mask[ky][0], r0, k->idx[ky][0], r1), acc[j]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[1]), _mm512_maskz_mov_ps(k->mask[ky][1], r1), acc[j]);
        acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[2]),
                                 _mm512_maskz_permutex2var_ps(k->mask[ky][2], r1, k->idx[ky][2], r2), acc[j]);
      } else {
        for (int kx = 0; kx < 3; ++kx)
          acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[kx]),
                                   _mm512_maskz_permutex2var_ps(k->mask[ky][kx], r0, k->idx[ky][kx], r1), acc[j]);
      }
    }
  }
  for (int j = 0; j < g; ++j)
    _mm512_storeu_ps(out + j * 16, _mm512_maskz_mov_ps(real, _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[j]))));
}

__attribute__((target("avx512f,avx2,fma"))) static void dw3_blocks_avx512(const sdnn_window_params* p,
                                                                          const float* in_item, float* out_item,
                                                                          int64_t block_begin, int64_t block_end,
                                                                          float lo, float hi) {
  const int64_t h = p->in_h, w = p->in_w, c = p->channels, n = h * w, c_vl = c * 16;
  /* rs > w: the input is a direct convolution's grid, rows rs positions apart (plan_check: w is a
   * multiple of 16 then, so an output block lies in one row and its grid positions are
   * consecutive too) */
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w;
  const int64_t last_block = (h * rs + 15) / 16 - 1;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  dw3_block k;
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t p0 = b * 16, q0 = p0 + (p0 / w) * (rs - w); /* q0: p0's grid position */
    __m512i oy, ox;
    lane_rows(p0, w, &oy, &ox);
    const __mmask16 real = (__mmask16)(p0 + 16 <= n ? 0xFFFFu : (1u << (n - p0)) - 1u);
    const __mmask16 col[3] = {real & _mm512_cmpge_epi32_mask(ox, _mm512_set1_epi32(1)), real,
                              real & _mm512_cmplt_epi32_mask(ox, _mm512_set1_epi32((int)(w - 1)))};
    for (int ky = 0; ky < 3; ++ky) {
      const __m512i iy = _mm512_add_epi32(oy, _mm512_set1_epi32(ky - 1));
      const __mmask16 row_ok = _mm512_cmpge_epi32_mask(iy, _mm512_setzero_si512()) &
                               _mm512_cmplt_epi32_mask(iy, _mm512_set1_epi32((int)h));
      const int64_t s = q0 + (ky - 1) * rs;
      const int64_t f = s >= 0 ? s / 16 : -((-s + 15) / 16);
      const int64_t sh = s - f * 16;
      k.aligned[ky] = sh == 0;
      k.live[ky] = (row_ok & real) != 0;
      for (int j = 0; j < 3; ++j) {
        const int64_t blk = k.aligned[ky] ? f - 1 + j : f + (j > 0);
        k.off[ky][j] = (blk < 0 ? 0 : blk > last_block ? last_block : blk) * c_vl;
      }
      for (int kx = 0; kx < 3; ++kx) {
        k.mask[ky][kx] = row_ok & col[kx];
        /* aligned: dx = -1 is (F - 1, F) from lane 15, dx = +1 (F, F + 1) from lane 1 */
        const int64_t from = k.aligned[ky] ? (kx == 0 ? 15 : 1) : sh + kx - 1;
        k.idx[ky][kx] = _mm512_add_epi32(lane, _mm512_set1_epi32((int)from));
      }
    }
    /* Inside the image every tap's mask is the block's `real` lanes, which only the store needs:
     * the taps go unmasked (the mask registers are the scarce ones). */
    int masked = 0;
    for (int ky = 0; ky < 3; ++ky)
      for (int kx = 0; kx < 3; ++kx) masked |= k.mask[ky][kx] != real;
    float* out = out_item + b * c_vl;
    const float* bias = p->bias;
    int64_t ch = 0;
    if (masked) {
      for (; ch + DW3_GROUP <= c; ch += DW3_GROUP)
        dw3_channels(&k, in_item + ch * 16, p->weights + ch * 9, bias ? bias + ch : NULL, out + ch * 16, DW3_GROUP,
                     1, vlo, vhi, real);
    } else {
      for (; ch + DW3_GROUP <= c; ch += DW3_GROUP)
        dw3_channels(&k, in_item + ch * 16, p->weights + ch * 9, bias ? bias + ch : NULL, out + ch * 16, DW3_GROUP,
                     0, vlo, vhi, real);
    }
    for (; ch < c; ++ch)
      dw3_channels(&k, in_item + ch * 16, p->weights + ch * 9, bias ? bias + ch : NULL, out + ch * 16, 1, 1, vlo,
                   vhi, real);
  }
}

/* ---- AVX-512, stride 1, "same" geometry: shifted windows of the blocked input ----------------
 * Output block b (positions p0 = 16 b .. p0 + 15 of the Ho x Wo = H x W grid, possibly spanning
 * rows) of one channel: tap (ky, kx) needs input positions p + s with s = (ky - pad_top) * W +
 * (kx - pad_left): a window of 16 consecutive positions, taken from the two input blocks it
 * straddles with one two-source permute, the lanes whose (oy + ky - pad_top, ox + kx - pad_left)
 * leave the image zeroed by the permute's mask. The block's geometry (masks, permute indices,
 * source blocks) is computed once and serves every channel; the channel loop walks the blocks'
 * channel-contiguous memory in order. */
__attribute__((target("avx512f,avx2,fma"))) void sdnn_depthwise_blocks_avx512(
    const sdnn_window_params* p, const float* in_item, float* out_item, int64_t block_begin,
    int64_t block_end, float lo, float hi) {
  if (p->kernel_h == 3 && p->kernel_w == 3 && p->pad_top == 1 && p->pad_left == 1) {
    dw3_blocks_avx512(p, in_item, out_item, block_begin, block_end, lo, hi);
    return;
  }
  enum { MAX_TAPS = 49 };
  const int64_t h = p->in_h, w = p->in_w, c = p->channels, n = h * w;
  const int64_t kh = p->kernel_h, kw = p->kernel_w, taps = kh * kw, c_vl = c * 16;
  const int64_t in_blocks = (n + 15) / 16;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __mmask16 mask[MAX_TAPS];
  __m512i idx[MAX_TAPS];
  int64_t src[MAX_TAPS];
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t p0 = b * 16;
    __m512i oy, ox;
    lane_rows(p0, w, &oy, &ox);
    const __mmask16 real = (__mmask16)(p0 + 16 <= n ? 0xFFFFu : (1u << (n - p0)) - 1u);
    for (int64_t ky = 0; ky < kh; ++ky) {
      const int64_t dy = ky - p->pad_top;
      const __m512i iy = _mm512_add_epi32(oy, _mm512_set1_epi32((int)dy));
      const __mmask16 row_ok = _mm512_cmpge_epi32_mask(iy, _mm512_setzero_si512()) &
                               _mm512_cmplt_epi32_mask(iy, _mm512_set1_epi32((int)h));
      for (int64_t kx = 0; kx < kw; ++kx) {
        const int64_t dx = kx - p->pad_left, t = ky * kw + kx;
        const __m512i ix = _mm512_add_epi32(ox, _mm512_set1_epi32((int)dx));
        mask[t] = row_ok & real & _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512()) &
                  _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32((int)w));
        const int64_t start = p0 + dy * w + dx; /* window start, may be negative */
        const int64_t first = start >= 0 ? start / 16 : -((-start + 15) / 16);
        const int64_t shift = start - first * 16; /* 0..15 */
        idx[t] = _mm512_add_epi32(lane, _mm512_set1_epi32((int)shift));
        /* source blocks first, first + 1, clamped into the tensor: lanes from a clamped block
         * are outside the image and masked */
        src[t] = first;
      }
    }
    float* out = out_item + b * c_vl;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* in = in_item + ch * 16;
      const float* wts = p->weights + ch * taps;
      __m512 acc = _mm512_set1_ps(p->bias ? p->bias[ch] : 0.0f);
      for (int64_t t = 0; t < taps; ++t) {
        if (!mask[t]) continue;
        const int64_t b0 = src[t] < 0 ? 0 : src[t] >= in_blocks ? in_blocks - 1 : src[t];
        const int64_t b1 = src[t] + 1 < 0 ? 0 : src[t] + 1 >= in_blocks ? in_blocks - 1 : src[t] + 1;
        const __m512 window = _mm512_maskz_permutex2var_ps(mask[t], _mm512_loadu_ps(in + b0 * c_vl), idx[t],
                                                           _mm512_loadu_ps(in + b1 * c_vl));
        acc = _mm512_fmadd_ps(_mm512_set1_ps(wts[t]), window, acc);
      }
      acc = _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc));
      _mm512_storeu_ps(out + ch * 16, _mm512_maskz_mov_ps(real, acc));
    }
  }
}

/* ---- AVX-512 3x3, pads 1, stride 2: row segments instead of gathers -------------------------
 * Output block b's lanes that lie in one output row oy (a segment; a block has one or two when
 * out_w >= 15, up to four when out_w >= 5) read, for tap (ky, kx), the input positions q = iy * W + 2 ox - 1 + kx with
 * iy = 2 oy + ky - 1: every other position of a run of 33. Loaded as three consecutive blocks
 * F .. F + 2 (F = the block of the segment's first position, clamped at 0; lanes of the run that
 * fall outside the image are masked), lane i's window value is at r = q - 16 F in [0, 47]: one
 * two-source permute of blocks F, F + 1 for r < 32 and, for lanes with r >= 32, a merge permute
 * of block F + 2. So a segment row costs three loads and three to six permutes per channel instead
 * of three 16-lane gathers, each segment under its lanes' masks. Up to DW3S2_SEGMENTS segments
 * (9 taps x 4 segments of permutes and FMAs still beat 9 gathers: MobileNet's 14 x 14 -> 7 x 7
 * step 1.3x); blocks of more segments (out_w < 5) keep the gathers. */
enum { DW3S2_SEGMENTS = 4 };
typedef struct {
  __m512i lo[3], hi[3];     /* per kx: lane indices into (F, F + 1), and r - 32 into F + 2 */
  int64_t off[3];           /* blocks F .. F + 2 (clamped), floats from the channel's base */
  __mmask16 mlo[3], mhi[3]; /* per kx: valid lanes with r < 32 / r >= 32 */
  int ky, any_hi;
} dw3s2_row;

__attribute__((target("avx512f,avx2,fma"), always_inline)) static inline void dw3s2_channels(
    const dw3s2_row* rows, int nrows, const float* in, const float* wts, const float* bias, float* out, int g,
    __m512 vlo, __m512 vhi, __mmask16 real) {
  __m512 acc[DW3_GROUP];
  for (int j = 0; j < g; ++j) acc[j] = _mm512_set1_ps(bias ? bias[j] : 0.0f);
  for (int r = 0; r < nrows; ++r) {
    const dw3s2_row* k = &rows[r];
    for (int j = 0; j < g; ++j) {
      const float* src = in + j * 16;
      const float* wj = wts + j * 9 + k->ky * 3;
      const __m512 r0 = _mm512_loadu_ps(src + k->off[0]), r1 = _mm512_loadu_ps(src + k->off[1]);
      if (k->any_hi) {
        const __m512 r2 = _mm512_loadu_ps(src + k->off[2]);
        for (int kx = 0; kx < 3; ++kx) {
          __m512 x = _mm512_maskz_permutex2var_ps(k->mlo[kx], r0, k->lo[kx], r1);
          x = _mm512_mask_permutexvar_ps(x, k->mhi[kx], k->hi[kx], r2);
          acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[kx]), x, acc[j]);
        }
      } else {
        for (int kx = 0; kx < 3; ++kx)
          acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(wj[kx]), _mm512_maskz_permutex2var_ps(k->mlo[kx], r0, k->lo[kx], r1),
                                   acc[j]);
      }
    }
  }
  for (int j = 0; j < g; ++j)
    _mm512_storeu_ps(out + j * 16, _mm512_maskz_mov_ps(real, _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc[j]))));
}

/* Builds block b's row records; returns how many, or -1 when the block has more than
 * DW3S2_SEGMENTS segments (the caller gathers). */
__attribute__((target("avx512f,avx2,fma"))) static int dw3s2_rows(const sdnn_window_params* p, int64_t p0,
                                                                  dw3s2_row* rows) {
  const int64_t h = p->in_h, w = p->in_w, c_vl = p->channels * 16, ow = p->out_w;
  const int64_t n_out = p->out_h * ow, last_block = (h * w + 15) / 16 - 1;
  const int64_t last = (p0 + 16 <= n_out ? p0 + 15 : n_out - 1);
  const int64_t oy_first = p0 / ow, oy_last = last / ow;
  if (oy_last - oy_first >= DW3S2_SEGMENTS) return -1;
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  int n = 0;
  for (int64_t oy = oy_first; oy <= oy_last; ++oy) {
    const int64_t a = oy == oy_first ? 0 : oy * ow - p0;            /* the segment's first lane */
    const int64_t e = oy == oy_last ? last - p0 + 1 : (oy + 1) * ow - p0; /* one past its last */
    const __mmask16 seg = (__mmask16)(((1u << e) - 1u) & ~((1u << a) - 1u));
    const int64_t ox_a = p0 + a - oy * ow;
    /* lane i's output column: ox_a + i - a; kx's input column 2 (ox_a + i - a) - 1 + kx */
    const __m512i ox2 = _mm512_add_epi32(_mm512_slli_epi32(lane, 1), _mm512_set1_epi32((int)(2 * (ox_a - a) - 1)));
    for (int ky = 0; ky < 3; ++ky) {
      const int64_t iy = 2 * oy + ky - 1;
      if (iy < 0 || iy >= h) continue;
      const int64_t q0 = iy * w + 2 * ox_a - 1; /* the segment's first position (kx = 0) */
      const int64_t f = q0 < 0 ? 0 : q0 / 16;
      dw3s2_row* k = &rows[n++];
      k->ky = ky;
      k->any_hi = 0;
      for (int j = 0; j < 3; ++j) k->off[j] = (f + j > last_block ? last_block : f + j) * c_vl;
      for (int kx = 0; kx < 3; ++kx) {
        const __m512i ix = _mm512_add_epi32(ox2, _mm512_set1_epi32(kx));
        const __mmask16 valid = seg & _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512()) &
                                _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32((int)w));
        /* r = q - 16 F = iy * W - 16 F + ix */
        const __m512i r = _mm512_add_epi32(ix, _mm512_set1_epi32((int)(iy * w - 16 * f)));
        const __mmask16 high = _mm512_cmpge_epi32_mask(r, _mm512_set1_epi32(32));
        k->lo[kx] = r;
        k->hi[kx] = _mm512_sub_epi32(r, _mm512_set1_epi32(32));
        k->mlo[kx] = valid & (__mmask16)~high;
        k->mhi[kx] = valid & high;
        k->any_hi |= k->mhi[kx] != 0;
      }
    }
  }
  return n;
}

/* ---- AVX-512, any stride / dilation: gathered windows --------------------------------------
 * As above, output block by output block with every channel inside, but each tap's 16 inputs are
 * gathered: lane (oy, ox) reads input (oy*sh - pad_top + ky*dh, ox*sw - pad_left + kx*dw), whose
 * offset in the blocked input, (q / 16) * C * 16 + q % 16 for q = iy * W + ix, is the same for
 * every channel (the channel adds c * 16); lanes outside the image are masked to 0. */
__attribute__((target("avx512f,avx2,fma"))) void sdnn_depthwise_blocks_gather_avx512(
    const sdnn_window_params* p, const float* in_item, float* out_item, int64_t block_begin,
    int64_t block_end, float lo, float hi) {
  enum { MAX_TAPS = 49 };
  const int64_t h = p->in_h, w = p->in_w, c = p->channels, ow = p->out_w;
  const int64_t n_out = p->out_h * ow, kh = p->kernel_h, kw = p->kernel_w, taps = kh * kw;
  const int64_t c_vl = c * 16;
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  __mmask16 mask[MAX_TAPS];
  __m512i off[MAX_TAPS];
  const int s2 = kh == 3 && kw == 3 && p->stride_h == 2 && p->stride_w == 2 && p->pad_top == 1 &&
                 p->pad_left == 1 && p->dilation_h == 1 && p->dilation_w == 1;
  dw3s2_row rows[3 * DW3S2_SEGMENTS];
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t p0 = b * 16;
    const int nrows = s2 ? dw3s2_rows(p, p0, rows) : -1;
    if (nrows >= 0) {
      const __mmask16 real = (__mmask16)(p0 + 16 <= n_out ? 0xFFFFu : (1u << (n_out - p0)) - 1u);
      float* out = out_item + b * c_vl;
      const float* bias = p->bias;
      int64_t ch = 0;
      for (; ch + DW3_GROUP <= c; ch += DW3_GROUP)
        dw3s2_channels(rows, nrows, in_item + ch * 16, p->weights + ch * 9, bias ? bias + ch : NULL, out + ch * 16,
                       DW3_GROUP, vlo, vhi, real);
      for (; ch < c; ++ch)
        dw3s2_channels(rows, nrows, in_item + ch * 16, p->weights + ch * 9, bias ? bias + ch : NULL, out + ch * 16, 1,
                       vlo, vhi, real);
      continue;
    }
    __m512i oy, ox;
    lane_rows(p0, ow, &oy, &ox);
    const __m512i y0 = _mm512_sub_epi32(_mm512_mullo_epi32(oy, _mm512_set1_epi32((int)p->stride_h)),
                                        _mm512_set1_epi32((int)p->pad_top));
    const __m512i x0 = _mm512_sub_epi32(_mm512_mullo_epi32(ox, _mm512_set1_epi32((int)p->stride_w)),
                                        _mm512_set1_epi32((int)p->pad_left));
    const __mmask16 real = (__mmask16)(p0 + 16 <= n_out ? 0xFFFFu : (1u << (n_out - p0)) - 1u);
    for (int64_t ky = 0; ky < kh; ++ky) {
      const __m512i iy = _mm512_add_epi32(y0, _mm512_set1_epi32((int)(ky * p->dilation_h)));
      const __mmask16 row_ok = _mm512_cmpge_epi32_mask(iy, _mm512_setzero_si512()) &
                               _mm512_cmplt_epi32_mask(iy, _mm512_set1_epi32((int)h));
      for (int64_t kx = 0; kx < kw; ++kx) {
        const int64_t t = ky * kw + kx;
        const __m512i ix = _mm512_add_epi32(x0, _mm512_set1_epi32((int)(kx * p->dilation_w)));
        mask[t] = row_ok & real & _mm512_cmpge_epi32_mask(ix, _mm512_setzero_si512()) &
                  _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32((int)w));
        /* q = iy * W + ix (garbage in masked lanes, never used): block * C * 16 + q % 16 */
        const __m512i q = _mm512_add_epi32(_mm512_mullo_epi32(iy, _mm512_set1_epi32((int)w)), ix);
        off[t] = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_srai_epi32(q, 4), _mm512_set1_epi32((int)c_vl)),
                                  _mm512_and_si512(q, _mm512_set1_epi32(15)));
      }
    }
    float* out = out_item + b * c_vl;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* in = in_item + ch * 16;
      const float* wts = p->weights + ch * taps;
      __m512 acc = _mm512_set1_ps(p->bias ? p->bias[ch] : 0.0f);
      for (int64_t t = 0; t < taps; ++t) {
        if (!mask[t]) continue;
        const __m512 x = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), mask[t], off[t], in, 4);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(wts[t]), x, acc);
      }
      acc = _mm512_min_ps(vhi, _mm512_max_ps(vlo, acc));
      _mm512_storeu_ps(out + ch * 16, _mm512_maskz_mov_ps(real, acc));
    }
  }
}

/* ---- AVX2 (VL 8), any geometry: channel-transposed tiles ------------------------------------
 * In the blocked layout one channel's consecutive positions sit 8 to a vector, C vectors apart,
 * so the per-channel row path above spends most of its time copying short runs (and AVX2 has no
 * two-source permute for the AVX-512 block code's shifted windows). Here a block's 8 vectors of
 * channels c0 .. c0 + 7 (contiguous, 256 bytes) are transposed 8 x 8 into one vector per
 * position holding those 8 channels, and the tile of input rows an output range needs is laid out
 * that way with its pads as zero vectors: T[row][column] = 8 channels. Each output position is
 * then bias + sum over taps of (8 channels' weights of the tap) * T[...], every load aligned and
 * in bounds, four positions at a time (independent FMA chains); 8 positions are transposed back
 * and stored as the output block's 8 channel vectors. Every input vector is transposed once per
 * tile row it lies in, every output vector once. */
__attribute__((target("avx2,fma"), always_inline)) static inline void transpose8_avx2(__m256* v) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/* Four (or `n` < 4) output positions of the tile: base[i] is position i's first tap in T, off[t]
 * tap t's offset from it, wv[t] its 8 weights. */
__attribute__((target("avx2,fma"), always_inline)) static inline void dwt_positions(
    const float* const* base, int n, const int64_t* off, const __m256* wv, int64_t taps, __m256 vb, __m256 vlo,
    __m256 vhi, __m256* out) {
  __m256 a0 = vb, a1 = vb, a2 = vb, a3 = vb;
  if (n == 4) {
    for (int64_t t = 0; t < taps; ++t) {
      a0 = _mm256_fmadd_ps(wv[t], _mm256_load_ps(base[0] + off[t]), a0);
      a1 = _mm256_fmadd_ps(wv[t], _mm256_load_ps(base[1] + off[t]), a1);
      a2 = _mm256_fmadd_ps(wv[t], _mm256_load_ps(base[2] + off[t]), a2);
      a3 = _mm256_fmadd_ps(wv[t], _mm256_load_ps(base[3] + off[t]), a3);
    }
    out[0] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a0));
    out[1] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a1));
    out[2] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a2));
    out[3] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a3));
    return;
  }
  for (int i = 0; i < n; ++i) {
    __m256 a = vb;
    for (int64_t t = 0; t < taps; ++t) a = _mm256_fmadd_ps(wv[t], _mm256_load_ps(base[i] + off[t]), a);
    out[i] = _mm256_min_ps(vhi, _mm256_max_ps(vlo, a));
  }
}

/* Output positions [q0, q1) (q0 a multiple of 8; the last block's positions past out_n written 0)
 * of channels [c0, c0 + nc) from the tile T, whose row 0 is padded input row oy_a * stride_h. */
__attribute__((target("avx2,fma"), always_inline)) static inline void dwt_outputs(
    const sdnn_window_params* p, const float* T, int64_t tw, int64_t oy_a, int64_t q0, int64_t q1, int64_t c0,
    int64_t nc, const int64_t* off, const __m256* wv, int64_t taps, __m256 vb, __m256 vlo, __m256 vhi,
    float* out_item) {
  const int64_t ow = p->out_w, out_n = p->out_h * ow, c_vl = p->channels * 8;
  int64_t oy = q0 / ow, ox = q0 - oy * ow;
  for (int64_t qb = q0; qb < q1; qb += 8) {
    __m256 v[8];
    const float* base[8];
    int real = 0;
    for (int i = 0; i < 8; ++i) {
      if (qb + i < out_n) {
        base[i] = T + (((oy - oy_a) * p->stride_h) * tw + ox * p->stride_w) * 8;
        real = i + 1;
        if (++ox == ow) ox = 0, ++oy;
      }
      v[i] = _mm256_setzero_ps();
    }
    for (int i = 0; i < real; i += 4)
      dwt_positions(base + i, real - i < 4 ? real - i : 4, off, wv, taps, vb, vlo, vhi, v + i);
    transpose8_avx2(v);
    float* o = out_item + (qb / 8) * c_vl + c0 * 8;
    for (int64_t j = 0; j < nc; ++j) _mm256_storeu_ps(o + j * 8, v[j]);
  }
}

__attribute__((target("avx2,fma"))) void sdnn_depthwise_tiles_avx2(const sdnn_window_params* p,
                                                                   const float* in_item, float* out_item,
                                                                   float* scratch, int64_t block_begin,
                                                                   int64_t block_end, float lo, float hi) {
  enum { MAX_TAPS = 49 };
  const int64_t c = p->channels, h = p->in_h, w = p->in_w, c_vl = c * 8, ow = p->out_w;
  const int64_t out_n = p->out_h * ow;
  /* rs > w: the input is a direct convolution's grid, rows rs positions apart, the first w data */
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w;
  const int64_t kh = p->kernel_h, kw = p->kernel_w, taps = kh * kw, sh = p->stride_h, pl = p->pad_left;
  const int64_t tw = sdnn_dw_tile_cols(p), tile_rows = sdnn_dw_tile_rows(p);
  float* T = (float*)(((uintptr_t)scratch + 31) & ~(uintptr_t)31); /* 32-byte aligned */
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi), zero = _mm256_setzero_ps();
  int64_t off[MAX_TAPS];
  __m256 wv[MAX_TAPS];
  for (int64_t ky = 0; ky < kh; ++ky)
    for (int64_t kx = 0; kx < kw; ++kx) off[ky * kw + kx] = (ky * p->dilation_h * tw + kx * p->dilation_w) * 8;
  const int64_t p_end = block_end * 8 < out_n ? block_end * 8 : out_n;
  for (int64_t q0 = block_begin * 8; q0 < p_end;) {
    /* the tile: output positions [q0, q1) in whole blocks, rows oy_a .. at most oy_a + tile_rows - 1 */
    const int64_t oy_a = q0 / ow;
    int64_t q1 = (oy_a + tile_rows) * ow / 8 * 8;
    if (q1 <= q0) q1 = q0 + 8;
    if (q1 > block_end * 8) q1 = block_end * 8;
    const int64_t oy_b = ((q1 < out_n ? q1 : out_n) - 1) / ow;
    const int64_t nr = (oy_b - oy_a) * sh + (kh - 1) * p->dilation_h + 1; /* tile rows in use */
    for (int64_t c0 = 0; c0 < c; c0 += 8) { /* each group of 8 channels: its tile, then its outputs */
      const int64_t nc = c - c0 < 8 ? c - c0 : 8;
      for (int64_t t = 0; t < taps; ++t) {
        float wt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t j = 0; j < nc; ++j) wt[j] = p->weights[(c0 + j) * taps + t];
        wv[t] = _mm256_loadu_ps(wt);
      }
      float bt[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      if (p->bias)
        for (int64_t j = 0; j < nc; ++j) bt[j] = p->bias[c0 + j];
      const __m256 vb = _mm256_loadu_ps(bt);
      /* fill the tile: padded row r is input row iy = oy_a * sh - pad_top + r, padded column x
       * input column x - pad_left */
      for (int64_t r = 0; r < nr; ++r) {
        float* row = T + r * tw * 8;
        const int64_t iy = oy_a * sh - p->pad_top + r;
        int64_t x0 = pl < tw ? pl : tw, x1 = pl + w < tw ? pl + w : tw; /* columns holding image data */
        if (x0 < 0) x0 = 0;
        if (x1 < x0) x1 = x0;
        if (iy < 0 || iy >= h) x1 = x0; /* a pad row: all zero */
        for (int64_t x = 0; x < x0; ++x) _mm256_store_ps(row + x * 8, zero);
        for (int64_t x = x1; x < tw; ++x) _mm256_store_ps(row + x * 8, zero);
        if (x1 == x0) continue;
        const int64_t pos0 = iy * rs + (x0 - pl), pos1 = iy * rs + (x1 - pl); /* input positions */
        for (int64_t b = pos0 / 8; b * 8 < pos1; ++b) {
          __m256 v[8];
          const float* src = in_item + b * c_vl + c0 * 8;
          for (int64_t j = 0; j < 8; ++j) v[j] = j < nc ? _mm256_loadu_ps(src + j * 8) : zero;
          transpose8_avx2(v);
          const int64_t i0 = pos0 > b * 8 ? pos0 - b * 8 : 0, i1 = pos1 < b * 8 + 8 ? pos1 - b * 8 : 8;
          float* d = row + (b * 8 - iy * rs + pl) * 8; /* position b * 8's column */
          for (int64_t i = i0; i < i1; ++i) _mm256_store_ps(d + i * 8, v[i]);
        }
      }
      if (taps == 9)
        dwt_outputs(p, T, tw, oy_a, q0, q1, c0, nc, off, wv, 9, vb, vlo, vhi, out_item);
      else
        dwt_outputs(p, T, tw, oy_a, q0, q1, c0, nc, off, wv, taps, vb, vlo, vhi, out_item);
    }
    q0 = q1;
  }
}

/* ---- AVX-512 crop: output block by output block, every channel ------------------------------
 * Output position p = oy * out_w + ox of the compact layout comes from grid position
 * oy * stride_h * in_w + ox * stride_w; the 16 lanes' sources in the blocked grid are the same for every channel, so
 * each (block, channel) is one or two permutes of the (at most 3) grid vectors the block's
 * positions span, or one gather when they span more, and one store (pad lanes of the last block
 * stored 0); with a residual, its vector is added and the sum clamped before the store. */
/* Grid position (row y * sh, column x * sw of a grid `w` wide) of output position `pos` (row y,
 * column x) of rows `ow` wide. */
static inline int64_t grid_position(int64_t pos, int64_t ow, int64_t w, int64_t sh, int64_t sw) {
  return pos / ow * sh * w + pos % ow * sw;
}

/* One channel's 16 output lanes of a crop block, from the grid vectors at `base` (c_vl floats
 * apart): lane i is element idx[i] of the concatenated blocks, idx < 16 * blocks (blocks <= 3),
 * else gathered at `off` when blocks is 0. */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 crop_lanes(const float* base, int64_t c_vl,
                                                                            int blocks, __m512i idx,
                                                                            __mmask16 third, __m512i off,
                                                                            __mmask16 real) {
  switch (blocks) {
    case 1:
      return _mm512_permutexvar_ps(idx, _mm512_loadu_ps(base));
    case 2:
      return _mm512_permutex2var_ps(_mm512_loadu_ps(base), idx, _mm512_loadu_ps(base + c_vl));
    case 3:
      return _mm512_mask_permutexvar_ps(
          _mm512_permutex2var_ps(_mm512_loadu_ps(base), idx, _mm512_loadu_ps(base + c_vl)), third, idx,
          _mm512_loadu_ps(base + 2 * c_vl));
    default:
      return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), real, off, base, 4);
  }
}

__attribute__((target("avx512f,avx2,fma"))) void sdnn_crop_blocks_avx512(const sdnn_window_params* p,
                                                                          const float* in_item,
                                                                          const float* res_item,
                                                                          float* out_item,
                                                                          int64_t block_begin,
                                                                          int64_t block_end, float lo,
                                                                          float hi) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const int64_t c = p->channels, c_vl = c * 16, ow = p->out_w, w = p->in_w, n_out = p->out_h * ow;
  const int64_t sh = p->stride_h, sw = p->stride_w;
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t p0 = b * 16, last = p0 + 15 < n_out ? p0 + 15 : n_out - 1;
    __m512i oy, ox;
    lane_rows(p0, ow, &oy, &ox);
    const __mmask16 real = (__mmask16)(p0 + 16 <= n_out ? 0xFFFFu : (1u << (n_out - p0)) - 1u);
    const __m512i q = _mm512_add_epi32(_mm512_mullo_epi32(oy, _mm512_set1_epi32((int)(w * sh))),
                                       _mm512_mullo_epi32(ox, _mm512_set1_epi32((int)sw)));
    /* The block's grid positions span grid blocks first .. first + blocks - 1: up to 3 of them,
     * the lanes are permuted out of those (one or two permutes a channel); a wider span (grid
     * rows much wider than the output rows, or several rows a vector) is gathered. */
    const int64_t first = grid_position(p0, ow, w, sh, sw) / 16;
    int blocks = (int)(grid_position(last, ow, w, sh, sw) / 16 - first + 1);
    __m512i idx = _mm512_maskz_sub_epi32(real, q, _mm512_set1_epi32((int)(first * 16)));
    __m512i off = _mm512_setzero_si512();
    const float* base = in_item + first * c_vl;
    if (blocks > 3) {
      blocks = 0;
      base = in_item;
      off = _mm512_add_epi32(_mm512_mullo_epi32(_mm512_srai_epi32(q, 4), _mm512_set1_epi32((int)c_vl)),
                             _mm512_and_si512(q, _mm512_set1_epi32(15)));
    }
    const __mmask16 third = _mm512_cmpge_epi32_mask(idx, _mm512_set1_epi32(32));
    if (p->dst_nchw) {  /* the block's 16 positions of every channel plane, the real ones only */
      for (int64_t ch = 0; ch < c; ++ch)
        _mm512_mask_storeu_ps(out_item + ch * n_out + p0, real,
                              crop_lanes(base + ch * 16, c_vl, blocks, idx, third, off, real));
      continue;
    }
    float* out = out_item + b * c_vl;
    if (!res_item) {
      for (int64_t ch = 0; ch < c; ++ch)
        _mm512_storeu_ps(out + ch * 16, _mm512_maskz_mov_ps(real, crop_lanes(base + ch * 16, c_vl, blocks, idx,
                                                                              third, off, real)));
      continue;
    }
    const float* res = res_item + b * c_vl;
    for (int64_t ch = 0; ch < c; ++ch) {
      __m512 v = crop_lanes(base + ch * 16, c_vl, blocks, idx, third, off, real);
      v = _mm512_add_ps(v, _mm512_loadu_ps(res + ch * 16));
      v = _mm512_min_ps(vhi, _mm512_max_ps(vlo, v));
      _mm512_storeu_ps(out + ch * 16, _mm512_maskz_mov_ps(real, v));
    }
  }
}

/* ---- AVX2 crop (VL 8): the same, 8 lanes ---------------------------------------------------
 * AVX2 has no two-source permute: each of the (at most 3) grid vectors a block's positions span is
 * permuted into place (vpermps) and blended into the lanes it supplies; a wider span is
 * gathered. */
__attribute__((target("avx2,fma"))) static inline __m256 crop_lanes_avx2(const float* base, int64_t c_vl, int blocks,
                                                                          __m256i idx, __m256 from1, __m256 from2,
                                                                          __m256i off, __m256 real) {
  switch (blocks) {
    case 1:
      return _mm256_permutevar8x32_ps(_mm256_loadu_ps(base), idx);
    case 2:
      return _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(base), idx),
                              _mm256_permutevar8x32_ps(_mm256_loadu_ps(base + c_vl), idx), from1);
    case 3: {
      const __m256 r = _mm256_blendv_ps(_mm256_permutevar8x32_ps(_mm256_loadu_ps(base), idx),
                                        _mm256_permutevar8x32_ps(_mm256_loadu_ps(base + c_vl), idx), from1);
      return _mm256_blendv_ps(r, _mm256_permutevar8x32_ps(_mm256_loadu_ps(base + 2 * c_vl), idx), from2);
    }
    default:
      return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, off, real, 4);
  }
}

__attribute__((target("avx2,fma"))) void sdnn_crop_blocks_avx2(const sdnn_window_params* p, const float* in_item,
                                                               const float* res_item, float* out_item,
                                                               int64_t block_begin, int64_t block_end, float lo,
                                                               float hi) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const int64_t c = p->channels, c_vl = c * 8, ow = p->out_w, w = p->in_w, n_out = p->out_h * ow;
  const int64_t sh = p->stride_h, sw = p->stride_w;
  for (int64_t b = block_begin; b < block_end; ++b) {
    const int64_t p0 = b * 8, n_real = n_out - p0 < 8 ? n_out - p0 : 8;
    /* lane i's grid position (the last real one's for pad lanes, which are masked) */
    int32_t q[8], local[8], off[8], on[8];
    for (int64_t i = 0; i < 8; ++i) q[i] = (int32_t)grid_position(p0 + (i < n_real ? i : n_real - 1), ow, w, sh, sw);
    const int64_t first = q[0] / 8;
    int blocks = (int)(q[n_real - 1] / 8 - first + 1);
    for (int i = 0; i < 8; ++i) {
      local[i] = q[i] - (int32_t)(first * 8);
      off[i] = (q[i] / 8) * (int32_t)c_vl + q[i] % 8;
      on[i] = i < n_real ? -1 : 0;
    }
    const __m256i vlocal = _mm256_loadu_si256((const __m256i*)local);
    const __m256i idx = _mm256_and_si256(vlocal, _mm256_set1_epi32(7));
    const __m256 from1 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vlocal, _mm256_set1_epi32(7)));
    const __m256 from2 = _mm256_castsi256_ps(_mm256_cmpgt_epi32(vlocal, _mm256_set1_epi32(15)));
    const __m256i vreal = _mm256_loadu_si256((const __m256i*)on);
    const __m256 real = _mm256_castsi256_ps(vreal);
    __m256i voff = _mm256_setzero_si256();
    const float* base = in_item + first * c_vl;
    if (blocks > 3) {
      blocks = 0;
      base = in_item;
      voff = _mm256_loadu_si256((const __m256i*)off);
    }
    if (p->dst_nchw) { /* the block's 8 positions of every channel plane, the real ones only */
      for (int64_t ch = 0; ch < c; ++ch)
        _mm256_maskstore_ps(out_item + ch * n_out + p0, vreal,
                            crop_lanes_avx2(base + ch * 8, c_vl, blocks, idx, from1, from2, voff, real));
      continue;
    }
    float* out = out_item + b * c_vl;
    if (!res_item) {
      for (int64_t ch = 0; ch < c; ++ch)
        _mm256_storeu_ps(out + ch * 8,
                         _mm256_and_ps(real,
                                       crop_lanes_avx2(base + ch * 8, c_vl, blocks, idx, from1, from2, voff, real)));
      continue;
    }
    const float* res = res_item + b * c_vl;
    for (int64_t ch = 0; ch < c; ++ch) {
      __m256 v = crop_lanes_avx2(base + ch * 8, c_vl, blocks, idx, from1, from2, voff, real);
      v = _mm256_add_ps(v, _mm256_loadu_ps(res + ch * 8));
      v = _mm256_min_ps(vhi, _mm256_max_ps(vlo, v));
      _mm256_storeu_ps(out + ch * 8, _mm256_and_ps(real, v));
    }
  }
}

static inline uint32_t lane_mask(int64_t lo, int64_t hi) { /* lanes i, lo <= i < hi, of 16 */
  if (lo < 0) lo = 0;
  if (hi > 16) hi = 16;
  return lo >= hi ? 0u : ((1u << hi) - 1u) & ~((1u << lo) - 1u);
}

/* Stride 2: lane i of block b (position q = 16 b + i, row y, column x = q - y * rs) goes to
 * padded position (y + top, x + left): row (y + top) / 2, column (x + left) / 2 of phase plane
 * ((y + top) % 2, (x + left) % 2). A row's lanes form one run, every other lane of which belongs
 * to each column phase and lands on consecutive columns: one compress and one prefix-masked
 * store per row and phase. */
/* Stride 2: the runs block b's lanes form (one per image row it touches and column phase px):
 * per run the lanes (bits, every other lane of the row's) and the float offset, from the
 * channel's first phase plane, of the run's first lane's place; returns how many (at most 2 vl). */
static int pad_block_runs_s2(int64_t b, int64_t vl, int64_t rs, int64_t w, int64_t h, int64_t wq, int64_t plane,
                             int64_t top, int64_t left, uint32_t* masks, int64_t* offs) {
  const int64_t q0 = b * vl, n_in = h * rs;
  const uint32_t all = vl == 16 ? 0xFFFFu : 0xFFu;
  int runs = 0;
  for (int64_t y = q0 / rs; y * rs < q0 + vl && y < h; ++y) {
    int64_t ia = y * rs - q0, ib = y * rs + w - q0;
    ia = ia < 0 ? 0 : ia;
    ib = ib > vl ? vl : ib;
    ib = ib > n_in - q0 ? n_in - q0 : ib;
    if (ia >= ib) continue;
    const uint32_t run = lane_mask(ia, ib) & all, base = (uint32_t)((q0 - y * rs + left) & 1);
    for (uint32_t px = 0; px < 2; ++px) {
      const uint32_t m = run & ((px ^ base) ? 0xAAAAu : 0x5555u);
      if (!m) continue;
      const int64_t first = q0 + __builtin_ctz(m) - y * rs; /* its column x */
      masks[runs] = m;
      offs[runs++] = (((y + top) & 1) * 2 + px) * plane + ((y + top) >> 1) * wq + ((first + left) >> 1);
    }
  }
  return runs;
}

__attribute__((target("avx512f,avx2,fma"))) static void pad_blocks_s2_avx512(const sdnn_window_params* p,
                                                                             const float* in_item, float* out_item,
                                                                             int64_t block_begin, int64_t block_end) {
  enum { GROUP = 8 };
  const int64_t c = p->channels, c_vl = c * 16;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : p->in_w, plane = p->out_h * p->out_w;
  for (int64_t g0 = block_begin; g0 < block_end; g0 += GROUP) {
    const int64_t g1 = g0 + GROUP < block_end ? g0 + GROUP : block_end;
    uint32_t masks[GROUP][32];
    int64_t offs[GROUP][32]; /* from the channel's first phase plane */
    int segs[GROUP];
    for (int64_t b = g0; b < g1; ++b)
      segs[b - g0] = pad_block_runs_s2(b, 16, rs, p->in_w, p->in_h, p->out_w, plane, p->pad_top, p->pad_left,
                                       masks[b - g0], offs[b - g0]);
    for (int64_t ch = 0; ch < c; ++ch) {
      float* pl = out_item + ch * 4 * plane;
      for (int64_t b = g0; b < g1; ++b) {
        const int64_t k = b - g0;
        const __m512 v = _mm512_loadu_ps(in_item + b * c_vl + ch * 16);
        for (int t = 0; t < segs[k]; ++t)
          _mm512_mask_storeu_ps(pl + offs[k][t], (__mmask16)((1u << __builtin_popcount(masks[k][t])) - 1u),
                                _mm512_maskz_compress_ps((__mmask16)masks[k][t], v));
      }
    }
  }
}

/* The same with AVX2 (VL 8), which has no compress: each run's lanes are permuted to the front
 * (vpermps) and stored under a prefix mask. */
__attribute__((target("avx2,fma"))) static void pad_blocks_s2_avx2(const sdnn_window_params* p, const float* in_item,
                                                                   float* out_item, int64_t block_begin,
                                                                   int64_t block_end) {
  enum { GROUP = 8 };
  const int64_t c = p->channels, c_vl = c * 8;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : p->in_w, plane = p->out_h * p->out_w;
  for (int64_t g0 = block_begin; g0 < block_end; g0 += GROUP) {
    const int64_t g1 = g0 + GROUP < block_end ? g0 + GROUP : block_end;
    __m256i idx[GROUP][16], prefix[GROUP][16];
    int64_t offs[GROUP][16];
    int segs[GROUP];
    for (int64_t b = g0; b < g1; ++b) {
      const int64_t k = b - g0;
      uint32_t m[16];
      segs[k] = pad_block_runs_s2(b, 8, rs, p->in_w, p->in_h, p->out_w, plane, p->pad_top, p->pad_left, m, offs[k]);
      for (int t = 0; t < segs[k]; ++t) {
        int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0}, pre[8];
        int n = 0;
        for (int i = 0; i < 8; ++i)
          if (m[t] >> i & 1u) lanes[n++] = i;
        for (int i = 0; i < 8; ++i) pre[i] = i < n ? -1 : 0;
        idx[k][t] = _mm256_loadu_si256((const __m256i*)lanes);
        prefix[k][t] = _mm256_loadu_si256((const __m256i*)pre);
      }
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      float* pl = out_item + ch * 4 * plane;
      for (int64_t b = g0; b < g1; ++b) {
        const int64_t k = b - g0;
        const __m256 v = _mm256_loadu_ps(in_item + b * c_vl + ch * 8);
        for (int t = 0; t < segs[k]; ++t)
          _mm256_maskstore_ps(pl + offs[k][t], prefix[k][t], _mm256_permutevar8x32_ps(v, idx[k][t]));
      }
    }
  }
}

/* The image rows block b (positions q = vl b + i, row y = q / rs, column x = q % rs) of a
 * blocked input touches: per row, the lanes (bit i) with x < W and y < H and the plane position
 * q0 + y * (Wq - rs) + shift that lane 0 would go to; returns how many (at most vl). */
static int pad_block_rows(int64_t b, int64_t vl, int64_t rs, int64_t w, int64_t h, int64_t wq, int64_t shift,
                          uint32_t* masks, int64_t* offs) {
  const int64_t q0 = b * vl, n_in = h * rs;
  int segs = 0;
  for (int64_t y = q0 / rs; y * rs < q0 + vl && y < h; ++y) {
    uint32_t m = 0;
    for (int64_t i = 0; i < vl; ++i) {
      const int64_t q = q0 + i;
      if (q >= n_in) break;
      if (q / rs == y && q - y * rs < w) m |= 1u << i;
    }
    if (!m) continue;
    masks[segs] = m;
    offs[segs++] = q0 + y * (wq - rs) + shift;
  }
  return segs;
}

__attribute__((target("avx512f,avx2,fma"))) void sdnn_pad_blocks_avx512(const sdnn_window_params* p,
                                                                         const float* in_item, float* out_item,
                                                                         int64_t block_begin, int64_t block_end) {
  if (p->stride_h == 2) {
    pad_blocks_s2_avx512(p, in_item, out_item, block_begin, block_end);
    return;
  }
  enum { GROUP = 8 }; /* blocks a channel visits in a row: its plane rows are then written whole */
  const int64_t c = p->channels, c_vl = c * 16, h = p->in_h, w = p->in_w;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w, wq = p->out_w, plane = p->out_h * wq;
  const int64_t shift = p->pad_top * wq + p->pad_left;
  for (int64_t g0 = block_begin; g0 < block_end; g0 += GROUP) {
    const int64_t g1 = g0 + GROUP < block_end ? g0 + GROUP : block_end;
    /* Each block's lanes, row by row: lane i (position q = 16b + i, row y = q / rs, column
     * x = q % rs) goes to plane position (y + top) * Wq + left + x = q + y * (Wq - rs) + shift when
     * x < W and y < H; one masked store per image row the block touches. */
    uint32_t masks[GROUP][16];
    int64_t offs[GROUP][16];
    int segs[GROUP];
    for (int64_t b = g0; b < g1; ++b)
      segs[b - g0] = pad_block_rows(b, 16, rs, w, h, wq, shift, masks[b - g0], offs[b - g0]);
    for (int64_t ch = 0; ch < c; ++ch) {
      float* pl = out_item + ch * plane;
      for (int64_t b = g0; b < g1; ++b) {
        const int64_t k = b - g0;
        const __m512 v = _mm512_loadu_ps(in_item + b * c_vl + ch * 16);
        for (int s = 0; s < segs[k]; ++s) _mm512_mask_storeu_ps(pl + offs[k][s], (__mmask16)masks[k][s], v);
      }
    }
  }
}

/* ---- AVX2 pad_planes from a blocked input (VL 8), stride 1 or 2 ------------------------------
 * As the AVX-512 code above: every block's lanes, image row by image row, stored into each
 * channel's plane under a lane mask (vmaskmovps), GROUP blocks per channel visit. */
__attribute__((target("avx2,fma"))) void sdnn_pad_blocks_avx2(const sdnn_window_params* p, const float* in_item,
                                                              float* out_item, int64_t block_begin, int64_t block_end) {
  if (p->stride_h == 2) {
    pad_blocks_s2_avx2(p, in_item, out_item, block_begin, block_end);
    return;
  }
  enum { GROUP = 8, MAX_SEGS = 8 }; /* an 8-lane block touches at most 8 image rows */
  const int64_t c = p->channels, c_vl = c * 8, h = p->in_h, w = p->in_w;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w, wq = p->out_w, plane = p->out_h * wq;
  const int64_t shift = p->pad_top * wq + p->pad_left;
  for (int64_t g0 = block_begin; g0 < block_end; g0 += GROUP) {
    const int64_t g1 = g0 + GROUP < block_end ? g0 + GROUP : block_end;
    /* lane i (position q = 8b + i, row y = q / rs, column x = q % rs) goes to plane position
     * q + y * (Wq - rs) + shift when x < W and y < H */
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    __m256i masks[GROUP][MAX_SEGS];
    int64_t offs[GROUP][MAX_SEGS];
    int segs[GROUP];
    for (int64_t b = g0; b < g1; ++b) {
      uint32_t m[MAX_SEGS];
      const int64_t k = b - g0;
      segs[k] = pad_block_rows(b, 8, rs, w, h, wq, shift, m, offs[k]);
      for (int sg = 0; sg < segs[k]; ++sg) /* lane i: all ones when bit i is set */
        masks[k][sg] = _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m[sg]), bit), bit);
    }
    for (int64_t ch = 0; ch < c; ++ch) {
      float* pl = out_item + ch * plane;
      for (int64_t b = g0; b < g1; ++b) {
        const int64_t k = b - g0;
        const __m256 v = _mm256_loadu_ps(in_item + b * c_vl + ch * 8);
        for (int sg = 0; sg < segs[k]; ++sg) _mm256_maskstore_ps(pl + offs[k][sg], masks[k][sg], v);
      }
    }
  }
}

/* ---- AVX-512 max pool, kernel_w 3, stride_w 2, dilation_w 1, NCHW ----------------------------
 * Output columns ox .. ox + 15 of one input row take its columns 2 ox - pl + {0, 1, 2}: two loads
 * (columns c0 .. c0 + 31, c0 = 2 ox - pl, those outside the row masked in as -inf) give the even
 * and odd columns by one permute each, the third tap is the even ones a lane on (lane 15 from
 * column c0 + 32). Taps are taken in the generic path's order (rows, then columns) with its
 * comparison, acc = tap > acc ? tap : acc (_mm512_max_ps(tap, acc)): NaNs never win, and the
 * result is bitwise the generic one. */

/* The three taps of outputs ox .. ox + 15 from the row's columns c0 .. c0 + 31 in a, b (outside
 * the row -inf) and column c0 + 32 in every lane of `last`, into acc. */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 max3s2_taps(__m512 acc, __m512 a, __m512 b,
                                                                             __m512 last) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512i next = _mm512_setr_epi32(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 0);
  acc = _mm512_max_ps(_mm512_permutex2var_ps(a, even, b), acc);
  acc = _mm512_max_ps(_mm512_permutex2var_ps(a, odd, b), acc);
  return _mm512_max_ps(_mm512_mask_blend_ps((__mmask16)0x8000u, _mm512_permutex2var_ps(a, next, b), last), acc);
}

__attribute__((target("avx512f,avx2,fma"))) static inline __m512 max3s2(__m512 acc, const float* row, int64_t c0,
                                                                        int64_t w) {
  const __m512 lowest = _mm512_set1_ps(-INFINITY);
  const __m512 a = _mm512_mask_loadu_ps(lowest, (__mmask16)lane_mask(-c0, w - c0), row + c0);
  const __m512 b = _mm512_mask_loadu_ps(lowest, (__mmask16)lane_mask(-c0 - 16, w - c0 - 16), row + c0 + 16);
  const float last = c0 + 32 >= 0 && c0 + 32 < w ? row[c0 + 32] : -INFINITY;
  return max3s2_taps(acc, a, b, _mm512_set1_ps(last));
}

/* Output rows [oy0, oy1) of the pool into `out`, W outputs a vector: each vector the max over the
 * kernel's rows iy inside the image of ROW (an expression of acc, iy and the row's first column c0),
 * stored by STORE(o + ox, acc, outputs left). */
#define MAXPOOL_S2_LOOP(VEC, W, SET1, STORE, ROW)                                     \
  do {                                                                                \
    const int64_t ow_ = p->out_w, h_ = p->in_h, kh_ = p->kernel_h, sh_ = p->stride_h;  \
    const int64_t pt_ = p->pad_top, pl_ = p->pad_left, dh_ = p->dilation_h;           \
    for (int64_t oy = oy0; oy < oy1; ++oy) {                                          \
      float* o = out + oy * ow_;                                                      \
      for (int64_t ox = 0; ox < ow_; ox += (W)) {                                     \
        const int64_t c0 = 2 * ox - pl_;                                              \
        VEC acc = SET1(-INFINITY);                                                    \
        for (int64_t ky = 0; ky < kh_; ++ky) {                                        \
          const int64_t iy = oy * sh_ - pt_ + ky * dh_;                               \
          if (iy >= 0 && iy < h_) acc = (ROW);                                        \
        }                                                                             \
        STORE(o + ox, acc, ow_ - ox);                                                 \
      }                                                                               \
    }                                                                                 \
  } while (0)

__attribute__((target("avx512f,avx2,fma"))) static inline void store16_first(float* d, __m512 v, int64_t n) {
  _mm512_mask_storeu_ps(d, (__mmask16)lane_mask(0, n), v);
}
__attribute__((target("avx512f,avx2,fma"))) void sdnn_maxpool_rows_s2_avx512(const sdnn_window_params* p,
                                                                              const float* in, float* out,
                                                                              int64_t oy0, int64_t oy1) {
  const int64_t w = p->in_w;
  MAXPOOL_S2_LOOP(__m512, 16, _mm512_set1_ps, store16_first, max3s2(acc, in + iy * w, c0, w));
}

/* The same with AVX2, 8 outputs a vector: columns c0 .. c0 + 15 in two vectors, their even and
 * odd columns by one shuffle and one lane permute each, the third tap the even ones a lane on
 * (lane 7 from column c0 + 16); the same tap order and comparison. */
/* All ones in the lanes i whose column c + i lies in the row [0, w). */
__attribute__((target("avx2,fma"))) static inline __m256i row_lanes8(int64_t c, int64_t w) {
  int32_t m[8];
  for (int i = 0; i < 8; ++i) m[i] = c + i >= 0 && c + i < w ? -1 : 0;
  return _mm256_loadu_si256((const __m256i*)m);
}

__attribute__((target("avx2,fma"))) static inline __m256 row8_lowest(const float* row, int64_t c, int64_t w) {
  if (c >= 0 && c + 8 <= w) return _mm256_loadu_ps(row + c);
  const __m256i mask = row_lanes8(c, w);
  return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_maskload_ps(row + c, mask), _mm256_castsi256_ps(mask));
}

/* The three taps of 8 outputs from columns c0 .. c0 + 15 in a, b (outside the row -inf) and column
 * c0 + 16 in lane 7 of `last`, into acc. */
__attribute__((target("avx2,fma"))) static inline __m256 max3s2_taps_avx2(__m256 acc, __m256 a, __m256 b, __m256 last) {
  const __m256 even = _mm256_castpd_ps(
      _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
  const __m256 odd = _mm256_castpd_ps(
      _mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
  const __m256 next =
      _mm256_blend_ps(_mm256_permutevar8x32_ps(even, _mm256_setr_epi32(1, 2, 3, 4, 5, 6, 7, 0)), last, 0x80);
  acc = _mm256_max_ps(even, acc);
  acc = _mm256_max_ps(odd, acc);
  return _mm256_max_ps(next, acc);
}

__attribute__((target("avx2,fma"))) static inline __m256 max3s2_avx2(__m256 acc, const float* row, int64_t c0,
                                                                      int64_t w) {
  const float last = c0 + 16 >= 0 && c0 + 16 < w ? row[c0 + 16] : -INFINITY;
  return max3s2_taps_avx2(acc, row8_lowest(row, c0, w), row8_lowest(row, c0 + 8, w), _mm256_set1_ps(last));
}

__attribute__((target("avx2,fma"))) static inline void store8_first(float* d, __m256 v, int64_t n) {
  if (n >= 8) {
    _mm256_storeu_ps(d, v);
    return;
  }
  int32_t m[8];
  for (int i = 0; i < 8; ++i) m[i] = i < n ? -1 : 0;
  _mm256_maskstore_ps(d, _mm256_loadu_si256((const __m256i*)m), v);
}
__attribute__((target("avx2,fma"))) void sdnn_maxpool_rows_s2_avx2(const sdnn_window_params* p, const float* in,
                                                                   float* out, int64_t oy0, int64_t oy1) {
  const int64_t w = p->in_w;
  MAXPOOL_S2_LOOP(__m256, 8, _mm256_set1_ps, store8_first, max3s2_avx2(acc, in + iy * w, c0, w));
}

int64_t sdnn_even_floats(float* d, const float* row, int64_t n, int64_t readable, uint32_t cpu) {
  if (cpu & SDNN_CPU_AVX512F) return even_avx512(d, row, n, readable);
  if (cpu & SDNN_CPU_AVX2) return even_avx2(d, row, n, readable);
  return 0;
}

/* The same pool on a ChannelBlocked input ([blocks][C][16], rows rs positions apart, the first w of
 * each row data: a direct convolution's output grid): the 33 positions q0 .. q0 + 32 of a row's
 * window start q0 lie in blocks q0 / 16 .. q0 / 16 + 2; two permutes of those three channel
 * vectors line them up as the two vectors the NCHW path loads (lanes outside the row masked to
 * -inf), and the third tap's last lane is the third vector's lane q0 % 16. Blocks outside the
 * tensor are never read (their loads masked off). */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 load_block(const float* in_item, int64_t c_vl,
                                                                           int64_t block, int64_t blocks) {
  const __mmask16 m = block >= 0 && block < blocks ? (__mmask16)0xFFFFu : (__mmask16)0;
  return _mm512_maskz_loadu_ps(m, in_item + (block >= 0 && block < blocks ? block * c_vl : 0));
}

/* The three taps of one grid row for outputs from column c0 (window start q0 = iy * rs + c0). */
__attribute__((target("avx512f,avx2,fma"))) static inline __m512 max3s2_grid16(__m512 acc, const float* base,
                                                                              int64_t c_vl, int64_t blocks,
                                                                              int64_t q0, int64_t c0, int64_t w) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512 lowest = _mm512_set1_ps(-INFINITY);
  const int64_t b0 = q0 >= 0 ? q0 / 16 : -((15 - q0) / 16), s = q0 - b0 * 16; /* floor */
  const __m512 v0 = load_block(base, c_vl, b0, blocks), v1 = load_block(base, c_vl, b0 + 1, blocks);
  const __m512 v2 = load_block(base, c_vl, b0 + 2, blocks);
  const __m512i shift = _mm512_add_epi32(lane, _mm512_set1_epi32((int)s));
  const __m512 a =
      _mm512_mask_mov_ps(lowest, (__mmask16)lane_mask(-c0, w - c0), _mm512_permutex2var_ps(v0, shift, v1));
  const __m512 b =
      _mm512_mask_mov_ps(lowest, (__mmask16)lane_mask(-c0 - 16, w - c0 - 16), _mm512_permutex2var_ps(v1, shift, v2));
  const __m512 last = c0 + 32 >= 0 && c0 + 32 < w ? _mm512_permutexvar_ps(_mm512_set1_epi32((int)s), v2) : lowest;
  return max3s2_taps(acc, a, b, last);
}

__attribute__((target("avx512f,avx2,fma"))) void sdnn_maxpool_blocked_rows_s2_avx512(const sdnn_window_params* p,
                                                                                      const float* in_item,
                                                                                      float* out, int64_t channel,
                                                                                      int64_t oy0, int64_t oy1) {
  const int64_t w = p->in_w, c_vl = p->channels * 16;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w, blocks = (p->in_h * rs + 15) / 16;
  const float* base = in_item + channel * 16;
  MAXPOOL_S2_LOOP(__m512, 16, _mm512_set1_ps, store16_first,
                  max3s2_grid16(acc, base, c_vl, blocks, iy * rs + c0, c0, w));
}

/* The same with AVX2 (VL 8): the 17 positions q0 .. q0 + 16 lie in blocks q0 / 8 .. q0 / 8 + 2; each
 * of the two vectors is two permutes of neighbouring blocks, blended. */
__attribute__((target("avx2,fma"))) static inline __m256 load_block8(const float* base, int64_t c_vl, int64_t block,
                                                                      int64_t blocks) {
  return block >= 0 && block < blocks ? _mm256_loadu_ps(base + block * c_vl) : _mm256_setzero_ps();
}

/* -inf where columns c .. c + 7 leave the row [0, w), else v. */
__attribute__((target("avx2,fma"))) static inline __m256 in_row8(__m256 v, int64_t c, int64_t w) {
  if (c >= 0 && c + 8 <= w) return v;
  return _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(row_lanes8(c, w)));
}

__attribute__((target("avx2,fma"))) static inline __m256 max3s2_grid8(__m256 acc, const float* base, int64_t c_vl,
                                                                       int64_t blocks, int64_t q0, int64_t c0,
                                                                       int64_t w) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int64_t b0 = q0 >= 0 ? q0 / 8 : -((7 - q0) / 8), s = q0 - b0 * 8; /* floor */
  const __m256 v0 = load_block8(base, c_vl, b0, blocks), v1 = load_block8(base, c_vl, b0 + 1, blocks);
  const __m256 v2 = load_block8(base, c_vl, b0 + 2, blocks);
  const __m256i shifted = _mm256_add_epi32(lane, _mm256_set1_epi32((int)s));
  const __m256i idx = _mm256_and_si256(shifted, _mm256_set1_epi32(7));
  const __m256 from_next = _mm256_castsi256_ps(_mm256_cmpgt_epi32(shifted, _mm256_set1_epi32(7)));
  const __m256 a = _mm256_blendv_ps(_mm256_permutevar8x32_ps(v0, idx), _mm256_permutevar8x32_ps(v1, idx), from_next);
  const __m256 b = _mm256_blendv_ps(_mm256_permutevar8x32_ps(v1, idx), _mm256_permutevar8x32_ps(v2, idx), from_next);
  const __m256 last = c0 + 16 >= 0 && c0 + 16 < w ? _mm256_permutevar8x32_ps(v2, _mm256_set1_epi32((int)s))
                                                 : _mm256_set1_ps(-INFINITY);
  return max3s2_taps_avx2(acc, in_row8(a, c0, w), in_row8(b, c0 + 8, w), last);
}

__attribute__((target("avx2,fma"))) void sdnn_maxpool_blocked_rows_s2_avx2(const sdnn_window_params* p,
                                                                           const float* in_item, float* out,
                                                                           int64_t channel, int64_t oy0, int64_t oy1) {
  const int64_t w = p->in_w, c_vl = p->channels * 8;
  const int64_t rs = p->in_row_stride ? p->in_row_stride : w, blocks = (p->in_h * rs + 7) / 8;
  const float* base = in_item + channel * 8;
  MAXPOOL_S2_LOOP(__m256, 8, _mm256_set1_ps, store8_first,
                  max3s2_grid8(acc, base, c_vl, blocks, iy * rs + c0, c0, w));
}
