/* Shared between report_fhir.c (bundle, patient, findings, report, provenance) and
 * fhir_careplan.c (CarePlan and ServiceRequests). Not installed; not for other modules. */
#ifndef HP_FHIR_INTERNAL_H
#define HP_FHIR_INTERNAL_H

#include <cjson/cJSON.h>

#include "common/status.h"

#define FX_REF_MAX 48 /* "urn:uuid:" + 36 + NUL, rounded up */

#define FX_LOCAL_SYSTEM "https://histoplan.invalid/fhir/CodeSystem/finding"
#define FX_AI_NOTICE "AI-generated content (histoplan)."

typedef struct {
    hp_error *err;
    int failed;         /* set by the first error; rendering continues harmlessly, result dropped */
    const cJSON *report;
    const char *report_id;
    const char *status; /* preliminary, final or amended */
    const char *generated_at;
    const char *notice; /* research_use_notice */
    cJSON *entries;     /* Bundle.entry */
    char patient[FX_REF_MAX], specimen[FX_REF_MAX], device[FX_REF_MAX], report_ref[FX_REF_MAX];
    /* The super-resolution models whose tiles the classifier saw (one Device per slide that was
     * super-resolved, at most FX_SR_MAX), agents of the Provenance. */
#define FX_SR_MAX 8
    char sr_device[FX_SR_MAX][FX_REF_MAX];
    int n_sr_devices;
} fx_ctx;

/* Member access that records "report.json: <path>/<name> is missing" (or "must be a ...") on
 * the first failure and returns NULL; `nullable` accepts JSON null (also returned as NULL). */
const cJSON *fx_member(fx_ctx *x, const cJSON *obj, const char *path, const char *name, int type,
                       int nullable);
/* A required string ("" after a failure, so callers need no check); NULL only when nullable. */
const char *fx_str(fx_ctx *x, const cJSON *obj, const char *path, const char *name, int nullable);

/* Adds a resource of `type` as a bundle entry with fullUrl urn:uuid:<uuid(report_id, role)>;
 * writes the reference to `ref` (FX_REF_MAX bytes) and returns the resource to fill. */
cJSON *fx_add_resource(fx_ctx *x, const char *type, const char *role, char *ref);

void fx_set_str(cJSON *obj, const char *name, const char *s); /* skips NULL and "" */
cJSON *fx_reference(const char *ref, const char *display);
cJSON *fx_coding(const char *system, const char *code, const char *display);
cJSON *fx_concept(const char *system, const char *code, const char *display, const char *text);
void fx_note(cJSON *resource, const char *name, const char *text); /* appends an Annotation */
void fx_ai_security(cJSON *resource);                           /* meta.security AIAST */
void fx_fail(fx_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The Observations, appending a reference to each to `results` (fhir_findings.c). */
void fx_findings(fx_ctx *x, cJSON *results, const char *site);

/* The CarePlan and its ServiceRequests (the DiagnosticReport must already be in x->report_ref). */
void fx_care_plan(fx_ctx *x);

#endif
