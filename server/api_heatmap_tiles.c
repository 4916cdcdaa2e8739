/* Heatmap layers as Deep Zoom, aligned with the slide's own Deep Zoom image (same size, levels
 * and tiles), for the viewer's overlays:
 *
 *   GET /v1/slides/{id}/heatmaps                           the layers (JSON)
 *   GET /v1/slides/{id}/heatmaps/{layer}.dzi               Format="png"
 *   GET /v1/slides/{id}/heatmaps/{layer}_files/{level}/{col}_{row}.png
 *
 * A tile is 8-bit grey and alpha: grey is the layer's value at each pixel's centre, round(255 x
 * probability) of the analysed tile under it (server/heatmap_grid.h), alpha 255 there and 0
 * where nothing was analysed. Colour, opacity and threshold are the browser's business, so
 * changing them needs no new request. The values come from the job's tiles.csv, so the job must
 * have succeeded (409 before). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/api_tiles.h"
#include "server/heatmap_grid.h"
#include "server/png_encode.h"
#include "server/service_internal.h"

/* The slide and the job's layers, or NULL (answered). */
static hp_pooled_slide *open_layers(hp_request *r, const hp_heatmap_layers **hl)
{
    hp_job_row j;
    hp_pooled_slide *s = hp_tiles_open(r, &j);
    if (!s)
        return NULL;
    if (strcmp(j.state, "succeeded") != 0 || !j.result_dir) {
        hp_respond_problem(r, HP_PROB_CONFLICT, NULL,
                           "the job is %s; heatmaps exist once it has succeeded", j.state);
        goto fail;
    }
    char csv[PATH_MAX];
    hp_service_path(r->svc, csv, sizeof csv, "%s/tiles.csv", j.result_dir);
    hp_error err = {0};
    if (!(*hl = hp_heatmap_cache_acquire(r->svc->heatmaps, j.id, csv, &err))) {
        fprintf(stderr, "heatmaps: job %s: %s\n", j.id, err.msg);
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the job's tile probabilities cannot be read");
        goto fail;
    }
    hp_job_row_free(&j);
    return s;
fail:
    hp_job_row_free(&j);
    hp_slide_pool_release(r->svc->slides, s);
    return NULL;
}

static void done(hp_request *r, hp_pooled_slide *s, const hp_heatmap_layers *hl)
{
    hp_heatmap_cache_release(r->svc->heatmaps, hl);
    hp_slide_pool_release(r->svc->slides, s);
}

static int find_layer(hp_request *r, const hp_heatmap_layers *hl, const char *name)
{
    int k = hp_heatmap_layer(hl, name);
    if (k < 0)
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no such layer (GET /v1/slides/{id}/heatmaps lists them)");
    return k;
}

void hp_api_heatmap_list(hp_request *r)
{
    const hp_heatmap_layers *hl;
    hp_pooled_slide *s = open_layers(r, &hl);
    if (!s)
        return;
    cJSON *o = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(o, "layers");
    for (int k = 0; k < hl->n_layers; k++) {
        cJSON *l = cJSON_CreateObject();
        cJSON_AddStringToObject(l, "name", hl->names[k]);
        const char *nm = hl->names[k];
        cJSON_AddStringToObject(l, "kind", !strcmp(nm, "tissue")           ? "mask"
                                           : !strcmp(nm, "uncertainty")    ? "uncertainty"
                                           : !strcmp(nm, "super-resolved") ? "super-resolved"
                                                                           : "class");
        cJSON_AddItemToArray(a, l);
    }
    cJSON_AddNumberToObject(o, "cell_size_level0", hl->size);
    cJSON_AddNumberToObject(o, "width", (double)s->dz.lw[0]);
    cJSON_AddNumberToObject(o, "height", (double)s->dz.lh[0]);
    if (s->mpp_x > 0)
        cJSON_AddNumberToObject(o, "mpp", s->mpp_x);
    else
        cJSON_AddNullToObject(o, "mpp");
    done(r, s, hl);
    hp_respond_header(r, "Cache-Control", "private, no-cache");
    hp_respond_json(r, 200, o);
}

