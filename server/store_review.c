/* The pathologists' review in the job store (server/store.h): decisions on a job's category,
 * regions and drawn regions, and the regions pathologists draw. Every change is audited with
 * ids and states only; comments and geometry stay in their tables. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/ids.h"
#include "server/store_internal.h"

/* Runs `sql` with `p` and appends the audit event, in one transaction. */
static hp_status exec_audited(hp_db *db, const char *sql, const hp_db_value *p, int n,
                              int64_t *changes, const char *event, const char *actor,
                              const cJSON *details, hp_error *err)
{
    hp_status st = hp_db_begin(db, err);
    if (st != HP_OK)
        return st;
    if ((st = hp_db_exec(db, sql, p, n, NULL, changes, err)) != HP_OK ||
        (changes && *changes == 0))
        goto fail;
    if ((st = hp_store_audit(db, event, actor, details, err)) != HP_OK)
        goto fail;
    return hp_db_commit(db, err);
fail:
    hp_db_rollback(db);
    return st;
}

hp_status hp_store_review_set(hp_db *db, const hp_review_decision *d, int64_t now, hp_error *err)
{
    cJSON *det = cJSON_CreateObject();
    cJSON_AddStringToObject(det, "job", d->job_id);
    cJSON_AddStringToObject(det, "target", d->target);
    if (d->decision)
        cJSON_AddStringToObject(det, "decision", d->decision);
    else
        cJSON_AddNullToObject(det, "decision");
    cJSON_AddBoolToObject(det, "comment", d->comment != NULL);
    hp_status st;
    if (!d->decision && !d->comment) {
        hp_db_value p[3] = {HP_DB_TEXT(d->job_id), HP_DB_TEXT(d->target), HP_DB_TEXT(d->author_id)};
        st = exec_audited(db, "DELETE FROM review_decisions WHERE job_id = $1 AND target = $2 AND "
                              "author_id = $3",
                          p, 3, NULL, "review.withdraw", d->author_id, det, err);
    } else {
        hp_db_value p[7] = {HP_DB_TEXT(d->job_id),      HP_DB_TEXT(d->target),
                            HP_DB_TEXT(d->author_id),   HP_DB_TEXT(d->author_name),
                            HP_DB_TEXT(d->decision),    HP_DB_TEXT(d->comment),
                            HP_DB_INT(now)};
        st = exec_audited(db,
                          "INSERT INTO review_decisions (job_id, target, author_id, author_name, "
                          "decision, comment, updated_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                          "ON CONFLICT (job_id, target, author_id) DO UPDATE SET author_name = "
                          "excluded.author_name, decision = excluded.decision, comment = "
                          "excluded.comment, updated_ms = excluded.updated_ms",
                          p, 7, NULL, "review.decision", d->author_id, det, err);
    }
    cJSON_Delete(det);
    return st;
}

