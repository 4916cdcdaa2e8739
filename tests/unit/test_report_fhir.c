/* FHIR R4 rendering of report.json: the hand-made fixtures tests/data/report-example/report.json
 * (preliminary) and report-signed.json (final, with a signature object) are rendered and the
 * bundle's structure checked: resource types and counts, the codes and statuses, the CarePlan's
 * draft proposals with one ServiceRequest per service, the Provenance's author Device and, when
 * signed, its verifier Practitioner and signature; every reference resolves; the same report gives
 * the same bytes. Refusals: a missing or mistyped member is named, never a crash.
 *
 * `test_report_fhir --write DIR` writes DIR/unsigned.fhir.json and DIR/signed.fhir.json for
 * tests/scripts/test_report_fhir_schema.sh, which validates them against the official schema. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report_fhir.h"
#include "util/testutil.h"

static int passed;

#define OK(cond) CHECK_COUNT(passed, cond)

static cJSON *load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/data/report-example/%s", hp_test_env("HP_SOURCE_DIR", "."), name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (set HP_SOURCE_DIR)\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = buf ? fread(buf, 1, (size_t)n, f) : 0;
    fclose(f);
    if (!buf || got != (size_t)n) {
        free(buf);
        return NULL;
    }
    buf[n] = 0;
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    if (!j)
        fprintf(stderr, "%s: not JSON\n", path);
    return j;
}

static cJSON *signature_for(const cJSON *report)
{
    const cJSON *so = cJSON_GetObjectItem(report, "sign_off");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddStringToObject(s, "algorithm", "Ed25519");
    cJSON_AddStringToObject(s, "report_sha256", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    cJSON_AddStringToObject(s, "signature",
                            "q6ZbJ0l0V2cS3m4o5Xn1qQy8E8g0aZ0hTq4Yx3k8k6w1o2p3q4r5s6t7u8v9w0x1y2z3A4B5C6D7E8F9G0H1IQ==");
    cJSON_AddStringToObject(s, "public_key", "MCowBQYDK2VwAyEAGb9ECWmEzf6FQbrBZ9w7lshQhqowtrbLDFw4rXAxZuE=");
    cJSON_AddStringToObject(s, "key_fingerprint", cJSON_GetObjectItem(so, "key_fingerprint")->valuestring);
    cJSON_AddStringToObject(s, "pathologist_id", cJSON_GetObjectItem(so, "pathologist_id")->valuestring);
    cJSON_AddStringToObject(s, "signed_at", cJSON_GetObjectItem(so, "signed_at")->valuestring);
    return s;
}

static int count_type(const cJSON *bundle, const char *type)
{
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(bundle, "entry")) {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(e, "resource"), "resourceType"));
        n += t && !strcmp(t, type);
    }
    return n;
}

static const cJSON *nth_of_type(const cJSON *bundle, const char *type, int k, const char **full_url)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(bundle, "entry")) {
        const cJSON *r = cJSON_GetObjectItem(e, "resource");
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(r, "resourceType"));
        if (t && !strcmp(t, type) && k-- == 0) {
            if (full_url)
                *full_url = cJSON_GetStringValue(cJSON_GetObjectItem(e, "fullUrl"));
            return r;
        }
    }
    return NULL;
}

static const cJSON *obs_with_code(const cJSON *bundle, const char *code)
{
    const cJSON *o;
    for (int k = 0; (o = nth_of_type(bundle, "Observation", k, NULL)); k++) {
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "code"), "coding"), 0);
        if (!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(c, "code")), code))
            return o;
    }
    return NULL;
}

static const char *first_code(const cJSON *concept, const char **system)
{
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(concept, "coding"), 0);
    if (system)
        *system = cJSON_GetStringValue(cJSON_GetObjectItem(c, "system"));
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(c, "code"));
    return code ? code : "";
}

static const char *ref_of(const cJSON *r) { return cJSON_GetStringValue(cJSON_GetObjectItem(r, "reference")); }

/* Every "reference" anywhere in the tree names a fullUrl of the bundle. */
static int unresolved(const cJSON *bundle, const cJSON *node)
{
    int bad = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, node) {
        if (c->string && !strcmp(c->string, "reference") && cJSON_IsString(c)) {
            int found = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, cJSON_GetObjectItem(bundle, "entry"))
                found |= !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "fullUrl")), c->valuestring);
            if (!found) {
                fprintf(stderr, "unresolved reference %s\n", c->valuestring);
                bad++;
            }
        }
        bad += unresolved(bundle, c);
    }
    return bad;
}

