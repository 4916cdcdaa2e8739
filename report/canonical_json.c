/* RFC 8785 canonical JSON: see canonical_json.h. */
#include "report/canonical_json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} buf_t;

static void put(buf_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* ---- UTF-8 ---- */

/* Decodes one code point at s[*i] (valid UTF-8 assumed checked), advancing *i. */
static uint32_t utf8_next(const unsigned char *s, size_t *i)
{
    uint32_t c = s[*i];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if (c < 0xE0) {
        c = ((c & 0x1F) << 6) | (s[*i + 1] & 0x3F);
        *i += 2;
        return c;
    }
    if (c < 0xF0) {
        c = ((c & 0x0F) << 12) | ((uint32_t)(s[*i + 1] & 0x3F) << 6) | (s[*i + 2] & 0x3F);
        *i += 3;
        return c;
    }
    c = ((c & 0x07) << 18) | ((uint32_t)(s[*i + 1] & 0x3F) << 12) |
        ((uint32_t)(s[*i + 2] & 0x3F) << 6) | (s[*i + 3] & 0x3F);
    *i += 4;
    return c;
}

/* Compares two valid UTF-8 strings as sequences of UTF-16 code units, as ECMAScript does. */
static int cmp_utf16(const char *a, const char *b)
{
    const unsigned char *sa = (const unsigned char *)a, *sb = (const unsigned char *)b;
    size_t ia = 0, ib = 0;
    uint32_t pend_a = 0, pend_b = 0; /* a pending low surrogate */
    for (;;) {
        uint32_t ua, ub;
        if (pend_a) {
            ua = pend_a, pend_a = 0;
        } else if (!sa[ia]) {
            ua = UINT32_MAX;
        } else {
            uint32_t cp = utf8_next(sa, &ia);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                ua = 0xD800 + (cp >> 10);
                pend_a = 0xDC00 + (cp & 0x3FF);
            } else {
                ua = cp;
            }
        }
        if (pend_b) {
            ub = pend_b, pend_b = 0;
        } else if (!sb[ib]) {
            ub = UINT32_MAX;
        } else {
            uint32_t cp = utf8_next(sb, &ib);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                ub = 0xD800 + (cp >> 10);
                pend_b = 0xDC00 + (cp & 0x3FF);
            } else {
                ub = cp;
            }
        }
        if (ua == UINT32_MAX && ub == UINT32_MAX)
            return 0;
        /* The end sorts first: a prefix precedes its extensions. */
        if (ua == UINT32_MAX)
            return -1;
        if (ub == UINT32_MAX)
            return 1;
        if (ua != ub)
            return ua < ub ? -1 : 1;
    }
}

/* ---- numbers ---- */

/* The shortest decimal digits (no trailing zeros) that read back as v > 0, and the decimal
 * exponent: v ~= 0.d1d2d3... x 10^point. Returns the digit count. */
