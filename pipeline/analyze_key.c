#include "pipeline/analyze_key.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha256.h"
#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "pipeline/stain.h"

#define KEY_FILE_MAX (1 << 20) /* a run.json is a few hundred bytes; anything huge is not one */

/* The compared fields, in the order a difference is reported, with the words for a person. */
static const struct {
    const char *field, *words;
    int hash;    /* show the first 12 hex digits */
    int private_; /* never show the values (a case accession) */
    const char *absent; /* a run.json written before the field existed means this (NULL: none) */
} FIELDS[] = {
    {"slide_sha256", "the slide file (another slide under this slide id)", 1, 0, NULL},
    {"model_sha256", "the model", 1, 0, NULL},
    {"mpp", "--mpp", 0, 0, NULL},
    {"mask_sha256", "--mask", 1, 0, NULL},
    {"roi", "--roi", 0, 0, NULL},
    {"stain", "--stain/--stain-target", 0, 0, NULL},
    {"backend", "--backend", 0, 0, NULL},
    {"case", "--case", 0, 1, NULL},
    {"tissue_threshold", "the tissue threshold", 0, 0, NULL},
    {"region_threshold", "the region threshold", 0, 0, NULL},
    {"min_region_tiles", "the smallest region", 0, 0, NULL},
    {"smoothing_sigma_tiles", "the smoothing", 0, 0, NULL},
    {"super_resolution", "--sr", 0, 0, "off"},
};

/* --sr as the key holds it: "off", or the mode and the hashes of the models it may use, and
 * "@fp16" or "@bf16" when they run in half precision (fp32 adds nothing, so keys made before
 * --sr-precision existed still match). */
static cJSON *sr_key(const hp_analyze_options *o)
{
    if (o->sr_mode == HP_SR_OFF)
        return cJSON_CreateString("off");
    char buf[16 + 4 * 66];
    size_t used = (size_t)snprintf(buf, sizeof buf, "%s", hp_sr_mode_name(o->sr_mode));
    for (int i = 0; i < o->n_sr_models && i < 4 && used < sizeof buf; i++)
        used += (size_t)snprintf(buf + used, sizeof buf - used, "%c%.12s", i ? ',' : ':',
                                 o->sr_models[i].sha256 ? o->sr_models[i].sha256 : "?");
    hp_precision prec = o->n_sr_models > 0 ? hp_model_precision(o->sr_models[0].model) : HP_PREC_FP32;
    if (prec != HP_PREC_FP32 && used < sizeof buf)
        snprintf(buf + used, sizeof buf - used, "@%s", hp_precision_name(prec));
    return cJSON_CreateString(buf);
}

static cJSON *str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

hp_status hp_analyze_key_make(const hp_analyze_options *o, const char *slide_sha256, cJSON **key,
                              hp_error *err)
{
    *key = NULL;
    cJSON *k = cJSON_CreateObject();
    char mask_hash[65];
    hp_status st = HP_OK;
    if (!k)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    if (o->mask_path) {
        hp_error me = {0};
        if ((st = hp_sha256_file(o->mask_path, mask_hash, &me)) != HP_OK) {
            hp_error_set(err, st, "--mask: %s", me.msg);
            goto fail;
        }
    }
    cJSON_AddItemToObject(k, "slide_sha256", cJSON_CreateString(slide_sha256));
    cJSON_AddItemToObject(k, "model_sha256", str_or_null(o->model_sha256));
    cJSON_AddItemToObject(k, "mpp", o->mpp > 0 ? cJSON_CreateNumber(o->mpp) : cJSON_CreateNull());
    cJSON_AddItemToObject(k, "mask_sha256", str_or_null(o->mask_path ? mask_hash : NULL));
    if (o->roi_w > 0 && o->roi_h > 0) {
        double r[4] = {(double)o->roi_x, (double)o->roi_y, (double)o->roi_w, (double)o->roi_h};
        cJSON_AddItemToObject(k, "roi", cJSON_CreateDoubleArray(r, 4));
    } else {
        cJSON_AddItemToObject(k, "roi", cJSON_CreateNull());
    }
    if (o->stain_target) {
        char *text = NULL;
        if ((st = hp_stain_params_to_json(o->stain_target, &text, err)) != HP_OK)
            goto fail;
        cJSON *sj = cJSON_Parse(text);
        free(text);
        if (!sj) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        cJSON_AddItemToObject(k, "stain", sj);
    } else {
        cJSON_AddItemToObject(k, "stain", cJSON_CreateNull());
    }
    cJSON_AddItemToObject(k, "backend", cJSON_CreateString(o->backend_name ? o->backend_name : "cpu"));
    cJSON_AddItemToObject(k, "case", str_or_null(o->accession));
    cJSON_AddNumberToObject(k, "tissue_threshold", o->min_tissue);
    cJSON_AddNumberToObject(k, "region_threshold", o->region_threshold);
    cJSON_AddNumberToObject(k, "min_region_tiles", o->min_region_tiles);
    cJSON_AddNumberToObject(k, "smoothing_sigma_tiles", o->sigma);
    cJSON_AddItemToObject(k, "super_resolution", sr_key(o));
    for (size_t i = 0; i < sizeof FIELDS / sizeof *FIELDS; i++)
        if (!cJSON_GetObjectItemCaseSensitive(k, FIELDS[i].field)) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
    *key = k;
    return HP_OK;
fail:
    cJSON_Delete(k);
    return st;
}

