/* eval/wsi_score.c and eval/wsi_truth.c on hand-computed cases: the Part B score of Aresta et
 * al. 2019 (eq. 1) on tiny rasters, polygon rasterization at pixel centres, the most severe label
 * winning an overlap, and the annotation reader's spellings and refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/wsi_score.h"
#include "eval/wsi_truth.h"
#include "util/testutil.h"

static int near(double a, double b) { return fabs(a - b) < 1e-12; }

static void scores(int *passed)
{
    hp_error err = {0};
    /* gt 0 1 2 3, pred 0 0 3 3: pixel 0 both normal (left out); errors 1, 1, 0; largest errors
     * max(1,2) + max(2,1) + max(3,0) = 7: s = 1 - 2/7. */
    uint8_t g1[] = {0, 1, 2, 3}, p1[] = {0, 0, 3, 3};
    hp_wsi_score s = {0};
    CHECK_COUNT(*passed, hp_wsi_score_add(&s, g1, p1, 4, &err) == HP_OK);
    CHECK_COUNT(*passed, near(s.score, 5.0 / 7) && s.scored == 3 && near(s.error_sum, 2) &&
                             near(s.max_error_sum, 7));
    /* Perfect: 1. As far as possible everywhere (normal for invasive, invasive for normal,
     * normal for benign... each at its largest error): 0. */
    uint8_t g2[] = {3, 0, 1, 2}, p2[] = {0, 3, 3, 0};
    hp_wsi_score w = {0};
    hp_wsi_score_add(&w, g2, p2, 4, &err);
    CHECK_COUNT(*passed, near(w.score, 0.0));
    hp_wsi_score pf = {0};
    hp_wsi_score_add(&pf, g2, g2, 4, &err);
    CHECK_COUNT(*passed, near(pf.score, 1.0));
    /* All normal in both: undefined, not 1. */
    uint8_t z[] = {0, 0, 0};
    hp_wsi_score u = {0};
    hp_wsi_score_add(&u, z, z, 3, &err);
    CHECK_COUNT(*passed, isnan(u.score) && u.scored == 0 && near(u.dice[0], 1.0) && isnan(u.dice[3]));
    /* Normal pixels in both do not change the score, however many. */
    uint8_t g3[] = {2, 0, 0, 0, 0, 0}, p3[] = {1, 0, 0, 0, 0, 0};
    hp_wsi_score a = {0};
    hp_wsi_score_add(&a, g3, p3, 6, &err);
    CHECK_COUNT(*passed, near(a.score, 0.5)); /* 1 - 1/2 */
    /* Pooling adds sums: (2 + 1) / (7 + 2). */
    hp_wsi_score_add(&s, g3, p3, 6, &err);
    CHECK_COUNT(*passed, near(s.score, 1 - 3.0 / 9));
    /* Dice and IoU: class 3 in g1/p1: truth 1 pixel, predicted 2, both 1: 2/3 and 1/2. */
    hp_wsi_score d = {0};
    hp_wsi_score_add(&d, g1, p1, 4, &err);
    CHECK_COUNT(*passed, near(d.dice[3], 2.0 / 3) && near(d.iou[3], 0.5) && near(d.dice[1], 0));
    uint8_t bad[] = {4};
    CHECK_COUNT(*passed, hp_wsi_score_add(&d, bad, bad, 1, &err) == HP_ERR_INVALID);
}

static hp_wsi_region region(int cls, const double *xy, int n)
{
    hp_wsi_region r = {.cls = cls, .n = n};
    r.xy = malloc(sizeof(double) * 2 * n);
    memcpy(r.xy, xy, sizeof(double) * 2 * n);
    return r;
}