void hp_api_heatmap_dzi(hp_request *r)
{
    const hp_heatmap_layers *hl;
    hp_pooled_slide *s = open_layers(r, &hl);
    if (!s)
        return;
    if (find_layer(r, hl, r->params[1]) >= 0) {
        char xml[512];
        int n = snprintf(xml, sizeof xml,
                         "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                         "<Image xmlns=\"http://schemas.microsoft.com/deepzoom/2008\" "
                         "Format=\"png\" Overlap=\"%d\" TileSize=\"%d\"><Size Height=\"%" PRId64
                         "\" Width=\"%" PRId64 "\"/></Image>\n",
                         s->dz.overlap, s->dz.tile, s->dz.lh[0], s->dz.lw[0]);
        hp_respond_header(r, "Cache-Control", "private, no-cache");
        hp_respond_text(r, 200, "application/xml", xml, (size_t)n);
    }
    done(r, s, hl);
}

/* "{col}_{row}.png" */
static int parse_png_address(const char *s, int64_t *col, int64_t *row)
{
    const char *us = strchr(s, '_'), *dot = strrchr(s, '.');
    if (!us || !dot || dot < us || strcmp(dot, ".png") != 0)
        return -1;
    if (hp_tiles_parse_uint(s, (size_t)(us - s), col) != 0 ||
        hp_tiles_parse_uint(us + 1, (size_t)(dot - us - 1), row) != 0)
        return -1;
    return 0;
}

void hp_api_heatmap_tile(hp_request *r)
{
    int64_t level, col, row;
    if (hp_tiles_parse_uint(r->params[2], strlen(r->params[2]), &level) != 0 ||
        parse_png_address(r->params[3], &col, &row) != 0) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL,
                           "no such tile (heatmap tiles are {level}/{col}_{row}.png, numbers only)");
        return;
    }
    const hp_heatmap_layers *hl;
    hp_pooled_slide *s = open_layers(r, &hl);
    if (!s)
        return;
    int k = find_layer(r, hl, r->params[1]);
    const hp_dz_layout *L = &s->dz;
    if (k < 0)
        goto out;
    if (level >= L->n_levels || col >= L->cols[level] || row >= L->rows[level]) {
        hp_respond_problem(r, HP_PROB_NOT_FOUND, NULL, "no such tile at this level");
        goto out;
    }
    char key[400], etag[40];
    snprintf(key, sizeof key, "%s/hm/%s/%" PRId64 "/%" PRId64 "_%" PRId64, r->params[0],
             r->params[1], level, col, row);
    uint8_t *png = NULL;
    size_t n = 0;
    if (hp_tile_cache_get(r->svc->tiles, key, &png, &n, etag)) {
        hp_tiles_respond(r, "image/png", png, n, etag);
        goto out;
    }
    /* The tile's pixels in Deep Zoom level coordinates, as the slide's tile (overlap included). */
    int tl_x = col ? L->overlap : 0, tl_y = row ? L->overlap : 0;
    int br_x = col < L->cols[level] - 1 ? L->overlap : 0, br_y = row < L->rows[level] - 1 ? L->overlap : 0;
    int64_t zx0 = col * L->tile - tl_x, zy0 = row * L->tile - tl_y;
    int64_t rw = L->w[level] - col * L->tile, rh = L->h[level] - row * L->tile;
    int w = (int)((rw < L->tile ? rw : L->tile) + tl_x + br_x);
    int h = (int)((rh < L->tile ? rh : L->tile) + tl_y + br_y);
    /* A Deep Zoom pixel of this level is `down` level-0 pixels (the level's size is rounded up
     * at each halving, so the exact ratio, not the power of two). */
    double dx = (double)L->w[L->n_levels - 1] / L->w[level];
    double dy = (double)L->h[L->n_levels - 1] / L->h[level];
    uint8_t *px = malloc((size_t)w * h * 2);
    if (!px) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "out of memory");
        goto out;
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float v = hp_heatmap_at(hl, k, (zx0 + x + 0.5) * dx, (zy0 + y + 0.5) * dy);
            uint8_t *o = px + ((size_t)y * w + x) * 2;
            if (isnan(v))
                o[0] = 0, o[1] = 0;
            else
                o[0] = (uint8_t)lrint((double)v * 255.0), o[1] = 255;
        }
    hp_status st = hp_png_encode_ga(px, w, h, &png, &n);
    free(px);
    if (st != HP_OK) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the heatmap tile could not be encoded");
        goto out;
    }
    hp_tiles_etag(png, n, etag);
    hp_tile_cache_put(r->svc->tiles, key, png, n, etag);
    hp_tiles_respond(r, "image/png", png, n, etag);
out:
    done(r, s, hl);
}
