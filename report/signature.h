/* Ed25519 signatures and Base64 for signed reports, over OpenSSL 3 libcrypto.
 *
 * Signatures are pure Ed25519 (RFC 8032) over the bytes given; the report signer decides what
 * those bytes are (for example the canonical JSON of a report, or its SHA-256). Keys are PEM
 * files as `openssl genpkey -algorithm ed25519` (private, PKCS#8) and `openssl pkey -pubout`
 * (public, SubjectPublicKeyInfo) write them; raw public keys are 32 bytes.
 *
 * Thread-safe: no shared state. Failures leave nothing on OpenSSL's per-thread error queue. */
#ifndef HP_SIGNATURE_H
#define HP_SIGNATURE_H

#include <stddef.h>

#include "common/sha256.h" /* the digests signed reports are built from */
#include "common/status.h"

#define HP_ED25519_SIG_LEN 64
#define HP_ED25519_PUB_LEN 32

/* Signs `len` bytes at `msg` with the Ed25519 private key in the PEM file at
 * `private_key_pem_path`, writing the 64-byte signature to `sig` and the key's raw 32-byte
 * public key to `pub` (`pub` may be NULL). Refuses, naming the file and the problem: a file that
 * cannot be read, one that its group or others may access (mode & 077: the message names the mode
 * and `chmod 600`), one that is not PEM, an encrypted key (no passphrase is ever prompted for), a
 * public key or certificate where a private key belongs, and a key of another algorithm (RSA,
 * EC, Ed448: the algorithm is named). */
hp_status hp_ed25519_sign(const char *private_key_pem_path, const void *msg, size_t len,
                          unsigned char sig[64], unsigned char pub[32], hp_error *err);
/* As hp_ed25519_sign, for a key encrypted with `passphrase` (PKCS#8 "ENCRYPTED PRIVATE KEY"):
 * the key is decrypted in memory only. A passphrase that does not unlock it is refused ("the
 * passphrase does not unlock the private key"). NULL passphrase: hp_ed25519_sign. */
hp_status hp_ed25519_sign_unlocked(const char *private_key_pem_path, const char *passphrase, const void *msg,
                                   size_t len, unsigned char sig[64], unsigned char pub[32], hp_error *err);

/* HP_OK when `sig` is a valid Ed25519 signature of `msg` by the raw public key `pub`;
 * HP_ERR_INVALID with a message when it is not (or `pub` is not a valid key). */
hp_status hp_ed25519_verify(const unsigned char pub[32], const void *msg, size_t len,
                            const unsigned char sig[64], hp_error *err);

/* Reads the raw 32-byte public key from a public key PEM file (`openssl pkey -pubout`). Refuses
 * other algorithms (named), private key files (which must not be handed to a verifier) and files
 * that are not PEM. */
hp_status hp_ed25519_load_public(const char *pem_path, unsigned char pub[32], hp_error *err);

/* Standard Base64 (RFC 4648 §4, with '=' padding, no line breaks) of `len` bytes. Returns a
 * malloc'd NUL-terminated string the caller frees, or NULL when out of memory. */
char *hp_base64_encode(const void *data, size_t len);

/* Decodes standard padded Base64 `b64` (NUL-terminated) into `out`, which holds `cap` bytes;
 * `*out_len` gets the decoded length. Refuses characters outside the alphabet (whitespace
 * included), a length that is not a multiple of 4, misplaced padding, non-zero padding bits (so
 * each byte string has exactly one accepted encoding) and output that does not fit in `cap`. */
hp_status hp_base64_decode(const char *b64, unsigned char *out, size_t cap, size_t *out_len,
                           hp_error *err);

/* The key's fingerprint: lower-case hex SHA-256 of the raw 32-byte public key. */
hp_status hp_key_fingerprint(const unsigned char pub[32], char out[65]);

#endif
