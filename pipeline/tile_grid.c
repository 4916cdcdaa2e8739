/* The tile grid: geometry, level choice and the tissue filter (see tile_grid.h). */
#include "pipeline/tile_grid.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/slide.h"

/* Scanners store downsamples such as 4.000345 for a nominal 4: without slack a target of exactly
 * 4x the base MPP would fall back to reading level 0 at four times the pixels. */
#define LEVEL_SLACK 1.01

/* Upsampling by more than this is not analysis (it invents 64 pixels out of one). */
#define MAX_UPSAMPLE 8.0

/* Grid cells, kept or not; the cell index must fit the int32 columns and rows. */
#define MAX_CELLS ((int64_t)1 << 31)

void hp_tile_grid_options_init(hp_tile_grid_options *o)
{
    memset(o, 0, sizeof *o);
    o->target_mpp = 0.5;
    o->tile_size = 224;
    o->min_tissue = 0.25;
}

hp_status hp_tile_geometry_from_slide(hp_slide *s, hp_tile_geometry *g, hp_error *err)
{
    memset(g, 0, sizeof *g);
    int n = hp_slide_level_count(s);
    if (n < 1 || n > HP_TILE_GRID_MAX_LEVELS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: %d pyramid levels (at most %d supported)",
                            hp_slide_path(s), n, HP_TILE_GRID_MAX_LEVELS);
    hp_status st = hp_slide_level_dimensions(s, 0, &g->width, &g->height);
    if (st == HP_OK)
        st = hp_slide_mpp(s, &g->mpp_x, &g->mpp_y, NULL);
    if (st != HP_OK)
        return hp_error_set(err, st, "%s", hp_slide_error(s));
    g->level_count = n;
    for (int l = 0; l < n; l++)
        g->downsamples[l] = hp_slide_level_downsample(s, l);
    return HP_OK;
}

/* Overlap lengths of [a, a + len) with mask cells [k * ds, (k + 1) * ds) for k in 0..n-1: the
 * first overlapping cell in *k0, the lengths in out[], their count returned. */
static int overlaps(double a, double len, double ds, int n, int *k0, double *out, int cap)
{
    double b = a + len;
    double flo = fmax(floor(a / ds), 0), fhi = fmin(ceil(b / ds), n); /* cells lo .. hi-1 */
    int lo = (int)flo, hi = fhi > flo ? (int)fhi : lo;
    int c = 0;
    for (int k = lo; k < hi && c < cap; k++) {
        double ca = k * ds, cb = (k + 1) * ds;
        double o = (cb < b ? cb : b) - (ca > a ? ca : a);
        out[c++] = o > 0 ? o : 0;
    }
    *k0 = lo;
    return c;
}

double hp_tile_mask_fraction(const hp_tile_mask *m, double x0, double y0, double w, double h)
{
    if (!m || !m->data || w <= 0 || h <= 0)
        return 0;
    /* A tile covers few mask cells (a mask is coarse); rectangles wider than this are scored in
     * strips so the stack arrays stay small. */
    enum { CAP = 512 };
    double ox[CAP], oy[CAP];
    /* Only the part inside the mask can hold tissue: clipping bounds the work by the mask's size
     * whatever the rectangle's. */
    double cx0 = fmax(x0, 0), cy0 = fmax(y0, 0);
    double cx1 = fmin(x0 + w, m->w * m->downsample_x), cy1 = fmin(y0 + h, m->h * m->downsample_y);
    double total = 0;
    double strip_w = CAP * m->downsample_x * 0.5, strip_h = CAP * m->downsample_y * 0.5;
    for (double sx = cx0; sx < cx1; sx += strip_w) {
        double sw = fmin(strip_w, cx1 - sx);
        int kx, ky;
        int nx = overlaps(sx, sw, m->downsample_x, m->w, &kx, ox, CAP);
        for (double sy = cy0; sy < cy1; sy += strip_h) {
            double sh = fmin(strip_h, cy1 - sy);
            int ny = overlaps(sy, sh, m->downsample_y, m->h, &ky, oy, CAP);
            for (int r = 0; r < ny; r++) {
                const uint8_t *row = m->data + (size_t)(ky + r) * m->w + kx;
                double acc = 0;
                for (int c = 0; c < nx; c++)
                    if (row[c])
                        acc += ox[c];
                total += acc * oy[r];
            }
        }
    }
    double f = total / (w * h);
    return f > 1 ? 1 : f;
}

static int finite_pos(double v) { return isfinite(v) && v > 0; }

