/* The tile server: a job's slide as Deep Zoom (GET /v1/slides/{id}.dzi and
 * /v1/slides/{id}_files/{level}/{col}_{row}.jpeg) and as IIIF Image API 3.0 level 1
 * (server/api_iiif.c). {id} is the id of the job that analyzed the slide, so no URL carries a
 * file name, and the same rule as for the job's results decides who may see it (a submitter its
 * own jobs, a pathologist all). Tiles are OpenSlide's deep zoom tiles (server/deepzoom.h), kept
 * encoded in the tile cache (server/tile_cache.h); their ETag is a hash of their bytes. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/api_tiles.h"
#include "server/jpeg_encode.h"
#include "server/service_internal.h"
#include "server/tile_resample.h"

/* Tiles hold tissue of a patient: browsers may keep them, shared caches may not. */
#define TILE_CACHE_CONTROL "private, max-age=86400"

/* The slide file of a job: an upload under the data folder, or a path that must still resolve
 * inside a slide root (the workers' rule: a symbolic link must not lead out of the roots). */
static int slide_file(hp_service *svc, const hp_job_row *j, char *out, size_t n)
{
    if (!strcmp(j->source, "upload"))
        return hp_service_path(svc, out, n, "uploads/%s", j->slide_path) == 0 ? 0 : -1;
    char real[PATH_MAX];
    if (!realpath(j->slide_path, real))
        return -1;
    for (int k = 0; k < svc->n_roots; k++) {
        size_t rl = strlen(svc->roots[k]);
        if (!strncmp(real, svc->roots[k], rl) && (real[rl] == '/' || rl == 1)) {
            snprintf(out, n, "%s", real);
            return 0;
        }
    }
    return -1;
}

hp_pooled_slide *hp_tiles_open(hp_request *r, hp_job_row *job)
{
    hp_db *db = hp_api_db(r);
    if (!db)
        return NULL;
    hp_job_row j;
    int ok = hp_api_load_job(r, db, &j);
    hp_api_db_done(r, db);
    if (!ok)
        return NULL;
    char path[PATH_MAX];
    hp_error err = {0};
    hp_pooled_slide *s = NULL;
    if (slide_file(r->svc, &j, path, sizeof path) == 0)
        s = hp_slide_pool_acquire(r->svc->slides, j.id, path, &err);
    if (!s) {
        /* The cause names the file, which no log line or answer may carry. */
        fprintf(stderr, "tiles: job %s: the slide cannot be opened (%s)\n", j.id,
                hp_status_name(err.code ? err.code : HP_ERR_IO));
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "the slide of this job can no longer be read");
    }
    if (s && job)
        *job = j;
    else
        hp_job_row_free(&j);
    return s;
}

void hp_tiles_etag(const uint8_t *data, size_t n, char etag[40])
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    snprintf(etag, 40, "\"%016" PRIx64 "\"", h);
}

void hp_tiles_respond(hp_request *r, const char *content_type, uint8_t *data, size_t n,
                      const char *etag)
{
    hp_respond_header(r, "ETag", etag);
    hp_respond_header(r, "Cache-Control", TILE_CACHE_CONTROL);
    const char *inm = hp_request_header(r, "If-None-Match");
    if (inm && (strstr(inm, etag) || !strcmp(inm, "*"))) {
        free(data);
        hp_respond_text(r, 304, NULL, "", 0);
        return;
    }
    hp_respond_text(r, 200, content_type, (const char *)data, n);
    free(data);
}

/* Digits only, no sign, no leading junk, at most 9 of them. */
int hp_tiles_parse_uint(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 9)
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

void hp_api_slide_dzi(hp_request *r)
{
    hp_pooled_slide *s = hp_tiles_open(r, NULL);
    if (!s)
        return;
    char xml[512];
    int n = snprintf(xml, sizeof xml,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                     "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" Format=\"jpeg\" "
                     "Overlap=\"%d\" TileSize=\"%d\"><Size Height=\"%" PRId64 "\" Width=\"%" PRId64
                     "\"/></Image>\n",
                     s->dz.overlap, s->dz.tile, s->dz.lh[0], s->dz.lw[0]);
    hp_slide_pool_release(r->svc->slides, s);
    hp_respond_header(r, "Cache-Control", "private, no-cache");
    hp_respond_text(r, 200, "application/xml", xml, (size_t)n);
}