static int has_aiast(const cJSON *r)
{
    const cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "meta"), "security"), 0);
    const char *code = cJSON_GetStringValue(cJSON_GetObjectItem(s, "code"));
    return code && !strcmp(code, "AIAST");
}

static void check_bundle(const cJSON *b, const char *status, int is_signed)
{
    OK(b != NULL);
    if (!b)
        return;
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "resourceType")), "Bundle"));
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(b, "type")), "collection"));
    OK(count_type(b, "Patient") == 1);
    OK(count_type(b, "Specimen") == 1);
    OK(count_type(b, "Device") == 1);
    OK(count_type(b, "Practitioner") == is_signed);
    /* invasive focus, in situ extent, category, tissue area, composition, uncertainty, 1 QC flag */
    OK(count_type(b, "Observation") == 7);
    OK(count_type(b, "DiagnosticReport") == 1);
    OK(count_type(b, "ServiceRequest") == 3); /* ER + PgR, HER2 */
    OK(count_type(b, "CarePlan") == 1);
    OK(count_type(b, "Provenance") == 1);
    OK(cJSON_GetArraySize(cJSON_GetObjectItem(b, "entry")) == 16 + is_signed);
    OK(unresolved(b, b) == 0);

    const char *dr_url = NULL, *dev_url = NULL, *prac_url = NULL, *sys = NULL;
    const cJSON *dr = nth_of_type(b, "DiagnosticReport", 0, &dr_url);
    nth_of_type(b, "Device", 0, &dev_url);
    nth_of_type(b, "Practitioner", 0, &prac_url);
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(dr, "status")), status));
    OK(!strcmp(first_code(cJSON_GetArrayItem(cJSON_GetObjectItem(dr, "category"), 0), &sys), "SP"));
    OK(sys && !strcmp(sys, "http://terminology.hl7.org/CodeSystem/v2-0074"));
    OK(!strcmp(first_code(cJSON_GetObjectItem(dr, "code"), &sys), "60568-3") && !strcmp(sys, "http://loinc.org"));
    OK(cJSON_GetArraySize(cJSON_GetObjectItem(dr, "result")) == 7);
    OK(!strcmp(first_code(cJSON_GetArrayItem(cJSON_GetObjectItem(dr, "conclusionCode"), 0), NULL), "82711006"));
    OK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(dr, "conclusion")), "research use") != NULL);
    OK(has_aiast(dr));
    OK(!cJSON_GetObjectItem(dr, "resultsInterpreter") == !is_signed);
    if (is_signed)
        OK(!strcmp(ref_of(cJSON_GetArrayItem(cJSON_GetObjectItem(dr, "resultsInterpreter"), 0)), prac_url));

    const cJSON *o;
    int aiast = 0, statuses = 0;
    for (int k = 0; (o = nth_of_type(b, "Observation", k, NULL)); k++) {
        aiast += has_aiast(o);
        statuses += !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(o, "status")), status);
    }
    OK(aiast == 7 && statuses == 7);
    o = obs_with_code(b, "22637-3");
    OK(o && !strcmp(first_code(cJSON_GetObjectItem(o, "valueCodeableConcept"), &sys), "82711006") &&
       !strcmp(sys, "http://snomed.info/sct"));
    OK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "derivedFrom")) == 2);
    o = obs_with_code(b, "33728-7");
    const cJSON *q = cJSON_GetObjectItem(o, "valueQuantity");
    OK(q && cJSON_GetObjectItem(q, "value")->valuedouble == 14.2 &&
       !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(q, "code")), "mm") &&
       !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(q, "system")), "http://unitsofmeasure.org"));
    OK(obs_with_code(b, "qc-flag") != NULL);
    o = obs_with_code(b, "tissue-composition");
    OK(o && cJSON_GetArraySize(cJSON_GetObjectItem(o, "component")) == 4);
    /* background has no percent: data absent, not invented */
    OK(o && cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "component"), 0), "dataAbsentReason"));

    const cJSON *cp = nth_of_type(b, "CarePlan", 0, NULL);
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cp, "status")), "draft"));
    OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cp, "intent")), "proposal"));
    OK(!strcmp(ref_of(cJSON_GetArrayItem(cJSON_GetObjectItem(cp, "supportingInfo"), 0)), dr_url));
    OK(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(cp, "description")), "clinician must approve") != NULL);
    const cJSON *acts = cJSON_GetObjectItem(cp, "activity"), *a;
    int with_ref = 0, with_detail = 0, cancelled = 0, approval = 0;
    cJSON_ArrayForEach(a, acts) {
        with_ref += cJSON_GetObjectItem(a, "reference") != NULL;
        const cJSON *d = cJSON_GetObjectItem(a, "detail");
        with_detail += d && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")), "not-started");
        cancelled += d && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(d, "status")), "cancelled");
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "progress"), 0), "text"));
        approval += p && strstr(p, "requires clinician approval") && strstr(p, "Rule CP-") && strstr(p, "guideline:");
    }
    /* The signed fixture's clinician rejected the MDT referral (no services): cancelled. */
    OK(with_ref == 3 && with_detail == 3 - is_signed && cancelled == is_signed && approval == 6);
    const cJSON *sr;
    int good_sr = 0;
    for (int k = 0; (sr = nth_of_type(b, "ServiceRequest", k, NULL)); k++)
        good_sr += !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(sr, "status")), "draft") &&
                   !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(sr, "intent")), "proposal") &&
                   !strcmp(ref_of(cJSON_GetArrayItem(cJSON_GetObjectItem(sr, "reasonReference"), 0)), dr_url) &&
                   has_aiast(sr);
    OK(good_sr == 3);
    OK(!strcmp(first_code(cJSON_GetObjectItem(nth_of_type(b, "ServiceRequest", 2, NULL), "code"), NULL), "48676-1"));

    const cJSON *pv = nth_of_type(b, "Provenance", 0, NULL);
    OK(cJSON_GetArraySize(cJSON_GetObjectItem(pv, "target")) == 15 + is_signed);
    int author = 0, verifier = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItem(pv, "agent")) {
        const char *t = first_code(cJSON_GetObjectItem(a, "type"), NULL);
        const char *who = ref_of(cJSON_GetObjectItem(a, "who"));
        author += !strcmp(t, "author") && !strcmp(who, dev_url);
        verifier += !strcmp(t, "verifier") && prac_url && !strcmp(who, prac_url);
    }
    OK(author == 1 && verifier == is_signed);
    const cJSON *sig = cJSON_GetArrayItem(cJSON_GetObjectItem(pv, "signature"), 0);
    OK(!sig == !is_signed);
    if (sig) {
        const cJSON *t = cJSON_GetArrayItem(cJSON_GetObjectItem(sig, "type"), 0);
        OK(!strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(t, "code")), "1.2.840.10065.1.12.1.5"));
        OK(!strcmp(ref_of(cJSON_GetObjectItem(sig, "who")), prac_url));
        OK(!strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(sig, "data")), "q6ZbJ0l0", 8));
    }
}

