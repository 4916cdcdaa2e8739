/* The analyze run for one slide (pipeline/analyze.h): a table of named stages over one context. */
#include "pipeline/upscale.h"
#include "pipeline/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/sha256.h"
#include "io/slide.h"
#include "pipeline/write_asap_xml.h"
#include "pipeline/write_geojson.h"
#include "pipeline/write_heatmap.h"
#include "pipeline/write_tiles_csv.h"
#include "pipeline/write_tiles_geojson.h"
#include "kernels/backend.h"
#include "pipeline/analyze_dir.h"
#include "pipeline/analyze_findings.h"
#include "pipeline/analyze_key.h"
#include "pipeline/analyze_ood.h"
#include "pipeline/analyze_stain.h"
#include "pipeline/findings_isolated.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"
#include "pipeline/tile_grid.h"
#include "pipeline/legend.h"
#include "pipeline/tile_loader.h"
#include "pipeline/tissue.h"

#define ENTROPY_UNCERTAIN 0.6
#define THUMB_SIDE 1024
#define HEATMAP_PX_PER_TILE 8
/* Tiles upsampled by more than this (the slide coarser than the model's MPP) get a warning: a
 * little interpolation is harmless, a factor of 1.5 or 2 shows the model blurrier tissue than it
 * was trained on. */
#define UPSAMPLE_WARN 1.25


void hp_analyze_options_init(hp_analyze_options *o)
{
    memset(o, 0, sizeof *o);
    o->out_dir = ".";
    o->batch = 16;
    o->min_tissue = 0.5;
    o->region_threshold = 0.5;
    o->min_region_tiles = 2;
    o->sigma = 1.0;
    o->backend_name = "cpu";
}

const char *hp_analyze_failure_name(hp_analyze_failure f)
{
    switch (f) {
    case HP_ANALYZE_FAIL_NONE: return NULL;
    case HP_ANALYZE_FAIL_UNREADABLE: return "unreadable";
    case HP_ANALYZE_FAIL_UNSUPPORTED: return "unsupported";
    case HP_ANALYZE_FAIL_NO_MPP: return "no-mpp";
    case HP_ANALYZE_FAIL_NO_TISSUE: return "no-tissue";
    case HP_ANALYZE_FAIL_MODEL: return "model";
    case HP_ANALYZE_FAIL_IO: return "io";
    case HP_ANALYZE_FAIL_INTERRUPTED: return "interrupted";
    }
    return NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *sdup(const char *s) { return s ? strdup(s) : NULL; }

static int valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n < 1 || n > HP_FINDINGS_SLIDE_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static void *pinned_alloc(size_t bytes, void *user)
{
    (void)user;
    return hp_cuda_host_alloc(bytes);
}

static void pinned_free(void *p, void *user)
{
    (void)user;
    hp_cuda_host_free(p);
}

/* Everything one run holds; each stage fills its part, hp_analyze_run frees it. */
typedef struct {
    hp_model *model;
    const hp_analyze_options *o;
    hp_findings *f;
    hp_analyze_result *r;
    hp_error *err;
    const char *slide_path;
    hp_analyze_failure fail; /* set by a stage that knows better than its default */
    const hp_card *card;
    int C, B, tw;
    cJSON *key;
    hp_analyze_dir od;
    hp_slide *s;
    hp_tissue_mask tm;
    hp_tile_grid *grid;
    hp_heatmap_grid *hg;
    hp_regions *rs;
    hp_analyze_ood ood; /* the card's out-of-domain detector and each tile's score */
    hp_sr_decision srd; /* whether the tiles are super-resolved (pipeline/analyze_sr.h) */
    hp_analyze_sr sr;   /* the step that does it, when srd.use */
    char sr_provenance[160]; /* the pictures' titles say it (hp_heatmap_grid.provenance) */
    float *smooth, *ent;
    int kept; /* the claim found a matching completed result: the later stages do nothing */
    double t0;
} run_ctx;

static int cancelled(const run_ctx *c)
{
    return c->o->cancel && *c->o->cancel;
}

/* The model can analyze slides: a card with classes and MPP, square RGB input, one output per
 * class; instantiated once at the batch size (the loader zero-fills past the last tile). */
static hp_status stage_model(run_ctx *c)
{
    c->card = hp_model_card(c->model);
    if (c->card && c->card->task == HP_TASK_SUPER_RESOLUTION)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "the model is a super-resolution model (x%d), not a classifier: give it to "
                            "`histoplan upscale`",
                            c->card->scale);
    if (!c->card || c->card->n_classes < 1 || c->card->mpp <= 0)
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "the model has no card giving its classes and MPP (model.card.json)");
    int c_in, th;
    hp_model_input_shape(c->model, &c_in, &th, &c->tw);
    if (c_in != 3 || th != c->tw || th < 1)
        return hp_error_set(c->err, HP_ERR_UNSUPPORTED, "the model's input is not square RGB");
    c->C = c->card->n_classes;
    c->B = c->o->batch > 0 ? c->o->batch : 16;
    if (hp_model_instantiate(c->model, c->B) != HP_OK)
        return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_model_error(c->model));
    if (hp_model_output_size(c->model, 0) != c->C)
        return hp_error_set(c->err, HP_ERR_INVALID, "the model gives %lld outputs, its card %d classes",
                            (long long)hp_model_output_size(c->model, 0), c->C);
    return HP_OK;
}

