/* Tile routing and reduced decoding (io/slide.h "Who decoded what", "Reduced reads"):
 * - an OpenSlide slide of JPEG tiles read with the automatic reader gives exactly the bytes of
 *   OpenSlide's read_region, on every level, at aligned and unaligned positions, inside and across
 *   the edges, on a generated slide and on the real Aperio slide, and most of those reads are
 *   served by libtiff;
 * - the plain reader alone (--reader plain) sees the same pyramid levels as OpenSlide, and its
 *   thumbnail and tissue mask equal OpenSlide's;
 * - tiles decoded at reduced scale (DCT scaling) stay close to a full decode followed by area
 *   averaging: mean absolute difference at most 1 grey level over the tiles and at most 2 in any
 *   tile (measured: 0.3 and 0.5 on the generated slide, 0.1 and 0.4 on the real one); a grid
 *   whose reads do not fall on whole reduced pixels is decoded at full size;
 * - a slide opened with a decoded-tile cache (the tile server's) reads exactly the bytes of one
 *   opened without, for overlapping regions read twice, across tile borders and edges, on every
 *   level; the cache itself keeps the most recently used blocks and evicts the least. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/slide.h"
#include "io/tiff_block_cache.h"
#include "pipeline/synth.h"
#include "pipeline/tile_grid.h"
#include "pipeline/tile_loader.h"
#include "pipeline/tissue.h"
#include "util/testutil.h"

static int passed = 0;

static hp_slide *open_with(const char *path, hp_slide_reader r)
{
    hp_error err = {0};
    hp_slide_options o = {.reader = r};
    hp_slide *s = hp_slide_open(path, &o, &err);
    CHECK_MSG(s, "open %s: %s", path, err.msg);
    return s;
}

/* Reads the same region through both handles; 1 when the bytes are equal. */
static int same_region(hp_slide *a, hp_slide *b, int level, int64_t x, int64_t y, int w, int h)
{
    size_t n = (size_t)w * h * 3;
    uint8_t *p = malloc(n), *q = malloc(n);
    int ok = p && q && hp_slide_read_region(a, level, x, y, w, h, p) == HP_OK &&
             hp_slide_read_region(b, level, x, y, w, h, q) == HP_OK && !memcmp(p, q, n);
    if (!ok)
        fprintf(stderr, "level %d (%lld, %lld) %dx%d differs: %s %s\n", level, (long long)x,
                (long long)y, w, h, hp_slide_error(a), hp_slide_error(b));
    free(p);
    free(q);
    return ok;
}

static void check_routed_equals_openslide(const char *path, int expect_levels)
{
    hp_slide *a = open_with(path, HP_SLIDE_READER_AUTO), *o = open_with(path, HP_SLIDE_READER_OPENSLIDE);
    if (!a || !o)
        goto done;
    CHECK(hp_slide_level_count(a) == hp_slide_level_count(o) && hp_slide_level_count(a) >= expect_levels && hp_slide_routes_tiles(a));
    CHECK(!hp_slide_routes_tiles(o));
    int64_t W, H;
    CHECK(hp_slide_level_dimensions(a, 0, &W, &H) == HP_OK);
    for (int l = 0; l < hp_slide_level_count(a); l++) {
        int64_t d = (int64_t)hp_slide_level_downsample(a, l);
        /* Aligned to the level's pixels, unaligned (OpenSlide interpolates there; the read must
         * then go to OpenSlide), across the right and bottom edges and from negative corners. */
        const int64_t xs[] = {0, 3 * d, 517, W - 100 * d, -40 * d};
        const int64_t ys[] = {0, 5 * d, 301, H - 77 * d, -13 * d};
        for (int k = 0; k < 5; k++)
            CHECK_COUNT(passed, same_region(a, o, l, xs[k], ys[k], 311, 257));
    }
    /* The whole of level 0 in one read. */
    if (W * H <= 16LL * 1024 * 1024)
        CHECK_COUNT(passed, same_region(a, o, 0, 0, 0, (int)W, (int)H));
    int64_t ra[HP_SLIDE_READ_KINDS], ro[HP_SLIDE_READ_KINDS];
    hp_slide_read_counts(a, ra, HP_SLIDE_READ_KINDS);
    hp_slide_read_counts(o, ro, HP_SLIDE_READ_KINDS);
    printf("%s: routed reads %lld through libtiff, %lld through OpenSlide\n", path,
           (long long)ra[HP_SLIDE_READ_LIBTIFF], (long long)ra[HP_SLIDE_READ_OPENSLIDE]);
    CHECK(ra[HP_SLIDE_READ_LIBTIFF] > ra[HP_SLIDE_READ_OPENSLIDE]);
    CHECK(ro[HP_SLIDE_READ_LIBTIFF] == 0 && ro[HP_SLIDE_READ_OPENSLIDE] > 0);
done:
    hp_slide_close(a);
    hp_slide_close(o);
}

