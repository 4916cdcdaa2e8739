/* The synthetic slide generator: determinism, tile independence (a region rendered directly equals
 * the same region cut from other renders, and the one read back from the written file within
 * JPEG tolerance), the label mask against the layout, and refusals of bad arguments. */
#include <dirent.h>
#include <math.h>
#include <openslide.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/image.h"
#include "io/tiff_pyramid_writer.h"
#include "pipeline/synth.h"
#include "util/testutil.h"

static int passed = 0;

static hp_synth *make(uint64_t seed, int64_t w, int64_t h, double mpp)
{
    hp_synth_params p = {.seed = seed, .width = w, .height = h, .mpp = mpp};
    hp_synth *s = NULL;
    hp_error err = {0};
    hp_status st = hp_synth_create(&p, &s, &err);
    CHECK_MSG(st == HP_OK, "create: %s", err.msg);
    return s;
}

static void test_determinism(void)
{
    hp_synth *a = make(11, 8000, 6000, 0.25), *b = make(11, 8000, 6000, 0.25);
    hp_synth *c = make(12, 8000, 6000, 0.25);
    int w = 300, h = 200;
    uint8_t *ra = malloc(w * h * 3), *rb = malloc(w * h * 3), *rc = malloc(w * h * 3);
    CHECK(hp_synth_render(a, 3000, 2500, w, h, ra, NULL) == HP_OK);
    CHECK(hp_synth_render(b, 3000, 2500, w, h, rb, NULL) == HP_OK);
    CHECK(hp_synth_render(c, 3000, 2500, w, h, rc, NULL) == HP_OK);
    CHECK(memcmp(ra, rb, w * h * 3) == 0);
    CHECK(memcmp(ra, rc, w * h * 3) != 0);
    free(ra);
    free(rb);
    free(rc);
    hp_synth_destroy(a);
    hp_synth_destroy(b);
    hp_synth_destroy(c);
    passed++;
}

/* A region equals the same pixels cut from renders of overlapping, oddly placed regions: nothing
 * depends on where a tile starts, so there are no seams. */
static void test_tile_independence(void)
{
    hp_synth *s = make(5, 6000, 5000, 0.25);
    /* Around the centre, where all four classes meet. */
    int64_t x0 = 2850, y0 = 2380;
    int w = 300, h = 240;
    uint8_t *whole = malloc(w * h * 3), *cw = malloc(w * h), *part = malloc(w * h * 3);
    uint8_t *pc = malloc(w * h);
    CHECK(hp_synth_render(s, x0, y0, w, h, whole, cw) == HP_OK);
    /* Four quadrants split at (x0+137, y0+101), each rendered with a margin and cut out. */
    int sx = 137, sy = 101;
    int64_t qx[4] = {x0, x0 + sx, x0, x0 + sx}, qy[4] = {y0, y0, y0 + sy, y0 + sy};
    int qw[4] = {sx, w - sx, sx, w - sx}, qh[4] = {sy, sy, h - sy, h - sy};
    for (int q = 0; q < 4; q++) {
        int m = 13 + q; /* odd margins: the renders start at unaligned places */
        int rw = qw[q] + 2 * m, rh = qh[q] + 2 * m;
        uint8_t *r = malloc((size_t)rw * rh * 3), *rcl = malloc((size_t)rw * rh);
        CHECK(hp_synth_render(s, qx[q] - m, qy[q] - m, rw, rh, r, rcl) == HP_OK);
        for (int y = 0; y < qh[q]; y++) {
            int64_t gy = qy[q] + y - y0, gx = qx[q] - x0;
            memcpy(part + (gy * w + gx) * 3, r + ((size_t)(y + m) * rw + m) * 3, (size_t)qw[q] * 3);
            memcpy(pc + gy * w + gx, rcl + (size_t)(y + m) * rw + m, (size_t)qw[q]);
        }
        free(r);
        free(rcl);
    }
    CHECK(memcmp(whole, part, (size_t)w * h * 3) == 0);
    CHECK(memcmp(cw, pc, (size_t)w * h) == 0);
    /* The class buffer is the layout's answer. */
    int bad = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int k = hp_synth_class_at(s, x0 + x, y0 + y);
            bad += cw[y * w + x] != k;
        }
    CHECK(bad == 0);
    free(whole);
    free(cw);
    free(part);
    free(pc);
    hp_synth_destroy(s);
    passed++;
}

