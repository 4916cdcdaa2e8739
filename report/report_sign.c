/* Sign-off of a report folder: see report_sign.h. */
#include "report/report_sign.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/remove_tree.h"
#include "common/utc_time.h"
#include "io/atomic_file.h"
#include "common/sha256.h"
#include "report/audit_log.h"
#include "report/build_record.h"
#include "report/canonical_json.h"
#include "report/care_rules.h"
#include "report/report_content.h"
#include "report/category.h"
#include "report/json_file.h"
#include "report/json_pointer.h"
#include "report/report_dir.h"
#include "report/report_verify.h"
#include "report/signature.h"
#include "report/signer_registry.h"

/* ---- amendments ---- */

/* Amendments name what they change by the ids the report shows: "category" and the care-plan
 * suggestions' rule ids (CP-...). A change of category derives the statements, confidence and
 * the rule table's suggestions again (report_content.h), and what that changed is listed with
 * the amendment; decisions and notes follow. The file is one change or a list:
 *
 *   {"category": "in-situ", "reason": "..."}
 *   {"suggestion": "CP-INV-HER2", "decision": "declined", "note": "...", "reason": "..."}
 *   {"reason": "...", "changes": [{"category": ...}, {"suggestion": ..., "decision": ...}]}
 */

typedef struct {
    const char *path;           /* the amendment file, for messages */
    const char *rules_path;     /* the rule table to derive with (NULL: the default) */
    cJSON *changes;             /* sign_off.amendments */
    cJSON *consequences;        /* sign_off.consequences (NULL until a category changes) */
} amend_ctx;

static void record_change(cJSON *changes, const char *id, const char *what, const cJSON *before, const cJSON *after,
                          const char *reason)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", id);
    cJSON_AddStringToObject(c, "change", what);
    cJSON_AddItemToObject(c, "before", before ? cJSON_Duplicate(before, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(c, "after", after ? cJSON_Duplicate(after, 1) : cJSON_CreateNull());
    if (reason)
        cJSON_AddStringToObject(c, "reason", reason);
    else
        cJSON_AddNullToObject(c, "reason");
    cJSON_AddItemToArray(changes, c);
}

/* Short names a pathologist writes, and the report's own names. */
static int category_of(const char *name)
{
    static const struct {
        const char *alias, *name;
    } ALIASES[] = {{"invasive", "invasive-carcinoma"},   {"in-situ", "in-situ-carcinoma"},
                   {"insitu", "in-situ-carcinoma"},       {"dcis", "in-situ-carcinoma"},
                   {"review", "review-for-invasion"}};
    for (size_t i = 0; i < sizeof ALIASES / sizeof *ALIASES; i++)
        if (!strcmp(name, ALIASES[i].alias))
            name = ALIASES[i].name;
    return hp_category_find(name);
}

static const char *str_of(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* `key` of `o` as a string, "" when it has none. */
static const char *str_or_empty(const cJSON *o, const char *key)
{
    const char *s = str_of(o, key);
    return s ? s : "";
}

static cJSON *find_suggestion(cJSON *report, const char *rule_id)
{
    cJSON *list = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "care_plan"), "suggestions");
    for (cJSON *x = list ? list->child : NULL; x; x = x->next)
        if (!strcmp(str_or_empty(x, "rule_id"), rule_id))
            return x;
    return NULL;
}

