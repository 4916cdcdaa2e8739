/* Checking a report folder (`histoplan report verify`): every byte that was built or signed is
 * accounted for.
 *
 * A signed revision N is DIR/revisions/N/ with exactly report.json (RFC 8785 canonical bytes),
 * report.html, report.fhir.json and signature.json (canonical bytes too), schema
 * schemas/signature.schema.json. signature.json holds two Ed25519 signatures by one key:
 *   - "signature": over the SHA-256 of report.json ("report_sha256"); the FHIR bundle's
 *     Provenance carries it;
 *   - "manifest_signature": over the SHA-256 ("manifest_sha256") of the canonical "manifest",
 *     which names the revision, report id, pathologist id, key fingerprint, signing time, the
 *     report signature, the SHA-256 of every file of the revision and of every file in
 *     DIR/images/, the revision it supersedes (number and report SHA-256) and the audit log's
 *     head when it was signed (line count and the last line's SHA-256).
 * The sign (revision 1) or amend (later) event of DIR/audit.jsonl follows, timed at the signing
 * time and naming the revision, both hashes and the key.
 *
 * Verify checks: the audit log's chain and form; the draft against its build record
 * (report/build_record.h); for every revision 1..N present on disk or named by an audit event:
 * that it exists and holds nothing else, both signatures, every file digest, the report's own
 * fields (status, revision, sign_off) against the manifest, the chain of revisions, the audit log
 * head it covers and its own audit event; and who signed: each revision's pathologist id and key
 * against the keys given (ID=PUB.pem) and the signer registry (report/signer_registry.h). With
 * neither, the signatures are checked but the signers are not: the result says so. */
#ifndef HP_REPORT_VERIFY_H
#define HP_REPORT_VERIFY_H

#include <stdio.h>

#include "common/status.h"

#define HP_MANIFEST_FORMAT "histoplan-signed-revision/1"
#define HP_SIGNED_CONTENT                                                                                          \
    "signature: Ed25519 over the SHA-256 (32 bytes) of report.json, which is stored in RFC 8785 canonical form; "  \
    "manifest_signature: Ed25519 over the SHA-256 (32 bytes) of the RFC 8785 canonical form of manifest, which "   \
    "names the SHA-256 of every file of the revision and of the report's images, the revision it supersedes and "  \
    "the audit log's head"

/* A public key trusted for one pathologist id (`verify --pubkey ID=PUB.pem`). */
typedef struct {
    const char *pathologist_id;
    const char *pubkey_path;
} hp_signer_key;

typedef struct {
    const hp_signer_key *keys; /* may be NULL when n_keys is 0 */
    int n_keys;
    const char *registry_path; /* NULL: the default registry, when that file exists */
    int no_registry;           /* consult no registry at all */
} hp_report_verify_opts;

typedef struct {
    int failures;            /* checks that failed */
    int revisions;           /* signed revisions found (on disk or in the audit log) */
    int unverified;          /* revisions whose signer no registry or given key vouches for */
    char first_failure[HP_ERROR_MSG_MAX];
} hp_report_verify_result;

/* Checks the report in `dir`, writing one line per check to `out` (may be NULL). Returns HP_OK
 * when every check holds (res->unverified may still be > 0: the signatures are valid but nothing
 * says whose keys signed), HP_ERR_INVALID when any failed (res->failures, each named in `out`),
 * or another code when the check could not run (an unreadable registry or key file; err says). */
hp_status hp_report_verify(const char *dir, const hp_report_verify_opts *opts, FILE *out,
                           hp_report_verify_result *res, hp_error *err);

/* Whether `dir` holds a signed report: 1 when revisions/ holds a revision or audit.jsonl records a
 * sign or amend event (read line by line, even from a damaged log), with *revision the highest
 * found; 0 when neither; -1 with err set when the folder cannot be read. */
int hp_report_signed(const char *dir, int *revision, hp_error *err);

#endif
