#include "pipeline/batch_summary.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/file_lock.h"
#include "common/sha256.h"
#include "io/atomic_file.h"

#define SUMMARY_MAX (256L << 20) /* far above any real batch; a larger file is not ours */
#define N_STATUS 5

static const char *const STATUS_NAMES[N_STATUS] = {"done", "skipped", "failed", "interrupted", "not-started"};
static const char *const COUNT_NAMES[N_STATUS] = {"done", "skipped", "failed", "interrupted", "not_started"};

const char *hp_batch_status_name(hp_batch_status s)
{
    return (unsigned)s < N_STATUS ? STATUS_NAMES[s] : "failed";
}

void hp_batch_entry_init(hp_batch_entry *e, const char *path)
{
    memset(e, 0, sizeof *e);
    e->status = HP_BATCH_NOT_STARTED;
    char abs[PATH_MAX * 2], cwd[PATH_MAX];
    if (realpath(path, abs) == NULL) {
        if (path[0] == '/' || !getcwd(cwd, sizeof cwd))
            snprintf(abs, sizeof abs, "%s", path);
        else
            snprintf(abs, sizeof abs, "%s/%s", cwd, path);
    }
    if (hp_sha256_hex(abs, strlen(abs), e->input_sha256) != HP_OK)
        e->input_sha256[0] = '\0';
}

void hp_batch_entry_free(hp_batch_entry *e)
{
    if (!e)
        return;
    free(e->warning);
    e->warning = NULL;
}

/* A byte that can be part of a path written into a message. */
static int path_byte(char c)
{
    return c != ' ' && c != '\'' && c != '"' && c != ':' && c != '(' && c != ')' && c != ',' && c != '\n';
}

void hp_batch_entry_set_message(hp_batch_entry *e, const char *msg, const char *path)
{
    const size_t cap = sizeof e->message;
    const char *base = strrchr(path, '/');
    base = base && base[1] ? base + 1 : path;
    const char *needles[2] = {path, base};
    size_t nl[2] = {strlen(path), strlen(base)};
    static const char rep[] = "<slide>";
    size_t o = 0, n = strlen(msg);
    for (size_t i = 0; i < n;) {
        size_t skip = 0;
        for (int w = 0; w < 2 && !skip; w++) {
            if (!nl[w])
                continue;
            size_t rest = n - i;
            /* A message cut short at HP_ERROR_MSG_MAX (a long path) ends inside the path, where a
             * whole-path match would miss it: a tail that starts the path counts too. */
            if (rest >= nl[w] ? !memcmp(msg + i, needles[w], nl[w])
                              : (!memcmp(msg + i, needles[w], rest) && (i == 0 || !path_byte(msg[i - 1]))))
                skip = rest >= nl[w] ? nl[w] : rest;
        }
        if (skip) {
            for (size_t k = 0; rep[k] && o + 1 < cap; k++)
                e->message[o++] = rep[k];
            i += skip;
        } else {
            if (o + 1 < cap)
                e->message[o++] = msg[i];
            i++;
        }
    }
    e->message[o] = '\0';
}

static cJSON *str_or_null(const char *s)
{
    return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

cJSON *hp_batch_entry_json(const hp_batch_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    int has_output = e->slide_id[0] && (e->status == HP_BATCH_DONE || e->status == HP_BATCH_SKIPPED);
    int ok = cJSON_AddItemToObject(o, "input_sha256", cJSON_CreateString(e->input_sha256)) &&
             cJSON_AddItemToObject(o, "slide_id", str_or_null(e->slide_id)) &&
             cJSON_AddItemToObject(o, "output", str_or_null(has_output ? e->slide_id : NULL)) &&
             cJSON_AddItemToObject(o, "status", cJSON_CreateString(hp_batch_status_name(e->status))) &&
             cJSON_AddItemToObject(o, "error", str_or_null(hp_analyze_failure_name(e->error))) &&
             cJSON_AddItemToObject(o, "message", cJSON_CreateString(e->message)) &&
             cJSON_AddItemToObject(o, "duration_s", cJSON_CreateNumber(e->duration_s >= 0 ? e->duration_s : 0)) &&
             cJSON_AddItemToObject(o, "finished_at", str_or_null(e->finished_at)) &&
             cJSON_AddItemToObject(o, "warning", str_or_null(e->warning));
    /* Only sharded runs add it, so the entries of other runs keep their form. */
    if (ok && e->shard[0])
        ok = cJSON_AddItemToObject(o, "shard", cJSON_CreateString(e->shard)) != 0;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* The results of the summary at `path` when it is one of this version, else an empty array. */
static cJSON *read_results(const char *path)
{
    cJSON *results = NULL;
    FILE *f = fopen(path, "rb");
    if (f) {
        char *buf = NULL;
        long n = -1;
        if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < SUMMARY_MAX && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            cJSON *doc = cJSON_Parse(buf);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "schema_version");
            cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "results");
            if (cJSON_IsNumber(v) && v->valueint == HP_BATCH_SUMMARY_VERSION && cJSON_IsArray(r))
                results = cJSON_DetachItemViaPointer(doc, r);
            cJSON_Delete(doc);
        }
        free(buf);
        fclose(f);
    }
    return results ? results : cJSON_CreateArray();
}