/* What re-deriving changed: statements by text, suggestions by rule id, the confidence level. */
static cJSON *consequences(const cJSON *before, const cJSON *after)
{
    cJSON *o = cJSON_CreateObject();
    const char *lists[2][2] = {{"statements_removed", "statements_added"}, {"suggestions_removed", "suggestions_added"}};
    for (int kind = 0; kind < 2; kind++)
        for (int dir = 0; dir < 2; dir++) {
            const cJSON *from = dir ? after : before, *to = dir ? before : after;
            const cJSON *a = kind ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(from, "care_plan"), "suggestions")
                                  : cJSON_GetObjectItemCaseSensitive(from, "statements");
            const cJSON *b = kind ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(to, "care_plan"), "suggestions")
                                  : cJSON_GetObjectItemCaseSensitive(to, "statements");
            const char *key = kind ? "rule_id" : "text";
            cJSON *out = cJSON_AddArrayToObject(o, lists[kind][dir]);
            for (const cJSON *x = a ? a->child : NULL; x; x = x->next) {
                const char *v = str_of(x, key);
                int found = 0;
                for (const cJSON *y = b ? b->child : NULL; y && !found; y = y->next)
                    found = v && str_of(y, key) && !strcmp(v, str_of(y, key));
                if (found)
                    continue;
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "id", str_or_empty(x, kind ? "rule_id" : "id"));
                cJSON_AddStringToObject(e, "text", str_or_empty(x, kind ? "title" : "text"));
                cJSON_AddItemToArray(out, e);
            }
        }
    cJSON *c = cJSON_AddObjectToObject(o, "confidence");
    cJSON_AddItemToObject(c, "before", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                                        cJSON_GetObjectItemCaseSensitive(before, "confidence"), "level"), 1));
    cJSON_AddItemToObject(c, "after", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(
                                                       cJSON_GetObjectItemCaseSensitive(after, "confidence"), "level"), 1));
    return o;
}

/* The category change: derive again with the rule table the report was built with. */
static hp_status change_category(cJSON *report, amend_ctx *a, const char *where, const cJSON *value, const char *reason,
                                 hp_error *err)
{
    int k = cJSON_IsString(value) ? category_of(value->valuestring) : -1;
    if (k < 0)
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: %s: category must be one of invasive (invasive-carcinoma), "
                            "review-for-invasion, in-situ (in-situ-carcinoma), benign, normal, indeterminate",
                            a->path, where);
    cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
    cJSON *before_cat = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(d, "category"), 1);
    const cJSON *rules_ref = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(report, "care_plan"), "rules");
    const char *want = str_of(rules_ref, "sha256");
    const char *rp = a->rules_path ? a->rules_path : hp_care_rules_default_path();
    hp_care_rules rules = {0};
    cJSON *before = NULL;
    hp_status st = hp_care_rules_load(rp, &rules, err);
    if (st)
        goto done;
    if (!want || strcmp(want, rules.sha256)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "amendment file %s: %s: changing the category derives the care plan again with the rule table "
                          "the report was built with (SHA-256 %.16s...), but %s is another (%.16s...); give that table "
                          "with --rules",
                          a->path, where, want ? want : "unknown", rp, rules.sha256);
        goto done;
    }
    before = cJSON_CreateObject();
    cJSON_AddItemToObject(before, "statements", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(report, "statements"), 1));
    cJSON_AddItemToObject(before, "care_plan", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(report, "care_plan"), 1));
    cJSON_AddItemToObject(before, "confidence", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(report, "confidence"), 1));
    if ((st = hp_report_content_rederive(report, k, &rules, err)))
        goto done;
    /* Decisions and notes already taken on suggestions that remain are kept. */
    const cJSON *old = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(before, "care_plan"), "suggestions");
    for (const cJSON *x = old ? old->child : NULL; x; x = x->next) {
        cJSON *now = find_suggestion(report, str_or_empty(x, "rule_id"));
        if (!now)
            continue;
        cJSON_ReplaceItemInObjectCaseSensitive(now, "decision",
                                               cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(x, "decision"), 1));
        cJSON_ReplaceItemInObjectCaseSensitive(now, "note", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(x, "note"), 1));
    }
    d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
    const hp_category_info *ci = hp_category_get((hp_category)k);
    char disp[128];
    snprintf(disp, sizeof disp, "%s (pathologist)", ci->display);
    cJSON_ReplaceItemInObjectCaseSensitive(d, "display", cJSON_CreateString(disp));
    cJSON_ReplaceItemInObjectCaseSensitive(d, "suggested_by", cJSON_CreateString("pathologist"));
    record_change(a->changes, "category", "category", before_cat, cJSON_GetObjectItemCaseSensitive(d, "category"), reason);
    cJSON_Delete(a->consequences);
    a->consequences = consequences(before, report);
