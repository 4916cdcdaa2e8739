/* The callback outbox (server/store.h): a job's or batch's end writes its callback here in the
 * same transaction as the state change; senders (server/deliver.c) claim due rows with a short
 * lease, post them, and record every attempt. The row id is the callback's webhook-id, the same
 * on every retry, so receivers drop repeats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utc_time.h"
#include "server/ids.h"
#include "server/store_internal.h"

hp_status hp_store_outbox_add(hp_db *db, const char *batch_id, const char *job_id,
                              const char *event, const cJSON *data, int64_t now, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(batch_id)};
    hp_status st = hp_db_exec(db, "SELECT callback_url, token_id FROM batches WHERE id = $1", p, 1,
                              &r, NULL, err);
    if (st != HP_OK)
        return st;
    if (r->nrows != 1 || !hp_db_get(r, 0, 0)) {
        hp_db_rows_free(r);
        return HP_OK; /* no callback asked for */
    }
    char id[HP_ID_LEN + 1], stamp[HP_UTC_TIME_LEN];
    hp_id_new('m', id);
    hp_utc_format((time_t)(now / 1000), stamp);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "type", event);
    cJSON_AddStringToObject(body, "timestamp", stamp);
    cJSON_AddItemToObject(body, "data", cJSON_Duplicate(data, 1));
    char *payload = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!payload) {
        hp_db_rows_free(r);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    hp_db_value q[8] = {HP_DB_TEXT(id),   HP_DB_TEXT(batch_id),        HP_DB_TEXT(job_id),
                        HP_DB_TEXT(hp_db_get(r, 0, 1)), HP_DB_TEXT(event),
                        HP_DB_TEXT(hp_db_get(r, 0, 0)), HP_DB_TEXT(payload), HP_DB_INT(now)};
    st = hp_db_exec(db, "INSERT INTO outbox (id, batch_id, job_id, token_id, event, url, payload, "
                        "created_ms, next_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
                    q, 8, NULL, NULL, err);
    free(payload);
    hp_db_rows_free(r);
    return st;
}

void hp_outbox_row_free(hp_outbox_row *o)
{
    if (!o)
        return;
    free(o->id);
    free(o->url);
    free(o->payload);
    free(o->token_id);
    memset(o, 0, sizeof *o);
}

int hp_store_outbox_claim(hp_db *db, int64_t now, int64_t lease_ms, hp_outbox_row *o,
                          hp_error *err)
{
    hp_db_rows *r = NULL;
    char sql[320];
    memset(o, 0, sizeof *o);
    if (hp_db_begin(db, err) != HP_OK)
        return -1;
    snprintf(sql, sizeof sql, "SELECT id FROM outbox WHERE delivered_ms IS NULL AND gave_up_ms IS "
                              "NULL AND next_ms <= $1 AND (lease_until IS NULL OR lease_until < $1) "
                              "ORDER BY next_ms LIMIT 1%s", hp_db_lock_clause(db, 1));
    hp_db_value p[1] = {HP_DB_INT(now)};
    if (hp_db_exec(db, sql, p, 1, &r, NULL, err) != HP_OK)
        goto fail;
    if (r->nrows == 0) {
        hp_db_rows_free(r);
        hp_db_rollback(db);
        return 0;
    }
    hp_db_value u[2] = {HP_DB_INT(now + lease_ms), HP_DB_TEXT(hp_db_get(r, 0, 0))};
    if (hp_db_exec(db, "UPDATE outbox SET lease_until = $1, attempts = attempts + 1 WHERE id = $2",
                   u, 2, NULL, NULL, err) != HP_OK)
        goto fail;
    hp_db_rows *q = NULL;
    if (hp_db_exec(db, "SELECT id, url, payload, token_id, attempts, created_ms FROM outbox WHERE "
                       "id = $1", u + 1, 1, &q, NULL, err) != HP_OK)
        goto fail;
    o->id = strdup(hp_db_get(q, 0, 0));
    o->url = strdup(hp_db_get(q, 0, 1));
    o->payload = strdup(hp_db_get(q, 0, 2));
    o->token_id = strdup(hp_db_get(q, 0, 3));
    o->attempts = (int)hp_db_get_i64(q, 0, 4);
    o->created_ms = hp_db_get_i64(q, 0, 5);
    hp_db_rows_free(q);
    hp_db_rows_free(r);
    r = NULL;
    if (!o->id || !o->url || !o->payload || !o->token_id) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (hp_db_commit(db, err) != HP_OK) {
        hp_outbox_row_free(o);
        return -1;
    }
    return 1;
fail:
    hp_outbox_row_free(o);
    hp_db_rows_free(r);
    hp_db_rollback(db);
    return -1;
}

