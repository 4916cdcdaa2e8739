/* The tile loader on a generated slide: every delivered tile equals a direct read + resize of the
 * same tile; order and bytes are the same for 1, 2 and 4 threads and queue depths 1..4; no more
 * than queue_depth buffers are ever alive (counted through the allocator hook); a tile that cannot
 * be read fails the stream with a message naming it; destroy mid-stream returns and frees all. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/slide.h"
#include "pipeline/synth.h"
#include "pipeline/tile_grid.h"
#include "pipeline/tile_loader.h"
#include "util/testutil.h"

static int passed = 0;
static char slide_path[512];

/* Counts live buffers; can be told to fail the n-th allocation. */
typedef struct {
    int alive, max_alive, allocs, fail_at;
} counter;

static void *count_alloc(size_t bytes, void *user)
{
    counter *c = user;
    if (++c->allocs == c->fail_at)
        return NULL;
    void *p = malloc(bytes);
    memset(p, 0xAB, bytes); /* stale bytes must never leak into a batch */
    c->alive++;
    if (c->alive > c->max_alive)
        c->max_alive = c->alive;
    return p;
}

static void count_free(void *p, void *user)
{
    counter *c = user;
    c->alive--;
    free(p);
}

static hp_slide *open_slide(void)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(slide_path, NULL, &err);
    CHECK_MSG(s, "open: %s", err.msg);
    return s;
}

/* The grid over the generated slide at `target` um/px, keeping tiles with any tissue by a mask
 * built from the generator's own layout (one mask pixel per 64 level-0 pixels). */
static hp_tile_grid *make_grid(hp_slide *s, const hp_synth *syn, double target, int tile)
{
    hp_tile_geometry g;
    hp_error err = {0};
    if (hp_tile_geometry_from_slide(s, &g, &err) != HP_OK) {
        CHECK_MSG(0, "geometry: %s", err.msg);
        return NULL;
    }
    int mw = (int)((g.width + 63) / 64), mh = (int)((g.height + 63) / 64);
    uint8_t *m = malloc((size_t)mw * mh);
    for (int y = 0; y < mh; y++)
        for (int x = 0; x < mw; x++)
            m[y * mw + x] = hp_synth_class_at(syn, x * 64 + 32, y * 64 + 32) ? 255 : 0;
    hp_tile_mask mask = {.data = m, .w = mw, .h = mh, .downsample_x = 64, .downsample_y = 64};
    hp_tile_grid_options o;
    hp_tile_grid_options_init(&o);
    o.target_mpp = target;
    o.tile_size = tile;
    o.min_tissue = 0.1;
    hp_tile_grid *grid = NULL;
    CHECK_MSG(hp_tile_grid_create(&g, &mask, &o, &grid, &err) == HP_OK, "grid: %s", err.msg);
    free(m);
    return grid;
}

/* Each kept tile read on its own with hp_tile_read (the read at the grid's level, decoded at
 * reduced scale where the loader does so, then resized). */
static uint8_t *reference_tiles(hp_slide *s, const hp_tile_grid *g)
{
    size_t tb = (size_t)g->tile_size * g->tile_size * 3;
    uint8_t *ref = malloc(tb * (size_t)g->n_tiles);
    uint8_t *buf = malloc((size_t)g->read_w * g->read_h * 3);
    for (int64_t k = 0; k < g->n_tiles; k++) {
        const hp_tile *t = &g->tiles[k];
        CHECK(hp_tile_read(s, g, t, buf, ref + tb * k) == HP_OK);
    }
    free(buf);
    return ref;
}

/* Runs the loader to the end and checks every batch against the reference. Returns the number
 * of tiles delivered. */
