/* The Deep Zoom layout of a slide, as OpenSlide's own generator (openslide.deepzoom
 * DeepZoomGenerator with limit_bounds off) lays it out, so that OpenSeadragon and any other Deep
 * Zoom client see the same levels and tiles:
 *
 *   levels  level N-1 is the slide's level 0; each lower level halves the size (rounding up)
 *           down to 1 x 1;
 *   tiles   `tile` pixels (254) plus an overlap of `overlap` (1) pixel on every side that has a
 *           neighbour;
 *   source  each tile is read from the slide level whose downsample is the largest not above
 *           the Deep Zoom level's (OpenSlide's best level), then shrunk to the tile's size
 *           (server/tile_resample.h).
 *
 * Plain arithmetic on the slide's dimensions; no I/O. Thread-safe after hp_dz_layout_init. */
#ifndef HP_SERVER_DEEPZOOM_H
#define HP_SERVER_DEEPZOOM_H

#include <stdint.h>

#define HP_DZ_TILE 254
#define HP_DZ_OVERLAP 1
#define HP_DZ_MAX_LEVELS 40
#define HP_DZ_MAX_SLIDE_LEVELS 32

typedef struct {
    int tile, overlap;
    int n_levels;                          /* Deep Zoom levels */
    int64_t w[HP_DZ_MAX_LEVELS], h[HP_DZ_MAX_LEVELS];
    int64_t cols[HP_DZ_MAX_LEVELS], rows[HP_DZ_MAX_LEVELS];
    int slide_level[HP_DZ_MAX_LEVELS];     /* the slide level each Deep Zoom level reads */
    double l_z_downsample[HP_DZ_MAX_LEVELS]; /* Deep Zoom downsample / that level's downsample */
    int n_slide_levels;
    int64_t lw[HP_DZ_MAX_SLIDE_LEVELS], lh[HP_DZ_MAX_SLIDE_LEVELS];
    double ldown[HP_DZ_MAX_SLIDE_LEVELS];
} hp_dz_layout;

/* What to read for one tile and the size to make of it. */
typedef struct {
    int slide_level;
    int64_t x0, y0; /* level-0 coordinates of the top-left corner */
    int lw, lh;     /* pixels to read at slide_level */
    int zw, zh;     /* the tile's size before the aspect-preserving rounding */
} hp_dz_tile;

/* Lays out a slide of `n_slide_levels` levels (dimensions and downsamples, level 0 first).
 * 0 ok, -1 when the slide is empty or has too many levels. */
int hp_dz_layout_init(hp_dz_layout *L, int n_slide_levels, const int64_t *lw, const int64_t *lh,
                      const double *ldown, int tile, int overlap);

/* The read for tile (col, row) of Deep Zoom level `level`: 0 ok, -1 when there is no such tile. */
int hp_dz_tile_info(const hp_dz_layout *L, int level, int64_t col, int64_t row, hp_dz_tile *t);

#endif
