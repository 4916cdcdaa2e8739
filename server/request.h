/* One HTTP request as it passes the service's stages:
 *
 *   request   (server/http.c)     libmicrohttpd hands over method, path, headers, body chunks
 *   parse     (server/router.c, server/body.c)  route and path parameters; limits; JSON body
 *   authorize (server/auth.c)     bearer token, role, rate limit
 *   handle    (server/api_*.c)    the store and the files
 *   respond   (server/respond.c)  JSON, problem+json (server/problem.c) or a file
 *
 * Each stage either fills its part of the request or sets a response; the first response set
 * ends the request. */
#ifndef HP_SERVER_REQUEST_H
#define HP_SERVER_REQUEST_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <sys/types.h>

#include "server/store.h"

struct MHD_Connection;
struct hp_service;

typedef enum {
    HP_BODY_NONE = 0, /* refuse a body */
    HP_BODY_JSON,     /* application/json, held in memory up to --max-body */
    HP_BODY_UPLOAD,   /* application/octet-stream, streamed to a file up to --max-upload */
} hp_body_kind;

/* Roles allowed on a route (bit per hp_role); 0: no token needed. */
#define HP_ALLOW(r) (1u << (r))
#define HP_ANY_ROLE (HP_ALLOW(HP_ROLE_SUBMITTER) | HP_ALLOW(HP_ROLE_PATHOLOGIST) | HP_ALLOW(HP_ROLE_ADMIN))

typedef struct hp_request hp_request;
typedef void (*hp_handler)(hp_request *r);

typedef struct {
    const char *method;
    const char *pattern; /* "/v1/jobs/{id}"; also the route's name in logs and metrics */
    unsigned roles;
    hp_body_kind body;
    hp_handler handle;
} hp_route;

#define HP_MAX_PARAMS 6
#define HP_MAX_EXTRA_HEADERS 10

struct hp_request {
    struct hp_service *svc;
    struct MHD_Connection *conn;
    char method[8];
    double t_start;

    /* parse */
    const hp_route *route;
    char params[HP_MAX_PARAMS][160];
    int n_params;
    char *body;
    size_t body_len, body_cap;
    int body_too_large;
    cJSON *json;
    /* uploads: streamed into tmp_path while hashed */
    int upload_fd;
    char upload_tmp[4096];
    void *upload_md; /* EVP_MD_CTX: SHA-256 of the bytes so far */
    int64_t upload_len;

    /* authorize */
    int authed;
    int via_session; /* authorized by the viewer's session cookie (server/session.h) */
    hp_token_info token;

    /* respond */
    int status; /* 0 until a response is set */
    char *resp;  /* body (malloc'd) */
    size_t resp_len;
    const char *content_type;
    int file_fd; /* >= 0: the body is this file's range */
    int64_t file_off, file_len;
    char headers[HP_MAX_EXTRA_HEADERS][2][512];
    int n_headers;
    int queued;
};

/* Query parameter `name` (already percent-decoded), NULL when absent. */
const char *hp_request_query(hp_request *r, const char *name);
/* Request header `name` (case-insensitive), NULL when absent. */
const char *hp_request_header(hp_request *r, const char *name);
/* Cookie `name`, NULL when absent. */
const char *hp_request_cookie(hp_request *r, const char *name);

/* ---- respond (server/respond.c) ---------------------------------------------------------- */

/* Adds a response header (copied). */
void hp_respond_header(hp_request *r, const char *name, const char *value);
/* A JSON body (consumed). */
void hp_respond_json(hp_request *r, int status, cJSON *body);
/* A body already serialized (copied). */
void hp_respond_text(hp_request *r, int status, const char *content_type, const char *text,
                     size_t len);
/* A file's bytes [off, off + len) (the fd is taken over and closed after sending). */
void hp_respond_file(hp_request *r, int status, const char *content_type, int fd, int64_t off,
                     int64_t len);

/* ---- problems (server/problem.c): RFC 9457 application/problem+json ------------------------ */

/* Stable problem types; docs/api.md lists them with what a client does about each. */
typedef enum {
    HP_PROB_BAD_REQUEST = 0, /* 400 malformed request: bad JSON, invalid UTF-8, too deep, bad query */
    HP_PROB_UNAUTHORIZED,    /* 401 no, unknown or revoked token */
    HP_PROB_FORBIDDEN,       /* 403 the token's role may not do this */
    HP_PROB_NOT_FOUND,       /* 404 no such resource (for this token) */
    HP_PROB_METHOD,          /* 405 the path exists, not with this method */
    HP_PROB_CONFLICT,        /* 409 the resource's state does not allow it (not finished, ended) */
    HP_PROB_IN_PROGRESS,     /* 409 the same idempotency key is being handled */
    HP_PROB_TOO_LARGE,       /* 413 body, upload or headers over the limit */
    HP_PROB_RANGE,           /* 416 a Range outside the file */
    HP_PROB_MEDIA_TYPE,      /* 415 wrong Content-Type */
    HP_PROB_VALIDATION,      /* 422 a field is invalid (named in "field") */
    HP_PROB_KEY_REUSED,      /* 422 the idempotency key was used with another body */
    HP_PROB_RATE_LIMITED,    /* 429 too many requests; Retry-After */
    HP_PROB_UNAVAILABLE,     /* 503 the store cannot be reached or the service is stopping */
    HP_PROB_COUNT
} hp_problem;

/* Sets a problem response. `field` (a JSON Pointer into the request body, or a parameter name)
 * may be NULL. */
void hp_respond_problem(hp_request *r, hp_problem p, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The type URI and HTTP status of a problem (for the docs test). */
const char *hp_problem_type(hp_problem p);
int hp_problem_status(hp_problem p);

#endif
