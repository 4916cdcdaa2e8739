#include "report/report_sign.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "models/card.h"
#include "report/audit_log.h"
#include "report/canonical_json.h"
#include "report/category.h"
#include "report/json_file.h"
#include "report/json_pointer.h"
#include "report/report_dir.h"
#include "report/signature.h"

static void revision_path(char *out, size_t cap, const char *dir, int rev, const char *file)
{
    if (rev == 0)
        snprintf(out, cap, "%s/%s", dir, file);
    else
        snprintf(out, cap, "%s/revisions/%d/%s", dir, rev, file);
}

/* Canonical bytes and their SHA-256. */
static hp_status canonical_hash(const cJSON *report, char **bytes, size_t *len, unsigned char digest[32],
                                char hex[65], hp_error *err)
{
    *bytes = hp_json_canonicalize(report, len, err);
    if (!*bytes)
        return err && err->code ? err->code : HP_ERR_INVALID;
    if (hp_sha256(*bytes, *len, digest, hex))
        return hp_error_set(err, HP_ERR_INVALID, "report: SHA-256 failed");
    return HP_OK;
}

/* Every image the report names must be in dir/images with the recorded hash. Returns the count
 * of mismatches and prints them. */
static int check_images(const cJSON *node, const char *dir, FILE *out, const char *label)
{
    int bad = 0;
    if (cJSON_IsObject(node)) {
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(node, "file");
        const cJSON *sha = cJSON_GetObjectItemCaseSensitive(node, "sha256");
        if (cJSON_IsString(file) && cJSON_IsString(sha) && cJSON_GetObjectItemCaseSensitive(node, "width_px")) {
            char path[PATH_MAX], hex[65];
            hp_error e = {0};
            snprintf(path, sizeof path, "%s/%s", dir, file->valuestring);
            if (strstr(file->valuestring, "..") || hp_sha256_file(path, hex, &e)) {
                if (out)
                    fprintf(out, "FAIL %s: image %s is missing or unreadable\n", label, file->valuestring);
                return 1;
            }
            if (strcmp(hex, sha->valuestring)) {
                if (out)
                    fprintf(out, "FAIL %s: image %s does not match its recorded SHA-256 (changed)\n", label,
                            file->valuestring);
                return 1;
            }
            return 0;
        }
    }
    for (const cJSON *c = node ? node->child : NULL; c; c = c->next)
        bad += check_images(c, dir, out, label);
    return bad;
}

/* ---- amendments ---- */

