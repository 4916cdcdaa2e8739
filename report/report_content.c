#include "report/report_content.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "report/canonical_json.h"
#include "report/category.h"
#include "report/json_pointer.h"
#include "report/report_images.h"
#include "report/signature.h"

#define EVIDENCE_TILES_MAX 5 /* per region in the report (findings keep up to 10) */
#define THUMBNAILS_PER_CLASS 3

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

/* ---- sections ---- */

static cJSON *model_section(const cJSON *findings)
{
    const cJSON *m = hp_fi_get(findings, "model");
    const cJSON *card = hp_fi_get(m, "card");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", hp_fi_str(m, "name"));
    cJSON_AddItemToObject(o, "version", cJSON_Duplicate(hp_fi_get(m, "version"), 1));
    cJSON_AddStringToObject(o, "sha256", hp_fi_str(m, "sha256"));
    cJSON_AddStringToObject(o, "backend", hp_fi_str(m, "backend"));
    cJSON_AddStringToObject(o, "precision", hp_fi_str(m, "precision"));
    cJSON_AddItemToObject(o, "classes", cJSON_Duplicate(hp_fi_get(card, "classes"), 1));
    cJSON_AddItemToObject(o, "intended_use", cJSON_Duplicate(hp_fi_get(card, "intended_use"), 1));
    cJSON_AddItemToObject(o, "training_data", cJSON_Duplicate(hp_fi_get(card, "training_data"), 1));
    cJSON_AddItemToObject(o, "license", cJSON_Duplicate(hp_fi_get(card, "license"), 1));
    cJSON_AddBoolToObject(o, "not_for_diagnosis", cJSON_IsTrue(hp_fi_get(card, "not_for_diagnosis")));
    return o;
}

static void add_num(cJSON *o, const char *key, double v, int decimals)
{
    cJSON_AddNumberToObject(o, key, hp_report_round(v, decimals));
}

