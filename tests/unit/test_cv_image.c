/* The OpenCV-backed image processing (io/cv_image.h) against three references:
 * - the previous, hand-written outputs, kept in tests/data/previous/ (made by the code before
 *   OpenCV replaced it): the tissue masks of a generated slide and of the real Aperio slide must
 *   be identical (tolerance: 0 pixels), and the ground-truth outlines of a generated slide,
 *   traced by pipeline/contour.c, identical byte for byte;
 * - an exact area average computed here in double precision: every resize that shrinks, by any
 *   factor (1.1x to 5x, and one axis shrinking while the other grows), within 1 grey level
 *   (the previous code was plain bilinear between 1x and 2x and missed it by up to 100 levels);
 * - OpenCV's own functions called from Python (python3-opencv, tests/scripts/cv_reference.py):
 *   HSV, box blur, morphology, Otsu and connected components of random images, exactly. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/cv_image.h"
#include "io/image.h"
#include "io/slide.h"
#include "pipeline/synth.h"
#include "pipeline/tissue.h"
#include "util/testutil.h"

static int passed = 0;
static char dir[] = "/tmp/hp_test_cv_image_XXXXXX";

static uint32_t rng = 12345;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

/* Exact area average of one channel: output pixel (i, j) is the mean of the source over
 * [i*sx, (i+1)*sx) x [j*sy, (j+1)*sy), each source pixel weighted by its overlap. */
static double area_ref(const uint8_t *src, int sw, int sh, int c, int i, int j, double sx, double sy)
{
    double x0 = i * sx, x1 = (i + 1) * sx, y0 = j * sy, y1 = (j + 1) * sy, sum = 0;
    for (int y = (int)floor(y0); y < (int)ceil(y1) && y < sh; y++) {
        double wy = fmin(y + 1, y1) - fmax(y, y0);
        for (int x = (int)floor(x0); x < (int)ceil(x1) && x < sw; x++)
            sum += wy * (fmin(x + 1, x1) - fmax(x, x0)) * src[((size_t)y * sw + x) * 3 + c];
    }
    return sum / ((x1 - x0) * (y1 - y0));
}

static void test_resize_area(void)
{
    const int sizes[][4] = {{224, 224, 200, 200}, {336, 336, 224, 224}, {449, 449, 224, 224},
                            {448, 448, 224, 224}, {1000, 700, 224, 224}, {97, 53, 19, 11},
                            {500, 500, 100, 100}, {300, 200, 299, 150}};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int sw = sizes[k][0], sh = sizes[k][1], dw = sizes[k][2], dh = sizes[k][3];
        uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)dw * dh * 3);
        /* Half the rows a fine checkerboard (the worst case for plain bilinear), half noise. */
        for (int y = 0; y < sh; y++)
            for (int x = 0; x < sw; x++)
                for (int c = 0; c < 3; c++)
                    src[((size_t)y * sw + x) * 3 + c] =
                        y < sh / 2 ? (uint8_t)(((x + y) & 1) ? 230 : 20) : (uint8_t)(next() & 255);
        CHECK(hp_image_resize_rgb8(src, sw, sh, dst, dw, dh) == HP_OK);
        double worst = 0, sx = (double)sw / dw, sy = (double)sh / dh;
        for (int j = 0; j < dh; j++)
            for (int i = 0; i < dw; i++)
                for (int c = 0; c < 3; c++) {
                    double d = fabs(dst[((size_t)j * dw + i) * 3 + c] -
                                    area_ref(src, sw, sh, c, i, j, sx, sy));
                    worst = d > worst ? d : worst;
                }
        CHECK_MSG(worst <= 1.0, "%dx%d -> %dx%d: off the exact area average by %.2f", sw, sh, dw,
                  dh, worst);
        passed += worst <= 1.0;
        free(src);
        free(dst);
    }
    /* One axis shrinking, the other growing: the shrinking axis is still an area average (a
     * constant column pattern keeps the growing axis out of it). */
    int sw = 600, sh = 50, dw = 200, dh = 120;
    uint8_t *src = malloc((size_t)sw * sh * 3), *dst = malloc((size_t)dw * dh * 3);
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < sw; x++)
            for (int c = 0; c < 3; c++)
                src[((size_t)y * sw + x) * 3 + c] = (uint8_t)(x % 3 == 0 ? 240 : 30);
    CHECK(hp_image_resize_rgb8(src, sw, sh, dst, dw, dh) == HP_OK);
    int ok = 1;
    for (size_t i = 0; i < (size_t)dw * dh * 3; i++)
        ok &= abs((int)dst[i] - 100) <= 1; /* (240 + 30 + 30) / 3 */
    CHECK_COUNT(passed, ok);
    free(src);
    free(dst);
}