static void record_change(cJSON *changes, const char *field, const cJSON *before, const cJSON *after)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "field", field);
    cJSON_AddItemToObject(c, "before", before ? cJSON_Duplicate(before, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(c, "after", cJSON_Duplicate(after, 1));
    cJSON_AddItemToArray(changes, c);
}

/* Applies one change. Only the signer's own fields may change: the diagnostic category and the
 * care-plan decisions and notes; the measured findings come from the analysis and stay. */
static hp_status apply_change(cJSON *report, const char *path, int index, const cJSON *ch, cJSON *changes,
                              hp_error *err)
{
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(ch, "field");
    const cJSON *value = cJSON_GetObjectItemCaseSensitive(ch, "value");
    if (!cJSON_IsObject(ch) || !cJSON_IsString(field) || !value || cJSON_GetArraySize(ch) != 2)
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: changes[%d] must be {\"field\": JSON Pointer, \"value\": ...}", path,
                            index);
    const char *f = field->valuestring;
    if (!strcmp(f, "/diagnosis/category")) {
        int k = cJSON_IsString(value) ? hp_category_find(value->valuestring) : -1;
        if (k < 0)
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: changes[%d]: /diagnosis/category must be one of invasive-carcinoma, "
                                "in-situ-carcinoma, benign, normal, indeterminate",
                                path, index);
        cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
        record_change(changes, f, cJSON_GetObjectItemCaseSensitive(d, "category"), value);
        const hp_category_info *ci = hp_category_get((hp_category)k);
        cJSON_ReplaceItemInObjectCaseSensitive(d, "category", cJSON_CreateString(ci->name));
        char disp[128];
        snprintf(disp, sizeof disp, "%s (pathologist)", ci->display);
        cJSON_ReplaceItemInObjectCaseSensitive(d, "display", cJSON_CreateString(disp));
        cJSON *code = cJSON_CreateObject();
        cJSON_AddStringToObject(code, "system", ci->system);
        cJSON_AddStringToObject(code, "code", ci->code);
        cJSON_AddStringToObject(code, "display", ci->code_display);
        cJSON_ReplaceItemInObjectCaseSensitive(d, "code", code);
        cJSON_ReplaceItemInObjectCaseSensitive(d, "suggested_by", cJSON_CreateString("pathologist"));
        return HP_OK;
    }
    int i = -1, used = 0;
    char member[16] = "";
    if (sscanf(f, "/care_plan/suggestions/%d/%15[a-z]%n", &i, member, &used) == 2 && (size_t)used == strlen(f) &&
        (!strcmp(member, "decision") || !strcmp(member, "note"))) {
        cJSON *s = hp_json_pointer_get(report, f);
        if (!s)
            return hp_error_set(err, HP_ERR_INVALID, "amendment file %s: changes[%d]: %s names no suggestion", path,
                                index, f);
        if (!strcmp(member, "decision") &&
            !(cJSON_IsString(value) && (!strcmp(value->valuestring, "approved") ||
                                        !strcmp(value->valuestring, "rejected") || !strcmp(value->valuestring, "pending"))))
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: changes[%d]: a decision must be approved, rejected or pending",
                                path, index);
        if (!strcmp(member, "note") && !cJSON_IsNull(value) && !(cJSON_IsString(value) && strlen(value->valuestring) <= 2000))
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: changes[%d]: a note must be a text of at most 2000 characters or null",
                                path, index);
        char parent[64];
        snprintf(parent, sizeof parent, "/care_plan/suggestions/%d", i);
        record_change(changes, f, s, value);
        cJSON_ReplaceItemInObjectCaseSensitive(hp_json_pointer_get(report, parent), member, cJSON_Duplicate(value, 1));
        return HP_OK;
    }
    return hp_error_set(err, HP_ERR_INVALID,
                        "amendment file %s: changes[%d]: %s cannot be amended; only /diagnosis/category and "
                        "/care_plan/suggestions/N/decision or /note can (the measured findings come from the analysis)",
                        path, index, f);
}

static hp_status apply_amendments(cJSON *report, const char *path, cJSON *changes, char **reason, hp_error *err)
{
    cJSON *root = NULL;
    hp_status st = hp_json_file_read(path, "amendment file", &root, NULL, err);
    if (st)
        return st;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "changes");
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(root, "reason");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(list) || !cJSON_IsString(why) || !why->valuestring[0]) {
        cJSON_Delete(root);
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: must be {\"reason\": text, \"changes\": [{\"field\": ..., \"value\": ...}]}",
                            path);
    }
    for (const cJSON *m = root->child; m; m = m->next)
        if (strcmp(m->string, "changes") && strcmp(m->string, "reason") && strcmp(m->string, "$schema")) {
            hp_error_set(err, HP_ERR_INVALID, "amendment file %s: unknown field '%s'", path, m->string);
            cJSON_Delete(root);
            return HP_ERR_INVALID;
        }
    int i = 0;
    for (const cJSON *c = list->child; c; c = c->next, i++)
        if ((st = apply_change(report, path, i, c, changes, err))) {
            cJSON_Delete(root);
            return st;
        }
    *reason = strdup(why->valuestring);
    cJSON_Delete(root);
    return *reason ? HP_OK : hp_error_set(err, HP_ERR_NOMEM, "out of memory");
}

/* ---- reading a revision ---- */

