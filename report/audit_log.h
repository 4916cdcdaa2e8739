/* Append-only audit log (conventionally DIR/audit.jsonl): one JSON object per line,
 *
 *   {"seq":1,"time":"2026-11-27T09:23:10Z","event":"report.sign","actor":"jdoe",
 *    "details":{...},"prev_sha256":"000...0"}
 *
 * seq counts from 1; time is UTC; actor is null when unknown; details is the caller's object in
 * RFC 8785 canonical form; prev_sha256 is the lower-case hex SHA-256 of the previous line's
 * bytes (without its newline), 64 zeros on the first line. The hash chain makes an edited,
 * inserted, reordered or deleted line detectable, and a line must be byte for byte what the
 * writer makes of its members (this order, no spaces, canonical strings), so even the last line
 * cannot be reformatted. Deleting lines from the end only a count or a hash kept elsewhere can
 * reveal: a signed report's revisions record the log's head (report/report_verify.h).
 *
 * PRIVACY: the log is kept beside results and must never receive patient identifiers. `event`,
 * `actor` and `details` are written as given, so callers put only opaque ids (slide ids, job ids),
 * hashes, counts and fixed event names there: no patient names, medical record numbers,
 * accession numbers, dates of birth or file names that carry them.
 *
 * Concurrency: appends from several processes or threads are serialized by an exclusive flock on
 * the log, and each line is written with a single write() and fsync'd. */
#ifndef HP_AUDIT_LOG_H
#define HP_AUDIT_LOG_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/status.h"

/* Appends one event to the log at `path`, creating it (mode 0644) when absent. `event` is a
 * non-empty name ("report.sign"); `actor` may be NULL; `details` must be a JSON object or NULL
 * (written as {}), and must be canonicalizable (no NaN, no duplicate names, valid UTF-8).
 * Before appending, the whole existing log is checked as hp_audit_verify does; a log that fails
 * is never extended (the bad line is named), so tampering is not buried under new entries. */
hp_status hp_audit_append(const char *path, const char *event, const char *actor,
                          const cJSON *details, hp_error *err);

/* As hp_audit_append, with the event's time given (`stamp`, "YYYY-MM-DDThh:mm:ssZ"; NULL: now),
 * so a signature and its audit line can name the same moment. */
hp_status hp_audit_append_at(const char *path, const char *stamp, const char *event, const char *actor,
                             const cJSON *details, hp_error *err);

/* Checks the log at `path`: every line is a complete, newline-terminated JSON object with the
 * fields above, seq runs 1..n, and every prev_sha256 matches the line before. On success
 * `*n_events` (may be NULL) is n; on failure `err` names the first bad line (1-based). A missing
 * file is HP_ERR_IO; an empty file is a valid log of 0 events. */
hp_status hp_audit_verify(const char *path, size_t *n_events, hp_error *err);

/* A checked log: its lines parsed, and the SHA-256 of each line's bytes. */
typedef struct {
    size_t n;                 /* lines */
    cJSON *events;            /* array of the n parsed lines, in order */
    char (*line_sha256)[65];  /* line_sha256[k - 1]: hex SHA-256 of line k (without its newline) */
} hp_audit_log;

/* Checks the log as hp_audit_verify does and hands over its lines (free with
 * hp_audit_log_free). On failure *log is empty and err names the first bad line. */
hp_status hp_audit_read(const char *path, hp_audit_log *log, hp_error *err);

/* Frees what hp_audit_read gave; accepts NULL and an empty log. */
void hp_audit_log_free(hp_audit_log *log);

/* The hash a line k + 1 would carry as prev_sha256: 64 zeros for k = 0, the hash of line k for
 * 1 <= k <= n; NULL beyond the end. */
const char *hp_audit_line_sha256(const hp_audit_log *log, size_t k);

#endif
