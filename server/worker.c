/* Workers (server/worker.h): claim a job, analyze its slide with pipeline/analyze.h exactly as
 * `histoplan analyze` does, and end the run with a fenced write.
 *
 * Each run writes into its own folder, DIR/results/<job-id>/a<fence>/, so a worker that lost its
 * lease (paused past it, cut off from the store) and still finishes writes only into its own
 * folder and then fails to commit; it removes that folder, and the run that rescued the job is
 * untouched. The winner removes the folders of earlier runs of the same job.
 *
 * A heartbeat thread per worker renews the lease every --heartbeat seconds and writes the
 * progress (tiles done / total) about once a second, both fenced. */
#include "server/worker.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "models/model.h"
#include "pipeline/analyze.h"
#include "pipeline/stain.h"
#include "server/ids.h"
#include "server/service_internal.h"

struct hp_worker {
    hp_service *svc;
    char id[HP_ID_LEN + 1];
    pthread_t thread, hb_thread;
    int started;
    /* The run in progress, seen by the heartbeat thread and by a stopping service. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char job_id[64];
    int64_t fence;
    int active, quit;
    atomic_llong tiles_done, tiles_total;
    atomic_llong tiles_counted; /* of this run, already added to the metrics */
    atomic_int lease_lost, running_job;
    /* This worker's own super-resolution models (the service's sr_paths), for "auto" jobs. */
    hp_sr_candidate sr[HP_SERVICE_SR_MAX];
    int n_sr;
};

static void progress(void *user, long done, long total)
{
    hp_worker *w = user;
    atomic_store(&w->tiles_done, done);
    atomic_store(&w->tiles_total, total);
}