/* The plain reader alone: OpenSlide's levels, thumbnail and tissue mask. */
static void check_plain_levels(const char *path)
{
    hp_slide *p = open_with(path, HP_SLIDE_READER_PLAIN), *o = open_with(path, HP_SLIDE_READER_OPENSLIDE);
    if (!p || !o)
        goto done;
    CHECK_COUNT(passed, hp_slide_level_count(p) == hp_slide_level_count(o));
    for (int l = 0; l < hp_slide_level_count(o) && l < hp_slide_level_count(p); l++) {
        int64_t pw, ph, ow, oh;
        CHECK(hp_slide_level_dimensions(p, l, &pw, &ph) == HP_OK &&
              hp_slide_level_dimensions(o, l, &ow, &oh) == HP_OK);
        CHECK_COUNT(passed, pw == ow && ph == oh &&
                                hp_slide_level_downsample(p, l) == hp_slide_level_downsample(o, l));
    }
    uint8_t *tp = NULL, *to = NULL;
    int w1, h1, w2, h2;
    CHECK(hp_slide_read_thumbnail(p, 700, &tp, &w1, &h1) == HP_OK);
    CHECK(hp_slide_read_thumbnail(o, 700, &to, &w2, &h2) == HP_OK);
    CHECK_COUNT(passed, tp && to && w1 == w2 && h1 == h2 && !memcmp(tp, to, (size_t)w1 * h1 * 3));
    free(tp);
    free(to);
    hp_tissue_mask mp, mo;
    hp_error err = {0};
    CHECK(hp_tissue_detect(p, NULL, &mp, &err) == HP_OK);
    CHECK(hp_tissue_detect(o, NULL, &mo, &err) == HP_OK);
    CHECK_COUNT(passed, mp.mask && mo.mask && mp.w == mo.w && mp.h == mo.h &&
                            !memcmp(mp.mask, mo.mask, (size_t)mp.w * mp.h));
    /* The mask was made from a pyramid level, not level 0: level 0 was not read whole. */
    int64_t rc[HP_SLIDE_READ_KINDS];
    hp_slide_read_counts(p, rc, HP_SLIDE_READ_KINDS);
    CHECK(rc[HP_SLIDE_READ_LIBTIFF] > 0);
    hp_tissue_mask_free(&mp);
    hp_tissue_mask_free(&mo);
done:
    hp_slide_close(p);
    hp_slide_close(o);
}

/* Reduced decoding against a full decode and area averaging, tile by tile. */
static void check_reduced(const char *path, double target, int expect)
{
    hp_slide *s = open_with(path, HP_SLIDE_READER_AUTO);
    if (!s)
        return;
    hp_tile_geometry g;
    hp_error err = {0};
    hp_tile_grid *grid = NULL;
    hp_tile_grid_options o;
    hp_tile_grid_options_init(&o);
    o.target_mpp = target;
    CHECK(hp_tile_geometry_from_slide(s, &g, &err) == HP_OK);
    CHECK_MSG(hp_tile_grid_create(&g, NULL, &o, &grid, &err) == HP_OK, "%s", err.msg);
    if (!grid)
        goto done;
    int red = hp_tile_reduction(s, grid);
    printf("%s at %g um/px: read %dx%d at level %d, decoded at 1/%d\n", path, target, grid->read_w,
           grid->read_h, grid->level, red);
    CHECK_COUNT(passed, red == expect);
    if (red == 1)
        goto done;
    size_t tb = (size_t)grid->tile_size * grid->tile_size * 3;
    uint8_t *a = malloc(tb), *b = malloc(tb), *scr = malloc((size_t)grid->read_w * grid->read_h * 3);
    double sum = 0, worst = 0;
    int64_t n = 0;
    for (int64_t k = 0; k < grid->n_tiles && a && b && scr; k += 3) {
        CHECK(hp_tile_read(s, grid, &grid->tiles[k], scr, a) == HP_OK);
        CHECK(hp_tile_read_full(s, grid, &grid->tiles[k], scr, b) == HP_OK);
        double d = 0;
        for (size_t i = 0; i < tb; i++)
            d += abs((int)a[i] - (int)b[i]);
        d /= (double)tb;
        sum += d;
        worst = d > worst ? d : worst;
        n++;
    }
    double mean = n ? sum / (double)n : NAN;
    printf("reduced vs full decode: mean |difference| %.3f grey levels over %lld tiles, worst tile "
           "%.3f\n", mean, (long long)n, worst);
    CHECK_COUNT(passed, n > 0 && mean <= 1.0 && worst <= 2.0);
    int64_t rc[HP_SLIDE_READ_KINDS];
    hp_slide_read_counts(s, rc, HP_SLIDE_READ_KINDS);
    CHECK(rc[HP_SLIDE_READ_REDUCED] == n);
    /* A reduction the level does not allow is refused, by name. */
    CHECK(hp_slide_read_region_reduced(s, 0, 0, 0, 64, 64, 3, a) == HP_ERR_INVALID);
    free(a);
    free(b);
    free(scr);
done:
    hp_tile_grid_destroy(grid);
    hp_slide_close(s);
}

