/* The findings of one analysis from its maps (pipeline/analyze.c runs the stages, this turns
 * their grids into the numbers findings.json states): class tile counts, areas and fractions,
 * entropy summaries, the regions with their evidence tiles, the largest focus per class, the
 * in situ and invasive summaries (pipeline/findings.h), and the model's identity. */
#ifndef HP_ANALYZE_FINDINGS_H
#define HP_ANALYZE_FINDINGS_H

#include "common/status.h"
#include "models/card.h"
#include "pipeline/findings.h"
#include "pipeline/heatmap.h"
#include "pipeline/regions.h"

/* Per class: tiles whose top class it is, their area (tile_mm2 each) and fraction of the
 * analysed tiles; the analysed area; mean and max entropy and the fraction of tiles whose
 * entropy exceeds `entropy_threshold`. f->classes must hold hg->nclasses zeroed classes. */
void hp_analyze_findings_classes(hp_findings *f, const hp_heatmap_grid *hg, const float *ent,
                                 double entropy_threshold, double tile_mm2);

/* f->regions from `rs` (ids from 1, bounding boxes, centroids, up to HP_FINDINGS_EVIDENCE_MAX
 * evidence tiles each), each class's region count and largest focus, and the in situ and
 * invasive summaries (classes whose names contain "situ" and "invasive"). */
hp_status hp_analyze_findings_regions(hp_findings *f, const hp_card *card, const hp_heatmap_grid *hg,
                                      const hp_regions *rs, hp_error *err);

/* A copy of the card, the model file's hash, the backend and the precision (fp32). */
hp_status hp_analyze_findings_model(hp_findings *f, const hp_card *card, const char *model_sha256,
                                    const char *backend, hp_error *err);

#endif
