/* context.c — contexts and the plan executor: sdnn_context_create / free and sdnn_run.
 *
 * A context owns everything mutable of one inference stream: the activation arena, the per-step
 * schedule and the thread pool. sdnn_run walks the plan's steps in order; a step that is worth
 * splitting is run by the pool (thread 0 is the caller), with the pool's barrier between steps,
 * and a small step runs on the caller alone with no synchronization at all.
 *
 * Kernel steps follow sdnn_plan.h: for each task of a thread (partition.h) and each batch item,
 * the thread calls the kernel once per k block, in increasing k-block order, on its tile and column
 * range (a range starting at column n0 begins n0 * col_scale floats into the blocked operand).
 * Packs and unpacks split over (batch item, column block) (unpacks of small images: (batch item,
 * feature)), elementwise steps (copy, ReLU, add, clip) over 16-float (cache line) chunks,
 * windowed steps over their equal-cost units (window.h:
 * im2col (batch item, column block, channel), depthwise and pools (batch item, channel, output
 * row), global average pool (batch item, channel); the blocked depthwise, pad_planes, crop and
 * zero_borders steps as window.h says), tensor steps over the units their functions define
 * (tensor_ops.h, attention.h; elementwise: innermost rows); each thread takes one contiguous range
 * of units, the ranges differing by at most one unit. Steps with a workspace (attention, blocked
 * depthwise, pad_planes, crop) get the thread's slice of the context's scratch
 * (plan->scratch_bytes per thread). Index inputs of gather steps are range-checked before a run.
 *
 * The pool is sized to the largest number of threads any step uses, at most num_threads: threads
 * that would never get work are not started.
 *
 * SDNN_PROFILE=1 in the environment when a context is created times every step of its runs and
 * prints the mean per step, and per thread of a split step, to stderr when the context is freed
 * (a development aid). */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "attention.h"
#include "ops.h"
#include "runtime.h"
#include "tensor_ops.h"
#include "window.h"

enum {
  MAX_THREADS = 1024,
  ARENA_ALIGN = 64,
  PROFILE_STRIDE = 8, /* doubles: one cache line per (step, thread) busy-time slot */
  ELEMENTWISE_CHUNK = 16,               /* floats: one cache line */
  ELEMENTWISE_MIN_PER_THREAD = 1 << 13, /* floats; below this a step runs on one thread */
  LAYOUT_MIN_PER_THREAD = 1 << 12,      /* floats, for packs and unpacks */
  WINDOW_MIN_PER_THREAD = 1 << 13,      /* sdnn_window_work units (taps, floats moved) */
  FLOPS_MIN_PER_THREAD = 1 << 16,       /* matmul and attention multiply-adds */
};

