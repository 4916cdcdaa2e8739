#include "report/json_pointer.h"

#include <stdlib.h>
#include <string.h>

/* Copies the next reference token of `p` (after its '/') into `tok`, unescaping ~0 and ~1.
 * Returns the rest of the pointer, or NULL for a malformed escape or an over-long token. */
static const char *next_token(const char *p, char *tok, size_t cap)
{
    size_t n = 0;
    for (p++; *p && *p != '/'; p++) {
        char c = *p;
        if (c == '~') {
            if (p[1] == '0')
                c = '~';
            else if (p[1] == '1')
                c = '/';
            else
                return NULL;
            p++;
        }
        if (n + 1 >= cap)
            return NULL;
        tok[n++] = c;
    }
    tok[n] = '\0';
    return p;
}

cJSON *hp_json_pointer_get(const cJSON *root, const char *pointer)
{
    if (!root || !pointer)
        return NULL;
    const cJSON *node = root;
    const char *p = pointer;
    char tok[256];
    while (*p) {
        if (*p != '/')
            return NULL;
        p = next_token(p, tok, sizeof tok);
        if (!p)
            return NULL;
        if (cJSON_IsArray(node)) {
            if (!tok[0] || (tok[0] == '0' && tok[1]) || strspn(tok, "0123456789") != strlen(tok))
                return NULL;
            long idx = strtol(tok, NULL, 10);
            if (idx < 0 || idx >= cJSON_GetArraySize(node))
                return NULL;
            node = cJSON_GetArrayItem(node, (int)idx);
        } else if (cJSON_IsObject(node)) {
            node = cJSON_GetObjectItemCaseSensitive(node, tok);
        } else {
            return NULL;
        }
        if (!node)
            return NULL;
    }
    return (cJSON *)node;
}
