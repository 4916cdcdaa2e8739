#include "common/json_check.h"
#include "common/utf8.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The escape \u0000 inside a string of `text`: cJSON ends the string there. */
static int has_nul_escape(const char *text, size_t len)
{
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (!in_str) {
            in_str = c == '"';
            continue;
        }
        if (c == '"') {
            in_str = 0;
        } else if (c == '\\' && i + 1 < len) {
            if (text[i + 1] == 'u' && i + 5 < len && !strncmp(text + i + 2, "0000", 4))
                return 1;
            i++; /* the escaped character, so \" and \\ do not end or start anything */
        }
    }
    return 0;
}

/* The path from the root to a node, for messages: each frame is one level. */
typedef struct frame {
    const struct frame *up;
    const cJSON *node;
    int index; /* in its parent array */
} frame;

/* Appends `name` as one JSON Pointer token: '~' and '/' escaped as RFC 6901 says, and bytes
 * outside printable ASCII shown as '?' (a terminal must not receive control characters; the
 * names histoplan reads are ASCII). */
static void put_token(char *out, size_t n, size_t *at, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p && *at + 4 < n; p++) {
        if (*p == '~' || *p == '/') {
            out[(*at)++] = '~';
            out[(*at)++] = *p == '~' ? '0' : '1';
        } else {
            out[(*at)++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
        }
    }
    out[*at] = '\0';
}

static void pointer_of(const frame *f, char *out, size_t n)
{
    const frame *chain[64];
    int depth = 0, cut = 0;
    for (const frame *p = f; p && p->up; p = p->up) {
        if (depth == 64) {
            cut = 1;
            break;
        }
        chain[depth++] = p;
    }
    size_t at = 0;
    out[0] = '\0';
    if (cut && n > 4)
        at = (size_t)snprintf(out, n, "/...");
    for (int d = depth - 1; d >= 0 && at + 8 < n; d--) {
        const frame *p = chain[d];
        out[at++] = '/';
        out[at] = '\0';
        if (cJSON_IsArray(p->up->node)) {
            at += (size_t)snprintf(out + at, n - at, "%d", p->index);
            if (at >= n)
                at = n - 1;
        } else {
            put_token(out, n, &at, p->node->string ? p->node->string : "");
        }
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* The first member whose name an earlier member of `obj` has, or NULL. Large objects are
 * sorted, so a hostile file with many members costs n log n, not n^2. */
static const cJSON *duplicate_member(const cJSON *obj, int *nomem)
{
    int n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n < 2)
        return NULL;
    if (n <= 16) {
        for (const cJSON *c = obj->child; c; c = c->next)
            for (const cJSON *d = obj->child; d != c; d = d->next)
                if (!strcmp(c->string, d->string))
                    return c;
        return NULL;
    }
    const cJSON **v = malloc((size_t)n * sizeof *v);
    if (!v) {
        *nomem = 1;
        return NULL;
    }
    int k = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        v[k++] = c;
    qsort(v, (size_t)n, sizeof *v, by_name);
    const cJSON *dup = NULL;
    for (int i = 1; i < n && !dup; i++)
        if (!strcmp(v[i - 1]->string, v[i]->string))
            dup = v[i];
    free(v);
    return dup;
}

/* Describes a fault at frame `f` into `what`; kept out of walk() so that each level of a deeply
 * nested document costs little stack. */
static int __attribute__((noinline)) fault(const frame *f, int kind, const char *name, char *what, size_t n)
{
    char ptr[320], in[340];
    pointer_of(f, ptr, sizeof ptr);
    /* The top level's pointer is "": say so in words. */
    snprintf(in, sizeof in, ptr[0] ? "in %s" : "at the top level", ptr);
    switch (kind) {
    case 0:
        snprintf(what, n, "the text at %s is not valid UTF-8", ptr[0] ? ptr : "the top level");
        break;
    case 1:
        snprintf(what, n, "the number at %s is out of range", ptr[0] ? ptr : "the top level");
        break;
    case 2:
        snprintf(what, n, "a member name %s is not valid UTF-8", in);
        break;
    default: {
        char tok[96];
        size_t at = 0;
        put_token(tok, sizeof tok, &at, name);
        snprintf(what, n, "member name \"%s\" appears more than once %s (which one counts would depend on the reader)",
                 tok, in);
    }
    }
    return -1;
}

static int walk(const frame *f, char *what, size_t n)
{
    const cJSON *node = f->node;
    if (cJSON_IsString(node) && node->valuestring &&
        hp_utf8_invalid_at(node->valuestring, strlen(node->valuestring)) != (size_t)-1)
        return fault(f, 0, NULL, what, n);
    if (cJSON_IsNumber(node) && !isfinite(node->valuedouble))
        return fault(f, 1, NULL, what, n);
    if (!cJSON_IsObject(node) && !cJSON_IsArray(node))
        return 0;
    int obj = cJSON_IsObject(node), i = 0;
    for (const cJSON *c = node->child; c; c = c->next, i++) {
        frame cf = {f, c, i};
        if (obj && (!c->string || hp_utf8_invalid_at(c->string, strlen(c->string)) != (size_t)-1))
            return fault(f, 2, NULL, what, n);
        if (walk(&cf, what, n))
            return -1;
    }
    if (obj) {
        int nomem = 0;
        const cJSON *dup = duplicate_member(node, &nomem);
        if (nomem) {
            snprintf(what, n, "out of memory");
            return -1;
        }
        if (dup)
            return fault(f, 3, dup->string, what, n);
    }
    return 0;
}

int hp_json_check(const char *text, size_t len, const cJSON *root, char *what, size_t what_len)
{
    char scratch[8];
    if (!what || !what_len) {
        what = scratch;
        what_len = sizeof scratch;
    }
    what[0] = '\0';
    if (text && has_nul_escape(text, len)) {
        snprintf(what, what_len, "a string holds the escape \\u0000, which readers disagree on");
        return -1;
    }
    if (!root)
        return 0;
    frame top = {NULL, root, 0};
    return walk(&top, what, what_len);
}