static hp_status check_inputs(const hp_tile_geometry *g, const hp_tile_mask *mask,
                              const hp_tile_grid_options *o, hp_error *err)
{
    if (g->width < 1 || g->height < 1 || g->width > HP_SLIDE_MAX_SIDE ||
        g->height > HP_SLIDE_MAX_SIDE)
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: slide size %lldx%lld outside 1..%lld",
                            (long long)g->width, (long long)g->height, HP_SLIDE_MAX_SIDE);
    if (!(g->mpp_x >= HP_SLIDE_MPP_MIN && g->mpp_x <= HP_SLIDE_MPP_MAX) ||
        !(g->mpp_y >= HP_SLIDE_MPP_MIN && g->mpp_y <= HP_SLIDE_MPP_MAX))
        return hp_error_set(err, HP_ERR_INVALID,
                            "tile grid: slide MPP %g x %g outside %g..%g um/px", g->mpp_x, g->mpp_y,
                            HP_SLIDE_MPP_MIN, HP_SLIDE_MPP_MAX);
    if (g->level_count < 1 || g->level_count > HP_TILE_GRID_MAX_LEVELS)
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: %d levels (1..%d)", g->level_count,
                            HP_TILE_GRID_MAX_LEVELS);
    if (fabs(g->downsamples[0] - 1.0) > 1e-6)
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: level 0 downsample %g is not 1",
                            g->downsamples[0]);
    for (int l = 1; l < g->level_count; l++)
        if (!finite_pos(g->downsamples[l]) || g->downsamples[l] <= g->downsamples[l - 1])
            return hp_error_set(err, HP_ERR_INVALID,
                                "tile grid: level %d downsample %g does not increase", l,
                                g->downsamples[l]);
    if (!(o->target_mpp >= 0.01 && o->target_mpp <= 1000))
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: target MPP %g outside 0.01..1000",
                            o->target_mpp);
    if (o->tile_size < 1 || o->tile_size > HP_TILE_SIZE_MAX)
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: tile size %d outside 1..%d",
                            o->tile_size, HP_TILE_SIZE_MAX);
    if (!(o->min_tissue >= 0 && o->min_tissue <= 1))
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: minimum tissue fraction %g outside 0..1",
                            o->min_tissue);
    double ratio_x = o->target_mpp / g->mpp_x, ratio_y = o->target_mpp / g->mpp_y;
    if (ratio_x < 1 / MAX_UPSAMPLE || ratio_y < 1 / MAX_UPSAMPLE)
        return hp_error_set(err, HP_ERR_INVALID,
                            "tile grid: target %g um/px is more than %gx finer than the slide's "
                            "%g um/px",
                            o->target_mpp, MAX_UPSAMPLE, g->mpp_x < g->mpp_y ? g->mpp_x : g->mpp_y);
    if (o->roi_w < 0 || o->roi_h < 0 || (o->roi_w > 0) != (o->roi_h > 0))
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: region of interest size %lldx%lld",
                            (long long)o->roi_w, (long long)o->roi_h);
    if (mask) {
        /* A mask finer than 1/100 of a level-0 pixel or coarser than a million is not a mask. */
        if (!mask->data || mask->w < 1 || mask->h < 1 || !(mask->downsample_x >= 0.01) ||
            !(mask->downsample_y >= 0.01) || !(mask->downsample_x <= 1e6) ||
            !(mask->downsample_y <= 1e6))
            return hp_error_set(err, HP_ERR_INVALID,
                                "tile grid: bad tissue mask (%dx%d, downsample %g x %g)", mask->w,
                                mask->h, mask->downsample_x, mask->downsample_y);
    }
    return HP_OK;
}

