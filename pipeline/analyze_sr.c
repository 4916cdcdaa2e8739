/* Super-resolution inside the analyze run: the decision table and the per-batch step (see the
 * header). */
#include "pipeline/analyze_sr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "kernels/backend.h"
#include "models/card.h"
#include "models/graph.h"

const char *hp_sr_mode_name(hp_sr_mode m)
{
    switch (m) {
    case HP_SR_OFF: return "off";
    case HP_SR_AUTO: return "auto";
    case HP_SR_MODEL: return "model";
    }
    return "off";
}

static const hp_card *sr_card(const hp_sr_candidate *c)
{
    const hp_card *k = c->model ? hp_model_card(c->model) : NULL;
    return k && k->task == HP_TASK_SUPER_RESOLUTION && k->scale >= 2 ? k : NULL;
}

/* The candidate whose scale is nearest the ratio (in log terms), or -1 when there is none. */
static int nearest(const hp_sr_candidate *cands, int n, double ratio)
{
    int best = -1;
    double best_d = INFINITY;
    for (int i = 0; i < n; i++) {
        double d = fabs(log(ratio / sr_card(&cands[i])->scale));
        if (d < best_d)
            best = i, best_d = d;
    }
    return best;
}

static int fits(double ratio, int scale)
{
    double res = ratio / scale;
    return res >= 1.0 / HP_SR_MIN_RATIO - 1e-9 && res <= HP_SR_MIN_RATIO + 1e-9;
}

hp_status hp_sr_decide(hp_sr_mode mode, double slide_mpp, double classifier_mpp,
                       const hp_sr_candidate *cands, int n_cands, hp_sr_decision *d, hp_error *err)
{
    memset(d, 0, sizeof *d);
    d->candidate = -1;
    for (int i = 0; i < n_cands; i++) {
        if (!sr_card(&cands[i]))
            return hp_error_set(err, HP_ERR_INVALID,
                                "--sr: the model is not a super-resolution model (its card must say \"task\": "
                                "\"super-resolution\" and give its \"scale\")");
        if (sr_card(&cands[i])->generative)
            return hp_error_set(err, HP_ERR_INVALID,
                                "--sr: %s is a generative super-resolution model (its card says \"generative\": "
                                "true): it may invent texture the scan never held, so its pixels are not used as "
                                "evidence; view its output with histoplan upscale, and analyze with a faithful "
                                "model (--sr auto)",
                                sr_card(&cands[i])->name);
    }
    if (mode == HP_SR_OFF) {
        snprintf(d->reason, sizeof d->reason, "off (--sr off): tiles are resampled");
        return HP_OK;
    }
    if (!(slide_mpp > 0) || !(classifier_mpp > 0))
        return hp_error_set(err, HP_ERR_INVALID,
                            "--sr: the slide's and the model's microns per pixel are needed to decide (give --mpp)");
    d->ratio = slide_mpp / classifier_mpp;
    if (d->ratio < HP_SR_MIN_RATIO) {
        snprintf(d->reason, sizeof d->reason,
                 "not needed: the slide's %.4g um/px is within %.1fx of the model's %.4g um/px, so tiles are "
                 "resampled",
                 slide_mpp, HP_SR_MIN_RATIO, classifier_mpp);
        return HP_OK;
    }
    if (mode == HP_SR_MODEL && n_cands < 1)
        return hp_error_set(err, HP_ERR_INVALID, "--sr: no super-resolution model given");
    int k = nearest(cands, n_cands, d->ratio);
    if (k < 0 || !fits(d->ratio, sr_card(&cands[k])->scale)) {
        if (mode == HP_SR_MODEL)
            return hp_error_set(err, HP_ERR_INVALID,
                                "--sr: the model super-resolves x%d, but the slide (%.4g um/px) is %.2fx coarser "
                                "than the classifier (%.4g um/px): give a model whose scale is within %.1fx of %.2f",
                                sr_card(&cands[k])->scale, slide_mpp, d->ratio, classifier_mpp, HP_SR_MIN_RATIO,
                                d->ratio);
        snprintf(d->reason, sizeof d->reason,
                 "not used: %s for a slide %.2fx coarser than the model (%.4g against %.4g um/px); tiles are "
                 "upsampled by interpolation",
                 n_cands ? "no installed super-resolution model has a scale that fits" :
                           "no super-resolution model is installed",
                 d->ratio, slide_mpp, classifier_mpp);
        return HP_OK;
    }
    const hp_card *card = sr_card(&cands[k]);
    d->use = 1;
    d->candidate = k;
    d->scale = card->scale;
    d->residual = d->ratio / card->scale;
    char rest[96] = "";
    if (fabs(d->residual - 1) > 0.01)
        snprintf(rest, sizeof rest, "; the remaining %.2fx is resampled", d->residual);
    snprintf(d->reason, sizeof d->reason,
             "tiles super-resolved x%d by %.80s %.24s (slide %.4g um/px, classifier %.4g um/px)%s: the model "
             "saw generated detail, not the scanned image",
             card->scale, card->name, card->version ? card->version : "", slide_mpp, classifier_mpp, rest);
    return HP_OK;
}

