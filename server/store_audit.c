/* The service's audit chain in the job store (server/store.h): each state change appends a
 * line in the same transaction as the change itself, so the log and the jobs never disagree,
 * even across a crash. The lines are report/audit_log.h's format and chain (prev_sha256 is the
 * SHA-256 of the previous line's bytes), so an export is checked by hp_audit_verify. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/utc_time.h"
#include "report/audit_log.h"
#include "report/canonical_json.h"
#include "server/ids.h"
#include "server/store.h"

static char *json_string(const char *s, hp_error *err)
{
    cJSON *node = cJSON_CreateString(s);
    char *out = node ? hp_json_canonicalize(node, NULL, err) : NULL;
    cJSON_Delete(node);
    if (!node)
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return out;
}

hp_status hp_store_audit(hp_db *db, const char *event, const char *actor, const cJSON *details,
                         hp_error *err)
{
    char *ev = NULL, *ac = NULL, *det = NULL, *line = NULL, sql[160];
    hp_db_rows *r = NULL;
    hp_status st = HP_OK;
    if (!(ev = json_string(event, err)) || (actor && !(ac = json_string(actor, err))) ||
        (details && !(det = hp_json_canonicalize(details, NULL, err)))) {
        st = err && err->code ? err->code : HP_ERR_INVALID;
        goto done;
    }
    /* The head row is the chain's lock: appends queue here, one at a time. */
    snprintf(sql, sizeof sql, "SELECT seq, sha256 FROM audit_head WHERE id = 1%s",
             hp_db_lock_clause(db, 0));
    if ((st = hp_db_exec(db, sql, NULL, 0, &r, NULL, err)) != HP_OK)
        goto done;
    if (r->nrows != 1) {
        st = hp_error_set(err, HP_ERR_INVALID, "the audit chain's head is missing");
        goto done;
    }
    int64_t seq = hp_db_get_i64(r, 0, 0) + 1;
    char stamp[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), stamp);
    if (asprintf(&line, "{\"seq\":%lld,\"time\":\"%s\",\"event\":%s,\"actor\":%s,\"details\":%s,"
                        "\"prev_sha256\":\"%s\"}",
                 (long long)seq, stamp, ev, ac ? ac : "null", det ? det : "{}",
                 hp_db_get(r, 0, 1)) < 0) {
        line = NULL;
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    char sha[65];
    hp_sha256_hex(line, strlen(line), sha);
    hp_db_value p[3] = {HP_DB_INT(seq), HP_DB_TEXT(line), HP_DB_TEXT(sha)};
    if ((st = hp_db_exec(db, "INSERT INTO audit (seq, line, sha256) VALUES ($1, $2, $3)", p, 3,
                         NULL, NULL, err)) != HP_OK)
        goto done;
    hp_db_value q[2] = {HP_DB_INT(seq), HP_DB_TEXT(sha)};
    st = hp_db_exec(db, "UPDATE audit_head SET seq = $1, sha256 = $2 WHERE id = 1", q, 2, NULL,
                    NULL, err);
done:
    hp_db_rows_free(r);
    free(ev);
    free(ac);
    free(det);
    free(line);
    return st;
}

hp_status hp_store_audit_event(hp_db *db, const char *event, const char *actor, const cJSON *details,
                               hp_error *err)
{
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    if ((st = hp_store_audit(db, event, actor, details, err)) != HP_OK) {
        hp_db_rollback(db);
        return st;
    }
    return hp_db_commit(db, err);
}

hp_status hp_store_audit_export(hp_db *db, const char *path, size_t *n_events, hp_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "cannot write %s", path);
    size_t n = 0;
    int64_t after = 0;
    hp_status st = HP_OK;
    /* In pages, so a long chain never sits in memory whole. */
    for (;;) {
        hp_db_rows *r = NULL;
        hp_db_value p[1] = {HP_DB_INT(after)};
        if ((st = hp_db_exec(db, "SELECT seq, line FROM audit WHERE seq > $1 ORDER BY seq LIMIT "
                                 "1000", p, 1, &r, NULL, err)) != HP_OK)
            break;
        for (int i = 0; i < r->nrows; i++) {
            fprintf(f, "%s\n", hp_db_get(r, i, 1));
            after = hp_db_get_i64(r, i, 0);
            n++;
        }
        int rows = r->nrows;
        hp_db_rows_free(r);
        if (rows < 1000)
            break;
    }
    if (fclose(f) != 0 && st == HP_OK)
        st = hp_error_set(err, HP_ERR_IO, "cannot write %s", path);
    if (n_events)
        *n_events = n;
    return st;
}
