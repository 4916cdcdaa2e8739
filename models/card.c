/* Model cards: parse and validate `<model>.card.json` (schema: schemas/model-card.schema.json),
 * and hash model files.
 *
 * Validation is strict because a card decides how tiles are fed to a model: a wrong mean/std, a
 * misspelt key or a class list in the wrong order changes every prediction without any error. */
#include "common/sha256.h"
#include "models/card.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "common/json_check.h"
#include "models/card_internal.h"

/* A card is a few kilobytes; anything far larger is not a card, so do not read it into memory. */
#define CARD_MAX_BYTES (1 << 20)

static const char *const known_keys[] = {
    "$schema", "name", "version", "classes", "input_size", "normalization", "mpp", "sha256",
    "training_data", "intended_use", "metrics", "license", "not_for_diagnosis", "generative", "category_map",
    "domain", "ood_detector", "calibration", "task", "scale",
};

static const char *const category_names[] = {
    [HP_CLASS_NORMAL] = "normal",     [HP_CLASS_BENIGN] = "benign", [HP_CLASS_IN_SITU] = "in-situ",
    [HP_CLASS_INVASIVE] = "invasive", [HP_CLASS_OTHER] = "other",
};

const char *hp_class_category_name(hp_class_category c)
{
    return c > HP_CLASS_UNMAPPED && c <= HP_CLASS_OTHER ? category_names[c] : NULL;
}

hp_class_category hp_class_category_find(const char *name)
{
    for (int c = HP_CLASS_NORMAL; name && c <= HP_CLASS_OTHER; c++)
        if (!strcmp(name, category_names[c]))
            return (hp_class_category)c;
    return HP_CLASS_UNMAPPED;
}

int hp_card_class_of(const hp_card *card, hp_class_category c)
{
    if (!card || !card->has_category_map || c == HP_CLASS_OTHER)
        return -1;
    for (int k = 0; k < card->n_classes; k++)
        if (card->category[k] == c)
            return k;
    return -1;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Reads the whole (small) file; NUL-terminated. */
static hp_status read_small_file(const char *path, char **out, size_t *len, hp_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot open model card: %s", path, strerror(errno));
    char *buf = malloc(CARD_MAX_BYTES + 1);
    if (!buf) {
        fclose(f);
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory reading model card", path);
    }
    size_t n = fread(buf, 1, CARD_MAX_BYTES + 1, f);
    int rd_err = ferror(f);
    fclose(f);
    if (rd_err) {
        free(buf);
        return hp_error_set(err, HP_ERR_IO, "%s: read error on model card", path);
    }
    if (n > CARD_MAX_BYTES) {
        free(buf);
        return hp_error_set(err, HP_ERR_INVALID, "%s: model card is larger than %d bytes", path,
                            CARD_MAX_BYTES);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return HP_OK;
}

/* 1-based line and column of byte offset `off`, for parse error messages a person can act on. */
static void line_col(const char *text, size_t off, int *line, int *col)
{
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static hp_status get_string(const char *path, const cJSON *root, const char *key, int required,
                            char **out, hp_error *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!it) {
        if (required)
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s\" is missing", path, key);
        return HP_OK;
    }
    if (!cJSON_IsString(it) || !it->valuestring)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s\" must be a string", path, key);
    if (it->valuestring[0] == '\0')
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"%s\" must not be empty", path, key);
    *out = dup_str(it->valuestring);
    if (!*out)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    return HP_OK;
}

static hp_status parse_classes(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(root, "classes");
    if (!cl)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes\" is missing", path);
    if (!cJSON_IsArray(cl))
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes\" must be an array of strings",
                            path);
    int n = cJSON_GetArraySize(cl);
    if (n < 1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes\" must not be empty", path);
    if (n > HP_CARD_MAX_CLASSES)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes\" has %d entries, at most %d",
                            path, n, HP_CARD_MAX_CLASSES);
    int i = 0;
    for (const cJSON *c = cl->child; c; c = c->next, i++) {
        if (!cJSON_IsString(c) || !c->valuestring)
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes[%d]\" must be a string",
                                path, i);
        if (c->valuestring[0] == '\0')
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"classes[%d]\" must not be empty",
                                path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(card->classes[j], c->valuestring) == 0)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: field \"classes[%d]\" repeats \"%s\" (classes[%d])", path,
                                    i, c->valuestring, j);
        card->classes[i] = dup_str(c->valuestring);
        if (!card->classes[i])
            return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
        card->n_classes = i + 1;
    }
    return HP_OK;
}

