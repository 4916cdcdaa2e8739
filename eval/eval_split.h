/* Which images of a data set an evaluation uses (--split):
 *
 * - "all" (default): every image.
 * - "eva" / "eva:val" and "eva:train": the BACH train/validation split of the eva benchmark
 *   (kaiko-ai/eva, src/eva/vision/data/datasets/classification/bach.py, class BACH), so that
 *   figures compare with the foundation-model numbers published with it. eva takes the 400
 *   Part A images in torchvision ImageFolder order (class folders Benign, InSitu, Invasive,
 *   Normal; file names sorted) and keeps index ranges, half-open:
 *     train [0,41) [59,60) [90,139) [169,240) [258,260) [273,345) [368,400)  (268 images)
 *     val   [41,59) [60,90) [139,169) [240,258) [260,273) [345,368)          (132 images)
 *   The ranges follow patients, so no patient is in both. A data set that is not the BACH
 *   Part A folder with exactly its 400 .tif images is refused: the ranges mean nothing there.
 * - "kfold:K:SEED" and "kfold:K:SEED:F": fixed, stratified folds. Images are grouped by their
 *   label as written (groups in byte order of the label; unlabelled data is one group); within
 *   a group, in data order, they are shuffled by Fisher-Yates with SplitMix64 seeded with SEED
 *   (one generator across the groups in turn: for i = n-1 down to 1, j = next() mod (i+1),
 *   swap i and j), and the image at shuffled position p goes to fold p mod K. The folds depend
 *   on the data set alone, never on a model. With F (0..K-1) only fold F is evaluated (the
 *   held-out fold of a model trained on the others); without it every image is, and metrics
 *   are also given per fold. */
#ifndef HP_EVAL_SPLIT_H
#define HP_EVAL_SPLIT_H

#include <stdint.h>

#include "common/status.h"
#include "eval/eval_dataset.h"

typedef enum { HP_EVAL_SPLIT_ALL = 0, HP_EVAL_SPLIT_EVA, HP_EVAL_SPLIT_KFOLD } hp_eval_split_kind;

typedef struct {
    hp_eval_split_kind kind;
    int eva_train;  /* eva: 1 train, 0 validation */
    int k;          /* kfold: number of folds, 2..100 */
    uint64_t seed;  /* kfold */
    int fold;       /* kfold: the fold evaluated, or -1 for all */
    char spec[96];  /* as normalized: "all", "eva:val", "kfold:5:7", "kfold:5:7:2" */
} hp_eval_split;

/* The number of images in BACH Part A, which the eva ranges index. */
#define HP_EVAL_EVA_BACH_IMAGES 400

hp_status hp_eval_split_parse(const char *spec, hp_eval_split *s, hp_error *err);

/* Assigns every item of `d`: fold[i] (kfold: 0..K-1; otherwise -1; may be NULL) and
 * selected[i] (1 when the split evaluates item i). */
hp_status hp_eval_split_apply(const hp_eval_split *s, const hp_eval_dataset *d, int *fold,
                              unsigned char *selected, hp_error *err);

/* One sentence describing the split and its source, for metrics.json. */
const char *hp_eval_split_definition(const hp_eval_split *s);

#endif
