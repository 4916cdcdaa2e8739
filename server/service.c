/* server/service.h: start, run until a signal, stop. */
#include "server/service.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/sha256.h"
#include "models/card.h"
#include "models/model.h"
#include "models/zoo.h"
#include "server/deliver.h"
#include "server/http.h"
#include "server/service_internal.h"
#include "server/session.h"
#include "server/sweeper.h"
#include "server/worker.h"

void hp_service_config_init(hp_service_config *c)
{
    memset(c, 0, sizeof *c);
    c->db = "sqlite";
    c->listen = "127.0.0.1:8480";
    c->workers = 1;
    c->backend = "cpu";
    c->batch = 16;
    c->max_upload = 4LL << 30;
    c->max_body = 1 << 20;
    c->max_slides = 1000;
    c->max_headers = 64;
    c->max_json_depth = 32;
    c->rate_limit = 100;
    c->http_threads = 4;
    c->tile_cache_mb = 256;
    c->client_timeout_s = 30;
    c->lease_s = 180;
    c->heartbeat_s = 30;
    c->max_attempts = 3;
    c->retry_base_ms = 30000;
    c->callback_retry_base_ms = 5000;
    c->callback_give_up_ms = 24LL * 3600 * 1000;
    c->http = 1;
}

void hp_service_wake(hp_service *s)
{
    pthread_mutex_lock(&s->wake_mu);
    pthread_cond_broadcast(&s->wake_cv);
    pthread_mutex_unlock(&s->wake_mu);
}

void hp_service_sleep(hp_service *s, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->wake_mu);
    if (!atomic_load(&s->stopping))
        pthread_cond_timedwait(&s->wake_cv, &s->wake_mu, &ts);
    pthread_mutex_unlock(&s->wake_mu);
}

int hp_service_path(const hp_service *s, char *out, size_t n, const char *fmt, ...)
{
    int w = snprintf(out, n, "%s/", s->data_dir);
    if (w < 0 || (size_t)w >= n)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out + w, n - (size_t)w, fmt, ap);
    va_end(ap);
    return k < 0 || (size_t)(w + k) >= n ? -1 : 0;
}

hp_status hp_service_db_target(const char *data_dir, const char *db, char *out, size_t n,
                               hp_error *err)
{
    if (!db || !strcmp(db, "sqlite")) {
        if ((size_t)snprintf(out, n, "%s/histoplan.db", data_dir) >= n)
            return hp_error_set(err, HP_ERR_INVALID, "--data path too long");
        return HP_OK;
    }
    if (strncmp(db, "postgresql://", 13) && strncmp(db, "postgres://", 11))
        return hp_error_set(err, HP_ERR_INVALID,
                            "--db takes sqlite or a postgresql:// URI (got something else)");
    if ((size_t)snprintf(out, n, "%s", db) >= n)
        return hp_error_set(err, HP_ERR_INVALID, "--db URI too long");
    return HP_OK;
}

static hp_status prepare_dirs(hp_service *s, const hp_service_config *c, hp_error *err)
{
    if (!c->data_dir || !*c->data_dir)
        return hp_error_set(err, HP_ERR_INVALID, "--data DIR is required");
    if (mkdir(c->data_dir, 0750) != 0 && errno != EEXIST)
        return hp_error_set(err, HP_ERR_IO, "cannot create the data folder %s: %s", c->data_dir,
                            strerror(errno));
    if (!realpath(c->data_dir, s->data_dir))
        return hp_error_set(err, HP_ERR_IO, "data folder %s: %s", c->data_dir, strerror(errno));
    static const char *const SUB[] = {"uploads", "results", "cases"};
    for (int i = 0; i < 3; i++) {
        char p[PATH_MAX];
        hp_service_path(s, p, sizeof p, "%s", SUB[i]);
        if (mkdir(p, 0750) != 0 && errno != EEXIST)
            return hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", p, strerror(errno));
    }
    for (int i = 0; i < c->n_slide_roots; i++) {
        struct stat st;
        if (!realpath(c->slide_roots[i], s->roots[i]) || stat(s->roots[i], &st) != 0 ||
            !S_ISDIR(st.st_mode))
            return hp_error_set(err, HP_ERR_INVALID, "--slide-root %s is not a folder",
                                c->slide_roots[i]);
    }
    s->n_roots = c->n_slide_roots;
    return HP_OK;
}

