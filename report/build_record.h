/* The draft's build record, DIR/build.json: the SHA-256 of every file `histoplan report build`
 * wrote (report.json, report.html, report.fhir.json, each file in images/), so a draft changed
 * after it was built (edited by hand or by another program) is found before anyone signs it.
 * The record's own SHA-256 goes into the build event of DIR/audit.jsonl
 * (details.build_record_sha256). Schema: schemas/build-record.schema.json.
 *
 *   {"built_at": "2026-12-05T10:00:00Z", "files": {"images/overlay-3f2a9c01b7de.png": HEX, ...,
 *    "report.fhir.json": HEX, "report.html": HEX, "report.json": HEX},
 *    "format": "histoplan-build-record/1", "report_id": "..."}
 *
 * It is written in RFC 8785 canonical form with a final newline. It does not stop someone who
 * rewrites the audit log as well (the log has no key): only a signature does that. */
#ifndef HP_BUILD_RECORD_H
#define HP_BUILD_RECORD_H

#include <cjson/cJSON.h>

#include "common/status.h"
#include "report/check_list.h"

#define HP_BUILD_RECORD_FORMAT "histoplan-build-record/1"

/* Adds files[rel] = hex SHA-256 of the file dir/rel. */
hp_status hp_report_digest_file(const char *dir, const char *rel, cJSON *files, hp_error *err);

/* Adds files["images/NAME"] for every entry of dir/images/ (none when the folder is absent);
 * an entry that is not a regular file is refused, naming it. */
hp_status hp_report_digest_images(const char *dir, cJSON *files, hp_error *err);

/* Writes dir/build.json for the draft report `report` just written in `dir`; sha_hex receives
 * the SHA-256 of the bytes written. */
hp_status hp_build_record_write(const char *dir, const cJSON *report, const char *built_at, char sha_hex[65],
                                hp_error *err);

/* Checks the draft in `dir` against dir/build.json, and build.json against `recorded_sha` (from
 * the audit log; NULL when the log records none): one FAIL line per file that is missing,
 * changed or not part of the report, naming it. Returns the number of failures. */
int hp_build_record_check(const char *dir, const char *recorded_sha, hp_check_list *c);

#endif
