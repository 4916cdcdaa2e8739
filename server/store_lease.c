/* Leases and the ends of runs (server/store.h): claim with a fencing token, heartbeat, fenced
 * end, requeue on expiry, and what a job's end sets off (its callback, the batch's completion).
 *
 * Lock order in every transaction that may end a job: the batch row first, then the job row,
 * then the audit head last. A claim locks only its job row (SKIP LOCKED on PostgreSQL, so
 * workers never queue behind each other) and the audit head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ids.h"
#include "server/store_internal.h"

static cJSON *job_details(const char *job_id, const char *batch_id)
{
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "job", job_id);
    cJSON_AddStringToObject(d, "batch", batch_id);
    return d;
}

int hp_store_job_claim(hp_db *db, const char *worker_id, const hp_lease_config *lc, int64_t now,
                       hp_job_row *job, hp_error *err)
{
    hp_db_rows *r = NULL;
    char sql[256];
    int claimed = 0;
    if (hp_db_begin(db, err) != HP_OK)
        return -1;
    snprintf(sql, sizeof sql, "SELECT id FROM jobs WHERE state = 'queued' AND not_before <= $1 "
                              "ORDER BY created_ms, batch_id, idx LIMIT 1%s",
             hp_db_lock_clause(db, 1));
    hp_db_value p[1] = {HP_DB_INT(now)};
    if (hp_db_exec(db, sql, p, 1, &r, NULL, err) != HP_OK)
        goto fail;
    if (r->nrows == 0) {
        hp_db_rows_free(r);
        hp_db_rollback(db);
        return 0;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", hp_db_get(r, 0, 0));
    hp_db_rows_free(r);
    r = NULL;
    hp_db_value u[4] = {HP_DB_TEXT(worker_id), HP_DB_INT(now + lc->lease_ms), HP_DB_INT(now),
                        HP_DB_TEXT(id)};
    int64_t ch = 0;
    if (hp_db_exec(db, "UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, "
                       "fence = fence + 1, attempts = attempts + 1, "
                       "started_ms = COALESCE(started_ms, $3), run_started_ms = $3, "
                       "tiles_done = 0, tiles_total = 0 WHERE id = $4 AND state = 'queued'",
                   u, 4, NULL, &ch, err) != HP_OK || ch != 1)
        goto fail;
    hp_db_value g[1] = {HP_DB_TEXT(id)};
    if (hp_db_exec(db, "SELECT " HP_JOB_COLS " FROM jobs WHERE id = $1", g, 1, &r, NULL, err)
            != HP_OK || r->nrows != 1 || hp_job_row_from(r, 0, job) != HP_OK)
        goto fail;
    claimed = 1;
    cJSON *d = job_details(job->id, job->batch_id);
    cJSON_AddNumberToObject(d, "attempt", job->attempts);
    cJSON_AddNumberToObject(d, "fence", (double)job->fence);
    cJSON_AddStringToObject(d, "worker", worker_id);
    hp_status st = hp_store_audit(db, "job.start", worker_id, d, err);
    cJSON_Delete(d);
    if (st != HP_OK || hp_db_commit(db, err) != HP_OK) {
        hp_job_row_free(job);
        hp_db_rows_free(r);
        hp_db_rollback(db);
        return -1;
    }
    hp_db_rows_free(r);
    return 1;
fail:
    if (claimed)
        hp_job_row_free(job);
    hp_db_rows_free(r);
    hp_db_rollback(db);
    return -1;
}

int hp_store_job_heartbeat(hp_db *db, const char *id, int64_t fence, int64_t lease_until,
                           int64_t tiles_done, int64_t tiles_total, hp_error *err)
{
    int64_t ch = 0;
    hp_db_value p[5] = {HP_DB_INT(lease_until), HP_DB_INT(tiles_done), HP_DB_INT(tiles_total),
                        HP_DB_TEXT(id), HP_DB_INT(fence)};
    if (hp_db_exec(db, "UPDATE jobs SET lease_until = $1, tiles_done = $2, tiles_total = $3 "
                       "WHERE id = $4 AND fence = $5 AND state = 'running'",
                   p, 5, NULL, &ch, err) != HP_OK)
        return -1;
    return ch == 1;
}

static int64_t backoff_ms(const hp_lease_config *lc, int attempts)
{
    int64_t d = lc->retry_base_ms;
    for (int k = 1; k < attempts && d < 3600 * 1000LL; k++)
        d *= 4;
    return d < 3600 * 1000LL ? d : 3600 * 1000LL;
}

int hp_store_job_end(hp_db *db, const char *id, int64_t fence, hp_job_end how,
                     const char *result_dir, const char *result_slide_id, const char *message,
                     int permanent, const hp_lease_config *lc, int64_t now,
                     const char **final_state, hp_error *err)
{
    hp_db_rows *r = NULL;
    char sql[256];
    int64_t ch = 0;
    char *msg2 = NULL;
    *final_state = NULL;
    hp_job_row j;
    int found = hp_store_job_get(db, id, &j, err);
    if (found <= 0)
        return found;
    if (hp_db_begin(db, err) != HP_OK)
        goto fail_nolock;
    if (hp_store_lock_batch(db, j.batch_id, err) < 0)
        goto fail;
    snprintf(sql, sizeof sql, "SELECT cancel_requested, attempts, max_attempts FROM jobs WHERE "
                              "id = $1 AND fence = $2 AND state = 'running'%s",
             hp_db_lock_clause(db, 0));
    hp_db_value p[2] = {HP_DB_TEXT(id), HP_DB_INT(fence)};
    if (hp_db_exec(db, sql, p, 2, &r, NULL, err) != HP_OK)
        goto fail;
    if (r->nrows != 1) { /* the lease was lost: another run owns the job now */
        hp_db_rows_free(r);
        hp_db_rollback(db);
        hp_job_row_free(&j);
        return 0;
    }
    int cancel = (int)hp_db_get_i64(r, 0, 0), attempts = (int)hp_db_get_i64(r, 0, 1);
    int max_attempts = (int)hp_db_get_i64(r, 0, 2);
    const char *state;
    int64_t not_before = now;
    if (cancel && how != HP_END_RELEASE)
        state = "cancelled";
    else if (how == HP_END_SUCCEEDED)
        state = "succeeded";
    else if (how == HP_END_FAILED)
        state = "failed";
    else if (how == HP_END_RELEASE)
        state = "queued";
    else if (attempts >= max_attempts) {
        state = "failed";
        if (asprintf(&msg2, "%s (gave up after %d attempts)", message ? message : "failed",
                     attempts) < 0)
            msg2 = NULL;
        message = msg2 ? msg2 : message;
    } else {
        state = "queued";
        not_before = now + backoff_ms(lc, attempts);
    }
    int terminal = strcmp(state, "queued") != 0;
    int ok = !strcmp(state, "succeeded");
    int failed = !strcmp(state, "failed");
    hp_db_value u[10] = {HP_DB_TEXT(state),
                         terminal ? HP_DB_INT(now) : HP_DB_NULL,
                         HP_DB_TEXT(failed || !terminal ? message : NULL),
                         HP_DB_INT(failed && permanent),
                         HP_DB_TEXT(ok ? result_dir : NULL),
                         HP_DB_TEXT(ok ? result_slide_id : NULL),
                         HP_DB_INT(not_before),
                         HP_DB_INT(how == HP_END_RELEASE ? 1 : 0),
                         HP_DB_TEXT(id),
                         HP_DB_INT(fence)};
    if (hp_db_exec(db, "UPDATE jobs SET state = $1, finished_ms = $2, error = $3, "
                       "error_permanent = $4, result_dir = $5, result_slide_id = $6, "
                       "not_before = $7, attempts = attempts - $8, lease_owner = NULL, "
                       "lease_until = NULL WHERE id = $9 AND fence = $10 AND state = 'running'",
                   u, 10, NULL, &ch, err) != HP_OK || ch != 1)
        goto fail;
    if (terminal && hp_store_after_terminal(db, j.batch_id, id, state, failed ? message : NULL,
                                            now, err) != HP_OK)
        goto fail;
    char event[32];
    snprintf(event, sizeof event, "job.%s",
             terminal ? state : how == HP_END_RELEASE ? "release" : "retry");
    cJSON *d = job_details(id, j.batch_id);
    cJSON_AddNumberToObject(d, "attempt", attempts);
    cJSON_AddNumberToObject(d, "fence", (double)fence);
    hp_status st = hp_store_audit(db, event, j.lease_owner, d, err);
    cJSON_Delete(d);
    if (st != HP_OK || hp_db_commit(db, err) != HP_OK)
        goto fail;
    *final_state = terminal ? (ok ? "succeeded" : failed ? "failed" : "cancelled") : "queued";
    hp_db_rows_free(r);
    hp_job_row_free(&j);
    free(msg2);
    return 1;