/* The slide's hash, its id (the folder name depends on it) and the run's key. */
static hp_status stage_identify(run_ctx *c)
{
    hp_findings *f = c->f;
    hp_error herr = {0};
    double t = now_s();
    if (hp_sha256_file(c->slide_path, f->sha256, &herr) != HP_OK)
        return hp_error_set(c->err, herr.code ? herr.code : HP_ERR_IO, "%s", herr.msg);
    if (c->o->slide_id) {
        if (!valid_id(c->o->slide_id)) {
            c->fail = HP_ANALYZE_FAIL_IO;
            return hp_error_set(c->err, HP_ERR_INVALID, "slide id '%s': use 1..64 of A-Z a-z 0-9 _ -",
                                c->o->slide_id);
        }
        snprintf(c->r->slide_id, sizeof c->r->slide_id, "%s", c->o->slide_id);
    } else {
        snprintf(c->r->slide_id, 13, "%.12s", f->sha256);
    }
    if (!(f->slide_id = sdup(c->r->slide_id)))
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    f->t_open = now_s() - t;
    return hp_analyze_key_make(c->o, f->sha256, &c->key, c->err);
}

/* OUT/<id>: the slide's lock, then a matching result kept, another refused (or replaced with
 * overwrite), or the .partial folder made. */
static hp_status stage_claim(run_ctx *c)
{
    const hp_analyze_options *o = c->o;
    hp_analyze_dir_options dop = {.overwrite = o->overwrite,
                                  .overwrite_before = o->overwrite_before,
                                  .nowait = o->lock_nowait,
                                  .cancel = o->cancel,
                                  .waiting = o->waiting,
                                  .user = o->progress_user};
    hp_analyze_dir_state state;
    hp_status st = hp_analyze_dir_begin(o->out_dir, c->r->slide_id, c->key, &dop, &c->od, &state, c->err);
    if (st == HP_ERR_CANCELLED)
        c->fail = HP_ANALYZE_FAIL_INTERRUPTED;
    if (st != HP_OK)
        return st;
    if (state == HP_ANALYZE_DIR_KEPT || state == HP_ANALYZE_DIR_BUSY) {
        c->r->outcome = state == HP_ANALYZE_DIR_KEPT ? HP_ANALYZE_SKIPPED : HP_ANALYZE_BUSY;
        c->kept = 1;
    }
    return HP_OK;
}

