#include "report/report_content.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/canonical_json.h"
#include "report/category.h"
#include "report/json_pointer.h"
#include "report/report_sections.h"
#include "report/signature.h"

double hp_report_round(double v, int decimals)
{
    double f = pow(10.0, decimals);
    double r = round(v * f) / f;
    return r == 0 ? 0.0 : r; /* no -0 */
}

/* ---- checks across the inputs ---- */

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

static hp_status check_inputs(const hp_case_file *cf, const hp_findings_input *fi, int n, hp_error *err)
{
    const cJSON *m0 = hp_fi_get(fi[0].root, "model");
    for (int i = 0; i < n; i++) {
        const char *acc = hp_fi_str(hp_fi_get(fi[i].root, "case"), "accession");
        /* The accession is an identifier: the message says which file, never the values. */
        if (acc && strcmp(acc, cf->accession))
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s belong to another case: their case accession differs from the case "
                                "file's; refusing to mix cases in one report",
                                fi[i].path);
        const cJSON *m = hp_fi_get(fi[i].root, "model");
        if (strcmp(hp_fi_str(m, "sha256"), hp_fi_str(m0, "sha256")) || strcmp(hp_fi_str(m, "name"), hp_fi_str(m0, "name")) ||
            !same_str(hp_fi_str(m, "version"), hp_fi_str(m0, "version")))
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s were made by model %s %s (%.12s), but %s by %s %s (%.12s): one report "
                                "needs one model",
                                fi[i].path, hp_fi_str(m, "name"), hp_fi_str(m, "version") ? hp_fi_str(m, "version") : "(no version)",
                                hp_fi_str(m, "sha256"), fi[0].path, hp_fi_str(m0, "name"),
                                hp_fi_str(m0, "version") ? hp_fi_str(m0, "version") : "(no version)", hp_fi_str(m0, "sha256"));
        if (cf->requested_model && (strcmp(cf->requested_model, hp_fi_str(m, "name")) ||
                                    (cf->requested_model_version &&
                                     !same_str(cf->requested_model_version, hp_fi_str(m, "version")))))
            return hp_error_set(err, HP_ERR_INVALID,
                                "findings %s were made by model %s version %s, but the case file asks for %s%s%s",
                                fi[i].path, hp_fi_str(m, "name"),
                                hp_fi_str(m, "version") ? hp_fi_str(m, "version") : "(none)", cf->requested_model,
                                cf->requested_model_version ? " version " : "",
                                cf->requested_model_version ? cf->requested_model_version : "");
        for (int j = 0; j < i; j++) {
            if (!strcmp(hp_fi_str(hp_fi_get(fi[i].root, "slide"), "sha256"), hp_fi_str(hp_fi_get(fi[j].root, "slide"), "sha256")))
                return hp_error_set(err, HP_ERR_INVALID, "findings %s and %s are of the same slide (same SHA-256)",
                                    fi[j].path, fi[i].path);
            if (!strcmp(hp_fi_str(hp_fi_get(fi[i].root, "slide"), "slide_id"), hp_fi_str(hp_fi_get(fi[j].root, "slide"), "slide_id")))
                return hp_error_set(err, HP_ERR_INVALID, "findings %s and %s have the same slide id", fi[j].path,
                                    fi[i].path);
        }
    }
    return HP_OK;
}

/* ---- statements ---- */

typedef struct {
    cJSON *report;
    cJSON *statements;
    cJSON *evidence_map; /* fact -> [statement ids] */
    int next_id;
} stmt_ctx;

typedef struct {
    char pointer[160];
    const char *unit; /* NULL: none */
} stmt_value;

/* Adds a statement: `tmpl` with {0}, {1}... replaced by the report's values at the pointers. */
static const char *add_statement(stmt_ctx *c, const char *section, const char *tmpl, const stmt_value *v, int n,
                                 cJSON *evidence, const char *fact)
{
    cJSON *s = cJSON_CreateObject();
    char id[16];
    snprintf(id, sizeof id, "S%d", ++c->next_id);
    cJSON_AddStringToObject(s, "id", id);
    cJSON_AddStringToObject(s, "section", section);
    cJSON_AddStringToObject(s, "template", tmpl);
    cJSON *vals = cJSON_AddArrayToObject(s, "values");
    char text[2048];
    size_t len = 0;
    text[0] = '\0';
    for (const char *p = tmpl; *p && len + 1 < sizeof text;) {
        if (p[0] == '{' && p[1] >= '0' && p[1] <= '9' && p[2] == '}') {
            int k = p[1] - '0';
            const cJSON *x = k < n ? hp_json_pointer_get(c->report, v[k].pointer) : NULL;
            char buf[300] = "?";
            if (cJSON_IsNumber(x))
                hp_json_format_number(x->valuedouble, buf);
            else if (cJSON_IsString(x))
                snprintf(buf, sizeof buf, "%s", x->valuestring);
            len += (size_t)snprintf(text + len, sizeof text - len, "%s%s%s", buf,
                                    k < n && v[k].unit && strcmp(v[k].unit, "%") ? " " : "",
                                    k < n && v[k].unit ? v[k].unit : "");
            p += 3;
        } else {
            text[len++] = *p++;
            text[len] = '\0';
        }
    }
    if (len >= sizeof text)
        len = sizeof text - 1;
    text[len] = '\0';
    for (int k = 0; k < n; k++) {
        const cJSON *x = hp_json_pointer_get(c->report, v[k].pointer);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "pointer", v[k].pointer);
        cJSON_AddItemToObject(o, "value", x ? cJSON_Duplicate(x, 1) : cJSON_CreateNull());
        if (v[k].unit)
            cJSON_AddStringToObject(o, "unit", v[k].unit);
        else
            cJSON_AddNullToObject(o, "unit");
        cJSON_AddItemToArray(vals, o);
    }
    cJSON_AddStringToObject(s, "text", text);
    cJSON_AddItemToObject(s, "evidence", evidence ? evidence : cJSON_CreateArray());
    cJSON_AddItemToArray(c->statements, s);
    if (fact) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(c->evidence_map, fact);
        if (!list)
            list = cJSON_AddArrayToObject(c->evidence_map, fact);
        cJSON_AddItemToArray(list, cJSON_CreateString(id));
    }
    return cJSON_GetObjectItemCaseSensitive(s, "id")->valuestring;
}

