/* The durable job store of the lab batch service: tokens, batches, jobs, idempotency keys, the
 * callback outbox and its delivery attempts, uploads, cases, and the hash-chained audit log, in
 * SQLite or PostgreSQL (server/db.h) with one schema (server/migrations.c).
 *
 * Job states: queued -> running -> succeeded | failed | cancelled, and running -> queued only when
 * a lease expires (or a stopping process hands its job back). A worker claims a queued job by
 * taking a lease (lease_until) and a fencing token (fence, incremented by every claim); it renews
 * the lease by heartbeat, and writes a terminal state only with a fenced UPDATE (WHERE fence = its
 * token AND state = 'running'), so a worker that lost its lease (paused, cut off) cannot
 * overwrite the run that rescued the job. Every state change appends to the audit chain, and a
 * job's or batch's end writes its callback into the outbox, in the same transaction, so a crash
 * between commit and delivery still delivers.
 *
 * Every function takes a connection used by one thread (server/db_pool.h) and runs its own
 * transaction unless it says otherwise. Times are milliseconds since the epoch. Nothing here
 * stores or logs a slide's file name except the jobs.slide_path column itself. */
#ifndef HP_SERVER_STORE_H
#define HP_SERVER_STORE_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "common/status.h"
#include "server/db.h"

/* Milliseconds since the epoch (CLOCK_REALTIME). Leases compare these across processes, so the
 * machines of one deployment keep their clocks synchronized (docs/deploy.md). */
int64_t hp_now_ms(void);

/* ---- schema ------------------------------------------------------------------------------- */

/* The newest schema version this build knows. */
int hp_store_schema_version(void);
/* Applies the migrations the store lacks, in order, in one transaction; refuses a store whose
 * schema is newer than this build. `applied` (may be NULL) receives how many ran. */
hp_status hp_store_migrate(hp_db *db, int *applied, hp_error *err);

/* ---- audit -------------------------------------------------------------------------------- */

/* Appends one event to the audit chain: the line is report/audit_log.h's format (seq, time,
 * event, actor, canonical details, prev_sha256), so an export verifies with hp_audit_verify.
 * Must run inside the caller's transaction, as its last statement before COMMIT (it takes the
 * chain's head row lock; holding it while waiting for other row locks could deadlock).
 * `details` may be NULL; it holds ids, counts and states only, never PHI or file names. */
hp_status hp_store_audit(hp_db *db, const char *event, const char *actor, const cJSON *details,
                         hp_error *err);
/* hp_store_audit in a transaction of its own (an event that goes with no other change). */
hp_status hp_store_audit_event(hp_db *db, const char *event, const char *actor, const cJSON *details,
                               hp_error *err);
/* Writes the whole chain to `path` as JSON lines (one event per line). */
hp_status hp_store_audit_export(hp_db *db, const char *path, size_t *n_events, hp_error *err);

/* ---- tokens ------------------------------------------------------------------------------- */

typedef enum { HP_ROLE_NONE = 0, HP_ROLE_SUBMITTER, HP_ROLE_PATHOLOGIST, HP_ROLE_ADMIN } hp_role;

const char *hp_role_name(hp_role r);
hp_role hp_role_parse(const char *s); /* HP_ROLE_NONE when unknown */

typedef struct {
    char id[40];
    char name[128];
    hp_role role;
    char webhook_secret[64]; /* "whsec_" + base64 of 32 bytes (Standard Webhooks) */
} hp_token_info;

#define HP_TOKEN_TEXT_MAX 64

/* Creates a token; `token_text` receives the bearer token (shown once, stored only as its
 * SHA-256) and `info` its id and webhook secret. `name` is 1..100 printable characters. */
hp_status hp_store_token_create(hp_db *db, hp_role role, const char *name, const char *actor,
                                char token_text[HP_TOKEN_TEXT_MAX], hp_token_info *info,
                                hp_error *err);
/* Looks a bearer token up: 1 found and valid (info filled), 0 unknown or revoked, -1 on a store
 * error (err set). */
