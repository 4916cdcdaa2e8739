/* The slide interface (io/slide.h) against independent readers and hostile files:
 * - the real Aperio slide against OpenSlide's C API called directly here;
 * - TIFFs written here with libtiff (stripped, tiled, one huge strip, 16-bit, alpha; resolution
 *   in cm and inch, and none) against the pattern they were written from;
 * - PNG (BACH) and JPEG (written here) against io/image.c's whole-image decode;
 * - truncated slides, a text file named .svs, empty and missing files, absurd TIFF headers;
 * - concurrent reads on one handle against serial reads. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>
#include <openslide.h>
#include <tiffio.h>

#include "io/image.h"
#include "io/slide.h"
#include "util/testutil.h"

static char tmpdir[256];

static const char *tmp(const char *name)
{
    static char buf[8][512];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* The pattern the generated TIFFs hold: every pixel differs from its neighbours. */
static uint8_t pat(int64_t x, int64_t y, int c)
{
    return (uint8_t)((x * 7 + y * 13 + c * 85 + (x * y) % 31) & 255);
}

/* ---- writing TIFFs ---- */

typedef struct {
    int w, h;
    int tile;       /* 0 = stripped */
    int rps;        /* rows per strip */
    int bps;        /* 8 or 16 */
    int alpha;      /* 1: RGBA with unassociated alpha (alpha = 0 where x < 10) */
    int unit;       /* 0 = no resolution tags, else RESUNIT_* */
    double res;     /* pixels per unit */
    uint16_t comp;
} tiff_spec;

static int write_tiff(const char *path, const tiff_spec *t)
{
    TIFF *tif = TIFFOpen(path, "w");
    if (!tif)
        return 0;
    int spp = t->alpha ? 4 : 3, bpp = spp * t->bps / 8;
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)t->w);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)t->h);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, (uint16_t)spp);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, (uint16_t)t->bps);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_RGB);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, t->comp);
    if (t->alpha) {
        uint16_t ex = EXTRASAMPLE_UNASSALPHA;
        TIFFSetField(tif, TIFFTAG_EXTRASAMPLES, 1, &ex);
    }
    if (t->unit) {
        TIFFSetField(tif, TIFFTAG_XRESOLUTION, (float)t->res);
        TIFFSetField(tif, TIFFTAG_YRESOLUTION, (float)t->res);
        TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, (uint16_t)t->unit);
    }
    int bw = t->tile ? t->tile : t->w, bh = t->tile ? t->tile : t->rps;
    if (t->tile) {
        TIFFSetField(tif, TIFFTAG_TILEWIDTH, (uint32_t)t->tile);
        TIFFSetField(tif, TIFFTAG_TILELENGTH, (uint32_t)t->tile);
    } else {
        TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, (uint32_t)t->rps);
    }
    if (t->comp == COMPRESSION_JPEG) {
        TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_YCBCR);
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
        TIFFSetField(tif, TIFFTAG_JPEGQUALITY, 90);
    }
    uint8_t *blk = calloc((size_t)bw * bh, (size_t)bpp);
    int ok = blk != NULL;
    for (int by = 0; ok && by < t->h; by += bh) {
        for (int bx = 0; ok && bx < t->w; bx += bw) {
            for (int y = 0; y < bh; y++)
                for (int x = 0; x < bw; x++)
                    for (int c = 0; c < spp; c++) {
                        uint8_t v = c == 3 ? (bx + x < 10 ? 0 : 255) : pat(bx + x, by + y, c);
                        size_t i = ((size_t)y * bw + x) * spp + c;
                        if (t->bps == 16)
                            ((uint16_t *)blk)[i] = (uint16_t)(v * 257);
                        else
                            blk[i] = v;
                    }
            int rows = by + bh <= t->h ? bh : t->h - by;
            if (t->tile)
                ok = TIFFWriteTile(tif, blk, (uint32_t)bx, (uint32_t)by, 0, 0) >= 0;
            else
                ok = TIFFWriteEncodedStrip(tif, TIFFComputeStrip(tif, (uint32_t)by, 0), blk,
                                           (tmsize_t)rows * bw * bpp) >= 0;
        }
    }
    free(blk);
    TIFFClose(tif);
    return ok;
}