static void *heartbeat_main(void *arg)
{
    hp_worker *w = arg;
    hp_service *svc = w->svc;
    int64_t last_renew = 0, last_done = -1;
    pthread_mutex_lock(&w->mu);
    while (!w->quit) {
        if (!w->active) {
            pthread_cond_wait(&w->cv, &w->mu);
            last_renew = hp_now_ms(), last_done = -1;
            continue;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        if (!w->active || w->quit)
            continue;
        char id[64];
        snprintf(id, sizeof id, "%s", w->job_id);
        int64_t fence = w->fence, now = hp_now_ms();
        int64_t done = atomic_load(&w->tiles_done), total = atomic_load(&w->tiles_total);
        if (now - last_renew < svc->cfg.heartbeat_s * 1000LL && done == last_done)
            continue;
        pthread_mutex_unlock(&w->mu);
        hp_error err = {0};
        hp_db *db = hp_db_pool_take(svc->pool, &err);
        int held = -1;
        if (db) {
            held = hp_store_job_heartbeat(db, id, fence, now + svc->lease.lease_ms, done, total,
                                          &err);
            hp_db_pool_give(svc->pool, db);
        }
        pthread_mutex_lock(&w->mu);
        if (held == 1) {
            last_renew = now;
            int64_t counted = atomic_load(&w->tiles_counted);
            if (done > counted) {
                hp_metrics_tiles(svc->metrics, done - counted);
                atomic_store(&w->tiles_counted, done);
            }
            last_done = done;
        } else if (held == 0 && w->active && w->fence == fence) {
            /* Lost: the lease expired and the job went back to the queue (or was rescued). */
            atomic_store(&w->lease_lost, 1);
            fprintf(stderr, "worker %s: lost the lease of job %s (fence %lld); its result "
                            "will be discarded\n", w->id, id, (long long)fence);
        } else if (held < 0) {
            fprintf(stderr, "worker %s: heartbeat failed: %s\n", w->id, err.msg);
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Replaces the slide's path (and file name) and the data folder in a message. */
static void scrub(char *msg, size_t cap, const char *path, const char *data_dir)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *needles[3] = {path, data_dir, base};
    const char *reps[3] = {"the slide", "<data>", "the slide"};
    for (int k = 0; k < 3; k++) {
        size_t ln = strlen(needles[k]), lr = strlen(reps[k]);
        if (ln < 2)
            continue;
        char *hit;
        while ((hit = strstr(msg, needles[k]))) {
            if (strlen(msg) - ln + lr >= cap)
                break;
            memmove(hit + lr, hit + ln, strlen(hit + ln) + 1);
            memcpy(hit, reps[k], lr);
        }
    }
}

/* The file to analyze: an upload, or a path that must still resolve inside a slide root (a
 * symbolic link inside a root must not lead out of it). 0 ok, -1 the slide cannot be used, -2
 * this worker cannot read paths at all; *msg says why. */
static int resolve_slide(hp_service *svc, const hp_job_row *j, char *out, size_t n, char *msg,
                         size_t mn)
{
    if (!strcmp(j->source, "upload")) {
        hp_service_path(svc, out, n, "uploads/%s", j->slide_path);
        return 0;
    }
    char real[PATH_MAX];
    if (svc->n_roots == 0) {
        snprintf(msg, mn, "this worker was started without --slide-root, so it reads no slide by "
                          "path (give it the same --slide-root as histoplan serve)");
        return -2; /* another worker may have it: not the slide's fault */
    }
    if (!realpath(j->slide_path, real)) {
        snprintf(msg, mn, "the slide cannot be opened: %s", strerror(errno));
        return -1;
    }
    for (int k = 0; k < svc->n_roots; k++) {
        size_t rl = strlen(svc->roots[k]);
        if (!strncmp(real, svc->roots[k], rl) && (real[rl] == '/' || rl == 1)) {
            snprintf(out, n, "%s", real);
            return 0;
        }
    }
    snprintf(msg, mn, "the slide's path leads outside the server's slide roots (a symbolic link)");
    return -1;
}

static void remove_other_runs(hp_service *svc, const char *job_id, const char *keep)
{
    char dir[PATH_MAX];
    hp_service_path(svc, dir, sizeof dir, "results/%s", job_id);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || (keep && !strcmp(e->d_name, keep)))
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        hp_remove_tree(p);
    }
    closedir(d);
}

static void run_job(hp_worker *w, hp_job_row *j)
{
    hp_service *svc = w->svc;
    hp_error err = {0};
    hp_batch_row b = {0};
    hp_findings f;
    hp_findings_init(&f);
    char slide[PATH_MAX] = "", run_dir[PATH_MAX], run_name[32], msg[HP_ERROR_MSG_MAX] = "";
    char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1] = "";
    hp_job_end how = HP_END_SUCCEEDED;
    int permanent = 1;
    hp_stain_params stain;

    pthread_mutex_lock(&w->mu);
    snprintf(w->job_id, sizeof w->job_id, "%s", j->id);
    w->fence = j->fence;
    w->active = 1;
    atomic_store(&w->tiles_done, 0);
    atomic_store(&w->tiles_total, 0);
    atomic_store(&w->tiles_counted, 0);
    atomic_store(&w->lease_lost, 0);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);

    snprintf(run_name, sizeof run_name, "a%lld", (long long)j->fence);
    hp_service_path(svc, run_dir, sizeof run_dir, "results/%s", j->id);
    mkdir(run_dir, 0755);
    hp_service_path(svc, run_dir, sizeof run_dir, "results/%s/%s", j->id, run_name);

    hp_db *db = hp_db_pool_take(svc->pool, &err);
    int found = db ? hp_store_batch_get(db, j->batch_id, &b, &err) : -1;
    if (db)
        hp_db_pool_give(svc->pool, db);
    if (found != 1) {
        snprintf(msg, sizeof msg, "the job store did not answer");
        how = HP_END_RETRY;
        goto end;
    }
    int rs = resolve_slide(svc, j, slide, sizeof slide, msg, sizeof msg);
    if (rs != 0) {
        how = rs == -2 ? HP_END_RETRY : HP_END_FAILED;
        permanent = rs != -2;
        slide[0] = 0;
        goto end;
    }
    hp_analyze_options o;
    hp_analyze_options_init(&o);
    o.out_dir = run_dir;
    o.slide_id = j->slide_id;
    o.accession = j->accession;
    o.mpp = j->mpp;
    o.threads = svc->cfg.threads;
    if (svc->cfg.batch > 0)
        o.batch = svc->cfg.batch;
    o.backend_name = svc->cfg.backend;
    o.model_sha256 = w->svc->model_sha;
    o.progress = progress;
    o.progress_user = w;
    cJSON *opts = cJSON_Parse(b.options);
    const cJSON *roi = cJSON_GetObjectItemCaseSensitive(opts, "roi");
    if (cJSON_GetArraySize(roi) == 4) {
        o.roi_x = (int64_t)cJSON_GetArrayItem(roi, 0)->valuedouble;
        o.roi_y = (int64_t)cJSON_GetArrayItem(roi, 1)->valuedouble;
        o.roi_w = (int64_t)cJSON_GetArrayItem(roi, 2)->valuedouble;
        o.roi_h = (int64_t)cJSON_GetArrayItem(roi, 3)->valuedouble;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(opts, "stain");
    if (st) {
        char *text = cJSON_PrintUnformatted(st);
        hp_error se = {0};
        if (text && hp_stain_params_from_json(text, &stain, &se) == HP_OK)
            o.stain_target = &stain;
        free(text);
    }
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(opts, "super_resolution");
    if (cJSON_IsString(sr) && !strcmp(sr->valuestring, "auto")) {
        o.sr_mode = HP_SR_AUTO;
        o.sr_models = w->sr;
        o.n_sr_models = w->n_sr;
    }
    cJSON_Delete(opts);

    hp_analyze_outcome oc;
    hp_error ae = {0};
    hp_status s = hp_analyze_slide(w->svc->model, slide, &o, &f, &oc, slide_id, &ae);
    if (s != HP_OK) {
        snprintf(msg, sizeof msg, "%s", ae.msg[0] ? ae.msg : hp_status_name(s));
        /* Out of memory and device faults may pass; a slide that cannot be read will not. */
        permanent = !(s == HP_ERR_NOMEM || s == HP_ERR_DEVICE);
        how = permanent ? HP_END_FAILED : HP_END_RETRY;
    }
end:
    scrub(msg, sizeof msg, j->slide_path, svc->data_dir);
    if (!strcmp(j->source, "path") && slide[0])
        scrub(msg, sizeof msg, slide, svc->data_dir);
    pthread_mutex_lock(&w->mu);
    w->active = 0;
    pthread_mutex_unlock(&w->mu);
    char result[PATH_MAX];
    snprintf(result, sizeof result, "results/%s/%s/%s", j->id, run_name, slide_id);
    int64_t total = atomic_load(&w->tiles_total);
    const char *final = NULL;
    int wrote = -1;
    for (int tries = 0; tries < 30 && wrote < 0; tries++) {
        db = hp_db_pool_take(svc->pool, &err);
        if (db) {
            if (how == HP_END_SUCCEEDED)
                hp_store_job_heartbeat(db, j->id, j->fence, hp_now_ms() + svc->lease.lease_ms,
                                       total, total, &err);
            wrote = hp_store_job_end(db, j->id, j->fence, how, result, slide_id, msg, permanent,
                                     &svc->lease, hp_now_ms(), &final, &err);
            hp_db_pool_give(svc->pool, db);
        }
        if (wrote < 0) {
            fprintf(stderr, "worker %s: cannot record the end of job %s: %s; retrying\n", w->id,
                    j->id, err.msg);
            hp_error_clear(&err);
            sleep(1);
        }
    }
    if (how == HP_END_SUCCEEDED && wrote == 1)
        hp_metrics_tiles(svc->metrics, total - atomic_load(&w->tiles_counted));
    if (wrote == 1 && final && !strcmp(final, "succeeded")) {
        remove_other_runs(svc, j->id, run_name);
    } else {
        /* Failed, cancelled, queued again, or the lease was lost: this run's folder is no
         * result. */
        hp_remove_tree(run_dir);
    }
    fprintf(stderr, "worker %s: job %s attempt %d: %s\n", w->id, j->id, j->attempts,
            wrote == 1 ? final : wrote == 0 ? "lease lost, result discarded" : "not recorded");
    hp_batch_row_free(&b);
    hp_findings_free(&f);
    hp_service_wake(svc);
}

