/* The printable HTML report: see report_html.h. Values reach the page only through the helpers of
 * html_writer.h, so that every number is tied to report.json by its pointer. */
#include "report/report_html.h"

#include <stdio.h>
#include <string.h>

#include "io/atomic_file.h"
#include "report/html_writer.h"

typedef struct {
    hp_hw w;
    const cJSON *root;
    const char *dir;
} ctx;

static const char *const required_top[] = {
    "schema_version", "report_id", "revision", "status", "generated_at", "histoplan_version",
    "research_use_notice", "case", "model", "slides", "case_findings", "diagnosis",
    "confidence", "statements", "care_plan", "sources", "sign_off"};

static const char css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1a1a1a;"
    "max-width:1100px;margin:0 auto;padding:16px 24px}"
    "h1{font-size:22px;margin:8px 0}h2{font-size:18px;border-bottom:2px solid #334;"
    "padding-bottom:3px;margin-top:28px}h3{font-size:15px;margin:18px 0 6px}"
    "table{border-collapse:collapse;margin:6px 0 12px;width:100%}"
    "th,td{border:1px solid #bbb;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eef0f4;font-weight:600}td.n{text-align:right}"
    "code.ref{font:12px ui-monospace,Menlo,Consolas,monospace;background:#f3f3f3;"
    "padding:0 2px;word-break:break-all}"
    ".banner{font-weight:700;font-size:18px;padding:10px 14px;border:3px solid;margin:8px 0}"
    ".banner.prelim{background:#fff3cd;border-color:#c77c00;color:#7a4b00;letter-spacing:1px}"
    ".banner.signed{background:#e6f4ea;border-color:#2e7d32;color:#1b5e20}"
    ".banner.ood{background:#fdecea;border-color:#b71c1c;color:#7f0000}"
    ".banner.sr{background:#fff4e0;border-color:#8a4b00;color:#4a2800}"
    ".notice{border-left:5px solid #8a6d3b;background:#fcf8e3;padding:8px 12px;margin:10px 0}"
    ".alert{border:2px solid #b71c1c;background:#fdecea;padding:8px 12px;margin:10px 0}"
    ".box{border:1px solid #bbb;border-radius:4px;padding:8px 12px;margin:8px 0}"
    ".card{border:1px solid #889;border-radius:4px;padding:8px 12px;margin:10px 0;"
    "page-break-inside:avoid}.card.urgent{border-left:6px solid #b71c1c}"
    ".approval{font-weight:600;color:#5d4037}.missing{color:#b71c1c;font-style:italic}"
    ".statement{margin:4px 0}.evidence{color:#555;font-size:12px}"
    "img.overlay{max-width:100%;width:640px;image-rendering:pixelated;border:1px solid #999}"
    ".syn-grid{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,34%);gap:10px;align-items:start}"
    ".thumbs{display:flex;flex-wrap:wrap;gap:8px}.thumbs figure{margin:0;flex:1 1 260px;max-width:420px}"
    ".thumbs img{width:100%;border:1px solid #999}figcaption{font-size:12px;color:#444}"
    ".note{font-size:12px;color:#444;margin:2px 0 8px}.blank{display:inline-block;width:60%;"
    "border-bottom:1px solid #333;height:1.2em}tr.qc-alert td,tr.qc-alert th{background:#fdecea}"
    "code.id{font:12px ui-monospace,Menlo,Consolas,monospace;background:#e8eaf6;padding:0 3px;"
    "border-radius:2px}"
    "img.thumb{width:120px;image-rendering:pixelated;border:1px solid #999}"
    ".tile-img img{width:110px;border:1px solid #999;vertical-align:middle;margin-right:6px}"
    ".watermark{display:none}"
    "@media print{body{max-width:none;padding:0;font-size:11pt}"
    ".watermark{display:block;position:fixed;top:40%;left:0;width:100%;text-align:center;"
    "font-size:96pt;font-weight:700;color:rgba(199,124,0,.18);transform:rotate(-30deg);"
    "z-index:1000;pointer-events:none}"
    "h2{page-break-after:avoid}"
    /* The synoptic summary is the first printed page, on its own. */
    "#summary{page-break-after:always;break-after:page;font-size:8.5pt}"
    "#summary h2{margin-top:4px}#summary h3{margin:6px 0 3px;font-size:10pt}"
    "#summary table{margin:2px 0 6px}#summary th,#summary td{padding:1px 4px}"
    "#summary .thumbs figure{flex:1 1 100%;max-width:100%}#summary .alert{padding:3px 8px;margin:4px 0}"
    ".banner{padding:4px 10px;margin:4px 0;font-size:13pt}.notice{padding:3px 8px;margin:4px 0}"
    "h1{font-size:15pt;margin:4px 0}table.meta{font-size:9pt;margin:2px 0}table.meta td,table.meta th{padding:1px 4px}"
    "@page{margin:10mm}"
    "a{color:inherit;text-decoration:none}}";

