/* FHIR R4 bundle from report.json: see report_fhir.h. The CarePlan part is in fhir_careplan.c. */
#include "report/report_fhir.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"
#include "report/fhir_internal.h"

#define V3_OBS_VALUE "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
#define V2_0074 "http://terminology.hl7.org/CodeSystem/v2-0074"
#define PARTICIPANT "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
#define LOINC "http://loinc.org"
#define HP_IDS "https://histoplan.invalid/fhir/identifier/"

/* ---- helpers shared with fhir_careplan.c ---- */

void fx_fail(fx_ctx *x, const char *fmt, ...)
{
    char msg[HP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!x->failed)
        hp_error_set(x->err, HP_ERR_INVALID, "FHIR rendering: %s", msg);
    x->failed = 1;
}

static const char *type_name(int type)
{
    switch (type) {
    case cJSON_String: return "a string";
    case cJSON_Number: return "a number";
    case cJSON_Object: return "an object";
    case cJSON_Array: return "an array";
    case cJSON_True: return "a boolean";
    default: return "a value";
    }
}

const cJSON *fx_member(fx_ctx *x, const cJSON *obj, const char *path, const char *name, int type,
                       int nullable)
{
    if (!obj) /* the parent already failed (and was reported) or was null */
        return NULL;
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (!it) {
        fx_fail(x, "report.json: %s/%s is missing", path, name);
        return NULL;
    }
    if (cJSON_IsNull(it)) {
        if (!nullable)
            fx_fail(x, "report.json: %s/%s must be %s, not null", path, name, type_name(type));
        return NULL;
    }
    int ok = type == cJSON_True ? cJSON_IsBool(it) : (it->type & 0xff) == type;
    if (!ok) {
        fx_fail(x, "report.json: %s/%s must be %s", path, name, type_name(type));
        return NULL;
    }
    return it;
}

const char *fx_str(fx_ctx *x, const cJSON *obj, const char *path, const char *name, int nullable)
{
    const cJSON *it = fx_member(x, obj, path, name, cJSON_String, nullable);
    if (it)
        return it->valuestring;
    return nullable && obj && !x->failed ? NULL : "";
}


/* A version-8 (RFC 9562, custom) UUID from SHA-256 of the report id and the role: stable across
 * runs, different for every resource of a report and for every report. */
static void role_uuid(fx_ctx *x, const char *role, char out[37])
{
    char buf[256];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int n = snprintf(buf, sizeof buf, "histoplan-fhir/%s/%s", x->report_id, role);
    if (n < 0 || (size_t)n >= sizeof buf || EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1) {
        fx_fail(x, "cannot derive the id of %s", role);
        memset(md, 0, 16);
    }
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x80);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        p += sprintf(p, "%02x", md[i]);
    }
}

cJSON *fx_add_resource(fx_ctx *x, const char *type, const char *role, char *ref)
{
    char uuid[37];
    role_uuid(x, role, uuid);
    snprintf(ref, FX_REF_MAX, "urn:uuid:%s", uuid);
    cJSON *entry = cJSON_CreateObject();
    cJSON_AddStringToObject(entry, "fullUrl", ref);
    cJSON *res = cJSON_AddObjectToObject(entry, "resource");
    cJSON_AddStringToObject(res, "resourceType", type);
    cJSON_AddStringToObject(res, "id", uuid);
    cJSON_AddItemToArray(x->entries, entry);
    return res;
}

void fx_set_str(cJSON *obj, const char *name, const char *s)
{
    if (s && *s) /* FHIR strings are never empty */
        cJSON_AddStringToObject(obj, name, s);
}

cJSON *fx_reference(const char *ref, const char *display)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "reference", ref);
    fx_set_str(r, "display", display);
    return r;
}

cJSON *fx_coding(const char *system, const char *code, const char *display)
{
    cJSON *c = cJSON_CreateObject();
    fx_set_str(c, "system", system);
    fx_set_str(c, "code", code);
    fx_set_str(c, "display", display);
    return c;
}

cJSON *fx_concept(const char *system, const char *code, const char *display, const char *text)
{
    cJSON *cc = cJSON_CreateObject();
    cJSON *codings = cJSON_AddArrayToObject(cc, "coding");
    cJSON_AddItemToArray(codings, fx_coding(system, code, display));
    fx_set_str(cc, "text", text ? text : display);
    return cc;
}

