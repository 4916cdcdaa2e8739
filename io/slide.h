/* One interface over every slide histoplan reads: whole-slide images that OpenSlide opens (Aperio
 * SVS, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, Ventana, generic tiled TIFF) and plain
 * microscopy images (TIFF, PNG, JPEG) read through libtiff, libpng and libjpeg-turbo.
 *
 * Pixels come out as interleaved 8-bit RGB. Coordinates passed to hp_slide_read_region are in
 * level-0 pixels, as in OpenSlide. Anything outside the scanned area (outside the slide, or
 * transparent in OpenSlide's output) reads as white, the colour of empty glass.
 *
 * Errors: hp_slide_open fills the caller's hp_error; every later failure is recorded on the
 * handle (first error wins) and returned as an hp_status; hp_slide_error reads the message.
 *
 * Thread safety: hp_slide_read_region may be called from several threads at once on one handle
 * (reader threads do). Everything else reads fields fixed at open and is safe too, except
 * hp_slide_close, which must not race with any other call on the handle. */
#ifndef HP_SLIDE_H
#define HP_SLIDE_H

#include <stdint.h>

#include "common/status.h"

/* A plain PNG or JPEG is decoded whole, once, at open; above this many pixels it is refused
 * (such an image should be stored as a tiled TIFF). 64 megapixels is 192 MB of RGB. Plain TIFFs
 * have no such limit: they are read by region. */
#define HP_SLIDE_PLAIN_DECODED_MAX_PIXELS (64LL * 1000 * 1000)

/* Microns per pixel outside this range are not microscopy (a 72 dpi screen resolution is
 * 353 um/px): such metadata is treated as missing, never used. */
#define HP_SLIDE_MPP_MIN 0.05
#define HP_SLIDE_MPP_MAX 20.0

/* One side of a slide above this many pixels is taken as a corrupt header (a 75 mm glass slide
 * at 0.05 um/px is 1.5 million pixels). */
#define HP_SLIDE_MAX_SIDE (1LL << 21)

/* Tile indexes. The tile (or strip) index of every level stored as a TIFF directory is checked
 * at open against the level's tile grid and against the file:
 * - a tile with no index entry (an index shorter than the grid), a zero offset or byte count, or
 *   data past the end of the file is missing: OpenSlide hands such tiles back as transparent,
 *   which reads as empty glass, so an analysis would call a damaged slide empty or benign;
 * - a level whose stored tiles claim more than HP_SLIDE_MAX_PIXELS_PER_BYTE pixels per byte of
 *   image data actually in the file (counted from HP_SLIDE_INDEX_CHECK_MIN_PIXELS pixels up) is
 *   implausible: no scanner's compression comes near it (deflate tops out near 350 pixels per
 *   byte on blank RGB), and reading it would decode, for minutes, pixels that are not there.
 * Either makes the level damaged: hp_slide_open refuses the slide with a message that names the
 * level and the count, unless hp_slide_options.inspect is set, and reading a damaged level
 * fails. Sparse Philips slides, whose absent tiles (offset and byte count both zero) mean "not
 * scanned" by the format's definition, are not damaged; their absent tiles read as glass. */
#define HP_SLIDE_MAX_PIXELS_PER_BYTE 4096
#define HP_SLIDE_INDEX_CHECK_MIN_PIXELS (16LL * 1024 * 1024)

typedef struct hp_slide hp_slide;

typedef enum {
    HP_SLIDE_READER_AUTO = 0, /* OpenSlide when it recognizes the file, else the plain reader */
    HP_SLIDE_READER_OPENSLIDE,
    HP_SLIDE_READER_PLAIN,    /* libtiff / libpng / libjpeg only (tests compare it with OpenSlide) */
} hp_slide_reader;

typedef struct {
    double mpp;             /* > 0: microns per pixel at level 0, overriding the metadata (--mpp) */
    hp_slide_reader reader;
    int inspect;            /* 1: open a slide with damaged levels anyway, to describe it (slide
                             * info); reading a damaged level still fails */
    /* > 0: keep up to this many bytes of decoded TIFF tiles of level 0's size (the plain reader's
     * and routed reads; io/tiff_block_cache.h), for a caller that reads overlapping regions
     * again and again (the tile server). 0: none, for callers that read each tile once. */
    size_t block_cache_bytes;
} hp_slide_options;

