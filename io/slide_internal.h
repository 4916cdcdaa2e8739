/* Private to io/slide*.c: the handle's layout and the contract between the dispatcher
 * (slide.c) and the two readers (slide_openslide.c, slide_plain.c). */
#ifndef HP_SLIDE_INTERNAL_H
#define HP_SLIDE_INTERNAL_H

#include <pthread.h>

#include "io/slide.h"

typedef struct {
    /* Fills the w x h RGB8 region of `level` at level-0 (x0, y0). The dispatcher has checked
     * the level and the size; the region may still lie partly or wholly outside the slide,
     * and the reader paints that part white. Errors go through hp_slide_fail. */
    hp_status (*read_region)(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                             uint8_t *rgb);
    hp_status (*read_associated)(hp_slide *s, const char *name, uint8_t **rgb, int *w, int *h);
    const char *(*property)(const hp_slide *s, const char *name);
    void (*close)(void *impl);
} hp_slide_ops;

struct hp_slide {
    char *path;
    char format[32];
    hp_slide_reader reader; /* as requested in the options */
    int level_count;
    int64_t *level_w, *level_h;
    double *level_ds;
    double objective;

    /* Metadata MPP as the reader found it (0 = none), and notes on values refused. */
    double meta_mpp_x, meta_mpp_y;
    hp_mpp_source meta_src;
    double override_mpp;
    size_t block_cache_bytes; /* hp_slide_options.block_cache_bytes */
    char mpp_notes[512];
    char warning[256];

    hp_slide_index *index; /* per level, filled by hp_slide_index_check */

    int assoc_count;
    const char *const *assoc_names; /* owned by the reader (OpenSlide) or NULL */

    pthread_mutex_t err_mu; /* reader threads may fail at once; first error wins */
    hp_error err;

    const hp_slide_ops *ops;
    void *impl;

    /* Tile routing (slide.c): for an OpenSlide slide whose levels are TIFF directories that the
     * plain reader decodes to OpenSlide's very bytes, a plain-reader handle on the same file and,
     * per level, its level there (-1: read through OpenSlide). */
    hp_slide *tiles;
    int *route;
    int64_t reads[HP_SLIDE_READ_KINDS]; /* per hp_slide_read_kind; atomic */
};

/* Records an error on the handle (first wins, thread-safe) and returns `code`. */
hp_status hp_slide_fail(hp_slide *s, hp_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Allocates the per-level arrays for `n` levels. */
hp_status hp_slide_alloc_levels(hp_slide *s, int n, hp_error *err);

/* Converts a TIFF resolution (pixels per unit) to microns per pixel: unit 2 = inch,
 * 3 = centimeter; anything else (1 = none) gives 0. */
double hp_slide_tiff_res_to_mpp(double res, int unit);

/* Offers a metadata MPP pair: kept only when both values lie in range (otherwise a note is
 * added for the eventual error message). Returns 1 when kept. */
int hp_slide_offer_mpp(hp_slide *s, double x, double y, hp_mpp_source src, const char *what);

/* Writes white into the w x h RGB8 buffer. */
void hp_slide_fill_white(uint8_t *rgb, int w, int h);

/* Checks every level's tile index (io/slide_index.c) and fills s->index; fails with the first
 * damaged level's message unless `inspect`. */
hp_status hp_slide_index_check(hp_slide *s, int inspect, hp_error *err);

/* Readers. Each fills levels, format, objective, metadata MPP, associated names, ops, impl.
 * On failure they return non-zero with `err` naming s->path and the cause. */
hp_status hp_slide_openslide_open(hp_slide *s, hp_error *err);
hp_status hp_slide_plain_open(hp_slide *s, hp_error *err);

/* 1 when OpenSlide recognizes `path` (openslide_detect_vendor). */
int hp_slide_openslide_detect(const char *path);

/* The plain reader's levels (io/slide_plain.c), for the dispatcher and the index check: the TIFF
 * directory of a level (-1: none, a PNG or JPEG); 1 when the level's tiles are a layout that
 * decodes to exactly OpenSlide's bytes (8-bit RGB JPEG tiles, YCbCr or RGB, which both decode
 * with the same libjpeg-turbo and the same settings); the largest DCT-scaling reduction its
 * tiles allow (1 when none); and a reduced read, in the level's coordinates divided by denom. */
int hp_slide_plain_level_dir(const hp_slide *s, int level);
int hp_slide_plain_exact_layout(const hp_slide *s, int level);
int hp_slide_plain_reduced_max(const hp_slide *s, int level);
hp_status hp_slide_plain_read_reduced(hp_slide *s, int level, int64_t lx, int64_t ly, int w,
                                      int h, int denom, uint8_t *rgb);

/* Decodes JPEG tile `tile` (tw x th, a multiple of denom) of the current directory of `tif` at
 * 1/denom (1, 2, 4 or 8) into `out` (tw/denom x th/denom RGB8), through libjpeg-turbo with the
 * directory's JPEGTables; *raw (capacity *raw_cap) is a reusable buffer for the tile's bytes.
 * HP_ERR_UNSUPPORTED when the tile's JPEG frame is not the tile's size (decode it another way);
 * other failures HP_ERR_INVALID or HP_ERR_NOMEM, `why` saying what. (io/slide_jpeg.c) */
struct tiff;
hp_status hp_slide_jpeg_tile(struct tiff *tif, uint32_t tile, uint32_t tw, uint32_t th, int ycbcr,
                             int denom, uint8_t **raw, size_t *raw_cap, uint8_t *out, char *why,
                             size_t why_cap);

#endif
