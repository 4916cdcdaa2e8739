/* The tile grid: where a slide is cut into model-sized tiles at a target resolution, which of
 * those tiles hold enough tissue to analyze, and which pyramid level they are read from.
 *
 * Geometry. A tile is `tile_size` pixels at `target_mpp`, so it spans
 * step = tile_size * target_mpp / mpp level-0 pixels (not an integer in general). The grid starts
 * at the region of interest's corner (the slide's, without one) and covers it whole:
 * cols = ceil(width / step_x), rows = ceil(height / step_y); tile (i, j) starts at level-0
 * x0 = origin_x + round(i * step_x), y0 = origin_y + round(j * step_y). Edge tiles may reach past
 * the slide; the slide reads white there, like empty glass.
 *
 * Level. Tiles are read from the coarsest level that is still at least as fine as the target
 * (largest downsample <= target_mpp / mpp, with 1% slack because scanners store downsamples such as
 * 4.0003 for a nominal 4), at read_w x read_h pixels of that level, then resampled to
 * tile_size x tile_size. A target finer than level 0 reads level 0 and upsamples (`upsampled` set):
 * the caller may want to warn, since upsampling adds no detail.
 *
 * Tissue. The mask is a plain description (pointer, size, level-0 pixels per mask pixel) so any
 * producer can feed it; a tile's tissue fraction is the share of its level-0 area covered by mask
 * pixels that are non-zero, each mask pixel weighted by its exact overlap with the tile; area
 * outside the mask counts as background. Tiles with fraction >= min_tissue are kept, in row-major
 * order, which fixes every later order (batches, CSV rows).
 *
 * Thread safety: a grid is immutable after creation and may be read from any thread. */
#ifndef HP_TILE_GRID_H
#define HP_TILE_GRID_H

#include <stdint.h>

#include "common/status.h"

struct hp_slide;

#define HP_TILE_GRID_MAX_LEVELS 32

/* Tile sides accepted; a read at the chosen level may be at most this many pixels per side, which
 * keeps a reader thread's scratch buffer under 200 MB. */
#define HP_TILE_SIZE_MAX 4096
#define HP_TILE_READ_SIDE_MAX 8192

/* The slide as the grid needs it; filled by hp_tile_geometry_from_slide or by hand in tests. */
typedef struct {
    int64_t width, height; /* level 0, pixels */
    double mpp_x, mpp_y;   /* microns per level-0 pixel */
    int level_count;       /* 1..HP_TILE_GRID_MAX_LEVELS */
    double downsamples[HP_TILE_GRID_MAX_LEVELS]; /* level 0 is 1.0, increasing */
} hp_tile_geometry;

/* A tissue mask: w x h bytes, row-major, non-zero = tissue. Mask pixel (mx, my) covers level-0
 * [mx * downsample_x, (mx + 1) * downsample_x) x [my * downsample_y, (my + 1) * downsample_y).
 * The grid does not keep the pointer. */
typedef struct {
    const uint8_t *data;
    int w, h;
    double downsample_x, downsample_y;
} hp_tile_mask;

typedef struct {
    double target_mpp; /* microns per pixel of the tiles (default 0.5) */
    int tile_size;     /* tile side in pixels, the model's input (default 224) */
    double min_tissue; /* keep tiles whose tissue fraction is >= this, 0..1 (default 0.25) */
    /* Region of interest in level-0 pixels; used when roi_w > 0 and roi_h > 0. Clipped to the
     * slide; one entirely outside it is refused. */
    int64_t roi_x, roi_y, roi_w, roi_h;
} hp_tile_grid_options;

typedef struct {
    int64_t index;  /* position in the full grid, row-major: j * cols + i */
    int32_t i, j;   /* column and row */
    int64_t x0, y0; /* level-0 top-left corner */
    float tissue;   /* tissue fraction 0..1 (1 for every tile when no mask is given) */
} hp_tile;

typedef struct {
    /* The grid over the region: every tile, kept or not. */
    int32_t cols, rows;
    int64_t origin_x, origin_y; /* level-0 corner of tile (0, 0) */
    double step_x, step_y;      /* level-0 pixels per tile, tile_size * target_mpp / mpp */
    int64_t size0_w, size0_h;   /* the same rounded: a tile's nominal level-0 extent */
    /* How tiles are read. */
    int tile_size;
    double target_mpp;
    int level;               /* pyramid level read */
    double level_downsample; /* its downsample */
    int read_w, read_h;      /* pixels read at that level, then resampled to tile_size */
    int upsampled;           /* 1 when the target is finer than level 0 */
    /* The kept tiles, row-major. */
    int64_t n_tiles;
    hp_tile *tiles;
} hp_tile_grid;

/* Defaults: 0.5 um/px, 224 px, min_tissue 0.25, no region of interest. */
void hp_tile_grid_options_init(hp_tile_grid_options *o);

/* Reads level sizes, downsamples and MPP from an open slide. Fails with the message in `err` (and
 * on the slide, for the slide's own errors) when the slide has no usable MPP or more than
 * HP_TILE_GRID_MAX_LEVELS levels. */
hp_status hp_tile_geometry_from_slide(struct hp_slide *s, hp_tile_geometry *g, hp_error *err);

/* Builds the grid. `mask` may be NULL (every tile is tissue); `opt` may be NULL (defaults).
 * Refuses (HP_ERR_INVALID, message in `err`) bad geometry, a target or tile size out of range,
 * min_tissue outside 0..1, a bad mask, a region of interest outside the slide, a read larger
 * than HP_TILE_READ_SIDE_MAX per side, or a grid of more than 2^31 cells. The caller frees *out
 * with hp_tile_grid_destroy. */
hp_status hp_tile_grid_create(const hp_tile_geometry *g, const hp_tile_mask *mask,
                              const hp_tile_grid_options *opt, hp_tile_grid **out, hp_error *err);

/* Frees the grid and its tile list. Accepts NULL. */
void hp_tile_grid_destroy(hp_tile_grid *grid);

/* The tissue fraction of the level-0 rectangle [x0, x0 + w) x [y0, y0 + h) under `mask`, as the
 * grid computes it (exposed for tests and for callers that score other rectangles). */
double hp_tile_mask_fraction(const hp_tile_mask *mask, double x0, double y0, double w, double h);

#endif
