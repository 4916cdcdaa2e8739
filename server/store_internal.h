/* Shared between the store's files (server/store_*.c); not part of the store's API. */
#ifndef HP_SERVER_STORE_INTERNAL_H
#define HP_SERVER_STORE_INTERNAL_H

#include "server/store.h"

#define HP_JOB_COLS                                                                            \
    "id, batch_id, token_id, state, source, slide_path, slide_id, accession, lease_owner, "     \
    "error, result_dir, result_slide_id, mpp, idx, attempts, max_attempts, cancel_requested, "  \
    "error_permanent, fence, lease_until, not_before, created_ms, started_ms, run_started_ms, " \
    "finished_ms, tiles_done, tiles_total"

/* Fills *j from row `i` of a SELECT HP_JOB_COLS. */
hp_status hp_job_row_from(const hp_db_rows *r, int i, hp_job_row *j);

/* Queues a callback for the batch's callback URL (nothing when it has none): `event` is
 * "job.succeeded", "job.failed", "job.cancelled" or "batch.completed"; `data` is the payload's
 * data object (not consumed). Inside the caller's transaction. */
hp_status hp_store_outbox_add(hp_db *db, const char *batch_id, const char *job_id,
                              const char *event, const cJSON *data, int64_t now, hp_error *err);

/* After job `job_id` of `batch_id` became terminal (`state`) inside the caller's transaction,
 * which holds the batch's row lock: queues the job's callback, and when no job of the batch is
 * left queued or running, marks the batch done, queues its callback and audits it. */
hp_status hp_store_after_terminal(hp_db *db, const char *batch_id, const char *job_id,
                                  const char *state, const char *error, int64_t now,
                                  hp_error *err);

/* Locks the batch row (PostgreSQL; SQLite's transaction already holds the write lock). Every
 * transaction that may end jobs takes the batch lock before any job row, so two of them never
 * wait on each other in opposite orders. 1 found, 0 not, -1 error. */
int hp_store_lock_batch(hp_db *db, const char *batch_id, hp_error *err);

#endif
