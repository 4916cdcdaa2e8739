/* Heatmaps and regions on hand-made grids: one square (area, diameter, exact outline), holes,
 * disjoint and diagonal regions (4-connectivity), corner-touching holes stay valid rings, random
 * grids (ring areas add up, no ring passes a vertex twice), thresholds, entropy on known
 * distributions, smoothing keeps centres, names, colormap, writers' refusals.
 *
 * `test_heatmap_regions --fixture DIR` instead writes every output of one scenario into DIR for
 * tests/scripts/test_writers_readback.py, which reads them back with independent readers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "io/image.h"
#include "pipeline/write_asap_xml.h"
#include "pipeline/write_geojson.h"
#include "pipeline/write_heatmap.h"
#include "pipeline/write_tiles_csv.h"
#include "pipeline/contour.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"
#include "util/testutil.h"

static int passed = 0;

/* A grid with every tile analysed as class `bg` at probability pb (the rest spread evenly). */
static hp_heatmap_grid *make(int gw, int gh, int C, int bg, float pb)
{
    hp_heatmap_grid *g = NULL;
    CHECK(hp_heatmap_grid_create(gw, gh, C, &g) == HP_OK);
    g->x0 = 100;
    g->y0 = 50;
    g->tile_size = 448;
    g->mpp = 0.25;
    g->slide_w = (int64_t)(100 + gw * 448);
    g->slide_h = (int64_t)(50 + gh * 448);
    for (size_t t = 0; t < (size_t)gw * gh; t++)
        for (int k = 0; k < C; k++)
            g->prob[t * C + k] = k == bg ? pb : (1 - pb) / (C - 1);
    return g;
}

static void set_tile(hp_heatmap_grid *g, int i, int j, int k, float p)
{
    int C = g->nclasses;
    size_t t = (size_t)j * g->gw + i;
    for (int c = 0; c < C; c++)
        g->prob[t * C + c] = c == k ? p : (1 - p) / (C - 1);
}

static hp_regions *extract(const hp_heatmap_grid *g, double thr)
{
    hp_regions *rs = NULL;
    hp_error err = {0};
    CHECK_MSG(hp_regions_extract(g, g->prob, thr, 1, &rs, &err) == HP_OK, "%s", err.msg);
    return rs;
}

static int count_class(const hp_regions *rs, int k)
{
    int n = 0;
    for (int i = 0; rs && i < rs->n; i++)
        n += rs->r[i].cls == k;
    return n;
}

static double ring_area(const hp_region_ring *r)
{
    double a = 0;
    for (size_t i = 0; i + 1 < r->n; i++)
        a += r->xy[2 * i] * r->xy[2 * i + 3] - r->xy[2 * i + 2] * r->xy[2 * i + 1];
    return a / 2;
}

static void test_square(void)
{
    hp_heatmap_grid *g = make(20, 16, 3, 0, 0.8f);
    for (int j = 4; j < 8; j++)
        for (int i = 6; i < 11; i++)
            set_tile(g, i, j, 2, 0.9f);
    set_tile(g, 8, 5, 2, 0.95f);
    hp_regions *rs = extract(g, 0.5);
    CHECK(rs && rs->n == 2 && count_class(rs, 2) == 1 && count_class(rs, 0) == 1);
    const hp_region *r = &rs->r[1], *bg = &rs->r[0];
    CHECK(r->cls == 2 && r->ntiles == 20 && r->nrings == 1 && r->rings[0].n == 5);
    double mm = 448 * 0.25e-3;
    CHECK(fabs(r->area_mm2 - 20 * mm * mm) < 1e-12);
    CHECK(fabs(r->diameter_mm - sqrt(25.0 + 16.0) * mm) < 1e-12);
    CHECK(fabs(r->max_prob - 0.95) < 1e-6 && fabs(r->mean_prob - (19 * 0.9 + 0.95) / 20) < 1e-6);
    CHECK(r->tiles[0] == 5 * 20 + 8); /* the most probable tile first */
    CHECK(fabs(r->cx - (100 + 8.5 * 448)) < 1e-9 && fabs(r->cy - (50 + 6 * 448)) < 1e-9);
    /* The outline exactly: clockwise on screen from the top-left corner. */
    const double want[10] = {100 + 6 * 448, 50 + 4 * 448,  100 + 11 * 448, 50 + 4 * 448,
                             100 + 11 * 448, 50 + 8 * 448, 100 + 6 * 448,  50 + 8 * 448,
                             100 + 6 * 448, 50 + 4 * 448};
    CHECK(memcmp(r->rings[0].xy, want, sizeof want) == 0);
    CHECK(fabs(ring_area(&r->rings[0]) - 20 * 448.0 * 448.0) < 1e-6);
    /* The background around it has the square as a hole. */
    CHECK(bg->cls == 0 && bg->nrings == 2 && bg->ntiles == 320 - 20);
    CHECK(fabs(ring_area(&bg->rings[0]) + ring_area(&bg->rings[1]) - 300 * 448.0 * 448.0) < 1e-3);
    CHECK(ring_area(&bg->rings[1]) < 0);
    CHECK(fabs(bg->diameter_mm - sqrt(400.0 + 256.0) * mm) < 1e-12);
    hp_regions_destroy(rs);
    hp_heatmap_grid_destroy(g);
    passed++;
}