/* Renders `report` after removing the member at `parent`/`name`; the error must name `want`. */
static void refuse(const cJSON *report, const cJSON *sig, const char *want, void (*edit)(cJSON *))
{
    cJSON *r = cJSON_Duplicate(report, 1);
    edit(r);
    hp_error err = {0};
    cJSON *b = hp_report_fhir_bundle(r, sig, &err);
    OK(b == NULL);
    CHECK_MSG(err.code == HP_ERR_INVALID && strstr(err.msg, want), "want \"%s\" in \"%s\"", want, err.msg);
    passed += err.code == HP_ERR_INVALID && strstr(err.msg, want) != NULL;
    cJSON_Delete(b);
    cJSON_Delete(r);
}

static void no_accession(cJSON *r) { cJSON_DeleteItemFromObject(cJSON_GetObjectItem(r, "case"), "accession"); }
static void no_diagnosis(cJSON *r) { cJSON_DeleteItemFromObject(r, "diagnosis"); }
static void no_rule_id(cJSON *r)
{
    cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "care_plan"), "suggestions"), 1);
    cJSON_DeleteItemFromObject(s, "rule_id");
}
static void area_as_text(cJSON *r)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(r, "case_findings"), "tissue_area_mm2", cJSON_CreateString("240"));
}
static void bad_birth_date(cJSON *r)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "case"), "patient"), "birth_date",
                              cJSON_CreateString("1980-13-01"));
}
static void bad_sex(cJSON *r)
{
    cJSON_ReplaceItemInObject(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "case"), "patient"), "sex",
                              cJSON_CreateString("f"));
}
static void bad_priority(cJSON *r)
{
    cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "care_plan"), "suggestions"), 1);
    cJSON_ReplaceItemInObject(s, "priority", cJSON_CreateString("whenever"));
}
static void no_model(cJSON *r) { cJSON_DeleteItemFromObject(r, "model"); }
static void no_service_code(cJSON *r)
{
    cJSON *s = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "care_plan"), "suggestions"), 2);
    cJSON_DeleteItemFromObject(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "services"), 0), "code");
}
static void nothing(cJSON *r) { (void)r; }

