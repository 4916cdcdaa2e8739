/* Streaming pyramidal JPEG BigTIFF writer (see the header for the format and why).
 *
 * libtiff writes one directory at a time, so it cannot interleave the levels of a pyramid that is
 * built on the fly; this writer lays the file out itself: a 16-byte BigTIFF header, tile data as
 * it is produced, then every level's arrays and directory, then the header's pointer is patched.
 * Tiles are encoded with libjpeg-turbo. */
#include "io/tiff_pyramid_writer.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
/* jpeglib.h needs FILE declared first */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

#define MAX_LEVELS 16

typedef struct {
    int64_t w, h;
    int64_t across, down;
    uint64_t *off, *len; /* per tile, row-major */
    uint8_t *band;       /* tile rows x w x 3 (lower levels: accumulated from the level above) */
    int fill;            /* rows in band */
    int64_t rows_done;   /* rows already written */
} level;

struct hp_tiff_pyramid {
    hp_tiff_pyramid_options o;
    char *path;
    hp_atomic_file af;
    int open;
    int nlevels;
    level lv[MAX_LEVELS];
    uint8_t *tilebuf; /* tile x tile x 3 */
    uint64_t pos;     /* current end of file */
};

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void jerr_exit(j_common_ptr c)
{
    jerr *e = (jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void jerr_quiet(j_common_ptr c, int lvl)
{
    (void)c;
    (void)lvl;
}

/* Encodes one tile into a malloc'ed buffer (*out, *outlen). */
static hp_status encode_tile(const uint8_t *rgb, int side, int quality, int chroma_full,
                             unsigned char **out,
                             unsigned long *outlen, char *msg, size_t msglen)
{
    struct jpeg_compress_struct c;
    jerr e;
    /* volatile: read after longjmp */
    unsigned char *volatile buf = NULL;
    unsigned long size = 0;
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jerr_exit;
    e.pub.emit_message = jerr_quiet;
    if (setjmp(e.jb)) {
        snprintf(msg, msglen, "JPEG encoder: %s", e.msg);
        jpeg_destroy_compress(&c);
        free(buf);
        return HP_ERR_IO;
    }
    jpeg_create_compress(&c);
    unsigned char *b = NULL;
    jpeg_mem_dest(&c, &b, &size);
    c.image_width = (JDIMENSION)side;
    c.image_height = (JDIMENSION)side;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    /* The defaults are YCbCr with 2x2 subsampled chroma: what YCbCrSubSampling = 2,2 declares. */
    jpeg_set_quality(&c, quality, TRUE);
    if (chroma_full) {
        c.comp_info[0].h_samp_factor = 1;
        c.comp_info[0].v_samp_factor = 1;
    }
    jpeg_start_compress(&c, TRUE);
    buf = b;
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(rgb + (size_t)c.next_scanline * side * 3);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    *out = b;
    *outlen = size;
    jpeg_destroy_compress(&c);
    return HP_OK;
}

/* ---- file writing ---- */

static hp_status put(hp_tiff_pyramid *w, const void *p, size_t n, hp_error *err)
{
    if (n && fwrite(p, 1, n, w->af.f) != n)
        return hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->pos += n;
    return HP_OK;
}

static void le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Encodes and writes the `rows` rows in level l's band as one row of tiles. */
static hp_status write_tiles(hp_tiff_pyramid *w, int l, const uint8_t *band, int rows,
                             hp_error *err)
{
    level *L = &w->lv[l];
    int t = w->o.tile;
    int64_t trow = L->rows_done / t;
    for (int64_t tc = 0; tc < L->across; tc++) {
        int64_t x0 = tc * t;
        int cols = (int)((L->w - x0) < t ? (L->w - x0) : t);
        /* Padding repeats the last column and row: flat edges cost JPEG little and do not ring. */
        for (int y = 0; y < t; y++) {
            int sy = y < rows ? y : rows - 1;
            const uint8_t *src = band + ((size_t)sy * L->w + x0) * 3;
            uint8_t *dst = w->tilebuf + (size_t)y * t * 3;
            memcpy(dst, src, (size_t)cols * 3);
            for (int x = cols; x < t; x++)
                memcpy(dst + x * 3, src + (cols - 1) * 3, 3);
        }
        unsigned char *jpg = NULL;
        unsigned long n = 0;
        char msg[256];
        if (encode_tile(w->tilebuf, t, w->o.quality, w->o.chroma_full, &jpg, &n, msg,
                        sizeof msg) != HP_OK)
            return hp_error_set(err, HP_ERR_IO, "%s: %s", w->path, msg);
        size_t k = (size_t)(trow * L->across + tc);
        L->off[k] = w->pos;
        L->len[k] = n;
        hp_status st = put(w, jpg, n, err);
        free(jpg);
        if (st)
            return st;
        /* TIFF wants data on word boundaries. */
        if (w->pos & 1) {
            uint8_t z = 0;
            if ((st = put(w, &z, 1, err)))
                return st;
        }
    }
    L->rows_done += rows;
    return HP_OK;
}

/* Box-filters `rows` rows of level l-1 (band src) into level l's band, emitting it when full. */
static hp_status push_down(hp_tiff_pyramid *w, int l, const uint8_t *src, int rows, hp_error *err)
{
    level *P = &w->lv[l - 1], *L = &w->lv[l];
    int ds = w->o.downsample;
    int out_rows = (rows + ds - 1) / ds;
    for (int oy = 0; oy < out_rows; oy++) {
        int ya = oy * ds, yb = ya + ds < rows ? ya + ds : rows;
        uint8_t *dst = L->band + (size_t)(L->fill + oy) * L->w * 3;
        for (int64_t ox = 0; ox < L->w; ox++) {
            int64_t xa = ox * ds, xb = xa + ds < P->w ? xa + ds : P->w;
            unsigned s0 = 0, s1 = 0, s2 = 0, n = 0;
            for (int y = ya; y < yb; y++) {
                const uint8_t *p = src + ((size_t)y * P->w + xa) * 3;
                for (int64_t x = xa; x < xb; x++, p += 3) {
                    s0 += p[0];
                    s1 += p[1];
                    s2 += p[2];
                    n++;
                }
            }
            dst[ox * 3 + 0] = (uint8_t)((s0 + n / 2) / n);
            dst[ox * 3 + 1] = (uint8_t)((s1 + n / 2) / n);
            dst[ox * 3 + 2] = (uint8_t)((s2 + n / 2) / n);
        }
    }
    L->fill += out_rows;
    if (L->fill == w->o.tile || L->rows_done + L->fill == L->h) {
        int n = L->fill;
        hp_status st = write_tiles(w, l, L->band, n, err);
        if (st)
            return st;
        L->fill = 0;
        if (l + 1 < w->nlevels)
            return push_down(w, l + 1, L->band, n, err);
    }
    return HP_OK;
}

hp_status hp_tiff_pyramid_create(const char *path, const hp_tiff_pyramid_options *o,
                                 hp_tiff_pyramid **out, hp_error *err)
{
    *out = NULL;
    if (o->width < 1 || o->height < 1 || o->width > (1ll << 31) || o->height > (1ll << 31))
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad image size %lldx%lld", path,
                            (long long)o->width, (long long)o->height);
    if (o->tile < 64 || o->tile > 2048 || o->tile % 16)
        return hp_error_set(err, HP_ERR_INVALID, "%s: tile size %d is not a multiple of 16 in 64..2048",
                            path, o->tile);
    if (o->quality < 1 || o->quality > 100)
        return hp_error_set(err, HP_ERR_INVALID, "%s: JPEG quality %d is outside 1..100", path,
                            o->quality);
    if (o->downsample != 2 && o->downsample != 4)
        return hp_error_set(err, HP_ERR_INVALID, "%s: level downsample must be 2 or 4", path);
    if (!(o->mpp > 0) || o->min_side < 1)
        return hp_error_set(err, HP_ERR_INVALID, "%s: bad MPP or smallest level size", path);
    /* '|' and line breaks would end the Aperio description's first line or field early. */
    if (o->software && strpbrk(o->software, "|\r\n"))
        return hp_error_set(err, HP_ERR_INVALID, "%s: software name has '|' or a line break", path);
    hp_tiff_pyramid *w = calloc(1, sizeof *w);
    if (!w)
        return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory", path);
    w->o = *o;
    w->o.description_extra = NULL;
    w->o.software = NULL;
    w->path = strdup(path);
    char *sw = strdup(o->software ? o->software : "histoplan-synth");
    w->o.software = sw;
    char *extra = o->description_extra ? strdup(o->description_extra) : NULL;
    w->o.description_extra = extra;
    if (!w->path || !sw || (o->description_extra && !extra))
        goto nomem;
    int64_t lw = o->width, lh = o->height;
    for (;;) {
        level *L = &w->lv[w->nlevels++];
        L->w = lw;
        L->h = lh;
        L->across = (lw + o->tile - 1) / o->tile;
        L->down = (lh + o->tile - 1) / o->tile;
        size_t nt = (size_t)(L->across * L->down);
        L->off = malloc(nt * sizeof *L->off);
        L->len = malloc(nt * sizeof *L->len);
        /* Level 0's band is the caller's; lower levels accumulate their own. */
        if (w->nlevels > 1)
            L->band = malloc((size_t)lw * o->tile * 3);
        if (!L->off || !L->len || (w->nlevels > 1 && !L->band))
            goto nomem;
        if ((lw > lh ? lw : lh) <= o->min_side || w->nlevels == MAX_LEVELS)
            break;
        lw = (lw + o->downsample - 1) / o->downsample;
        lh = (lh + o->downsample - 1) / o->downsample;
    }
    w->tilebuf = malloc((size_t)o->tile * o->tile * 3);
    if (!w->tilebuf)
        goto nomem;
    if (hp_atomic_open(path, &w->af, err) != HP_OK) {
        hp_tiff_pyramid_destroy(w);
        return err ? err->code : HP_ERR_IO;
    }
    w->open = 1;
    /* BigTIFF header; the first directory's offset is patched in at the end. */
    uint8_t hdr[16] = {'I', 'I', 43, 0, 8, 0, 0, 0};
    hp_status st = put(w, hdr, sizeof hdr, err);
    if (st) {
        hp_tiff_pyramid_destroy(w);
        return st;
    }
    *out = w;
    return HP_OK;
nomem:
    hp_tiff_pyramid_destroy(w);
    return hp_error_set(err, HP_ERR_NOMEM, "%s: out of memory planning the pyramid", path);
}

int hp_tiff_pyramid_level_count(const hp_tiff_pyramid *w)
{
    return w->nlevels;
}

void hp_tiff_pyramid_level_size(const hp_tiff_pyramid *w, int level, int64_t *lw, int64_t *lh)
{
    *lw = w->lv[level].w;
    *lh = w->lv[level].h;
}

hp_status hp_tiff_pyramid_write_band(hp_tiff_pyramid *w, const uint8_t *rgb, int rows,
                                     hp_error *err)
{
    level *L = &w->lv[0];
    int64_t left = L->h - L->rows_done;
    if (!w->open || rows < 1 || rows > w->o.tile || (rows != w->o.tile && rows != left) ||
        rows > left)
        return hp_error_set(err, HP_ERR_INVALID, "%s: band of %d rows does not fit (%lld left)",
                            w->path, rows, (long long)left);
    hp_status st = write_tiles(w, 0, rgb, rows, err);
    if (st == HP_OK && w->nlevels > 1)
        st = push_down(w, 1, rgb, rows, err);
    return st;
}

/* One directory entry: tag, type, count, and either the value (<= 8 bytes) or an offset. */
static void entry(uint8_t *e, int tag, int type, uint64_t count, uint64_t value)
{
    le(e, (uint64_t)tag, 2);
    le(e + 2, (uint64_t)type, 2);
    le(e + 4, count, 8);
    le(e + 12, value, 8);
}

enum { T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_RATIONAL = 5, T_LONG8 = 16 };

static hp_status write_directory(hp_tiff_pyramid *w, int l, uint64_t *ifd_pos, hp_error *err)
{
    level *L = &w->lv[l];
    size_t nt = (size_t)(L->across * L->down);
    hp_status st;
    /* Offsets and byte counts: inline when there is a single tile. */
    uint64_t off_at = 0, len_at = 0;
    uint8_t tmp[8];
    if (nt > 1) {
        off_at = w->pos;
        for (size_t i = 0; i < nt; i++) {
            le(tmp, L->off[i], 8);
            if ((st = put(w, tmp, 8, err)))
                return st;
        }
        len_at = w->pos;
        for (size_t i = 0; i < nt; i++) {
            le(tmp, L->len[i], 8);
            if ((st = put(w, tmp, 8, err)))
                return st;
        }
    }
    char desc[1024];
    double mpp = w->o.mpp * (double)w->lv[0].w / (double)L->w;
    if (l == 0)
        snprintf(desc, sizeof desc,
                 "Aperio Image Library %s\r\n%lldx%lld (%dx%d) JPEG/YCbCr Q=%d"
                 "|AppMag = %d|MPP = %.6g%s",
                 w->o.software, (long long)L->w, (long long)L->h, w->o.tile, w->o.tile, w->o.quality,
                 (int)lround(10.0 / w->o.mpp), w->o.mpp,
                 w->o.description_extra ? w->o.description_extra : "");
    else
        snprintf(desc, sizeof desc, "Aperio Image Library %s\r\n%lldx%lld -> %lldx%lld",
                 w->o.software, (long long)w->lv[0].w, (long long)w->lv[0].h, (long long)L->w,
                 (long long)L->h);
    size_t dn = strlen(desc) + 1;
    uint64_t desc_at = w->pos;
    if ((st = put(w, desc, dn, err)))
        return st;
    while (w->pos & 7) {
        uint8_t z = 0;
        if ((st = put(w, &z, 1, err)))
            return st;
    }
    /* Pixels per centimetre as a rational with a fixed denominator. */
    uint64_t ppcm = (uint64_t)llround(1e4 / mpp * 1000.0);
    uint64_t res = (ppcm & 0xffffffffu) | ((uint64_t)1000 << 32);
    enum { N = 17 };
    uint8_t ifd[8 + N * 20 + 8]; /* count, entries (sorted by tag), next-directory offset */
    memset(ifd, 0, sizeof ifd);
    le(ifd, N, 8);
    uint8_t *e = ifd + 8;
    entry(e, 254, T_LONG, 1, l == 0 ? 0 : 1), e += 20; /* NewSubfileType: reduced image */
    entry(e, 256, T_LONG, 1, (uint64_t)L->w), e += 20;
    entry(e, 257, T_LONG, 1, (uint64_t)L->h), e += 20;
    entry(e, 258, T_SHORT, 3, 8 | 8ull << 16 | 8ull << 32), e += 20;
    entry(e, 259, T_SHORT, 1, 7), e += 20; /* JPEG */
    entry(e, 262, T_SHORT, 1, 6), e += 20; /* YCbCr */
    entry(e, 270, T_ASCII, dn, desc_at), e += 20;
    entry(e, 277, T_SHORT, 1, 3), e += 20;
    entry(e, 282, T_RATIONAL, 1, res), e += 20;
    entry(e, 283, T_RATIONAL, 1, res), e += 20;
    entry(e, 284, T_SHORT, 1, 1), e += 20; /* contiguous */
    entry(e, 296, T_SHORT, 1, 3), e += 20; /* centimetre */
    entry(e, 322, T_LONG, 1, (uint64_t)w->o.tile), e += 20;
    entry(e, 323, T_LONG, 1, (uint64_t)w->o.tile), e += 20;
    entry(e, 324, T_LONG8, nt, nt > 1 ? off_at : L->off[0]), e += 20;
    entry(e, 325, T_LONG8, nt, nt > 1 ? len_at : L->len[0]), e += 20;
    entry(e, 530, T_SHORT, 2, w->o.chroma_full ? (1 | 1u << 16) : (2 | 2u << 16));
    *ifd_pos = w->pos;
    return put(w, ifd, sizeof ifd, err);
}

hp_status hp_tiff_pyramid_finish(hp_tiff_pyramid *w, hp_error *err)
{
    if (!w->open)
        return hp_error_set(err, HP_ERR_INVALID, "%s: writer already finished or failed", w->path);
    hp_status st = HP_OK;
    for (int l = 0; l < w->nlevels; l++)
        if (w->lv[l].rows_done != w->lv[l].h)
            st = hp_error_set(err, HP_ERR_INVALID, "%s: level %d has %lld of %lld rows", w->path,
                              l, (long long)w->lv[l].rows_done, (long long)w->lv[l].h);
    uint64_t at[MAX_LEVELS];
    for (int l = 0; st == HP_OK && l < w->nlevels; l++)
        st = write_directory(w, l, &at[l], err);
    /* Chain the directories: each one's last 8 bytes point to the next; the header to the first. */
    uint8_t b[8];
    for (int l = 0; st == HP_OK && l + 1 < w->nlevels; l++) {
        le(b, at[l + 1], 8);
        if (fseeko(w->af.f, (off_t)(at[l] + 8 + 17 * 20), SEEK_SET) != 0 ||
            fwrite(b, 1, 8, w->af.f) != 8)
            st = hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    }
    if (st == HP_OK) {
        le(b, at[0], 8);
        if (fseeko(w->af.f, 8, SEEK_SET) != 0 || fwrite(b, 1, 8, w->af.f) != 8)
            st = hp_error_set(err, HP_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    }
    w->open = 0;
    hp_status fs = hp_atomic_finish(w->path, &w->af, st == HP_OK, err);
    return st ? st : fs;
}

void hp_tiff_pyramid_destroy(hp_tiff_pyramid *w)
{
    if (!w)
        return;
    if (w->open) {
        hp_error ignore = {0};
        hp_atomic_finish(w->path, &w->af, 0, &ignore);
    }
    for (int l = 0; l < w->nlevels; l++) {
        free(w->lv[l].off);
        free(w->lv[l].len);
        free(w->lv[l].band);
    }
    free(w->tilebuf);
    free((char *)w->o.description_extra);
    free((char *)w->o.software);
    free(w->path);
    free(w);
}