static cJSON *region_evidence(const cJSON *report, const char *slide_id, const cJSON *region_id)
{
    cJSON *ev = cJSON_CreateObject();
    cJSON_AddStringToObject(ev, "slide_id", slide_id);
    cJSON_AddItemToObject(ev, "region_id", cJSON_IsString(region_id) ? cJSON_CreateString(region_id->valuestring) : cJSON_CreateNull());
    cJSON *tiles = NULL;
    for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s && cJSON_IsString(region_id); s = s->next) {
        if (strcmp(hp_fi_str(s, "slide_id"), slide_id))
            continue;
        for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
            if (!strcmp(hp_fi_str(r, "region_id"), region_id->valuestring))
                tiles = cJSON_Duplicate(hp_fi_get(r, "evidence_tiles"), 1);
    }
    cJSON_AddItemToObject(ev, "tiles", tiles ? tiles : cJSON_CreateArray());
    return ev;
}

/* Evidence of a class: its regions on every slide (up to 3 per slide). */
static cJSON *class_evidence(const cJSON *report, const char *cls)
{
    cJSON *arr = cJSON_CreateArray();
    for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s; s = s->next) {
        int k = 0;
        for (const cJSON *r = hp_fi_get(s, "regions")->child; r && k < 3; r = r->next)
            if (!strcmp(hp_fi_str(r, "class"), cls)) {
                cJSON_AddItemToArray(arr, region_evidence(report, hp_fi_str(s, "slide_id"), hp_fi_get(r, "region_id")));
                k++;
            }
    }
    return arr;
}

/* The index of the class whose diagnostic category (the model card's map) is `category`, or -1:
 * classes are found by what they mean, never by how a model spells them. */
static int find_category(const cJSON *classes, const char *category)
{
    int i = 0;
    for (const cJSON *c = classes->child; c; c = c->next, i++) {
        const char *cat = hp_fi_str(c, "category");
        if (cat && !strcmp(cat, category))
            return i;
    }
    return -1;
}

static int categories_mapped(const cJSON *report)
{
    return cJSON_IsTrue(hp_json_pointer_get(report, "/case_findings/diagnostic_categories/mapped"));
}

/* The class name of category `category` on the case's class list, or NULL. */
static const char *class_of_category(const cJSON *report, const char *category)
{
    const cJSON *classes = hp_json_pointer_get(report, "/case_findings/classes");
    int k = find_category(classes, category);
    return k < 0 ? NULL : hp_fi_str(cJSON_GetArrayItem(classes, k), "name");
}

/* Evidence of the invasive class that is too small for a focus: its regions and its isolated
 * tiles on every slide. */
static cJSON *invasive_evidence(const cJSON *report, const cJSON *inv)
{
    cJSON *arr = cJSON_CreateArray();
    const char *cls = cJSON_IsObject(inv) ? hp_fi_str(inv, "class") : NULL;
    if (!cls)
        return arr;
    cJSON *regions = class_evidence(report, cls);
    cJSON *e;
    while ((e = cJSON_DetachItemFromArray(regions, 0)))
        cJSON_AddItemToArray(arr, e);
    cJSON_Delete(regions);
    for (const cJSON *x = hp_json_pointer_get(report, "/case_findings/isolated_tiles")->child; x; x = x->next)
        if (!strcmp(hp_fi_str(x, "class"), cls))
            for (const cJSON *wo = hp_fi_get(x, "locations")->child; wo; wo = wo->next) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "slide_id", hp_fi_str(wo, "slide_id"));
                cJSON_AddNullToObject(o, "region_id");
                cJSON_AddItemToObject(o, "tiles", cJSON_Duplicate(hp_fi_get(wo, "tiles"), 1));
                cJSON_AddItemToArray(arr, o);
            }
    return arr;
}

