/* The dialect-neutral half of server/db.h: opening by target, transactions, result access. */
#include "server/db.h"

#include <stdlib.h>
#include <string.h>

static int is_pg_target(const char *t)
{
    return !strncmp(t, "postgresql://", 13) || !strncmp(t, "postgres://", 11);
}

hp_status hp_db_open(const char *target, hp_db **out, hp_error *err)
{
    *out = NULL;
    if (!target || !*target)
        return hp_error_set(err, HP_ERR_INVALID, "no job store given");
    hp_db *db = calloc(1, sizeof *db);
    if (!db)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = is_pg_target(target) ? hp_db_pg_open(target, db) : hp_db_sqlite_open(target, db);
    if (st != HP_OK) {
        hp_error_set(err, st, "%s", db->error.msg);
        hp_db_close(db);
        return st;
    }
    *out = db;
    return HP_OK;
}

void hp_db_close(hp_db *db)
{
    if (!db)
        return;
    if (db->ops && db->handle)
        db->ops->close(db);
    free(db);
}

hp_db_kind hp_db_kind_of(const hp_db *db) { return db->kind; }

const char *hp_db_kind_name(const hp_db *db)
{
    return db->kind == HP_DB_POSTGRES ? "postgresql" : "sqlite";
}

const char *hp_db_error(const hp_db *db) { return db->error.msg; }

hp_status hp_db_exec(hp_db *db, const char *sql, const hp_db_value *params, int n_params,
                     hp_db_rows **rows, int64_t *changes, hp_error *err)
{
    if (rows)
        *rows = NULL;
    if (changes)
        *changes = 0;
    hp_error_clear(&db->error);
    hp_status st = db->ops->exec(db, sql, params, n_params, rows, changes);
    if (st != HP_OK)
        hp_error_set(err, st, "job store: %s", db->error.msg);
    return st;
}

hp_status hp_db_script(hp_db *db, const char *sql, hp_error *err)
{
    hp_error_clear(&db->error);
    hp_status st = db->ops->script(db, sql);
    if (st != HP_OK)
        hp_error_set(err, st, "job store: %s", db->error.msg);
    return st;
}

hp_status hp_db_begin(hp_db *db, hp_error *err)
{
    hp_status st = hp_db_exec(db, db->kind == HP_DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN", NULL,
                              0, NULL, NULL, err);
    db->in_tx = st == HP_OK;
    return st;
}

hp_status hp_db_commit(hp_db *db, hp_error *err)
{
    hp_status st = hp_db_exec(db, "COMMIT", NULL, 0, NULL, NULL, err);
    if (st != HP_OK)
        hp_db_rollback(db);
    db->in_tx = 0;
    return st;
}

void hp_db_rollback(hp_db *db)
{
    hp_error keep = db->error;
    db->in_tx = 0;
    db->ops->exec(db, "ROLLBACK", NULL, 0, NULL, NULL);
    db->error = keep;
}

const char *hp_db_lock_clause(const hp_db *db, int skip)
{
    if (db->kind != HP_DB_POSTGRES)
        return "";
    return skip ? " FOR UPDATE SKIP LOCKED" : " FOR UPDATE";
}

int hp_db_ping(hp_db *db) { return db->ops->ping(db); }

const char *hp_db_get(const hp_db_rows *r, int row, int col)
{
    if (!r || row < 0 || row >= r->nrows || col < 0 || col >= r->ncols)
        return NULL;
    return r->cells[(size_t)row * r->ncols + col];
}

int64_t hp_db_get_i64(const hp_db_rows *r, int row, int col)
{
    const char *s = hp_db_get(r, row, col);
    return s ? strtoll(s, NULL, 10) : 0;
}

double hp_db_get_double(const hp_db_rows *r, int row, int col)
{
    const char *s = hp_db_get(r, row, col);
    return s ? strtod(s, NULL) : 0.0;
}

void hp_db_rows_free(hp_db_rows *r)
{
    if (!r)
        return;
    if (r->cells)
        for (long k = 0; k < (long)r->nrows * r->ncols; k++)
            free(r->cells[k]);
    free(r->cells);
    free(r);
}
