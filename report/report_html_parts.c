/* Parts of the HTML report (see report_html.h): findings, statements and the draft care plan. */
#include <stdio.h>
#include <string.h>

#include "report/html_writer.h"

static void cell_num(hp_hw *w, const cJSON *obj, const char *base, const char *key,
                     const char *if_null)
{
    hw_raw(w, "<td class=\"n\">");
    hw_num_at(w, obj, base, key, if_null);
    hw_raw(w, "</td>");
}

static void label_row(hp_hw *w, const char *label)
{
    hw_raw(w, "<tr><th>");
    hw_text(w, label);
    hw_raw(w, "</th><td>");
}

/* Per-class table (schema $defs/class_summary) of the array at `base`/classes. */
void hw_class_table(hp_hw *w, const cJSON *parent, const char *base)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, base, "classes");
    const cJSON *cls = hw_get(w, parent, base, "classes", HW_ARR);
    hw_raw(w, "<table class=\"classes\"><tr><th>Class</th><th>Area (<span class=\"ref unit\">"
              "mm²</span>)</th><th>Percent of tissue</th><th>Tiles</th><th>Regions</th></tr>");
    int i = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cls) {
        char cp[HW_PTR_MAX];
        hw_ptr_i(cp, p, i++);
        hw_raw(w, "<tr><td>");
        hw_ref_at(w, c, cp, "name", NULL);
        hw_raw(w, "</td>");
        cell_num(w, c, cp, "area_mm2", NULL);
        cell_num(w, c, cp, "percent_of_tissue", "—");
        cell_num(w, c, cp, "tile_count", NULL);
        cell_num(w, c, cp, "region_count", NULL);
        hw_raw(w, "</tr>");
    }
    hw_raw(w, "</table>");
}

/* The invasive or in situ summary (schema $defs/invasive, $defs/in_situ) at `base`/`key`. */
void hw_disease_summary(hp_hw *w, const cJSON *parent, const char *base, const char *key,
                        const char *label, int in_situ)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, base, key);
    const cJSON *d = hw_get(w, parent, base, key, HW_OBJ | HW_NULL);
    label_row(w, label);
    if (!d) {
        hw_text(w, "the model has no class for it");
        hw_raw(w, "</td></tr>");
        return;
    }
    const cJSON *present = hw_get(w, d, p, "present", HW_BOOL);
    hw_text(w, cJSON_IsTrue(present) ? "present" : "not found");
    hw_text(w, " (class ");
    hw_ref_at(w, d, p, "class", NULL);
    hw_text(w, "); ");
    if (in_situ) {
        hw_text(w, "extent ");
        hw_num_at(w, d, p, "extent_mm", NULL);
        hw_raw(w, " <span class=\"ref unit\">mm</span>, ");
    }
    hw_text(w, "largest focus ");
    hw_num_at(w, d, p, "largest_focus_mm", NULL);
    hw_raw(w, " <span class=\"ref unit\">mm</span>, total area ");
    hw_num_at(w, d, p, "total_area_mm2", NULL);
    hw_raw(w, " <span class=\"ref unit\">mm²</span> in ");
    hw_num_at(w, d, p, "region_count", NULL);
    hw_text(w, " region(s); largest on slide ");
    hw_ref_at(w, d, p, "slide_id", "none");
    hw_text(w, ", region ");
    hw_ref_at(w, d, p, "region_id", "none");
    hw_raw(w, "</td></tr>");
}

static void tiles_list(hp_hw *w, const cJSON *tiles, const char *p, const char *dir);

/* "Isolated <class> tiles: N tiles, X mm², review", with where they are: evidence that formed
 * no region is shown, never dropped. */
