/* SQLite behind server/db.h: one file in the data folder, WAL mode (readers never wait for the
 * writer), synchronous=FULL (a commit survives a power cut, not only a killed process), and a
 * busy timeout so that concurrent writers (HTTP threads, workers, the token command) queue for
 * the write lock instead of failing. */
#include <sqlite3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "server/db.h"

#define BUSY_TIMEOUT_MS 30000

/* Writers of this process queue on a mutex rather than in SQLite's busy handler, which sleeps
 * in steps of up to 100 ms and so gives waiting writers long, unfair delays. The busy handler
 * remains for other processes (the token command). One server owns a SQLite store, so one
 * process-wide lock is enough. Held from BEGIN to COMMIT or ROLLBACK, or around a single write
 * outside a transaction; reads never take it (WAL readers do not block). */
static pthread_mutex_t g_write_mu = PTHREAD_MUTEX_INITIALIZER;

static int starts_with_word(const char *sql, const char *w)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '(')
        sql++;
    return strncasecmp(sql, w, strlen(w)) == 0;
}

/* $1 -> ?1: SQLite's numbered parameters, so one SQL text serves both dialects. */
static char *rewrite_params(const char *sql)
{
    char *out = strdup(sql);
    if (!out)
        return NULL;
    for (char *p = out; *p; p++)
        if (p[0] == '$' && p[1] >= '0' && p[1] <= '9')
            p[0] = '?';
    return out;
}

static hp_status fail(hp_db *db, sqlite3 *h, const char *what)
{
    int code = sqlite3_extended_errcode(h);
    hp_error_set(&db->error, HP_ERR_IO, "sqlite %s: %s (code %d)", what, sqlite3_errmsg(h), code);
    return HP_ERR_IO;
}

static hp_status bind_all(hp_db *db, sqlite3 *h, sqlite3_stmt *st, const hp_db_value *p, int n)
{
    for (int i = 0; i < n; i++) {
        int rc;
        switch (p[i].kind) {
        case HP_DBV_TEXT:
            rc = p[i].s ? sqlite3_bind_text(st, i + 1, p[i].s, -1, SQLITE_TRANSIENT)
                        : sqlite3_bind_null(st, i + 1);
            break;
        case HP_DBV_INT:
            rc = sqlite3_bind_int64(st, i + 1, p[i].i);
            break;
        case HP_DBV_DOUBLE:
            rc = sqlite3_bind_double(st, i + 1, p[i].d);
            break;
        default:
            rc = sqlite3_bind_null(st, i + 1);
        }
        if (rc != SQLITE_OK)
            return fail(db, h, "bind");
    }
    return HP_OK;
}

static hp_status grow(hp_db_rows *r, int *cap)
{
    if (r->nrows < *cap)
        return HP_OK;
    int nc = *cap ? *cap * 2 : 16;
    char **c = realloc(r->cells, (size_t)nc * r->ncols * sizeof *c);
    if (!c)
        return HP_ERR_NOMEM;
    r->cells = c;
    *cap = nc;
    return HP_OK;
}

static hp_status sq_exec_locked(hp_db *db, const char *sql, const hp_db_value *params, int n,
                                hp_db_rows **rows, int64_t *changes);

