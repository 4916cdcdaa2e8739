/* SHA-256 over OpenSSL 3 libcrypto: of a buffer, and of a file streamed in blocks (slides and
 * models are hundreds of megabytes). Slide ids, model hashes, build records and report
 * signatures all come from here. Hex is lower-case, so digests compare with strcmp.
 * Thread-safe: no shared state. */
#ifndef HP_SHA256_H
#define HP_SHA256_H

#include <stddef.h>

#include "common/status.h"

/* SHA-256 of `len` bytes at `data`: the 32-byte digest, and (when `hex` is not NULL) its
 * lower-case hex, NUL-terminated. */
hp_status hp_sha256(const void *data, size_t len, unsigned char digest[32], char hex[65]);

/* Lower-case hex SHA-256 of `len` bytes at `data`, NUL-terminated. */
hp_status hp_sha256_hex(const void *data, size_t len, char hex[65]);

/* SHA-256 of a file as 64 lower-case hex digits plus NUL; errors name the file. */
hp_status hp_sha256_file(const char *path, char hex[65], hp_error *err);

#endif