void hw_isolated_row(hp_hw *w, const cJSON *parent, const char *base, int with_locations)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, base, "isolated_tiles");
    const cJSON *iso = hw_get(w, parent, base, "isolated_tiles", HW_ARR);
    label_row(w, with_locations ? "Isolated tiles (no region)" : "Isolated tiles (no region; locations under Findings by slide)");
    if (cJSON_GetArraySize(iso) == 0)
        hw_text(w, "none: every class's tiles lie in its regions");
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, iso) {
        char xp[HW_PTR_MAX], lp[HW_PTR_MAX];
        hw_ptr_i(xp, p, i++);
        hw_raw(w, "<div class=\"isolated\"><strong>isolated ");
        hw_ref_at(w, x, xp, "class", NULL);
        hw_raw(w, " tiles</strong>: ");
        hw_num_at(w, x, xp, "tile_count", NULL);
        hw_raw(w, " tiles, ");
        hw_num_at(w, x, xp, "area_mm2", NULL);
        hw_raw(w, " <span class=\"ref unit\">mm²</span>, <strong>review</strong>");
        hw_ptr(lp, xp, "locations");
        const cJSON *locs = hw_get(w, x, xp, "locations", HW_ARR);
        if (!with_locations) {
            hw_raw(w, "</div>");
            continue;
        }
        int j = 0;
        const cJSON *l;
        cJSON_ArrayForEach(l, locs) {
            char ip[HW_PTR_MAX], tp[HW_PTR_MAX];
            hw_ptr_i(ip, lp, j++);
            hw_ptr(tp, ip, "tiles");
            hw_raw(w, "<div class=\"evidence\">slide ");
            hw_ref_at(w, l, ip, "slide_id", NULL);
            hw_raw(w, ": ");
            tiles_list(w, hw_get(w, l, ip, "tiles", HW_ARR), tp, NULL);
            hw_raw(w, "</div>");
        }
        hw_raw(w, "</div>");
    }
    hw_raw(w, "</td></tr>");
}

static void uncertainty_row(hp_hw *w, const cJSON *parent, const char *base)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, base, "uncertainty");
    const cJSON *u = hw_get(w, parent, base, "uncertainty", HW_OBJ);
    label_row(w, "Model uncertainty");
    hw_text(w, "mean normalized entropy ");
    hw_num_at(w, u, p, "mean_entropy", "not known");
    hw_text(w, "; ");
    hw_num_at(w, u, p, "percent_uncertain", "not known");
    hw_raw(w, "<span class=\"ref unit\">%</span> of tiles above the threshold ");
    hw_num_at(w, u, p, "threshold", NULL);
    hw_raw(w, "</td></tr>");
}

static void tiles_list(hp_hw *w, const cJSON *tiles, const char *p, const char *dir)
{
    if (cJSON_GetArraySize(tiles) == 0) {
        hw_text(w, "none");
        return;
    }
    hw_raw(w, "<ul class=\"tiles\">");
    int i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, tiles) {
        char tp[HW_PTR_MAX];
        hw_ptr_i(tp, p, i++);
        hw_raw(w, "<li>");
        if (dir && cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(t, "image"))) {
            char ip[HW_PTR_MAX];
            hw_ptr(ip, tp, "image");
            hw_raw(w, "<span class=\"tile-img\">");
            hw_image(w, cJSON_GetObjectItemCaseSensitive(t, "image"), ip, dir, "evidence tile");
            hw_raw(w, "</span>");
        }
        hw_raw(w, "x ");
        hw_num_at(w, t, tp, "x", NULL);
        hw_raw(w, ", y ");
        hw_num_at(w, t, tp, "y", NULL);
        hw_raw(w, ", size ");
        hw_num_at(w, t, tp, "size", NULL);
        hw_raw(w, " px, probability ");
        hw_num_at(w, t, tp, "prob", NULL);
        hw_raw(w, "</li>");
    }
    hw_raw(w, "</ul>");
}

