/* The draft CarePlan and its ServiceRequests (see report_fhir.h). Every activity is a proposal
 * a clinician must approve; its note names the rule, the guideline and the facts behind it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/fhir_internal.h"

/* A growing string; on allocation failure it stays as it was and `oom` is set. */
typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || b->oom)
        return;
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = (b->len + (size_t)n + 1) * 2;
        char *s = realloc(b->s, cap);
        if (!s) {
            b->oom = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* "fact = value (condition)" for each fact used, or "none". */
static void facts(fx_ctx *x, sbuf *b, const cJSON *arr, const char *path)
{
    int i = 0;
    const cJSON *f;
    cJSON_ArrayForEach(f, arr) {
        char p[128];
        snprintf(p, sizeof p, "%s/%d", path, i);
        const char *fact = fx_str(x, f, p, "fact", 0);
        const char *cond = fx_str(x, f, p, "condition", 0);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(f, "value");
        if (!v) {
            fx_fail(x, "report.json: %s/value is missing", p);
            return;
        }
        char *vt = cJSON_PrintUnformatted(v);
        sb_add(b, "%s%s = %s (%s)", i ? "; " : "", fact, vt ? vt : "?", cond);
        free(vt);
        i++;
    }
    if (!i)
        sb_add(b, "none");
}

/* The text every activity and ServiceRequest of one suggestion carries. */
static char *suggestion_note(fx_ctx *x, const cJSON *s, const char *path)
{
    char p[128];
    sbuf b = {0};
    const char *rule = fx_str(x, s, path, "rule_id", 0);
    const char *title = fx_str(x, s, path, "title", 0);
    snprintf(p, sizeof p, "%s/guideline", path);
    const cJSON *g = fx_member(x, s, path, "guideline", cJSON_Object, 0);
    const char *gname = fx_str(x, g, p, "name", 0);
    const char *gver = fx_str(x, g, p, "version", 0);
    const char *strength = fx_str(x, s, path, "strength", 0);
    const char *waits = fx_str(x, s, path, "waits_for", 1);
    const char *decision = fx_str(x, s, path, "decision", 0);
    const char *cnote = fx_str(x, s, path, "note", 1);
    const cJSON *because = fx_member(x, s, path, "because", cJSON_Array, 0);
    const cJSON *pers = fx_member(x, s, path, "personalization", cJSON_Array, 0);
    const cJSON *ids = fx_member(x, s, path, "statement_ids", cJSON_Array, 0);
    fx_member(x, s, path, "requires_clinician_approval", cJSON_True, 0);
    sb_add(&b, "Rule %s (%s); guideline: %s, version %s; strength: %s. Facts: ", rule, title, gname, gver,
           strength);
    snprintf(p, sizeof p, "%s/because", path);
    facts(x, &b, because, p);
    sb_add(&b, ". Personalization: ");
    snprintf(p, sizeof p, "%s/personalization", path);
    facts(x, &b, pers, p);
    sb_add(&b, ".");
    const cJSON *id;
    int n = 0;
    cJSON_ArrayForEach(id, ids)
        if (cJSON_IsString(id))
            sb_add(&b, "%s%s", n++ ? ", " : " Evidence: statements ", id->valuestring);
    if (n)
        sb_add(&b, ".");
    if (waits)
        sb_add(&b, " Waits for %s.", waits);
    sb_add(&b, " Decision: %s.", decision);
    if (cnote && *cnote)
        sb_add(&b, " Clinician's note: %s", cnote);
    sb_add(&b, " Draft suggestion: requires clinician approval.");
    if (b.oom)
        fx_fail(x, "out of memory writing the care-plan notes");
    return b.s;
}

static cJSON *service_request(fx_ctx *x, const cJSON *sv, const char *svpath, const char *rule,
                              const char *priority, int rejected, const char *note, int j, char *ref)
{
    char role[256];
    const char *sys = fx_str(x, sv, svpath, "system", 0);
    const char *code = fx_str(x, sv, svpath, "code", 0);
    const char *disp = fx_str(x, sv, svpath, "display", 0);
    snprintf(role, sizeof role, "service-request/%s/%d", rule, j);
    cJSON *r = fx_add_resource(x, "ServiceRequest", role, ref);
    fx_ai_security(r);
    /* Every request of one suggestion shares the requisition: they are proposed together. */
    cJSON *rq = cJSON_AddObjectToObject(r, "requisition");
    cJSON_AddStringToObject(rq, "system", "https://histoplan.invalid/fhir/identifier/care-plan-rule");
    snprintf(role, sizeof role, "%s-%s", x->report_id, rule);
    cJSON_AddStringToObject(rq, "value", role);
    /* A proposal the clinician rejected at signing is withdrawn, not left as a live draft. */
    cJSON_AddStringToObject(r, "status", rejected ? "revoked" : "draft");
    cJSON_AddStringToObject(r, "intent", "proposal");
    fx_set_str(r, "priority", priority);
    cJSON_AddItemToObject(r, "code", fx_concept(sys, code, disp, NULL));
    cJSON_AddItemToObject(r, "subject", fx_reference(x->patient, NULL));
    cJSON_AddStringToObject(r, "authoredOn", x->generated_at);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "reasonReference"), fx_reference(x->report_ref, NULL));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "specimen"), fx_reference(x->specimen, NULL));
    fx_note(r, "note", note);
    fx_note(r, "note", x->notice);
    return r;
}

