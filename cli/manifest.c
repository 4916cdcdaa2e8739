#include "cli/manifest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/sha256.h"
#include "io/read_file.h"
#include "io/slide.h"

#define MANIFEST_MAX (64L << 20) /* millions of slides; anything larger is not a manifest */

enum { F_PATH, F_ID, F_CASE, F_MPP, N_FIELDS };
static const char *const FIELD_NAMES[N_FIELDS] = {"path", "slide_id", "case", "mpp"};

/* A set of strings with the row that gave each: duplicates are found in one pass, also in
 * manifests of many thousands of lines. Keys are owned copies. */
typedef struct {
    char **keys;
    int *rows;
    size_t cap, n;
} str_set;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

/* The row that already gave `key`, or -1 after adding it with `row`; -2 when out of memory. */
static int set_put(str_set *s, const char *key, int row)
{
    if (2 * (s->n + 1) > s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 256;
        char **keys = calloc(cap, sizeof *keys);
        int *rows = calloc(cap, sizeof *rows);
        if (!keys || !rows) {
            free(keys);
            free(rows);
            return -2;
        }
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->keys[i])
                continue;
            size_t j = str_hash(s->keys[i]) & (cap - 1);
            while (keys[j])
                j = (j + 1) & (cap - 1);
            keys[j] = s->keys[i], rows[j] = s->rows[i];
        }
        free(s->keys);
        free(s->rows);
        s->keys = keys, s->rows = rows, s->cap = cap;
    }
    size_t j = str_hash(key) & (s->cap - 1);
    for (; s->keys[j]; j = (j + 1) & (s->cap - 1))
        if (!strcmp(s->keys[j], key))
            return s->rows[j];
    if (!(s->keys[j] = strdup(key)))
        return -2;
    s->rows[j] = row;
    s->n++;
    return -1;
}

static void set_free(str_set *s)
{
    for (size_t i = 0; i < s->cap; i++)
        free(s->keys[i]);
    free(s->keys);
    free(s->rows);
}

typedef struct {
    str_set ids, paths;
    const char *file;
    char *dir; /* the manifest's folder, with a trailing '/', or "" */
    hp_manifest *m;
    hp_error *err;
    int line;
} loader;

static hp_status bad(loader *L, const char *field, const char *fmt, const char *value)
{
    char what[600];
    snprintf(what, sizeof what, fmt, value ? value : "");
    if (field)
        return hp_error_set(L->err, HP_ERR_INVALID, "%s line %d: field %s: %s", L->file, L->line, field, what);
    return hp_error_set(L->err, HP_ERR_INVALID, "%s line %d: %s", L->file, L->line, what);
}

static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int case_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > HP_MANIFEST_CASE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* Checks one row's values and appends it. `mpp_text` NULL or "" means none; `mpp_num` is used
 * when mpp_text is NULL and has_num is set (JSON). */
static hp_status add_row(loader *L, const char *path, const char *id, const char *case_id, const char *mpp_text,
                         int has_num, double mpp_num)
{
    double mpp = 0;
    if (!path || !*path)
        return bad(L, "path", "missing: every line names its slide file%s", NULL);
    if (!id || !id_ok(id))
        return bad(L, "slide_id", id && *id ? "'%.100s' is not 1-64 characters of A-Z a-z 0-9 _ -"
                                            : "missing: every slide needs an id (1-64 of A-Z a-z 0-9 _ -)%s", id);
    if (!case_ok(case_id ? case_id : ""))
        return bad(L, "case", case_id && *case_id ? "'%.100s' is not 1-128 printable characters"
                                                  : "missing: every slide needs its case accession%s", case_id);
    if (mpp_text && *mpp_text) {
        char *end;
        errno = 0;
        mpp = strtod(mpp_text, &end);
        if (errno || end == mpp_text || *end || !isfinite(mpp))
            return bad(L, "mpp", "'%.100s' is not a number (microns per pixel, or empty for the slide's own)",
                       mpp_text);
        has_num = 1;
    } else if (has_num) {
        mpp = mpp_num;
    }
    if (has_num && !(mpp >= HP_SLIDE_MPP_MIN && mpp <= HP_SLIDE_MPP_MAX)) {
        char v[64];
        snprintf(v, sizeof v, "%g", mpp);
        return hp_error_set(L->err, HP_ERR_INVALID, "%s line %d: field mpp: %s is outside %g..%g microns per pixel",
                            L->file, L->line, v, HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX);
    }
    hp_manifest *m = L->m;
    char *full = NULL;
    if (path[0] == '/') {
        full = strdup(path);
    } else if ((full = malloc(strlen(L->dir) + strlen(path) + 1))) {
        strcpy(full, L->dir);
        strcat(full, path);
    }
    if (!full)
        return hp_error_set(L->err, HP_ERR_NOMEM, "out of memory");
    /* One file under two spellings (./a.svs, a link) is one slide: compared resolved, as the
     * batch summary keys it. */
    char real[PATH_MAX];
    const char *key = realpath(full, real) ? real : full;
    int prev = set_put(&L->ids, id, L->line), prev_path = prev == -1 ? set_put(&L->paths, key, L->line) : -1;
    if (prev == -2 || prev_path == -2) {
        free(full);
        return hp_error_set(L->err, HP_ERR_NOMEM, "out of memory");
    }
    if (prev >= 0 || prev_path >= 0) {
        free(full);
        char v[200];
        snprintf(v, sizeof v, "'%.100s' is already given on line %d (one line per slide)", prev >= 0 ? id : path,
                 prev >= 0 ? prev : prev_path);
        return hp_error_set(L->err, HP_ERR_INVALID, "%s line %d: field %s: %s", L->file, L->line,
                            prev >= 0 ? "slide_id" : "path", v);
    }
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 64;
        hp_manifest_row *r = realloc(m->rows, sizeof *r * (size_t)cap);
        if (!r) {
            free(full);
            return hp_error_set(L->err, HP_ERR_NOMEM, "out of memory");
        }
        m->rows = r, m->cap = cap;
    }
    hp_manifest_row *r = &m->rows[m->n];
    r->path = full;
    r->slide_id = strdup(id);
    r->case_id = strdup(case_id);
    r->mpp = has_num ? mpp : 0;
    r->line = L->line;
    m->n++;
    if (!r->slide_id || !r->case_id)
        return hp_error_set(L->err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}

