/* The model card's domain of validity, out-of-domain detector and calibration ("domain",
 * "ood_detector", "calibration"; schemas/model-card.schema.json).
 *
 * These decide whether a result may be shown at all, so they are read as strictly as the
 * normalization: a detector file that is not the one the card describes (hash mismatch) is
 * refused, because a swapped detector would silently let any slide pass as in domain. */
#include "common/sha256.h"
#include "models/card_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_s(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

static hp_status only_keys(const char *path, const cJSON *obj, const char *field,
                           const char *const *keys, size_t n, hp_error *err)
{
    for (const cJSON *k = obj->child; k; k = k->next) {
        size_t i = 0;
        while (i < n && strcmp(k->string, keys[i]))
            i++;
        if (i == n)
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s.%s\" is unknown", path, field,
                                k->string);
    }
    return HP_OK;
}

static hp_status text_of(const char *path, const cJSON *obj, const char *field, const char *key,
                         int required, char **out, hp_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it && !required)
        return HP_OK;
    if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0])
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s.%s\" must be a non-empty string",
                            path, field, key);
    if (out && !(*out = dup_s(it->valuestring)))
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    return HP_OK;
}

static hp_status number_of(const char *path, const cJSON *obj, const char *field, const char *key,
                           double lo, double hi, double *out, hp_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble < lo ||
        it->valuedouble > hi)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s.%s\" must be a number in %g..%g",
                            path, field, key, lo, hi);
    *out = it->valuedouble;
    return HP_OK;
}

static hp_status parse_domain(const char *path, const cJSON *d, hp_card *card, hp_error *err)
{
    static const char *const keys[] = {"tissue", "stain", "mpp_range", "note"};
    if (!cJSON_IsObject(d))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"domain\" must be an object {tissue, stain, mpp_range}", path);
    hp_status st;
    if ((st = only_keys(path, d, "domain", keys, 4, err)) ||
        (st = text_of(path, d, "domain", "tissue", 1, &card->domain_tissue, err)) ||
        (st = text_of(path, d, "domain", "stain", 1, &card->domain_stain, err)) ||
        (st = text_of(path, d, "domain", "note", 0, NULL, err)))
        return st;
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(d, "mpp_range");
    if (!cJSON_IsArray(r) || cJSON_GetArraySize(r) != 2 || !cJSON_IsNumber(r->child) ||
        !cJSON_IsNumber(r->child->next))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"domain.mpp_range\" must be [min, max] in microns per pixel",
                            path);
    double lo = r->child->valuedouble, hi = r->child->next->valuedouble;
    if (!(lo >= 0.05 && hi <= 20 && lo <= hi))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"domain.mpp_range\" is [%g, %g]; need 0.05 <= min <= max <= 20",
                            path, lo, hi);
    card->mpp_min = lo;
    card->mpp_max = hi;
    return HP_OK;
}

/* "<folder of the card>/<file>"; the file must be a plain name beside the card, so a card cannot
 * point the detector at some other place on the machine. */
static hp_status beside(const char *card_path, const char *file, char **out, hp_error *err)
{
    if (strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, ".."))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"ood_detector.file\" must be a file name beside the card, "
                            "not a path (\"%s\")",
                            card_path, file);
    const char *slash = strrchr(card_path, '/');
    size_t dn = slash ? (size_t)(slash - card_path) + 1 : 0;
    char *p = malloc(dn + strlen(file) + 1);
    if (!p)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", card_path);
    memcpy(p, card_path, dn);
    strcpy(p + dn, file);
    *out = p;
    return HP_OK;
}

static hp_status parse_detector(const char *path, const cJSON *d, hp_card *card, hp_error *err)
{
    if (!cJSON_IsObject(d))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"ood_detector\" must be an object {method, file, sha256, ...}",
                            path);
    static const char *const keys[] = {"method", "file", "sha256", "slide_fraction", "features",
                                       "fitted_on", "threshold", "threshold_rule",
                                       "target_false_positive_rate", "rates"};
    hp_status st0 = only_keys(path, d, "ood_detector", keys, sizeof keys / sizeof keys[0], err);
    if (st0)
        return st0;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(d, "method");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, "mahalanobis"))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"ood_detector.method\" must be \"mahalanobis\" (the one "
                            "detector histoplan runs)",
                            path);
    char *file = NULL;
    hp_status st = text_of(path, d, "ood_detector", "file", 1, &file, err);
    if (st)
        return st;
    st = beside(path, file, &card->ood_path, err);
    free(file);
    if (st)
        return st;
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(d, "sha256");
    if (!cJSON_IsString(h) || strlen(h->valuestring) != 64 ||
        strspn(h->valuestring, "0123456789abcdef") != 64)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"ood_detector.sha256\" must be 64 lower-case hex digits", path);
    char hex[65];
    hp_error herr = {0};
    if (hp_sha256_file(card->ood_path, hex, &herr))
        return hp_error_set(err, HP_ERR_INVALID, "%s: the out-of-domain detector cannot be read: %s",
                            path, herr.msg);
    if (strcmp(hex, h->valuestring))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: the out-of-domain detector %s has SHA-256 %s, the card says %s: it "
                            "is not the detector the card describes",
                            path, card->ood_path, hex, h->valuestring);
    double slide_fraction = 0.5;
    if (cJSON_GetObjectItemCaseSensitive(d, "slide_fraction") &&
        (st = number_of(path, d, "ood_detector", "slide_fraction", 0.001, 1, &slide_fraction, err)))
        return st;
    card->ood_slide_fraction = slide_fraction;
    return HP_OK;
}

static hp_status parse_calibration(const char *path, const cJSON *c, hp_card *card, hp_error *err)
{
    static const char *const keys[] = {"method", "temperature", "fitted_on", "reliability"};
    static const char *const rkeys[] = {"measured_on", "bins", "ece_before", "ece_after"};
    if (!cJSON_IsObject(c))
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"calibration\" must be an object", path);
    hp_status st;
    if ((st = only_keys(path, c, "calibration", keys, 4, err)))
        return st;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(c, "method");
    if (!cJSON_IsString(m) || strcmp(m->valuestring, "temperature"))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"calibration.method\" must be \"temperature\"", path);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(c, "reliability");
    if (!cJSON_IsObject(r))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"calibration.reliability\" must be an object {measured_on, "
                            "bins, ece_before, ece_after}: a calibration without its reliability "
                            "figure cannot be judged",
                            path);
    double bins;
    if ((st = number_of(path, c, "calibration", "temperature", 0.01, 100, &card->temperature, err)) ||
        (st = text_of(path, c, "calibration", "fitted_on", 1, NULL, err)) ||
        (st = only_keys(path, r, "calibration.reliability", rkeys, 4, err)) ||
        (st = text_of(path, r, "calibration.reliability", "measured_on", 1, NULL, err)) ||
        (st = number_of(path, r, "calibration.reliability", "bins", 1, 1000, &bins, err)) ||
        (st = number_of(path, r, "calibration.reliability", "ece_before", 0, 1, &card->ece_before, err)) ||
        (st = number_of(path, r, "calibration.reliability", "ece_after", 0, 1, &card->ece_after, err)))
        return st;
    card->has_calibration = 1;
    return HP_OK;
}

hp_status hp_card_parse_domain(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "domain");
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(root, "ood_detector");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "calibration");
    hp_status st;
    if ((d && (st = parse_domain(path, d, card, err))) ||
        (o && (st = parse_detector(path, o, card, err))) ||
        (c && (st = parse_calibration(path, c, card, err))))
        return st;
    return HP_OK;
}
