/* The Observations of a report (see report_fhir.h): one per case finding, each with the
 * statements that quote it and the research-use notice as notes. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "report/fhir_internal.h"

#define OBS_CATEGORY "http://terminology.hl7.org/CodeSystem/observation-category"
#define LOINC "http://loinc.org"
#define UCUM "http://unitsofmeasure.org"

static double num(fx_ctx *x, const cJSON *obj, const char *path, const char *name, int *present)
{
    const cJSON *it = fx_member(x, obj, path, name, cJSON_Number, present != NULL);
    if (present)
        *present = it != NULL;
    return it ? it->valuedouble : 0.0;
}

/* Local codes follow FHIR's code pattern: no leading, trailing or doubled whitespace. */
static void local_code(char *out, size_t cap, const char *prefix, const char *name)
{
    snprintf(out, cap, "%s%s", prefix, name);
    for (char *p = out; *p; p++)
        if (isspace((unsigned char)*p) || *p == '/')
            *p = '-';
}

static cJSON *quantity(double v, const char *unit, const char *ucum)
{
    cJSON *q = cJSON_CreateObject();
    cJSON_AddNumberToObject(q, "value", v);
    cJSON_AddStringToObject(q, "unit", unit);
    cJSON_AddStringToObject(q, "system", UCUM);
    cJSON_AddStringToObject(q, "code", ucum);
    return q;
}

static void component_qty(cJSON *obs, const char *code, const char *display, int present, double v,
                          const char *unit, const char *ucum)
{
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(obs, "component");
    if (!arr)
        arr = cJSON_AddArrayToObject(obs, "component");
    cJSON *c = cJSON_CreateObject();
    cJSON_AddItemToObject(c, "code", fx_concept(FX_LOCAL_SYSTEM, code, display, NULL));
    if (present) {
        cJSON_AddItemToObject(c, "valueQuantity", quantity(v, unit, ucum));
    } else {
        cJSON_AddItemToObject(c, "dataAbsentReason",
                              fx_concept("http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                         "not-applicable", "Not Applicable", NULL));
    }
    cJSON_AddItemToArray(arr, c);
}

/* Statement texts as notes: those listed by id, and those quoting a value under `prefix`. */
static void statement_notes(fx_ctx *x, cJSON *obs, const cJSON *ids, const char *prefix)
{
    const cJSON *sts = cJSON_GetObjectItemCaseSensitive(x->report, "statements");
    const cJSON *s;
    cJSON_ArrayForEach(s, sts) {
        const cJSON *sid = cJSON_GetObjectItemCaseSensitive(s, "id");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(s, "text");
        if (!cJSON_IsString(sid) || !cJSON_IsString(text))
            continue;
        int use = 0;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids)
            use |= cJSON_IsString(id) && !strcmp(id->valuestring, sid->valuestring);
        const cJSON *val;
        size_t plen = prefix ? strlen(prefix) : 0;
        cJSON_ArrayForEach(val, cJSON_GetObjectItemCaseSensitive(s, "values")) {
            const cJSON *ptr = cJSON_GetObjectItemCaseSensitive(val, "pointer");
            if (prefix && cJSON_IsString(ptr) && !strncmp(ptr->valuestring, prefix, plen) &&
                (ptr->valuestring[plen] == '/' || ptr->valuestring[plen] == 0))
                use = 1;
        }
        if (use) {
            char buf[2048];
            snprintf(buf, sizeof buf, "%s: %s", sid->valuestring, text->valuestring);
            fx_note(obs, "note", buf);
        }
    }
}

static cJSON *observation(fx_ctx *x, const char *role, cJSON *code, cJSON *results, const char *body_site,
                          char *ref)
{
    cJSON *o = fx_add_resource(x, "Observation", role, ref);
    fx_ai_security(o);
    cJSON_AddStringToObject(o, "status", x->status);
    cJSON *cat = cJSON_AddArrayToObject(o, "category");
    cJSON_AddItemToArray(cat, fx_concept(OBS_CATEGORY, "laboratory", "Laboratory", NULL));
    cJSON_AddItemToObject(o, "code", code);
    cJSON_AddItemToObject(o, "subject", fx_reference(x->patient, NULL));
    cJSON_AddStringToObject(o, "issued", x->generated_at);
    if (body_site && *body_site)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "bodySite"), "text", body_site);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(o, "method"), "text",
                            "Whole-slide image analysis by histoplan (tile classification)");
    cJSON_AddItemToObject(o, "specimen", fx_reference(x->specimen, NULL));
    cJSON_AddItemToObject(o, "device", fx_reference(x->device, NULL));
    cJSON_AddItemToArray(results, fx_reference(ref, NULL));
    return o;
}

static void finish_obs(fx_ctx *x, cJSON *o)
{
    fx_note(o, "note", x->notice);
}