hp_status hp_analyze_key_write(const char *dir, const cJSON *key, hp_error *err)
{
    cJSON *k = cJSON_Duplicate(key, 1);
    char when[HP_UTC_TIME_LEN], *text = NULL, *path = NULL;
    hp_status st = HP_ERR_NOMEM;
    if (!k)
        goto done;
    hp_utc_format(time(NULL), when);
    cJSON_AddItemToObject(k, "histoplan_version", cJSON_CreateString(HP_VERSION));
    cJSON_AddItemToObject(k, "finished_at", cJSON_CreateString(when));
    text = cJSON_Print(k);
    size_t n = strlen(dir) + sizeof HP_ANALYZE_KEY_FILE + 2;
    path = malloc(n);
    if (!text || !path)
        goto done;
    snprintf(path, n, "%s/%s", dir, HP_ANALYZE_KEY_FILE);
    st = hp_atomic_write_text(path, text, err);
done:
    if (st == HP_ERR_NOMEM)
        hp_error_set(err, st, "out of memory");
    free(text);
    free(path);
    cJSON_Delete(k);
    return st;
}

static cJSON *read_key(const char *dir)
{
    size_t n = strlen(dir) + sizeof HP_ANALYZE_KEY_FILE + 2;
    char *path = malloc(n);
    if (!path)
        return NULL;
    snprintf(path, n, "%s/%s", dir, HP_ANALYZE_KEY_FILE);
    FILE *f = fopen(path, "rb");
    free(path);
    if (!f)
        return NULL;
    char *buf = malloc(KEY_FILE_MAX + 1);
    size_t got = buf ? fread(buf, 1, KEY_FILE_MAX, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[got] = '\0';
    cJSON *k = got < KEY_FILE_MAX ? cJSON_Parse(buf) : NULL;
    free(buf);
    if (k && !cJSON_IsObject(k)) {
        cJSON_Delete(k);
        k = NULL;
    }
    return k;
}

/* A value as a person reads it in a message. */
static void value_words(const cJSON *v, int hash, char *out, size_t cap)
{
    if (!v || cJSON_IsNull(v)) {
        snprintf(out, cap, "none");
    } else if (cJSON_IsString(v)) {
        snprintf(out, cap, hash ? "%.12s" : "%s", v->valuestring);
    } else if (cJSON_IsObject(v)) {
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(v, "method");
        snprintf(out, cap, "%s", cJSON_IsString(m) ? m->valuestring : "set");
    } else {
        char *t = cJSON_PrintUnformatted(v);
        snprintf(out, cap, "%s", t ? t : "?");
        free(t);
    }
}

int hp_analyze_key_diff(const char *dir, const cJSON *key, char *diff, size_t cap, char *finished_at)
{
    if (finished_at)
        finished_at[0] = '\0';
    diff[0] = '\0';
    cJSON *old = read_key(dir);
    if (!old) {
        snprintf(diff, cap, "it has no readable %s saying what it was made from (an earlier histoplan made it)",
                 HP_ANALYZE_KEY_FILE);
        return -1;
    }
    const cJSON *fin = cJSON_GetObjectItemCaseSensitive(old, "finished_at");
    if (finished_at && cJSON_IsString(fin) && strlen(fin->valuestring) < HP_UTC_TIME_LEN)
        snprintf(finished_at, HP_UTC_TIME_LEN, "%s", fin->valuestring);
    size_t used = 0;
    int differs = 0;
    for (size_t i = 0; i < sizeof FIELDS / sizeof *FIELDS; i++) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(old, FIELDS[i].field);
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(key, FIELDS[i].field);
        if (!a && FIELDS[i].absent && cJSON_IsString(b) && !strcmp(b->valuestring, FIELDS[i].absent))
            continue;
        if (a && b && cJSON_Compare(a, b, 1))
            continue;
        differs = 1;
        char was[96], now[96];
        value_words(a, FIELDS[i].hash, was, sizeof was);
        value_words(b, FIELDS[i].hash, now, sizeof now);
        int w;
        if (FIELDS[i].private_)
            w = snprintf(diff + used, cap - used, "%s%s", used ? ", " : "", FIELDS[i].words);
        else if (!strcmp(was, now))
            w = snprintf(diff + used, cap - used, "%s%s (another %s)", used ? ", " : "", FIELDS[i].words, now);
        else
            w = snprintf(diff + used, cap - used, "%s%s (%s there, %s now)", used ? ", " : "", FIELDS[i].words,
                         was, now);
        if (w < 0 || (size_t)w >= cap - used) {
            used = cap - 1;
            break;
        }
        used += (size_t)w;
    }
    cJSON_Delete(old);
    return differs;
}