hp_status hp_tile_grid_create(const hp_tile_geometry *g, const hp_tile_mask *mask,
                              const hp_tile_grid_options *opt, hp_tile_grid **out, hp_error *err)
{
    *out = NULL;
    hp_tile_grid_options defaults;
    if (!opt) {
        hp_tile_grid_options_init(&defaults);
        opt = &defaults;
    }
    if (!g)
        return hp_error_set(err, HP_ERR_INVALID, "tile grid: no slide geometry");
    hp_status st = check_inputs(g, mask, opt, err);
    if (st != HP_OK)
        return st;

    /* Region: the ROI clipped to the slide, or the slide. */
    int64_t rx = 0, ry = 0, rw = g->width, rh = g->height;
    if (opt->roi_w > 0) {
        int64_t ax = opt->roi_x, ay = opt->roi_y, bx = ax, by = ay;
        /* Corners beyond any slide would overflow below; such a region is simply outside. */
        if (opt->roi_x >= -HP_SLIDE_MAX_SIDE && opt->roi_y >= -HP_SLIDE_MAX_SIDE &&
            opt->roi_x <= g->width && opt->roi_y <= g->height &&
            opt->roi_w <= 4 * HP_SLIDE_MAX_SIDE && opt->roi_h <= 4 * HP_SLIDE_MAX_SIDE) {
            bx = ax + opt->roi_w;
            by = ay + opt->roi_h;
        }
        ax = ax < 0 ? 0 : ax;
        ay = ay < 0 ? 0 : ay;
        bx = bx > g->width ? g->width : bx;
        by = by > g->height ? g->height : by;
        if (bx <= ax || by <= ay)
            return hp_error_set(err, HP_ERR_INVALID,
                                "tile grid: region of interest (%lld, %lld) %lldx%lld lies outside "
                                "the %lldx%lld slide",
                                (long long)opt->roi_x, (long long)opt->roi_y,
                                (long long)opt->roi_w, (long long)opt->roi_h, (long long)g->width,
                                (long long)g->height);
        rx = ax;
        ry = ay;
        rw = bx - ax;
        rh = by - ay;
    }

    double step_x = opt->tile_size * opt->target_mpp / g->mpp_x;
    double step_y = opt->tile_size * opt->target_mpp / g->mpp_y;
    double ratio = opt->target_mpp / (g->mpp_x > g->mpp_y ? g->mpp_y : g->mpp_x);
    int level = 0;
    for (int l = 1; l < g->level_count; l++)
        if (g->downsamples[l] <= ratio * LEVEL_SLACK)
            level = l;
    double ds = g->downsamples[level];
    double read_w = floor(step_x / ds + 0.5), read_h = floor(step_y / ds + 0.5);
    if (read_w < 1)
        read_w = 1;
    if (read_h < 1)
        read_h = 1;
    if (read_w > HP_TILE_READ_SIDE_MAX || read_h > HP_TILE_READ_SIDE_MAX)
        return hp_error_set(err, HP_ERR_INVALID,
                            "tile grid: a %d px tile at %g um/px needs a %.0fx%.0f read at level "
                            "%d (downsample %g); more than %d px per side: add pyramid levels or "
                            "choose a finer target",
                            opt->tile_size, opt->target_mpp, read_w, read_h, level, ds,
                            HP_TILE_READ_SIDE_MAX);
    /* A rounding epsilon so a region that is an exact multiple of the step gets no sliver column. */
    double cols = ceil(rw / step_x - 1e-9), rows = ceil(rh / step_y - 1e-9);
    if (cols < 1)
        cols = 1;
    if (rows < 1)
        rows = 1;
    if (cols * rows > (double)MAX_CELLS)
        return hp_error_set(err, HP_ERR_INVALID,
                            "tile grid: %.0f x %.0f tiles is more than %lld cells", cols, rows,
                            (long long)MAX_CELLS);

    hp_tile_grid *grid = calloc(1, sizeof *grid);
    if (!grid)
        return hp_error_set(err, HP_ERR_NOMEM, "tile grid: out of memory");
    grid->cols = (int32_t)cols;
    grid->rows = (int32_t)rows;
    grid->origin_x = rx;
    grid->origin_y = ry;
    grid->step_x = step_x;
    grid->step_y = step_y;
    grid->size0_w = (int64_t)floor(step_x + 0.5);
    grid->size0_h = (int64_t)floor(step_y + 0.5);
    grid->tile_size = opt->tile_size;
    grid->target_mpp = opt->target_mpp;
    grid->level = level;
    grid->level_downsample = ds;
    grid->read_w = (int)read_w;
    grid->read_h = (int)read_h;
    grid->upsampled = grid->read_w < opt->tile_size || grid->read_h < opt->tile_size;

    int64_t cap = 0;
    for (int32_t j = 0; j < grid->rows; j++) {
        int64_t y0 = ry + (int64_t)floor(j * step_y + 0.5);
        for (int32_t i = 0; i < grid->cols; i++) {
            int64_t x0 = rx + (int64_t)floor(i * step_x + 0.5);
            double f = mask ? hp_tile_mask_fraction(mask, (double)x0, (double)y0, step_x, step_y)
                            : 1.0;
            if (f < opt->min_tissue)
                continue;
            if (grid->n_tiles == cap) {
                int64_t ncap = cap ? cap * 2 : 256;
                hp_tile *t = realloc(grid->tiles, (size_t)ncap * sizeof *t);
                if (!t) {
                    hp_tile_grid_destroy(grid);
                    return hp_error_set(err, HP_ERR_NOMEM, "tile grid: out of memory (%lld tiles)",
                                        (long long)ncap);
                }
                grid->tiles = t;
                cap = ncap;
            }
            grid->tiles[grid->n_tiles++] = (hp_tile){.index = (int64_t)j * grid->cols + i,
                                                     .i = i,
                                                     .j = j,
                                                     .x0 = x0,
                                                     .y0 = y0,
                                                     .tissue = (float)f};
        }
    }
    *out = grid;
    return HP_OK;
}

void hp_tile_grid_destroy(hp_tile_grid *grid)
{
    if (!grid)
        return;
    free(grid->tiles);
    free(grid);
}
