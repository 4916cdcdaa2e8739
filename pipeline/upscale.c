/* Super-resolution of a slide, band by band (see the header). The stages: the model and its
 * geometry; the source (region, MPP, hash); the writer with the provenance; the bands. */
#include "pipeline/upscale.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"
#include "io/slide.h"
#include "io/sr_provenance.h"
#include "io/tiff_pyramid_writer.h"
#include "models/card.h"
#include "models/graph.h"
#include "models/model.h"

#define DEFAULT_TILE 128
#define DEFAULT_HALO 8
#define DEFAULT_QUALITY 90
#define DEFAULT_BATCH 8

typedef struct {
    const hp_upscale_options *o;
    hp_error *err;
    const hp_card *card;
    int scale, tile, halo, side; /* side = tile + 2 halo: the model's input */
    int batch;
    hp_slide *slide;
    int64_t x0, y0, w, h;        /* the region, level 0 */
    int cols;                    /* tiles across the region */
    int read_w;                  /* input pixels read across a band: cols tiles and two halos */
    double mpp;
    char slide_sha[65];
    hp_tiff_pyramid *out;
    uint8_t *band_in;            /* read_w x side RGB */
    uint8_t *band_out;           /* w scale x tile scale RGB */
    float *in, *res;             /* batch model inputs and outputs */
} upscale_ctx;

/* The model is a super-resolution model whose input is RGB; the tile size follows a fixed
 * input, or the options for a fully convolutional one. */
static hp_status stage_model(upscale_ctx *c)
{
    const char *M = c->o->model_path ? c->o->model_path : "the model";
    c->card = hp_model_card(c->o->model);
    if (!c->card || c->card->task != HP_TASK_SUPER_RESOLUTION)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "%s: the model is not a super-resolution model: its card (model.card.json) must say "
                            "\"task\": \"super-resolution\" and its \"scale\"",
                            M);
    c->scale = c->card->scale;
    c->halo = c->o->halo > 0 ? c->o->halo : DEFAULT_HALO;
    c->batch = c->o->batch > 0 ? c->o->batch : DEFAULT_BATCH;
    const hp_graph *g = hp_model_graph(c->o->model);
    int ch, ih, iw;
    hp_model_input_shape(c->o->model, &ch, &ih, &iw);
    if (ch != 3)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "%s: the model's input is not RGB (NCHW with 3 channels)", M);
    if (ih > 0 && iw > 0) { /* a fixed input */
        if (ih != iw || ih <= 2 * c->halo)
            return hp_error_set(c->err, HP_ERR_UNSUPPORTED,
                                "%s: the model's fixed input %dx%d is not square or leaves no room inside a halo of %d",
                                M, ih, iw, c->halo);
        c->side = ih;
        c->tile = ih - 2 * c->halo;
    } else {
        c->tile = c->o->tile > 0 ? c->o->tile : DEFAULT_TILE;
        c->side = c->tile + 2 * c->halo;
        int64_t dims[4] = {1, 3, c->side, c->side};
        if (g->n_inputs != 1 || hp_model_set_input_shape(c->o->model, g->values[g->inputs[0]].name, 4, dims) != HP_OK)
            return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_model_error(c->o->model));
    }
    /* The writer's tiles are the output tiles: a multiple of 16 from 64 to 2048. */
    int out_tile = c->tile * c->scale;
    if (out_tile % 16 || out_tile < 64 || out_tile > 2048)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "tile %d x scale %d gives %d output pixels a tile; that must be a multiple of 16 "
                            "from 64 to 2048 (--tile)",
                            c->tile, c->scale, out_tile);
    if (hp_model_instantiate(c->o->model, c->batch) != HP_OK)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_model_error(c->o->model));
    int64_t want = (int64_t)3 * c->side * c->scale * c->side * c->scale;
    if (hp_model_output_size(c->o->model, 0) != want)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "%s: the model gives %lld values a tile, not an RGB tile %d times larger (%lld): its card's "
                            "scale (%d) does not match the model",
                            M, (long long)hp_model_output_size(c->o->model, 0), c->scale, (long long)want, c->scale);
    return HP_OK;
}

