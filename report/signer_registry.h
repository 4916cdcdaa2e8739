/* The signer registry: which pathologist id each report-signing key belongs to.
 *
 * A signature proves only that some key signed; the registry says whose key it is. It is one JSON
 * file in the lab's configuration folder (schemas/signers.schema.json), by default
 * $HP_CONFIG_DIR/signers.json, else $XDG_CONFIG_HOME/histoplan/signers.json, else
 * ~/.config/histoplan/signers.json, so the command line and the HTTP service read the same file:
 *
 *   {"format": "histoplan-signers/1",
 *    "signers": [{"pathologist_id": "dr-alice", "key_fingerprint": HEX, "public_key": BASE64,
 *                 "added_at": TIME, "revoked_at": null, "revocation_reason": null}, ...]}
 *
 * One entry per key; a key (by the SHA-256 fingerprint of its raw Ed25519 public key) belongs to
 * one pathologist, who may have several keys. Revoking is for a lost or compromised key: every
 * signature made with it fails verification, earlier ones included (a signing time is the
 * signer's own claim, so it cannot vouch for them). A pathologist who leaves keeps their entry,
 * so the reports they signed still verify. Entries are never deleted.
 *
 * A registry that others can write to (mode o+w) is refused: anyone could add a key to it.
 * Changes are made under an exclusive lock on the registry's folder and written through a
 * temporary file and a rename. Not thread-safe per object; separate objects are independent. */
#ifndef HP_SIGNER_REGISTRY_H
#define HP_SIGNER_REGISTRY_H

#include <stddef.h>

#include "common/status.h"
#include "common/utc_time.h"

#define HP_SIGNERS_FORMAT "histoplan-signers/1"

typedef struct {
    char *pathologist_id;
    char key_fingerprint[65];
    unsigned char public_key[32];
    char added_at[HP_UTC_TIME_LEN];
    char revoked_at[HP_UTC_TIME_LEN]; /* "" while valid */
    char *revocation_reason;          /* NULL when none */
} hp_signer;

typedef struct {
    char *path;
    hp_signer *signers;
    int n;
} hp_signer_registry;

/* The default registry path (see above) into `out`; fails when no folder can be named. */
hp_status hp_signer_registry_default_path(char *out, size_t cap, hp_error *err);

/* Reads the registry at `path`. A missing file is HP_ERR_IO, or an empty registry when
 * `missing_ok`. Refuses, naming the entry and field: malformed JSON, unknown fields, a fingerprint
 * that is not the SHA-256 of its public key, a key listed twice, a file others can write to. */
hp_status hp_signer_registry_load(const char *path, int missing_ok, hp_signer_registry **out, hp_error *err);

void hp_signer_registry_free(hp_signer_registry *r);

/* The entry of the key with this fingerprint, or NULL. */
const hp_signer *hp_signer_registry_find(const hp_signer_registry *r, const char *fingerprint);

/* Adds the Ed25519 public key in `pubkey_pem` for `pathologist_id` (creating the file and its
 * folder when absent); `fingerprint` (may be NULL) receives its fingerprint. Refuses a key that
 * is already registered (to anyone) or was revoked. */
hp_status hp_signer_registry_add(const char *path, const char *pathologist_id, const char *pubkey_pem,
                                 char fingerprint[65], hp_error *err);

/* Revokes the key with `fingerprint`, which must be registered to `pathologist_id`; `reason` may
 * be NULL. */
hp_status hp_signer_registry_revoke(const char *path, const char *pathologist_id, const char *fingerprint,
                                    const char *reason, hp_error *err);

/* 1 when `id` can be a pathologist id: 1 to 128 bytes of valid UTF-8, no control characters and
 * no "=" (which separates the id from the key file in `verify --pubkey ID=PUB.pem`). */
int hp_pathologist_id_valid(const char *id);

#endif