static void regions_table(hp_hw *w, const cJSON *slide, const char *sp, const char *dir)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, sp, "regions");
    const cJSON *regions = hw_get(w, slide, sp, "regions", HW_ARR);
    if (cJSON_GetArraySize(regions) == 0) {
        hw_raw(w, "<p>No measured regions.</p>");
        return;
    }
    hw_raw(w, "<table class=\"regions\"><tr><th>Region</th><th>Thumbnail</th><th>Size</th>"
              "<th>Probability</th><th>Bounding box (level-zero pixels)</th>"
              "<th>Evidence tiles (level-zero pixels)</th></tr>");
    int i = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, regions) {
        char rp[HW_PTR_MAX], ip[HW_PTR_MAX], tp[HW_PTR_MAX];
        hw_ptr_i(rp, p, i++);
        hw_raw(w, "<tr id=\"region-");
        hw_text(w, hw_get_str(w, r, rp, "region_id", 0));
        hw_raw(w, "\"><td><strong>");
        hw_ref_at(w, r, rp, "region_id", NULL);
        hw_raw(w, "</strong><br>");
        hw_str_at(w, r, rp, "label", NULL);
        hw_raw(w, "</td><td>");
        /* The tissue as scanned (when the slide was given to report build), then the heatmap. */
        hw_ptr(ip, rp, "tissue_thumbnail");
        const cJSON *tt = hw_get(w, r, rp, "tissue_thumbnail", HW_OBJ | HW_NULL);
        if (tt) {
            hw_image(w, tt, ip, dir, "region tissue thumbnail");
            hw_raw(w, "<br>");
        }
        hw_ptr(ip, rp, "thumbnail");
        const cJSON *th = hw_get(w, r, rp, "thumbnail", HW_OBJ | HW_NULL);
        if (th)
            hw_image(w, th, ip, dir, "region heatmap thumbnail");
        else
            hw_text(w, "no overlay");
        hw_raw(w, "</td><td>area ");
        hw_num_at(w, r, rp, "area_mm2", NULL);
        hw_raw(w, " <span class=\"ref unit\">mm²</span><br>greatest dimension ");
        hw_num_at(w, r, rp, "diameter_mm", NULL);
        hw_raw(w, " <span class=\"ref unit\">mm</span></td><td>mean ");
        hw_num_at(w, r, rp, "mean_prob", NULL);
        hw_raw(w, "<br>highest ");
        hw_num_at(w, r, rp, "max_prob", NULL);
        hw_raw(w, "</td><td>");
        hw_ptr(tp, rp, "bbox_level0");
        const cJSON *bb = hw_get(w, r, rp, "bbox_level0", HW_ARR);
        if (bb && cJSON_GetArraySize(bb) != 4)
            hw_fail(w, HP_ERR_INVALID, "report.json: %s: expected [x, y, w, h]", tp);
        static const char *const bl[] = {"x ", ", y ", ", width ", ", height "};
        for (int k = 0; bb && k < 4 && k < cJSON_GetArraySize(bb); k++) {
            char bp[HW_PTR_MAX];
            hw_ptr_i(bp, tp, k);
            hw_text(w, bl[k]);
            hw_num(w, cJSON_GetArrayItem(bb, k), bp, NULL);
        }
        hw_raw(w, "</td><td>");
        hw_ptr(tp, rp, "evidence_tiles");
        tiles_list(w, hw_get(w, r, rp, "evidence_tiles", HW_ARR), tp, dir);
        hw_raw(w, "</td></tr>");
    }
    hw_raw(w, "</table>");
}