static hp_status parse_input_size(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *is = cJSON_GetObjectItemCaseSensitive(root, "input_size");
    if (!is)
        return HP_OK;
    if (!cJSON_IsArray(is) || cJSON_GetArraySize(is) != 2)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"input_size\" must be an array [height, width]", path);
    int v[2];
    for (int i = 0; i < 2; i++) {
        const cJSON *x = cJSON_GetArrayItem(is, i);
        if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"input_size[%d]\" must be an integer",
                                path, i);
        if (x->valuedouble < 1 || x->valuedouble > 8192)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"input_size[%d]\" is %g, must be 1..8192", path, i,
                                x->valuedouble);
        v[i] = (int)x->valuedouble;
    }
    card->input_h = v[0];
    card->input_w = v[1];
    return HP_OK;
}

/* mean and std apply to RGB scaled to 0..1 (see card.h). The common slip is copying 0..255
 * values (123.675, 58.395) from another framework; the range check catches it with a hint. */
static hp_status parse_triplet(const char *path, const cJSON *norm, const char *key, float out[3],
                               int is_std, hp_error *err)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(norm, key);
    if (!a)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"normalization.%s\" is missing", path,
                            key);
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"normalization.%s\" must be an array of 3 numbers (R, G, B)",
                            path, key);
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"normalization.%s[%d]\" must be a number", path, key, i);
        double d = x->valuedouble;
        if (is_std ? !(d > 0 && d <= 1) : !(d >= 0 && d <= 1))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"normalization.%s[%d]\" is %g, must be %s (values apply "
                                "to RGB scaled to 0..1; divide 0..255 values by 255)",
                                path, key, i, d, is_std ? "> 0 and <= 1" : "0..1");
        out[i] = (float)d;
    }
    return HP_OK;
}

static hp_status parse_normalization(const char *path, const cJSON *root, hp_card *card,
                                     hp_error *err)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(root, "normalization");
    if (!norm)
        return HP_OK;
    if (!cJSON_IsObject(norm))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"normalization\" must be an object {\"mean\", \"std\"}", path);
    /* Duplicate names were refused when the file was read (common/json_check.h). */
    hp_status st;
    for (const cJSON *k = norm->child; k; k = k->next)
        if (strcmp(k->string, "mean") != 0 && strcmp(k->string, "std") != 0)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"normalization.%s\" is unknown (expected mean, std)", path,
                                k->string);
    if ((st = parse_triplet(path, norm, "mean", card->mean, 0, err)) ||
        (st = parse_triplet(path, norm, "std", card->std, 1, err)))
        return st;
    card->has_norm = 1;
    return HP_OK;
}

static hp_status parse_mpp(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "mpp");
    if (!m)
        return HP_OK;
    if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble))
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"mpp\" must be a number", path);
    if (m->valuedouble < 0.05 || m->valuedouble > 20)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"mpp\" is %g, must be 0.05..20 microns per pixel", path,
                            m->valuedouble);
    card->mpp = m->valuedouble;
    return HP_OK;
}

static hp_status parse_sha256(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "sha256");
    if (!s)
        return HP_OK;
    if (!cJSON_IsString(s) || !s->valuestring)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"sha256\" must be a string", path);
    const char *v = s->valuestring;
    size_t n = strlen(v);
    if (n != 64)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"sha256\" has %zu characters, must be 64 hex digits", path, n);
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)v[i]))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"sha256\" has a non-hex character at position %zu", path,
                                i + 1);
    card->sha256 = dup_str(v);
    if (!card->sha256)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    /* Lower-case so it compares equal to hp_sha256_file's output with strcmp. */
    for (size_t i = 0; i < n; i++)
        card->sha256[i] = (char)tolower((unsigned char)card->sha256[i]);
    return HP_OK;
}

/* "category_map": {class: category} for every class. Explicit on purpose: a class missing from
 * the map, or two classes claiming the invasive category, is a card error rather than a guess,
 * because the category decides which regions the report measures as tumour. */