int hp_store_token_find(hp_db *db, const char *token_text, hp_token_info *info, hp_error *err);
/* The tokens as a JSON array of {id, name, role, created, revoked} (no secrets). */
hp_status hp_store_token_list(hp_db *db, cJSON **out, hp_error *err);
/* The webhook secret of token `id` (revoked or not: its batches' callbacks still go out).
 * 1 found, 0 not, -1 error. */
int hp_store_token_secret(hp_db *db, const char *token_id, char secret[64], hp_error *err);
/* Revokes token `id`: 1 revoked now, 0 unknown or already revoked, -1 error. */
int hp_store_token_revoke(hp_db *db, const char *id, const char *actor, hp_error *err);

/* ---- idempotency keys --------------------------------------------------------------------- */

/* How long a key is remembered after its request (docs/api.md promises 24 hours). */
#define HP_IDEMPOTENCY_KEEP_MS (24LL * 3600 * 1000)
/* A request still "in progress" after this long was lost with its process: the key is free. */
#define HP_IDEMPOTENCY_PENDING_MS (60LL * 1000)

typedef enum {
    HP_IDEM_NEW = 0,   /* the key is now ours (pending): handle the request */
    HP_IDEM_PENDING,   /* another request with this key is being handled: 409 */
    HP_IDEM_REPLAY,    /* done before with the same body: send the stored answer */
    HP_IDEM_MISMATCH,  /* used before with another body: 422 */
} hp_idem_outcome;

hp_status hp_store_idem_begin(hp_db *db, const char *token_id, const char *key,
                              const char body_sha256[65], hp_idem_outcome *outcome, int *status,
                              char **response, hp_error *err);
/* Frees a pending key after a request that was refused (so a corrected request may reuse it). */
void hp_store_idem_abandon(hp_db *db, const char *token_id, const char *key);
/* Deletes keys past their time. */
hp_status hp_store_idem_expire(hp_db *db, int64_t now, hp_error *err);

/* ---- batches and jobs --------------------------------------------------------------------- */

typedef struct {
    const char *source;     /* "path" or "upload" */
    const char *slide_path; /* the path given, or the upload's sha256 */
    const char *slide_id;   /* NULL: from the slide's hash */
    const char *accession;  /* NULL when not given */
    double mpp;             /* 0 when not given */
} hp_job_spec;

typedef struct {
    const char *batch_id;
    const char *token_id;
    const char *model;   /* "name@version" */
    const char *options; /* JSON object text */
    const char *callback_url; /* NULL: none */
    int max_attempts;
    const hp_job_spec *jobs;
    char (*job_ids)[40]; /* one per job, made by the caller */
    int n_jobs;
    /* The idempotency key this creation completes, and the answer to store under it. */
    const char *idem_key;
    int response_status;
    const char *response;
} hp_batch_spec;

/* Creates the batch and its queued jobs, completes the idempotency key and appends the audit
 * event, all in one transaction. */
hp_status hp_store_batch_create(hp_db *db, const hp_batch_spec *b, int64_t now, hp_error *err);

typedef struct {
    char *id, *batch_id, *token_id, *state, *source, *slide_path, *slide_id, *accession;
    char *lease_owner, *error, *result_dir, *result_slide_id;
    double mpp;
    int idx, attempts, max_attempts, cancel_requested, error_permanent;
    int64_t fence, lease_until, not_before, created_ms, started_ms, run_started_ms, finished_ms;
    int64_t tiles_done, tiles_total;
} hp_job_row;

typedef struct {
    char *id, *token_id, *model, *options, *callback_url;
    int n_jobs;
    int64_t created_ms, done_ms;
} hp_batch_row;

void hp_job_row_free(hp_job_row *j);
void hp_batch_row_free(hp_batch_row *b);

/* 1 found, 0 not found, -1 error. */
int hp_store_job_get(hp_db *db, const char *id, hp_job_row *out, hp_error *err);
int hp_store_batch_get(hp_db *db, const char *id, hp_batch_row *out, hp_error *err);
/* The batch's jobs in submission order; *jobs is freed with hp_store_jobs_free. */
hp_status hp_store_batch_jobs(hp_db *db, const char *batch_id, hp_job_row **jobs, int *n,
                              hp_error *err);
void hp_store_jobs_free(hp_job_row *jobs, int n);