static long file_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb)
            same = 0;
        if (ca == EOF || cb == EOF)
            break;
    }
    if (fa)
        fclose(fa);
    if (fb)
        fclose(fb);
    return same;
}

/* Writes a slide, reads it back with OpenSlide and compares with direct renders; checks the
 * label mask and that nothing temporary is left behind. */
static void test_written_slide(const char *dir)
{
    int64_t W = 2100, H = 1700;
    hp_synth *s = make(3, W, H, 0.5);
    char path[1024], path2[1024];
    snprintf(path, sizeof path, "%s/a.tiff", dir);
    snprintf(path2, sizeof path2, "%s/b.tiff", dir);
    hp_synth_write_options o;
    hp_synth_write_options_init(&o);
    o.truth_scale = 32;
    hp_error err = {0};
    CHECK_MSG(hp_synth_write(s, path, &o, &err) == HP_OK, "%s", err.msg);
    o.threads = 1; /* the thread count must not change a byte */
    CHECK_MSG(hp_synth_write(s, path2, &o, &err) == HP_OK, "%s", err.msg);
    CHECK(same_file(path, path2));
    char *m1 = hp_synth_truth_path(path, ".truth.png"), *m2 = hp_synth_truth_path(path2, ".truth.png");
    char *g1 = hp_synth_truth_path(path, ".truth.geojson"), *g2 = hp_synth_truth_path(path2, ".truth.geojson");
    CHECK(same_file(m1, m2));
    CHECK(same_file(g1, g2));
    CHECK(file_size(path) > 1000);

    openslide_t *os = openslide_open(path);
    CHECK(os && openslide_get_error(os) == NULL);
    if (os && !openslide_get_error(os)) {
        CHECK(openslide_get_level_count(os) == 2); /* 2100 -> 525 (<= 1024) */
        int64_t lw, lh;
        openslide_get_level_dimensions(os, 1, &lw, &lh);
        CHECK(lw == 525 && lh == 425);
        const char *vendor = openslide_get_property_value(os, "openslide.vendor");
        CHECK(vendor && !strcmp(vendor, "aperio"));
        const char *mpp = openslide_get_property_value(os, OPENSLIDE_PROPERTY_NAME_MPP_X);
        CHECK(mpp && fabs(atof(mpp) - 0.5) < 1e-9);
        /* Regions straddling tile borders and the slide's right and bottom edges. */
        const int64_t rx[3] = {200, 1000, W - 150}, ry[3] = {240, 700, H - 90};
        for (int i = 0; i < 3; i++) {
            int w = 150, h = 90;
            uint32_t *argb = malloc((size_t)w * h * 4);
            uint8_t *rgb = malloc((size_t)w * h * 3);
            openslide_read_region(os, argb, rx[i], ry[i], 0, w, h);
            CHECK(hp_synth_render(s, rx[i], ry[i], w, h, rgb, NULL) == HP_OK);
            double sum = 0;
            int worst = 0;
            for (int k = 0; k < w * h; k++) {
                uint32_t p = argb[k];
                int d[3] = {(int)((p >> 16) & 255) - rgb[3 * k], (int)((p >> 8) & 255) - rgb[3 * k + 1],
                            (int)(p & 255) - rgb[3 * k + 2]};
                for (int c = 0; c < 3; c++) {
                    sum += abs(d[c]);
                    worst = abs(d[c]) > worst ? abs(d[c]) : worst;
                }
            }
            /* Quality 90 with 4:2:0 chroma on saturated, fine-grained stain colours: ~3 levels. */
            double mean = sum / (w * h * 3.0);
            CHECK_MSG(mean < 4.5 && worst < 80, "region %d: mean abs diff %.2f, max %d", i, mean, worst);
            free(argb);
            free(rgb);
        }
        openslide_close(os);
    }

    /* The mask is the layout sampled at block centres. */
    int mw, mh;
    uint8_t *mask = NULL;
    CHECK_MSG(hp_image_read_rgb8(m1, &mw, &mh, &mask, &err) == HP_OK, "%s", err.msg);
    if (mask) {
        CHECK(mw == (W + 31) / 32 && mh == (H + 31) / 32);
        int bad = 0;
        for (int y = 0; y < mh; y++)
            for (int x = 0; x < mw; x++) {
                int64_t cx = x * 32 + 16, cy = y * 32 + 16;
                cx = cx < W ? cx : W - 1;
                cy = cy < H ? cy : H - 1;
                bad += mask[(y * mw + x) * 3] != hp_synth_class_at(s, cx, cy);
            }
        CHECK_MSG(bad == 0, "%d mask pixels disagree with the layout", bad);
        free(mask);
    }
    /* Only the finished files remain: no temporaries. */
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            n++;
            CHECK_MSG(!strstr(e->d_name, ".tmp"), "left behind: %s", e->d_name);
        }
    if (d)
        closedir(d);
    CHECK(n == 9); /* two slides, three truth files each, the folder of the bad-argument test */
    free(m1);
    free(m2);
    free(g1);
    free(g2);
    hp_synth_destroy(s);
    passed++;
}

