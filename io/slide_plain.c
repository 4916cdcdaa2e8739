/* The plain-image reader: TIFFs OpenSlide does not open (stripped, or forced with
 * HP_SLIDE_READER_PLAIN), and PNG and JPEG photos, each as a single-level slide.
 *
 * TIFF is read by region, never whole: only the tiles or strips that a region touches are
 * decoded. 8-bit RGB and grey images (including JPEG-compressed YCbCr, which libtiff converts
 * to RGB) are decoded directly; anything else that libtiff's RGBA interface understands (palette,
 * 16-bit, alpha, CMYK, separate planes, ...) goes through TIFFReadRGBATile/Strip. A strip whose
 * decoded size exceeds STRIP_MAX_BYTES (one huge strip is common in scanner exports) is read
 * scanline by scanline in the direct modes, and refused in the RGBA mode.
 *
 * Threads: a libtiff handle holds decoder state, so it cannot serve two reads at once. Reads
 * take a handle from a small pool (opening another when all are busy) and return it, so
 * concurrent reads run in parallel without re-parsing the header on every call. Each handle
 * captures its own libtiff messages (per-handle handlers, libtiff >= 4.5).
 *
 * PNG and JPEG have no random access worth having at these sizes: they are decoded once at
 * open (io/image.c), up to HP_SLIDE_PLAIN_DECODED_MAX_PIXELS, checked from the header before
 * decoding. Their resolution metadata (PNG pHYs, JFIF density) is not read: in practice it is
 * a screen's 72 or 96 dpi, so these images need --mpp.
 *
 * The TIFF Orientation tag is ignored (rows are taken top to bottom), as OpenSlide does. */
#include "io/slide_internal.h"

#include "io/image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <tiffio.h>

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
    plain_mode mode;
    uint8_t *pixels; /* MODE_DECODED: the whole image, RGB8 */
    int64_t W, H;
    int tiled;
    uint32_t tw, th;   /* tile size, or (W, rows per strip) */
    int spp;           /* samples per pixel in the direct modes: 3 or 1 */
    int jpeg_ycbcr;    /* set JPEGCOLORMODE_RGB on every handle */
    int scanlines;     /* strips too large to decode whole */
    int compressed;    /* scanlines cannot seek: read forwards from the strip start */
    pthread_mutex_t mu;
    tiff_h *pool;
    int pooled;
} plain_impl;

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