static int64_t run_and_check(hp_slide *s, const hp_tile_grid *g, const uint8_t *ref, int batch,
                             int threads, int depth, counter *c)
{
    hp_tile_loader_options o = {.allocator = {count_alloc, count_free, c}};
    hp_tile_loader *l = NULL;
    hp_error err = {0};
    if (hp_tile_loader_create(s, g, batch, threads, depth, &o, &l, &err) != HP_OK) {
        CHECK_MSG(0, "create: %s", err.msg);
        return -1;
    }
    size_t tb = (size_t)g->tile_size * g->tile_size * 3;
    int64_t k = 0, delivered = 0;
    for (;;) {
        hp_tile_batch *b = NULL;
        hp_status st = hp_tile_loader_next(l, &b);
        CHECK_MSG(st == HP_OK, "next: %s", hp_tile_loader_error(l));
        if (st != HP_OK || !b)
            break;
        CHECK(b->batch_index == k && b->first == k * batch);
        int64_t want = g->n_tiles - k * batch < batch ? g->n_tiles - k * batch : batch;
        CHECK(b->count == want && b->tiles == g->tiles + k * batch);
        CHECK_MSG(memcmp(b->rgb, ref + tb * k * batch, tb * b->count) == 0,
                  "batch %lld differs (threads %d, depth %d)", (long long)k, threads, depth);
        for (size_t z = tb * b->count; z < tb * batch; z++)
            if (b->rgb[z]) {
                CHECK_MSG(0, "the tail of the short batch is not zero");
                break;
            }
        delivered += b->count;
        hp_tile_loader_release(l, b);
        k++;
    }
    CHECK(k == hp_tile_loader_batch_count(l));
    hp_tile_loader_stats st;
    hp_tile_thread_stats per[8];
    hp_tile_loader_stats_get(l, &st, per);
    CHECK(st.n_threads == threads && st.total.tiles == g->n_tiles);
    /* Reads decoded at reduced scale are smaller by the reduction on each side. */
    CHECK(st.reduce == hp_tile_reduction(s, g));
    CHECK(st.total.bytes_read ==
          g->n_tiles * (int64_t)(g->read_w / st.reduce) * (g->read_h / st.reduce) * 3);
    CHECK(st.total.read_seconds > 0 && st.total.resample_seconds >= 0 && st.wait_seconds >= 0);
    int64_t sum = 0;
    for (int t = 0; t < threads; t++)
        sum += per[t].tiles;
    CHECK(sum == g->n_tiles);
    hp_tile_loader_destroy(l);
    return delivered;
}

static void test_order_and_content(const hp_synth *syn)
{
    hp_slide *s = open_slide();
    if (!s)
        return;
    /* 1.0 um/px from a 0.5 um/px slide: level 0 read at 256 and halved. Batch 7 leaves a short
     * last batch. */
    hp_tile_grid *g = make_grid(s, syn, 1.0, 128);
    if (!g) {
        hp_slide_close(s);
        return;
    }
    CHECK(g->level == 0 && g->read_w == 256 && g->n_tiles > 40);
    CHECK(g->n_tiles % 7 != 0);
    uint8_t *ref = reference_tiles(s, g);
    int threads[] = {1, 2, 4};
    for (int ti = 0; ti < 3; ti++)
        for (int depth = 1; depth <= 4; depth++) {
            counter c = {0};
            int64_t n = run_and_check(s, g, ref, 7, threads[ti], depth, &c);
            CHECK(n == g->n_tiles);
            CHECK_MSG(c.max_alive <= depth && c.allocs <= depth, "depth %d: %d buffers alive",
                      depth, c.max_alive);
            CHECK(c.alive == 0);
        }
    free(ref);
    hp_tile_grid_destroy(g);

    /* 2.0 um/px: the 4x level read at the tile size, no resampling. 0.7 um/px: a 90-pixel read
     * resized to 64 (a non-integer factor). */
    double targets[] = {2.0, 0.7};
    int sizes[] = {100, 64};
    for (int c = 0; c < 2; c++) {
        g = make_grid(s, syn, targets[c], sizes[c]);
        if (!g)
            continue;
        if (c == 0)
            CHECK(g->level == 1 && g->read_w == 100);
        else
            CHECK(g->level == 0 && g->read_w == 90);
        ref = reference_tiles(s, g);
        counter cnt = {0};
        CHECK(run_and_check(s, g, ref, 16, 2, 2, &cnt) == g->n_tiles);
        /* hp_tile_read is the same read. */
        size_t tb = (size_t)g->tile_size * g->tile_size * 3;
        uint8_t *one = malloc(tb), *scratch = malloc((size_t)g->read_w * g->read_h * 3);
        int64_t k = g->n_tiles / 2;
        CHECK(hp_tile_read(s, g, &g->tiles[k], scratch, one) == HP_OK);
        CHECK(memcmp(one, ref + tb * k, tb) == 0);
        free(one);
        free(scratch);
        free(ref);
        hp_tile_grid_destroy(g);
    }
    hp_slide_close(s);
    passed++;
}

/* The consumer may hold several batches and release them out of order; holding every buffer and
 * asking for more is an error, not a hang. */
