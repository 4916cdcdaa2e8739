/* server/batch_validate.h. */
#include "server/batch_validate.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/slide.h"
#include "pipeline/stain.h"
#include "report/canonical_json.h"
#include "server/api.h"
#include "server/service_internal.h"

void hp_batch_request_init(hp_batch_request *b) { memset(b, 0, sizeof *b); }

void hp_batch_request_free(hp_batch_request *b)
{
    for (int i = 0; b->jobs && i < b->n; i++) {
        free((char *)b->jobs[i].slide_path);
        free((char *)b->jobs[i].slide_id);
        free((char *)b->jobs[i].accession);
    }
    free(b->jobs);
    free(b->job_ids);
    free(b->options_text);
    free(b->callback_url);
    memset(b, 0, sizeof *b);
}

__attribute__((format(printf, 3, 4))) static int refuse(hp_batch_request *b, const char *field,
                                                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->why, sizeof b->why, fmt, ap);
    va_end(ap);
    snprintf(b->field, sizeof b->field, "%s", field);
    if (!b->status)
        b->status = 422;
    return 0;
}

int hp_path_inside(const char *path, const char *root)
{
    size_t rl = strlen(root), pl = strlen(path);
    if (path[0] != '/' || pl > 4000 || rl == 0)
        return 0;
    if (strncmp(path, root, rl) != 0 || (rl > 1 && path[rl] != '/') || pl <= rl + (rl > 1))
        return 0;
    /* Segment by segment: no empty, "." or ".." segment, no control character. */
    for (const char *s = path + 1;;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
            return 0;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                return 0;
        if (!e)
            return 1;
        s = e + 1;
    }
}

static int valid_slide_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int valid_callback(const char *u)
{
    size_t n = strlen(u);
    if (n > 2048 || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)))
        return 0;
    const char *host = u + (u[4] == 's' ? 8 : 7);
    if (!*host || *host == '/' || *host == ':')
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)u[i] <= 0x20 || (unsigned char)u[i] >= 0x7f)
            return 0;
    return 1;
}

static int check_slide(hp_service *svc, hp_db *db, const hp_token_info *tok, const cJSON *s,
                       int i, hp_job_spec *js, hp_batch_request *b)
{
    char f[128];
    snprintf(f, sizeof f, "/slides/%d", i);
    if (!cJSON_IsObject(s))
        return refuse(b, f, "each slide is an object with \"path\" or \"upload\"");
    const cJSON *it;
    cJSON_ArrayForEach(it, s)
    {
        static const char *const KNOWN[] = {"path", "upload", "slide_id", "case", "mpp"};
        int known = 0;
        for (int k = 0; k < 5; k++)
            known |= !strcmp(it->string, KNOWN[k]);
        if (!known) {
            snprintf(f, sizeof f, "/slides/%d/%.60s", i, it->string);
            return refuse(b, f, "unknown field (a slide takes path or upload, slide_id, case, mpp)");
        }
    }
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(s, "path");
    const cJSON *upload = cJSON_GetObjectItemCaseSensitive(s, "upload");
    if (!!path == !!upload)
        return refuse(b, f, "give exactly one of \"path\" and \"upload\"");
    if (path) {
        snprintf(f, sizeof f, "/slides/%d/path", i);
        if (!cJSON_IsString(path))
            return refuse(b, f, "a string: the slide's absolute path on the server");
        if (svc->n_roots == 0)
            return refuse(b, f, "this server takes no paths (it has no --slide-root); upload the "
                                "slide and give \"upload\"");
        int inside = 0;
        for (int k = 0; k < svc->n_roots && !inside; k++)
            inside = hp_path_inside(path->valuestring, svc->roots[k]);
        if (!inside)
            return refuse(b, f, "the path is not an absolute, normalized path inside one of the "
                                "server's slide roots");
        js->source = "path";
        js->slide_path = strdup(path->valuestring);
    } else {
        snprintf(f, sizeof f, "/slides/%d/upload", i);
        if (!cJSON_IsString(upload) || !is_hex64(upload->valuestring))
            return refuse(b, f, "the SHA-256 of an uploaded slide: 64 lower-case hex digits");
        hp_error err = {0};
        int own = hp_store_upload_owned(db, upload->valuestring, tok->id, &err);
        if (own < 0) {
            b->status = 503;
            return refuse(b, f, "the job store did not answer; retry");
        }
        char p[PATH_MAX];
        struct stat st;
        hp_service_path(svc, p, sizeof p, "uploads/%s", upload->valuestring);
        if (!own || stat(p, &st) != 0)
            return refuse(b, f, "no upload with this SHA-256 from this token (PUT "
                                "/v1/uploads/{sha256} first)");
        js->source = "upload";
        js->slide_path = strdup(upload->valuestring);
    }
    const cJSON *sid = cJSON_GetObjectItemCaseSensitive(s, "slide_id");
    if (sid) {
        snprintf(f, sizeof f, "/slides/%d/slide_id", i);
        if (!cJSON_IsString(sid) || !valid_slide_id(sid->valuestring))
            return refuse(b, f, "1 to 64 of A-Z a-z 0-9 _ -");
        js->slide_id = strdup(sid->valuestring);
    }
    const cJSON *acc = cJSON_GetObjectItemCaseSensitive(s, "case");
    if (acc) {
        snprintf(f, sizeof f, "/slides/%d/case", i);
        if (!cJSON_IsString(acc) || !hp_api_valid_accession(acc->valuestring))
            return refuse(b, f, "the case's accession number: 1 to 64 characters, no control "
                                "characters");
        js->accession = strdup(acc->valuestring);
    }
    const cJSON *mpp = cJSON_GetObjectItemCaseSensitive(s, "mpp");
    if (mpp) {
        snprintf(f, sizeof f, "/slides/%d/mpp", i);
        if (!cJSON_IsNumber(mpp) || !(mpp->valuedouble >= HP_SLIDE_MPP_MIN &&
                                      mpp->valuedouble <= HP_SLIDE_MPP_MAX))
            return refuse(b, f, "microns per pixel at level 0: a number from %g to %g",
                          HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX);
        js->mpp = mpp->valuedouble;
    }
    if (!js->slide_path || (sid && !js->slide_id) || (acc && !js->accession))
        return refuse(b, "", "out of memory");
    return 1;
}

