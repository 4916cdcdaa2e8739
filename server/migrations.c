/* The job store's schema, as numbered migrations applied in order at start (server/store.h).
 *
 * The SQL is the common subset of SQLite and PostgreSQL: TEXT, INTEGER, BIGINT and DOUBLE
 * PRECISION columns, times as milliseconds since the epoch (BIGINT), no serial columns (ids are
 * random, server/ids.h), JSON kept as TEXT. A released migration is never edited: a change is a
 * new one at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/db.h"
#include "server/store.h"

typedef struct {
    int version;
    const char *what;
    const char *sql;
} migration;

static const migration MIGRATIONS[] = {
    {1, "tokens, batches, jobs, idempotency keys, outbox, deliveries, uploads, cases, audit",
     "CREATE TABLE tokens ("
     " id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL,"
     " token_sha256 TEXT NOT NULL UNIQUE, webhook_secret TEXT NOT NULL,"
     " created_ms BIGINT NOT NULL, revoked_ms BIGINT);"
     "CREATE TABLE batches ("
     " id TEXT PRIMARY KEY, token_id TEXT NOT NULL REFERENCES tokens(id),"
     " created_ms BIGINT NOT NULL, model TEXT NOT NULL, options TEXT NOT NULL,"
     " callback_url TEXT, n_jobs INTEGER NOT NULL, done_ms BIGINT);"
     "CREATE TABLE jobs ("
     " id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id), idx INTEGER NOT NULL,"
     " token_id TEXT NOT NULL, state TEXT NOT NULL, source TEXT NOT NULL, slide_path TEXT NOT NULL,"
     " slide_id TEXT, accession TEXT, mpp DOUBLE PRECISION,"
     " attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
     " fence BIGINT NOT NULL DEFAULT 0, lease_owner TEXT, lease_until BIGINT,"
     " not_before BIGINT NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
     " created_ms BIGINT NOT NULL, started_ms BIGINT, run_started_ms BIGINT, finished_ms BIGINT,"
     " tiles_done BIGINT NOT NULL DEFAULT 0, tiles_total BIGINT NOT NULL DEFAULT 0,"
     " error TEXT, error_permanent INTEGER, result_dir TEXT, result_slide_id TEXT);"
     "CREATE INDEX jobs_claim ON jobs(state, not_before, created_ms);"
     "CREATE INDEX jobs_batch ON jobs(batch_id, idx);"
     "CREATE INDEX jobs_accession ON jobs(accession);"
     "CREATE TABLE idempotency ("
     " token_id TEXT NOT NULL, idem_key TEXT NOT NULL, body_sha256 TEXT NOT NULL,"
     " state TEXT NOT NULL, status INTEGER, response TEXT, created_ms BIGINT NOT NULL,"
     " expires_ms BIGINT NOT NULL, PRIMARY KEY (token_id, idem_key));"
     "CREATE TABLE outbox ("
     " id TEXT PRIMARY KEY, batch_id TEXT NOT NULL, job_id TEXT, token_id TEXT NOT NULL,"
     " event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL, created_ms BIGINT NOT NULL,"
     " next_ms BIGINT NOT NULL, lease_until BIGINT, attempts INTEGER NOT NULL DEFAULT 0,"
     " delivered_ms BIGINT, gave_up_ms BIGINT);"
     "CREATE INDEX outbox_due ON outbox(delivered_ms, gave_up_ms, next_ms);"
     "CREATE INDEX outbox_batch ON outbox(batch_id);"
     "CREATE TABLE deliveries ("
     " outbox_id TEXT NOT NULL, attempt INTEGER NOT NULL, time_ms BIGINT NOT NULL,"
     " status INTEGER, error TEXT, duration_ms BIGINT, PRIMARY KEY (outbox_id, attempt));"
     "CREATE TABLE uploads ("
     " sha256 TEXT NOT NULL, token_id TEXT NOT NULL, size BIGINT NOT NULL,"
     " created_ms BIGINT NOT NULL, PRIMARY KEY (sha256, token_id));"
     "CREATE TABLE cases ("
     " accession TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, created_ms BIGINT NOT NULL,"
     " built_ms BIGINT);"
     "CREATE TABLE audit (seq BIGINT PRIMARY KEY, line TEXT NOT NULL, sha256 TEXT NOT NULL);"
     "CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, sha256 TEXT NOT NULL);"
     "INSERT INTO audit_head VALUES (1, 0, "
     "'0000000000000000000000000000000000000000000000000000000000000000');"
     "CREATE TABLE workers ("
     " id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_ms BIGINT NOT NULL,"
     " seen_ms BIGINT NOT NULL, stopped_ms BIGINT)"},
    {2, "pathologists' review: decisions and drawn regions",
     "CREATE TABLE review_decisions ("
     " job_id TEXT NOT NULL, target TEXT NOT NULL, author_id TEXT NOT NULL,"
     " author_name TEXT NOT NULL, decision TEXT, comment TEXT, updated_ms BIGINT NOT NULL,"
     " PRIMARY KEY (job_id, target, author_id));"
     "CREATE TABLE review_annotations ("
     " id TEXT PRIMARY KEY, job_id TEXT NOT NULL, author_id TEXT NOT NULL,"
     " author_name TEXT NOT NULL, class TEXT NOT NULL, comment TEXT, geometry TEXT NOT NULL,"
     " created_ms BIGINT NOT NULL, deleted_ms BIGINT);"
     "CREATE INDEX review_annotations_job ON review_annotations(job_id)"},
};

#define N_MIGRATIONS ((int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]))

int hp_store_schema_version(void) { return MIGRATIONS[N_MIGRATIONS - 1].version; }

hp_status hp_store_migrate(hp_db *db, int *applied, hp_error *err)
{
    hp_db_rows *r = NULL;
    hp_status st;
    if (applied)
        *applied = 0;
    if ((st = hp_db_begin(db, err)) != HP_OK)
        return st;
    /* Several processes may start at once against one PostgreSQL: the first migrates, the others
     * wait here and then find nothing left to do. (SQLite's BEGIN IMMEDIATE already serializes.) */
    if (hp_db_kind_of(db) == HP_DB_POSTGRES &&
        (st = hp_db_exec(db, "SELECT pg_advisory_xact_lock(480800001)", NULL, 0, NULL, NULL, err))
            != HP_OK)
        goto fail;
    if ((st = hp_db_exec(db, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER "
                             "PRIMARY KEY, what TEXT NOT NULL, applied_ms BIGINT NOT NULL)",
                         NULL, 0, NULL, NULL, err)) != HP_OK)
        goto fail;
    if ((st = hp_db_exec(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0,
                         &r, NULL, err)) != HP_OK)
        goto fail;
    int have = (int)hp_db_get_i64(r, 0, 0);
    hp_db_rows_free(r);
    r = NULL;
    if (have > hp_store_schema_version()) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                          "the job store's schema is version %d, newer than this histoplan "
                          "knows (%d): run a histoplan at least as new as the one that "
                          "migrated it", have, hp_store_schema_version());
        goto fail;
    }
    for (int i = 0; i < N_MIGRATIONS; i++) {
        const migration *m = &MIGRATIONS[i];
        if (m->version <= have)
            continue;
        if ((st = hp_db_script(db, m->sql, err)) != HP_OK) {
            hp_error_set(err, st, "migration %d (%s) failed", m->version, m->what);
            goto fail;
        }
        hp_db_value p[3] = {HP_DB_INT(m->version), HP_DB_TEXT(m->what),
                            HP_DB_INT((int64_t)time(NULL) * 1000)};
        if ((st = hp_db_exec(db, "INSERT INTO schema_migrations VALUES ($1, $2, $3)", p, 3, NULL,
                             NULL, err)) != HP_OK)
            goto fail;
        if (applied)
            (*applied)++;
    }
    return hp_db_commit(db, err);
fail:
    hp_db_rows_free(r);
    hp_db_rollback(db);
    return st;
}