static void slide_section(hp_hw *w, const cJSON *s, const char *sp, const char *dir)
{
    hw_raw(w, "<section class=\"slide\"><h3>Slide ");
    hw_ref_at(w, s, sp, "slide_id", NULL);
    hw_raw(w, "</h3><table>");
    label_row(w, "Slide file hash");
    hw_ref_at(w, s, sp, "sha256", NULL);
    hw_raw(w, "</td></tr>");
    label_row(w, "Findings file hash");
    hw_ref_at(w, s, sp, "findings_sha256", NULL);
    hw_raw(w, "</td></tr>");
    label_row(w, "Analysed");
    hw_ref_at(w, s, sp, "analysed_at", NULL);
    hw_text(w, "; format ");
    hw_ref_at(w, s, sp, "format", NULL);
    hw_text(w, ", ");
    hw_num_at(w, s, sp, "mpp", NULL);
    hw_raw(w, " <span class=\"ref unit\">µm</span> per pixel</td></tr>");
    label_row(w, "Tissue");
    hw_num_at(w, s, sp, "tissue_area_mm2", NULL);
    hw_raw(w, " <span class=\"ref unit\">mm²</span> in ");
    hw_num_at(w, s, sp, "tiles_analysed", NULL);
    hw_raw(w, " analysed tiles</td></tr>");
    hw_disease_summary(w, s, sp, "invasive", "Invasive", 0);
    hw_disease_summary(w, s, sp, "in_situ", "In situ", 1);
    uncertainty_row(w, s, sp);
    char qp[HW_PTR_MAX], fp[HW_PTR_MAX], dp[HW_PTR_MAX];
    hw_ptr(qp, sp, "qc");
    const cJSON *qc = hw_get(w, s, sp, "qc", HW_OBJ);
    const cJSON *flags = hw_get(w, qc, qp, "flags", HW_ARR);
    const cJSON *descs = hw_get(w, qc, qp, "descriptions", HW_ARR);
    hw_ptr(fp, qp, "flags");
    hw_ptr(dp, qp, "descriptions");
    label_row(w, "Quality control");
    if (flags && descs && cJSON_GetArraySize(flags) != cJSON_GetArraySize(descs))
        hw_fail(w, HP_ERR_INVALID, "report.json: %s: one description per flag is needed", qp);
    if (cJSON_GetArraySize(flags) == 0)
        hw_text(w, "no flags raised");
    else
        hw_raw(w, "<ul class=\"qc\">");
    for (int i = 0; i < cJSON_GetArraySize(flags); i++) {
        char a[HW_PTR_MAX], b[HW_PTR_MAX];
        hw_ptr_i(a, fp, i);
        hw_ptr_i(b, dp, i);
        hw_raw(w, "<li>");
        hw_ref(w, cJSON_GetArrayItem(flags, i), a, NULL);
        hw_raw(w, ": ");
        hw_str(w, cJSON_GetArrayItem(descs, i), b, NULL);
        hw_raw(w, "</li>");
    }
    if (cJSON_GetArraySize(flags) > 0)
        hw_raw(w, "</ul>");
    hw_raw(w, "</td></tr></table><h4>Classes</h4>");
    hw_class_table(w, s, sp);
    hw_raw(w, "<h4>Regions</h4>");
    regions_table(w, s, sp, dir);
    hw_raw(w, "</section>");
}

void hw_findings_section(hp_hw *w, const cJSON *root, const char *report_dir)
{
    /* The case as a whole (classes, foci, QC, overlays) is in the synoptic summary; here each
     * slide's details follow. */
    hw_raw(w, "<section id=\"findings\"><h2>Findings by slide</h2>");
    const cJSON *slides = hw_get(w, root, "", "slides", HW_ARR);
    if (slides && cJSON_GetArraySize(slides) == 0)
        hw_fail(w, HP_ERR_INVALID, "report.json: /slides: a report has at least one slide");
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, slides) {
        char sp[HW_PTR_MAX];
        hw_ptr_i(sp, "/slides", i++);
        slide_section(w, s, sp, report_dir);
    }
    /* Where the isolated tiles are, for review (the summary gives their counts). */
    hw_raw(w, "<h3>Isolated tiles</h3><table>");
    hw_isolated_row(w, hw_get(w, root, "", "case_findings", HW_OBJ), "/case_findings", 1);
    hw_raw(w, "</table></section>");
}

