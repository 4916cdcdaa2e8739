/* Buffer, escaping and value helpers of the HTML report renderer: see html_writer.h. */
#include "report/html_writer.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/canonical_json.h"
#include "report/json_pointer.h"
#include "report/signature.h"

/* Images a report names are small PNGs (overlays, thumbnails); anything this large is not one. */
#define HW_IMAGE_MAX_BYTES (256L << 20)

void hw_init(hp_hw *w, hp_error *err)
{
    memset(w, 0, sizeof *w);
    w->err = err;
}

void hw_free(hp_hw *w)
{
    free(w->s);
    w->s = NULL;
    w->len = w->cap = 0;
}

hp_status hw_fail(hp_hw *w, hp_status code, const char *fmt, ...)
{
    if (!w->failed) {
        w->failed = 1;
        w->code = code;
        if (w->err && w->err->code == HP_OK) {
            char msg[HP_ERROR_MSG_MAX];
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(msg, sizeof msg, fmt, ap);
            va_end(ap);
            hp_error_set(w->err, code, "%s", msg);
        }
    }
    return code;
}

void hw_rawn(hp_hw *w, const char *s, size_t n)
{
    if (w->oom || !s)
        return;
    if (w->len + n + 1 > w->cap) {
        size_t cap = w->cap ? w->cap : 65536;
        while (cap < w->len + n + 1)
            cap *= 2;
        char *p = realloc(w->s, cap);
        if (!p) {
            w->oom = 1;
            hw_fail(w, HP_ERR_NOMEM, "HTML report: out of memory");
            return;
        }
        w->s = p;
        w->cap = cap;
    }
    memcpy(w->s + w->len, s, n);
    w->len += n;
    w->s[w->len] = '\0';
}

void hw_raw(hp_hw *w, const char *s)
{
    if (s)
        hw_rawn(w, s, strlen(s));
}

void hw_textn(hp_hw *w, const char *s, size_t n)
{
    if (!s)
        return;
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            hw_rawn(w, s + start, i - start);
            hw_raw(w, rep);
            start = i + 1;
        }
    }
    hw_rawn(w, s + start, n - start);
}

void hw_text(hp_hw *w, const char *s)
{
    if (s)
        hw_textn(w, s, strlen(s));
}

void hw_ptr(char out[HW_PTR_MAX], const char *base, const char *key)
{
    char tmp[HW_PTR_MAX];
    size_t n = 0;
    for (const char *k = key; *k && n + 3 < sizeof tmp; k++) {
        if (*k == '~') {
            tmp[n++] = '~';
            tmp[n++] = '0';
        } else if (*k == '/') {
            tmp[n++] = '~';
            tmp[n++] = '1';
        } else {
            tmp[n++] = *k;
        }
    }
    tmp[n] = '\0';
    /* Pointers of a report are short; an over-long one is cut (and then resolves to nothing). */
    size_t nb = strnlen(base, HW_PTR_MAX - 2);
    memmove(out, base, nb);
    out[nb] = '/';
    size_t room = HW_PTR_MAX - nb - 2;
    if (n > room)
        n = room;
    memcpy(out + nb + 1, tmp, n);
    out[nb + 1 + n] = '\0';
}

void hw_ptr_i(char out[HW_PTR_MAX], const char *base, int i)
{
    snprintf(out, HW_PTR_MAX, "%s/%d", base, i);
}

static const char *type_names(int types)
{
    static const char *const names[] = {"a string", "a number", "an integer", "true or false",
                                        "null", "an object", "an array"};
    /* The first accepted type is enough to say what was expected. */
    for (int i = 0; i < 7; i++)
        if (types & (1 << i))
            return names[i];
    return "a value";
}

static int type_ok(const cJSON *v, int types)
{
    if (cJSON_IsString(v))
        return (types & HW_STR) != 0;
    if (cJSON_IsNumber(v)) {
        if (types & HW_NUM)
            return isfinite(v->valuedouble);
        return (types & HW_INT) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) < 9007199254740992.0;
    }
    if (cJSON_IsBool(v))
        return (types & HW_BOOL) != 0;
    if (cJSON_IsNull(v))
        return (types & HW_NULL) != 0;
    if (cJSON_IsObject(v))
        return (types & HW_OBJ) != 0;
    if (cJSON_IsArray(v))
        return (types & HW_ARR) != 0;
    return 0;
}