static int is_window_op(uint32_t op) {
  return op == SDNN_STEP_IM2COL || op == SDNN_STEP_DEPTHWISE || op == SDNN_STEP_MAXPOOL ||
         op == SDNN_STEP_AVGPOOL || op == SDNN_STEP_GLOBAL_AVGPOOL ||
         op == SDNN_STEP_DEPTHWISE_BLOCKED || op == SDNN_STEP_PAD_PLANES || op == SDNN_STEP_CROP ||
         op == SDNN_STEP_ZERO_BORDERS;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* Threads for `work` when each should get at least `per_thread` and there are `units` pieces. */
static int threads_for(int64_t work, int64_t per_thread, int64_t units, int max_threads) {
  int64_t threads = work / per_thread;
  if (threads > units) threads = units;
  if (threads > max_threads) threads = max_threads;
  return threads < 1 ? 1 : (int)threads;
}

static int make_schedule(sdnn_step_schedule* schedule, const sdnn_step* step, int max_threads) {
  schedule->num_threads = 1;
  switch (step->op) {
    case SDNN_STEP_KERNEL:
      if (sdnn_kernel_split_init(&schedule->split, step->kernel, max_threads) != 0) return -1;
      schedule->num_threads = schedule->split.num_threads;
      break;
    case SDNN_STEP_PACK_ROWS:
    case SDNN_STEP_UNPACK_ROWS:
    case SDNN_STEP_PACK_CHANNELS:
    case SDNN_STEP_UNPACK_CHANNELS: {
      const int64_t blocks = step->dims[0] * ceil_div(step->dims[1], step->dims[3]);
      const int64_t floats = blocks * step->dims[2] * step->dims[3];
      schedule->num_threads = threads_for(floats, LAYOUT_MIN_PER_THREAD, blocks, max_threads);
      break;
    }
    case SDNN_STEP_IM2COL:
    case SDNN_STEP_DEPTHWISE:
    case SDNN_STEP_MAXPOOL:
    case SDNN_STEP_AVGPOOL:
    case SDNN_STEP_GLOBAL_AVGPOOL:
    case SDNN_STEP_DEPTHWISE_BLOCKED:
    case SDNN_STEP_PAD_PLANES:
    case SDNN_STEP_CROP:
    case SDNN_STEP_ZERO_BORDERS:
      schedule->num_threads = threads_for(sdnn_window_work(step), WINDOW_MIN_PER_THREAD,
                                          sdnn_window_units(step), max_threads);
      break;
    case SDNN_STEP_ELEMENTWISE: {
      const sdnn_elementwise_params* p = step->params;
      const int64_t units = sdnn_elementwise_units(p);
      schedule->num_threads =
          threads_for(units * p->dims[p->rank - 1], ELEMENTWISE_MIN_PER_THREAD, units, max_threads);
      break;
    }
    case SDNN_STEP_REDUCE_MEAN:
    case SDNN_STEP_SOFTMAX: {
      const int64_t units = step->op == SDNN_STEP_SOFTMAX ? sdnn_softmax_units(step->dims)
                                                          : sdnn_reduce_mean_units(step->dims);
      schedule->num_threads = threads_for(step->dims[0] * step->dims[1] * step->dims[2],
                                          ELEMENTWISE_MIN_PER_THREAD, units, max_threads);
      break;
    }
    case SDNN_STEP_MATMUL: {
      const sdnn_matmul_params* p = step->params;
      int64_t items = 1;
      for (uint32_t d = 0; d < p->batch_rank; ++d) items *= p->batch_dims[d];
      schedule->num_threads = threads_for(items * p->m * p->n * p->k, FLOPS_MIN_PER_THREAD,
                                          sdnn_matmul_units(p), max_threads);
      break;
    }
    case SDNN_STEP_LAYERNORM: {
      const sdnn_norm_params* p = step->params;
      schedule->num_threads = threads_for(p->tokens * p->features, ELEMENTWISE_MIN_PER_THREAD,
                                          sdnn_layernorm_units(p), max_threads);
      break;
    }
    case SDNN_STEP_ATTENTION: {
      const sdnn_attention_params* p = step->params;
      const int64_t units = sdnn_attention_units(p);
      schedule->num_threads = threads_for(units * p->seq * p->head_dim * p->vl * 2,
                                          FLOPS_MIN_PER_THREAD, units, max_threads);
      break;
    }
    case SDNN_STEP_CAST_I64:
    case SDNN_STEP_GATHER_ROWS: {
      const int64_t n = step->dims[0], per = step->op == SDNN_STEP_GATHER_ROWS ? step->dims[1] : 1;
      schedule->num_threads = threads_for(n * per, ELEMENTWISE_MIN_PER_THREAD, n, max_threads);
      break;
    }
    default: {
      const int64_t floats = step->dims[0];
      schedule->num_threads = threads_for(floats, ELEMENTWISE_MIN_PER_THREAD,
                                          ceil_div(floats, ELEMENTWISE_CHUNK), max_threads);
      break;
    }
  }
  return 0;
}

static void run_kernel_tasks(const sdnn_kernel_step* k, const sdnn_kernel_split* split,
                             int thread, const float* b_base, float* c_base, const float* r_base) {
  const int64_t tiles = k->num_tiles;
  for (int64_t i = split->first[thread]; i < split->first[thread + 1]; ++i) {
    const sdnn_kernel_task task = split->tasks[i];
    for (int64_t item = task.b0; item < task.b1; ++item) {
      const float* b = b_base + item * k->b_batch_stride + task.n0 * k->b_col_scale;
      float* c = c_base + item * k->c_batch_stride + task.n0 * k->c_col_scale;
      const float* r = k->residual ? r_base + item * k->c_batch_stride + task.n0 * k->c_col_scale : NULL;
      for (int64_t kb = 0; kb < k->num_k_blocks; ++kb) {
        const sdnn_kernel_args args = {
            .b = b,
            .c = c,
            .values = k->values + k->block_offsets[kb * tiles + task.t0],
            .bias = k->bias,
            .n = task.n1 - task.n0,
            .block_begin = kb * tiles + task.t0,
            .block_end = kb * tiles + task.t1,
            .residual = r,
            .col0 = task.n0,
        };
        k->fn(&args);
      }
    }
  }
}

/* UNPACK_CHANNELS of a small image (fewer than 4 column blocks a thread) splits features, not
 * blocks: the threads' blocks would share the cache lines of every output row, which both write
 * (7 x 7 x 2048: 2.3x slower with two threads than with one), and the kernel before such an
 * unpack splits its rows (features) anyway. */
static int unpack_by_features(int64_t blocks, int threads) { return blocks < 4 * (int64_t)threads; }

/* Thread `thread`'s share of a pack or unpack: a contiguous range of (batch item, column block), or
 * of (batch item, feature) when unpack_by_features. */
static void run_layout_share(const sdnn_bound_step* bound, int thread, int threads) {
  const int64_t* dims = bound->step->dims;
  const int64_t batch = dims[0], n = dims[1], f = dims[2], vl = dims[3];
  const int64_t blocks = ceil_div(n, vl);
  const int64_t plain_stride = n * f, blocked_stride = blocks * f * vl;
  void (*move)(float*, const float*, int64_t, int64_t, int64_t, int64_t, int64_t);
  int64_t src_stride = blocked_stride, dst_stride = plain_stride;
  switch (bound->step->op) {
    case SDNN_STEP_PACK_ROWS:
      move = sdnn_pack_rows;
      src_stride = plain_stride;
      dst_stride = blocked_stride;
      break;
    case SDNN_STEP_PACK_CHANNELS:
      move = sdnn_pack_channels;
      src_stride = plain_stride;
      dst_stride = blocked_stride;
      break;
    case SDNN_STEP_UNPACK_ROWS:
      move = sdnn_unpack_rows;
      break;
    default:
      move = sdnn_unpack_channels;
      break;
  }
  if (bound->step->op == SDNN_STEP_UNPACK_CHANNELS && unpack_by_features(blocks, threads)) {
    const int64_t end = batch * f * (thread + 1) / threads;
    for (int64_t u = batch * f * thread / threads; u < end;) {
      const int64_t item = u / f, f1 = end < (item + 1) * f ? end - item * f : f;
      sdnn_unpack_channel_rows(bound->dst + item * dst_stride, bound->src0 + item * src_stride, n, f, vl, u - item * f,
                               f1);
      u = item * f + f1;
    }
    return;
  }
  int64_t unit = batch * blocks * thread / threads;
  const int64_t unit_end = batch * blocks * (thread + 1) / threads;
  while (unit < unit_end) {
    const int64_t item = unit / blocks;
    const int64_t item_end = unit_end < (item + 1) * blocks ? unit_end : (item + 1) * blocks;
    move(bound->dst + item * dst_stride, bound->src0 + item * src_stride, n, f, vl,
         unit - item * blocks, item_end - item * blocks);
    unit = item_end;
  }
}

/* Thread `thread`'s share of a tensor step: a contiguous range of its units. */
static int run_tensor_share(const sdnn_context* c, const sdnn_bound_step* bound, int thread,
                            int threads) {
  const sdnn_step* step = bound->step;
  const uint32_t cpu = c->plan->required_cpu;
  int64_t units;
  switch (step->op) {
    case SDNN_STEP_CAST_I64: {
      const int64_t* src = (const int64_t*)(const void*)bound->src0;
      const int64_t n = step->dims[0];
      for (int64_t i = n * thread / threads; i < n * (thread + 1) / threads; ++i) bound->dst[i] = (float)src[i];
      return 1;
    }
    case SDNN_STEP_GATHER_ROWS: {
      const int64_t* idx = (const int64_t*)(const void*)bound->src0;
      const float* table = step->params;
      const int64_t n = step->dims[0], width = step->dims[1], rows = step->dims[2];
      for (int64_t t = n * thread / threads; t < n * (thread + 1) / threads; ++t) {
        const int64_t r = idx[t] < 0 ? idx[t] + rows : idx[t]; /* graph inputs: checked by sdnn_run */
        if (r >= 0 && r < rows)
          memcpy(bound->dst + t * width, table + r * width, (size_t)width * sizeof(float));
        else
          memset(bound->dst + t * width, 0, (size_t)width * sizeof(float));
      }
      return 1;
    }
    case SDNN_STEP_ELEMENTWISE:
      units = sdnn_elementwise_units(step->params);
      sdnn_elementwise_run(step->params, bound->dst, bound->src0, bound->src1,
                           units * thread / threads, units * (thread + 1) / threads, cpu);
      return 1;
    case SDNN_STEP_REDUCE_MEAN:
      units = sdnn_reduce_mean_units(step->dims);
      sdnn_reduce_mean_run(step->dims, bound->dst, bound->src0, units * thread / threads,
                           units * (thread + 1) / threads);
      return 1;
    case SDNN_STEP_SOFTMAX:
      units = sdnn_softmax_units(step->dims);
      sdnn_softmax_run(step->dims, bound->dst, bound->src0, units * thread / threads,
                       units * (thread + 1) / threads, cpu);
      return 1;
    case SDNN_STEP_MATMUL:
      units = sdnn_matmul_units(step->params);
      sdnn_matmul_run(step->params, bound->dst, bound->src0, bound->src1, units * thread / threads,
                      units * (thread + 1) / threads, cpu);
      return 1;
    case SDNN_STEP_LAYERNORM:
      units = sdnn_layernorm_units(step->params);
      sdnn_layernorm_run(step->params, bound->dst, bound->src0, units * thread / threads,
                         units * (thread + 1) / threads, cpu);
      return 1;
    case SDNN_STEP_ATTENTION:
      units = sdnn_attention_units(step->params);
      sdnn_attention_run(step->params, bound->dst, bound->src0, bound->src1, bound->src2,
                         bound->src3, c->scratch + c->scratch_floats * (size_t)thread,
                         units * thread / threads, units * (thread + 1) / threads, cpu);
      return 1;
    default:
      return 0;
  }
}

static void run_share(const sdnn_context* c, const sdnn_bound_step* bound, int thread) {
  const int threads = bound->schedule->num_threads;
  if (thread >= threads) return;
  const sdnn_step* step = bound->step;
  if (run_tensor_share(c, bound, thread, threads)) return;
  if (step->op == SDNN_STEP_KERNEL) {
    run_kernel_tasks(step->kernel, &bound->schedule->split, thread, bound->src0, bound->dst, bound->src1);
    return;
  }
  if (step->op == SDNN_STEP_DEPTHWISE_BLOCKED) {
    const int64_t units = sdnn_window_units(step);
    sdnn_depthwise_blocked_run(step, bound->src0, bound->dst,
                               c->scratch + c->scratch_floats * (size_t)thread,
                               units * thread / threads, units * (thread + 1) / threads,
                               c->plan->required_cpu);
    return;
  }
  if (step->op == SDNN_STEP_ZERO_BORDERS) {
    const int64_t units = sdnn_window_units(step);
    sdnn_zero_borders_run(step, bound->dst, units * thread / threads, units * (thread + 1) / threads);
    return;
  }
  if (step->op == SDNN_STEP_PAD_PLANES || step->op == SDNN_STEP_CROP) {
    const int64_t units = sdnn_window_units(step);
    sdnn_planes_run(step, bound->src0, bound->src1, bound->dst, c->scratch + c->scratch_floats * (size_t)thread,
                    units * thread / threads, units * (thread + 1) / threads, c->plan->required_cpu);
    return;
  }
  if (is_window_op(step->op)) {
    const int64_t units = sdnn_window_units(step);
    sdnn_window_run(step, bound->src0, bound->dst, units * thread / threads,
                    units * (thread + 1) / threads, c->plan->required_cpu);
    return;
  }
  if (step->op != SDNN_STEP_COPY && step->op != SDNN_STEP_RELU && step->op != SDNN_STEP_ADD &&
      step->op != SDNN_STEP_CLIP) {
    run_layout_share(bound, thread, threads);
    return;
  }
  const int64_t floats = step->dims[0];
  const int64_t chunks = ceil_div(floats, ELEMENTWISE_CHUNK);
  const int64_t begin = chunks * thread / threads * ELEMENTWISE_CHUNK;
  int64_t end = chunks * (thread + 1) / threads * ELEMENTWISE_CHUNK;
  if (end > floats) end = floats;
  switch (step->op) {
    case SDNN_STEP_COPY:
      sdnn_copy_range(bound->dst, bound->src0, begin, end);
      break;
    case SDNN_STEP_RELU:
      sdnn_relu_range(bound->dst, bound->src0, begin, end);
      break;
    case SDNN_STEP_ADD:
      sdnn_add_range(bound->dst, bound->src0, bound->src1, begin, end);
      break;
    case SDNN_STEP_CLIP:
      sdnn_clip_range(bound->dst, bound->src0, step->alpha, step->beta, begin, end);
      break;
  }
}

static double now_ns(void);

static void pool_job(void* arg, int thread) {
  const sdnn_context* c = arg;
  const double t0 = c->busy_ns ? now_ns() : 0;
  run_share(c, &c->current, thread);
  if (c->busy_ns)
    c->busy_ns[((size_t)(c->current.step - c->plan->steps) * (size_t)c->num_threads + (size_t)thread) *
               PROFILE_STRIDE] += now_ns() - t0;
}

static void* resolve(const sdnn_context* c, sdnn_buf_ref ref, const float* const* inputs,
                     float* const* outputs) {
  char* base = ref.kind == SDNN_BUF_ARENA   ? (char*)c->arena
               : ref.kind == SDNN_BUF_INPUT ? (char*)inputs[ref.index]
                                            : (char*)outputs[ref.index];
  return base + ref.offset;
}

static double now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static const char* step_name(uint32_t op) {
  static const char* const names[] = {"?", "kernel", "pack_rows", "copy", "relu", "add", "unpack_rows",
                                      "pack_channels", "unpack_channels", "im2col", "depthwise", "maxpool",
                                      "avgpool", "global_avgpool", "clip", "elementwise", "reduce_mean",
                                      "softmax", "matmul", "layernorm", "attention", "depthwise_blocked", "pad_planes", "crop", "cast_i64",
                                      "gather_rows", "zero_borders"};
  return op < sizeof names / sizeof names[0] ? names[op] : "?";
}

/* SDNN_PROFILE=1: at context free, the mean time of every step over the context's runs and, for a
 * step split over threads, each thread's mean time in its share (the rest of the step's time is
 * waiting: for the slowest share, and the pool's wake-up and barrier). */
static void print_profile(const sdnn_context* c) {
  double total = 0;
  const double runs = (double)c->runs;
  for (uint32_t i = 0; i < c->plan->num_steps; ++i) total += c->step_ns[i];
  fprintf(stderr, "sdnn profile: %llu runs, %.1f us per run, %d threads\n", (unsigned long long)c->runs,
          total / 1e3 / runs, c->num_threads);
  for (uint32_t i = 0; i < c->plan->num_steps; ++i) {
    const sdnn_step* s = &c->plan->steps[i];
    fprintf(stderr, "  %3u %-15s %9.1f us %5.1f%%  %s\n", i, step_name(s->op), c->step_ns[i] / 1e3 / runs,
            100.0 * c->step_ns[i] / total, s->op == SDNN_STEP_KERNEL && s->kernel->name ? s->kernel->name : "");
    const int threads = c->schedule[i].num_threads;
    if (threads < 2) continue;
    fprintf(stderr, "        threads:");
    for (int t = 0; t < threads; ++t)
      fprintf(stderr, " %.1f", c->busy_ns[((size_t)i * (size_t)c->num_threads + (size_t)t) * PROFILE_STRIDE] / 1e3 / runs);
    fprintf(stderr, " us busy\n");
  }
}

static void free_context(sdnn_context* c) {
  if (c->step_ns && c->runs) print_profile(c);
  free(c->step_ns);
  free(c->busy_ns);
  sdnn_pool_destroy(c->pool);
  if (c->schedule)
    for (uint32_t i = 0; i < c->plan->num_steps; ++i) sdnn_kernel_split_free(&c->schedule[i].split);
  free(c->schedule);
  free(c->scratch);
  free(c->arena);
  free(c);
}

SDNN_API sdnn_status sdnn_context_create(const sdnn_model* m, int num_threads,
                                         sdnn_context** out) {
  if (!out) return SDNN_ERR_INVALID_ARGUMENT;
  *out = NULL;
  if (!m || num_threads < 1 || num_threads > MAX_THREADS) return SDNN_ERR_INVALID_ARGUMENT;
  const sdnn_plan* plan = m->plan;

  sdnn_context* c = calloc(1, sizeof *c);
  if (!c) return SDNN_ERR_OUT_OF_MEMORY;
  c->plan = plan;
  c->num_threads = num_threads;
  atomic_init(&c->running, 0);

  const uint64_t arena_bytes = plan->arena_bytes ? plan->arena_bytes : ARENA_ALIGN;
  c->schedule = calloc(plan->num_steps ? plan->num_steps : 1, sizeof *c->schedule);
  if (arena_bytes > SIZE_MAX || !c->schedule ||
      posix_memalign(&c->arena, ARENA_ALIGN, (size_t)arena_bytes) != 0) {
    c->arena = NULL;
    free_context(c);
    return SDNN_ERR_OUT_OF_MEMORY;
  }

  int pool_threads = 1;
  for (uint32_t i = 0; i < plan->num_steps; ++i) {
    if (make_schedule(&c->schedule[i], &plan->steps[i], num_threads) != 0) {
      free_context(c);
      return SDNN_ERR_OUT_OF_MEMORY;
    }
    if (c->schedule[i].num_threads > pool_threads) pool_threads = c->schedule[i].num_threads;
  }
  if (plan->scratch_bytes) {
    c->scratch_floats = (size_t)((plan->scratch_bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN / sizeof(float));
    void* scratch = NULL;
    if (posix_memalign(&scratch, ARENA_ALIGN, c->scratch_floats * sizeof(float) * (size_t)num_threads) != 0) {
      free_context(c);
      return SDNN_ERR_OUT_OF_MEMORY;
    }
    c->scratch = scratch;
  }
  const char* profile = getenv("SDNN_PROFILE");
  if (profile && *profile && *profile != '0' &&
      (!(c->step_ns = calloc(plan->num_steps ? plan->num_steps : 1, sizeof *c->step_ns)) ||
       !(c->busy_ns = calloc(((size_t)plan->num_steps + 1) * (size_t)num_threads * PROFILE_STRIDE,
                             sizeof *c->busy_ns)))) {
    free_context(c);
    return SDNN_ERR_OUT_OF_MEMORY;
  }
  if (pool_threads > 1 && !(c->pool = sdnn_pool_create(pool_threads))) {
    free_context(c);
    return SDNN_ERR_OUT_OF_MEMORY;
  }
  *out = c;
  return SDNN_OK;
}

SDNN_API void sdnn_context_free(sdnn_context* c) {
  if (c) free_context(c);
}

SDNN_API sdnn_status sdnn_run(sdnn_context* c, const float* const* inputs, float* const* outputs) {
  if (!c || !inputs || !outputs) return SDNN_ERR_INVALID_ARGUMENT;
  const sdnn_plan* plan = c->plan;
  for (uint32_t i = 0; i < plan->num_inputs; ++i)
    if (!inputs[i]) return SDNN_ERR_INVALID_ARGUMENT;
  for (uint32_t i = 0; i < plan->num_outputs; ++i)
    if (!outputs[i]) return SDNN_ERR_INVALID_ARGUMENT;
  if (atomic_exchange_explicit(&c->running, 1, memory_order_acquire))
    return SDNN_ERR_INVALID_ARGUMENT;
  /* Index inputs select table rows: every index must be in range before anything runs. */
  for (uint32_t i = 0; i < plan->num_steps; ++i) {
    const sdnn_step* step = &plan->steps[i];
    if (step->op != SDNN_STEP_GATHER_ROWS || step->src0.kind != SDNN_BUF_INPUT) continue;
    const int64_t* idx = (const int64_t*)(const void*)((const char*)inputs[step->src0.index] + step->src0.offset);
    for (int64_t t = 0; t < step->dims[0]; ++t)
      if (idx[t] < -step->dims[2] || idx[t] >= step->dims[2]) {
        atomic_store_explicit(&c->running, 0, memory_order_release);
        return SDNN_ERR_INVALID_ARGUMENT;
      }
  }

  for (uint32_t i = 0; i < plan->num_steps; ++i) {
    const sdnn_step* step = &plan->steps[i];
    sdnn_bound_step* bound = &c->current;
    bound->step = step;
    bound->schedule = &c->schedule[i];
    bound->src0 = resolve(c, step->src0, inputs, outputs);
    /* only the refs the op reads (plan_check validated those, not the others) */
    const int tensor = step->op >= SDNN_STEP_ELEMENTWISE; /* refs they do not read are zero */
    const int residual = step->op == SDNN_STEP_KERNEL && step->kernel->residual;
    bound->src1 = step->op == SDNN_STEP_ADD || tensor || residual ? resolve(c, step->src1, inputs, outputs) : NULL;
    bound->src2 = tensor ? resolve(c, step->src2, inputs, outputs) : NULL;
    bound->src3 = tensor ? resolve(c, step->src3, inputs, outputs) : NULL;
    bound->dst = resolve(c, step->dst, inputs, outputs);
    const double t0 = c->step_ns ? now_ns() : 0;
    if (bound->schedule->num_threads > 1)
      sdnn_pool_run(c->pool, pool_job, c);
    else
      run_share(c, bound, 0);
    if (c->step_ns) c->step_ns[i] += now_ns() - t0;
  }
  c->runs += c->step_ns != NULL;

  atomic_store_explicit(&c->running, 0, memory_order_release);
  return SDNN_OK;
}
