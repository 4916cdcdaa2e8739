/* Finding an evaluation's images and labels (eval/eval_dataset.h). */
#include "eval/eval_dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "eval/eval_csv.h"
#include "eval/eval_labels.h"

const char *hp_eval_data_kind_name(hp_eval_data_kind k)
{
    switch (k) {
    case HP_EVAL_DATA_BACH: return "bach";
    case HP_EVAL_DATA_BACH_TEST: return "bach-test";
    case HP_EVAL_DATA_FOLDERS: return "class-folders";
    case HP_EVAL_DATA_CSV: return "csv";
    }
    return "unknown";
}

static char *join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s)
        return NULL;
    memcpy(s, a, la);
    size_t n = la;
    if (la && a[la - 1] != '/')
        s[n++] = '/';
    memcpy(s + n, b, lb + 1);
    return s;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcasecmp(s + ls - lx, suffix);
}

static int is_image_name(const char *s)
{
    return ends_with_ci(s, ".tif") || ends_with_ci(s, ".tiff") || ends_with_ci(s, ".png") ||
           ends_with_ci(s, ".jpg") || ends_with_ci(s, ".jpeg");
}

/* A sorted list of names in a folder: want 1 files, 2 folders. Hidden names are skipped. */
typedef struct {
    int n, cap;
    char **v;
} names;

static void names_free(names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static hp_status list_dir(const char *dir, int want, names *out, hp_error *err)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot read the folder: %s", dir, strerror(errno));
    struct dirent *e;
    hp_status st = HP_OK;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *full = join(dir, e->d_name);
        if (!full) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            break;
        }
        int keep = want == 1 ? is_file(full) : is_dir(full);
        free(full);
        if (!keep)
            continue;
        if (out->n == out->cap) {
            int cap = out->cap ? out->cap * 2 : 64;
            char **v = realloc(out->v, sizeof *v * (size_t)cap);
            if (!v) {
                st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
                break;
            }
            out->v = v;
            out->cap = cap;
        }
        if (!(out->v[out->n] = strdup(e->d_name))) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            break;
        }
        out->n++;
    }
    closedir(d);
    if (st != HP_OK) {
        names_free(out);
        return st;
    }
    if (out->n > 1)
        qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return HP_OK;
}

static hp_status add_item(hp_eval_dataset *d, int *cap, char *path, char *name, const char *label,
                          int case_number, hp_error *err)
{
    if (d->n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        hp_eval_item *v = realloc(d->items, sizeof *v * (size_t)nc);
        if (!v) {
            free(path);
            free(name);
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        }
        d->items = v;
        *cap = nc;
    }
    hp_eval_item *it = &d->items[d->n++];
    it->path = path;
    it->name = name;
    it->label = label ? strdup(label) : NULL;
    it->case_number = case_number;
    if (!path || !name || (label && !it->label))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}

void hp_eval_dataset_destroy(hp_eval_dataset *d)
{
    if (!d)
        return;
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].path);
        free(d->items[i].name);
        free(d->items[i].label);
    }
    free(d->items);
    free(d->root);
    free(d);
}

int hp_eval_dataset_labelled(const hp_eval_dataset *d)
{
    for (int i = 0; i < d->n; i++)
        if (!d->items[i].label)
            return 0;
    return d->n > 0;
}

/* ---- CSV ------------------------------------------------------------------------------ */

static int blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static hp_status open_csv(const char *path, hp_eval_dataset *d, hp_error *err)
{
    hp_status st = HP_OK;
    int cap = 0;
    char *text = hp_eval_read_text(path, err);
    if (!text)
        return err ? err->code : HP_ERR_IO;
    d->kind = HP_EVAL_DATA_CSV;
    d->root = dir_of(path);
    if (!d->root) {
        free(text);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    const char *p = text;
    for (int line = 1; *p; line++) {
        char *f[3] = {0};
        int nf = hp_eval_csv_record(&p, f, 3);
        if (nf < 0) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d: unterminated or misplaced quote",
                              path, line);
        } else if (nf == 1 && f[0] && blank(f[0])) {
            /* an empty line */
        } else if (line == 1 && nf == 2 && f[0] && f[1] && !strcasecmp(f[0], "path") &&
                   !strcasecmp(f[1], "label")) {
            /* the header */
        } else if (nf != 2 || !f[0] || !f[1]) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s: row %d has %d fields; each row is path,label", path, line, nf);
        } else if (!*f[0]) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d has an empty path", path, line);
        } else if (blank(f[1])) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d (%s) has no label", path, line, f[0]);
        } else {
            for (int i = 0; i < d->n; i++)
                if (!strcmp(d->items[i].name, f[0])) {
                    st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d: %s is listed twice",
                                      path, line, f[0]);
                    break;
                }
            if (st == HP_OK) {
                char *full = f[0][0] == '/' ? strdup(f[0]) : join(d->root, f[0]);
                st = add_item(d, &cap, full, strdup(f[0]), f[1], -1, err);
                if (st == HP_OK && !is_file(full))
                    st = hp_error_set(err, HP_ERR_IO, "%s: row %d: %s is not a readable file",
                                      path, line, full);
            }
        }
        for (int i = 0; i < 3; i++)
            free(f[i]);
        if (st != HP_OK)
            break;
    }
    free(text);
    if (st == HP_OK && d->n == 0)
        st = hp_error_set(err, HP_ERR_INVALID, "%s: no rows", path);
    return st;
}

