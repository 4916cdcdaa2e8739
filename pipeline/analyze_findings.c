/* The findings of one run from its probability grid and regions (pipeline/analyze_findings.h). */
#include "pipeline/analyze_findings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/findings_isolated.h"

static char *sdup(const char *s) { return s ? strdup(s) : NULL; }

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

void hp_analyze_findings_classes(hp_findings *f, const hp_heatmap_grid *hg, const float *ent,
                                 double entropy_threshold, double tile_mm2)
{
    size_t G = (size_t)hg->gw * hg->gh;
    int C = hg->nclasses;
    double esum = 0, emax = 0;
    int64_t n_tiles = 0, unsure = 0;
    for (size_t q = 0; q < G; q++) {
        int k = hp_heatmap_argmax(hg, hg->prob, q);
        if (k < 0)
            continue;
        f->classes[k].tile_count++;
        esum += ent[q];
        emax = ent[q] > emax ? ent[q] : emax;
        unsure += ent[q] > entropy_threshold;
        n_tiles++;
    }
    for (int k = 0; k < C; k++) {
        f->classes[k].area_mm2 = f->classes[k].tile_count * tile_mm2;
        f->classes[k].fraction_of_tissue = n_tiles ? (double)f->classes[k].tile_count / (double)n_tiles : NAN;
    }
    f->analysed_area_mm2 = n_tiles * tile_mm2;
    if (n_tiles) {
        f->mean_entropy = esum / n_tiles;
        f->max_entropy = emax;
        f->fraction_uncertain = (double)unsure / n_tiles;
    }
}

hp_status hp_analyze_findings_regions(hp_findings *f, const hp_card *card, const hp_heatmap_grid *hg,
                                      const hp_regions *rs, hp_error *err)
{
    int C = card->n_classes;
    if (rs->n > 0 && !(f->regions = calloc((size_t)rs->n, sizeof *f->regions)))
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
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
        if (!fr->evidence || !fr->cls)
            return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
        fr->n_evidence = ne;
        for (int e = 0; e < ne; e++) {
            int32_t ti = r->tiles[e];
            fr->evidence[e].index = ti;
            fr->evidence[e].x = hg->x0 + (ti % hg->gw) * hg->tile_size;
            fr->evidence[e].y = hg->y0 + (ti / hg->gw) * hg->tile_size;
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
    /* Tiles whose top class formed no region: reported, never silently dropped. */
    return hp_findings_isolated_fill(f, hg, rs, err);
}

hp_status hp_analyze_findings_model(hp_findings *f, const hp_card *card, const char *model_sha256,
                                    const char *backend, hp_error *err)
{
    if (hp_card_copy(&f->card, card) != HP_OK)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    snprintf(f->model_sha256, sizeof f->model_sha256, "%s", model_sha256 ? model_sha256 : "");
    f->backend = sdup(backend ? backend : "cpu");
    f->precision = sdup("fp32");
    if (!f->backend || !f->precision)
        return hp_error_set(err, HP_ERR_NOMEM, "out of memory");
    return HP_OK;
}