void fx_note(cJSON *resource, const char *name, const char *text)
{
    if (!text || !*text)
        return;
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(resource, name);
    if (!arr)
        arr = cJSON_AddArrayToObject(resource, name);
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "text", text);
    cJSON_AddItemToArray(arr, a);
}

void fx_ai_security(cJSON *resource)
{
    cJSON *meta = cJSON_AddObjectToObject(resource, "meta");
    cJSON *sec = cJSON_AddArrayToObject(meta, "security");
    cJSON_AddItemToArray(sec, fx_coding(V3_OBS_VALUE, "AIAST", "Artificial Intelligence asserted"));
}

/* ---- value checks ---- */

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* FHIR date: YYYY, YYYY-MM or YYYY-MM-DD with a real month and day number. */
static int fhir_date(const char *s)
{
    size_t n = strlen(s);
    if (!(n == 4 || n == 7 || n == 10) || !digits(s, 4) || !strncmp(s, "0000", 4))
        return 0;
    if (n >= 7) {
        if (s[4] != '-' || !digits(s + 5, 2))
            return 0;
        int m = (s[5] - '0') * 10 + (s[6] - '0');
        if (m < 1 || m > 12)
            return 0;
    }
    if (n == 10) {
        if (s[7] != '-' || !digits(s + 8, 2))
            return 0;
        int d = (s[8] - '0') * 10 + (s[9] - '0');
        if (d < 1 || d > 31)
            return 0;
    }
    return 1;
}

/* FHIR dateTime: a date, or a full date with hh:mm:ss[.f+] and a zone (Z or +hh:mm). */
static int fhir_datetime(const char *s)
{
    size_t n = strlen(s);
    if (n <= 10)
        return fhir_date(s);
    char date[11];
    memcpy(date, s, 10);
    date[10] = 0;
    if (!fhir_date(date) || s[10] != 'T' || n < 20 || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return 0;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (!strcmp(p, "Z"))
        return 1;
    return (p[0] == '+' || p[0] == '-') && strlen(p) == 6 && digits(p + 1, 2) && p[3] == ':' &&
           digits(p + 4, 2);
}


/* A FHIR instant as the report writes times: a full dateTime with a zone. */
static int fhir_instant(const char *s)
{
    return strlen(s) >= 20 && fhir_datetime(s);
}

static int base64(const char *s)
{
    size_t n = strlen(s);
    if (!n || n % 4)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '/' && !(s[i] == '=' && i >= n - 2))
            return 0;
    return 1;
}

/* ---- resources ---- */

static void patient(fx_ctx *x, const cJSON *cs)
{
    const cJSON *p = fx_member(x, cs, "/case", "patient", cJSON_Object, 0);
    const cJSON *ids = fx_member(x, p, "/case/patient", "identifiers", cJSON_Array, 0);
    const char *name = fx_str(x, p, "/case/patient", "name", 1);
    const char *birth = fx_str(x, p, "/case/patient", "birth_date", 1);
    const char *sex = fx_str(x, p, "/case/patient", "sex", 1);
    cJSON *r = fx_add_resource(x, "Patient", "patient", x->patient);
    int i = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        char path[64];
        snprintf(path, sizeof path, "/case/patient/identifiers/%d", i++);
        const char *sys = fx_str(x, id, path, "system", 1);
        const char *val = fx_str(x, id, path, "value", 0);
        if (!*val)
            continue;
        cJSON *arr = cJSON_GetObjectItemCaseSensitive(r, "identifier");
        if (!arr)
            arr = cJSON_AddArrayToObject(r, "identifier");
        cJSON *o = cJSON_CreateObject();
        fx_set_str(o, "system", sys);
        cJSON_AddStringToObject(o, "value", val);
        cJSON_AddItemToArray(arr, o);
    }
    if (name && *name) {
        cJSON *n = cJSON_CreateObject();
        cJSON_AddStringToObject(n, "text", name);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "name"), n);
    }
    if (sex && strcmp(sex, "female") && strcmp(sex, "male") && strcmp(sex, "other") && strcmp(sex, "unknown"))
        fx_fail(x, "report.json: /case/patient/sex \"%s\" is not female, male, other or unknown", sex);
    fx_set_str(r, "gender", sex);
    if (birth && *birth) {
        if (!fhir_date(birth))
            fx_fail(x, "report.json: /case/patient/birth_date \"%s\" is not a date (YYYY, YYYY-MM or YYYY-MM-DD)", birth);
        else
            cJSON_AddStringToObject(r, "birthDate", birth);
    }
}