done:
    cJSON_Delete(before);
    cJSON_Delete(before_cat);
    hp_care_rules_free(&rules);
    return st;
}

static hp_status change_suggestion(cJSON *report, amend_ctx *a, const char *where, const cJSON *ch, const char *reason,
                                   hp_error *err)
{
    const char *id = str_of(ch, "suggestion");
    cJSON *s = id ? find_suggestion(report, id) : NULL;
    if (!s)
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: %s: the care plan has no suggestion %s%s (the ids head each "
                            "suggestion in report.html)",
                            a->path, where, id ? id : "(none given)",
                            a->consequences ? " after the change of category" : "");
    const cJSON *dec = cJSON_GetObjectItemCaseSensitive(ch, "decision");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(ch, "note");
    if (!dec && !note)
        return hp_error_set(err, HP_ERR_INVALID, "amendment file %s: %s: give a decision or a note for %s", a->path,
                            where, id);
    if (dec) {
        const char *v = cJSON_GetStringValue(dec);
        if (v && !strcmp(v, "rejected"))
            v = "declined";
        if (!v || (strcmp(v, "approved") && strcmp(v, "declined") && strcmp(v, "pending")))
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: %s: the decision on %s must be approved, declined or pending",
                                a->path, where, id);
        cJSON *after = cJSON_CreateString(v);
        record_change(a->changes, id, "decision", cJSON_GetObjectItemCaseSensitive(s, "decision"), after, reason);
        cJSON_ReplaceItemInObjectCaseSensitive(s, "decision", after);
    }
    if (note) {
        if (!cJSON_IsNull(note) && !(cJSON_IsString(note) && strlen(note->valuestring) <= 2000))
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: %s: the note on %s must be a text of at most 2000 characters or "
                                "null",
                                a->path, where, id);
        record_change(a->changes, id, "note", cJSON_GetObjectItemCaseSensitive(s, "note"), note, reason);
        cJSON_ReplaceItemInObjectCaseSensitive(s, "note", cJSON_Duplicate(note, 1));
    }
    return HP_OK;
}

/* A signature attests the category it signs: one histoplan suggested and the pathologist kept
 * reads "... (confirmed by pathologist)" from now on, not "(suggested)" (suggested_by still says
 * who proposed it); one the pathologist set already reads "(pathologist)". */
static void confirm_category(cJSON *report)
{
    cJSON *d = cJSON_GetObjectItemCaseSensitive(report, "diagnosis");
    const char *by = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "suggested_by"));
    int k = hp_category_find(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "category")));
    if (!by || strcmp(by, "histoplan") || k < 0)
        return;
    char disp[128];
    snprintf(disp, sizeof disp, "%s (confirmed by pathologist)", hp_category_get((hp_category)k)->display);
    cJSON_ReplaceItemInObjectCaseSensitive(d, "display", cJSON_CreateString(disp));
}

/* One change object: its members checked, so a misspelt key is named, never ignored. */
static hp_status check_change(const amend_ctx *a, const char *where, const cJSON *ch, int top, hp_error *err)
{
    if (!cJSON_IsObject(ch))
        return hp_error_set(err, HP_ERR_INVALID, "amendment file %s: %s must be an object", a->path, where);
    int cat = cJSON_GetObjectItemCaseSensitive(ch, "category") != NULL;
    int sug = cJSON_GetObjectItemCaseSensitive(ch, "suggestion") != NULL;
    if (cJSON_GetObjectItemCaseSensitive(ch, "field"))
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: %s: changes name what they change by id, not by JSON pointer: "
                            "{\"category\": \"in-situ\", \"reason\": ...} or {\"suggestion\": \"CP-...\", "
                            "\"decision\": \"approved|declined|pending\", \"reason\": ...}",
                            a->path, where);
    if (cat == sug)
        return hp_error_set(err, HP_ERR_INVALID,
                            "amendment file %s: %s must change either the category ({\"category\": ...}) or one "
                            "suggestion ({\"suggestion\": \"CP-...\", \"decision\": ...}), not %s",
                            a->path, where, cat ? "both" : "neither");
    for (const cJSON *m = ch->child; m; m = m->next) {
        const char *k = m->string;
        int ok = !strcmp(k, "reason") || (top && !strcmp(k, "$schema")) || (cat && !strcmp(k, "category")) ||
                 (sug && (!strcmp(k, "suggestion") || !strcmp(k, "decision") || !strcmp(k, "note")));
        if (!ok)
            return hp_error_set(err, HP_ERR_INVALID,
                                "amendment file %s: %s: '%s' cannot be amended; an amendment changes the category or "
                                "a suggestion's decision or note (the measured findings come from the analysis)",
                                a->path, where, k);
    }
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(ch, "reason");
    if (r && !(cJSON_IsString(r) && r->valuestring[0]))
        return hp_error_set(err, HP_ERR_INVALID, "amendment file %s: %s: reason must be a non-empty text", a->path,
                            where);
    return HP_OK;
}

