#include "report/case_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/json_file.h"

/* Field checks. Each returns 0 when the member is absent or valid, and sets `err` otherwise. */

static int known_keys(const cJSON *obj, const char *where, const char *const *keys, hp_error *err)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        int ok = 0;
        for (const char *const *k = keys; *k; k++)
            if (!strcmp(it->string, *k))
                ok = 1;
        if (!ok) {
            hp_error_set(err, HP_ERR_INVALID, "case file: unknown field '%s%s%.64s' (misspelt?)", where,
                         where[0] ? "." : "", it->string);
            return -1;
        }
        for (const cJSON *o = it->next; o; o = o->next)
            if (!strcmp(it->string, o->string)) {
                hp_error_set(err, HP_ERR_INVALID, "case file: field '%s%s%s' given twice", where,
                             where[0] ? "." : "", it->string);
                return -1;
            }
    }
    return 0;
}

static int valid_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 && *p != '\t')
            return 0;
    return 1;
}

/* The member `key` of `obj` (which may be NULL). When it is absent, records it as null in `out`
 * and its dotted name in `missing`, and returns NULL. `name` receives the dotted name. */
static const cJSON *member(const cJSON *obj, const char *key, const char *where, cJSON *out, cJSON *missing,
                           char name[128])
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    snprintf(name, 128, "%s.%s", where, key);
    if (!v) {
        cJSON_AddNullToObject(out, key);
        cJSON_AddItemToArray(missing, cJSON_CreateString(name));
    }
    return v;
}

/* A string member: copied into `out` (as JSON null when absent). */
static int text_field(const cJSON *obj, const char *key, const char *where, size_t max, cJSON *out,
                      cJSON *missing, hp_error *err)
{
    char name[128];
    const cJSON *v = member(obj, key, where, out, missing, name);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !valid_text(v->valuestring, max)) {
        hp_error_set(err, HP_ERR_INVALID,
                     "case file: %s must be a non-empty text of at most %zu characters without control characters",
                     name, max);
        return -1;
    }
    cJSON_AddStringToObject(out, key, v->valuestring);
    return 0;
}

static int enum_field(const cJSON *obj, const char *key, const char *where, const char *const *allowed,
                      cJSON *out, cJSON *missing, hp_error *err)
{
    char name[128];
    const cJSON *v = member(obj, key, where, out, missing, name);
    if (!v)
        return 0;
    if (cJSON_IsString(v))
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(v->valuestring, *a)) {
                cJSON_AddStringToObject(out, key, *a);
                return 0;
            }
    char list[256] = "";
    for (const char *const *a = allowed; *a; a++) {
        strncat(list, *a, sizeof list - strlen(list) - 1);
        if (a[1])
            strncat(list, ", ", sizeof list - strlen(list) - 1);
    }
    hp_error_set(err, HP_ERR_INVALID, "case file: %s must be one of %s", name, list);
    return -1;
}

static int int_field(const cJSON *obj, const char *key, const char *where, int lo, int hi, cJSON *out,
                     cJSON *missing, hp_error *err)
{
    char name[128];
    const cJSON *v = member(obj, key, where, out, missing, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < lo ||
        v->valuedouble > hi) {
        hp_error_set(err, HP_ERR_INVALID, "case file: %s must be a whole number from %d to %d", name, lo, hi);
        return -1;
    }
    cJSON_AddNumberToObject(out, key, v->valuedouble);
    return 0;
}

/* A list of texts (copied; [] when absent). */
static int text_list(const cJSON *obj, const char *key, const char *where, int max_items, cJSON *out,
                     cJSON *missing, hp_error *err)
{
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    char name[128];
    snprintf(name, sizeof name, "%s%s%s", where, where[0] ? "." : "", key);
    cJSON *arr = cJSON_AddArrayToObject(out, key);
    if (!v) {
        cJSON_AddItemToArray(missing, cJSON_CreateString(name));
        return 0;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > max_items) {
        hp_error_set(err, HP_ERR_INVALID, "case file: %s must be a list of at most %d texts", name, max_items);
        return -1;
    }
    int i = 0;
    for (const cJSON *it = v->child; it; it = it->next, i++) {
        if (!cJSON_IsString(it) || !valid_text(it->valuestring, 2000)) {
            hp_error_set(err, HP_ERR_INVALID,
                         "case file: %s[%d] must be a non-empty text without control characters", name, i);
            return -1;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(it->valuestring));
    }
    return 0;
}

static const cJSON *sub_object(const cJSON *root, const char *key, hp_error *err, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (v && !cJSON_IsObject(v)) {
        hp_error_set(err, HP_ERR_INVALID, "case file: %s must be an object", key);
        *bad = 1;
    }
    return v;
}

