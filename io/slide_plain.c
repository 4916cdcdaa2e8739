/* The plain-image reader: TIFFs OpenSlide does not open (stripped, or forced with
 * HP_SLIDE_READER_PLAIN), the tiles of TIFF-based slides that OpenSlide describes (routed here
 * by io/slide.c, which decodes them 3x faster), and PNG and JPEG photos.
 *
 * Levels: the first TIFF directory is level 0; when it is tiled, every later tiled directory
 * that is smaller than the one before and has level 0's aspect ratio is a pyramid level (an
 * Aperio or generic pyramidal TIFF's levels; strips such as Aperio's thumbnail, label and macro
 * are not). Downsamples are computed as OpenSlide computes them. PNG and JPEG have one level.
 *
 * TIFF is read by region, never whole: only the tiles or strips that a region touches are
 * decoded. 8-bit RGB and grey images (including JPEG-compressed YCbCr, which libtiff converts
 * to RGB) are decoded directly; anything else that libtiff's RGBA interface understands (palette,
 * 16-bit, alpha, CMYK, separate planes, ...) goes through TIFFReadRGBATile/Strip. A strip whose
 * decoded size exceeds STRIP_MAX_BYTES (one huge strip is common in scanner exports) is read
 * scanline by scanline in the direct modes, and refused in the RGBA mode.
 *
 * Threads: a libtiff handle holds decoder state, so it cannot serve two reads at once. Reads
 * take a handle from a small pool per level (opening another, set to that level's directory,
 * when all are busy) and return it, so concurrent reads run in parallel without re-parsing the
 * header on every call.
 *
 * Reduced reads: a JPEG-compressed tiled level can be read at 1/2, 1/4 or 1/8 of its size, each
 * tile decoded by libjpeg-turbo's DCT scaling (io/slide_jpeg.c). Each handle
 * captures its own libtiff messages (per-handle handlers, libtiff >= 4.5).
 *
 * PNG and JPEG have no random access worth having at these sizes: they are decoded once at
 * open (io/image.c), up to HP_SLIDE_PLAIN_DECODED_MAX_PIXELS, checked from the header before
 * decoding. Their resolution metadata (PNG pHYs, JFIF density) is not read: in practice it is
 * a screen's 72 or 96 dpi, so these images need --mpp.
 *
 * The TIFF Orientation tag is ignored (rows are taken top to bottom), as OpenSlide does. */
#include "io/slide_internal.h"
#include "io/tiff_block_cache.h"

#include "io/image.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tiffio.h>

#include "io/cv_image.h"
#include "io/tiff_message.h"

#define TIFF_MAX_ALLOC ((tmsize_t)1 << 30)
#define STRIP_MAX_BYTES ((tmsize_t)64 << 20)
#define POOL_MAX 8

typedef enum { MODE_DECODED, MODE_RGB, MODE_GRAY, MODE_RGBA } plain_mode;

typedef struct tiff_h {
    TIFF *tif;
    char msg[512];
    int have;
    int64_t next_row; /* scanline mode: the row libtiff decodes next without restarting, or -1 */
    struct tiff_h *next;
} tiff_h;

typedef struct {
    int dir;           /* TIFF directory */
    plain_mode mode;
    int64_t W, H;
    int tiled;
    uint32_t tw, th;   /* tile size, or (W, rows per strip) */
    int spp;           /* samples per pixel in the direct modes: 3 or 1 */
    int jpeg_ycbcr;    /* set JPEGCOLORMODE_RGB on every handle */
    int jpeg_tiles;    /* 8-bit, 3-sample JPEG tiles: libjpeg can decode them at reduced scale */
    int scanlines;     /* strips too large to decode whole */
    int compressed;    /* scanlines cannot seek: read forwards from the strip start */
    tiff_h *pool;      /* under plain_impl.mu */
    int pooled;
} plain_level;

typedef struct {
    uint8_t *pixels;   /* PNG and JPEG: the whole image, RGB8 (level 0 only) */
    int n_levels;
    plain_level *lev;
    pthread_mutex_t mu;
    hp_block_cache *cache; /* decoded tiles of level 0's size, when the caller asked for it */
    size_t cache_block;    /* their bytes */
} plain_impl;

#define MAX_LEVELS 32

/* ---- libtiff handles ---- */

static int tiff_error_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif;
    tiff_h *h = user;
    if (!h->have) {
        hp_tiff_format_message(h->msg, sizeof h->msg, module, fmt, ap);
        h->have = 1;
    }
    return 1;
}

