/* IIIF Image API 3.0, compliance level 1, over a job's slide (GET /iiif/3/{id},
 * /iiif/3/{id}/info.json, /iiif/3/{id}/{region}/{size}/{rotation}/{quality}.{format}), for
 * viewers other than the Deep Zoom one (Mirador, OpenSeadragon's IIIF source, QuPath's IIIF
 * import). Level 1 is: regions full, square and x,y,w,h in pixels; sizes max, w,, ,h and w,h
 * (no upscaling); rotation 0; quality default or color; format jpg. Anything else is refused
 * with 400 naming the parameter. Pixels come from the slide level that is just fine enough, then
 * Lanczos-resampled (server/tile_resample.h), and the answers share the tile cache. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/api.h"
#include "server/api_tiles.h"
#include "server/jpeg_encode.h"
#include "server/service_internal.h"
#include "server/tile_resample.h"

#define IIIF_TILE 512
/* The largest image side one request may ask for, and the most slide pixels it may read. */
#define IIIF_MAX_SIDE 4096
#define IIIF_MAX_READ (64LL * 1024 * 1024)

/* The absolute base URI of the image service: scheme and the request's Host (checked to be a
 * host name or address with a port, so nothing else lands in the JSON). 0 ok. */
static int base_uri(hp_request *r, char *out, size_t n)
{
    const char *host = hp_request_header(r, "Host");
    if (!host || !*host || strlen(host) > 255)
        return -1;
    for (const char *p = host; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]", *p))
            return -1;
    snprintf(out, n, "%s://%s/iiif/3/%s", r->svc->tls ? "https" : "http", host, r->params[0]);
    return 0;
}

void hp_api_iiif_base(hp_request *r)
{
    char base[512], loc[600];
    if (base_uri(r, base, sizeof base) != 0) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "Host", "the Host header is missing or malformed");
        return;
    }
    hp_pooled_slide *s = hp_tiles_open(r, NULL); /* 404 for a job that is not there or not this token's */
    if (!s)
        return;
    hp_slide_pool_release(r->svc->slides, s);
    snprintf(loc, sizeof loc, "%s/info.json", base);
    hp_respond_header(r, "Location", loc);
    hp_respond_text(r, 303, NULL, "", 0);
}

void hp_api_iiif_info(hp_request *r)
{
    char base[512];
    if (base_uri(r, base, sizeof base) != 0) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "Host", "the Host header is missing or malformed");
        return;
    }
    hp_pooled_slide *s = hp_tiles_open(r, NULL);
    if (!s)
        return;
    int64_t w = s->dz.lw[0], h = s->dz.lh[0];
    hp_slide_pool_release(r->svc->slides, s);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "@context", "http://iiif.io/api/image/3/context.json");
    cJSON_AddStringToObject(o, "id", base);
    cJSON_AddStringToObject(o, "type", "ImageService3");
    cJSON_AddStringToObject(o, "protocol", "http://iiif.io/api/image");
    cJSON_AddStringToObject(o, "profile", "level1");
    cJSON_AddNumberToObject(o, "width", (double)w);
    cJSON_AddNumberToObject(o, "height", (double)h);
    cJSON_AddNumberToObject(o, "maxWidth", IIIF_MAX_SIDE);
    cJSON_AddNumberToObject(o, "maxHeight", IIIF_MAX_SIDE);
    cJSON *tiles = cJSON_AddArrayToObject(o, "tiles"), *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "width", IIIF_TILE);
    cJSON_AddNumberToObject(t, "height", IIIF_TILE);
    cJSON *sf = cJSON_AddArrayToObject(t, "scaleFactors");
    /* Down to the factor at which the whole image fits in one tile. */
    for (int64_t f = 1;; f *= 2) {
        cJSON_AddItemToArray(sf, cJSON_CreateNumber((double)f));
        if ((w + f - 1) / f <= IIIF_TILE && (h + f - 1) / f <= IIIF_TILE)
            break;
    }
    cJSON_AddItemToArray(tiles, t);
    cJSON *sizes = cJSON_AddArrayToObject(o, "sizes");
    for (int64_t f = 1; f <= (1 << 20); f *= 2) {
        int64_t sw = (w + f - 1) / f, sh = (h + f - 1) / f;
        if (sw <= IIIF_MAX_SIDE && sh <= IIIF_MAX_SIDE) {
            cJSON *z = cJSON_CreateObject();
            cJSON_AddNumberToObject(z, "width", (double)sw);
            cJSON_AddNumberToObject(z, "height", (double)sh);
            cJSON_AddItemToArray(sizes, z);
        }
        if (sw <= 256 && sh <= 256)
            break;
    }
    cJSON_AddItemToArray(cJSON_AddArrayToObject(o, "extraQualities"), cJSON_CreateString("color"));
    hp_respond_header(r, "Cache-Control", "private, no-cache");
    hp_respond_json(r, 200, o);
    /* The IIIF rules ask for the JSON-LD media type with the context as profile. */
    r->content_type = "application/ld+json;profile=\"http://iiif.io/api/image/3/context.json\"";
}

