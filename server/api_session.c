/* The viewer's login (server/session.h):
 *
 *   POST   /v1/session   {"token": "hp_..."}  a pathologist's token -> session cookie + CSRF token
 *   GET    /v1/session   who is logged in, and the CSRF token again (after a page reload)
 *   DELETE /v1/session   log out (the cookie's CSRF token required, as for every change)
 *
 * Logging in with the API token, rather than a separate password, keeps one credential per
 * pathologist that the admin already issues, revokes and audits (`histoplan serve token`). */
#include <stdio.h>
#include <string.h>

#include "server/api.h"
#include "server/service_internal.h"
#include "server/session.h"

static void set_cookie(hp_request *r, const char *value, int max_age)
{
    char c[256];
    snprintf(c, sizeof c, "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s",
             HP_SESSION_COOKIE, value, max_age, r->svc->tls ? "; Secure" : "");
    hp_respond_header(r, "Set-Cookie", c);
}

static cJSON *who(const hp_request *r, const char *csrf)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r->token.name);
    cJSON_AddStringToObject(o, "role", hp_role_name(r->token.role));
    cJSON_AddStringToObject(o, "token_id", r->token.id);
    if (csrf)
        cJSON_AddStringToObject(o, "csrf_token", csrf);
    else
        cJSON_AddNullToObject(o, "csrf_token");
    cJSON_AddNumberToObject(o, "idle_timeout_s", HP_SESSION_IDLE_S);
    return o;
}

void hp_api_session_create(hp_request *r)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r->json, "token");
    if (!cJSON_IsObject(r->json) || cJSON_GetArraySize(r->json) != 1 || !cJSON_IsString(t) ||
        strlen(t->valuestring) >= 80) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/token",
                           "the body is {\"token\": \"<your pathologist token>\"}");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_error err = {0};
    int found = hp_store_token_find(db, t->valuestring, &r->token, &err);
    hp_api_db_done(r, db);
    if (found < 0) {
        hp_api_store_error(r, &err);
        return;
    }
    if (!found) {
        hp_respond_problem(r, HP_PROB_UNAUTHORIZED, NULL, "the token is unknown or revoked");
        return;
    }
    r->authed = 1;
    if (r->token.role != HP_ROLE_PATHOLOGIST) {
        hp_respond_problem(r, HP_PROB_FORBIDDEN, NULL, "the viewer is for pathologists; this token's role is %s",
                           hp_role_name(r->token.role));
        return;
    }
    char sid[64], csrf[64];
    if (hp_session_start(r->svc->sessions, t->valuestring, hp_now_ms(), sid, csrf) != HP_OK) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "no session could be started");
        return;
    }
    set_cookie(r, sid, HP_SESSION_IDLE_S * 48); /* the server ends it when idle */
    hp_respond_json(r, 201, who(r, csrf));
}

void hp_api_session_get(hp_request *r)
{
    char tok[80], csrf[64];
    int live = r->via_session &&
               hp_session_find(r->svc->sessions, hp_request_cookie(r, HP_SESSION_COOKIE),
                               hp_now_ms(), tok, csrf);
    hp_respond_json(r, 200, who(r, live ? csrf : NULL));
}

void hp_api_session_delete(hp_request *r)
{
    if (r->via_session)
        hp_session_end(r->svc->sessions, hp_request_cookie(r, HP_SESSION_COOKIE));
    set_cookie(r, "", 0);
    hp_respond_text(r, 204, NULL, "", 0);
}