/* Mask of `slide` against a previous output; returns the pixels that differ, -1 on failure. */
static int64_t mask_diff(const char *slide, const char *previous)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(slide, NULL, &err);
    CHECK_MSG(s, "%s", err.msg);
    hp_tissue_mask m;
    int64_t diff = -1;
    int pw = 0, ph = 0;
    uint8_t *prev = NULL;
    if (s && hp_tissue_detect(s, NULL, &m, &err) == HP_OK &&
        hp_image_read_rgb8(previous, &pw, &ph, &prev, &err) == HP_OK && pw == m.w && ph == m.h) {
        diff = 0;
        for (size_t i = 0; i < (size_t)pw * ph; i++)
            diff += (prev[3 * i] >= 128) != (m.mask[i] != 0);
        printf("%s: %lld of %d mask pixels differ from %s\n", slide, (long long)diff, pw * ph,
               previous);
    } else {
        fprintf(stderr, "%s: %s\n", slide, err.msg);
    }
    free(prev);
    hp_tissue_mask_free(&m);
    hp_slide_close(s);
    return diff;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        same = ca == cb;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

static void test_previous_outputs(void)
{
    const char *src = hp_test_env("HP_SOURCE_DIR", ".");
    char slide[600], prev[1200], truth[700];
    snprintf(slide, sizeof slide, "%s/synth.tiff", dir);
    /* The same slide the previous outputs were made from: histoplan synth --size 4096x4096
     * --seed 5 --mpp 0.25 --truth-scale 16. */
    hp_synth_params p = {.seed = 5, .width = 4096, .height = 4096, .mpp = 0.25};
    hp_synth *syn = NULL;
    hp_error err = {0};
    hp_synth_write_options wo;
    hp_synth_write_options_init(&wo);
    wo.threads = 2;
    wo.truth_scale = 16;
    CHECK_MSG(hp_synth_create(&p, &syn, &err) == HP_OK && hp_synth_write(syn, slide, &wo, &err) == HP_OK,
              "synth: %s", err.msg);
    hp_synth_destroy(syn);
    snprintf(prev, sizeof prev, "%s/tests/data/previous/tissue-synth4096-seed5.png", src);
    CHECK_COUNT(passed, mask_diff(slide, prev) == 0);
    snprintf(truth, sizeof truth, "%s/synth.truth.geojson", dir);
    snprintf(prev, sizeof prev, "%s/tests/data/previous/truth-synth4096-seed5.geojson", src);
    CHECK_MSG(same_file(truth, prev), "%s differs from %s", truth, prev);
    passed += same_file(truth, prev);

    char svs[1024];
    if (hp_test_shared_path("data/real/slides/CMU-1-Small-Region.svs", svs, sizeof svs)) {
        snprintf(prev, sizeof prev, "%s/tests/data/previous/tissue-cmu1.png", src);
        CHECK_COUNT(passed, mask_diff(svs, prev) == 0);
    }
}

static int write_raw(const char *name, const void *data, size_t n)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(data, 1, n, f) == n;
    if (f)
        fclose(f);
    return ok;
}

/* Writes inputs and this library's outputs for tests/scripts/cv_reference.py, which computes
 * the same with OpenCV's Python functions and compares. */