static void test_disjoint_diagonal_threshold(void)
{
    hp_heatmap_grid *g = make(12, 10, 2, 0, 1.0f);
    for (int j = 1; j < 3; j++) /* a 2x2 block and a 3x1 bar */
        for (int i = 1; i < 3; i++)
            set_tile(g, i, j, 1, 1.0f);
    for (int i = 6; i < 9; i++)
        set_tile(g, i, 1, 1, 1.0f);
    set_tile(g, 3, 6, 1, 1.0f); /* touching only at a corner: two regions */
    set_tile(g, 4, 7, 1, 1.0f);
    hp_regions *rs = extract(g, 0.5);
    CHECK(count_class(rs, 1) == 4);
    /* Larger first: the 2x2 block, the bar, then the single tiles in raster order. */
    CHECK(rs->r[1].cls == 1 && rs->r[1].ntiles == 4 && rs->r[2].ntiles == 3);
    CHECK(rs->r[3].tiles[0] == 6 * 12 + 3 && rs->r[4].tiles[0] == 7 * 12 + 4);
    hp_regions_destroy(rs);

    /* Threshold: a probability equal to it is in, just below is out. */
    hp_heatmap_grid *h = make(6, 6, 2, 0, 1.0f);
    set_tile(h, 1, 1, 1, 0.5f);
    set_tile(h, 2, 1, 1, 0.6f);
    set_tile(h, 4, 4, 1, 0.49f);
    rs = extract(h, 0.5);
    CHECK(count_class(rs, 1) == 1 && rs->r[rs->n - 1].ntiles == 2);
    hp_regions_destroy(rs);
    rs = extract(h, 0.55);
    CHECK(count_class(rs, 1) == 1 && rs->r[rs->n - 1].ntiles == 1);
    hp_regions_destroy(rs);
    /* min_tiles drops small regions; bad thresholds are refused. */
    hp_error err = {0};
    CHECK(hp_regions_extract(h, h->prob, 0.5, 3, &rs, &err) == HP_OK && count_class(rs, 1) == 0);
    hp_regions_destroy(rs);
    rs = NULL;
    CHECK(hp_regions_extract(h, h->prob, 0.0, 1, &rs, &err) == HP_ERR_INVALID && !rs);
    CHECK(strstr(err.msg, "threshold") != NULL);
    hp_error_clear(&err);
    CHECK(hp_regions_extract(h, h->prob, 1.5, 1, &rs, &err) == HP_ERR_INVALID);
    hp_error_clear(&err);
    h->prob[0] = 2.0f;
    CHECK(hp_regions_extract(h, h->prob, 0.5, 1, &rs, &err) == HP_ERR_INVALID);
    CHECK(strstr(err.msg, "(0, 0)") != NULL);
    hp_heatmap_grid_destroy(h);
    hp_heatmap_grid_destroy(g);
    passed++;
}

/* Background tiles (not analysed) are never in a region, and a region ring around a pocket that
 * meets the outside only at a corner is cut there into a shell and a hole. */
