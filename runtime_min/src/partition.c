/* partition.c — splitting a kernel step over threads, balanced by nonzero count.
 *
 * Model: tile t costs w[t] = (its values over all k blocks) + SDNN_TILE_OVERHEAD per column; the
 * step is a grid of "outer units" (batch item x column chunk of n_align columns, batch-major) times
 * row tiles. The split cuts the outer units into q contiguous pieces and gives piece j a group of
 * thr_j threads (thr_j = T/q rounded, pieces sized in proportion to thr_j); inside a piece the
 * tiles are cut into min(thr_j, tiles) contiguous ranges of about equal weight.
 *
 *   - many tiles (>= 2 per thread; with the step's split policy SDNN_SPLIT_COLUMNS >=
 *     SDNN_COLUMN_SPLIT_TILES_PER_THREAD, or SDNN_COLUMN_SPLIT_WIDE_TILES_PER_THREAD when every
 *     thread would get SDNN_COLUMN_SPLIT_WIDE_COLUMNS columns, or >= 2 when the column split below
 *     does not balance):
 *     q = 1, i.e. pure row-tile split; every thread streams only its own weights and all threads
 *     share B; a tile a thread boundary falls inside is cut by columns between its two threads
 *     when that balances the split better (cut_row_split);
 *   - few tiles: every q in [1, min(units, T)] is costed exactly (max over threads of columns x
 *     tile-range weight) and the cheapest wins, smaller q on near ties (< 2% apart);
 *   - SDNN_SPLIT_COLUMNS and in between: q = T, a pure column split (every thread all tiles on its
 *     own column chunks, reading only its part of B), when it costs at most 3 % more than q = 1;
 *     when the column units do not divide evenly (13 chunks over 2 threads: 7 / 6) and a column
 *     split whose boundary units are cut by tiles between their two threads (cut_column_split)
 *     balances more than 2 % better, that one, if it costs at most 3 % more than q = 1. Either
 *     keeps the data a thread reads and writes on its own columns, as the column-block split of
 *     the depthwise and pointwise steps around it (a row split of a 14 x 14 1x1 conv made each
 *     thread read half its B, and the depthwise step after it half its input, from the other
 *     core: bench/RESULTS.md "Session 15").
 *
 * The number of threads used is capped so each gets at least SDNN_MIN_WORK_PER_THREAD. */
#include "partition.h"

#include <stdlib.h>

typedef struct {
  int64_t tiles;
  int64_t n;       /* columns per batch item */
  int64_t align;   /* column chunk */
  int64_t n_units; /* column chunks per batch item */
  int64_t units;   /* batch * n_units */
  int64_t* prefix; /* tiles + 1 entries: prefix[t] = weight of tiles [0, t) */
} geometry;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Columns in outer units [0, u), summed over batch items. */
static int64_t columns_before(const geometry* g, int64_t u) {
  const int64_t batch_items = u / g->n_units;
  const int64_t chunks = u % g->n_units;
  return batch_items * g->n + min64(chunks * g->align, g->n);
}

/* Cuts tiles into r nonempty contiguous ranges of about equal weight (1 <= r <= tiles):
 * bounds[0] = 0 < bounds[1] < ... < bounds[r] = tiles. Returns the largest range weight. */
static int64_t split_tiles(const geometry* g, int64_t r, int64_t* bounds) {
  const int64_t* prefix = g->prefix;
  const int64_t total = prefix[g->tiles];
  bounds[0] = 0;
  bounds[r] = g->tiles;
  for (int64_t i = 1; i < r; ++i) {
    const int64_t target = (int64_t)((double)total * (double)i / (double)r);
    int64_t lo = bounds[i - 1] + 1;
    int64_t hi = g->tiles - (r - i);
    const int64_t lowest = lo;
    while (lo < hi) { /* first t in [lowest, hi] with prefix[t] >= target, else hi */
      const int64_t mid = lo + (hi - lo) / 2;
      if (prefix[mid] >= target)
        hi = mid;
      else
        lo = mid + 1;
    }
    if (lo > lowest && target - prefix[lo - 1] < prefix[lo] - target) --lo;
    bounds[i] = lo;
  }
  int64_t max_weight = 0;
  for (int64_t i = 0; i < r; ++i)
    max_weight = max64(max_weight, prefix[bounds[i + 1]] - prefix[bounds[i]]);
  return max_weight;
}

