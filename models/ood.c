/* The out-of-domain detector (models/ood.h). */
#include "models/ood.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/json_check.h"
#include "io/read_file.h"

/* A 2048-feature detector (densenet121) is ~4M numbers of text; far above that is not one. */
#define OOD_MAX_BYTES (128L << 20)
#define OOD_MAX_DIM 4096

struct hp_ood {
    char *feature;
    int dim;
    double threshold;
    double *mean;      /* dim */
    double *precision; /* dim x dim, row-major */
};

void hp_ood_destroy(hp_ood *d)
{
    if (!d)
        return;
    free(d->feature);
    free(d->mean);
    free(d->precision);
    free(d);
}

const char *hp_ood_feature(const hp_ood *d) { return d->feature; }
int hp_ood_dim(const hp_ood *d) { return d->dim; }
double hp_ood_threshold(const hp_ood *d) { return d->threshold; }

static hp_status numbers(const char *path, const cJSON *root, const char *key, size_t n,
                         double **out, hp_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsArray(a) || (size_t)cJSON_GetArraySize(a) != n)
        return hp_error_set(err, HP_ERR_INVALID, "%s: \"%s\" must be an array of %zu numbers", path,
                            key, n);
    if (!(*out = malloc(sizeof(double) * n)))
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    size_t i = 0;
    for (const cJSON *x = a->child; x; x = x->next, i++) {
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return hp_error_set(err, HP_ERR_INVALID, "%s: \"%s[%zu]\" must be a finite number",
                                path, key, i);
        (*out)[i] = x->valuedouble;
    }
    return HP_OK;
}

hp_ood *hp_ood_load(const char *path, hp_error *err)
{
    size_t len = 0;
    cJSON *root = NULL;
    hp_ood *d = calloc(1, sizeof *d);
    char *text = NULL;
    if (!d) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (hp_read_file(path, "the out-of-domain detector", OOD_MAX_BYTES, HP_READ_NONEMPTY, &text, &len, err))
        goto fail;
    root = cJSON_ParseWithLength(text, len + 1);
    char fault[512];
    if (!root || hp_json_check(text, len, root, fault, sizeof fault)) {
        hp_error_set(err, HP_ERR_INVALID, "%s: the out-of-domain detector is not valid JSON%s%s",
                     path, root ? ": " : "", root ? fault : "");
        goto fail;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(root, "method");
    const cJSON *feat = cJSON_GetObjectItemCaseSensitive(root, "feature");
    const cJSON *dim = cJSON_GetObjectItemCaseSensitive(root, "dim");
    const cJSON *thr = cJSON_GetObjectItemCaseSensitive(root, "threshold");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "histoplan-ood/1")) {
        hp_error_set(err, HP_ERR_INVALID, "%s: \"format\" must be \"histoplan-ood/1\"", path);
        goto fail;
    }
    if (!cJSON_IsString(method) || strcmp(method->valuestring, "mahalanobis")) {
        hp_error_set(err, HP_ERR_INVALID, "%s: \"method\" must be \"mahalanobis\"", path);
        goto fail;
    }
    if (!cJSON_IsString(feat) || !feat->valuestring[0]) {
        hp_error_set(err, HP_ERR_INVALID, "%s: \"feature\" must name the ONNX value scored", path);
        goto fail;
    }
    if (!cJSON_IsNumber(dim) || dim->valuedouble != floor(dim->valuedouble) ||
        dim->valuedouble < 1 || dim->valuedouble > OOD_MAX_DIM) {
        hp_error_set(err, HP_ERR_INVALID, "%s: \"dim\" must be an integer 1..%d", path, OOD_MAX_DIM);
        goto fail;
    }
    if (!cJSON_IsNumber(thr) || !isfinite(thr->valuedouble) || thr->valuedouble <= 0) {
        hp_error_set(err, HP_ERR_INVALID, "%s: \"threshold\" must be a positive number", path);
        goto fail;
    }
    d->dim = (int)dim->valuedouble;
    d->threshold = thr->valuedouble;
    if (!(d->feature = strdup(feat->valuestring))) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (numbers(path, root, "mean", (size_t)d->dim, &d->mean, err) ||
        numbers(path, root, "precision", (size_t)d->dim * (size_t)d->dim, &d->precision, err))
        goto fail;
    cJSON_Delete(root);
    free(text);
    return d;
fail:
    cJSON_Delete(root);
    free(text);
    hp_ood_destroy(d);
    return NULL;
}

double hp_ood_score(const hp_ood *d, const float *features)
{
    int n = d->dim;
    double z[OOD_MAX_DIM];
    for (int i = 0; i < n; i++) {
        if (!isfinite(features[i]))
            return NAN;
        z[i] = (double)features[i] - d->mean[i];
    }
    double s = 0;
    for (int i = 0; i < n; i++) {
        const double *row = d->precision + (size_t)i * n;
        double r = 0;
        for (int j = 0; j < n; j++)
            r += row[j] * z[j];
        s += z[i] * r;
    }
    return s;
}
