/* GET /v1/worklist[?state=S | ?job=ID]: the pathologist's worklist, one row per job with what a pathologist sorts by
 * before opening a slide: its state, the QC flags and out-of-domain finding of its analysis, and
 * its case's report (suggested category, status, signed revision). The viewer's first screen.
 *
 * Rows come from the store; the flags from each succeeded job's findings.json and the report
 * from each case's newest signed revision (else its draft), read once per case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/utc_time.h"
#include "report/json_file.h"
#include "report/report_dir.h"
#include "server/api.h"
#include "server/ids.h"
#include "server/service_internal.h"

#define WORKLIST_MAX 200

static const cJSON *get(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* The analysis's QC flags and domain verdict, from the job's findings.json. */
static void add_analysis(hp_service *svc, const hp_job_row *j, cJSON *row)
{
    cJSON *flags = cJSON_AddArrayToObject(row, "qc_flags");
    cJSON_AddNullToObject(row, "out_of_domain"); /* null: not checked (or not analysed yet) */
    cJSON_AddNullToObject(row, "super_resolution"); /* null: not super-resolved (or not analysed) */
    if (strcmp(j->state, "succeeded") != 0 || !j->result_dir)
        return;
    char path[PATH_MAX];
    cJSON *f = NULL;
    hp_error err = {0};
    hp_service_path(svc, path, sizeof path, "%s/findings.json", j->result_dir);
    if (hp_json_file_read(path, "findings", &f, NULL, &err) != HP_OK) {
        fprintf(stderr, "worklist: job %s: %s\n", j->id, err.msg);
        return;
    }
    const cJSON *fl;
    cJSON_ArrayForEach(fl, get(get(f, "qc"), "flags"))
        if (cJSON_IsString(fl))
            cJSON_AddItemToArray(flags, cJSON_CreateString(fl->valuestring));
    const cJSON *dom = get(f, "domain");
    if (cJSON_IsTrue(get(dom, "checked")))
        cJSON_ReplaceItemInObjectCaseSensitive(row, "out_of_domain",
                                               cJSON_CreateBool(cJSON_IsTrue(get(dom, "out_of_domain"))));
    const cJSON *sr = get(get(f, "analysis"), "super_resolution");
    if (cJSON_IsTrue(get(sr, "used")) && cJSON_IsString(get(sr, "reason")))
        cJSON_ReplaceItemInObjectCaseSensitive(row, "super_resolution", cJSON_CreateString(get(sr, "reason")->valuestring));
    cJSON_Delete(f);
}

/* The case's report summary: {status, revision, category} or null when none is built. */
static cJSON *case_report(hp_service *svc, hp_db *db, const char *acc)
{
    char cid[40], dir[PATH_MAX], path[PATH_MAX];
    int found = 0;
    hp_error err = {0};
    if (hp_store_case_id(db, acc, 0, cid, &found, &err) != HP_OK || !found)
        return cJSON_CreateNull();
    hp_service_path(svc, dir, sizeof dir, "cases/%s/report", cid);
    int latest = hp_report_dir_latest_revision(dir, &err);
    if (latest > 0)
        hp_service_path(svc, path, sizeof path, "cases/%s/report/revisions/%d/report.json", cid, latest);
    else
        hp_service_path(svc, path, sizeof path, "cases/%s/report/report.json", cid);
    cJSON *rep = NULL;
    if (hp_json_file_read(path, "report", &rep, NULL, &err) != HP_OK)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    const char *status = cJSON_GetStringValue(get(rep, "status"));
    cJSON_AddStringToObject(o, "status", status ? status : "preliminary");
    cJSON_AddNumberToObject(o, "revision", latest > 0 ? latest : 0);
    const char *cat = cJSON_GetStringValue(get(get(rep, "diagnosis"), "display"));
    if (cat)
        cJSON_AddStringToObject(o, "category", cat);
    else
        cJSON_AddNullToObject(o, "category");
    cJSON_Delete(rep);
    return o;
}

/* One row of the worklist; `reports` caches each case's report summary by accession. */
static cJSON *worklist_row(hp_request *r, hp_db *db, const hp_job_row *j, cJSON *reports)
{
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "job", j->id);
    cJSON_AddItemToObject(row, "case", j->accession ? cJSON_CreateString(j->accession) : cJSON_CreateNull());
    const char *sid = j->result_slide_id ? j->result_slide_id : j->slide_id;
    cJSON_AddItemToObject(row, "slide_id", sid ? cJSON_CreateString(sid) : cJSON_CreateNull());
    cJSON_AddStringToObject(row, "state", j->state);
    char created[HP_UTC_TIME_LEN];
    if (j->created_ms > 0 && !hp_utc_format((time_t)(j->created_ms / 1000), created))
        cJSON_AddStringToObject(row, "created", created);
    else
        cJSON_AddNullToObject(row, "created");
    add_analysis(r->svc, j, row);
    cJSON *rep = NULL;
    if (j->accession && !(rep = cJSON_GetObjectItemCaseSensitive(reports, j->accession))) {
        rep = case_report(r->svc, db, j->accession);
        cJSON_AddItemToObject(reports, j->accession, rep);
    }
    cJSON_AddItemToObject(row, "report", rep ? cJSON_Duplicate(rep, 1) : cJSON_CreateNull());
    return row;
}

/* ?job=ID: that job's row alone (the viewer's report panel asks whether a report exists). */
static int load_one(hp_request *r, hp_db *db, hp_job_row **jobs, int *n)
{
    const char *id = hp_request_query(r, "job");
    hp_error err = {0};
    *jobs = calloc(1, sizeof **jobs);
    int found = *jobs && hp_id_valid('j', id) ? hp_store_job_get(db, id, *jobs, &err) : 0;
    if (found < 0) {
        hp_api_store_error(r, &err);
        return 0;
    }
    *n = found;
    return 1;
}

void hp_api_worklist(hp_request *r)
{
    hp_job_query q = {.limit = WORKLIST_MAX};
    if (!hp_api_state_query(r, &q.state))
        return;
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row *jobs = NULL;
    int n = 0;
    hp_error err = {0};
    if (hp_request_query(r, "job")) {
        if (!load_one(r, db, &jobs, &n))
            goto out;
    } else if (hp_store_jobs_list(db, &q, &jobs, &n, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject(), *rows = cJSON_AddArrayToObject(o, "rows");
    cJSON *reports = cJSON_CreateObject();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(rows, worklist_row(r, db, &jobs[i], reports));
    cJSON_Delete(reports);
    hp_respond_json(r, 200, o);
out:
    hp_store_jobs_free(jobs, n);
    hp_api_db_done(r, db);
}
