/* Helpers shared by the handlers (server/api.h). */
#include <stdio.h>
#include <string.h>

#include "server/api.h"
#include "server/ids.h"
#include "server/service_internal.h"

hp_db *hp_api_db(hp_request *r)
{
    hp_error err = {0};
    hp_db *db = hp_db_pool_take(r->svc->pool, &err);
    if (!db) {
        fprintf(stderr, "store: %s\n", err.msg);
        hp_respond_header(r, "Retry-After", "5");
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the job store cannot be reached");
    }
    return db;
}

void hp_api_db_done(hp_request *r, hp_db *db) { hp_db_pool_give(r->svc->pool, db); }

void hp_api_store_error(hp_request *r, const hp_error *err)
{
    /* The store's message may name tables and values; it goes to the log only. */
    fprintf(stderr, "store: %s %s: %s\n", r->method, r->route ? r->route->pattern : "-",
            err && err->msg[0] ? err->msg : "error");
    hp_respond_header(r, "Retry-After", "1");
    hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the job store did not answer; retry");
}

int hp_api_owns(const hp_request *r, const char *token_id)
{
    return r->authed && token_id && !strcmp(r->token.id, token_id);
}

/* Pathologists read everything; a submitter sees only what its token submitted, and anything
 * else is "not found" (never "forbidden"), so ids of other labs' work cannot be probed. */
static int may_see(const hp_request *r, const char *token_id)
{
    return r->token.role == HP_ROLE_PATHOLOGIST || hp_api_owns(r, token_id);
}

int hp_api_load_job(hp_request *r, hp_db *db, hp_job_row *job)
{
    hp_error err = {0};
    if (!hp_id_valid('j', r->params[0])) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such job");
        return 0;
    }
    int found = hp_store_job_get(db, r->params[0], job, &err);
    if (found < 0) {
        hp_api_store_error(r, &err);
        return 0;
    }
    if (!found || !may_see(r, job->token_id)) {
        if (found)
            hp_job_row_free(job);
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such job");
        return 0;
    }
    return 1;
}

int hp_api_load_batch(hp_request *r, hp_db *db, hp_batch_row *b)
{
    hp_error err = {0};
    if (!hp_id_valid('b', r->params[0])) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such batch");
        return 0;
    }
    int found = hp_store_batch_get(db, r->params[0], b, &err);
    if (found < 0) {
        hp_api_store_error(r, &err);
        return 0;
    }
    if (!found || !may_see(r, b->token_id)) {
        if (found)
            hp_batch_row_free(b);
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such batch");
        return 0;
    }
    return 1;
}

/* The case file's accession rule (schemas/case.schema.json): 1..64 characters, no control
 * characters. */
int hp_api_valid_accession(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return 1;
}

/* Messages from the report builder name files under the data folder; a client is told the
 * file's role, not the server's layout. */
void hp_api_scrub_paths(char *msg, const char *data_dir)
{
    size_t dl = strlen(data_dir);
    char *hit;
    while (dl && (hit = strstr(msg, data_dir))) {
        char *end = hit + dl;
        while (*end && *end != ' ' && *end != ':' && *end != ',' && *end != ')' && *end != ';')
            end++;
        /* The first marker inside the path names its role. */
        static const char *const ROLES[][2] = {{"case.json", "the case file"},
                                               {"/signers/registry.json", "the server's signer registry"},
                                               {"/signers/", "your signing key"},
                                               {"/report", "the case's report"}};
        const char *rep = "a findings file";
        for (size_t k = 0; k < sizeof ROLES / sizeof ROLES[0]; k++) {
            const char *m = strstr(hit, ROLES[k][0]);
            if (m && m < end) {
                rep = ROLES[k][1];
                break;
            }
        }
        size_t rl = strlen(rep);
        memmove(hit + rl, end, strlen(end) + 1);
        memcpy(hit, rep, rl);
    }
}

int hp_api_state_query(hp_request *r, const char **state)
{
    static const char *const STATES[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    *state = hp_request_query(r, "state");
    if (!*state)
        return 1;
    for (int k = 0; k < 5; k++)
        if (!strcmp(*state, STATES[k]))
            return 1;
    hp_respond_problem(r, HP_PROB_BAD_REQUEST, "state",
                       "state is one of queued, running, succeeded, failed, cancelled");
    return 0;
}
