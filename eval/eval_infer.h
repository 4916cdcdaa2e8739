/* Classifying whole images (microscopy images, patches) with a tile model: each image is
 * resampled to the model card's resolution, cut into tiles, classified tile by tile, and its
 * tile probabilities averaged into one probability vector per image.
 *
 * Resolution. The image's own microns per pixel come from the user's override (--mpp), else
 * the image's metadata (OpenSlide's MPP or TIFF resolution tags, when in 0.05..20 um/px: a
 * 72 dpi screen resolution is 353 um/px and counts as missing), else the data set's stated
 * scale (BACH: 0.42 um/px); with none the image is refused naming --mpp. A W x H image at m
 * um/px becomes round(W m / t) x round(H m / t) pixels at the card's t um/px
 * (hp_image_resize_rgb8: exact area averages when shrinking by 2x or more, bilinear otherwise).
 *
 * Tiles. On the resampled image, floor(W'/T) x floor(H'/T) non-overlapping T x T tiles (at least
 * one each way), centred (the margin left over is split evenly, the odd pixel on the right and
 * bottom). Where an image is smaller than a tile, the tile reaches past it and reads white, as
 * empty glass does. Every tile is used: a microscopy image is field of view, not a slide with
 * background to skip.
 *
 * Aggregation (the rule recorded in metrics.json): the image's probability vector is the mean of
 * the softmax of the model's outputs over its tiles and their test-time augmentations (flips:
 * identity, horizontal, vertical, both; dihedral: the four rotations and their mirror images),
 * each tile and view weighted equally; its predicted class is the most probable one.
 *
 * Stain normalization (optional): each resampled image is normalized towards the target
 * parameters after fitting its own on its pixels (every k-th pixel in raster order when it has
 * more than HP_EVAL_STAIN_FIT_PIXELS); an image whose stain cannot be fitted (a blank field)
 * fails the run with its name.
 *
 * Parallelism: reader threads decode, resample and tile images ahead of the model (a bounded
 * number of images in flight); the calling thread runs the model in fixed-size batches that
 * may span images. Results do not depend on the thread count. A failure on any image stops the
 * run with that image named: a figure computed over the images that happened to work would not
 * be the figure asked for. */
#ifndef HP_EVAL_INFER_H
#define HP_EVAL_INFER_H

#include "common/status.h"
#include "eval/eval_dataset.h"
#include "models/model.h"
#include "pipeline/stain.h"

typedef enum { HP_EVAL_TTA_NONE = 0, HP_EVAL_TTA_FLIPS, HP_EVAL_TTA_DIHEDRAL } hp_eval_tta;

/* "none" / "flips" / "dihedral"; parse returns -1 for anything else. */
const char *hp_eval_tta_name(hp_eval_tta t);
int hp_eval_tta_parse(const char *s, hp_eval_tta *t);
/* Views per tile: 1, 4 or 8. */
int hp_eval_tta_views(hp_eval_tta t);

/* Largest image accepted, in pixels: microscopy images and patches, not whole slides (use
 * analyze for those). */
#define HP_EVAL_IMAGE_MAX_PIXELS (64LL * 1000 * 1000)

/* Pixels a stain fit sees at most (about 48 MB of Macenko scratch). */
#define HP_EVAL_STAIN_FIT_PIXELS 4000000

typedef struct {
    double mpp_override;  /* > 0: every image's MPP (--mpp) */
    double default_mpp;   /* > 0: used when an image has no MPP of its own (BACH: 0.42) */
    hp_eval_tta tta;
    const hp_stain_params *stain_target; /* NULL: none */
    int threads;          /* reader threads; <= 0: one per CPU (at most 8) */
    int batch;            /* tiles per model batch; <= 0: 32 */
    void (*progress)(void *user, long done, long total); /* images done; may be NULL */
    void *progress_user;
} hp_eval_infer_options;

void hp_eval_infer_options_init(hp_eval_infer_options *o);

typedef struct {
    int width, height;     /* the image's pixels */
    double mpp;            /* its microns per pixel, as used */
    const char *mpp_source; /* "override", "openslide", "tiff-resolution", "dataset" */
    int tiles;             /* tiles cut (before augmentation) */
} hp_eval_image_info;

/* Classifies items[which[q]] for q = 0..n-1 (which NULL: items 0..n-1). The model must carry a
 * card with classes, MPP and a square input. prob receives n x C floats (C = the card's class
 * count), info n entries (may be NULL). Errors name the image and the cause. */
hp_status hp_eval_infer(hp_model *model, const hp_eval_item *items, const int *which, int n,
                        const hp_eval_infer_options *o, float *prob, hp_eval_image_info *info,
                        hp_error *err);

#endif
