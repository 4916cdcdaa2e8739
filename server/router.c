/* The route table of /v1 (docs/api.md and schemas/api.openapi.yaml describe the same routes). */
#include "server/router.h"

#include <stdio.h>
#include <string.h>

#include "server/api.h"

#define SUB HP_ALLOW(HP_ROLE_SUBMITTER)
#define PAT HP_ALLOW(HP_ROLE_PATHOLOGIST)
#define ADM HP_ALLOW(HP_ROLE_ADMIN)

static const hp_route ROUTES[] = {
    {"GET", "/v1/health", 0, HP_BODY_NONE, hp_api_health},
    {"GET", "/v1/metrics", HP_ANY_ROLE, HP_BODY_NONE, hp_api_metrics},
    {"POST", "/v1/batches", SUB, HP_BODY_JSON, hp_api_batch_create},
    {"GET", "/v1/batches/{id}", SUB | PAT, HP_BODY_NONE, hp_api_batch_get},
    {"POST", "/v1/batches/{id}/cancel", SUB, HP_BODY_NONE, hp_api_batch_cancel},
    {"GET", "/v1/batches/{id}/deliveries", SUB | PAT, HP_BODY_NONE, hp_api_batch_deliveries},
    {"GET", "/v1/jobs", SUB | PAT, HP_BODY_NONE, hp_api_jobs_list},
    {"GET", "/v1/worklist", PAT, HP_BODY_NONE, hp_api_worklist},
    {"GET", "/v1/jobs/{id}", SUB | PAT, HP_BODY_NONE, hp_api_job_get},
    {"POST", "/v1/jobs/{id}/cancel", SUB, HP_BODY_NONE, hp_api_job_cancel},
    /* Before /v1/jobs/{id}/{file}: the first route that matches is taken. */
    {"GET", "/v1/jobs/{id}/review", PAT, HP_BODY_NONE, hp_api_review_get},
    {"GET", "/v1/jobs/{id}/review.geojson", PAT, HP_BODY_NONE, hp_api_job_review_geojson},
    {"PUT", "/v1/jobs/{id}/review/{target}", PAT, HP_BODY_JSON, hp_api_review_put},
    {"POST", "/v1/jobs/{id}/annotations", PAT, HP_BODY_JSON, hp_api_annotation_add},
    {"DELETE", "/v1/jobs/{id}/annotations/{aid}", PAT, HP_BODY_NONE, hp_api_annotation_delete},
    {"GET", "/v1/jobs/{id}/{file}", SUB | PAT, HP_BODY_NONE, hp_api_job_result},
    {"PUT", "/v1/uploads/{sha256}", SUB, HP_BODY_UPLOAD, hp_api_upload},
    {"POST", "/v1/cases/{accession}/report", PAT, HP_BODY_JSON, hp_api_case_report_build},
    {"GET", "/v1/cases/{accession}/review.geojson", PAT, HP_BODY_NONE, hp_api_case_review_geojson},
    {"POST", "/v1/cases/{accession}/sign", PAT, HP_BODY_JSON, hp_api_case_sign},
    {"GET", "/v1/cases/{accession}/{file}", PAT, HP_BODY_NONE, hp_api_case_report_get},
    {"GET", "/v1/tokens", ADM, HP_BODY_NONE, hp_api_tokens_list},
    {"POST", "/v1/tokens", ADM, HP_BODY_JSON, hp_api_tokens_create},
    {"POST", "/v1/tokens/{id}/revoke", ADM, HP_BODY_NONE, hp_api_token_revoke},
    {"GET", "/v1/slides/{id}.dzi", SUB | PAT, HP_BODY_NONE, hp_api_slide_dzi},
    {"GET", "/v1/slides/{id}_files/{level}/{tile}", SUB | PAT, HP_BODY_NONE, hp_api_slide_tile},
    {"GET", "/v1/slides/{id}/heatmaps", SUB | PAT, HP_BODY_NONE, hp_api_heatmap_list},
    {"GET", "/v1/slides/{id}/heatmaps/{layer}.dzi", SUB | PAT, HP_BODY_NONE, hp_api_heatmap_dzi},
    {"GET", "/v1/slides/{id}/heatmaps/{layer}_files/{level}/{tile}", SUB | PAT, HP_BODY_NONE,
     hp_api_heatmap_tile},
    {"POST", "/v1/session", 0, HP_BODY_JSON, hp_api_session_create},
    {"GET", "/v1/session", PAT, HP_BODY_NONE, hp_api_session_get},
    {"DELETE", "/v1/session", PAT, HP_BODY_NONE, hp_api_session_delete},
    {"GET", "/viewer", 0, HP_BODY_NONE, hp_api_web_redirect},
    {"GET", "/viewer/", 0, HP_BODY_NONE, hp_api_web_index},
    {"GET", "/viewer/{file}", 0, HP_BODY_NONE, hp_api_web_file},
    {"GET", "/viewer/{dir}/{file}", 0, HP_BODY_NONE, hp_api_web_dir_file},
    {"GET", "/iiif/3/{id}", SUB | PAT, HP_BODY_NONE, hp_api_iiif_base},
    {"GET", "/iiif/3/{id}/info.json", SUB | PAT, HP_BODY_NONE, hp_api_iiif_info},
    {"GET", "/iiif/3/{id}/{region}/{size}/{rotation}/{quality}", SUB | PAT, HP_BODY_NONE,
     hp_api_iiif_image},
};