static void raster(int *passed)
{
    /* A 40 x 40 square at (10, 10) with downsample 10: centres 15, 25, 35, 45 -> pixels 1..4? No:
     * centres (px + 0.5) 10 in [10, 50): px 1, 2, 3, 4 (15, 25, 35, 45). */
    double sq[] = {10, 10, 50, 10, 50, 50, 10, 50};
    /* A triangle (0,0) (80,0) (0,80): centre (x, y) inside when x + y < 80 (the hypotenuse). */
    double tri[] = {0, 0, 80, 0, 0, 80};
    hp_wsi_region r[2] = {region(3, sq, 4), region(1, tri, 3)};
    hp_wsi_truth t = {.n = 2, .regions = r};
    uint8_t out[8 * 8];
    hp_wsi_truth_rasterize(&t, 10, 8, 8, out);
    int ok = 1, n3 = 0, n1 = 0;
    for (int py = 0; py < 8; py++)
        for (int px = 0; px < 8; px++) {
            double x = (px + 0.5) * 10, y = (py + 0.5) * 10;
            int want = (x >= 10 && x < 50 && y >= 10 && y < 50) ? 3 : (x + y < 80) ? 1 : 0;
            ok &= out[py * 8 + px] == want;
            n3 += out[py * 8 + px] == 3;
            n1 += out[py * 8 + px] == 1;
        }
    CHECK_COUNT(*passed, ok && n3 == 16);
    /* Triangle pixels with x + y < 80 on centres 5, 15, ...: pairs (i, j) with i + j < 7, 28 of
     * them, less the 16 - (pixels of the square outside the triangle) ... counted directly: */
    int tri_only = 0;
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++)
            tri_only += i + j < 7 && !(i >= 1 && i <= 4 && j >= 1 && j <= 4);
    CHECK_COUNT(*passed, n1 == tri_only);
    /* The most severe label wins wherever the regions overlap, whatever their order. */
    hp_wsi_region rr[2] = {r[1], r[0]};
    hp_wsi_truth t2 = {.n = 2, .regions = rr};
    uint8_t out2[8 * 8];
    hp_wsi_truth_rasterize(&t2, 10, 8, 8, out2);
    CHECK_COUNT(*passed, !memcmp(out, out2, sizeof out));
    hp_error err = {0};
    CHECK_COUNT(*passed, hp_wsi_truth_check_bounds(&t, "x.xml", 80, 80, &err) == HP_OK);
    CHECK_COUNT(*passed, hp_wsi_truth_check_bounds(&t, "x.xml", 79, 80, &err) == HP_ERR_INVALID &&
                             strstr(err.msg, "outside"));
    free(r[0].xy);
    free(r[1].xy);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f);
}

static void xml(int *passed)
{
    char dir[] = "/tmp/hp-wsi-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0);
        return;
    }
    char path[256];
    snprintf(path, sizeof path, "%s/a.xml", dir);
    write_file(path,
               "<?xml version=\"1.0\"?>\n<Annotations MicronsPerPixel=\"0.25\">\n"
               "<Annotation Id=\"1\" Name=\"Carcinoma invasive\"><Regions>\n"
               "<Region Id=\"7\" Text=\"\"><Vertices><Vertex X=\"0\" Y=\"0\"/><Vertex X=\"10\" "
               "Y=\"0\"/><Vertex X=\"10\" Y=\"10\"/></Vertices></Region>\n"
               "<Region Id=\"8\" Text=\"Carcinoma in situ\"><Vertices><Vertex X=\"1.5\" Y=\"2\"/>"
               "<Vertex X=\"3\" Y=\"4\"/><Vertex X=\"5\" Y=\"1e1\"/></Vertices></Region>\n"
               "</Regions></Annotation>\n<Annotation Name=\"x\"><Regions><Region Text=\"Benign\">"
               "<Vertices><Vertex X=\"1\" Y=\"1\"/><Vertex X=\"2\" Y=\"1\"/><Vertex X=\"2\" Y=\"2\"/>"
               "</Vertices></Region></Regions></Annotation>\n</Annotations>\n");
    hp_wsi_truth t;
    hp_error err = {0};
    CHECK_COUNT(*passed, hp_wsi_truth_read(path, &t, &err) == HP_OK && t.n == 3);
    if (t.n == 3) {
        /* The annotation's Name labels a region without Text; ids kept, or positions given. */
        CHECK_COUNT(*passed, t.regions[0].cls == 3 && !strcmp(t.regions[0].id, "7"));
        CHECK_COUNT(*passed, t.regions[1].cls == 2 && t.regions[1].n == 3 &&
                                 near(t.regions[1].xy[0], 1.5) && near(t.regions[1].xy[5], 10));
        CHECK_COUNT(*passed, t.regions[2].cls == 1 && !strcmp(t.regions[2].id, "3"));
    }
    hp_wsi_truth_free(&t);
    snprintf(path, sizeof path, "%s/b.xml", dir);
    write_file(path, "<Annotations><Annotation><Regions><Region Text=\"Benign\"><Vertices>"
                     "<Vertex X=\"1\" Y=\"1\"/>\n<Vertex X=\"2\" Y=\"1\"></Vertices>");
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_wsi_truth_read(path, &t, &err) == HP_ERR_INVALID &&
                             strstr(err.msg, "b.xml: line 2") && strstr(err.msg, "not well-formed"));
    hp_wsi_truth_free(&t);
    snprintf(path, sizeof path, "%s/missing.xml", dir);
    hp_error_clear(&err);
    CHECK_COUNT(*passed, hp_wsi_truth_read(path, &t, &err) == HP_ERR_IO && strstr(err.msg, "missing.xml"));
    hp_wsi_truth_free(&t);
    snprintf(path, sizeof path, "%s/a.xml", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/b.xml", dir);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    int passed = 0;
    scores(&passed);
    raster(&passed);
    xml(&passed);
    return hp_test_finish("test_wsi_score", passed);
}