static void *worker_main(void *arg)
{
    hp_worker *w = arg;
    hp_service *svc = w->svc;
    while (!atomic_load(&svc->stopping)) {
        hp_error err = {0};
        hp_db *db = hp_db_pool_take(svc->pool, &err);
        if (!db) {
            hp_service_sleep(svc, 1000);
            continue;
        }
        hp_job_row j;
        int k = hp_store_job_claim(db, w->id, &svc->lease, hp_now_ms(), &j, &err);
        hp_db_pool_give(svc->pool, db);
        if (k < 0)
            fprintf(stderr, "worker %s: claim failed: %s\n", w->id, err.msg);
        if (k <= 0) {
            hp_service_sleep(svc, k < 0 ? 1000 : 500);
            continue;
        }
        /* Earlier runs of this job died or lost their lease: their folders are no result. */
        char keep[32];
        snprintf(keep, sizeof keep, "a%lld", (long long)j.fence);
        remove_other_runs(svc, j.id, keep);
        atomic_store(&w->running_job, 1);
        run_job(w, &j);
        atomic_store(&w->running_job, 0);
        hp_job_row_free(&j);
    }
    return NULL;
}

hp_status hp_worker_start(hp_service *svc, int index, hp_worker **out, hp_error *err)
{
    *out = NULL;
    hp_worker *w = calloc(1, sizeof *w);
    if (!w)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    w->svc = svc;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    hp_id_new('w', w->id);
    (void)index;
    if (!svc->model) {
        hp_worker_destroy(w);
        return hp_error_set(err, HP_ERR_INVALID, "no model for the workers");
    }
    hp_model_options mo = hp_model_default_options();
    mo.backend = !strcmp(svc->cfg.backend, "cuda") ? HP_BACKEND_CUDA : HP_BACKEND_CPU;
    mo.require_card = 1;
    mo.precision = svc->cfg.sr_precision;
    for (int i = 0; i < svc->n_sr; i++, w->n_sr++) {
        if (!(w->sr[i].model = hp_model_open(svc->sr_paths[i], &mo, err))) {
            hp_worker_destroy(w);
            return err ? err->code : HP_ERR_INVALID;
        }
        w->sr[i].sha256 = svc->sr_sha[i];
    }
    if (pthread_create(&w->hb_thread, NULL, heartbeat_main, w) != 0) {
        hp_worker_destroy(w);
        return hp_error_set(err, HP_ERR_NOMEM, "cannot start a thread");
    }
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
        pthread_mutex_lock(&w->mu);
        w->quit = 1;
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->hb_thread, NULL);
        hp_worker_destroy(w);
        return hp_error_set(err, HP_ERR_NOMEM, "cannot start a thread");
    }
    w->started = 1;
    *out = w;
    return HP_OK;
}