static void raw(ctx *c, const char *s) { hw_raw(&c->w, s); }
static void text(ctx *c, const char *s) { hw_text(&c->w, s); }

/* A labelled table row whose value is written by the caller between row_open and row_close. */
static void row_open(ctx *c, const char *label)
{
    raw(c, "<tr><th>");
    text(c, label);
    raw(c, "</th><td>");
}
static void row_close(ctx *c) { raw(c, "</td></tr>"); }

static void statement_by_id(ctx *c, const char *sid, int anchor)
{
    const cJSON *sts = cJSON_GetObjectItemCaseSensitive(c->root, "statements");
    int i = 0;
    const cJSON *st;
    cJSON_ArrayForEach(st, sts) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(st, "id");
        if (cJSON_IsString(id) && strcmp(id->valuestring, sid) == 0) {
            char p[HW_PTR_MAX];
            hw_ptr_i(p, "/statements", i);
            raw(c, "<p class=\"statement\"");
            if (anchor) {
                raw(c, " id=\"stmt-");
                text(c, sid);
                raw(c, "\"");
            }
            raw(c, " data-statement=\"");
            text(c, sid);
            raw(c, "\"><a class=\"ref\" href=\"#stmt-");
            text(c, sid);
            raw(c, "\">");
            text(c, sid);
            raw(c, "</a> ");
            hw_statement(&c->w, c->root, st, p);
            raw(c, "</p>");
            return;
        }
        i++;
    }
    hw_fail(&c->w, HP_ERR_INVALID, "report.json: statement %s is named but not in /statements",
            sid);
}

/* Statement ids listed at `base` (an array of strings): each statement in full. */
static void statements_listed(ctx *c, const cJSON *obj, const char *base, const char *key)
{
    const cJSON *ids = hw_get(&c->w, obj, base, key, HW_ARR);
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        if (cJSON_IsString(id))
            statement_by_id(c, id->valuestring, 0);
    }
}

/* An alert banner: the lead sentence, then "Slide <slide_id>: <reason>." for each entry of the
 * array at `ptr` (objects with slide_id and reason). */
static void slide_banner(ctx *c, const char *open_tag, const char *lead, const cJSON *entries, const char *ptr)
{
    raw(c, open_tag);
    raw(c, lead);
    for (int i = 0; i < cJSON_GetArraySize(entries); i++) {
        char base[HW_PTR_MAX];
        hw_ptr_i(base, ptr, i);
        const cJSON *e = cJSON_GetArrayItem(entries, i);
        raw(c, " Slide ");
        hw_str_at(&c->w, e, base, "slide_id", NULL);
        raw(c, ": ");
        hw_str_at(&c->w, e, base, "reason", NULL);
        raw(c, ".");
    }
    raw(c, "</div>");
}

