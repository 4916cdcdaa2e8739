/* The analyze run for one slide (pipeline/analyze.h). */
#include "common/sha256.h"
#include "pipeline/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "io/slide.h"
#include "pipeline/write_asap_xml.h"
#include "pipeline/write_geojson.h"
#include "pipeline/write_heatmap.h"
#include "pipeline/write_tiles_csv.h"
#include "kernels/backend.h"
#include "pipeline/analyze_dir.h"
#include "pipeline/analyze_ood.h"
#include "pipeline/analyze_stain.h"
#include "pipeline/findings_isolated.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"
#include "pipeline/tile_grid.h"
#include "pipeline/tile_loader.h"
#include "pipeline/tissue.h"

#define ENTROPY_UNCERTAIN 0.6
#define THUMB_SIDE 1024
#define HEATMAP_PX_PER_TILE 8

/* Okabe-Ito colours, distinct for colour-blind readers, by class position. */
static const uint8_t PALETTE[8][3] = {{0, 158, 115}, {86, 180, 233}, {230, 159, 0},
                                      {213, 94, 0},  {0, 114, 178},  {204, 121, 167},
                                      {240, 228, 66}, {0, 0, 0}};

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

/* Greatest distance between any two outer-ring vertices of the regions of class k. */
static double class_extent_mm(const hp_regions *rs, int k, double mpp)
{
    double best = 0;
    for (int a = 0; a < rs->n; a++) {
        if (rs->r[a].cls != k)
            continue;
        const hp_region_ring *ra = &rs->r[a].rings[0];
        for (int b = a; b < rs->n; b++) {
            if (rs->r[b].cls != k)
                continue;
            const hp_region_ring *rb = &rs->r[b].rings[0];
            for (size_t i = 0; i < ra->n; i++)
                for (size_t j = 0; j < rb->n; j++) {
                    double dx = ra->xy[2 * i] - rb->xy[2 * j], dy = ra->xy[2 * i + 1] - rb->xy[2 * j + 1];
                    double d = dx * dx + dy * dy;
                    if (d > best)
                        best = d;
                }
        }
    }
    return sqrt(best) * mpp / 1000.0;
}