static void evidence(hp_hw *w, const cJSON *st, const char *p)
{
    char ep[HW_PTR_MAX];
    hw_ptr(ep, p, "evidence");
    const cJSON *ev = hw_get(w, st, p, "evidence", HW_ARR);
    if (cJSON_GetArraySize(ev) == 0)
        return;
    hw_raw(w, "<div class=\"evidence\">Evidence: ");
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, ev) {
        char xp[HW_PTR_MAX], tp[HW_PTR_MAX];
        hw_ptr_i(xp, ep, i);
        hw_raw(w, i++ ? "; slide " : "slide ");
        hw_ref_at(w, e, xp, "slide_id", NULL);
        hw_raw(w, ", ");
        const cJSON *rid = hw_get(w, e, xp, "region_id", HW_STR | HW_NULL);
        if (rid) {
            hw_raw(w, "region ");
            hw_ref_at(w, e, xp, "region_id", NULL);
        } else {
            hw_raw(w, "whole slide");
        }
        hw_ptr(tp, xp, "tiles");
        const cJSON *tiles = hw_get(w, e, xp, "tiles", HW_ARR);
        if (cJSON_GetArraySize(tiles) > 0) {
            hw_raw(w, ", tiles ");
            tiles_list(w, tiles, tp, NULL);
        }
    }
    hw_raw(w, "</div>");
}

void hw_statements_section(hp_hw *w, const cJSON *root)
{
    static const char *const sections[] = {"diagnosis", "findings", "qc", "confidence", "model"};
    static const char *const titles[] = {"Diagnosis", "Findings", "Quality control",
                                         "Confidence", "Model"};
    const cJSON *sts = hw_get(w, root, "", "statements", HW_ARR);
    int i = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, sts) {
        char p[HW_PTR_MAX];
        hw_ptr_i(p, "/statements", i++);
        const char *sec = hw_get_str(w, st, p, "section", 0);
        int known = 0;
        for (int k = 0; sec && k < 5; k++)
            known |= strcmp(sec, sections[k]) == 0;
        if (sec && !known)
            hw_fail(w, HP_ERR_INVALID, "report.json: %s/section: unknown section \"%s\"", p, sec);
    }
    hw_raw(w, "<section id=\"statements\"><h2>Statements</h2>");
    for (int k = 0; k < 5; k++) {
        int shown = 0;
        i = 0;
        cJSON_ArrayForEach(st, sts) {
            char p[HW_PTR_MAX];
            hw_ptr_i(p, "/statements", i++);
            const cJSON *sec = cJSON_GetObjectItemCaseSensitive(st, "section");
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(st, "id");
            if (!cJSON_IsString(sec) || strcmp(sec->valuestring, sections[k]) != 0 ||
                !cJSON_IsString(id))
                continue;
            if (!shown++) {
                hw_raw(w, "<h3>");
                hw_text(w, titles[k]);
                hw_raw(w, "</h3>");
            }
            hw_raw(w, "<div class=\"statement\" id=\"stmt-");
            hw_text(w, id->valuestring);
            hw_raw(w, "\" data-statement=\"");
            hw_text(w, id->valuestring);
            hw_raw(w, "\"><p>");
            hw_ref(w, id, NULL, NULL);
            hw_raw(w, " ");
            hw_statement(w, root, st, p);
            hw_raw(w, "</p>");
            evidence(w, st, p);
            hw_raw(w, "</div>");
        }
    }
    hw_raw(w, "</section>");
}

