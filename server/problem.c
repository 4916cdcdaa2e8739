/* RFC 9457 problem details (server/request.h): every error the API gives is one of a fixed set
 * of types, each with one status, so a client can act on the type alone. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "server/request.h"

#define TYPE_BASE "https://histoplan.invalid/problems/"

static const struct {
    const char *name, *title;
    int status;
} PROBLEMS[HP_PROB_COUNT] = {
    [HP_PROB_BAD_REQUEST] = {"bad-request", "The request is malformed", 400},
    [HP_PROB_UNAUTHORIZED] = {"unauthorized", "A valid bearer token is needed", 401},
    [HP_PROB_FORBIDDEN] = {"forbidden", "The token's role does not allow this", 403},
    [HP_PROB_NOT_FOUND] = {"not-found", "No such resource", 404},
    [HP_PROB_METHOD] = {"method-not-allowed", "The resource does not take this method", 405},
    [HP_PROB_CONFLICT] = {"conflict", "The resource's state does not allow this", 409},
    [HP_PROB_IN_PROGRESS] = {"request-in-progress",
                             "A request with this idempotency key is still being handled", 409},
    [HP_PROB_TOO_LARGE] = {"too-large", "The request is larger than the service accepts", 413},
    [HP_PROB_RANGE] = {"range-not-satisfiable", "The range is outside the file", 416},
    [HP_PROB_MEDIA_TYPE] = {"unsupported-media-type", "The body's content type is not accepted",
                            415},
    [HP_PROB_VALIDATION] = {"validation", "A field of the request is invalid", 422},
    [HP_PROB_KEY_REUSED] = {"idempotency-key-reused",
                            "The idempotency key was used with another request body", 422},
    [HP_PROB_RATE_LIMITED] = {"rate-limited", "Too many requests for this token", 429},
    [HP_PROB_UNAVAILABLE] = {"unavailable", "The service cannot answer now", 503},
};

const char *hp_problem_type(hp_problem p) { return PROBLEMS[p].name; }
int hp_problem_status(hp_problem p) { return PROBLEMS[p].status; }

void hp_respond_problem(hp_request *r, hp_problem p, const char *field, const char *fmt, ...)
{
    char detail[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char type[128];
    snprintf(type, sizeof type, TYPE_BASE "%s", PROBLEMS[p].name);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "title", PROBLEMS[p].title);
    cJSON_AddNumberToObject(o, "status", PROBLEMS[p].status);
    cJSON_AddStringToObject(o, "detail", detail);
    if (field)
        cJSON_AddStringToObject(o, "field", field);
    hp_respond_json(r, PROBLEMS[p].status, o);
    r->content_type = "application/problem+json";
}