/* libjpeg's complaints about corrupt data arrive as warnings (and the tile is padded with grey):
 * those are errors here. Other warnings (unknown tags) are not worth a message. */
static int tiff_warning_cb(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    if (module && !strcmp(module, "JPEGLib"))
        return tiff_error_cb(tif, user, module, fmt, ap);
    return 1;
}

static hp_status tiff_h_open(const char *path, tiff_h **out, char *why, size_t why_cap)
{
    tiff_h *h = calloc(1, sizeof *h);
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!h || !opts) {
        free(h);
        TIFFOpenOptionsFree(opts);
        snprintf(why, why_cap, "out of memory");
        return HP_ERR_NOMEM;
    }
    TIFFOpenOptionsSetErrorHandlerExtR(opts, tiff_error_cb, h);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, tiff_warning_cb, h);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, TIFF_MAX_ALLOC);
    /* "m": no memory mapping, so a file truncated under us is a read error, not SIGBUS. */
    h->tif = TIFFOpenExt(path, "rm", opts);
    TIFFOpenOptionsFree(opts);
    if (!h->tif) {
        snprintf(why, why_cap, "%s", h->have ? h->msg : "libtiff cannot open it");
        free(h);
        return HP_ERR_INVALID;
    }
    h->next_row = -1;
    *out = h;
    return HP_OK;
}

static void tiff_h_close(tiff_h *h)
{
    if (!h)
        return;
    TIFFClose(h->tif);
    free(h);
}