static void facts(hp_hw *w, const cJSON *s, const char *sp, const char *key, const char *label)
{
    char p[HW_PTR_MAX];
    hw_ptr(p, sp, key);
    const cJSON *fs = hw_get(w, s, sp, key, HW_ARR);
    if (cJSON_GetArraySize(fs) == 0)
        return;
    hw_raw(w, "<div class=\"facts\"><strong>");
    hw_text(w, label);
    hw_raw(w, "</strong><ul>");
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, fs) {
        char fp[HW_PTR_MAX], vp[HW_PTR_MAX];
        hw_ptr_i(fp, p, i++);
        hw_ptr(vp, fp, "value");
        hw_raw(w, "<li>");
        hw_ref_at(w, f, fp, "fact", NULL);
        hw_raw(w, " is ");
        if (!cJSON_HasObjectItem(f, "value"))
            hw_fail(w, HP_ERR_INVALID, "report.json: %s: required member \"value\" is missing", fp);
        hw_value(w, cJSON_GetObjectItemCaseSensitive(f, "value"), vp);
        hw_raw(w, " (condition ");
        hw_ref_at(w, f, fp, "condition", NULL);
        hw_raw(w, ")</li>");
    }
    hw_raw(w, "</ul></div>");
}

static void suggestion_card(hp_hw *w, const cJSON *s, const char *sp)
{
    const char *prio = hw_get_str(w, s, sp, "priority", 0);
    hw_raw(w, "<div class=\"card");
    if (prio && strcmp(prio, "urgent") == 0)
        hw_raw(w, " urgent");
    hw_raw(w, "\" data-rule=\"");
    const char *rid = hw_get_str(w, s, sp, "rule_id", 0);
    hw_text(w, rid);
    /* The rule id heads the card: it is what an amendment names the suggestion by. */
    hw_raw(w, "\"><h3><code class=\"ref id\" title=\"id for amendments\">");
    hw_text(w, rid);
    hw_raw(w, "</code> ");
    hw_str_at(w, s, sp, "title", NULL);
    hw_raw(w, "</h3><p class=\"action\">");
    hw_str_at(w, s, sp, "action", NULL);
    hw_raw(w, "</p><table>");
    label_row(w, "Priority and kind");
    hw_text(w, prio);
    hw_raw(w, ", ");
    hw_str_at(w, s, sp, "kind", NULL);
    hw_raw(w, "</td></tr>");
    label_row(w, "Rule");
    hw_ref_at(w, s, sp, "rule_id", NULL);
    hw_raw(w, "</td></tr>");
    char gp[HW_PTR_MAX];
    hw_ptr(gp, sp, "guideline");
    const cJSON *g = hw_get(w, s, sp, "guideline", HW_OBJ);
    label_row(w, "Guideline");
    hw_str_at(w, g, gp, "name", NULL);
    hw_raw(w, ", version ");
    hw_ref_at(w, g, gp, "version", NULL);
    hw_raw(w, "</td></tr>");
    label_row(w, "Strength");
    hw_str_at(w, s, sp, "strength", NULL);
    hw_raw(w, "</td></tr>");
    char svp[HW_PTR_MAX];
    hw_ptr(svp, sp, "services");
    const cJSON *svs = hw_get(w, s, sp, "services", HW_ARR);
    if (cJSON_GetArraySize(svs) > 0) {
        label_row(w, "Services");
        int i = 0;
        const cJSON *sv;
        cJSON_ArrayForEach(sv, svs) {
            char vp[HW_PTR_MAX];
            hw_ptr_i(vp, svp, i++);
            hw_raw(w, "<div>");
            hw_str_at(w, sv, vp, "display", NULL);
            hw_raw(w, " (");
            hw_ref_at(w, sv, vp, "system", NULL);
            hw_raw(w, " ");
            hw_ref_at(w, sv, vp, "code", NULL);
            hw_raw(w, ")</div>");
        }
        hw_raw(w, "</td></tr>");
    }
    hw_raw(w, "</table>");
    facts(w, s, sp, "because", "Because");
    facts(w, s, sp, "personalization", "Personalized by the case");
    char ip[HW_PTR_MAX];
    hw_ptr(ip, sp, "statement_ids");
    const cJSON *ids = hw_get(w, s, sp, "statement_ids", HW_ARR);
    if (cJSON_GetArraySize(ids) > 0) {
        hw_raw(w, "<p class=\"evidence\">Evidence statements: ");
        int i = 0;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) {
            if (!cJSON_IsString(id))
                continue;
            hw_raw(w, i++ ? ", <a class=\"ref\" href=\"#stmt-" : "<a class=\"ref\" href=\"#stmt-");
            hw_text(w, id->valuestring);
            hw_raw(w, "\">");
            hw_text(w, id->valuestring);
            hw_raw(w, "</a>");
        }
        hw_raw(w, "</p>");
    }
    const cJSON *wf = hw_get(w, s, sp, "waits_for", HW_STR | HW_NULL);
    if (wf) {
        char wp[HW_PTR_MAX];
        hw_ptr(wp, sp, "waits_for");
        hw_raw(w, "<p class=\"waits\">Waits for ");
        hw_ref(w, wf, wp, NULL);
        hw_raw(w, ".</p>");
    }
    const cJSON *rca = hw_get(w, s, sp, "requires_clinician_approval", HW_BOOL);
    if (rca && !cJSON_IsTrue(rca))
        hw_fail(w, HP_ERR_INVALID,
                "report.json: %s/requires_clinician_approval: every suggestion requires it", sp);
    hw_raw(w, "<p class=\"approval\">Requires clinician approval — decision: ");
    hw_str_at(w, s, sp, "decision", NULL);
    const cJSON *note = hw_get(w, s, sp, "note", HW_STR | HW_NULL);
    if (note) {
        char np[HW_PTR_MAX];
        hw_ptr(np, sp, "note");
        hw_raw(w, " (note: ");
        hw_str(w, note, np, NULL);
        hw_raw(w, ")");
    }
    hw_raw(w, "</p></div>");
}

