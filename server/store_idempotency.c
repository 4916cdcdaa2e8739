/* Idempotency keys (server/store.h): a key is claimed (pending) before its request is handled,
 * and completed with the answer in the same transaction that creates the batch, so a retry sees
 * either nothing, "still being handled", or exactly the answer the first request got. Keys are
 * scoped to the token that sent them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/store.h"

hp_status hp_store_idem_begin(hp_db *db, const char *token_id, const char *key,
                              const char body_sha256[65], hp_idem_outcome *outcome, int *status,
                              char **response, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_status st;
    int64_t now = hp_now_ms(), ch = 0;
    *response = NULL;
    *status = 0;
    if ((st = hp_db_begin(db, err)) != HP_OK)
        return st;
    /* The insert decides races between identical retries: one of them makes the row. */
    hp_db_value ins[5] = {HP_DB_TEXT(token_id), HP_DB_TEXT(key), HP_DB_TEXT(body_sha256),
                          HP_DB_INT(now), HP_DB_INT(now + HP_IDEMPOTENCY_KEEP_MS)};
    if ((st = hp_db_exec(db, "INSERT INTO idempotency (token_id, idem_key, body_sha256, state, "
                             "created_ms, expires_ms) VALUES ($1, $2, $3, 'pending', $4, $5) "
                             "ON CONFLICT (token_id, idem_key) DO NOTHING",
                         ins, 5, NULL, &ch, err)) != HP_OK)
        goto fail;
    if (ch == 1) {
        *outcome = HP_IDEM_NEW;
        return hp_db_commit(db, err);
    }
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT body_sha256, state, status, response, created_ms, expires_ms "
                              "FROM idempotency WHERE token_id = $1 AND idem_key = $2%s",
             hp_db_lock_clause(db, 0));
    hp_db_value p[2] = {HP_DB_TEXT(token_id), HP_DB_TEXT(key)};
    if ((st = hp_db_exec(db, sql, p, 2, &r, NULL, err)) != HP_OK)
        goto fail;
    if (r->nrows != 1) {
        st = hp_error_set(err, HP_ERR_IO, "idempotency key vanished during the request");
        goto fail;
    }
    const char *state = hp_db_get(r, 0, 1);
    int pending = !strcmp(state, "pending");
    int stale = hp_db_get_i64(r, 0, 5) < now ||
                (pending && hp_db_get_i64(r, 0, 4) < now - HP_IDEMPOTENCY_PENDING_MS);
    if (stale) {
        /* Expired, or its request died with its process: the key starts again. */
        if ((st = hp_db_exec(db, "UPDATE idempotency SET body_sha256 = $3, state = 'pending', "
                                 "status = NULL, response = NULL, created_ms = $4, expires_ms = $5 "
                                 "WHERE token_id = $1 AND idem_key = $2",
                             ins, 5, NULL, NULL, err)) != HP_OK)
            goto fail;
        *outcome = HP_IDEM_NEW;
    } else if (strcmp(hp_db_get(r, 0, 0), body_sha256) != 0) {
        *outcome = HP_IDEM_MISMATCH;
    } else if (pending) {
        *outcome = HP_IDEM_PENDING;
    } else {
        *outcome = HP_IDEM_REPLAY;
        *status = (int)hp_db_get_i64(r, 0, 2);
        const char *resp = hp_db_get(r, 0, 3);
        if (!(*response = strdup(resp ? resp : "{}"))) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    hp_db_rows_free(r);
    return hp_db_commit(db, err);
fail:
    hp_db_rows_free(r);
    hp_db_rollback(db);
    free(*response);
    *response = NULL;
    return st;
}

void hp_store_idem_abandon(hp_db *db, const char *token_id, const char *key)
{
    hp_db_value p[2] = {HP_DB_TEXT(token_id), HP_DB_TEXT(key)};
    hp_db_exec(db, "DELETE FROM idempotency WHERE token_id = $1 AND idem_key = $2 AND "
                   "state = 'pending'", p, 2, NULL, NULL, NULL);
}

hp_status hp_store_idem_expire(hp_db *db, int64_t now, hp_error *err)
{
    hp_db_value p[1] = {HP_DB_INT(now)};
    return hp_db_exec(db, "DELETE FROM idempotency WHERE expires_ms < $1", p, 1, NULL, NULL, err);
}