static void test_holding(const hp_synth *syn)
{
    hp_slide *s = open_slide();
    hp_tile_grid *g = s ? make_grid(s, syn, 1.0, 128) : NULL;
    if (!g) {
        hp_slide_close(s);
        return;
    }
    uint8_t *ref = reference_tiles(s, g);
    size_t tb = (size_t)g->tile_size * g->tile_size * 3;
    counter c = {0};
    hp_tile_loader_options o = {.allocator = {count_alloc, count_free, &c}};
    hp_tile_loader *l = NULL;
    hp_error err = {0};
    CHECK(hp_tile_loader_create(s, g, 5, 3, 3, &o, &l, &err) == HP_OK);
    if (l) {
        hp_tile_batch *b[3] = {0};
        for (int k = 0; k < 3; k++) {
            CHECK(hp_tile_loader_next(l, &b[k]) == HP_OK && b[k]);
            if (b[k])
                CHECK(b[k]->batch_index == k && memcmp(b[k]->rgb, ref + tb * 5 * k, tb * 5) == 0);
        }
        hp_tile_loader_release(l, b[1]);
        hp_tile_batch *n = NULL;
        CHECK(hp_tile_loader_next(l, &n) == HP_OK && n && n->batch_index == 3);
        if (n)
            CHECK(memcmp(n->rgb, ref + tb * 15, tb * 5) == 0);
        /* b[0], b[2] and n held: all three buffers. */
        hp_tile_batch *x = (hp_tile_batch *)1;
        CHECK(hp_tile_loader_next(l, &x) == HP_ERR_INVALID && x == NULL);
        CHECK(strstr(hp_tile_loader_error(l), "held") != NULL);
        hp_tile_loader_destroy(l); /* with batches held */
    }
    CHECK(c.alive == 0 && c.max_alive <= 3);
    free(ref);
    hp_tile_grid_destroy(g);
    hp_slide_close(s);
    passed++;
}

/* A tile whose coordinates no slide can have (the reader refuses them) fails the stream. */
static void test_read_error(const hp_synth *syn)
{
    hp_slide *s = open_slide();
    hp_tile_grid *g = s ? make_grid(s, syn, 1.0, 128) : NULL;
    if (!g) {
        hp_slide_close(s);
        return;
    }
    uint8_t *ref = reference_tiles(s, g);
    size_t tb = (size_t)g->tile_size * g->tile_size * 3;
    int threads[] = {1, 4};
    for (int ti = 0; ti < 2; ti++) {
        /* A fresh handle: the slide keeps its first error. */
        hp_slide *s2 = open_slide();
        hp_tile_grid bad = *g;
        bad.tiles = malloc(sizeof(hp_tile) * (size_t)g->n_tiles);
        memcpy(bad.tiles, g->tiles, sizeof(hp_tile) * (size_t)g->n_tiles);
        bad.tiles[37].x0 = (int64_t)1 << 50;
        counter c = {0};
        hp_tile_loader_options o = {.allocator = {count_alloc, count_free, &c}};
        hp_tile_loader *l = NULL;
        hp_error err = {0};
        CHECK(hp_tile_loader_create(s2, &bad, 7, threads[ti], 2, &o, &l, &err) == HP_OK);
        hp_status st = HP_OK;
        int64_t k = 0;
        while (l) {
            hp_tile_batch *b = NULL;
            st = hp_tile_loader_next(l, &b);
            if (st != HP_OK || !b)
                break;
            /* Batches before the bad one may arrive, and are right. */
            CHECK(b->batch_index == k && k < 37 / 7);
            CHECK(memcmp(b->rgb, ref + tb * 7 * k, tb * b->count) == 0);
            hp_tile_loader_release(l, b);
            k++;
        }
        CHECK(st == HP_ERR_INVALID);
        const char *msg = l ? hp_tile_loader_error(l) : "";
        CHECK_MSG(strstr(msg, "tile 37 ") && strstr(msg, slide_path), "message: %s", msg);
        /* The error stays. */
        hp_tile_batch *b = NULL;
        CHECK(!l || (hp_tile_loader_next(l, &b) == st && !b));
        hp_tile_loader_destroy(l);
        CHECK(c.alive == 0);
        free(bad.tiles);
        hp_slide_close(s2);
    }
    free(ref);
    hp_tile_grid_destroy(g);
    hp_slide_close(s);
    passed++;
}