static hp_status stage_open(run_ctx *c)
{
    hp_findings *f = c->f;
    hp_error herr = {0};
    double t = now_s();
    hp_slide_options so = {.mpp = c->o->mpp};
    c->s = hp_slide_open(c->slide_path, &so, &herr);
    if (!c->s) {
        if (herr.code == HP_ERR_UNSUPPORTED)
            c->fail = HP_ANALYZE_FAIL_UNSUPPORTED;
        return hp_error_set(c->err, herr.code ? herr.code : HP_ERR_IO, "%s", herr.msg);
    }
    if (hp_upscale_is_derived(c->s) && !c->o->allow_derived) {
        c->fail = HP_ANALYZE_FAIL_UNSUPPORTED;
        return hp_error_set(c->err, HP_ERR_INVALID,
                            "%s is super-resolved (made by histoplan upscale from slide %.12s...), not a scanned image: "
                            "analyze the scanned slide, or give --allow-derived to analyze it knowingly",
                            c->slide_path, hp_slide_property(c->s, "aperio.SourceSHA256") ? hp_slide_property(c->s, "aperio.SourceSHA256") : "?");
    }
    hp_mpp_source src;
    if (hp_slide_mpp(c->s, &f->mpp_x, &f->mpp_y, &src) != HP_OK) {
        c->fail = HP_ANALYZE_FAIL_NO_MPP;
        return hp_error_set(c->err, HP_ERR_INVALID, "%s", hp_slide_error(c->s));
    }
    f->mpp_source = sdup(hp_mpp_source_name(src));
    if (*hp_slide_warning(c->s))
        f->mpp_warning = sdup(hp_slide_warning(c->s));
    f->format = sdup(hp_slide_format(c->s));
    f->level_count = hp_slide_level_count(c->s);
    hp_status st;
    if ((st = hp_slide_level_dimensions(c->s, 0, &f->width_px, &f->height_px)) != HP_OK)
        return hp_error_set(c->err, st, "%s", hp_slide_error(c->s));
    double op = hp_slide_objective_power(c->s);
    f->objective_power = op > 0 ? op : NAN;
    f->accession = sdup(c->o->accession);
    f->t_open += now_s() - t;
    return HP_OK;
}

static hp_status stage_tissue(run_ctx *c)
{
    hp_findings *f = c->f;
    const hp_analyze_options *o = c->o;
    double t = now_s();
    hp_tissue_options to;
    hp_tissue_options_init(&to);
    to.mpp = o->mpp;
    to.mask_path = o->mask_path;
    if (o->roi_w > 0) {
        to.roi_x = o->roi_x, to.roi_y = o->roi_y, to.roi_w = o->roi_w, to.roi_h = o->roi_h;
    }
    hp_status st = hp_tissue_detect(c->s, &to, &c->tm, c->err);
    if (st != HP_OK) {
        c->fail = st == HP_ERR_IO ? HP_ANALYZE_FAIL_UNREADABLE : HP_ANALYZE_FAIL_NO_TISSUE;
        return st;
    }
    f->tissue_area_mm2 = c->tm.tissue_mm2;
    f->tissue_fraction = c->tm.tissue_fraction;
    f->qc_flags = c->tm.qc_flags;
    f->pen_fraction = c->tm.pen_fraction;
    f->brown_fraction = c->tm.brown_fraction;
    f->blur_score = c->tm.blur_score;
    f->blur_regions_read = c->tm.blur_regions_read;
    f->t_tissue = now_s() - t;
    return HP_OK;
}

/* Says so when the slide is coarser than the model's resolution and its tiles are upsampled by
 * interpolation (not super-resolved), which adds no detail the scan does not have. */