fail:
    hp_db_rollback(db);
fail_nolock:
    hp_db_rows_free(r);
    hp_job_row_free(&j);
    free(msg2);
    return -1;
}

/* One expired (or orphaned) job, in its own transaction, with the batch locked first. */
static int requeue_one(hp_db *db, const char *id, const char *batch_id, int64_t fence,
                       const hp_lease_config *lc, int64_t now, int orphan, hp_error *err)
{
    hp_db_rows *r = NULL;
    char sql[256];
    if (hp_db_begin(db, err) != HP_OK)
        return -1;
    if (hp_store_lock_batch(db, batch_id, err) < 0)
        goto fail;
    snprintf(sql, sizeof sql, "SELECT attempts, max_attempts, cancel_requested, lease_owner FROM "
                              "jobs WHERE id = $1 AND fence = $2 AND state = 'running' AND "
                              "(lease_until < $3 OR $4 = 1)%s", hp_db_lock_clause(db, 0));
    hp_db_value p[4] = {HP_DB_TEXT(id), HP_DB_INT(fence), HP_DB_INT(now), HP_DB_INT(orphan)};
    if (hp_db_exec(db, sql, p, 4, &r, NULL, err) != HP_OK)
        goto fail;
    if (r->nrows != 1) { /* renewed or ended meanwhile */
        hp_db_rows_free(r);
        hp_db_rollback(db);
        return 0;
    }
    int attempts = (int)hp_db_get_i64(r, 0, 0), max_attempts = (int)hp_db_get_i64(r, 0, 1);
    int cancel = (int)hp_db_get_i64(r, 0, 2);
    const char *state = cancel ? "cancelled" : attempts >= max_attempts ? "failed" : "queued";
    char msg[160] = "";
    if (!strcmp(state, "failed"))
        snprintf(msg, sizeof msg, "the analysis was interrupted %d times (its worker stopped "
                                  "answering); gave up", attempts);
    int terminal = strcmp(state, "queued") != 0;
    hp_db_value u[6] = {HP_DB_TEXT(state), terminal ? HP_DB_INT(now) : HP_DB_NULL,
                        HP_DB_TEXT(*msg ? msg : NULL), HP_DB_INT(now + backoff_ms(lc, attempts)),
                        HP_DB_TEXT(id), HP_DB_INT(fence)};
    int64_t ch = 0;
    if (hp_db_exec(db, "UPDATE jobs SET state = $1, finished_ms = $2, error = $3, not_before = $4, "
                       "lease_owner = NULL, lease_until = NULL WHERE id = $5 AND fence = $6 AND "
                       "state = 'running'", u, 6, NULL, &ch, err) != HP_OK || ch != 1)
        goto fail;
    if (terminal &&
        hp_store_after_terminal(db, batch_id, id, state, *msg ? msg : NULL, now, err) != HP_OK)
        goto fail;
    cJSON *d = job_details(id, batch_id);
    cJSON_AddNumberToObject(d, "attempt", attempts);
    cJSON_AddNumberToObject(d, "fence", (double)fence);
    cJSON_AddStringToObject(d, "reason", orphan ? "process restarted" : "lease expired");
    char event[32];
    snprintf(event, sizeof event, "job.%s", terminal ? state : "requeue");
    hp_status st = hp_store_audit(db, event, NULL, d, err);
    cJSON_Delete(d);
    if (st != HP_OK || hp_db_commit(db, err) != HP_OK)
        goto fail;
    hp_db_rows_free(r);
    return 1;
fail:
    hp_db_rows_free(r);
    hp_db_rollback(db);
    return -1;
}