/* Expected value of a pattern TIFF at (x, y), over white outside and where alpha is 0. */
static uint8_t expect(const tiff_spec *t, int64_t x, int64_t y, int c)
{
    if (x < 0 || y < 0 || x >= t->w || y >= t->h)
        return 255;
    if (t->alpha && x < 10)
        return 255;
    return pat(x, y, c);
}

static int check_pattern_region(hp_slide *s, const tiff_spec *t, int64_t x0, int64_t y0, int w, int h)
{
    uint8_t *px = malloc((size_t)w * h * 3);
    hp_status st = hp_slide_read_region(s, 0, x0, y0, w, h, px);
    CHECK_MSG(st == HP_OK, "%s", hp_slide_error(s));
    int bad = 0;
    for (int y = 0; y < h && !st; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                if (px[((size_t)y * w + x) * 3 + c] != expect(t, x0 + x, y0 + y, c) && bad++ < 3)
                    fprintf(stderr, "  (%lld,%lld) c%d: %u, expected %u\n", (long long)(x0 + x),
                            (long long)(y0 + y), c, px[((size_t)y * w + x) * 3 + c],
                            expect(t, x0 + x, y0 + y, c));
    free(px);
    CHECK_MSG(bad == 0, "%d pixels differ in region (%lld,%lld %dx%d)", bad, (long long)x0,
              (long long)y0, w, h);
    return bad == 0 && st == HP_OK;
}

static void check_pattern_slide(const char *path, const tiff_spec *t, hp_slide_reader reader,
                                const char *format)
{
    hp_error err = {0};
    hp_slide_options o = {.reader = reader};
    hp_slide *s = hp_slide_open(path, &o, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s)
        return;
    CHECK_MSG(!strcmp(hp_slide_format(s), format), "format %s, expected %s", hp_slide_format(s), format);
    int64_t w = 0, h = 0;
    CHECK(hp_slide_level_dimensions(s, 0, &w, &h) == HP_OK && w == t->w && h == t->h);
    check_pattern_region(s, t, 0, 0, t->w, t->h);
    check_pattern_region(s, t, 37, 21, 101, 67);
    check_pattern_region(s, t, -20, -10, 60, 40);                  /* top-left corner */
    check_pattern_region(s, t, t->w - 30, t->h - 17, 64, 50);      /* bottom-right corner */
    check_pattern_region(s, t, t->w + 5, 3, 10, 10);               /* wholly outside */
    double mx = 0, my = 0;
    hp_mpp_source src;
    hp_status st = hp_slide_mpp(s, &mx, &my, &src);
    if (t->unit) {
        double want = t->unit == RESUNIT_CENTIMETER ? 1e4 / t->res : 25400 / t->res;
        CHECK_MSG(st == HP_OK && src == HP_MPP_TIFF_RESOLUTION && mx > want * 0.999 &&
                      mx < want * 1.001 && my > want * 0.999 && my < want * 1.001,
                  "mpp %g x %g from %s, expected %g: %s", mx, my, hp_mpp_source_name(src), want,
                  hp_slide_error(s));
    } else {
        CHECK(st != HP_OK && strstr(hp_slide_error(s), "--mpp") && strstr(hp_slide_error(s), path));
    }
    hp_slide_close(s);
}

/* ---- the real slide against OpenSlide ---- */

static void openslide_rgb(openslide_t *osr, int level, int64_t x, int64_t y, int w, int h, uint8_t *out)
{
    uint32_t *buf = malloc((size_t)w * h * 4);
    openslide_read_region(osr, buf, x, y, level, w, h);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        unsigned a = buf[i] >> 24;
        /* premultiplied over white: c + (255 - a) */
        out[3 * i] = (uint8_t)(((buf[i] >> 16) & 255) + 255 - a);
        out[3 * i + 1] = (uint8_t)(((buf[i] >> 8) & 255) + 255 - a);
        out[3 * i + 2] = (uint8_t)((buf[i] & 255) + 255 - a);
    }
    free(buf);
}

