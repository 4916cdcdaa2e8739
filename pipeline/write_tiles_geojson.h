/* tiles.geojson: every analysed tile as a QuPath detection (File > Import objects from file;
 * QuPath 0.3+), so QuPath's measurement maps (Measure > Show measurement maps) colour the slide
 * by any class probability at the tiles' own resolution, and its detection tools (classify,
 * count, export) work on the model's output directly. A GeoJSON FeatureCollection:
 *
 *   {"type": "Feature",
 *    "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x+s, y], [x+s, y+s], [x, y+s], [x, y]]]},
 *    "properties": {"objectType": "detection",
 *                   "classification": {"name": "invasive", "color": [r, g, b]},
 *                   "isLocked": false,
 *                   "measurements": {"Probability normal": .., ..., "Entropy": ..,
 *                                    "Tissue fraction": .., "OOD score": ..},
 *                   "histoplan": {"tile_index": t, "i": i, "j": j, "region_id": "R3" or null}}}
 *
 * One feature per row of tiles.csv, in the same raster order, with the same numbers: the
 * classification is the top class (by the model's own probabilities, not a smoothed map), one
 * "Probability <class name>" measurement per class, "Entropy" normalized to [0, 1]; "Tissue
 * fraction" and "OOD score" only where known (QuPath has no null measurement). Coordinates are
 * level-0 pixels from the slide's top-left, the ring closed and counter-clockwise in a y-up frame
 * (GeoJSON's right-hand rule), as regions.geojson. The file is written feature by feature (a slide
 * has up to hundreds of thousands of tiles) under a temporary name, then renamed. */
#ifndef HP_WRITE_TILES_GEOJSON_H
#define HP_WRITE_TILES_GEOJSON_H

#include "common/status.h"
#include "pipeline/heatmap.h"
#include "pipeline/write_tiles_csv.h"

/* `x` may be NULL (no region ids, no OOD scores). */
hp_status hp_write_tiles_geojson(const char *path, const hp_heatmap_grid *g, const hp_tile_extras *x,
                                 hp_error *err);

#endif