void hw_plan_section(hp_hw *w, const cJSON *root)
{
    const char *pb = "/care_plan";
    const cJSON *plan = hw_get(w, root, "", "care_plan", HW_OBJ);
    hw_raw(w, "<section id=\"care-plan\"><h2>Draft care plan</h2><p>Status ");
    hw_ref_at(w, plan, pb, "status", NULL);
    hw_raw(w, ", intent ");
    hw_ref_at(w, plan, pb, "intent", NULL);
    hw_raw(w, ": suggestions from the rule table for a clinician to approve or reject; none is an "
              "order.</p>");
    const cJSON *gate = hw_get(w, plan, pb, "gate_rule_id", HW_STR | HW_NULL);
    if (gate) {
        hw_raw(w, "<p class=\"alert\">Gate: ");
        hw_ref(w, gate, "/care_plan/gate_rule_id", NULL);
        hw_raw(w, " must be dealt with first; the other suggestions wait for it.</p>");
    }
    const cJSON *sugs = hw_get(w, plan, pb, "suggestions", HW_ARR);
    if (cJSON_GetArraySize(sugs) == 0)
        hw_raw(w, "<p>No rule applied: nothing is suggested.</p>");
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sugs) {
        char sp[HW_PTR_MAX];
        hw_ptr_i(sp, "/care_plan/suggestions", i++);
        suggestion_card(w, s, sp);
    }
    const cJSON *na = hw_get(w, plan, pb, "not_applied", HW_ARR);
    /* A plain list, not a collapsed <details>: a printed report must show it too. */
    hw_raw(w, "<div class=\"not-applied\"><h3>Rules that did not apply</h3>");
    if (cJSON_GetArraySize(na) == 0)
        hw_raw(w, "<p>None.</p>");
    else
        hw_raw(w, "<ul>");
    i = 0;
    cJSON_ArrayForEach(s, na) {
        char np[HW_PTR_MAX];
        hw_ptr_i(np, "/care_plan/not_applied", i++);
        hw_raw(w, "<li>");
        hw_ref_at(w, s, np, "rule_id", NULL);
        hw_raw(w, ": ");
        hw_str_at(w, s, np, "reason", NULL);
        hw_raw(w, "</li>");
    }
    if (cJSON_GetArraySize(na) > 0)
        hw_raw(w, "</ul>");
    hw_raw(w, "</div></section>");
}