/* ---- BACH ------------------------------------------------------------------------------ */

#define BACH_TRUTH "microscopy_ground_truth.csv"

static hp_status check_bach_truth(const char *csv, hp_eval_dataset *d, hp_error *err)
{
    char *text = hp_eval_read_text(csv, err);
    if (!text)
        return err ? err->code : HP_ERR_IO;
    hp_status st = HP_OK;
    char *seen = calloc((size_t)d->n + 1, 1);
    if (!seen) {
        free(text);
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    const char *p = text;
    for (int line = 1; *p && st == HP_OK; line++) {
        char *f[3] = {0};
        int nf = hp_eval_csv_record(&p, f, 3);
        if (nf == 1 && f[0] && blank(f[0])) {
        } else if (nf != 2 || !f[0] || !f[1]) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d is not filename,label", csv, line);
        } else {
            hp_eval_class c = hp_eval_class_parse(f[1]);
            int found = -1;
            for (int i = 0; i < d->n && found < 0; i++) {
                const char *base = strrchr(d->items[i].name, '/');
                if (!strcmp(base ? base + 1 : d->items[i].name, f[0]))
                    found = i;
            }
            if (c == HP_EVAL_CLASS_NONE)
                st = hp_error_set(err, HP_ERR_INVALID, "%s: row %d: label '%s' is not a BACH class",
                                  csv, line, f[1]);
            else if (found < 0)
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "%s: row %d names %s, which is in none of the class folders",
                                  csv, line, f[0]);
            else if (hp_eval_class_parse(d->items[found].label) != c)
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "%s: row %d labels %s '%s' but the image is in the folder %s",
                                  csv, line, f[0], f[1], d->items[found].label);
            else
                seen[found] = 1;
        }
        for (int i = 0; i < 3; i++)
            free(f[i]);
    }
    for (int i = 0; i < d->n && st == HP_OK; i++)
        if (!seen[i])
            st = hp_error_set(err, HP_ERR_INVALID, "%s is not listed in %s", d->items[i].name, csv);
    free(seen);
    free(text);
    return st;
}

static hp_status open_bach(const char *photos, hp_eval_dataset *d, hp_error *err)
{
    d->kind = HP_EVAL_DATA_BACH;
    d->default_mpp = HP_EVAL_BACH_MPP;
    if (!(d->root = strdup(photos)))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    /* ImageFolder's order: class folders sorted by name. */
    const char *sorted[HP_EVAL_N_CANONICAL] = {"Benign", "InSitu", "Invasive", "Normal"};
    int cap = 0;
    for (int c = 0; c < HP_EVAL_N_CANONICAL; c++) {
        char *dir = join(photos, sorted[c]);
        if (!dir)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        if (!is_dir(dir)) {
            hp_status st = hp_error_set(err, HP_ERR_INVALID,
                                        "%s: a BACH Part A folder needs the class folders Benign, "
                                        "InSitu, Invasive and Normal; %s is missing",
                                        photos, sorted[c]);
            free(dir);
            return st;
        }
        names files;
        hp_status st = list_dir(dir, 1, &files, err);
        for (int i = 0; st == HP_OK && i < files.n; i++) {
            if (!ends_with_ci(files.v[i], ".tif")) {
                d->ignored_files++;
                continue;
            }
            char rel[1024];
            snprintf(rel, sizeof rel, "%s/%s", sorted[c], files.v[i]);
            st = add_item(d, &cap, join(dir, files.v[i]), strdup(rel), sorted[c], -1, err);
        }
        names_free(&files);
        free(dir);
        if (st != HP_OK)
            return st;
    }
    if (d->n == 0)
        return hp_error_set(err, HP_ERR_INVALID, "%s: the class folders hold no .tif images", photos);
    char *csv = join(photos, BACH_TRUTH);
    if (!csv)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = is_file(csv) ? check_bach_truth(csv, d, err) : HP_OK;
    free(csv);
    return st;
}

