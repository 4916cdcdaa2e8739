/* server/metrics.h: a small fixed table of (method, route) series, each a latency histogram. */
#include "server/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SERIES 64
static const double BUCKETS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define N_BUCKETS ((int)(sizeof BUCKETS / sizeof BUCKETS[0]))

typedef struct {
    char method[8], route[48];
    int64_t counts[N_BUCKETS], total, by_class[6];
    double sum;
} series;

struct hp_metrics {
    pthread_mutex_t mu;
    series s[MAX_SERIES];
    int n;
    int64_t tiles;
    double tiles_window_start, tiles_rate;
    int64_t tiles_window;
};

hp_metrics *hp_metrics_create(void)
{
    hp_metrics *m = calloc(1, sizeof *m);
    if (m)
        pthread_mutex_init(&m->mu, NULL);
    return m;
}

void hp_metrics_destroy(hp_metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void hp_metrics_request(hp_metrics *m, const char *method, const char *route, int status,
                        double seconds)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    series *s = NULL;
    for (int i = 0; i < m->n && !s; i++)
        if (!strcmp(m->s[i].method, method) && !strcmp(m->s[i].route, route))
            s = &m->s[i];
    if (!s && m->n < MAX_SERIES) {
        s = &m->s[m->n++];
        snprintf(s->method, sizeof s->method, "%s", method);
        snprintf(s->route, sizeof s->route, "%s", route);
    }
    if (s) {
        for (int b = 0; b < N_BUCKETS; b++)
            if (seconds <= BUCKETS[b])
                s->counts[b]++;
        s->total++;
        s->sum += seconds;
        int cls = status / 100;
        s->by_class[cls >= 1 && cls <= 5 ? cls : 0]++;
    }
    pthread_mutex_unlock(&m->mu);
}

void hp_metrics_tiles(hp_metrics *m, int64_t tiles)
{
    if (!m || tiles <= 0)
        return;
    pthread_mutex_lock(&m->mu);
    m->tiles += tiles;
    m->tiles_window += tiles;
    pthread_mutex_unlock(&m->mu);
}

typedef struct {
    char *p;
    size_t n, cap;
    int fail;
} buf;

__attribute__((format(printf, 2, 3))) static void put(buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->n;
        int w = b->p ? vsnprintf(b->p + b->n, room, fmt, ap) : -1;
        va_end(ap);
        if (w >= 0 && (size_t)w < room) {
            b->n += (size_t)w;
            return;
        }
        size_t nc = b->cap ? b->cap * 2 : 8192;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->fail = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
}

char *hp_metrics_render(hp_metrics *m, const hp_store_stats *st, double now_s)
{
    static const char *const STATES[5] = {"queued", "running", "succeeded", "failed", "cancelled"};
    buf b = {0};
    put(&b, "# HELP histoplan_jobs Jobs in the store by state.\n# TYPE histoplan_jobs gauge\n");
    for (int k = 0; k < 5; k++)
        put(&b, "histoplan_jobs{state=\"%s\"} %lld\n", STATES[k], (long long)st->by_state[k]);
    put(&b, "# HELP histoplan_queue_oldest_seconds Age of the oldest queued job.\n"
            "# TYPE histoplan_queue_oldest_seconds gauge\nhistoplan_queue_oldest_seconds %.3f\n",
        st->oldest_queued_s);
    put(&b, "# HELP histoplan_callbacks_pending Callbacks not yet delivered or given up.\n"
            "# TYPE histoplan_callbacks_pending gauge\nhistoplan_callbacks_pending %lld\n",
        (long long)st->outbox_pending);
    put(&b, "# HELP histoplan_workers Workers seen in the last minute.\n"
            "# TYPE histoplan_workers gauge\nhistoplan_workers %lld\n", (long long)st->workers_alive);
    put(&b, "# HELP histoplan_store_tiles_per_second Tiles of jobs finished in the last minute, "
            "per second (all workers).\n# TYPE histoplan_store_tiles_per_second gauge\n"
            "histoplan_store_tiles_per_second %.3f\n", st->tiles_done_recent / 60.0);

    pthread_mutex_lock(&m->mu);
    if (m->tiles_window_start == 0)
        m->tiles_window_start = now_s;
    double span = now_s - m->tiles_window_start;
    if (span >= 10) {
        m->tiles_rate = m->tiles_window / span;
        m->tiles_window = 0;
        m->tiles_window_start = now_s;
    }
    put(&b, "# HELP histoplan_tiles_total Tiles analysed by this process's workers.\n"
            "# TYPE histoplan_tiles_total counter\nhistoplan_tiles_total %lld\n",
        (long long)m->tiles);
    put(&b, "# HELP histoplan_tiles_per_second Tiles per second analysed by this process "
            "(over the last window of at least 10 s).\n# TYPE histoplan_tiles_per_second gauge\n"
            "histoplan_tiles_per_second %.3f\n", m->tiles_rate);
    put(&b, "# HELP histoplan_http_request_duration_seconds Request latency by route.\n"
            "# TYPE histoplan_http_request_duration_seconds histogram\n");
    for (int i = 0; i < m->n; i++) {
        const series *s = &m->s[i];
        for (int k = 0; k < N_BUCKETS; k++)
            put(&b, "histoplan_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                    "le=\"%g\"} %lld\n", s->method, s->route, BUCKETS[k], (long long)s->counts[k]);
        put(&b, "histoplan_http_request_duration_seconds_bucket{method=\"%s\",route=\"%s\","
                "le=\"+Inf\"} %lld\n", s->method, s->route, (long long)s->total);
        put(&b, "histoplan_http_request_duration_seconds_sum{method=\"%s\",route=\"%s\"} %.6f\n",
            s->method, s->route, s->sum);
        put(&b, "histoplan_http_request_duration_seconds_count{method=\"%s\",route=\"%s\"} %lld\n",
            s->method, s->route, (long long)s->total);
    }
    put(&b, "# HELP histoplan_http_responses_total Responses by status class.\n"
            "# TYPE histoplan_http_responses_total counter\n");
    for (int i = 0; i < m->n; i++)
        for (int c = 1; c <= 5; c++)
            if (m->s[i].by_class[c])
                put(&b, "histoplan_http_responses_total{method=\"%s\",route=\"%s\",class=\"%dxx\"} "
                        "%lld\n", m->s[i].method, m->s[i].route, c, (long long)m->s[i].by_class[c]);
    pthread_mutex_unlock(&m->mu);
    if (b.fail) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