/* The slide, the region, its MPP and the slide file's hash. */
static hp_status stage_source(upscale_ctx *c)
{
    const hp_upscale_options *o = c->o;
    hp_slide_options so = {.mpp = o->mpp};
    if (!(c->slide = hp_slide_open(o->slide_path, &so, c->err)))
        return c->err->code ? c->err->code : HP_ERR_IO;
    int64_t W, H;
    if (hp_slide_level_dimensions(c->slide, 0, &W, &H) != HP_OK)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_slide_error(c->slide));
    c->x0 = o->roi_w ? o->roi_x : 0, c->y0 = o->roi_w ? o->roi_y : 0;
    c->w = o->roi_w ? o->roi_w : W, c->h = o->roi_w ? o->roi_h : H;
    if (c->x0 < 0 || c->y0 < 0 || c->w < 1 || c->h < 1 || c->x0 + c->w > W || c->y0 + c->h > H)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "the region %lld,%lld,%lld,%lld is not inside the slide's level 0 (%lld x %lld)",
                            (long long)c->x0, (long long)c->y0, (long long)c->w, (long long)c->h, (long long)W,
                            (long long)H);
    double my;
    if (hp_slide_mpp(c->slide, &c->mpp, &my, NULL) != HP_OK)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_slide_error(c->slide));
    if (hp_upscale_is_derived(c->slide))
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "%s is itself super-resolved (not a scanned image): super-resolve the scanned slide",
                            o->slide_path);
    return hp_sha256_file(o->slide_path, c->slide_sha, c->err);
}

/* A card's text as one description field's value: '|' separates the fields and OpenSlide keeps
 * the last of two equal keys, so a model named "x|SuperResolved = no" would otherwise pass the
 * file off as a scan. '|' becomes '/', line breaks spaces. */
static void field_value(const char *in, char *out, size_t size)
{
    snprintf(out, size, "%s", in ? in : "");
    for (char *p = out; *p; p++)
        if (*p == '|')
            *p = '/';
        else if (*p == '\n' || *p == '\r')
            *p = ' ';
}

/* The writer, whose description carries the provenance OpenSlide shows as aperio.* properties. */
static hp_status stage_writer(upscale_ctx *c)
{
    char extra[1024], name[256], version[64];
    const hp_card *k = c->card;
    field_value(k->name, name, sizeof name);
    field_value(k->version, version, sizeof version);
    snprintf(extra, sizeof extra,
             "|SuperResolved = " HP_SR_FLAG_SUPER_RESOLVED "|SourceSHA256 = %s|SourceRegion = %lld,%lld,%lld,%lld"
             "|SourceMPP = %.6g|SRModel = %s %s|SRModelSHA256 = %s|SRScale = %d|SRPrecision = %s%s",
             c->slide_sha, (long long)c->x0, (long long)c->y0, (long long)c->w, (long long)c->h, c->mpp, name,
             version, c->o->model_sha256 ? c->o->model_sha256 : "unknown", c->scale,
             hp_precision_name(hp_model_precision(c->o->model)), k->generative ? "|SRGenerative = " HP_SR_FLAG_GENERATIVE : "");
    hp_tiff_pyramid_options po = {.width = c->w * c->scale,
                                  .height = c->h * c->scale,
                                  .tile = c->tile * c->scale,
                                  .quality = c->o->quality > 0 ? c->o->quality : DEFAULT_QUALITY,
                                  .mpp = c->mpp / c->scale,
                                  .downsample = 2,
                                  .min_side = 1024,
                                  .description_extra = extra,
                                  .chroma_full = 1,
                                  .software = "histoplan-upscale"};
    hp_status st = hp_tiff_pyramid_create(c->o->out_path, &po, &c->out, c->err);
    if (st)
        return st;
    c->cols = (int)((c->w + c->tile - 1) / c->tile);
    c->read_w = c->cols * c->tile + 2 * c->halo;
    size_t out_w = (size_t)(c->w * c->scale);
    size_t item_in = (size_t)3 * c->side * c->side, item_out = item_in * c->scale * c->scale;
    c->band_in = malloc((size_t)c->read_w * c->side * 3);
    c->band_out = malloc(out_w * c->tile * c->scale * 3);
    c->in = malloc(item_in * c->batch * sizeof *c->in);
    c->res = malloc(item_out * c->batch * sizeof *c->res);
    if (!c->band_in || !c->band_out || !c->in || !c->res)
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory for a band of %lld pixels", (long long)c->w);
    return HP_OK;
}

/* Tile t of the band's input (with its halo) into batch slot b, as NCHW 0..1. */
static void tile_in(upscale_ctx *c, int t, int b)
{
    size_t plane = (size_t)c->side * c->side;
    float *dst = c->in + (size_t)b * 3 * plane;
    for (int y = 0; y < c->side; y++) {
        const uint8_t *row = c->band_in + ((size_t)y * c->read_w + (size_t)t * c->tile) * 3;
        for (int x = 0; x < c->side; x++)
            for (int ch = 0; ch < 3; ch++)
                dst[ch * plane + (size_t)y * c->side + x] = row[x * 3 + ch] * (1.0f / 255);
    }
}