static void test_svs(const char *svs)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(svs, NULL, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s)
        return;
    CHECK(!strcmp(hp_slide_format(s), "aperio"));
    CHECK(hp_slide_level_count(s) == 1);
    int64_t w = 0, h = 0;
    CHECK(hp_slide_level_dimensions(s, 0, &w, &h) == HP_OK && w == 2220 && h == 2967);
    CHECK(hp_slide_level_downsample(s, 0) == 1.0);
    double mx = 0, my = 0;
    hp_mpp_source src;
    CHECK(hp_slide_mpp(s, &mx, &my, &src) == HP_OK && src == HP_MPP_OPENSLIDE);
    CHECK_MSG(mx > 0.498 && mx < 0.500 && my > 0.498 && my < 0.500, "mpp %g x %g", mx, my);
    CHECK(hp_slide_objective_power(s) == 20);
    CHECK(hp_slide_warning(s)[0] == '\0');
    const char *want[] = {"label", "macro", "thumbnail"};
    for (int k = 0; k < 3; k++) {
        int found = 0;
        for (int i = 0; i < hp_slide_associated_count(s); i++)
            found |= !strcmp(hp_slide_associated_name(s, i), want[k]);
        CHECK_MSG(found, "associated image %s missing", want[k]);
    }
    uint8_t *a = NULL;
    int aw = 0, ah = 0;
    CHECK(hp_slide_read_associated(s, "thumbnail", &a, &aw, &ah) == HP_OK && aw == 574 && ah == 768);
    free(a);
    CHECK(hp_slide_read_associated(s, "nope", &a, &aw, &ah) != HP_OK && a == NULL);
    CHECK(strstr(hp_slide_error(s), "nope") != NULL);
    hp_slide_close(s);

    s = hp_slide_open(svs, NULL, &err);
    openslide_t *osr = openslide_open(svs);
    CHECK(osr && !openslide_get_error(osr));
    const int64_t reg[][4] = {{0, 0, 240, 240},     {1000, 1500, 333, 211}, {-50, -70, 200, 150},
                              {2100, 2900, 300, 200}, {2300, 100, 40, 40},    {17, 2960, 500, 30}};
    for (size_t r = 0; s && osr && r < sizeof reg / sizeof reg[0]; r++) {
        int rw = (int)reg[r][2], rh = (int)reg[r][3];
        uint8_t *p1 = malloc((size_t)rw * rh * 3), *p2 = malloc((size_t)rw * rh * 3);
        CHECK_MSG(hp_slide_read_region(s, 0, reg[r][0], reg[r][1], rw, rh, p1) == HP_OK, "%s",
                  hp_slide_error(s));
        openslide_rgb(osr, 0, reg[r][0], reg[r][1], rw, rh, p2);
        CHECK_MSG(!memcmp(p1, p2, (size_t)rw * rh * 3), "region %zu differs from OpenSlide's", r);
        free(p1);
        free(p2);
    }
    /* Outside the slide is white; inside the tissue is not all white. */
    uint8_t px[30 * 30 * 3];
    CHECK(s && hp_slide_read_region(s, 0, 3000, 3000, 30, 30, px) == HP_OK);
    int white = 1;
    for (size_t i = 0; i < sizeof px; i++)
        white &= px[i] == 255;
    CHECK(white);
    /* Thumbnail: the requested size, and the average of level 0 (area averaging). */
    uint8_t *t = NULL;
    int tw = 0, th = 0;
    CHECK(s && hp_slide_read_thumbnail(s, 300, &t, &tw, &th) == HP_OK);
    CHECK_MSG(th == 300 && tw == 224, "thumbnail %dx%d", tw, th);
    free(t);
    /* Bad requests fail with a message and do not crash. */
    CHECK(s && hp_slide_read_region(s, 1, 0, 0, 10, 10, px) != HP_OK);
    CHECK(s && hp_slide_read_region(s, 0, 0, 0, 0, 10, px) != HP_OK);
    CHECK(s && strstr(hp_slide_error(s), "level 1"));
    if (osr)
        openslide_close(osr);
    hp_slide_close(s);
}