static int parse_patient(const cJSON *p, cJSON *out, cJSON *missing, hp_error *err)
{
    static const char *const keys[] = {"identifiers", "name", "birth_date", "sex", NULL};
    static const char *const sexes[] = {"female", "male", "other", "unknown", NULL};
    if (p && known_keys(p, "patient", keys, err))
        return -1;
    cJSON *ids = cJSON_AddArrayToObject(out, "identifiers");
    const cJSON *v = p ? cJSON_GetObjectItemCaseSensitive(p, "identifiers") : NULL;
    if (!v) {
        cJSON_AddItemToArray(missing, cJSON_CreateString("patient.identifiers"));
    } else if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 16) {
        hp_error_set(err, HP_ERR_INVALID, "case file: patient.identifiers must be a list of at most 16 objects");
        return -1;
    } else {
        int i = 0;
        static const char *const id_keys[] = {"system", "value", NULL};
        for (const cJSON *it = v->child; it; it = it->next, i++) {
            const cJSON *sys = cJSON_GetObjectItemCaseSensitive(it, "system");
            const cJSON *val = cJSON_GetObjectItemCaseSensitive(it, "value");
            if (!cJSON_IsObject(it) || known_keys(it, "patient.identifiers[]", id_keys, err) || !cJSON_IsString(val) ||
                !valid_text(val->valuestring, 255) || (sys && (!cJSON_IsString(sys) || !valid_text(sys->valuestring, 255)))) {
                hp_error_set(err, HP_ERR_INVALID,
                             "case file: patient.identifiers[%d] must be {\"system\": text (optional), \"value\": text}", i);
                return -1;
            }
            cJSON *o = cJSON_CreateObject();
            if (sys)
                cJSON_AddStringToObject(o, "system", sys->valuestring);
            else
                cJSON_AddNullToObject(o, "system");
            cJSON_AddStringToObject(o, "value", val->valuestring);
            cJSON_AddItemToArray(ids, o);
        }
    }
    if (text_field(p, "name", "patient", 255, out, missing, err))
        return -1;
    const cJSON *bd = p ? cJSON_GetObjectItemCaseSensitive(p, "birth_date") : NULL;
    if (bd) {
        const char *s = cJSON_IsString(bd) ? bd->valuestring : "";
        size_t n = strlen(s);
        int ok = (n == 4 || n == 7 || n == 10);
        for (size_t i = 0; ok && i < n; i++)
            ok = (i == 4 || i == 7) ? s[i] == '-' : (s[i] >= '0' && s[i] <= '9');
        if (!ok) {
            hp_error_set(err, HP_ERR_INVALID, "case file: patient.birth_date must be YYYY, YYYY-MM or YYYY-MM-DD");
            return -1;
        }
    }
    if (text_field(p, "birth_date", "patient", 10, out, missing, err))
        return -1;
    return enum_field(p, "sex", "patient", sexes, out, missing, err);
}

static int parse_specimen(const cJSON *s, cJSON *out, cJSON *missing, hp_error *err)
{
    static const char *const keys[] = {"procedure", "laterality", "site", "collected", NULL};
    static const char *const sides[] = {"left", "right", "bilateral", NULL};
    if (s && known_keys(s, "specimen", keys, err))
        return -1;
    if (text_field(s, "procedure", "specimen", 255, out, missing, err) ||
        enum_field(s, "laterality", "specimen", sides, out, missing, err) ||
        text_field(s, "site", "specimen", 255, out, missing, err))
        return -1;
    const cJSON *c = s ? cJSON_GetObjectItemCaseSensitive(s, "collected") : NULL;
    if (c) {
        const char *t = cJSON_IsString(c) ? c->valuestring : "";
        int ok = strlen(t) >= 10 && t[4] == '-' && t[7] == '-';
        for (int i = 0; ok && i < 10; i++)
            ok = (i == 4 || i == 7) || (t[i] >= '0' && t[i] <= '9');
        if (!ok) {
            hp_error_set(err, HP_ERR_INVALID, "case file: specimen.collected must be an ISO 8601 date (YYYY-MM-DD...)");
            return -1;
        }
    }
    return text_field(s, "collected", "specimen", 40, out, missing, err);
}

static int parse_clinical(const cJSON *c, cJSON *out, cJSON *missing, hp_error *err)
{
    static const char *const keys[] = {"age_years", "history", "prior_findings", "imaging_impression", "birads", NULL};
    if (c && known_keys(c, "clinical", keys, err))
        return -1;
    return int_field(c, "age_years", "clinical", 0, 130, out, missing, err) ||
                   text_list(c, "history", "clinical", 64, out, missing, err) ||
                   text_list(c, "prior_findings", "clinical", 64, out, missing, err) ||
                   text_field(c, "imaging_impression", "clinical", 2000, out, missing, err) ||
                   int_field(c, "birads", "clinical", 0, 6, out, missing, err)
               ? -1
               : 0;
}