/* Every member of the report, one at a time, removed and then replaced by null and by a string:
 * each rendering either succeeds or fails with a message (under ASan: without a fault or leak).
 * `at` is the node's position as child indexes from the root, `depth` of them. */
static int mangle_walk(const cJSON *report, const cJSON *node, int *at, int depth, int *renders, int *refused)
{
    int bad = 0, i = 0;
    for (const cJSON *c = node->child; c; c = c->next, i++) {
        at[depth] = i;
        for (int k = 0; k < 3; k++) {
            cJSON *copy = cJSON_Duplicate(report, 1), *n = copy;
            for (int d = 0; d <= depth; d++)
                n = cJSON_GetArrayItem(n, at[d]);
            cJSON *parent = copy;
            for (int d = 0; d < depth; d++)
                parent = cJSON_GetArrayItem(parent, at[d]);
            if (k == 0)
                cJSON_Delete(cJSON_DetachItemViaPointer(parent, n));
            else {
                cJSON *rep = k == 1 ? cJSON_CreateNull() : cJSON_CreateString("?");
                if (n->string) /* ReplaceItemViaPointer keeps no member name */
                    rep->string = strdup(n->string);
                cJSON_ReplaceItemViaPointer(parent, n, rep);
            }
            hp_error err = {0};
            cJSON *b = hp_report_fhir_bundle(copy, NULL, &err);
            (*renders)++;
            if (!b) {
                (*refused)++;
                bad += !err.msg[0];
            }
            cJSON_Delete(b);
            cJSON_Delete(copy);
        }
        if (depth + 1 < 32)
            bad += mangle_walk(report, c, at, depth + 1, renders, refused);
    }
    return bad;
}