/* testN.tif -> N; -1 for other names. */
static int bach_test_case(const char *name)
{
    if (strncasecmp(name, "test", 4) || !isdigit((unsigned char)name[4]))
        return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    if (strcasecmp(end, ".tif") || v < 0 || v > 1000000)
        return -1;
    return (int)v;
}

static int cmp_case(const void *a, const void *b)
{
    const hp_eval_item *x = a, *y = b;
    return (x->case_number > y->case_number) - (x->case_number < y->case_number);
}

static hp_status open_bach_test(const char *dir, const names *files, hp_eval_dataset *d,
                                hp_error *err)
{
    d->kind = HP_EVAL_DATA_BACH_TEST;
    d->default_mpp = HP_EVAL_BACH_MPP;
    if (!(d->root = strdup(dir)))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    int cap = 0;
    for (int i = 0; i < files->n; i++) {
        int c = bach_test_case(files->v[i]);
        if (c < 0)
            continue;
        for (int j = 0; j < d->n; j++)
            if (d->items[j].case_number == c)
                return hp_error_set(err, HP_ERR_INVALID, "%s: %s and %s are both case %d", dir,
                                    d->items[j].name, files->v[i], c);
        hp_status st = add_item(d, &cap, join(dir, files->v[i]), strdup(files->v[i]), NULL, c, err);
        if (st != HP_OK)
            return st;
    }
    qsort(d->items, (size_t)d->n, sizeof *d->items, cmp_case);
    return HP_OK;
}

static hp_status open_folders(const char *dir, const names *sub, hp_eval_dataset *d, hp_error *err)
{
    d->kind = HP_EVAL_DATA_FOLDERS;
    if (!(d->root = strdup(dir)))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    int cap = 0;
    for (int c = 0; c < sub->n; c++) {
        char *cdir = join(dir, sub->v[c]);
        if (!cdir)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        names files;
        hp_status st = list_dir(cdir, 1, &files, err);
        for (int i = 0; st == HP_OK && i < files.n; i++) {
            if (!is_image_name(files.v[i]))
                continue;
            char rel[1024];
            snprintf(rel, sizeof rel, "%s/%s", sub->v[c], files.v[i]);
            st = add_item(d, &cap, join(cdir, files.v[i]), strdup(rel), sub->v[c], -1, err);
        }
        names_free(&files);
        free(cdir);
        if (st != HP_OK)
            return st;
    }
    if (d->n == 0)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: its class folders hold no images (.tif, .tiff, .png, .jpg, .jpeg)",
                            dir);
    return HP_OK;
}

static int has_bach_class_dir(const char *dir)
{
    for (int c = 0; c < HP_EVAL_N_CANONICAL; c++) {
        char *p = join(dir, hp_eval_class_bach_name((hp_eval_class)c));
        int yes = p && is_dir(p);
        free(p);
        if (yes)
            return 1;
    }
    return 0;
}

hp_status hp_eval_dataset_open(const char *path, hp_eval_dataset **out, hp_error *err)
{
    *out = NULL;
    hp_eval_dataset *d = calloc(1, sizeof *d);
    if (!d)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    hp_status st = HP_OK;
    char *photos = NULL;
    names files = {0}, sub = {0};
    if (is_file(path)) {
        st = open_csv(path, d, err);
        goto done;
    }
    if (!is_dir(path)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: no such file or folder", path);
        goto done;
    }
    photos = join(path, "Photos");
    if (!photos) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    int under_photos = is_dir(photos);
    const char *dir = under_photos ? photos : path;
    char *truth = join(dir, BACH_TRUTH);
    int has_truth = truth && is_file(truth);
    free(truth);
    if (has_bach_class_dir(dir) && (under_photos || has_truth)) {
        st = open_bach(dir, d, err);
        goto done;
    }
    if ((st = list_dir(dir, 1, &files, err)) != HP_OK)
        goto done;
    int tests = 0;
    for (int i = 0; i < files.n; i++)
        tests += bach_test_case(files.v[i]) >= 0;
    if (tests > 0) {
        st = open_bach_test(dir, &files, d, err);
        goto done;
    }
    if ((st = list_dir(path, 2, &sub, err)) != HP_OK)
        goto done;
    if (sub.n > 0) {
        st = open_folders(path, &sub, d, err);
        goto done;
    }
    st = hp_error_set(err, HP_ERR_INVALID,
                      "%s: not a BACH Part A folder (Photos/{Normal,Benign,InSitu,Invasive}), not "
                      "the BACH test folder (test0.tif ...), not class folders (DATA/<class>/*) "
                      "and not a CSV file of path,label rows",
                      path);
done:
    names_free(&files);
    names_free(&sub);
    free(photos);
    if (st != HP_OK) {
        hp_eval_dataset_destroy(d);
        return st;
    }
    *out = d;
    return HP_OK;
}
