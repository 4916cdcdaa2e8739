/* UTF-8 validation, for everything that takes text from outside: JSON input checks, canonical
 * JSON, the audit log, signer ids, HTTP bodies. */
#ifndef HP_COMMON_UTF8_H
#define HP_COMMON_UTF8_H

#include <stddef.h>

/* The offset of the first byte of `s` (n bytes) that is not part of well-formed UTF-8 (overlong
 * forms, surrogates and code points past U+10FFFF are invalid), or (size_t)-1 when all of it is
 * valid. */
size_t hp_utf8_invalid_at(const char *s, size_t n);

#endif
