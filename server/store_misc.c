/* The smaller tables of the job store (server/store.h): uploads, cases, workers, and the
 * figures behind /v1/metrics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ids.h"
#include "server/store_internal.h"

hp_status hp_store_upload_record(hp_db *db, const char *sha256, const char *token_id,
                                 int64_t size, hp_error *err)
{
    hp_db_value p[4] = {HP_DB_TEXT(sha256), HP_DB_TEXT(token_id), HP_DB_INT(size),
                        HP_DB_INT(hp_now_ms())};
    return hp_db_exec(db, "INSERT INTO uploads (sha256, token_id, size, created_ms) VALUES "
                          "($1, $2, $3, $4) ON CONFLICT (sha256, token_id) DO NOTHING",
                      p, 4, NULL, NULL, err);
}

int hp_store_upload_owned(hp_db *db, const char *sha256, const char *token_id, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[2] = {HP_DB_TEXT(sha256), HP_DB_TEXT(token_id)};
    if (hp_db_exec(db, "SELECT 1 FROM uploads WHERE sha256 = $1 AND token_id = $2", p, 2, &r, NULL,
                   err) != HP_OK)
        return -1;
    int found = r->nrows > 0;
    hp_db_rows_free(r);
    return found;
}

hp_status hp_store_case_id(hp_db *db, const char *accession, int create, char id[40], int *found,
                           hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(accession)};
    *found = 0;
    for (int pass = 0; pass < 2; pass++) {
        hp_status st = hp_db_exec(db, "SELECT id FROM cases WHERE accession = $1", p, 1, &r, NULL,
                                  err);
        if (st != HP_OK)
            return st;
        if (r->nrows == 1) {
            snprintf(id, 40, "%s", hp_db_get(r, 0, 0));
            *found = 1;
            hp_db_rows_free(r);
            return HP_OK;
        }
        hp_db_rows_free(r);
        r = NULL;
        if (!create || pass)
            return HP_OK;
        char nid[HP_ID_LEN + 1];
        hp_id_new('c', nid);
        hp_db_value q[3] = {HP_DB_TEXT(accession), HP_DB_TEXT(nid), HP_DB_INT(hp_now_ms())};
        /* Two first requests for one case: one insert wins, both read its id back. */
        if ((st = hp_db_exec(db, "INSERT INTO cases (accession, id, created_ms) VALUES ($1, $2, "
                                 "$3) ON CONFLICT (accession) DO NOTHING", q, 3, NULL, NULL, err))
            != HP_OK)
            return st;
    }
    return HP_OK;
}

hp_status hp_store_case_results(hp_db *db, const char *accession, char ***dirs, char ***slide_ids,
                                int *n, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(accession)};
    *dirs = *slide_ids = NULL;
    *n = 0;
    hp_status st = hp_db_exec(db, "SELECT result_dir, result_slide_id FROM jobs WHERE accession = "
                                  "$1 AND state = 'succeeded' ORDER BY finished_ms DESC, id",
                              p, 1, &r, NULL, err);
    if (st != HP_OK)
        return st;
    size_t cap = r->nrows ? (size_t)r->nrows : 1;
    *dirs = calloc(cap, sizeof **dirs);
    *slide_ids = calloc(cap, sizeof **slide_ids);
    if (!*dirs || !*slide_ids)
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    for (int i = 0; st == HP_OK && i < r->nrows; i++) {
        (*dirs)[i] = strdup(hp_db_get(r, i, 0) ? hp_db_get(r, i, 0) : "");
        (*slide_ids)[i] = strdup(hp_db_get(r, i, 1) ? hp_db_get(r, i, 1) : "");
        *n = i + 1;
        if (!(*dirs)[i] || !(*slide_ids)[i])
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    hp_db_rows_free(r);
    return st;
}

hp_status hp_store_case_built(hp_db *db, const char *accession, const char *actor, int n_slides,
                              int64_t now, hp_error *err)
{
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    hp_db_value p[2] = {HP_DB_INT(now), HP_DB_TEXT(accession)};
    hp_db_rows *r = NULL;
    if ((st = hp_db_exec(db, "UPDATE cases SET built_ms = $1 WHERE accession = $2", p, 2, NULL,
                         NULL, err)) != HP_OK ||
        (st = hp_db_exec(db, "SELECT id FROM cases WHERE accession = $1", p + 1, 1, &r, NULL,
                         err)) != HP_OK)
        goto fail;
    cJSON *d = cJSON_CreateObject();
    /* The case's opaque id, never its accession number. */
    cJSON_AddStringToObject(d, "case", hp_db_get(r, 0, 0) ? hp_db_get(r, 0, 0) : "");
    cJSON_AddNumberToObject(d, "slides", n_slides);
    st = hp_store_audit(db, "case.report", actor, d, err);
    cJSON_Delete(d);
    hp_db_rows_free(r);
    if (st != HP_OK)
        goto fail;
    return hp_db_commit(db, err);
fail:
    hp_db_rollback(db);
    return st;
}

hp_status hp_store_worker_seen(hp_db *db, const char *id, const char *host, int pid,
                               int64_t started_ms, int64_t now, int stopped, hp_error *err)
{
    hp_db_value p[6] = {HP_DB_TEXT(id), HP_DB_TEXT(host), HP_DB_INT(pid), HP_DB_INT(started_ms),
                        HP_DB_INT(now), stopped ? HP_DB_INT(now) : HP_DB_NULL};
    return hp_db_exec(db, "INSERT INTO workers (id, host, pid, started_ms, seen_ms, stopped_ms) "
                          "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET "
                          "seen_ms = $5, stopped_ms = $6",
                      p, 6, NULL, NULL, err);
}

hp_status hp_store_stats_get(hp_db *db, int64_t now, hp_store_stats *s, hp_error *err)
{
    static const char *const NAMES[5] = {"queued", "running", "succeeded", "failed", "cancelled"};
    hp_db_rows *r = NULL;
    memset(s, 0, sizeof *s);
    hp_status st = hp_db_exec(db, "SELECT state, COUNT(*) FROM jobs GROUP BY state", NULL, 0, &r,
                              NULL, err);
    if (st != HP_OK)
        return st;
    for (int i = 0; i < r->nrows; i++)
        for (int k = 0; k < 5; k++)
            if (!strcmp(hp_db_get(r, i, 0), NAMES[k]))
                s->by_state[k] = hp_db_get_i64(r, i, 1);
    hp_db_rows_free(r);
    hp_db_value p[1] = {HP_DB_INT(now - 60000)};
    if ((st = hp_db_exec(db, "SELECT (SELECT MIN(created_ms) FROM jobs WHERE state = 'queued'), "
                             "(SELECT COALESCE(SUM(tiles_done), 0) FROM jobs WHERE state = "
                             "'succeeded' AND finished_ms >= $1), "
                             "(SELECT COUNT(*) FROM outbox WHERE delivered_ms IS NULL AND "
                             "gave_up_ms IS NULL), "
                             "(SELECT COUNT(*) FROM workers WHERE stopped_ms IS NULL AND "
                             "seen_ms >= $1)", p, 1, &r, NULL, err)) != HP_OK)
        return st;
    if (hp_db_get(r, 0, 0))
        s->oldest_queued_s = (now - hp_db_get_i64(r, 0, 0)) / 1000.0;
    s->tiles_done_recent = hp_db_get_i64(r, 0, 1);
    s->outbox_pending = hp_db_get_i64(r, 0, 2);
    s->workers_alive = hp_db_get_i64(r, 0, 3);
    hp_db_rows_free(r);
    return HP_OK;
}
