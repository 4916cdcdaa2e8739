/* OUT/batch-summary.json: what became of every slide that `histoplan analyze` runs gave into the
 * output folder OUT (schema schemas/batch-summary.schema.json).
 *
 * One entry per input, keyed by the SHA-256 of the input's absolute path (never the path: file
 * and folder names often carry patient names or accession numbers), with the slide id, the
 * output folder, a status (done, skipped, failed, interrupted, not-started), for failures an
 * error category (hp_analyze_failure_name: unreadable, unsupported, no-mpp, no-tissue, model,
 * io, interrupted), a message scrubbed of the path, the duration and the time it was recorded.
 *
 * Several processes (or cluster jobs) may write into one OUT: each merges its entries into the
 * file under OUT/batch-summary.lock (common/file_lock.h), so no process overwrites another's
 * entries. An entry replaces the entry of the same input, except that a "not-started" entry never
 * replaces anything, and a "skipped" entry (the result was already there) does not replace the
 * "done" entry of the run that made that result.
 *
 * Thread safety: entries are plain data; merging takes a lock between processes, not threads. */
#ifndef HP_BATCH_SUMMARY_H
#define HP_BATCH_SUMMARY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/status.h"
#include "common/utc_time.h"
#include "pipeline/analyze.h"

#define HP_BATCH_SUMMARY_FILE "batch-summary.json"
#define HP_BATCH_SUMMARY_VERSION 2

typedef enum {
    HP_BATCH_DONE = 0,     /* analyzed by this run */
    HP_BATCH_SKIPPED,      /* a completed result of the same slide, model and options was kept */
    HP_BATCH_FAILED,
    HP_BATCH_INTERRUPTED,  /* a signal stopped the run while it worked on this slide */
    HP_BATCH_NOT_STARTED,  /* the run stopped before it reached this slide */
} hp_batch_status;

typedef struct {
    char input_sha256[65];
    char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1]; /* "" until known */
    hp_batch_status status;
    hp_analyze_failure error; /* HP_ANALYZE_FAIL_NONE unless failed or interrupted */
    char message[HP_ERROR_MSG_MAX];
    double duration_s;
    char finished_at[HP_UTC_TIME_LEN];
    char *warning; /* the resolution warning of a done slide, or NULL; owned */
    char shard[24]; /* "I/N" when a sharded manifest run (analyze --shard) recorded it, else "" */
} hp_batch_entry;

/* "done", "skipped", "failed", "interrupted", "not-started". */
const char *hp_batch_status_name(hp_batch_status s);

/* Starts an entry for the input `path`: its hash (of the absolute path, symbolic links
 * resolved when the file exists), status not-started. */
void hp_batch_entry_init(hp_batch_entry *e, const char *path);

/* Frees what the entry owns (its warning); accepts NULL. */
void hp_batch_entry_free(hp_batch_entry *e);

/* Sets the message, replacing every occurrence of `path`, of its last component and of a
 * message's tail that starts either (a message cut short inside a long path) by "<slide>". */
void hp_batch_entry_set_message(hp_batch_entry *e, const char *msg, const char *path);

/* The entry as a JSON object (the form of batch-summary.json's results and of analyze --json's
 * events). NULL when out of memory. */
cJSON *hp_batch_entry_json(const hp_batch_entry *e);

/* Merges `n` entries into OUT/batch-summary.json under its lock (waiting for another process's
 * merge to end), creating the file when absent; a file that is not a summary of this version is
 * replaced. Counts per status are recomputed over all entries. *totals (may be NULL; 5 ints,
 * indexed by hp_batch_status) receives them. */
hp_status hp_batch_summary_merge(const char *out_dir, const hp_batch_entry *e, int n, int *totals, hp_error *err);

/* The results array of OUT/batch-summary.json (an empty array when the file is absent), for the
 * caller to free. NULL with a message naming the file when it cannot be read or is not a summary
 * of this version (a merge must not take a damaged summary for an empty one). The file is
 * replaced atomically, so reading it while runs merge needs no lock. */
cJSON *hp_batch_summary_load(const char *out_dir, hp_error *err);

#endif