/* ---- concurrency ---- */

typedef struct {
    hp_slide *s;
    int seed, n, size;
    const uint8_t *serial; /* n regions of size*size*3, in the order this seed draws them */
    int mismatches, errors;
} reader_job;

static void region_at(int seed, int k, int64_t W, int64_t H, int64_t *x, int64_t *y)
{
    unsigned v = (unsigned)(seed * 7919 + k * 104729) * 2654435761u;
    *x = (int64_t)(v % (unsigned)(W + 40)) - 20;
    *y = (int64_t)((v >> 11) % (unsigned)(H + 40)) - 20;
}

static void *reader_main(void *arg)
{
    reader_job *j = arg;
    int64_t W = 0, H = 0;
    hp_slide_level_dimensions(j->s, 0, &W, &H);
    size_t sz = (size_t)j->size * j->size * 3;
    uint8_t *px = malloc(sz);
    for (int k = 0; k < j->n; k++) {
        int64_t x, y;
        region_at(j->seed, k, W, H, &x, &y);
        if (hp_slide_read_region(j->s, 0, x, y, j->size, j->size, px) != HP_OK)
            j->errors++;
        else if (j->serial && memcmp(px, j->serial + k * sz, sz))
            j->mismatches++;
    }
    free(px);
    return NULL;
}

static void test_concurrent(const char *path, const char *what)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(path, NULL, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (!s)
        return;
    enum { T = 4, N = 24, SZ = 96 };
    int64_t W = 0, H = 0;
    hp_slide_level_dimensions(s, 0, &W, &H);
    size_t sz = (size_t)SZ * SZ * 3;
    uint8_t *serial[T];
    for (int t = 0; t < T; t++) {
        serial[t] = malloc(sz * N);
        for (int k = 0; k < N; k++) {
            int64_t x, y;
            region_at(t, k, W, H, &x, &y);
            CHECK(hp_slide_read_region(s, 0, x, y, SZ, SZ, serial[t] + k * sz) == HP_OK);
        }
    }
    hp_slide_close(s);
    s = hp_slide_open(path, NULL, &err); /* a fresh handle: no cached state from the serial pass */
    pthread_t th[T];
    reader_job jobs[T];
    for (int t = 0; t < T; t++) {
        jobs[t] = (reader_job){s, t, N, SZ, serial[t], 0, 0};
        pthread_create(&th[t], NULL, reader_main, &jobs[t]);
    }
    for (int t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        CHECK_MSG(jobs[t].errors == 0 && jobs[t].mismatches == 0,
                  "%s: thread %d: %d errors, %d regions differ from serial reads", what, t,
                  jobs[t].errors, jobs[t].mismatches);
        free(serial[t]);
    }
    hp_slide_close(s);
}

/* ---- bad input ---- */

static void expect_open_fails(const char *path, const char *why)
{
    hp_error err = {0};
    hp_slide *s = hp_slide_open(path, NULL, &err);
    CHECK_MSG(s == NULL, "%s: opened", why);
    CHECK_MSG(err.code != HP_OK && strstr(err.msg, path), "%s: message '%s' does not name the file",
              why, err.msg);
    if (s == NULL)
        printf("  %s: %s\n", why, err.msg);
    hp_slide_close(s);
}

static int copy_prefix(const char *src, const char *dst, long n)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int ok = in && out;
    char buf[65536];
    while (ok && n > 0) {
        size_t k = fread(buf, 1, n < (long)sizeof buf ? (size_t)n : sizeof buf, in);
        if (k == 0)
            break;
        ok = fwrite(buf, 1, k, out) == k;
        n -= (long)k;
    }
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return ok;
}

/* Truncated slides: either open fails with a message naming the file, or it opens and then
 * reading everything either works or fails with a message; never a crash. */
