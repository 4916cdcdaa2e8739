/* tiles.csv: one row per analysed tile (tiles not analysed are left out), in raster order:
 *
 *   tile_index,i,j,x,y,size,tissue_fraction,prob_<class>...,entropy,top_class,region_id,ood_score,super_resolved
 *   1234,34,12,15232,5376,448,0.93,0.01,0.02,0.9,0.07,0.281,in situ,R4,12.5,0
 *
 * tile_index = j*gw + i (what regions.geojson's evidence_tiles list); x, y: level-0 top-left of
 * the tile; size: its side in level-0 pixels; tissue_fraction empty when unknown; one prob_
 * column per class with the file-safe class name (hp_heatmap_safe_names); entropy normalized to
 * [0, 1] (hp_heatmap_entropy); top_class the display name of the most probable class, quoted as
 * RFC 4180 says when it holds a comma, a quote or a line break; region_id the id of the region
 * holding the tile (pipeline/regions.h; as findings.json, regions.geojson and the report name it),
 * empty when none; ood_score the tile's out-of-domain score (models/ood.h), empty when not scored;
 * super_resolved 1 when the model saw the tile super-resolved (analyze --sr), else 0.
 * Numbers: C locale; probabilities, tissue fraction and entropy to 6 significant digits. Written
 * under a temporary name, then renamed. */
#ifndef HP_WRITE_TILES_CSV_H
#define HP_WRITE_TILES_CSV_H

#include "common/status.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"

/* What the per-tile outputs (tiles.csv, tiles.geojson) add to the grid's probabilities; each
 * member may be NULL (its column or property is then empty). */
typedef struct {
    const hp_regions *regions; /* the region holding each tile */
    const float *ood_score;    /* gw*gh out-of-domain scores, NaN where a tile was not scored */
    int super_resolved;        /* every analysed tile went through a super-resolution model */
} hp_tile_extras;

/* Probabilities come from g->prob (what the model said, not a smoothed map). `x` may be NULL. */
hp_status hp_write_tiles_csv(const char *path, const hp_heatmap_grid *g, const hp_tile_extras *x,
                             hp_error *err);

#endif