/* Destroy at any point: right after create, after one batch (held), after one released. */
static void test_destroy_midstream(const hp_synth *syn)
{
    hp_slide *s = open_slide();
    hp_tile_grid *g = s ? make_grid(s, syn, 1.0, 128) : NULL;
    if (!g) {
        hp_slide_close(s);
        return;
    }
    for (int when = 0; when < 3; when++) {
        counter c = {0};
        hp_tile_loader_options o = {.allocator = {count_alloc, count_free, &c}};
        hp_tile_loader *l = NULL;
        hp_error err = {0};
        CHECK(hp_tile_loader_create(s, g, 4, 4, 2, &o, &l, &err) == HP_OK);
        if (when > 0 && l) {
            hp_tile_batch *b = NULL;
            CHECK(hp_tile_loader_next(l, &b) == HP_OK && b);
            if (when == 2)
                hp_tile_loader_release(l, b);
        }
        hp_tile_loader_destroy(l);
        CHECK(c.alive == 0);
    }
    hp_tile_loader_destroy(NULL);
    hp_tile_grid_destroy(g);
    hp_slide_close(s);
    passed++;
}

static void test_edge_cases(const hp_synth *syn)
{
    hp_slide *s = open_slide();
    hp_tile_grid *g = s ? make_grid(s, syn, 1.0, 128) : NULL;
    if (!g) {
        hp_slide_close(s);
        return;
    }
    hp_tile_loader *l = (hp_tile_loader *)1;
    hp_error err = {0};
    /* Refusals. */
    int bad[][3] = {{0, 2, 2}, {70000, 2, 2}, {8, 2, 0}, {8, 2, 65}, {8, 257, 2}};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        hp_error e = {0};
        l = (hp_tile_loader *)1;
        CHECK(hp_tile_loader_create(s, g, bad[k][0], bad[k][1], bad[k][2], NULL, &l, &e) ==
                  HP_ERR_INVALID &&
              l == NULL && e.msg[0]);
    }
    CHECK(hp_tile_loader_create(NULL, g, 8, 2, 2, NULL, &l, &err) == HP_ERR_INVALID && !l);
    /* An allocator that fails on the second buffer: reported, nothing leaked. */
    counter c = {.fail_at = 2};
    hp_tile_loader_options o = {.allocator = {count_alloc, count_free, &c}};
    hp_error e = {0};
    CHECK(hp_tile_loader_create(s, g, 8, 2, 3, &o, &l, &e) == HP_ERR_NOMEM && !l && e.msg[0]);
    CHECK(c.alive == 0);
    /* An empty grid: the stream ends at once, and no buffer is allocated. */
    hp_tile_grid empty = *g;
    empty.n_tiles = 0;
    empty.tiles = NULL;
    counter c2 = {0};
    o.allocator.user = &c2;
    CHECK(hp_tile_loader_create(s, &empty, 8, 0, 4, &o, &l, &err) == HP_OK);
    if (l) {
        hp_tile_batch *b = (hp_tile_batch *)1;
        CHECK(hp_tile_loader_next(l, &b) == HP_OK && b == NULL);
        CHECK(hp_tile_loader_next(l, &b) == HP_OK && b == NULL);
        CHECK(hp_tile_loader_batch_count(l) == 0);
        hp_tile_loader_destroy(l);
    }
    CHECK(c2.allocs == 0);
    /* Default allocator, default thread count: runs to the end. */
    CHECK(hp_tile_loader_create(s, g, 1000, 0, 1, NULL, &l, &err) == HP_OK);
    if (l) {
        hp_tile_batch *b = NULL;
        CHECK(hp_tile_loader_next(l, &b) == HP_OK && b && b->count == g->n_tiles);
        hp_tile_loader_release(l, b);
        CHECK(hp_tile_loader_next(l, &b) == HP_OK && b == NULL);
        CHECK(hp_tile_loader_error(l)[0] == '\0');
        hp_tile_loader_destroy(l);
    }
    hp_tile_grid_destroy(g);
    hp_slide_close(s);
    passed++;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(d);
    rmdir(dir);
}

int main(void)
{
    char dir[] = "/tmp/hp_test_tile_loader_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(slide_path, sizeof slide_path, "%s/slide.tiff", dir);
    hp_synth_params p = {.seed = 7, .width = 4000, .height = 3000, .mpp = 0.5};
    hp_synth *syn = NULL;
    hp_error err = {0};
    hp_synth_write_options wo;
    hp_synth_write_options_init(&wo);
    wo.threads = 2;
    if (hp_synth_create(&p, &syn, &err) != HP_OK || hp_synth_write(syn, slide_path, &wo, &err)) {
        fprintf(stderr, "synth: %s\n", err.msg);
        hp_synth_destroy(syn);
        remove_dir(dir);
        return 1;
    }
    test_order_and_content(syn);
    test_holding(syn);
    test_read_error(syn);
    test_destroy_midstream(syn);
    test_edge_cases(syn);
    hp_synth_destroy(syn);
    remove_dir(dir);
    return hp_test_finish("test_tile_loader", passed);
}
