/* The lab batch service: `histoplan serve` (HTTP API, in-process workers, callback sender) and
 * `histoplan worker` (workers only, against a shared PostgreSQL store and data folder).
 *
 * The data folder DIR holds the SQLite store (histoplan.db, unless --db names PostgreSQL),
 * uploads/<sha256> (uploaded slides), results/<job-id>/a<fence>/<slide-id>/ (each run's analyze
 * output, exactly as `histoplan analyze` writes it; the job records which run's folder is its
 * result) and cases/<case-id>/ (case reports). No name under DIR carries a slide's file name or
 * an accession number. */
#ifndef HP_SERVER_SERVICE_H
#define HP_SERVER_SERVICE_H

#include <stdint.h>

#include "common/status.h"
#include "kernels/backend.h"

#define HP_SERVICE_MAX_ROOTS 16

typedef struct {
    const char *data_dir;
    const char *db;        /* "sqlite" (DIR/histoplan.db) or a postgresql:// URI */
    const char *listen;    /* host:port (default 127.0.0.1:8480; port 0 picks a free one) */
    int insecure_listen;   /* allow a non-loopback address without TLS */
    const char *tls_cert, *tls_key; /* PEM files; both or neither */
    int workers;           /* in-process workers (serve); each holds one model instance */
    const char *slide_roots[HP_SERVICE_MAX_ROOTS];
    int n_slide_roots;
    const char *model_path; /* NULL: the default model */
    const char *backend;    /* "cpu" or "cuda" */
    hp_precision sr_precision; /* the super-resolution models' (fp16 / bf16: cuda only) */
    int threads;            /* tile reader threads per analysis (<= 0: all CPUs) */
    int batch;              /* tiles per model batch */
    /* Limits. */
    int64_t max_upload;     /* bytes per uploaded slide */
    int64_t max_body;       /* bytes of a JSON request body */
    int max_slides;         /* slides per batch */
    int max_headers;        /* request header lines */
    int max_json_depth;
    double rate_limit;      /* requests per second per token (burst: twice as many) */
    int http_threads;
    int tile_cache_mb;      /* encoded tiles kept in memory (server/tile_cache.h) */
    int client_timeout_s;   /* a connection idle this long is closed (slow clients) */
    /* Leases and retries. */
    int lease_s, heartbeat_s, max_attempts;
    int64_t retry_base_ms;          /* a failed attempt's first backoff */
    int64_t callback_retry_base_ms; /* a failed callback's first backoff */
    int64_t callback_give_up_ms;    /* callbacks are retried this long (a day) */
    int http;               /* 0: no HTTP server (histoplan worker) */
    /* Written once the server listens: "http(s)://host:port" (tests read it from stdout). */
    void (*on_listening)(const char *url);
} hp_service_config;

void hp_service_config_init(hp_service_config *c);

/* Runs until SIGTERM or SIGINT: migrates the store, starts the HTTP server (when c->http), the
 * workers, the callback sender and the sweeper. On the signal it stops taking requests and
 * claims, lets running analyses finish for up to `stop_grace_s` seconds, hands back the jobs
 * that did not (queued again, the attempt not counted), and returns. An analysis cannot be
 * interrupted mid-slide: when one was handed back, *still_running is set and its thread is still
 * running, so the caller ends the process at once (_exit) rather than through exit(), whose
 * destructors would pull libraries out from under that thread. Errors at start (a bad option, an
 * unusable store, a busy data folder, an unreadable certificate, a model that does not load)
 * return with `err` naming the cause. */
hp_status hp_service_run(const hp_service_config *c, int stop_grace_s, int *still_running,
                         hp_error *err);

/* The job store target for a data folder and a --db value: DIR/histoplan.db for "sqlite". */
hp_status hp_service_db_target(const char *data_dir, const char *db, char *out, size_t n,
                               hp_error *err);

#endif
