/* GET /v1/jobs (filtered, paginated), GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/ids.h"
#include "server/represent.h"
#include "server/service_internal.h"

#define LIST_DEFAULT 100
#define LIST_MAX 500

/* The cursor is "<created_ms>.<job id>" of the last job of the previous page: opaque to
 * clients, checked strictly here. */
static int parse_cursor(const char *c, int64_t *created, char id[40])
{
    const char *dot = strchr(c, '.');
    if (!dot || dot == c || dot - c > 15)
        return 0;
    int64_t v = 0;
    for (const char *p = c; p < dot; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        v = v * 10 + (*p - '0');
    }
    if (!hp_id_valid('j', dot + 1))
        return 0;
    *created = v;
    snprintf(id, 40, "%s", dot + 1);
    return 1;
}

void hp_api_jobs_list(hp_request *r)
{
    hp_job_query q = {.limit = LIST_DEFAULT};
    const char *acc = hp_request_query(r, "case");
    const char *cursor = hp_request_query(r, "cursor"), *limit = hp_request_query(r, "limit");
    char after_id[40];
    if (!hp_api_state_query(r, &q.state))
        return;
    if (acc) {
        if (!*acc || strlen(acc) > 64) {
            hp_respond_problem(r, HP_PROB_BAD_REQUEST, "case", "case is 1 to 64 characters");
            return;
        }
        q.accession = acc;
    }
    if (cursor) {
        if (!parse_cursor(cursor, &q.after_created, after_id)) {
            hp_respond_problem(r, HP_PROB_BAD_REQUEST, "cursor",
                               "the cursor is the next_cursor of a previous page, unchanged");
            return;
        }
        q.after_id = after_id;
    }
    if (limit) {
        char *end;
        long v = strtol(limit, &end, 10);
        if (*end || end == limit || v < 1 || v > LIST_MAX) {
            hp_respond_problem(r, HP_PROB_BAD_REQUEST, "limit", "limit is 1 to %d", LIST_MAX);
            return;
        }
        q.limit = (int)v;
    }
    if (r->token.role != HP_ROLE_PATHOLOGIST)
        q.token_id = r->token.id;
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row *jobs = NULL;
    int n = 0;
    hp_error err = {0};
    /* One more than the page, to know whether another page follows. */
    q.limit++;
    if (hp_store_jobs_list(db, &q, &jobs, &n, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        hp_api_db_done(r, db);
        return;
    }
    hp_api_db_done(r, db);
    int page = n > q.limit - 1 ? q.limit - 1 : n;
    int64_t now = hp_now_ms();
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "jobs");
    for (int i = 0; i < page; i++)
        cJSON_AddItemToArray(arr, hp_represent_job(&jobs[i], hp_api_owns(r, jobs[i].token_id), now));
    if (n > page) {
        char next[64];
        snprintf(next, sizeof next, "%lld.%s", (long long)jobs[page - 1].created_ms,
                 jobs[page - 1].id);
        cJSON_AddStringToObject(o, "next_cursor", next);
    } else {
        cJSON_AddNullToObject(o, "next_cursor");
    }
    hp_store_jobs_free(jobs, n);
    hp_respond_json(r, 200, o);
}

void hp_api_job_get(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row j;
    if (hp_api_load_job(r, db, &j)) {
        hp_respond_json(r, 200, hp_represent_job(&j, hp_api_owns(r, j.token_id), hp_now_ms()));
        hp_job_row_free(&j);
    }
    hp_api_db_done(r, db);
}

void hp_api_job_cancel(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row j;
    hp_error err = {0};
    const char *result = NULL;
    if (!hp_api_load_job(r, db, &j))
        goto out;
    if (hp_store_job_cancel(db, j.id, r->token.id, hp_now_ms(), &result, &err) != HP_OK) {
        hp_api_store_error(r, &err);
    } else if (strcmp(result, "cancelled") && strcmp(result, "requested")) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL, "the job has already ended (%s)",
                           !strcmp(result, "cancelled-before") ? "cancelled" : result);
    } else {
        hp_job_row_free(&j);
        if (hp_store_job_get(db, r->params[0], &j, &err) == 1)
            hp_respond_json(r, !strcmp(result, "requested") ? 202 : 200,
                            hp_represent_job(&j, 1, hp_now_ms()));
        else
            hp_api_store_error(r, &err);
        hp_service_wake(r->svc);
    }
    hp_job_row_free(&j);
out:
    hp_api_db_done(r, db);
}