const cJSON *hw_get(hp_hw *w, const cJSON *obj, const char *base, const char *key, int types)
{
    if (!obj)
        return NULL;
    char ptr[HW_PTR_MAX];
    hw_ptr(ptr, base, key);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: required member \"%s\" is missing",
                base[0] ? base : "(top level)", key);
        return NULL;
    }
    if (!type_ok(v, types)) {
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: expected %s%s", ptr, type_names(types),
                (types & HW_NULL) && (types & ~HW_NULL) ? " or null" : "");
        return NULL;
    }
    return cJSON_IsNull(v) ? NULL : v;
}

const char *hw_get_str(hp_hw *w, const cJSON *obj, const char *base, const char *key, int nullable)
{
    const cJSON *v = hw_get(w, obj, base, key, HW_STR | (nullable ? HW_NULL : 0));
    return v ? v->valuestring : NULL;
}

static int has_digit_n(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= '0' && s[i] <= '9')
            return 1;
    return 0;
}

int hw_has_digit(const char *s)
{
    return s ? has_digit_n(s, strlen(s)) : 0;
}

static void open_tag(hp_hw *w, const char *tag, const char *cls, const char *ptr)
{
    hw_raw(w, "<");
    hw_raw(w, tag);
    hw_raw(w, " class=\"");
    hw_raw(w, cls);
    hw_raw(w, "\"");
    if (ptr) {
        hw_raw(w, " data-pointer=\"");
        hw_text(w, ptr);
        hw_raw(w, "\"");
    }
    hw_raw(w, ">");
}

static void close_tag(hp_hw *w, const char *tag)
{
    hw_raw(w, "</");
    hw_raw(w, tag);
    hw_raw(w, ">");
}

void hw_num(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null)
{
    if (!node || cJSON_IsNull(node)) {
        hw_text(w, if_null);
        return;
    }
    if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble)) {
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: expected a number", ptr);
        return;
    }
    char num[32];
    hp_json_format_number(node->valuedouble, num);
    open_tag(w, "span", "num", ptr);
    hw_raw(w, num);
    close_tag(w, "span");
}

void hw_num_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null)
{
    if (!obj)
        return;
    char ptr[HW_PTR_MAX];
    hw_ptr(ptr, base, key);
    const cJSON *v = hw_get(w, obj, base, key, HW_NUM | (if_null ? HW_NULL : 0));
    if (v || (if_null && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key))))
        hw_num(w, v, ptr, if_null);
}

void hw_ref(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null)
{
    if (!node || cJSON_IsNull(node)) {
        hw_text(w, if_null);
        return;
    }
    if (!cJSON_IsString(node)) {
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: expected a string", ptr);
        return;
    }
    open_tag(w, "code", "ref", ptr);
    hw_text(w, node->valuestring);
    close_tag(w, "code");
}

void hw_ref_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null)
{
    if (!obj)
        return;
    char ptr[HW_PTR_MAX];
    hw_ptr(ptr, base, key);
    const cJSON *v = hw_get(w, obj, base, key, HW_STR | (if_null ? HW_NULL : 0));
    if (v || (if_null && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key))))
        hw_ref(w, v, ptr, if_null);
}

void hw_str(hp_hw *w, const cJSON *node, const char *ptr, const char *if_null)
{
    if (!node || cJSON_IsNull(node)) {
        hw_text(w, if_null);
        return;
    }
    if (!cJSON_IsString(node)) {
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: expected a string", ptr);
        return;
    }
    if (!hw_has_digit(node->valuestring)) {
        hw_text(w, node->valuestring);
        return;
    }
    open_tag(w, "span", "ref quoted", ptr);
    hw_text(w, node->valuestring);
    close_tag(w, "span");
}

void hw_str_at(hp_hw *w, const cJSON *obj, const char *base, const char *key, const char *if_null)
{
    if (!obj)
        return;
    char ptr[HW_PTR_MAX];
    hw_ptr(ptr, base, key);
    const cJSON *v = hw_get(w, obj, base, key, HW_STR | (if_null ? HW_NULL : 0));
    if (v || (if_null && cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(obj, key))))
        hw_str(w, v, ptr, if_null);
}