static void fill_extent(hp_findings_extent *e, const hp_findings *f, const hp_regions *rs, int k,
                        double mpp)
{
    if (k < 0)
        return;
    e->cls = sdup(f->classes[k].name);
    e->total_area_mm2 = 0;
    for (int i = 0; i < f->n_regions; i++)
        if (rs->r[i].cls == k) {
            e->total_area_mm2 += f->regions[i].area_mm2;
            e->region_count++;
        }
    e->largest_region_id = f->classes[k].largest_region_id;
    e->largest_diameter_mm = f->classes[k].largest_diameter_mm;
    e->extent_mm = class_extent_mm(rs, k, mpp);
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

hp_status hp_analyze_slide(hp_model *model, const char *slide_path, const hp_analyze_options *o,
                           hp_findings *f, hp_analyze_outcome *outcome,
                           char slide_id[HP_FINDINGS_SLIDE_ID_MAX + 1], hp_error *err)
{
    hp_status st = HP_OK;
    hp_slide *s = NULL;
    hp_tissue_mask tm = {0};
    hp_tile_grid *grid = NULL;
    hp_tile_loader *ld = NULL;
    hp_heatmap_grid *hg = NULL;
    hp_regions *rs = NULL;
    float *logits = NULL, *smooth = NULL, *ent = NULL;
    uint8_t *thumb = NULL;
    hp_analyze_dir od = {0};
    hp_analyze_ood ood = {0};
    const char *part_dir = NULL;
    char *p = NULL;
    double t0 = now_s(), t;

    slide_id[0] = 0;
    *outcome = HP_ANALYZE_DONE;
    const hp_card *card = hp_model_card(model);
    if (!card || card->n_classes < 1 || card->mpp <= 0)
        return hp_error_set(err, HP_ERR_INVALID,
                            "the model has no card giving its classes and MPP (model.card.json)");
    int c_in, th, tw;
    hp_model_input_shape(model, &c_in, &th, &tw);
    if (c_in != 3 || th != tw || th < 1)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "the model's input is not square RGB");
    int C = card->n_classes;
    int B = o->batch > 0 ? o->batch : 16;
    /* Every batch runs at size B (the loader zero-fills past the last tile), so the model is
     * instantiated once. */
    if (hp_model_instantiate(model, B) != HP_OK)
        return hp_error_set(err, HP_ERR_INVALID, "%s", hp_model_error(model));
    if (hp_model_output_size(model, 0) != C)
        return hp_error_set(err, HP_ERR_INVALID, "the model gives %lld outputs, its card %d classes",
                            (long long)hp_model_output_size(model, 0), C);

    /* Identity first: the folder name depends on it. */
    t = now_s();
    hp_error herr = {0};
    if (hp_sha256_file(slide_path, f->sha256, &herr) != HP_OK)
        return hp_error_set(err, herr.code ? herr.code : HP_ERR_IO, "%s", herr.msg);
    if (o->slide_id) {
        if (!valid_id(o->slide_id))
            return hp_error_set(err, HP_ERR_INVALID,
                                "slide id '%s': use 1..64 of A-Z a-z 0-9 _ -", o->slide_id);
        snprintf(slide_id, HP_FINDINGS_SLIDE_ID_MAX + 1, "%s", o->slide_id);
    } else {
        snprintf(slide_id, 13, "%.12s", f->sha256);
    }
    f->slide_id = sdup(slide_id);

    int skipped = 0;
    if ((st = hp_analyze_dir_begin(o->out_dir, slide_id, o->overwrite, o->skip_completed, &od, &skipped,
                                   err)) != HP_OK)
        goto fail;
    if (skipped) {
        *outcome = HP_ANALYZE_SKIPPED;
        goto done;
    }
    part_dir = od.part_dir;

    hp_slide_options so = {.mpp = o->mpp};
    s = hp_slide_open(slide_path, &so, &herr);
    if (!s) {
        st = hp_error_set(err, herr.code ? herr.code : HP_ERR_IO, "%s", herr.msg);
        goto fail;
    }
    hp_mpp_source src;
    if (hp_slide_mpp(s, &f->mpp_x, &f->mpp_y, &src) != HP_OK) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s", hp_slide_error(s));
        goto fail;
    }
    f->mpp_source = sdup(hp_mpp_source_name(src));
    if (*hp_slide_warning(s))
        f->mpp_warning = sdup(hp_slide_warning(s));
    f->format = sdup(hp_slide_format(s));
    f->level_count = hp_slide_level_count(s);
    if ((st = hp_slide_level_dimensions(s, 0, &f->width_px, &f->height_px)) != HP_OK) {
        hp_error_set(err, st, "%s", hp_slide_error(s));
        goto fail;
    }
    double op = hp_slide_objective_power(s);
    f->objective_power = op > 0 ? op : NAN;
    f->accession = sdup(o->accession);
    f->t_open = now_s() - t;

    /* Tissue. */
    t = now_s();
    hp_tissue_options to;
    hp_tissue_options_init(&to);
    to.mpp = o->mpp;
    to.mask_path = o->mask_path;
    if (o->roi_w > 0) {
        to.roi_x = o->roi_x, to.roi_y = o->roi_y, to.roi_w = o->roi_w, to.roi_h = o->roi_h;
    }
    if ((st = hp_tissue_detect(s, &to, &tm, err)) != HP_OK)
        goto fail;
    f->tissue_area_mm2 = tm.tissue_mm2;
    f->tissue_fraction = tm.tissue_fraction;
    f->qc_flags = tm.qc_flags;
    f->pen_fraction = tm.pen_fraction;
    f->brown_fraction = tm.brown_fraction;
    f->blur_score = tm.blur_score;
    f->blur_regions_read = tm.blur_regions_read;
    f->t_tissue = now_s() - t;

    /* Tile grid at the model's resolution and input size. */
    t = now_s();
    hp_tile_geometry geo;
    if ((st = hp_tile_geometry_from_slide(s, &geo, err)) != HP_OK)
        goto fail;
    hp_tile_mask mk = {tm.mask, tm.w, tm.h, tm.downsample_x, tm.downsample_y};
    hp_tile_grid_options go;
    hp_tile_grid_options_init(&go);
    go.target_mpp = card->mpp;
    go.tile_size = tw;
    go.min_tissue = o->min_tissue;
    if (o->roi_w > 0) {
        go.roi_x = o->roi_x, go.roi_y = o->roi_y, go.roi_w = o->roi_w, go.roi_h = o->roi_h;
    }
    if ((st = hp_tile_grid_create(&geo, &mk, &go, &grid, err)) != HP_OK)
        goto fail;
    f->target_mpp = card->mpp;
    f->tile_size_px = tw;
    f->tile_size_level0 = grid->step_x;
    f->level = grid->level;
    f->grid_w = grid->cols;
    f->grid_h = grid->rows;
    f->tiles_total = (int64_t)grid->cols * grid->rows;
    f->tiles_analysed = grid->n_tiles;
    f->tissue_threshold = o->min_tissue;
    f->batch_size = B;
    f->region_threshold = o->region_threshold;
    f->min_region_tiles = o->min_region_tiles;
    f->smoothing_sigma_tiles = o->sigma;
    f->entropy_threshold = ENTROPY_UNCERTAIN;
    if ((st = hp_heatmap_grid_create(grid->cols, grid->rows, C, &hg)) != HP_OK) {
        hp_error_set(err, st, "cannot allocate the %dx%d heatmap grid", grid->cols, grid->rows);
        goto fail;
    }
    hg->x0 = (double)grid->origin_x;
    hg->y0 = (double)grid->origin_y;
    hg->tile_size = grid->step_x;
    hg->mpp = f->mpp_x;
    hg->slide_w = f->width_px;
    hg->slide_h = f->height_px;
    for (int k = 0; k < C; k++) {
        const uint8_t *rgb = PALETTE[k % 8];
        if ((st = hp_heatmap_grid_set_class(hg, k, card->classes[k], rgb[0], rgb[1], rgb[2])) !=
            HP_OK) {
            hp_error_set(err, st, "out of memory");
            goto fail;
        }
    }
    /* The card's out-of-domain detector reads the model's penultimate features: one more output
     * of the same run. */
    if ((st = hp_analyze_ood_prepare(model, card, B, (size_t)grid->cols * grid->rows, &ood, err)) !=
        HP_OK)
        goto fail;
    f->t_tiling = now_s() - t;

    /* Inference: tiles in grid order (stain-normalized first when asked), softmax of the
     * logits. */
    t = now_s();
    if (grid->n_tiles > 0) {
        hp_stain_normalizer nz = {0};
        if (o->stain_target &&
            (st = hp_analyze_stain_prepare(s, grid, o->stain_target, &nz, err)) != HP_OK)
            goto fail;
        /* Batches bound for the GPU are pinned, so their copies run at full speed. */
        hp_tile_loader_options lo = {0};
        if (o->backend_name && !strcmp(o->backend_name, "cuda"))
            lo.allocator = (hp_tile_allocator){.alloc = pinned_alloc, .free = pinned_free};
        if ((st = hp_tile_loader_create(s, grid, B, o->threads, 2, &lo, &ld, err)) != HP_OK)
            goto fail;
        logits = malloc(sizeof(float) * (size_t)B * C);
        if (!logits) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        long done = 0;
        for (;;) {
            hp_tile_batch *b = NULL;
            if ((st = hp_tile_loader_next(ld, &b)) != HP_OK) {
                hp_error_set(err, st, "%s", hp_tile_loader_error(ld));
                goto fail;
            }
            if (!b)
                break;
            if (o->stain_target && (st = hp_analyze_stain_apply(&nz, b, tw, err)) != HP_OK) {
                hp_tile_loader_release(ld, b);
                goto fail;
            }
            int n_extra;
            float *const *extra = hp_analyze_ood_outputs(&ood, &n_extra);
            st = hp_model_run_rgb8_outputs(model, b->rgb, B, logits, extra, n_extra);
            if (st != HP_OK) {
                hp_error_set(err, st, "%s", hp_model_error(model));
                hp_tile_loader_release(ld, b);
                goto fail;
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
            hp_analyze_ood_score(&ood, b->tiles, b->count);
            done += b->count;
            hp_tile_loader_release(ld, b);
            if (o->progress)
                o->progress(o->progress_user, done, (long)grid->n_tiles);
        }
        hp_tile_loader_destroy(ld);
        ld = NULL;
    }
    f->t_inference = now_s() - t;

    /* Maps: smoothing, entropy, class areas. */
    t = now_s();
    size_t G = (size_t)grid->cols * grid->rows;
    smooth = malloc(sizeof(float) * G * C);
    ent = malloc(sizeof(float) * G);
    f->classes = calloc((size_t)C, sizeof *f->classes);
    if (!smooth || !ent || !f->classes) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    f->n_classes = C;
    if ((st = hp_heatmap_smooth(hg, o->sigma, smooth)) != HP_OK) {
        hp_error_set(err, st, "out of memory");
        goto fail;
    }
    hp_heatmap_entropy(hg, ent);
    char (*safe)[HP_HEATMAP_NAME_MAX] = malloc(sizeof(*safe) * C);
    if (!safe) {
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        goto fail;
    }
    hp_heatmap_safe_names(hg, safe);
    double tile_mm2 = (grid->step_x * f->mpp_x / 1000.0) * (grid->step_y * f->mpp_y / 1000.0);
    for (int k = 0; k < C; k++) {
        char buf[HP_HEATMAP_NAME_MAX + 16];
        snprintf(buf, sizeof buf, "heatmap_%s.png", safe[k]);
        f->classes[k].name = sdup(card->classes[k]);
        f->classes[k].heatmap_png = sdup(buf);
    }
    free(safe);
    double esum = 0, emax = 0;
    int64_t nan_ = 0, unsure = 0;
    for (size_t q = 0; q < G; q++) {
        int k = hp_heatmap_argmax(hg, hg->prob, q);
        if (k < 0)
            continue;
        f->classes[k].tile_count++;
        esum += ent[q];
        emax = ent[q] > emax ? ent[q] : emax;
        unsure += ent[q] > ENTROPY_UNCERTAIN;
        nan_++;
    }
    for (int k = 0; k < C; k++) {
        f->classes[k].area_mm2 = f->classes[k].tile_count * tile_mm2;
        f->classes[k].fraction_of_tissue =
            nan_ ? (double)f->classes[k].tile_count / (double)nan_ : NAN;
    }
    f->analysed_area_mm2 = nan_ * tile_mm2;
    if (nan_) {
        f->mean_entropy = esum / nan_;
        f->max_entropy = emax;
        f->fraction_uncertain = (double)unsure / nan_;
    }
    f->t_heatmap = now_s() - t;

    /* Regions. */
    t = now_s();
    if ((st = hp_regions_extract(hg, smooth, o->region_threshold, o->min_region_tiles, &rs,
                                 err)) != HP_OK)
        goto fail;
    if (rs->n > 0) {
        f->regions = calloc((size_t)rs->n, sizeof *f->regions);
        if (!f->regions) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    f->n_regions = rs->n;
    for (int i = 0; i < rs->n; i++) {
        const hp_region *r = &rs->r[i];
        hp_findings_region *fr = &f->regions[i];
        fr->id = i + 1;
        fr->cls = sdup(card->classes[r->cls]);
        fr->area_mm2 = r->area_mm2;
        fr->diameter_mm = r->diameter_mm;
        fr->tile_count = r->ntiles;
        fr->mean_prob = r->mean_prob;
        fr->max_prob = r->max_prob;
        const hp_region_ring *ring = &r->rings[0];
        double x0 = INFINITY, y0 = INFINITY, x1 = -INFINITY, y1 = -INFINITY;
        for (size_t v = 0; v < ring->n; v++) {
            x0 = fmin(x0, ring->xy[2 * v]);
            x1 = fmax(x1, ring->xy[2 * v]);
            y0 = fmin(y0, ring->xy[2 * v + 1]);
            y1 = fmax(y1, ring->xy[2 * v + 1]);
        }
        fr->bbox_level0[0] = x0;
        fr->bbox_level0[1] = y0;
        fr->bbox_level0[2] = x1 - x0;
        fr->bbox_level0[3] = y1 - y0;
        fr->centroid_level0[0] = r->cx;
        fr->centroid_level0[1] = r->cy;
        fr->feature_index = i;
        int ne = r->ntiles < HP_FINDINGS_EVIDENCE_MAX ? (int)r->ntiles : HP_FINDINGS_EVIDENCE_MAX;
        fr->evidence = calloc((size_t)ne, sizeof *fr->evidence);
        if (!fr->evidence || !fr->cls) {
            st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");
            goto fail;
        }
        fr->n_evidence = ne;
        for (int e = 0; e < ne; e++) {
            int32_t ti = r->tiles[e];
            fr->evidence[e].index = ti;
            fr->evidence[e].x = hg->x0 + (ti % grid->cols) * hg->tile_size;
            fr->evidence[e].y = hg->y0 + (ti / grid->cols) * hg->tile_size;
            fr->evidence[e].size = hg->tile_size;
            fr->evidence[e].prob = hg->prob[(size_t)ti * C + r->cls];
        }
        hp_findings_class *fc = &f->classes[r->cls];
        fc->region_count++;
        if (!fc->largest_region_id || r->diameter_mm > fc->largest_diameter_mm) {
            fc->largest_region_id = fr->id;
            fc->largest_area_mm2 = r->area_mm2;
            fc->largest_diameter_mm = r->diameter_mm;
        }
    }
    /* The card's category map says which class is which; a card without one gets no in situ or
     * invasive summary (null), never one guessed from class names. */
    fill_extent(&f->in_situ, f, rs, hp_card_class_of(card, HP_CLASS_IN_SITU), f->mpp_x);
    fill_extent(&f->invasive, f, rs, hp_card_class_of(card, HP_CLASS_INVASIVE), f->mpp_x);
    if ((st = hp_findings_isolated_fill(f, hg, rs, err)) != HP_OK)
        goto fail;
    f->t_regions = now_s() - t;

    /* Domain: whether the model is valid for this slide at all. */
    if ((st = hp_analyze_ood_finish(&ood, card, hg, f, err)) != HP_OK)
        goto fail;

    /* Model identity. */
    if ((st = hp_card_copy(&f->card, card)) != HP_OK) {
        hp_error_set(err, st, "out of memory");
        goto fail;
    }
    snprintf(f->model_sha256, sizeof f->model_sha256, "%s",
             o->model_sha256 ? o->model_sha256 : "");
    f->backend = sdup(o->backend_name ? o->backend_name : "cpu");
    f->precision = sdup("fp32");

    /* Outputs, into the .partial folder; findings.json last. */
    t = now_s();
    int tws, ths;
    if ((st = hp_slide_read_thumbnail(s, THUMB_SIDE, &thumb, &tws, &ths)) != HP_OK) {
        hp_error_set(err, st, "%s", hp_slide_error(s));
        goto fail;
    }
#define OUTFILE(name) (free(p), p = path_join(part_dir, name))
    if ((st = hp_write_heatmap_pngs(part_dir, hg, smooth, HEATMAP_PX_PER_TILE, err)) != HP_OK)
        goto fail;
    if (!OUTFILE("overlay.png") ||
        (st = hp_write_overlay_png(p, hg, smooth, thumb, tws, ths, 0.5, err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("uncertainty.png") ||
        (st = hp_write_uncertainty_png(p, hg, ent, HEATMAP_PX_PER_TILE, err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("mask.png") || (st = hp_write_mask_png(p, hg, err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("heatmap.tiff") ||
        (st = hp_write_heatmap_tiff(p, hg, smooth, hp_heatmap_tiff_downsample(hg), err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("regions.geojson") || (st = hp_write_regions_geojson(p, hg, rs, err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("regions.xml") || (st = hp_write_regions_asap_xml(p, hg, rs, err)) != HP_OK)
        goto fail_io;
    if (!OUTFILE("tiles.csv") || (st = hp_write_tiles_csv(p, hg, &(hp_tile_extras){.regions = rs, .ood_score = ood.scores}, err)) != HP_OK)
        goto fail_io;
    f->overlay_png = sdup("overlay.png");
    f->mask_png = sdup("mask.png");
    f->uncertainty_png = sdup("uncertainty.png");
    f->heatmap_tiff = sdup("heatmap.tiff");
    f->regions_geojson = sdup("regions.geojson");
    f->regions_xml = sdup("regions.xml");
    f->tiles_csv = sdup("tiles.csv");
    f->t_writing = now_s() - t;
    f->t_total = now_s() - t0;
    if (!OUTFILE("findings.json") || (st = hp_findings_write(f, p, err)) != HP_OK)
        goto fail_io;
#undef OUTFILE

    /* Complete: the folder takes its final name (an older one is replaced only now). */
    if ((st = hp_analyze_dir_commit(&od, err)) != HP_OK)
        goto fail;
    goto done;

fail_io:
    if (st == HP_OK)
        st = hp_error_set(err, HP_ERR_NOMEM, "out of memory");

fail:
done:
    hp_analyze_dir_end(&od); /* removes this run's .partial folder unless it was renamed */
    hp_tile_loader_destroy(ld);
    hp_analyze_ood_free(&ood);
    hp_regions_destroy(rs);
    hp_heatmap_grid_destroy(hg);
    hp_tile_grid_destroy(grid);
    hp_tissue_mask_free(&tm);
    hp_slide_close(s);
    free(logits);
    free(smooth);
    free(ent);
    free(thumb);
    free(p);
    return st;
}
