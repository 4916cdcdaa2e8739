/* Sign-off of a report folder (see report/report_dir.h for its layout and report/report_verify.h
 * for what a signed revision holds).
 *
 * Signing takes the latest revision (the preliminary draft, or the last signed one when
 * amending), applies the signer's amendments, records who, when and what changed, sets the
 * status (final, or amended for later revisions), canonicalizes the new report.json (RFC 8785)
 * and signs its SHA-256 with the pathologist's Ed25519 key; then renders its HTML and FHIR and
 * signs a manifest of every file's SHA-256 and the audit log's head with the same key. The
 * revision is written to DIR/revisions/N/ beside the earlier ones, which are never touched, and
 * its sign or amend event appended to DIR/audit.jsonl. A signed report cannot be signed again,
 * only amended.
 *
 * Refused, with nothing written: a private key file that group or others can read or write; a
 * key that the signer registry (when there is one) does not bind to this pathologist id or has
 * revoked; a folder that fails `report verify` (a draft changed after report build, a deleted or
 * changed revision, a damaged or shortened audit log); a draft whose report.html or
 * report.fhir.json is not what report.json renders to. */
#ifndef HP_REPORT_SIGN_H
#define HP_REPORT_SIGN_H

#include "common/status.h"

typedef struct {
    const char *dir;
    const char *pathologist_id; /* the signer's id (printed on the report; not a patient identifier) */
    const char *key_path;       /* Ed25519 private key, PEM, mode 0600 or stricter */
    const char *key_passphrase; /* unlocks an encrypted key (the viewer's server-held keys); NULL:
                                   the key is not encrypted */
    const char *amend_path;     /* amendment file, or NULL */
    const char *rules_path;     /* rule table for a category change (NULL: the default one); it must
                                   be the one the report was built with */
    const char *registry_path;  /* signer registry; NULL: the default one, when that file exists */
} hp_report_sign_opts;

/* Signs the report in opts->dir. *revision (may be NULL) receives the new revision number. */
hp_status hp_report_sign(const hp_report_sign_opts *opts, int *revision, hp_error *err);

#endif