/* Piece j of q over T threads: threads [thread_begin, thread_end), outer units [u0, u1). */
typedef struct {
  int64_t thread_begin, thread_end;
  int64_t u0, u1;
} piece;

static piece make_piece(const geometry* g, int64_t threads, int64_t q, int64_t j) {
  piece p;
  p.thread_begin = threads * j / q;
  p.thread_end = threads * (j + 1) / q;
  p.u0 = g->units * p.thread_begin / threads;
  p.u1 = g->units * p.thread_end / threads;
  return p;
}

/* Slowest thread's work when the outer units are cut into q pieces. */
static double split_cost(const geometry* g, int64_t threads, int64_t q, int64_t* bounds) {
  int64_t cached_r[2] = {0, 0}, cached_weight[2] = {0, 0};
  double worst = 0;
  for (int64_t j = 0; j < q; ++j) {
    const piece p = make_piece(g, threads, q, j);
    const int64_t r = min64(p.thread_end - p.thread_begin, g->tiles);
    if (r == 0) continue;
    int slot = cached_r[0] == r ? 0 : cached_r[1] == r ? 1 : -1;
    if (slot < 0) {
      slot = cached_r[0] == 0 ? 0 : 1;
      cached_r[slot] = r;
      cached_weight[slot] = split_tiles(g, r, bounds);
    }
    const double cost =
        (double)(columns_before(g, p.u1) - columns_before(g, p.u0)) * (double)cached_weight[slot];
    if (cost > worst) worst = cost;
  }
  return worst;
}

/* Appends the tasks of outer units [u0, u1) x tiles [t0, t1): at most 3 (a partial batch item,
 * whole batch items, a partial batch item). */
static int64_t append_tasks(const geometry* g, int64_t u0, int64_t u1, int64_t t0, int64_t t1,
                            sdnn_kernel_task* out) {
  int64_t count = 0;
  while (u0 < u1) {
    const int64_t b = u0 / g->n_units;
    const int64_t chunk = u0 % g->n_units;
    sdnn_kernel_task task = {b, b + 1, 0, g->n, t0, t1};
    if (chunk == 0 && u1 - u0 >= g->n_units) {
      task.b1 = b + (u1 - u0) / g->n_units;
      u0 += (task.b1 - b) * g->n_units;
    } else {
      const int64_t end = min64(u1, (b + 1) * g->n_units);
      task.n0 = chunk * g->align;
      task.n1 = min64((end - b * g->n_units) * g->align, g->n);
      u0 = end;
    }
    out[count++] = task;
  }
  return count;
}

/* Row split with the boundary tiles cut by columns. A position in the step is (tile, column
 * unit); thread i's share runs from position i * W / T to (i + 1) * W / T (W the total weight), the
 * column unit nearest the cut deciding where a boundary tile is divided between the two
 * neighbours (each runs it on its side of the cut, for every batch item). On the tile-granular
 * split a thread can be up to half a tile over its share (37 tiles over 2 threads: up to 2.7 %).
 * Fills cut_tile / cut_unit for positions 0..threads and returns 1 when the cut split's heaviest
 * thread is at least 0.5 % lighter than that of the tile-granular `bounds`, else 0. */
