/* The pathologists' review of a succeeded job (docs/api.md, "Review"):
 *
 *   GET    /v1/jobs/{id}/review                  every pathologist's decisions and drawn regions
 *   PUT    /v1/jobs/{id}/review/{target}         the caller's decision on "category", a model
 *                                                region ("R3") or a drawn region ("a_...")
 *   POST   /v1/jobs/{id}/annotations             a region the caller drew
 *   DELETE /v1/jobs/{id}/annotations/{aid}       the caller's own drawn region
 *   GET    /v1/jobs/{id}/review.geojson          the slide's review, QuPath-compatible GeoJSON
 *   GET    /v1/cases/{accession}/review.geojson  the same for every slide of the case
 *
 * Decisions and regions live in the store per pathologist (never in the browser) and every
 * change is audited; a pathologist changes only their own and sees everyone's, attributed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/legend.h"
#include "report/json_file.h"
#include "server/api.h"
#include "server/ids.h"
#include "server/service_internal.h"

#define COMMENT_MAX 2000
#define RING_MIN 4     /* a closed triangle */
#define RING_MAX 5000

/* ---- the job and its results ---- */

typedef struct {
    hp_job_row job;
    cJSON *findings; /* findings.json */
    cJSON *regions;  /* regions.geojson */
} reviewed_job;

static void reviewed_job_free(reviewed_job *rj)
{
    hp_job_row_free(&rj->job);
    cJSON_Delete(rj->findings);
    cJSON_Delete(rj->regions);
    memset(rj, 0, sizeof *rj);
}

/* Reads the findings and regions of a succeeded job; 1, or 0 with `why` set. */
static int read_results(hp_service *svc, reviewed_job *rj, const char **why)
{
    char path[PATH_MAX];
    hp_error err = {0};
    if (strcmp(rj->job.state, "succeeded") != 0 || !rj->job.result_dir) {
        *why = "not succeeded";
        return 0;
    }
    hp_service_path(svc, path, sizeof path, "%s/findings.json", rj->job.result_dir);
    if (hp_json_file_read(path, "findings", &rj->findings, NULL, &err) != HP_OK) {
        fprintf(stderr, "review: job %s: %s\n", rj->job.id, err.msg);
        *why = "unreadable";
        return 0;
    }
    hp_service_path(svc, path, sizeof path, "%s/regions.geojson", rj->job.result_dir);
    if (hp_json_file_read(path, "regions", &rj->regions, NULL, &err) != HP_OK) {
        fprintf(stderr, "review: job %s: %s\n", rj->job.id, err.msg);
        *why = "unreadable";
        return 0;
    }
    return 1;
}

/* The route's job, visible to the caller, succeeded, with its results: 1, or 0 (answered). */
static int load_reviewed(hp_request *r, hp_db *db, reviewed_job *rj)
{
    memset(rj, 0, sizeof *rj);
    if (!hp_api_load_job(r, db, &rj->job))
        return 0;
    const char *why = NULL;
    if (!read_results(r->svc, rj, &why)) {
        if (!strcmp(why, "not succeeded"))
            hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                               "the job is %s; it can be reviewed once it has succeeded",
                               rj->job.state);
        else
            hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the job's results cannot be read");
        reviewed_job_free(rj);
        return 0;
    }
    return 1;
}

/* A store connection and the route's reviewable job: the connection, or NULL (answered, and
 * nothing held). */
static hp_db *open_reviewed(hp_request *r, reviewed_job *rj)
{
    hp_db *db = hp_api_db(r);
    if (db && !load_reviewed(r, db, rj)) {
        hp_api_db_done(r, db);
        return NULL;
    }
    return db;
}

static const cJSON *region_feature(const reviewed_job *rj, const char *name)
{
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(rj->regions, "features"))
    {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(f, "properties");
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));
        if (n && !strcmp(n, name))
            return f;
    }
    return NULL;
}

/* The category of class `cls` in the findings ("invasive", ...), NULL when it has none. */
static const char *class_category(const reviewed_job *rj, const char *cls)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rj->findings, "classes"))
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
        if (n && !strcmp(n, cls))
            return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "category"));
    }
    return NULL;
}

