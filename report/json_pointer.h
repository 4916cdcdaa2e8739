/* JSON Pointers (RFC 6901) over cJSON trees: the report's statements name the numbers they quote
 * by pointer, and amendments name the fields they change. */
#ifndef HP_JSON_POINTER_H
#define HP_JSON_POINTER_H

#include <cjson/cJSON.h>

/* The node at `pointer` ("" is the root; "/a/0/b~1c" with ~0 = '~', ~1 = '/'), or NULL when
 * there is none. Array indexes are decimal without leading zeros. */
cJSON *hp_json_pointer_get(const cJSON *root, const char *pointer);

#endif
