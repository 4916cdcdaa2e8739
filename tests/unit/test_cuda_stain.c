/* Stain normalization on a CUDA device (kernels/cuda/stain_normalize.cu) against the CPU
 * reference (kernels/cpu/stain_normalize.c): Macenko and Reinhard on the real patches
 * ($HP_SHARED_DIR/data/real/patches), one image per call and a batch of tiles in one call, and on
 * every 3rd level of every channel (all corners of the colour cube, where clipping happens), with
 * ordinary and extreme normalizers. Max abs diff <= 1 level (the last bits of expf/powf/cbrtf on
 * each side can move a rounding). Refusals: an uninitialized normalizer, NULL buffers; an empty
 * batch is a no-op. Exits 77 (skipped) without CUDA or without a usable device. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/cuda/stain_normalize.h"
#include "io/image.h"
#include "pipeline/stain.h"
#include "util/testutil.h"

static int passed;

/* Runs n on both sides and compares; returns the max abs diff (or 999 on a failure). */
static int compare(const hp_stain_normalizer *n, const uint8_t *src, size_t npix, const char *what)
{
    uint8_t *a = malloc(npix * 3 + 1), *b = malloc(npix * 3 + 1);
    int maxd = 999;
    hp_error e;
    hp_error_clear(&e);
    if (!a || !b) {
        CHECK(!"out of memory");
        goto done;
    }
    if (hp_stain_normalize_cpu(n, src, a, npix, &e) != HP_OK ||
        hp_stain_normalize_cuda_host(n, src, b, npix, &e) != HP_OK) {
        CHECK_MSG(0, "%s: %s", what, e.msg);
        goto done;
    }
    size_t over0 = 0;
    maxd = 0;
    for (size_t i = 0; i < npix * 3; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d > maxd)
            maxd = d;
        over0 += d > 0;
    }
    printf("%s: %zu pixels, CUDA vs CPU max abs diff %d, %.4f %% of values differ\n", what, npix, maxd,
           100.0 * (double)over0 / (double)(npix * 3));
    CHECK_MSG(maxd <= 1, "%s: max abs diff %d", what, maxd);
done:
    free(a);
    free(b);
    return maxd;
}

typedef struct {
    int w, h;
    uint8_t *rgb;
} image;

static int load(const char *name, image *im)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/real/patches/%s", hp_test_env("HP_SHARED_DIR", "../shared"), name);
    hp_error e;
    hp_error_clear(&e);
    if (hp_image_read_rgb8(path, &im->w, &im->h, &im->rgb, &e) != HP_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 0;
    }
    return 1;
}

static int fit_pair(hp_stain_method m, const image *t, const image *s, hp_stain_normalizer *n)
{
    hp_stain_params pt, ps;
    hp_error e;
    hp_error_clear(&e);
    if (hp_stain_fit(m, t->rgb, (size_t)t->w * t->h, &pt, &e) != HP_OK ||
        hp_stain_fit(m, s->rgb, (size_t)s->w * s->h, &ps, &e) != HP_OK ||
        hp_stain_normalizer_init(n, &pt, &ps, &e) != HP_OK) {
        CHECK_MSG(0, "fit: %s", e.msg);
        return 0;
    }
    return 1;
}

static void test_real(void)
{
    static const char *names[] = {"tiatoolbox_stain_target_1000px.png", "tiatoolbox_stain_source_256px.png",
                                  "crc150_target.png", "crc150_test_1.png", "crc150_test_2.png",
                                  "crc150_test_3.png", "crc150_test_4.png", "crc150_test_5.png",
                                  "HEnorm_example1_1024px.png"};
    enum { N = sizeof names / sizeof *names };
    image im[N];
    memset(im, 0, sizeof im);
    for (int i = 0; i < N; i++)
        if (!load(names[i], &im[i])) {
            CHECK_MSG(0, "real patch %s missing", names[i]);
            goto done;
        }
    for (int m = HP_STAIN_MACENKO; m <= HP_STAIN_REINHARD; m++) {
        hp_stain_normalizer n;
        char what[256];
        const char *mn = hp_stain_method_name((hp_stain_method)m);
        if (fit_pair((hp_stain_method)m, &im[0], &im[1], &n)) {
            snprintf(what, sizeof what, "%s tiatoolbox source->target", mn);
            compare(&n, im[1].rgb, (size_t)im[1].w * im[1].h, what);
        }
        if (fit_pair((hp_stain_method)m, &im[0], &im[8], &n)) {
            snprintf(what, sizeof what, "%s HEnorm example1->tiatoolbox target", mn);
            compare(&n, im[8].rgb, (size_t)im[8].w * im[8].h, what);
        }
        /* per slide: fit once on a few tiles (test_1..3), normalize the batch of all five */
        uint8_t *batch = malloc((size_t)5 * 150 * 150 * 3);
        if (!batch) {
            CHECK(!"out of memory");
            continue;
        }
        for (int k = 0; k < 5; k++)
            memcpy(batch + (size_t)k * 150 * 150 * 3, im[3 + k].rgb, (size_t)150 * 150 * 3);
        image few = {150, 3 * 150, batch};
        if (fit_pair((hp_stain_method)m, &im[2], &few, &n)) {
            snprintf(what, sizeof what, "%s crc150 batch of 5 tiles", mn);
            compare(&n, batch, (size_t)5 * 150 * 150, what);
        }
        free(batch);
    }
    passed++;
done:
    for (int i = 0; i < N; i++)
        free(im[i].rgb);
}

