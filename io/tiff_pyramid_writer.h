/* A streaming writer of pyramidal, tiled, JPEG-compressed TIFF slides that OpenSlide 3.4 opens
 * as Aperio (vendor "aperio") and for which it reports openslide.mpp-x/-y and objective power.
 *
 * Why Aperio: OpenSlide 3.4 reports MPP only through a vendor driver; its generic TIFF driver
 * ignores the resolution tags. The Aperio driver needs exactly this: the first directory tiled,
 * its ImageDescription starting with "Aperio", and "|MPP = x|AppMag = y" fields in it. Every
 * tiled directory becomes a level, in file order, with no SubIFDs.
 *
 * The file: BigTIFF (so slides past 4 GB need no second code path; libtiff and OpenSlide 3.4
 * read it), one directory per level (level 0 first; each lower level 1/downsample of the one
 * above, box-filtered, until the larger side is at most min_side), tiles of JPEG (YCbCr 4:2:0,
 * Photometric YCbCr, every tile a complete JPEG stream with its own tables; 4:4:4 with
 * chroma_full), XResolution /
 * YResolution in pixels per centimetre, edge tiles padded by repeating the last row and column.
 * Tile data of all levels is interleaved as the bands arrive; the directories go at the end.
 *
 * Streaming: the caller hands level 0 over one band (one row of tiles) at a time; each lower
 * level keeps one band of its own and is written as it fills. Memory is about
 * width x tile x 3 bytes x (1 + 1/downsample + ...) plus 16 bytes per tile for the offsets.
 *
 * The file is written under a temporary name beside `path` and renamed into place by
 * hp_tiff_pyramid_finish; destroying an unfinished writer removes the temporary.
 * Output bytes depend only on the options and the pixels. Not thread-safe: one writer, one thread. */
#ifndef HP_TIFF_PYRAMID_WRITER_H
#define HP_TIFF_PYRAMID_WRITER_H

#include <stdint.h>

#include "common/status.h"

typedef struct {
    int64_t width, height; /* level 0 */
    int tile;              /* tile side: a multiple of 16, 64..2048 */
    int quality;           /* JPEG quality 1..100 */
    double mpp;            /* micrometres per level-0 pixel (> 0) */
    int downsample;        /* between successive levels: 2 or 4 (Aperio uses 4) */
    int min_side;          /* stop adding levels once the larger side is <= this (e.g. 1024) */
    /* Extra Aperio-style fields appended to level 0's ImageDescription, "|Key = value|..." or
     * NULL. They appear as aperio.Key properties in OpenSlide. */
    const char *description_extra;
    /* Optional, zero keeps the defaults (the synthetic slides'): */
    int chroma_full;      /* nonzero: JPEG without chroma subsampling (4:4:4), for colour-coded
                           * images such as heatmaps whose sharp colour edges 4:2:0 would bleed */
    const char *software; /* replaces "histoplan-synth" after "Aperio Image Library " in the
                           * descriptions (no '|' or line breaks), or NULL */
} hp_tiff_pyramid_options;

typedef struct hp_tiff_pyramid hp_tiff_pyramid;

/* Checks the options, plans the levels and opens the temporary file. */
hp_status hp_tiff_pyramid_create(const char *path, const hp_tiff_pyramid_options *o,
                                 hp_tiff_pyramid **out, hp_error *err);

int hp_tiff_pyramid_level_count(const hp_tiff_pyramid *w);
void hp_tiff_pyramid_level_size(const hp_tiff_pyramid *w, int level, int64_t *lw, int64_t *lh);

/* Appends the next band of level 0: `rows` rows of `width` interleaved RGB8 pixels (stride
 * width*3). rows == tile for every band but the last, which holds what is left. */
hp_status hp_tiff_pyramid_write_band(hp_tiff_pyramid *w, const uint8_t *rgb, int rows,
                                     hp_error *err);

/* After the last band: writes the directories and renames the file into place. */
hp_status hp_tiff_pyramid_finish(hp_tiff_pyramid *w, hp_error *err);

/* Frees the writer; an unfinished file's temporary is removed. NULL is accepted. */
void hp_tiff_pyramid_destroy(hp_tiff_pyramid *w);

#endif