static void test_against_python(void)
{
    const int w = 157, h = 93;
    size_t n = (size_t)w * h;
    uint8_t *rgb = malloc(n * 3), *mask = malloc(n), *tmp = malloc(n), *blur = malloc(n * 3);
    float *hsv = malloc(n * 3 * sizeof *hsv);
    int32_t *lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n * 3; i++)
        rgb[i] = (uint8_t)next();
    for (size_t i = 0; i < n; i++)
        mask[i] = (next() % 100) < 45; /* random blobs at the percolation edge */
    int ok = write_raw("rgb.u8", rgb, n * 3) && write_raw("mask.u8", mask, n);
    CHECK(hp_cv_rgb8_to_hsv(rgb, n, hsv) == HP_OK);
    ok &= write_raw("hsv.f32", hsv, n * 3 * sizeof *hsv);
    CHECK(hp_cv_box_blur_rgb8(rgb, w, h, 3, blur) == HP_OK);
    ok &= write_raw("blur.u8", blur, n * 3);
    memcpy(tmp, mask, n);
    CHECK(hp_cv_dilate_square(tmp, w, h, 2) == HP_OK);
    ok &= write_raw("dilate.u8", tmp, n);
    memcpy(tmp, mask, n);
    CHECK(hp_cv_erode_square(tmp, w, h, 1) == HP_OK);
    ok &= write_raw("erode.u8", tmp, n);
    int thr = -1;
    CHECK(hp_cv_otsu_u8(rgb, n, &thr) == HP_OK);
    ok &= write_raw("otsu.i32", &thr, sizeof thr);
    int32_t nc8 = 0, nc4 = 0;
    CHECK(hp_cv_components(mask, w, h, 1, 8, lab, NULL, &nc8) == HP_OK);
    ok &= write_raw("cc8.i32", lab, n * sizeof *lab);
    CHECK(hp_cv_components(mask, w, h, 0, 4, lab, NULL, &nc4) == HP_OK);
    ok &= write_raw("cc4.i32", lab, n * sizeof *lab);
    memcpy(tmp, mask, n);
    CHECK(hp_cv_drop_small(tmp, w, h, 1, 5, 0) == HP_OK);
    ok &= write_raw("drop.u8", tmp, n);
    CHECK(ok);
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "%s %s/tests/scripts/cv_reference.py %s %d %d",
             hp_test_env("HP_PYTHON", "/usr/bin/python3"), hp_test_env("HP_SOURCE_DIR", "."), dir,
             w, h);
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "%s exited %d", cmd, rc);
    passed += rc == 0;
    free(rgb);
    free(mask);
    free(tmp);
    free(blur);
    free(hsv);
    free(lab);
}

/* Argument checks: bad sizes and NULL buffers are refused, never a crash. */
static void test_bad_arguments(void)
{
    uint8_t b[12] = {0};
    int32_t l[4];
    int32_t *xy = NULL, *len = NULL;
    int nr = 0, t = 0;
    CHECK_COUNT(passed, hp_cv_resize_rgb8(NULL, 2, 2, 0, b, 1, 1) == HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_cv_resize_rgb8(b, 0, 2, 0, b, 1, 1) == HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_cv_dilate_square(b, -1, 2, 1) == HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_cv_components(b, 2, 2, 1, 6, l, NULL, &nr) == HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_cv_otsu_u8(NULL, 3, &t) == HP_ERR_INVALID);
    CHECK_COUNT(passed, hp_cv_trace_region(b, 2, 2, &xy, &len, &nr) == HP_ERR_INVALID); /* empty */
    b[0] = b[3] = 1; /* two cells touching at a corner: two regions */
    CHECK_COUNT(passed, hp_cv_trace_region(b, 2, 2, &xy, &len, &nr) == HP_ERR_INVALID);
    b[1] = 1;
    CHECK_COUNT(passed, hp_cv_trace_region(b, 2, 2, &xy, &len, &nr) == HP_OK && nr == 1 &&
                            len[0] == 7);
    free(xy);
    free(len);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_resize_area();
    test_bad_arguments();
    test_against_python();
    test_previous_outputs();
    char cmd[100];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return hp_test_finish("test_cv_image", passed);
}