static hp_status note_upsampling(run_ctx *c)
{
    hp_findings *f = c->f;
    double mpp = f->mpp_x > f->mpp_y ? f->mpp_x : f->mpp_y;
    double factor = mpp / c->card->mpp;
    if (!c->grid->upsampled || !(factor > UPSAMPLE_WARN) || c->srd.use)
        return HP_OK;
    char msg[1024];
    snprintf(msg, sizeof msg,
             "tiles are upsampled %.2fx: the slide's %.4g um/px is coarser than the model's %.4g um/px, so "
             "the model sees interpolated pixels without the detail it was trained on, and its results "
             "may be less reliable (a scan at a higher magnification avoids this; `--sr auto` "
             "super-resolves the tiles instead, for research use); super-resolution: %s",
             factor, mpp, c->card->mpp, c->srd.reason);
    f->upsampling_factor = factor;
    if (!(f->resolution_warning = sdup(msg)))
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}

/* Whether the tiles go through a super-resolution model (the table in analyze_sr.h), recorded in
 * the findings; the step is set up over the grid when they do. */
static hp_status decide_super_resolution(run_ctx *c)
{
    hp_findings *f = c->f;
    const hp_analyze_options *o = c->o;
    double mpp = f->mpp_x > f->mpp_y ? f->mpp_x : f->mpp_y;
    hp_status st = hp_sr_decide(o->sr_mode, mpp, c->card->mpp, o->sr_models, o->n_sr_models, &c->srd, c->err);
    if (st) {
        c->fail = HP_ANALYZE_FAIL_MODEL;
        return st;
    }
    f->sr_mode = hp_sr_mode_name(o->sr_mode);
    if (!(f->sr_reason = sdup(c->srd.reason)))
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    if (!c->srd.use)
        return HP_OK;
    const hp_sr_candidate *k = &o->sr_models[c->srd.candidate];
    const hp_card *card = hp_model_card(k->model);
    f->sr_used = 1;
    f->sr_scale = card->scale;
    f->sr_input_mpp = mpp;
    f->sr_output_mpp = mpp / card->scale;
    f->sr_precision = hp_precision_name(hp_model_precision(k->model));
    snprintf(f->sr_model_sha256, sizeof f->sr_model_sha256, "%s", k->sha256 ? k->sha256 : "");
    if (!(f->sr_model_name = sdup(card->name)) || (card->version && !(f->sr_model_version = sdup(card->version))))
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    snprintf(c->sr_provenance, sizeof c->sr_provenance, "SUPER-RESOLVED tiles (x%d, %.80s): not the scanned image",
             card->scale, card->name);
    int pinned = o->backend_name && !strcmp(o->backend_name, "cuda");
    if ((st = hp_analyze_sr_prepare(&c->sr, k->model, c->grid, c->B, pinned, c->err)) != HP_OK)
        c->fail = HP_ANALYZE_FAIL_MODEL;
    return st;
}