void hw_value(hp_hw *w, const cJSON *node, const char *ptr)
{
    if (!node || cJSON_IsNull(node)) {
        hw_raw(w, "<em class=\"null\">none</em>");
    } else if (cJSON_IsNumber(node)) {
        hw_num(w, node, ptr, NULL);
    } else if (cJSON_IsString(node)) {
        hw_ref(w, node, ptr, NULL);
    } else if (cJSON_IsBool(node)) {
        hw_raw(w, cJSON_IsTrue(node) ? "<span class=\"bool\">true</span>"
                                     : "<span class=\"bool\">false</span>");
    } else {
        /* An array or object (an amendment's before/after may be one): its JSON, quoted. */
        char *text = cJSON_PrintUnformatted(node);
        if (!text) {
            hw_fail(w, HP_ERR_NOMEM, "HTML report: out of memory");
            return;
        }
        open_tag(w, "code", "ref json", ptr);
        hw_text(w, text);
        close_tag(w, "code");
        free(text);
    }
}

static int image_name_ok(const char *file)
{
    const char *prefix = "images/";
    size_t np = strlen(prefix), n = strlen(file);
    if (strncmp(file, prefix, np) != 0 || n < np + 5 || strcmp(file + n - 4, ".png") != 0)
        return 0;
    for (const char *c = file + np; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '.' || *c == '-'))
            return 0;
    return 1;
}

/* Reads all of `path` (at most HW_IMAGE_MAX_BYTES); NULL with errno set on failure. */
static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            if (cap >= (size_t)HW_IMAGE_MAX_BYTES) {
                free(buf);
                buf = NULL;
                errno = EFBIG;
                break;
            }
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                errno = ENOMEM;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
                errno = EIO;
            }
            break;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

void hw_image(hp_hw *w, const cJSON *image, const char *ptr, const char *report_dir,
              const char *alt)
{
    const char *file = hw_get_str(w, image, ptr, "file", 0);
    const char *sha = hw_get_str(w, image, ptr, "sha256", 0);
    hw_get(w, image, ptr, "width_px", HW_INT);
    hw_get(w, image, ptr, "height_px", HW_INT);
    if (!file || !sha || w->failed)
        return;
    if (!image_name_ok(file)) {
        hw_fail(w, HP_ERR_INVALID,
                "report.json: %s/file: \"%s\" is not an image in the report's images/ folder", ptr,
                file);
        return;
    }
    size_t plen = strlen(report_dir) + strlen(file) + 2;
    char *path = malloc(plen);
    if (!path) {
        hw_fail(w, HP_ERR_NOMEM, "HTML report: out of memory");
        return;
    }
    snprintf(path, plen, "%s/%s", report_dir, file);
    size_t n = 0;
    unsigned char *data = read_all(path, &n);
    char *b64 = NULL;
    char hex[65];
    static const unsigned char png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (!data) {
        hw_fail(w, HP_ERR_IO, "%s: cannot read the image the report names (%s): %s", path, ptr,
                strerror(errno));
    } else if (n < 8 || memcmp(data, png_sig, 8) != 0) {
        hw_fail(w, HP_ERR_INVALID, "%s: not a PNG file (named by the report at %s)", path, ptr);
    } else if (hp_sha256_hex(data, n, hex) != HP_OK) {
        hw_fail(w, HP_ERR_INVALID, "%s: cannot hash the image", path);
    } else if (strcmp(hex, sha) != 0) {
        hw_fail(w, HP_ERR_INVALID,
                "%s: SHA-256 %s differs from the report's %s (%s/sha256): the image is not the "
                "one the report was made with",
                path, hex, sha, ptr);
    } else if (!(b64 = hp_base64_encode(data, n))) {
        hw_fail(w, HP_ERR_NOMEM, "HTML report: out of memory");
    } else {
        hw_raw(w, "<img src=\"data:image/png;base64,");
        hw_raw(w, b64);
        hw_raw(w, "\" alt=\"");
        hw_text(w, alt);
        hw_raw(w, "\" data-pointer=\"");
        hw_text(w, ptr);
        hw_raw(w, "\">");
    }
    free(b64);
    free(data);
    free(path);
}

/* The next "{N}" in `p`: its start (or NULL), index and end. */
static const char *next_placeholder(const char *p, int *idx, const char **end)
{
    for (; (p = strchr(p, '{')) != NULL; p++) {
        const char *q = p + 1;
        long v = 0;
        while (*q >= '0' && *q <= '9' && v < 100000)
            v = v * 10 + (*q++ - '0');
        if (q > p + 1 && *q == '}') {
            *idx = (int)v;
            *end = q + 1;
            return p;
        }
    }
    return NULL;
}