/* ---- category and confidence ---- */

static cJSON *diagnosis_section(int cat, cJSON *statement_ids)
{
    const hp_category_info *ci = hp_category_get((hp_category)cat);
    cJSON *d = cJSON_CreateObject();
    char display[128];
    snprintf(display, sizeof display, "%s (suggested)", ci->display);
    cJSON_AddStringToObject(d, "category", ci->name);
    cJSON_AddStringToObject(d, "display", display);
    cJSON *code = cJSON_AddObjectToObject(d, "code");
    cJSON_AddStringToObject(code, "system", ci->system);
    cJSON_AddStringToObject(code, "code", ci->code);
    cJSON_AddStringToObject(code, "display", ci->code_display);
    cJSON_AddStringToObject(d, "suggested_by", "histoplan");
    cJSON_AddItemToObject(d, "statement_ids", statement_ids);
    return d;
}

/* Mean probability of the region behind the category (its largest focus), or -1. */
static double category_support(const cJSON *report, int cat)
{
    const cJSON *cf = cJSON_GetObjectItemCaseSensitive(report, "case_findings");
    const cJSON *x = NULL;
    if (cat == HP_CAT_INVASIVE)
        x = hp_fi_get(cf, "invasive");
    else if (cat == HP_CAT_IN_SITU)
        x = hp_fi_get(cf, "in_situ");
    const char *sid = x ? hp_fi_str(x, "slide_id") : NULL;
    const cJSON *rid = x ? hp_fi_get(x, "region_id") : NULL;
    if (cat == HP_CAT_BENIGN || cat == HP_CAT_NORMAL) {
        /* benign / normal: the largest region of that class on any slide */
        double best = -1, prob = -1;
        const char *cls = class_of_category(report, cat == HP_CAT_BENIGN ? "benign" : "normal");
        for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s && cls; s = s->next)
            for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
                if (!strcmp(hp_fi_str(r, "class"), cls) && hp_fi_num(r, "area_mm2") > best) {
                    best = hp_fi_num(r, "area_mm2");
                    prob = hp_fi_num(r, "mean_prob");
                }
        return prob;
    }
    if (!sid || !cJSON_IsString(rid))
        return -1;
    for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s; s = s->next)
        if (!strcmp(hp_fi_str(s, "slide_id"), sid))
            for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
                if (!strcmp(hp_fi_str(r, "region_id"), rid->valuestring))
                    return hp_fi_num(r, "mean_prob");
    return -1;
}

static int out_of_domain(const cJSON *report)
{
    return cJSON_IsTrue(hp_json_pointer_get(report, "/case_findings/domain/out_of_domain"));
}

static int derive_category(const cJSON *report, const hp_care_rules *rules)
{
    const cJSON *cf = cJSON_GetObjectItemCaseSensitive(report, "case_findings");
    /* A model outside its domain of validity suggests nothing, however sure it looks. */
    if (out_of_domain(report))
        return HP_CAT_INDETERMINATE;
    if (hp_fi_num(cf, "tiles_analysed") < rules->min_tiles_analysed || hp_fi_num(cf, "tiles_analysed") < 1 ||
        !categories_mapped(report))
        return HP_CAT_INDETERMINATE;
    const cJSON *inv = hp_fi_get(cf, "invasive");
    if (cJSON_IsObject(inv) && cJSON_IsTrue(hp_fi_get(inv, "present")) &&
        hp_fi_num(inv, "largest_focus_mm") >= rules->invasive_min_focus_mm)
        return HP_CAT_INVASIVE;
    /* Invasive evidence too small for a focus (isolated tiles, small regions) is never let pass
     * as a confident in situ or benign finding. */
    const cJSON *ev = hp_fi_get(cf, "invasive_evidence");
    if (cJSON_IsObject(ev) && hp_fi_num(ev, "total_area_mm2") > 0 &&
        hp_fi_num(ev, "total_area_mm2") >= rules->invasion_review_min_area_mm2)
        return HP_CAT_REVIEW_INVASION;
    const cJSON *is = hp_fi_get(cf, "in_situ");
    if (cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present")) &&
        hp_fi_num(is, "extent_mm") >= rules->in_situ_min_extent_mm)
        return HP_CAT_IN_SITU;
    const cJSON *classes = hp_fi_get(cf, "classes");
    int b = find_category(classes, "benign");
    if (b >= 0 && hp_fi_num(cJSON_GetArrayItem(classes, b), "percent_of_tissue") >= rules->benign_min_percent)
        return HP_CAT_BENIGN;
    return find_category(classes, "normal") >= 0 ? HP_CAT_NORMAL : HP_CAT_INDETERMINATE;
}