/* Batch slot b's output, its halo cut off, into tile t of the output band. */
static void tile_out(upscale_ctx *c, int t, int b)
{
    int S = c->side * c->scale, cut = c->halo * c->scale, T = c->tile * c->scale;
    size_t plane = (size_t)S * S, out_w = (size_t)(c->w * c->scale);
    const float *src = c->res + (size_t)b * 3 * plane;
    int64_t x_end = c->w * c->scale - (int64_t)t * T;
    int cols = x_end < T ? (int)x_end : T;
    for (int y = 0; y < T; y++) {
        uint8_t *row = c->band_out + ((size_t)y * out_w + (size_t)t * T) * 3;
        for (int x = 0; x < cols; x++)
            for (int ch = 0; ch < 3; ch++) {
                float v = src[ch * plane + (size_t)(y + cut) * S + (x + cut)] * 255.0f + 0.5f;
                row[x * 3 + ch] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
    }
}

/* One band: the input rows with their halo, the tiles through the model, the output rows. */
static hp_status do_band(upscale_ctx *c, int64_t j, long *done, long total)
{
    /* Past the slide the reader gives white; past the region it gives the slide's own pixels,
     * so a region's edges are computed as inside the slide. */
    if (hp_slide_read_region(c->slide, 0, c->x0 - c->halo, c->y0 + j * c->tile - c->halo, c->read_w, c->side,
                             c->band_in) != HP_OK)
        return hp_error_set(c->err, HP_ERR_IO, "%s", hp_slide_error(c->slide));
    for (int t0 = 0; t0 < c->cols; t0 += c->batch) {
        int n = c->cols - t0 < c->batch ? c->cols - t0 : c->batch;
        for (int b = 0; b < n; b++)
            tile_in(c, t0 + b, b);
        for (int b = n; b < c->batch; b++) /* the instance runs a whole batch */
            memset(c->in + (size_t)b * 3 * c->side * c->side, 0, sizeof(float) * 3 * c->side * c->side);
        if (hp_model_run(c->o->model, c->in, c->batch, c->res) != HP_OK)
            return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_model_error(c->o->model));
        for (int b = 0; b < n; b++)
            tile_out(c, t0 + b, b);
        *done += n;
        if (c->o->progress)
            c->o->progress(c->o->progress_user, *done, total);
    }
    int64_t left = c->h - j * c->tile;
    int rows = (int)((left < c->tile ? left : c->tile) * c->scale);
    return hp_tiff_pyramid_write_band(c->out, c->band_out, rows, c->err);
}

int hp_upscale_is_derived(const hp_slide *s)
{
    /* Any value but "no": a de-identified copy whose flag was blanked ("XXX...") stays derived. */
    const char *v = hp_slide_property(s, "aperio.SuperResolved");
    return v && strncmp(v, "no", 2) != 0;
}

/* A property, or NULL when absent or blanked ("XXXX", de-identified). */
static const char *provenance_value(const hp_slide *s, const char *name)
{
    const char *v = hp_slide_property(s, name);
    return v && *v && strspn(v, "X ") != strlen(v) ? v : NULL;
}

int hp_upscale_provenance_of(const hp_slide *s, hp_upscale_provenance *p)
{
    memset(p, 0, sizeof *p);
    if (!hp_upscale_is_derived(s))
        return 0;
    p->scale = provenance_value(s, "aperio.SRScale");
    p->model = provenance_value(s, "aperio.SRModel");
    p->model_sha256 = provenance_value(s, "aperio.SRModelSHA256");
    p->precision = provenance_value(s, "aperio.SRPrecision");
    p->source_mpp = provenance_value(s, "aperio.SourceMPP");
    p->source_sha256 = provenance_value(s, "aperio.SourceSHA256");
    p->source_region = provenance_value(s, "aperio.SourceRegion");
    const char *g = hp_slide_property(s, "aperio.SRGenerative");
    p->generative = g && !strncmp(g, "yes", 3);
    return 1;
}

hp_status hp_upscale(const hp_upscale_options *o, hp_upscale_result *res, hp_error *err)
{
    upscale_ctx c = {.o = o, .err = err};
    hp_status st;
    if (!o || !o->model || !o->slide_path || !o->out_path)
        return hp_error_set(err, HP_ERR_INVALID, "hp_upscale: NULL argument");
    if ((st = stage_model(&c)) || (st = stage_source(&c)) || (st = stage_writer(&c)))
        goto done;
    int64_t bands = (c.h + c.tile - 1) / c.tile;
    long total = (long)(bands * c.cols), done = 0;
    for (int64_t j = 0; j < bands && !st; j++)
        st = do_band(&c, j, &done, total);
    if (!st)
        st = hp_tiff_pyramid_finish(c.out, err);
    if (!st && res) {
        res->width = c.w * c.scale, res->height = c.h * c.scale;
        res->out_mpp = c.mpp / c.scale, res->scale = c.scale, res->tiles = total;
    }
done:
    hp_tiff_pyramid_destroy(c.out);
    hp_slide_close(c.slide);
    free(c.band_in);
    free(c.band_out);
    free(c.in);
    free(c.res);
    return st;
}
