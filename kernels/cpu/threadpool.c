/* Fixed pthread pool. Workers sleep on a condition variable between runs, after a short spin:
 * a network runs hundreds of small ops back to back, and a futex wake-up per op would cost
 * more than some of the ops themselves. */
#include "kernels/cpu/threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

struct hp_pool {
    int n; /* threads including the caller */
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    int stop;
    /* the current run */
    atomic_uint_fast64_t gen;
    hp_pool_fn fn;
    void *arg;
    int64_t ntasks;
    atomic_int_fast64_t next;
    atomic_int active; /* workers not yet finished with the current generation */
};

typedef struct {
    hp_pool *p;
    int tid;
} worker_arg;

static void drain(hp_pool *p, int tid)
{
    for (;;) {
        int64_t t = atomic_fetch_add(&p->next, 1);
        if (t >= p->ntasks)
            break;
        p->fn(p->arg, t, tid);
    }
}

/* Spin iterations before sleeping; a few tens of microseconds on current cores. */
#define HP_POOL_SPIN 20000

static void *worker(void *a)
{
    worker_arg *wa = a;
    hp_pool *p = wa->p;
    int tid = wa->tid;
    free(wa);
    uint64_t seen = 0;
    for (;;) {
        int spins = 0;
        while (atomic_load_explicit(&p->gen, memory_order_acquire) == seen && spins < HP_POOL_SPIN) {
            spins++;
            if ((spins & 255) == 0)
                sched_yield();
        }
        pthread_mutex_lock(&p->mu);
        while (!p->stop && atomic_load(&p->gen) == seen)
            pthread_cond_wait(&p->cv_work, &p->mu);
        if (p->stop) {
            pthread_mutex_unlock(&p->mu);
            break;
        }
        seen = atomic_load(&p->gen);
        pthread_mutex_unlock(&p->mu);
        drain(p, tid);
        if (atomic_fetch_sub(&p->active, 1) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

hp_pool *hp_pool_create(int nthreads)
{
    if (nthreads < 1)
        nthreads = 1;
    hp_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->th = calloc((size_t)nthreads, sizeof *p->th);
    if (!p->th) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->next, 0);
    atomic_init(&p->active, 0);
    p->n = 1;
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa)
            break;
        wa->p = p;
        wa->tid = i;
        if (pthread_create(&p->th[i], NULL, worker, wa) != 0) {
            free(wa);
            break; /* run with the threads we have */
        }
        p->n = i + 1;
    }
    return p;
}

int hp_pool_size(const hp_pool *p)
{
    return p ? p->n : 1;
}

void hp_pool_run(hp_pool *p, int64_t ntasks, hp_pool_fn fn, void *arg)
{
    if (ntasks <= 0)
        return;
    if (!p || p->n == 1 || ntasks == 1) {
        for (int64_t t = 0; t < ntasks; t++)
            fn(arg, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->active, p->n - 1);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    drain(p, 0);
    /* Spin first: the other workers usually finish within microseconds of the caller. */
    for (int spins = 0; atomic_load(&p->active) > 0 && spins < HP_POOL_SPIN; spins++)
        if ((spins & 255) == 255)
            sched_yield();
    if (atomic_load(&p->active) > 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->active) > 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void hp_pool_destroy(hp_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++)
        pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    free(p->th);
    free(p);
}