static void test_truncated(const char *svs)
{
    const long lens[] = {8, 200, 4096, 20000, 100000, 400000, 1000000, 1700000, 1938000};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        const char *p = tmp("truncated.svs");
        CHECK(copy_prefix(svs, p, lens[i]));
        hp_error err = {0};
        hp_slide *s = hp_slide_open(p, NULL, &err);
        if (!s) {
            CHECK_MSG(err.code != HP_OK && strstr(err.msg, p), "length %ld: '%s'", lens[i], err.msg);
            printf("  truncated at %ld: open: %s\n", lens[i], err.msg);
            continue;
        }
        uint8_t *t = NULL;
        int tw, th;
        hp_status st = hp_slide_read_thumbnail(s, 256, &t, &tw, &th);
        free(t);
        for (int a = 0; !st && a < hp_slide_associated_count(s); a++) {
            st = hp_slide_read_associated(s, hp_slide_associated_name(s, a), &t, &tw, &th);
            free(t);
        }
        if (st) {
            CHECK_MSG(strstr(hp_slide_error(s), p), "length %ld: '%s'", lens[i], hp_slide_error(s));
            printf("  truncated at %ld: read: %s\n", lens[i], hp_slide_error(s));
        } else {
            printf("  truncated at %ld: opens and reads (the missing part is not used)\n", lens[i]);
        }
        hp_slide_close(s);
    }
}

/* A classic little-endian TIFF with one IFD of the given (tag, type, value) entries. */
static int write_raw_tiff(const char *path, const uint32_t (*e)[3], int n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    uint8_t b[512] = {'I', 'I', 42, 0, 8, 0, 0, 0};
    size_t o = 8;
    b[o++] = (uint8_t)n, b[o++] = 0;
    for (int i = 0; i < n; i++) {
        uint32_t tag = e[i][0], type = e[i][1], v = e[i][2];
        b[o++] = tag & 255, b[o++] = tag >> 8;
        b[o++] = (uint8_t)type, b[o++] = 0;
        b[o++] = 1, b[o++] = 0, b[o++] = 0, b[o++] = 0;
        for (int k = 0; k < 4; k++)
            b[o++] = (uint8_t)(type == 3 && k >= 2 ? 0 : (v >> (8 * k)) & 255);
    }
    o += 4; /* next IFD: 0 */
    size_t len = o + 64;
    int ok = fwrite(b, 1, len, f) == len;
    fclose(f);
    return ok;
}

