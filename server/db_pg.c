/* PostgreSQL behind server/db.h, through libpq: parameters and results as text, one
 * connection per thread. A connection that dropped (a restarted database, a network cut) is
 * reset once on the next call; the caller's transaction is lost then and the call fails, so
 * callers retry whole units of work, never half of one. */
#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/db.h"

static void quiet_notice(void *arg, const char *message) { (void)arg, (void)message; }

static hp_status pg_fail(hp_db *db, PGresult *res, const char *what)
{
    PGconn *c = db->handle;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(c);
    char clean[512];
    snprintf(clean, sizeof clean, "%s", msg && *msg ? msg : "error");
    size_t n = strlen(clean);
    while (n && (clean[n - 1] == '\n' || clean[n - 1] == ' '))
        clean[--n] = 0;
    hp_error_set(&db->error, HP_ERR_IO, "postgresql %s: %s%s%s%s", what, clean,
                 state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
    return HP_ERR_IO;
}

/* Every transaction of ours lasts milliseconds. One left open longer belongs to a process
 * that was paused (SIGSTOP, a suspended VM, a debugger) while it held row locks, the audit
 * head's among them, which would stall every other worker and the API until it resumed; the
 * server ends such a session after this long, and the paused process finds its call failed
 * (and reconnects) when it wakes. */
#define IDLE_IN_TRANSACTION_TIMEOUT "SET idle_in_transaction_session_timeout = '10s'"

static int session_setup(PGconn *c)
{
    PGresult *res = PQexec(c, IDLE_IN_TRANSACTION_TIMEOUT);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    return ok;
}

/* A dropped connection is reset before the statement runs, never in the middle of a
 * transaction the caller thinks is open: a reset there fails the call instead. */
static int ensure_connected(hp_db *db)
{
    PGconn *c = db->handle;
    if (PQstatus(c) == CONNECTION_OK)
        return 1;
    if (db->in_tx)
        return 0; /* the rest of the transaction must not run on a fresh connection */
    PQreset(c);
    return PQstatus(c) == CONNECTION_OK && session_setup(c);
}

static hp_status pg_exec(hp_db *db, const char *sql, const hp_db_value *params, int n,
                         hp_db_rows **rows, int64_t *changes)
{
    PGconn *c = db->handle;
    char numbuf[32][40];
    const char *vals[32];
    if (n > 32)
        return hp_error_set(&db->error, HP_ERR_INVALID, "too many parameters (%d)", n);
    if (!ensure_connected(db))
        return pg_fail(db, NULL, "connection");
    for (int i = 0; i < n; i++) {
        switch (params[i].kind) {
        case HP_DBV_TEXT:
            vals[i] = params[i].s;
            break;
        case HP_DBV_INT:
            snprintf(numbuf[i], sizeof numbuf[i], "%" PRId64, params[i].i);
            vals[i] = numbuf[i];
            break;
        case HP_DBV_DOUBLE:
            snprintf(numbuf[i], sizeof numbuf[i], "%.17g", params[i].d);
            vals[i] = numbuf[i];
            break;
        default:
            vals[i] = NULL;
        }
    }
    PGresult *res = PQexecParams(c, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK) {
        hp_status s = pg_fail(db, res, "query");
        PQclear(res);
        return s;
    }
    if (changes) {
        const char *t = PQcmdTuples(res);
        *changes = t && *t ? strtoll(t, NULL, 10) : 0;
    }
    if (rows) {
        hp_db_rows *r = calloc(1, sizeof *r);
        int nr = PQntuples(res), nc = PQnfields(res);
        if (!r || (nr && nc && !(r->cells = calloc((size_t)nr * nc, sizeof *r->cells)))) {
            free(r);
            PQclear(res);
            return hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
        }
        r->nrows = nr, r->ncols = nc;
        for (int i = 0; i < nr; i++)
            for (int j = 0; j < nc; j++) {
                if (PQgetisnull(res, i, j))
                    continue;
                char *v = strdup(PQgetvalue(res, i, j));
                if (!v) {
                    hp_db_rows_free(r);
                    PQclear(res);
                    return hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
                }
                r->cells[(size_t)i * nc + j] = v;
            }
        *rows = r;
    }
    PQclear(res);
    return HP_OK;
}

static hp_status pg_script(hp_db *db, const char *sql)
{
    if (!ensure_connected(db))
        return pg_fail(db, NULL, "connection");
    PGresult *res = PQexec(db->handle, sql);
    ExecStatusType es = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    hp_status s = HP_OK;
    if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
        s = pg_fail(db, res, "script");
    PQclear(res);
    return s;
}

static int pg_ping(hp_db *db)
{
    return pg_exec(db, "SELECT 1", NULL, 0, NULL, NULL) == HP_OK;
}

static void pg_close(hp_db *db)
{
    PQfinish(db->handle);
    db->handle = NULL;
}

static const hp_db_ops PG_OPS = {pg_exec, pg_script, pg_ping, pg_close};

hp_status hp_db_pg_open(const char *conninfo, hp_db *db)
{
    db->kind = HP_DB_POSTGRES;
    db->ops = &PG_OPS;
    PGconn *c = PQconnectdb(conninfo);
    db->handle = c;
    if (!c)
        return hp_error_set(&db->error, HP_ERR_NOMEM, "out of memory");
    if (PQstatus(c) != CONNECTION_OK) {
        /* libpq's message names host and port, never the password. */
        pg_fail(db, NULL, "connection");
        return HP_ERR_IO;
    }
    PQsetNoticeProcessor(c, quiet_notice, NULL);
    if (!session_setup(c)) {
        pg_fail(db, NULL, "session setup");
        return HP_ERR_IO;
    }
    return HP_OK;
}