static void specimen(fx_ctx *x, const cJSON *cs)
{
    const char *acc = fx_str(x, cs, "/case", "accession", 0);
    const cJSON *sp = fx_member(x, cs, "/case", "specimen", cJSON_Object, 0);
    const char *proc = fx_str(x, sp, "/case/specimen", "procedure", 1);
    const char *lat = fx_str(x, sp, "/case/specimen", "laterality", 1);
    const char *site = fx_str(x, sp, "/case/specimen", "site", 1);
    const char *coll = fx_str(x, sp, "/case/specimen", "collected", 1);
    cJSON *r = fx_add_resource(x, "Specimen", "specimen", x->specimen);
    cJSON *ai = cJSON_AddObjectToObject(r, "accessionIdentifier");
    cJSON_AddStringToObject(ai, "system", HP_IDS "accession");
    fx_set_str(ai, "value", acc);
    if (proc && *proc)
        cJSON_AddStringToObject(cJSON_AddObjectToObject(r, "type"), "text", proc);
    cJSON_AddItemToObject(r, "subject", fx_reference(x->patient, NULL));
    char where[512] = "";
    if (site && *site)
        snprintf(where, sizeof where, "%s%s%s", site, lat && *lat ? ", " : "", lat && *lat ? lat : "");
    else if (lat && *lat)
        snprintf(where, sizeof where, "%s side", lat);
    if (*where || (coll && *coll)) {
        cJSON *c = cJSON_AddObjectToObject(r, "collection");
        if (coll && *coll) {
            if (fhir_datetime(coll)) {
                cJSON_AddStringToObject(c, "collectedDateTime", coll);
            } else {
                /* A time without a zone is not a FHIR dateTime: keep the day, note the text. */
                char day[11];
                snprintf(day, sizeof day, "%s", coll);
                if (!fhir_date(day))
                    fx_fail(x, "report.json: /case/specimen/collected \"%s\" is not a date", coll);
                else
                    cJSON_AddStringToObject(c, "collectedDateTime", day);
                char note[256];
                snprintf(note, sizeof note, "Collected (as given in the case file): %s", coll);
                fx_note(r, "note", note);
            }
        }
        if (*where) {
            cJSON *bs = cJSON_AddObjectToObject(c, "bodySite");
            cJSON_AddStringToObject(bs, "text", where);
        }
    }
}

/* Where a receiving system's reader looks first: the conclusion says the evidence was generated. */
#define SR_CONCLUSION "From super-resolved tiles, not the scanned image: "

static void device(fx_ctx *x, const cJSON *model)
{
    const char *name = fx_str(x, model, "/model", "name", 0);
    const char *ver = fx_str(x, model, "/model", "version", 1);
    const char *sha = fx_str(x, model, "/model", "sha256", 0);
    const char *backend = fx_str(x, model, "/model", "backend", 0);
    const char *prec = fx_str(x, model, "/model", "precision", 0);
    const char *use = fx_str(x, model, "/model", "intended_use", 1);
    const char *train = fx_str(x, model, "/model", "training_data", 1);
    const char *lic = fx_str(x, model, "/model", "license", 1);
    const cJSON *nfd = fx_member(x, model, "/model", "not_for_diagnosis", cJSON_True, 0);
    const char *hpver = fx_str(x, x->report, "", "histoplan_version", 0);

    cJSON *r = fx_add_resource(x, "Device", "device", x->device);
    cJSON *id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "system", HP_IDS "model-sha256");
    fx_set_str(id, "value", sha);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "identifier"), id);
    cJSON *dn = cJSON_CreateObject();
    fx_set_str(dn, "name", name);
    cJSON_AddStringToObject(dn, "type", "model-name");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "deviceName"), dn);
    cJSON_AddItemToObject(r, "type", fx_concept(FX_LOCAL_SYSTEM, "ai-model", "Image analysis model",
                                                "Whole-slide image analysis model (histoplan)"));
    cJSON *vers = cJSON_AddArrayToObject(r, "version");
    if (ver && *ver) {
        cJSON *v = cJSON_CreateObject();
        cJSON *t = cJSON_AddObjectToObject(v, "type");
        cJSON_AddStringToObject(t, "text", "model");
        cJSON_AddStringToObject(v, "value", ver);
        cJSON_AddItemToArray(vers, v);
    }
    cJSON *v = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(v, "type");
    cJSON_AddStringToObject(t, "text", "histoplan software");
    fx_set_str(v, "value", hpver);
    cJSON_AddItemToArray(vers, v);
    char buf[2048];
    if (use && *use) {
        snprintf(buf, sizeof buf, "Intended use: %s", use);
        fx_note(r, "note", buf);
    }
    if (nfd && cJSON_IsTrue(nfd))
        fx_note(r, "note", "Not for diagnosis: the model card says this model is not for diagnostic use.");
    if (train && *train) {
        snprintf(buf, sizeof buf, "Training data: %s", train);
        fx_note(r, "note", buf);
    }
    if (lic && *lic) {
        snprintf(buf, sizeof buf, "Licence: %s", lic);
        fx_note(r, "note", buf);
    }
    snprintf(buf, sizeof buf, "Ran on the %s backend at %s precision.", backend, prec);
    fx_note(r, "note", buf);
}