/* Reads revision `rev` of `dir`. For a signed revision also its signature.json. */
static hp_status read_revision(const char *dir, int rev, cJSON **report, cJSON **sig, char **raw, size_t *raw_len,
                               hp_error *err)
{
    char path[PATH_MAX];
    revision_path(path, sizeof path, dir, rev, "report.json");
    *report = NULL;
    if (sig)
        *sig = NULL;
    /* With `raw`, also the exact bytes parsed: verify checks they are the canonical form signed. */
    hp_status st = hp_json_file_read_bytes(path, "report", report, raw, raw_len, err);
    if (st)
        return st;
    if (sig && rev > 0) {
        revision_path(path, sizeof path, dir, rev, "signature.json");
        if ((st = hp_json_file_read(path, "signature", sig, NULL, err)))
            return st;
    }
    return HP_OK;
}

hp_status hp_report_sign(const hp_report_sign_opts *o, int *revision, hp_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX] = "", final_dir[PATH_MAX];
    cJSON *base = NULL, *report = NULL, *sig = NULL;
    char *bytes = NULL, *base_bytes = NULL, *reason = NULL, *pub_b64 = NULL, *sig_b64 = NULL;
    hp_status st;

    snprintf(path, sizeof path, "%s/audit.jsonl", o->dir);
    size_t n_events = 0;
    if ((st = hp_audit_verify(path, &n_events, err)))
        return st;
    int latest = hp_report_dir_latest_revision(o->dir, err);
    if (latest < 0)
        return err->code;
    if (latest > 0 && !o->amend_path)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s is already signed (revision %d): a signed report cannot be signed again or changed; "
                            "sign an amended revision with --amend FILE",
                            o->dir, latest);
    /* The revision signed off from must itself be intact. */
    if ((st = read_revision(o->dir, latest, &base, NULL, NULL, NULL, err)))
        goto done;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(base, "status");
    if (!cJSON_IsString(status) || (latest == 0) != !strcmp(status->valuestring, "preliminary")) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: revision %d has an unexpected status", o->dir, latest);
        goto done;
    }
    if (check_images(base, o->dir, NULL, "")) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: an image of the report does not match its recorded hash; run `histoplan report verify`",
                          o->dir);
        goto done;
    }
    size_t base_len;
    unsigned char digest[32];
    char base_hex[65], hex[65];
    if ((st = canonical_hash(base, &base_bytes, &base_len, digest, base_hex, err)))
        goto done;

    report = cJSON_Duplicate(base, 1);
    cJSON *changes = cJSON_CreateArray();
    if (o->amend_path && (st = apply_amendments(report, o->amend_path, changes, &reason, err))) {
        cJSON_Delete(changes);
        goto done;
    }
    int rev = latest + 1;
    char now[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), now);
    cJSON_ReplaceItemInObjectCaseSensitive(report, "revision", cJSON_CreateNumber(rev));
    cJSON_ReplaceItemInObjectCaseSensitive(report, "status", cJSON_CreateString(rev == 1 ? "final" : "amended"));
    cJSON_ReplaceItemInObjectCaseSensitive(report, "generated_at", cJSON_CreateString(now));

    /* Load the key first: its fingerprint goes into the signed content. */
    unsigned char pub[32], signature[64];
    unsigned char probe[64];
    if ((st = hp_ed25519_sign(o->key_path, "", 0, probe, pub, err))) {
        cJSON_Delete(changes);
        goto done;
    }
    char fpr[65];
    hp_key_fingerprint(pub, fpr);
    cJSON *so = cJSON_CreateObject();
    cJSON_AddStringToObject(so, "pathologist_id", o->pathologist_id);
    cJSON_AddStringToObject(so, "signed_at", now);
    cJSON_AddStringToObject(so, "key_fingerprint", fpr);
    if (reason)
        cJSON_AddStringToObject(so, "reason", reason);
    else
        cJSON_AddNullToObject(so, "reason");
    cJSON_AddItemToObject(so, "amendments", changes);
    cJSON *sup = cJSON_AddObjectToObject(so, "supersedes");
    cJSON_AddNumberToObject(sup, "revision", latest);
    cJSON_AddStringToObject(sup, "report_sha256", base_hex);
    cJSON_ReplaceItemInObjectCaseSensitive(report, "sign_off", so);

    size_t len;
    if ((st = canonical_hash(report, &bytes, &len, digest, hex, err)))
        goto done;
    if ((st = hp_ed25519_sign(o->key_path, digest, 32, signature, pub, err)))
        goto done;
    pub_b64 = hp_base64_encode(pub, 32);
    sig_b64 = hp_base64_encode(signature, 64);
    if (!pub_b64 || !sig_b64) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    sig = cJSON_CreateObject();
    cJSON_AddStringToObject(sig, "algorithm", "Ed25519");
    cJSON_AddStringToObject(sig, "signed_content",
                            "the SHA-256 digest (32 bytes) of report.json, which is stored in RFC 8785 canonical form");
    cJSON_AddNumberToObject(sig, "revision", rev);
    cJSON_AddStringToObject(sig, "report_sha256", hex);
    cJSON_AddStringToObject(sig, "signature", sig_b64);
    cJSON_AddStringToObject(sig, "public_key", pub_b64);
    cJSON_AddStringToObject(sig, "key_fingerprint", fpr);
    cJSON_AddStringToObject(sig, "pathologist_id", o->pathologist_id);
    cJSON_AddStringToObject(sig, "signed_at", now);

    /* Written to a temporary folder and renamed: a revision appears whole or not at all. */
    snprintf(path, sizeof path, "%s/revisions", o->dir);
    if (mkdir(path, 0755) && errno != EEXIST) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", path, strerror(errno));
        goto done;
    }
    snprintf(tmp, sizeof tmp, "%s/revisions/%d.partial-%ld", o->dir, rev, (long)getpid());
    snprintf(final_dir, sizeof final_dir, "%s/revisions/%d", o->dir, rev);
    if (mkdir(tmp, 0755)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s", tmp, strerror(errno));
        tmp[0] = '\0';
        goto done;
    }
    if (snprintf(path, sizeof path, "%s/report.json", tmp) >= (int)sizeof path) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: path too long", tmp);
        goto done;
    }
    hp_atomic_file af;
    if ((st = hp_atomic_open(path, &af, err)))
        goto done;
    int ok = fwrite(bytes, 1, len, af.f) == len;
    if ((st = hp_atomic_finish(path, &af, ok, err)))
        goto done;
    if (snprintf(path, sizeof path, "%s/signature.json", tmp) >= (int)sizeof path) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: path too long", tmp);
        goto done;
    }
    char *sig_text = cJSON_Print(sig);
    st = hp_atomic_write_text(path, sig_text, err);
    free(sig_text);
    if (st || (st = hp_report_render(report, sig, tmp, o->dir, err)))
        goto done;
    if (rename(tmp, final_dir)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s (signed by someone else meanwhile?)", final_dir, strerror(errno));
        goto done;
    }
    tmp[0] = '\0';

    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "report_id", cJSON_GetObjectItemCaseSensitive(report, "report_id")->valuestring);
    cJSON_AddNumberToObject(details, "revision", rev);
    cJSON_AddStringToObject(details, "report_sha256", hex);
    cJSON_AddStringToObject(details, "supersedes_sha256", base_hex);
    cJSON_AddStringToObject(details, "key_fingerprint", fpr);
    cJSON *fields = cJSON_AddArrayToObject(details, "changed_fields");
    for (const cJSON *c = changes->child; c; c = c->next)
        cJSON_AddItemToArray(fields, cJSON_CreateString(cJSON_GetObjectItemCaseSensitive(c, "field")->valuestring));
    snprintf(path, sizeof path, "%s/audit.jsonl", o->dir);
    st = hp_audit_append(path, rev == 1 ? "sign" : "amend", o->pathologist_id, details, err);
    cJSON_Delete(details);
    if (st == HP_OK && revision)
        *revision = rev;