static const char *str_field(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* Whether `e` replaces the entry `old` of the same input. */
static int replaces(const hp_batch_entry *e, const cJSON *old)
{
    if (e->status == HP_BATCH_NOT_STARTED)
        return 0;
    if (e->status == HP_BATCH_SKIPPED && !strcmp(str_field(old, "status"), "done") &&
        !strcmp(str_field(old, "slide_id"), e->slide_id))
        return 0;
    return 1;
}

/* Merges `e` into `results`; *changed counts the entries added or replaced. */
static hp_status merge_into(cJSON *results, const hp_batch_entry *e, int n, int *changed)
{
    *changed = 0;
    for (int i = 0; i < n; i++) {
        cJSON *old = NULL, *it;
        cJSON_ArrayForEach(it, results)
        {
            if (!strcmp(str_field(it, "input_sha256"), e[i].input_sha256)) {
                old = it;
                break;
            }
        }
        if (old && !replaces(&e[i], old))
            continue;
        cJSON *item = hp_batch_entry_json(&e[i]);
        if (!item)
            return HP_ERR_NOMEM;
        if (old ? !cJSON_ReplaceItemViaPointer(results, old, item) : !cJSON_AddItemToArray(results, item)) {
            cJSON_Delete(item);
            return HP_ERR_NOMEM;
        }
        (*changed)++;
    }
    return HP_OK;
}

cJSON *hp_batch_summary_load(const char *out_dir, hp_error *err)
{
    char *path = join(out_dir, HP_BATCH_SUMMARY_FILE);
    cJSON *results = NULL;
    if (!path) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (access(path, F_OK) != 0) {
        results = cJSON_CreateArray();
    } else {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        long n = -1;
        if (f && fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < SUMMARY_MAX && fseek(f, 0, SEEK_SET) == 0 &&
            (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
            cJSON *doc = cJSON_Parse(buf);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "schema_version");
            cJSON *r = cJSON_GetObjectItemCaseSensitive(doc, "results");
            if (cJSON_IsNumber(v) && v->valueint == HP_BATCH_SUMMARY_VERSION && cJSON_IsArray(r))
                results = cJSON_DetachItemViaPointer(doc, r);
            cJSON_Delete(doc);
        }
        if (f)
            fclose(f);
        free(buf);
        if (!results)
            hp_error_set(err, HP_ERR_INVALID, "%s cannot be read or is not a batch summary of version %d", path,
                         HP_BATCH_SUMMARY_VERSION);
    }
    free(path);
    return results;
}

hp_status hp_batch_summary_merge(const char *out_dir, const hp_batch_entry *e, int n, int *totals, hp_error *err)
{
    char *path = join(out_dir, HP_BATCH_SUMMARY_FILE), *lock_path = join(out_dir, "batch-summary.lock");
    cJSON *doc = NULL, *results = NULL;
    char *text = NULL;
    hp_file_lock lock = {.fd = -1};
    int busy = 0, changed = 0, counts[N_STATUS] = {0};
    hp_status st = HP_ERR_NOMEM;
    if (!path || !lock_path)
        goto done;
    /* Held only while reading, merging and writing; a signal must not skip the final write. */
    if ((st = hp_file_lock_take(lock_path, 1, NULL, &lock, &busy, err)) != HP_OK)
        goto done;
    st = HP_ERR_NOMEM;
    results = read_results(path);
    if (!results || merge_into(results, e, n, &changed) != HP_OK)
        goto done;
    const cJSON *it;
    cJSON_ArrayForEach(it, results)
    {
        for (int k = 0; k < N_STATUS; k++)
            if (!strcmp(str_field(it, "status"), STATUS_NAMES[k]))
                counts[k]++;
    }
    char when[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), when);
    if (!(doc = cJSON_CreateObject()) || !cJSON_AddNumberToObject(doc, "schema_version", HP_BATCH_SUMMARY_VERSION) ||
        !cJSON_AddStringToObject(doc, "updated_at", when) ||
        !cJSON_AddNumberToObject(doc, "slides", cJSON_GetArraySize(results)))
        goto done;
    for (int k = 0; k < N_STATUS; k++)
        if (!cJSON_AddNumberToObject(doc, COUNT_NAMES[k], counts[k]))
            goto done;
    if (!cJSON_AddItemToObject(doc, "results", results))
        goto done;
    results = NULL;
    /* A rerun that only skipped completed slides leaves the file (and its mtime) as it was, so
     * that a resumed batch touches nothing in a finished folder. */
    if (changed == 0 && access(path, F_OK) == 0)
        st = HP_OK;
    else if (!(text = cJSON_Print(doc)))
        goto done;
    else
        st = hp_atomic_write_text(path, text, err);
    if (st == HP_OK && totals)
        memcpy(totals, counts, sizeof counts);
done:
    if (st == HP_ERR_NOMEM)
        hp_error_set(err, st, "out of memory");
    hp_file_lock_release(&lock);
    cJSON_Delete(results);
    cJSON_Delete(doc);
    free(text);
    free(path);
    free(lock_path);
    return st;
}
