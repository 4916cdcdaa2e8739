/* Measured regions: the connected areas of each class whose probability reaches a threshold,
 * as polygons in level-0 pixels with area, largest diameter, probability summary and the tiles
 * inside as evidence.
 *
 * A tile belongs to class k's regions when it was analysed and map[t*C + k] >= threshold (so a
 * threshold of 0.5 or more gives each tile at most one class; lower ones can let regions of two
 * classes overlap). Tiles join when they share an edge (4-connectivity, pipeline/contour.h says
 * why); tiles touching only at a corner are separate regions.
 * Polygons follow tile edges: their area equals the area of the tiles inside, and edge tiles may
 * reach past the slide edge by less than a tile. Rings are closed and simple; the outer ring runs
 * clockwise on screen (y down), holes the other way. */
#ifndef HP_REGIONS_H
#define HP_REGIONS_H

#include <stdint.h>

#include "common/status.h"
#include "pipeline/heatmap.h"

typedef struct {
    double *xy; /* n points (x, y) in level-0 pixels; the last equals the first */
    size_t n;
} hp_region_ring;

typedef struct {
    int cls;                /* class index */
    hp_region_ring *rings;  /* rings[0] outer, rings[1..nrings-1] holes */
    int nrings;
    int64_t ntiles;
    double area_mm2;        /* ntiles x tile area (exact for the grid; equals the polygon's) */
    double diameter_mm;     /* largest distance between two outer-ring vertices */
    double mean_prob;       /* of the class, over the tiles inside, from the grid's own prob */
    double max_prob;
    double cx, cy;          /* level-0 centre of the tiles inside (mean of tile centres) */
    int32_t *tiles;         /* ntiles tile indices (j*gw + i), highest class probability first */
} hp_region;

typedef struct {
    hp_region *r; /* ordered by class, then larger area first, then first tile in raster order */
    int n;
    double threshold;
} hp_regions;

/* Finds the regions of every class in `map` (grid-shaped like g->prob: g->prob itself or a
 * smoothed copy). Regions of fewer than min_tiles tiles are dropped (min_tiles <= 1 keeps all).
 * Probability summaries come from g->prob, not from `map`, so they report what the model said.
 * The caller frees *out with hp_regions_destroy. Errors: HP_ERR_INVALID (a bad grid or threshold
 * outside (0, 1]), HP_ERR_NOMEM; the message goes to err. */
hp_status hp_regions_extract(const hp_heatmap_grid *g, const float *map, double threshold,
                             int min_tiles, hp_regions **out, hp_error *err);

void hp_regions_destroy(hp_regions *rs);

/* A region's one identity, used by every output (findings.json, regions.geojson, regions.xml,
 * tiles.csv, tiles.geojson, the report and its images): "R<n>" with n its 1-based place in
 * rs->r. The class-local number ("invasive 2") is only a display label derived from it. */
#define HP_REGION_ID_MAX 16
void hp_region_id(int index, char out[HP_REGION_ID_MAX]);
/* 1 for the largest region of its class, 2 for the next...: the number of display labels. */
int hp_region_class_rank(const hp_regions *rs, int index);
/* For each of the n_tiles tiles of the grid, the index in rs->r of the region holding it, or -1.
 * Regions of one class never share a tile; at a threshold of 0.5 or more no two regions do (below
 * it, the first region in rs->r wins). */
void hp_regions_tile_map(const hp_regions *rs, size_t n_tiles, int32_t *out);

#endif