/* The super-resolved slides of the case (case_findings.super_resolution), NULL when none. */
static const cJSON *sr_slides(const fx_ctx *x)
{
    const cJSON *sr = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x->report, "case_findings"),
                                                       "super_resolution");
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sr, "used")) ? cJSON_GetObjectItemCaseSensitive(sr, "slides")
                                                                       : NULL;
}

/* A Device for each super-resolution model that made the pixels the classifier saw. */
static void sr_devices(fx_ctx *x)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, sr_slides(x)) {
        if (x->n_sr_devices >= FX_SR_MAX)
            break;
        char role[32], buf[1024];
        snprintf(role, sizeof role, "sr-device-%d", x->n_sr_devices);
        cJSON *r = fx_add_resource(x, "Device", role, x->sr_device[x->n_sr_devices++]);
        cJSON *id = cJSON_CreateObject();
        cJSON_AddStringToObject(id, "system", HP_IDS "model-sha256");
        fx_set_str(id, "value", fx_str(x, e, "/case_findings/super_resolution/slides", "sha256", 0));
        cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "identifier"), id);
        cJSON *dn = cJSON_CreateObject();
        fx_set_str(dn, "name", fx_str(x, e, "/case_findings/super_resolution/slides", "model", 0));
        cJSON_AddStringToObject(dn, "type", "model-name");
        cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "deviceName"), dn);
        cJSON_AddItemToObject(r, "type", fx_concept(FX_LOCAL_SYSTEM, "sr-model", "Super-resolution model",
                                                    "Super-resolution network (histoplan)"));
        snprintf(buf, sizeof buf,
                 "Generated the tiles of slide %s that the classifier saw: %s. Super-resolved pixels are not "
                 "the scanned image.",
                 fx_str(x, e, "/case_findings/super_resolution/slides", "slide_id", 0),
                 fx_str(x, e, "/case_findings/super_resolution/slides", "reason", 0));
        fx_note(r, "note", buf);
    }
}

/* The signer: from the signature when given, else from sign_off (a signed report whose signature
 * was not passed still names its interpreter). Returns 1 with `ref` set when there is one. */
static int practitioner(fx_ctx *x, const cJSON *sig, const cJSON *sign_off, char *ref)
{
    const char *who = NULL, *fpr = NULL;
    if (sign_off) {
        who = fx_str(x, sign_off, "/sign_off", "pathologist_id", 0);
        fpr = fx_str(x, sign_off, "/sign_off", "key_fingerprint", 0);
    }
    if (sig) {
        const char *sw = fx_str(x, sig, "signature", "pathologist_id", 0);
        const char *sf = fx_str(x, sig, "signature", "key_fingerprint", 0);
        if (who && strcmp(who, sw))
            fx_fail(x, "signature: pathologist_id \"%s\" is not the report's signer \"%s\"", sw, who);
        if (fpr && strcmp(fpr, sf))
            fx_fail(x, "signature: key_fingerprint does not match /sign_off/key_fingerprint");
        who = sw;
        fpr = sf;
    }
    if (!who || x->failed)
        return 0;
    cJSON *r = fx_add_resource(x, "Practitioner", "practitioner", ref);
    cJSON *ids = cJSON_AddArrayToObject(r, "identifier");
    cJSON *id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "system", HP_IDS "pathologist-id");
    fx_set_str(id, "value", who);
    cJSON_AddItemToArray(ids, id);
    id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "system", HP_IDS "ed25519-key-sha256");
    fx_set_str(id, "value", fpr);
    cJSON_AddItemToArray(ids, id);
    return 1;
}