static int check_options(const cJSON *o, hp_batch_request *b)
{
    if (!o) {
        b->options_text = strdup("{}");
        return b->options_text ? 1 : refuse(b, "", "out of memory");
    }
    if (!cJSON_IsObject(o))
        return refuse(b, "/options", "an object: {\"roi\": [x, y, w, h], \"stain\": {...}, \"super_resolution\": \"auto\"}");
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        char f[96];
        snprintf(f, sizeof f, "/options/%.60s", it->string);
        if (!strcmp(it->string, "roi")) {
            int ok = cJSON_IsArray(it) && cJSON_GetArraySize(it) == 4;
            for (int k = 0; ok && k < 4; k++) {
                const cJSON *v = cJSON_GetArrayItem(it, k);
                ok = cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
                     v->valuedouble >= (k < 2 ? 0 : 1) && v->valuedouble <= (double)(1LL << 40);
            }
            if (!ok)
                return refuse(b, f, "[x, y, w, h] in level-0 pixels: integers, x and y >= 0, "
                                    "w and h > 0");
        } else if (!strcmp(it->string, "stain")) {
            /* Stored stain parameters, as `histoplan analyze --stain-target` reads from .json. */
            char *text = cJSON_PrintUnformatted(it);
            hp_stain_params sp;
            hp_error err = {0};
            hp_status st = text ? hp_stain_params_from_json(text, &sp, &err) : HP_ERR_NOMEM;
            free(text);
            if (st != HP_OK)
                return refuse(b, f, "stain target parameters ({\"method\": \"macenko\", "
                                    "\"stain_matrix\", \"max_conc\"} or {\"method\": "
                                    "\"reinhard\", \"mean\", \"std\"}): %s", err.msg);
        } else if (!strcmp(it->string, "super_resolution")) {
            if (!cJSON_IsString(it) || (strcmp(it->valuestring, "auto") && strcmp(it->valuestring, "off")))
                return refuse(b, f, "\"auto\" (super-resolve the tiles of a slide 1.5x or more coarser than the "
                                    "model, with the server's installed models) or \"off\"");
        } else {
            return refuse(b, f, "unknown option (options are roi, stain and super_resolution)");
        }
    }
    hp_error err = {0};
    b->options_text = hp_json_canonicalize(o, NULL, &err);
    return b->options_text ? 1 : refuse(b, "/options", "%s", err.msg);
}

int hp_batch_validate(hp_service *svc, hp_db *db, const hp_token_info *tok, const cJSON *body,
                      hp_batch_request *b)
{
    if (!cJSON_IsObject(body))
        return refuse(b, "", "the body is a JSON object with \"slides\"");
    const cJSON *it;
    cJSON_ArrayForEach(it, body)
    {
        static const char *const KNOWN[] = {"slides", "model", "options", "callback_url"};
        int known = 0;
        for (int k = 0; k < 4; k++)
            known |= !strcmp(it->string, KNOWN[k]);
        if (!known) {
            char f[96];
            snprintf(f, sizeof f, "/%.60s", it->string);
            return refuse(b, f, "unknown field (a batch takes slides, model, options, "
                                "callback_url)");
        }
    }
    const cJSON *slides = cJSON_GetObjectItemCaseSensitive(body, "slides");
    if (!cJSON_IsArray(slides) || cJSON_GetArraySize(slides) < 1)
        return refuse(b, "/slides", "a non-empty array of slides");
    int n = cJSON_GetArraySize(slides);
    if (n > svc->cfg.max_slides) {
        b->status = 413;
        return refuse(b, "/slides", "%d slides; a batch takes at most %d", n, svc->cfg.max_slides);
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (model && (!cJSON_IsString(model) || strcmp(model->valuestring, svc->model_ref) != 0))
        return refuse(b, "/model", "this server runs the model %s; leave \"model\" out or give "
                                   "exactly that", svc->model_ref);
    const cJSON *cb = cJSON_GetObjectItemCaseSensitive(body, "callback_url");
    if (cb && !cJSON_IsNull(cb)) {
        if (!cJSON_IsString(cb) || !valid_callback(cb->valuestring))
            return refuse(b, "/callback_url", "an http:// or https:// URL (at most 2048 "
                                              "characters, no spaces)");
        if (!(b->callback_url = strdup(cb->valuestring)))
            return refuse(b, "", "out of memory");
    }
    if (!check_options(cJSON_GetObjectItemCaseSensitive(body, "options"), b))
        return 0;
    b->jobs = calloc((size_t)n, sizeof *b->jobs);
    b->job_ids = calloc((size_t)n, sizeof *b->job_ids);
    if (!b->jobs || !b->job_ids)
        return refuse(b, "", "out of memory");
    b->n = n;
    int i = 0;
    cJSON_ArrayForEach(it, slides)
    {
        if (!check_slide(svc, db, tok, it, i, &b->jobs[i], b))
            return 0;
        i++;
    }
    return 1;
}