/* Where hp_slide_mpp's value came from. */
typedef enum {
    HP_MPP_NONE = 0,
    HP_MPP_OVERRIDE,        /* the caller's hp_slide_options.mpp (--mpp) */
    HP_MPP_OPENSLIDE,       /* openslide.mpp-x / openslide.mpp-y */
    HP_MPP_TIFF_RESOLUTION, /* TIFF XResolution/YResolution with ResolutionUnit cm or inch */
    HP_MPP_OBJECTIVE,       /* 10 um/px at 1x divided by the objective power; a warning is set */
} hp_mpp_source;

/* A short name for an MPP source ("openslide", "tiff-resolution", ...). */
const char *hp_mpp_source_name(hp_mpp_source src);

/* Refuses, by name, a path that is not a regular file (a FIFO, a socket, a character or block
 * device, a directory) before anything opens it: opening a FIFO blocks until a writer appears and
 * a device can be endless, so a command given one would hang. Symbolic links are followed. Every
 * command that takes a slide calls it before reading or hashing the file; hp_slide_open and
 * hp_deid_slide call it too. */
hp_status hp_slide_check_file(const char *path, hp_error *err);

/* Opens `path`. `opt` may be NULL (defaults: no override, automatic reader). The format is
 * chosen by OpenSlide's detection and then by magic bytes, never by the extension. On failure
 * returns NULL and `err` names the file and the cause. Close with hp_slide_close. */
hp_slide *hp_slide_open(const char *path, const hp_slide_options *opt, hp_error *err);

/* Closes the slide and frees everything it owns. Accepts NULL. */
void hp_slide_close(hp_slide *s);

/* The message of the first error recorded on the handle, or "" when none. */
const char *hp_slide_error(hp_slide *s);

/* The path given to hp_slide_open. */
const char *hp_slide_path(const hp_slide *s);

/* The format: OpenSlide's vendor ("aperio", "generic-tiff", ...) or "tiff", "png", "jpeg". */
const char *hp_slide_format(const hp_slide *s);

/* Pyramid levels, level 0 the finest. A plain image has one. */
int hp_slide_level_count(const hp_slide *s);

/* Dimensions of `level` in its own pixels; HP_ERR_INVALID (recorded) for a bad level. */
hp_status hp_slide_level_dimensions(hp_slide *s, int level, int64_t *w, int64_t *h);

/* Downsample of `level` relative to level 0 (1.0 for level 0); 0 for a bad level. */
double hp_slide_level_downsample(const hp_slide *s, int level);

/* Microns per pixel at level 0 and where they came from (any output pointer may be NULL).
 * Order: the caller's override, the slide's own metadata (OpenSlide's mpp, then TIFF resolution
 * tags), then the objective power (with hp_slide_warning set). Values outside
 * HP_SLIDE_MPP_MIN..MAX count as missing. When nothing usable exists, returns HP_ERR_INVALID and
 * records a message that says what was looked for and names the --mpp option. */
hp_status hp_slide_mpp(hp_slide *s, double *mpp_x, double *mpp_y, hp_mpp_source *source);

/* What the tile-index check found for one level. */
typedef struct {
    int checked;         /* 1 when the level is a TIFF directory whose index was read */
    int64_t tiles;       /* tiles (or strips) in the level's grid */
    int64_t missing;     /* of those, absent from the index or pointing outside the file */
    int64_t sparse;      /* of those, absent by the format's definition (sparse Philips) */
    uint64_t data_bytes; /* distinct bytes of image data the index points to */
    int damaged;         /* missing tiles, or implausibly many pixels per stored byte */
    char why[400];       /* for a damaged level: the message, naming the file and the level */
} hp_slide_index;

/* The tile-index check of `level`; HP_ERR_INVALID (recorded) for a bad level. */
hp_status hp_slide_level_index(hp_slide *s, int level, hp_slide_index *out);

/* A warning about the metadata (MPP derived from the objective power), or "" when none. */
const char *hp_slide_warning(const hp_slide *s);

/* Objective power (e.g. 20 or 40), 0 when unknown. */
double hp_slide_objective_power(const hp_slide *s);

/* Associated images (OpenSlide's "label", "macro", "thumbnail", ...): their count and names.
 * A plain image has none. Names live as long as the handle. */
int hp_slide_associated_count(const hp_slide *s);
const char *hp_slide_associated_name(const hp_slide *s, int i);