/* Super-resolved evidence: said at the top, beside the domain, since every number below rests on
 * tiles the scanner did not record. */
static void super_resolution_banner(ctx *c)
{
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c->root, "case_findings"),
                                                       "super_resolution");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sr, "used")))
        slide_banner(c, "<div class=\"banner sr\" id=\"sr-banner\" role=\"alert\">",
                     "Super-resolved evidence: the model classified tiles generated by a super-resolution "
                     "network, not the scanned image.",
                     cJSON_GetObjectItemCaseSensitive(sr, "slides"), "/case_findings/super_resolution/slides");
}

static void header(ctx *c, int prelim, const cJSON *sign)
{
    const cJSON *r = c->root;
    const char *status = hw_get_str(&c->w, r, "", "status", 0);
    /* Out of domain: the first line of the page says the model is not valid here, before any
     * status, category or number, so no reader takes a result from a page that has none. */
    const cJSON *dom = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "case_findings"), "domain");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dom, "out_of_domain")))
        slide_banner(c, "<div class=\"banner ood\" id=\"domain-banner\" role=\"alert\">",
                     "Model not valid for this slide: no category and no care plan are suggested.",
                     cJSON_GetObjectItemCaseSensitive(dom, "reasons"), "/case_findings/domain/reasons");
    super_resolution_banner(c);
    if (prelim) {
        raw(c, "<div class=\"watermark\" aria-hidden=\"true\">PRELIMINARY</div>"
               "<div class=\"banner prelim\" id=\"status-banner\">PRELIMINARY — not signed by "
               "a pathologist</div>");
    } else {
        raw(c, "<div class=\"banner signed\" id=\"status-banner\">");
        text(c, status && strcmp(status, "amended") == 0 ? "AMENDED" : "SIGNED");
        raw(c, " by ");
        hw_ref_at(&c->w, sign, "/sign_off", "pathologist_id", NULL);
        raw(c, " at ");
        hw_ref_at(&c->w, sign, "/sign_off", "signed_at", NULL);
        raw(c, "</div>");
    }
    raw(c, "<p class=\"notice\" id=\"notice-top\">");
    hw_str_at(&c->w, r, "", "research_use_notice", NULL);
    raw(c, "</p><h1>Structured pathology report</h1><table class=\"meta\">");
    row_open(c, "Report");
    hw_ref_at(&c->w, r, "", "report_id", NULL);
    raw(c, ", revision ");
    hw_num_at(&c->w, r, "", "revision", NULL);
    raw(c, ", status ");
    hw_ref_at(&c->w, r, "", "status", NULL);
    row_close(c);
    row_open(c, "Generated");
    hw_ref_at(&c->w, r, "", "generated_at", NULL);
    raw(c, " by histoplan ");
    hw_ref_at(&c->w, r, "", "histoplan_version", NULL);
    raw(c, " (report schema ");
    hw_ref_at(&c->w, r, "", "schema_version", NULL);
    raw(c, ")");
    row_close(c);
    raw(c, "</table>");
}

