/* The synoptic summary's findings and sign-off block (see html_writer.h): what a pathologist needs
 * at a glance on the report's first printed page. Everything else (statements with their
 * evidence, the slides' regions and evidence tiles, the care-plan cards, rules not applied, the
 * case and the method) follows on later pages and is not repeated here. */
#include <stdio.h>
#include <string.h>

#include "report/html_writer.h"

static void row(hp_hw *w, const char *label)
{
    hw_raw(w, "<tr><th>");
    hw_text(w, label);
    hw_raw(w, "</th><td>");
}

/* QC flags, out of domain among them, by name and reason: a flag histoplan does not know yet is
 * shown all the same. */
static void qc_row(hp_hw *w, const cJSON *cf, const char *cb)
{
    const cJSON *qf = hw_get(w, cf, cb, "qc_flags", HW_ARR);
    int ood = 0;
    const cJSON *q;
    cJSON_ArrayForEach(q, qf) {
        const char *f = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(q, "flag"));
        ood |= f && !strcmp(f, "out_of_domain");
    }
    hw_raw(w, ood ? "<tr class=\"qc-alert\"><th>" : "<tr><th>");
    hw_text(w, "Out of domain and QC");
    hw_raw(w, "</th><td>");
    if (cJSON_GetArraySize(qf) == 0) {
        hw_text(w, "no flag raised (neither out of domain nor any quality flag)");
    } else {
        hw_raw(w, "<ul class=\"qc\">");
        int i = 0;
        cJSON_ArrayForEach(q, qf) {
            char qp[HW_PTR_MAX];
            hw_ptr_i(qp, "/case_findings/qc_flags", i++);
            hw_raw(w, "<li><strong>");
            hw_ref_at(w, q, qp, "flag", NULL);
            hw_raw(w, "</strong> (slide ");
            hw_ref_at(w, q, qp, "slide_id", NULL);
            hw_raw(w, "): ");
            hw_str_at(w, q, qp, "description", NULL);
            hw_raw(w, "</li>");
        }
        hw_raw(w, "</ul>");
    }
    hw_raw(w, "</td></tr>");
}

/* Each slide's overlay, with its legend (class key, scale bar, slide id) drawn into it. */
static void overlays(hp_hw *w, const cJSON *root, const char *report_dir)
{
    const cJSON *slides = hw_get(w, root, "", "slides", HW_ARR);
    hw_raw(w, "<div class=\"thumbs\">");
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, slides) {
        char sp[HW_PTR_MAX], op[HW_PTR_MAX];
        hw_ptr_i(sp, "/slides", i++);
        hw_ptr(op, sp, "overlay_image");
        const cJSON *ov = hw_get(w, s, sp, "overlay_image", HW_OBJ | HW_NULL);
        hw_raw(w, "<figure class=\"overlay\">");
        if (ov)
            hw_image(w, ov, op, report_dir, "heatmap overlay of the slide with its legend");
        else
            hw_raw(w, "<p>The findings had no overlay.</p>");
        hw_raw(w, "<figcaption>Slide ");
        hw_ref_at(w, s, sp, "slide_id", NULL);
        hw_raw(w, "</figcaption></figure>");
    }
    hw_raw(w, "</div>");
}

void hw_synoptic_findings(hp_hw *w, const cJSON *root, const char *report_dir)
{
    const char *cb = "/case_findings";
    const cJSON *cf = hw_get(w, root, "", "case_findings", HW_OBJ);
    hw_raw(w, "<div class=\"syn-grid\"><div><table class=\"synoptic\">");
    qc_row(w, cf, cb);
    row(w, "Tissue");
    hw_num_at(w, cf, cb, "tissue_area_mm2", NULL);
    hw_raw(w, " <span class=\"ref unit\">mm²</span> over ");
    hw_num_at(w, cf, cb, "slide_count", NULL);
    hw_raw(w, " slide(s), ");
    hw_num_at(w, cf, cb, "tiles_analysed", NULL);
    hw_raw(w, " analysed tiles</td></tr>");
    hw_disease_summary(w, cf, cb, "invasive", "Largest invasive focus", 0);
    hw_disease_summary(w, cf, cb, "in_situ", "In situ extent", 1);
    hw_isolated_row(w, cf, cb, 0);
    const cJSON *u = hw_get(w, cf, cb, "uncertainty", HW_OBJ);
    row(w, "Model uncertainty");
    hw_text(w, "mean normalized entropy ");
    hw_num_at(w, u, "/case_findings/uncertainty", "mean_entropy", "not known");
    hw_text(w, "; ");
    hw_num_at(w, u, "/case_findings/uncertainty", "percent_uncertain", "not known");
    hw_raw(w, "<span class=\"ref unit\">%</span> of tiles above the threshold ");
    hw_num_at(w, u, "/case_findings/uncertainty", "threshold", NULL);
    hw_raw(w, "</td></tr></table></div><div>");
    overlays(w, root, report_dir);
    hw_raw(w, "</div></div><h3>Classes over all slides</h3>");
    hw_class_table(w, cf, cb);
    hw_raw(w, "<p class=\"note\" id=\"class-vs-region\">Class area counts every analysed tile whose "
              "most probable class it is; region area counts only the measured regions (the smoothed "
              "map above the threshold, at least the minimum size), so isolated tiles add to the first "
              "and not to the second.</p>");
}

void hw_synoptic_signoff(hp_hw *w, const cJSON *root)
{
    const cJSON *so = hw_get(w, root, "", "sign_off", HW_OBJ | HW_NULL);
    hw_raw(w, "<div class=\"signoff-block\" id=\"signoff-block\"><h3>Sign-off</h3><table>");
    if (!so) {
        row(w, "Not signed");
        hw_text(w, "preliminary, not a diagnosis. Pathologist, signature and date:");
        hw_raw(w, " <span class=\"blank\"></span></td></tr></table></div>");
        return;
    }
    row(w, "Pathologist");
    hw_ref_at(w, so, "/sign_off", "pathologist_id", NULL);
    hw_raw(w, "</td></tr>");
    row(w, "Signed at");
    hw_ref_at(w, so, "/sign_off", "signed_at", NULL);
    hw_raw(w, "</td></tr>");
    row(w, "Reason for amendment");
    hw_str_at(w, so, "/sign_off", "reason", "none (plain sign-off)");
    hw_raw(w, "</td></tr></table><p class=\"note\">The key, the revision it supersedes and every "
              "amendment are in the sign-off record at the end.</p></div>");
}
