/* Batches and jobs in the job store (server/store.h): creation, reading, listing, cancelling.
 * Leases and the ends of runs are in server/store_lease.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store_internal.h"

int64_t hp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *dup_cell(const hp_db_rows *r, int i, int c)
{
    const char *s = hp_db_get(r, i, c);
    return s ? strdup(s) : NULL;
}

hp_status hp_job_row_from(const hp_db_rows *r, int i, hp_job_row *j)
{
    memset(j, 0, sizeof *j);
    char **s[] = {&j->id, &j->batch_id, &j->token_id, &j->state, &j->source, &j->slide_path,
                  &j->slide_id, &j->accession, &j->lease_owner, &j->error, &j->result_dir,
                  &j->result_slide_id};
    for (int c = 0; c < 12; c++) {
        *s[c] = dup_cell(r, i, c);
        if (hp_db_get(r, i, c) && !*s[c]) {
            hp_job_row_free(j);
            return HP_ERR_NOMEM;
        }
    }
    j->mpp = hp_db_get_double(r, i, 12);
    j->idx = (int)hp_db_get_i64(r, i, 13);
    j->attempts = (int)hp_db_get_i64(r, i, 14);
    j->max_attempts = (int)hp_db_get_i64(r, i, 15);
    j->cancel_requested = (int)hp_db_get_i64(r, i, 16);
    j->error_permanent = (int)hp_db_get_i64(r, i, 17);
    int64_t *t[] = {&j->fence, &j->lease_until, &j->not_before, &j->created_ms, &j->started_ms,
                    &j->run_started_ms, &j->finished_ms, &j->tiles_done, &j->tiles_total};
    for (int c = 0; c < 9; c++)
        *t[c] = hp_db_get_i64(r, i, 18 + c);
    return HP_OK;
}

void hp_job_row_free(hp_job_row *j)
{
    if (!j)
        return;
    char *s[] = {j->id, j->batch_id, j->token_id, j->state, j->source, j->slide_path,
                 j->slide_id, j->accession, j->lease_owner, j->error, j->result_dir,
                 j->result_slide_id};
    for (int c = 0; c < 12; c++)
        free(s[c]);
    memset(j, 0, sizeof *j);
}

void hp_batch_row_free(hp_batch_row *b)
{
    if (!b)
        return;
    free(b->id);
    free(b->token_id);
    free(b->model);
    free(b->options);
    free(b->callback_url);
    memset(b, 0, sizeof *b);
}

void hp_store_jobs_free(hp_job_row *jobs, int n)
{
    for (int i = 0; jobs && i < n; i++)
        hp_job_row_free(&jobs[i]);
    free(jobs);
}

static hp_status rows_to_jobs(hp_db_rows *r, hp_job_row **jobs, int *n, hp_error *err)
{
    *jobs = calloc(r->nrows ? (size_t)r->nrows : 1, sizeof **jobs);
    if (!*jobs)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < r->nrows; i++)
        if (hp_job_row_from(r, i, &(*jobs)[i]) != HP_OK) {
            hp_store_jobs_free(*jobs, i);
            *jobs = NULL;
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        }
    *n = r->nrows;
    return HP_OK;
}

hp_status hp_store_batch_create(hp_db *db, const hp_batch_spec *b, int64_t now, hp_error *err)
{
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    hp_db_value bp[7] = {HP_DB_TEXT(b->batch_id), HP_DB_TEXT(b->token_id), HP_DB_INT(now),
                         HP_DB_TEXT(b->model),    HP_DB_TEXT(b->options),  HP_DB_TEXT(b->callback_url),
                         HP_DB_INT(b->n_jobs)};
    if ((st = hp_db_exec(db, "INSERT INTO batches (id, token_id, created_ms, model, options, "
                             "callback_url, n_jobs) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                         bp, 7, NULL, NULL, err)) != HP_OK)
        goto fail;
    for (int i = 0; i < b->n_jobs; i++) {
        const hp_job_spec *s = &b->jobs[i];
        hp_db_value jp[11] = {HP_DB_TEXT(b->job_ids[i]), HP_DB_TEXT(b->batch_id), HP_DB_INT(i),
                              HP_DB_TEXT(b->token_id),   HP_DB_TEXT(s->source),
                              HP_DB_TEXT(s->slide_path), HP_DB_TEXT(s->slide_id),
                              HP_DB_TEXT(s->accession),
                              s->mpp > 0 ? HP_DB_DOUBLE(s->mpp) : HP_DB_NULL,
                              HP_DB_INT(b->max_attempts), HP_DB_INT(now)};
        if ((st = hp_db_exec(db, "INSERT INTO jobs (id, batch_id, idx, token_id, state, source, "
                                 "slide_path, slide_id, accession, mpp, max_attempts, created_ms, "
                                 "not_before) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, $8, "
                                 "$9, $10, $11, $11)",
                             jp, 11, NULL, NULL, err)) != HP_OK)
            goto fail;
    }
    if (b->idem_key) {
        hp_db_value ip[4] = {HP_DB_INT(b->response_status), HP_DB_TEXT(b->response),
                             HP_DB_TEXT(b->token_id), HP_DB_TEXT(b->idem_key)};
        int64_t ch = 0;
        if ((st = hp_db_exec(db, "UPDATE idempotency SET state = 'done', status = $1, response = $2 "
                                 "WHERE token_id = $3 AND idem_key = $4 AND state = 'pending'",
                             ip, 4, NULL, &ch, err)) != HP_OK)
            goto fail;
        if (ch != 1) {
            /* The key was taken over (our request outlived its pending time): creating the
             * batch now could make a second one for one key. */
            st = hp_error_set(err, HP_ERR_IO, "the idempotency key was released while the "
                                              "request was handled; retry the request");
            goto fail;
        }
    }
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "batch", b->batch_id);
    cJSON_AddNumberToObject(d, "jobs", b->n_jobs);
    st = hp_store_audit(db, "batch.create", b->token_id, d, err);
    cJSON_Delete(d);
    if (st != HP_OK)
        goto fail;
    return hp_db_commit(db, err);
