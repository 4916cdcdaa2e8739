/* Sign-off and checking of a report folder (see report/report_dir.h for its layout).
 *
 * Signing takes the latest revision (the preliminary draft, or the last signed one when
 * amending), applies the signer's amendments, records who, when and what changed, sets the
 * status (final, or amended for later revisions), canonicalizes the new report.json (RFC 8785),
 * hashes the canonical bytes with SHA-256 and signs the 32-byte hash with the pathologist's
 * Ed25519 key. The revision is written to DIR/revisions/N/ beside the earlier ones, which are
 * never touched. A signed report cannot be signed again, only amended. */
#ifndef HP_REPORT_SIGN_H
#define HP_REPORT_SIGN_H

#include <stdio.h>

#include "common/status.h"

typedef struct {
    const char *dir;
    const char *pathologist_id; /* the signer's id (printed on the report; not a patient identifier) */
    const char *key_path;       /* Ed25519 private key, PEM */
    const char *amend_path;     /* amendment file, or NULL */
} hp_report_sign_opts;

/* Signs the report in opts->dir. *revision (may be NULL) receives the new revision number. */
hp_status hp_report_sign(const hp_report_sign_opts *opts, int *revision, hp_error *err);

/* Checks the report in `dir`: the audit log's chain, the draft's images, and for every signed
 * revision that report.json is canonical, matches the signed hash, that the signature verifies
 * (and, when public keys are given, that its key is one of them: each revision may have its own
 * signer), that the chain of
 * revisions is unbroken and that every image matches its recorded hash. Writes one line per
 * check to `out` and names each mismatch. Returns HP_OK only when everything holds. */
hp_status hp_report_verify(const char *dir, const char *const *pubkey_paths, int n_pubkeys, FILE *out, hp_error *err);

#endif