static hp_status prepare_model(hp_service *s, const hp_service_config *c, hp_error *err)
{
    char tried[1024];
    if (c->model_path)
        snprintf(s->model_path, sizeof s->model_path, "%s", c->model_path);
    else if (hp_zoo_file(HP_DEFAULT_MODEL, s->model_path, sizeof s->model_path, tried, sizeof tried))
        return hp_error_set(err, HP_ERR_IO, "default model %s not found (looked in %s; set HP_MODEL_DIR or "
                                            "give --model)", HP_DEFAULT_MODEL, tried);
    char card_path[PATH_MAX];
    snprintf(card_path, sizeof card_path, "%s", s->model_path);
    char *dot = strrchr(card_path, '.');
    if (dot && !strcmp(dot, ".onnx"))
        *dot = 0;
    strncat(card_path, ".card.json", sizeof card_path - strlen(card_path) - 1);
    hp_card card = {0};
    if (hp_card_load(card_path, &card, err) != HP_OK)
        return err ? err->code : HP_ERR_INVALID;
    snprintf(s->model_ref, sizeof s->model_ref, "%s@%s", card.name,
             card.version ? card.version : "unversioned");
    hp_card_free(&card);
    if (c->workers < 1)
        return HP_OK;
    hp_model_options mo = hp_model_default_options();
    mo.backend = !strcmp(c->backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
    mo.require_card = 1;
    if (!(s->model = hp_model_open(s->model_path, &mo, err)) ||
        hp_sha256_file(s->model_path, s->model_sha, err) != HP_OK)
        return err ? err->code : HP_ERR_INVALID;
    /* Super-resolution models, when installed (none: "auto" jobs say that none was available). */
    static const char *const SR[HP_SERVICE_SR_MAX] = {HP_SR_ZOO_X2, HP_SR_ZOO_X4};
    for (int i = 0; i < HP_SERVICE_SR_MAX; i++)
        if (!hp_zoo_file(SR[i], s->sr_paths[s->n_sr], PATH_MAX, NULL, 0)) {
            if (hp_sha256_file(s->sr_paths[s->n_sr], s->sr_sha[s->n_sr], err) != HP_OK)
                return err ? err->code : HP_ERR_IO;
            s->n_sr++;
        }
    return HP_OK;
}

/* SQLite: one server per data folder (the store's leases assume it, and at start every job
 * still running is known to be orphaned). */
static int lock_data_dir(hp_service *s, hp_error *err)
{
    char p[PATH_MAX];
    hp_service_path(s, p, sizeof p, "serve.lock");
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        hp_error_set(err, HP_ERR_IO, "cannot create %s: %s", p, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        hp_error_set(err, HP_ERR_INVALID, "another histoplan serve is using the data folder %s "
                                          "with SQLite; stop it first, or share the folder "
                                          "through PostgreSQL (--db postgresql://...)",
                     s->data_dir);
        return -1;
    }
    return fd;
}

hp_status hp_service_run(const hp_service_config *c, int stop_grace_s, int *still_running,
                         hp_error *err)
{
    *still_running = 0;
    /* Tile requests allocate buffers of 0.2-3 MB. glibc would map and unmap each one, and every
     * munmap interrupts all of the server's threads to flush their TLBs: on a busy tile server
     * that was half the CPU time. Kept on the heap instead, they are reused. */
    if (c->http) {
        mallopt(M_MMAP_THRESHOLD, 64 << 20);
        mallopt(M_TRIM_THRESHOLD, 256 << 20);
    }
    hp_service *s = calloc(1, sizeof *s);
    hp_worker **workers = NULL;
    const char **worker_ids = NULL;
    hp_http *http = NULL;
    hp_deliver *deliver = NULL;
    hp_sweeper *sweeper = NULL;
    int lock_fd = -1, n_workers = 0, abandoned = 0;
    hp_status st = HP_OK;
    if (!s)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    s->cfg = *c;
    pthread_mutex_init(&s->wake_mu, NULL);
    pthread_cond_init(&s->wake_cv, NULL);
    s->lease.lease_ms = (int64_t)c->lease_s * 1000;
    s->lease.retry_base_ms = c->retry_base_ms;
    s->tls = c->tls_cert != NULL;
    if ((!c->tls_cert) != (!c->tls_key)) {
        st = hp_error_set(err, HP_ERR_INVALID, "--tls-cert and --tls-key go together");
        goto out;
    }
    if (c->heartbeat_s < 1 || c->lease_s < 2 * c->heartbeat_s) {
        st = hp_error_set(err, HP_ERR_INVALID, "the lease (--lease-seconds) must be at least "
                                               "twice the heartbeat (--heartbeat-seconds)");
        goto out;
    }
    if ((st = prepare_dirs(s, c, err)) != HP_OK || (st = prepare_model(s, c, err)) != HP_OK)
        goto out;
    char target[PATH_MAX + 64];
    if ((st = hp_service_db_target(s->data_dir, c->db, target, sizeof target, err)) != HP_OK)
        goto out;
    int sqlite = strncmp(target, "postgres", 8) != 0;
    if (!c->http && sqlite) {
        st = hp_error_set(err, HP_ERR_INVALID, "histoplan worker shares a PostgreSQL store "
                                               "(--db postgresql://...); with SQLite the "
                                               "workers run inside histoplan serve (--workers N)");
        goto out;
    }
    if (sqlite && (lock_fd = lock_data_dir(s, err)) < 0) {
        st = HP_ERR_INVALID;
        goto out;
    }
    int pool_size = c->workers * 2 + (c->http ? c->http_threads + 2 : 0) + 3;
    if ((st = hp_db_pool_create(target, pool_size, &s->pool, err)) != HP_OK)
        goto out;
    hp_db *db = hp_db_pool_take(s->pool, err);
    if (!db) {
        st = HP_ERR_IO;
        goto out;
    }
    int applied = 0;
    st = hp_store_migrate(db, &applied, err);
    if (st == HP_OK && applied)
        fprintf(stderr, "store: %s schema migrated to version %d\n", hp_db_kind_name(db),
                hp_store_schema_version());
    if (st == HP_OK && sqlite) {
        /* Only this process uses the folder: anything still running was ours and died. */
        int n = hp_store_requeue_expired(db, &s->lease, hp_now_ms(), 1, err);
        if (n > 0)
            fprintf(stderr, "store: %d job(s) interrupted by the last stop went back to the "
                            "queue\n", n);
        st = n < 0 ? HP_ERR_IO : HP_OK;
    }
    if (st == HP_OK)
        hp_sweeper_clean_folders(s, db);
    hp_db_pool_give(s->pool, db);
    if (st != HP_OK)
        goto out;
    if (!(s->rate = hp_rate_limiter_create(c->rate_limit)) || !(s->metrics = hp_metrics_create()) ||
        !(s->tiles = hp_tile_cache_create((size_t)c->tile_cache_mb << 20)) ||
        !(s->slides = hp_slide_pool_create(16)) ||
        !(s->heatmaps = hp_heatmap_cache_create(16)) || !(s->sessions = hp_sessions_create())) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto out;
    }

    /* Signals go to the main thread only, which waits for them below. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    workers = calloc((size_t)(c->workers > 0 ? c->workers : 1), sizeof *workers);
    worker_ids = calloc((size_t)(c->workers > 0 ? c->workers : 1), sizeof *worker_ids);
    if (!workers || !worker_ids) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (; n_workers < c->workers; n_workers++) {
        if ((st = hp_worker_start(s, n_workers, &workers[n_workers], err)) != HP_OK)
            goto stop;
        worker_ids[n_workers] = hp_worker_id(workers[n_workers]);
    }
    if ((st = hp_deliver_start(s, &deliver, err)) != HP_OK ||
        (st = hp_sweeper_start(s, worker_ids, n_workers, &sweeper, err)) != HP_OK)
        goto stop;
    if (c->http) {
        char url[256];
        if ((st = hp_http_start(s, &http, url, sizeof url, err)) != HP_OK)
            goto stop;
        fprintf(stderr, "histoplan serve: %s store, model %s, %d worker(s)\n",
                sqlite ? "sqlite" : "postgresql", s->model_ref, n_workers);
        if (c->on_listening)
            c->on_listening(url);
    } else {
        fprintf(stderr, "histoplan worker: postgresql store, model %s, %d worker(s)\n",
                s->model_ref, n_workers);
        if (c->on_listening)
            c->on_listening("");
    }

    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "stopping (%s): no new requests or jobs; running analyses get %d s\n",
            sig == SIGTERM ? "SIGTERM" : "SIGINT", stop_grace_s);

stop:
    atomic_store(&s->stopping, 1);
    hp_service_wake(s);
    hp_http_quiesce(http);
    for (int t = 0; t < stop_grace_s * 10; t++) {
        int busy = 0;
        for (int i = 0; i < n_workers; i++)
            busy += hp_worker_busy(workers[i]);
        if (!busy)
            break;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < n_workers; i++)
        if (hp_worker_busy(workers[i])) {
            hp_worker_release(workers[i]);
            abandoned++;
        }
    hp_http_stop(http);
    hp_deliver_stop(deliver);
    hp_sweeper_stop(sweeper);
    if (abandoned) {
        /* An analysis cannot be interrupted mid-slide: its job is queued again, its thread ends
         * with the process. The model and the pool stay allocated for it. */
        fprintf(stderr, "stopped; %d analysis(es) handed back to the queue\n", abandoned);
        *still_running = 1;
        goto out_keep;
    }
    for (int i = 0; i < n_workers; i++) {
        hp_worker_join(workers[i]);
        hp_worker_destroy(workers[i]);
    }
out:
    hp_model_destroy(s->model);
    hp_db_pool_destroy(s->pool);
    hp_rate_limiter_destroy(s->rate);
    hp_tile_cache_destroy(s->tiles);
    hp_slide_pool_destroy(s->slides);
    hp_heatmap_cache_destroy(s->heatmaps);
    hp_sessions_destroy(s->sessions);
    hp_metrics_destroy(s->metrics);
    free(workers);
    free(worker_ids);
    pthread_mutex_destroy(&s->wake_mu);
    pthread_cond_destroy(&s->wake_cv);
    free(s);
out_keep:
    if (lock_fd >= 0)
        close(lock_fd);
    return st;
}