done:
    if (tmp[0]) {
        char p2[PATH_MAX];
        static const char *const files[] = {"report.json", "signature.json", "report.fhir.json", "report.html"};
        for (int i = 0; i < 4; i++) {
            if (snprintf(p2, sizeof p2, "%s/%s", tmp, files[i]) < (int)sizeof p2)
                unlink(p2);
        }
        rmdir(tmp);
    }
    cJSON_Delete(base);
    cJSON_Delete(report);
    cJSON_Delete(sig);
    free(bytes);
    free(base_bytes);
    free(reason);
    free(pub_b64);
    free(sig_b64);
    return st;
}

/* ---- verify ---- */

static int verify_revision(const char *dir, int rev, const unsigned char (*want)[32], int n_want,
                           const char *prev_hex, char hex_out[65], FILE *out)
{
    cJSON *report = NULL, *sig = NULL;
    char *raw = NULL, *canon = NULL;
    size_t raw_len = 0, len = 0;
    hp_error e = {0};
    int bad = 0;
    char label[32];
    snprintf(label, sizeof label, "revision %d", rev);
    if (read_revision(dir, rev, &report, &sig, &raw, &raw_len, &e)) {
        fprintf(out, "FAIL %s: %s\n", label, e.msg);
        bad = 1;
        goto done;
    }
    unsigned char digest[32];
    if (canonical_hash(report, &canon, &len, digest, hex_out, &e)) {
        fprintf(out, "FAIL %s: %s\n", label, e.msg);
        bad = 1;
        goto done;
    }
    if (raw_len != len || memcmp(raw, canon, len)) {
        fprintf(out, "FAIL %s: report.json is not the canonical text that was signed (changed after signing)\n",
                label);
        bad = 1;
    }
    const char *want_hex = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(sig, "report_sha256"))
                               ? cJSON_GetObjectItemCaseSensitive(sig, "report_sha256")->valuestring
                               : "";
    if (strcmp(want_hex, hex_out)) {
        fprintf(out, "FAIL %s: report.json's SHA-256 %s does not match the signed %s (changed after signing)\n", label,
                hex_out, want_hex);
        bad = 1;
    }
    unsigned char pub[32], sigbytes[64];
    size_t n = 0;
    const cJSON *pk = cJSON_GetObjectItemCaseSensitive(sig, "public_key");
    const cJSON *sg = cJSON_GetObjectItemCaseSensitive(sig, "signature");
    if (!cJSON_IsString(pk) || hp_base64_decode(pk->valuestring, pub, 32, &n, &e) || n != 32 || !cJSON_IsString(sg) ||
        hp_base64_decode(sg->valuestring, sigbytes, 64, &n, &e) || n != 64) {
        fprintf(out, "FAIL %s: signature.json has no valid public key or signature\n", label);
        bad = 1;
        goto done;
    }
    char fpr[65];
    hp_key_fingerprint(pub, fpr);
    int known = n_want == 0;
    for (int k = 0; k < n_want; k++)
        known |= !memcmp(want[k], pub, 32);
    if (!known) {
        fprintf(out, "FAIL %s: signed with another key (fingerprint %s), not a public key given\n", label, fpr);
        bad = 1;
    }
    hp_error ve = {0};
    if (hp_ed25519_verify(pub, digest, 32, sigbytes, &ve)) {
        fprintf(out, "FAIL %s: the signature does not verify against report.json (%s)\n", label, ve.msg);
        bad = 1;
    }
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(report, "sign_off");
    const cJSON *sfpr = cJSON_GetObjectItemCaseSensitive(so, "key_fingerprint");
    if (!cJSON_IsString(sfpr) || strcmp(sfpr->valuestring, fpr)) {
        fprintf(out, "FAIL %s: the report's sign_off names another key than the signature's\n", label);
        bad = 1;
    }
    const cJSON *rv = cJSON_GetObjectItemCaseSensitive(report, "revision");
    if (!cJSON_IsNumber(rv) || rv->valuedouble != rev) {
        fprintf(out, "FAIL %s: report.json says revision %g\n", label, cJSON_IsNumber(rv) ? rv->valuedouble : -1.0);
        bad = 1;
    }
    const cJSON *sup = hp_json_pointer_get(report, "/sign_off/supersedes/report_sha256");
    if (prev_hex && (!cJSON_IsString(sup) || strcmp(sup->valuestring, prev_hex))) {
        fprintf(out, "FAIL %s: it does not supersede revision %d as recorded (the chain of revisions is broken)\n",
                label, rev - 1);
        bad = 1;
    }
    bad += check_images(report, dir, out, label);
    if (!bad)
        fprintf(out, "ok   %s: %s, signed by %s at %s, key %.16s, SHA-256 %s\n", label,
                cJSON_GetObjectItemCaseSensitive(report, "status")->valuestring,
                cJSON_GetObjectItemCaseSensitive(so, "pathologist_id")->valuestring,
                cJSON_GetObjectItemCaseSensitive(so, "signed_at")->valuestring, fpr, hex_out);
