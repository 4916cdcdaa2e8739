/* Stored stain parameters (pipeline/stain.h): validation, and JSON through cJSON. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "io/atomic_file.h"
#include "pipeline/stain.h"

/* Stored files are a few hundred bytes; anything much larger is not a parameter file. */
#define PARAMS_MAX_BYTES (1 << 20)

hp_status hp_stain_params_check(const hp_stain_params *p, hp_error *err)
{
    if (!p)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: NULL");
    if (p->method == HP_STAIN_MACENKO) {
        double n[2];
        for (int k = 0; k < 2; k++) {
            n[k] = 0;
            for (int c = 0; c < 3; c++) {
                if (!isfinite(p->stain[k][c]))
                    return hp_error_set(err, HP_ERR_INVALID,
                                        "stain parameters: stain_matrix[%d][%d] is not a finite number", k, c);
                n[k] += (double)p->stain[k][c] * p->stain[k][c];
            }
            n[k] = sqrt(n[k]);
            if (!(n[k] > 1e-6))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "stain parameters: stain_matrix[%d] (%s) is a zero vector", k,
                                    k ? "eosin" : "haematoxylin");
            if (!isfinite(p->max_conc[k]) || !(p->max_conc[k] > 0))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "stain parameters: max_conc[%d] must be a positive number (got %g)", k,
                                    (double)p->max_conc[k]);
        }
        double dot = 0;
        for (int c = 0; c < 3; c++)
            dot += (double)p->stain[0][c] * p->stain[1][c];
        if (fabs(dot) / (n[0] * n[1]) > cos(M_PI / 180.0))
            return hp_error_set(err, HP_ERR_INVALID,
                                "stain parameters: the stain_matrix rows are parallel (under 1 degree apart)");
        return HP_OK;
    }
    if (p->method == HP_STAIN_REINHARD) {
        for (int c = 0; c < 3; c++) {
            if (!isfinite(p->mean[c]))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "stain parameters: mean[%d] is not a finite number", c);
            if (!isfinite(p->std[c]) || !(p->std[c] > 0))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "stain parameters: std[%d] must be a positive number (got %g)", c,
                                    (double)p->std[c]);
        }
        return HP_OK;
    }
    return hp_error_set(err, HP_ERR_INVALID, "stain parameters: unknown method %d", (int)p->method);
}

/* Reads a JSON array of exactly n numbers into out. */
static hp_status get_numbers(const cJSON *obj, const char *name, float *out, int n, hp_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!a)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: missing \"%s\"", name);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: \"%s\" must be an array of %d numbers",
                            name, n);
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 1e30)
            return hp_error_set(err, HP_ERR_INVALID, "stain parameters: \"%s\"[%d] is not a finite number",
                                name, i);
        out[i] = (float)x->valuedouble;
    }
    return HP_OK;
}

hp_status hp_stain_params_from_json(const char *text, hp_stain_params *out, hp_error *err)
{
    if (!text || !out)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: NULL argument");
    hp_stain_params p;
    memset(&p, 0, sizeof p);
    hp_status st = HP_OK;
    const char *end = NULL; /* per call: cJSON_GetErrorPtr is a global, not thread-safe */
    cJSON *root = cJSON_ParseWithOpts(text, &end, 0);
    if (!root)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: not valid JSON (near byte %ld)",
                            (long)(end ? end - text : 0));
    char fault[512];
    if (hp_json_check(text, end && end >= text ? (size_t)(end - text) : strlen(text), root, fault, sizeof fault)) {
        st = hp_error_set(err, HP_ERR_INVALID, "stain parameters: %s", fault);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        st = hp_error_set(err, HP_ERR_INVALID, "stain parameters: the JSON is not an object");
        goto fail;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "method");
    if (!m) {
        st = hp_error_set(err, HP_ERR_INVALID, "stain parameters: missing \"method\"");
        goto fail;
    }
    if (!cJSON_IsString(m)) {
        st = hp_error_set(err, HP_ERR_INVALID, "stain parameters: \"method\" must be a string");
        goto fail;
    }
    if ((st = hp_stain_method_parse(m->valuestring, &p.method, NULL)) != HP_OK) {
        hp_error_set(err, st, "stain parameters: \"method\" is '%.64s' (macenko or reinhard)",
                     m->valuestring);
        goto fail;
    }
    if (p.method == HP_STAIN_MACENKO) {
        const cJSON *sm = cJSON_GetObjectItemCaseSensitive(root, "stain_matrix");
        if (!sm) {
            st = hp_error_set(err, HP_ERR_INVALID, "stain parameters: missing \"stain_matrix\"");
            goto fail;
        }
        if (!cJSON_IsArray(sm) || cJSON_GetArraySize(sm) != 2) {
            st = hp_error_set(err, HP_ERR_INVALID,
                              "stain parameters: \"stain_matrix\" must be 2 rows (H, E) of 3 numbers (R, G, B)");
            goto fail;
        }
        for (int k = 0; k < 2; k++) {
            const cJSON *row = cJSON_GetArrayItem(sm, k);
            if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != 3) {
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "stain parameters: \"stain_matrix\"[%d] must be an array of 3 numbers", k);
                goto fail;
            }
            for (int c = 0; c < 3; c++) {
                const cJSON *x = cJSON_GetArrayItem(row, c);
                if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) || fabs(x->valuedouble) > 1e30) {
                    st = hp_error_set(err, HP_ERR_INVALID,
                                      "stain parameters: \"stain_matrix\"[%d][%d] is not a finite number", k, c);
                    goto fail;
                }
                p.stain[k][c] = (float)x->valuedouble;
            }
        }
        if ((st = get_numbers(root, "max_conc", p.max_conc, 2, err)) != HP_OK)
            goto fail;
    } else {
        if ((st = get_numbers(root, "mean", p.mean, 3, err)) != HP_OK ||
            (st = get_numbers(root, "std", p.std, 3, err)) != HP_OK)
            goto fail;
    }
    if ((st = hp_stain_params_check(&p, err)) != HP_OK)
        goto fail;
    *out = p;
