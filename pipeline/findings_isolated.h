/* Isolated tiles: the evidence of a class that formed no region (pipeline/findings.h,
 * hp_findings_isolated). A tile counts for class k when k is its top class in what the model said
 * (unsmoothed) and no region of k holds it. */
#ifndef HP_FINDINGS_ISOLATED_H
#define HP_FINDINGS_ISOLATED_H

#include "common/status.h"
#include "pipeline/findings.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"

/* Fills f->isolated (which must be empty) from the grid and its regions: one entry per class
 * with isolated tiles, in class order, each with up to HP_FINDINGS_ISOLATED_MAX locations (the
 * most probable first, then raster order). Errors: HP_ERR_NOMEM (message in err). */
hp_status hp_findings_isolated_fill(hp_findings *f, const hp_heatmap_grid *g, const hp_regions *rs,
                                    hp_error *err);

#endif