static int known_class(const reviewed_job *rj, const char *cls)
{
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(rj->findings, "classes"))
    {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "name"));
        if (n && !strcmp(n, cls))
            return 1;
    }
    return 0;
}

/* ---- reading a request ---- */

/* The body's optional text field `key` (NULL when absent or null): 1, or 0 (answered). */
static int optional_text(hp_request *r, const char *key, size_t max, const char **out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return 1;
    char field[32];
    snprintf(field, sizeof field, "/%s", key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) > max) {
        hp_respond_problem(r, HP_PROB_VALIDATION, field, "%s is a string of at most %zu bytes, or null",
                           key, max);
        return 0;
    }
    for (const unsigned char *p = (const unsigned char *)v->valuestring; *p; p++)
        if (*p < 0x20 && *p != '\n' && *p != '\t') {
            hp_respond_problem(r, HP_PROB_VALIDATION, field,
                               "%s holds a control character (only newlines and tabs are kept)", key);
            return 0;
        }
    *out = v->valuestring[0] ? v->valuestring : NULL;
    return 1;
}

/* Refuses body keys other than `allowed` (a misspelt "decison" must not be dropped silently). */
static int only_keys(hp_request *r, const char *const *allowed, int n)
{
    const cJSON *k;
    cJSON_ArrayForEach(k, r->json)
    {
        int ok = 0;
        for (int i = 0; i < n && !ok; i++)
            ok = !strcmp(k->string, allowed[i]);
        if (!ok) {
            hp_respond_problem(r, HP_PROB_VALIDATION, k->string, "unknown field '%s'", k->string);
            return 0;
        }
    }
    return 1;
}

static int body_object(hp_request *r, const char *what)
{
    if (cJSON_IsObject(r->json))
        return 1;
    hp_respond_problem(r, HP_PROB_BAD_REQUEST, NULL, "the body is a JSON object: %s", what);
    return 0;
}

/* A Polygon of one closed ring of [x, y] level-0 pixels inside the slide: 1, or 0 (answered). */
static int valid_polygon(hp_request *r, const reviewed_job *rj, const cJSON *g)
{
    const cJSON *slide = cJSON_GetObjectItemCaseSensitive(rj->findings, "slide");
    double W = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(slide, "level0_width_px"));
    double H = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(slide, "level0_height_px"));
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(g, "type");
    const cJSON *rings = cJSON_GetObjectItemCaseSensitive(g, "coordinates");
    if (!cJSON_IsObject(g) || !cJSON_IsString(type) || strcmp(type->valuestring, "Polygon") != 0 ||
        !cJSON_IsArray(rings) || cJSON_GetArraySize(rings) != 1) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/geometry",
                           "geometry is a GeoJSON Polygon with one ring: {\"type\": \"Polygon\", "
                           "\"coordinates\": [[[x, y], ...]]}");
        return 0;
    }
    const cJSON *ring = rings->child;
    int n = cJSON_GetArraySize(ring);
    if (!cJSON_IsArray(ring) || n < RING_MIN || n > RING_MAX) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/geometry/coordinates/0",
                           "the ring has %d to %d points (the first repeated at the end)", RING_MIN,
                           RING_MAX);
        return 0;
    }
    int i = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, ring)
    {
        const cJSON *x = cJSON_GetArrayItem(pt, 0), *y = cJSON_GetArrayItem(pt, 1);
        if (!cJSON_IsArray(pt) || cJSON_GetArraySize(pt) != 2 || !cJSON_IsNumber(x) ||
            !cJSON_IsNumber(y) || !isfinite(x->valuedouble) || !isfinite(y->valuedouble) ||
            x->valuedouble < 0 || y->valuedouble < 0 || x->valuedouble > W || y->valuedouble > H) {
            char field[64];
            snprintf(field, sizeof field, "/geometry/coordinates/0/%d", i);
            hp_respond_problem(r, HP_PROB_VALIDATION, field,
                               "point %d is not [x, y] inside the slide (0..%.0f, 0..%.0f level-0 "
                               "pixels)", i, W, H);
            return 0;
        }
        i++;
    }
    const cJSON *a = ring->child, *b = cJSON_GetArrayItem(ring, n - 1);
    if (cJSON_GetArrayItem(a, 0)->valuedouble != cJSON_GetArrayItem(b, 0)->valuedouble ||
        cJSON_GetArrayItem(a, 1)->valuedouble != cJSON_GetArrayItem(b, 1)->valuedouble) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/geometry/coordinates/0",
                           "the ring is not closed: its last point repeats the first (GeoJSON)");
        return 0;
    }
    return 1;
}

