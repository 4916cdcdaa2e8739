/* A small fixed pool of worker threads for the CPU backend.
 *
 * hp_pool_run(p, ntasks, fn, arg) calls fn(arg, task, tid) once for every task in [0, ntasks),
 * spread over the pool's threads (the caller is thread 0 and works too), and returns when all
 * have finished. Tasks are claimed dynamically, so which thread runs a task varies from run to
 * run: a task must write only its own outputs and use only scratch indexed by `tid`; then the
 * result does not depend on the thread count. Not reentrant: one hp_pool_run at a time. */
#ifndef HP_THREADPOOL_H
#define HP_THREADPOOL_H

#include <stdint.h>

typedef struct hp_pool hp_pool;
typedef void (*hp_pool_fn)(void *arg, int64_t task, int tid);

/* A pool of `nthreads` threads in all (the caller counts as one). If some threads cannot be
 * started the pool runs with fewer (hp_pool_size says how many); NULL only when out of memory. */
hp_pool *hp_pool_create(int nthreads);
int hp_pool_size(const hp_pool *p);
void hp_pool_run(hp_pool *p, int64_t ntasks, hp_pool_fn fn, void *arg);
/* Accepts NULL. */
void hp_pool_destroy(hp_pool *p);

#endif
