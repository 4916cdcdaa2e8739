/* Random identifiers and secrets of the service: ids of batches, jobs, tokens, callbacks and
 * cases, bearer tokens and webhook secrets, and the hashing and encodings they need.
 *
 * An id is a one-letter kind, '_', and 26 characters of lower-case base32 (128 random bits):
 * "b_" batch, "j_" job, "t_" token, "m_" callback message, "c_" case, "w_" worker. Ids never
 * carry meaning, so they can appear in URLs, file names and logs. Thread-safe. */
#ifndef HP_SERVER_IDS_H
#define HP_SERVER_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "report/signature.h"

#define HP_ID_LEN 28 /* "x_" + 26 */

/* Fills `out` (at least HP_ID_LEN + 1 bytes) with a new id of `kind` ('b', 'j', ...). */
hp_status hp_id_new(char kind, char *out);
/* Whether `s` is exactly an id of `kind` (so it can be put into a path or SQL safely). */
int hp_id_valid(char kind, const char *s);

/* Cryptographically random bytes (OpenSSL's RAND_bytes). */
hp_status hp_random_bytes(void *buf, size_t n);

/* URL-safe base64 without padding of at most 48 bytes (bearer tokens) into `out` (65 bytes).
 * SHA-256 in hex and standard base64 are report/signature.h's. */
void hp_base64url_encode(const void *data, size_t n, char out[65]);

#endif