static tiff_h *pool_get(hp_slide *s, plain_impl *p, plain_level *L)
{
    pthread_mutex_lock(&p->mu);
    tiff_h *h = L->pool;
    if (h) {
        L->pool = h->next;
        L->pooled--;
    }
    pthread_mutex_unlock(&p->mu);
    if (!h) {
        char why[512];
        hp_status st = tiff_h_open(s->path, &h, why, sizeof why);
        if (!st && L->dir > 0 && !TIFFSetDirectory(h->tif, (tdir_t)L->dir)) {
            snprintf(why, sizeof why, "%s", h->have ? h->msg : "cannot read the directory");
            tiff_h_close(h);
            h = NULL;
            st = HP_ERR_INVALID;
        }
        if (st) {
            hp_slide_fail(s, st, "%s: cannot reopen the TIFF: %s", s->path, why);
            return NULL;
        }
        if (L->jpeg_ycbcr)
            TIFFSetField(h->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    h->have = 0;
    h->next = NULL;
    return h;
}

/* A handle that failed may hold half-decoded state: close it rather than reuse it. */
static void pool_put(plain_impl *p, plain_level *L, tiff_h *h, int failed)
{
    if (!h)
        return;
    if (!failed) {
        pthread_mutex_lock(&p->mu);
        if (L->pooled < POOL_MAX) {
            h->next = L->pool;
            L->pool = h;
            L->pooled++;
            h = NULL;
        }
        pthread_mutex_unlock(&p->mu);
    }
    tiff_h_close(h);
}

/* ---- region reading ---- */

/* Copies the intersection of a decoded block (bx, by, bw x bh, already clipped to the image;
 * RGB or grey rows of `stride` bytes) with the request into `out`. */
typedef struct {
    int64_t x0, y0;
    int w, h;
    uint8_t *out;
} request;

static void put_block(const request *q, int64_t bx, int64_t by, int64_t bw, int64_t bh,
                      const uint8_t *blk, size_t stride, int spp)
{
    int64_t cx0 = bx > q->x0 ? bx : q->x0, cy0 = by > q->y0 ? by : q->y0;
    int64_t cx1 = bx + bw < q->x0 + q->w ? bx + bw : q->x0 + q->w;
    int64_t cy1 = by + bh < q->y0 + q->h ? by + bh : q->y0 + q->h;
    for (int64_t y = cy0; y < cy1; y++) {
        const uint8_t *src = blk + (size_t)(y - by) * stride + (size_t)(cx0 - bx) * (size_t)spp;
        uint8_t *dst = q->out + ((size_t)(y - q->y0) * (size_t)q->w + (size_t)(cx0 - q->x0)) * 3;
        if (spp == 3) {
            memcpy(dst, src, (size_t)(cx1 - cx0) * 3);
        } else {
            for (int64_t x = cx0; x < cx1; x++, dst += 3)
                dst[0] = dst[1] = dst[2] = *src++;
        }
    }
}

/* libtiff's RGBA rasters are premultiplied and stored bottom row first, `rows` rows of `bw`. */
static void put_rgba_block(const request *q, int64_t bx, int64_t by, int64_t bw, int64_t bh,
                           const uint32_t *ras, size_t stride, int64_t rows)
{
    int64_t cx0 = bx > q->x0 ? bx : q->x0, cy0 = by > q->y0 ? by : q->y0;
    int64_t cx1 = bx + bw < q->x0 + q->w ? bx + bw : q->x0 + q->w;
    int64_t cy1 = by + bh < q->y0 + q->h ? by + bh : q->y0 + q->h;
    for (int64_t y = cy0; y < cy1; y++) {
        const uint32_t *src = ras + (size_t)(rows - 1 - (y - by)) * stride + (size_t)(cx0 - bx);
        uint8_t *dst = q->out + ((size_t)(y - q->y0) * (size_t)q->w + (size_t)(cx0 - q->x0)) * 3;
        for (int64_t x = cx0; x < cx1; x++, dst += 3, src++) {
            unsigned bg = 255u - TIFFGetA(*src);
            unsigned r = TIFFGetR(*src) + bg, g = TIFFGetG(*src) + bg, b = TIFFGetB(*src) + bg;
            dst[0] = (uint8_t)(r > 255 ? 255 : r);
            dst[1] = (uint8_t)(g > 255 ? 255 : g);
            dst[2] = (uint8_t)(b > 255 ? 255 : b);
        }
    }
}

/* Reads the request from level L; with denom > 1 (a JPEG-tiled level whose tiles divide by
 * denom), the request is in the coordinates of the level reduced by denom, whose size is
 * W / denom x H / denom (a last partial reduced pixel at the right and bottom edges reads as
 * outside). */
static hp_status read_tiff_region(hp_slide *s, plain_impl *p, plain_level *L, const request *q,
                                  int denom)
{
    int64_t RW = L->W / denom, RH = L->H / denom;
    int64_t ix0 = q->x0 > 0 ? q->x0 : 0, iy0 = q->y0 > 0 ? q->y0 : 0;
    int64_t ix1 = q->x0 + q->w < RW ? q->x0 + q->w : RW;
    int64_t iy1 = q->y0 + q->h < RH ? q->y0 + q->h : RH;
    if (ix0 >= ix1 || iy0 >= iy1)
        return HP_OK;
    tiff_h *h = pool_get(s, p, L);
    if (!h)
        return HP_ERR_IO;
    TIFF *tif = h->tif;
    size_t bw = L->tw, bh = L->th;
    void *buf = NULL;
    hp_status st = HP_OK;
    const char *what = "";
    int64_t where_x = 0, where_y = 0;

    if (denom > 1) {
        /* Whole tiles decoded at 1/denom by libjpeg; a tile it cannot scale (a JPEG frame of
         * another size) is decoded whole by libtiff and area-averaged instead. */
        size_t rbw = bw / (size_t)denom, rbh = bh / (size_t)denom;
        uint8_t *raw = NULL, *full = NULL;
        size_t raw_cap = 0;
        tmsize_t fs = TIFFTileSize(tif);
        buf = malloc(rbw * rbh * 3);
        char why[600];
        for (int64_t by = iy0 / (int64_t)rbh * (int64_t)rbh; by < iy1 && buf && !st; by += (int64_t)rbh) {
            for (int64_t bx = ix0 / (int64_t)rbw * (int64_t)rbw; bx < ix1 && !st; bx += (int64_t)rbw) {
                uint32_t t = TIFFComputeTile(tif, (uint32_t)(bx * denom), (uint32_t)(by * denom), 0, 0);
                hp_status js = hp_slide_jpeg_tile(tif, t, L->tw, L->th, L->jpeg_ycbcr, denom, &raw,
                                                  &raw_cap, buf, why, sizeof why);
                if (js == HP_ERR_UNSUPPORTED) {
                    if (!full && fs >= (tmsize_t)(bw * bh * 3))
                        full = malloc((size_t)fs);
                    js = full && TIFFReadEncodedTile(tif, t, full, fs) >= (tmsize_t)(bw * bh * 3) && !h->have
                             ? hp_cv_resize_rgb8(full, (int)bw, (int)bh, 0, buf, (int)rbw, (int)rbh)
                             : HP_ERR_INVALID;
                    if (js)
                        snprintf(why, sizeof why, "%s", h->have ? h->msg : "short or unreadable data");
                }
                if (js) {
                    hp_slide_fail(s, js, "%s: corrupt TIFF: cannot decode the tile at (%lld, %lld) "
                                  "of level %d: %s", s->path, (long long)(bx * denom),
                                  (long long)(by * denom), (int)(L - p->lev), why);
                    st = js == HP_ERR_NOMEM ? HP_ERR_NOMEM : HP_ERR_IO;
                    break;
                }
                int64_t rows = by + (int64_t)rbh <= RH ? (int64_t)rbh : RH - by;
                int64_t cols = bx + (int64_t)rbw <= RW ? (int64_t)rbw : RW - bx;
                put_block(q, bx, by, cols, rows, buf, rbw * 3, 3);
            }
        }
        free(raw);
        free(full);
        if (!buf)
            st = hp_slide_fail(s, HP_ERR_NOMEM, "%s: out of memory decoding a TIFF tile", s->path);
        free(buf);
        pool_put(p, L, h, st != HP_OK);
        return st;
    }

    if (L->scanlines) {
        /* Compressed strips decode only forwards: start at the strip's first row, or where this
         * handle stopped last time if that is earlier in the same strip, and skip to iy0. */
        tmsize_t ls = TIFFScanlineSize(tif);
        buf = ls > 0 ? malloc((size_t)ls) : NULL;
        int64_t y = iy0;
        if (L->compressed) {
            int64_t s0 = iy0 / (int64_t)L->th * (int64_t)L->th;
            y = h->next_row >= s0 && h->next_row <= iy0 ? h->next_row : s0;
        }
        for (; y < iy1 && buf && !st; y++) {
            h->next_row = -1;
            if (TIFFReadScanline(tif, buf, (uint32_t)y, 0) < 0 || h->have) {
                what = "scanline", where_y = y, st = HP_ERR_INVALID;
                break;
            }
            h->next_row = y + 1;
            if (y >= iy0)
                put_block(q, 0, y, L->W, 1, buf, (size_t)ls, L->spp);
        }
    } else if (L->mode == MODE_RGBA) {
        buf = malloc(bw * bh * sizeof(uint32_t));
        int64_t bx0 = L->tiled ? ix0 / (int64_t)bw * (int64_t)bw : 0;
        for (int64_t by = iy0 / (int64_t)bh * (int64_t)bh; by < iy1 && buf && !st; by += (int64_t)bh) {
            for (int64_t bx = bx0; bx < ix1 && !st; bx += (int64_t)bw) {
                int ok = L->tiled ? TIFFReadRGBATileExt(tif, (uint32_t)bx, (uint32_t)by, buf, 1)
                                  : TIFFReadRGBAStripExt(tif, (uint32_t)by, buf, 1);
                if (!ok || h->have) {
                    what = L->tiled ? "tile" : "strip", where_x = bx, where_y = by;
                    st = HP_ERR_INVALID;
                    break;
                }
                /* Tiles come back padded to full height; a short last strip does not. */
                int64_t rows = by + (int64_t)bh <= L->H ? (int64_t)bh : L->H - by;
                int64_t cols = bx + (int64_t)bw <= L->W ? (int64_t)bw : L->W - bx;
                put_rgba_block(q, bx, by, cols, rows, buf, bw, L->tiled ? (int64_t)bh : rows);
            }
        }
    } else {
        tmsize_t need = (tmsize_t)(bw * bh * (size_t)L->spp);
        tmsize_t bs = L->tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
        if (bs < need)
            bs = need;
        buf = malloc((size_t)bs);
        int64_t bx0 = L->tiled ? ix0 / (int64_t)bw * (int64_t)bw : 0;
        /* Decoded tiles may be kept for the next region that needs them (tiff_block_cache.h). */
        int cache = p->cache && L->tiled && p->cache_block == (size_t)need;
        int lvl = (int)(L - p->lev);
        for (int64_t by = iy0 / (int64_t)bh * (int64_t)bh; by < iy1 && buf && !st; by += (int64_t)bh) {
            for (int64_t bx = bx0; bx < ix1 && !st; bx += (int64_t)bw) {
                tmsize_t got;
                int64_t rows = by + (int64_t)bh <= L->H ? (int64_t)bh : L->H - by;
                tmsize_t want = (tmsize_t)((size_t)(L->tiled ? (int64_t)bh : rows) * bw * (size_t)L->spp);
                uint32_t tix = L->tiled ? TIFFComputeTile(tif, (uint32_t)bx, (uint32_t)by, 0, 0) : 0;
                if (cache && hp_block_cache_get(p->cache, lvl, tix, buf))
                    got = want;
                else if (L->tiled)
                    got = TIFFReadEncodedTile(tif, tix, buf, bs);
                else
                    got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, (uint32_t)by, 0), buf, bs);
                if (got < want || h->have) {
                    what = L->tiled ? "tile" : "strip", where_x = bx, where_y = by;
                    st = HP_ERR_INVALID;
                    break;
                }
                if (cache)
                    hp_block_cache_put(p->cache, lvl, tix, buf);
                int64_t cols = bx + (int64_t)bw <= L->W ? (int64_t)bw : L->W - bx;
                put_block(q, bx, by, cols, rows, buf, bw * (size_t)L->spp, L->spp);
            }
        }
    }
    if (!buf && !st)
        st = hp_slide_fail(s, HP_ERR_NOMEM, "%s: out of memory decoding a TIFF block", s->path);
    else if (st == HP_ERR_INVALID)
        hp_slide_fail(s, st, "%s: corrupt TIFF: cannot decode the %s at (%lld, %lld): %s", s->path,
                      what, (long long)where_x, (long long)where_y,
                      h->have ? h->msg : "short or unreadable data");
    free(buf);
    pool_put(p, L, h, st != HP_OK);
    return st;
}