static hp_status apply_amendments(cJSON *report, amend_ctx *a, char **reason, hp_error *err)
{
    cJSON *root = NULL;
    hp_status st = hp_json_file_read(a->path, "amendment file", &root, NULL, err);
    if (st)
        return st;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "changes");
    const char *why = str_of(root, "reason");
    cJSON *one = NULL;
    if (cJSON_IsObject(root) && list) {
        for (const cJSON *m = root->child; m && !st; m = m->next)
            if (strcmp(m->string, "changes") && strcmp(m->string, "reason") && strcmp(m->string, "$schema"))
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "amendment file %s: unknown field '%s' beside \"changes\" (each change is "
                                  "{\"category\": ...} or {\"suggestion\": ..., \"decision\": ...})",
                                  a->path, m->string);
        if (!st && (!cJSON_IsArray(list) || !cJSON_GetArraySize(list)))
            st = hp_error_set(err, HP_ERR_INVALID, "amendment file %s: \"changes\" must be a non-empty list", a->path);
    } else if (cJSON_IsObject(root)) {
        /* A single change: the file itself. */
        one = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(one, root);
        list = one;
    } else {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "amendment file %s: must be an object: {\"category\": \"in-situ\", \"reason\": ...}, "
                          "{\"suggestion\": \"CP-...\", \"decision\": ..., \"reason\": ...} or {\"reason\": ..., "
                          "\"changes\": [...]}",
                          a->path);
    }
    char where[48];
    int i = 0;
    for (const cJSON *c = list && !st ? list->child : NULL; c && !st; c = c->next, i++) {
        snprintf(where, sizeof where, one ? "the change" : "changes[%d]", i);
        if ((st = check_change(a, where, c, !!one, err)))
            break;
        if (!why && !str_of(c, "reason"))
            st = hp_error_set(err, HP_ERR_INVALID, "amendment file %s: %s has no reason; every amendment says why",
                              a->path, where);
    }
    /* The category first, since it derives the suggestions that decisions then apply to. */
    for (int pass = 0; pass < 2 && !st; pass++) {
        i = 0;
        for (const cJSON *c = list->child; c && !st; c = c->next, i++) {
            snprintf(where, sizeof where, one ? "the change" : "changes[%d]", i);
            const char *r = str_of(c, "reason") ? str_of(c, "reason") : why;
            const cJSON *cat = cJSON_GetObjectItemCaseSensitive(c, "category");
            if (pass == 0 && cat)
                st = change_category(report, a, where, cat, r, err);
            else if (pass == 1 && !cat)
                st = change_suggestion(report, a, where, c, r, err);
        }
    }
    if (!st) {
        /* sign_off.reason: the file's reason, else each change's, in order. */
        size_t cap = 1;
        for (const cJSON *c = list->child; c; c = c->next)
            cap += strlen(str_or_empty(c, "reason")) + 2;
        cap += why ? strlen(why) : 0;
        char *r = malloc(cap);
        if (r) {
            r[0] = '\0';
            if (why)
                strcat(r, why);
            else
                for (const cJSON *c = list->child; c; c = c->next)
                    if (str_of(c, "reason") && !strstr(r, str_of(c, "reason"))) {
                        if (r[0])
                            strcat(r, "; ");
                        strcat(r, str_of(c, "reason"));
                    }
        }
        *reason = r;
        if (!r)
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    }
    cJSON_Delete(one);
    cJSON_Delete(root);
    return st;
}