static void summary(ctx *c)
{
    hp_hw *w = &c->w;
    const cJSON *r = c->root;
    const cJSON *dx = hw_get(w, r, "", "diagnosis", HW_OBJ);
    const cJSON *conf = hw_get(w, r, "", "confidence", HW_OBJ);
    const cJSON *plan = hw_get(w, r, "", "care_plan", HW_OBJ);
    const cJSON *model = hw_get(w, r, "", "model", HW_OBJ);
    raw(c, "<section id=\"summary\" class=\"first-page\"><h2>Synoptic summary</h2>");
    const cJSON *gate = hw_get(w, plan, "/care_plan", "gate_rule_id", HW_STR | HW_NULL);
    if (gate) {
        raw(c, "<div class=\"alert\" id=\"gate\"><strong>Review before anything else:</strong> "
               "rule ");
        hw_ref(w, gate, "/care_plan/gate_rule_id", NULL);
        raw(c, " applies, and every other suggestion of the draft care plan waits for it.</div>");
    }
    const cJSON *nfd = hw_get(w, model, "/model", "not_for_diagnosis", HW_BOOL);
    if (cJSON_IsTrue(nfd))
        raw(c, "<div class=\"alert\" id=\"not-for-diagnosis\"><strong>The model is not for "
               "diagnosis</strong> (its model card says so): its output is a suggestion for "
               "research use only.</div>");
    /* Once signed, the category is the pathologist's (its display says "(confirmed by pathologist)"
     * or "(pathologist)"): never "suggested" again; who proposed it stays on record. */
    const char *status = hw_get_str(w, r, "", "status", 0);
    int signed_ = status && strcmp(status, "preliminary") != 0;
    const char *by = hw_get_str(w, dx, "/diagnosis", "suggested_by", 0);
    raw(c, "<table>");
    row_open(c, signed_ ? "Category" : "Suggested category");
    /* "category" is the id an amendment names it by, as CP-... names a suggestion. */
    raw(c, "<code class=\"ref id\" id=\"category\" title=\"id for amendments\">category</code> <strong>");
    hw_str_at(w, dx, "/diagnosis", "display", NULL);
    raw(c, "</strong> (");
    hw_ref_at(w, dx, "/diagnosis", "category", NULL);
    if (!signed_) {
        raw(c, "), suggested by ");
        hw_str_at(w, dx, "/diagnosis", "suggested_by", NULL);
    } else if (by && !strcmp(by, "pathologist")) {
        raw(c, "), set by the signing pathologist");
    } else {
        raw(c, "), proposed by histoplan");
    }
    row_close(c);
    const cJSON *code = hw_get(w, dx, "/diagnosis", "code", HW_OBJ);
    row_open(c, "Code");
    hw_ref_at(w, code, "/diagnosis/code", "system", NULL);
    raw(c, " ");
    hw_ref_at(w, code, "/diagnosis/code", "code", NULL);
    raw(c, " — ");
    hw_str_at(w, code, "/diagnosis/code", "display", NULL);
    row_close(c);
    row_open(c, "Model confidence");
    raw(c, "<strong>");
    hw_str_at(w, conf, "/confidence", "level", NULL);
    raw(c, "</strong>");
    const cJSON *reasons = hw_get(w, conf, "/confidence", "reasons", HW_ARR);
    if (cJSON_GetArraySize(reasons) > 0) {
        raw(c, "<ul>");
        int i = 0;
        const cJSON *rs;
        cJSON_ArrayForEach(rs, reasons) {
            char p[HW_PTR_MAX];
            hw_ptr_i(p, "/confidence/reasons", i++);
            raw(c, "<li>");
            hw_str(w, rs, p, NULL);
            raw(c, "</li>");
        }
        raw(c, "</ul>");
    }
    row_close(c);
    raw(c, "</table>");
    hw_synoptic_findings(w, r, c->dir);
    raw(c, "<h3>Why this category</h3>");
    statements_listed(c, dx, "/diagnosis", "statement_ids");
    /* The confidence's own statements are under Statements; its reasons are in the table above. */
    hw_synoptic_signoff(w, r);
    raw(c, "</section>");
}

/* A case field: its value, or "not given" when the case file did not give it. */
static int is_missing(const cJSON *missing, const char *field)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, missing) {
        if (cJSON_IsString(m) && strcmp(m->valuestring, field) == 0)
            return 1;
    }
    return 0;
}