typedef struct {
    const char *token_id;  /* NULL: every token's jobs */
    const char *state;     /* NULL: any */
    const char *accession; /* NULL: any */
    const char *after_id;  /* cursor: jobs after this one in (created_ms, id) order */
    int64_t after_created;
    int limit;
} hp_job_query;

hp_status hp_store_jobs_list(hp_db *db, const hp_job_query *q, hp_job_row **jobs, int *n,
                             hp_error *err);

/* Cancels: a queued job becomes cancelled at once; a running one is marked cancel_requested
 * and ends cancelled when its run stops. *result: "cancelled", "requested", or the terminal
 * state it already had. */
hp_status hp_store_job_cancel(hp_db *db, const char *id, const char *actor, int64_t now,
                              const char **result, hp_error *err);
/* Cancels every job of the batch that has not started (running ones are marked); *n_cancelled
 * counts the jobs cancelled now. */
hp_status hp_store_batch_cancel(hp_db *db, const char *id, const char *actor, int64_t now,
                                int *n_cancelled, hp_error *err);

/* ---- leases (workers) --------------------------------------------------------------------- */

typedef struct {
    int64_t lease_ms;      /* a claim or heartbeat holds the job this long */
    int64_t retry_base_ms; /* backoff before attempt k+1: base * 4^(k-1), at most an hour */
} hp_lease_config;

/* Claims the oldest due queued job for `worker_id`: state running, attempts + 1, fence + 1,
 * lease until now + lease_ms. 1 claimed (*job filled), 0 none due, -1 error. */
int hp_store_job_claim(hp_db *db, const char *worker_id, const hp_lease_config *lc, int64_t now,
                       hp_job_row *job, hp_error *err);
/* Renews the lease and records progress, only while the fence still matches: 1 held, 0 lost. */
int hp_store_job_heartbeat(hp_db *db, const char *id, int64_t fence, int64_t lease_until,
                           int64_t tiles_done, int64_t tiles_total, hp_error *err);

typedef enum { HP_END_SUCCEEDED = 0, HP_END_FAILED, HP_END_RETRY, HP_END_RELEASE } hp_job_end;

/* Ends the run fenced by (id, fence): succeeded (result_dir, result_slide_id), failed (message,
 * permanent), retry (a transient failure: queued again after a backoff unless the attempts are
 * used up, then failed), or release (a stopping worker hands the job back: queued, the attempt
 * not counted). A job whose cancel was requested ends cancelled instead of succeeded or retried.
 * Terminal ends write the job's (and, when it was the batch's last, the batch's) callback into
 * the outbox in the same transaction. 1 written, 0 the fence no longer matches (the lease was
 * lost: nothing written), -1 error. *final_state receives the state written. */
int hp_store_job_end(hp_db *db, const char *id, int64_t fence, hp_job_end how,
                     const char *result_dir, const char *result_slide_id, const char *message,
                     int permanent, const hp_lease_config *lc, int64_t now,
                     const char **final_state, hp_error *err);

/* Requeues running jobs whose lease expired before `now` (failing those out of attempts), and
 * with `owner_prefix` also the running jobs of a previous run of this process (SQLite: one
 * server per data folder, so any job still running at start was orphaned). Returns how many
 * were requeued or failed, -1 on error. */
int hp_store_requeue_expired(hp_db *db, const hp_lease_config *lc, int64_t now,
                             int orphan_all, hp_error *err);

/* ---- workers (seen by metrics and health) -------------------------------------------------- */

hp_status hp_store_worker_seen(hp_db *db, const char *id, const char *host, int pid,
                               int64_t started_ms, int64_t now, int stopped, hp_error *err);

/* ---- outbox and deliveries ---------------------------------------------------------------- */

typedef struct {
    char *id, *url, *payload, *token_id;
    int attempts;
    int64_t created_ms;
} hp_outbox_row;

void hp_outbox_row_free(hp_outbox_row *o);

/* Claims the oldest due undelivered callback for `lease_ms` (so two senders never send the
 * same attempt at once): 1 claimed, 0 none due, -1 error. attempts counts this attempt. */