/* Overlapping regions, each read twice, through a cached handle against an uncached one. */
static void check_block_cache(const char *path)
{
    hp_error err = {0};
    hp_slide_options oc = {.block_cache_bytes = 8u << 20};
    hp_slide *c = hp_slide_open(path, &oc, &err);
    hp_slide *u = open_with(path, HP_SLIDE_READER_AUTO);
    CHECK_MSG(c, "open with a cache: %s", err.msg);
    if (c && u) {
        int64_t W, H;
        hp_slide_level_dimensions(u, 0, &W, &H);
        int ok = 1;
        for (int pass = 0; pass < 2; pass++)
            for (int k = 0; k < 12; k++) {
                int64_t x = (k * 197) % (W - 300) - 20, y = (k * 131) % (H - 300) - 20;
                for (int level = 0; level < hp_slide_level_count(u); level++)
                    ok &= same_region(c, u, level, x, y, 300, 260);
            }
        ok &= same_region(c, u, 0, W - 100, H - 90, 300, 260); /* across the far edges */
        CHECK_COUNT(passed, ok);
    }
    hp_slide_close(c);
    hp_slide_close(u);

    /* The cache alone: 4 blocks of 16 bytes; the least recently used goes first. */
    hp_block_cache *bc = hp_block_cache_create(64, 16);
    CHECK(bc);
    CHECK(!hp_block_cache_create(63, 16)); /* fewer than 4 blocks: not worth it */
    if (!bc)
        return;
    uint8_t blk[16], out[16];
    for (int i = 0; i < 4; i++) {
        memset(blk, i + 1, sizeof blk);
        hp_block_cache_put(bc, 0, i, blk);
    }
    CHECK_COUNT(passed, hp_block_cache_get(bc, 0, 0, out) && out[0] == 1 && out[15] == 1); /* 0 used again */
    memset(blk, 9, sizeof blk);
    hp_block_cache_put(bc, 0, 4, blk); /* evicts block 1, the least recently used */
    CHECK_COUNT(passed, !hp_block_cache_get(bc, 0, 1, out));
    CHECK_COUNT(passed, hp_block_cache_get(bc, 0, 0, out) && hp_block_cache_get(bc, 0, 4, out) && out[7] == 9);
    CHECK_COUNT(passed, !hp_block_cache_get(bc, 1, 0, out)); /* another level is another key */
    int64_t hits, misses;
    hp_block_cache_stats(bc, &hits, &misses);
    CHECK_COUNT(passed, hits == 3 && misses == 2);
    hp_block_cache_destroy(bc);
}

int main(void)
{
    char dir[] = "/tmp/hp_test_slide_routing_XXXXXX", path[600];
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(path, sizeof path, "%s/slide.tiff", dir);
    hp_synth_params p = {.seed = 23, .width = 6000, .height = 4500, .mpp = 0.25};
    hp_synth *syn = NULL;
    hp_error err = {0};
    hp_synth_write_options wo;
    hp_synth_write_options_init(&wo);
    wo.threads = 2;
    if (hp_synth_create(&p, &syn, &err) != HP_OK || hp_synth_write(syn, path, &wo, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        return 1;
    }
    hp_synth_destroy(syn);
    check_routed_equals_openslide(path, 2);
    check_plain_levels(path);
    check_reduced(path, 0.5, 2);
    check_block_cache(path);

    char svs[1024];
    if (hp_test_shared_path("data/real/slides/CMU-1-Small-Region.svs", svs, sizeof svs)) {
        check_routed_equals_openslide(svs, 1);
        check_plain_levels(svs);
        check_block_cache(svs);
        /* 0.998 um/px reads 448 px (2 x 224) per tile; 1.0 reads 449, not on whole reduced
         * pixels: decoded at full size. */
        check_reduced(svs, 0.998, 2);
        check_reduced(svs, 1.0, 1);
    }
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return hp_test_finish("test_slide_routing", passed);
}
