/* The tile grid: level choice and read size across MPP / target combinations, tissue fractions from
 * hand-made masks (against a per-pixel count), the threshold, regions of interest, edge tiles, and
 * refusal of absurd parameters. Pure geometry: no slide file is needed. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/tile_grid.h"
#include "util/testutil.h"

static int passed = 0;

/* A 3-level pyramid (downsamples 1, 4, 16) like the generator's, at `mpp`. */
static hp_tile_geometry pyramid(int64_t w, int64_t h, double mpp)
{
    hp_tile_geometry g = {.width = w, .height = h, .mpp_x = mpp, .mpp_y = mpp, .level_count = 3};
    g.downsamples[0] = 1;
    g.downsamples[1] = 4;
    g.downsamples[2] = 16;
    return g;
}

static hp_tile_grid *grid_for(const hp_tile_geometry *g, const hp_tile_mask *m, double target,
                              int tile, double min_tissue)
{
    hp_tile_grid_options o;
    hp_tile_grid_options_init(&o);
    o.target_mpp = target;
    o.tile_size = tile;
    o.min_tissue = min_tissue;
    hp_tile_grid *grid = NULL;
    hp_error err = {0};
    hp_status st = hp_tile_grid_create(g, m, &o, &grid, &err);
    CHECK_MSG(st == HP_OK && grid, "target %g tile %d: %s", target, tile, err.msg);
    return grid;
}

static void test_level_choice(void)
{
    hp_tile_geometry g = pyramid(20000, 15000, 0.25);
    struct {
        double target;
        int tile, level, read, upsampled;
        double step;
    } cases[] = {
        {0.5, 224, 0, 448, 0, 448},   /* level 0 read at 448, halved */
        {1.0, 224, 1, 224, 0, 896},   /* the 4x level read at the tile size exactly */
        {2.0, 224, 1, 448, 0, 1792},  /* between levels: the finer one */
        {4.0, 224, 2, 224, 0, 3584},  /* the 16x level */
        {8.0, 224, 2, 448, 0, 7168},  /* coarser than the coarsest level */
        {0.25, 224, 0, 224, 0, 224},  /* level 0 exactly */
        {0.125, 224, 0, 112, 1, 112}, /* finer than level 0: upsampled, flagged */
        {0.5, 256, 0, 512, 0, 512},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hp_tile_grid *grid = grid_for(&g, NULL, cases[c].target, cases[c].tile, 0.25);
        if (!grid)
            continue;
        CHECK_MSG(grid->level == cases[c].level, "target %g: level %d", cases[c].target,
                  grid->level);
        CHECK_MSG(grid->read_w == cases[c].read && grid->read_h == cases[c].read,
                  "target %g: read %dx%d", cases[c].target, grid->read_w, grid->read_h);
        CHECK(grid->upsampled == cases[c].upsampled);
        CHECK(fabs(grid->step_x - cases[c].step) < 1e-9 && fabs(grid->step_y - cases[c].step) < 1e-9);
        CHECK(grid->tile_size == cases[c].tile);
        CHECK(grid->level_downsample == g.downsamples[cases[c].level]);
        /* Whole slide covered, no spare column or row. */
        CHECK(grid->cols == (int32_t)ceil(20000 / cases[c].step));
        CHECK(grid->rows == (int32_t)ceil(15000 / cases[c].step));
        CHECK(grid->n_tiles == (int64_t)grid->cols * grid->rows); /* no mask: every tile */
        hp_tile_grid_destroy(grid);
    }

    /* Scanner downsamples are not exact: 4.000345 still serves a 4x target. */
    hp_tile_geometry a = pyramid(20000, 15000, 0.25);
    a.downsamples[1] = 4.000345;
    a.downsamples[2] = 16.0021;
    hp_tile_grid *grid = grid_for(&a, NULL, 1.0, 224, 0.25);
    if (grid) {
        CHECK(grid->level == 1 && grid->read_w == 224 && grid->read_h == 224);
        hp_tile_grid_destroy(grid);
    }
    /* A real-world MPP: 0.2527 um/px to 0.5 gives a 443.2-pixel step, read at 443. */
    hp_tile_geometry r = pyramid(20000, 15000, 0.2527);
    grid = grid_for(&r, NULL, 0.5, 224, 0.25);
    if (grid) {
        CHECK(grid->level == 0 && grid->read_w == 443 && grid->size0_w == 443);
        CHECK(fabs(grid->step_x - 224 * 0.5 / 0.2527) < 1e-9);
        /* Origins are the rounded multiples of the exact step, so they never drift. */
        for (int64_t k = 0; k < grid->n_tiles; k++) {
            const hp_tile *t = &grid->tiles[k];
            CHECK(t->x0 == (int64_t)floor(t->i * grid->step_x + 0.5));
            CHECK(t->y0 == (int64_t)floor(t->j * grid->step_y + 0.5));
        }
        hp_tile_grid_destroy(grid);
    }
    /* Anisotropic pixels: each axis has its own step and read size. */
    hp_tile_geometry an = pyramid(8000, 8000, 0.25);
    an.mpp_y = 0.5;
    grid = grid_for(&an, NULL, 0.5, 224, 0.25);
    if (grid) {
        CHECK(grid->level == 0 && grid->read_w == 448 && grid->read_h == 224);
        CHECK(grid->cols == 18 && grid->rows == 36);
        hp_tile_grid_destroy(grid);
    }
    /* A single-level image (a BACH photo) at 0.42 um/px to 0.5. */
    hp_tile_geometry one = {.width = 2048, .height = 1536, .mpp_x = 0.42, .mpp_y = 0.42,
                            .level_count = 1, .downsamples = {1}};
    grid = grid_for(&one, NULL, 0.5, 224, 0.25);
    if (grid) {
        CHECK(grid->level == 0 && grid->read_w == 267 && !grid->upsampled);
        hp_tile_grid_destroy(grid);
    }
    passed++;
}