done:
    cJSON_Delete(report);
    cJSON_Delete(sig);
    free(raw);
    free(canon);
    return bad;
}

hp_status hp_report_verify(const char *dir, const char *const *pubkey_paths, int n_pubkeys, FILE *out, hp_error *err)
{
    unsigned char(*want)[32] = calloc(n_pubkeys > 0 ? (size_t)n_pubkeys : 1, sizeof *want);
    if (!want)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    for (int k = 0; k < n_pubkeys; k++) {
        hp_status st = hp_ed25519_load_public(pubkey_paths[k], want[k], err);
        if (st) {
            free(want);
            return st;
        }
    }
    int bad = 0;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    size_t n_events = 0;
    hp_error e = {0};
    if (hp_audit_verify(path, &n_events, &e)) {
        fprintf(out, "FAIL audit log: %s\n", e.msg);
        bad++;
    } else {
        fprintf(out, "ok   audit log: %zu events, hash chain intact\n", n_events);
    }
    int latest = hp_report_dir_latest_revision(dir, err);
    if (latest < 0) {
        free(want);
        return err->code;
    }
    /* The draft: readable, and its images intact (it is not signed). */
    cJSON *draft = NULL;
    char prev_hex[65] = "";
    if (read_revision(dir, 0, &draft, NULL, NULL, NULL, &e)) {
        fprintf(out, "FAIL draft: %s\n", e.msg);
        bad++;
    } else {
        char *canon = NULL;
        size_t len;
        unsigned char d[32];
        hp_error ce = {0};
        int img_bad = check_images(draft, dir, out, "draft");
        if (canonical_hash(draft, &canon, &len, d, prev_hex, &ce)) {
            fprintf(out, "FAIL draft: %s\n", ce.msg);
            bad++;
        } else if (!img_bad) {
            fprintf(out, "ok   draft (revision 0, preliminary, unsigned): images intact, SHA-256 %s\n", prev_hex);
        }
        bad += img_bad;
        free(canon);
    }
    cJSON_Delete(draft);
    if (latest == 0)
        fprintf(out, "note: the report is not signed yet (status preliminary)\n");
    for (int rev = 1; rev <= latest; rev++) {
        char hex[65] = "";
        bad += verify_revision(dir, rev, (const unsigned char(*)[32])want, n_pubkeys, prev_hex[0] ? prev_hex : NULL, hex,
                               out);
        memcpy(prev_hex, hex, sizeof prev_hex);
    }
    cJSON *details = cJSON_CreateObject();
    cJSON_AddNumberToObject(details, "revisions_checked", latest);
    cJSON_AddBoolToObject(details, "ok", bad == 0);
    cJSON_AddNumberToObject(details, "public_keys_given", n_pubkeys);
    free(want);
    /* A tampered log is not extended (hp_audit_append refuses); the result is still printed. */
    hp_error ae = {0};
    hp_audit_append(path, "verify", NULL, details, &ae);
    cJSON_Delete(details);
    if (bad)
        return hp_error_set(err, HP_ERR_INVALID, "report %s: %d check(s) failed", dir, bad);
    return HP_OK;
}
