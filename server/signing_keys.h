/* Pathologists' signing keys held by the server for signing from the viewer.
 *
 * Each pathologist's own Ed25519 key, encrypted with their passphrase (PKCS#8 "ENCRYPTED PRIVATE
 * KEY"), is enrolled by an admin (`histoplan serve signer add`) under the pathologist's token id:
 * DIR/signers/<token-id>.pem (mode 0600) and DIR/signers/<token-id>.id (the pathologist id it
 * signs as). The server never holds a key in the clear on disk: the passphrase, sent with each
 * signing request, decrypts it in memory for that request only. Which id a key may sign for is
 * the signer registry's business (DIR/signers/registry.json, `histoplan report signers add
 * --registry`): signing refuses a key the registry does not bind to that id. Why this and not a
 * key file signed in the browser: docs/viewer.md. */
#ifndef HP_SERVER_SIGNING_KEYS_H
#define HP_SERVER_SIGNING_KEYS_H

#include <limits.h>
#include <stdint.h>

#include "common/status.h"

#define HP_SIGNERS_DIR "signers"
#define HP_SIGNER_REGISTRY "signers/registry.json"

/* Enrols `key_pem` (an encrypted PKCS#8 PEM file; an unencrypted key is refused) for token
 * `token_id` signing as `pathologist_id`; replaces an earlier enrolment of that token. */
hp_status hp_signing_key_enrol(const char *data_dir, const char *token_id, const char *pathologist_id,
                               const char *key_pem, hp_error *err);

/* The enrolled key of `token_id`: 1 (key_path and pathologist_id filled), 0 none, -1 unreadable
 * (err set). */
int hp_signing_key_find(const char *data_dir, const char *token_id, char key_path[PATH_MAX],
                        char pathologist_id[160], hp_error *err);

/* Passphrase attempts per token: after HP_SIGN_MAX_FAILURES wrong passphrases within
 * HP_SIGN_WINDOW_MS, the token may not sign for HP_SIGN_LOCK_MS (in this process). */
#define HP_SIGN_MAX_FAILURES 5
#define HP_SIGN_WINDOW_MS (15LL * 60 * 1000)
#define HP_SIGN_LOCK_MS (15LL * 60 * 1000)

/* Seconds the token must still wait (0: it may try now). */
int hp_sign_locked_for(const char *token_id, int64_t now);
void hp_sign_failed(const char *token_id, int64_t now);
void hp_sign_succeeded(const char *token_id);

#endif