static hp_status plain_read_region(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                                   uint8_t *rgb)
{
    plain_impl *p = s->impl;
    plain_level *L = &p->lev[level];
    /* Level-0 coordinates to the level's own, to the nearest pixel (io/slide.c routes a read
     * here only when this is exact). */
    int64_t lx = level ? llround((double)x0 / s->level_ds[level]) : x0;
    int64_t ly = level ? llround((double)y0 / s->level_ds[level]) : y0;
    request q = {lx, ly, w, h, rgb};
    int inside = lx >= 0 && ly >= 0 && lx + w <= L->W && ly + h <= L->H;
    if (!inside)
        hp_slide_fill_white(rgb, w, h);
    if (p->pixels) {
        put_block(&q, 0, 0, L->W, L->H, p->pixels, (size_t)L->W * 3, 3);
        return HP_OK;
    }
    return read_tiff_region(s, p, L, &q, 1);
}

static const hp_slide_ops plain_ops;

static const plain_impl *plain_of(const hp_slide *s)
{
    return s && s->ops == &plain_ops ? s->impl : NULL;
}

int hp_slide_plain_reduced_max(const hp_slide *s, int level)
{
    const plain_impl *p = plain_of(s);
    if (!p)
        return 1;
    if (level < 0 || level >= p->n_levels || !p->lev[level].jpeg_tiles)
        return 1;
    int d = 8;
    while (d > 1 && (p->lev[level].tw % (uint32_t)d || p->lev[level].th % (uint32_t)d))
        d /= 2;
    return d;
}

