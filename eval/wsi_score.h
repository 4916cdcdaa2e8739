/* Whole-slide scoring against BACH Part B ground truth: the challenge score of Aresta et al.
 * 2019 and per-class Dice and IoU, from an analysis's tile predictions.
 *
 * The score implemented is eq. 1 of Aresta et al., "BACH: Grand challenge on breast cancer
 * histology images", Medical Image Analysis 56 (2019) 122-139, as the paper defines it: with
 * pixel labels ordinal, 0 normal, 1 benign, 2 in situ, 3 invasive,
 *
 *     s = 1 - sum_i |pred_i - gt_i| / sum_i max(|gt_i - 0|, |gt_i - 3|)
 *
 * where both sums run over the pixels i whose prediction or ground truth is not normal
 * (pred_i > 0 or gt_i > 0; the paper writes this as the factor [1 - (1 - pred_bin)(1 - gt_bin)]
 * with the labels binarized normal / not normal). A pixel both call normal counts in neither
 * sum: it would only pad the score. The denominator is the largest error each ground-truth
 * label allows, so a prediction as far as possible from the truth everywhere scores 0 and a
 * perfect one 1; a prediction far from the truth costs more than a near one. With no pixel
 * outside normal in either map the score is undefined (null).
 *
 * Predictions. findings.json names the slide (level-0 size, id, SHA-256), the model's classes
 * and tiles.csv, whose rows give each analysed tile's level-0 square and class probabilities;
 * a tile's label is its most probable class (first on a tie), mapped to the ordinal scale by
 * name through the evaluation's spelling table; the classes must be BACH's four. A raster pixel
 * takes the label of the analysed tile its centre falls in, normal where none was analysed
 * (background, like unannotated truth).
 *
 * Rasters: downsample D level-0 pixels per raster pixel, ceil(W / D) x ceil(H / D) pixels,
 * pixel (px, py) standing for the level-0 point ((px + 0.5) D, (py + 0.5) D). */
#ifndef HP_WSI_SCORE_H
#define HP_WSI_SCORE_H

#include <stdint.h>

#include "common/status.h"

#define HP_WSI_LABELS 4

/* Score and overlap of one slide, or of several pooled (sums over their pixels). */
typedef struct {
    int64_t pixels;          /* raster pixels compared */
    int64_t scored;          /* pixels where prediction or truth is not normal */
    double error_sum;        /* sum |pred - gt| over them */
    double max_error_sum;    /* sum max(gt, 3 - gt) over them */
    double score;            /* 1 - error_sum / max_error_sum; NaN when max_error_sum is 0 */
    int64_t both[HP_WSI_LABELS], truth[HP_WSI_LABELS], pred[HP_WSI_LABELS];
    double dice[HP_WSI_LABELS], iou[HP_WSI_LABELS]; /* NaN when the label is in neither map */
} hp_wsi_score;

/* Adds the pixels of two rasters of labels 0..3 (n each) to *s (start zeroed), then
 * recomputes score, Dice and IoU from the sums. Labels above 3 are refused. */
hp_status hp_wsi_score_add(hp_wsi_score *s, const uint8_t *truth, const uint8_t *pred, int64_t n,
                           hp_error *err);

/* What eval-wsi reads of an analysis. */
typedef struct {
    char slide_id[72];
    char sha256[72];
    int64_t width, height;      /* level 0 */
    int n_classes;
    int ordinal[64];            /* each class's BACH label 0..3 */
    char tiles_csv[4096];       /* path */
} hp_wsi_findings;

/* Reads findings.json (and checks its classes are BACH's four). Errors name the file and field. */
hp_status hp_wsi_findings_read(const char *path, hp_wsi_findings *f, hp_error *err);

/* Paints the analysed tiles of f's tiles.csv into out (w x h, written whole). Errors name the
 * file and row. */
hp_status hp_wsi_predictions_rasterize(const hp_wsi_findings *f, double downsample, int w, int h,
                                       uint8_t *out, hp_error *err);

#endif
