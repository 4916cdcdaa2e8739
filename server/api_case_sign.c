/* POST /v1/cases/{accession}/sign {"passphrase": "..."}: the logged-in pathologist signs the
 * case's report from the viewer, with their own key (server/signing_keys.h), exactly as
 * `histoplan report sign` does: the same checks (the folder verifies, the draft is what it
 * renders to, the signer registry binds the key to the pathologist id) and the same signed
 * revision, which `histoplan report verify` accepts.
 *
 * The stages: the caller's enrolled key; the lockout after wrong passphrases; the case's report
 * folder, locked against a concurrent build or sign; the signing; the audit event. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "report/report_dir.h"
#include "report/report_sign.h"
#include "report/signature.h"
#include "server/api.h"
#include "server/service_internal.h"
#include "server/signing_keys.h"

#define PASSPHRASE_MAX 1024

typedef struct {
    char key_path[PATH_MAX];
    char pathologist_id[160];
    char case_id[40]; /* the case's folder: DIR/cases/<case-id> */
} sign_request;

/* The caller's enrolled key: 1, or 0 (answered). */
static int enrolled_key(hp_request *r, sign_request *sr)
{
    hp_error err = {0};
    int k = hp_signing_key_find(r->svc->data_dir, r->token.id, sr->key_path, sr->pathologist_id, &err);
    if (k < 0) {
        fprintf(stderr, "sign: %s\n", err.msg);
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "your signing key cannot be read");
    } else if (k == 0) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "no signing key is enrolled for you on this server: an admin enrols your "
                           "own encrypted key with `histoplan serve signer add` (docs/viewer.md), or "
                           "sign with `histoplan report sign`");
    }
    return k > 0;
}

/* The case's folder: 1, or 0 (answered). */
static int case_folder(hp_request *r, sign_request *sr)
{
    const char *acc = r->params[0];
    if (!hp_api_valid_accession(acc)) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such case");
        return 0;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return 0;
    int found = 0;
    hp_error err = {0};
    hp_status st = hp_store_case_id(db, acc, 0, sr->case_id, &found, &err);
    hp_api_db_done(r, db);
    if (st != HP_OK) {
        hp_api_store_error(r, &err);
        return 0;
    }
    if (!found) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no report has been built for this case");
        return 0;
    }
    return 1;
}

static void audit(hp_request *r, const char *event, const sign_request *sr, int revision, const char *why)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "case", sr->case_id); /* the opaque id, never the accession */
    if (revision > 0)
        cJSON_AddNumberToObject(d, "revision", revision);
    if (why)
        cJSON_AddStringToObject(d, "refused", why);
    hp_error err = {0};
    if (hp_store_audit_event(db, event, r->token.id, d, &err) != HP_OK)
        fprintf(stderr, "sign: audit: %s\n", err.msg);
    cJSON_Delete(d);
    hp_api_db_done(r, db);
}

/* Signs with the folder locked; answers either way. */
static void sign_locked(hp_request *r, const sign_request *sr, const char *passphrase)
{
    char report_dir[PATH_MAX], registry[PATH_MAX];
    hp_service_path(r->svc, report_dir, sizeof report_dir, "cases/%s/report", sr->case_id);
    hp_service_path(r->svc, registry, sizeof registry, "%s", HP_SIGNER_REGISTRY);
    if (access(registry, R_OK) != 0) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "the server has no signer registry, so no key is bound to a pathologist: an "
                           "admin adds yours with `histoplan report signers add --registry "
                           "DATA/%s` (docs/viewer.md)", HP_SIGNER_REGISTRY);
        return;
    }
    /* A bad passphrase is found before anything else, so that it counts as an attempt. */
    unsigned char probe[64], pub[32];
    hp_error err = {0};
    if (hp_ed25519_sign_unlocked(sr->key_path, passphrase, "", 0, probe, pub, &err) != HP_OK) {
        hp_sign_failed(r->token.id, hp_now_ms());
        audit(r, "case.sign.refused", sr, 0, "passphrase");
        hp_respond_problem(r, HP_PROB_FORBIDDEN, "/passphrase", "the passphrase does not unlock your signing key");
        return;
    }
    hp_sign_succeeded(r->token.id);
    hp_report_sign_opts o = {.dir = report_dir, .pathologist_id = sr->pathologist_id, .key_path = sr->key_path,
                             .key_passphrase = passphrase, .registry_path = registry};
    int revision = 0;
    if (hp_report_sign(&o, &revision, &err) != HP_OK) {
        hp_api_scrub_paths(err.msg, r->svc->data_dir);
        audit(r, "case.sign.refused", sr, 0, "report");
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL, "%s", err.msg);
        return;
    }
    audit(r, "case.sign", sr, revision, NULL);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "case", r->params[0]);
    cJSON_AddNumberToObject(out, "revision", revision);
    cJSON_AddStringToObject(out, "status", revision == 1 ? "final" : "amended");
    cJSON_AddStringToObject(out, "signed_by", sr->pathologist_id);
    hp_respond_json(r, 201, out);
}

void hp_api_case_sign(hp_request *r)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(r->json, "passphrase");
    if (!cJSON_IsObject(r->json) || cJSON_GetArraySize(r->json) != 1 || !cJSON_IsString(p) ||
        !p->valuestring[0] || strlen(p->valuestring) > PASSPHRASE_MAX) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/passphrase",
                           "the body is {\"passphrase\": \"...\"}: the passphrase of your signing key");
        return;
    }
    int wait = hp_sign_locked_for(r->token.id, hp_now_ms());
    if (wait > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        hp_respond_header(r, "Retry-After", ra);
        hp_respond_problem(r, HP_PROB_RATE_LIMITED, NULL,
                           "too many wrong passphrases: signing is locked for %d more second(s)", wait);
        return;
    }
    sign_request sr;
    memset(&sr, 0, sizeof sr);
    if (!enrolled_key(r, &sr) || !case_folder(r, &sr))
        return;
    /* The same lock as the report's build (server/api_cases.c): never sign a half-rebuilt draft. */
    char lock[PATH_MAX];
    hp_service_path(r->svc, lock, sizeof lock, "cases/%s/.lock", sr.case_id);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the case folder cannot be locked");
        if (fd >= 0)
            close(fd);
        return;
    }
    sign_locked(r, &sr, p->valuestring);
    close(fd);
}
