/* Housekeeping (server/sweeper.h): requeue jobs whose lease expired, forget old idempotency
 * keys, keep the workers' "seen" times, and at start remove what a crash left in the data folder
 * (run folders that are no job's result, half-received uploads). */
#include "server/sweeper.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "server/ids.h"
#include "server/service_internal.h"

struct hp_sweeper {
    hp_service *svc;
    pthread_t thread;
    const char *const *worker_ids;
    int n_workers;
    char host[128];
    int64_t started_ms;
};

static void seen(hp_sweeper *s, hp_db *db, int stopped)
{
    hp_error err = {0};
    for (int i = 0; i < s->n_workers; i++)
        hp_store_worker_seen(db, s->worker_ids[i], s->host, (int)getpid(), s->started_ms,
                             hp_now_ms(), stopped, &err);
}

static void *sweeper_main(void *arg)
{
    hp_sweeper *s = arg;
    hp_service *svc = s->svc;
    int64_t last_slow = 0;
    while (!atomic_load(&svc->stopping)) {
        hp_error err = {0};
        hp_db *db = hp_db_pool_take(svc->pool, &err);
        if (db) {
            int64_t now = hp_now_ms();
            int n = hp_store_requeue_expired(db, &svc->lease, now, 0, &err);
            if (n < 0)
                fprintf(stderr, "sweeper: %s\n", err.msg);
            else if (n > 0) {
                fprintf(stderr, "sweeper: %d job(s) whose lease expired went back to the queue "
                                "(or failed, out of attempts)\n", n);
                hp_service_wake(svc);
            }
            if (now - last_slow >= 15000) {
                hp_store_idem_expire(db, now, &err);
                seen(s, db, 0);
                last_slow = now;
            }
            hp_db_pool_give(svc->pool, db);
        }
        hp_service_sleep(svc, 1000);
    }
    return NULL;
}

hp_status hp_sweeper_start(hp_service *svc, const char *const *worker_ids, int n_workers,
                           hp_sweeper **out, hp_error *err)
{
    hp_sweeper *s = calloc(1, sizeof *s);
    if (!s)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    s->svc = svc;
    s->worker_ids = worker_ids;
    s->n_workers = n_workers;
    s->started_ms = hp_now_ms();
    if (gethostname(s->host, sizeof s->host) != 0)
        snprintf(s->host, sizeof s->host, "unknown");
    if (pthread_create(&s->thread, NULL, sweeper_main, s) != 0) {
        free(s);
        return hp_error_set(err, HP_ERR_NOMEM, "cannot start a thread");
    }
    *out = s;
    return HP_OK;
}

void hp_sweeper_stop(hp_sweeper *s)
{
    if (!s)
        return;
    pthread_join(s->thread, NULL);
    hp_error err = {0};
    hp_db *db = hp_db_pool_take(s->svc->pool, &err);
    if (db) {
        seen(s, db, 1);
        hp_db_pool_give(s->svc->pool, db);
    }
    free(s);
}

/* One job's folder. A succeeded job keeps only its result run; a failed or cancelled job, or a
 * folder of no job, keeps nothing. Queued and running jobs are left alone: another process may
 * be starting a run there, and the worker that claims a job removes its earlier runs itself. */
static void clean_job(hp_service *svc, hp_db *db, const char *job_id)
{
    char dir[PATH_MAX], keep[64] = "";
    hp_service_path(svc, dir, sizeof dir, "results/%s", job_id);
    hp_job_row j;
    hp_error err = {0};
    int found = hp_id_valid('j', job_id) ? hp_store_job_get(db, job_id, &j, &err) : 0;
    if (found < 0)
        return; /* the store did not answer: remove nothing */
    if (found) {
        int live = !strcmp(j.state, "queued") || !strcmp(j.state, "running");
        if (!strcmp(j.state, "succeeded") && j.result_dir) {
            /* result_dir is results/<job>/<run>/<slide-id> */
            const char *p = j.result_dir + strlen("results/") + strlen(job_id) + 1;
            const char *slash = strchr(p, '/');
            snprintf(keep, sizeof keep, "%.*s", slash ? (int)(slash - p) : (int)strlen(p), p);
        }
        hp_job_row_free(&j);
        if (live)
            return;
    }
    if (!keep[0]) {
        hp_remove_tree(dir);
        return;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, keep))
            continue;
        char p[PATH_MAX + 256];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        hp_remove_tree(p);
    }
    if (d)
        closedir(d);
}

void hp_sweeper_clean_folders(hp_service *svc, hp_db *db)
{
    char dir[PATH_MAX];
    hp_service_path(svc, dir, sizeof dir, "results");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] != '.')
            clean_job(svc, db, e->d_name);
    }
    if (d)
        closedir(d);
    hp_service_path(svc, dir, sizeof dir, "uploads");
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        /* A half-received upload older than an hour belongs to no live request. */
        char p[PATH_MAX + 256];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (!strncmp(e->d_name, ".incoming-", 10) && stat(p, &st) == 0 &&
            st.st_mtime < time(NULL) - 3600)
            unlink(p);
    }
    if (d)
        closedir(d);
}