/* "a,b,c,d" of decimal numbers: 0 ok. */
static int parse4(const char *s, int64_t v[4])
{
    const char *p = s;
    for (int i = 0; i < 4; i++) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if ((i < 3) != (e != NULL) || hp_tiles_parse_uint(p, len, &v[i]) != 0)
            return -1;
        p = e ? e + 1 : p + len;
    }
    return 0;
}

static int bad(hp_request *r, const char *field, const char *msg)
{
    hp_respond_problem(r, HP_PROB_BAD_REQUEST, field, "%s", msg);
    return -1;
}

/* The region and size parameters against the image: 0 ok (x, y, w, h and out_w, out_h set). */
static int parse_request(hp_request *r, int64_t iw, int64_t ih, int64_t reg[4], int *ow, int *oh)
{
    const char *region = r->params[1], *size = r->params[2];
    if (!strcmp(region, "full")) {
        reg[0] = reg[1] = 0, reg[2] = iw, reg[3] = ih;
    } else if (!strcmp(region, "square")) {
        int64_t m = iw < ih ? iw : ih;
        reg[0] = (iw - m) / 2, reg[1] = (ih - m) / 2, reg[2] = reg[3] = m;
    } else if (parse4(region, reg) == 0) {
        if (reg[2] == 0 || reg[3] == 0 || reg[0] >= iw || reg[1] >= ih)
            return bad(r, "region", "the region is empty or lies outside the image");
        /* A region reaching past the image is cropped to it (the IIIF rule). */
        if (reg[0] + reg[2] > iw)
            reg[2] = iw - reg[0];
        if (reg[1] + reg[3] > ih)
            reg[3] = ih - reg[1];
    } else {
        return bad(r, "region", "region is full, square or x,y,w,h in pixels (level 1)");
    }
    int64_t w, h;
    const char *comma = strchr(size, ',');
    if (!strcmp(size, "max")) {
        w = reg[2], h = reg[3];
        if (w > IIIF_MAX_SIDE || h > IIIF_MAX_SIDE) { /* max honours maxWidth/maxHeight */
            double f = fmax((double)w / IIIF_MAX_SIDE, (double)h / IIIF_MAX_SIDE);
            w = (int64_t)fmax(1, floor(w / f)), h = (int64_t)fmax(1, floor(h / f));
        }
    } else if (size[0] == '^') {
        return bad(r, "size", "upscaling (^) is not supported by this level 1 service");
    } else if (!comma) {
        return bad(r, "size", "size is max, w,, ,h or w,h (level 1)");
    } else {
        size_t lw = (size_t)(comma - size), lh = strlen(comma + 1);
        int64_t a = 0, b = 0;
        if ((lw && hp_tiles_parse_uint(size, lw, &a) != 0) ||
            (lh && hp_tiles_parse_uint(comma + 1, lh, &b) != 0) || (!lw && !lh))
            return bad(r, "size", "size is max, w,, ,h or w,h (level 1)");
        /* w, and ,h keep the region's aspect ratio (rounded as the IIIF examples do). */
        w = lw ? a : (int64_t)llround((double)b * reg[2] / reg[3]);
        h = lh ? b : (int64_t)llround((double)a * reg[3] / reg[2]);
        if (w < 1 || h < 1)
            return bad(r, "size", "the size is zero");
        if (w > reg[2] || h > reg[3])
            return bad(r, "size", "the size is larger than the region (upscaling needs ^, "
                                  "which this level 1 service does not support)");
        if (w > IIIF_MAX_SIDE || h > IIIF_MAX_SIDE)
            return bad(r, "size", "the size is over maxWidth/maxHeight (4096)");
    }
    if (strcmp(r->params[3], "0") != 0)
        return bad(r, "rotation", "rotation is 0 (level 1)");
    if (strcmp(r->params[4], "default.jpg") != 0 && strcmp(r->params[4], "color.jpg") != 0)
        return bad(r, "quality", "quality.format is default.jpg or color.jpg");
    *ow = (int)w, *oh = (int)h;
    return 0;
}

