/* The out-of-domain detector a model card ships (card "ood_detector", file "<model>.ood.json"):
 * a Mahalanobis score on the model's penultimate features, the global-average-pooled values its
 * classifier reads. A tile whose score exceeds the threshold looks unlike anything the model was
 * trained on; its class probabilities then say nothing, however peaked they are.
 *
 * File (JSON, written by scripts/train-default-model.py): {"format": "histoplan-ood/1",
 * "method": "mahalanobis", "feature": ONNX value name, "dim": d, "threshold": t,
 * "slide_fraction": f, "mean": [d numbers], "precision": [d*d numbers, row-major]}.
 *
 * Thread-safety: a loaded detector is read-only; hp_ood_score may run on many threads. */
#ifndef HP_OOD_H
#define HP_OOD_H

#include "common/status.h"

typedef struct hp_ood hp_ood;

/* Reads a detector file. On failure returns NULL and fills `err` naming the file and the field. */
hp_ood *hp_ood_load(const char *path, hp_error *err);
void hp_ood_destroy(hp_ood *d);

/* The ONNX value whose output the detector scores, and its length per tile. */
const char *hp_ood_feature(const hp_ood *d);
int hp_ood_dim(const hp_ood *d);
/* Tile scores above this are out of domain. */
double hp_ood_threshold(const hp_ood *d);

/* Squared Mahalanobis distance of one tile's features (dim floats) from the training mean; NaN
 * when a feature is not finite. */
double hp_ood_score(const hp_ood *d, const float *features);

#endif