/* ---- handlers ---- */

void hp_api_review_get(hp_request *r)
{
    reviewed_job rj;
    hp_db *db = open_reviewed(r, &rj);
    if (!db)
        return;
    cJSON *o = NULL;
    hp_error err = {0};
    if (hp_store_review_get(db, rj.job.id, &o, &err) != HP_OK)
        hp_api_store_error(r, &err);
    else {
        cJSON_AddStringToObject(o, "job", rj.job.id);
        /* Which decisions are the caller's own (the viewer lets them change only those). */
        cJSON_AddStringToObject(o, "you", r->token.id);
        hp_respond_json(r, 200, o);
    }
    reviewed_job_free(&rj);
    hp_api_db_done(r, db);
}

void hp_api_review_put(hp_request *r)
{
    static const char *const KEYS[] = {"decision", "comment"};
    const char *target = r->params[1], *decision = NULL, *comment = NULL;
    if (!body_object(r, "{\"decision\": \"accept\" | \"reject\" | null, \"comment\": \"...\"}") ||
        !only_keys(r, KEYS, 2) || !optional_text(r, "decision", 16, &decision) ||
        !optional_text(r, "comment", COMMENT_MAX, &comment))
        return;
    if (decision && strcmp(decision, "accept") != 0 && strcmp(decision, "reject") != 0) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/decision", "decision is accept, reject or null");
        return;
    }
    reviewed_job rj;
    hp_db *db = open_reviewed(r, &rj);
    if (!db)
        return;
    hp_error err = {0};
    int known = !strcmp(target, "category") || region_feature(&rj, target) != NULL;
    if (!known && hp_id_valid('a', target)) {
        known = hp_store_annotation_exists(db, rj.job.id, target, &err);
        if (known < 0) {
            hp_api_store_error(r, &err);
            goto out;
        }
    }
    if (!known) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "the job has no '%s' to review: the target is \"category\", a region "
                           "id of its regions.geojson (R1, R2, ...) or a drawn region's id",
                           target);
        goto out;
    }
    hp_review_decision d = {.job_id = rj.job.id, .target = target, .author_id = r->token.id,
                            .author_name = r->token.name, .decision = decision, .comment = comment};
    if (hp_store_review_set(db, &d, hp_now_ms(), &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job", rj.job.id);
    cJSON_AddStringToObject(o, "target", target);
    cJSON_AddItemToObject(o, "decision", decision ? cJSON_CreateString(decision) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "comment", comment ? cJSON_CreateString(comment) : cJSON_CreateNull());
    cJSON_AddBoolToObject(o, "withdrawn", !decision && !comment);
    hp_respond_json(r, 200, o);
out:
    reviewed_job_free(&rj);
    hp_api_db_done(r, db);
}

void hp_api_annotation_add(hp_request *r)
{
    static const char *const KEYS[] = {"class", "comment", "geometry"};
    const char *cls = NULL, *comment = NULL;
    if (!body_object(r, "{\"class\": \"invasive\", \"geometry\": {GeoJSON Polygon}, \"comment\": \"...\"}") ||
        !only_keys(r, KEYS, 3) || !optional_text(r, "class", 64, &cls) ||
        !optional_text(r, "comment", COMMENT_MAX, &comment))
        return;
    reviewed_job rj;
    hp_db *db = open_reviewed(r, &rj);
    if (!db)
        return;
    char *geometry = NULL;
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(r->json, "geometry");
    if (!cls || !known_class(&rj, cls)) {
        hp_respond_problem(r, HP_PROB_VALIDATION, "/class",
                           "class is one of the model's classes (findings.json's classes)");
        goto out;
    }
    if (!valid_polygon(r, &rj, g))
        goto out;
    if (!(geometry = cJSON_PrintUnformatted(g))) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        goto out;
    }
    hp_review_annotation a = {.job_id = rj.job.id, .author_id = r->token.id,
                              .author_name = r->token.name, .cls = cls, .comment = comment,
                              .geometry = geometry};
    char id[40];
    hp_error err = {0};
    if (hp_store_annotation_add(db, &a, hp_now_ms(), id, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        goto out;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "job", rj.job.id);
    cJSON_AddStringToObject(o, "class", cls);
    hp_respond_json(r, 201, o);
out:
    free(geometry);
    reviewed_job_free(&rj);
    hp_api_db_done(r, db);
}

void hp_api_annotation_delete(hp_request *r)
{
    const char *aid = r->params[1];
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_row j;
    if (!hp_api_load_job(r, db, &j)) {
        hp_api_db_done(r, db);
        return;
    }
    hp_error err = {0};
    int got = hp_id_valid('a', aid) ? hp_store_annotation_delete(db, j.id, aid, r->token.id,
                                                                 hp_now_ms(), &err)
                                    : 0;
    if (got < 0)
        hp_api_store_error(r, &err);
    else if (got == 0)
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "the job has no drawn region '%s'", aid);
    else if (got == 2)
        hp_respond_problem(r, HP_PROB_FORBIDDEN, NULL,
                           "another pathologist drew this region; only they can delete it");
    else
        hp_respond_text(r, 204, NULL, "", 0);
    hp_job_row_free(&j);
    hp_api_db_done(r, db);
}