static tiff_h *pool_get(hp_slide *s, plain_impl *p)
{
    pthread_mutex_lock(&p->mu);
    tiff_h *h = p->pool;
    if (h) {
        p->pool = h->next;
        p->pooled--;
    }
    pthread_mutex_unlock(&p->mu);
    if (!h) {
        char why[512];
        hp_status st = tiff_h_open(s->path, &h, why, sizeof why);
        if (st) {
            hp_slide_fail(s, st, "%s: cannot reopen the TIFF: %s", s->path, why);
            return NULL;
        }
        if (p->jpeg_ycbcr)
            TIFFSetField(h->tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    }
    h->have = 0;
    h->next = NULL;
    return h;
}

/* A handle that failed may hold half-decoded state: close it rather than reuse it. */
static void pool_put(plain_impl *p, tiff_h *h, int failed)
{
    if (!h)
        return;
    if (!failed) {
        pthread_mutex_lock(&p->mu);
        if (p->pooled < POOL_MAX) {
            h->next = p->pool;
            p->pool = h;
            p->pooled++;
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

static hp_status read_tiff_region(hp_slide *s, plain_impl *p, const request *q)
{
    int64_t ix0 = q->x0 > 0 ? q->x0 : 0, iy0 = q->y0 > 0 ? q->y0 : 0;
    int64_t ix1 = q->x0 + q->w < p->W ? q->x0 + q->w : p->W;
    int64_t iy1 = q->y0 + q->h < p->H ? q->y0 + q->h : p->H;
    if (ix0 >= ix1 || iy0 >= iy1)
        return HP_OK;
    tiff_h *h = pool_get(s, p);
    if (!h)
        return HP_ERR_IO;
    TIFF *tif = h->tif;
    size_t bw = p->tw, bh = p->th;
    void *buf = NULL;
    hp_status st = HP_OK;
    const char *what = "";
    int64_t where_x = 0, where_y = 0;

    if (p->scanlines) {
        /* Compressed strips decode only forwards: start at the strip's first row, or where this
         * handle stopped last time if that is earlier in the same strip, and skip to iy0. */
        tmsize_t ls = TIFFScanlineSize(tif);
        buf = ls > 0 ? malloc((size_t)ls) : NULL;
        int64_t y = iy0;
        if (p->compressed) {
            int64_t s0 = iy0 / (int64_t)p->th * (int64_t)p->th;
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
                put_block(q, 0, y, p->W, 1, buf, (size_t)ls, p->spp);
        }
    } else if (p->mode == MODE_RGBA) {
        buf = malloc(bw * bh * sizeof(uint32_t));
        int64_t bx0 = p->tiled ? ix0 / (int64_t)bw * (int64_t)bw : 0;
        for (int64_t by = iy0 / (int64_t)bh * (int64_t)bh; by < iy1 && buf && !st; by += (int64_t)bh) {
            for (int64_t bx = bx0; bx < ix1 && !st; bx += (int64_t)bw) {
                int ok = p->tiled ? TIFFReadRGBATileExt(tif, (uint32_t)bx, (uint32_t)by, buf, 1)
                                  : TIFFReadRGBAStripExt(tif, (uint32_t)by, buf, 1);
                if (!ok || h->have) {
                    what = p->tiled ? "tile" : "strip", where_x = bx, where_y = by;
                    st = HP_ERR_INVALID;
                    break;
                }
                /* Tiles come back padded to full height; a short last strip does not. */
                int64_t rows = by + (int64_t)bh <= p->H ? (int64_t)bh : p->H - by;
                int64_t cols = bx + (int64_t)bw <= p->W ? (int64_t)bw : p->W - bx;
                put_rgba_block(q, bx, by, cols, rows, buf, bw, p->tiled ? (int64_t)bh : rows);
            }
        }
    } else {
        tmsize_t need = (tmsize_t)(bw * bh * (size_t)p->spp);
        tmsize_t bs = p->tiled ? TIFFTileSize(tif) : TIFFStripSize(tif);
        if (bs < need)
            bs = need;
        buf = malloc((size_t)bs);
        int64_t bx0 = p->tiled ? ix0 / (int64_t)bw * (int64_t)bw : 0;
        for (int64_t by = iy0 / (int64_t)bh * (int64_t)bh; by < iy1 && buf && !st; by += (int64_t)bh) {
            for (int64_t bx = bx0; bx < ix1 && !st; bx += (int64_t)bw) {
                tmsize_t got;
                if (p->tiled)
                    got = TIFFReadEncodedTile(tif, TIFFComputeTile(tif, (uint32_t)bx, (uint32_t)by, 0, 0),
                                              buf, bs);
                else
                    got = TIFFReadEncodedStrip(tif, TIFFComputeStrip(tif, (uint32_t)by, 0), buf, bs);
                int64_t rows = by + (int64_t)bh <= p->H ? (int64_t)bh : p->H - by;
                tmsize_t want = (tmsize_t)((size_t)(p->tiled ? (int64_t)bh : rows) * bw * (size_t)p->spp);
                if (got < want || h->have) {
                    what = p->tiled ? "tile" : "strip", where_x = bx, where_y = by;
                    st = HP_ERR_INVALID;
                    break;
                }
                int64_t cols = bx + (int64_t)bw <= p->W ? (int64_t)bw : p->W - bx;
                put_block(q, bx, by, cols, rows, buf, bw * (size_t)p->spp, p->spp);
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
    pool_put(p, h, st != HP_OK);
    return st;
}

static hp_status plain_read_region(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                                   uint8_t *rgb)
{
    (void)level; /* one level; the dispatcher checked it */
    plain_impl *p = s->impl;
    request q = {x0, y0, w, h, rgb};
    int inside = x0 >= 0 && y0 >= 0 && x0 + w <= p->W && y0 + h <= p->H;
    if (!inside)
        hp_slide_fill_white(rgb, w, h);
    if (p->mode == MODE_DECODED) {
        put_block(&q, 0, 0, p->W, p->H, p->pixels, (size_t)p->W * 3, 3);
        return HP_OK;
    }
    return read_tiff_region(s, p, &q);
}

static void plain_close(void *impl)
{
    plain_impl *p = impl;
    if (!p)
        return;
    while (p->pool) {
        tiff_h *n = p->pool->next;
        tiff_h_close(p->pool);
        p->pool = n;
    }
    pthread_mutex_destroy(&p->mu);
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
    p->mode = MODE_DECODED;
    p->W = iw;
    p->H = ih;
    return HP_OK;
}

static hp_status open_tiff(hp_slide *s, plain_impl *p, hp_error *err)
{
    char why[512];
    tiff_h *h = NULL;
    hp_status st = tiff_h_open(s->path, &h, why, sizeof why);
    if (st)
        return hp_error_set(err, st, "%s: corrupt or truncated TIFF: %s", s->path, why);
    TIFF *tif = h->tif;
    uint32_t w = 0, ht = 0;
    uint16_t spp = 1, bps = 1, photo = 0, planar = PLANARCONFIG_CONTIG, comp = COMPRESSION_NONE;
    uint16_t fmt = SAMPLEFORMAT_UINT, nextra = 0, *extra = NULL;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &ht)) {
        st = hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: no image size", s->path);
        goto done;
    }
    if (w == 0 || ht == 0 || w > HP_SLIDE_MAX_SIDE || ht > HP_SLIDE_MAX_SIDE) {
        st = hp_error_set(err, HP_ERR_INVALID,
                          "%s: corrupt TIFF: the header claims %ux%u pixels, outside 1..%lld per side",
                          s->path, (unsigned)w, (unsigned)ht, HP_SLIDE_MAX_SIDE);
        goto done;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo))
        photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (!TIFFIsCODECConfigured(comp)) {
        st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: TIFF compression %u is not supported by this libtiff",
                          s->path, (unsigned)comp);
        goto done;
    }
    p->W = w;
    p->H = ht;
    p->tiled = TIFFIsTiled(tif);
    if (p->tiled) {
        if (!TIFFGetField(tif, TIFFTAG_TILEWIDTH, &p->tw) || !TIFFGetField(tif, TIFFTAG_TILELENGTH, &p->th) ||
            p->tw == 0 || p->th == 0 || (uint64_t)p->tw * p->th > (1u << 26)) {
            st = hp_error_set(err, HP_ERR_INVALID, "%s: corrupt TIFF: bad tile size", s->path);
            goto done;
        }
    } else {
        uint32_t rps = ht;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        p->tw = w;
        p->th = rps == 0 || rps > ht ? ht : rps;
    }
    int direct8 = bps == 8 && fmt == SAMPLEFORMAT_UINT && (planar == PLANARCONFIG_CONTIG || spp == 1) &&
                  nextra == 0;
    if (direct8 && spp == 3 && photo == PHOTOMETRIC_RGB) {
        p->mode = MODE_RGB, p->spp = 3;
    } else if (direct8 && spp == 3 && photo == PHOTOMETRIC_YCBCR && comp == COMPRESSION_JPEG) {
        p->mode = MODE_RGB, p->spp = 3, p->jpeg_ycbcr = 1;
        TIFFSetField(tif, TIFFTAG_JPEGCOLORMODE, JPEGCOLORMODE_RGB);
    } else if (direct8 && spp == 1 && photo == PHOTOMETRIC_MINISBLACK) {
        p->mode = MODE_GRAY, p->spp = 1;
    } else {
        char emsg[1024] = "";
        if (!TIFFRGBAImageOK(tif, emsg)) {
            st = hp_error_set(err, HP_ERR_UNSUPPORTED, "%s: unsupported TIFF: %s", s->path, emsg);
            goto done;
        }
        p->mode = MODE_RGBA;
    }
    size_t block = (size_t)p->tw * p->th * (p->mode == MODE_RGBA ? 4 : (size_t)p->spp);
    if (!p->tiled && block > (size_t)STRIP_MAX_BYTES) {
        if (p->mode == MODE_RGBA) {
            st = hp_error_set(err, HP_ERR_UNSUPPORTED,
                              "%s: this TIFF stores %u rows per strip in a colour layout read "
                              "through libtiff's RGBA interface, which decodes whole strips "
                              "(%zu MB each); store it tiled or as 8-bit RGB",
                              s->path, (unsigned)p->th, block >> 20);
            goto done;
        }
        p->scanlines = 1;
        p->compressed = comp != COMPRESSION_NONE;
    }

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
    /* Every strip or tile must lie inside the file; a truncated file fails here, by name,
     * rather than at some later read. */
    struct stat fst;
    uint64_t *offs = NULL, *cnts = NULL;
    uint32_t nblk = p->tiled ? TIFFNumberOfTiles(tif) : TIFFNumberOfStrips(tif);
    if (stat(s->path, &fst) == 0 &&
        TIFFGetField(tif, p->tiled ? TIFFTAG_TILEOFFSETS : TIFFTAG_STRIPOFFSETS, &offs) &&
        TIFFGetField(tif, p->tiled ? TIFFTAG_TILEBYTECOUNTS : TIFFTAG_STRIPBYTECOUNTS, &cnts) && offs && cnts) {
        for (uint32_t i = 0; i < nblk; i++) {
            if (cnts[i] && (offs[i] > (uint64_t)fst.st_size || cnts[i] > (uint64_t)fst.st_size - offs[i])) {
                st = hp_error_set(err, HP_ERR_INVALID,
                                  "%s: truncated or corrupt TIFF: %s %u of %u lies beyond the end of "
                                  "the file (%llu bytes)",
                                  s->path, p->tiled ? "tile" : "strip", (unsigned)i, (unsigned)nblk,
                                  (unsigned long long)fst.st_size);
                goto done;
            }
        }
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
done:
    if (st)
        tiff_h_close(h);
    else
        pool_put(p, h, 0);
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
    st = hp_slide_alloc_levels(s, 1, err);
    if (st)
        return st;
    s->level_w[0] = p->W;
    s->level_h[0] = p->H;
    s->level_ds[0] = 1.0;
    return HP_OK;
}