/* Reads associated image `name` as RGB8 (transparent over white). On success *rgb holds
 * w*h*3 bytes the caller frees with free(). Thread-safe. */
hp_status hp_slide_read_associated(hp_slide *s, const char *name, uint8_t **rgb, int *w, int *h);

/* Reads a w x h region of `level` whose top-left corner is (x0, y0) in level-0 coordinates into
 * `rgb` (w*h*3 bytes, caller-allocated), rows top to bottom. Pixels outside the slide are white.
 * At most HP_SLIDE_REGION_MAX_PIXELS per call. Thread-safe on one handle. */
#define HP_SLIDE_REGION_MAX_PIXELS (256LL * 1024 * 1024)
hp_status hp_slide_read_region(hp_slide *s, int level, int64_t x0, int64_t y0, int w, int h,
                               uint8_t *rgb);

/* A thumbnail of the whole slide whose longer side is `max_side` (never larger than level 0),
 * made from the coarsest level that is at least that large by area averaging, read in bands so
 * memory stays bounded whatever the slide's size. *rgb is w*h*3 bytes, freed with free(). */
hp_status hp_slide_read_thumbnail(hp_slide *s, int max_side, uint8_t **rgb, int *w, int *h);

/* Reduced reads: JPEG tiles decoded at 1/2, 1/4 or 1/8 of their size by libjpeg-turbo's DCT
 * scaling, for a caller that shrinks what it reads by 2 or more anyway (the tile loader). The
 * largest reduction `level` allows: 2, 4 or 8 when its tiles are JPEG-compressed 8-bit RGB that
 * the plain TIFF reader decodes (read directly or routed, see hp_slide_read_counts) and their
 * sides divide by it; 1 when no reduced decoding is possible (OpenSlide, PNG, uncompressed...). */
int hp_slide_reduced_max(const hp_slide *s, int level);

/* Reads the region hp_slide_read_region(s, level, x0, y0, w, h) would, reduced by `denom` (1 or
 * a power of two up to hp_slide_reduced_max): *rgb receives (w / denom) x (h / denom) pixels,
 * each the DCT-scaled decoding of a denom x denom block of the level. The region starts at the
 * level pixel nearest to (x0, y0) rounded to the nearest multiple of denom (at most denom / 2
 * level pixels from where hp_slide_read_region starts). Outside the slide reads white.
 * Thread-safe like hp_slide_read_region. */
hp_status hp_slide_read_region_reduced(hp_slide *s, int level, int64_t x0, int64_t y0, int w,
                                       int h, int denom, uint8_t *rgb);

/* Who decoded what. An OpenSlide slide whose levels are TIFF directories of 8-bit RGB JPEG tiles
 * (Aperio, generic pyramidal TIFF) reads its regions through the plain libtiff reader, which
 * decodes the same bytes 3x faster and returns exactly OpenSlide's pixels, wherever the region
 * lies on the level's own pixel grid (level 0 always; a level whose downsample is a whole number
 * at multiples of it); everything else goes through OpenSlide, which stays the authority for
 * the format, properties, MPP and associated images. Only with hp_slide_reader AUTO. */
typedef enum {
    HP_SLIDE_READ_OPENSLIDE = 0, /* regions read by OpenSlide */
    HP_SLIDE_READ_LIBTIFF,       /* regions read by the plain TIFF reader (routed or direct) */
    HP_SLIDE_READ_REDUCED,       /* reduced reads decoded by libjpeg-turbo's DCT scaling */
    HP_SLIDE_READ_IMAGE,         /* regions of a PNG or JPEG decoded at open */
    HP_SLIDE_READ_KINDS
} hp_slide_read_kind;

/* Regions read so far through each reader, indexed by hp_slide_read_kind (n entries at most). */
void hp_slide_read_counts(const hp_slide *s, int64_t *counts, int n);

/* A short name of a reader kind: "openslide", "libtiff", "libjpeg-scaled", "image". */
const char *hp_slide_read_kind_name(hp_slide_read_kind k);

/* 1 when some level of the slide is read through the plain reader (routed or direct). */
int hp_slide_routes_tiles(const hp_slide *s);

/* An OpenSlide property ("aperio.AppMag", "tiff.XResolution", ...) or NULL; plain images have
 * none. The string lives as long as the handle. */
const char *hp_slide_property(const hp_slide *s, const char *name);

#endif