static void add_num_or_null(cJSON *o, const char *key, const cJSON *v, double scale, int decimals)
{
    if (cJSON_IsNumber(v))
        add_num(o, key, v->valuedouble * scale, decimals);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *tiles_of(const cJSON *region)
{
    cJSON *arr = cJSON_CreateArray();
    int k = 0;
    for (const cJSON *t = hp_fi_get(region, "evidence_tiles")->child; t && k < EVIDENCE_TILES_MAX; t = t->next, k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "x", round(hp_fi_num(t, "x")));
        cJSON_AddNumberToObject(o, "y", round(hp_fi_num(t, "y")));
        cJSON_AddNumberToObject(o, "size", round(hp_fi_num(t, "size")));
        add_num(o, "prob", hp_fi_num(t, "prob"), 3);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* The invasive or in situ summary of one slide (null when the model has no such class). */
static cJSON *extent_section(const cJSON *findings, const char *key, int in_situ)
{
    const cJSON *e = hp_fi_get(findings, key);
    if (cJSON_IsNull(e))
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    int count = (int)hp_fi_num(e, "region_count");
    const cJSON *rid = hp_fi_get(e, "largest_region_id");
    cJSON_AddStringToObject(o, "class", hp_fi_str(e, "class"));
    cJSON_AddBoolToObject(o, "present", count > 0);
    if (in_situ)
        add_num(o, "extent_mm", hp_fi_num(e, "extent_mm"), 1);
    add_num(o, "largest_focus_mm", hp_fi_num(e, "largest_focus_diameter_mm"), 1);
    add_num(o, "total_area_mm2", hp_fi_num(e, "total_area_mm2"), 3);
    cJSON_AddNumberToObject(o, "region_count", count);
    if (cJSON_IsNumber(rid)) {
        cJSON_AddStringToObject(o, "slide_id", hp_fi_str(hp_fi_get(findings, "slide"), "slide_id"));
        cJSON_AddNumberToObject(o, "region_id", rid->valuedouble);
    } else {
        cJSON_AddNullToObject(o, "slide_id");
        cJSON_AddNullToObject(o, "region_id");
    }
    return o;
}

static hp_status slide_section(const hp_findings_input *in, const char *report_dir, cJSON **out, hp_error *err)
{
    const cJSON *f = in->root;
    const cJSON *slide = hp_fi_get(f, "slide");
    const char *sid = hp_fi_str(slide, "slide_id");
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "slide_id", sid);
    cJSON_AddStringToObject(o, "sha256", hp_fi_str(slide, "sha256"));
    cJSON_AddStringToObject(o, "findings_sha256", in->sha256);
    cJSON_AddStringToObject(o, "analysed_at", hp_fi_str(f, "generated_at"));
    cJSON_AddStringToObject(o, "format", hp_fi_str(slide, "format"));
    add_num(o, "mpp", hp_fi_num(slide, "mpp_x"), 4);
    add_num(o, "tissue_area_mm2", hp_fi_num(hp_fi_get(f, "tissue"), "area_mm2"), 3);
    int tiles = (int)hp_fi_num(hp_fi_get(f, "analysis"), "tiles_analysed");
    cJSON_AddNumberToObject(o, "tiles_analysed", tiles);

    cJSON *qc = cJSON_AddObjectToObject(o, "qc");
    cJSON *flags = cJSON_AddArrayToObject(qc, "flags");
    cJSON *descs = cJSON_AddArrayToObject(qc, "descriptions");
    const cJSON *fdesc = hp_json_pointer_get(f, "/qc/flag_descriptions");
    for (const cJSON *fl = hp_json_pointer_get(f, "/qc/flags")->child; fl; fl = fl->next) {
        cJSON_AddItemToArray(flags, cJSON_CreateString(fl->valuestring));
        const char *d = hp_fi_str(fdesc, fl->valuestring);
        cJSON_AddItemToArray(descs, cJSON_CreateString(d ? d : fl->valuestring));
    }

    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    for (const cJSON *c = hp_fi_get(f, "classes")->child; c; c = c->next) {
        cJSON *k = cJSON_CreateObject();
        cJSON_AddStringToObject(k, "name", hp_fi_str(c, "name"));
        add_num(k, "area_mm2", hp_fi_num(c, "area_mm2"), 3);
        add_num_or_null(k, "percent_of_tissue", hp_fi_get(c, "fraction_of_tissue"), 100.0, 1);
        cJSON_AddNumberToObject(k, "tile_count", hp_fi_num(c, "tile_count"));
        cJSON_AddNumberToObject(k, "region_count", hp_fi_num(c, "region_count"));
        cJSON_AddItemToArray(classes, k);
    }
    cJSON_AddItemToObject(o, "invasive", extent_section(f, "invasive", 0));
    cJSON_AddItemToObject(o, "in_situ", extent_section(f, "in_situ_extent", 1));
    const cJSON *u = hp_fi_get(f, "uncertainty");
    cJSON *uo = cJSON_AddObjectToObject(o, "uncertainty");
    add_num_or_null(uo, "mean_entropy", hp_fi_get(u, "mean_entropy"), 1.0, 3);
    add_num_or_null(uo, "percent_uncertain", hp_fi_get(u, "fraction_uncertain"), 100.0, 1);
    add_num(uo, "threshold", hp_fi_num(u, "threshold"), 3);

    /* The overlay and region thumbnails, when analyze wrote an overlay. */
    hp_overlay ov = {0};
    cJSON *overlay = NULL;
    const char *ov_rel = hp_fi_str(hp_fi_get(f, "outputs"), "overlay");
    if (ov_rel) {
        char src[4096], name[128];
        snprintf(src, sizeof src, "%s/%s", in->dir, ov_rel);
        snprintf(name, sizeof name, "%s-overlay.png", sid);
        hp_status st = hp_report_image_overlay(src, report_dir, name, hp_fi_num(slide, "level0_width_px"), &ov,
                                               &overlay, err);
        if (st) {
            cJSON_Delete(o);
            return st;
        }
    }
    cJSON *regions = cJSON_CreateArray();
    const char *prev_class = "";
    int in_class = 0;
    for (const cJSON *r = hp_fi_get(f, "regions")->child; r; r = r->next) {
        const char *cls = hp_fi_str(r, "class");
        in_class = strcmp(cls, prev_class) ? 0 : in_class + 1;
        prev_class = cls;
        cJSON *ro = cJSON_CreateObject();
        long id = (long)hp_fi_num(r, "id");
        cJSON_AddNumberToObject(ro, "region_id", (double)id);
        cJSON_AddStringToObject(ro, "class", cls);
        add_num(ro, "area_mm2", hp_fi_num(r, "area_mm2"), 3);
        add_num(ro, "diameter_mm", hp_fi_num(r, "diameter_mm"), 1);
        add_num(ro, "mean_prob", hp_fi_num(r, "mean_prob"), 3);
        add_num(ro, "max_prob", hp_fi_num(r, "max_prob"), 3);
        cJSON *bb = cJSON_AddArrayToObject(ro, "bbox_level0");
        double box[4];
        for (int k = 0; k < 4; k++) {
            box[k] = cJSON_GetArrayItem(hp_fi_get(r, "bbox_level0"), k)->valuedouble;
            cJSON_AddItemToArray(bb, cJSON_CreateNumber(round(box[k])));
        }
        cJSON_AddItemToObject(ro, "evidence_tiles", tiles_of(r));
        cJSON *thumb = NULL;
        /* Thumbnails for the largest regions of each class (regions come larger first). */
        if (ov.rgb && in_class < THUMBNAILS_PER_CLASS) {
            char name[160];
            snprintf(name, sizeof name, "%s-region-%ld.png", sid, id);
            hp_status st = hp_report_image_thumbnail(&ov, box, report_dir, name, &thumb, err);
            if (st) {
                hp_overlay_free(&ov);
                cJSON_Delete(o);
                cJSON_Delete(regions);
                cJSON_Delete(overlay);
                return st;
            }
        }
        cJSON_AddItemToObject(ro, "thumbnail", thumb ? thumb : cJSON_CreateNull());
        cJSON_AddItemToArray(regions, ro);
    }
    hp_overlay_free(&ov);
    cJSON_AddItemToObject(o, "regions", regions);
    cJSON_AddItemToObject(o, "overlay_image", overlay ? overlay : cJSON_CreateNull());
    *out = o;
    return HP_OK;
}

/* ---- the case taken together ---- */

static cJSON *case_findings(const cJSON *slides, const hp_findings_input *fi)
{
    cJSON *o = cJSON_CreateObject();
    int n = cJSON_GetArraySize(slides);
    double tissue = 0, tiles = 0, ent_sum = 0, unc_sum = 0, ent_tiles = 0;
    for (const cJSON *s = slides->child; s; s = s->next) {
        tissue += hp_fi_num(s, "tissue_area_mm2");
        double t = hp_fi_num(s, "tiles_analysed");
        tiles += t;
    }
    /* Uncertainty, weighted by each slide's analysed tiles, from the unrounded findings. */
    for (int i = 0; i < n; i++) {
        const cJSON *u = hp_fi_get(fi[i].root, "uncertainty");
        double t = hp_fi_num(hp_fi_get(fi[i].root, "analysis"), "tiles_analysed");
        if (cJSON_IsNumber(hp_fi_get(u, "mean_entropy")) && t > 0) {
            ent_sum += t * hp_fi_num(u, "mean_entropy");
            unc_sum += t * hp_fi_num(u, "fraction_uncertain");
            ent_tiles += t;
        }
    }
    cJSON_AddNumberToObject(o, "slide_count", n);
    add_num(o, "tissue_area_mm2", tissue, 3);
    cJSON_AddNumberToObject(o, "tiles_analysed", tiles);
    cJSON *classes = cJSON_AddArrayToObject(o, "classes");
    const cJSON *first = cJSON_GetObjectItemCaseSensitive(slides->child, "classes");
    int k = 0;
    for (const cJSON *c = first->child; c; c = c->next, k++) {
        double area = 0, tc = 0, rc = 0;
        for (int i = 0; i < n; i++) {
            const cJSON *ci = cJSON_GetArrayItem(hp_fi_get(fi[i].root, "classes"), k);
            area += hp_fi_num(ci, "area_mm2");
            tc += hp_fi_num(ci, "tile_count");
            rc += hp_fi_num(ci, "region_count");
        }
        cJSON *co = cJSON_CreateObject();
        cJSON_AddStringToObject(co, "name", hp_fi_str(c, "name"));
        add_num(co, "area_mm2", area, 3);
        if (tiles > 0)
            add_num(co, "percent_of_tissue", 100.0 * tc / tiles, 1);
        else
            cJSON_AddNullToObject(co, "percent_of_tissue");
        cJSON_AddNumberToObject(co, "tile_count", tc);
        cJSON_AddNumberToObject(co, "region_count", rc);
        cJSON_AddItemToArray(classes, co);
    }
    /* Invasive: the largest focus of the case; in situ: the largest extent of one slide. */
    static const char *const keys[2] = {"invasive", "in_situ"};
    for (int e = 0; e < 2; e++) {
        const cJSON *best = NULL;
        double area = 0, count = 0, best_v = -1;
        int all_null = 1;
        for (const cJSON *s = slides->child; s; s = s->next) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(s, keys[e]);
            if (cJSON_IsNull(x))
                continue;
            all_null = 0;
            area += hp_fi_num(x, "total_area_mm2");
            count += hp_fi_num(x, "region_count");
            double v = hp_fi_num(x, e == 0 ? "largest_focus_mm" : "extent_mm");
            if (cJSON_IsTrue(hp_fi_get(x, "present")) && v > best_v) {
                best_v = v;
                best = x;
            }
        }
        if (all_null) {
            cJSON_AddNullToObject(o, keys[e]);
            continue;
        }
        cJSON *x = best ? cJSON_Duplicate(best, 1) : NULL;
        if (!x) { /* assessed, nothing found: copy the first slide's empty summary */
            for (const cJSON *s = slides->child; s && !x; s = s->next)
                if (!cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(s, keys[e])))
                    x = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(s, keys[e]), 1);
        }
        cJSON_ReplaceItemInObjectCaseSensitive(x, "total_area_mm2", cJSON_CreateNumber(hp_report_round(area, 3)));
        cJSON_ReplaceItemInObjectCaseSensitive(x, "region_count", cJSON_CreateNumber(count));
        cJSON_AddItemToObject(o, keys[e], x);
    }
    cJSON *flags = cJSON_AddArrayToObject(o, "qc_flags");
    for (const cJSON *s = slides->child; s; s = s->next) {
        const cJSON *qc = cJSON_GetObjectItemCaseSensitive(s, "qc");
        const cJSON *d = hp_fi_get(qc, "descriptions")->child;
        for (const cJSON *fl = hp_fi_get(qc, "flags")->child; fl; fl = fl->next, d = d ? d->next : NULL) {
            cJSON *q = cJSON_CreateObject();
            cJSON_AddStringToObject(q, "slide_id", hp_fi_str(s, "slide_id"));
            cJSON_AddStringToObject(q, "flag", fl->valuestring);
            cJSON_AddStringToObject(q, "description", d ? d->valuestring : fl->valuestring);
            cJSON_AddItemToArray(flags, q);
        }
    }
    cJSON *u = cJSON_AddObjectToObject(o, "uncertainty");
    if (ent_tiles > 0) {
        add_num(u, "mean_entropy", ent_sum / ent_tiles, 3);
        add_num(u, "percent_uncertain", 100.0 * unc_sum / ent_tiles, 1);
    } else {
        cJSON_AddNullToObject(u, "mean_entropy");
        cJSON_AddNullToObject(u, "percent_uncertain");
    }
    add_num(u, "threshold", hp_fi_num(hp_fi_get(fi[0].root, "uncertainty"), "threshold"), 3);
    return o;
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
    cJSON_AddItemToObject(ev, "region_id", cJSON_IsNumber(region_id) ? cJSON_CreateNumber(region_id->valuedouble) : cJSON_CreateNull());
    cJSON *tiles = NULL;
    for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s && cJSON_IsNumber(region_id); s = s->next) {
        if (strcmp(hp_fi_str(s, "slide_id"), slide_id))
            continue;
        for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
            if (hp_fi_num(r, "region_id") == region_id->valuedouble)
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

static int find_class(const cJSON *classes, const char *name)
{
    int i = 0;
    for (const cJSON *c = classes->child; c; c = c->next, i++)
        if (!strcasecmp(hp_fi_str(c, "name"), name))
            return i;
    return -1;
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
        for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s; s = s->next)
            for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
                if (!strcasecmp(hp_fi_str(r, "class"), cat == HP_CAT_BENIGN ? "benign" : "normal") && hp_fi_num(r, "area_mm2") > best) {
                    best = hp_fi_num(r, "area_mm2");
                    prob = hp_fi_num(r, "mean_prob");
                }
        return prob;
    }
    if (!sid || !cJSON_IsNumber(rid))
        return -1;
    for (const cJSON *s = cJSON_GetObjectItemCaseSensitive(report, "slides")->child; s; s = s->next)
        if (!strcmp(hp_fi_str(s, "slide_id"), sid))
            for (const cJSON *r = hp_fi_get(s, "regions")->child; r; r = r->next)
                if (hp_fi_num(r, "region_id") == rid->valuedouble)
                    return hp_fi_num(r, "mean_prob");
    return -1;
}