fail:
    hp_db_rollback(db);
    return st;
}

int hp_store_job_get(hp_db *db, const char *id, hp_job_row *out, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(id)};
    if (hp_db_exec(db, "SELECT " HP_JOB_COLS " FROM jobs WHERE id = $1", p, 1, &r, NULL, err)
        != HP_OK)
        return -1;
    int found = r->nrows == 1;
    if (found && hp_job_row_from(r, 0, out) != HP_OK) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        found = -1;
    }
    hp_db_rows_free(r);
    return found;
}

int hp_store_batch_get(hp_db *db, const char *id, hp_batch_row *out, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(id)};
    memset(out, 0, sizeof *out);
    if (hp_db_exec(db, "SELECT id, token_id, model, options, callback_url, n_jobs, created_ms, "
                       "done_ms FROM batches WHERE id = $1", p, 1, &r, NULL, err) != HP_OK)
        return -1;
    int found = r->nrows == 1;
    if (found) {
        out->id = dup_cell(r, 0, 0);
        out->token_id = dup_cell(r, 0, 1);
        out->model = dup_cell(r, 0, 2);
        out->options = dup_cell(r, 0, 3);
        out->callback_url = dup_cell(r, 0, 4);
        out->n_jobs = (int)hp_db_get_i64(r, 0, 5);
        out->created_ms = hp_db_get_i64(r, 0, 6);
        out->done_ms = hp_db_get_i64(r, 0, 7);
        if (!out->id || !out->token_id || !out->model || !out->options) {
            hp_batch_row_free(out);
            hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            found = -1;
        }
    }
    hp_db_rows_free(r);
    return found;
}

hp_status hp_store_batch_jobs(hp_db *db, const char *batch_id, hp_job_row **jobs, int *n,
                              hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(batch_id)};
    *jobs = NULL;
    *n = 0;
    hp_status st = hp_db_exec(db, "SELECT " HP_JOB_COLS " FROM jobs WHERE batch_id = $1 ORDER BY "
                                  "idx", p, 1, &r, NULL, err);
    if (st == HP_OK)
        st = rows_to_jobs(r, jobs, n, err);
    hp_db_rows_free(r);
    return st;
}

hp_status hp_store_jobs_list(hp_db *db, const hp_job_query *q, hp_job_row **jobs, int *n,
                             hp_error *err)
{
    hp_db_rows *r = NULL;
    /* NULL filters match everything, so one statement serves every combination. */
    hp_db_value p[6] = {HP_DB_TEXT(q->token_id), HP_DB_TEXT(q->state), HP_DB_TEXT(q->accession),
                        HP_DB_INT(q->after_id ? q->after_created : -1),
                        HP_DB_TEXT(q->after_id ? q->after_id : ""), HP_DB_INT(q->limit)};
    *jobs = NULL;
    *n = 0;
    hp_status st = hp_db_exec(
        db,
        "SELECT " HP_JOB_COLS " FROM jobs WHERE (CAST($1 AS TEXT) IS NULL OR token_id = $1) AND "
        "(CAST($2 AS TEXT) IS NULL OR state = $2) AND "
        "(CAST($3 AS TEXT) IS NULL OR accession = $3) AND "
        "(created_ms > $4 OR (created_ms = $4 AND id > $5)) ORDER BY created_ms, id LIMIT $6",
        p, 6, &r, NULL, err);
    if (st == HP_OK)
        st = rows_to_jobs(r, jobs, n, err);
    hp_db_rows_free(r);
    return st;
}

