#include "report/report_sections.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "report/json_pointer.h"
#include "report/report_content.h"
#include "report/report_images.h"

#define EVIDENCE_TILES_MAX 5 /* per region in the report (findings keep up to 10) */
#define EVIDENCE_IMAGES_MAX 3 /* evidence tiles shown as images, per region with thumbnails */
#define THUMBNAILS_PER_CLASS 3
#define ISOLATED_TILES_MAX 10 /* locations per class and slide (findings keep up to 20) */

cJSON *hp_report_model_section(const cJSON *findings)
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

static cJSON *tiles_in(const cJSON *list, int max)
{
    cJSON *arr = cJSON_CreateArray();
    int k = 0;
    for (const cJSON *t = list->child; t && k < max; t = t->next, k++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "x", round(hp_fi_num(t, "x")));
        cJSON_AddNumberToObject(o, "y", round(hp_fi_num(t, "y")));
        cJSON_AddNumberToObject(o, "size", round(hp_fi_num(t, "size")));
        add_num(o, "prob", hp_fi_num(t, "prob"), 3);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *tiles_of(const cJSON *region)
{
    return tiles_in(hp_fi_get(region, "evidence_tiles"), EVIDENCE_TILES_MAX);
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
    if (cJSON_IsString(rid)) {
        cJSON_AddStringToObject(o, "slide_id", hp_fi_str(hp_fi_get(findings, "slide"), "slide_id"));
        cJSON_AddStringToObject(o, "region_id", rid->valuestring);
    } else {
        cJSON_AddNullToObject(o, "slide_id");
        cJSON_AddNullToObject(o, "region_id");
    }
    return o;
}

hp_status hp_report_slide_section(const hp_findings_input *in, struct hp_slide *slide_file, const char *report_dir,
                                  cJSON **out, hp_error *err)
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
        cJSON_AddItemToObject(k, "category", cJSON_Duplicate(hp_fi_get(c, "category"), 1));
        add_num(k, "area_mm2", hp_fi_num(c, "area_mm2"), 3);
        add_num_or_null(k, "percent_of_tissue", hp_fi_get(c, "fraction_of_tissue"), 100.0, 1);
        cJSON_AddNumberToObject(k, "tile_count", hp_fi_num(c, "tile_count"));
        cJSON_AddNumberToObject(k, "region_count", hp_fi_num(c, "region_count"));
        cJSON_AddItemToArray(classes, k);
    }
    cJSON *iso = cJSON_AddArrayToObject(o, "isolated_tiles");
    for (const cJSON *x = hp_fi_get(f, "isolated_tiles")->child; x; x = x->next) {
        cJSON *io = cJSON_CreateObject();
        cJSON_AddStringToObject(io, "class", hp_fi_str(x, "class"));
        cJSON_AddItemToObject(io, "category", cJSON_Duplicate(hp_fi_get(x, "category"), 1));
        cJSON_AddNumberToObject(io, "tile_count", hp_fi_num(x, "tile_count"));
        add_num(io, "area_mm2", hp_fi_num(x, "area_mm2"), 3);
        cJSON_AddItemToObject(io, "tiles", tiles_in(hp_fi_get(x, "tiles"), ISOLATED_TILES_MAX));
        cJSON_AddItemToArray(iso, io);
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
        hp_status st = hp_report_image_overlay(src, report_dir, name, hp_fi_num(slide, "level0_width_px"),
                                               hp_fi_num(slide, "mpp_x"), sid, &ov, &overlay, err);
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
        const char *id = hp_fi_str(r, "id");
        cJSON_AddStringToObject(ro, "region_id", id);
        cJSON_AddStringToObject(ro, "label", hp_fi_str(r, "label"));
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
            snprintf(name, sizeof name, "%s-%s.png", sid, id);
            hp_status st = hp_report_image_thumbnail(&ov, box, report_dir, name, &thumb, err);
            if (st) {
                hp_overlay_free(&ov);
                cJSON_Delete(ro);
                cJSON_Delete(o);
                cJSON_Delete(regions);
                cJSON_Delete(overlay);
                return st;
            }
        }
        cJSON_AddItemToObject(ro, "thumbnail", thumb ? thumb : cJSON_CreateNull());
        cJSON *tissue = NULL;
        if (slide_file && in_class < THUMBNAILS_PER_CLASS) {
            char name[160];
            snprintf(name, sizeof name, "%s-%s-tissue.png", sid, id);
            hp_status st = hp_report_image_from_slide(slide_file, box, 0.25, hp_fi_num(slide, "mpp_x"), sid,
                                                       report_dir, name, &tissue, err);
            if (st) {
                hp_overlay_free(&ov);
                cJSON_Delete(ro);
                cJSON_Delete(o);
                cJSON_Delete(regions);
                cJSON_Delete(overlay);
                return st;
            }
        }
        cJSON_AddItemToObject(ro, "tissue_thumbnail", tissue ? tissue : cJSON_CreateNull());
        /* The first evidence tiles of the leading regions as small images of the tissue itself,
         * so the reviewer sees what the model saw. */
        cJSON *ev = cJSON_GetObjectItemCaseSensitive(ro, "evidence_tiles");
        int k = 0;
        for (cJSON *t = ev ? ev->child : NULL; slide_file && in_class < THUMBNAILS_PER_CLASS && t &&
                                              k < EVIDENCE_IMAGES_MAX;
             t = t->next, k++) {
            char name[192];
            snprintf(name, sizeof name, "%s-%s-tile%d.png", sid, id, k + 1);
            double tb[4] = {hp_fi_num(t, "x"), hp_fi_num(t, "y"), hp_fi_num(t, "size"), hp_fi_num(t, "size")};
            cJSON *img = NULL;
            hp_status st = hp_report_image_from_slide(slide_file, tb, 0, hp_fi_num(slide, "mpp_x"), sid, report_dir,
                                                      name, &img, err);
            if (st) {
                hp_overlay_free(&ov);
                cJSON_Delete(ro);
                cJSON_Delete(o);
                cJSON_Delete(regions);
                cJSON_Delete(overlay);
                return st;
            }
            cJSON_AddItemToObject(t, "image", img);
        }
        cJSON_AddItemToArray(regions, ro);
    }
    hp_overlay_free(&ov);
    cJSON_AddItemToObject(o, "regions", regions);
    cJSON_AddItemToObject(o, "overlay_image", overlay ? overlay : cJSON_CreateNull());
    *out = o;
    return HP_OK;
}