/* Row-major order and the index / position bookkeeping of every kept tile. */
static void check_order(const hp_tile_grid *grid)
{
    for (int64_t k = 0; k < grid->n_tiles; k++) {
        const hp_tile *t = &grid->tiles[k];
        CHECK(t->index == (int64_t)t->j * grid->cols + t->i);
        CHECK(t->i >= 0 && t->i < grid->cols && t->j >= 0 && t->j < grid->rows);
        if (k > 0)
            CHECK(t->index > grid->tiles[k - 1].index);
    }
}

static void test_tissue_filter(void)
{
    /* 1000 x 1000 at 0.5 um/px, 100-pixel tiles at 0.5: a 10 x 10 grid. Mask 40 x 40 at 25
     * level-0 pixels per mask pixel: the left half is tissue, plus a strip filling exactly a
     * quarter of tile (5, 0) and an eighth of tile (6, 0). */
    hp_tile_geometry g = pyramid(1000, 1000, 0.5);
    uint8_t *m = calloc(40 * 40, 1);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 20; x++)
            m[y * 40 + x] = 255;
    for (int y = 0; y < 4; y++)
        m[y * 40 + 20] = 255; /* x 500..525, y 0..100: a quarter of tile (5, 0) */
    for (int y = 0; y < 2; y++)
        m[y * 40 + 24] = 1; /* any non-zero value is tissue: an eighth of tile (6, 0) */
    hp_tile_mask mask = {.data = m, .w = 40, .h = 40, .downsample_x = 25, .downsample_y = 25};

    hp_tile_grid *grid = grid_for(&g, &mask, 0.5, 100, 0.25);
    if (grid) {
        CHECK(grid->cols == 10 && grid->rows == 10);
        CHECK_MSG(grid->n_tiles == 51, "%lld kept", (long long)grid->n_tiles);
        check_order(grid);
        int saw_quarter = 0;
        for (int64_t k = 0; k < grid->n_tiles; k++) {
            const hp_tile *t = &grid->tiles[k];
            if (t->i < 5)
                CHECK(t->tissue == 1.0f);
            else {
                CHECK(t->i == 5 && t->j == 0 && fabsf(t->tissue - 0.25f) < 1e-6f);
                saw_quarter = 1;
            }
        }
        CHECK(saw_quarter);
        /* Row 0 keeps columns 0..5: the sixth kept tile is (5, 0), index 5. */
        CHECK(grid->tiles[5].index == 5 && grid->tiles[6].index == 10);
        hp_tile_grid_destroy(grid);
    }
    /* min_tissue 0 keeps everything, each with its fraction; 1 keeps only full tiles. */
    grid = grid_for(&g, &mask, 0.5, 100, 0.0);
    if (grid) {
        CHECK(grid->n_tiles == 100);
        CHECK(fabsf(grid->tiles[6].tissue - 0.125f) < 1e-6f);
        CHECK(grid->tiles[7].tissue == 0.0f);
        hp_tile_grid_destroy(grid);
    }
    grid = grid_for(&g, &mask, 0.5, 100, 1.0);
    if (grid) {
        CHECK(grid->n_tiles == 50);
        hp_tile_grid_destroy(grid);
    }
    free(m);

    /* A random mask whose cells (30 px) do not line up with the tiles (100 px, then a 137.5 px
     * step): every fraction equals a count over level-0 pixels. The mask covers less than the
     * slide (the rest counts as background). */
    int mw = 30, mh = 25;
    m = malloc((size_t)mw * mh);
    uint32_t s = 12345;
    for (int k = 0; k < mw * mh; k++) {
        s = s * 1664525u + 1013904223u;
        m[k] = (s >> 24) < 100 ? 0 : 200;
    }
    mask = (hp_tile_mask){.data = m, .w = mw, .h = mh, .downsample_x = 30, .downsample_y = 30};
    double targets[] = {0.5, 0.6875};
    for (int c = 0; c < 2; c++) {
        grid = grid_for(&g, &mask, targets[c], 100, 0.0);
        if (!grid)
            continue;
        for (int64_t k = 0; k < grid->n_tiles; k++) {
            const hp_tile *t = &grid->tiles[k];
            /* The tile spans [x0, x0 + step): with step 137.5 the last column is half a pixel. */
            double count = 0;
            double x1 = t->x0 + grid->step_x, y1 = t->y0 + grid->step_y;
            for (int64_t y = t->y0; y < y1; y++)
                for (int64_t x = t->x0; x < x1; x++) {
                    int in = x / 30 < mw && y / 30 < mh && m[(y / 30) * mw + x / 30];
                    double wx = x + 1 > x1 ? x1 - x : 1, wy = y + 1 > y1 ? y1 - y : 1;
                    count += in * wx * wy;
                }
            double want = count / (grid->step_x * grid->step_y);
            CHECK_MSG(fabs(t->tissue - want) < 1e-6, "tile %lld: %g vs %g", (long long)k,
                      (double)t->tissue, want);
            CHECK(fabs(hp_tile_mask_fraction(&mask, (double)t->x0, (double)t->y0, grid->step_x,
                                             grid->step_y) -
                       want) < 1e-9);
        }
        hp_tile_grid_destroy(grid);
    }
    /* A fine mask (0.02 level-0 px per cell) scored over a rectangle many times its size: the
     * fraction is computed in strips, and must still be the mask's tissue area over the area. */
    int ones = 0;
    for (int k = 0; k < mw * mh; k++)
        ones += m[k] != 0;
    hp_tile_mask fine = {.data = m, .w = mw, .h = mh, .downsample_x = 0.02, .downsample_y = 0.02};
    double f = hp_tile_mask_fraction(&fine, 0, 0, 12, 10);
    CHECK_MSG(fabs(f - ones * 0.02 * 0.02 / 120) < 1e-9, "%g vs %g", f, ones * 0.0004 / 120);
    CHECK(fabs(hp_tile_mask_fraction(&fine, 0, 0, 0.6, 0.5) - ones / 750.0) < 1e-9);
    uint8_t full = 1;
    hp_tile_mask tiny = {.data = &full, .w = 1, .h = 1, .downsample_x = 0.5, .downsample_y = 0.5};
    CHECK(fabs(hp_tile_mask_fraction(&tiny, 0, 0, 1000, 1000) - 0.25e-6) < 1e-12);
    CHECK(hp_tile_mask_fraction(&tiny, 5, 5, 10, 10) == 0); /* outside the mask: background */
    /* A rectangle a million times the fine mask's size is scored by the mask's extent, fast. */
    CHECK(fabs(hp_tile_mask_fraction(&fine, -1e6, -1e6, 2e6, 2e6) - ones * 0.0004 / 4e12) < 1e-18);
    free(m);
    passed++;
}