hp_status hp_slide_plain_read_reduced(hp_slide *s, int level, int64_t lx, int64_t ly, int w,
                                      int h, int denom, uint8_t *rgb)
{
    plain_impl *p = s->impl;
    plain_level *L = &p->lev[level];
    request q = {lx, ly, w, h, rgb};
    if (!(lx >= 0 && ly >= 0 && lx + w <= L->W / denom && ly + h <= L->H / denom))
        hp_slide_fill_white(rgb, w, h);
    return read_tiff_region(s, p, L, &q, denom);
}

int hp_slide_plain_level_dir(const hp_slide *s, int level)
{
    const plain_impl *p = plain_of(s);
    return p && level >= 0 && level < p->n_levels ? p->lev[level].dir : -1;
}

int hp_slide_plain_exact_layout(const hp_slide *s, int level)
{
    const plain_impl *p = plain_of(s);
    return p && !p->pixels && level >= 0 && level < p->n_levels && p->lev[level].jpeg_tiles &&
           p->lev[level].mode == MODE_RGB;
}

static void plain_close(void *impl)
{
    plain_impl *p = impl;
    if (!p)
        return;
    for (int l = 0; l < p->n_levels; l++)
        while (p->lev[l].pool) {
            tiff_h *n = p->lev[l].pool->next;
            tiff_h_close(p->lev[l].pool);
            p->lev[l].pool = n;
        }
    pthread_mutex_destroy(&p->mu);
    hp_block_cache_destroy(p->cache);
    free(p->lev);
    free(p->pixels);
    free(p);
}

