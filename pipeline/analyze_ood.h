/* The domain stage of the analyze run: is the model valid for this slide?
 *
 * Three checks, each a reason on its own: the model's out-of-domain detector (models/ood.h)
 * scores every tile's penultimate features, and the slide is out of domain when at least the
 * card's slide_fraction of its analysed tiles exceed the detector's threshold; the slide's MPP
 * lies outside the card's domain mpp_range; the stain is not H&E (the tissue QC's not-he flag)
 * while the card's domain is H&E. An out-of-domain slide gets the QC flag out-of-domain and the
 * reason in findings.json; the report then suggests no category and no care plan.
 *
 * The same stage turns the card's temperature into a calibrated confidence (mean top-class
 * probability of softmax(logits / T) over the analysed tiles), so the report's confidence rests
 * on probabilities fitted on held-out data rather than on the raw softmax. */
#ifndef HP_ANALYZE_OOD_H
#define HP_ANALYZE_OOD_H

#include "common/status.h"
#include "models/model.h"
#include "models/ood.h"
#include "pipeline/findings.h"
#include "pipeline/heatmap.h"
#include "pipeline/tile_grid.h"

typedef struct {
    hp_ood *det;    /* NULL: the card ships no detector */
    int out_index;  /* the model output holding the features */
    int dim;
    float *features; /* batch x dim scratch for one run */
    float *scores;   /* per grid tile; NaN where not analysed */
    size_t n_scores;
} hp_analyze_ood;

/* Loads the card's detector (when it has one) and makes its feature value an extra output of the
 * model. Call before the model is instantiated for the batch. */
hp_status hp_analyze_ood_prepare(hp_model *model, const hp_card *card, int batch, size_t grid_tiles,
                                 hp_analyze_ood *o, hp_error *err);

/* The extra-output array for hp_model_run_rgb8_outputs (NULL when no detector) and its length. */
float *const *hp_analyze_ood_outputs(hp_analyze_ood *o, int *n);

/* Scores the `count` tiles of the last run (the batch's tiles, in order). */
void hp_analyze_ood_score(hp_analyze_ood *o, const hp_tile *tiles, int count);

/* Fills the findings' domain members and the out-of-domain QC flag from the tile scores, the
 * slide's MPP and the QC flags, and the calibrated confidence from `hg` (raw probabilities).
 * Needs f->mpp_x, f->qc_flags and f->tiles_analysed set. */
hp_status hp_analyze_ood_finish(const hp_analyze_ood *o, const hp_card *card,
                                const hp_heatmap_grid *hg, hp_findings *f, hp_error *err);

void hp_analyze_ood_free(hp_analyze_ood *o);

#endif