void fx_care_plan(fx_ctx *x)
{
    const cJSON *cp = fx_member(x, x->report, "", "care_plan", cJSON_Object, 0);
    const cJSON *rules = fx_member(x, cp, "/care_plan", "rules", cJSON_Object, 0);
    const char *rname = fx_str(x, rules, "/care_plan/rules", "name", 0);
    const char *rver = fx_str(x, rules, "/care_plan/rules", "version", 0);
    const char *gate = fx_str(x, cp, "/care_plan", "gate_rule_id", 1);
    const cJSON *sugs = fx_member(x, cp, "/care_plan", "suggestions", cJSON_Array, 0);
    if (x->failed)
        return;
    /* Withheld (the model is not valid for the slides): no CarePlan at all, so no receiving system
     * files a plan, even an empty one, on the strength of the model's output. */
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cp, "withheld")))
        return;

    cJSON *activities = cJSON_CreateArray();
    int i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, sugs) {
        char path[64], svpath[96];
        snprintf(path, sizeof path, "/care_plan/suggestions/%d", i++);
        const char *rule = fx_str(x, s, path, "rule_id", 0);
        const char *priority = fx_str(x, s, path, "priority", 0);
        const char *action = fx_str(x, s, path, "action", 0);
        const char *kind = fx_str(x, s, path, "kind", 0);
        const cJSON *svcs = fx_member(x, s, path, "services", cJSON_Array, 0);
        const char *decision = fx_str(x, s, path, "decision", 0);
        /* declined; rejected in reports signed before schema 2.0.0 */
        int rejected = !strcmp(decision, "declined") || !strcmp(decision, "rejected");
        if (*priority && strcmp(priority, "routine") && strcmp(priority, "urgent"))
            fx_fail(x, "report.json: %s/priority \"%s\" is not routine or urgent", path, priority);
        char *note = suggestion_note(x, s, path);
        if (x->failed) {
            free(note);
            break;
        }
        if (cJSON_GetArraySize(svcs) > 0) {
            /* CarePlan.activity.reference holds one request: one activity per service. */
            int j = 0;
            const cJSON *sv;
            cJSON_ArrayForEach(sv, svcs) {
                char ref[FX_REF_MAX];
                snprintf(svpath, sizeof svpath, "%s/services/%d", path, j);
                service_request(x, sv, svpath, rule, priority, rejected, note, j++, ref);
                cJSON *a = cJSON_CreateObject();
                fx_note(a, "progress", note);
                cJSON_AddItemToObject(a, "reference", fx_reference(ref, action));
                cJSON_AddItemToArray(activities, a);
            }
        } else {
            cJSON *a = cJSON_CreateObject();
            fx_note(a, "progress", note);
            cJSON *d = cJSON_AddObjectToObject(a, "detail");
            cJSON_AddItemToObject(d, "code", fx_concept("https://histoplan.invalid/fhir/CodeSystem/care-plan-rule",
                                                        rule, NULL, kind));
            cJSON_AddStringToObject(d, "status", rejected ? "cancelled" : "not-started");
            fx_set_str(d, "description", action);
            cJSON_AddItemToArray(activities, a);
        }
        free(note);
    }

    char ref[FX_REF_MAX];
    cJSON *r = fx_add_resource(x, "CarePlan", "care-plan", ref);
    fx_ai_security(r);
    cJSON_AddStringToObject(r, "status", "draft");
    cJSON_AddStringToObject(r, "intent", "proposal");
    cJSON_AddStringToObject(r, "title", "Draft care-plan suggestions (histoplan)");
    sbuf b = {0};
    sb_add(&b, "Draft suggestions from the rule table \"%s\" version %s. A clinician must approve every "
               "activity before it is carried out; none is an order.", rname, rver);
    if (gate)
        sb_add(&b, " Rule %s is a gate: every other suggestion waits for it.", gate);
    sb_add(&b, " %s", x->notice);
    if (b.oom)
        fx_fail(x, "out of memory writing the care plan");
    fx_set_str(r, "description", b.s);
    free(b.s);
    cJSON_AddItemToObject(r, "subject", fx_reference(x->patient, NULL));
    cJSON_AddStringToObject(r, "created", x->generated_at);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "supportingInfo"), fx_reference(x->report_ref, NULL));
    if (cJSON_GetArraySize(activities) > 0)
        cJSON_AddItemToObject(r, "activity", activities);
    else
        cJSON_Delete(activities);
    fx_note(r, "note", x->notice);
}
