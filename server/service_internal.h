/* The running service's shared state, seen by its parts (HTTP stages, handlers, workers, the
 * callback sender, the sweeper). Not an API. */
#ifndef HP_SERVER_SERVICE_INTERNAL_H
#define HP_SERVER_SERVICE_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>

#include "server/db_pool.h"
#include "server/heatmap_grid.h"
#include "server/metrics.h"
#include "server/rate_limit.h"
#include "server/service.h"
#include "server/slide_pool.h"
#include "server/tile_cache.h"
#include "server/store.h"

typedef struct hp_service {
    hp_service_config cfg;
    char data_dir[PATH_MAX];                       /* absolute */
    char roots[HP_SERVICE_MAX_ROOTS][PATH_MAX];    /* slide roots, absolute and resolved */
    int n_roots;
    char model_path[PATH_MAX];
    char model_ref[256];                           /* the card's "name@version" */
    /* One model in memory per process, shared by the workers (hp_model serializes runs): the
     * backend runs whichever worker's batch is ready while the others read tiles or write. */
    struct hp_model *model;
    char model_sha[65];
    /* The zoo's faithful super-resolution models for jobs whose options ask
     * "super_resolution": "auto" (pipeline/analyze_sr.h); each worker opens its own copies, since
     * a run sets an SR model's input size for its slide. */
#define HP_SERVICE_SR_MAX 2
    char sr_paths[HP_SERVICE_SR_MAX][PATH_MAX];
    char sr_sha[HP_SERVICE_SR_MAX][65];
    int n_sr;
    hp_db_pool *pool;
    hp_rate_limiter *rate;
    hp_metrics *metrics;
    hp_tile_cache *tiles;                          /* encoded tiles (the tile server) */
    hp_slide_pool *slides;                         /* slides open for tiles */
    struct hp_sessions *sessions;                  /* viewer sessions (server/session.h) */
    hp_heatmap_cache *heatmaps;                    /* parsed tiles.csv of jobs being viewed */
    hp_lease_config lease;
    atomic_int stopping;                           /* no new requests or claims */
    pthread_mutex_t wake_mu;                       /* workers and senders sleep here */
    pthread_cond_t wake_cv;
    int tls;
} hp_service;

/* Wakes sleeping workers and the callback sender (a batch was created, a job ended). */
void hp_service_wake(hp_service *s);
/* Sleeps up to `ms` or until woken or stopping. */
void hp_service_sleep(hp_service *s, int ms);

/* Joins `rel` to the data folder. */
int hp_service_path(const hp_service *s, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