fail:
    cJSON_Delete(root);
    return st;
}

static cJSON *number_array(const float *x, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) {
        cJSON *v = cJSON_CreateNumber((double)x[i]);
        if (!v || !cJSON_AddItemToArray(a, v)) {
            cJSON_Delete(v);
            cJSON_Delete(a);
            return NULL;
        }
    }
    return a;
}

hp_status hp_stain_params_to_json(const hp_stain_params *p, char **text, hp_error *err)
{
    if (!text)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: NULL argument");
    *text = NULL;
    hp_status st = hp_stain_params_check(p, err);
    if (st != HP_OK)
        return st;
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "method", hp_stain_method_name(p->method));
    if (ok && p->method == HP_STAIN_MACENKO) {
        cJSON *sm = cJSON_AddArrayToObject(root, "stain_matrix");
        ok = sm != NULL;
        for (int k = 0; ok && k < 2; k++) {
            cJSON *row = number_array(p->stain[k], 3);
            ok = row && cJSON_AddItemToArray(sm, row);
            if (!ok)
                cJSON_Delete(row);
        }
        cJSON *mc = ok ? number_array(p->max_conc, 2) : NULL;
        ok = ok && mc && cJSON_AddItemToObject(root, "max_conc", mc);
        if (!ok)
            cJSON_Delete(mc);
    } else if (ok) {
        cJSON *mean = number_array(p->mean, 3);
        ok = mean && cJSON_AddItemToObject(root, "mean", mean);
        if (!ok)
            cJSON_Delete(mean);
        cJSON *sd = ok ? number_array(p->std, 3) : NULL;
        ok = ok && sd && cJSON_AddItemToObject(root, "std", sd);
        if (!ok)
            cJSON_Delete(sd);
    }
    /* cJSON prints doubles with up to 17 digits: a float survives the round trip exactly */
    char *s = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return hp_error_set(err, HP_ERR_NOMEM, "stain parameters: out of memory formatting JSON");
    *text = s;
    return HP_OK;
}

hp_status hp_stain_params_read(const char *path, hp_stain_params *out, hp_error *err)
{
    if (!path || !out)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(PARAMS_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t n = fread(buf, 1, PARAMS_MAX_BYTES + 1, f);
    int rerr = ferror(f);
    fclose(f);
    hp_status st = HP_OK;
    if (rerr) {
        st = hp_error_set(err, HP_ERR_IO, "%s: read error", path);
    } else if (n > PARAMS_MAX_BYTES) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: larger than %d bytes: not a stain parameter file", path,
                          PARAMS_MAX_BYTES);
    } else {
        buf[n] = 0;
        hp_error e;
        hp_error_clear(&e);
        st = hp_stain_params_from_json(buf, out, &e);
        if (st != HP_OK)
            hp_error_set(err, st, "%s: %s", path, e.msg);
    }
    free(buf);
    return st;
}

hp_status hp_stain_params_write(const char *path, const hp_stain_params *p, hp_error *err)
{
    if (!path)
        return hp_error_set(err, HP_ERR_INVALID, "stain parameters: NULL path");
    char *text = NULL;
    hp_status st = hp_stain_params_to_json(p, &text, err);
    if (st != HP_OK)
        return st;
    st = hp_atomic_write_text(path, text, err);
    free(text);
    return st;
}