static void test_roi_and_edges(void)
{
    hp_tile_geometry g = pyramid(1000, 1000, 0.5);
    hp_tile_grid_options o;
    hp_tile_grid_options_init(&o);
    o.tile_size = 100;
    o.target_mpp = 0.5;
    o.roi_x = 250;
    o.roi_y = 130;
    o.roi_w = 520;
    o.roi_h = 300;
    hp_tile_grid *grid = NULL;
    hp_error err = {0};
    CHECK(hp_tile_grid_create(&g, NULL, &o, &grid, &err) == HP_OK);
    if (grid) {
        CHECK(grid->origin_x == 250 && grid->origin_y == 130);
        CHECK(grid->cols == 6 && grid->rows == 3 && grid->n_tiles == 18);
        CHECK(grid->tiles[0].x0 == 250 && grid->tiles[0].y0 == 130);
        CHECK(grid->tiles[17].x0 == 750 && grid->tiles[17].y0 == 330);
        check_order(grid);
        hp_tile_grid_destroy(grid);
    }
    /* Partly outside: clipped to the slide. */
    o.roi_x = -50;
    o.roi_y = 900;
    o.roi_w = 200;
    o.roi_h = 500;
    CHECK(hp_tile_grid_create(&g, NULL, &o, &grid, &err) == HP_OK);
    if (grid) {
        CHECK(grid->origin_x == 0 && grid->origin_y == 900);
        CHECK(grid->cols == 2 && grid->rows == 1);
        hp_tile_grid_destroy(grid);
    }
    /* Entirely outside, or absurdly placed: refused, with a message. */
    int64_t bad[][4] = {{1000, 0, 10, 10},       {-500, -500, 400, 400},
                        {INT64_MAX, 0, 10, 10},  {0, 0, INT64_MAX, INT64_MAX},
                        {INT64_MIN, 5, 10, 10},  {0, 0, 10, -3},
                        {0, 0, 10, 0}};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        o.roi_x = bad[c][0];
        o.roi_y = bad[c][1];
        o.roi_w = bad[c][2];
        o.roi_h = bad[c][3];
        hp_error e = {0};
        grid = (hp_tile_grid *)1;
        hp_status st = hp_tile_grid_create(&g, NULL, &o, &grid, &e);
        CHECK_MSG(st == HP_ERR_INVALID && grid == NULL && e.msg[0], "case %zu", c);
    }

    /* Edge tiles: 896-pixel tiles over 1000 pixels make 2 columns, the last reaching to 1792. */
    grid = grid_for(&g, NULL, 2.24, 200, 0.25); /* step 200 * 2.24 / 0.5 = 896 */
    if (grid) {
        CHECK(grid->cols == 2 && grid->rows == 2);
        CHECK(grid->tiles[1].x0 == 896 && grid->tiles[1].x0 + grid->size0_w > 1000);
        hp_tile_grid_destroy(grid);
    }
    /* An edge tile is scored over its whole area: a full-tissue mask gives it 104/896. */
    uint8_t *m = malloc(100 * 100);
    memset(m, 1, 100 * 100);
    hp_tile_mask mask = {.data = m, .w = 100, .h = 100, .downsample_x = 10, .downsample_y = 10};
    grid = grid_for(&g, &mask, 2.24, 200, 0.0);
    if (grid) {
        CHECK(grid->n_tiles == 4);
        CHECK(fabsf(grid->tiles[0].tissue - 1.0f) < 1e-6f);
        CHECK(fabsf(grid->tiles[1].tissue - 104.0f / 896) < 1e-6f);
        CHECK(fabsf(grid->tiles[3].tissue - (104.0f / 896) * (104.0f / 896)) < 1e-6f);
        hp_tile_grid_destroy(grid);
    }
    grid = grid_for(&g, &mask, 2.24, 200, 0.25);
    if (grid) {
        CHECK(grid->n_tiles == 1);
        hp_tile_grid_destroy(grid);
    }
    free(m);
    passed++;
}