/* Splits one CSV line in place into at most `max` fields; returns the count, or -1 on a
 * malformed quote (the message set). */
static int csv_split(loader *L, char *s, char **fields, int max)
{
    int n = 0;
    char *p = s;
    for (;;) {
        if (n == max)
            return max + 1;
        while (*p == ' ' || *p == '\t')
            p++;
        char *out = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p) {
                    bad(L, NULL, "a quoted field is not closed (a field cannot span lines)%s", NULL);
                    return -1;
                }
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p && *p != ',') {
                bad(L, NULL, "text after a closing quote (a quote inside a field is written \"\")%s", NULL);
                return -1;
            }
        } else {
            while (*p && *p != ',') {
                if (*p == '"') {
                    bad(L, NULL, "a quote inside an unquoted field (quote the whole field, \"\" inside)%s", NULL);
                    return -1;
                }
                p++;
            }
            out = p;
            while (out > start && (out[-1] == ' ' || out[-1] == '\t'))
                out--;
        }
        char sep = *p;
        *out = '\0';
        fields[n++] = start;
        if (!sep)
            return n;
        p++;
    }
}

/* The header: which column holds which field. */
static hp_status csv_header(loader *L, char *line, int col[N_FIELDS], int *n_cols)
{
    char *f[N_FIELDS + 1];
    int n = csv_split(L, line, f, N_FIELDS);
    if (n < 0)
        return HP_ERR_INVALID;
    if (n > N_FIELDS)
        return bad(L, NULL, "the header has more than 4 columns; a manifest has path, slide_id, case and "
                            "optionally mpp%s", NULL);
    for (int k = 0; k < N_FIELDS; k++)
        col[k] = -1;
    for (int c = 0; c < n; c++) {
        int k = 0;
        while (k < N_FIELDS && strcmp(f[c], FIELD_NAMES[k]))
            k++;
        if (k == N_FIELDS)
            return bad(L, NULL, "the header's column '%.100s' is none of path, slide_id, case, mpp (the first line "
                                "of a CSV manifest names its columns)", f[c]);
        if (col[k] >= 0)
            return bad(L, NULL, "the header names column '%s' twice", FIELD_NAMES[k]);
        col[k] = c;
    }
    for (int k = 0; k < F_MPP; k++)
        if (col[k] < 0)
            return bad(L, NULL, "the header lacks the column '%s' (columns: path, slide_id, case, optionally mpp)",
                       FIELD_NAMES[k]);
    *n_cols = n;
    return HP_OK;
}

static hp_status csv_row(loader *L, char *line, const int col[N_FIELDS], int n_cols)
{
    char *f[N_FIELDS + 1];
    int n = csv_split(L, line, f, n_cols);
    if (n < 0)
        return HP_ERR_INVALID;
    if (n != n_cols) {
        char v[96];
        snprintf(v, sizeof v, "%s%d fields where the header has %d", n > n_cols ? "more than " : "",
                 n > n_cols ? n_cols : n, n_cols);
        return bad(L, NULL, "%s (a comma inside a field needs the field quoted)", v);
    }
    return add_row(L, f[col[F_PATH]], f[col[F_ID]], f[col[F_CASE]], col[F_MPP] >= 0 ? f[col[F_MPP]] : NULL, 0, 0);
}