static void field_row(ctx *c, const cJSON *missing, const char *field, const char *label,
                      const cJSON *obj, const char *base, const char *key, int kind)
{
    hp_hw *w = &c->w;
    char p[HW_PTR_MAX];
    hw_ptr(p, base, key);
    int types = kind == 'n' ? HW_INT | HW_NULL : kind == 'a' ? HW_ARR : HW_STR | HW_NULL;
    const cJSON *v = hw_get(w, obj, base, key, types);
    raw(c, "<tr data-field=\"");
    text(c, field);
    raw(c, "\"><th>");
    text(c, label);
    raw(c, "</th><td>");
    int empty = !v || (kind == 'a' && cJSON_GetArraySize(v) == 0);
    if (is_missing(missing, field) || empty) {
        raw(c, "<span class=\"missing\">not given</span>");
    } else if (kind == 'n') {
        hw_num(w, v, p, NULL);
    } else if (kind == 'r') {
        hw_ref(w, v, p, NULL);
    } else if (kind == 'a') {
        raw(c, "<ul>");
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, v) {
            char ip[HW_PTR_MAX];
            hw_ptr_i(ip, p, i++);
            raw(c, "<li>");
            hw_str(w, it, ip, NULL);
            raw(c, "</li>");
        }
        raw(c, "</ul>");
    } else {
        hw_str(w, v, p, NULL);
    }
    raw(c, "</td></tr>");
}

static const char *const known_fields[] = {
    "patient.identifiers", "patient.name", "patient.birth_date", "patient.sex",
    "specimen.procedure", "specimen.laterality", "specimen.site", "specimen.collected",
    "clinical.age_years", "clinical.history", "clinical.prior_findings",
    "clinical.imaging_impression", "clinical.birads", "preferences"};

static void case_section(ctx *c)
{
    hp_hw *w = &c->w;
    const cJSON *cs = hw_get(w, c->root, "", "case", HW_OBJ);
    const cJSON *missing = hw_get(w, cs, "/case", "missing", HW_ARR);
    const cJSON *pt = hw_get(w, cs, "/case", "patient", HW_OBJ);
    const cJSON *sp = hw_get(w, cs, "/case", "specimen", HW_OBJ);
    const cJSON *cl = hw_get(w, cs, "/case", "clinical", HW_OBJ);
    raw(c, "<section id=\"case\"><h2>Case</h2><table>");
    row_open(c, "Accession");
    hw_ref_at(w, cs, "/case", "accession", NULL);
    row_close(c);
    const cJSON *ids = hw_get(w, pt, "/case/patient", "identifiers", HW_ARR);
    raw(c, "<tr data-field=\"patient.identifiers\"><th>Patient identifiers</th><td>");
    if (is_missing(missing, "patient.identifiers") || cJSON_GetArraySize(ids) == 0) {
        raw(c, "<span class=\"missing\">not given</span>");
    } else {
        int i = 0;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) {
            char p[HW_PTR_MAX];
            hw_ptr_i(p, "/case/patient/identifiers", i++);
            raw(c, "<div>");
            hw_ref_at(w, id, p, "value", NULL);
            raw(c, " <span class=\"system\">(");
            hw_ref_at(w, id, p, "system", "no system given");
            raw(c, ")</span></div>");
        }
    }
    raw(c, "</td></tr>");
    field_row(c, missing, "patient.name", "Patient name", pt, "/case/patient", "name", 's');
    field_row(c, missing, "patient.birth_date", "Birth date", pt, "/case/patient", "birth_date",
              'r');
    field_row(c, missing, "patient.sex", "Sex", pt, "/case/patient", "sex", 's');
    field_row(c, missing, "specimen.procedure", "Procedure", sp, "/case/specimen", "procedure",
              's');
    field_row(c, missing, "specimen.laterality", "Laterality", sp, "/case/specimen",
              "laterality", 's');
    field_row(c, missing, "specimen.site", "Site", sp, "/case/specimen", "site", 's');
    field_row(c, missing, "specimen.collected", "Collected", sp, "/case/specimen", "collected",
              'r');
    field_row(c, missing, "clinical.age_years", "Age (years)", cl, "/case/clinical", "age_years",
              'n');
    field_row(c, missing, "clinical.history", "History", cl, "/case/clinical", "history", 'a');
    field_row(c, missing, "clinical.prior_findings", "Prior findings", cl, "/case/clinical",
              "prior_findings", 'a');
    field_row(c, missing, "clinical.imaging_impression", "Imaging impression", cl,
              "/case/clinical", "imaging_impression", 's');
    field_row(c, missing, "clinical.birads", "BI-RADS category", cl, "/case/clinical", "birads",
              'n');
    field_row(c, missing, "preferences", "Patient preferences", cs, "/case", "preferences", 'a');
    /* Fields the case file lacked that have no row above are listed all the same. */
    const cJSON *m;
    cJSON_ArrayForEach(m, missing) {
        if (!cJSON_IsString(m))
            continue;
        int known = 0;
        for (size_t k = 0; k < sizeof known_fields / sizeof *known_fields; k++)
            known |= strcmp(m->valuestring, known_fields[k]) == 0;
        if (known)
            continue;
        raw(c, "<tr data-field=\"");
        text(c, m->valuestring);
        raw(c, "\"><th><code class=\"ref\">");
        text(c, m->valuestring);
        raw(c, "</code></th><td><span class=\"missing\">not given</span></td></tr>");
    }
    raw(c, "</table></section>");
}

