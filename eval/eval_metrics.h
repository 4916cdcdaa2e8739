/* Classification metrics of an evaluation, per image, with seeded bootstrap confidence
 * intervals. Inputs: n images, C classes, the true class of each image and its probability
 * vector (the aggregated tile probabilities). The predicted class is the most probable one
 * (the first on a tie). Definitions, chosen to agree with scikit-learn where it has the metric:
 *
 *   accuracy            share of images predicted right (sklearn accuracy_score)
 *   sensitivity_k       TP/(TP+FN) (recall_score per class); undefined without images of k
 *   specificity_k       TN/(TN+FP); undefined when every image is of class k
 *   ppv_k               TP/(TP+FP) (precision_score per class); undefined when k is never predicted
 *   f1_k                2TP/(2TP+FP+FN) (f1_score per class); undefined when k is neither true nor
 *                       predicted anywhere
 *   balanced accuracy   mean sensitivity over the classes that have images
 *                       (balanced_accuracy_score)
 *   macro F1            mean f1_k over the classes true or predicted somewhere
 *                       (f1_score(average="macro"))
 *   auc_k               one-vs-rest ROC AUC of class k's probability (roc_auc_score on
 *                       y == k); ties count one half (Mann-Whitney); undefined unless class k
 *                       and some other class both have images
 *   macro AUC           mean of the defined auc_k (roc_auc_score(multi_class="ovr") when
 *                       every class has images)
 *   Brier score         mean over images of sum_k (p_k - [y = k])^2, Brier's original
 *                       multi-class score, 0 (perfect) to 2
 *   ECE                 expected calibration error of the top-class confidence over
 *                       HP_EVAL_ECE_BINS equal-width bins (bin = min(floor(conf * B), B - 1)):
 *                       sum over bins of (n_b / n) |accuracy_b - mean confidence_b|
 *   2-class accuracy    carcinoma (in situ, invasive) against non-carcinoma (normal, benign):
 *                       the true and the predicted class each mapped to carcinoma or not;
 *                       undefined unless every class is one of BACH's four
 *
 * Undefined values are NaN (written as null). Bootstrap: R replicates, each drawing n images
 * with replacement (index = SplitMix64 next() mod n, eval/eval_rng.h, seeded with the seed);
 * each metric's 95% interval is the 2.5th and 97.5th percentile (linear interpolation, as
 * numpy.percentile) of its values over the replicates where it is defined.
 *
 * Thread safety: pure functions of their arguments. */
#ifndef HP_EVAL_METRICS_H
#define HP_EVAL_METRICS_H

#include <stdint.h>

#include "common/status.h"

#define HP_EVAL_MAX_CLASSES 64
#define HP_EVAL_ECE_BINS 15

typedef struct {
    int n, c;
    double accuracy, balanced_accuracy, two_class_accuracy, macro_f1, macro_auc, brier, ece;
    double sensitivity[HP_EVAL_MAX_CLASSES], specificity[HP_EVAL_MAX_CLASSES];
    double ppv[HP_EVAL_MAX_CLASSES], f1[HP_EVAL_MAX_CLASSES], auc[HP_EVAL_MAX_CLASSES];
    int64_t support[HP_EVAL_MAX_CLASSES];   /* images of each true class */
    int64_t predicted[HP_EVAL_MAX_CLASSES]; /* images predicted as each class */
    int64_t confusion[HP_EVAL_MAX_CLASSES * HP_EVAL_MAX_CLASSES]; /* [truth * c + prediction] */
    /* Reliability: per confidence bin, the images, their mean confidence and their accuracy
     * (NaN for an empty bin). */
    int64_t bin_count[HP_EVAL_ECE_BINS];
    double bin_confidence[HP_EVAL_ECE_BINS], bin_accuracy[HP_EVAL_ECE_BINS];
} hp_eval_metrics;

/* The scalar metrics that get intervals, in a fixed order: the seven overall ones, then five
 * per class (sensitivity, specificity, ppv, f1, auc) for each class in turn. */
enum {
    HP_EVAL_M_ACCURACY = 0,
    HP_EVAL_M_BALANCED_ACCURACY,
    HP_EVAL_M_TWO_CLASS_ACCURACY,
    HP_EVAL_M_MACRO_F1,
    HP_EVAL_M_MACRO_AUC,
    HP_EVAL_M_BRIER,
    HP_EVAL_M_ECE,
    HP_EVAL_M_OVERALL,
};
enum { HP_EVAL_M_SENS = 0, HP_EVAL_M_SPEC, HP_EVAL_M_PPV, HP_EVAL_M_F1, HP_EVAL_M_AUC, HP_EVAL_M_PER_CLASS };
#define HP_EVAL_N_SCALARS(c) (HP_EVAL_M_OVERALL + HP_EVAL_M_PER_CLASS * (c))

/* The scalar at position `i` of that order. */
double hp_eval_metrics_scalar(const hp_eval_metrics *m, int i);

/* Computes the metrics over the images idx[0..m-1] (idx NULL: all n, and m is ignored).
 * truth[i] in 0..c-1; prob row i has c values; carcinoma[k] is 1 for a carcinoma class, 0 for
 * a non-carcinoma one, -1 when unknown (NULL: 2-class accuracy undefined). Fails (message in
 * err) for c outside 2..HP_EVAL_MAX_CLASSES, no images, a truth out of range or a probability
 * that is not finite. */
hp_status hp_eval_metrics_compute(int n, int c, const int *truth, const float *prob,
                                  const int *carcinoma, const int *idx, int m, hp_eval_metrics *out,
                                  hp_error *err);

typedef struct {
    double lo, hi; /* NaN when no replicate defined the metric */
    int valid;     /* replicates where the metric was defined */
} hp_eval_ci;

/* Percentile `q` (0..100) of the finite values among v[0..n-1] (sorted in place, NaNs moved to
 * the end), with numpy's linear interpolation; NaN when none is finite. */
double hp_eval_percentile(double *v, int n, double q);

/* Bootstrap intervals for every scalar (ci has HP_EVAL_N_SCALARS(c) entries) over the images
 * idx[0..m-1] (NULL: all). replicates 1..1000000. */
hp_status hp_eval_bootstrap(int n, int c, const int *truth, const float *prob, const int *carcinoma,
                            const int *idx, int m, int replicates, uint64_t seed, hp_eval_ci *ci,
                            hp_error *err);

#endif