int hp_store_lock_batch(hp_db *db, const char *batch_id, hp_error *err)
{
    char sql[128];
    hp_db_rows *r = NULL;
    snprintf(sql, sizeof sql, "SELECT id FROM batches WHERE id = $1%s", hp_db_lock_clause(db, 0));
    hp_db_value p[1] = {HP_DB_TEXT(batch_id)};
    if (hp_db_exec(db, sql, p, 1, &r, NULL, err) != HP_OK)
        return -1;
    int found = r->nrows == 1;
    hp_db_rows_free(r);
    return found;
}

static hp_status cancel_locked(hp_db *db, const char *job_id, const char *batch_id, int64_t now,
                               const char **result, hp_error *err)
{
    char sql[160];
    hp_db_rows *r = NULL;
    snprintf(sql, sizeof sql, "SELECT state FROM jobs WHERE id = $1%s", hp_db_lock_clause(db, 0));
    hp_db_value p[1] = {HP_DB_TEXT(job_id)};
    hp_status st = hp_db_exec(db, sql, p, 1, &r, NULL, err);
    if (st != HP_OK)
        return st;
    const char *state = hp_db_get(r, 0, 0);
    if (!state)
        *result = "unknown";
    else if (!strcmp(state, "queued")) {
        hp_db_value q[2] = {HP_DB_INT(now), HP_DB_TEXT(job_id)};
        if ((st = hp_db_exec(db, "UPDATE jobs SET state = 'cancelled', finished_ms = $1, "
                                 "cancel_requested = 1 WHERE id = $2", q, 2, NULL, NULL, err))
                == HP_OK)
            st = hp_store_after_terminal(db, batch_id, job_id, "cancelled", NULL, now, err);
        *result = "cancelled";
    } else if (!strcmp(state, "running")) {
        st = hp_db_exec(db, "UPDATE jobs SET cancel_requested = 1 WHERE id = $1", p, 1, NULL, NULL,
                        err);
        *result = "requested";
    } else {
        *result = !strcmp(state, "succeeded") ? "succeeded"
                  : !strcmp(state, "failed")  ? "failed"
                                              : "cancelled-before";
    }
    hp_db_rows_free(r);
    return st;
}

hp_status hp_store_job_cancel(hp_db *db, const char *id, const char *actor, int64_t now,
                              const char **result, hp_error *err)
{
    hp_job_row j;
    *result = "unknown";
    int found = hp_store_job_get(db, id, &j, err);
    if (found <= 0)
        return found < 0 ? HP_ERR_IO : HP_OK;
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        goto out;
    if (hp_store_lock_batch(db, j.batch_id, err) < 0 ||
        (st = cancel_locked(db, id, j.batch_id, now, result, err)) != HP_OK) {
        st = st != HP_OK ? st : HP_ERR_IO;
        hp_db_rollback(db);
        goto out;
    }
    if (!strcmp(*result, "cancelled") || !strcmp(*result, "requested")) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "job", id);
        cJSON_AddStringToObject(d, "batch", j.batch_id);
        cJSON_AddStringToObject(d, "outcome", *result);
        st = hp_store_audit(db, "job.cancel", actor, d, err);
        cJSON_Delete(d);
        if (st != HP_OK) {
            hp_db_rollback(db);
            goto out;
        }
    }
    st = hp_db_commit(db, err);
out:
    hp_job_row_free(&j);
    return st;
}

hp_status hp_store_batch_cancel(hp_db *db, const char *id, const char *actor, int64_t now,
                                int *n_cancelled, hp_error *err)
{
    hp_db_rows *r = NULL;
    *n_cancelled = 0;
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    int found = hp_store_lock_batch(db, id, err);
    if (found <= 0) {
        st = found < 0 ? HP_ERR_IO : HP_OK;
        goto fail;
    }
    hp_db_value p[1] = {HP_DB_TEXT(id)};
    if ((st = hp_db_exec(db, "SELECT id FROM jobs WHERE batch_id = $1 AND state IN ('queued', "
                             "'running') ORDER BY idx", p, 1, &r, NULL, err)) != HP_OK)
        goto fail;
    int requested = 0;
    cJSON *d = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(d, "cancelled");
    for (int i = 0; i < r->nrows; i++) {
        const char *res = NULL;
        if ((st = cancel_locked(db, hp_db_get(r, i, 0), id, now, &res, err)) != HP_OK) {
            cJSON_Delete(d);
            goto fail;
        }
        if (!strcmp(res, "cancelled")) {
            cJSON_AddItemToArray(ids, cJSON_CreateString(hp_db_get(r, i, 0)));
            (*n_cancelled)++;
        }
        requested += !strcmp(res, "requested");
    }
    cJSON_AddStringToObject(d, "batch", id);
    cJSON_AddNumberToObject(d, "running_marked", requested);
    st = hp_store_audit(db, "batch.cancel", actor, d, err);
    cJSON_Delete(d);
    if (st != HP_OK)
        goto fail;
    hp_db_rows_free(r);
    return hp_db_commit(db, err);
fail:
    hp_db_rows_free(r);
    hp_db_rollback(db);
    return st;
}