/* ---- checks before signing ---- */

/* The signer's key: the registry, when there is one, must bind it to this pathologist. */
static hp_status check_registry(const hp_report_sign_opts *o, const char *fpr, hp_error *err)
{
    char path[PATH_MAX];
    struct stat sb;
    if (o->registry_path)
        snprintf(path, sizeof path, "%s", o->registry_path);
    else if (hp_signer_registry_default_path(path, sizeof path, NULL) || (stat(path, &sb) && errno == ENOENT))
        return HP_OK; /* no registry: verify will say the signer is not verified */
    hp_signer_registry *reg = NULL;
    hp_status st = hp_signer_registry_load(path, 0, &reg, err);
    if (st)
        return st;
    const hp_signer *s = hp_signer_registry_find(reg, fpr);
    if (!s)
        st = hp_error_set(err, HP_ERR_INVALID,
                          "the key %s (fingerprint %.16s...) is not in the signer registry %s; register it first: "
                          "histoplan report signers add --pathologist %s --pubkey PUB.pem",
                          o->key_path, fpr, path, o->pathologist_id);
    else if (s->revoked_at[0])
        st = hp_error_set(err, HP_ERR_INVALID, "the key %s was revoked at %s in the signer registry %s", o->key_path,
                          s->revoked_at, path);
    else if (strcmp(s->pathologist_id, o->pathologist_id))
        st = hp_error_set(err, HP_ERR_INVALID,
                          "the key %s belongs to %s in the signer registry %s, not to %s: a key signs only for its "
                          "own pathologist",
                          o->key_path, s->pathologist_id, path, o->pathologist_id);
    hp_signer_registry_free(reg);
    return st;
}

static hp_status same_bytes(const char *a, const char *b, int *same, hp_error *err)
{
    char ha[65], hb[65];
    hp_status st = hp_sha256_file(a, ha, err);
    if (!st)
        st = hp_sha256_file(b, hb, err);
    *same = !st && !strcmp(ha, hb);
    return st;
}

/* What the pathologist read is what gets signed: the draft's page and bundle must be exactly
 * what its report.json renders to. Rendered into `scratch`, compared, removed. */
static hp_status check_draft_renders(const char *dir, const cJSON *draft, const char *scratch, hp_error *err)
{
    static const char *const names[] = {"report.html", "report.fhir.json"};
    char mine[PATH_MAX], theirs[PATH_MAX];
    hp_status st = hp_report_render(draft, NULL, scratch, dir, err);
    for (int i = 0; i < 2 && !st; i++) {
        int same = 0;
        snprintf(mine, sizeof mine, "%s/%s", scratch, names[i]);
        snprintf(theirs, sizeof theirs, "%s/%s", dir, names[i]);
        if (!(st = same_bytes(mine, theirs, &same, err)) && !same) {
            const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(draft, "histoplan_version"));
            st = hp_error_set(err, HP_ERR_INVALID,
                              "%s is not what report.json renders to (built by histoplan %s, this is %s): what was "
                              "read would not be what is signed; rebuild the report with `histoplan report build "
                              "--overwrite` and review it again",
                              theirs, v ? v : "?", HP_VERSION);
        }
    }
    for (int i = 0; i < 2; i++) {
        snprintf(mine, sizeof mine, "%s/%s", scratch, names[i]);
        unlink(mine);
    }
    return st;
}

/* ---- writing ---- */

/* Writes `bytes` exactly (no newline added): the files verify reads back as canonical text. */
static hp_status write_exact(const char *path, const char *bytes, size_t len, hp_error *err)
{
    hp_atomic_file af;
    hp_status st = hp_atomic_open(path, &af, err);
    if (st)
        return st;
    return hp_atomic_finish(path, &af, fwrite(bytes, 1, len, af.f) == len, err);
}

