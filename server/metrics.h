/* In-process counters behind GET /v1/metrics: request latency per route (a Prometheus histogram),
 * responses by status, tiles analysed by this process's workers. The job figures (jobs by
 * state, queue age) come from the store when the metrics are read. Thread-safe. */
#ifndef HP_SERVER_METRICS_H
#define HP_SERVER_METRICS_H

#include <stdint.h>

#include "server/store.h"

typedef struct hp_metrics hp_metrics;

hp_metrics *hp_metrics_create(void);
void hp_metrics_destroy(hp_metrics *m);

/* `route` is the route's template ("/v1/jobs/{id}"), never the raw path. */
void hp_metrics_request(hp_metrics *m, const char *method, const char *route, int status,
                        double seconds);
void hp_metrics_tiles(hp_metrics *m, int64_t tiles);

/* The Prometheus text exposition (version 0.0.4) of everything; the caller frees it. */
char *hp_metrics_render(hp_metrics *m, const hp_store_stats *st, double now_s);

#endif