static void diagnostic_report(fx_ctx *x, cJSON *results, const char *interpreter, const char *issued)
{
    const cJSON *dx = cJSON_GetObjectItemCaseSensitive(x->report, "diagnosis");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(dx, "code");
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(x->report, "confidence");
    const char *level = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(conf, "level"));
    const char *display = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dx, "display"));
    const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(dx, "suggested_by"));

    cJSON *r = fx_add_resource(x, "DiagnosticReport", "diagnostic-report", x->report_ref);
    fx_ai_security(r);
    cJSON *id = cJSON_CreateObject();
    cJSON_AddStringToObject(id, "system", HP_IDS "report-id");
    cJSON_AddStringToObject(id, "value", x->report_id);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "identifier"), id);
    cJSON_AddStringToObject(r, "status", x->status);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "category"),
                         fx_concept("http://terminology.hl7.org/CodeSystem/v2-0074", "SP", "Surgical Pathology", NULL));
    cJSON_AddItemToObject(r, "code", fx_concept(LOINC, "60568-3", "Pathology Synoptic report", NULL));
    cJSON_AddItemToObject(r, "subject", fx_reference(x->patient, NULL));
    cJSON_AddStringToObject(r, "issued", issued);
    if (interpreter)
        cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "resultsInterpreter"), fx_reference(interpreter, NULL));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "specimen"), fx_reference(x->specimen, NULL));
    cJSON_AddItemToObject(r, "result", results);
    if (!display || !by || !level || !code)
        return; /* already reported by the findings pass */
    char buf[2048];
    const cJSON *dom = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(x->report, "case_findings"),
                                                        "domain");
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(dom, "out_of_domain"))) {
        /* No coded conclusion at all: a receiving system must not file a category the model was
         * not valid to suggest. The out-of-domain QC Observation carries each slide's reason. */
        const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(dom, "reasons"), 0);
        const char *sid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r0, "slide_id"));
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r0, "reason"));
        snprintf(buf, sizeof buf,
                 "%sNo category and no care plan suggested: model not valid for this slide (%s: %s). %s",
                 sr_slides(x) ? SR_CONCLUSION : "", sid ? sid : "?", why ? why : "out of domain", x->notice);
        cJSON_AddStringToObject(r, "conclusion", buf);
        return;
    }
    /* Once signed, the category is the pathologist's: the display already says "(confirmed by
     * pathologist)" or "(pathologist)", so only who proposed it is added, never "suggested". */
    char whose[96];
    if (!x->status || !strcmp(x->status, "preliminary"))
        snprintf(whose, sizeof whose, "suggested by %.40s", by);
    else
        snprintf(whose, sizeof whose, "%s", !strcmp(by, "pathologist") ? "set by the signing pathologist"
                                                 : "proposed by histoplan");
    snprintf(buf, sizeof buf, "%s%s (%s; model confidence %s). %s", sr_slides(x) ? SR_CONCLUSION : "", display, whose,
             level, x->notice);
    cJSON_AddStringToObject(r, "conclusion", buf);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "conclusionCode"),
                         fx_concept(cJSON_GetStringValue(cJSON_GetObjectItem(code, "system")),
                                    cJSON_GetStringValue(cJSON_GetObjectItem(code, "code")),
                                    cJSON_GetStringValue(cJSON_GetObjectItem(code, "display")), display));
}

static cJSON *participant(const char *code, const char *display, const char *who)
{
    cJSON *a = cJSON_CreateObject();
    cJSON_AddItemToObject(a, "type", fx_concept(PARTICIPANT, code, display, NULL));
    cJSON_AddItemToObject(a, "who", fx_reference(who, NULL));
    return a;
}