static int parse_requested_model(const cJSON *m, hp_case_file *cf, hp_error *err)
{
    static const char *const keys[] = {"name", "version", NULL};
    if (!m)
        return 0;
    if (known_keys(m, "requested_model", keys, err))
        return -1;
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(m, "name");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "version");
    if (!cJSON_IsString(n) || !valid_text(n->valuestring, 255) ||
        (v && (!cJSON_IsString(v) || !valid_text(v->valuestring, 64)))) {
        hp_error_set(err, HP_ERR_INVALID,
                     "case file: requested_model must be {\"name\": text, \"version\": text (optional)}");
        return -1;
    }
    cf->requested_model = strdup(n->valuestring);
    cf->requested_model_version = v ? strdup(v->valuestring) : NULL;
    return 0;
}

cJSON *hp_case_facts(const cJSON *section)
{
    const cJSON *clin = cJSON_GetObjectItemCaseSensitive(section, "clinical");
    const cJSON *pat = cJSON_GetObjectItemCaseSensitive(section, "patient");
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(section, "specimen");
    cJSON *f = cJSON_CreateObject();
    cJSON_AddItemToObject(f, "age_years", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(clin, "age_years"), 1));
    cJSON_AddItemToObject(f, "sex", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(pat, "sex"), 1));
    cJSON_AddItemToObject(f, "procedure", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(spec, "procedure"), 1));
    cJSON_AddItemToObject(f, "birads", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(clin, "birads"), 1));
    cJSON_AddItemToObject(f, "history", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(clin, "history"), 1));
    cJSON_AddItemToObject(f, "prior_findings",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(clin, "prior_findings"), 1));
    cJSON_AddItemToObject(f, "preferences",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(section, "preferences"), 1));
    return f;
}

hp_status hp_case_file_load(const char *path, hp_case_file *cf, hp_error *err)
{
    static const char *const keys[] = {"$schema", "accession", "patient", "specimen", "clinical", "preferences",
                                       "requested_model", NULL};
    memset(cf, 0, sizeof *cf);
    cJSON *root = NULL;
    hp_status st = hp_json_file_read(path, "case file", &root, cf->sha256, err);
    if (st)
        return st;
    cJSON *sec = cJSON_CreateObject();
    cJSON *missing = cJSON_CreateArray();
    int bad = 0;
    if (!cJSON_IsObject(root)) {
        hp_error_set(err, HP_ERR_INVALID, "case file: the top level must be a JSON object");
        goto fail;
    }
    if (known_keys(root, "", keys, err))
        goto fail;
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(root, "accession");
    if (!acc) {
        hp_error_set(err, HP_ERR_INVALID, "case file: the accession number (\"accession\") is missing");
        goto fail;
    }
    if (!cJSON_IsString(acc) || !valid_text(acc->valuestring, 64)) {
        hp_error_set(err, HP_ERR_INVALID,
                     "case file: accession must be a non-empty text of at most 64 characters without control characters");
        goto fail;
    }
    cJSON_AddStringToObject(sec, "accession", acc->valuestring);
    const cJSON *p = sub_object(root, "patient", err, &bad);
    const cJSON *s = sub_object(root, "specimen", err, &bad);
    const cJSON *c = sub_object(root, "clinical", err, &bad);
    const cJSON *m = sub_object(root, "requested_model", err, &bad);
    if (bad)
        goto fail;
    if (parse_patient(p, cJSON_AddObjectToObject(sec, "patient"), missing, err) ||
        parse_specimen(s, cJSON_AddObjectToObject(sec, "specimen"), missing, err) ||
        parse_clinical(c, cJSON_AddObjectToObject(sec, "clinical"), missing, err) ||
        text_list(root, "preferences", "", 32, sec, missing, err) || parse_requested_model(m, cf, err))
        goto fail;
    cJSON_AddItemToObject(sec, "missing", missing);
    missing = NULL;
    cf->accession = strdup(acc->valuestring);
    cf->section = sec;
    cf->facts = hp_case_facts(sec);
    cJSON_Delete(root);
    if (!cf->accession || !cf->facts) {
        hp_case_file_free(cf);
        return hp_error_set(err, HP_ERR_NOMEM, "case file: out of memory");
    }
    return HP_OK;
fail:
    cJSON_Delete(root);
    cJSON_Delete(sec);
    cJSON_Delete(missing);
    hp_case_file_free(cf);
    return err && err->code ? err->code : HP_ERR_INVALID;
}

void hp_case_file_free(hp_case_file *cf)
{
    if (!cf)
        return;
    cJSON_Delete(cf->section);
    cJSON_Delete(cf->facts);
    free(cf->accession);
    free(cf->requested_model);
    free(cf->requested_model_version);
    memset(cf, 0, sizeof *cf);
}
