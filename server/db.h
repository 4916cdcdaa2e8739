/* One SQL connection to the job store: SQLite (a file in the data folder; one machine) or
 * PostgreSQL (libpq; many machines). The store (server/store.h) writes its SQL once for both:
 * parameters are $1, $2, ... (rewritten to ?1, ?2 for SQLite), values travel as text, integers
 * or doubles, and results come back as text (NULL for SQL NULL), as libpq gives them.
 *
 * The few places where the dialects differ are asked of the connection: hp_db_lock_clause
 * (row locks, PostgreSQL only; SQLite serializes writers with BEGIN IMMEDIATE instead).
 *
 * Thread safety: a connection is used by one thread at a time (server/db_pool.h hands them out).
 * Errors are recorded on the connection (hp_db_error) and in `err`. */
#ifndef HP_SERVER_DB_H
#define HP_SERVER_DB_H

#include <stdint.h>

#include "common/status.h"

typedef struct hp_db hp_db;

typedef enum { HP_DB_SQLITE = 0, HP_DB_POSTGRES } hp_db_kind;

typedef enum { HP_DBV_NULL = 0, HP_DBV_TEXT, HP_DBV_INT, HP_DBV_DOUBLE } hp_db_value_kind;

typedef struct {
    hp_db_value_kind kind;
    const char *s; /* HP_DBV_TEXT; NULL binds SQL NULL */
    int64_t i;
    double d;
} hp_db_value;

#define HP_DB_TEXT(x) ((hp_db_value){.kind = HP_DBV_TEXT, .s = (x)})
#define HP_DB_INT(x) ((hp_db_value){.kind = HP_DBV_INT, .i = (int64_t)(x)})
#define HP_DB_DOUBLE(x) ((hp_db_value){.kind = HP_DBV_DOUBLE, .d = (x)})
#define HP_DB_NULL ((hp_db_value){.kind = HP_DBV_NULL})

/* Result rows: cells[row * ncols + col], NULL for SQL NULL. Owned by the caller
 * (hp_db_rows_free). */
typedef struct {
    int nrows, ncols;
    char **cells;
} hp_db_rows;

/* Opens `target`: a "postgresql://" or "postgres://" URI (any libpq connection string that
 * starts so; Unix sockets with ?host=/path), else the path of a SQLite file, created when
 * absent, in WAL mode with full synchronous commits and a busy timeout. */
hp_status hp_db_open(const char *target, hp_db **out, hp_error *err);
void hp_db_close(hp_db *db);

hp_db_kind hp_db_kind_of(const hp_db *db);
const char *hp_db_kind_name(const hp_db *db); /* "sqlite" or "postgresql" */
const char *hp_db_error(const hp_db *db);

/* Runs one statement. `rows` (may be NULL) receives the result rows; `changes` (may be NULL)
 * the number of rows inserted, updated or deleted. */
hp_status hp_db_exec(hp_db *db, const char *sql, const hp_db_value *params, int n_params,
                     hp_db_rows **rows, int64_t *changes, hp_error *err);

/* Runs several statements separated by ';' with no parameters (migrations). */
hp_status hp_db_script(hp_db *db, const char *sql, hp_error *err);

/* Transactions. SQLite: BEGIN IMMEDIATE, so a writer takes the lock before reading and two
 * writers never deadlock on an upgrade. PostgreSQL: BEGIN (READ COMMITTED) with row locks. */
hp_status hp_db_begin(hp_db *db, hp_error *err);
hp_status hp_db_commit(hp_db *db, hp_error *err);
void hp_db_rollback(hp_db *db);

/* " FOR UPDATE SKIP LOCKED" (skip != 0) or " FOR UPDATE" on PostgreSQL, "" on SQLite. */
const char *hp_db_lock_clause(const hp_db *db, int skip);

/* Whether the connection still works (a cheap query); PostgreSQL reconnects once when it does
 * not. */
int hp_db_ping(hp_db *db);

const char *hp_db_get(const hp_db_rows *r, int row, int col);
int64_t hp_db_get_i64(const hp_db_rows *r, int row, int col); /* 0 for NULL */
double hp_db_get_double(const hp_db_rows *r, int row, int col);
void hp_db_rows_free(hp_db_rows *r);

/* Backend entry points (server/db_sqlite.c, server/db_pg.c); callers use hp_db_open. */
typedef struct hp_db_ops {
    hp_status (*exec)(hp_db *db, const char *sql, const hp_db_value *params, int n,
                      hp_db_rows **rows, int64_t *changes);
    hp_status (*script)(hp_db *db, const char *sql);
    int (*ping)(hp_db *db);
    void (*close)(hp_db *db);
} hp_db_ops;

struct hp_db {
    hp_db_kind kind;
    const hp_db_ops *ops;
    void *handle;
    hp_error error; /* the last failure on this connection (cleared before each call) */
    int in_tx;      /* between hp_db_begin and commit or rollback */
    int64_t idle_since_ms; /* when the pool last got it back (server/db_pool.c) */
    int write_locked;      /* SQLite: this connection holds the process's write lock */
};

hp_status hp_db_sqlite_open(const char *path, hp_db *db);
hp_status hp_db_pg_open(const char *conninfo, hp_db *db);

#endif