static int cut_row_split(const geometry* g, int64_t threads, const int64_t* bounds, int64_t* cut_tile,
                         int64_t* cut_unit) {
  const int64_t* prefix = g->prefix;
  const double total = (double)prefix[g->tiles];
  cut_tile[0] = 0;
  cut_unit[0] = 0;
  cut_tile[threads] = g->tiles;
  cut_unit[threads] = 0;
  int64_t t = 0;
  for (int64_t i = 1; i < threads; ++i) {
    const double target = total * (double)i / (double)threads;
    while (t + 1 < g->tiles && (double)prefix[t + 1] <= target) ++t;
    const double w = (double)(prefix[t + 1] - prefix[t]);
    const double columns = (target - (double)prefix[t]) / w * (double)g->n; /* of tile t, ideally */
    int64_t unit = (int64_t)(columns / (double)g->align + 0.5);
    unit = unit < 0 ? 0 : unit > g->n_units ? g->n_units : unit;
    cut_tile[i] = unit == g->n_units ? t + 1 : t;
    cut_unit[i] = unit == g->n_units ? 0 : unit;
  }
  /* Cost of the step before a position, in weight x columns (the last unit may be narrower than
   * n_align); positions only move forward. */
  double worst_cut = 0, worst_tiles = 0;
  for (int64_t i = 0; i < threads; ++i) {
    const int64_t ta = cut_tile[i], tb = cut_tile[i + 1];
    const double a = (double)prefix[ta] * (double)g->n +
                     (ta < g->tiles ? (double)min64(cut_unit[i] * g->align, g->n) * (double)(prefix[ta + 1] - prefix[ta])
                                    : 0.0);
    const double b = (double)prefix[tb] * (double)g->n +
                     (tb < g->tiles ? (double)min64(cut_unit[i + 1] * g->align, g->n) * (double)(prefix[tb + 1] - prefix[tb])
                                    : 0.0);
    if (b < a) return 0; /* cannot happen (targets increase); keep the tile split if it does */
    worst_cut = b - a > worst_cut ? b - a : worst_cut;
    const double whole = (double)(prefix[bounds[i + 1]] - prefix[bounds[i]]) * (double)g->n;
    worst_tiles = whole > worst_tiles ? whole : worst_tiles;
  }
  return worst_cut < 0.995 * worst_tiles;
}

/* The tasks of one thread of a cut row split: from (ta, ua) to (tb, ub), every batch item. At most
 * 3: the end of a boundary tile, whole tiles, the start of the next boundary tile. */
static int64_t append_cut_tasks(const geometry* g, int64_t batch, int64_t ta, int64_t ua, int64_t tb, int64_t ub,
                                sdnn_kernel_task* out) {
  int64_t count = 0;
  const int64_t col_a = min64(ua * g->align, g->n), col_b = min64(ub * g->align, g->n);
  if (ta == tb) {
    if (col_a < col_b) out[count++] = (sdnn_kernel_task){0, batch, col_a, col_b, ta, ta + 1};
    return count;
  }
  if (ua > 0) {
    out[count++] = (sdnn_kernel_task){0, batch, col_a, g->n, ta, ta + 1};
    ++ta;
  }
  if (ta < tb) out[count++] = (sdnn_kernel_task){0, batch, 0, g->n, ta, tb};
  if (col_b > 0) out[count++] = (sdnn_kernel_task){0, batch, 0, col_b, tb, tb + 1};
  return count;
}

/* Column split with the boundary column units cut by tiles (the transpose of cut_row_split). A
 * position is (outer unit, tile) in unit-major order, and costs columns_before(unit) x the total
 * tile weight plus that unit's columns x the weight of the tiles before `tile`; thread i's share
 * runs from position i * W / T to (i + 1) * W / T, the tile boundary nearest the cut deciding
 * where a boundary unit is divided between the two neighbours. Fills cut_unit / cut_tile for
 * positions 0..threads (position threads = (units, 0)) and returns the heaviest thread's cost. */