static void test_background_and_pinch(void)
{
    hp_heatmap_grid *g = make(6, 6, 2, 1, 1.0f);
    size_t n = 36;
    for (size_t t = 0; t < n; t++) /* class 0 everywhere but a ring */
        set_tile(g, (int)(t % 6), (int)(t / 6), 0, 1.0f);
    /* Class 1: (1,1)(2,1)(3,1) (1,2)(3,2) (1,3)(2,3): pocket (2,2) touches (3,3) at a corner. */
    const int cells[7][2] = {{1, 1}, {2, 1}, {3, 1}, {1, 2}, {3, 2}, {1, 3}, {2, 3}};
    for (int c = 0; c < 7; c++)
        set_tile(g, cells[c][0], cells[c][1], 1, 1.0f);
    g->prob[(5 * 6 + 5) * 2] = NAN; /* one tile not analysed */
    hp_regions *rs = extract(g, 0.5);
    CHECK(count_class(rs, 1) == 1);
    const hp_region *r = &rs->r[rs->n - 1];
    CHECK(r->ntiles == 7 && r->nrings == 2);
    CHECK(fabs(ring_area(&r->rings[0]) + ring_area(&r->rings[1]) - 7 * 448.0 * 448.0) < 1e-6);
    CHECK(fabs(ring_area(&r->rings[1]) + 448.0 * 448.0) < 1e-6);
    /* Class 0 surrounds it; the pocket (2,2) and (3,3) are class-0 regions of their own. */
    CHECK(count_class(rs, 0) == 2);
    CHECK(rs->r[0].ntiles == 36 - 7 - 1 - 1);
    hp_regions_destroy(rs);
    hp_heatmap_grid_destroy(g);
    passed++;
}

/* Random label grids: each component's rings enclose exactly its cells and never repeat a
 * vertex (on grid edges, rings can only meet at vertices, so this is simplicity). */
static void test_random_contours(void)
{
    unsigned s = 12345;
    for (int trial = 0; trial < 40; trial++) {
        int w = 5 + trial % 23, h = 4 + (trial * 7) % 19, L = 2 + trial % 3;
        uint8_t *lab = malloc((size_t)w * h);
        for (int i = 0; i < w * h; i++) {
            s = s * 1103515245u + 12345u;
            lab[i] = (uint8_t)((s >> 16) % L);
        }
        hp_contour_components *cc = NULL;
        CHECK(hp_contour_components_create(lab, w, h, 0, &cc) == HP_OK);
        int64_t cells = 0;
        for (int32_t id = 0; cc && id < cc->n; id++) {
            hp_contour_polygon p;
            CHECK(hp_contour_trace(cc, id, &p) == HP_OK);
            int64_t a = 0;
            for (int r = 0; r < p.nrings; r++) {
                const hp_contour_ring *ring = &p.rings[r];
                CHECK(ring->n >= 5 && (r == 0) == (ring->area2 > 0));
                CHECK(ring->xy[0] == ring->xy[2 * ring->n - 2] && ring->xy[1] == ring->xy[2 * ring->n - 1]);
                for (size_t i = 0; i + 1 < ring->n; i++)
                    for (size_t j = i + 1; j + 1 < ring->n; j++)
                        CHECK(ring->xy[2 * i] != ring->xy[2 * j] || ring->xy[2 * i + 1] != ring->xy[2 * j + 1]);
                a += ring->area2;
            }
            CHECK(a == 2 * cc->c[id].cells);
            cells += cc->c[id].cells;
            hp_contour_polygon_free(&p);
        }
        int64_t want = 0;
        for (int i = 0; i < w * h; i++)
            want += lab[i] != 0;
        CHECK(cells == want);
        hp_contour_components_destroy(cc);
        free(lab);
    }
    passed++;
}

static void test_entropy(void)
{
    hp_heatmap_grid *g = NULL;
    CHECK(hp_heatmap_grid_create(4, 1, 4, &g) == HP_OK);
    const float p[4][4] = {{0.25f, 0.25f, 0.25f, 0.25f}, {1, 0, 0, 0}, {0.5f, 0.5f, 0, 0}, {0}};
    memcpy(g->prob, p, 3 * 4 * sizeof(float)); /* tile 3 stays NaN: not analysed */
    float e[4];
    hp_heatmap_entropy(g, e);
    CHECK(fabsf(e[0] - 1.0f) < 1e-6f && e[1] == 0.0f && fabsf(e[2] - 0.5f) < 1e-6f && isnan(e[3]));
    hp_heatmap_grid_destroy(g);
    passed++;
}