static hp_status parse_category_map(const char *path, const cJSON *root, hp_card *card,
                                    hp_error *err)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "category_map");
    if (!m)
        return HP_OK;
    if (!cJSON_IsObject(m))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"category_map\" must be an object {class: category}", path);
    for (const cJSON *e = m->child; e; e = e->next) {
        int k = -1;
        for (int i = 0; i < card->n_classes && k < 0; i++)
            if (!strcmp(card->classes[i], e->string))
                k = i;
        if (k < 0)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"category_map.%s\": \"%s\" is not one of \"classes\"",
                                path, e->string, e->string);
        hp_class_category c =
            cJSON_IsString(e) ? hp_class_category_find(e->valuestring) : HP_CLASS_UNMAPPED;
        if (c == HP_CLASS_UNMAPPED)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"category_map.%s\" must be one of \"normal\", "
                                "\"benign\", \"in-situ\", \"invasive\", \"other\"",
                                path, e->string);
        for (int i = 0; i < card->n_classes && c != HP_CLASS_OTHER; i++)
            if (card->category[i] == c)
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: field \"category_map\": classes \"%s\" and \"%s\" both "
                                    "map to \"%s\" (one class per category; use \"other\" for the "
                                    "rest)",
                                    path, card->classes[i], e->string, category_names[c]);
        card->category[k] = c;
    }
    for (int i = 0; i < card->n_classes; i++)
        if (card->category[i] == HP_CLASS_UNMAPPED)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"category_map\" does not map class \"%s\" (map every "
                                "class; \"other\" for classes without a diagnostic category)",
                                path, card->classes[i]);
    card->has_category_map = 1;
    return HP_OK;
}

/* "task" and "scale": a super-resolution model states its scale and has no classes; a
 * classifier has classes and no scale. */
static hp_status parse_task(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "task");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(root, "scale");
    if (t && (!cJSON_IsString(t) || (strcmp(t->valuestring, "classification") &&
                                     strcmp(t->valuestring, "super-resolution"))))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"task\" must be \"classification\" or \"super-resolution\"", path);
    card->task = t && !strcmp(t->valuestring, "super-resolution") ? HP_TASK_SUPER_RESOLUTION
                                                                   : HP_TASK_CLASSIFICATION;
    if (card->task == HP_TASK_CLASSIFICATION) {
        if (s)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"scale\" belongs to a super-resolution model (\"task\": "
                                "\"super-resolution\")", path);
        return HP_OK;
    }
    if (!s)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: field \"scale\" is missing: a super-resolution model states its scale (2, 3 or 4)",
                            path);
    if (!cJSON_IsNumber(s) || s->valuedouble != floor(s->valuedouble) || s->valuedouble < 2 || s->valuedouble > 4)
        return hp_error_set(err, HP_ERR_INVALID, "%s: field \"scale\" must be 2, 3 or 4", path);
    card->scale = (int)s->valuedouble;
    if (cJSON_GetObjectItemCaseSensitive(root, "classes") || cJSON_GetObjectItemCaseSensitive(root, "category_map"))
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: a super-resolution model has no \"classes\" or \"category_map\"", path);
    return HP_OK;
}

static hp_status parse_card(const char *path, const cJSON *root, hp_card *card, hp_error *err)
{
    if (!cJSON_IsObject(root))
        return hp_error_set(err, HP_ERR_INVALID, "%s: a model card must be a JSON object", path);
    hp_status st;
    for (const cJSON *k = root->child; k; k = k->next) {
        int known = strncmp(k->string, "x-", 2) == 0;
        for (size_t i = 0; !known && i < sizeof known_keys / sizeof known_keys[0]; i++)
            known = strcmp(k->string, known_keys[i]) == 0;
        if (!known)
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"%s\" is unknown (see schemas/model-card.schema.json; "
                                "extensions start with \"x-\")",
                                path, k->string);
    }
    if ((st = get_string(path, root, "name", 1, &card->name, err)) ||
        (st = get_string(path, root, "version", 0, &card->version, err)) ||
        (st = parse_task(path, root, card, err)) ||
        (card->task == HP_TASK_CLASSIFICATION && (st = parse_classes(path, root, card, err))) ||
        (st = parse_category_map(path, root, card, err)) ||
        (st = parse_input_size(path, root, card, err)) ||
        (st = parse_normalization(path, root, card, err)) ||
        (st = parse_mpp(path, root, card, err)) ||
        (st = parse_sha256(path, root, card, err)) ||
        (st = get_string(path, root, "training_data", 0, &card->training_data, err)) ||
        (st = get_string(path, root, "intended_use", 0, &card->intended_use, err)) ||
        (st = get_string(path, root, "license", 0, &card->license, err)) ||
        (st = hp_card_parse_domain(path, root, card, err)))
        return st;

    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "metrics");
    if (m) {
        if (!cJSON_IsObject(m))
            return hp_error_set(err, HP_ERR_INVALID, "%s: field \"metrics\" must be an object", path);
        card->metrics_json = cJSON_PrintUnformatted(m);
        if (!card->metrics_json)
            return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    }
    const cJSON *nfd = cJSON_GetObjectItemCaseSensitive(root, "not_for_diagnosis");
    if (nfd) {
        if (!cJSON_IsBool(nfd))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"not_for_diagnosis\" must be true or false", path);
        card->not_for_diagnosis = cJSON_IsTrue(nfd) ? 1 : 0;
    }
    const cJSON *gen = cJSON_GetObjectItemCaseSensitive(root, "generative");
    if (gen) {
        if (!cJSON_IsBool(gen) || (cJSON_IsTrue(gen) && card->task != HP_TASK_SUPER_RESOLUTION))
            return hp_error_set(err, HP_ERR_INVALID,
                                "%s: field \"generative\" must be true or false, and true only for a super-resolution model",
                                path);
        card->generative = cJSON_IsTrue(gen) ? 1 : 0;
    }
    return HP_OK;
}