/* ---- the case taken together ---- */

/* Whether the model is valid for every slide of the case: out of domain when any slide is (each
 * with its reason), checked when a detector scored every slide, and the calibrated confidence
 * weighted by each slide's analysed tiles (null unless every slide has one). */
static cJSON *case_domain(const hp_findings_input *fi, int n)
{
    cJSON *d = cJSON_CreateObject();
    int ood = 0, checked = 1, calibrated = 1;
    double conf = 0, tiles = 0;
    cJSON *reasons = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const cJSON *dm = hp_fi_get(fi[i].root, "domain");
        checked &= cJSON_IsTrue(hp_fi_get(dm, "checked"));
        if (cJSON_IsTrue(hp_fi_get(dm, "out_of_domain"))) {
            ood = 1;
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "slide_id", hp_fi_str(hp_fi_get(fi[i].root, "slide"), "slide_id"));
            cJSON_AddStringToObject(r, "reason", hp_fi_str(dm, "reason"));
            cJSON_AddItemToArray(reasons, r);
        }
        const cJSON *cal = hp_fi_get(dm, "calibration");
        double t = hp_fi_num(hp_fi_get(fi[i].root, "analysis"), "tiles_analysed");
        if (cJSON_IsObject(cal) && cJSON_IsNumber(hp_fi_get(cal, "calibrated_confidence"))) {
            conf += t * hp_fi_num(cal, "calibrated_confidence");
            tiles += t;
        } else {
            calibrated = 0;
        }
    }
    cJSON_AddBoolToObject(d, "out_of_domain", ood);
    cJSON_AddBoolToObject(d, "checked", checked);
    cJSON_AddItemToObject(d, "reasons", reasons);
    const cJSON *cal0 = hp_fi_get(hp_fi_get(fi[0].root, "domain"), "calibration");
    if (calibrated && tiles > 0) {
        add_num(d, "calibrated_confidence", conf / tiles, 3);
        add_num(d, "temperature", hp_fi_num(cal0, "temperature"), 4);
        add_num(d, "ece_after", hp_fi_num(cal0, "ece_after"), 4);
    } else {
        cJSON_AddNullToObject(d, "calibrated_confidence");
        cJSON_AddNullToObject(d, "temperature");
        cJSON_AddNullToObject(d, "ece_after");
    }
    return d;
}

/* Whether any slide's tiles were super-resolved before classification (findings.json
 * analysis.super_resolution), each such slide with its model: evidence a reader must know is
 * not the scanned image. Findings made before --sr existed count as not super-resolved. */