/* Probability-weighted centre of class k over analysed tiles. */
static void centre(const hp_heatmap_grid *g, const float *m, int k, double *cx, double *cy)
{
    double s = 0, sx = 0, sy = 0;
    for (int j = 0; j < g->gh; j++)
        for (int i = 0; i < g->gw; i++) {
            float p = m[((size_t)j * g->gw + i) * g->nclasses + k];
            if (isnan(p))
                continue;
            s += p;
            sx += p * i;
            sy += p * j;
        }
    *cx = sx / s;
    *cy = sy / s;
}

static void test_smoothing(void)
{
    hp_heatmap_grid *g = make(31, 25, 3, 0, 0.9f);
    for (int j = 8; j < 15; j++) /* an asymmetric blob, well inside */
        for (int i = 10; i < 16 + (j > 11 ? 3 : 0); i++)
            set_tile(g, i, j, 1, 0.9f);
    float *sm = malloc((size_t)31 * 25 * 3 * sizeof *sm);
    CHECK(hp_heatmap_smooth(g, 1.5, sm) == HP_OK);
    double ax, ay, bx, by;
    centre(g, g->prob, 1, &ax, &ay);
    centre(g, sm, 1, &bx, &by);
    CHECK_MSG(fabs(ax - bx) < 1e-4 && fabs(ay - by) < 1e-4, "%g,%g vs %g,%g", ax, ay, bx, by);
    for (size_t t = 0; t < (size_t)31 * 25; t++)
        CHECK(fabsf(sm[t * 3] + sm[t * 3 + 1] + sm[t * 3 + 2] - 1.0f) < 1e-5f);
    /* A symmetric square keeps its region's centre exactly after smoothing and thresholding. */
    hp_heatmap_grid *q = make(30, 30, 2, 0, 1.0f);
    for (int j = 10; j < 18; j++)
        for (int i = 12; i < 20; i++)
            set_tile(q, i, j, 1, 1.0f);
    q->prob[0] = NAN; /* background far away stays background */
    float *qs = malloc((size_t)30 * 30 * 2 * sizeof *qs);
    CHECK(hp_heatmap_smooth(q, 2.0, qs) == HP_OK && isnan(qs[0]) && isnan(qs[1]));
    hp_regions *a = extract(q, 0.5), *b = NULL;
    hp_error err = {0};
    CHECK(hp_regions_extract(q, qs, 0.5, 1, &b, &err) == HP_OK);
    CHECK(a && b && count_class(a, 1) == 1 && count_class(b, 1) == 1);
    if (a && b) {
        const hp_region *ra = &a->r[a->n - 1], *rb = &b->r[b->n - 1];
        CHECK(fabs(ra->cx - rb->cx) < 1e-9 && fabs(ra->cy - rb->cy) < 1e-9);
    }
    hp_regions_destroy(a);
    hp_regions_destroy(b);
    free(qs);
    hp_heatmap_grid_destroy(q);
    /* sigma <= 0 copies. */
    CHECK(hp_heatmap_smooth(g, 0, sm) == HP_OK && memcmp(sm, g->prob, 31 * 25 * 3 * sizeof *sm) == 0);
    free(sm);
    hp_heatmap_grid_destroy(g);
    passed++;
}