static const hp_slide_ops plain_ops = {plain_read_region, NULL, NULL, plain_close};

/* ---- open ---- */

/* Width and height from a PNG's IHDR or a JPEG's frame header, so an image too large to
 * decode whole is refused before any decoding. */
static int header_dims(const char *path, int png, int64_t *w, int64_t *h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char b[24];
    int ok = 0;
    if (png) {
        if (fread(b, 1, 24, f) == 24 && !memcmp(b + 12, "IHDR", 4)) {
            *w = ((int64_t)b[16] << 24) | (b[17] << 16) | (b[18] << 8) | b[19];
            *h = ((int64_t)b[20] << 24) | (b[21] << 16) | (b[22] << 8) | b[23];
            ok = 1;
        }
    } else if (fread(b, 1, 2, f) == 2) {
        for (;;) {
            int c = fgetc(f);
            if (c != 0xFF)
                break;
            while ((c = fgetc(f)) == 0xFF)
                ;
            if (c == EOF)
                break;
            if (c == 0xD8 || c == 0x01 || (c >= 0xD0 && c <= 0xD7))
                continue;
            if (fread(b, 1, 2, f) != 2)
                break;
            long len = (b[0] << 8) | b[1];
            if (len < 2)
                break;
            if (c >= 0xC0 && c <= 0xCF && c != 0xC4 && c != 0xC8 && c != 0xCC) {
                if (fread(b, 1, 5, f) == 5) {
                    *h = (b[1] << 8) | b[2];
                    *w = (b[3] << 8) | b[4];
                    ok = 1;
                }
                break;
            }
            if (fseek(f, len - 2, SEEK_CUR) != 0)
                break;
        }
    }
    fclose(f);
    return ok;
}

static hp_status open_decoded(hp_slide *s, plain_impl *p, hp_error *err)
{
    int png = !strcmp(s->format, "png");
    int64_t w = 0, h = 0;
    if (header_dims(s->path, png, &w, &h) && w * h > HP_SLIDE_PLAIN_DECODED_MAX_PIXELS)
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: this %s is %lldx%lld pixels, over the %lld-megapixel limit for "
                            "PNG and JPEG slides (they are decoded whole); store it as a tiled "
                            "TIFF, which is read by region",
                            s->path, png ? "PNG" : "JPEG", (long long)w, (long long)h,
                            HP_SLIDE_PLAIN_DECODED_MAX_PIXELS / 1000000);
    int iw = 0, ih = 0;
    hp_status st = hp_image_read_rgb8(s->path, &iw, &ih, &p->pixels, err);
    if (st)
        return st;
    if ((int64_t)iw * ih > HP_SLIDE_PLAIN_DECODED_MAX_PIXELS) /* a header the scan misread */
        return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: %dx%d is over the %lld-megapixel limit",
                            s->path, iw, ih, HP_SLIDE_PLAIN_DECODED_MAX_PIXELS / 1000000);
    if (!(p->lev = calloc(1, sizeof *p->lev)))
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", s->path);
    p->n_levels = 1;
    p->lev[0].mode = MODE_DECODED;
    p->lev[0].dir = -1;
    p->lev[0].W = iw;
    p->lev[0].H = ih;
    return HP_OK;
}

/* Describes the current directory of `tif` as level L: its size, blocks and decoding mode.
 * `first`: level 0, whose failures are the slide's (a later directory that fails is simply not
 * a level). */