#define N_ROUTES ((int)(sizeof ROUTES / sizeof ROUTES[0]))

const hp_route *hp_routes(int *n)
{
    *n = N_ROUTES;
    return ROUTES;
}

/* Segment by segment; "{x}" takes one non-empty segment, and "{x}.dzi" or "{x}_files" one that
 * ends with that text after a non-empty parameter (Deep Zoom's URL layout). */
static int match(const char *pattern, const char *path, char params[HP_MAX_PARAMS][160], int *np)
{
    *np = 0;
    const char *p = pattern, *s = path;
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        const char *pe = strchr(p, '/'), *se = strchr(s, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), sl = se ? (size_t)(se - s) : strlen(s);
        const char *close = pl >= 2 && p[0] == '{' ? memchr(p, '}', pl) : NULL;
        if (close) {
            size_t suffix = pl - (size_t)(close + 1 - p), vl = sl - suffix;
            if (sl <= suffix || vl >= 160 || *np >= HP_MAX_PARAMS ||
                memcmp(s + vl, close + 1, suffix) != 0)
                return 0;
            memcpy(params[*np], s, vl);
            params[*np][vl] = 0;
            (*np)++;
        } else if (pl != sl || memcmp(p, s, pl) != 0) {
            return 0;
        }
        p += pl, s += sl;
    }
    return !*p && !*s;
}

hp_route_result hp_route_match(hp_request *r, const char *method, const char *path, char *allow,
                               size_t allow_n)
{
    int path_found = 0;
    if (allow_n)
        allow[0] = 0;
    /* HEAD is answered as GET without the body (libmicrohttpd drops it). */
    const char *m = !strcmp(method, "HEAD") ? "GET" : method;
    for (int i = 0; i < N_ROUTES; i++) {
        char params[HP_MAX_PARAMS][160];
        int np;
        if (!match(ROUTES[i].pattern, path, params, &np))
            continue;
        if (!strcmp(ROUTES[i].method, m)) {
            r->route = &ROUTES[i];
            memcpy(r->params, params, sizeof params);
            r->n_params = np;
            return HP_ROUTE_OK;
        }
        if (!path_found || !strstr(allow, ROUTES[i].method)) {
            size_t used = strlen(allow);
            snprintf(allow + used, allow_n - used, "%s%s", used ? ", " : "", ROUTES[i].method);
        }
        path_found = 1;
    }
    return path_found ? HP_ROUTE_METHOD : HP_ROUTE_NOT_FOUND;
}