/* Template text: must match `text` at *pos; a literal digit (which no value ties to the
 * report) is quoted as a ref. */
static int literal(hp_hw *w, const char *lit, size_t n, const char *text, size_t *pos)
{
    if (strncmp(text + *pos, lit, n) != 0)
        return 0;
    *pos += n;
    if (has_digit_n(lit, n)) {
        hw_raw(w, "<span class=\"ref\">");
        hw_textn(w, lit, n);
        hw_raw(w, "</span>");
    } else {
        hw_textn(w, lit, n);
    }
    return 1;
}

void hw_statement(hp_hw *w, const cJSON *root, const cJSON *st, const char *ptr)
{
    const char *id = hw_get_str(w, st, ptr, "id", 0);
    const char *tpl = hw_get_str(w, st, ptr, "template", 0);
    const char *text = hw_get_str(w, st, ptr, "text", 0);
    const cJSON *values = hw_get(w, st, ptr, "values", HW_ARR);
    if (!id || !tpl || !text || !values)
        return;
    char vbase[HW_PTR_MAX];
    hw_ptr(vbase, ptr, "values");
    int nv = cJSON_GetArraySize(values);
    size_t pos = 0;
    const char *p = tpl, *why = NULL;
    hw_raw(w, "<span class=\"stext\">");
    while (*p && !why) {
        int idx = 0;
        const char *end = NULL, *ph = next_placeholder(p, &idx, &end);
        size_t litn = ph ? (size_t)(ph - p) : strlen(p);
        if (!literal(w, p, litn, text, &pos)) {
            why = "its text does not match its template";
            break;
        }
        if (!ph)
            break;
        p = end;
        if (idx >= nv) {
            why = "its template names a value it does not have";
            break;
        }
        char vp[HW_PTR_MAX];
        hw_ptr_i(vp, vbase, idx);
        const cJSON *v = cJSON_GetArrayItem(values, idx);
        const char *pointer = hw_get_str(w, v, vp, "pointer", 0);
        const cJSON *val = hw_get(w, v, vp, "value", HW_NUM | HW_STR);
        const cJSON *unit = hw_get(w, v, vp, "unit", HW_STR | HW_NULL);
        if (!pointer || !val)
            return;
        const cJSON *at = hp_json_pointer_get(root, pointer);
        char shown[32];
        const char *s;
        if (cJSON_IsNumber(val)) {
            if (!cJSON_IsNumber(at) || at->valuedouble != val->valuedouble) {
                why = "a number differs from the one at its pointer";
                break;
            }
            hp_json_format_number(val->valuedouble, shown);
            s = shown;
        } else {
            if (!cJSON_IsString(at) || strcmp(at->valuestring, val->valuestring) != 0) {
                why = "a string value differs from the one at its pointer";
                break;
            }
            s = val->valuestring;
        }
        size_t sn = strlen(s);
        if (strncmp(text + pos, s, sn) != 0) {
            why = "its text does not show a value as the report holds it";
            break;
        }
        pos += sn;
        if (cJSON_IsNumber(val))
            hw_num(w, val, pointer, NULL);
        else
            hw_ref(w, val, pointer, NULL);
        /* The unit follows the value in `text` (with a space, or none as for %) unless the
         * template itself spells it. */
        if (unit) {
            const char *u = unit->valuestring;
            size_t un = strlen(u);
            int spaced = un && text[pos] == ' ' && strncmp(text + pos + 1, u, un) == 0 &&
                         !(p[0] == ' ' && strncmp(p + 1, u, un) == 0);
            int tight = !spaced && un && strncmp(text + pos, u, un) == 0 && strncmp(p, u, un) != 0;
            if (spaced || tight) {
                if (spaced)
                    hw_raw(w, " ");
                hw_raw(w, "<span class=\"ref unit\">");
                hw_text(w, u);
                hw_raw(w, "</span>");
                pos += un + (size_t)spaced;
            }
        }
    }
    if (!why && text[pos] != '\0')
        why = "its text does not match its template";
    hw_raw(w, "</span>");
    if (why)
        hw_fail(w, HP_ERR_INVALID, "report.json: statement %s (%s): %s", id, ptr, why);
}