static char *sign_digest(const hp_report_sign_opts *o, const unsigned char digest[32], unsigned char pub[32],
                         hp_error *err)
{
    unsigned char sig[64];
    if (hp_ed25519_sign_unlocked(o->key_path, o->key_passphrase, digest, 32, sig, pub, err))
        return NULL;
    char *b64 = hp_base64_encode(sig, 64);
    if (!b64)
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return b64;
}

/* The manifest: every file of the revision (written in `tmp`, named as they will be) and of
 * images/, the revision superseded and the audit log's head. */
static cJSON *make_manifest(const char *dir, const char *tmp, int rev, const cJSON *report, const cJSON *sig,
                            const char *base_hex, hp_error *err)
{
    static const char *const own[] = {"report.json", "report.html", "report.fhir.json"};
    cJSON *m = cJSON_CreateObject();
    cJSON *files = m ? cJSON_AddObjectToObject(m, "files") : NULL;
    hp_audit_log log = {0};
    char path[PATH_MAX];
    if (!files) {
        hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    cJSON_AddStringToObject(m, "format", HP_MANIFEST_FORMAT);
    cJSON_AddNumberToObject(m, "revision", rev);
    cJSON_AddStringToObject(m, "report_id", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(report, "report_id")));
    static const char *const copied[] = {"pathologist_id", "key_fingerprint", "signed_at"};
    for (int i = 0; i < 3; i++)
        cJSON_AddStringToObject(m, copied[i], cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sig, copied[i])));
    cJSON_AddStringToObject(m, "report_signature", cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sig, "signature")));
    for (int i = 0; i < 3; i++) {
        char hex[65], rel[64];
        snprintf(path, sizeof path, "%s/%s", tmp, own[i]);
        snprintf(rel, sizeof rel, "revisions/%d/%s", rev, own[i]);
        if (hp_sha256_file(path, hex, err))
            goto fail;
        cJSON_AddStringToObject(files, rel, hex);
    }
    if (hp_report_digest_images(dir, files, err))
        goto fail;
    cJSON *sup = cJSON_AddObjectToObject(m, "supersedes");
    cJSON_AddNumberToObject(sup, "revision", rev - 1);
    cJSON_AddStringToObject(sup, "report_sha256", base_hex);
    snprintf(path, sizeof path, "%s/audit.jsonl", dir);
    if (hp_audit_read(path, &log, err))
        goto fail;
    cJSON *al = cJSON_AddObjectToObject(m, "audit_log");
    cJSON_AddNumberToObject(al, "events", (double)log.n);
    cJSON_AddStringToObject(al, "last_line_sha256", hp_audit_line_sha256(&log, log.n));
    hp_audit_log_free(&log);
    return m;
fail:
    hp_audit_log_free(&log);
    cJSON_Delete(m);
    return NULL;
}