/* Reads the region at the coarsest level that still has at least the output's resolution and
 * resamples it to ow x oh. *px malloc'd. */
static hp_status render(hp_pooled_slide *s, const int64_t reg[4], int ow, int oh, uint8_t **px)
{
    double d = fmin((double)reg[2] / ow, (double)reg[3] / oh);
    int lvl = 0;
    for (int i = 1; i < s->dz.n_slide_levels; i++)
        if (s->dz.ldown[i] <= d)
            lvl = i;
    double ld = s->dz.ldown[lvl];
    int64_t lw = (int64_t)ceil(reg[2] / ld), lh = (int64_t)ceil(reg[3] / ld);
    if (lw < 1)
        lw = 1;
    if (lh < 1)
        lh = 1;
    if (lw * lh > IIIF_MAX_READ)
        return HP_ERR_UNSUPPORTED;
    uint8_t *raw = malloc((size_t)(lw * lh * 3)), *out = malloc((size_t)ow * oh * 3);
    hp_status st = HP_ERR_NOMEM;
    if (!raw || !out)
        goto fail;
    if ((st = hp_slide_read_region(s->slide, lvl, reg[0], reg[1], (int)lw, (int)lh, raw)) != HP_OK)
        goto fail;
    if ((st = hp_resample_thumbnail(raw, (int)lw, (int)lh, 3, out, ow, oh)) != HP_OK)
        goto fail;
    free(raw);
    *px = out;
    return HP_OK;
fail:
    free(raw);
    free(out);
    return st;
}

void hp_api_iiif_image(hp_request *r)
{
    hp_pooled_slide *s = hp_tiles_open(r, NULL);
    if (!s)
        return;
    int64_t reg[4];
    int ow, oh;
    if (parse_request(r, s->dz.lw[0], s->dz.lh[0], reg, &ow, &oh) != 0) {
        hp_slide_pool_release(r->svc->slides, s);
        return;
    }
    char key[400], etag[40];
    snprintf(key, sizeof key, "%s/iiif/%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 "/%d,%d",
             r->params[0], reg[0], reg[1], reg[2], reg[3], ow, oh);
    uint8_t *jpg = NULL, *px = NULL;
    size_t n = 0;
    if (hp_tile_cache_get(r->svc->tiles, key, &jpg, &n, etag)) {
        hp_slide_pool_release(r->svc->slides, s);
        hp_tiles_respond(r, "image/jpeg", jpg, n, etag);
        return;
    }
    hp_status st = render(s, reg, ow, oh, &px);
    hp_slide_pool_release(r->svc->slides, s);
    if (st == HP_ERR_UNSUPPORTED) {
        hp_respond_problem(r, HP_PROB_BAD_REQUEST, "size",
                           "this region at this size would read more than %lld slide pixels; "
                           "ask for a smaller region or a smaller size",
                           (long long)IIIF_MAX_READ);
        return;
    }
    if (st == HP_OK)
        st = hp_jpeg_encode(px, ow, oh, 3, HP_TILE_JPEG_QUALITY, &jpg, &n);
    free(px);
    if (st != HP_OK) {
        hp_respond_problem(r, HP_PROB_UNAVAILABLE, NULL, "the region could not be read from the slide");
        return;
    }
    hp_tiles_etag(jpg, n, etag);
    hp_tile_cache_put(r->svc->tiles, key, jpg, n, etag);
    hp_tiles_respond(r, "image/jpeg", jpg, n, etag);
}
