/* libFuzzer harness for the lab batch service's request parsing. The first byte picks what the
 * rest is:
 *   0  a POST /v1/batches body -> the parse stage (size, UTF-8, depth, cJSON, duplicate names,
 *                                 trailing text), then the batch validation against slide roots
 *                                 and an in-memory SQLite store, then canonicalization
 *   1  a request path           -> routing with each method (the route's parameters must never
 *                                 hold a '/')
 *   2  a Range header           -> hp_parse_range against several file sizes (the range must lie
 *                                 inside the file)
 *   3  a slide path             -> hp_path_inside (a path accepted never holds a "." or ".."
 *                                 segment)
 *   4  a POST /v1/tokens or case body -> the parse stage alone
 * A refusal is the expected outcome for most inputs and must carry a message; any crash,
 * sanitizer report, leak or hang is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/canonical_json.h"
#include "server/batch_validate.h"
#include "server/body.h"
#include "server/file_response.h"
#include "server/router.h"
#include "server/service_internal.h"

static hp_service g_svc;
static hp_db *g_db;
static hp_token_info g_tok;
static const hp_route BATCH_ROUTE = {"POST", "/v1/batches", 0, HP_BODY_JSON, NULL};

static void setup(void)
{
    hp_error err = {0};
    g_svc.cfg.max_json_depth = 32;
    g_svc.cfg.max_slides = 64;
    g_svc.cfg.max_body = 1 << 20;
    snprintf(g_svc.data_dir, sizeof g_svc.data_dir, "/nonexistent-histoplan-data");
    snprintf(g_svc.roots[0], sizeof g_svc.roots[0], "/data/slides");
    snprintf(g_svc.roots[1], sizeof g_svc.roots[1], "/");
    g_svc.n_roots = 1;
    snprintf(g_svc.model_ref, sizeof g_svc.model_ref, "histoplan-default-densenet@1.0.0");
    if (hp_db_open(":memory:", &g_db, &err) != HP_OK || hp_store_migrate(g_db, NULL, &err) != HP_OK)
        abort();
    snprintf(g_tok.id, sizeof g_tok.id, "t_aaaaaaaaaaaaaaaaaaaaaaaaaa");
    g_tok.role = HP_ROLE_SUBMITTER;
}

static void free_request(hp_request *r)
{
    free(r->body);
    free(r->resp);
    cJSON_Delete(r->json);
}

static void body_case(const uint8_t *data, size_t size, int validate)
{
    hp_request r;
    memset(&r, 0, sizeof r);
    r.svc = &g_svc;
    r.route = &BATCH_ROUTE;
    r.file_fd = r.upload_fd = -1;
    /* In two chunks, as the network delivers it. */
    size_t half = size / 2;
    hp_body_absorb(&r, (const char *)data, half);
    if (!r.status)
        hp_body_absorb(&r, (const char *)data + half, size - half);
    if (!r.status)
        hp_body_finish(&r);
    if (r.status && (!r.resp || !strstr(r.resp, "\"detail\"")))
        abort(); /* a refusal always says why */
    if (!r.status && validate && r.json) {
        hp_batch_request b;
        hp_batch_request_init(&b);
        int ok = hp_batch_validate(&g_svc, g_db, &g_tok, r.json, &b);
        if (!ok && (!b.why[0] || !b.status))
            abort();
        if (ok) {
            for (int i = 0; i < b.n; i++)
                if (!b.jobs[i].slide_path || !b.jobs[i].source)
                    abort();
            hp_error err = {0};
            char *canon = hp_json_canonicalize(r.json, NULL, &err);
            if (!canon && !err.msg[0])
                abort();
            free(canon);
        }
        hp_batch_request_free(&b);
    }
    free_request(&r);
}

static void route_case(const uint8_t *data, size_t size)
{
    char path[4096];
    size_t n = size < sizeof path - 1 ? size : sizeof path - 1;
    memcpy(path, data, n);
    path[n] = 0;
    static const char *const METHODS[] = {"GET", "POST", "PUT", "DELETE", "HEAD"};
    for (int m = 0; m < 5; m++) {
        hp_request r;
        memset(&r, 0, sizeof r);
        char allow[64];
        if (hp_route_match(&r, METHODS[m], path, allow, sizeof allow) == HP_ROUTE_OK) {
            if (!r.route || r.n_params > HP_MAX_PARAMS)
                abort();
            for (int k = 0; k < r.n_params; k++)
                if (strchr(r.params[k], '/') || !r.params[k][0])
                    abort();
        }
    }
}

static void range_case(const uint8_t *data, size_t size)
{
    char h[512];
    size_t n = size < sizeof h - 1 ? size : sizeof h - 1;
    memcpy(h, data, n);
    h[n] = 0;
    static const int64_t SIZES[] = {0, 1, 100, 1LL << 40};
    for (int k = 0; k < 4; k++) {
        int64_t off = -1, len = -1;
        int rc = hp_parse_range(h, SIZES[k], &off, &len);
        if (rc == 1 && (off < 0 || len <= 0 || off + len > SIZES[k]))
            abort();
    }
}

static void path_case(const uint8_t *data, size_t size)
{
    char p[4200];
    size_t n = size < sizeof p - 1 ? size : sizeof p - 1;
    memcpy(p, data, n);
    p[n] = 0;
    n = strlen(p); /* the path ends at the first NUL, as a C string does */
    for (int k = 0; k < 2; k++) {
        if (!hp_path_inside(p, g_svc.roots[k]))
            continue;
        if (strstr(p, "/../") || strstr(p, "/./") || strstr(p, "//") ||
            (n >= 3 && !strcmp(p + n - 3, "/..")) || (n >= 2 && !strcmp(p + n - 2, "/.")))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        setup();
        ready = 1;
    }
    if (size < 1)
        return 0;
    switch (data[0] % 5) {
    case 0:
        body_case(data + 1, size - 1, 1);
        break;
    case 1:
        route_case(data + 1, size - 1);
        break;
    case 2:
        range_case(data + 1, size - 1);
        break;
    case 3:
        path_case(data + 1, size - 1);
        break;
    default:
        body_case(data + 1, size - 1, 0);
    }
    return 0;
}