/* ---- the GeoJSON export ---- */

/* The decisions on `target` from the review, as [{decision, comment, author, updated_ms}]. */
static cJSON *decisions_on(const cJSON *review, const char *target)
{
    cJSON *a = cJSON_CreateArray();
    const cJSON *d;
    cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(review, "decisions"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "target")), target) != 0)
            continue;
        cJSON *c = cJSON_Duplicate(d, 1);
        cJSON_DeleteItemFromObjectCaseSensitive(c, "target");
        cJSON_AddItemToArray(a, c);
    }
    return a;
}

static cJSON *histoplan_props(cJSON *props)
{
    cJSON *h = cJSON_GetObjectItemCaseSensitive(props, "histoplan");
    if (!cJSON_IsObject(h)) {
        cJSON_DeleteItemFromObjectCaseSensitive(props, "histoplan");
        h = cJSON_AddObjectToObject(props, "histoplan");
    }
    return h;
}

/* A drawn region as a QuPath annotation feature. */
static cJSON *drawn_feature(const reviewed_job *rj, const cJSON *a, const cJSON *review)
{
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "id"));
    const char *cls = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "class"));
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "type", "Feature");
    cJSON_AddStringToObject(f, "id", id);
    cJSON_AddItemToObject(f, "geometry", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "geometry"), 1));
    cJSON *p = cJSON_AddObjectToObject(f, "properties");
    cJSON_AddStringToObject(p, "objectType", "annotation");
    cJSON_AddStringToObject(p, "name", id);
    cJSON *c = cJSON_AddObjectToObject(p, "classification");
    cJSON_AddStringToObject(c, "name", cls);
    uint8_t rgb[3] = {153, 153, 153};
    hp_legend_category_colour(hp_class_category_find(class_category(rj, cls)), rgb);
    int col[3] = {rgb[0], rgb[1], rgb[2]};
    cJSON_AddItemToObject(c, "color", cJSON_CreateIntArray(col, 3));
    cJSON *h = cJSON_AddObjectToObject(p, "histoplan");
    cJSON_AddStringToObject(h, "source", "drawn");
    cJSON_AddItemToObject(h, "author", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "author"), 1));
    cJSON_AddItemToObject(h, "comment", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "comment"), 1));
    cJSON_AddItemToObject(h, "created_ms", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(a, "created_ms"), 1));
    cJSON_AddItemToObject(h, "review", decisions_on(review, id));
    return f;
}

/* The job's model regions (with everyone's decisions) and drawn regions, appended to
 * `features`; its category decisions appended to `category`. */