static int write_file(const char *dir, const char *name, const cJSON *report, const cJSON *sig)
{
    char path[1024];
    hp_error err = {0};
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (hp_report_write_fhir(report, sig, path, &err) != HP_OK) {
        fprintf(stderr, "%s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cJSON *draft = load("report.json"), *fin = load("report-signed.json");
    if (!draft || !fin)
        return 1;
    cJSON *sig = signature_for(fin);
    if (argc == 3 && !strcmp(argv[1], "--write")) {
        int rc = write_file(argv[2], "unsigned.fhir.json", draft, NULL) |
                 write_file(argv[2], "signed.fhir.json", fin, sig);
        cJSON_Delete(draft);
        cJSON_Delete(fin);
        cJSON_Delete(sig);
        return rc;
    }

    hp_error err = {0};
    cJSON *b = hp_report_fhir_bundle(draft, NULL, &err);
    CHECK_MSG(b != NULL, "%s", err.msg);
    check_bundle(b, "preliminary", 0);
    cJSON *b2 = hp_report_fhir_bundle(draft, NULL, &err);
    char *t1 = cJSON_PrintUnformatted(b), *t2 = cJSON_PrintUnformatted(b2);
    OK(t1 && t2 && !strcmp(t1, t2)); /* deterministic */
    /* The patient carries what the case gave, no more: no birth date was given. */
    const cJSON *pat = nth_of_type(b, "Patient", 0, NULL);
    OK(cJSON_GetObjectItem(pat, "birthDate") == NULL && cJSON_GetObjectItem(pat, "gender"));
    OK(cJSON_GetArraySize(cJSON_GetObjectItem(pat, "identifier")) == 2);
    free(t1);
    free(t2);
    cJSON_Delete(b2);

    hp_error err2 = {0};
    cJSON *s = hp_report_fhir_bundle(fin, sig, &err2);
    CHECK_MSG(s != NULL, "%s", err2.msg);
    check_bundle(s, "final", 1);
    /* Same report id, same fullUrls: the signed revision's resources replace the draft's. */
    OK(b && s && !strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "entry"), 0), "fullUrl")),
                         cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "entry"), 0), "fullUrl"))));
    cJSON_Delete(b);
    cJSON_Delete(s);

    /* An amendment: every status amended; a rejected suggestion's requests are revoked. */
    cJSON *am = cJSON_Duplicate(fin, 1);
    cJSON_ReplaceItemInObject(am, "status", cJSON_CreateString("amended"));
    cJSON *sg = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(am, "care_plan"), "suggestions"), 1);
    cJSON_ReplaceItemInObject(sg, "decision", cJSON_CreateString("rejected"));
    hp_error err6 = {0};
    b = hp_report_fhir_bundle(am, sig, &err6);
    CHECK_MSG(b != NULL, "%s", err6.msg);
    int amended = 0, revoked = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(b, "entry")) {
        const cJSON *r = cJSON_GetObjectItem(e, "resource");
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "status"));
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(r, "resourceType"));
        amended += st && !strcmp(st, "amended") && (!strcmp(t, "Observation") || !strcmp(t, "DiagnosticReport"));
        revoked += st && !strcmp(st, "revoked") && !strcmp(t, "ServiceRequest");
    }
    OK(amended == 8 && revoked == 2);
    cJSON_Delete(b);
    cJSON_Delete(am);

    /* A case that gave nothing about the patient: a Patient with an id only. */
    cJSON *anon = cJSON_Duplicate(draft, 1);
    cJSON *p = cJSON_GetObjectItem(cJSON_GetObjectItem(anon, "case"), "patient");
    cJSON_ReplaceItemInObject(p, "identifiers", cJSON_CreateArray());
    cJSON_ReplaceItemInObject(p, "name", cJSON_CreateNull());
    cJSON_ReplaceItemInObject(p, "sex", cJSON_CreateNull());
    hp_error err3 = {0};
    b = hp_report_fhir_bundle(anon, NULL, &err3);
    pat = nth_of_type(b, "Patient", 0, NULL);
    OK(pat && cJSON_GetArraySize(pat) == 2 && cJSON_GetObjectItem(pat, "id"));
    cJSON_Delete(b);
    cJSON_Delete(anon);

    int at[32], renders = 0, refused = 0;
    int unnamed = mangle_walk(draft, draft, at, 0, &renders, &refused);
    OK(unnamed == 0);
    OK(refused > 100 && refused < renders);
    printf("mangled members: %d renderings, %d refused with a message\n", renders, refused);

    refuse(draft, NULL, "/case/accession is missing", no_accession);
    refuse(draft, NULL, "/diagnosis is missing", no_diagnosis);
    refuse(draft, NULL, "/care_plan/suggestions/1/rule_id is missing", no_rule_id);
    refuse(draft, NULL, "/care_plan/suggestions/2/services/0/code is missing", no_service_code);
    refuse(draft, NULL, "/case_findings/tissue_area_mm2 must be a number", area_as_text);
    refuse(draft, NULL, "/case/patient/birth_date", bad_birth_date);
    refuse(draft, NULL, "/model is missing", no_model);
    refuse(draft, NULL, "/case/patient/sex \"f\"", bad_sex);
    refuse(draft, NULL, "/care_plan/suggestions/1/priority \"whenever\"", bad_priority);
    refuse(draft, sig, "preliminary report", nothing);
    cJSON *other = cJSON_Duplicate(sig, 1);
    cJSON_ReplaceItemInObject(other, "pathologist_id", cJSON_CreateString("someone-else"));
    refuse(fin, other, "someone-else", nothing);
    cJSON_ReplaceItemInObject(other, "pathologist_id", cJSON_CreateString("path-0193"));
    cJSON_DeleteItemFromObject(other, "signature");
    refuse(fin, other, "signature/signature is missing", nothing);
    cJSON_Delete(other);
    hp_error err4 = {0};
    cJSON *arr = cJSON_CreateArray();
    OK(hp_report_fhir_bundle(arr, NULL, &err4) == NULL && err4.code == HP_ERR_INVALID);
    cJSON_Delete(arr);
    hp_error err5 = {0};
    OK(hp_report_write_fhir(draft, NULL, "/nonexistent-dir-hp/x.fhir.json", &err5) == HP_ERR_IO);

    cJSON_Delete(draft);
    cJSON_Delete(fin);
    cJSON_Delete(sig);
    return hp_test_finish("test_report_fhir", passed);
}