/* Radiology-pathology discordance: true / false, or -1 when not assessable. */
static int discordance(int birads, int cat)
{
    if (birads < 0 || birads == 0 || cat == HP_CAT_INDETERMINATE)
        return -1;
    int malignant = cat <= HP_CAT_IN_SITU;
    if (birads >= 4 && !malignant)
        return 1;
    if (birads <= 2 && malignant)
        return 1;
    return 0;
}

/* The statements, diagnosis, confidence and care plan of `report` from its slides and case
 * findings, the case's facts (hp_case_facts) and the rule table. `forced` >= 0 is the category a
 * pathologist set at sign-off: the statements and the plan follow it instead of the derived one,
 * and statements that would need evidence the findings lack are left out. */
static hp_status add_statements_and_plan(cJSON *report, const cJSON *case_facts, const hp_care_rules *rules,
                                         int forced, hp_error *err)
{
    stmt_ctx c = {report, cJSON_AddArrayToObject(report, "statements"), cJSON_CreateObject(), 0};
    const cJSON *cfind = cJSON_GetObjectItemCaseSensitive(report, "case_findings");
    int cat = forced >= 0 ? forced : derive_category(report, rules);
    cJSON *diag_ids = cJSON_CreateArray();
    const cJSON *inv = hp_fi_get(cfind, "invasive");
    const cJSON *is = hp_fi_get(cfind, "in_situ");
    const cJSON *classes = hp_fi_get(cfind, "classes");
    int inv_present = cJSON_IsObject(inv) && cJSON_IsTrue(hp_fi_get(inv, "present"));

    /* Diagnosis statements */
    if (forced >= 0) {
        char text[300];
        snprintf(text, sizeof text, "The pathologist set the category at sign-off: %s.",
                 hp_category_get((hp_category)cat)->display);
        const char *id = add_statement(&c, "diagnosis", text, NULL, 0, NULL, "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    if (cat == HP_CAT_INVASIVE && inv_present) {
        stmt_value v[] = {{"/case_findings/invasive/largest_focus_mm", "mm"},
                          {"/case_findings/invasive/slide_id", NULL},
                          {"/case_findings/invasive/region_id", NULL},
                          {"/case_findings/invasive/total_area_mm2", "mm2"},
                          {"/case_findings/invasive/region_count", NULL}};
        cJSON *ev = cJSON_CreateArray();
        cJSON_AddItemToArray(ev, region_evidence(report, hp_fi_str(inv, "slide_id"), hp_fi_get(inv, "region_id")));
        const char *id = add_statement(&c, "diagnosis",
                                       "Invasive carcinoma is suggested: the largest invasive focus measures {0} "
                                       "(greatest dimension) on slide {1}, region {2}; invasive regions total {3} "
                                       "in {4} region(s).",
                                       v, 5, ev, "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    if (cat == HP_CAT_REVIEW_INVASION && cJSON_IsObject(hp_fi_get(cfind, "invasive_evidence"))) {
        stmt_value v[] = {{"/case_findings/invasive_evidence/total_area_mm2", "mm2"},
                          {"/case_findings/invasive_evidence/isolated_tiles", NULL},
                          {"/case_findings/invasive_evidence/isolated_area_mm2", "mm2"},
                          {"/case_findings/invasive_evidence/region_area_mm2", "mm2"}};
        cJSON *ev = invasive_evidence(report, inv);
        const char *id = add_statement(&c, "diagnosis",
                                       "Review for invasion is suggested: invasive evidence totals {0} ({1} isolated "
                                       "invasive tile(s) over {2}, and {3} in invasive regions), at or above the rule "
                                       "table's review threshold, while no invasive focus is large enough to suggest "
                                       "invasive carcinoma. Invasion is not excluded.",
                                       v, 4, ev, "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    /* Out of domain, the model's in situ map says nothing about carcinoma: not stated as a finding. */
    if (!out_of_domain(report) && cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present"))) {
        stmt_value v[] = {{"/case_findings/in_situ/extent_mm", "mm"},
                          {"/case_findings/in_situ/slide_id", NULL},
                          {"/case_findings/in_situ/largest_focus_mm", "mm"},
                          {"/case_findings/in_situ/total_area_mm2", "mm2"},
                          {"/case_findings/in_situ/region_count", NULL}};
        cJSON *ev = cJSON_CreateArray();
        cJSON_AddItemToArray(ev, region_evidence(report, hp_fi_str(is, "slide_id"), hp_fi_get(is, "region_id")));
        const char *id = add_statement(&c, cat == HP_CAT_IN_SITU ? "diagnosis" : "findings",
                                       "In situ carcinoma extends over {0} across its foci on slide {1} (largest "
                                       "focus {2}); in situ regions total {3} in {4} region(s).",
                                       v, 5, ev, cat == HP_CAT_IN_SITU ? "category" : "in_situ_extent_mm");
        if (cat == HP_CAT_IN_SITU)
            cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    if ((cat == HP_CAT_BENIGN || cat == HP_CAT_NORMAL) &&
        find_category(classes, cat == HP_CAT_BENIGN ? "benign" : "normal") >= 0) {
        int k = find_category(classes, cat == HP_CAT_BENIGN ? "benign" : "normal");
        stmt_value v[1];
        snprintf(v[0].pointer, sizeof v[0].pointer, "/case_findings/classes/%d/percent_of_tissue", k);
        v[0].unit = "%";
        const char *id = add_statement(&c, "diagnosis",
                                       cat == HP_CAT_BENIGN ? "A benign lesion is suggested: benign tissue makes up {0} of the "
                                                  "analysed tissue, and no invasive or in situ focus reaches the rule "
                                                  "table's thresholds."
                                                : "Normal breast tissue is suggested: normal tissue makes up {0} of the "
                                                  "analysed tissue, and no invasive, in situ or benign finding reaches "
                                                  "the rule table's thresholds.",
                                       v, 1, class_evidence(report, hp_fi_str(cJSON_GetArrayItem(classes, k), "name")),
                                       "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    if (forced >= 0) {
        /* The pathologist's category needs no reason from the software. */
    } else if (out_of_domain(report)) {
        int q = 0;
        for (const cJSON *x = hp_json_pointer_get(report, "/case_findings/domain/reasons")->child; x; x = x->next, q++) {
            stmt_value v[2];
            snprintf(v[0].pointer, sizeof v[0].pointer, "/case_findings/domain/reasons/%d/slide_id", q);
            snprintf(v[1].pointer, sizeof v[1].pointer, "/case_findings/domain/reasons/%d/reason", q);
            v[0].unit = v[1].unit = NULL;
            const char *id = add_statement(&c, "diagnosis",
                                           "No category and no care plan are suggested: model not valid for slide "
                                           "{0}: {1}.",
                                           v, 2, NULL, "category");
            cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
        }
    } else if (cat == HP_CAT_INDETERMINATE && !categories_mapped(report)) {
        stmt_value v[] = {{"/case_findings/diagnostic_categories/note", NULL}};
        const char *id = add_statement(&c, "diagnosis", "No category is suggested: {0}", v, 1, NULL, "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    } else if (cat == HP_CAT_INDETERMINATE) {
        stmt_value v[] = {{"/case_findings/tiles_analysed", NULL}};
        const char *id = add_statement(&c, "diagnosis",
                                       "No category is suggested: {0} tile(s) could be analysed, fewer than the rule "
                                       "table asks for.",
                                       v, 1, NULL, "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }

    /* Findings statements: tissue, then one per class */
    {
        stmt_value v[] = {{"/case_findings/tissue_area_mm2", "mm2"},
                          {"/case_findings/slide_count", NULL},
                          {"/case_findings/tiles_analysed", NULL}};
        add_statement(&c, "findings", "Tissue: {0} over {1} slide(s); {2} tiles analysed.", v, 3, NULL, NULL);
    }
    int k = 0;
    for (const cJSON *cl = classes->child; cl; cl = cl->next, k++) {
        if (cJSON_IsNull(hp_fi_get(cl, "percent_of_tissue")))
            continue;
        stmt_value v[5];
        snprintf(v[0].pointer, sizeof v[0].pointer, "/case_findings/classes/%d/name", k);
        snprintf(v[1].pointer, sizeof v[1].pointer, "/case_findings/classes/%d/area_mm2", k);
        snprintf(v[2].pointer, sizeof v[2].pointer, "/case_findings/classes/%d/percent_of_tissue", k);
        snprintf(v[3].pointer, sizeof v[3].pointer, "/case_findings/classes/%d/tile_count", k);
        snprintf(v[4].pointer, sizeof v[4].pointer, "/case_findings/classes/%d/region_count", k);
        v[0].unit = NULL;
        v[1].unit = "mm2";
        v[2].unit = "%";
        v[3].unit = NULL;
        v[4].unit = NULL;
        add_statement(&c, "findings", "Class {0}: {1}, {2} of the analysed tissue ({3} tiles, {4} region(s)).", v, 5,
                      class_evidence(report, hp_fi_str(cl, "name")), NULL);
    }
    /* Isolated tiles, class by class: evidence that formed no region, for review. */
    int q0 = 0;
    for (const cJSON *x = hp_fi_get(cfind, "isolated_tiles")->child; x; x = x->next, q0++) {
        stmt_value v[3];
        snprintf(v[0].pointer, sizeof v[0].pointer, "/case_findings/isolated_tiles/%d/class", q0);
        snprintf(v[1].pointer, sizeof v[1].pointer, "/case_findings/isolated_tiles/%d/tile_count", q0);
        snprintf(v[2].pointer, sizeof v[2].pointer, "/case_findings/isolated_tiles/%d/area_mm2", q0);
        v[0].unit = v[1].unit = NULL;
        v[2].unit = "mm2";
        const char *cat_of = hp_fi_str(x, "category");
        /* Stated for the classes that change a diagnosis (and for unmapped ones, whose meaning
         * is unknown); the tables list every class's. */
        if (cat_of && strcmp(cat_of, "invasive") && strcmp(cat_of, "in-situ"))
            continue;
        cJSON *ev = cJSON_CreateArray();
        for (const cJSON *wo = hp_fi_get(x, "locations")->child; wo; wo = wo->next) {
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "slide_id", hp_fi_str(wo, "slide_id"));
            cJSON_AddNullToObject(e, "region_id");
            cJSON_AddItemToObject(e, "tiles", cJSON_Duplicate(hp_fi_get(wo, "tiles"), 1));
            cJSON_AddItemToArray(ev, e);
        }
        add_statement(&c, "findings",
                      "Isolated {0} tiles: {1} tile(s), {2}, forming no region; review them (locations listed).", v, 3,
                      ev, cat_of && !strcmp(cat_of, "invasive") ? "invasive_evidence_mm2" : NULL);
    }
    if (!out_of_domain(report) && cJSON_IsObject(inv) && cat != 0 && cJSON_IsTrue(hp_fi_get(inv, "present"))) {
        stmt_value v[] = {{"/case_findings/invasive/largest_focus_mm", "mm"}, {"/case_findings/invasive/slide_id", NULL}};
        cJSON *ev = cJSON_CreateArray();
        cJSON_AddItemToArray(ev, region_evidence(report, hp_fi_str(inv, "slide_id"), hp_fi_get(inv, "region_id")));
        add_statement(&c, "findings",
                      "An invasive focus of {0} on slide {1} stays below the rule table's threshold for suggesting "
                      "invasive carcinoma; review it.",
                      v, 2, ev, "invasive_focus_mm");
    }

    /* QC statements, one per flag */
    int q = 0;
    for (const cJSON *fl = hp_fi_get(cfind, "qc_flags")->child; fl; fl = fl->next, q++) {
        stmt_value v[3];
        snprintf(v[0].pointer, sizeof v[0].pointer, "/case_findings/qc_flags/%d/slide_id", q);
        snprintf(v[1].pointer, sizeof v[1].pointer, "/case_findings/qc_flags/%d/flag", q);
        snprintf(v[2].pointer, sizeof v[2].pointer, "/case_findings/qc_flags/%d/description", q);
        v[0].unit = v[1].unit = v[2].unit = NULL;
        cJSON *ev = cJSON_CreateArray();
        cJSON_AddItemToArray(ev, region_evidence(report, hp_fi_str(fl, "slide_id"), NULL));
        add_statement(&c, "qc", "Slide {0}, QC flag {1}: {2}", v, 3, ev, "qc_failed");
    }

    /* Confidence */
    const cJSON *u = hp_fi_get(cfind, "uncertainty");
    double tiles = hp_fi_num(cfind, "tiles_analysed");
    double pct = cJSON_IsNumber(hp_fi_get(u, "percent_uncertain")) ? hp_fi_num(u, "percent_uncertain") : 100;
    double ent = cJSON_IsNumber(hp_fi_get(u, "mean_entropy")) ? hp_fi_num(u, "mean_entropy") : 1;
    double support = category_support(report, cat);
    cJSON *reasons = cJSON_CreateArray();
    const char *level = "high";
    if (tiles < rules->low_min_tiles_analysed)
        cJSON_AddItemToArray(reasons, cJSON_CreateString("fewer analysed tiles than the rule table's minimum"));
    if (pct > rules->low_percent_uncertain_above)
        cJSON_AddItemToArray(reasons, cJSON_CreateString("share of uncertain tiles above the rule table's low limit"));
    if (ent > rules->low_mean_entropy_above)
        cJSON_AddItemToArray(reasons, cJSON_CreateString("mean entropy above the rule table's low limit"));
    const cJSON *dom = hp_fi_get(cfind, "domain");
    if (out_of_domain(report))
        cJSON_AddItemToArray(reasons, cJSON_CreateString("model not valid for this slide: outside the domain of "
                                                         "validity its card states (out-of-domain detector, "
                                                         "resolution or stain)"));
    if (cJSON_GetArraySize(reasons) > 0) {
        level = "low";
    } else {
        /* High confidence needs a model checked to be in its domain and calibrated probabilities that
         * clear the support limit: raw softmax is not a probability of being right. */
        const cJSON *calc = hp_fi_get(dom, "calibrated_confidence");
        if (!cJSON_IsTrue(hp_fi_get(dom, "checked")))
            cJSON_AddItemToArray(reasons, cJSON_CreateString("the model card ships no out-of-domain detector: "
                                                             "whether the model is valid for this slide is unchecked"));
        if (!cJSON_IsNumber(calc))
            cJSON_AddItemToArray(reasons, cJSON_CreateString("the model card has no calibration: its probabilities "
                                                             "are not calibrated"));
        else if (calc->valuedouble < rules->moderate_support_below)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("calibrated mean top-class probability below the rule "
                                                             "table's support limit"));
        if (pct > rules->moderate_percent_uncertain_above)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("share of uncertain tiles above the rule table's moderate limit"));
        if (ent > rules->moderate_mean_entropy_above)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("mean entropy above the rule table's moderate limit"));
        if (support >= 0 && support < rules->moderate_support_below)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("mean probability of the region behind the category below the rule table's limit"));
        if (cat == HP_CAT_REVIEW_INVASION)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("invasive evidence too small for a focus: invasion is neither shown nor excluded"));
        if (cJSON_GetArraySize(reasons) > 0)
            level = "moderate";
    }
    cJSON *conf_ids = cJSON_CreateArray();
    if (cJSON_IsNumber(hp_fi_get(u, "mean_entropy"))) {
        stmt_value v[] = {{"/case_findings/uncertainty/mean_entropy", NULL},
                          {"/case_findings/uncertainty/percent_uncertain", "%"},
                          {"/case_findings/uncertainty/threshold", NULL}};
        const char *id = add_statement(&c, "confidence",
                                       "Model uncertainty: mean normalized entropy {0} (0 sure, 1 all classes equally "
                                       "likely); {1} of the analysed tiles lie above the entropy threshold {2}.",
                                       v, 3, NULL, "confidence");
        cJSON_AddItemToArray(conf_ids, cJSON_CreateString(id));
    } else {
        stmt_value v[] = {{"/case_findings/tiles_analysed", NULL}};
        const char *id = add_statement(&c, "confidence",
                                       "Model uncertainty could not be measured: {0} tile(s) were analysed.", v, 1,
                                       NULL, "confidence");
        cJSON_AddItemToArray(conf_ids, cJSON_CreateString(id));
    }
    if (cJSON_IsNumber(hp_fi_get(dom, "calibrated_confidence"))) {
        stmt_value v[] = {{"/case_findings/domain/calibrated_confidence", NULL},
                          {"/case_findings/domain/temperature", NULL},
                          {"/case_findings/domain/ece_after", NULL}};
        const char *id = add_statement(&c, "confidence",
                                       "Calibrated confidence: mean top-class probability {0} after temperature "
                                       "scaling (T = {1}, fitted on held-out data; expected calibration error {2} "
                                       "there, per the model card).",
                                       v, 3, NULL, "confidence");
        cJSON_AddItemToArray(conf_ids, cJSON_CreateString(id));
    }
    cJSON *conf = cJSON_CreateObject();
    cJSON_AddStringToObject(conf, "level", level);
    cJSON_AddItemToObject(conf, "reasons", reasons);
    cJSON_AddItemToObject(conf, "statement_ids", conf_ids);

    /* Model statement */
    {
        stmt_value v[] = {{"/model/name", NULL}, {"/model/sha256", NULL}};
        add_statement(&c, "model",
                      cJSON_IsTrue(hp_json_pointer_get(report, "/model/not_for_diagnosis"))
                          ? "Made with model {0} (SHA-256 {1}), whose model card says it is not for diagnosis."
                          : "Made with model {0} (SHA-256 {1}).",
                      v, 2, NULL, NULL);
    }
    cJSON_AddItemToObject(report, "diagnosis", diagnosis_section(cat, diag_ids));
    cJSON_AddItemToObject(report, "confidence", conf);

    /* Facts for the rules: the findings' and the case file's */
    cJSON *facts = cJSON_Duplicate(case_facts, 1);
    cJSON_AddStringToObject(facts, "category", hp_category_get((hp_category)cat)->name);
    cJSON_AddStringToObject(facts, "confidence", level);
    cJSON_AddBoolToObject(facts, "qc_failed", cJSON_GetArraySize(hp_fi_get(cfind, "qc_flags")) > 0);
    cJSON_AddBoolToObject(facts, "out_of_domain", out_of_domain(report));
    if (out_of_domain(report)) {
        /* The care plan quotes why it is withheld (each slide's reason). */
        char why[1024] = "";
        size_t at = 0;
        for (const cJSON *x = hp_fi_get(dom, "reasons")->child; x && at < sizeof why - 1; x = x->next)
            at += (size_t)snprintf(why + at, sizeof why - at, "%sslide %s: %s", at ? "; " : "",
                                   hp_fi_str(x, "slide_id"), hp_fi_str(x, "reason"));
        cJSON_AddStringToObject(facts, "out_of_domain_reason", why);
    }
    if (cJSON_IsObject(inv) && cJSON_IsTrue(hp_fi_get(inv, "present")))
        cJSON_AddNumberToObject(facts, "invasive_focus_mm", hp_fi_num(inv, "largest_focus_mm"));
    else
        cJSON_AddNullToObject(facts, "invasive_focus_mm");
    const cJSON *inv_ev = hp_fi_get(cfind, "invasive_evidence");
    if (cJSON_IsObject(inv_ev))
        cJSON_AddNumberToObject(facts, "invasive_evidence_mm2", hp_fi_num(inv_ev, "total_area_mm2"));
    else
        cJSON_AddNullToObject(facts, "invasive_evidence_mm2");
    if (cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present")))
        cJSON_AddNumberToObject(facts, "in_situ_extent_mm", hp_fi_num(is, "extent_mm"));
    else
        cJSON_AddNullToObject(facts, "in_situ_extent_mm");
    const cJSON *birads = hp_fi_get(case_facts, "birads");
    int disc = discordance(cJSON_IsNumber(birads) ? (int)birads->valuedouble : -1, cat);
    if (disc < 0)
        cJSON_AddNullToObject(facts, "discordant");
    else
        cJSON_AddBoolToObject(facts, "discordant", disc);
    /* category-dependent statements also evidence discordance */
    cJSON *disc_ids = cJSON_Duplicate(diag_ids, 1);
    cJSON_AddItemToObject(c.evidence_map, "discordant", disc_ids);
    cJSON *plan = cJSON_CreateObject();
    hp_status st = hp_care_rules_apply(rules, facts, c.evidence_map, plan, err);
    cJSON_Delete(facts);
    cJSON_Delete(c.evidence_map);
    if (st) {
        cJSON_Delete(plan);
        return st;
    }
    cJSON_AddItemToObject(report, "care_plan", plan);
    return HP_OK;
}

hp_status hp_report_content_build(const hp_case_file *cf, const hp_findings_input *fi, int n,
                                  struct hp_slide *const *slide_files, const hp_care_rules *rules,
                                  const char *report_dir, const char *now, cJSON **out, hp_error *err)
{
    *out = NULL;
    if (n < 1)
        return hp_error_set(err, HP_ERR_INVALID, "report: no findings given");
    hp_status st = check_inputs(cf, fi, n, err);
    if (st)
        return st;
    /* The report id: a hash of the accession and the findings, so it carries no identifier. */
    size_t cap = strlen(cf->accession) + (size_t)n * 65 + 1;
    char *idsrc = malloc(cap);
    if (!idsrc)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    size_t len = (size_t)snprintf(idsrc, cap, "%s", cf->accession);
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(idsrc + len, cap - len, "\n%s", fi[i].sha256);
    char idhex[65];
    hp_sha256_hex(idsrc, len, idhex);
    free(idsrc);
    idhex[16] = '\0';

    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "schema_version", HP_REPORT_SCHEMA_VERSION);
    cJSON_AddStringToObject(r, "report_id", idhex);
    cJSON_AddNumberToObject(r, "revision", 0);
    cJSON_AddStringToObject(r, "status", "preliminary");
    cJSON_AddStringToObject(r, "generated_at", now);
    cJSON_AddStringToObject(r, "histoplan_version", HP_VERSION);
    cJSON_AddStringToObject(r, "research_use_notice", HP_REPORT_NOTICE);
    cJSON_AddItemToObject(r, "case", cJSON_Duplicate(cf->section, 1));
    cJSON_AddItemToObject(r, "model", hp_report_model_section(fi[0].root));
    cJSON *slides = cJSON_AddArrayToObject(r, "slides");
    for (int i = 0; i < n; i++) {
        cJSON *s = NULL;
        if ((st = hp_report_slide_section(&fi[i], slide_files ? slide_files[i] : NULL, report_dir, &s, err))) {
            cJSON_Delete(r);
            return st;
        }
        cJSON_AddItemToArray(slides, s);
    }
    cJSON_AddItemToObject(r, "case_findings", hp_report_case_findings(slides, fi));
    if ((st = add_statements_and_plan(r, cf->facts, rules, -1, err))) {
        cJSON_Delete(r);
        return st;
    }
    cJSON *src = cJSON_AddObjectToObject(r, "sources");
    cJSON_AddStringToObject(src, "case_file_sha256", cf->sha256);
    cJSON *fl = cJSON_AddArrayToObject(src, "findings");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "slide_id", hp_fi_str(hp_fi_get(fi[i].root, "slide"), "slide_id"));
        cJSON_AddStringToObject(o, "sha256", fi[i].sha256);
        cJSON_AddItemToArray(fl, o);
    }
    cJSON_AddStringToObject(src, "rules_sha256", rules->sha256);
    cJSON_AddNullToObject(r, "sign_off");
    *out = r;
    return HP_OK;
}

hp_status hp_report_content_rederive(cJSON *report, int category, const hp_care_rules *rules, hp_error *err)
{
    if (category < 0 || category >= HP_CAT_COUNT)
        return hp_error_set(err, HP_ERR_INVALID, "report: no such category (%d)", category);
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(report, "case_findings")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(report, "slides")))
        return hp_error_set(err, HP_ERR_INVALID, "report: no case findings or slides to derive statements from");
    cJSON *facts = hp_case_facts(cJSON_GetObjectItemCaseSensitive(report, "case"));
    if (!facts)
        return hp_error_set(err, HP_ERR_NOMEM, "report: out of memory");
    static const char *const derived[] = {"statements", "diagnosis", "confidence", "care_plan"};
    for (size_t i = 0; i < sizeof derived / sizeof *derived; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(report, derived[i]);
    hp_status st = add_statements_and_plan(report, facts, rules, category, err);
    cJSON_Delete(facts);
    return st;
}