static int derive_category(const cJSON *report, const hp_care_rules *rules)
{
    const cJSON *cf = cJSON_GetObjectItemCaseSensitive(report, "case_findings");
    if (hp_fi_num(cf, "tiles_analysed") < rules->min_tiles_analysed || hp_fi_num(cf, "tiles_analysed") < 1)
        return HP_CAT_INDETERMINATE;
    const cJSON *inv = hp_fi_get(cf, "invasive");
    if (cJSON_IsObject(inv) && cJSON_IsTrue(hp_fi_get(inv, "present")) &&
        hp_fi_num(inv, "largest_focus_mm") >= rules->invasive_min_focus_mm)
        return HP_CAT_INVASIVE;
    const cJSON *is = hp_fi_get(cf, "in_situ");
    if (cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present")) &&
        hp_fi_num(is, "extent_mm") >= rules->in_situ_min_extent_mm)
        return HP_CAT_IN_SITU;
    const cJSON *classes = hp_fi_get(cf, "classes");
    int b = find_class(classes, "benign");
    if (b >= 0 && hp_fi_num(cJSON_GetArrayItem(classes, b), "percent_of_tissue") >= rules->benign_min_percent)
        return HP_CAT_BENIGN;
    return find_class(classes, "normal") >= 0 ? HP_CAT_NORMAL : HP_CAT_INDETERMINATE;
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

static hp_status add_statements_and_plan(cJSON *report, const hp_case_file *cf, const hp_care_rules *rules,
                                         hp_error *err)
{
    stmt_ctx c = {report, cJSON_AddArrayToObject(report, "statements"), cJSON_CreateObject(), 0};
    const cJSON *cfind = cJSON_GetObjectItemCaseSensitive(report, "case_findings");
    int cat = derive_category(report, rules);
    cJSON *diag_ids = cJSON_CreateArray();
    const cJSON *inv = hp_fi_get(cfind, "invasive");
    const cJSON *is = hp_fi_get(cfind, "in_situ");
    const cJSON *classes = hp_fi_get(cfind, "classes");

    /* Diagnosis statements */
    if (cat == HP_CAT_INVASIVE) {
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
    if (cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present"))) {
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
    if (cat == HP_CAT_BENIGN || cat == HP_CAT_NORMAL) {
        int k = find_class(classes, cat == HP_CAT_BENIGN ? "benign" : "normal");
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
                                       v, 1, class_evidence(report, cat == HP_CAT_BENIGN ? "benign" : "normal"), "category");
        cJSON_AddItemToArray(diag_ids, cJSON_CreateString(id));
    }
    if (cat == HP_CAT_INDETERMINATE) {
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
    if (cJSON_IsObject(inv) && cat != 0 && cJSON_IsTrue(hp_fi_get(inv, "present"))) {
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
    if (cJSON_GetArraySize(reasons) > 0) {
        level = "low";
    } else {
        if (pct > rules->moderate_percent_uncertain_above)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("share of uncertain tiles above the rule table's moderate limit"));
        if (ent > rules->moderate_mean_entropy_above)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("mean entropy above the rule table's moderate limit"));
        if (support >= 0 && support < rules->moderate_support_below)
            cJSON_AddItemToArray(reasons, cJSON_CreateString("mean probability of the region behind the category below the rule table's limit"));
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
    cJSON *facts = cJSON_Duplicate(cf->facts, 1);
    cJSON_AddStringToObject(facts, "category", hp_category_get((hp_category)cat)->name);
    cJSON_AddStringToObject(facts, "confidence", level);
    cJSON_AddBoolToObject(facts, "qc_failed", cJSON_GetArraySize(hp_fi_get(cfind, "qc_flags")) > 0);
    if (cJSON_IsObject(inv) && cJSON_IsTrue(hp_fi_get(inv, "present")))
        cJSON_AddNumberToObject(facts, "invasive_focus_mm", hp_fi_num(inv, "largest_focus_mm"));
    else
        cJSON_AddNullToObject(facts, "invasive_focus_mm");
    if (cJSON_IsObject(is) && cJSON_IsTrue(hp_fi_get(is, "present")))
        cJSON_AddNumberToObject(facts, "in_situ_extent_mm", hp_fi_num(is, "extent_mm"));
    else
        cJSON_AddNullToObject(facts, "in_situ_extent_mm");
    const cJSON *birads = hp_fi_get(cf->facts, "birads");
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
                                  const hp_care_rules *rules, const char *report_dir, const char *now,
                                  cJSON **out, hp_error *err)
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
    cJSON_AddItemToObject(r, "model", model_section(fi[0].root));
    cJSON *slides = cJSON_AddArrayToObject(r, "slides");
    for (int i = 0; i < n; i++) {
        cJSON *s = NULL;
        if ((st = slide_section(&fi[i], report_dir, &s, err))) {
            cJSON_Delete(r);
            return st;
        }
        cJSON_AddItemToArray(slides, s);
    }
    cJSON_AddItemToObject(r, "case_findings", case_findings(slides, fi));
    if ((st = add_statements_and_plan(r, cf, rules, err))) {
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