static void model_section(ctx *c)
{
    hp_hw *w = &c->w;
    const cJSON *r = c->root;
    const cJSON *m = hw_get(w, r, "", "model", HW_OBJ);
    const cJSON *plan = hw_get(w, r, "", "care_plan", HW_OBJ);
    const cJSON *rules = hw_get(w, plan, "/care_plan", "rules", HW_OBJ);
    const cJSON *src = hw_get(w, r, "", "sources", HW_OBJ);
    raw(c, "<section id=\"method\"><h2>Model and method</h2><table>");
    row_open(c, "Model");
    hw_str_at(w, m, "/model", "name", NULL);
    raw(c, ", version ");
    hw_ref_at(w, m, "/model", "version", "not given");
    row_close(c);
    row_open(c, "Model file hash");
    hw_ref_at(w, m, "/model", "sha256", NULL);
    row_close(c);
    row_open(c, "Backend and precision");
    hw_ref_at(w, m, "/model", "backend", NULL);
    raw(c, ", ");
    hw_ref_at(w, m, "/model", "precision", NULL);
    row_close(c);
    row_open(c, "Classes");
    const cJSON *cls = hw_get(w, m, "/model", "classes", HW_ARR);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, cls) {
        char p[HW_PTR_MAX];
        hw_ptr_i(p, "/model/classes", i);
        raw(c, i++ ? ", " : "");
        hw_ref(w, it, p, NULL);
    }
    row_close(c);
    row_open(c, "Intended use");
    hw_str_at(w, m, "/model", "intended_use", "not given");
    row_close(c);
    row_open(c, "Training data");
    hw_str_at(w, m, "/model", "training_data", "not given");
    row_close(c);
    row_open(c, "Licence");
    hw_ref_at(w, m, "/model", "license", "not given");
    row_close(c);
    row_open(c, "Not for diagnosis");
    const cJSON *nfd = hw_get(w, m, "/model", "not_for_diagnosis", HW_BOOL);
    text(c, cJSON_IsTrue(nfd) ? "yes (model card)" : "no");
    row_close(c);
    row_open(c, "Software");
    raw(c, "histoplan ");
    hw_ref_at(w, r, "", "histoplan_version", NULL);
    row_close(c);
    row_open(c, "Care-plan rule table");
    hw_str_at(w, rules, "/care_plan/rules", "name", NULL);
    raw(c, ", version ");
    hw_ref_at(w, rules, "/care_plan/rules", "version", NULL);
    raw(c, ", hash ");
    hw_ref_at(w, rules, "/care_plan/rules", "sha256", NULL);
    row_close(c);
    row_open(c, "Case file hash");
    hw_ref_at(w, src, "/sources", "case_file_sha256", NULL);
    row_close(c);
    row_open(c, "Findings files");
    const cJSON *fs = hw_get(w, src, "/sources", "findings", HW_ARR);
    i = 0;
    cJSON_ArrayForEach(it, fs) {
        char p[HW_PTR_MAX];
        hw_ptr_i(p, "/sources/findings", i++);
        raw(c, "<div>slide ");
        hw_ref_at(w, it, p, "slide_id", NULL);
        raw(c, ": ");
        hw_ref_at(w, it, p, "sha256", NULL);
        raw(c, "</div>");
    }
    row_close(c);
    raw(c, "</table></section>");
}