static double cut_column_split(const geometry* g, int64_t threads, int64_t* cut_unit, int64_t* cut_tile) {
  const int64_t* prefix = g->prefix;
  const double total = (double)prefix[g->tiles];
  const double whole = (double)columns_before(g, g->units) * total;
  cut_unit[0] = 0;
  cut_tile[0] = 0;
  cut_unit[threads] = g->units;
  cut_tile[threads] = 0;
  int64_t u = 0;
  for (int64_t i = 1; i < threads; ++i) {
    const double target = whole * (double)i / (double)threads;
    while (u + 1 < g->units && (double)columns_before(g, u + 1) * total <= target) ++u;
    const double width = (double)(columns_before(g, u + 1) - columns_before(g, u));
    const double rest = (target - (double)columns_before(g, u) * total) / width; /* tile weight into unit u */
    int64_t t = 0;
    while (t < g->tiles && (double)prefix[t + 1] <= rest) ++t;
    if (t < g->tiles && (double)prefix[t + 1] - rest < rest - (double)prefix[t]) ++t;
    int64_t cu = t == g->tiles ? u + 1 : u, ct = t == g->tiles ? 0 : t;
    if (cu < cut_unit[i - 1] || (cu == cut_unit[i - 1] && ct < cut_tile[i - 1])) { /* keep positions in order */
      cu = cut_unit[i - 1];
      ct = cut_tile[i - 1];
    }
    cut_unit[i] = cu;
    cut_tile[i] = ct;
  }
  double worst = 0, before = 0;
  for (int64_t i = 1; i <= threads; ++i) {
    const int64_t cu = cut_unit[i];
    const double at = (double)columns_before(g, cu) * total +
                      (cu < g->units ? (double)(columns_before(g, cu + 1) - columns_before(g, cu)) * (double)prefix[cut_tile[i]]
                                     : 0.0);
    worst = at - before > worst ? at - before : worst;
    before = at;
  }
  return worst;
}

/* The tasks of one thread of a cut column split: from (ua, ta) to (ub, tb). At most 5: the end of
 * a boundary unit, whole units (at most 3 tasks, append_tasks), the start of the next boundary
 * unit. */
static int64_t append_column_cut_tasks(const geometry* g, int64_t ua, int64_t ta, int64_t ub, int64_t tb,
                                       sdnn_kernel_task* out) {
  if (ua == ub) return ta < tb ? append_tasks(g, ua, ua + 1, ta, tb, out) : 0;
  int64_t count = 0;
  if (ta > 0) {
    count += append_tasks(g, ua, ua + 1, ta, g->tiles, out);
    ++ua;
  }
  if (ua < ub) count += append_tasks(g, ua, ub, 0, g->tiles, out + count);
  if (tb > 0) count += append_tasks(g, ub, ub + 1, 0, tb, out + count);
  return count;
}

static int alloc_split(sdnn_kernel_split* split, int threads, int64_t max_tasks) {
  split->num_threads = threads;
  split->first = calloc((size_t)threads + 1, sizeof *split->first);
  split->tasks = max_tasks ? malloc((size_t)max_tasks * sizeof *split->tasks) : NULL;
  if (!split->first || (max_tasks && !split->tasks)) {
    sdnn_kernel_split_free(split);
    return -1;
  }
  return 0;
}