hp_status hp_store_outbox_record(hp_db *db, const hp_outbox_row *o, int64_t now, int status,
                                 const char *error, int64_t duration_ms, int64_t retry_in_ms,
                                 hp_error *err)
{
    int ok = status >= 200 && status < 300;
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    hp_db_value d[6] = {HP_DB_TEXT(o->id), HP_DB_INT(o->attempts), HP_DB_INT(now),
                        status ? HP_DB_INT(status) : HP_DB_NULL, HP_DB_TEXT(ok ? NULL : error),
                        HP_DB_INT(duration_ms)};
    if ((st = hp_db_exec(db, "INSERT INTO deliveries (outbox_id, attempt, time_ms, status, error, "
                             "duration_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT "
                             "(outbox_id, attempt) DO NOTHING", d, 6, NULL, NULL, err)) != HP_OK)
        goto fail;
    hp_db_value u[4] = {ok ? HP_DB_INT(now) : HP_DB_NULL,
                        !ok && retry_in_ms < 0 ? HP_DB_INT(now) : HP_DB_NULL,
                        HP_DB_INT(now + (retry_in_ms > 0 ? retry_in_ms : 0)), HP_DB_TEXT(o->id)};
    if ((st = hp_db_exec(db, "UPDATE outbox SET delivered_ms = $1, gave_up_ms = $2, next_ms = $3, "
                             "lease_until = NULL WHERE id = $4", u, 4, NULL, NULL, err)) != HP_OK)
        goto fail;
    return hp_db_commit(db, err);
fail:
    hp_db_rollback(db);
    return st;
}

static void add_time(cJSON *o, const char *k, const char *ms)
{
    if (!ms) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char t[HP_UTC_TIME_LEN];
    hp_utc_format((time_t)(strtoll(ms, NULL, 10) / 1000), t);
    cJSON_AddStringToObject(o, k, t);
}

hp_status hp_store_deliveries(hp_db *db, const char *batch_id, cJSON **out, hp_error *err)
{
    hp_db_rows *r = NULL, *a = NULL;
    *out = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(batch_id)};
    hp_status st = hp_db_exec(db, "SELECT id, event, job_id, created_ms, delivered_ms, gave_up_ms, "
                                  "next_ms FROM outbox WHERE batch_id = $1 ORDER BY created_ms, id",
                              p, 1, &r, NULL, err);
    if (st == HP_OK)
        st = hp_db_exec(db, "SELECT d.outbox_id, d.attempt, d.time_ms, d.status, d.error, "
                            "d.duration_ms FROM deliveries d JOIN outbox o ON o.id = d.outbox_id "
                            "WHERE o.batch_id = $1 ORDER BY d.outbox_id, d.attempt",
                        p, 1, &a, NULL, err);
    if (st != HP_OK) {
        hp_db_rows_free(r);
        return st;
    }
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < r->nrows; i++) {
        cJSON *m = cJSON_CreateObject();
        const char *id = hp_db_get(r, i, 0);
        cJSON_AddStringToObject(m, "id", id);
        cJSON_AddStringToObject(m, "event", hp_db_get(r, i, 1));
        if (hp_db_get(r, i, 2))
            cJSON_AddStringToObject(m, "job_id", hp_db_get(r, i, 2));
        else
            cJSON_AddNullToObject(m, "job_id");
        add_time(m, "created", hp_db_get(r, i, 3));
        add_time(m, "delivered", hp_db_get(r, i, 4));
        add_time(m, "gave_up", hp_db_get(r, i, 5));
        const char *state = hp_db_get(r, i, 4)   ? "delivered"
                            : hp_db_get(r, i, 5) ? "gave_up"
                                                 : "pending";
        cJSON_AddStringToObject(m, "state", state);
        if (!strcmp(state, "pending"))
            add_time(m, "next_attempt", hp_db_get(r, i, 6));
        else
            cJSON_AddNullToObject(m, "next_attempt");
        cJSON *atts = cJSON_AddArrayToObject(m, "attempts");
        for (int k = 0; k < a->nrows; k++) {
            if (strcmp(hp_db_get(a, k, 0), id))
                continue;
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "attempt", (double)hp_db_get_i64(a, k, 1));
            add_time(t, "time", hp_db_get(a, k, 2));
            if (hp_db_get(a, k, 3))
                cJSON_AddNumberToObject(t, "status", (double)hp_db_get_i64(a, k, 3));
            else
                cJSON_AddNullToObject(t, "status");
            if (hp_db_get(a, k, 4))
                cJSON_AddStringToObject(t, "error", hp_db_get(a, k, 4));
            else
                cJSON_AddNullToObject(t, "error");
            cJSON_AddNumberToObject(t, "duration_ms", (double)hp_db_get_i64(a, k, 5));
            cJSON_AddItemToArray(atts, t);
        }
        cJSON_AddItemToArray(arr, m);
    }
    hp_db_rows_free(r);
    hp_db_rows_free(a);
    *out = arr;
    return HP_OK;
}