int hp_store_requeue_expired(hp_db *db, const hp_lease_config *lc, int64_t now, int orphan_all,
                             hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[2] = {HP_DB_INT(now), HP_DB_INT(orphan_all)};
    if (hp_db_exec(db, "SELECT id, batch_id, fence FROM jobs WHERE state = 'running' AND "
                       "(lease_until < $1 OR $2 = 1) ORDER BY created_ms LIMIT 200",
                   p, 2, &r, NULL, err) != HP_OK)
        return -1;
    int n = 0;
    for (int i = 0; i < r->nrows; i++) {
        int k = requeue_one(db, hp_db_get(r, i, 0), hp_db_get(r, i, 1), hp_db_get_i64(r, i, 2),
                            lc, now, orphan_all, err);
        if (k < 0) {
            hp_db_rows_free(r);
            return -1;
        }
        n += k;
    }
    hp_db_rows_free(r);
    return n;
}

hp_status hp_store_after_terminal(hp_db *db, const char *batch_id, const char *job_id,
                                  const char *state, const char *error, int64_t now,
                                  hp_error *err)
{
    char event[32];
    snprintf(event, sizeof event, "job.%s", state);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "job_id", job_id);
    cJSON_AddStringToObject(d, "batch_id", batch_id);
    cJSON_AddStringToObject(d, "state", state);
    if (error)
        cJSON_AddStringToObject(d, "error", error);
    else
        cJSON_AddNullToObject(d, "error");
    hp_status st = hp_store_outbox_add(db, batch_id, job_id, event, d, now, err);
    cJSON_Delete(d);
    if (st != HP_OK)
        return st;

    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(batch_id)};
    if ((st = hp_db_exec(db, "SELECT state, COUNT(*) FROM jobs WHERE batch_id = $1 GROUP BY state",
                         p, 1, &r, NULL, err)) != HP_OK)
        return st;
    int64_t counts[5] = {0};
    static const char *const NAMES[5] = {"queued", "running", "succeeded", "failed", "cancelled"};
    for (int i = 0; i < r->nrows; i++)
        for (int k = 0; k < 5; k++)
            if (!strcmp(hp_db_get(r, i, 0), NAMES[k]))
                counts[k] = hp_db_get_i64(r, i, 1);
    hp_db_rows_free(r);
    if (counts[0] || counts[1])
        return HP_OK;
    int64_t ch = 0;
    hp_db_value u[2] = {HP_DB_INT(now), HP_DB_TEXT(batch_id)};
    if ((st = hp_db_exec(db, "UPDATE batches SET done_ms = $1 WHERE id = $2 AND done_ms IS NULL",
                         u, 2, NULL, &ch, err)) != HP_OK || ch != 1)
        return st;
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "batch_id", batch_id);
    cJSON_AddStringToObject(b, "state", "done");
    cJSON *c = cJSON_AddObjectToObject(b, "counts");
    for (int k = 2; k < 5; k++)
        cJSON_AddNumberToObject(c, NAMES[k], (double)counts[k]);
    st = hp_store_outbox_add(db, batch_id, NULL, "batch.completed", b, now, err);
    if (st == HP_OK) {
        cJSON_DeleteItemFromObject(b, "state");
        st = hp_store_audit(db, "batch.done", NULL, b, err);
    }
    cJSON_Delete(b);
    return st;
}