int sdnn_kernel_split_init(sdnn_kernel_split* split, const sdnn_kernel_step* k, int max_threads) {
  split->num_threads = 0;
  split->first = NULL;
  split->tasks = NULL;

  if (k->num_tiles <= 0 || k->num_k_blocks <= 0 || k->n <= 0 || k->batch <= 0)
    return alloc_split(split, 1, 0); /* nothing to compute */

  geometry g;
  g.tiles = k->num_tiles;
  g.n = k->n;
  g.align = k->n_align > 0 ? k->n_align : 1;
  g.n_units = (g.n + g.align - 1) / g.align;
  g.units = k->batch * g.n_units;
  g.prefix = malloc(((size_t)g.tiles + 1) * sizeof *g.prefix);
  if (!g.prefix) return -1;
  g.prefix[0] = 0;
  for (int64_t t = 0; t < g.tiles; ++t) {
    int64_t weight = SDNN_TILE_OVERHEAD;
    for (int64_t kb = 0; kb < k->num_k_blocks; ++kb) {
      const int64_t block = kb * g.tiles + t;
      weight += k->block_offsets[block + 1] - k->block_offsets[block];
    }
    g.prefix[t + 1] = g.prefix[t] + weight;
  }

  const double total_work = (double)g.prefix[g.tiles] * (double)g.n * (double)k->batch;
  double useful = total_work / SDNN_MIN_WORK_PER_THREAD;
  if (useful > (double)g.tiles * (double)g.units) useful = (double)g.tiles * (double)g.units;
  const int64_t threads = useful < 1 ? 1 : useful < max_threads ? (int64_t)useful : max_threads;

  int status = 0;
  int64_t* cut_tile = NULL; /* positions of a cut split: cut_tile / cut_unit, threads + 1 entries each */
  int64_t* bounds = malloc(((size_t)threads + 1) * sizeof *bounds);
  if (!bounds) {
    status = -1;
    goto done;
  }

  cut_tile = malloc(2 * ((size_t)threads + 1) * sizeof *cut_tile);
  if (!cut_tile) {
    status = -1;
    goto done;
  }
  int64_t* cut_unit = cut_tile + threads + 1;

  int64_t best_q = 1;
  int column_cut = 0;
  const int few_tiles = g.tiles < SDNN_COLUMN_SPLIT_TILES_PER_THREAD * threads ||
                        (g.tiles < SDNN_COLUMN_SPLIT_WIDE_TILES_PER_THREAD * threads &&
                         g.n * k->batch >= SDNN_COLUMN_SPLIT_WIDE_COLUMNS * threads);
  if (k->split == SDNN_SPLIT_COLUMNS && threads > 1 && g.tiles >= 2 * threads && few_tiles && g.units >= threads) {
    const double rows = split_cost(&g, threads, 1, bounds);
    const double columns = split_cost(&g, threads, threads, bounds);
    const double cut = cut_column_split(&g, threads, cut_unit, cut_tile);
    if (columns <= 1.03 * rows && columns <= 1.02 * cut)
      best_q = threads;
    else if (cut <= 1.03 * rows)
      column_cut = 1;
  } else if (threads > 1 && g.tiles < 2 * threads) {
    double best_cost = split_cost(&g, threads, 1, bounds);
    const int64_t q_max = min64(g.units, threads);
    for (int64_t q = 2; q <= q_max; ++q) {
      const double cost = split_cost(&g, threads, q, bounds);
      if (cost < best_cost * 0.98) {
        best_cost = cost;
        best_q = q;
      }
    }
  }

  if (alloc_split(split, (int)threads, 5 * threads) != 0) {
    status = -1;
    goto done;
  }
  int64_t num_tasks = 0;
  if (column_cut) {
    for (int64_t thread = 0; thread < threads; ++thread) {
      split->first[thread] = num_tasks;
      num_tasks += append_column_cut_tasks(&g, cut_unit[thread], cut_tile[thread], cut_unit[thread + 1],
                                           cut_tile[thread + 1], split->tasks + num_tasks);
    }
    split->first[threads] = num_tasks;
    goto done;
  }
  if (best_q == 1 && threads > 1 && g.tiles >= 2 * threads && g.n_units >= 2) {
    split_tiles(&g, threads, bounds);
    if (cut_row_split(&g, threads, bounds, cut_tile, cut_unit)) {
      for (int64_t thread = 0; thread < threads; ++thread) {
        split->first[thread] = num_tasks;
        num_tasks += append_cut_tasks(&g, k->batch, cut_tile[thread], cut_unit[thread], cut_tile[thread + 1],
                                      cut_unit[thread + 1], split->tasks + num_tasks);
      }
      split->first[threads] = num_tasks;
      goto done;
    }
  }
  for (int64_t j = 0; j < best_q; ++j) {
    const piece p = make_piece(&g, threads, best_q, j);
    const int64_t r = min64(p.thread_end - p.thread_begin, g.tiles);
    if (r > 0) split_tiles(&g, r, bounds);
    for (int64_t thread = p.thread_begin; thread < p.thread_end; ++thread) {
      split->first[thread] = num_tasks;
      const int64_t i = thread - p.thread_begin;
      if (i < r)
        num_tasks +=
            append_tasks(&g, p.u0, p.u1, bounds[i], bounds[i + 1], split->tasks + num_tasks);
    }
  }
  split->first[threads] = num_tasks;

done:
  free(cut_tile);
  free(bounds);
  free(g.prefix);
  return status;
}

void sdnn_kernel_split_free(sdnn_kernel_split* split) {
  free(split->first);
  free(split->tasks);
  split->first = NULL;
  split->tasks = NULL;
  split->num_threads = 0;
}