/* The read grid: the classifier's tiles widened by `hl` level pixels on each side. */
static hp_status make_read_grid(hp_analyze_sr *sr, const hp_tile_grid *grid, int hl, hp_error *err)
{
    sr->read_grid = *grid;
    sr->read_grid.tiles = NULL;
    if (grid->n_tiles > 0 && !(sr->read_grid.tiles = malloc(sizeof(hp_tile) * (size_t)grid->n_tiles)))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory for %lld tiles", (long long)grid->n_tiles);
    int64_t shift = (int64_t)llround(hl * grid->level_downsample);
    for (int64_t i = 0; i < grid->n_tiles; i++) {
        sr->read_grid.tiles[i] = grid->tiles[i];
        sr->read_grid.tiles[i].x0 -= shift;
        sr->read_grid.tiles[i].y0 -= shift;
    }
    sr->read_grid.read_w = grid->read_w + 2 * hl;
    sr->read_grid.read_h = grid->read_h + 2 * hl;
    sr->read_grid.tile_size = sr->side;
    return HP_OK;
}

hp_status hp_analyze_sr_prepare(hp_analyze_sr *sr, hp_model *model, const hp_tile_grid *grid, int batch,
                                int pinned, hp_error *err)
{
    memset(sr, 0, sizeof *sr);
    sr->pinned = pinned;
    const hp_card *card = hp_model_card(model);
    if (!card || card->task != HP_TASK_SUPER_RESOLUTION)
        return hp_error_set(err, HP_ERR_INVALID, "--sr: the model is not a super-resolution model");
    sr->model = model;
    sr->scale = card->scale;
    sr->tile = grid->tile_size;
    sr->batch = batch;
    sr->tin = (grid->tile_size + sr->scale - 1) / sr->scale;
    /* SR input pixels per scan pixel: 1 when the slide is exactly `scale` times coarser. */
    double f = (double)sr->tin / (grid->read_w > grid->read_h ? grid->read_w : grid->read_h);
    sr->halo = (int)lround(HP_SR_HALO * f);
    if (sr->halo < 1)
        sr->halo = 1;
    sr->side = sr->tin + 2 * sr->halo;
    const hp_graph *g = hp_model_graph(model);
    int ch, ih, iw;
    hp_model_input_shape(model, &ch, &ih, &iw);
    if (ch != 3 || g->n_inputs != 1)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "--sr: the super-resolution model's input is not one RGB image");
    if (ih > 0 || iw > 0)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "--sr: the super-resolution model takes a fixed %dx%d input; analyze needs a fully "
                            "convolutional export (symbolic height and width)",
                            ih, iw);
    int64_t dims[4] = {1, 3, sr->side, sr->side};
    if (hp_model_set_input_shape(model, g->values[g->inputs[0]].name, 4, dims) != HP_OK ||
        hp_model_instantiate(model, batch) != HP_OK)
        return hp_error_set(err, HP_ERR_INVALID, "--sr: %s", hp_model_error(model));
    int S = sr->side * sr->scale;
    if (hp_model_output_size(model, 0) != (int64_t)3 * S * S)
        return hp_error_set(err, HP_ERR_INVALID,
                            "--sr: the model gives %lld values a tile, not an RGB tile %d times larger: its card's "
                            "scale does not match the model",
                            (long long)hp_model_output_size(model, 0), sr->scale);
    hp_status st = make_read_grid(sr, grid, HP_SR_HALO, err);
    if (st)
        return st;
    size_t plane_in = (size_t)sr->side * sr->side, T = (size_t)sr->tin * sr->scale;
    sr->in = malloc(sizeof(float) * 3 * plane_in * batch);
    sr->out = malloc(sizeof(float) * 3 * (size_t)S * S * batch);
    sr->centre = malloc(T * T * 3);
    size_t tiles_bytes = (size_t)sr->tile * sr->tile * 3 * batch;
    sr->tiles = pinned ? hp_cuda_host_alloc(tiles_bytes) : malloc(tiles_bytes);
    if (!sr->in || !sr->out || !sr->centre || !sr->tiles)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory for the super-resolution batch");
    return HP_OK;
}