static hp_status describe_level(hp_slide *s, TIFF *tif, plain_level *L, int first, hp_error *err)
{
    uint32_t w = 0, ht = 0;
    uint16_t spp = 1, bps = 1, photo = 0, planar = PLANARCONFIG_CONTIG, comp = COMPRESSION_NONE;
    uint16_t fmt = SAMPLEFORMAT_UINT, nextra = 0, *extra = NULL;
    const char *lv = first ? "" : " (a pyramid level)";
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &ht))
        return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF%s: no image size", s->path, lv);
    if (w == 0 || ht == 0 || w > HP_SLIDE_MAX_SIDE || ht > HP_SLIDE_MAX_SIDE)
        return hp_error_set(err, HP_ERR_INVALID,
                            "%s: corrupt TIFF: the header claims %ux%u pixels, outside 1..%lld per side",
                            s->path, (unsigned)w, (unsigned)ht, HP_SLIDE_MAX_SIDE);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (!TIFFIsCODECConfigured(comp))
        return hp_error_set(err, HP_ERR_UNSUPPORTED,
                            "%s: TIFF compression %u is not supported by this libtiff", s->path,
                            (unsigned)comp);
    L->dir = (int)TIFFCurrentDirectory(tif);
    L->W = w;
    L->H = ht;
    L->tiled = TIFFIsTiled(tif);
    if (L->tiled) {
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &L->tw) ||
            !TIFFGetField(tif, TIFFTAG_TILELENGTH, &L->th) || L->tw == 0 || L->th == 0 ||
            (uint64_t)L->tw * L->th > (1u << 26))
            return hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF%s: bad tile size", s->path, lv);
    } else {
        uint32_t rps = ht;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        L->tw = w;
        L->th = rps == 0 || rps > ht ? ht : rps;
    }
    int direct8 = bps == 8 && fmt == SAMPLEFORMAT_UINT && (planar == PLANARCONFIG_CONTIG || spp == 1) &&
                  nextra == 0;
    if (direct8 && spp == 3 && photo == PHOTOMETRIC_RGB) {
        L->mode = MODE_RGB, L->spp = 3;
    } else if (direct8 && spp == 3 && photo == PHOTOMETRIC_YCBCR && comp == COMPRESSION_JPEG) {
        L->mode = MODE_RGB, L->spp = 3, L->jpeg_ycbcr = 1;
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    } else if (direct8 && spp == 1 && photo == PHOTOMETRIC_MINISBLACK) {
        L->mode = MODE_GRAY, L->spp = 1;
    } else {
        char emsg[1024] = "";
        if (!TIFFRGBAImageOK(tif, emsg))
            return hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: unsupported TIFF%s: %s", s->path, lv,
                                emsg);
        L->mode = MODE_RGBA;
    }
    L->jpeg_tiles = L->tiled && L->mode == MODE_RGB && comp == COMPRESSION_JPEG;
    size_t block = (size_t)L->tw * L->th * (L->mode == MODE_RGBA ? 4 : (size_t)L->spp);
    if (!L->tiled && block > (size_t)STRIP_MAX_BYTES) {
        if (L->mode == MODE_RGBA)
            return hp_error_set(err, HP_ERR_UNSUPPORTED,
                                "%s: this TIFF stores %u rows per strip in a colour layout read "
                                "through libtiff's RGBA interface, which decodes whole strips "
                                "(%zu MB each); store it tiled or as 8-bit RGB",
                                s->path, (unsigned)L->th, block >> 20);
        L->scanlines = 1;
        L->compressed = comp != COMPRESSION_NONE;
    }
    /* Every strip or tile must lie inside the file; a truncated file fails here, by name,
     * rather than at some later read. */
    struct stat fst;
    uint64_t *offs = NULL, *cnts = NULL;
    uint32_t nblk = L->tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (stat(s->path, &fst) == 0 &&
        TIFFGetField(tif, L->tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offs) &&
        TIFFGetField(tif, L->tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &cnts) &&
        offs && cnts) {
        for (uint32_t i = 0; i < nblk; i++) {
            if (cnts[i] && (offs[i] > (uint64_t)fst.st_size || cnts[i] > (uint64_t)fst.st_size - offs[i]))
                return hp_error_set(err, HP_ERR_INVALID,
                                    "%s: truncated or corrupt TIFF: %s %u of %u%s lies beyond the "
                                    "end of the file (%llu bytes)",
                                    s->path, L->tiled ? "tile" : "strip", (unsigned)i,
                                    (unsigned)nblk, lv, (unsigned long long)fst.st_size);
        }
    }
    return HP_OK;
}

/* 1 when a directory of w x h is the next pyramid level below `prev`: smaller on both sides and
 * of level 0's aspect ratio, up to the rounding of each side to whole pixels. */
static int is_next_level(const plain_level *l0, const plain_level *prev, int64_t w, int64_t h)
{
    if (w >= prev->W || h >= prev->H || w < 1 || h < 1)
        return 0;
    double dx = (double)l0->W / (double)w, dy = (double)l0->H / (double)h;
    return fabs(dx / dy - 1.0) <= 1.0 / (double)w + 1.0 / (double)h + 1e-3;
}

