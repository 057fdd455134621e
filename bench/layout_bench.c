/* layout_bench.c — sdnn_bench_layout: the two code paths of a runtime layout step, alternating in
 * one process (cold buffers), as runtime_min runs them (sdnn_planes_run, linked statically).
 *
 *   sdnn_bench_layout crop-nchw C H GRID_W W      crop of a direct conv's grid to NCHW:
 *                                                 rows path against the AVX-512 block path
 *   sdnn_bench_layout pad-blocked C H W ROW_STRIDE  pad_planes (stride 1, pads 1) of a
 *                                                 ChannelBlocked input: rows against blocks
 *
 * Each round runs both paths once, in alternating order, each on the next of 8 copies of its
 * input and output (so neither reads what the other just wrote); 41 rounds; prints the median
 * microseconds of each and their ratio. Needs AVX-512F (the block paths). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sdnn_plan.h"
#include "window.h"

enum { COPIES = 8, ROUNDS = 41 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static float* floats(int64_t n) {
  float* p = aligned_alloc(64, (size_t)((n * 4 + 63) / 64 * 64));
  if (!p) {
    fprintf(stderr, "sdnn_bench_layout: out of memory\n");
    exit(1);
  }
  return p;
}

static int64_t arg(char** argv, int i) {
  char* end = NULL;
  const long long v = strtoll(argv[i], &end, 10);
  if (!end || *end || v < 1 || v > (1LL << 20)) {
    fprintf(stderr, "sdnn_bench_layout: argument %d ('%s') must be a positive integer\n", i, argv[i]);
    exit(2);
  }
  return (int64_t)v;
}

int main(int argc, char** argv) {
  if (!__builtin_cpu_supports("avx512f")) {
    fprintf(stderr, "sdnn_bench_layout: needs AVX-512F\n");
    return 1;
  }
  const int crop = argc == 6 && strcmp(argv[1], "crop-nchw") == 0;
  const int pad = argc == 6 && strcmp(argv[1], "pad-blocked") == 0;
  if (!crop && !pad) {
    fprintf(stderr, "usage: sdnn_bench_layout crop-nchw C H GRID_W W | pad-blocked C H W ROW_STRIDE\n");
    return 2;
  }
  const int64_t c = arg(argv, 2), h = arg(argv, 3), a4 = arg(argv, 4), a5 = arg(argv, 5);
  sdnn_window_params p[2];
  sdnn_step step[2];
  memset(p, 0, sizeof p);
  memset(step, 0, sizeof step);
  int64_t in_floats, out_floats;
  for (int i = 0; i < 2; ++i) {
    p[i].batch = 1;
    p[i].channels = c;
    p[i].vl = 16;
    p[i].by_blocks = (uint32_t)i;
    step[i].conv = &p[i];
    if (crop) {
      if (a5 > a4) return fprintf(stderr, "sdnn_bench_layout: W must not exceed GRID_W\n"), 2;
      p[i].in_h = p[i].out_h = h;
      p[i].in_w = a4;
      p[i].out_w = a5;
      p[i].dst_nchw = 1;
      step[i].op = SDNN_STEP_CROP;
    } else {
      if (a5 < a4) return fprintf(stderr, "sdnn_bench_layout: ROW_STRIDE must be at least W\n"), 2;
      p[i].in_h = h;
      p[i].in_w = a4;
      p[i].in_row_stride = a5 == a4 ? 0 : a5;
      p[i].out_h = h + 4; /* as direct_conv's plane rows: room for the last vector's reads */
      p[i].out_w = a4 + 2;
      p[i].stride_h = p[i].stride_w = 1;
      p[i].pad_top = p[i].pad_left = 1;
      step[i].op = SDNN_STEP_PAD_PLANES;
    }
  }
  if (crop) {
    in_floats = (h * a4 + 15) / 16 * c * 16;
    out_floats = c * h * a5;
  } else {
    in_floats = (h * a5 + 15) / 16 * c * 16;
    out_floats = c * (h + 4) * (a4 + 2);
  }
  float* in = floats(in_floats * COPIES);
  float* out = floats(out_floats * COPIES);
  float* scratch = floats(sdnn_window_scratch_floats(&p[0]) + 16);
  for (int64_t i = 0; i < in_floats * COPIES; ++i) in[i] = (float)(i % 97);
  double t[2][ROUNDS];
  for (int r = 0; r < ROUNDS; ++r)
    for (int k = 0; k < 2; ++k) {
      const int i = (r & 1) ? 1 - k : k, copy = (2 * r + k) % COPIES;
      const double t0 = now();
      sdnn_planes_run(&step[i], in + copy * in_floats, NULL, out + copy * out_floats, scratch, 0,
                      sdnn_window_units(&step[i]), SDNN_CPU_AVX2 | SDNN_CPU_AVX512F); /* an AVX-512 model's */
      t[i][r] = now() - t0;
    }
  qsort(t[0], ROUNDS, sizeof(double), by_value);
  qsort(t[1], ROUNDS, sizeof(double), by_value);
  printf("%s C=%lld H=%lld %lld %lld: rows %.1f us, blocks %.1f us, rows / blocks %.2fx\n", argv[1], (long long)c,
         (long long)h, (long long)a4, (long long)a5, t[0][ROUNDS / 2] * 1e6, t[1][ROUNDS / 2] * 1e6,
         t[0][ROUNDS / 2] / t[1][ROUNDS / 2]);
  free(in);
  free(out);
  free(scratch);
  return 0;
}
