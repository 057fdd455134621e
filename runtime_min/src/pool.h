/* pool.h — the worker threads of one context (see pool.c). */
#ifndef SDNN_RUNTIME_POOL_H
#define SDNN_RUNTIME_POOL_H

typedef struct sdnn_pool sdnn_pool;

/* Runs on every thread of the pool; thread_index 0 is the caller of sdnn_pool_run. */
typedef void (*sdnn_pool_job)(void* arg, int thread_index);

/* num_threads >= 2: the caller plus num_threads - 1 workers. NULL on failure (out of memory or
 * no threads available); then no thread is left running. */
sdnn_pool* sdnn_pool_create(int num_threads);

/* Runs job(arg, i) for every i in [0, num_threads), i = 0 on the calling thread, and returns when
 * all have finished (a barrier). Only one thread may call it at a time. */
void sdnn_pool_run(sdnn_pool* pool, sdnn_pool_job job, void* arg);

/* Stops and joins the workers. Accepts NULL. */
void sdnn_pool_destroy(sdnn_pool* pool);

#endif /* SDNN_RUNTIME_POOL_H */