static void sign_off_section(ctx *c, const cJSON *so)
{
    hp_hw *w = &c->w;
    /* Who signed, when and why is on the first page (the sign-off block); this is the record. */
    raw(c, "<section id=\"sign-off\"><h2>Sign-off record</h2><table>");
    row_open(c, "Signing key fingerprint");
    hw_ref_at(w, so, "/sign_off", "key_fingerprint", NULL);
    row_close(c);
    const cJSON *sup = hw_get(w, so, "/sign_off", "supersedes", HW_OBJ | HW_NULL);
    row_open(c, "Supersedes");
    if (sup) {
        raw(c, "revision ");
        hw_num_at(w, sup, "/sign_off/supersedes", "revision", NULL);
        raw(c, ", canonical hash ");
        hw_ref_at(w, sup, "/sign_off/supersedes", "report_sha256", NULL);
    } else {
        raw(c, "nothing");
    }
    row_close(c);
    raw(c, "</table><h3>Amendments</h3>");
    const cJSON *am = hw_get(w, so, "/sign_off", "amendments", HW_ARR);
    if (cJSON_GetArraySize(am) == 0) {
        raw(c, "<p>None: signed as drafted.</p>");
    } else {
        raw(c, "<table class=\"amendments\"><tr><th>Id</th><th>Change</th><th>Before</th><th>After</th>"
               "<th>Reason</th></tr>");
        int i = 0;
        const cJSON *a;
        cJSON_ArrayForEach(a, am) {
            char p[HW_PTR_MAX], bp[HW_PTR_MAX], ap[HW_PTR_MAX];
            hw_ptr_i(p, "/sign_off/amendments", i++);
            hw_ptr(bp, p, "before");
            hw_ptr(ap, p, "after");
            raw(c, "<tr><td class=\"id\">");
            hw_ref_at(w, a, p, "id", NULL);
            raw(c, "</td><td>");
            hw_ref_at(w, a, p, "change", NULL);
            raw(c, "</td><td>");
            if (!cJSON_HasObjectItem(a, "before") || !cJSON_HasObjectItem(a, "after"))
                hw_fail(w, HP_ERR_INVALID, "report.json: %s: an amendment needs before and after",
                        p);
            hw_value(w, cJSON_GetObjectItemCaseSensitive(a, "before"), bp);
            raw(c, "</td><td>");
            hw_value(w, cJSON_GetObjectItemCaseSensitive(a, "after"), ap);
            raw(c, "</td><td>");
            hw_str_at(w, a, p, "reason", "(the sign-off's reason)");
            raw(c, "</td></tr>");
        }
        raw(c, "</table>");
    }
    /* What a new category changed in turn: statements and suggestions derived again. */
    const cJSON *cq = hw_get(w, so, "/sign_off", "consequences", HW_OBJ | HW_NULL);
    if (cq) {
        raw(c, "<h3>Changed as a result</h3><table class=\"consequences\">");
        static const char *const lists[][2] = {{"statements_removed", "Statements withdrawn"},
                                               {"statements_added", "Statements added"},
                                               {"suggestions_removed", "Suggestions withdrawn"},
                                               {"suggestions_added", "Suggestions added"}};
        for (size_t k = 0; k < sizeof lists / sizeof *lists; k++) {
            char lp[HW_PTR_MAX];
            hw_ptr(lp, "/sign_off/consequences", lists[k][0]);
            const cJSON *l = hw_get(w, cq, "/sign_off/consequences", lists[k][0], HW_ARR);
            row_open(c, lists[k][1]);
            if (cJSON_GetArraySize(l) == 0)
                raw(c, "none");
            int j = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, l) {
                char ep[HW_PTR_MAX];
                hw_ptr_i(ep, lp, j++);
                raw(c, "<div><span class=\"id\">");
                hw_ref_at(w, e, ep, "id", NULL);
                raw(c, "</span> ");
                hw_str_at(w, e, ep, "text", NULL);
                raw(c, "</div>");
            }
            row_close(c);
        }
        const cJSON *conf = hw_get(w, cq, "/sign_off/consequences", "confidence", HW_OBJ);
        row_open(c, "Confidence");
        hw_str_at(w, conf, "/sign_off/consequences/confidence", "before", "none");
        raw(c, " &#8594; ");
        hw_str_at(w, conf, "/sign_off/consequences/confidence", "after", "none");
        row_close(c);
        raw(c, "</table>");
    }
    raw(c, "</section>");
}