static hp_status sq_exec(hp_db *db, const char *sql, const hp_db_value *params, int n,
                         hp_db_rows **rows, int64_t *changes)
{
    int begin = starts_with_word(sql, "BEGIN");
    int commit = starts_with_word(sql, "COMMIT"), rollback = starts_with_word(sql, "ROLLBACK");
    int write = !begin && !commit && !rollback && !starts_with_word(sql, "SELECT") &&
                !starts_with_word(sql, "PRAGMA");
    hp_status s;
    if (begin) {
        pthread_mutex_lock(&g_write_mu);
        s = sq_exec_locked(db, sql, params, n, rows, changes);
        if (s == HP_OK)
            db->write_locked = 1;
        else
            pthread_mutex_unlock(&g_write_mu);
    } else if (commit || rollback) {
        s = sq_exec_locked(db, sql, params, n, rows, changes);
        /* A failed COMMIT is followed by a ROLLBACK, which releases the lock. */
        if (db->write_locked && (s == HP_OK || rollback)) {
            db->write_locked = 0;
            pthread_mutex_unlock(&g_write_mu);
        }
    } else if (write && !db->write_locked) {
        pthread_mutex_lock(&g_write_mu);
        s = sq_exec_locked(db, sql, params, n, rows, changes);
        pthread_mutex_unlock(&g_write_mu);
    } else {
        s = sq_exec_locked(db, sql, params, n, rows, changes);
    }
    return s;
}

static hp_status sq_exec_locked(hp_db *db, const char *sql, const hp_db_value *params, int n,
                                hp_db_rows **rows, int64_t *changes)
{
    sqlite3 *h = db->handle;
    sqlite3_stmt *st = NULL;
    hp_db_rows *r = NULL;
    hp_status s = HP_OK;
    int cap = 0;
    char *text = rewrite_params(sql);
    if (!text)
        return hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
    if (sqlite3_prepare_v2(h, text, -1, &st, NULL) != SQLITE_OK) {
        s = fail(db, h, "prepare");
        goto done;
    }
    if ((s = bind_all(db, h, st, params, n)) != HP_OK)
        goto done;
    if (rows) {
        r = calloc(1, sizeof *r);
        if (!r) {
            s = hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
            goto done;
        }
        r->ncols = sqlite3_column_count(st);
    }
    for (;;) {
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            break;
        if (rc != SQLITE_ROW) {
            s = fail(db, h, "step");
            goto done;
        }
        if (!r || r->ncols == 0)
            continue;
        if (grow(r, &cap) != HP_OK) {
            s = hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int c = 0; c < r->ncols; c++) {
            const unsigned char *v = sqlite3_column_text(st, c);
            char *cell = NULL;
            if (v && !(cell = strdup((const char *)v))) {
                s = hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
                for (int k = 0; k < c; k++)
                    free(r->cells[(size_t)r->nrows * r->ncols + k]);
                goto done;
            }
            r->cells[(size_t)r->nrows * r->ncols + c] = cell;
        }
        r->nrows++;
    }
    if (changes)
        *changes = sqlite3_changes64(h);
done:
    sqlite3_finalize(st);
    free(text);
    if (s != HP_OK) {
        hp_db_rows_free(r);
        r = NULL;
    }
    if (rows)
        *rows = r;
    return s;
}

static hp_status sq_script(hp_db *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db->handle, sql, NULL, NULL, &msg) != SQLITE_OK) {
        hp_error_set(&db->error, HP_ERR_IO, "sqlite: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return HP_ERR_IO;
    }
    return HP_OK;
}

static int sq_ping(hp_db *db)
{
    return sq_exec_locked(db, "SELECT 1", NULL, 0, NULL, NULL) == HP_OK;
}

static void sq_close(hp_db *db)
{
    sqlite3_close_v2(db->handle);
    db->handle = NULL;
}

static const hp_db_ops SQLITE_OPS = {sq_exec, sq_script, sq_ping, sq_close};

hp_status hp_db_sqlite_open(const char *path, hp_db *db)
{
    sqlite3 *h = NULL;
    db->kind = HP_DB_SQLITE;
    db->ops = &SQLITE_OPS;
    int rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                                           SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        hp_error_set(&db->error, HP_ERR_IO, "cannot open the job store %s: %s", path,
                     h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close_v2(h);
        return HP_ERR_IO;
    }
    db->handle = h;
    sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    /* WAL: HTTP readers never wait for a worker's commit. FULL: every commit is on disk before
     * a client is told its batch was accepted. */
    if (sq_script(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON")
        != HP_OK)
        return HP_ERR_IO;
    return HP_OK;
}
