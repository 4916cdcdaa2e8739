/* The region layout of a synthetic slide: where the tissue is and which class each part of it has.
 *
 * Tissue is one irregular blob (an ellipse filling most of the slide, its edge pushed in and out by
 * low-frequency noise). Classes come from a Voronoi partition of a jittered square grid whose query
 * point is warped by noise, so boundaries are irregular curves rather than straight lines. The
 * grid's cells are 600-1200 um across (larger on larger slides): at the 0.5 um/px and 224-px tiles
 * a classifier uses, that is 5-10 tiles per region. A cell's class follows a Latin pattern
 * (i + 2j mod 4, through a seeded permutation): any two cells that share an edge or a corner
 * differ, and the four cells that meet at the slide's centre hold all four classes, so even a
 * small slide shows every class.
 *
 * Everything is evaluated from coordinates alone, on 8x8-pixel blocks of the level-0 grid: the
 * renderer, the label mask and any tile agree exactly on every boundary. */
#include <math.h>
#include <stdlib.h>

#include "pipeline/synth.h"
#include "pipeline/synth_noise.h"

/* Layout granularity in level-0 pixels: boundaries staircase at 8 px (2 um at 0.25 um/px), far
 * below anything visible, and the per-pixel cost of the layout drops 64-fold. */
#define BLOCK 8

struct hp_synth {
    hp_synth_params p;
    uint32_t seed32;
    double cell;         /* region cell side, px */
    double ox, oy;       /* grid origin: the slide's centre */
    double rx, ry;       /* tissue ellipse radii, px */
    double blob_scale;   /* px per unit of the tissue edge noise */
    double rough_scale;  /* px per unit of the fine edge roughness */
    int perm[4];
};

static const char *const class_names[HP_SYNTH_NCLASSES] = {"Background", "Normal", "Benign",
                                                            "InSitu", "Invasive"};

const char *hp_synth_class_name(int cls)
{
    return (cls >= 0 && cls < HP_SYNTH_NCLASSES) ? class_names[cls] : NULL;
}

static double fbm2(uint32_t seed, uint32_t salt, double x, double y)
{
    return (2 * hp_synth_vnoise(seed, salt, x, y) + hp_synth_vnoise(seed, salt + 1, 2.03 * x, 2.03 * y)) / 3;
}

hp_status hp_synth_create(const hp_synth_params *p, hp_synth **out, hp_error *err)
{
    *out = NULL;
    if (!p)
        return hp_error_set(err, HP_ERR_INVALID, "synth: no parameters");
    if (p->width < HP_SYNTH_MIN_SIDE || p->height < HP_SYNTH_MIN_SIDE ||
        p->width > HP_SYNTH_MAX_SIDE || p->height > HP_SYNTH_MAX_SIDE)
        return hp_error_set(err, HP_ERR_INVALID,
                            "synth: size %lldx%lld is outside %d..%d pixels per side",
                            (long long)p->width, (long long)p->height, HP_SYNTH_MIN_SIDE,
                            HP_SYNTH_MAX_SIDE);
    if (!(p->mpp >= 0.05 && p->mpp <= 20))
        return hp_error_set(err, HP_ERR_INVALID,
                            "synth: %g um/px is outside the range of microscopy (0.05..20)", p->mpp);
    hp_synth *s = calloc(1, sizeof *s);
    if (!s)
        return hp_error_set(err, HP_ERR_NOMEM, "synth: out of memory");
    s->p = *p;
    s->seed32 = (uint32_t)(p->seed ^ (p->seed >> 32) ^ 0x5eed1234u);
    double w_um = p->width * p->mpp, h_um = p->height * p->mpp;
    double side_um = fmin(w_um, h_um) / 2.2;
    s->cell = fmin(fmax(side_um, 600.0), 1200.0) / p->mpp;
    s->ox = p->width / 2.0;
    s->oy = p->height / 2.0;
    s->rx = 0.47 * p->width;
    s->ry = 0.47 * p->height;
    s->blob_scale = fmin(p->width, p->height) / 3.0;
    s->rough_scale = 150.0 / p->mpp;
    /* Seeded permutation of the four tissue classes (Fisher-Yates on the seed's hash). */
    for (int i = 0; i < 4; i++)
        s->perm[i] = HP_SYNTH_NORMAL + i;
    for (int i = 3; i > 0; i--) {
        int j = (int)(hp_synth_hash(s->seed32, i, 0, 77) % (uint32_t)(i + 1));
        int t = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = t;
    }
    *out = s;
    return HP_OK;
}

void hp_synth_destroy(hp_synth *s)
{
    free(s);
}

const hp_synth_params *hp_synth_get_params(const hp_synth *s)
{
    return &s->p;
}

static int is_tissue(const hp_synth *s, double x, double y)
{
    double dx = (x - s->ox) / s->rx, dy = (y - s->oy) / s->ry;
    double r = sqrt(dx * dx + dy * dy);
    r += 0.22 * (fbm2(s->seed32, 10, x / s->blob_scale, y / s->blob_scale) - 0.5);
    r += 0.03 * (hp_synth_vnoise(s->seed32, 12, x / s->rough_scale, y / s->rough_scale) - 0.5);
    return r < 1.0;
}

static int region_class(const hp_synth *s, double x, double y)
{
    double c = s->cell, ws = 0.7 * c, amp = 0.35 * c;
    double qx = x + amp * (fbm2(s->seed32, 20, x / ws, y / ws) - 0.5) * 2;
    double qy = y + amp * (fbm2(s->seed32, 30, x / ws, y / ws) - 0.5) * 2;
    double gx = (qx - s->ox) / c, gy = (qy - s->oy) / c;
    int64_t ci = (int64_t)floor(gx), cj = (int64_t)floor(gy);
    double best = 1e300;
    int64_t bi = ci, bj = cj;
    for (int64_t j = cj - 1; j <= cj + 1; j++)
        for (int64_t i = ci - 1; i <= ci + 1; i++) {
            double px = i + 0.5 + 0.5 * (hp_synth_u01(hp_synth_hash(s->seed32, i, j, 40)) - 0.5);
            double py = j + 0.5 + 0.5 * (hp_synth_u01(hp_synth_hash(s->seed32, i, j, 41)) - 0.5);
            double d = (gx - px) * (gx - px) + (gy - py) * (gy - py);
            if (d < best) {
                best = d;
                bi = i;
                bj = j;
            }
        }
    int k = (int)(((bi + 2 * bj) % 4 + 4) % 4);
    return s->perm[k];
}

int hp_synth_class_at(const hp_synth *s, int64_t x, int64_t y)
{
    if (x < 0 || y < 0 || x >= s->p.width || y >= s->p.height)
        return HP_SYNTH_BACKGROUND;
    /* The centre of the 8x8 block holding (x, y). */
    double bx = (double)(x / BLOCK * BLOCK) + BLOCK / 2.0;
    double by = (double)(y / BLOCK * BLOCK) + BLOCK / 2.0;
    if (!is_tissue(s, bx, by))
        return HP_SYNTH_BACKGROUND;
    return region_class(s, bx, by);
}
