/* partition.h — how one kernel step's work is divided among a context's threads.
 *
 * Computed once per (kernel step, thread count) at context creation; sdnn_run only reads it.
 * A task is a rectangle of the step's work: batch items [b0, b1) x columns [n0, n1) x row tiles
 * [t0, t1). Its owner runs, for each batch item, every k block in increasing order, so the split-K
 * accumulation into C stays on one thread. Invariants of a split (checked by the unit tests):
 *   - the tasks cover every (batch item, column, tile) exactly once;
 *   - n0 is a multiple of the step's n_align; n1 is too, or equals n;
 *   - thread i owns tasks [first[i], first[i + 1]), for i < num_threads. */
#ifndef SDNN_RUNTIME_PARTITION_H
#define SDNN_RUNTIME_PARTITION_H

#include <stdint.h>

#include "sdnn_plan.h"

typedef struct {
  int64_t b0, b1;
  int64_t n0, n1;
  int64_t t0, t1;
} sdnn_kernel_task;

typedef struct {
  int num_threads; /* threads that own tasks; 1 means "run on the calling thread alone" */
  int64_t* first;  /* num_threads + 1 entries */
  sdnn_kernel_task* tasks;
} sdnn_kernel_split;

/* Cost-model constants, in units of (nonzero x column), i.e. one multiply-add of one column. */
enum {
  /* Fixed cost of one row tile beyond its nonzeros (store, bias, activation of its rows). The plan
   * does not record the tile height, so this is per tile rather than per row. */
  SDNN_TILE_OVERHEAD = 32,
  /* A thread joins a kernel step only if it gets at least this much work; below that the wake-up
   * and barrier cost more than they save. */
  SDNN_MIN_WORK_PER_THREAD = 1 << 15,
  /* SDNN_SPLIT_COLUMNS steps: below this many row tiles per thread, a pure column split is taken
   * when it balances within 3 % of the row split (bench/RESULTS.md "Two threads") ... */
  SDNN_COLUMN_SPLIT_TILES_PER_THREAD = 12,
  /* ... and below this many when every thread also gets at least SDNN_COLUMN_SPLIT_WIDE_COLUMNS
   * columns (batch items included): with two threads, M = 1024 split by columns measured 1.02x /
   * 1.07x faster at N = 512 / 2048, but 0.78-0.92x at N = 128 at 90 % (session 9). */
  SDNN_COLUMN_SPLIT_WIDE_TILES_PER_THREAD = 24,
  SDNN_COLUMN_SPLIT_WIDE_COLUMNS = 256,
};

/* Splits `kernel` over at most max_threads threads. Returns 0, or -1 when out of memory (then
 * *split is empty and needs no free). */
int sdnn_kernel_split_init(sdnn_kernel_split* split, const sdnn_kernel_step* kernel,
                           int max_threads);
void sdnn_kernel_split_free(sdnn_kernel_split* split);

#endif /* SDNN_RUNTIME_PARTITION_H */
