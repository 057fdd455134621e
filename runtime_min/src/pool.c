/* pool.c — a fork-join thread pool: the caller publishes a job, every thread runs its share, the
 * caller waits until all are done.
 *
 * Synchronization (two futex words, Linux only, as is the whole runtime):
 *   generation  bumped by the caller to publish a job; workers wait for it to change.
 *   remaining   workers still running the current job; the caller waits for 0.
 * Waiters spin briefly (steps of one inference follow each other within microseconds), then sleep
 * in futex_wait, so an idle context costs no CPU. Wake-ups are skipped when nobody sleeps: the
 * sleeper announces itself (sleepers / caller_sleeping) before futex_wait re-checks the word, and
 * the waker changes the word before reading the announcement — both sequentially consistent, so
 * one of them always sees the other.
 *
 * Workers block all signals (they run only our kernels), so signals go to the application's own
 * threads. */
#define _GNU_SOURCE
#include "pool.h"

#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xmmintrin.h>

enum {
  SPIN_ITERATIONS = 2048,       /* pause instructions before sleeping: tens of microseconds */
  WORKER_STACK_BYTES = 1 << 20, /* kernels and runtime use little stack */
  CACHE_LINE = 64,
};

typedef struct {
  sdnn_pool* pool;
  int index;
  pthread_t thread;
} worker;

struct sdnn_pool {
  /* Written by the caller before bumping `generation`, read by workers after seeing the bump. */
  sdnn_pool_job job;
  void* arg;
  int num_workers;
  worker* workers;

  _Alignas(CACHE_LINE) atomic_uint generation;
  atomic_uint sleepers;
  atomic_int stop;

  _Alignas(CACHE_LINE) atomic_uint remaining;
  atomic_uint caller_sleeping;
};

static void futex_wait(atomic_uint* word, unsigned expected) {
  syscall(SYS_futex, (unsigned*)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
}

static void futex_wake_all(atomic_uint* word) {
  syscall(SYS_futex, (unsigned*)word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

/* Returns the new generation once it differs from `seen`. */
static unsigned wait_for_new_generation(sdnn_pool* pool, unsigned seen) {
  unsigned current;
  int spins = 0;
  while ((current = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen) {
    if (spins < SPIN_ITERATIONS) {
      ++spins;
      _mm_pause();
      continue;
    }
    atomic_fetch_add(&pool->sleepers, 1);
    futex_wait(&pool->generation, seen);
    atomic_fetch_sub(&pool->sleepers, 1);
  }
  return current;
}

static void* worker_main(void* arg) {
  worker* self = arg;
  sdnn_pool* pool = self->pool;
  unsigned seen = 0;
  for (;;) {
    seen = wait_for_new_generation(pool, seen);
    if (atomic_load_explicit(&pool->stop, memory_order_relaxed)) break;
    pool->job(pool->arg, self->index);
    if (atomic_fetch_sub(&pool->remaining, 1) == 1 && atomic_load(&pool->caller_sleeping))
      futex_wake_all(&pool->remaining);
  }
  return NULL;
}

static void publish(sdnn_pool* pool) {
  atomic_fetch_add(&pool->generation, 1);
  if (atomic_load(&pool->sleepers) > 0) futex_wake_all(&pool->generation);
}

static void stop_workers(sdnn_pool* pool, int started) {
  atomic_store_explicit(&pool->stop, 1, memory_order_relaxed);
  publish(pool);
  for (int i = 0; i < started; ++i) pthread_join(pool->workers[i].thread, NULL);
}

sdnn_pool* sdnn_pool_create(int num_threads) {
  sdnn_pool* pool = NULL;
  if (num_threads < 2 || posix_memalign((void**)&pool, CACHE_LINE, sizeof *pool) != 0) return NULL;
  pool->job = NULL;
  pool->arg = NULL;
  pool->num_workers = num_threads - 1;
  atomic_init(&pool->generation, 0);
  atomic_init(&pool->sleepers, 0);
  atomic_init(&pool->stop, 0);
  atomic_init(&pool->remaining, 0);
  atomic_init(&pool->caller_sleeping, 0);
  pool->workers = calloc((size_t)pool->num_workers, sizeof *pool->workers);
  if (!pool->workers) {
    free(pool);
    return NULL;
  }

  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) {
    free(pool->workers);
    free(pool);
    return NULL;
  }
  pthread_attr_setstacksize(&attr, WORKER_STACK_BYTES);
  sigset_t all, previous;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &previous);

  int started = 0;
  for (; started < pool->num_workers; ++started) {
    worker* w = &pool->workers[started];
    w->pool = pool;
    w->index = started + 1;
    if (pthread_create(&w->thread, &attr, worker_main, w) != 0) break;
  }
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  pthread_attr_destroy(&attr);

  if (started < pool->num_workers) {
    stop_workers(pool, started);
    free(pool->workers);
    free(pool);
    return NULL;
  }
  return pool;
}

void sdnn_pool_run(sdnn_pool* pool, sdnn_pool_job job, void* arg) {
  pool->job = job;
  pool->arg = arg;
  atomic_store_explicit(&pool->remaining, (unsigned)pool->num_workers, memory_order_relaxed);
  publish(pool);

  job(arg, 0);

  unsigned left;
  int spins = 0;
  while ((left = atomic_load_explicit(&pool->remaining, memory_order_acquire)) != 0) {
    if (spins < SPIN_ITERATIONS) {
      ++spins;
      _mm_pause();
      continue;
    }
    atomic_store(&pool->caller_sleeping, 1);
    futex_wait(&pool->remaining, left);
    atomic_store(&pool->caller_sleeping, 0);
  }
}

void sdnn_pool_destroy(sdnn_pool* pool) {
  if (!pool) return;
  stop_workers(pool, pool->num_workers);
  free(pool->workers);
  free(pool);
}
