/* server/auth.h. */
#include "server/auth.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "server/api.h"
#include "server/service_internal.h"
#include "server/session.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int token_stage(hp_request *r, const char *tok);

int hp_authorize(hp_request *r)
{
    if (r->route->roles == 0)
        return 1;
    const char *h = hp_request_header(r, "Authorization");
    char session_token[80], csrf[64];
    if (!h && hp_session_find(r->svc->sessions, hp_request_cookie(r, HP_SESSION_COOKIE),
                              hp_now_ms(), session_token, csrf)) {
        /* A viewer session stands for its token; a state change must also carry the session's
         * CSRF token, which a page of another site cannot read. */
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
            const char *x = hp_request_header(r, "X-CSRF-Token");
            if (!x || strlen(x) != strlen(csrf) || CRYPTO_memcmp(x, csrf, strlen(csrf)) != 0) {
                hp_respond_problem(r, HP_PROB_FORBIDDEN, "X-CSRF-Token",
                                   "a change made with the session cookie needs the session's "
                                   "X-CSRF-Token header");
                return 0;
            }
        }
        r->via_session = 1;
        return token_stage(r, session_token);
    }
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) {
        hp_respond_header(r, "WWW-Authenticate", "Bearer realm=\"histoplan\"");
        hp_respond_problem(r, HP_PROB_UNAUTHORIZED, NULL,
                           "send Authorization: Bearer <token> (histoplan serve token create "
                           "makes one)");
        return 0;
    }
    const char *tok = h + 7;
    while (*tok == ' ')
        tok++;
    return token_stage(r, tok);
}

/* The token's lookup, rate and role. */
static int token_stage(hp_request *r, const char *tok)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return 0;
    hp_error err = {0};
    int found = hp_store_token_find(db, tok, &r->token, &err);
    hp_api_db_done(r, db);
    if (found < 0) {
        hp_api_store_error(r, &err);
        return 0;
    }
    if (!found) {
        hp_respond_header(r, "WWW-Authenticate", "Bearer realm=\"histoplan\", error=\"invalid_token\"");
        hp_respond_problem(r, HP_PROB_UNAUTHORIZED, NULL, "the token is unknown or revoked");
        return 0;
    }
    r->authed = 1;
    int wait = hp_rate_limiter_take(r->svc->rate, r->token.id, mono_s());
    if (wait > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", wait);
        hp_respond_header(r, "Retry-After", v);
        hp_respond_problem(r, HP_PROB_RATE_LIMITED, NULL,
                           "more than %g requests per second for this token; retry after %d s",
                           r->svc->cfg.rate_limit, wait);
        return 0;
    }
    if (!(r->route->roles & HP_ALLOW(r->token.role))) {
        hp_respond_problem(r, HP_PROB_FORBIDDEN, NULL, "the %s role may not %s %s",
                           hp_role_name(r->token.role), r->route->method, r->route->pattern);
        return 0;
    }
    return 1;
}