static cJSON *case_super_resolution(const hp_findings_input *fi, int n)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const cJSON *sr = hp_fi_get(hp_fi_get(fi[i].root, "analysis"), "super_resolution");
        if (!cJSON_IsTrue(hp_fi_get(sr, "used")))
            continue;
        const cJSON *m = hp_fi_get(sr, "model");
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "slide_id", hp_fi_str(hp_fi_get(fi[i].root, "slide"), "slide_id"));
        cJSON_AddStringToObject(e, "model", hp_fi_str(m, "name") ? hp_fi_str(m, "name") : "?");
        const char *v = hp_fi_str(m, "version");
        cJSON_AddItemToObject(e, "version", v ? cJSON_CreateString(v) : cJSON_CreateNull());
        cJSON_AddStringToObject(e, "sha256", hp_fi_str(m, "sha256") ? hp_fi_str(m, "sha256") : "");
        cJSON_AddNumberToObject(e, "scale", hp_fi_num(m, "scale"));
        add_num(e, "input_mpp", hp_fi_num(m, "input_mpp"), 4);
        add_num(e, "output_mpp", hp_fi_num(m, "output_mpp"), 4);
        const char *why = hp_fi_str(sr, "reason");
        cJSON_AddStringToObject(e, "reason", why ? why : "");
        cJSON_AddItemToArray(list, e);
    }
    cJSON_AddBoolToObject(o, "used", cJSON_GetArraySize(list) > 0);
    cJSON_AddItemToObject(o, "slides", list);
    return o;
}

cJSON *hp_report_case_findings(const cJSON *slides, const hp_findings_input *fi)
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
    /* One model made every slide's findings (checked before), so the first says it for all. */
    cJSON_AddItemToObject(o, "diagnostic_categories", cJSON_Duplicate(hp_fi_get(fi[0].root, "diagnostic_categories"), 1));
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
        cJSON_AddItemToObject(co, "category", cJSON_Duplicate(hp_fi_get(c, "category"), 1));
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
    /* Isolated tiles per class over the slides, with where they are on each. */
    cJSON *iso = cJSON_AddArrayToObject(o, "isolated_tiles");
    for (const cJSON *c = first->child; c; c = c->next) {
        const char *cls = hp_fi_str(c, "name");
        double count = 0, area_raw = 0;
        cJSON *where = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            const cJSON *s = cJSON_GetArrayItem(slides, i);
            for (const cJSON *x = hp_fi_get(fi[i].root, "isolated_tiles")->child; x; x = x->next) {
                if (strcmp(hp_fi_str(x, "class"), cls))
                    continue;
                count += hp_fi_num(x, "tile_count");
                area_raw += hp_fi_num(x, "area_mm2");
                cJSON *wo = cJSON_CreateObject();
                cJSON_AddStringToObject(wo, "slide_id", hp_fi_str(s, "slide_id"));
                cJSON_AddItemToObject(wo, "tiles", tiles_in(hp_fi_get(x, "tiles"), ISOLATED_TILES_MAX));
                cJSON_AddItemToArray(where, wo);
            }
        }
        if (count == 0) {
            cJSON_Delete(where);
            continue;
        }
        cJSON *io = cJSON_CreateObject();
        cJSON_AddStringToObject(io, "class", cls);
        cJSON_AddItemToObject(io, "category", cJSON_Duplicate(hp_fi_get(c, "category"), 1));
        cJSON_AddNumberToObject(io, "tile_count", count);
        add_num(io, "area_mm2", area_raw, 3);
        cJSON_AddItemToObject(io, "locations", where);
        cJSON_AddItemToArray(iso, io);
    }
    /* Invasive evidence: what the category logic weighs when no focus is large enough. */
    const cJSON *inv_case = cJSON_GetObjectItemCaseSensitive(o, "invasive");
    if (cJSON_IsObject(inv_case)) {
        double iso_tiles = 0, iso_area = 0;
        for (const cJSON *x = iso->child; x; x = x->next)
            if (!strcmp(hp_fi_str(x, "class"), hp_fi_str(inv_case, "class"))) {
                iso_tiles = hp_fi_num(x, "tile_count");
                iso_area = hp_fi_num(x, "area_mm2");
            }
        double reg_area = hp_fi_num(inv_case, "total_area_mm2");
        cJSON *ev = cJSON_AddObjectToObject(o, "invasive_evidence");
        cJSON_AddStringToObject(ev, "class", hp_fi_str(inv_case, "class"));
        cJSON_AddNumberToObject(ev, "isolated_tiles", iso_tiles);
        add_num(ev, "isolated_area_mm2", iso_area, 3);
        add_num(ev, "region_area_mm2", reg_area, 3);
        add_num(ev, "total_area_mm2", iso_area + reg_area, 3);
    } else {
        cJSON_AddNullToObject(o, "invasive_evidence");
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
    cJSON_AddItemToObject(o, "domain", case_domain(fi, n));
    cJSON_AddItemToObject(o, "super_resolution", case_super_resolution(fi, n));
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