static int shortest_digits(double v, char digits[20], int *point)
{
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        /* tmp: d[.ddd]e[+-]xx */
        char d[20];
        int k = 0;
        const char *p = tmp;
        for (; *p && *p != 'e'; p++)
            if (*p != '.')
                d[k++] = *p;
        int exp10 = atoi(p + 1);
        int ok = strtod(tmp, NULL) == v;
        if (!ok && prec < 17) {
            /* %.e gives the nearest prec-digit decimal; where v sits at a power of two its
             * rounding interval is lopsided and the neighbour on the wide side may read back
             * when the nearest does not. Try the two neighbours. */
            for (int dir = -1; dir <= 1 && !ok; dir += 2) {
                char nd[20];
                memcpy(nd, d, (size_t)k);
                int ne = exp10, nk = k, j = k - 1;
                if (dir > 0) {
                    while (j >= 0 && nd[j] == '9')
                        nd[j--] = '0';
                    if (j < 0) {
                        nd[0] = '1';
                        memset(nd + 1, '0', (size_t)(nk - 1));
                        ne++;
                    } else {
                        nd[j]++;
                    }
                } else {
                    while (j >= 0 && nd[j] == '0')
                        nd[j--] = '9';
                    if (j < 0)
                        continue;
                    nd[j]--;
                    if (nd[0] == '0') { /* 1000 -> 0999: one digit fewer, exponent down */
                        memmove(nd, nd + 1, (size_t)(nk - 1));
                        nd[nk - 1] = '9';
                        ne--;
                    }
                }
                char cand[48];
                snprintf(cand, sizeof cand, "%c.%.*se%d", nd[0], nk - 1, nd + 1, ne);
                if (strtod(cand, NULL) == v) {
                    memcpy(d, nd, (size_t)nk);
                    k = nk;
                    exp10 = ne;
                    ok = 1;
                }
            }
        }
        if (ok) {
            while (k > 1 && d[k - 1] == '0')
                k--;
            memcpy(digits, d, (size_t)k);
            digits[k] = '\0';
            *point = exp10 + 1;
            return k;
        }
    }
    /* %.17e always reads back; not reached. */
    snprintf(tmp, sizeof tmp, "%.16e", v);
    digits[0] = tmp[0];
    memcpy(digits + 1, tmp + 2, 16);
    digits[17] = '\0';
    *point = atoi(strchr(tmp, 'e') + 1) + 1;
    return 17;
}

void hp_json_format_number(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) { /* -0 too */
        strcpy(out, "0");
        return;
    }
    char *o = out;
    if (v < 0) {
        *o++ = '-';
        v = -v;
    }
    char d[20];
    int n; /* ES6's n: the value is 0.d x 10^n ... i.e. digits d times 10^(n-k) */
    int k = shortest_digits(v, d, &n);
    if (k <= n && n <= 21) {
        memcpy(o, d, (size_t)k);
        o += k;
        for (int i = 0; i < n - k; i++)
            *o++ = '0';
    } else if (0 < n && n <= 21) {
        memcpy(o, d, (size_t)n);
        o += n;
        *o++ = '.';
        memcpy(o, d + n, (size_t)(k - n));
        o += k - n;
    } else if (-6 < n && n <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -n; i++)
            *o++ = '0';
        memcpy(o, d, (size_t)k);
        o += k;
    } else {
        *o++ = d[0];
        if (k > 1) {
            *o++ = '.';
            memcpy(o, d + 1, (size_t)(k - 1));
            o += k - 1;
        }
        int e = n - 1;
        o += sprintf(o, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    *o = '\0';
}

/* ---- serialization ---- */

static hp_status put_string(buf_t *b, const char *s, const char *what, hp_error *err)
{
    if (!s)
        return hp_error_set(err, HP_ERR_INVALID, "canonical JSON: %s without a value", what);
    size_t n = strlen(s);
    size_t bad = hp_utf8_invalid_at(s, n);
    if (bad != (size_t)-1)
        return hp_error_set(err, HP_ERR_INVALID,
                            "canonical JSON: %s is not valid UTF-8 (byte 0x%02x at offset %zu)",
                            what, (unsigned char)s[bad], bad);
    put(b, "\"", 1);
    size_t run = 0; /* bytes copied through unchanged */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char u[8];
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (c < 0x20) {
                snprintf(u, sizeof u, "\\u%04x", c);
                esc = u;
            }
        }
        if (esc) {
            put(b, s + i - run, run);
            run = 0;
            puts_(b, esc);
        } else {
            run++;
        }
    }
    put(b, s + n - run, run);
    put(b, "\"", 1);
    return HP_OK;
}

typedef struct {
    const cJSON *node;
} member_t;

static int cmp_members(const void *a, const void *b)
{
    return cmp_utf16(((const member_t *)a)->node->string, ((const member_t *)b)->node->string);
}

static hp_status put_value(buf_t *b, const cJSON *v, int depth, hp_error *err);