hp_status hp_card_load(const char *path, hp_card *card, hp_error *err)
{
    if (!path || !card)
        return hp_error_set(err, HP_ERR_INVALID, "hp_card_load: NULL argument");
    memset(card, 0, sizeof *card);
    char *text = NULL;
    size_t len = 0;
    hp_status st = read_small_file(path, &text, &len, err);
    if (st)
        return st;
    cJSON *root = NULL;
    if (strlen(text) != len) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: model card contains a NUL byte; not a text file",
                          path);
        goto fail;
    }
    const char *end = NULL;
    /* len + 1: cJSON checks the terminating NUL is inside the buffer it was given. */
    root = cJSON_ParseWithLengthOpts(text, len + 1, &end, 1);
    if (!root) {
        /* cJSON reports where parsing stopped; a line:column lets the author find the typo. */
        int line = 1, col = 1;
        if (end && end >= text && end <= text + len)
            line_col(text, (size_t)(end - text), &line, &col);
        st = hp_error_set(err, HP_ERR_INVALID, "%s:%d:%d: model card is not valid JSON", path, line,
                          col);
        goto fail;
    }
    char fault[512];
    if (hp_json_check(text, len, root, fault, sizeof fault)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: model card: %s", path, fault);
        goto fail;
    }
    st = parse_card(path, root, card, err);
    if (st)
        goto fail;
    cJSON_Delete(root);
    free(text);
    return HP_OK;

fail:
    cJSON_Delete(root);
    free(text);
    hp_card_free(card);
    return st;
}

static int dup_or_null(char **d, const char *s)
{
    *d = s ? dup_str(s) : NULL;
    return !s || *d;
}

hp_status hp_card_copy(hp_card *d, const hp_card *c)
{
    *d = *c;
    d->name = d->version = d->sha256 = d->training_data = d->intended_use = d->license = NULL;
    d->metrics_json = NULL;
    d->domain_tissue = d->domain_stain = d->ood_path = NULL;
    for (int k = 0; k < HP_CARD_MAX_CLASSES; k++)
        d->classes[k] = NULL;
    int ok = dup_or_null(&d->name, c->name) && dup_or_null(&d->version, c->version) &&
             dup_or_null(&d->sha256, c->sha256) &&
             dup_or_null(&d->training_data, c->training_data) &&
             dup_or_null(&d->intended_use, c->intended_use) &&
             dup_or_null(&d->license, c->license) &&
             dup_or_null(&d->domain_tissue, c->domain_tissue) &&
             dup_or_null(&d->domain_stain, c->domain_stain) && dup_or_null(&d->ood_path, c->ood_path);
    /* metrics_json comes from cJSON's allocator and goes back to it in hp_card_free. */
    if (ok && c->metrics_json) {
        size_t n = strlen(c->metrics_json) + 1;
        if ((d->metrics_json = cJSON_malloc(n)))
            memcpy(d->metrics_json, c->metrics_json, n);
        ok = d->metrics_json != NULL;
    }
    for (int k = 0; ok && k < c->n_classes; k++)
        ok = dup_or_null(&d->classes[k], c->classes[k]);
    return ok ? HP_OK : HP_ERR_NOMEM;
}

void hp_card_free(hp_card *card)
{
    if (!card)
        return;
    free(card->name);
    free(card->version);
    for (int i = 0; i < HP_CARD_MAX_CLASSES; i++)
        free(card->classes[i]);
    free(card->sha256);
    free(card->training_data);
    free(card->intended_use);
    cJSON_free(card->metrics_json);
    free(card->license);
    free(card->domain_tissue);
    free(card->domain_stain);
    free(card->ood_path);
    memset(card, 0, sizeof *card);
}
