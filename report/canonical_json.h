/* RFC 8785 JSON Canonicalization Scheme (JCS) over cJSON trees.
 *
 * The canonical form is what gets hashed and signed: the same JSON value always gives the same
 * bytes, whatever order a writer put the members in and however it spelled the numbers. Object
 * members are sorted by their names compared as UTF-16 code units (as ECMAScript compares
 * strings, so U+1F600 sorts before U+FB33), nothing is written between tokens, strings are
 * escaped as ES6 JSON.stringify does and numbers are written as ES6 Number.prototype.toString.
 *
 * Thread-safe: no shared state. */
#ifndef HP_CANONICAL_JSON_H
#define HP_CANONICAL_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/status.h"

/* The canonical UTF-8 bytes of `root`, NUL-terminated (the NUL is not counted in *len; `len`
 * may be NULL). The caller frees the result with free(). Returns NULL with `err` set on a value
 * JCS cannot represent: NaN or an infinity, a string or member name that is not valid UTF-8, two
 * members of one object with the same name (cJSON keeps both; the name is given), a cJSON raw
 * node, or nesting deeper than HP_JSON_MAX_DEPTH. */
char *hp_json_canonicalize(const cJSON *root, size_t *len, hp_error *err);

#define HP_JSON_MAX_DEPTH 1000

/* `v` as ES6 Number.prototype.toString writes it: the shortest digits that read back as `v`,
 * plain notation for 1e-6 <= |v| < 1e21 ("0.000001", "999999999999999900000"), exponent
 * notation otherwise ("1e+21", "1e-7", "5e-324"), "0" for both zeros. NaN and the infinities,
 * which JSON cannot hold, come out as "NaN", "Infinity" and "-Infinity" (as ES6 writes them);
 * callers writing JSON must refuse them first. The text is at most 25 characters plus the NUL.
 * Report and HTML writers print numbers with this so both show the same text. */
void hp_json_format_number(double v, char out[32]);

#endif