static void test_colour_cube(void)
{
    /* every 3rd level of each channel, 0 and 255 included: 86^3 pixels */
    const int L = 86;
    size_t npix = (size_t)L * L * L;
    uint8_t *cube = malloc(npix * 3);
    if (!cube) {
        CHECK(!"out of memory");
        return;
    }
    size_t i = 0;
    for (int r = 0; r < L; r++)
        for (int g = 0; g < L; g++)
            for (int b = 0; b < L; b++, i++) {
                cube[3 * i] = (uint8_t)(3 * r);
                cube[3 * i + 1] = (uint8_t)(3 * g);
                cube[3 * i + 2] = (uint8_t)(3 * b);
            }
    hp_stain_params t, s;
    hp_stain_normalizer n;
    hp_error e;
    memset(&t, 0, sizeof t);
    t.method = HP_STAIN_MACENKO;
    float ht[3] = {0.5626f, 0.7201f, 0.4062f}, et[3] = {0.2159f, 0.8012f, 0.5581f};
    float hs[3] = {0.65f, 0.70f, 0.29f}, es[3] = {0.07f, 0.99f, 0.11f};
    memcpy(t.stain[0], ht, sizeof ht);
    memcpy(t.stain[1], et, sizeof et);
    t.max_conc[0] = 1.9705f;
    t.max_conc[1] = 1.0308f;
    s = t;
    memcpy(s.stain[0], hs, sizeof hs);
    memcpy(s.stain[1], es, sizeof es);
    s.max_conc[0] = 0.6f; /* a pale source: strong amplification, much clipping */
    s.max_conc[1] = 2.5f;
    hp_error_clear(&e);
    if (hp_stain_normalizer_init(&n, &t, &s, &e) == HP_OK)
        compare(&n, cube, npix, "macenko colour cube");
    else
        CHECK_MSG(0, "%s", e.msg);

    memset(&t, 0, sizeof t);
    t.method = HP_STAIN_REINHARD;
    float mt[3] = {60, 25, -15}, st[3] = {15, 8, 6}, ms[3] = {75, 10, -5}, ss[3] = {0.5f, 30, 1};
    memcpy(t.mean, mt, sizeof mt);
    memcpy(t.std, st, sizeof st);
    s = t;
    memcpy(s.mean, ms, sizeof ms);
    memcpy(s.std, ss, sizeof ss); /* gains of 30 and 0.27: far out of gamut and back */
    hp_error_clear(&e);
    if (hp_stain_normalizer_init(&n, &t, &s, &e) == HP_OK)
        compare(&n, cube, npix, "reinhard colour cube");
    else
        CHECK_MSG(0, "%s", e.msg);
    free(cube);
    passed++;
}

static void test_refusals(void)
{
    hp_stain_normalizer n;
    uint8_t px[3] = {1, 2, 3};
    hp_error e;
    memset(&n, 0, sizeof n);
    hp_error_clear(&e);
    CHECK(hp_stain_normalize_cuda_host(&n, px, px, 1, &e) == HP_ERR_INVALID);
    CHECK_MSG(strstr(e.msg, "not initialized"), "%s", e.msg);
    n.method = HP_STAIN_REINHARD;
    n.gain[0] = n.gain[1] = n.gain[2] = 1;
    hp_error_clear(&e);
    CHECK(hp_stain_normalize_cuda_host(&n, NULL, px, 1, &e) == HP_ERR_INVALID);
    hp_error_clear(&e);
    CHECK(hp_stain_normalize_cuda(&n, NULL, NULL, 5, NULL, &e) == HP_ERR_INVALID);
    hp_error_clear(&e);
    CHECK(hp_stain_normalize_cuda_host(&n, px, px, 0, &e) == HP_OK);
    CHECK(hp_stain_normalize_cuda(&n, NULL, NULL, 0, NULL, &e) == HP_OK);
    /* all-white and all-black tiles through both */
    uint8_t tile[64 * 3];
    hp_stain_params p;
    memset(&p, 0, sizeof p);
    p.method = HP_STAIN_MACENKO;
    p.stain[0][0] = 0.65f, p.stain[0][1] = 0.70f, p.stain[0][2] = 0.29f;
    p.stain[1][0] = 0.07f, p.stain[1][1] = 0.99f, p.stain[1][2] = 0.11f;
    p.max_conc[0] = p.max_conc[1] = 1;
    hp_error_clear(&e);
    if (hp_stain_normalizer_init(&n, &p, &p, &e) == HP_OK) {
        memset(tile, 255, sizeof tile);
        compare(&n, tile, 64, "macenko white tile");
        memset(tile, 0, sizeof tile);
        compare(&n, tile, 64, "macenko black tile");
    } else {
        CHECK_MSG(0, "%s", e.msg);
    }
    passed++;
}

int main(void)
{
    /* in builds without CUDA the entry points exist and refuse; nothing to compare */
    if (!hp_cuda_compiled()) {
        printf("test_cuda_stain: skipped (built without CUDA)\n");
        return 77;
    }
    if (!hp_cuda_available()) {
        printf("test_cuda_stain: skipped (no usable CUDA device)\n");
        return 77;
    }
    test_refusals();
    test_colour_cube();
    test_real();
    return hp_test_finish("test_cuda_stain", passed);
}