/* The tile grid at the model's resolution and input size, and the empty probability grid. */
static hp_status stage_tiling(run_ctx *c)
{
    hp_findings *f = c->f;
    const hp_analyze_options *o = c->o;
    double t = now_s();
    hp_status st;
    hp_tile_geometry geo;
    if ((st = hp_tile_geometry_from_slide(c->s, &geo, c->err)) != HP_OK)
        return st;
    hp_tile_mask mk = {c->tm.mask, c->tm.w, c->tm.h, c->tm.downsample_x, c->tm.downsample_y};
    hp_tile_grid_options go;
    hp_tile_grid_options_init(&go);
    go.target_mpp = c->card->mpp;
    go.tile_size = c->tw;
    go.min_tissue = o->min_tissue;
    if (o->roi_w > 0) {
        go.roi_x = o->roi_x, go.roi_y = o->roi_y, go.roi_w = o->roi_w, go.roi_h = o->roi_h;
    }
    if ((st = hp_tile_grid_create(&geo, &mk, &go, &c->grid, c->err)) != HP_OK)
        return st;
    const hp_tile_grid *grid = c->grid;
    f->target_mpp = c->card->mpp;
    f->tile_size_px = c->tw;
    f->tile_size_level0 = grid->step_x;
    f->level = grid->level;
    f->grid_w = grid->cols;
    f->grid_h = grid->rows;
    f->tiles_total = (int64_t)grid->cols * grid->rows;
    f->tiles_analysed = grid->n_tiles;
    f->tissue_threshold = o->min_tissue;
    f->batch_size = c->B;
    f->region_threshold = o->region_threshold;
    f->min_region_tiles = o->min_region_tiles;
    f->smoothing_sigma_tiles = o->sigma;
    f->entropy_threshold = ENTROPY_UNCERTAIN;
    if ((st = decide_super_resolution(c)) != HP_OK || (st = note_upsampling(c)) != HP_OK)
        return st;
    if ((st = hp_heatmap_grid_create(grid->cols, grid->rows, c->C, &c->hg)) != HP_OK)
        return hp_error_set(c->err, st, "cannot allocate the %dx%d heatmap grid", grid->cols, grid->rows);
    hp_heatmap_grid *hg = c->hg;
    hg->x0 = (double)grid->origin_x;
    hg->y0 = (double)grid->origin_y;
    hg->tile_size = grid->step_x;
    hg->mpp = f->mpp_x;
    hg->slide_w = f->width_px;
    hg->slide_h = f->height_px;
    hg->slide_id = f->slide_id;
    hg->provenance = c->srd.use ? c->sr_provenance : NULL;
    for (int k = 0; k < c->C; k++) {
        uint8_t rgb[3]; /* by the class's category: in situ and invasive always far apart */
        hp_legend_class_colour(c->card, k, rgb);
        if ((st = hp_heatmap_grid_set_class(hg, k, c->card->classes[k], rgb[0], rgb[1], rgb[2])) != HP_OK)
            return hp_error_set(c->err, st, "out of memory");
    }
    /* The card's out-of-domain detector reads the model's penultimate features: one more output
     * of the same run. */
    if ((st = hp_analyze_ood_prepare(c->model, c->card, c->B, (size_t)c->grid->cols * c->grid->rows, &c->ood,
                                     c->err)) != HP_OK)
        return st;
    f->t_tiling = now_s() - t;
    return HP_OK;
}

/* Tiles in grid order (stain-normalized first when asked) through the model; softmax of the
 * logits into the probability grid. A read failure is the slide's, a run failure the model's. */
