/* regions.geojson for QuPath (File > Import objects from file; QuPath 0.3+): a GeoJSON
 * FeatureCollection with one Feature per region (pipeline/regions.h).
 *
 *   {"type": "Feature",
 *    "geometry": {"type": "Polygon", "coordinates": [[[x, y], ...], <holes>...]},
 *    "properties": {"objectType": "annotation", "name": "R5",
 *                   "classification": {"name": "invasive", "color": [r, g, b]},
 *                   "isLocked": false,
 *                   "measurements": {"Area mm2": .., "Largest diameter mm": ..,
 *                                    "Mean probability": .., "Max probability": .., "Tiles": ..},
 *                   "histoplan": {"region_id": "R5", "label": "invasive 1", "class_index": 3,
 *                                 "threshold": 0.5,
 *                                 "centroid": [x, y], "evidence_tiles": [t, ...]}}}
 *
 * Coordinates are level-0 pixels with the origin at the slide's top-left (QuPath's convention);
 * rings are closed; the outer ring's signed area is positive in x-right/y-down pixel coordinates,
 * which is GeoJSON's right-hand rule read in a y-up frame. measurements is an object of name to
 * number (QuPath 0.4's form). The name is the region's id (pipeline/regions.h hp_region_id), the
 * one every output uses; the label numbers regions per class (largest first). evidence_tiles are tile indices j*gw + i, the most probable first
 * (the rows of tiles.csv with that tile_index). Written under a temporary name, then renamed. */
#ifndef HP_WRITE_GEOJSON_H
#define HP_WRITE_GEOJSON_H

#include "common/status.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"

hp_status hp_write_regions_geojson(const char *path, const hp_heatmap_grid *g,
                                   const hp_regions *rs, hp_error *err);

#endif
