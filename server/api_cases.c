/* POST /v1/cases/{accession}/report: builds the case's preliminary report (`histoplan report
 * build`, report/report_dir.h) from the findings of the case's succeeded jobs and the case file
 * in the body; GET /v1/cases/{accession}/report.json|report.fhir.json|report.html serve it.
 *
 * The case's folder is DIR/cases/<case-id>/ with an opaque id from the store, never the
 * accession number. Builds of one case are serialized by a lock file in that folder (several
 * server processes may share the data folder). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "report/report_dir.h"
#include "server/api.h"
#include "server/file_response.h"
#include "server/service_internal.h"

static const char *const FILES[] = {"report.json", "report.fhir.json", "report.html"};
static const char *const TYPES[] = {"application/json", "application/fhir+json",
                                    "text/html; charset=utf-8"};

/* The slide's SHA-256 recorded in a findings file. */
static int findings_sha(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 262144);
            if (!nb)
                break;
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0)
            break;
    }
    fclose(f);
    if (!buf)
        return -1;
    buf[n] = 0;
    cJSON *o = cJSON_Parse(buf);
    free(buf);
    const cJSON *sha = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "slide"),
                                                        "sha256");
    int ok = cJSON_IsString(sha) && strlen(sha->valuestring) == 64;
    if (ok)
        snprintf(out, 65, "%s", sha->valuestring);
    cJSON_Delete(o);
    return ok ? 0 : -1;
}

void hp_api_case_report_build(hp_request *r)
{
    hp_service *svc = r->svc;
    const char *acc = r->params[0];
    if (!hp_api_valid_accession(acc)) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such case");
        return;
    }
    if (!cJSON_IsObject(r->json)) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL,
                           "the body is the case file (schemas/case.schema.json)");
        return;
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(r->json, "accession");
    if (!cJSON_IsString(a) || strcmp(a->valuestring, acc) != 0) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/accession",
                           "the case file's accession must be the one in the path");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_error err = {0};
    char cid[40], dir[PATH_MAX], path[PATH_MAX];
    char **dirs = NULL, **ids = NULL, **findings = NULL;
    int n = 0, found = 0, lock_fd = -1, used = 0;
    if (hp_store_case_results(db, acc, &dirs, &ids, &n, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto out;
    }
    if (n == 0) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "the case has no succeeded jobs yet: submit its slides with "
                           "\"case\" set, and build the report when they have succeeded");
        goto out;
    }
    if (hp_store_case_id(db, acc, 1, cid, &found, &err) != HP_OK || !found) {
        hp_api_store_error(r, &err);
        goto out;
    }
    hp_service_path(svc, dir, sizeof dir, "cases/%s", cid);
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the case folder cannot be made");
        goto out;
    }
    hp_service_path(svc, path, sizeof path, "cases/%s/.lock", cid);
    lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX) != 0) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the case folder cannot be locked");
        goto out;
    }
    char *text = cJSON_PrintUnformatted(r->json);
    hp_service_path(svc, path, sizeof path, "cases/%s/case.json", cid);
    hp_status st = text ? hp_atomic_write_text(path, text, &err) : HP_ERR_NOMEM;
    free(text);
    if (st != HP_OK) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the case file cannot be stored");
        goto out;
    }
    /* A slide analyzed more than once (resubmitted) counts once, with its newest findings. */
    findings = calloc((size_t)n, sizeof *findings);
    char (*shas)[65] = calloc((size_t)n, sizeof *shas);

    for (int i = 0; findings && shas && i < n; i++) {
        char p[PATH_MAX];
        hp_service_path(svc, p, sizeof p, "%s/findings.json", dirs[i]);
        if (findings_sha(p, shas[used]) != 0)
            continue;
        int dup = 0;
        for (int k = 0; k < used && !dup; k++)
            dup = !strcmp(shas[k], shas[used]);
        if (!dup && (findings[used] = strdup(p)))
            used++;
    }
    free(shas);
    char out_dir[PATH_MAX];
    hp_service_path(svc, out_dir, sizeof out_dir, "cases/%s/report", cid);
    hp_report_build_opts bo = {.case_path = path, .findings = (const char *const *)findings,
                               .n_findings = used, .out_dir = out_dir, .overwrite = 1};
    hp_error berr = {0};
    if (!findings || hp_report_build(&bo, NULL, &berr) != HP_OK) {
        hp_api_scrub_paths(berr.msg, svc->data_dir);
        int signed_rev = hp_report_dir_latest_revision(out_dir, &err) > 0;
        hp_respond_problem(r, signed_rev ? HP_PROB_CONFLICT : HP_PROB_VALIDATION, NULL,
                           "%s", signed_rev ? "the case's report is signed; it is not rebuilt"
                                            : berr.msg);
        goto out;
    }
    if (hp_store_case_built(db, acc, r->token.id, used, hp_now_ms(), &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "case", acc);
    cJSON_AddNumberToObject(o, "slides", used);
    cJSON_AddStringToObject(o, "status", "preliminary");
    cJSON *links = cJSON_AddObjectToObject(o, "report");
    for (int k = 0; k < 3; k++) {
        /* The accession goes into the link as given; clients percent-encode it when needed. */
        char *u = NULL;
        if (asprintf(&u, "/v1/cases/%s/%s", acc, FILES[k]) > 0) {
            cJSON_AddStringToObject(links, FILES[k], u);
            free(u);
        }
    }
    hp_respond_json(r, 201, o);
out:
    if (lock_fd >= 0)
        close(lock_fd);
    for (int i = 0; i < n; i++) {
        free(dirs[i]);
        free(ids[i]);
        if (findings)
            free(findings[i]);
    }
    free(dirs);
    free(ids);
    free(findings);
    hp_api_db_done(r, db);
}

void hp_api_case_report_get(hp_request *r)
{
    int which = -1;
    for (int k = 0; k < 3; k++)
        if (!strcmp(r->params[1], FILES[k]))
            which = k;
    if (which < 0 || !hp_api_valid_accession(r->params[0])) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no such report file (report.json, report.fhir.json, report.html)");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    char cid[40];
    int found = 0;
    hp_error err = {0};
    hp_status st = hp_store_case_id(db, r->params[0], 0, cid, &found, &err);
    hp_api_db_done(r, db);
    if (st != HP_OK) {
        hp_api_store_error(r, &err);
        return;
    }
    if (!found) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no report has been built for this case");
        return;
    }
    /* ?revision=latest: the newest signed revision when there is one (the viewer's report
     * panel), else the draft. */
    const char *rev = hp_request_query(r, "revision");
    if (rev && strcmp(rev, "latest") != 0) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "revision", "revision is 'latest' or absent (the draft)");
        return;
    }
    char dir[PATH_MAX], path[PATH_MAX];
    hp_service_path(r->svc, dir, sizeof dir, "cases/%s/report", cid);
    int latest = rev ? hp_report_dir_latest_revision(dir, &err) : 0;
    if (latest > 0)
        hp_service_path(r->svc, path, sizeof path, "cases/%s/report/revisions/%d/%s", cid, latest,
                        FILES[which]);
    else
        hp_service_path(r->svc, path, sizeof path, "cases/%s/report/%s", cid, FILES[which]);
    hp_respond_path(r, path, TYPES[which]);
}