static hp_status json_row(loader *L, const char *line)
{
    cJSON *o = cJSON_Parse(line);
    hp_status st = HP_OK;
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return bad(L, NULL, "not a JSON object (a JSON-lines manifest holds one object a line)%s", NULL);
    }
    const char *v[3] = {NULL, NULL, NULL};
    int has_mpp = 0;
    double mpp = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        int k = 0;
        while (k < N_FIELDS && strcmp(it->string, FIELD_NAMES[k]))
            k++;
        if (k == N_FIELDS) {
            st = bad(L, it->string, "unknown key (the keys are path, slide_id, case and optionally mpp)%s", NULL);
            goto done;
        }
        if (k == F_MPP) {
            if (cJSON_IsNull(it))
                continue;
            if (!cJSON_IsNumber(it)) {
                st = bad(L, "mpp", "not a number (microns per pixel, or null for the slide's own)%s", NULL);
                goto done;
            }
            has_mpp = 1, mpp = it->valuedouble;
        } else if (!cJSON_IsString(it)) {
            st = bad(L, FIELD_NAMES[k], "not a string%s", NULL);
            goto done;
        } else {
            v[k] = it->valuestring;
        }
    }
    st = add_row(L, v[F_PATH], v[F_ID], v[F_CASE], NULL, has_mpp, mpp);
done:
    cJSON_Delete(o);
    return st;
}

hp_status hp_manifest_load(const char *file, hp_manifest *m, hp_error *err)
{
    loader L = {.file = file, .m = m, .err = err};
    hp_status st = HP_ERR_NOMEM;
    int col[N_FIELDS], n_cols = 0, json = -1; /* -1: the form is not known yet */
    memset(m, 0, sizeof *m);
    char *text = NULL;
    hp_read_file(file, "the manifest", MANIFEST_MAX, HP_READ_TEXT, &text, NULL, err);
    if (!text)
        return err && err->code ? err->code : HP_ERR_IO;
    if (hp_sha256_hex(text, strlen(text), m->sha256) != HP_OK)
        goto fail;
    const char *slash = strrchr(file, '/');
    size_t dl = slash ? (size_t)(slash - file) + 1 : 0;
    if (!(L.dir = malloc(dl + 1)))
        goto fail;
    memcpy(L.dir, file, dl);
    L.dir[dl] = '\0';
    char *p = text;
    if (!strncmp(p, "\xEF\xBB\xBF", 3))
        p += 3; /* a byte-order mark, as spreadsheet programs write */
    while (*p) {
        char *nl = strchr(p, '\n'), *line = p;
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : p + strlen(p);
        L.line++;
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        char *q = line;
        while (*q == ' ' || *q == '\t')
            q++;
        if (!*q || *q == '#')
            continue;
        if (json < 0) {
            json = *q == '{';
            if (!json) {
                if ((st = csv_header(&L, line, col, &n_cols)) != HP_OK)
                    goto fail;
                continue;
            }
        }
        st = json ? json_row(&L, q) : csv_row(&L, line, col, n_cols);
        if (st != HP_OK)
            goto fail;
    }
    if (m->n == 0) {
        st = hp_error_set(err, HP_ERR_INVALID, "the manifest %s lists no slides%s", file,
                          json == 0 ? " (only a header)" : "");
        goto fail;
    }
    free(L.dir);
    set_free(&L.ids);
    set_free(&L.paths);
    free(text);
    return HP_OK;
fail:
    if (st == HP_ERR_NOMEM)
        hp_error_set(err, st, "out of memory");
    hp_manifest_free(m);
    free(L.dir);
    set_free(&L.ids);
    set_free(&L.paths);
    free(text);
    return st;
}

void hp_manifest_free(hp_manifest *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n; i++) {
        free(m->rows[i].path);
        free(m->rows[i].slide_id);
        free(m->rows[i].case_id);
    }
    free(m->rows);
    memset(m, 0, sizeof *m);
}

int hp_manifest_shard_of(const char *slide_id, int n)
{
    unsigned char d[32];
    char hex[65];
    if (n <= 1 || hp_sha256(slide_id, strlen(slide_id), d, hex) != HP_OK)
        return 1;
    uint64_t h = 0;
    for (int k = 0; k < 8; k++)
        h = h << 8 | d[k];
    return (int)(h % (uint64_t)n) + 1;
}

static int parse_count(const char *s, const char **end, long *v)
{
    if (*s < '0' || *s > '9')
        return -1;
    *v = 0;
    while (*s >= '0' && *s <= '9') {
        *v = *v * 10 + (*s++ - '0');
        if (*v > HP_MANIFEST_SHARDS_MAX)
            return -1;
    }
    *end = s;
    return 0;
}

int hp_manifest_shard_parse(const char *s, int *i, int *n)
{
    long a, b;
    const char *e;
    if (parse_count(s, &e, &a) || *e != '/' || parse_count(e + 1, &e, &b) || *e || b < 1 || a < 1 || a > b)
        return -1;
    *i = (int)a, *n = (int)b;
    return 0;
}