static hp_status open_tiff(hp_slide *s, plain_impl *p, hp_error *err)
{
    char why[512];
    tiff_h *h = NULL;
    hp_status st = tiff_h_open(s->path, &h, why, sizeof why);
    if (st)
        return hp_error_set(err, st, "%s: corrupt or truncated TIFF: %s", s->path, why);
    TIFF *tif = h->tif;
    plain_level first = {0};
    if ((st = describe_level(s, tif, &first, 1, err)))
        goto done;

    /* A truncated whole-slide file can fail OpenSlide's detection while its first directory
     * still opens here: refuse it rather than read it as a plain image without its metadata. */
    const char *desc = NULL;
    if (s->reader == HP_SLIDE_READER_AUTO && TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc) &&
        desc && !strncmp(desc, "Aperio", 6)) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: an Aperio slide that OpenSlide cannot open: the file is truncated or corrupt",
                          s->path);
        goto done;
    }

    /* Resolution: pixels per unit; unit none (1) has no physical size. */
    float xr = 0, yr = 0;
    uint16_t unit = RESUNIT_INCH;
    if (TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xr) && TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yr)) {
        TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &unit);
        double mx = hp_slide_tiff_res_to_mpp(xr, unit), my = hp_slide_tiff_res_to_mpp(yr, unit);
        if (mx > 0 && my > 0)
            hp_slide_offer_mpp(s, mx, my, HP_MPP_TIFF_RESOLUTION, "the TIFF resolution tags");
    }
    if (h->have) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: %s", s->path, h->msg);
        goto done;
    }
    if (!(p->lev = calloc(MAX_LEVELS, sizeof *p->lev))) {
        st = hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", s->path);
        goto done;
    }
    p->lev[0] = first;
    p->n_levels = 1;
    /* The pyramid: later tiled directories, each the next level down. A directory that cannot
     * be described (a codec this libtiff lacks, say) ends the pyramid rather than the slide. */
    for (int d = 1; first.tiled && p->n_levels < MAX_LEVELS && TIFFSetDirectory(tif, (tdir_t)d); d++) {
        uint32_t w = 0, ht = 0;
        if (!TIFFIsTiled(tif) || !TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) ||
            !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &ht) ||
            !is_next_level(&p->lev[0], &p->lev[p->n_levels - 1], w, ht))
            continue;
        plain_level L = {0};
        hp_error e2 = {0};
        if (describe_level(s, tif, &L, 0, &e2) != HP_OK)
            break;
        p->lev[p->n_levels++] = L;
    }
    h->have = 0;
    /* The handle goes back to level 0's pool, on level 0's directory and colour mode. */
    if (!TIFFSetDirectory(tif, 0)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: cannot return to the first directory",
                          s->path);
        goto done;
    }
    if (first.jpeg_ycbcr)
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
done:
    if (st || !p->lev)
        tiff_h_close(h);
    else
        pool_put(p, &p->lev[0], h, 0);
    return st;
}

hp_status hp_slide_plain_open(hp_slide *s, hp_error *err)
{
    plain_impl *p = calloc(1, sizeof *p);
    if (!p)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", s->path);
    pthread_mutex_init(&p->mu, NULL);
    s->impl = p;
    s->ops = &plain_ops;
    hp_status st = strcmp(s->format, "tiff") ? open_decoded(s, p, err) : open_tiff(s, p, err);
    if (st)
        return st;
    st = hp_slide_alloc_levels(s, p->n_levels, err);
    if (st)
        return st;
    for (int l = 0; l < p->n_levels; l++) {
        s->level_w[l] = p->lev[l].W;
        s->level_h[l] = p->lev[l].H;
        /* As OpenSlide computes it: the mean of the two axes' ratios. */
        s->level_ds[l] = l == 0 ? 1.0
                                : ((double)p->lev[0].W / (double)p->lev[l].W +
                                   (double)p->lev[0].H / (double)p->lev[l].H) / 2.0;
    }
    if (s->block_cache_bytes && !p->pixels && p->n_levels > 0 && p->lev[0].tiled && p->lev[0].mode != MODE_RGBA &&
        !p->lev[0].scanlines) {
        p->cache_block = (size_t)p->lev[0].tw * p->lev[0].th * (size_t)p->lev[0].spp;
        p->cache = hp_block_cache_create(s->block_cache_bytes, p->cache_block); /* NULL: no caching */
    }
    return HP_OK;
}