hp_status hp_report_sign(const hp_report_sign_opts *o, int *revision, hp_error *err)
{
    char path[PATH_MAX], tmp[PATH_MAX] = "", final_dir[PATH_MAX] = "";
    cJSON *base = NULL, *report = NULL, *sig = NULL, *changes = NULL, *details = NULL;
    char *bytes = NULL, *base_bytes = NULL, *reason = NULL, *pub_b64 = NULL, *sig_b64 = NULL, *msig_b64 = NULL;
    char *mbytes = NULL, *sbytes = NULL;
    hp_status st;
    int renamed = 0;

    if (!hp_pathologist_id_valid(o->pathologist_id))
        return hp_error_set(err, HP_ERR_INVALID,
                            "the pathologist id must be 1 to 128 characters, without control characters or '='");
    /* The key first: refused keys (readable by others, wrong type) stop everything. */
    unsigned char pub[32], probe[64];
    char fpr[65];
    if ((st = hp_ed25519_sign_unlocked(o->key_path, o->key_passphrase, "", 0, probe, pub, err)))
        return st;
    hp_key_fingerprint(pub, fpr);
    if ((st = check_registry(o, fpr, err)))
        return st;

    /* The folder must verify as it stands (signers aside): nothing is signed on top of a changed
     * draft, a deleted revision or a shortened log. */
    hp_report_verify_opts vo = {.no_registry = 1};
    hp_report_verify_result vr;
    hp_error ve = {0};
    st = hp_report_verify(o->dir, &vo, NULL, &vr, &ve);
    if (st && !vr.failures)
        return hp_error_set(err, st, "%s", ve.msg);
    if (vr.failures)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s fails verification (%d problem(s); the first: %s); nothing was signed: run `histoplan "
                            "report verify %s`",
                            o->dir, vr.failures, vr.first_failure, o->dir);
    int latest = vr.revisions;
    if (latest > 0 && !o->amend_path)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s is already signed (revision %d): a signed report cannot be signed again or changed; "
                            "sign an amended revision with --amend FILE",
                            o->dir, latest);
    if (latest == 0)
        snprintf(path, sizeof path, "%s/report.json", o->dir);
    else
        snprintf(path, sizeof path, "%s/revisions/%d/report.json", o->dir, latest);
    if ((st = hp_json_file_read(path, "report", &base, NULL, err)))
        goto done;
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(base, "status");
    const char *report_id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(base, "report_id"));
    if (!cJSON_IsString(status) || (latest == 0) != !strcmp(status->valuestring, "preliminary") || !report_id) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: revision %d has no report_id or an unexpected status", o->dir,
                          latest);
        goto done;
    }

    /* Written to a temporary folder and renamed: a revision appears whole or not at all. */
    int rev = latest + 1;
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
    if (latest == 0 && (st = check_draft_renders(o->dir, base, tmp, err)))
        goto done;

    size_t base_len, len;
    unsigned char digest[32];
    char base_hex[65], hex[65], mhex[65];
    if (!(base_bytes = hp_json_canonicalize(base, &base_len, err)) || hp_sha256(base_bytes, base_len, digest, base_hex)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: revision %d cannot be canonicalized", o->dir, latest);
        goto done;
    }
    report = cJSON_Duplicate(base, 1);
    changes = cJSON_CreateArray();
    if (!report || !changes) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    amend_ctx actx = {.path = o->amend_path, .rules_path = o->rules_path, .changes = changes};
    if (o->amend_path && (st = apply_amendments(report, &actx, &reason, err))) {
        cJSON_Delete(actx.consequences);
        goto done;
    }
    confirm_category(report);
    char now[HP_UTC_TIME_LEN];
    hp_utc_format(time(NULL), now);
    cJSON_ReplaceItemInObjectCaseSensitive(report, "revision", cJSON_CreateNumber(rev));
    cJSON_ReplaceItemInObjectCaseSensitive(report, "status", cJSON_CreateString(rev == 1 ? "final" : "amended"));
    cJSON_ReplaceItemInObjectCaseSensitive(report, "generated_at", cJSON_CreateString(now));
    cJSON *so = cJSON_CreateObject();
    cJSON_AddStringToObject(so, "pathologist_id", o->pathologist_id);
    cJSON_AddStringToObject(so, "signed_at", now);
    cJSON_AddStringToObject(so, "key_fingerprint", fpr);
    if (reason)
        cJSON_AddStringToObject(so, "reason", reason);
    else
        cJSON_AddNullToObject(so, "reason");
    cJSON_AddItemToObject(so, "amendments", cJSON_Duplicate(changes, 1));
    /* What the amendments changed in turn (a new category's statements and suggestions). */
    cJSON_AddItemToObject(so, "consequences", actx.consequences ? actx.consequences : cJSON_CreateNull());
    cJSON *sup = cJSON_AddObjectToObject(so, "supersedes");
    cJSON_AddNumberToObject(sup, "revision", latest);
    cJSON_AddStringToObject(sup, "report_sha256", base_hex);
    cJSON_ReplaceItemInObjectCaseSensitive(report, "sign_off", so);

    /* The report signature (carried by the FHIR Provenance), then the renderings. */
    if (!(bytes = hp_json_canonicalize(report, &len, err)) || hp_sha256(bytes, len, digest, hex)) {
        st = err->code ? err->code : HP_ERR_INVALID;
        goto done;
    }
    if (!(sig_b64 = sign_digest(o, digest, pub, err)) || !(pub_b64 = hp_base64_encode(pub, 32))) {
        st = err->code ? err->code : hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    sig = cJSON_CreateObject();
    cJSON_AddStringToObject(sig, "algorithm", "Ed25519");
    cJSON_AddStringToObject(sig, "signed_content", HP_SIGNED_CONTENT);
    cJSON_AddNumberToObject(sig, "revision", rev);
    cJSON_AddStringToObject(sig, "report_sha256", hex);
    cJSON_AddStringToObject(sig, "signature", sig_b64);
    cJSON_AddStringToObject(sig, "public_key", pub_b64);
    cJSON_AddStringToObject(sig, "key_fingerprint", fpr);
    cJSON_AddStringToObject(sig, "pathologist_id", o->pathologist_id);
    cJSON_AddStringToObject(sig, "signed_at", now);
    if (snprintf(path, sizeof path, "%s/report.json", tmp) >= (int)sizeof path) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: path too long", tmp);
        goto done;
    }
    if ((st = write_exact(path, bytes, len, err)) || (st = hp_report_render(report, sig, tmp, o->dir, err)))
        goto done;

    /* The manifest signature over every file. */
    cJSON *m = make_manifest(o->dir, tmp, rev, report, sig, base_hex, err);
    if (!m) {
        st = err->code ? err->code : HP_ERR_INVALID;
        goto done;
    }
    cJSON_AddItemToObject(sig, "manifest", m);
    size_t mlen, slen;
    if (!(mbytes = hp_json_canonicalize(m, &mlen, err)) || hp_sha256(mbytes, mlen, digest, mhex) ||
        !(msig_b64 = sign_digest(o, digest, pub, err))) {
        st = err->code ? err->code : HP_ERR_INVALID;
        goto done;
    }
    cJSON_AddStringToObject(sig, "manifest_sha256", mhex);
    cJSON_AddStringToObject(sig, "manifest_signature", msig_b64);
    if (snprintf(path, sizeof path, "%s/signature.json", tmp) >= (int)sizeof path) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: path too long", tmp);
        goto done;
    }
    if (!(sbytes = hp_json_canonicalize(sig, &slen, err)) || (st = write_exact(path, sbytes, slen, err))) {
        st = err->code ? err->code : HP_ERR_INVALID;
        goto done;
    }
    if (rename(tmp, final_dir)) {
        st = hp_error_set(err, HP_ERR_IO, "%s: %s (signed by someone else meanwhile?)", final_dir, strerror(errno));
        goto done;
    }
    renamed = 1;

    details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "report_id", report_id);
    cJSON_AddNumberToObject(details, "revision", rev);
    cJSON_AddStringToObject(details, "report_sha256", hex);
    cJSON_AddStringToObject(details, "manifest_sha256", mhex);
    cJSON_AddStringToObject(details, "supersedes_sha256", base_hex);
    cJSON_AddStringToObject(details, "key_fingerprint", fpr);
    cJSON *fields = cJSON_AddArrayToObject(details, "changed_fields");
    for (const cJSON *c = changes->child; c; c = c->next)
        cJSON_AddItemToArray(fields, cJSON_CreateString(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "field"))));
    snprintf(path, sizeof path, "%s/audit.jsonl", o->dir);
    if ((st = hp_audit_append_at(path, now, rev == 1 ? "sign" : "amend", o->pathologist_id, details, err)))
        goto done;
    renamed = 0;
    if (revision)
        *revision = rev;
done:
    /* A revision whose audit event could not be written is taken back: it would never verify. */
    if (renamed && rename(final_dir, tmp))
        tmp[0] = '\0';
    if (tmp[0])
        hp_remove_tree(tmp);
    cJSON_Delete(base);
    cJSON_Delete(report);
    cJSON_Delete(sig);
    cJSON_Delete(changes);
    cJSON_Delete(details);
    free(bytes);
    free(base_bytes);
    free(mbytes);
    free(sbytes);
    free(reason);
    free(pub_b64);
    free(sig_b64);
    free(msig_b64);
    return st;
}