static void render(ctx *c)
{
    hp_hw *w = &c->w;
    const cJSON *r = c->root;
    if (!cJSON_IsObject(r)) {
        hw_fail(w, HP_ERR_INVALID, "report.json: not a JSON object");
        return;
    }
    for (size_t i = 0; i < sizeof required_top / sizeof *required_top; i++)
        if (!cJSON_HasObjectItem(r, required_top[i]))
            hw_fail(w, HP_ERR_INVALID, "report.json: required member \"%s\" is missing",
                    required_top[i]);
    const char *status = hw_get_str(w, r, "", "status", 0);
    const cJSON *so = hw_get(w, r, "", "sign_off", HW_OBJ | HW_NULL);
    if (w->failed)
        return;
    int prelim = strcmp(status, "preliminary") == 0;
    if (prelim != !so) {
        hw_fail(w, HP_ERR_INVALID,
                "report.json: status is \"%s\" but sign_off is %s: a report is preliminary "
                "exactly while it is unsigned",
                status, so ? "set" : "null");
        return;
    }
    raw(c, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
           "<title>Pathology report");
    text(c, prelim ? " (PRELIMINARY)" : " (signed)");
    raw(c, "</title><style>");
    raw(c, css);
    raw(c, "</style></head><body>\n");
    header(c, prelim, so);
    summary(c); /* the first printed page */
    hw_statements_section(w, r);
    hw_findings_section(w, r, c->dir);
    hw_plan_section(w, r);
    case_section(c);
    model_section(c);
    if (so)
        sign_off_section(c, so);
    raw(c, "<footer><p class=\"notice\" id=\"notice-bottom\">");
    hw_str_at(w, r, "", "research_use_notice", NULL);
    raw(c, "</p></footer></body></html>\n");
}

hp_status hp_report_write_html(const cJSON *report, const char *report_dir, const char *path,
                               hp_error *err)
{
    if (!report || !report_dir || !path)
        return hp_error_set(err, HP_ERR_INVALID, "HTML report: missing argument");
    ctx c = {.root = report, .dir = report_dir};
    hw_init(&c.w, err);
    render(&c);
    hp_status st = HP_OK;
    if (c.w.failed) {
        st = c.w.code;
        hw_free(&c.w);
        return st;
    }
    hp_atomic_file af;
    st = hp_atomic_open(path, &af, err);
    if (st == HP_OK) {
        int ok = fwrite(c.w.s, 1, c.w.len, af.f) == c.w.len;
        st = hp_atomic_finish(path, &af, ok, err);
    }
    hw_free(&c.w);
    return st;
}