const char *hp_worker_id(const hp_worker *w) { return w->id; }

int hp_worker_busy(hp_worker *w) { return atomic_load(&w->running_job); }

int hp_worker_release(hp_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int active = w->active;
    char id[64];
    snprintf(id, sizeof id, "%s", w->job_id);
    int64_t fence = w->fence;
    pthread_mutex_unlock(&w->mu);
    if (!active)
        return 0;
    hp_error err = {0};
    hp_db *db = hp_db_pool_take(w->svc->pool, &err);
    if (!db)
        return -1;
    const char *final = NULL;
    int k = hp_store_job_end(db, id, fence, HP_END_RELEASE, NULL, NULL, "the worker stopped",
                             0, &w->svc->lease, hp_now_ms(), &final, &err);
    hp_db_pool_give(w->svc->pool, db);
    if (k == 1)
        fprintf(stderr, "worker %s: stopping: job %s handed back to the queue\n", w->id, id);
    return k;
}

void hp_worker_join(hp_worker *w)
{
    if (!w || !w->started)
        return;
    pthread_join(w->thread, NULL);
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->hb_thread, NULL);
    w->started = 0;
}

void hp_worker_destroy(hp_worker *w)
{
    if (!w)
        return;
    for (int i = 0; i < w->n_sr; i++)
        hp_model_destroy(w->sr[i].model);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