static void test_bad_files(void)
{
    const char *p = tmp("text.svs");
    FILE *f = fopen(p, "w");
    fputs("this is not a slide, just some notes about one\n", f);
    fclose(f);
    expect_open_fails(p, "text file named .svs");
    p = tmp("empty.svs");
    fclose(fopen(p, "w"));
    expect_open_fails(p, "empty file");
    expect_open_fails(tmp("missing.svs"), "missing file");
    expect_open_fails(tmpdir, "a directory");

    /* A header claiming 4e9 x 4e9 pixels with 64 bytes of data. */
    const uint32_t absurd[][3] = {{256, 4, 4000000000u}, {257, 4, 4000000000u}, {258, 3, 8},
                                  {259, 3, 1},           {262, 3, 1},           {273, 4, 100},
                                  {277, 3, 1},           {278, 4, 4000000000u}, {279, 4, 64}};
    p = tmp("absurd.tif");
    CHECK(write_raw_tiff(p, absurd, 9));
    expect_open_fails(p, "absurd TIFF dimensions");
    /* One that libtiff accepts (3e6 x 10 in one strip): refused by histoplan's own bound. */
    const uint32_t wide[][3] = {{256, 4, 3000000}, {257, 4, 10}, {258, 3, 8},  {259, 3, 1}, {262, 3, 1},
                                {273, 4, 100},     {277, 3, 1},  {278, 4, 10}, {279, 4, 64}};
    p = tmp("wide.tif");
    CHECK(write_raw_tiff(p, wide, 9));
    expect_open_fails(p, "3e6-pixel-wide TIFF");

    /* Plausible dimensions, but one strip of 64 bytes for 100000 x 100000 pixels: opens (the
     * header is consistent as far as it goes), reading fails with a message. */
    const uint32_t short_data[][3] = {{256, 4, 100000}, {257, 4, 100000}, {258, 3, 8},
                                      {259, 3, 1},      {262, 3, 1},      {273, 4, 100},
                                      {277, 3, 1},      {278, 4, 100000}, {279, 4, 64}};
    p = tmp("short.tif");
    CHECK(write_raw_tiff(p, short_data, 9));
    hp_error err = {0};
    hp_slide *s = hp_slide_open(p, NULL, &err);
    if (s) {
        uint8_t px[64 * 64 * 3];
        CHECK(hp_slide_read_region(s, 0, 5000, 5000, 64, 64, px) != HP_OK);
        CHECK_MSG(strstr(hp_slide_error(s), p), "'%s'", hp_slide_error(s));
        printf("  TIFF with missing data: %s\n", hp_slide_error(s));
    } else {
        CHECK_MSG(strstr(err.msg, p), "'%s'", err.msg);
        printf("  TIFF with missing data: %s\n", err.msg);
    }
    hp_slide_close(s);

    /* A PNG header claiming 10000 x 10000: refused before decoding, with the limit named. */
    static const uint8_t png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                                  'I', 'H', 'D', 'R', 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10,
                                  8, 2, 0, 0, 0, 0, 0, 0, 0};
    p = tmp("huge.png");
    f = fopen(p, "wb");
    fwrite(png, 1, sizeof png, f);
    fclose(f);
    hp_error e2 = {0};
    CHECK(hp_slide_open(p, NULL, &e2) == NULL && strstr(e2.msg, "megapixel") && strstr(e2.msg, p));

    /* An absurd --mpp is refused. */
    hp_slide_options o = {.mpp = 1000, .reader = HP_SLIDE_READER_AUTO};
    hp_error e3 = {0};
    CHECK(hp_slide_open(tmp("missing.svs"), &o, &e3) == NULL && strstr(e3.msg, "--mpp"));
}

/* ---- PNG and JPEG ---- */

static int write_jpeg(const char *path, const uint8_t *rgb, int w, int h)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)ci.next_scanline * w * 3);
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    fclose(f);
    return 1;
}