static void provenance(fx_ctx *x, const cJSON *sig, const char *practitioner_ref)
{
    cJSON *targets = cJSON_CreateArray();
    const cJSON *e;
    cJSON_ArrayForEach(e, x->entries)
        cJSON_AddItemToArray(targets, fx_reference(cJSON_GetObjectItem(e, "fullUrl")->valuestring, NULL));
    char ref[FX_REF_MAX], buf[512];
    cJSON *r = fx_add_resource(x, "Provenance", "provenance", ref);
    cJSON_AddItemToObject(r, "target", targets);
    cJSON_AddStringToObject(r, "recorded", x->generated_at);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "policy"),
                         cJSON_CreateString("https://histoplan.invalid/fhir/policy/research-use-only"));
    cJSON *reason = fx_concept("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HRESCH",
                               "healthcare research", x->notice);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "reason"), reason);
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItem(x->report, "histoplan_version"));
    snprintf(buf, sizeof buf, "%s Findings, report and care-plan suggestions made by histoplan %s for research use.",
             FX_AI_NOTICE, ver ? ver : "");
    cJSON_AddItemToObject(r, "activity", fx_concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation",
                                                    "CREATE", "create", buf));
    cJSON *agents = cJSON_AddArrayToObject(r, "agent");
    cJSON_AddItemToArray(agents, participant("author", "Author", x->device));
    cJSON_AddItemToArray(agents, participant("assembler", "Assembler", x->device));
    for (int i = 0; i < x->n_sr_devices; i++) /* made the pixels the author classified */
        cJSON_AddItemToArray(agents, participant("performer", "Performer", x->sr_device[i]));
    if (practitioner_ref)
        cJSON_AddItemToArray(agents, participant("verifier", "Verifier", practitioner_ref));
    if (!sig)
        return;
    const char *alg = fx_str(x, sig, "signature", "algorithm", 0);
    const char *sha = fx_str(x, sig, "signature", "report_sha256", 0);
    const char *data = fx_str(x, sig, "signature", "signature", 0);
    const char *when = fx_str(x, sig, "signature", "signed_at", 0);
    fx_str(x, sig, "signature", "public_key", 0);
    if (x->failed)
        return;
    if (strcmp(alg, "Ed25519"))
        fx_fail(x, "signature: algorithm \"%s\" is not Ed25519", alg);
    if (!base64(data))
        fx_fail(x, "signature: signature is not base64");
    if (!fhir_instant(when))
        fx_fail(x, "signature: signed_at \"%s\" is not a UTC time", when);
    if (!practitioner_ref)
        return;
    /* The signed bytes are the report's canonical JSON (RFC 8785), named by their hash. */
    cJSON *ent = cJSON_CreateObject();
    cJSON_AddStringToObject(ent, "role", "source");
    cJSON *what = cJSON_AddObjectToObject(ent, "what");
    cJSON *wid = cJSON_AddObjectToObject(what, "identifier");
    cJSON_AddStringToObject(wid, "system", HP_IDS "report-sha256");
    cJSON_AddStringToObject(wid, "value", sha);
    cJSON_AddStringToObject(what, "display", "report.json, canonical form (RFC 8785), as signed");
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "entity"), ent);
    cJSON *s = cJSON_CreateObject();
    cJSON_AddItemToArray(cJSON_AddArrayToObject(s, "type"),
                         fx_coding("urn:iso-astm:E1762-95:2013", "1.2.840.10065.1.12.1.5", "Verification Signature"));
    cJSON_AddStringToObject(s, "when", when);
    cJSON_AddItemToObject(s, "who", fx_reference(practitioner_ref, NULL));
    cJSON_AddStringToObject(s, "targetFormat", "application/json");
    cJSON_AddStringToObject(s, "data", data);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "signature"), s);
}

