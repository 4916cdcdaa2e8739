/* The draft's build record: see build_record.h. */
#include "report/build_record.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "common/sha256.h"
#include "report/canonical_json.h"
#include "report/json_file.h"
#include "report/signature.h"

static const char *const draft_files[] = {"report.json", "report.html", "report.fhir.json"};

hp_status hp_report_digest_file(const char *dir, const char *rel, cJSON *files, hp_error *err)
{
    char path[PATH_MAX], hex[65];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    hp_status st = hp_sha256_file(path, hex, err);
    if (st)
        return st;
    if (!cJSON_AddStringToObject(files, rel, hex))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}

/* Names in images/ are plain file names the report writer made; anything else is not ours. */
static int plain_name(const char *s)
{
    if (!s[0] || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '-' ||
              *s == '_' || *s == '.'))
            return 0;
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir/images (without . and ..), sorted; *n = -1 with err set on failure. */
static char **list_images(const char *dir, int *n, hp_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/images", dir);
    *n = 0;
    DIR *d = opendir(path);
    if (!d) {
        if (errno != ENOENT) {
            hp_error_set(err, HP_ERR_IO, "%s: %s", path, strerror(errno));
            *n = -1;
        }
        return NULL;
    }
    char **names = NULL;
    int cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **grown = realloc(names, (size_t)cap * sizeof *names);
            if (!grown)
                goto nomem;
            names = grown;
        }
        if (!(names[*n] = strdup(e->d_name)))
            goto nomem;
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(names, (size_t)*n, sizeof *names, cmp_names);
    return names;
nomem:
    closedir(d);
    for (int i = 0; i < *n; i++)
        free(names[i]);
    free(names);
    hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    *n = -1;
    return NULL;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

hp_status hp_report_digest_images(const char *dir, cJSON *files, hp_error *err)
{
    int n = 0;
    char **names = list_images(dir, &n, err);
    if (n < 0)
        return err->code;
    hp_status st = HP_OK;
    for (int i = 0; i < n && !st; i++) {
        char rel[NAME_MAX + 8], path[PATH_MAX];
        struct stat sb;
        snprintf(rel, sizeof rel, "images/%s", names[i]);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (!plain_name(names[i]) || lstat(path, &sb) || !S_ISREG(sb.st_mode))
            st = hp_error_set(err, HP_ERR_INVALID, "%s: not a plain image file of the report", path);
        else
            st = hp_report_digest_file(dir, rel, files, err);
    }
    free_names(names, n);
    return st;
}

hp_status hp_build_record_write(const char *dir, const cJSON *report, const char *built_at, char sha_hex[65],
                                hp_error *err)
{
    hp_status st = HP_OK;
    char *text = NULL, path[PATH_MAX];
    cJSON *rec = cJSON_CreateObject();
    cJSON *files = rec ? cJSON_AddObjectToObject(rec, "files") : NULL;
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(report, "report_id"));
    if (!files) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    cJSON_AddStringToObject(rec, "format", HP_BUILD_RECORD_FORMAT);
    cJSON_AddStringToObject(rec, "report_id", id ? id : "");
    cJSON_AddStringToObject(rec, "built_at", built_at);
    for (size_t i = 0; i < sizeof draft_files / sizeof *draft_files && !st; i++)
        st = hp_report_digest_file(dir, draft_files[i], files, err);
    if (st || (st = hp_report_digest_images(dir, files, err)))
        goto fail;
    size_t len = 0;
    if (!(text = hp_json_canonicalize(rec, &len, err))) {
        st = err->code ? err->code : HP_ERR_INVALID;
        goto fail;
    }
    snprintf(path, sizeof path, "%s/build.json", dir);
    if ((st = hp_atomic_write_text(path, text, err)))
        goto fail;
    st = hp_sha256_file(path, sha_hex, err);
fail:
    free(text);
    cJSON_Delete(rec);
    return st;
}

/* A name a build record may hold: one of the three renderings or images/NAME. */
static int recordable(const char *rel)
{
    for (size_t i = 0; i < sizeof draft_files / sizeof *draft_files; i++)
        if (!strcmp(rel, draft_files[i]))
            return 1;
    return !strncmp(rel, "images/", 7) && plain_name(rel + 7);
}

int hp_build_record_check(const char *dir, const char *recorded_sha, hp_check_list *c)
{
    int before = c->failures;
    char path[PATH_MAX], hex[65];
    cJSON *rec = NULL;
    hp_error e = {0};
    snprintf(path, sizeof path, "%s/build.json", dir);
    if (hp_sha256_file(path, hex, &e)) {
        hp_check_fail(c, "build.json: missing or unreadable: the draft has no build record (built by an older "
                         "histoplan, or removed); rebuild it with `histoplan report build --overwrite`");
        return c->failures - before;
    }
    if (!recorded_sha)
        hp_check_fail(c, "audit.jsonl: records no build record for the draft (its build event was removed, or "
                         "the report was built by an older histoplan)");
    else if (strcmp(hex, recorded_sha))
        hp_check_fail(c, "build.json: differs from the build record in audit.jsonl (SHA-256 %.16s..., recorded "
                         "%.16s...): changed after report build",
                      hex, recorded_sha);
    if (hp_json_file_read(path, "build record", &rec, NULL, &e)) {
        hp_check_fail(c, "build.json: %s", e.msg);
        return c->failures - before;
    }
    const cJSON *files = cJSON_GetObjectItemCaseSensitive(rec, "files");
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(rec, "format");
    if (!cJSON_IsObject(files) || !cJSON_IsString(fmt) || strcmp(fmt->valuestring, HP_BUILD_RECORD_FORMAT)) {
        hp_check_fail(c, "build.json: not a build record (format %s with a files object expected)",
                      HP_BUILD_RECORD_FORMAT);
        goto done;
    }
    for (size_t i = 0; i < sizeof draft_files / sizeof *draft_files; i++)
        if (!cJSON_GetObjectItemCaseSensitive(files, draft_files[i]))
            hp_check_fail(c, "build.json: records no SHA-256 for %s", draft_files[i]);
    for (const cJSON *f = files->child; f; f = f->next) {
        if (!recordable(f->string) || !cJSON_IsString(f)) {
            hp_check_fail(c, "build.json: names \"%.100s\", which is not a file of a report", f->string);
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, f->string);
        hp_error fe = {0};
        if (hp_sha256_file(path, hex, &fe))
            hp_check_fail(c, "%s: missing or unreadable (report build wrote it)", f->string);
        else if (strcmp(hex, f->valuestring))
            hp_check_fail(c, "%s: differs from what report build wrote (SHA-256 %.16s..., recorded %.16s...): "
                             "changed after it was built",
                          f->string, hex, f->valuestring);
    }
    int n = 0;
    char **names = list_images(dir, &n, &e);
    if (n < 0)
        hp_check_fail(c, "images/: %s", e.msg);
    for (int i = 0; i < n; i++) {
        char rel[NAME_MAX + 8];
        snprintf(rel, sizeof rel, "images/%s", names[i]);
        if (!cJSON_GetObjectItemCaseSensitive(files, rel))
            hp_check_fail(c, "%.200s: not part of the report (report build did not write it)", rel);
    }
    free_names(names, n);
done:
    cJSON_Delete(rec);
    return c->failures - before;
}