void fx_findings(fx_ctx *x, cJSON *results, const char *site)
{
    const cJSON *cf = fx_member(x, x->report, "", "case_findings", cJSON_Object, 0);
    const cJSON *dx = fx_member(x, x->report, "", "diagnosis", cJSON_Object, 0);
    const cJSON *code = fx_member(x, dx, "/diagnosis", "code", cJSON_Object, 0);
    const char *csys = fx_str(x, code, "/diagnosis/code", "system", 0);
    const char *ccode = fx_str(x, code, "/diagnosis/code", "code", 0);
    const char *cdisp = fx_str(x, code, "/diagnosis/code", "display", 0);
    const char *display = fx_str(x, dx, "/diagnosis", "display", 0);
    const char *by = fx_str(x, dx, "/diagnosis", "suggested_by", 0);
    const cJSON *dx_ids = fx_member(x, dx, "/diagnosis", "statement_ids", cJSON_Array, 0);
    if (x->failed)
        return;
    char buf[1024], ref[FX_REF_MAX], ref_inv[FX_REF_MAX] = "", ref_is[FX_REF_MAX] = "";
    cJSON *o;

    /* Largest invasive focus; null when the model has no invasive class. */
    const cJSON *inv = fx_member(x, cf, "/case_findings", "invasive", cJSON_Object, 1);
    if (inv) {
        double mm = num(x, inv, "/case_findings/invasive", "largest_focus_mm", NULL);
        double area = num(x, inv, "/case_findings/invasive", "total_area_mm2", NULL);
        double nreg = num(x, inv, "/case_findings/invasive", "region_count", NULL);
        o = observation(x, "obs-invasive-focus",
                        fx_concept(LOINC, "33728-7", "Size.maximum dimension in Tumor",
                                   "Largest invasive focus, greatest dimension"),
                        results, site, ref_inv);
        cJSON_AddItemToObject(o, "valueQuantity", quantity(mm, "mm", "mm"));
        component_qty(o, "invasive-total-area", "Invasive carcinoma, total area", 1, area, "mm2", "mm2");
        component_qty(o, "invasive-region-count", "Invasive carcinoma, regions", 1, nreg, "regions", "{regions}");
        statement_notes(x, o, NULL, "/case_findings/invasive");
        finish_obs(x, o);
    }
    const cJSON *is = fx_member(x, cf, "/case_findings", "in_situ", cJSON_Object, 1);
    if (is) {
        double ext = num(x, is, "/case_findings/in_situ", "extent_mm", NULL);
        double mm = num(x, is, "/case_findings/in_situ", "largest_focus_mm", NULL);
        double area = num(x, is, "/case_findings/in_situ", "total_area_mm2", NULL);
        o = observation(x, "obs-in-situ-extent",
                        fx_concept(FX_LOCAL_SYSTEM, "in-situ-extent", "In situ carcinoma extent",
                                   "In situ carcinoma, extent across foci"),
                        results, site, ref_is);
        cJSON_AddItemToObject(o, "valueQuantity", quantity(ext, "mm", "mm"));
        component_qty(o, "in-situ-largest-focus", "In situ carcinoma, largest focus", 1, mm, "mm", "mm");
        component_qty(o, "in-situ-total-area", "In situ carcinoma, total area", 1, area, "mm2", "mm2");
        statement_notes(x, o, NULL, "/case_findings/in_situ");
        finish_obs(x, o);
    }

    /* The suggested category, with the measurements it rests on. */
    o = observation(x, "obs-category",
                    fx_concept(LOINC, "22637-3", "Pathology report final diagnosis Narrative",
                               "Suggested diagnostic category"),
                    results, site, ref);
    cJSON_AddItemToObject(o, "valueCodeableConcept", fx_concept(csys, ccode, cdisp, display));
    if (*ref_inv || *ref_is) {
        cJSON *d = cJSON_AddArrayToObject(o, "derivedFrom");
        if (*ref_inv)
            cJSON_AddItemToArray(d, fx_reference(ref_inv, "Largest invasive focus"));
        if (*ref_is)
            cJSON_AddItemToArray(d, fx_reference(ref_is, "In situ extent"));
    }
    snprintf(buf, sizeof buf, "Suggested by %s%s.", by,
             !strcmp(by, "histoplan") ? " for the pathologist to confirm or change" : "");
    fx_note(o, "note", buf);
    statement_notes(x, o, dx_ids, NULL);
    finish_obs(x, o);

    int have;
    double area = num(x, cf, "/case_findings", "tissue_area_mm2", NULL);
    double tiles = num(x, cf, "/case_findings", "tiles_analysed", NULL);
    double slides = num(x, cf, "/case_findings", "slide_count", NULL);
    o = observation(x, "obs-tissue-area",
                    fx_concept(FX_LOCAL_SYSTEM, "tissue-area", "Tissue area analysed", NULL), results, site, ref);
    cJSON_AddItemToObject(o, "valueQuantity", quantity(area, "mm2", "mm2"));
    component_qty(o, "slide-count", "Slides analysed", 1, slides, "slides", "{slides}");
    component_qty(o, "tiles-analysed", "Tiles analysed", 1, tiles, "tiles", "{tiles}");
    statement_notes(x, o, NULL, "/case_findings/tissue_area_mm2");
    finish_obs(x, o);

    /* Per-class share of the analysed tissue, one component per class in model order. */
    const cJSON *classes = fx_member(x, cf, "/case_findings", "classes", cJSON_Array, 0);
    o = observation(x, "obs-tissue-composition",
                    fx_concept(FX_LOCAL_SYSTEM, "tissue-composition", "Percent of analysed tissue by class", NULL),
                    results, site, ref);
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, classes) {
        char path[64], code_s[160], disp[200];
        snprintf(path, sizeof path, "/case_findings/classes/%d", i++);
        const char *name = fx_str(x, c, path, "name", 0);
        double pct = num(x, c, path, "percent_of_tissue", &have);
        local_code(code_s, sizeof code_s, "percent-of-tissue-", name);
        snprintf(disp, sizeof disp, "Percent of analysed tissue: %s", name);
        component_qty(o, code_s, disp, have, pct, "%", "%");
    }
    statement_notes(x, o, NULL, "/case_findings/classes");
    finish_obs(x, o);

    /* Uncertainty and the confidence level derived from it. */
    const cJSON *un = fx_member(x, cf, "/case_findings", "uncertainty", cJSON_Object, 0);
    const cJSON *conf = fx_member(x, x->report, "", "confidence", cJSON_Object, 0);
    const char *level = fx_str(x, conf, "/confidence", "level", 0);
    const cJSON *reasons = fx_member(x, conf, "/confidence", "reasons", cJSON_Array, 0);
    const cJSON *conf_ids = fx_member(x, conf, "/confidence", "statement_ids", cJSON_Array, 0);
    double ent = num(x, un, "/case_findings/uncertainty", "mean_entropy", &have);
    int have_pct;
    double pct = num(x, un, "/case_findings/uncertainty", "percent_uncertain", &have_pct);
    double thr = num(x, un, "/case_findings/uncertainty", "threshold", NULL);
    o = observation(x, "obs-uncertainty",
                    fx_concept(FX_LOCAL_SYSTEM, "model-uncertainty", "Model uncertainty", NULL), results, site, ref);
    snprintf(buf, sizeof buf, "confidence-%s", level);
    snprintf(buf + 512, 512, "Confidence: %s", level);
    cJSON_AddItemToObject(o, "valueCodeableConcept", fx_concept(FX_LOCAL_SYSTEM, buf, buf + 512, NULL));
    component_qty(o, "mean-entropy", "Mean normalized entropy", have, ent, "1", "1");
    component_qty(o, "percent-uncertain", "Percent of tiles above the entropy threshold", have_pct, pct, "%", "%");
    component_qty(o, "entropy-threshold", "Entropy threshold", 1, thr, "1", "1");
    const cJSON *rs;
    cJSON_ArrayForEach(rs, reasons)
        if (cJSON_IsString(rs)) {
            snprintf(buf, sizeof buf, "Confidence is not high: %s", rs->valuestring);
            fx_note(o, "note", buf);
        }
    statement_notes(x, o, conf_ids, "/case_findings/uncertainty");
    finish_obs(x, o);

    /* Every QC flag of every slide. */
    const cJSON *qc = fx_member(x, cf, "/case_findings", "qc_flags", cJSON_Array, 0);
    i = 0;
    cJSON_ArrayForEach(c, qc) {
        char path[64], role[64], code_s[160];
        snprintf(path, sizeof path, "/case_findings/qc_flags/%d", i);
        snprintf(role, sizeof role, "obs-qc-%d", i++);
        const char *slide = fx_str(x, c, path, "slide_id", 0);
        const char *flag = fx_str(x, c, path, "flag", 0);
        const char *desc = fx_str(x, c, path, "description", 0);
        o = observation(x, role, fx_concept(FX_LOCAL_SYSTEM, "qc-flag", "Slide quality flag", NULL), results, site, ref);
        local_code(code_s, sizeof code_s, "", *flag ? flag : "unknown");
        cJSON_AddItemToObject(o, "valueCodeableConcept",
                              fx_concept("https://histoplan.invalid/fhir/CodeSystem/qc-flag", code_s, flag, desc));
        snprintf(buf, sizeof buf, "Slide %s: %s", slide, desc);
        fx_note(o, "note", buf);
        statement_notes(x, o, NULL, path);
        finish_obs(x, o);
    }
}