static void test_names_colormap(void)
{
    hp_heatmap_grid *g = NULL;
    CHECK(hp_heatmap_grid_create(1, 1, 4, &g) == HP_OK);
    hp_heatmap_grid_set_class(g, 0, "In situ", 1, 2, 3);
    hp_heatmap_grid_set_class(g, 1, "../..//", 1, 2, 3);
    hp_heatmap_grid_set_class(g, 2, "in-situ", 1, 2, 3);
    hp_heatmap_grid_set_class(g, 3, "Invasive (IDC)", 1, 2, 3);
    char names[4][HP_HEATMAP_NAME_MAX];
    hp_heatmap_safe_names(g, names);
    CHECK(!strcmp(names[0], "in_situ") && !strcmp(names[1], "class1"));
    CHECK(!strcmp(names[2], "in_situ_2") && !strcmp(names[3], "invasive_idc"));
    hp_heatmap_grid_destroy(g);
    uint8_t c[3];
    hp_heatmap_viridis(0, c);
    CHECK(c[0] == 68 && c[1] == 1 && c[2] == 84);
    hp_heatmap_viridis(1, c);
    CHECK(c[0] == 253 && c[1] == 231 && c[2] == 37);
    hp_heatmap_viridis(NAN, c);
    CHECK(c[0] == 255 && c[1] == 255 && c[2] == 255);
    passed++;
}

static void test_writer_refusals(void)
{
    hp_heatmap_grid *g = make(4, 4, 2, 0, 1.0f);
    hp_error err = {0};
    g->mpp = 0;
    CHECK(hp_write_tiles_csv("/nonexistent/x.csv", g, NULL, &err) == HP_ERR_INVALID);
    hp_error_clear(&err);
    g->mpp = 0.5;
    CHECK(hp_write_tiles_csv("/nonexistent/dir/x.csv", g, NULL, &err) != HP_OK && err.msg[0]);
    hp_error_clear(&err);
    CHECK(hp_write_heatmap_tiff("/nonexistent/dir/h.tiff", g, g->prob, 8, &err) != HP_OK);
    CHECK(access("/nonexistent/dir/h.tiff", F_OK) != 0);
    hp_error_clear(&err);
    CHECK(hp_write_heatmap_png("/tmp/x.png", g, g->prob, 5, 4, &err) == HP_ERR_INVALID);
    hp_heatmap_grid_destroy(g);
    passed++;
}

/* ---- the fixture for test_writers_readback.py ---- */