/* Tile q (interleaved RGB8, side x side) into input slot q as NCHW 0..1. */
static void to_input(hp_analyze_sr *sr, const uint8_t *rgb, int q)
{
    size_t plane = (size_t)sr->side * sr->side;
    const uint8_t *src = rgb + plane * 3 * q;
    float *dst = sr->in + plane * 3 * q;
    for (size_t p = 0; p < plane; p++)
        for (int ch = 0; ch < 3; ch++)
            dst[ch * plane + p] = src[p * 3 + ch] * (1.0f / 255);
}

/* Output slot q without its halo, at the classifier's tile size, into sr->tiles slot q. */
static hp_status from_output(hp_analyze_sr *sr, int q)
{
    int S = sr->side * sr->scale, cut = sr->halo * sr->scale, T = sr->tin * sr->scale;
    size_t plane = (size_t)S * S, tile_bytes = (size_t)sr->tile * sr->tile * 3;
    const float *src = sr->out + plane * 3 * q;
    uint8_t *dst = T == sr->tile ? sr->tiles + tile_bytes * q : sr->centre;
    for (int y = 0; y < T; y++)
        for (int x = 0; x < T; x++)
            for (int ch = 0; ch < 3; ch++) {
                float v = src[ch * plane + (size_t)(y + cut) * S + (x + cut)] * 255.0f + 0.5f;
                dst[((size_t)y * T + x) * 3 + ch] = v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
            }
    if (T == sr->tile)
        return HP_OK;
    return hp_image_resize_rgb8(sr->centre, T, T, sr->tiles + tile_bytes * q, sr->tile, sr->tile);
}

hp_status hp_analyze_sr_apply(hp_analyze_sr *sr, const uint8_t *rgb, int count, hp_error *err)
{
    size_t plane = (size_t)sr->side * sr->side, tile_bytes = (size_t)sr->tile * sr->tile * 3;
    for (int q = 0; q < count; q++)
        to_input(sr, rgb, q);
    if (count < sr->batch) /* the instance runs a whole batch */
        memset(sr->in + plane * 3 * count, 0, sizeof(float) * plane * 3 * (sr->batch - count));
    if (hp_model_run(sr->model, sr->in, sr->batch, sr->out) != HP_OK)
        return hp_error_set(err, HP_ERR_INVALID, "super-resolution model: %s", hp_model_error(sr->model));
    for (int q = 0; q < count; q++)
        if (from_output(sr, q) != HP_OK)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory resampling a super-resolved tile");
    if (count < sr->batch)
        memset(sr->tiles + tile_bytes * count, 0, tile_bytes * (sr->batch - count));
    return HP_OK;
}

void hp_analyze_sr_free(hp_analyze_sr *sr)
{
    if (!sr)
        return;
    free(sr->read_grid.tiles);
    free(sr->in);
    free(sr->out);
    free(sr->centre);
    if (sr->pinned)
        hp_cuda_host_free(sr->tiles);
    else
        free(sr->tiles);
    memset(sr, 0, sizeof *sr);
}