static hp_status add_job_review(hp_db *db, const reviewed_job *rj, cJSON *features, cJSON *category,
                                hp_error *err)
{
    cJSON *review = NULL;
    hp_status st = hp_store_review_get(db, rj->job.id, &review, err);
    if (st != HP_OK)
        return st;
    const char *slide_id = rj->job.result_slide_id ? rj->job.result_slide_id : "";
    const cJSON *f;
    cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(rj->regions, "features"))
    {
        cJSON *g = cJSON_Duplicate(f, 1);
        cJSON *p = cJSON_GetObjectItemCaseSensitive(g, "properties");
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(p, "name"));
        if (!cJSON_IsObject(p) || !name) {
            cJSON_Delete(g);
            continue;
        }
        cJSON *h = histoplan_props(p);
        cJSON_AddStringToObject(h, "source", "model");
        cJSON_AddStringToObject(h, "job", rj->job.id);
        cJSON_AddStringToObject(h, "slide_id", slide_id);
        cJSON_AddItemToObject(h, "review", decisions_on(review, name));
        cJSON_AddItemToArray(features, g);
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(review, "annotations"))
    {
        cJSON *g = drawn_feature(rj, a, review);
        cJSON *h = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(g, "properties"), "histoplan");
        cJSON_AddStringToObject(h, "job", rj->job.id);
        cJSON_AddStringToObject(h, "slide_id", slide_id);
        cJSON_AddItemToArray(features, g);
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "job", rj->job.id);
    cJSON_AddStringToObject(c, "slide_id", slide_id);
    cJSON_AddItemToObject(c, "review", decisions_on(review, "category"));
    cJSON_AddItemToArray(category, c);
    cJSON_Delete(review);
    return HP_OK;
}

static cJSON *collection(cJSON **features, cJSON **category)
{
    cJSON *fc = cJSON_CreateObject();
    cJSON_AddStringToObject(fc, "type", "FeatureCollection");
    *features = cJSON_AddArrayToObject(fc, "features");
    /* A foreign member (RFC 7946 6.1): QuPath reads the features and ignores it. */
    cJSON *h = cJSON_AddObjectToObject(fc, "histoplan");
    *category = cJSON_AddArrayToObject(h, "category_review");
    return fc;
}

static void respond_geojson(hp_request *r, cJSON *fc)
{
    char *text = cJSON_PrintUnformatted(fc);
    cJSON_Delete(fc);
    if (!text) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        return;
    }
    hp_respond_text(r, 200, "application/geo+json", text, strlen(text));
    free(text);
}

void hp_api_job_review_geojson(hp_request *r)
{
    reviewed_job rj;
    hp_db *db = open_reviewed(r, &rj);
    if (!db)
        return;
    cJSON *features, *category, *fc = collection(&features, &category);
    hp_error err = {0};
    if (add_job_review(db, &rj, features, category, &err) != HP_OK) {
        cJSON_Delete(fc);
        hp_api_store_error(r, &err);
    } else {
        respond_geojson(r, fc);
    }
    reviewed_job_free(&rj);
    hp_api_db_done(r, db);
}

void hp_api_case_review_geojson(hp_request *r)
{
    const char *acc = r->params[0];
    if (!*acc || strlen(acc) > 64) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such case");
        return;
    }
    hp_db *db = hp_api_db(r);
    if (!db)
        return;
    hp_job_query q = {.state = "succeeded", .accession = acc, .limit = 500};
    hp_job_row *jobs = NULL;
    int n = 0;
    hp_error err = {0};
    if (hp_store_jobs_list(db, &q, &jobs, &n, &err) != HP_OK) {
        hp_api_store_error(r, &err);
        hp_api_db_done(r, db);
        return;
    }
    if (n == 0) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "the case has no succeeded job to review");
        goto out;
    }
    cJSON *features, *category, *fc = collection(&features, &category);
    for (int i = 0; i < n; i++) {
        reviewed_job rj = {.job = jobs[i]};
        char job_id[40];
        snprintf(job_id, sizeof job_id, "%s", jobs[i].id);
        const char *why = NULL;
        int ok = read_results(r->svc, &rj, &why);
        memset(&jobs[i], 0, sizeof jobs[i]); /* now rj's */
        if (!ok || add_job_review(db, &rj, features, category, &err) != HP_OK) {
            reviewed_job_free(&rj);
            cJSON_Delete(fc);
            if (err.code)
                hp_api_store_error(r, &err);
            else
                hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL,
                                   "the results of job %s cannot be read", job_id);
            goto out;
        }
        reviewed_job_free(&rj);
    }
    respond_geojson(r, fc);
out:
    hp_store_jobs_free(jobs, n);
    hp_api_db_done(r, db);
}
