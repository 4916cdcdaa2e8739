/* What cJSON's parser accepts but histoplan refuses in every JSON input it reads (findings, case
 * files, care-plan rule tables, model cards, stain parameters, amendment files):
 *
 *  - a member name given twice in one object: cJSON keeps the first, Python's json and most
 *    other readers the last, so two programs would read two different documents from one file;
 *  - text (a string or a member name) that is not valid UTF-8: it cannot be canonicalized
 *    (RFC 8785), so a report quoting it could never be signed;
 *  - the escape \u0000: cJSON ends the string there, other readers keep what follows;
 *  - a number beyond the range of a double (1e999): cJSON reads it as infinity.
 *
 * Messages name the place as a JSON Pointer (RFC 6901), never a value: inputs such as case
 * files hold patient identifiers. */
#ifndef HP_JSON_CHECK_H
#define HP_JSON_CHECK_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* Checks `text` (the `len` bytes that were parsed) and `root` (cJSON's tree of them; NULL checks
 * the text only). Returns 0 when both are clean; otherwise -1 with a description of the first
 * fault in `what` (`what_len` bytes, NUL-terminated), e.g.
 * "member name \"age_years\" appears twice in /clinical". Thread-safe. */
int hp_json_check(const char *text, size_t len, const cJSON *root, char *what, size_t what_len);

#endif