hp_status hp_store_annotation_add(hp_db *db, const hp_review_annotation *a, int64_t now,
                                  char id[40], hp_error *err)
{
    char nid[HP_ID_LEN + 1];
    hp_status st = hp_id_new('a', nid);
    if (st != HP_OK)
        return hp_error_set(err, st, "no random id");
    snprintf(id, 40, "%s", nid);
    hp_db_value p[8] = {HP_DB_TEXT(nid),          HP_DB_TEXT(a->job_id),  HP_DB_TEXT(a->author_id),
                        HP_DB_TEXT(a->author_name), HP_DB_TEXT(a->cls),   HP_DB_TEXT(a->comment),
                        HP_DB_TEXT(a->geometry),  HP_DB_INT(now)};
    cJSON *det = cJSON_CreateObject();
    cJSON_AddStringToObject(det, "job", a->job_id);
    cJSON_AddStringToObject(det, "annotation", nid);
    cJSON_AddStringToObject(det, "class", a->cls);
    st = exec_audited(db,
                      "INSERT INTO review_annotations (id, job_id, author_id, author_name, class, "
                      "comment, geometry, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                      p, 8, NULL, "review.annotation.add", a->author_id, det, err);
    cJSON_Delete(det);
    return st;
}

/* The author of the job's live drawn region `id`: 1 found (author copied), 0 none, -1 error. */
static int annotation_author(hp_db *db, const char *job_id, const char *id, char author[64],
                             hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_db_value p[2] = {HP_DB_TEXT(job_id), HP_DB_TEXT(id)};
    if (hp_db_exec(db, "SELECT author_id FROM review_annotations WHERE job_id = $1 AND id = $2 "
                       "AND deleted_ms IS NULL",
                   p, 2, &r, NULL, err) != HP_OK)
        return -1;
    int found = r->nrows > 0;
    if (found && author)
        snprintf(author, 64, "%s", hp_db_get(r, 0, 0));
    hp_db_rows_free(r);
    return found;
}

int hp_store_annotation_exists(hp_db *db, const char *job_id, const char *id, hp_error *err)
{
    return annotation_author(db, job_id, id, NULL, err);
}

int hp_store_annotation_delete(hp_db *db, const char *job_id, const char *id,
                               const char *author_id, int64_t now, hp_error *err)
{
    char author[64];
    int found = annotation_author(db, job_id, id, author, err);
    if (found <= 0)
        return found;
    if (strcmp(author, author_id) != 0)
        return 2;
    cJSON *det = cJSON_CreateObject();
    cJSON_AddStringToObject(det, "job", job_id);
    cJSON_AddStringToObject(det, "annotation", id);
    hp_db_value p[4] = {HP_DB_INT(now), HP_DB_TEXT(job_id), HP_DB_TEXT(id), HP_DB_TEXT(author_id)};
    int64_t changes = 0;
    /* Kept, marked deleted: the audit chain names it, and decisions others made on it stay
     * readable in the store. */
    hp_status st = exec_audited(db,
                                "UPDATE review_annotations SET deleted_ms = $1 WHERE job_id = $2 "
                                "AND id = $3 AND author_id = $4 AND deleted_ms IS NULL",
                                p, 4, &changes, "review.annotation.delete", author_id, det, err);
    cJSON_Delete(det);
    if (st != HP_OK)
        return -1;
    return changes > 0;
}

static cJSON *author_of(const char *id, const char *name)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "id", id ? id : "");
    cJSON_AddStringToObject(a, "name", name ? name : "");
    return a;
}

static void add_text_or_null(cJSON *o, const char *k, const char *v)
{
    if (v)
        cJSON_AddStringToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

hp_status hp_store_review_get(hp_db *db, const char *job_id, cJSON **out, hp_error *err)
{
    hp_db_rows *r = NULL, *a = NULL;
    hp_db_value p[1] = {HP_DB_TEXT(job_id)};
    *out = NULL;
    hp_status st = hp_db_exec(db, "SELECT target, decision, comment, author_id, author_name, "
                                  "updated_ms FROM review_decisions WHERE job_id = $1 ORDER BY "
                                  "updated_ms, target, author_id",
                              p, 1, &r, NULL, err);
    if (st == HP_OK)
        st = hp_db_exec(db, "SELECT id, class, comment, geometry, author_id, author_name, "
                            "created_ms FROM review_annotations WHERE job_id = $1 AND deleted_ms "
                            "IS NULL ORDER BY created_ms, id",
                        p, 1, &a, NULL, err);
    if (st != HP_OK) {
        hp_db_rows_free(r);
        return st;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *ds = cJSON_AddArrayToObject(o, "decisions");
    for (int i = 0; i < r->nrows; i++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "target", hp_db_get(r, i, 0));
        add_text_or_null(d, "decision", hp_db_get(r, i, 1));
        add_text_or_null(d, "comment", hp_db_get(r, i, 2));
        cJSON_AddItemToObject(d, "author", author_of(hp_db_get(r, i, 3), hp_db_get(r, i, 4)));
        cJSON_AddNumberToObject(d, "updated_ms", (double)hp_db_get_i64(r, i, 5));
        cJSON_AddItemToArray(ds, d);
    }
    cJSON *as = cJSON_AddArrayToObject(o, "annotations");
    for (int i = 0; i < a->nrows; i++) {
        cJSON *g = cJSON_Parse(hp_db_get(a, i, 3));
        if (!g)
            continue; /* only valid geometry is ever stored (server/api_review.c checks it) */
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "id", hp_db_get(a, i, 0));
        cJSON_AddStringToObject(n, "class", hp_db_get(a, i, 1));
        add_text_or_null(n, "comment", hp_db_get(a, i, 2));
        cJSON_AddItemToObject(n, "geometry", g);
        cJSON_AddItemToObject(n, "author", author_of(hp_db_get(a, i, 4), hp_db_get(a, i, 5)));
        cJSON_AddNumberToObject(n, "created_ms", (double)hp_db_get_i64(a, i, 6));
        cJSON_AddItemToArray(as, n);
    }
    hp_db_rows_free(r);
    hp_db_rows_free(a);
    *out = o;
    return HP_OK;
}