int hp_store_outbox_claim(hp_db *db, int64_t now, int64_t lease_ms, hp_outbox_row *o,
                          hp_error *err);
/* Records attempt `o->attempts`: HTTP status (0 when none came back) and error text; delivered
 * on 2xx, else retried at now + `retry_in_ms`, or given up when retry_in_ms < 0. */
hp_status hp_store_outbox_record(hp_db *db, const hp_outbox_row *o, int64_t now, int status,
                                 const char *error, int64_t duration_ms, int64_t retry_in_ms,
                                 hp_error *err);
/* The batch's callbacks with every attempt, as a JSON array (server/represent.c's shape). */
hp_status hp_store_deliveries(hp_db *db, const char *batch_id, cJSON **out, hp_error *err);

/* ---- uploads and cases -------------------------------------------------------------------- */

hp_status hp_store_upload_record(hp_db *db, const char *sha256, const char *token_id,
                                 int64_t size, hp_error *err);
/* 1 when `token_id` uploaded `sha256`, 0 not, -1 error. */
int hp_store_upload_owned(hp_db *db, const char *sha256, const char *token_id, hp_error *err);

/* The case's opaque folder id (made on first use), so no path under the data folder carries
 * the accession number. */
hp_status hp_store_case_id(hp_db *db, const char *accession, int create, char id[40],
                           int *found, hp_error *err);
/* Result folders of the case's succeeded jobs (relative to the data folder), newest first. */
hp_status hp_store_case_results(hp_db *db, const char *accession, char ***dirs, char ***slide_ids,
                                int *n, hp_error *err);
hp_status hp_store_case_built(hp_db *db, const char *accession, const char *actor, int n_slides,
                              int64_t now, hp_error *err);

/* ---- pathologists' review (server/store_review.c) ----------------------------------------- */

/* A pathologist's decision on one thing of a job: the suggested category ("category"), a model
 * region ("R3") or a drawn annotation (its id). One row per (job, target, author); an author
 * changes only their own. decision is "accept", "reject" or NULL (a comment alone). */
typedef struct {
    const char *job_id, *target, *author_id, *author_name;
    const char *decision; /* NULL: none */
    const char *comment;  /* NULL: none */
} hp_review_decision;

/* Sets (or, with neither decision nor comment, withdraws) the author's decision and audits it
 * ("review.decision": job, target, decision, whether there is a comment; never its text). */
hp_status hp_store_review_set(hp_db *db, const hp_review_decision *d, int64_t now, hp_error *err);

/* A region drawn by a pathologist: GeoJSON geometry text (a Polygon, level-0 pixels). */
typedef struct {
    const char *job_id, *author_id, *author_name, *cls, *comment, *geometry;
} hp_review_annotation;

/* Stores a drawn region under a new id ("a_..." into id) and audits it. */
hp_status hp_store_annotation_add(hp_db *db, const hp_review_annotation *a, int64_t now,
                                  char id[40], hp_error *err);
/* Deletes drawn region `id` of `job_id` when `author_id` drew it: 1 deleted, 0 no such region,
 * 2 someone else's (nothing deleted), -1 error. Audited. */
int hp_store_annotation_delete(hp_db *db, const char *job_id, const char *id,
                               const char *author_id, int64_t now, hp_error *err);
/* 1 when the job has a live drawn region `id`, 0 not, -1 error. */
int hp_store_annotation_exists(hp_db *db, const char *job_id, const char *id, hp_error *err);

/* The job's review: {"decisions": [{target, decision, comment, author: {id, name}, updated}],
 * "annotations": [{id, class, comment, geometry, author, created}]} in time order. */
hp_status hp_store_review_get(hp_db *db, const char *job_id, cJSON **out, hp_error *err);

/* ---- metrics ------------------------------------------------------------------------------ */

typedef struct {
    int64_t by_state[5]; /* queued, running, succeeded, failed, cancelled */
    double oldest_queued_s;
    int64_t tiles_done_recent; /* tiles of jobs finished in the last minute */
    int64_t outbox_pending;
    int64_t workers_alive;
} hp_store_stats;

hp_status hp_store_stats_get(hp_db *db, int64_t now, hp_store_stats *s, hp_error *err);

#endif