static void refuse(const hp_tile_geometry *g, const hp_tile_mask *m, const hp_tile_grid_options *o,
                   const char *what)
{
    hp_tile_grid *grid = (hp_tile_grid *)1;
    hp_error err = {0};
    hp_status st = hp_tile_grid_create(g, m, o, &grid, &err);
    CHECK_MSG(st != HP_OK && grid == NULL && err.msg[0], "%s was accepted", what);
    if (st == HP_OK)
        hp_tile_grid_destroy(grid);
}

static void test_refusals(void)
{
    hp_tile_geometry ok = pyramid(20000, 15000, 0.25);
    hp_tile_grid_options o0;
    hp_tile_grid_options_init(&o0);
    CHECK(o0.target_mpp == 0.5 && o0.tile_size == 224 && o0.min_tissue == 0.25);

    hp_tile_grid_options o = o0;
    double targets[] = {0, -0.5, NAN, INFINITY, 1e9, 0.01 /* 25x finer than the slide */};
    for (size_t k = 0; k < sizeof targets / sizeof targets[0]; k++) {
        o = o0;
        o.target_mpp = targets[k];
        refuse(&ok, NULL, &o, "a bad target MPP");
    }
    int tiles[] = {0, -224, HP_TILE_SIZE_MAX + 1};
    for (size_t k = 0; k < sizeof tiles / sizeof tiles[0]; k++) {
        o = o0;
        o.tile_size = tiles[k];
        refuse(&ok, NULL, &o, "a bad tile size");
    }
    double fr[] = {-0.1, 1.5, NAN};
    for (size_t k = 0; k < 3; k++) {
        o = o0;
        o.min_tissue = fr[k];
        refuse(&ok, NULL, &o, "a bad tissue fraction");
    }
    /* A 20 um/px target from a single 0.25 um/px level: a 17,920-pixel read per tile. */
    hp_tile_geometry single = ok;
    single.level_count = 1;
    o = o0;
    o.target_mpp = 20;
    refuse(&single, NULL, &o, "a read larger than the limit");

    hp_tile_geometry g = ok;
    g.width = 0;
    refuse(&g, NULL, &o0, "a zero width");
    g = ok;
    g.height = (int64_t)1 << 40;
    refuse(&g, NULL, &o0, "a huge height");
    g = ok;
    g.mpp_x = 0;
    refuse(&g, NULL, &o0, "a zero MPP");
    g = ok;
    g.mpp_y = NAN;
    refuse(&g, NULL, &o0, "a NaN MPP");
    g = ok;
    g.level_count = 0;
    refuse(&g, NULL, &o0, "no levels");
    g = ok;
    g.level_count = HP_TILE_GRID_MAX_LEVELS + 1;
    refuse(&g, NULL, &o0, "too many levels");
    g = ok;
    g.downsamples[0] = 2;
    refuse(&g, NULL, &o0, "level 0 downsampled");
    g = ok;
    g.downsamples[2] = 4;
    refuse(&g, NULL, &o0, "downsamples not increasing");
    refuse(NULL, NULL, &o0, "no geometry");

    uint8_t px[4] = {0};
    hp_tile_mask masks[] = {
        {.data = NULL, .w = 2, .h = 2, .downsample_x = 1, .downsample_y = 1},
        {.data = px, .w = 0, .h = 2, .downsample_x = 1, .downsample_y = 1},
        {.data = px, .w = 2, .h = 2, .downsample_x = 0, .downsample_y = 1},
        {.data = px, .w = 2, .h = 2, .downsample_x = 1, .downsample_y = NAN},
        {.data = px, .w = 2, .h = 2, .downsample_x = 1e300, .downsample_y = 1},
    };
    for (size_t k = 0; k < sizeof masks / sizeof masks[0]; k++)
        refuse(&ok, &masks[k], &o0, "a bad mask");

    /* Too many cells: a 1-pixel tile over a 2M x 2M slide at its own MPP. */
    hp_tile_geometry big = pyramid(HP_TILE_READ_SIDE_MAX * 256LL, HP_TILE_READ_SIDE_MAX * 256LL,
                                   0.25);
    o = o0;
    o.tile_size = 1;
    o.target_mpp = 0.25;
    refuse(&big, NULL, &o, "four trillion cells");

    hp_tile_grid_destroy(NULL);
    passed++;
}

int main(void)
{
    test_level_choice();
    test_tissue_filter();
    test_roi_and_edges();
    test_refusals();
    return hp_test_finish("test_tile_grid", passed);
}
