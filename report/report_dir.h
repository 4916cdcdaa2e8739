/* The report folder: what `histoplan report build` writes and `sign` and `verify` read.
 *
 *   DIR/report.json          revision 0, status preliminary (schemas/report.schema.json)
 *   DIR/report.fhir.json     its FHIR R4 bundle;  DIR/report.html  its printable page
 *   DIR/images/              overlay and region thumbnails (hashed in report.json)
 *   DIR/build.json           the build record: SHA-256 of each file above (report/build_record.h)
 *   DIR/revisions/N/         each signed revision N >= 1: report.json (RFC 8785 canonical bytes,
 *                            exactly what was hashed and signed), signature.json, report.fhir.json,
 *                            report.html; never changed once written (report/report_verify.h)
 *   DIR/audit.jsonl          hash-chained log of build, sign and amend events
 *
 * No file or folder name holds a patient identifier or the accession number. */
#ifndef HP_REPORT_DIR_H
#define HP_REPORT_DIR_H

#include <cjson/cJSON.h>

#include "common/status.h"

typedef struct {
    const char *case_path;
    const char *const *findings; /* findings.json paths, one per slide */
    int n_findings;
    const char *const *slides;   /* slide files (optional, any order): matched to the findings by
                                    SHA-256, for thumbnails of the tissue of each region */
    int n_slides;
    const char *rules_path;      /* NULL: the shipped rule table */
    const char *out_dir;
    int overwrite;               /* replace an unsigned report in out_dir (only a folder histoplan
                                    made: common/output_dir.h) */
    int assign_case;             /* findings without a case accession belong to this case (else
                                    they are refused); recorded in the audit log */
} hp_report_build_opts;

/* Builds the preliminary report into opts->out_dir: everything is made in a temporary folder
 * beside it (OUT.partial-PID, marked as a report folder) and renamed into place, so a failure
 * leaves nothing half-written and an existing report untouched. A folder holding a signed
 * revision is never rebuilt, and a folder histoplan did not make is never replaced. Temporary
 * folders that an interrupted build left beside OUT are removed first when their process has
 * ended (a report it had moved aside is put back when OUT is missing). *report_out (may be
 * NULL) receives the report (caller frees). */
hp_status hp_report_build(const hp_report_build_opts *opts, cJSON **report_out, hp_error *err);

/* The highest signed revision in `dir` (0 when none is signed), or -1 with err set. */
int hp_report_dir_latest_revision(const char *dir, hp_error *err);

/* Renders report.fhir.json and report.html for `report` into `dir` (signature may be NULL);
 * images are read from `images_dir`/images/. */
hp_status hp_report_render(const cJSON *report, const cJSON *signature, const char *dir, const char *images_dir,
                           hp_error *err);

#endif