cJSON *hp_report_fhir_bundle(const cJSON *report, const cJSON *signature, hp_error *err)
{
    fx_ctx x = {.err = err, .report = report};
    if (!cJSON_IsObject(report)) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: the report is not a JSON object");
        return NULL;
    }
    if (signature && !cJSON_IsObject(signature)) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: the signature is not a JSON object");
        return NULL;
    }
    x.report_id = fx_str(&x, report, "", "report_id", 0);
    x.status = fx_str(&x, report, "", "status", 0);
    x.generated_at = fx_str(&x, report, "", "generated_at", 0);
    x.notice = fx_str(&x, report, "", "research_use_notice", 0);
    const cJSON *rev = fx_member(&x, report, "", "revision", cJSON_Number, 0);
    const cJSON *cs = fx_member(&x, report, "", "case", cJSON_Object, 0);
    const cJSON *model = fx_member(&x, report, "", "model", cJSON_Object, 0);
    const cJSON *sign_off = fx_member(&x, report, "", "sign_off", cJSON_Object, 1);
    fx_member(&x, report, "", "statements", cJSON_Array, 0);
    if (x.failed)
        return NULL;
    if (strcmp(x.status, "preliminary") && strcmp(x.status, "final") && strcmp(x.status, "amended")) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: report.json: /status \"%s\" is not preliminary, final or amended", x.status);
        return NULL;
    }
    if (strlen(x.report_id) != 16 || strspn(x.report_id, "0123456789abcdef") != 16) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: report.json: /report_id \"%s\" is not 16 hex digits", x.report_id);
        return NULL;
    }
    if (!fhir_instant(x.generated_at)) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: report.json: /generated_at \"%s\" is not a UTC time", x.generated_at);
        return NULL;
    }
    if ((signature || sign_off) && !strcmp(x.status, "preliminary")) {
        hp_error_set(err, HP_ERR_INVALID, "FHIR rendering: a preliminary report carries no signature or sign_off");
        return NULL;
    }

    cJSON *bundle = cJSON_CreateObject();
    char buf[128], bundle_id[37];
    cJSON_AddStringToObject(bundle, "resourceType", "Bundle");
    role_uuid(&x, "bundle", bundle_id);
    cJSON_AddStringToObject(bundle, "id", bundle_id);
    cJSON *bid = cJSON_AddObjectToObject(bundle, "identifier");
    cJSON_AddStringToObject(bid, "system", HP_IDS "report-revision");
    snprintf(buf, sizeof buf, "%s-r%d", x.report_id, rev ? rev->valueint : 0);
    cJSON_AddStringToObject(bid, "value", buf);
    cJSON_AddStringToObject(bundle, "type", "collection");
    cJSON_AddStringToObject(bundle, "timestamp", x.generated_at);
    x.entries = cJSON_AddArrayToObject(bundle, "entry");

    patient(&x, cs);
    specimen(&x, cs);
    device(&x, model);
    sr_devices(&x);
    char prac[FX_REF_MAX];
    int signed_by = practitioner(&x, signature, sign_off, prac);

    /* Where the findings were seen, for the Observations' bodySite. */
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(cs, "specimen");
    const char *site = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sp, "site"));
    const char *lat = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sp, "laterality"));
    char where[512] = "";
    if (site)
        snprintf(where, sizeof where, "%s%s%s", site, lat ? ", " : "", lat ? lat : "");

    cJSON *results = cJSON_CreateArray();
    fx_findings(&x, results, where);
    const char *issued = x.generated_at;
    if (sign_off) {
        const char *at = fx_str(&x, sign_off, "/sign_off", "signed_at", 0);
        if (!fhir_instant(at))
            fx_fail(&x, "report.json: /sign_off/signed_at \"%s\" is not a UTC time", at);
        else
            issued = at;
    }
    diagnostic_report(&x, results, signed_by ? prac : NULL, issued);
    fx_care_plan(&x);
    provenance(&x, signature, signed_by ? prac : NULL);
    if (x.failed) {
        cJSON_Delete(bundle);
        return NULL;
    }
    return bundle;
}

hp_status hp_report_write_fhir(const cJSON *report, const cJSON *signature, const char *path,
                               hp_error *err)
{
    cJSON *b = hp_report_fhir_bundle(report, signature, err);
    if (!b)
        return err && err->code ? err->code : HP_ERR_INVALID;
    char *text = cJSON_Print(b);
    cJSON_Delete(b);
    if (!text)
        return hp_error_set(err, HP_ERR_NOMEM, "FHIR rendering: out of memory printing the bundle");
    hp_status st = hp_atomic_write_text(path, text, err);
    free(text);
    return st;
}