static void check_decoded(const char *path, const char *format)
{
    int w = 0, h = 0;
    uint8_t *ref = NULL;
    hp_error err = {0};
    CHECK_MSG(hp_image_read_rgb8(path, &w, &h, &ref, &err) == HP_OK, "%s", err.msg);
    hp_slide *s = hp_slide_open(path, NULL, &err);
    CHECK_MSG(s != NULL, "%s", err.msg);
    if (s && ref) {
        CHECK(!strcmp(hp_slide_format(s), format));
        int64_t sw, sh;
        CHECK(hp_slide_level_dimensions(s, 0, &sw, &sh) == HP_OK && sw == w && sh == h);
        int rw = 120, rh = 90;
        uint8_t px[120 * 90 * 3];
        const int64_t org[][2] = {{0, 0}, {33, 47}, {(int64_t)w - 60, (int64_t)h - 45}, {-30, -20}};
        for (int r = 0; r < 4; r++) {
            CHECK(hp_slide_read_region(s, 0, org[r][0], org[r][1], rw, rh, px) == HP_OK);
            int bad = 0;
            for (int y = 0; y < rh; y++)
                for (int x = 0; x < rw; x++) {
                    int64_t sx = org[r][0] + x, sy = org[r][1] + y;
                    for (int c = 0; c < 3; c++) {
                        uint8_t want = sx < 0 || sy < 0 || sx >= w || sy >= h
                                           ? 255 : ref[((size_t)sy * w + sx) * 3 + c];
                        bad += px[((size_t)y * rw + x) * 3 + c] != want;
                    }
                }
            CHECK_MSG(bad == 0, "%s: region %d: %d bytes differ", path, r, bad);
        }
        hp_status st = hp_slide_mpp(s, NULL, NULL, NULL);
        CHECK(st != HP_OK && strstr(hp_slide_error(s), "--mpp"));
    }
    hp_slide_close(s);
    free(ref);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/hp_test_slide_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    char svs[1024], crc[1024], png[1024];
    int have_svs = hp_test_shared_path("data/real/slides/CMU-1-Small-Region.svs", svs, sizeof svs) != NULL;
    int have_crc = hp_test_shared_path("data/real/patches/CRC-VAL-HE-7K_NORM_TCGA-YLVCMEHK.tif", crc, sizeof crc) != NULL;
    int have_png = hp_test_shared_path("data/real/bach/BACH_Benign_sample.png", png, sizeof png) != NULL;

    if (have_svs) {
        test_svs(svs);
        test_truncated(svs);
        test_concurrent(svs, "svs");
    }

    /* Generated TIFFs: each layout the plain reader handles, compared with its pattern. */
    tiff_spec strip_cm = {300, 200, 0, 16, 8, 0, RESUNIT_CENTIMETER, 20000, COMPRESSION_ADOBE_DEFLATE};
    tiff_spec tile_in = {300, 200, 64, 0, 8, 0, RESUNIT_INCH, 101600, COMPRESSION_ADOBE_DEFLATE};
    tiff_spec strip_none = {123, 77, 0, 7, 8, 0, 0, 0, COMPRESSION_NONE};
    tiff_spec tile16 = {150, 100, 32, 0, 16, 0, RESUNIT_CENTIMETER, 40000, COMPRESSION_NONE};
    tiff_spec strip_alpha = {140, 90, 0, 13, 8, 1, 0, 0, COMPRESSION_LZW};
    CHECK(write_tiff(tmp("strip_cm.tif"), &strip_cm));
    CHECK(write_tiff(tmp("tile_in.tif"), &tile_in));
    CHECK(write_tiff(tmp("strip_none.tif"), &strip_none));
    CHECK(write_tiff(tmp("tile16.tif"), &tile16));
    CHECK(write_tiff(tmp("strip_alpha.tif"), &strip_alpha));
    check_pattern_slide(tmp("strip_cm.tif"), &strip_cm, HP_SLIDE_READER_AUTO, "tiff");
    check_pattern_slide(tmp("tile_in.tif"), &tile_in, HP_SLIDE_READER_AUTO, "generic-tiff");
    check_pattern_slide(tmp("tile_in.tif"), &tile_in, HP_SLIDE_READER_PLAIN, "tiff");
    check_pattern_slide(tmp("strip_none.tif"), &strip_none, HP_SLIDE_READER_AUTO, "tiff");
    check_pattern_slide(tmp("tile16.tif"), &tile16, HP_SLIDE_READER_PLAIN, "tiff");
    check_pattern_slide(tmp("strip_alpha.tif"), &strip_alpha, HP_SLIDE_READER_AUTO, "tiff");
    /* One strip larger than the whole-strip limit: read scanline by scanline. */
    tiff_spec big = {5000, 4600, 0, 4600, 8, 0, RESUNIT_CENTIMETER, 40000, COMPRESSION_ADOBE_DEFLATE};
    {
        CHECK(write_tiff(tmp("big_strip.tif"), &big));
        hp_error err = {0};
        hp_slide *s = hp_slide_open(tmp("big_strip.tif"), NULL, &err);
        CHECK_MSG(s != NULL, "%s", err.msg);
        if (s) {
            check_pattern_region(s, &big, 4900, 4500, 150, 150);
            check_pattern_region(s, &big, 100, 30, 50, 40);   /* backwards: restarts the strip */
            check_pattern_region(s, &big, 2000, 200, 64, 64); /* forwards: continues */
        }
        hp_slide_close(s);
    }

    /* No resolution: the error names --mpp; with the override it works. */
    hp_slide_options o = {.mpp = 0.25, .reader = HP_SLIDE_READER_AUTO};
    hp_error err = {0};
    hp_slide *s = hp_slide_open(tmp("strip_none.tif"), &o, &err);
    double mx = 0, my = 0;
    hp_mpp_source src = HP_MPP_NONE;
    CHECK(s && hp_slide_mpp(s, &mx, &my, &src) == HP_OK && mx == 0.25 && my == 0.25 &&
          src == HP_MPP_OVERRIDE);
    hp_slide_close(s);

    /* The real BACH-like TIFF patch: 72 dpi is not microscopy, so MPP is missing. */
    if (have_crc) {
        s = hp_slide_open(crc, NULL, &err);
        CHECK_MSG(s != NULL, "%s", err.msg);
        int64_t w = 0, h = 0;
        CHECK(s && hp_slide_level_dimensions(s, 0, &w, &h) == HP_OK && w == 224 && h == 224);
        CHECK(s && hp_slide_mpp(s, NULL, NULL, NULL) != HP_OK &&
              strstr(hp_slide_error(s), "352.778") && strstr(hp_slide_error(s), "--mpp"));
        hp_slide_close(s);
        check_decoded(crc, "tiff");
    }
    if (have_png) {
        check_decoded(png, "png");
        int w = 0, h = 0;
        uint8_t *rgb = NULL;
        CHECK(hp_image_read_rgb8(png, &w, &h, &rgb, &err) == HP_OK);
        if (rgb && write_jpeg(tmp("bach.jpg"), rgb, w, h))
            check_decoded(tmp("bach.jpg"), "jpeg");
        free(rgb);
    }

    /* JPEG-compressed YCbCr tiles: the plain reader (libtiff's JPEG codec, upsampled to RGB)
     * against OpenSlide on the same file. Lossy, so not against the pattern. */
    tiff_spec jpg = {300, 200, 64, 0, 8, 0, RESUNIT_CENTIMETER, 20000, COMPRESSION_JPEG};
    if (write_tiff(tmp("tile_jpeg.tif"), &jpg)) {
        hp_slide_options po = {.reader = HP_SLIDE_READER_PLAIN};
        hp_slide *a = hp_slide_open(tmp("tile_jpeg.tif"), NULL, &err);
        hp_slide *b = hp_slide_open(tmp("tile_jpeg.tif"), &po, &err);
        CHECK_MSG(a && b && !strcmp(hp_slide_format(a), "generic-tiff"), "%s", err.msg);
        static uint8_t pa[300 * 200 * 3], pb[300 * 200 * 3];
        if (a && b && hp_slide_read_region(a, 0, -5, -5, 300, 200, pa) == HP_OK &&
            hp_slide_read_region(b, 0, -5, -5, 300, 200, pb) == HP_OK) {
            int maxd = 0;
            for (size_t i = 0; i < sizeof pa; i++) {
                int d = abs((int)pa[i] - (int)pb[i]);
                maxd = d > maxd ? d : maxd;
            }
            printf("  JPEG tiles: plain reader vs OpenSlide: max difference %d\n", maxd);
            CHECK_MSG(maxd == 0, "JPEG tiles: plain reader differs from OpenSlide by up to %d", maxd);
        } else {
            CHECK_MSG(0, "JPEG tiles: %s / %s", a ? hp_slide_error(a) : "", b ? hp_slide_error(b) : "");
        }
        hp_slide_close(a);
        hp_slide_close(b);
    }

    test_bad_files();
    test_concurrent(tmp("strip_cm.tif"), "stripped TIFF");
    {
        /* The plain tiled reader under threads (AUTO would pick OpenSlide). */
        hp_slide_options po = {.reader = HP_SLIDE_READER_PLAIN};
        s = hp_slide_open(tmp("tile_in.tif"), &po, &err);
        enum { T = 4 };
        pthread_t th[T];
        reader_job jobs[T];
        for (int t = 0; s && t < T; t++) {
            jobs[t] = (reader_job){s, t, 40, 50, NULL, 0, 0};
            pthread_create(&th[t], NULL, reader_main, &jobs[t]);
        }
        for (int t = 0; s && t < T; t++) {
            pthread_join(th[t], NULL);
            CHECK(jobs[t].errors == 0);
        }
        if (s)
            for (int t = 0; t < T; t++)
                check_pattern_region(s, &tile_in, 10 * t, 7 * t, 130, 90);
        hp_slide_close(s);
    }

    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "note: could not remove %s\n", tmpdir);
    return hp_test_finish("test_slide", 1);
}