static hp_status put_object(buf_t *b, const cJSON *obj, int depth, hp_error *err)
{
    size_t n = 0;
    for (const cJSON *c = obj->child; c; c = c->next)
        n++;
    if (n == 0) {
        puts_(b, "{}");
        return HP_OK;
    }
    member_t *m = malloc(n * sizeof *m);
    if (!m)
        return hp_error_set(err, HP_ERR_NOMEM, "canonical JSON: out of memory");
    hp_status st = HP_OK;
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next) {
        if (!c->string) {
            st = hp_error_set(err, HP_ERR_INVALID, "canonical JSON: an object member has no name");
            goto done;
        }
        size_t bad = hp_utf8_invalid_at(c->string, strlen(c->string));
        if (bad != (size_t)-1) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "canonical JSON: a member name is not valid UTF-8 (byte 0x%02x at "
                              "offset %zu)",
                              (unsigned char)c->string[bad], bad);
            goto done;
        }
        m[i++].node = c;
    }
    /* qsort is not stable, but equal names are refused below, so order among equals is moot. */
    qsort(m, n, sizeof *m, cmp_members);
    for (i = 1; i < n; i++)
        if (strcmp(m[i - 1].node->string, m[i].node->string) == 0) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "canonical JSON: member \"%.200s\" appears twice in one object",
                              m[i].node->string);
            goto done;
        }
    put(b, "{", 1);
    for (i = 0; i < n; i++) {
        if (i)
            put(b, ",", 1);
        if ((st = put_string(b, m[i].node->string, "a member name", err)))
            goto done;
        put(b, ":", 1);
        if ((st = put_value(b, m[i].node, depth + 1, err)))
            goto done;
    }
    put(b, "}", 1);
done:
    free(m);
    return st;
}

static hp_status put_value(buf_t *b, const cJSON *v, int depth, hp_error *err)
{
    if (depth > HP_JSON_MAX_DEPTH)
        return hp_error_set(err, HP_ERR_INVALID, "canonical JSON: nested deeper than %d levels",
                            HP_JSON_MAX_DEPTH);
    switch (v->type & 0xFF) {
    case cJSON_NULL:
        puts_(b, "null");
        return HP_OK;
    case cJSON_True:
        puts_(b, "true");
        return HP_OK;
    case cJSON_False:
        puts_(b, "false");
        return HP_OK;
    case cJSON_Number: {
        if (!isfinite(v->valuedouble)) {
            const char *what = isnan(v->valuedouble) ? "NaN" : "infinite";
            if (v->string)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "canonical JSON: member \"%.200s\" is %s, which JSON cannot "
                                    "represent",
                                    v->string, what);
            return hp_error_set(err, HP_ERR_INVALID,
                                "canonical JSON: a number is %s, which JSON cannot represent", what);
        }
        char num[32];
        hp_json_format_number(v->valuedouble, num);
        puts_(b, num);
        return HP_OK;
    }
    case cJSON_String:
        return put_string(b, v->valuestring, "a string value", err);
    case cJSON_Array: {
        put(b, "[", 1);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child)
                put(b, ",", 1);
            hp_status st = put_value(b, c, depth + 1, err);
            if (st)
                return st;
        }
        put(b, "]", 1);
        return HP_OK;
    }
    case cJSON_Object:
        return put_object(b, v, depth, err);
    case cJSON_Raw:
        return hp_error_set(err, HP_ERR_INVALID,
                            "canonical JSON: a raw (pre-serialized) cJSON node cannot be "
                            "canonicalized%s%.200s%s",
                            v->string ? " (member \"" : "", v->string ? v->string : "",
                            v->string ? "\")" : "");
    default:
        return hp_error_set(err, HP_ERR_INVALID, "canonical JSON: a cJSON node of unknown type %d",
                            v->type & 0xFF);
    }
}

char *hp_json_canonicalize(const cJSON *root, size_t *len, hp_error *err)
{
    if (len)
        *len = 0;
    if (!root) {
        hp_error_set(err, HP_ERR_INVALID, "canonical JSON: NULL value");
        return NULL;
    }
    buf_t b = {0};
    hp_status st = put_value(&b, root, 0, err);
    if (!st && b.oom)
        st = hp_error_set(err, HP_ERR_NOMEM, "canonical JSON: out of memory");
    if (st) {
        free(b.p);
        return NULL;
    }
    if (len)
        *len = b.n;
    return b.p;
}