static hp_status stage_inference(run_ctx *c)
{
    const hp_analyze_options *o = c->o;
    const hp_tile_grid *grid = c->grid;
    hp_heatmap_grid *hg = c->hg;
    int B = c->B, C = c->C;
    double t = now_s();
    hp_status st = HP_OK;
    hp_tile_loader *ld = NULL;
    float *logits = NULL;
    if (grid->n_tiles == 0)
        goto done;
    hp_stain_normalizer nz = {0};
    if (o->stain_target && (st = hp_analyze_stain_prepare(c->s, grid, o->stain_target, &nz, c->err)) != HP_OK)
        goto done;
    /* Batches bound for the GPU are pinned, so their copies run at full speed. */
    hp_tile_loader_options lo = {0};
    if (o->backend_name && !strcmp(o->backend_name, "cuda"))
        lo.allocator = (hp_tile_allocator){.alloc = pinned_alloc, .free = pinned_free};
    /* Super-resolved tiles are read with their halo at the scan's resolution (the read grid). */
    const hp_tile_grid *read_grid = c->srd.use ? &c->sr.read_grid : grid;
    if ((st = hp_tile_loader_create(c->s, read_grid, B, o->threads, 2, &lo, &ld, c->err)) != HP_OK)
        goto done;
    logits = malloc(sizeof(float) * (size_t)B * C);
    if (!logits) {
        st = hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
        goto done;
    }
    long n_done = 0;
    for (;;) {
        if (cancelled(c)) {
            c->fail = HP_ANALYZE_FAIL_INTERRUPTED;
            st = hp_error_set(c->err, HP_ERR_CANCELLED, "interrupted after %ld of %lld tiles", n_done,
                              (long long)grid->n_tiles);
            goto done;
        }
        hp_tile_batch *b = NULL;
        if ((st = hp_tile_loader_next(ld, &b)) != HP_OK) {
            c->fail = HP_ANALYZE_FAIL_UNREADABLE;
            hp_error_set(c->err, st, "%s", hp_tile_loader_error(ld));
            goto done;
        }
        if (!b)
            break;
        hp_tile_batch tiles = *b; /* what the classifier gets: the batch, or its super-resolution */
        if (c->srd.use) {
            if ((st = hp_analyze_sr_apply(&c->sr, b->rgb, b->count, c->err)) != HP_OK) {
                c->fail = HP_ANALYZE_FAIL_MODEL;
                hp_tile_loader_release(ld, b);
                goto done;
            }
            tiles.rgb = c->sr.tiles;
        }
        if (o->stain_target && (st = hp_analyze_stain_apply(&nz, &tiles, c->tw, c->err)) != HP_OK) {
            hp_tile_loader_release(ld, b);
            goto done;
        }
        int n_extra;
        float *const *extra = hp_analyze_ood_outputs(&c->ood, &n_extra);
        if ((st = hp_model_run_rgb8_outputs(c->model, tiles.rgb, B, logits, extra, n_extra)) != HP_OK) {
            c->fail = HP_ANALYZE_FAIL_MODEL;
            hp_error_set(c->err, st, "%s", hp_model_error(c->model));
            hp_tile_loader_release(ld, b);
            goto done;
        }
        for (int q = 0; q < b->count; q++) {
            const hp_tile *tl = &b->tiles[q];
            const float *lg = logits + (size_t)q * C;
            float mx = lg[0];
            for (int k = 1; k < C; k++)
                mx = lg[k] > mx ? lg[k] : mx;
            double sum = 0;
            for (int k = 0; k < C; k++)
                sum += exp((double)lg[k] - mx);
            for (int k = 0; k < C; k++)
                hg->prob[(size_t)tl->index * C + k] = (float)(exp((double)lg[k] - mx) / sum);
            hg->tissue[tl->index] = tl->tissue;
        }
        hp_analyze_ood_score(&c->ood, b->tiles, b->count);
        n_done += b->count;
        hp_tile_loader_release(ld, b);
        if (o->progress)
            o->progress(o->progress_user, n_done, (long)grid->n_tiles);
    }
    hp_tile_loader_stats ls;
    hp_tile_loader_stats_get(ld, &ls, NULL);
    memcpy(c->f->tile_reads, ls.reads, sizeof c->f->tile_reads);
    c->f->tile_decode_scale = ls.reduce;
done:
    hp_tile_loader_destroy(ld);
    free(logits);
    c->f->t_inference = now_s() - t;
    return st;
}

/* Smoothing, entropy and class areas. */
static hp_status stage_maps(run_ctx *c)
{
    hp_findings *f = c->f;
    const hp_tile_grid *grid = c->grid;
    hp_heatmap_grid *hg = c->hg;
    int C = c->C;
    double t = now_s();
    hp_status st;
    size_t G = (size_t)grid->cols * grid->rows;
    c->smooth = malloc(sizeof(float) * G * C);
    c->ent = malloc(sizeof(float) * G);
    f->classes = calloc((size_t)C, sizeof *f->classes);
    char(*safe)[HP_HEATMAP_NAME_MAX] = malloc(sizeof(*safe) * C);
    if (!c->smooth || !c->ent || !f->classes || !safe) {
        free(safe);
        return hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    }
    f->n_classes = C;
    if ((st = hp_heatmap_smooth(hg, c->o->sigma, c->smooth)) != HP_OK) {
        free(safe);
        return hp_error_set(c->err, st, "out of memory");
    }
    hp_heatmap_entropy(hg, c->ent);
    hp_heatmap_safe_names(hg, safe);
    double tile_mm2 = (grid->step_x * f->mpp_x / 1000.0) * (grid->step_y * f->mpp_y / 1000.0);
    for (int k = 0; k < C; k++) {
        char buf[HP_HEATMAP_NAME_MAX + 16];
        snprintf(buf, sizeof buf, "heatmap_%s.png", safe[k]);
        f->classes[k].name = sdup(c->card->classes[k]);
        f->classes[k].heatmap_png = sdup(buf);
    }
    free(safe);
    hp_analyze_findings_classes(f, hg, c->ent, ENTROPY_UNCERTAIN, tile_mm2);
    f->t_heatmap = now_s() - t;
    return HP_OK;
}