static void test_bad_arguments(const char *dir)
{
    hp_synth_params p = {.seed = 1, .width = 100, .height = 1000, .mpp = 0.25};
    hp_synth *s = NULL;
    hp_error err = {0};
    CHECK(hp_synth_create(&p, &s, &err) == HP_ERR_INVALID && !s && strstr(err.msg, "256"));
    p.width = 600000;
    hp_error_clear(&err);
    CHECK(hp_synth_create(&p, &s, &err) == HP_ERR_INVALID && !s);
    p.width = 1000;
    p.mpp = 0;
    hp_error_clear(&err);
    CHECK(hp_synth_create(&p, &s, &err) == HP_ERR_INVALID && strstr(err.msg, "um/px"));
    p.mpp = 0.5;
    s = make(1, 1000, 1000, 0.5);
    uint8_t px[3];
    CHECK(hp_synth_render(s, 0, 0, 0, 1, px, NULL) == HP_ERR_INVALID);
    hp_synth_write_options o;
    hp_synth_write_options_init(&o);
    char path[1200];
    snprintf(path, sizeof path, "%s/bad.tiff", dir);
    o.tile = 100; /* not a multiple of 16 */
    hp_error_clear(&err);
    CHECK(hp_synth_write(s, path, &o, &err) == HP_ERR_INVALID && strstr(err.msg, "tile"));
    hp_synth_write_options_init(&o);
    o.truth_scale = 0;
    hp_error_clear(&err);
    CHECK(hp_synth_write(s, path, &o, &err) == HP_ERR_INVALID);
    hp_synth_write_options_init(&o);
    hp_error_clear(&err);
    CHECK(hp_synth_write(s, "/nonexistent-dir/x.tiff", &o, &err) == HP_ERR_IO && err.msg[0]);
    CHECK(access(path, F_OK) != 0);
    /* The writer refuses bands that do not fit and removes its temporary when abandoned. */
    hp_tiff_pyramid_options to = {.width = 300, .height = 300, .tile = 256, .quality = 90,
                                  .mpp = 0.5, .downsample = 4, .min_side = 1024};
    hp_tiff_pyramid *tw = NULL;
    hp_error_clear(&err);
    CHECK(hp_tiff_pyramid_create(path, &to, &tw, &err) == HP_OK);
    uint8_t *band = calloc(300 * 256 * 3, 1);
    hp_error_clear(&err);
    CHECK(hp_tiff_pyramid_write_band(tw, band, 100, &err) == HP_ERR_INVALID);
    hp_error_clear(&err);
    CHECK(hp_tiff_pyramid_finish(tw, &err) == HP_ERR_INVALID); /* rows missing */
    hp_tiff_pyramid_destroy(tw);
    CHECK(access(path, F_OK) != 0);
    free(band);
    hp_synth_destroy(s);
    hp_synth_destroy(NULL);
    hp_tiff_pyramid_destroy(NULL);
    passed++;
}

int main(void)
{
    char dir[] = "/tmp/hp_test_synth_XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char bad[64];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    if (mkdir(bad, 0755) != 0) {
        perror("mkdir");
        return 1;
    }
    test_determinism();
    test_tile_independence();
    test_bad_arguments(bad);
    test_written_slide(dir);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return hp_test_finish("test_synth", passed);
}
