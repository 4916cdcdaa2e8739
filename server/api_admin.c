/* GET /v1/health (no token), GET /v1/metrics, and the admin role's token management:
 * GET /v1/tokens, POST /v1/tokens, POST /v1/tokens/{id}/revoke. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/api.h"
#include "server/ids.h"
#include "server/service_internal.h"

void hp_api_health(hp_request *r)
{
    hp_error err = {0};
    hp_db *db = hp_db_pool_take(r->svc->pool, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", db ? "ok" : "unavailable");
    cJSON_AddStringToObject(o, "version", HP_VERSION);
    cJSON_AddStringToObject(o, "store", hp_db_pool_kind_name(r->svc->pool));
    cJSON_AddStringToObject(o, "model", r->svc->model_ref);
    if (db)
        hp_db_pool_give(r->svc->pool, db);
    else
        hp_respond_header(r, "Retry-After", "5");
    hp_respond_json(r, db ? 200 : 503, o);
}

void hp_api_metrics(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_store_stats st;
    hp_error err = {0};
    hp_status s = hp_store_stats_get(db, hp_now_ms(), &st, &err);
    hp_api_db_done(r, db);
    if (s != HP_OK) {
        hp_api_store_error(r, &err);
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char *text = hp_metrics_render(r->svc->metrics, &st, ts.tv_sec + ts.tv_nsec * 1e-9);
    if (!text) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        return;
    }
    hp_respond_text(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
}

void hp_api_tokens_list(hp_request *r)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    cJSON *arr = NULL;
    hp_error err = {0};
    if (hp_store_token_list(db, &arr, &err) != HP_OK)
        hp_api_store_error(r, &err);
    else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "tokens", arr);
        hp_respond_json(r, 200, o);
    }
    hp_api_db_done(r, db);
}

void hp_api_tokens_create(hp_request *r)
{
    if (!cJSON_IsObject(r->json)) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "the body is {\"role\", \"name\"}");
        return;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, r->json)
    {
        if (strcmp(it->string, "role") && strcmp(it->string, "name")) {
            char f[80];
            snprintf(f, sizeof f, "/%.60s", it->string);
            hp_respond_problem(r, HP_PROB_VALIDATION, f, "unknown field (role, name)");
            return;
        }
    }
    const cJSON *role = cJSON_GetObjectItemCaseSensitive(r->json, "role");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(r->json, "name");
    hp_role ro = cJSON_IsString(role) ? hp_role_parse(role->valuestring) : HP_ROLE_NONE;
    if (ro == HP_ROLE_NONE) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/role", "submitter, pathologist or admin");
        return;
    }
    if (!cJSON_IsString(name)) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/name", "a name for the token's holder");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    char text[HP_TOKEN_TEXT_MAX];
    hp_token_info info;
    hp_error err = {0};
    hp_status st = hp_store_token_create(db, ro, name->valuestring, r->token.id, text, &info, &err);
    hp_api_db_done(r, db);
    if (st == HP_ERR_INVALID) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/name", "%s", err.msg);
        return;
    }
    if (st != HP_OK) {
        hp_api_store_error(r, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", info.id);
    cJSON_AddStringToObject(o, "name", info.name);
    cJSON_AddStringToObject(o, "role", hp_role_name(ro));
    cJSON_AddStringToObject(o, "token", text);
    cJSON_AddStringToObject(o, "webhook_secret", info.webhook_secret);
    hp_respond_json(r, 201, o);
}

void hp_api_token_revoke(hp_request *r)
{
    if (!hp_id_valid('t', r->params[0])) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such token");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_error err = {0};
    int k = hp_store_token_revoke(db, r->params[0], r->token.id, &err);
    hp_api_db_done(r, db);
    if (k < 0)
        hp_api_store_error(r, &err);
    else if (k == 0)
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such token, or already revoked");
    else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", r->params[0]);
        cJSON_AddBoolToObject(o, "revoked", 1);
        hp_respond_json(r, 200, o);
    }
}