static int write_fixture(const char *dir)
{
    /* A 6000 x 5000 slide at 0.25 um/px, 448-pixel tiles from (0, 0): 14 x 12 tiles. */
    hp_heatmap_grid *g = NULL;
    if (hp_heatmap_grid_create(14, 12, 4, &g))
        return 1;
    g->tile_size = 448;
    g->mpp = 0.25;
    g->slide_w = 6000;
    g->slide_h = 5000;
    hp_heatmap_grid_set_class(g, 0, "normal", 0, 160, 0);
    hp_heatmap_grid_set_class(g, 1, "benign", 0, 90, 220);
    hp_heatmap_grid_set_class(g, 2, "in situ", 240, 170, 0);
    hp_heatmap_grid_set_class(g, 3, "invasive", 210, 0, 0);
    for (int j = 0; j < 12; j++)
        for (int i = 0; i < 14; i++) {
            double dx = (i - 6.5) / 6.0, dy = (j - 5.5) / 5.0;
            size_t t = (size_t)j * 14 + i;
            if (dx * dx + dy * dy > 1.05)
                continue; /* outside the tissue ellipse */
            int k = 0;
            if (i >= 3 && i <= 7 && j >= 3 && j <= 7 && !(i == 5 && j == 5))
                k = 3; /* invasive square with a normal hole */
            const int is[5][2] = {{9, 3}, {10, 3}, {11, 4}, {9, 4}, {10, 5}};
            for (int c = 0; c < 5; c++)
                if (i == is[c][0] && j == is[c][1])
                    k = 2;
            if ((i == 4 && j == 9) || (i == 5 && j == 10))
                k = 1; /* diagonal pair: two benign regions */
            float pk = (i + j) % 3 == 0 ? 0.97f : 0.85f;
            set_tile(g, i, j, k, pk);
            g->tissue[t] = (float)(0.5 + 0.5 * ((i * 7 + j * 3) % 11) / 10.0);
        }
    set_tile(g, 6, 8, 0, 0.4f); /* an unsure tile */
    g->prob[(8 * 14 + 6) * 4 + 1] = 0.3f;
    g->prob[(8 * 14 + 6) * 4 + 2] = 0.2f;
    g->prob[(8 * 14 + 6) * 4 + 3] = 0.1f;

    hp_error err = {0};
    hp_regions *rs = NULL;
    int D = hp_heatmap_tiff_downsample(g);
    char p[4096];
    int tw = 600, th = 500;
    uint8_t *thumb = malloc((size_t)tw * th * 3);
    for (int y = 0; y < th; y++)
        for (int x = 0; x < tw; x++)
            for (int c = 0; c < 3; c++)
                thumb[((size_t)y * tw + x) * 3 + c] = (uint8_t)(150 + (x + y + 30 * c) % 100);
    hp_status st = hp_regions_extract(g, g->prob, 0.5, 1, &rs, &err);
    if (!st)
        st = hp_write_heatmap_pngs(dir, g, g->prob, 4, &err);
    snprintf(p, sizeof p, "%s/overlay.png", dir);
    if (!st)
        st = hp_write_overlay_png(p, g, g->prob, thumb, tw, th, 0.5, &err);
    snprintf(p, sizeof p, "%s/thumb.png", dir);
    if (!st)
        st = hp_image_write_png(p, thumb, tw, th, &err);
    snprintf(p, sizeof p, "%s/mask.png", dir);
    if (!st)
        st = hp_write_mask_png(p, g, 1, &err);
    snprintf(p, sizeof p, "%s/heatmap.tiff", dir);
    if (!st)
        st = hp_write_heatmap_tiff(p, g, g->prob, D, &err);
    snprintf(p, sizeof p, "%s/regions.geojson", dir);
    if (!st)
        st = hp_write_regions_geojson(p, g, rs, &err);
    snprintf(p, sizeof p, "%s/regions.xml", dir);
    if (!st)
        st = hp_write_regions_asap_xml(p, g, rs, &err);
    snprintf(p, sizeof p, "%s/tiles.csv", dir);
    if (!st)
        st = hp_write_tiles_csv(p, g, &(hp_tile_extras){.regions = rs}, &err);
    /* What the readers compare against. */
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "gw", g->gw);
    cJSON_AddNumberToObject(j, "gh", g->gh);
    cJSON_AddNumberToObject(j, "tile_size", g->tile_size);
    cJSON_AddNumberToObject(j, "mpp", g->mpp);
    cJSON_AddNumberToObject(j, "slide_w", (double)g->slide_w);
    cJSON_AddNumberToObject(j, "slide_h", (double)g->slide_h);
    cJSON_AddNumberToObject(j, "downsample", D);
    cJSON_AddNumberToObject(j, "regions", rs ? rs->n : 0);
    cJSON *cls = cJSON_AddArrayToObject(j, "classes");
    char names[4][HP_HEATMAP_NAME_MAX];
    hp_heatmap_safe_names(g, names);
    for (int k = 0; k < 4; k++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "name", g->names[k]);
        cJSON_AddStringToObject(c, "safe", names[k]);
        int rgb[3] = {g->rgb[k][0], g->rgb[k][1], g->rgb[k][2]};
        cJSON_AddItemToObject(c, "color", cJSON_CreateIntArray(rgb, 3));
        cJSON_AddItemToArray(cls, c);
    }
    cJSON *pr = cJSON_AddArrayToObject(j, "prob");
    for (size_t t = 0; t < (size_t)14 * 12 * 4; t++)
        cJSON_AddItemToArray(pr, isnan(g->prob[t]) ? cJSON_CreateNull() : cJSON_CreateNumber(g->prob[t]));
    char *text = cJSON_Print(j);
    snprintf(p, sizeof p, "%s/expected.json", dir);
    FILE *f = fopen(p, "w");
    if (!f || !text || fputs(text, f) < 0)
        st = st ? st : HP_ERR_IO;
    if (f && fclose(f))
        st = st ? st : HP_ERR_IO;
    free(text);
    cJSON_Delete(j);
    free(thumb);
    hp_regions_destroy(rs);
    hp_heatmap_grid_destroy(g);
    if (st)
        fprintf(stderr, "fixture: %s (%s)\n", err.msg, hp_status_name(st));
    return st ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--fixture"))
        return write_fixture(argv[2]);
    test_square();
    test_disjoint_diagonal_threshold();
    test_background_and_pinch();
    test_random_contours();
    test_entropy();
    test_smoothing();
    test_names_colormap();
    test_writer_refusals();
    return hp_test_finish("test_heatmap_regions", passed);
}