/* The pixels of one Deep Zoom tile, exactly as openslide.deepzoom's get_tile makes them.
 * *px (w x h RGB) is malloc'd. */
hp_status hp_tiles_render_dz(hp_pooled_slide *s, const hp_dz_tile *t, uint8_t **px, int *w,
                             int *h)
{
    uint8_t *raw = malloc((size_t)t->lw * t->lh * 3);
    if (!raw)
        return HP_ERR_NOMEM;
    hp_status st = hp_slide_read_region(s->slide, t->slide_level, t->x0, t->y0, t->lw, t->lh, raw);
    if (st != HP_OK) {
        free(raw);
        return st;
    }
    if (t->lw == t->zw && t->lh == t->zh) {
        *px = raw, *w = t->lw, *h = t->lh;
        return HP_OK;
    }
    int ow, oh;
    hp_resample_thumbnail_size(t->lw, t->lh, t->zw, t->zh, &ow, &oh);
    uint8_t *out = malloc((size_t)ow * oh * 3);
    if (!out) {
        free(raw);
        return HP_ERR_NOMEM;
    }
    st = hp_resample_thumbnail(raw, t->lw, t->lh, 3, out, ow, oh);
    free(raw);
    if (st != HP_OK) {
        free(out);
        return st;
    }
    *px = out, *w = ow, *h = oh;
    return HP_OK;
}

/* "{col}_{row}.jpeg" */
int hp_tiles_parse_address(const char *s, int64_t *col, int64_t *row)
{
    const char *us = strchr(s, '_'), *dot = strrchr(s, '.');
    if (!us || !dot || dot < us || strcmp(dot, ".jpeg") != 0)
        return -1;
    if (hp_tiles_parse_uint(s, (size_t)(us - s), col) != 0 ||
        hp_tiles_parse_uint(us + 1, (size_t)(dot - us - 1), row) != 0)
        return -1;
    return 0;
}

void hp_api_slide_tile(hp_request *r)
{
    int64_t level, col, row;
    if (hp_tiles_parse_uint(r->params[1], strlen(r->params[1]), &level) != 0 ||
        hp_tiles_parse_address(r->params[2], &col, &row) != 0) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no such tile (tiles are {level}/{col}_{row}.jpeg, numbers only)");
        return;
    }
    hp_pooled_slide *s = hp_tiles_open(r, NULL);
    if (!s)
        return;
    hp_dz_tile t;
    if (level >= s->dz.n_levels || hp_dz_tile_info(&s->dz, (int)level, col, row, &t) != 0) {
        int nl = s->dz.n_levels;
        hp_slide_pool_release(r->svc->slides, s);
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no tile %" PRId64 "_%" PRId64 " at level %" PRId64
                           " (the slide has levels 0..%d)", col, row, level, nl - 1);
        return;
    }
    char key[400], etag[40];
    snprintf(key, sizeof key, "%s/dz/%" PRId64 "/%" PRId64 "_%" PRId64, r->params[0], level, col,
             row);
    uint8_t *jpg = NULL;
    size_t n = 0;
    if (hp_tile_cache_get(r->svc->tiles, key, &jpg, &n, etag)) {
        hp_slide_pool_release(r->svc->slides, s);
        hp_tiles_respond(r, "image/jpeg", jpg, n, etag);
        return;
    }
    uint8_t *px = NULL;
    int w = 0, h = 0;
    hp_status st = hp_tiles_render_dz(s, &t, &px, &w, &h);
    if (st != HP_OK)
        fprintf(stderr, "tiles: job %s: a tile could not be read (%s)\n", r->params[0],
                hp_status_name(st));
    hp_slide_pool_release(r->svc->slides, s);
    if (st == HP_OK)
        st = hp_jpeg_encode(px, w, h, 3, HP_TILE_JPEG_QUALITY, &jpg, &n);
    free(px);
    if (st != HP_OK) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the tile could not be read from the slide");
        return;
    }
    hp_tiles_etag(jpg, n, etag);
    hp_tile_cache_put(r->svc->tiles, key, jpg, n, etag);
    hp_tiles_respond(r, "image/jpeg", jpg, n, etag);
}