/* Regions of each class, their evidence tiles, the largest focus per class, the in situ and
 * invasive summaries, and the model's identity. */
static hp_status stage_regions(run_ctx *c)
{
    double t = now_s();
    hp_status st;
    if ((st = hp_regions_extract(c->hg, c->smooth, c->o->region_threshold, c->o->min_region_tiles, &c->rs,
                                 c->err)) != HP_OK ||
        (st = hp_analyze_findings_regions(c->f, c->card, c->hg, c->rs, c->err)) != HP_OK)
        return st;
    c->f->t_regions = now_s() - t;
    /* Domain: whether the model is valid for this slide at all. */
    if ((st = hp_analyze_ood_finish(&c->ood, c->card, c->hg, c->f, c->err)) != HP_OK)
        return st;
    return hp_analyze_findings_model(c->f, c->card, c->o->model_sha256, c->o->backend_name, c->err);
}

/* Every output file into the .partial folder: run.json, then findings.json last. */
static hp_status stage_write(run_ctx *c)
{
    hp_findings *f = c->f;
    const hp_heatmap_grid *hg = c->hg;
    const char *dir = c->od.part_dir;
    double t = now_s();
    hp_status st = HP_OK;
    uint8_t *thumb = NULL;
    char *p = NULL;
    int tws, ths;
    if ((st = hp_slide_read_thumbnail(c->s, THUMB_SIDE, &thumb, &tws, &ths)) != HP_OK) {
        c->fail = HP_ANALYZE_FAIL_UNREADABLE;
        hp_error_set(c->err, st, "%s", hp_slide_error(c->s));
        goto done;
    }
#define OUTFILE(name) (free(p), p = path_join(dir, name))
    if ((st = hp_write_heatmap_pngs(dir, hg, c->smooth, HEATMAP_PX_PER_TILE, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("overlay.png") ||
        (st = hp_write_overlay_png(p, hg, c->smooth, thumb, tws, ths, 0.5, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("uncertainty.png") ||
        (st = hp_write_uncertainty_png(p, hg, c->ent, HEATMAP_PX_PER_TILE, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("mask.png") || (st = hp_write_mask_png(p, hg, HEATMAP_PX_PER_TILE, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("heatmap.tiff") ||
        (st = hp_write_heatmap_tiff(p, hg, c->smooth, hp_heatmap_tiff_downsample(hg), c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("regions.geojson") || (st = hp_write_regions_geojson(p, hg, c->rs, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("regions.xml") || (st = hp_write_regions_asap_xml(p, hg, c->rs, c->err)) != HP_OK)
        goto done;
    const hp_tile_extras extras = {.regions = c->rs, .ood_score = c->ood.scores, .super_resolved = c->srd.use};
    if (!OUTFILE("tiles.csv") || (st = hp_write_tiles_csv(p, hg, &extras, c->err)) != HP_OK)
        goto done;
    if (!OUTFILE("tiles.geojson") || (st = hp_write_tiles_geojson(p, hg, &extras, c->err)) != HP_OK)
        goto done;
    f->overlay_png = sdup("overlay.png");
    f->mask_png = sdup("mask.png");
    f->uncertainty_png = sdup("uncertainty.png");
    f->heatmap_tiff = sdup("heatmap.tiff");
    f->regions_geojson = sdup("regions.geojson");
    f->regions_xml = sdup("regions.xml");
    f->tiles_csv = sdup("tiles.csv");
    f->tiles_geojson = sdup("tiles.geojson");
    if ((st = hp_analyze_key_write(dir, c->key, c->err)) != HP_OK)
        goto done;
    f->t_writing = now_s() - t;
    f->t_total = now_s() - c->t0;
    if (!OUTFILE("findings.json") || (st = hp_findings_write(f, p, c->err)) != HP_OK)
        goto done;
#undef OUTFILE
done:
    if (st == HP_OK && !p)
        st = hp_error_set(c->err, HP_ERR_NOMEM, "out of memory");
    free(thumb);
    free(p);
    return st;
}

/* The folder takes its final name (an older result is replaced only now). */
static hp_status stage_commit(run_ctx *c)
{
    return hp_analyze_dir_commit(&c->od, c->err);
}

/* The run, in order. A failure's kind is the stage's unless the stage said otherwise. */
static const struct {
    const char *name;
    hp_status (*fn)(run_ctx *);
    hp_analyze_failure fail;
} STAGES[] = {
    {"model", stage_model, HP_ANALYZE_FAIL_MODEL},
    {"identify", stage_identify, HP_ANALYZE_FAIL_UNREADABLE},
    {"claim", stage_claim, HP_ANALYZE_FAIL_IO},
    {"open", stage_open, HP_ANALYZE_FAIL_UNREADABLE},
    {"tissue", stage_tissue, HP_ANALYZE_FAIL_NO_TISSUE},
    {"tiling", stage_tiling, HP_ANALYZE_FAIL_UNSUPPORTED},
    {"inference", stage_inference, HP_ANALYZE_FAIL_MODEL},
    {"maps", stage_maps, HP_ANALYZE_FAIL_IO},
    {"regions", stage_regions, HP_ANALYZE_FAIL_IO},
    {"write", stage_write, HP_ANALYZE_FAIL_IO},
    {"commit", stage_commit, HP_ANALYZE_FAIL_IO},
};

hp_status hp_analyze_run(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                         hp_findings *f, hp_analyze_result *r, hp_error *err)
{
    run_ctx c = {.model = model, .o = o, .f = f, .r = r, .err = err, .slide_path = slide_path};
    memset(r, 0, sizeof *r);
    hp_status st = HP_OK;
    c.t0 = now_s();
    for (size_t i = 0; i < sizeof STAGES / sizeof *STAGES && !c.kept; i++) {
        if (cancelled(&c)) {
            c.fail = HP_ANALYZE_FAIL_INTERRUPTED;
            st = hp_error_set(err, HP_ERR_CANCELLED, "interrupted before the %s stage", STAGES[i].name);
        } else {
            st = STAGES[i].fn(&c);
        }
        if (st != HP_OK) {
            r->failure = c.fail ? c.fail : STAGES[i].fail;
            snprintf(r->stage, sizeof r->stage, "%s", STAGES[i].name);
            break;
        }
    }
    hp_analyze_dir_end(&c.od); /* removes this run's .partial folder unless it was renamed */
    cJSON_Delete(c.key);
    hp_regions_destroy(c.rs);
    hp_analyze_ood_free(&c.ood);
    hp_analyze_sr_free(&c.sr);
    hp_heatmap_grid_destroy(c.hg);
    hp_tile_grid_destroy(c.grid);
    hp_tissue_mask_free(&c.tm);
    hp_slide_close(c.s);
    free(c.smooth);
    free(c.ent);
    return st;
}

hp_status hp_analyze_slide(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                           hp_findings *f, hp_analyze_outcome *outcome,
                           char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1], hp_error *err)
{
    hp_analyze_result r;
    hp_status st = hp_analyze_run(model, slide_path, o, f, &r, err);
    *outcome = r.outcome;
    memcpy(slide_id, r.slide_id, sizeof r.slide_id);
    return st;
}
